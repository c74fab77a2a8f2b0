//! Query strategies: which unlabelled items a person should label next.
//!
//! Every strategy scores the whole unlabelled pool (not a sample of 50 as the original did);
//! BAIT does so up to a work bound that covers every demo pool (about 12,000 images or
//! 135,000 texts) and scores a uniform subset of that size beyond it (`fisher.rs`).
//! Uncertainty strategies read the current model's calibrated probabilities; diversity
//! strategies read the embeddings; before any model exists every strategy except `random`
//! falls back to a diverse cold start.

mod diversity;
mod fisher;
mod uncertainty;

use std::collections::HashSet;
use std::str::FromStr;

use rand::seq::index::sample;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ml::embeddings::Embeddings;
use crate::ml::head::Head;

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
    /// Margin sampled rather than ranked: items drawn without replacement with probability
    /// proportional to their margin uncertainty `1 - (p1 - p2)` (power acquisition, Kirsch et
    /// al. 2023). Where the model is sure of most of the pool this concentrates on the unsure
    /// few; where it is unsure of nearly everything (noisy text) it approaches random
    /// sampling, which is what wins there.
    PowerMargin,
    /// Cluster-margin for the share of the batch equal to the share of the pool the model is
    /// already sure of (top probability at least `SURE_PROB`), power margin for the rest. Where
    /// most of the pool is settled, errors sit in a thin band that ranked picks find; where
    /// the model is unsure of most items (noisy text), ranked picks chase label noise and a
    /// proportional draw over the uncertain mass does better.
    AdaptiveMargin,
    /// Greedy Fisher-information design (BAIT, Ash et al. 2021) on the head's features: the
    /// batch that most reduces the model's expected error over the whole pool, trading
    /// uncertainty against what the labels so far already cover (`fisher.rs`).
    Bait,
    /// `Bait` for the whole batch while under half the pool is settled (noisy text: +1.2 to
    /// +1.7 points at 50-150 labels on RT sentiment) and, with three or more classes, while
    /// there are fewer than `WHOLE_BATCH_BAIT_LABELS_PER_CLASS` training labels per class
    /// (counted as a total); BAIT designs with its own model (`fisher::DESIGN_C`) except in
    /// that first phase. Otherwise `AdaptiveMargin` (separable images, where BAIT cost MNIST 3
    /// vs 8 points at 150-200 labels), whose settled share, with three or more classes, BAIT
    /// chooses inside cluster-margin's band of most uncertain items: there the band holds
    /// several class boundaries, and BAIT shares the picks out by how much each label would
    /// cut the expected error over the whole pool, where cluster-margin spreads them by
    /// distance alone (`bench/results/lc-adaptive.md`).
    AdaptiveBait,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 10] = [
        Self::Random,
        Self::Entropy,
        Self::Margin,
        Self::LeastConfidence,
        Self::Kcenter,
        Self::ClusterMargin,
        Self::PowerMargin,
        Self::AdaptiveMargin,
        Self::Bait,
        Self::AdaptiveBait,
    ];

    /// The strategy used when a config names none.
    pub const DEFAULT: StrategyKind = StrategyKind::AdaptiveBait;

    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Entropy => "entropy",
            Self::Margin => "margin",
            Self::LeastConfidence => "least_confidence",
            Self::Kcenter => "kcenter",
            Self::ClusterMargin => "cluster_margin",
            Self::PowerMargin => "power_margin",
            Self::AdaptiveMargin => "adaptive_margin",
            Self::Bait => "bait",
            Self::AdaptiveBait => "adaptive_bait",
        }
    }

    /// Whether the strategy reads model probabilities (and so needs a scored pool).
    pub fn needs_model(self) -> bool {
        !matches!(self, Self::Random | Self::Kcenter)
    }

    /// Whether the labels it asks for are anything but a uniform sample of the pool (the
    /// head's cross-validation then scores fits as `HeadParams::designed_labels` says).
    pub fn designs_labels(self) -> bool {
        self != Self::Random
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
    /// Rows labelled for training: what the model behind `probs` was fitted on (diversity
    /// strategies pick far from them; BAIT builds the Hessian from them). Held-out TEST labels
    /// are not among them.
    pub labelled: &'a [usize],
    /// Class of each row of `labelled`, in the same order (BAIT fits its own design model).
    pub labels: &'a [i64],
    /// Calibrated class probabilities for `candidates`, row-major `[candidates.len() x classes]`,
    /// or `None` before a model exists.
    pub probs: Option<&'a [f32]>,
    pub num_classes: usize,
    /// The model behind `probs` (its normalised feature space and regularisation), for
    /// strategies that reason about what a label would change; `None` before a model exists.
    pub head: Option<&'a Head>,
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
    if kind == StrategyKind::Bait {
        return match pool.head {
            Some(head) => fisher::bait(pool, head, probs, k, None, rng),
            None => cold_start(pool, k, rng),
        };
    }
    let measure = match kind {
        StrategyKind::Entropy => Uncertainty::Entropy,
        StrategyKind::LeastConfidence => Uncertainty::LeastConfidence,
        _ => Uncertainty::Margin,
    };
    let scores = uncertainty_scores(probs, pool.num_classes, measure);
    match (kind, pool.head) {
        (StrategyKind::ClusterMargin, _) => cluster_margin(pool, &scores, k),
        (StrategyKind::PowerMargin, _) => power_margin(pool, &scores, k, rng),
        // Most of the pool unsettled (noisy text), or few labels per class of three or more:
        // BAIT designs the whole batch; otherwise adaptive margin, ranked by BAIT inside the
        // uncertain band with three or more classes.
        (StrategyKind::AdaptiveBait, Some(head)) if whole_batch_bait(pool, probs) => {
            fisher::bait(pool, head, probs, k, None, rng)
        }
        (StrategyKind::AdaptiveBait, Some(head)) if pool.num_classes > 2 => {
            adaptive(pool, probs, &scores, k, rng, |n, rng| {
                fisher::bait(pool, head, probs, n, Some(&uncertain_band(&scores, n)), rng)
            })
        }
        (StrategyKind::AdaptiveMargin | StrategyKind::AdaptiveBait, _) => {
            adaptive(pool, probs, &scores, k, rng, |n, _| cluster_margin(pool, &scores, n))
        }
        _ => top_k_desc(&scores, k).into_iter().map(|i| pool.candidates[i]).collect(),
    }
}

/// Training labels per class (compared as a total against this times the number of classes)
/// below which, with three or more classes, adaptive BAIT designs its whole batch with BAIT
/// whatever the settled share, and BAIT designs with the head rather than its own model.
/// Early on, margin-based picks wait until the model hesitates between two classes, while BAIT
/// asks about every class: at 20–100 labels plain BAIT led the adaptive mix by 0.1–2.5 points on
/// RT 3-class and 20 Newsgroups by topic, 5–6 at 20–50 on MNIST-10 and 7–10 on twenty groups,
/// and on the noisy 3-class task it fell behind from 150 labels (50 per class); 30 sits
/// between (`bench/results/lc-adaptive.md`).
const WHOLE_BATCH_BAIT_LABELS_PER_CLASS: usize = 30;

/// Whether the labels so far are few per class: below [`WHOLE_BATCH_BAIT_LABELS_PER_CLASS`]
/// per class (as a total). Two classes never count as few here: their whole-batch rule is the
/// settled share alone.
pub(super) fn few_labels_per_class(pool: &Pool) -> bool {
    pool.num_classes > 2 && pool.labelled.len() < WHOLE_BATCH_BAIT_LABELS_PER_CLASS * pool.num_classes
}

/// Settled share of the pool below which adaptive BAIT designs whole batches with BAIT, at
/// any number of classes. On RT sentiment (few reviews ever settled) BAIT with its design
/// model led adaptive margin by 1.3-1.8 points at 50-150 labels; on MNIST 3 vs 8 (nearly all
/// settled from a few dozen labels) it cost 0.4-0.6 points at 150-200, where adaptive
/// margin's ranked picks are at the ceiling. With three classes, after the first 30 labels per
/// class, it gained the religion newsgroups 1.1-1.2 points at 150-250 labels (20 seeds) and
/// left RT 3-class level (`bench/results/lc-adaptive.md`, "Whole BAIT batches while the pool
/// is unsettled, at any class count").
const BAIT_BELOW_SETTLED: f64 = 0.5;

/// Whether adaptive BAIT designs the whole batch with BAIT: while labels per class are few
/// (three or more classes), or while under [`BAIT_BELOW_SETTLED`] of the pool is settled.
fn whole_batch_bait(pool: &Pool, probs: &[f32]) -> bool {
    few_labels_per_class(pool) || sure_share(probs, pool.num_classes, SURE_PROB) < BAIT_BELOW_SETTLED
}

/// Most uncertain candidates that ranked picks choose from, per pick.
const CLUSTER_CANDIDATES_PER_PICK: usize = 10;

/// Positions of the `CLUSTER_CANDIDATES_PER_PICK × picks` most uncertain candidates: the band
/// cluster-margin spreads its picks over and adaptive BAIT designs its ranked picks in.
fn uncertain_band(scores: &[f32], picks: usize) -> Vec<usize> {
    top_k_desc(scores, picks * CLUSTER_CANDIDATES_PER_PICK)
}

fn cluster_margin(pool: &Pool, scores: &[f32], k: usize) -> Vec<usize> {
    diversity::spread(pool, &uncertain_band(scores, k), scores, k)
}

fn power_margin(pool: &Pool, scores: &[f32], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    power_sample(scores, k, POWER_BETA, rng).into_iter().map(|i| pool.candidates[i]).collect()
}

/// Top probability from which the adaptive strategies count an item as settled.
const SURE_PROB: f32 = 0.9;

/// Share of the rows of `probs` whose top probability is at least `sure`.
fn sure_share(probs: &[f32], classes: usize, sure: f32) -> f64 {
    let rows = probs.len() / classes.max(1);
    if rows == 0 {
        return 0.0;
    }
    let settled = probs.chunks_exact(classes.max(1)).filter(|p| p.iter().any(|&v| v >= sure)).count();
    settled as f64 / rows as f64
}

/// The adaptive mix: `ranked` chooses the share of the batch equal to the share of the pool
/// that is settled, a power-margin draw the rest (never the same item twice).
fn adaptive(
    pool: &Pool,
    probs: &[f32],
    scores: &[f32],
    k: usize,
    rng: &mut ChaCha8Rng,
    ranked: impl FnOnce(usize, &mut ChaCha8Rng) -> Vec<usize>,
) -> Vec<usize> {
    let ranked_picks = (k as f64 * sure_share(probs, pool.num_classes, SURE_PROB)).round() as usize;
    let ranked = if ranked_picks > 0 { ranked(ranked_picks, rng) } else { Vec::new() };
    let taken: HashSet<usize> = ranked.iter().copied().collect();
    let drawn: Vec<usize> = power_margin(pool, scores, k, rng)
        .into_iter()
        .filter(|r| !taken.contains(r))
        .take(k.saturating_sub(ranked.len()))
        .collect();
    interleave(ranked, drawn)
}

/// Merges two pick lists so that every prefix holds them in the same proportion as the whole:
/// a person labels the queue from the front, and the model may be retrained before they reach
/// its end.
fn interleave(first: Vec<usize>, second: Vec<usize>) -> Vec<usize> {
    let (from_first, total) = (first.len(), first.len() + second.len());
    let (mut first, mut second) = (first.into_iter(), second.into_iter());
    // After position i, ceil((i + 1) * from_first / total) items came from `first`.
    let mut taken_first = 0;
    (0..total)
        .filter_map(|i| {
            if taken_first * total < (i + 1) * from_first {
                taken_first += 1;
                first.next()
            } else {
                second.next()
            }
        })
        .collect()
}

/// Exponent of the uncertainty in power sampling: 1 is the published choice; higher values
/// moved closer to ranked margin and lost to random sampling on noisy text in our runs.
const POWER_BETA: f32 = 1.0;

/// `k` distinct indices drawn without replacement with probability proportional to
/// `score^beta` (Gumbel-top-k: the `k` largest `beta ln s + Gumbel noise`).
fn power_sample(scores: &[f32], k: usize, beta: f32, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let keys: Vec<f32> = scores
        .iter()
        .map(|&s| {
            let u: f32 = rng.random_range(f32::MIN_POSITIVE..1.0);
            beta * s.max(1e-30).ln() - (-u.ln()).ln()
        })
        .collect();
    top_k_desc(&keys, k)
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
