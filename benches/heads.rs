//! Head training and pool re-scoring speed: `cargo bench --bench heads`.
//!
//! Training: 100 / 1,000 / 10,000 labelled rows of 1280-d, 10 classes, logistic and MLP
//! (`fit` and `fit_calibrated`). Re-scoring: 1,000,000 random 1280-d f16 rows (override with
//! `HEADS_BENCH_ROWS`) with `Head::score` against a plain single-threaded baseline (sequential
//! 64k-row chunks). Pool statistics (`Normalizer::fit_pool`) with and without the
//! covariance prior, what a server trainer's round pays for them once they are cached
//! (`PoolStatsCache`, 0.5 % of the pool gone since the fit), and what the prior does to a
//! calibrated fit. Peak memory is VmHWM from
//! /proc.
//! A plain `harness = false` main, not criterion: each figure is one long run.

use std::time::Instant;

use half::f16;
use lightbulb::ml::embeddings::Embeddings;
use lightbulb::ml::head::{Head, HeadKind, HeadParams};
use lightbulb::project::pool_stats::PoolStatsCache;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

const DIM: usize = 1280;
const CLASSES: usize = 10;

/// Peak resident set so far, in MiB (VmHWM).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Non-negative features with class structure, like pooled CNN activations.
fn dataset(n: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<i64>) {
    let centres: Vec<Vec<f32>> =
        (0..CLASSES).map(|_| (0..DIM).map(|_| rng.random_range(0.0f32..1.0)).collect()).collect();
    let mut x = Vec::with_capacity(n * DIM);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let k = i % CLASSES;
        x.extend(centres[k].iter().map(|&c| (c + rng.random_range(-0.8f32..0.8)).max(0.0)));
        y.push(k as i64);
    }
    (x, y)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run at small
    // sizes proves it works without spending minutes measuring.
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if measuring { &[100, 1_000, 10_000] } else { &[100, 1_000] };
    let default_rows = if measuring { 1_000_000 } else { 20_000 };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    println!("## Training (1280-d, {CLASSES} classes)\n");
    println!("| head | labels | fit s | fit_calibrated s |");
    println!("|---|---:|---:|---:|");
    let mut heads = Vec::new();
    for kind in [HeadKind::Logistic, HeadKind::Mlp] {
        for &n in sizes {
            let (x, y) = dataset(n, &mut rng);
            let xt = Tensor::from_slice(&x).reshape([n as i64, DIM as i64]);
            let params = HeadParams::for_kind(kind);
            let t = Instant::now();
            let fitted = Head::fit(&params, &xt, &y, CLASSES, None, None);
            let fit_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let calibrated = Head::fit_calibrated(&params, &xt, &y, CLASSES, None, None);
            let cal_s = t.elapsed().as_secs_f64();
            match (fitted, calibrated) {
                (Ok(_), Ok(head)) => {
                    println!("| {kind:?} | {n} | {fit_s:.3} | {cal_s:.3} |");
                    if n == 1_000 {
                        heads.push(head);
                    }
                }
                (Err(e), _) | (_, Err(e)) => println!("| {kind:?} | {n} | error: {e:#} | |"),
            }
        }
    }

    let rows: usize = std::env::var("HEADS_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(default_rows);
    let data: Vec<f16> = (0..rows * DIM).map(|_| f16::from_f32(rng.random_range(0.0f32..2.0))).collect();
    let Some(emb) = Embeddings::from_f16(DIM, data) else {
        println!("could not build embeddings");
        return;
    };
    let base_mib = peak_mib();
    println!("\n## Re-scoring {rows} x {DIM} f16 rows ({CLASSES} classes)\n");
    println!(
        "embeddings: {:.0} MiB; peak RSS before scoring: {base_mib:.0} MiB\n",
        (rows * DIM * 2) as f64 / 1048576.0
    );
    println!("| head | method | seconds | rows/s | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|");
    for head in &heads {
        let kind = head.kind();
        let t = Instant::now();
        let out = head.score(&emb, None);
        let s = t.elapsed().as_secs_f64();
        println!("| {kind:?} | score (chunked, rayon x cores) | {s:.3} | {:.0} | {:.0} |", rows as f64 / s, peak_mib());
        let subset: Vec<usize> = (0..rows).step_by(2).collect();
        let t = Instant::now();
        let _ = head.score(&emb, Some(&subset));
        let s = t.elapsed().as_secs_f64();
        println!("| {kind:?} | score, every 2nd row | {s:.3} | {:.0} | {:.0} |", subset.len() as f64 / s, peak_mib());
        // Baseline: plain sequential loop, 64k-row `Embeddings::range` chunks (f16 -> Vec<f32>
        // -> tensor copy), one `predict_proba` each, one torch thread. A single full-pool f32
        // tensor would need 2 x 5 GB at 1M rows.
        let t = Instant::now();
        let base = lightbulb::ml::device::with_threads(1, || {
            let mut out = Vec::with_capacity(rows * CLASSES);
            let mut start = 0;
            while start < rows {
                let end = (start + 65_536).min(rows);
                let p = head.predict_proba(&emb.range(start, end));
                out.extend(Vec::<f32>::try_from(p.flatten(0, -1)).unwrap_or_default());
                start = end;
            }
            out
        });
        let s = t.elapsed().as_secs_f64();
        println!(
            "| {kind:?} | baseline (64k chunks, 1 thread) | {s:.3} | {:.0} | {:.0} |",
            rows as f64 / s,
            peak_mib()
        );
        let diff = base.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let mean = base.iter().zip(&out).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>() / base.len().max(1) as f64;
        let top = |p: &[f32]| lightbulb::ml::metrics::argmax_rows(p, CLASSES);
        let same = top(&base).iter().zip(top(&out)).filter(|(a, b)| **a == *b).count();
        println!(
            "|  | score vs baseline: max abs difference {diff:.2e}, mean {mean:.2e}, same top class {:.4} | | | |",
            same as f64 / rows as f64
        );
    }
    drop(emb);
    pool_statistics(&mut rng, if measuring { 100_000 } else { 5_000 });
}

/// `fit_pool` over a pool of `rows` (it reads at most 50,000), plain and with the covariance
/// prior, and `fit_calibrated` on 1,000 labels with each.
fn pool_statistics(rng: &mut ChaCha8Rng, rows: usize) {
    let (x, _) = dataset(rows, rng);
    let mut emb = Embeddings::new(DIM);
    for row in x.chunks_exact(DIM) {
        emb.push(row);
    }
    let all: Vec<usize> = (0..rows).collect();
    let (x, y) = dataset(1_000, rng);
    let xt = Tensor::from_slice(&x).reshape([1_000, DIM as i64]);
    println!("\n## Pool statistics of {rows} x {DIM} rows, and a calibrated fit on 1,000 labels with them\n");
    println!("| covariance_prior | fit_pool s | trainer round, cached ms | fit_calibrated s |");
    println!("|---:|---:|---:|---:|");
    for beta in [0.0, 0.5] {
        let params = HeadParams { covariance_prior: beta, ..HeadParams::default() };
        // A trainer's first round fits the statistics (`Normalizer::fit_pool` on the sorted rows).
        let mut cache = PoolStatsCache::default();
        let t = Instant::now();
        let norm = match cache.get(&emb, &all, &params) {
            Ok(norm) => norm.clone(),
            Err(e) => {
                println!("| {beta} | error: {e:#} | | |");
                continue;
            }
        };
        let stats_s = t.elapsed().as_secs_f64();
        // Its next round: the pool lost 0.5 % of its items to the TEST stage.
        let next_round: Vec<usize> = all.iter().copied().filter(|r| r % 200 != 0).collect();
        let t = Instant::now();
        let round = cache.get(&emb, &next_round, &params);
        let cached_ms = t.elapsed().as_secs_f64() * 1e3;
        let hit = round.map(|n| n == &norm);
        let cached = match hit {
            Ok(true) => format!("{cached_ms:.2}"),
            Ok(false) => format!("{cached_ms:.2} (refitted)"),
            Err(e) => format!("error: {e:#}"),
        };
        let t = Instant::now();
        let fitted = Head::fit_calibrated(&params, &xt, &y, CLASSES, None, Some(&norm));
        let fit_s = t.elapsed().as_secs_f64();
        match fitted {
            Ok(_) => println!("| {beta} | {stats_s:.3} | {cached} | {fit_s:.3} |"),
            Err(e) => println!("| {beta} | {stats_s:.3} | {cached} | error: {e:#} |"),
        }
    }
}
