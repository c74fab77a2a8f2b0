//! Fisher-information batch selection (BAIT, Ash et al. 2021, "Gone Fishing"), on the head's
//! own normalised features.
//!
//! Why: uncertainty alone picks items the model is unsure of even when a label there teaches
//! the model little about the rest of the pool, and a ranked batch asks about one confusion
//! many times. BAIT asks instead which labels shrink the model's expected error over the
//! whole pool the most: with the Laplace posterior of the logistic head, that error is
//! `tr(H^-1 F)`, where `H` is the Hessian of the training objective on the labelled rows and
//! `F` the Fisher information of the unlabelled pool. A label on `x` adds `s(x) x x^T` to
//! `H`; the greedy pick maximises the drop in `tr(H^-1 F)`,
//! `s x^T H^-1 F H^-1 x / (1 + s x^T H^-1 x)`, then updates `H^-1` by Sherman-Morrison so the
//! next pick in the batch does not ask the same question again. Uncertain items (large `s`)
//! in directions the pool cares about and the labels have not covered (large `H^-1 F H^-1`)
//! win, so early batches reach every class.
//!
//! Where it loses: on noisy text (Rotten Tomatoes) the model is unsure of nearly everything,
//! the weights `s` are flat, and what is left of the criterion is leverage, which favours
//! unusual items; there it trailed `adaptive_margin` from 250 labels. BAIT therefore designs
//! with its own model at a fixed, weaker regularisation ([`DESIGN_C`]), not with the head,
//! except while three or more classes have few labels each. The default (`adaptive_bait`)
//! uses it for whole batches while most of the pool is unsettled and, with three or more
//! classes, while there are few labels per class; after that, with three or more classes, for
//! the settled share of a batch, inside the band of most uncertain items
//! (`bench/results/lc-adaptive.md`).
//!
//! The softmax Fisher `(diag p - p p^T) (x) x x^T` is `C d` wide. With three or more classes
//! it is kept per class: its diagonal blocks `p_c (1 - p_c) x x^T`, one `d x d` problem per
//! class, the objective their sum `sum_c tr(H_c^-1 F_c)`, so a label on an item the model
//! confuses between two classes counts for those two classes' boundaries and not for all
//! (20 Newsgroups by group: +0.8 and +1.0 points at 400 and 500 labels over one block). That
//! is done for whole batches (adaptive BAIT's, and plain `bait`); inside the band,
//! where it costs too much (`MAX_PER_CLASS_WORK`), and with two classes, where it is exact, one
//! block with the trace weight `s = (1 - sum_c p_c^2) / 2` times `x x^T` stands for all.

use std::collections::HashSet;

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::Pool;
use crate::ml::head::{Head, HeadKind, HeadParams};

/// Upper bound on `candidates x (d + 1)^2`, the multiply-adds of each of the three `n x d x d`
/// products per batch (1.2e10 of them, MNIST's 7,500 candidates at 1,280-d, take about 0.65
/// seconds per batch of ten on two cores in f32). Larger pools are scored on a uniformly drawn
/// subset of that many candidates: every demo and benchmark pool (up to 12,000 rows of 1,280-d
/// images, 135,000 rows of 384-d text) is scored whole.
const MAX_WORK: f64 = 2.0e10;

/// Upper bound on `classes x scored candidates x (d + 1)^2` for the Fisher information kept
/// per class (each product is done once per class). 20 Newsgroups by group (20 classes,
/// 8,500 candidates at 384-d: 2.5e10) takes about 1.6 s per batch of ten on two cores; MNIST
/// (10 classes at 1,280-d: 1.2e11) would take five times that, so it gets one block.
const MAX_PER_CLASS_WORK: f64 = 3.0e10;

/// Precision of the pool's Fisher information, `H^-1 x` and the greedy loop: the `n x (d+1)^2`
/// products and the loop's reads of `H^-1 x` per block and candidate are the whole cost, and
/// f32 halves their memory and doubles the SIMD width. `H` itself is factorised and inverted
/// in f64: that is only `(d+1)^3` per block, and its conditioning (a ridge of `1/C` against the
/// labelled Gram matrix) is where rounding would hurt most. The picks match f64's on the test's
/// blobs; on real pools a near-tie can flip one (`bench/results/lc-adaptive.md`, section "BAIT
/// in f32").
const LOOP_KIND: Kind = Kind::Float;

/// Inverse L2 strength of the model BAIT designs with, in place of the head's own `C`: on
/// two-class tasks, and with more classes once the labels per class are no longer few
/// (`super::few_labels_per_class`).
///
/// Why: the head's `C` and temperature are chosen by out-of-fold log-loss, and on noisy text
/// that gives a model unsure of nearly every item (C = 0.01, or C = 1 flattened by a
/// temperature of 3-17 on RT sentiment), so BAIT's weights are flat and what is left of its
/// criterion is leverage, which favours unusual items. In a scikit-learn loop on RT sentiment
/// (`bench/design_accuracy.py`, 3 seeds, the scored head's C chosen by cross-validation) BAIT
/// at 250 labels designed at C = 0.01 read .699 (random sampling .698), at 0.1 .714, at 1
/// .711; with the ridge at 0.1 and the weights of a 0.01 model, .690, so the design model
/// gives both. With three or more classes from the first label it cost 20 groups by group
/// 0.4-1.4 points and left RT 3-class level, so while labels per class are few those keep the
/// head (`bench/results/lc-adaptive.md`, "A design model for BAIT" and "Whole BAIT batches
/// while the pool is unsettled, at any class count").
pub const DESIGN_C: f64 = 0.1;

/// The logistic model BAIT designs with: the head's features and class weighting, fitted at
/// [`DESIGN_C`] on the labelled rows, without a C search or calibration (milliseconds for
/// hundreds of labels). `None` while three or more classes have few labels each, or when it
/// cannot be fitted (BAIT then designs with the head).
fn design_model(pool: &Pool, head: &Head) -> Option<Head> {
    if super::few_labels_per_class(pool) || pool.labels.len() != pool.labelled.len() || pool.labelled.is_empty() {
        return None;
    }
    let params =
        HeadParams { kind: HeadKind::Logistic, c: DESIGN_C, c_candidates: Vec::new(), ..head.params().clone() };
    let x = pool.embeddings.gather(pool.labelled);
    match Head::fit(&params, &x, pool.labels, pool.num_classes, None, Some(head.normalizer())) {
        Ok(model) => Some(model),
        Err(e) => {
            tracing::warn!(error = %e, "BAIT's design model could not be fitted; designing with the head");
            None
        }
    }
}

/// Fisher weight of one predicted distribution: half its Gini impurity (`p (1 - p)` for two
/// classes).
fn fisher_weight(p: &[f32]) -> f32 {
    0.5 * (1.0 - p.iter().map(|v| v * v).sum::<f32>()).max(0.0)
}

/// Fisher weights `[blocks, rows]` of the predicted distributions `p` (`[rows x classes]`):
/// one block of [`fisher_weight`], or one block per class of `p_c (1 - p_c)`; as `kind`.
fn block_weights(p: &[f32], classes: usize, blocks: usize, kind: Kind) -> Tensor {
    let rows = p.len() / classes.max(1);
    if blocks == 1 {
        let s: Vec<f32> = p.chunks_exact(classes).map(fisher_weight).collect();
        return Tensor::from_slice(&s).reshape([1, rows as i64]).to_kind(kind);
    }
    let s: Vec<f32> = p.iter().map(|&v| (v * (1.0 - v)).max(0.0)).collect();
    Tensor::from_slice(&s).reshape([rows as i64, classes as i64]).tr().to_kind(kind).contiguous()
}

/// Normalised rows with a constant column for the bias, `[rows, d + 1]` as `kind`.
fn design(head: &Head, pool: &Pool, rows: &[usize], kind: Kind) -> Tensor {
    let z = head.normalized(&pool.embeddings.gather(rows)).to_kind(kind);
    Tensor::cat(&[z, Tensor::ones([rows.len() as i64, 1], (LOOP_KIND, tch::Device::Cpu))], 1)
}

/// `sum_i s[b, i] x_i x_i^T` for every block `b`: `[blocks, d + 1, d + 1]`.
fn weighted_gram(x: &Tensor, s: &Tensor) -> Tensor {
    (x.unsqueeze(0) * s.unsqueeze(2)).transpose(1, 2).matmul(x)
}

/// Up to `k` candidates, best first, chosen greedily to minimise `tr(H^-1 F)`. `eligible`:
/// positions into `pool.candidates` the picks are restricted to (`None`: any); `F` is the
/// whole pool's either way. Fisher blocks per class for unrestricted picks with three or more
/// classes (within `MAX_PER_CLASS_WORK`), one block otherwise.
pub fn bait(
    pool: &Pool,
    head: &Head,
    probs: &[f32],
    k: usize,
    eligible: Option<&[usize]>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let designed = design_model(pool, head);
    let design_probs = designed.as_ref().map(|m| m.score(pool.embeddings, Some(pool.candidates)));
    let (head, probs) = match (&designed, &design_probs) {
        (Some(m), Some(p)) => (m, p.as_slice()),
        _ => (head, probs),
    };
    let classes = pool.num_classes.max(1);
    let n = pool.candidates.len();
    let width = (head.dim() + 1) as f64;
    let limit = ((MAX_WORK / (width * width)) as usize).max(k);
    // Positions into `pool.candidates` that are scored (every eligible one among them).
    let scored: Vec<usize> = if n > limit {
        let mut idx = sample(rng, n, limit).into_vec();
        idx.extend(eligible.unwrap_or_default());
        idx.sort_unstable();
        idx.dedup();
        idx
    } else {
        (0..n).collect()
    };
    let rows: Vec<usize> = scored.iter().map(|&i| pool.candidates[i]).collect();
    // Per-class blocks only for whole batches: inside the band (30 or more labels per class)
    // one block picked as well on RT 3-class and 20 Newsgroups by topic, and 6-9x cheaper.
    let per_class =
        eligible.is_none() && classes > 2 && (classes * rows.len()) as f64 * width * width <= MAX_PER_CLASS_WORK;
    let blocks = if per_class { classes } else { 1 };
    let scored_probs: Vec<f32> =
        scored.iter().flat_map(|&i| probs[i * classes..(i + 1) * classes].iter().copied()).collect();
    let s_all = block_weights(&scored_probs, classes, blocks, LOOP_KIND); // [blocks, rows]
    let x = design(head, pool, &rows, LOOP_KIND);

    let hessian = labelled_hessian(pool, head, blocks);
    // H is symmetric positive definite (a positive ridge plus a Gram matrix); the general
    // inverse only guards against a factorisation that rounding broke.
    let h_inv = match hessian.f_linalg_cholesky(false) {
        Ok(l) if blocks == 1 => l.squeeze_dim(0).cholesky_inverse(false).unsqueeze(0),
        Ok(l) => {
            Tensor::eye(width as i64, (Kind::Double, tch::Device::Cpu)).expand_as(&hessian).cholesky_solve(&l, false)
        }
        Err(_) => hessian.pinverse(1e-12),
    }
    .to_kind(LOOP_KIND);
    let fisher = weighted_gram(&x, &s_all) / (rows.len().max(1) as f64); // [blocks, d+1, d+1]

    // Only the rows that may be picked need `H^-1 x` and the greedy loop's running terms: the
    // others shape `F` (above) and nothing else, so dropping them here leaves every pick as
    // it was and saves two of the three `n x d x d` products when `eligible` is a band.
    let pickable: Vec<i64> = match eligible {
        None => (0..rows.len() as i64).collect(),
        Some(positions) => {
            let allowed: HashSet<usize> = positions.iter().copied().collect();
            (0..rows.len()).filter(|&m| allowed.contains(&scored[m])).map(|m| m as i64).collect()
        }
    };
    let pick_index = Tensor::from_slice(&pickable);
    let x = if pickable.len() == rows.len() { x } else { x.index_select(0, &pick_index) };
    let s = s_all.index_select(1, &pick_index); // [blocks, n]
    let a0 = x.matmul(&h_inv); // [blocks, n, d+1]: rows of H^-1 x before any pick
    let mut q = (a0.matmul(&fisher) * &a0).sum_dim_intlist(2, false, LOOP_KIND); // x H^-1 F H^-1 x
    let mut l = (&a0 * &x).sum_dim_intlist(2, false, LOOP_KIND); // x H^-1 x
    let taken = Tensor::zeros([pickable.len() as i64], (Kind::Bool, tch::Device::Cpu));
    let batch = k.min(pickable.len());
    let b = blocks as i64;
    // After t picks, H^-1 x_i = a0_i - sum_{s<t} cu[s, i] v_s (Sherman-Morrison, one rank-one
    // term per pick and block). The terms are kept (`cu`, `vs`) rather than applied to an
    // n x d copy of `a0`: the loop is bound by memory, and this reads two n x d matrices (plus
    // the t x n terms, smaller than n x d while t < d) per pick and block instead of reading
    // three and writing one.
    let cu = Tensor::zeros([b, batch as i64, pickable.len() as i64], (LOOP_KIND, tch::Device::Cpu));
    let vs = Tensor::zeros([b, batch as i64, width as i64], (LOOP_KIND, tch::Device::Cpu));
    let mut picks = Vec::with_capacity(batch);
    for t in 0..batch as i64 {
        let gain =
            (&s * &q / (&s * &l + 1.0)).sum_dim_intlist(0, false, LOOP_KIND).masked_fill(&taken, f64::NEG_INFINITY);
        let j = gain.argmax(0, false).int64_value(&[]);
        let _ = taken.get(j).fill_(1);
        picks.push(rows[pickable[j as usize] as usize]);
        // Sherman-Morrison per block: H^-1 <- H^-1 - c v v^T with v = H^-1 x_j,
        // c = s_j / (1 + s_j x_j H^-1 x_j).
        let (cu_t, vs_t) = (cu.narrow(1, 0, t), vs.narrow(1, 0, t));
        // Shapes: v [b, d+1]; c [b]; u = x_i . v [b, n]; F v [b, d+1, 1];
        // afv = (H^-1 x_i) . F v [b, n]; vfv [b].
        let v = a0.select(1, j) - cu_t.select(2, j).unsqueeze(1).matmul(&vs_t).squeeze_dim(1);
        let s_j = s.select(1, j);
        let c = &s_j / (&s_j * l.select(1, j) + 1.0);
        let u = x.matmul(&v.tr()).tr();
        let fv = fisher.matmul(&v.unsqueeze(2));
        let afv = (a0.matmul(&fv) - cu_t.transpose(1, 2).matmul(&vs_t.matmul(&fv))).squeeze_dim(2);
        let vfv = (&v * fv.squeeze_dim(2)).sum_dim_intlist(1, false, LOOP_KIND);
        let c2 = c.unsqueeze(1);
        q = q - &u * &afv * (&c2 * 2.0) + &u * &u * (&c2 * &c2 * vfv.unsqueeze(1));
        l -= &u * &u * &c2;
        cu.select(1, t).copy_(&(u * c2));
        vs.select(1, t).copy_(&v);
    }
    picks
}

/// `H = sum_labelled s_i x_i x_i^T + I / C` per block: the Hessian of the head's objective
/// (summed log-loss plus its L2 penalty `||W||^2 / 2C`) at the current model.
///
/// The weights `s_i` come from the model as fitted, at temperature 1, not from its calibrated
/// probabilities: the objective is the fit's, and the temperature is applied after it. Where the
/// folds sharpen the head (20 groups by group: C = 0.01 with T of about 0.45) the calibrated
/// probabilities of the labelled rows are near 0 or 1, their weights near 0, and `H` was little
/// more than the ridge: BAIT then saw the labelled items as barely covered and asked near them
/// again (RT 3-class: +1.0 points at 250 labels, 20 groups +0.3; `bench/results/lc-adaptive.md`,
/// "BAIT's Hessian at the fitted model"). The pool's `F` keeps the calibrated probabilities: they are
/// the best estimate of how its labels will fall.
fn labelled_hessian(pool: &Pool, head: &Head, blocks: usize) -> Tensor {
    let width = (head.dim() + 1) as i64;
    let ridge = Tensor::eye(width, (Kind::Double, tch::Device::Cpu)) / head.params().c.max(1e-12);
    if pool.labelled.is_empty() {
        return ridge.unsqueeze(0).repeat([blocks as i64, 1, 1]);
    }
    let classes = pool.num_classes.max(1);
    let mut fitted = head.clone();
    fitted.set_temperature(1.0);
    let p = fitted.score(pool.embeddings, Some(pool.labelled));
    let x = design(head, pool, pool.labelled, Kind::Double);
    weighted_gram(&x, &block_weights(&p, classes, blocks, Kind::Double)) + ridge
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::ml::strategy::tests::{labelled_blobs, view, BLOB_LABELS};

    /// `tr(H^-1 F)` by an explicit inverse.
    fn objective(h: &Tensor, f: &Tensor) -> f64 {
        Tensor::linalg_inv(h).matmul(f).trace().double_value(&[])
    }

    /// The picks the definition makes: each is the eligible row whose label lowers
    /// `sum_b tr(H_b^-1 F_b)` the most, with every `H_b` re-inverted from scratch for every row
    /// tried; `weight(p, b)` is row `p`'s Fisher weight in block `b`.
    fn explicit_picks(
        pool: &Pool,
        head: &Head,
        probs: &[f32],
        eligible: &[usize],
        k: usize,
        blocks: usize,
        weight: impl Fn(&[f32], usize) -> f64,
    ) -> Vec<usize> {
        let x = design(head, pool, pool.candidates, Kind::Double);
        let s: Vec<Vec<f64>> =
            (0..blocks).map(|b| probs.chunks_exact(pool.num_classes).map(|p| weight(p, b)).collect()).collect();
        let f: Vec<Tensor> = s
            .iter()
            .map(|sb| (&x * Tensor::from_slice(sb).unsqueeze(1)).tr().matmul(&x) / pool.candidates.len() as f64)
            .collect();
        let hessians = labelled_hessian(pool, head, blocks);
        let mut h: Vec<Tensor> = (0..blocks as i64).map(|b| hessians.get(b)).collect();
        let rank_one = |b: usize, i: usize| {
            let xi = x.get(i as i64).unsqueeze(1);
            xi.matmul(&xi.tr()) * s[b][i]
        };
        let total =
            |h: &[Tensor], i: usize| -> f64 { (0..blocks).map(|b| objective(&(&h[b] + rank_one(b, i)), &f[b])).sum() };
        let mut expected = Vec::new();
        for _ in 0..k {
            let best = eligible
                .iter()
                .copied()
                .filter(|i| !expected.contains(&pool.candidates[*i]))
                .min_by(|&a, &b| total(&h, a).total_cmp(&total(&h, b)))
                .unwrap();
            for (b, hb) in h.iter_mut().enumerate() {
                *hb += rank_one(b, best);
            }
            expected.push(pool.candidates[best]);
        }
        expected
    }

    /// `H` is the fitted objective's Hessian: a temperature set after the fit (calibration)
    /// changes the pool's probabilities but not `H`, which a sharpened head would otherwise
    /// shrink towards its ridge.
    #[test]
    fn the_labelled_hessian_ignores_the_calibration_temperature() {
        let (e, head, candidates) = labelled_blobs();
        assert_eq!(head.temperature(), 1.0);
        let probs = vec![1.0f32 / 3.0; candidates.len() * 3];
        let pool = view(&e, &candidates, &BLOB_LABELS, Some(&probs), 3, Some(&head));
        let mut sharpened = head.clone();
        sharpened.set_temperature(0.3);
        let ridge = Tensor::eye((head.dim() + 1) as i64, (Kind::Double, tch::Device::Cpu)) / head.params().c;
        for blocks in [1, 3] {
            let fitted = labelled_hessian(&pool, &head, blocks);
            assert!(labelled_hessian(&pool, &sharpened, blocks).allclose(&fitted, 1e-9, 1e-9, false));
            let sharpened_p = sharpened.score(pool.embeddings, Some(pool.labelled));
            let x = design(&head, &pool, pool.labelled, Kind::Double);
            let from_calibrated = weighted_gram(&x, &block_weights(&sharpened_p, 3, blocks, Kind::Double)) + &ridge;
            let gap = (&from_calibrated - &fitted).abs().max().double_value(&[]);
            assert!(gap > 1e-3, "the temperature must matter for this test to say anything ({blocks} blocks: {gap})");
        }
    }

    /// The greedy loop's rank-one bookkeeping, and the restriction to `eligible` rows, against
    /// the definition, with one Fisher block (the trace weight) and with one block per class.
    #[test]
    fn bait_picks_what_the_explicit_objective_picks() {
        let (e, head, candidates) = labelled_blobs();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let probs: Vec<f32> = (0..candidates.len())
            .flat_map(|_| {
                let w: [f32; 3] =
                    [rng.random_range(0.05..1.0), rng.random_range(0.05..1.0), rng.random_range(0.05..1.0)];
                let sum: f32 = w.iter().sum();
                w.map(|v| v / sum)
            })
            .collect();
        let pool = view(&e, &candidates, &BLOB_LABELS, Some(&probs), 3, Some(&head));
        let eligible: Vec<usize> = (0..candidates.len()).filter(|i| i % 3 != 1).collect();
        let k = 6;
        let run =
            |eligible: Option<&[usize]>| bait(&pool, &head, &probs, k, eligible, &mut ChaCha8Rng::seed_from_u64(3));
        let everyone: Vec<usize> = (0..candidates.len()).collect();

        // Restricted to a band: one block with the trace weight.
        let one_block = explicit_picks(&pool, &head, &probs, &eligible, k, 1, |p, _| fisher_weight(p) as f64);
        assert_eq!(run(Some(&eligible)), one_block);
        let one_block_everywhere =
            explicit_picks(&pool, &head, &probs, &everyone, k, 1, |p, _| fisher_weight(p) as f64);
        assert_ne!(one_block_everywhere, one_block, "the restriction must matter for this test to say anything");

        // Unrestricted (whole batches): one block per class.
        let per_class = explicit_picks(&pool, &head, &probs, &everyone, k, 3, |p, c| (p[c] * (1.0 - p[c])) as f64);
        assert_eq!(run(None), per_class);
        assert_ne!(per_class, one_block_everywhere, "per-class blocks must matter for this test to say anything");
    }
}
