//! Class-prior matching over the unlabelled pool for two-class tasks: after a fit on few
//! labels, the class biases are moved so that the class distribution the model implies for the
//! whole pool (the labelled items by their labels, the unlabelled ones by its mean prediction)
//! stays between the uniform distribution and the (smoothed) class frequencies of the labels.
//!
//! Why: with tens of labels a head's intercept is barely determined, and the labelled items
//! are not a random sample (a cold start picks cluster representatives, uncertainty sampling
//! picks borderline items), so the labelled items' mean is not the pool's. The fitted model
//! then often sends most of the pool to one class: on Rotten Tomatoes sentiment at 20
//! labels, a sixth of the runs predicted over 90 % "fresh" (58 % in truth). The pool is
//! there, unlabelled, and says how the model's outputs are spread; the labels say roughly how
//! the classes are spread. Matching the two is a fixed point of the same kind as EM prior
//! estimation (Saerens et al. 2002), but with the target bounded by the labelled frequencies:
//! EM's own estimate ran away towards one class here, and matching to the labelled
//! frequencies exactly cost 3 points on MNIST 3 vs 8, whose balanced model was right.
//!
//! Moving the biases by `T ln r_c` is the same as multiplying every calibrated probability of
//! class `c` by `r_c` and renormalising, so the rates are found on probabilities already
//! computed, and the head is then changed once so that later scores agree.

use crate::ml::head::{Head, HeadParams};

/// Up to this many labels the match is applied in full; beyond, its log-rates are scaled by
/// `FULL_MATCH_LABELS / n`. With many labels the fitted intercept is well determined, while
/// the labelled frequencies stay biased by what the strategy chose (Rotten Tomatoes 3-class:
/// the rare "plot" class is over-asked), so the match fades out.
const FULL_MATCH_LABELS: f64 = 100.0;

/// Tasks the match is applied to: two classes only. With more, each class's labelled
/// frequency rests on a handful of labels and the match cost accuracy where it was measured
/// (MNIST 10 digits, 10 seeds: -1.4 points at 50 labels, -0.5 at 78; Rotten Tomatoes 3-class:
/// +1.6 at 20 labels but -0.7 at 100-200). On two classes it is what fixes the lopsided early
/// models (Rotten Tomatoes sentiment, 30 seeds, macro-F1 +5 points at 20 labels, +1.5 at 78
/// and 100) and is neutral on a task without them (MNIST 3 vs 8).
const BINARY: usize = 2;

/// Iterations of the proportional fitting; each is one pass over the pool's probabilities.
const ITERATIONS: usize = 60;
/// Stop once every class's mean probability is this close to its target.
const TOLERANCE: f64 = 1e-4;

/// Target class distribution: label counts plus `smoothing` pseudo-labels per class that has
/// at least one label (a class nobody has labelled keeps target 0: the model cannot know it).
pub fn labelled_prior(y: &[i64], num_classes: usize, smoothing: f64) -> Vec<f64> {
    smoothed_shares(&label_counts(y, num_classes), smoothing)
}

/// `labelled_prior` from label counts already taken.
fn smoothed_shares(counts: &[f64], smoothing: f64) -> Vec<f64> {
    normalised(counts.iter().map(|&n| if n > 0.0 { n + smoothing.max(0.0) } else { 0.0 }).collect())
}

/// Labels per class (labels outside `0..num_classes` are ignored).
fn label_counts(y: &[i64], num_classes: usize) -> Vec<f64> {
    let mut counts = vec![0f64; num_classes];
    for &c in y {
        if let Some(slot) = usize::try_from(c).ok().and_then(|c| counts.get_mut(c)) {
            *slot += 1.0;
        }
    }
    counts
}

/// Per-class rates `r` such that the row-renormalised `p_ic r_c` have column means `target`
/// (iterative proportional fitting). `probs` is row-major `[rows x num_classes]`. Classes with
/// target 0 get rate 0. Returns all ones when there is nothing to match.
pub fn matching_rates(probs: &[f32], num_classes: usize, target: &[f64]) -> Vec<f64> {
    let c = num_classes;
    let rows = probs.len().checked_div(c).unwrap_or(0);
    let mut rates = vec![1.0f64; c];
    if rows == 0 || target.len() != c || target.iter().sum::<f64>() <= 0.0 {
        return rates;
    }
    for (r, &t) in rates.iter_mut().zip(target) {
        if t <= 0.0 {
            *r = 0.0;
        }
    }
    let mut mean = vec![0f64; c];
    let mut row = vec![0f64; c];
    for _ in 0..ITERATIONS {
        mean.iter_mut().for_each(|m| *m = 0.0);
        for p in probs.chunks_exact(c) {
            let mut sum = 0.0;
            for k in 0..c {
                row[k] = p[k] as f64 * rates[k];
                sum += row[k];
            }
            if sum > 0.0 {
                for k in 0..c {
                    mean[k] += row[k] / sum;
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut worst = 0f64;
        for k in 0..c {
            if target[k] <= 0.0 {
                continue;
            }
            worst = worst.max((mean[k] - target[k]).abs());
            // A class the model gives (almost) no mass cannot be pulled up by any finite rate
            // in one step; cap the step so one iteration never explodes.
            let step = (target[k] / mean[k].max(1e-12)).clamp(1e-3, 1e3);
            rates[k] *= step;
        }
        if worst < TOLERANCE {
            break;
        }
        // Rates are defined up to a common factor: keep them near 1 for the bias shift.
        let norm = rates.iter().copied().filter(|&r| r > 0.0).map(f64::ln).sum::<f64>()
            / rates.iter().filter(|&&r| r > 0.0).count().max(1) as f64;
        rates.iter_mut().filter(|r| **r > 0.0).for_each(|r| *r /= norm.exp());
    }
    rates
}

/// The class distribution of the whole pool, labelled items included, that the matched model
/// should imply: its own estimate (the labels counted as they are, plus its mean prediction
/// over the unlabelled rest), kept between the uniform distribution (what balanced class
/// weights assume) and the labelled frequencies. A model between the two is left alone (a good
/// balanced model on MNIST 3-vs-8 predicted 50/50 while entropy sampling had asked 70/30:
/// pulling it to 70/30 cost 3 points); one that goes beyond the labels (99 % "fresh" from 75 %
/// "fresh" labels) is pulled back to them.
fn bounded_target(pool_probs: &[f32], num_classes: usize, counts: &[f64], labelled: &[f64]) -> Vec<f64> {
    let c = num_classes;
    let rows = pool_probs.len() / c.max(1);
    let whole = (rows as f64 + counts.iter().sum::<f64>()).max(1.0);
    let present = labelled.iter().filter(|&&t| t > 0.0).count().max(1) as f64;
    let mut mass = counts.to_vec();
    for p in pool_probs.chunks_exact(c) {
        for (m, &v) in mass.iter_mut().zip(p) {
            *m += v as f64;
        }
    }
    let target: Vec<f64> = (0..c)
        .map(|k| {
            if labelled[k] <= 0.0 {
                return 0.0;
            }
            let own = mass[k] / whole;
            let uniform = 1.0 / present;
            own.clamp(labelled[k].min(uniform), labelled[k].max(uniform))
        })
        .collect();
    normalised(target)
}

/// What the unlabelled rows must average for the whole pool to have the distribution `whole`:
/// the labelled items already account for `counts`. Why: on a small data set the labels are a
/// large share of the pool and the unlabelled rest is whatever they left, not a sample of the
/// pool; asking those rows for the whole pool's distribution flips correct predictions
/// (`bench/results/lc-adaptive.md`, "Prior matching on small pools"). A class the labels
/// already exhaust keeps half an item's share.
fn unlabelled_target(whole: &[f64], counts: &[f64], rows: usize) -> Vec<f64> {
    let total = rows as f64 + counts.iter().sum::<f64>();
    let rows = rows.max(1) as f64;
    let target =
        whole.iter().zip(counts).map(|(&t, &n)| if t > 0.0 { (t * total - n).max(0.5) / rows } else { 0.0 }).collect();
    normalised(target)
}

fn normalised(mut shares: Vec<f64>) -> Vec<f64> {
    let total: f64 = shares.iter().sum();
    if total > 0.0 {
        shares.iter_mut().for_each(|t| *t /= total);
    }
    shares
}

/// Whether fits with these params on `num_classes` classes are matched: callers skip scoring
/// the pool otherwise.
pub fn applies(params: &HeadParams, num_classes: usize) -> bool {
    params.prior_matching && num_classes == BINARY
}

/// Matches `head` to the labels `y` over the unlabelled pool, whose calibrated probabilities
/// (row-major `[rows x C]`) `pool_probs` gives from the unmatched head, when `applies`: finds
/// the rates that take the unlabelled rows to their share (`unlabelled_target`) of the whole
/// pool's target (`bounded_target`), fades them with the label count and applies them to the
/// head. Returns the rates applied, for the caller's other already computed probabilities
/// (`apply_rates`), or None (head untouched, pool not scored) when the match does not apply.
pub fn match_labelled_prior(
    head: &mut Head,
    pool_probs: impl FnOnce(&Head) -> Vec<f32>,
    y: &[i64],
) -> Option<Vec<f64>> {
    let c = head.num_classes();
    if !applies(head.params(), c) {
        return None;
    }
    let pool_probs = pool_probs(head);
    let counts = label_counts(y, c);
    let labelled = smoothed_shares(&counts, head.params().prior_smoothing);
    let whole = bounded_target(&pool_probs, c, &counts, &labelled);
    let target = unlabelled_target(&whole, &counts, pool_probs.len() / c.max(1));
    let rates = matching_rates(&pool_probs, c, &target);
    let fade = (FULL_MATCH_LABELS / y.len().max(1) as f64).min(1.0);
    let rates: Vec<f64> = rates.iter().map(|&r| if r > 0.0 { r.powf(fade) } else { 0.0 }).collect();
    head.reweight_classes(&rates);
    Some(rates)
}

/// Applies rates to probabilities in place (row-renormalised), as the shifted head would.
pub fn apply_rates(probs: &mut [f32], num_classes: usize, rates: &[f64]) {
    if num_classes == 0 || rates.len() != num_classes {
        return;
    }
    for p in probs.chunks_exact_mut(num_classes) {
        let mut sum = 0.0f64;
        for (v, &r) in p.iter_mut().zip(rates) {
            let w = *v as f64 * r;
            *v = w as f32;
            sum += w;
        }
        if sum > 0.0 {
            p.iter_mut().for_each(|v| *v = (*v as f64 / sum) as f32);
        } else {
            p.iter_mut().for_each(|v| *v = 1.0 / num_classes as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_prior_smooths_present_classes_only() {
        let t = labelled_prior(&[0, 0, 0, 1], 3, 1.0);
        assert!((t[0] - 4.0 / 6.0).abs() < 1e-12 && (t[1] - 2.0 / 6.0).abs() < 1e-12 && t[2] == 0.0, "{t:?}");
    }

    #[test]
    fn rates_move_a_lopsided_pool_to_the_target() {
        // 1000 rows, the model says class 0 with 0.8 for 900 of them.
        let mut probs = Vec::new();
        for i in 0..1000 {
            if i < 900 {
                probs.extend_from_slice(&[0.8f32, 0.2]);
            } else {
                probs.extend_from_slice(&[0.3f32, 0.7]);
            }
        }
        let target = [0.5, 0.5];
        let rates = matching_rates(&probs, 2, &target);
        let mut adjusted = probs.clone();
        apply_rates(&mut adjusted, 2, &rates);
        let mean0: f64 = adjusted.chunks_exact(2).map(|p| p[0] as f64).sum::<f64>() / 1000.0;
        assert!((mean0 - 0.5).abs() < 1e-3, "{mean0}");
        // Order within a class is kept: the matched model still ranks rows the same way.
        assert!(adjusted[0] > adjusted[2 * 950]);
    }

    #[test]
    fn a_lopsided_head_is_pulled_back_to_the_labels_and_a_balanced_one_is_left_alone() {
        use crate::ml::head::{Layer, Normalizer};
        let head_with_bias = |b: f32| {
            let norm = Normalizer::standard(false, vec![0.0], vec![1.0]);
            let layer = Layer { inputs: 1, outputs: 2, w: vec![-1.0, 1.0], b: vec![0.0, b] };
            Head::from_parts(HeadParams::default(), 1, 2, 1.0, norm, vec![layer]).unwrap()
        };
        let pool = tch::Tensor::linspace(-2.0, 2.0, 401, (tch::Kind::Float, tch::Device::Cpu)).reshape([401, 1]);
        let share1 = |h: &Head| h.predict_proba(&pool).select(1, 1).mean(tch::Kind::Double).double_value(&[]);
        let probs = |h: &Head| Vec::<f32>::try_from(h.predict_proba(&pool).flatten(0, -1)).unwrap();
        // Labels 12 : 8 (smoothed 13/22 : 9/22); a head that puts ~90 % of the pool in class 1.
        let y: Vec<i64> = (0..20).map(|i| i64::from(i >= 12)).collect();
        let mut lopsided = head_with_bias(4.0);
        assert!(share1(&lopsided) > 0.85);
        let rates = match_labelled_prior(&mut lopsided, probs, &y).unwrap();
        assert!(rates[1] < 1.0);
        // Pulled back to the nearer bound of [9/22, 1/2]: the uniform share.
        assert!((share1(&lopsided) - 0.5).abs() < 0.01, "{}", share1(&lopsided));
        // A head predicting 45 % class 1 is between the labels (41 %) and uniform: untouched.
        let mut balanced = head_with_bias(-0.25);
        let before = share1(&balanced);
        assert!(before > 9.0 / 22.0 && before < 0.5, "{before}");
        let rates = match_labelled_prior(&mut balanced, probs, &y).unwrap();
        assert!(rates.iter().all(|r| (r - 1.0).abs() < 1e-3), "{rates:?}");
    }

    #[test]
    fn on_a_small_pool_the_labels_count_towards_its_distribution() {
        use crate::ml::head::{Layer, Normalizer};
        // A 100-item pool, half of each class. 60 are labelled, 40 of class 0 and 20 of class
        // 1, so the 40 unlabelled are 10 of class 0 and 30 of class 1, and a head that says so
        // (mean 0.25 / 0.75 over them) is right. The labels (smoothed 41/62) and the uniform
        // distribution both say class 0 is at least half of the pool, and so does the head's
        // whole pool (40 + 10 of 100): nothing to move.
        let norm = Normalizer::standard(false, vec![0.0], vec![1.0]);
        let layer = Layer { inputs: 1, outputs: 2, w: vec![-1.0, 1.0], b: vec![0.0, 0.0] };
        let mut head = Head::from_parts(HeadParams::default(), 1, 2, 1.0, norm, vec![layer]).unwrap();
        let pool: Vec<f32> = (0..40).flat_map(|i| if i < 10 { [0.9f32, 0.1] } else { [0.0333, 0.9667] }).collect();
        let y: Vec<i64> = (0..60).map(|i| i64::from(i >= 40)).collect();
        let rates = match_labelled_prior(&mut head, |_| pool.clone(), &y).unwrap();
        assert!(rates.iter().all(|r| (r - 1.0).abs() < 1e-2), "{rates:?}");
        // Pulling the 40 rows themselves to the pool's half-and-half, as before, moves them.
        let half = matching_rates(&pool, 2, &[0.5, 0.5]);
        assert!(half[0] > 2.0 * half[1], "{half:?}");
    }

    #[test]
    fn an_unlabelled_class_gets_no_mass_and_a_matched_pool_is_left_alone() {
        let probs = [0.5f32, 0.3, 0.2, 0.5, 0.3, 0.2];
        let rates = matching_rates(&probs, 3, &[0.5, 0.5, 0.0]);
        assert_eq!(rates[2], 0.0);
        let mut p = probs;
        apply_rates(&mut p, 3, &rates);
        assert_eq!(p[2], 0.0);
        assert!((p[0] - 0.5).abs() < 1e-3, "{p:?}");
        let same = matching_rates(&[0.6f32, 0.4, 0.4, 0.6], 2, &[0.5, 0.5]);
        assert!(same.iter().all(|r| (r - 1.0).abs() < 1e-9), "{same:?}");
    }
}
