//! One-hidden-layer MLP (GELU, dropout) trained with AdamW on weighted cross-entropy.
//!
//! All randomness (initialisation, dropout masks, batch order) comes from a ChaCha RNG seeded
//! by `params.seed`, not from torch's global generator, so concurrent fits on other threads
//! cannot change a result.

use anyhow::ensure;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::OptimizerConfig;
use tch::{nn, Kind, Tensor};

use super::{HeadParams, Layer};

/// Rows per Adam step; smaller training sets are used whole (full batch).
const BATCH: usize = 256;
/// Cap on Adam steps so a large training set stays within a few seconds.
const MAX_STEPS: usize = 3000;
/// Minimum steps so tiny training sets (a few dozen rows, one batch) still converge.
const MIN_STEPS: usize = 300;

fn uniform(rng: &mut ChaCha8Rng, len: usize, bound: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-bound..bound)).collect()
}

pub(crate) fn train(
    x: &Tensor,
    y: &[i64],
    num_classes: usize,
    weights: &[f64],
    params: &HeadParams,
) -> anyhow::Result<Vec<Layer>> {
    let (n, d) = x.size2()?;
    let (n, d, c, h) = (n as usize, d as usize, num_classes, params.hidden.max(1));
    ensure!(weights.len() == n && y.len() == n, "rows, labels and weights differ in length");
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x6d6c_7000);
    // PyTorch's nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let b1 = 1.0 / (d as f32).sqrt();
    let b2 = 1.0 / (h as f32).sqrt();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let root = vs.root();
    let w1 = root.f_var_copy("w1", &Tensor::from_slice(&uniform(&mut rng, d * h, b1)).reshape([d as i64, h as i64]))?;
    let bias1 = root.f_var_copy("b1", &Tensor::from_slice(&uniform(&mut rng, h, b1)))?;
    let w2 = root.f_var_copy("w2", &Tensor::from_slice(&uniform(&mut rng, h * c, b2)).reshape([h as i64, c as i64]))?;
    let bias2 = root.f_var_copy("b2", &Tensor::from_slice(&uniform(&mut rng, c, b2)))?;
    let cfg = nn::AdamW { wd: params.weight_decay, ..nn::AdamW::default() };
    let mut opt = cfg.build(&vs, params.lr)?;

    let onehot: Vec<f32> = y.iter().flat_map(|&l| (0..c).map(move |k| if k as i64 == l { 1.0 } else { 0.0 })).collect();
    let onehot = Tensor::from_slice(&onehot).reshape([n as i64, c as i64]);
    let wts = Tensor::from_slice(&weights.iter().map(|&w| w as f32).collect::<Vec<_>>());
    let batch = BATCH.min(n);
    let per_epoch = n.div_ceil(batch);
    let steps = (params.epochs.max(1) * per_epoch).clamp(MIN_STEPS, MAX_STEPS);
    let keep = (1.0 - params.dropout.clamp(0.0, 0.9)) as f32;
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mut pos = n;
    for _ in 0..steps {
        let (xb, yb, wb) = if batch == n {
            (x.shallow_clone(), onehot.shallow_clone(), wts.shallow_clone())
        } else {
            if pos + batch > n {
                order.shuffle(&mut rng);
                pos = 0;
            }
            let idx = Tensor::from_slice(&order[pos..pos + batch]);
            pos += batch;
            (x.index_select(0, &idx), onehot.index_select(0, &idx), wts.index_select(0, &idx))
        };
        let rows = xb.size()[0];
        let hidden = (xb.matmul(&w1) + &bias1).gelu("none");
        let hidden = if keep < 1.0 {
            let mask: Vec<f32> =
                (0..rows as usize * h).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect();
            hidden * Tensor::from_slice(&mask).reshape([rows, h as i64])
        } else {
            hidden
        };
        let logits = hidden.matmul(&w2) + &bias2;
        let ce = -(logits.log_softmax(1, Kind::Float) * &yb).sum_dim_intlist(1, false, Kind::Float);
        let loss = (ce * &wb).sum(Kind::Float) / wb.sum(Kind::Float).clamp_min(1e-12);
        opt.backward_step(&loss);
    }
    let to_vec = |t: &Tensor| -> anyhow::Result<Vec<f32>> { Ok(Vec::try_from(t.detach().flatten(0, -1))?) };
    Ok(vec![
        Layer { inputs: d, outputs: h, w: to_vec(&w1)?, b: to_vec(&bias1)? },
        Layer { inputs: h, outputs: c, w: to_vec(&w2)?, b: to_vec(&bias2)? },
    ])
}
