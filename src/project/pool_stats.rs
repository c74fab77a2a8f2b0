//! The trainer's pool feature statistics, kept across training rounds.
//!
//! The head standardises features by the statistics of the whole unlabelled pool plus the
//! TRAIN items (`Normalizer::fit_pool`). Between two rounds that set loses only the few items
//! that went to the TEST stage, so recomputing it every round is a full pass over the pool
//! for nothing (and with `model.covariance_prior` a covariance and a d x d eigendecomposition
//! too: 0.74 s at 1,280-d in the heads bench). The statistics are refitted only once the set
//! has drifted by more than [`REFRESH_SHARE`] of its items since they were computed; the
//! simulator computes them once for the same reason.

use crate::ml::embeddings::Embeddings;
use crate::ml::head::{HeadParams, Normalizer};

/// Share of the pool (items added or removed since the last fit) that triggers a refit.
pub const REFRESH_SHARE: f64 = 0.01;

/// The statistics and the sorted embedding rows they were computed on.
#[derive(Default)]
pub struct PoolStatsCache {
    fitted: Option<(Vec<usize>, Normalizer)>,
}

impl PoolStatsCache {
    /// Statistics for `rows` (embedding rows, any order): the cached ones when `rows` differs
    /// from the rows they were computed on by at most [`REFRESH_SHARE`], else a fresh fit.
    pub fn get(&mut self, embeddings: &Embeddings, rows: &[usize], params: &HeadParams) -> anyhow::Result<&Normalizer> {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        let fitted = match self.fitted.take() {
            Some((cached, norm)) if !drifted(&cached, &sorted) => (cached, norm),
            _ => {
                let norm = Normalizer::fit_pool(embeddings, &sorted, params)?;
                (sorted, norm)
            }
        };
        Ok(&self.fitted.insert(fitted).1)
    }
}

/// Whether `now` differs from `cached` (both sorted) by more than [`REFRESH_SHARE`] of the pool.
fn drifted(cached: &[usize], now: &[usize]) -> bool {
    symmetric_difference_len(cached, now) as f64 > REFRESH_SHARE * cached.len().max(now.len()) as f64
}

/// Items in exactly one of two sorted row lists.
fn symmetric_difference_len(a: &[usize], b: &[usize]) -> usize {
    let (mut i, mut j, mut only) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                only += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                only += 1;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    only + (a.len() - i) + (b.len() - j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embeddings(n: usize, dim: usize) -> Embeddings {
        let mut e = Embeddings::new(dim);
        for i in 0..n {
            let row: Vec<f32> = (0..dim).map(|j| ((i * 7 + j * 13) % 17) as f32 - 8.0 + i as f32 * 0.01).collect();
            e.push(&row);
        }
        e
    }

    #[test]
    fn symmetric_difference_counts_items_in_one_list_only() {
        assert_eq!(symmetric_difference_len(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(symmetric_difference_len(&[1, 2, 3], &[2, 3, 4, 5]), 3);
        assert_eq!(symmetric_difference_len(&[], &[4, 9]), 2);
        assert_eq!(symmetric_difference_len(&[0, 5], &[]), 2);
    }

    #[test]
    fn small_drift_reuses_the_statistics_and_large_drift_refits() {
        let emb = embeddings(1_000, 8);
        let params = HeadParams::default();
        let mut cache = PoolStatsCache::default();
        let all: Vec<usize> = (0..1_000).collect();
        let first = cache.get(&emb, &all, &params).unwrap().clone();
        // Ten items gone to the TEST stage: 1 % of the pool, within the share; order is irrelevant.
        let mut fewer: Vec<usize> = (10..1_000).rev().collect();
        assert_eq!(cache.get(&emb, &fewer, &params).unwrap(), &first);
        // Eleven more gone: 2.1 % since the fit, so a refit on exactly these rows.
        fewer.retain(|&r| r >= 21);
        let refit = cache.get(&emb, &fewer, &params).unwrap().clone();
        assert_ne!(refit, first);
        assert_eq!(refit, Normalizer::fit_pool(&emb, &(21..1_000).collect::<Vec<_>>(), &params).unwrap());
    }
}
