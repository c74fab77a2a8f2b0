//! Classification heads trained on frozen embeddings: multinomial logistic regression (the
//! default) and a one-hidden-layer MLP, both with built-in feature normalisation, balanced
//! class weights and temperature calibration.
//!
//! Weights live in plain `Vec<f32>` (not tensors) so a `Head` is `Clone + Send + Sync`, can be
//! shared by the scoring threads and saved byte-exactly; tensors are built per call.

pub mod linear_f16;
pub mod logistic;
pub mod mlp;
mod quantized;

use anyhow::{bail, ensure, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::ml::embeddings::Embeddings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    Logistic,
    Mlp,
}

impl From<crate::config::task::HeadChoice> for HeadKind {
    fn from(c: crate::config::task::HeadChoice) -> Self {
        match c {
            crate::config::task::HeadChoice::Logistic => HeadKind::Logistic,
            crate::config::task::HeadChoice::Mlp => HeadKind::Mlp,
        }
    }
}

/// How raw embedding rows are normalised before the first layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Raw features.
    None,
    /// Per-feature (x - mean) / std from the training rows.
    Standard,
    /// Each row divided by its L2 norm, then scaled by sqrt(dim) (unit RMS per feature).
    L2,
    /// L2 rows, then per-feature standardisation whose log-variances are shrunk towards the
    /// pooled log-variance with weight `std_prior / (n + std_prior)`, so a handful of labels
    /// cannot blow up one feature.
    L2Standard,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HeadParams {
    pub kind: HeadKind,
    /// MLP hidden width.
    pub hidden: usize,
    /// MLP passes over the training rows.
    pub epochs: usize,
    /// MLP Adam learning rate.
    pub lr: f64,
    /// MLP decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// MLP dropout on the hidden layer.
    pub dropout: f64,
    /// Logistic inverse L2 strength, scikit-learn's `C` on the normalised features:
    /// objective = mean weighted log-loss + ||W||^2 / (2 C sum(weights)).
    pub c: f64,
    /// Logistic: values of `c` that `fit_calibrated` chooses from by out-of-fold NLL (empty:
    /// always `c`), strongest regularisation first.
    pub c_candidates: Vec<f64>,
    /// Above this many training rows `fit_calibrated` skips the C search and uses `c`.
    pub c_search_max_rows: usize,
    /// The training labels were chosen by a query strategy rather than drawn uniformly at
    /// random. Their folds then compare fits by `calibration::selection_nll` (sharpened by
    /// the fitted temperature, never cooled) instead of the calibrated NLL, which over such
    /// labels favours weakly regularised fits that rank the pool worse. Uniform labels keep
    /// the calibrated NLL: there it estimates the pool's without bias, and a fit that needs
    /// cooling can still be the most accurate (a signal along a low-variance direction).
    pub designed_labels: bool,
    /// Logistic L-BFGS iteration cap and gradient tolerance (max |grad|).
    pub max_iter: usize,
    pub tol: f64,
    /// Weights inversely proportional to class frequency (scikit-learn's `balanced`), tempered
    /// beyond 500 labelled rows (see `sample_weights`).
    pub class_weighting: bool,
    pub scaling: Scaling,
    /// Pseudo-rows of pooled log-variance mixed into each feature's log-variance (`L2Standard`).
    pub std_prior: f64,
    pub seed: u64,
    /// Upper bound on cross-validation folds for temperature calibration.
    pub calibration_folds: usize,
    /// Two-class tasks: after a fit, move the class biases so the mean prediction over the
    /// unlabelled pool stays between uniform and the labelled class frequencies
    /// (`ml::prior`); done by the callers that have the pool (trainer, simulator).
    pub prior_matching: bool,
    /// Pseudo-labels per labelled class in that target.
    pub prior_smoothing: f64,
    /// Normalise features by the statistics of the whole unlabelled pool rather than of the
    /// labelled rows (`Normalizer::fit_pool`); the callers that have the pool pass them in.
    pub pool_statistics: bool,
    /// Exponent `beta` of the pool-covariance prior on the weights (with pool statistics):
    /// the standardised features are turned into the pool's principal axes, each scaled by
    /// `(lambda / mean lambda)^(beta / 2)`, so the L2 penalty becomes `w^T Sigma^-beta w` and a
    /// few labels lean on the directions the pool varies in. 0: plain L2. When
    /// `fit_calibrated` searches C, it also tries each C without the prior and keeps the
    /// better by out-of-fold NLL, so the prior is a candidate rather than forced.
    pub covariance_prior: f64,
}

/// Default of [`HeadParams::covariance_prior`]: off. At 0.5 it lifts random sampling by 1-4
/// points below 100 labels on the text tasks (where cross-validation keeps it at every fit),
/// but dips the default strategy on 20 groups at 150-200 labels and costs it 1-3 points on
/// MNIST below 100 labels (although cross-validation drops it there from about 78 labels on),
/// and fits are 2-4x slower (`bench/results/lc-adaptive.md`, "Pool-covariance prior").
pub const DEFAULT_COVARIANCE_PRIOR: f64 = 0.0;

/// The values [`HeadParams::covariance_prior`] may take (config and command line alike).
pub const COVARIANCE_PRIOR_RANGE: std::ops::RangeInclusive<f64> = 0.0..=2.0;

impl Default for HeadParams {
    fn default() -> Self {
        Self {
            kind: HeadKind::Logistic,
            hidden: 256,
            epochs: 60,
            lr: 1e-3,
            weight_decay: 1e-2,
            dropout: 0.2,
            c: 1.0,
            c_candidates: vec![0.01, 0.1, 1.0],
            c_search_max_rows: 3000,
            designed_labels: false,
            max_iter: 500,
            tol: 1e-5,
            class_weighting: true,
            scaling: Scaling::L2Standard,
            std_prior: 10.0,
            seed: 0,
            calibration_folds: 5,
            prior_matching: true,
            prior_smoothing: 1.0,
            pool_statistics: true,
            covariance_prior: DEFAULT_COVARIANCE_PRIOR,
        }
    }
}

impl HeadParams {
    pub fn for_kind(kind: HeadKind) -> Self {
        Self { kind, ..Self::default() }
    }

    /// Whether `Head::fit_calibrated` on `rows` training rows chooses C among
    /// `c_candidates` (given folds); otherwise it fits at `c`.
    pub fn searches_c(&self, rows: usize) -> bool {
        self.kind == HeadKind::Logistic && !self.c_candidates.is_empty() && rows <= self.c_search_max_rows
    }
}

/// One dense layer, `out = in @ w + b`, with `w` row-major `[inputs, outputs]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Layer {
    fn tensors(&self) -> (Tensor, Tensor) {
        (Tensor::from_slice(&self.w).reshape([self.inputs as i64, self.outputs as i64]), Tensor::from_slice(&self.b))
    }
}

/// Normalisation stats computed at fit time: z = (l2(x) - mean) / scale, then `z @ basis`
/// when the pool-covariance prior is on.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalizer {
    /// Whether rows are first divided by their L2 norm and multiplied by sqrt(dim).
    pub l2: bool,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `[d, d]` row-major: the pool's principal axes (of the standardised features), column
    /// `k` scaled by `(lambda_k / mean lambda)^(beta / 2)` (`HeadParams::covariance_prior`).
    /// A training-time reparametrisation only: saved heads hold their first layer mapped back
    /// (`Head::plain_layers`), so this is never saved.
    pub basis: Option<std::sync::Arc<[f32]>>,
}

impl Normalizer {
    /// Plain standardisation (no basis).
    pub fn standard(l2: bool, mean: Vec<f32>, scale: Vec<f32>) -> Self {
        Self { l2, mean, scale, basis: None }
    }

    fn identity(dim: usize, l2: bool) -> Self {
        Self::standard(l2, vec![0.0; dim], vec![1.0; dim])
    }

    fn fit(x: &Tensor, scaling: Scaling, std_prior: f64) -> anyhow::Result<Self> {
        let (n, d) = x.size2().context("features must be a 2-D tensor")?;
        let l2 = matches!(scaling, Scaling::L2 | Scaling::L2Standard);
        if matches!(scaling, Scaling::None | Scaling::L2) {
            return Ok(Self::identity(d as usize, l2));
        }
        let z = if l2 { l2_rows(x) } else { x.shallow_clone() };
        let z = z.to_kind(Kind::Double);
        let mean = z.mean_dim(0, false, Kind::Double);
        let var = if n > 1 { z.var_dim(0, false, false) } else { Tensor::zeros([d], (Kind::Double, tch::Device::Cpu)) };
        Self::from_moments(n as usize, Vec::try_from(&mean)?, Vec::try_from(&var)?, scaling, std_prior)
    }

    /// Statistics of unlabelled `rows` of `emb` (every `stride`-th, at most `POOL_STATS_ROWS`),
    /// for heads whose labelled rows are not a random sample of the data: an active-learning
    /// strategy picks unusual and borderline items, and per-feature scales fitted on those
    /// shrink the directions it explored. The statistics need no labels, so the whole pool can
    /// supply them (effect measured in `bench/results/lc-adaptive.md`: none on random
    /// sampling, +0.5-1 point for the default strategy on review sentiment from 250 labels).
    ///
    /// With `params.covariance_prior > 0` a second pass over the same rows collects their
    /// covariance (after standardisation) for the prior's basis.
    pub fn fit_pool(emb: &Embeddings, rows: &[usize], params: &HeadParams) -> anyhow::Result<Self> {
        let (scaling, std_prior) = (params.scaling, params.std_prior);
        let d = emb.dim();
        let l2 = matches!(scaling, Scaling::L2 | Scaling::L2Standard);
        if matches!(scaling, Scaling::None | Scaling::L2) || rows.is_empty() {
            return Ok(Self::identity(d, l2));
        }
        let stride = rows.len().div_ceil(POOL_STATS_ROWS).max(1);
        let picked: Vec<usize> = rows.iter().step_by(stride).copied().collect();
        // Chunk moments merged pairwise (Chan et al.): no catastrophic cancellation for
        // features that barely vary, whose scale the constant-feature test below reads.
        let (mut n, mut mean, mut m2) = (0f64, vec![0f64; d], vec![0f64; d]);
        for chunk in picked.chunks(SCORE_CHUNK * 4) {
            let x = emb.gather(chunk);
            let z = if l2 { l2_rows(&x) } else { x }.to_kind(Kind::Double);
            let nb = chunk.len() as f64;
            let mb: Vec<f64> = Vec::try_from(&z.mean_dim(0, false, Kind::Double))?;
            let vb: Vec<f64> = if chunk.len() > 1 { Vec::try_from(&z.var_dim(0, false, false))? } else { vec![0.0; d] };
            let total = n + nb;
            for j in 0..d {
                let delta = mb[j] - mean[j];
                mean[j] += delta * nb / total;
                m2[j] += vb[j] * (nb - 1.0).max(0.0) + delta * delta * n * nb / total;
            }
            n = total;
        }
        let var: Vec<f64> = m2.iter().map(|m| if n > 1.0 { m / (n - 1.0) } else { 0.0 }).collect();
        let mut norm = Self::from_moments(picked.len(), mean, var, scaling, std_prior)?;
        if params.covariance_prior > 0.0 && picked.len() > 1 {
            norm.basis = Some(norm.prior_basis(emb, &picked, params.covariance_prior)?);
        }
        Ok(norm)
    }

    /// The basis of the pool-covariance prior: eigenvectors of the covariance of the
    /// standardised `rows`, column `k` scaled by `(lambda_k / mean lambda)^(beta / 2)`.
    fn prior_basis(&self, emb: &Embeddings, rows: &[usize], beta: f64) -> anyhow::Result<std::sync::Arc<[f32]>> {
        let d = emb.dim() as i64;
        let mut gram = Tensor::zeros([d, d], (Kind::Double, tch::Device::Cpu));
        for chunk in rows.chunks(SCORE_CHUNK * 4) {
            let z = self.standardise(&emb.gather(chunk)).to_kind(Kind::Double);
            gram += z.tr().matmul(&z);
        }
        let cov = gram / (rows.len() as f64 - 1.0);
        let (lambda, axes) = cov.linalg_eigh("L");
        let lambda = lambda.clamp_min(0.0);
        let mean = lambda.mean(Kind::Double).double_value(&[]);
        ensure!(mean > 0.0 && mean.is_finite(), "the pool's features do not vary");
        // Directions the pool does not vary in get a vanishing (never a zero) column.
        let weight = (lambda / mean).clamp_min(1e-8).pow_tensor_scalar(beta / 2.0);
        let basis = (axes * weight.unsqueeze(0)).to_kind(Kind::Float).contiguous();
        Ok(Vec::<f32>::try_from(basis.flatten(0, -1))?.into())
    }

    /// Means and (unbiased) variances of `n` rows, already L2-scaled where `scaling` says so.
    fn from_moments(n: usize, mean: Vec<f64>, var: Vec<f64>, scaling: Scaling, std_prior: f64) -> anyhow::Result<Self> {
        let l2 = matches!(scaling, Scaling::L2 | Scaling::L2Standard);
        let pooled = var.iter().sum::<f64>() / var.len().max(1) as f64;
        let prior = if matches!(scaling, Scaling::L2Standard) { std_prior.max(0.0) } else { 0.0 };
        let pooled = if pooled > 0.0 { pooled } else { 1.0 };
        let nf = n as f64;
        // Weight of a feature's own log-variance against the pooled one.
        let own = nf / (nf + prior);
        let eps = f64::EPSILON;
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                // Constant on the training rows up to rounding (scikit-learn's test): the
                // pooled scale, never a division by ~0.
                let floor = nf * eps * v + (nf * m.abs() * eps).powi(2);
                let constant = v.partial_cmp(&floor) != Some(std::cmp::Ordering::Greater);
                // The log-variance is shrunk towards the pooled one with `prior` pseudo-rows:
                // a few labels cannot blow a feature up, yet a feature whose variance is tiny
                // on the whole pool is standardised like any other. (Shrinking the variance
                // itself, additively, erased such features: MiniLM's dimension 319 varies by
                // one f16 step, ~4e-13 of the pooled variance, and marks nearly every `plot`
                // review of Rotten Tomatoes.)
                let s2 = if constant { pooled } else { (own * v.ln() + (1.0 - own) * pooled.ln()).exp() };
                s2.sqrt() as f32
            })
            .collect();
        Ok(Self::standard(l2, mean.iter().map(|&m| m as f32).collect(), scale))
    }

    /// The first layer with this normalisation folded in: `(l2(x) @ w' ) + b'`, where
    /// `l2(x)` is applied by the caller as a per-row factor after the matmul. `layer` reads the
    /// standardised features (the basis already undone: `unrotate`).
    fn fold(&self, layer: &Layer) -> Layer {
        let (d, o) = (layer.inputs, layer.outputs);
        let mut w = vec![0f32; d * o];
        let mut b: Vec<f64> = layer.b.iter().map(|&v| v as f64).collect();
        for j in 0..d {
            let inv = 1.0 / self.scale[j] as f64;
            let shift = self.mean[j] as f64 * inv;
            for k in 0..o {
                let wjk = layer.w[j * o + k] as f64;
                w[j * o + k] = (wjk * inv) as f32;
                b[k] -= shift * wjk;
            }
        }
        Layer { inputs: d, outputs: o, w, b: b.into_iter().map(|v| v as f32).collect() }
    }

    /// A first layer over `z @ basis` as the same layer over `z` (`basis @ w`); a copy when
    /// there is no basis.
    fn unrotate(&self, layer: &Layer) -> Layer {
        let Some(basis) = &self.basis else { return layer.clone() };
        let (d, o) = (layer.inputs, layer.outputs);
        let mut w = vec![0f64; d * o];
        for (i, out) in w.chunks_exact_mut(o).enumerate() {
            for (&bik, wk) in basis[i * d..(i + 1) * d].iter().zip(layer.w.chunks_exact(o)) {
                for (acc, &v) in out.iter_mut().zip(wk) {
                    *acc += bik as f64 * v as f64;
                }
            }
        }
        Layer { w: w.into_iter().map(|v| v as f32).collect(), ..layer.clone() }
    }

    /// `(l2(x) - mean) / scale`.
    fn standardise(&self, x: &Tensor) -> Tensor {
        let z = if self.l2 { l2_rows(x) } else { x.shallow_clone() };
        (z - Tensor::from_slice(&self.mean)) / Tensor::from_slice(&self.scale)
    }

    /// Normalised features as a tensor (training path; scoring uses the folded layer).
    fn apply(&self, x: &Tensor) -> Tensor {
        let z = self.standardise(x);
        match &self.basis {
            Some(basis) => {
                let d = self.mean.len() as i64;
                z.matmul(&Tensor::from_slice(basis).reshape([d, d]))
            }
            None => z,
        }
    }
}

/// Rows divided by their L2 norm and multiplied by sqrt(dim): unit RMS per feature, so the
/// regularisation strength means the same for 384-d and 1280-d embeddings.
fn l2_rows(x: &Tensor) -> Tensor {
    x * row_factor(x)
}

/// sqrt(dim) / ||row||, shape [n, 1] (an all-zero row keeps factor sqrt(dim) / 1e-12 * 0 = 0).
fn row_factor(x: &Tensor) -> Tensor {
    let d = x.size().last().copied().unwrap_or(1) as f64;
    // One fused reduction: no [n, d] temporary, which matters on the scoring hot path.
    let norm = x.norm_scalaropt_dim(2, [1i64], true).clamp_min(1e-12);
    norm.reciprocal() * d.sqrt()
}

/// A trained classification head.
#[derive(Clone, Debug)]
pub struct Head {
    kind: HeadKind,
    params: HeadParams,
    dim: usize,
    num_classes: usize,
    temperature: f64,
    norm: Normalizer,
    /// Layers in normalised feature space (what is saved).
    layers: Vec<Layer>,
    /// `layers[0]` with the normalisation folded in (what is computed).
    first: Layer,
    /// How `score` reads the f16 cache with these layers.
    fast: FastScorer,
}

/// How `Head::score` computes logits from the f16 cache, chosen once per head (with `first`):
/// the fused kernel for a linear head, the int8 first layer for a deeper one, torch in f32
/// where the CPU or the width rules those out.
#[derive(Clone, Debug)]
enum FastScorer {
    Linear(linear_f16::LinearF16),
    Int8(quantized::QuantizedFirstLayer),
    Torch,
}

/// `layers[0]` with `norm` folded in, and the scoring path for `layers`.
fn scoring_layers(norm: &Normalizer, layers: &[Layer], dim: usize, num_classes: usize) -> (Layer, FastScorer) {
    let plain = norm.unrotate(&layers[0]);
    let first = norm.fold(&plain);
    let fast = if layers.len() == 1 {
        linear_f16::LinearF16::new(&first.w, &first.b, dim, num_classes, norm.l2).map(FastScorer::Linear)
    } else {
        // Over the standardised features: `plain` no longer reads the prior's basis.
        quantized::QuantizedFirstLayer::new(&Normalizer { basis: None, ..norm.clone() }, &plain).map(FastScorer::Int8)
    };
    (first, fast.unwrap_or(FastScorer::Torch))
}

/// Rows of an f32 matrix per scoring chunk: big enough that per-call overhead vanishes, small
/// enough that the widened chunk (chunk x dim x 4 bytes) stays in cache-sized buffers.
const SCORE_CHUNK: usize = 1024;

/// Below this many `rows x dim` elements a fit runs on one torch thread: waking the pool costs
/// more than it saves on small matrices.
const SMALL_FIT: usize = 2_000_000;

/// Rows a pool's feature statistics are computed from (evenly spread over the pool): means and
/// variances of 384-1,280 features are settled long before, and a million-item pool costs the
/// same as a small one.
const POOL_STATS_ROWS: usize = 50_000;

impl Head {
    /// Trains on rows `x` `[n, d]` (f32, CPU) with labels in `0..num_classes`; optional
    /// per-sample weights (pseudo-labels) in (0, 1]. `stats`: feature statistics of the
    /// unlabelled pool (`Normalizer::fit_pool`); `None` normalises by the training rows.
    pub fn fit(
        params: &HeadParams,
        x: &Tensor,
        y: &[i64],
        num_classes: usize,
        sample_weight: Option<&[f32]>,
        stats: Option<&Normalizer>,
    ) -> anyhow::Result<Head> {
        let (n, d) = check_inputs(x, y, num_classes, sample_weight)?;
        let threads = if n * d <= SMALL_FIT { 1 } else { crate::ml::device::cores() };
        crate::ml::device::with_threads(threads, || {
            Self::fit_inner(params, x, y, num_classes, sample_weight, stats, None)
        })
    }

    fn fit_inner(
        params: &HeadParams,
        x: &Tensor,
        y: &[i64],
        num_classes: usize,
        sample_weight: Option<&[f32]>,
        stats: Option<&Normalizer>,
        init: Option<&Head>,
    ) -> anyhow::Result<Head> {
        let x = x.to_kind(Kind::Float).contiguous();
        let d = x.size2()?.1 as usize;
        let norm = match stats {
            Some(stats) if stats.mean.len() == d => stats.clone(),
            _ => Normalizer::fit(&x, params.scaling, params.std_prior)?,
        };
        let z = norm.apply(&x);
        let weights = sample_weights(y, num_classes, sample_weight, params.class_weighting);
        let layers = match params.kind {
            HeadKind::Logistic => {
                let init = init.map(|h| &h.layers[0]);
                vec![logistic::train(&z, y, num_classes, &weights, params, init)?]
            }
            HeadKind::Mlp => mlp::train(&z, y, num_classes, &weights, params)?,
        };
        Head::from_parts(params.clone(), d, num_classes, 1.0, norm, layers)
    }

    /// Like `fit`, then sets the temperature that minimises the NLL of out-of-fold logits
    /// (stratified k-fold on the same training labels, never test data). Needs at least two
    /// labels per class per fold (k >= 2); otherwise the temperature stays 1. Rows with a
    /// sample weight below 1 are trained on in every fold but not calibrated on.
    ///
    /// For the logistic head the same folds also choose the regularisation: each of
    /// `params.c_candidates` (when non-empty and n <= `params.c_search_max_rows`) is scored by
    /// its calibrated out-of-fold NLL (with `params.designed_labels`: sharpened by its
    /// temperature but never cooled, `calibration::selection_nll`), and the best one is kept
    /// (`params().c` says which).
    pub fn fit_calibrated(
        params: &HeadParams,
        x: &Tensor,
        y: &[i64],
        num_classes: usize,
        sample_weight: Option<&[f32]>,
        stats: Option<&Normalizer>,
    ) -> anyhow::Result<Head> {
        Ok(Self::fit_selected(params, x, y, num_classes, sample_weight, stats, &[None])?.head)
    }

    /// `fit_calibrated` over several training sets built from the same labelled rows: each
    /// entry of `augments` is either nothing (the labelled rows alone) or extra rows derived
    /// from them (pseudo-labels). Every variant is scored by the same folds, its extra rows
    /// rebuilt from each fold's training labels only, so a held-out label never reaches the
    /// rows it is scored against. Within a variant the C (and prior) with the lowest
    /// out-of-fold NLL (as `fit_calibrated` scores it) is kept; across variants the first
    /// stays unless a later one has a lower NLL and no fewer held-out labels right
    /// (`choose_variant`). Without folds (too few labels) the first variant is used,
    /// uncalibrated, and nothing is compared.
    pub fn fit_selected(
        params: &HeadParams,
        x: &Tensor,
        y: &[i64],
        num_classes: usize,
        sample_weight: Option<&[f32]>,
        stats: Option<&Normalizer>,
        augments: &[Option<&Augment>],
    ) -> anyhow::Result<Selected> {
        let (n, d) = check_inputs(x, y, num_classes, sample_weight)?;
        ensure!(!augments.is_empty(), "no training set to fit");
        let x = x.to_kind(Kind::Float).contiguous();
        let everything: Vec<usize> = (0..n).collect();
        let folds = stratified_folds(y, num_classes, params.calibration_folds, params.seed);
        // Each variant's extra rows for the full fit and for every fold, built once and
        // shared by every C tried. Without folds only the first variant is fitted.
        let compared = if folds.is_some() { augments.len() } else { 1 };
        let mut extras: Vec<(Option<Extra>, Vec<Option<Extra>>)> = Vec::with_capacity(compared);
        for augment in &augments[..compared] {
            let Some(augment) = augment else {
                extras.push((None, Vec::new()));
                continue;
            };
            let full = augment(&everything)?;
            let per_fold = match &folds {
                Some(folds) => folds.iter().map(|held| augment(&complement(n, held))).collect::<anyhow::Result<_>>()?,
                None => Vec::new(),
            };
            extras.push((full, per_fold));
        }
        let most_rows = n + extras.iter().filter_map(|(full, _)| full.as_ref()).map(|e| e.y.len()).max().unwrap_or(0);
        let threads = if most_rows * d <= SMALL_FIT { 1 } else { crate::ml::device::cores() };
        crate::ml::device::with_threads(threads, || {
            let Some(folds) = folds else {
                let (xa, ya, wa) = with_extra(&x, y, sample_weight, extras[0].0.as_ref());
                let head = Self::fit_inner(params, &xa, &ya, num_classes, wa.as_deref(), stats, None)?;
                return Ok(Selected { head, variant: 0, compared: false });
            };
            let search = params.searches_c(n);
            let candidates: Vec<f64> = if search { params.c_candidates.clone() } else { vec![params.c] };
            // With the pool-covariance prior on, the same search also tries each C without it
            // and keeps whichever predicts held-out labels better: the prior helps text at a
            // few dozen labels but costs images points from about 100 labels on, and which
            // kind of data a project holds is what the folds can tell. Plain first: on a tie
            // it stays.
            let plain = stats.filter(|s| search && s.basis.is_some()).map(|s| Normalizer { basis: None, ..s.clone() });
            let priors: Vec<Option<&Normalizer>> = match &plain {
                Some(plain) => vec![Some(plain), stats],
                None => vec![stats],
            };
            // The best (C, prior) of each variant: its out-of-fold NLL, head and labels right.
            let mut best: Vec<Option<(f64, Head, usize)>> = (0..extras.len()).map(|_| None).collect();
            for (variant, (full_extra, fold_extras)) in extras.iter().enumerate() {
                let (xa, ya, wa) = with_extra(&x, y, sample_weight, full_extra.as_ref());
                let fold_extras = full_extra.as_ref().map(|_| fold_extras.as_slice());
                for (stats, c) in priors.iter().flat_map(|&s| candidates.iter().map(move |&c| (s, c))) {
                    let p = HeadParams { c, ..params.clone() };
                    let mut head = Self::fit_inner(&p, &xa, &ya, num_classes, wa.as_deref(), stats, None)?;
                    let Some((logits, rows)) =
                        out_of_fold(&p, &x, y, sample_weight, stats, &folds, fold_extras, &head)?
                    else {
                        return Ok(Selected { head, variant, compared: false });
                    };
                    let yy: Vec<i64> = rows.iter().map(|&i| y[i]).collect();
                    let t = Tensor::from_slice(&logits).reshape([rows.len() as i64, num_classes as i64]);
                    head.temperature = crate::ml::calibration::fit_temperature(&t, &yy);
                    let score = if params.designed_labels {
                        crate::ml::calibration::selection_nll(&logits, &yy, num_classes, head.temperature)
                    } else {
                        crate::ml::calibration::nll(&logits, &yy, num_classes, head.temperature)
                    };
                    tracing::debug!(variant, c, score, temperature = head.temperature, "out-of-fold NLL");
                    // Strictly better only: on ties the earlier (stronger-regularised) C stays.
                    if best[variant].as_ref().is_none_or(|(s, _, _)| score < *s - 1e-9) {
                        let predicted = crate::ml::metrics::argmax_rows(&logits, num_classes);
                        let right = predicted.iter().zip(&yy).filter(|(p, t)| p == t).count();
                        best[variant] = Some((score, head, right));
                    }
                }
            }
            let chosen = choose_variant(&best);
            let compared = extras.len() > 1;
            match best.into_iter().nth(chosen).flatten() {
                Some((_, head, _)) => Ok(Selected { head, variant: chosen, compared }),
                None => {
                    let (xa, ya, wa) = with_extra(&x, y, sample_weight, extras[0].0.as_ref());
                    let head = Self::fit_inner(params, &xa, &ya, num_classes, wa.as_deref(), stats, None)?;
                    Ok(Selected { head, variant: 0, compared: false })
                }
            }
        })
    }

    /// Rebuilds a head from its saved parts (validated).
    pub fn from_parts(
        params: HeadParams,
        dim: usize,
        num_classes: usize,
        temperature: f64,
        norm: Normalizer,
        layers: Vec<Layer>,
    ) -> anyhow::Result<Head> {
        ensure!(num_classes >= 1, "a head needs at least one class");
        ensure!(temperature.is_finite() && temperature > 0.0, "temperature {temperature} must be positive");
        ensure!(norm.mean.len() == dim && norm.scale.len() == dim, "normalisation stats are not {dim} wide");
        let expected_layers = match params.kind {
            HeadKind::Logistic => 1,
            HeadKind::Mlp => 2,
        };
        ensure!(
            layers.len() == expected_layers,
            "{:?} head needs {expected_layers} layers, got {}",
            params.kind,
            layers.len()
        );
        let mut inputs = dim;
        for (i, l) in layers.iter().enumerate() {
            ensure!(l.inputs == inputs, "layer {i} takes {} inputs, expected {inputs}", l.inputs);
            ensure!(
                l.w.len() == l.inputs * l.outputs && l.b.len() == l.outputs,
                "layer {i} has {} weights and {} biases for shape {}x{}",
                l.w.len(),
                l.b.len(),
                l.inputs,
                l.outputs
            );
            inputs = l.outputs;
        }
        ensure!(inputs == num_classes, "last layer has {inputs} outputs, expected {num_classes} classes");
        let (first, fast) = scoring_layers(&norm, &layers, dim, num_classes);
        Ok(Head { kind: params.kind, params, dim, num_classes, temperature, norm, layers, first, fast })
    }

    pub fn kind(&self) -> HeadKind {
        self.kind
    }

    pub fn params(&self) -> &HeadParams {
        &self.params
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    pub fn set_temperature(&mut self, t: f64) {
        if t.is_finite() && t > 0.0 {
            self.temperature = t;
        }
    }

    /// Multiplies every later calibrated probability of class `c` by `rates[c]` (then
    /// renormalises): the last layer's bias of `c` moves by `T ln rates[c]`. A rate of 0 (a
    /// class nobody labelled) becomes a shift that leaves the class practically no mass.
    pub fn reweight_classes(&mut self, rates: &[f64]) {
        if rates.len() != self.num_classes || rates.iter().any(|r| !r.is_finite() || *r < 0.0) {
            return;
        }
        let t = self.temperature;
        if let Some(last) = self.layers.last_mut() {
            for (b, &r) in last.b.iter_mut().zip(rates) {
                *b += (t * r.max(1e-12).ln()) as f32;
            }
        }
        (self.first, self.fast) = scoring_layers(&self.norm, &self.layers, self.dim, self.num_classes);
    }

    /// Raw rows `[n, d]` in the feature space the first layer reads (normalisation applied).
    pub fn normalized(&self, x: &Tensor) -> Tensor {
        self.norm.apply(&x.to_kind(Kind::Float))
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.norm
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The layers over the standardised features, without the prior's basis (what is saved:
    /// a head rebuilt from them and `Normalizer::standard` scores bit for bit the same).
    pub fn plain_layers(&self) -> Vec<Layer> {
        let mut layers = self.layers.clone();
        if let Some(first) = layers.first_mut() {
            *first = self.norm.unrotate(first);
        }
        layers
    }

    /// Uncalibrated logits `[n, C]` for raw rows `x` `[n, d]`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let x = x.to_kind(Kind::Float);
        let (w, b) = self.first.tensors();
        let mut z = x.matmul(&w);
        if self.norm.l2 {
            z *= row_factor(&x);
        }
        z += b;
        self.later_layers(z)
    }

    /// The layers after the first, applied to its pre-activations `z`: the logits.
    fn later_layers(&self, mut z: Tensor) -> Tensor {
        for layer in &self.layers[1..] {
            let (w, b) = layer.tensors();
            z = z.gelu("none").matmul(&w) + b;
        }
        z
    }

    /// Calibrated probabilities `softmax(logits / T)`, `[n, C]`.
    pub fn predict_proba(&self, x: &Tensor) -> Tensor {
        (self.logits(x) / self.temperature).softmax(1, Kind::Float)
    }

    /// Calibrated probabilities for `rows` (None = all) of an f16 embedding matrix, as a flat
    /// row-major `[rows x C]` Vec. Chunks are widened to f32 one at a time per thread, so
    /// memory stays at a few chunk buffers whatever the pool size.
    pub fn score(&self, emb: &Embeddings, rows: Option<&[usize]>) -> Vec<f32> {
        let n = rows.map_or(emb.len(), <[usize]>::len);
        let c = self.num_classes;
        let mut out = vec![0f32; n * c];
        if n == 0 || emb.dim() != self.dim {
            if emb.dim() != self.dim {
                tracing::error!(emb = emb.dim(), head = self.dim, "embedding width differs from the head's");
                out.iter_mut().for_each(|p| *p = 1.0 / c as f32);
            }
            return out;
        }
        let threads = crate::ml::device::cores().max(1) as usize;
        let chunk = SCORE_CHUNK;
        // One rayon task per chunk (and one torch thread per task): the two cores each widen
        // and multiply their own chunks, which beats one thread feeding a 2-thread matmul.
        let work = |(ci, out_chunk): (usize, &mut [f32])| {
            let start = ci * chunk;
            let len = out_chunk.len() / c;
            let row = |i: usize| match rows {
                None => emb.row_f16(start + i),
                Some(rows) => emb.row_f16(rows[start + i]),
            };
            match &self.fast {
                FastScorer::Linear(kernel) => {
                    kernel.logits(len, &row, out_chunk);
                    linear_f16::softmax_rows(out_chunk, c, self.temperature);
                    return;
                }
                FastScorer::Int8(quantized) => match quantized.pre_activations(len, &row) {
                    Ok(z) => {
                        let p = (self.later_layers(z) / self.temperature).softmax(1, Kind::Float);
                        p.copy_data(out_chunk, len * c);
                        return;
                    }
                    Err(e) => tracing::warn!("int8 first layer failed, scoring in f32: {e:#}"),
                },
                FastScorer::Torch => {}
            }
            // The chunk goes to torch still in f16 (half the copy) and is widened there by a
            // vectorised kernel: bit-identical to widening in Rust, and faster.
            let x16 = match rows {
                None => Tensor::from_slice(&emb.as_f16()[start * self.dim..(start + len) * self.dim]),
                Some(rows) => {
                    let mut buf = Vec::with_capacity(len * self.dim);
                    for &r in &rows[start..start + len] {
                        buf.extend_from_slice(emb.row_f16(r));
                    }
                    Tensor::from_slice(&buf)
                }
            };
            let x = x16.to_kind(Kind::Float).reshape([len as i64, self.dim as i64]);
            let p = self.predict_proba(&x);
            p.copy_data(out_chunk, len * c);
        };
        if threads > 1 && n > chunk {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            match pool {
                Ok(pool) => pool.install(|| {
                    out.par_chunks_mut(chunk * c)
                        .enumerate()
                        .for_each(|job| crate::ml::device::with_threads(1, || work(job)))
                }),
                Err(_) => out.chunks_mut(chunk * c).enumerate().for_each(work),
            }
        } else {
            crate::ml::device::with_threads(1, || out.chunks_mut(chunk * c).enumerate().for_each(work));
        }
        out
    }
}

/// The variant `fit_selected` keeps: the first, unless a later one has a lower out-of-fold
/// NLL and at least as many held-out labels right (among those, the lowest NLL). The NLL
/// alone is not enough: with a few dozen labels pseudo-labels can sharpen the right answers'
/// probabilities while turning others wrong, and on 20 Newsgroups by topic the lowest NLL
/// alone kept spreading at 20-78 labels where it cost 1-2 points.
fn choose_variant(best: &[Option<(f64, Head, usize)>]) -> usize {
    let Some(&(base_score, _, base_right)) = best.first().and_then(Option::as_ref) else {
        return 0;
    };
    let mut chosen = (0, base_score);
    for (variant, entry) in best.iter().enumerate().skip(1) {
        if let Some(&(score, _, right)) = entry.as_ref() {
            if score < chosen.1 - 1e-9 && right >= base_right {
                chosen = (variant, score);
            }
        }
    }
    chosen.0
}

/// What `Head::fit_selected` fitted: the head, the index of its training set among those
/// offered, and whether held-out labels chose it (false without folds or with one set).
pub struct Selected {
    pub head: Head,
    pub variant: usize,
    pub compared: bool,
}

/// Extra training rows a fit adds to its labelled rows (pseudo-labels): features `[m, d]`,
/// classes and weights in (0, 1].
pub struct Extra {
    pub x: Tensor,
    pub y: Vec<i64>,
    pub weight: Vec<f32>,
}

/// Builds the extra rows from some of the labelled rows (their indices); `None` for none.
/// `Head::fit_selected` calls it with every labelled row for the final fit and with each
/// fold's training rows for that fold.
pub type Augment<'a> = dyn Fn(&[usize]) -> anyhow::Result<Option<Extra>> + 'a;

/// `0..n` without `held` (sorted).
fn complement(n: usize, held: &[usize]) -> Vec<usize> {
    let mut is_held = vec![false; n];
    for &i in held {
        is_held[i] = true;
    }
    (0..n).filter(|&i| !is_held[i]).collect()
}

/// Rows `x`, labels `y` and weights with `extra`'s rows appended (weights 1 for the rows
/// without one).
fn with_extra(
    x: &Tensor,
    y: &[i64],
    sample_weight: Option<&[f32]>,
    extra: Option<&Extra>,
) -> (Tensor, Vec<i64>, Option<Vec<f32>>) {
    match extra {
        None => (x.shallow_clone(), y.to_vec(), sample_weight.map(<[f32]>::to_vec)),
        Some(e) => {
            let xa = Tensor::cat(&[x, &e.x.to_kind(Kind::Float)], 0);
            let ya = y.iter().chain(&e.y).copied().collect();
            let own = (0..y.len()).map(|i| sample_weight.map_or(1.0, |w| w[i]));
            (xa, ya, Some(own.chain(e.weight.iter().copied()).collect()))
        }
    }
}

/// Out-of-fold logits of the human-labelled rows (weight >= 1), flat `[rows x C]`, and those
/// rows; None when no fold held out a human label. `full` is the fit on all rows: each fold
/// starts from it and has its number of classes. `fold_extras`: each fold's extra rows, built
/// from its training rows only.
#[allow(clippy::too_many_arguments)]
fn out_of_fold(
    params: &HeadParams,
    x: &Tensor,
    y: &[i64],
    sample_weight: Option<&[f32]>,
    stats: Option<&Normalizer>,
    folds: &[Vec<usize>],
    fold_extras: Option<&[Option<Extra>]>,
    full: &Head,
) -> anyhow::Result<Option<(Vec<f32>, Vec<usize>)>> {
    let num_classes = full.num_classes;
    let n = y.len();
    let mut oof = vec![0f32; n * num_classes];
    let mut have = vec![false; n];
    for (k, held) in folds.iter().enumerate() {
        let train = complement(n, held);
        let idx = Tensor::from_slice(&train.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let yt: Vec<i64> = train.iter().map(|&i| y[i]).collect();
        let wt: Option<Vec<f32>> = sample_weight.map(|w| train.iter().map(|&i| w[i]).collect());
        let extra = fold_extras.and_then(|e| e.get(k)).and_then(Option::as_ref);
        let (xt, yt, wt) = with_extra(&x.index_select(0, &idx), &yt, wt.as_deref(), extra);
        // Warm start from the full fit: the fold optimum is close, so L-BFGS needs a fraction
        // of the iterations.
        let fold_head = Head::fit_inner(params, &xt, &yt, num_classes, wt.as_deref(), stats, Some(full))?;
        let calib: Vec<usize> = held.iter().copied().filter(|&i| sample_weight.is_none_or(|w| w[i] >= 1.0)).collect();
        if calib.is_empty() {
            continue;
        }
        let hidx = Tensor::from_slice(&calib.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let logits: Vec<f32> = Vec::try_from(fold_head.logits(&x.index_select(0, &hidx)).flatten(0, -1))?;
        for (r, &i) in calib.iter().enumerate() {
            oof[i * num_classes..(i + 1) * num_classes]
                .copy_from_slice(&logits[r * num_classes..(r + 1) * num_classes]);
            have[i] = true;
        }
    }
    let rows: Vec<usize> = (0..n).filter(|&i| have[i]).collect();
    if rows.len() < 2 {
        return Ok(None);
    }
    let flat = rows.iter().flat_map(|&i| oof[i * num_classes..(i + 1) * num_classes].iter().copied()).collect();
    Ok(Some((flat, rows)))
}

fn check_inputs(
    x: &Tensor,
    y: &[i64],
    num_classes: usize,
    sample_weight: Option<&[f32]>,
) -> anyhow::Result<(usize, usize)> {
    let (n, d) = x.size2().context("features must be a 2-D tensor [rows, dim]")?;
    let (n, d) = (n as usize, d as usize);
    ensure!(n == y.len(), "{n} feature rows but {} labels", y.len());
    ensure!(n > 0, "no training rows");
    ensure!(d > 0, "zero-width features");
    ensure!(num_classes >= 2, "need at least 2 classes, got {num_classes}");
    if let Some(&bad) = y.iter().find(|&&v| v < 0 || v as usize >= num_classes) {
        bail!("label {bad} is outside 0..{num_classes}");
    }
    if let Some(w) = sample_weight {
        ensure!(w.len() == n, "{} sample weights for {n} rows", w.len());
        ensure!(w.iter().all(|&v| v.is_finite() && v >= 0.0), "sample weights must be finite and >= 0");
    }
    Ok((n, d))
}

/// Up to this many (weighted) training rows class weights are fully balanced; beyond, the
/// balancing exponent decays as `BALANCE_FULL_ROWS / n`. Small labelled sets keep what balancing
/// gives them (RT 3-class: +2 points of accuracy and +10 of macro-F1 at 100-200 labels) and a
/// large one trains almost unweighted, as plain scikit-learn does (the balanced ceiling was
/// 0.4 points lower in accuracy, equal in macro-F1). Smooth schedules such as `n0 / (n0 + n)`
/// cost up to 1.6 points of macro-F1 at 100-500 labels; this step costs nothing there.
const BALANCE_FULL_ROWS: f64 = 500.0;

/// Per-row training weights: sample weight x class weight `(n / (k n_c))^γ` (k = classes
/// present, γ = min(1, 500 / n), n = the weighted row count), normalised to mean 1.
pub(crate) fn sample_weights(y: &[i64], num_classes: usize, sw: Option<&[f32]>, balanced: bool) -> Vec<f64> {
    let base: Vec<f64> = (0..y.len()).map(|i| sw.map_or(1.0, |w| w[i] as f64)).collect();
    let mut w = base.clone();
    if balanced {
        let mut mass = vec![0f64; num_classes];
        for (&c, &b) in y.iter().zip(&base) {
            mass[c as usize] += b;
        }
        let total: f64 = mass.iter().sum();
        let present = mass.iter().filter(|&&m| m > 0.0).count().max(1) as f64;
        let gamma = if total > 0.0 { (BALANCE_FULL_ROWS / total).min(1.0) } else { 1.0 };
        for (wi, &c) in w.iter_mut().zip(y) {
            let m = mass[c as usize];
            if m > 0.0 {
                *wi *= (total / (present * m)).powf(gamma);
            }
        }
    }
    let mean = w.iter().sum::<f64>() / w.len().max(1) as f64;
    if mean > 0.0 {
        w.iter_mut().for_each(|v| *v /= mean);
    }
    w
}

/// Stratified folds for calibration: k = min(max_folds, min class count / 2) over the classes
/// present, None when k < 2 (too few labels to hold any out).
pub(crate) fn stratified_folds(y: &[i64], num_classes: usize, max_folds: usize, seed: u64) -> Option<Vec<Vec<usize>>> {
    let mut by_class = vec![Vec::new(); num_classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    let present: Vec<&Vec<usize>> = by_class.iter().filter(|v| !v.is_empty()).collect();
    if present.len() < 2 {
        return None;
    }
    let min = present.iter().map(|v| v.len()).min().unwrap_or(0);
    let k = max_folds.min(min / 2);
    if k < 2 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ca11);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0usize;
    for mut members in by_class.into_iter().filter(|v| !v.is_empty()) {
        members.shuffle(&mut rng);
        for i in members {
            folds[next % k].push(i);
            next += 1;
        }
    }
    Some(folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_equalise_class_mass() {
        let y = [0, 0, 0, 1];
        let w = sample_weights(&y, 2, None, true);
        let m0: f64 = w[..3].iter().sum();
        assert!((m0 - w[3]).abs() < 1e-12);
        assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn a_feature_with_a_tiny_variance_is_standardised_and_a_constant_one_keeps_the_pooled_scale() {
        // The class is the sign of a feature that varies by ~6e-8 (one f16 step), the rest is
        // noise: scikit-learn's standardisation finds it; shrinking variances additively did not.
        tch::manual_seed(5);
        let n = 2000;
        let noise = Tensor::randn([n, 15], (Kind::Float, tch::Device::Cpu));
        let y: Vec<i64> = (0..n).map(|i| i % 2).collect();
        let tiny: Vec<f32> = y.iter().map(|&c| if c == 1 { 6e-8 } else { -6e-8 }).collect();
        let tiny = Tensor::from_slice(&tiny).reshape([n, 1]);
        let constant = Tensor::full([n, 1], 0.25, (Kind::Float, tch::Device::Cpu));
        let x = Tensor::cat(&[noise, tiny, constant], 1);
        let params = HeadParams::for_kind(HeadKind::Logistic);
        let norm = Normalizer::fit(&x, params.scaling, params.std_prior).unwrap();
        assert!(norm.scale[15] < 1e-5, "the tiny feature keeps its own scale: {}", norm.scale[15]);
        // Without the L2 step the last column is exactly constant: the pooled scale, not ~0.
        let plain = Normalizer::fit(&x, Scaling::Standard, 0.0).unwrap();
        assert!(plain.scale[16] > 0.5, "{:?}", plain.scale);
        let head = Head::fit(&params, &x, &y, 2, None, None).unwrap();
        let probs: Vec<f32> = Vec::try_from(head.predict_proba(&x).flatten(0, -1)).unwrap();
        let right = (0..n as usize).filter(|&i| (probs[2 * i + 1] > 0.5) == (y[i] == 1)).count();
        assert!(right as f64 > 0.95 * n as f64, "{right} of {n}");
    }

    #[test]
    fn class_weights_fade_beyond_five_hundred_rows() {
        // 900 + 100 rows: γ = 500 / 1000, so the minority weighs (9)^0.5 = 3 times the majority.
        let y: Vec<i64> = (0..1000).map(|i| i64::from(i >= 900)).collect();
        let w = sample_weights(&y, 2, None, true);
        assert!((w[999] / w[0] - 3.0).abs() < 1e-9, "{} {}", w[0], w[999]);
        assert!((w.iter().sum::<f64>() / 1000.0 - 1.0).abs() < 1e-12);
        // 450 + 50 rows: fully balanced (ratio 9).
        let y: Vec<i64> = (0..500).map(|i| i64::from(i >= 450)).collect();
        let w = sample_weights(&y, 2, None, true);
        assert!((w[499] / w[0] - 9.0).abs() < 1e-9);
    }

    #[test]
    fn folds_are_stratified_and_cover_everything() {
        let y: Vec<i64> = (0..40).map(|i| i64::from(i % 4 == 0)).collect();
        let folds = stratified_folds(&y, 2, 5, 1).unwrap();
        assert_eq!(folds.len(), 5);
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..40).collect::<Vec<_>>());
        for f in &folds {
            assert_eq!(f.iter().filter(|&&i| y[i] == 1).count(), 2);
        }
        assert!(stratified_folds(&[0, 0, 1], 2, 5, 1).is_none());
    }

    #[test]
    fn folding_matches_explicit_normalisation() {
        tch::manual_seed(3);
        let x = Tensor::rand([20, 6], (Kind::Float, tch::Device::Cpu));
        let y: Vec<i64> = (0..20).map(|i| i % 3).collect();
        let head = Head::fit(&HeadParams::default(), &x, &y, 3, None, None).unwrap();
        let (w, b) = head.layers[0].tensors();
        let explicit = head.norm.apply(&x).matmul(&w) + b;
        let diff = (explicit - head.logits(&x)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn pool_statistics_match_a_one_pass_fit_across_chunks() {
        // 9,000 rows: three chunks of the streaming pass. Feature 0 sits at a large offset
        // with a tiny spread, where a sum-of-squares variance would cancel to noise.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut emb = Embeddings::new(5);
        for _ in 0..9000 {
            let mut row: Vec<f32> = (0..5).map(|_| rand::Rng::random_range(&mut rng, -1.0f32..1.0)).collect();
            row[0] = 40.0 + 0.01 * row[0];
            emb.push(&row);
        }
        let rows: Vec<usize> = (0..emb.len()).collect();
        let whole = Normalizer::fit(&emb.gather(&rows), Scaling::L2Standard, 10.0).unwrap();
        let params = HeadParams { covariance_prior: 0.0, ..HeadParams::default() };
        let pooled = Normalizer::fit_pool(&emb, &rows, &params).unwrap();
        for j in 0..5 {
            assert!((whole.mean[j] - pooled.mean[j]).abs() < 1e-5, "mean {j}: {} {}", whole.mean[j], pooled.mean[j]);
            // f32 rows round feature 0 to ~1e-3 of its spread, differently per pass.
            let rel = (whole.scale[j] / pooled.scale[j] - 1.0).abs();
            assert!(rel < 1e-3, "scale {j}: {} {}", whole.scale[j], pooled.scale[j]);
        }
        // A head given the pool's statistics normalises with them, not with its training rows.
        let train = [0usize, 1, 2, 3, 4, 5];
        let head = Head::fit(&HeadParams::default(), &emb.gather(&train), &[0, 1, 0, 1, 0, 1], 2, None, Some(&pooled))
            .unwrap();
        assert_eq!(head.normalizer(), &pooled);
    }

    /// A pool whose two features share one large component `a` (the principal axis (1, 1))
    /// and differ by a small one; ten labels follow `a` plus noise. Returns the pool, all its
    /// rows, and the ten labelled rows with their labels.
    fn correlated_pool() -> (Embeddings, Vec<usize>, Tensor, Vec<i64>) {
        let (emb, labels) = correlated_rows();
        let all: Vec<usize> = (0..emb.len()).collect();
        let x = emb.gather(&all[..10]);
        (emb, all, x, labels[..10].to_vec())
    }

    /// `correlated_pool`'s 2,000 rows and the labels of every one.
    fn correlated_rows() -> (Embeddings, Vec<i64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut emb = Embeddings::new(2);
        let mut labels = Vec::new();
        for _ in 0..2000 {
            let a: f32 = rand::Rng::random_range(&mut rng, -1.0f32..1.0);
            let e: f32 = rand::Rng::random_range(&mut rng, -0.15f32..0.15);
            let noise: f32 = rand::Rng::random_range(&mut rng, -0.3f32..0.3);
            emb.push(&[a + e, a - e]);
            labels.push(i64::from(a + 4.0 * e + noise > 0.0));
        }
        (emb, labels)
    }

    #[test]
    fn the_covariance_prior_leans_on_the_pools_principal_axis_and_saves_as_a_plain_head() {
        let (emb, all, x, y) = correlated_pool();
        // Standardised-space weights of a head, and their cosine with the principal axis.
        let alignment = |beta: f64| {
            let params =
                HeadParams { scaling: Scaling::Standard, c: 0.1, covariance_prior: beta, ..HeadParams::default() };
            let norm = Normalizer::fit_pool(&emb, &all, &params).unwrap();
            assert_eq!(norm.basis.is_some(), beta > 0.0);
            let head = Head::fit(&params, &x, &y, 2, None, Some(&norm)).unwrap();
            let w = &head.plain_layers()[0].w; // [2 inputs, 2 classes]
            let (w0, w1) = (w[1] - w[0], w[3] - w[2]);
            ((w0 + w1) / (2f32.sqrt() * (w0 * w0 + w1 * w1).sqrt()), head)
        };
        let (plain, _) = alignment(0.0);
        let (leaning, head) = alignment(1.0);
        assert!(leaning > plain + 0.02, "cosine with the principal axis: {leaning} (beta 1) vs {plain} (plain L2)");
        // Saved form: the first layer mapped back, the standardisation alone; same logits.
        let norm = head.normalizer();
        let rebuilt = Head::from_parts(
            head.params().clone(),
            2,
            2,
            head.temperature(),
            Normalizer::standard(norm.l2, norm.mean.clone(), norm.scale.clone()),
            head.plain_layers(),
        )
        .unwrap();
        let pool = emb.gather(&all);
        assert!(head.logits(&pool).equal(&rebuilt.logits(&pool)), "a saved head scores bit for bit the same");
        // The normalised features are the rotated ones (what BAIT's design rows are made of).
        let z = head.normalized(&x);
        let plain_z = rebuilt.normalized(&x);
        let basis = Tensor::from_slice(norm.basis.as_deref().unwrap()).reshape([2, 2]);
        assert!((z - plain_z.matmul(&basis)).abs().max().double_value(&[]) < 1e-5);
    }

    /// A pool of `dim` features mixed from 40 latent factors whose variances decay as
    /// `1 / k` (text-like: a few broad directions, many narrow ones), plus a little noise per
    /// feature. Labels follow the broadest factor (`along_broad`) or a narrow one.
    fn latent_pool(along_broad: bool) -> (Embeddings, Vec<i64>) {
        let (dim, narrow) = (100, 30);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let factors = 40;
        let mixing: Vec<f32> = (0..factors * dim).map(|_| rand::Rng::random_range(&mut rng, -1.0f32..1.0)).collect();
        let mut emb = Embeddings::new(dim);
        let mut labels = Vec::new();
        for _ in 0..3000 {
            let f: Vec<f32> = (0..factors)
                .map(|k| rand::Rng::random_range(&mut rng, -1.0f32..1.0) / ((k + 1) as f32).sqrt())
                .collect();
            let x: Vec<f32> = (0..dim)
                .map(|j| {
                    let mixed: f32 = (0..factors).map(|k| f[k] * mixing[k * dim + j]).sum();
                    mixed + rand::Rng::random_range(&mut rng, -0.05f32..0.05)
                })
                .collect();
            emb.push(&x);
            let signal = if along_broad { f[0] } else { f[narrow] * ((narrow + 1) as f32).sqrt() };
            let noise: f32 = rand::Rng::random_range(&mut rng, -0.2f32..0.2);
            labels.push(i64::from(signal + noise > 0.0));
        }
        (emb, labels)
    }

    #[test]
    fn cross_validation_keeps_the_covariance_prior_only_where_it_fits_the_labels() {
        let (broad, narrow) = (latent_pool(true), latent_pool(false));
        // Held-out accuracy of a calibrated fit on `n` labels, and whether it kept the prior.
        let fit = |along_broad: bool, n: usize, params: HeadParams| {
            let (emb, y) = if along_broad { &broad } else { &narrow };
            let norm = Normalizer::fit_pool(emb, &(0..3000).collect::<Vec<_>>(), &params).unwrap();
            let train: Vec<usize> = (0..n).collect();
            let head = Head::fit_calibrated(&params, &emb.gather(&train), &y[..n], 2, None, Some(&norm)).unwrap();
            let test: Vec<usize> = (1000..3000).collect();
            let predicted: Vec<i64> = Vec::try_from(&head.predict_proba(&emb.gather(&test)).argmax(1, false)).unwrap();
            (crate::ml::metrics::evaluate(&y[1000..3000], &predicted, 2).accuracy, head.normalizer().basis.is_some())
        };
        let plain = HeadParams::default();
        let prior = HeadParams { covariance_prior: 1.0, ..HeadParams::default() };
        // Without a C search there is nothing to compare with: the prior is used as set.
        let forced = HeadParams { c_candidates: Vec::new(), c: 0.1, ..prior.clone() };
        // Labels along the broadest factor, 20 of them: the prior helps and is kept.
        let (base, _) = fit(true, 20, plain.clone());
        let (chosen, kept) = fit(true, 20, prior.clone());
        assert!(kept && chosen > base + 0.015, "broad labels: {chosen} (prior kept: {kept}) vs plain {base}");
        // Labels along a narrow factor: the prior costs a lot when forced, and is dropped.
        let (base, _) = fit(false, 40, plain);
        let (with_prior, used) = fit(false, 40, forced);
        assert!(used && with_prior < base - 0.05, "narrow labels, prior forced: {with_prior} vs plain {base}");
        let (chosen, kept) = fit(false, 40, prior);
        assert!(!kept && (chosen - base).abs() < 1e-9, "narrow labels: {chosen} (prior kept: {kept}) vs plain {base}");
    }

    #[test]
    fn with_beta_zero_the_basis_is_a_rotation_and_changes_nothing() {
        let (emb, all, x, y) = correlated_pool();
        let params = HeadParams { scaling: Scaling::Standard, c: 0.1, covariance_prior: 1e-9, ..HeadParams::default() };
        let rotated = Normalizer::fit_pool(&emb, &all, &params).unwrap();
        let plain = Normalizer { basis: None, ..rotated.clone() };
        let a = Head::fit(&params, &x, &y, 2, None, Some(&rotated)).unwrap();
        let b = Head::fit(&params, &x, &y, 2, None, Some(&plain)).unwrap();
        let pool = emb.gather(&all);
        let diff = (a.predict_proba(&pool) - b.predict_proba(&pool)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "L2 is rotation-invariant: {diff}");
    }

    #[test]
    fn each_fold_builds_its_extra_rows_from_its_own_training_labels() {
        let (emb, labels) = correlated_rows();
        let all: Vec<usize> = (0..emb.len()).collect();
        let x = emb.gather(&all[..60]);
        let y = &labels[..60];
        let calls = std::cell::RefCell::new(Vec::<Vec<usize>>::new());
        // Extra rows: a copy of every labelled row it was given, at half weight.
        let copy = |subset: &[usize]| -> anyhow::Result<Option<Extra>> {
            calls.borrow_mut().push(subset.to_vec());
            let idx = Tensor::from_slice(&subset.iter().map(|&i| i as i64).collect::<Vec<_>>());
            Ok(Some(Extra {
                x: x.index_select(0, &idx),
                y: subset.iter().map(|&i| y[i]).collect(),
                weight: vec![0.5; subset.len()],
            }))
        };
        let params = HeadParams { calibration_folds: 3, ..HeadParams::default() };
        let variant = Head::fit_selected(&params, &x, y, 2, None, None, &[Some(&copy)]).unwrap().variant;
        assert_eq!(variant, 0);
        let calls = calls.into_inner();
        assert_eq!(calls.len(), 4, "the full fit and three folds");
        assert_eq!(calls[0], (0..60).collect::<Vec<_>>(), "the full fit sees every label");
        // What each fold held out: disjoint, and together every labelled row.
        let mut held: Vec<usize> =
            calls[1..].iter().flat_map(|fold| (0..60).filter(move |i| !fold.contains(i))).collect();
        held.sort_unstable();
        assert_eq!(held, (0..60).collect::<Vec<_>>());
    }

    #[test]
    fn the_selection_keeps_extra_rows_that_help_and_drops_ones_that_hurt() {
        let (emb, labels) = correlated_rows();
        let all: Vec<usize> = (0..emb.len()).collect();
        let x = emb.gather(&all[..40]);
        let y = &labels[..40];
        let more = emb.gather(&all[40..1040]);
        // True labels for a thousand unlabelled rows, then the same rows with flipped labels.
        let extra = |flip: bool| {
            let (more, classes) = (more.shallow_clone(), labels[40..1040].to_vec());
            move |_: &[usize]| -> anyhow::Result<Option<Extra>> {
                Ok(Some(Extra {
                    x: more.shallow_clone(),
                    y: classes.iter().map(|&c| if flip { 1 - c } else { c }).collect(),
                    weight: vec![0.5; 1000],
                }))
            }
        };
        let (truth, flipped) = (extra(false), extra(true));
        let params = HeadParams::default();
        let kept = Head::fit_selected(&params, &x, y, 2, None, None, &[None, Some(&truth)]).unwrap();
        assert!(kept.compared);
        assert_eq!(kept.variant, 1, "correct extra labels predict held-out labels better");
        let kept = Head::fit_selected(&params, &x, y, 2, None, None, &[None, Some(&flipped)]).unwrap();
        assert!(kept.compared);
        assert_eq!(kept.variant, 0, "flipped extra labels are dropped");
        let few = Head::fit_selected(&params, &x.narrow(0, 0, 3), &y[..3], 2, None, None, &[None, Some(&truth)]);
        assert!(!few.unwrap().compared, "three labels are too few for folds");
    }

    #[test]
    fn designed_labels_compare_fits_without_cooling_them() {
        // 40 random labels along a narrow factor: every C's out-of-fold logits are too
        // confident (fitted T 2.7-7.4), the weakest regularisation most of all, and it is also
        // the most accurate. The calibrated NLL keeps it; scored without cooling, the
        // strongest regularisation wins.
        let (emb, y) = latent_pool(false);
        let plain = HeadParams::default();
        let norm = Normalizer::fit_pool(&emb, &(0..3000).collect::<Vec<_>>(), &plain).unwrap();
        let x = emb.gather(&(0..40).collect::<Vec<_>>());
        let chosen =
            |params: &HeadParams| Head::fit_calibrated(params, &x, &y[..40], 2, None, Some(&norm)).unwrap().params().c;
        assert_eq!(chosen(&plain), 1.0);
        assert_eq!(chosen(&HeadParams { designed_labels: true, ..plain.clone() }), 0.01);
    }
}
