//! Query strategies: which unlabelled items a person should label next.
//!
//! Every strategy scores the whole unlabelled pool (not a sample of 50 as the original did).
//! Uncertainty strategies read the current model's calibrated probabilities; diversity
//! strategies read the embeddings; before any model exists every strategy except `random`
//! falls back to a diverse cold start.

mod diversity;
mod uncertainty;

use std::str::FromStr;

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ml::embeddings::Embeddings;

pub use diversity::{cold_start, kcenter_greedy};
pub use uncertainty::{uncertainty_scores, Uncertainty};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Uniformly at random: the baseline every other strategy must beat.
    Random,
    /// Maximum entropy of the predicted distribution (the original Light Bulb's choice).
    Entropy,
    /// Smallest gap between the two most probable classes.
    Margin,
    /// Lowest top probability.
    LeastConfidence,
    /// Core-set: k-center greedy over embeddings, ignoring the model.
    Kcenter,
    /// Margin-ranked candidates, then spread over embedding space so one batch does not
    /// ask the same question ten times (cluster-margin, Citovsky et al. 2021, simplified).
    ClusterMargin,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 6] =
        [Self::Random, Self::Entropy, Self::Margin, Self::LeastConfidence, Self::Kcenter, Self::ClusterMargin];

    /// The strategy used when a config names none.
    pub const DEFAULT: StrategyKind = StrategyKind::ClusterMargin;

    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Entropy => "entropy",
            Self::Margin => "margin",
            Self::LeastConfidence => "least_confidence",
            Self::Kcenter => "kcenter",
            Self::ClusterMargin => "cluster_margin",
        }
    }

    /// Whether the strategy reads model probabilities (and so needs a scored pool).
    pub fn needs_model(self) -> bool {
        !matches!(self, Self::Random | Self::Kcenter)
    }
}

impl FromStr for StrategyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown strategy `{s}`; expected one of {}", names.join(", "))
        })
    }
}

/// What a strategy sees.
pub struct Pool<'a> {
    pub embeddings: &'a Embeddings,
    /// Rows of `embeddings` that may be picked.
    pub candidates: &'a [usize],
    /// Rows already labelled (for diversity: pick far from what is known).
    pub labelled: &'a [usize],
    /// Calibrated class probabilities for `candidates`, row-major `[candidates.len() x classes]`,
    /// or `None` before a model exists.
    pub probs: Option<&'a [f32]>,
    pub num_classes: usize,
}

/// Picks up to `k` distinct rows from `pool.candidates`, most useful first.
pub fn select(kind: StrategyKind, pool: &Pool, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let k = k.min(pool.candidates.len());
    if k == 0 {
        return Vec::new();
    }
    let probs = match (kind, pool.probs) {
        (StrategyKind::Random, _) => {
            return sample(rng, pool.candidates.len(), k).into_iter().map(|i| pool.candidates[i]).collect()
        }
        (StrategyKind::Kcenter, _) => return kcenter_greedy(pool, k, rng),
        (_, None) => return cold_start(pool, k, rng),
        (_, Some(p)) => p,
    };
    let measure = match kind {
        StrategyKind::Entropy => Uncertainty::Entropy,
        StrategyKind::LeastConfidence => Uncertainty::LeastConfidence,
        _ => Uncertainty::Margin,
    };
    let scores = uncertainty_scores(probs, pool.num_classes, measure);
    let ranked = top_k_desc(&scores, if kind == StrategyKind::ClusterMargin { k * 10 } else { k });
    if kind != StrategyKind::ClusterMargin {
        return ranked.into_iter().map(|i| pool.candidates[i]).collect();
    }
    diversity::spread(pool, &ranked, &scores, k)
}

/// Indices of the `k` largest scores, largest first; ties broken by index for determinism.
pub(crate) fn top_k_desc(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return idx;
    }
    let cmp = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable_by(cmp);
    idx
}

#[cfg(test)]
mod tests;
