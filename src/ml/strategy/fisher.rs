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
//! unusual items; there it trails `adaptive_margin` from 250 labels. The default
//! (`adaptive_bait`) therefore uses it only with three or more classes: for whole batches while
//! there are few labels per class, after that for the settled share of a batch, inside the band
//! of most uncertain items (`bench/results/lc-adaptive.md`).
//!
//! The softmax Fisher `(diag p - p p^T) (x) x x^T` is `C d` wide; here it is replaced by its
//! trace weight `s = (1 - sum_c p_c^2) / 2` times `x x^T`, which is exact for two classes
//! (`p (1 - p)`) and keeps the problem `d x d` for any number of classes.

use std::collections::HashSet;

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::Pool;
use crate::ml::head::Head;

/// Upper bound on `candidates x (d + 1)^2`, the multiply-adds of each of the three `n x d x d`
/// products per batch (f64; 1.2e10 of them, MNIST's 7,500 candidates at 1,280-d, took about
/// 1.3 seconds per batch on two cores). Larger pools are scored on a uniformly drawn subset
/// of that many candidates: every demo and benchmark pool (up to 12,000 rows of 1,280-d
/// images, 135,000 rows of 384-d text) is scored whole.
const MAX_WORK: f64 = 2.0e10;

/// Fisher weight of one predicted distribution: half its Gini impurity (`p (1 - p)` for two
/// classes).
fn fisher_weight(p: &[f32]) -> f32 {
    0.5 * (1.0 - p.iter().map(|v| v * v).sum::<f32>()).max(0.0)
}

/// Normalised rows with a constant column for the bias, as f64 `[rows, d + 1]`.
fn design(head: &Head, pool: &Pool, rows: &[usize]) -> Tensor {
    let z = head.normalized(&pool.embeddings.gather(rows)).to_kind(Kind::Double);
    Tensor::cat(&[z, Tensor::ones([rows.len() as i64, 1], (Kind::Double, tch::Device::Cpu))], 1)
}

/// Up to `k` candidates, best first, chosen greedily to minimise `tr(H^-1 F)`. `eligible`:
/// positions into `pool.candidates` the picks are restricted to (`None`: any); `F` is the
/// whole pool's either way.
pub fn bait(
    pool: &Pool,
    head: &Head,
    probs: &[f32],
    k: usize,
    eligible: Option<&[usize]>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
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
    let s: Vec<f64> = scored.iter().map(|&i| fisher_weight(&probs[i * classes..(i + 1) * classes]) as f64).collect();
    let x = design(head, pool, &rows);
    let s_t = Tensor::from_slice(&s).unsqueeze(1);

    let hessian = labelled_hessian(pool, head);
    // H is symmetric positive definite (a positive ridge plus a Gram matrix); the general
    // inverse only guards against a factorisation that rounding broke.
    let h_inv = match hessian.f_linalg_cholesky(false).and_then(|l| l.f_cholesky_inverse(false)) {
        Ok(inv) => inv,
        Err(_) => hessian.pinverse(1e-12),
    };
    let fisher = (&x * &s_t).tr().matmul(&x) / (rows.len().max(1) as f64);

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
    let x = if pickable.len() == rows.len() { x } else { x.index_select(0, &Tensor::from_slice(&pickable)) };
    let s_vec = s_t.squeeze_dim(1).index_select(0, &Tensor::from_slice(&pickable));
    let a0 = x.matmul(&h_inv); // rows of H^-1 x before any pick
    let mut q = (a0.matmul(&fisher) * &a0).sum_dim_intlist(1, false, Kind::Double); // x H^-1 F H^-1 x
    let mut l = (&a0 * &x).sum_dim_intlist(1, false, Kind::Double); // x H^-1 x
    let taken = Tensor::zeros([pickable.len() as i64], (Kind::Bool, tch::Device::Cpu));
    let batch = k.min(pickable.len());
    // After t picks, H^-1 x_i = a0_i - sum_{s<t} cu[s, i] v_s (Sherman-Morrison, one rank-one
    // term per pick). The terms are kept (`cu`, `vs`) rather than applied to an n x d copy of
    // `a0`: the loop is bound by memory, and this reads two n x d matrices (plus the t x n
    // terms, smaller than n x d while t < d) per pick instead of reading three and writing one.
    let cu = Tensor::zeros([batch as i64, pickable.len() as i64], (Kind::Double, tch::Device::Cpu));
    let vs = Tensor::zeros([batch as i64, width as i64], (Kind::Double, tch::Device::Cpu));
    let mut picks = Vec::with_capacity(batch);
    for t in 0..batch as i64 {
        let gain = (&s_vec * &q / (&s_vec * &l + 1.0)).masked_fill(&taken, f64::NEG_INFINITY);
        let j = gain.argmax(0, false).int64_value(&[]);
        let _ = taken.get(j).fill_(1);
        let m = pickable[j as usize] as usize;
        picks.push(rows[m]);
        // Sherman-Morrison: H^-1 <- H^-1 - c v v^T with v = H^-1 x_j, c = s_j / (1 + s_j x_j H^-1 x_j).
        let (cu_t, vs_t) = (cu.narrow(0, 0, t), vs.narrow(0, 0, t));
        let v = a0.get(j) - cu_t.select(1, j).matmul(&vs_t);
        let s_j = s[m];
        let c = s_j / (1.0 + s_j * l.double_value(&[j]));
        let u = x.matmul(&v); // x_i . v
        let fv = fisher.matmul(&v);
        let afv = a0.matmul(&fv) - vs_t.matmul(&fv).matmul(&cu_t); // (H^-1 x_i) . F v
        let vfv = v.dot(&fv).double_value(&[]);
        q = q - &u * &afv * (2.0 * c) + &u * &u * (c * c * vfv);
        l -= &u * &u * c;
        cu.get(t).copy_(&(u * c));
        vs.get(t).copy_(&v);
    }
    picks
}

/// `H = sum_labelled s_i x_i x_i^T + I / C`: the Hessian of the head's objective (summed
/// log-loss plus its L2 penalty `||W||^2 / 2C`) at the current model.
fn labelled_hessian(pool: &Pool, head: &Head) -> Tensor {
    let width = (head.dim() + 1) as i64;
    let ridge = Tensor::eye(width, (Kind::Double, tch::Device::Cpu)) / head.params().c.max(1e-12);
    if pool.labelled.is_empty() {
        return ridge;
    }
    let classes = pool.num_classes.max(1);
    let p = head.score(pool.embeddings, Some(pool.labelled));
    let s: Vec<f64> = p.chunks_exact(classes).map(|r| fisher_weight(r) as f64).collect();
    let x = design(head, pool, pool.labelled);
    (&x * Tensor::from_slice(&s).unsqueeze(1)).tr().matmul(&x) + ridge
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

    /// The greedy loop's rank-one bookkeeping, and the restriction to `eligible` rows, against
    /// the definition: each pick is the eligible row whose label lowers `tr(H^-1 F)` the most,
    /// with `H` re-inverted from scratch for every row tried.
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

        let x = design(&head, &pool, &candidates);
        let s: Vec<f64> = probs.chunks_exact(3).map(|p| fisher_weight(p) as f64).collect();
        let f = (&x * Tensor::from_slice(&s).unsqueeze(1)).tr().matmul(&x) / candidates.len() as f64;
        let mut h = labelled_hessian(&pool, &head);
        let mut expected = Vec::new();
        for _ in 0..k {
            let rank_one = |i: usize| {
                let xi = x.get(i as i64).unsqueeze(1);
                xi.matmul(&xi.tr()) * s[i]
            };
            let best = eligible
                .iter()
                .copied()
                .filter(|i| !expected.contains(&candidates[*i]))
                .min_by(|&a, &b| objective(&(&h + rank_one(a)), &f).total_cmp(&objective(&(&h + rank_one(b)), &f)))
                .unwrap();
            h += rank_one(best);
            expected.push(candidates[best]);
        }

        let picks = bait(&pool, &head, &probs, k, Some(&eligible), &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(picks, expected);
        let everywhere = bait(&pool, &head, &probs, k, None, &mut ChaCha8Rng::seed_from_u64(3));
        assert_ne!(everywhere, picks, "the restriction must matter for this test to say anything");
    }
}
