use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

/// The pool a strategy sees, over test rows.
pub(super) fn view<'a>(
    e: &'a Embeddings,
    candidates: &'a [usize],
    labelled: &'a [usize],
    probs: Option<&'a [f32]>,
    num_classes: usize,
    head: Option<&'a Head>,
) -> Pool<'a> {
    // The blob tests' labels: row r lies in blob r / 30. Leaked (a few bytes per test) so the
    // view can borrow them like everything else it is given.
    let labels = labelled.iter().map(|&r| (r / 30) as i64).collect::<Vec<_>>().leak();
    Pool { embeddings: e, candidates, labelled, labels, num_classes, probs, head }
}

/// Number of distinct rows in `picks`.
fn distinct(picks: &[usize]) -> usize {
    picks.iter().collect::<std::collections::HashSet<_>>().len()
}

/// Three tight, well separated blobs of 30 points each in 8-d.
fn blobs() -> Embeddings {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut e = Embeddings::new(8);
    for i in 0..90 {
        let mut row = vec![0f32; 8];
        row[i / 30] = 1.0;
        for v in row.iter_mut() {
            *v += rand::Rng::random_range(&mut rng, -0.05..0.05);
        }
        e.push(&row);
    }
    e
}

#[test]
fn top_k_orders_by_score_then_index() {
    assert_eq!(top_k_desc(&[0.1, 0.9, 0.5, 0.9], 3), vec![1, 3, 2]);
    assert_eq!(top_k_desc(&[0.3], 5), vec![0]);
}

#[test]
fn uncertainty_measures_rank_as_expected() {
    let probs = [0.9, 0.05, 0.05, 0.4, 0.35, 0.25];
    for m in [Uncertainty::Entropy, Uncertainty::Margin, Uncertainty::LeastConfidence] {
        let s = uncertainty_scores(&probs, 3, m);
        assert!(s[1] > s[0], "{m:?}: {s:?}");
    }
    let margin = uncertainty_scores(&probs, 3, Uncertainty::Margin);
    assert!((margin[1] - 0.95).abs() < 1e-6);
}

#[test]
fn cold_start_covers_every_blob() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    let pool = view(&e, &candidates, &[], None, 3, None);
    let picks = select(StrategyKind::Margin, &pool, 3, &mut ChaCha8Rng::seed_from_u64(3));
    let mut blobs: Vec<usize> = picks.iter().map(|r| r / 30).collect();
    blobs.sort();
    assert_eq!(blobs, vec![0, 1, 2], "picks {picks:?}");
}

#[test]
fn kcenter_moves_away_from_labelled() {
    let e = blobs();
    let candidates: Vec<usize> = (0..60).chain(61..90).collect();
    let labelled = [0usize, 60];
    let pool = view(&e, &candidates, &labelled, None, 3, None);
    let picks = select(StrategyKind::Kcenter, &pool, 1, &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(picks[0] / 30, 1, "the unlabelled blob comes first: {picks:?}");
}

#[test]
fn every_strategy_returns_distinct_candidates() {
    let e = blobs();
    let candidates: Vec<usize> = (5..85).collect();
    let probs: Vec<f32> = candidates
        .iter()
        .flat_map(|&r| {
            let p = 0.4 + 0.5 * ((r % 7) as f32 / 7.0);
            [p, (1.0 - p) / 2.0, (1.0 - p) / 2.0]
        })
        .collect();
    for kind in StrategyKind::ALL {
        let pool = view(&e, &candidates, &[1, 2], Some(&probs), 3, None);
        let picks = select(kind, &pool, 12, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(distinct(&picks), 12, "{kind:?} {picks:?}");
        assert!(picks.iter().all(|p| candidates.contains(p)), "{kind:?}");
    }
}

#[test]
fn uncertainty_strategies_pick_the_least_certain() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    let probs: Vec<f32> = (0..90).flat_map(|r| if r == 42 { [0.34, 0.33, 0.33] } else { [0.98, 0.01, 0.01] }).collect();
    for kind in [StrategyKind::Entropy, StrategyKind::Margin, StrategyKind::LeastConfidence] {
        let pool = view(&e, &candidates, &[], Some(&probs), 3, None);
        assert_eq!(select(kind, &pool, 1, &mut ChaCha8Rng::seed_from_u64(0)), vec![42], "{kind:?}");
    }
}

#[test]
fn names_round_trip() {
    for kind in StrategyKind::ALL {
        assert_eq!(kind.name().parse::<StrategyKind>(), Ok(kind));
    }
    assert!("max_entropy".parse::<StrategyKind>().unwrap_err().contains("entropy"));
}

#[test]
fn power_margin_samples_in_proportion_to_uncertainty() {
    let e = blobs();
    let candidates = [10usize, 40];
    // Margin uncertainty 1 - (p1 - p2): 0.2 for the first candidate, 0.8 for the second.
    let probs = [0.9f32, 0.1, 0.6, 0.4];
    let pool = view(&e, &candidates, &[], Some(&probs), 2, None);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let draws = 4000;
    let unsure = (0..draws).filter(|_| select(StrategyKind::PowerMargin, &pool, 1, &mut rng) == vec![40]).count();
    // Expected 0.8 * 4000 = 3200, standard deviation about 25.
    assert!((3100..=3300).contains(&unsure), "picked the unsure item {unsure} times of {draws}");
}

#[test]
fn power_margin_never_asks_about_certain_items_while_unsure_ones_remain() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    // Rows divisible by 3 are unsure, the rest predicted with certainty.
    let probs: Vec<f32> = (0..90).flat_map(|r| if r % 3 == 0 { [0.55, 0.45] } else { [1.0, 0.0] }).collect();
    let pool = view(&e, &candidates, &[], Some(&probs), 2, None);
    let picks = select(StrategyKind::PowerMargin, &pool, 30, &mut ChaCha8Rng::seed_from_u64(2));
    assert_eq!(picks.len(), 30);
    assert!(picks.iter().all(|r| r % 3 == 0), "{picks:?}");
}

#[test]
fn sure_share_counts_settled_rows() {
    let probs = [0.95, 0.05, 0.5, 0.5, 0.1, 0.9, 0.7, 0.3];
    assert!((sure_share(&probs, 2, 0.9) - 0.5).abs() < 1e-12);
    assert_eq!(sure_share(&[], 2, 0.9), 0.0);
}

#[test]
fn adaptive_margin_is_power_margin_when_nothing_is_settled_and_cluster_margin_when_all_is() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    let unsure: Vec<f32> = (0..90).flat_map(|r| [0.5 + 0.004 * r as f32, 0.5 - 0.004 * r as f32]).collect();
    let pool = view(&e, &candidates, &[], Some(&unsure), 2, None);
    let pick = |kind| select(kind, &pool, 6, &mut ChaCha8Rng::seed_from_u64(4));
    assert_eq!(pick(StrategyKind::AdaptiveMargin), pick(StrategyKind::PowerMargin));

    let sure: Vec<f32> = (0..90).flat_map(|r| [0.9 + 0.001 * r as f32, 0.1 - 0.001 * r as f32]).collect();
    let pool = view(&e, &candidates, &[], Some(&sure), 2, None);
    let pick = |kind| select(kind, &pool, 6, &mut ChaCha8Rng::seed_from_u64(4));
    assert_eq!(pick(StrategyKind::AdaptiveMargin), pick(StrategyKind::ClusterMargin));
}

#[test]
fn adaptive_margin_fills_the_batch_from_the_unsure_items() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    // Two thirds settled (rows 30..90), the first blob unsure: 2 of 3 picks ranked, 1 drawn.
    let probs: Vec<f32> = (0..90).flat_map(|r| if r < 30 { [0.55, 0.45] } else { [1.0, 0.0] }).collect();
    let pool = view(&e, &candidates, &[], Some(&probs), 2, None);
    let picks = select(StrategyKind::AdaptiveMargin, &pool, 3, &mut ChaCha8Rng::seed_from_u64(8));
    assert_eq!(distinct(&picks), 3, "{picks:?}");
    // Every pick is one of the unsure rows: both parts of the batch go after uncertainty.
    assert!(picks.iter().all(|&r| r < 30), "{picks:?}");
}

#[test]
fn interleave_keeps_the_proportion_in_every_prefix() {
    assert_eq!(interleave(vec![1, 2], vec![10, 11, 12, 13, 14, 15]), vec![1, 10, 11, 12, 2, 13, 14, 15]);
    assert_eq!(interleave(vec![], vec![10, 11]), vec![10, 11]);
    assert_eq!(interleave(vec![1, 2], vec![]), vec![1, 2]);
    let merged = interleave((0..60).collect(), (100..300).collect());
    assert_eq!(merged.len(), 260);
    for prefix in [10, 50, 130] {
        let ranked = merged[..prefix].iter().filter(|&&r| r < 100).count();
        let expected = (prefix * 60).div_ceil(260);
        assert_eq!(ranked, expected, "prefix {prefix}");
    }
}

/// Rows labelled in the tests that need a model: two per blob.
pub(super) const BLOB_LABELS: [usize; 6] = [0, 1, 30, 31, 60, 61];

/// The blobs, a logistic head fitted on `BLOB_LABELS`, and every other row as a candidate.
pub(super) fn labelled_blobs() -> (Embeddings, Head, Vec<usize>) {
    let e = blobs();
    let y: Vec<i64> = BLOB_LABELS.iter().map(|&r| (r / 30) as i64).collect();
    let head =
        crate::ml::head::Head::fit(&crate::ml::head::HeadParams::default(), &e.gather(&BLOB_LABELS), &y, 3, None, None)
            .unwrap();
    (e, head, (0..90).filter(|r| !BLOB_LABELS.contains(r)).collect())
}

/// As many labelled rows as adaptive BAIT needs to stop designing whole batches with BAIT:
/// `BLOB_LABELS` over and over (the head was fitted on those six; here only the count matters).
fn enough_labels() -> Vec<usize> {
    BLOB_LABELS.iter().copied().cycle().take(WHOLE_BATCH_BAIT_LABELS_PER_CLASS * 3).collect()
}

#[test]
fn bait_spreads_a_batch_over_what_the_labels_do_not_cover() {
    let (e, head, candidates) = labelled_blobs();
    // Equally unsure everywhere: only the geometry decides.
    let probs = vec![1.0f32 / 3.0; candidates.len() * 3];
    let pool = view(&e, &candidates, &BLOB_LABELS, Some(&probs), 3, Some(&head));
    let picks = select(StrategyKind::Bait, &pool, 3, &mut ChaCha8Rng::seed_from_u64(3));
    let mut blobs_hit: Vec<usize> = picks.iter().map(|r| r / 30).collect();
    blobs_hit.sort();
    assert_eq!(blobs_hit, vec![0, 1, 2], "{picks:?}");
}

/// What `kind` picks from the blobs labelled `labelled` when the first blob's candidates are
/// predicted `first` and all others `rest`; asserts the picks are `k` distinct rows of the
/// first blob.
fn assert_picks_only_from_the_first_blob(
    kind: StrategyKind,
    labelled: &[usize],
    first: [f32; 3],
    rest: [f32; 3],
    k: usize,
) {
    let (e, head, candidates) = labelled_blobs();
    let probs: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { first } else { rest }).collect();
    let pool = view(&e, &candidates, labelled, Some(&probs), 3, Some(&head));
    let picks = select(kind, &pool, k, &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(distinct(&picks), k, "{picks:?}");
    assert!(picks.iter().all(|&r| (2..30).contains(&r)), "{picks:?}");
}

#[test]
fn bait_asks_only_where_the_model_is_unsure() {
    // The first blob unsure, the others settled (zero Fisher weight: a label there changes
    // nothing). Few labels per class, so BAIT designs with the head's probabilities.
    assert_picks_only_from_the_first_blob(StrategyKind::Bait, &BLOB_LABELS, [0.4, 0.3, 0.3], [0.0, 1.0, 0.0], 10);
}

#[test]
fn bait_without_a_model_falls_back_to_the_cold_start() {
    let e = blobs();
    let candidates: Vec<usize> = (0..90).collect();
    let pool = view(&e, &candidates, &[], None, 3, None);
    let pick = |kind| select(kind, &pool, 3, &mut ChaCha8Rng::seed_from_u64(6));
    assert_eq!(pick(StrategyKind::Bait), pick(StrategyKind::AdaptiveMargin));
}

#[test]
fn adaptive_bait_is_bait_while_most_of_the_pool_is_unsettled() {
    let (e, head, candidates) = labelled_blobs();
    let unsure: Vec<f32> =
        candidates.iter().flat_map(|&r| [0.34 + 0.001 * r as f32, 0.33, 0.33 - 0.001 * r as f32]).collect();
    let labelled = enough_labels();
    let pool = view(&e, &candidates, &labelled, Some(&unsure), 3, Some(&head));
    assert!(!few_labels_per_class(&pool));
    let pick = |kind| select(kind, &pool, 6, &mut ChaCha8Rng::seed_from_u64(4));
    assert_eq!(pick(StrategyKind::AdaptiveBait), pick(StrategyKind::Bait));
    assert_ne!(pick(StrategyKind::AdaptiveBait), pick(StrategyKind::PowerMargin));
}

#[test]
fn adaptive_bait_is_bait_while_labels_per_class_are_few() {
    let (e, head, candidates) = labelled_blobs();
    // Half the pool settled, so that after enough labels BAIT would rank only part of a batch.
    let probs: Vec<f32> =
        candidates.iter().flat_map(|&r| if r < 45 { [0.4, 0.3, 0.3] } else { [0.02, 0.96, 0.02] }).collect();
    let few = view(&e, &candidates, &BLOB_LABELS, Some(&probs), 3, Some(&head));
    let pick = |pool: &Pool, kind| select(kind, pool, 6, &mut ChaCha8Rng::seed_from_u64(5));
    assert_eq!(pick(&few, StrategyKind::AdaptiveBait), pick(&few, StrategyKind::Bait));
    let labelled = enough_labels();
    let enough = view(&e, &candidates, &labelled, Some(&probs), 3, Some(&head));
    assert!(!few_labels_per_class(&enough));
    assert!(few_labels_per_class(&view(&e, &candidates, &labelled[1..], Some(&probs), 3, Some(&head))));
    assert_ne!(pick(&enough, StrategyKind::AdaptiveBait), pick(&enough, StrategyKind::Bait));
}

#[test]
fn bait_picks_only_eligible_rows_while_weighing_the_whole_pool() {
    let (e, head, candidates) = labelled_blobs();
    // Equally unsure everywhere: unrestricted, BAIT spreads three picks over the three blobs
    // (`bait_spreads_a_batch_over_what_the_labels_do_not_cover`); restricted to the last
    // blob's positions it must stay there.
    let probs = vec![1.0f32 / 3.0; candidates.len() * 3];
    let pool = view(&e, &candidates, &BLOB_LABELS, Some(&probs), 3, Some(&head));
    let last_blob: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i] >= 62).collect();
    let picks = super::fisher::bait(&pool, &head, &probs, 3, Some(&last_blob), &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(distinct(&picks), 3, "{picks:?}");
    assert!(picks.iter().all(|&r| r >= 62), "{picks:?}");
    let few = super::fisher::bait(&pool, &head, &probs, 5, Some(&last_blob[..2]), &mut ChaCha8Rng::seed_from_u64(3));
    assert_eq!(few.len(), 2, "no more picks than eligible rows: {few:?}");
}

#[test]
fn adaptive_bait_ranks_with_bait_inside_the_uncertain_band_when_all_is_settled() {
    // Everything settled, the first blob least so. Two picks: the band BAIT chooses from is
    // the 20 least sure rows, all in the first blob.
    assert_picks_only_from_the_first_blob(
        StrategyKind::AdaptiveBait,
        &enough_labels(),
        [0.9, 0.05, 0.05],
        [0.005, 0.99, 0.005],
        2,
    );
}

/// Two blobs labelled twice each, the rest of both blobs as candidates, and a head on them.
fn two_class_blobs() -> (Embeddings, Head, [usize; 4], Vec<usize>) {
    let e = blobs();
    let labelled = [0usize, 1, 30, 31];
    let y: Vec<i64> = labelled.iter().map(|&r| (r / 30) as i64).collect();
    let head =
        crate::ml::head::Head::fit(&crate::ml::head::HeadParams::default(), &e.gather(&labelled), &y, 2, None, None)
            .unwrap();
    (e, head, labelled, (2..30).chain(32..60).collect())
}

#[test]
fn adaptive_bait_on_two_classes_is_bait_while_most_is_unsettled_then_adaptive_margin() {
    let (e, head, labelled, candidates) = two_class_blobs();
    let pick = |probs: &[f32], kind| {
        let pool = view(&e, &candidates, &labelled, Some(probs), 2, Some(&head));
        select(kind, &pool, 6, &mut ChaCha8Rng::seed_from_u64(9))
    };
    // Half the pool settled (the second blob): not below the switch, so adaptive margin.
    let half: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { [0.55, 0.45] } else { [0.05, 0.95] }).collect();
    assert_eq!(pick(&half, StrategyKind::AdaptiveBait), pick(&half, StrategyKind::AdaptiveMargin));
    // Nothing settled: BAIT.
    let unsure: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { [0.55, 0.45] } else { [0.4, 0.6] }).collect();
    assert_eq!(pick(&unsure, StrategyKind::AdaptiveBait), pick(&unsure, StrategyKind::Bait));
    assert_ne!(pick(&unsure, StrategyKind::AdaptiveBait), pick(&unsure, StrategyKind::AdaptiveMargin));
    let pool = view(&e, &candidates, &[], None, 2, None);
    let pick = |kind| select(kind, &pool, 6, &mut ChaCha8Rng::seed_from_u64(9));
    assert_eq!(pick(StrategyKind::AdaptiveBait), pick(StrategyKind::AdaptiveMargin), "both cold-start");
}

#[test]
fn two_class_bait_designs_with_its_own_model_rather_than_the_heads_probabilities() {
    let (e, head, labelled, candidates) = two_class_blobs();
    let pick = |probs: &[f32]| {
        let pool = view(&e, &candidates, &labelled, Some(probs), 2, Some(&head));
        select(StrategyKind::Bait, &pool, 5, &mut ChaCha8Rng::seed_from_u64(4))
    };
    // The first blob sure and the second unsure, then the other way round: with the head's
    // probabilities BAIT would ask only in the unsure blob each time (as the three-class test
    // `bait_asks_only_where_the_model_is_unsure` checks); its design model ignores them.
    let first_sure: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { [1.0, 0.0] } else { [0.5, 0.5] }).collect();
    let second_sure: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { [0.5, 0.5] } else { [0.0, 1.0] }).collect();
    let picks = pick(&first_sure);
    assert_eq!(distinct(&picks), 5, "{picks:?}");
    assert_eq!(picks, pick(&second_sure));
}

#[test]
fn three_class_bait_designs_with_its_own_model_once_labels_per_class_are_enough() {
    let (e, head, candidates) = labelled_blobs();
    let pick = |labelled: &[usize], probs: &[f32]| {
        let pool = view(&e, &candidates, labelled, Some(probs), 3, Some(&head));
        select(StrategyKind::Bait, &pool, 5, &mut ChaCha8Rng::seed_from_u64(4))
    };
    // Only the first blob unsure, then only the last: with few labels BAIT follows the head's
    // probabilities; with enough it designs with its own model, which ignores them.
    let settled = [0.0, 1.0, 0.0];
    let unsure = [0.4, 0.3, 0.3];
    let first: Vec<f32> = candidates.iter().flat_map(|&r| if r < 30 { unsure } else { settled }).collect();
    let last: Vec<f32> = candidates.iter().flat_map(|&r| if r >= 60 { unsure } else { settled }).collect();
    assert_ne!(pick(&BLOB_LABELS, &first), pick(&BLOB_LABELS, &last));
    let enough = enough_labels();
    let picks = pick(&enough, &first);
    assert_eq!(distinct(&picks), 5, "{picks:?}");
    assert_eq!(picks, pick(&enough, &last));
}
