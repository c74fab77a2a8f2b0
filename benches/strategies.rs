//! Time to pick one batch with each model-based strategy: `cargo bench --bench strategies`.
//! Batches of 10 (the simulator's step) and 200 (the depth the server's trainer ranks).
//!
//! Pools shaped like the demo data: 9,600 candidates of 384-d (MiniLM text, RT sentiment's
//! pool) with 2 and 10 classes, 8,500 of 384-d with 20 classes (20 Newsgroups by group's
//! pool), and 7,500 of 1,280-d (MobileNetV2 images, MNIST's pool) with 10 classes; 200
//! labelled rows, and 400 for the 10- and 20-class pools; a logistic head fitted on
//! them scores the pool. What `adaptive_bait` costs depends on the regime: while under half
//! the pool is settled, or with three or more classes and fewer than 30 labels per class, it
//! is BAIT; after that BAIT ranks only the share of the batch equal to the settled share of
//! the pool, which is printed beside the times.
//! A plain `harness = false` main, not criterion: each figure is the median of a few picks.

use std::time::Instant;

use lightbulb::ml::embeddings::Embeddings;
use lightbulb::ml::head::{Head, HeadParams};
use lightbulb::ml::strategy::{select, Pool, StrategyKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCHES: [usize; 2] = [10, 200];

/// `rows` points around `classes` random centres, with noise wide enough that a share of the
/// pool stays ambiguous (as real embeddings do); row `i` belongs to class `i % classes`.
fn blobs(rows: usize, dim: usize, classes: usize, rng: &mut ChaCha8Rng) -> Embeddings {
    let centres: Vec<f32> = (0..classes * dim).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let mut emb = Embeddings::with_capacity(dim, rows);
    let mut row = vec![0f32; dim];
    for i in 0..rows {
        let centre = &centres[(i % classes) * dim..(i % classes + 1) * dim];
        for (v, c) in row.iter_mut().zip(centre) {
            *v = c + rng.random_range(-2.5f32..2.5);
        }
        emb.push(&row);
    }
    emb
}

/// Median of `xs` (non-empty).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run on a small
    // pool proves it works without spending minutes measuring.
    let measuring = std::env::args().any(|a| a == "--bench");
    // (candidates, dim, classes, labelled rows)
    let pools: &[(usize, usize, usize, usize)] = if measuring {
        &[
            (9_600, 384, 2, 200),
            (9_600, 384, 10, 200),
            (9_600, 384, 10, 400),
            (8_500, 384, 20, 400),
            (7_500, 1_280, 10, 200),
            (7_500, 1_280, 10, 400),
        ]
    } else {
        &[(600, 32, 3, 60), (600, 32, 3, 120)]
    };
    let repeats = if measuring { 5 } else { 1 };
    let kinds = [StrategyKind::Random, StrategyKind::AdaptiveMargin, StrategyKind::AdaptiveBait, StrategyKind::Bait];
    println!("## Seconds to pick a batch (median of {repeats})\n");
    println!(
        "| candidates | dim | classes | labelled | settled share | batch | random | adaptive_margin | adaptive_bait | bait |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for &(candidates, dim, classes, labelled) in pools {
        let emb = blobs(labelled + candidates, dim, classes, &mut rng);
        let rows: Vec<usize> = (labelled..labelled + candidates).collect();
        let labelled: Vec<usize> = (0..labelled).collect();
        let y: Vec<i64> = labelled.iter().map(|&r| (r % classes) as i64).collect();
        let head = match Head::fit(&HeadParams::default(), &emb.gather(&labelled), &y, classes, None, None) {
            Ok(head) => head,
            Err(e) => {
                println!("| {candidates} | {dim} | {classes} | {} | head failed: {e:#} |", labelled.len());
                continue;
            }
        };
        let probs = head.score(&emb, Some(&rows));
        let settled = probs.chunks_exact(classes).filter(|p| p.iter().any(|&v| v >= 0.9)).count();
        let pool = Pool {
            embeddings: &emb,
            candidates: &rows,
            labelled: &labelled,
            labels: &y,
            probs: Some(&probs),
            num_classes: classes,
            head: Some(&head),
        };
        for batch in BATCHES {
            let times: Vec<String> = kinds
                .iter()
                .map(|&kind| {
                    let secs: Vec<f64> = (0..repeats)
                        .map(|i| {
                            let t = Instant::now();
                            let picks = select(kind, &pool, batch, &mut ChaCha8Rng::seed_from_u64(i as u64));
                            assert_eq!(picks.len(), batch, "{kind:?} picked {picks:?}");
                            t.elapsed().as_secs_f64()
                        })
                        .collect();
                    format!("{:.4}", median(secs))
                })
                .collect();
            println!(
                "| {candidates} | {dim} | {classes} | {} | {:.2} | {batch} | {} |",
                labelled.len(),
                settled as f64 / candidates as f64,
                times.join(" | ")
            );
        }
    }
}
