//! Diversity over embedding space: cold start, core-set (k-center greedy) and the spreading
//! step of cluster-margin. Distances are cosine distances of L2-normalised rows, computed
//! with matmuls in chunks so a large pool never needs an n x n matrix.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::Pool;

/// Rows whose squared distances are computed in one matmul.
const CHUNK: usize = 16_384;
/// Lloyd iterations for the small k-means runs below; they converge well enough for picking.
const KMEANS_ITERS: usize = 10;

/// L2-normalised f32 copy of the given rows.
fn normalised(pool: &Pool, rows: &[usize]) -> Tensor {
    let x = pool.embeddings.gather(rows);
    let norm = x.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    x / norm
}

/// Squared distance of every row of `x` to its nearest row of `centers` (both normalised).
fn min_sq_dist(x: &Tensor, centers: &Tensor) -> Tensor {
    let n = x.size()[0];
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let len = (CHUNK as i64).min(n - start);
        let sim = x.narrow(0, start, len).matmul(&centers.tr());
        let best = sim.max_dim(1, false).0;
        parts.push((best * -2.0 + 2.0).clamp_min(0.0));
        start += len;
    }
    Tensor::cat(&parts, 0)
}

/// Core-set selection: repeatedly pick the candidate farthest from everything labelled or
/// already picked. With nothing labelled, the first pick is the candidate nearest the mean.
pub fn kcenter_greedy(pool: &Pool, k: usize, _rng: &mut ChaCha8Rng) -> Vec<usize> {
    let x = normalised(pool, pool.candidates);
    greedy_from(pool, &x, pool.candidates, k)
}

fn greedy_from(pool: &Pool, x: &Tensor, rows: &[usize], k: usize) -> Vec<usize> {
    // Distance of each candidate to its nearest known point; `None` until something is known.
    let mut dist = (!pool.labelled.is_empty()).then(|| min_sq_dist(x, &normalised(pool, pool.labelled)));
    let mut picked = Vec::with_capacity(k);
    for _ in 0..k.min(rows.len()) {
        let i = match &dist {
            Some(d) => d.argmax(0, false).int64_value(&[]) as usize,
            None => {
                // Nothing known yet: start from the most typical item, nearest the mean.
                let mean = x.mean_dim([0i64].as_slice(), true, Kind::Float);
                x.matmul(&mean.tr()).argmax(0, false).int64_value(&[0]) as usize
            }
        };
        picked.push(rows[i]);
        let to_pick = min_sq_dist(x, &x.narrow(0, i as i64, 1));
        let next = match dist {
            Some(d) => d.minimum(&to_pick),
            None => to_pick,
        };
        // Never pick the same row twice, even if every distance ties at zero.
        let _ = next.narrow(0, i as i64, 1).fill_(f64::NEG_INFINITY);
        dist = Some(next);
    }
    picked
}

/// k-means++ seeding then Lloyd iterations; returns each row's cluster.
fn kmeans(x: &Tensor, k: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
    let n = x.size()[0] as usize;
    let k = k.min(n).max(1);
    let mut centers = vec![rng.random_range(0..n) as i64];
    while centers.len() < k {
        let c = x.index_select(0, &Tensor::from_slice(&centers));
        let d: Vec<f32> = Vec::try_from(min_sq_dist(x, &c)).unwrap_or_default();
        let total: f64 = d.iter().map(|&v| v as f64).sum();
        if total <= 0.0 {
            break;
        }
        let mut target = rng.random::<f64>() * total;
        let mut pick = n - 1;
        for (i, &v) in d.iter().enumerate() {
            target -= v as f64;
            if target <= 0.0 {
                pick = i;
                break;
            }
        }
        centers.push(pick as i64);
    }
    let mut c = x.index_select(0, &Tensor::from_slice(&centers));
    let mut assign = Tensor::zeros([n as i64], (Kind::Int64, tch::Device::Cpu));
    for _ in 0..KMEANS_ITERS {
        assign = x.matmul(&c.tr()).argmax(1, false);
        let kk = c.size()[0];
        let sums = Tensor::zeros([kk, x.size()[1]], (Kind::Float, tch::Device::Cpu)).index_add(0, &assign, x);
        let counts = Tensor::zeros([kk], (Kind::Float, tch::Device::Cpu)).index_add(
            0,
            &assign,
            &Tensor::ones([n as i64], (Kind::Float, tch::Device::Cpu)),
        );
        // Empty clusters keep their previous centre.
        let empty = counts.eq(0.0).unsqueeze(1);
        let mean = sums / counts.clamp_min(1.0).unsqueeze(1);
        c = mean.where_self(&empty.logical_not(), &c);
        c = &c / c.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    }
    Vec::try_from(assign).unwrap_or_default()
}

/// Before a model exists: with nothing labelled, the most typical item of each of `k` k-means
/// clusters (largest clusters first), which covers the data's modes; with some labels (but
/// not yet two classes), k-center greedy away from them.
pub fn cold_start(pool: &Pool, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if !pool.labelled.is_empty() {
        return kcenter_greedy(pool, k, rng);
    }
    let x = normalised(pool, pool.candidates);
    let assign = kmeans(&x, k, rng);
    let ids: Vec<usize> = (0..pool.candidates.len()).collect();
    let scores = vec![0f32; ids.len()];
    typical_per_cluster(&x, &assign, &ids, &scores, pool.candidates, k)
}

/// For each cluster, the member with the highest `score`, ties broken by closeness to the
/// cluster's centre. Clusters ordered by size (largest first) and then score.
fn typical_per_cluster(
    x: &Tensor,
    assign: &[i64],
    members: &[usize],
    scores: &[f32],
    rows: &[usize],
    k: usize,
) -> Vec<usize> {
    let clusters = assign.iter().copied().max().map(|m| m as usize + 1).unwrap_or(0);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); clusters];
    for (pos, &c) in assign.iter().enumerate() {
        groups[c as usize].push(pos);
    }
    let mut picks: Vec<(usize, f32, usize)> = Vec::new();
    for g in groups.iter().filter(|g| !g.is_empty()) {
        let idx = Tensor::from_slice(&g.iter().map(|&p| p as i64).collect::<Vec<_>>());
        let sub = x.index_select(0, &idx);
        let centre = sub.mean_dim([0i64].as_slice(), true, Kind::Float);
        let closeness: Vec<f32> = Vec::try_from(sub.matmul(&centre.tr()).squeeze_dim(1)).unwrap_or_default();
        let best = (0..g.len())
            .max_by(|&a, &b| {
                scores[members[g[a]]]
                    .total_cmp(&scores[members[g[b]]])
                    .then(closeness[a].total_cmp(&closeness[b]))
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        picks.push((g.len(), scores[members[g[best]]], rows[members[g[best]]]));
    }
    picks.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    picks.into_iter().take(k).map(|p| p.2).collect()
}

/// Cluster-margin's spreading step: cluster the most uncertain candidates (`ranked`, indices
/// into `pool.candidates`) into `k` groups and take the most uncertain item of each, so a
/// batch covers different confusions instead of k near-duplicates.
pub fn spread(pool: &Pool, ranked: &[usize], scores: &[f32], k: usize) -> Vec<usize> {
    if ranked.len() <= k {
        return ranked.iter().map(|&i| pool.candidates[i]).collect();
    }
    let rows: Vec<usize> = ranked.iter().map(|&i| pool.candidates[i]).collect();
    let x = normalised(pool, &rows);
    // Seeded from the ranking itself so the result depends only on the inputs.
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(ranked.len() as u64 ^ ranked[0] as u64);
    let assign = kmeans(&x, k, &mut rng);
    let local_scores: Vec<f32> = ranked.iter().map(|&i| scores[i]).collect();
    let members: Vec<usize> = (0..ranked.len()).collect();
    let mut picked = typical_per_cluster(&x, &assign, &members, &local_scores, &rows, k);
    // k-means can leave clusters empty; top up with the next most uncertain items.
    for &r in &rows {
        if picked.len() >= k {
            break;
        }
        if !picked.contains(&r) {
            picked.push(r);
        }
    }
    picked
}
