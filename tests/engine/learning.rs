//! Tests: learning (heads, calibration, metrics, auto-labelling, model files).
//!
//! Synthetic data with known structure: Gaussian blobs whose separation, imbalance and
//! overlap are chosen so each property has a clear expected outcome.

// Helpers shared by the tests panic on bad fixtures just like the tests themselves.
#![allow(clippy::unwrap_used)]

use lightbulb::ml::autolabel::{expected_precision, propose};
use lightbulb::ml::calibration::{fit_temperature, nll};
use lightbulb::ml::embeddings::Embeddings;
use lightbulb::ml::encoder::{EncoderSpec, Modality};
use lightbulb::ml::head::{Head, HeadKind, HeadParams};
use lightbulb::ml::metrics::{argmax_rows, evaluate, wilson};
use lightbulb::ml::model_io::SavedModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// Rows drawn from N(mean_k, sigma^2 I) with class k chosen by `priors`; class means are
/// random directions scaled to `sep`, plus a shared positive offset like ReLU features.
struct Blobs {
    means: Vec<Vec<f32>>,
    priors: Vec<f64>,
    sigma: f32,
}

impl Blobs {
    fn new(classes: usize, dim: usize, sep: f32, sigma: f32, priors: Vec<f64>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let means = (0..classes)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| gauss(&mut rng)).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| 3.0 + x / norm * sep).collect()
            })
            .collect();
        Self { means, priors, sigma }
    }

    fn sample(&self, n: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut k = self.priors.len() - 1;
            for (i, p) in self.priors.iter().enumerate() {
                acc += p;
                if u < acc {
                    k = i;
                    break;
                }
            }
            x.extend(self.means[k].iter().map(|m| m + self.sigma * gauss(&mut rng)));
            y.push(k as i64);
        }
        (x, y)
    }

    fn tensor(&self, n: usize, seed: u64) -> (Tensor, Vec<i64>) {
        let (x, y) = self.sample(n, seed);
        let d = self.means[0].len() as i64;
        (Tensor::from_slice(&x).reshape([n as i64, d]), y)
    }
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn probs_vec(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.flatten(0, -1)).unwrap()
}

fn accuracy(head: &Head, x: &Tensor, y: &[i64]) -> f64 {
    let pred = argmax_rows(&probs_vec(&head.predict_proba(x)), head.num_classes());
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

#[test]
fn separable_blobs_are_learned_by_both_heads() {
    let blobs = Blobs::new(4, 64, 4.0, 1.0, vec![0.25; 4], 1);
    let (xtr, ytr) = blobs.tensor(80, 2);
    let (xte, yte) = blobs.tensor(400, 3);
    for kind in [HeadKind::Logistic, HeadKind::Mlp] {
        let head = Head::fit_calibrated(&HeadParams::for_kind(kind), &xtr, &ytr, 4, None, None).unwrap();
        let acc = accuracy(&head, &xte, &yte);
        // The MLP has 20 labels per class for 64 dims and ~17k weights: a little behind.
        let floor = if kind == HeadKind::Logistic { 0.95 } else { 0.93 };
        assert!(acc >= floor, "{kind:?}: accuracy {acc}");
        let p = probs_vec(&head.predict_proba(&xte));
        for row in p.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn class_weighting_raises_minority_recall() {
    // 95/5 with heavy overlap: unweighted, the minority is mostly swallowed by the majority.
    let blobs = Blobs::new(2, 16, 2.0, 1.0, vec![0.95, 0.05], 4);
    let (xtr, ytr) = blobs.tensor(600, 5);
    let (xte, yte) = blobs.tensor(4000, 6);
    let recall = |balanced: bool| {
        let params = HeadParams { class_weighting: balanced, ..HeadParams::default() };
        let head = Head::fit(&params, &xtr, &ytr, 2, None, None).unwrap();
        let pred = argmax_rows(&probs_vec(&head.predict_proba(&xte)), 2);
        evaluate(&yte, &pred, 2).per_class[1].recall
    };
    let (off, on) = (recall(false), recall(true));
    assert!(on > off + 0.08, "minority recall: weighted {on}, unweighted {off}");
}

#[test]
fn sample_weights_downweight_rows() {
    // Two copies of the same point with opposite labels: the heavier label wins.
    let x = Tensor::from_slice(&[1f32, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]).reshape([4, 2]);
    let y = [0, 1, 1, 0];
    let w = [1.0, 0.2, 1.0, 0.2];
    let params = HeadParams { class_weighting: false, ..HeadParams::default() };
    let head = Head::fit(&params, &x, &y, 2, Some(&w), None).unwrap();
    let p = probs_vec(&head.predict_proba(&x));
    assert!(p[0] > 0.5 && p[5] > 0.5, "{p:?}");
}

#[test]
fn fits_are_deterministic() {
    let blobs = Blobs::new(3, 48, 2.0, 1.0, vec![0.5, 0.3, 0.2], 7);
    let (xtr, ytr) = blobs.tensor(120, 8);
    let (xte, _) = blobs.tensor(200, 9);
    for kind in [HeadKind::Logistic, HeadKind::Mlp] {
        let params = HeadParams { seed: 42, ..HeadParams::for_kind(kind) };
        let a = Head::fit_calibrated(&params, &xtr, &ytr, 3, None, None).unwrap();
        let b = Head::fit_calibrated(&params, &xtr, &ytr, 3, None, None).unwrap();
        assert_eq!(a.temperature(), b.temperature());
        assert_eq!(probs_vec(&a.predict_proba(&xte)), probs_vec(&b.predict_proba(&xte)), "{kind:?}");
    }
}

#[test]
fn calibration_improves_held_out_nll_and_auto_label_precision() {
    // Overlapping classes in many dimensions with few labels: the fit is overconfident.
    let blobs = Blobs::new(3, 200, 3.0, 1.0, vec![1.0 / 3.0; 3], 10);
    let (xtr, ytr) = blobs.tensor(150, 11);
    let (xte, yte) = blobs.tensor(3000, 12);
    let params = HeadParams::default();
    let head = Head::fit_calibrated(&params, &xtr, &ytr, 3, None, None).unwrap();
    let logits = probs_vec(&head.logits(&xte));
    let raw = nll(&logits, &yte, 3, 1.0);
    let cal = nll(&logits, &yte, 3, head.temperature());
    assert!(cal <= raw + 1e-9, "calibrated NLL {cal} > raw {raw} (T = {})", head.temperature());
    let est = expected_precision(&probs_vec(&head.predict_proba(&xte)), &yte, 3, 0.9);
    let precision = est.precision.unwrap();
    assert!(precision >= 0.85, "precision at 0.9: {precision} on {} items", est.covered);
    assert!(est.covered > 100, "only {} items above 0.9", est.covered);
}

#[test]
fn temperature_search_sharpens_underconfident_logits() {
    // Perfectly separated but timid logits: T < 1 lowers the NLL.
    let logits = Tensor::from_slice(&[0.5f32, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.5]).reshape([4, 2]);
    let t = fit_temperature(&logits, &[0, 1, 0, 1]);
    assert!(t < 0.1, "{t}");
    // Nothing to fit: stays 1.
    assert_eq!(fit_temperature(&Tensor::zeros([3, 2], (tch::Kind::Float, tch::Device::Cpu)), &[0, 1, 0]), 1.0);
}

#[test]
fn wilson_matches_known_values() {
    let (lo, hi) = wilson(8, 10, 1.96);
    assert!((lo - 0.490).abs() < 1e-3 && (hi - 0.943).abs() < 1e-3, "{lo} {hi}");
    let (lo, hi) = wilson(0, 10, 1.96);
    assert!(lo.abs() < 1e-12 && (hi - 0.2775).abs() < 1e-3, "{lo} {hi}");
    let (lo, hi) = wilson(50, 100, 1.96);
    assert!((lo - 0.4038).abs() < 1e-3 && (hi - 0.5962).abs() < 1e-3, "{lo} {hi}");
    assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
}

#[test]
fn evaluate_matches_hand_computation() {
    // true: 0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
    let e = evaluate(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
    assert_eq!(e.n, 6);
    assert_eq!(e.confusion, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
    assert!((e.accuracy - 4.0 / 6.0).abs() < 1e-12);
    // class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1/2, F1 1/2; class 2: P 1/2, R 1, F1 2/3
    let f1: Vec<f64> = e.per_class.iter().map(|c| c.f1).collect();
    for (got, want) in f1.iter().zip([0.8, 0.5, 2.0 / 3.0]) {
        assert!((got - want).abs() < 1e-12, "{f1:?}");
    }
    assert!((e.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
    assert!((e.per_class[2].precision - 0.5).abs() < 1e-12);
    assert_eq!(e.per_class.iter().map(|c| c.support).collect::<Vec<_>>(), vec![3, 2, 1]);
    assert!((e.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    assert_eq!(argmax_rows(&[0.1, 0.9, 0.5, 0.5, 0.7, 0.3], 2), vec![1, 0, 0]);
}

#[test]
fn propose_groups_orders_and_thresholds() {
    let probs = [0.99f32, 0.01, 0.2, 0.8, 0.97, 0.03, 0.02, 0.98, 0.995, 0.005, 0.5, 0.5];
    let rows = [10, 11, 12, 13, 14, 15];
    let batches = propose(&probs, &rows, 2, 0.95, 2);
    let got: Vec<(usize, Vec<usize>)> =
        batches.iter().map(|b| (b.class, b.items.iter().map(|i| i.0).collect())).collect();
    assert_eq!(got, vec![(0, vec![14, 10]), (0, vec![12]), (1, vec![13])]);
    assert_eq!(batches[0].items[0].1, 0.995);
    assert!(propose(&probs, &rows, 2, 0.999, 10).is_empty());
}

#[test]
fn expected_precision_counts_covered_items() {
    let probs = [0.99f32, 0.01, 0.95, 0.05, 0.6, 0.4, 0.02, 0.98];
    let est = expected_precision(&probs, &[0, 1, 0, 1], 2, 0.9);
    assert_eq!((est.covered, est.correct), (3, 2));
    assert!((est.precision.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((est.coverage - 0.75).abs() < 1e-12);
    assert!(expected_precision(&probs, &[0, 1, 0, 1], 2, 0.999).precision.is_none());
}

fn embeddings_from(x: &[f32], dim: usize) -> Embeddings {
    let mut e = Embeddings::new(dim);
    for row in x.chunks(dim) {
        e.push(row);
    }
    e
}

/// `Head::score` against the f32 tensor path. At 40 features both heads score in f32 (the
/// logistic head through its fused kernel, the MLP through torch: 40 is not a multiple of 32)
/// and agree to rounding. At 64 the MLP's first layer runs in int8, which moves probabilities
/// by a little and hardly ever the top class.
#[test]
fn score_matches_predict_proba() {
    for (kind, dim, tolerance) in [(HeadKind::Logistic, 40, 1e-6), (HeadKind::Mlp, 40, 1e-6), (HeadKind::Mlp, 64, 5e-2)]
    {
        let blobs = Blobs::new(3, dim, 3.0, 1.0, vec![1.0 / 3.0; 3], 13);
        let (xtr, ytr) = blobs.tensor(90, 14);
        // More rows than one scoring chunk, so the parallel path and chunk edges are exercised.
        let (pool, _) = blobs.sample(2500, 15);
        let emb = embeddings_from(&pool, dim);
        let head = Head::fit_calibrated(&HeadParams::for_kind(kind), &xtr, &ytr, 3, None, None).unwrap();
        let all: Vec<usize> = (0..emb.len()).collect();
        let pick: Vec<usize> = (0..emb.len()).rev().step_by(3).collect();
        for rows in [&all, &pick] {
            let want = probs_vec(&head.predict_proba(&emb.gather(rows)));
            let got = head.score(&emb, (rows.len() < all.len()).then_some(rows.as_slice()));
            let max = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(max <= tolerance, "{kind:?} at {dim} features, {} rows: {max}", rows.len());
            let same = argmax_rows(&want, 3).iter().zip(argmax_rows(&got, 3)).filter(|(a, b)| **a == *b).count();
            assert!(
                same as f64 >= 0.995 * rows.len() as f64,
                "{kind:?} at {dim} features: top class differs on {} rows",
                rows.len() - same
            );
        }
    }
}

fn saved(kind: HeadKind) -> (SavedModel, Embeddings) {
    let blobs = Blobs::new(3, 24, 3.0, 1.0, vec![1.0 / 3.0; 3], 16);
    let (xtr, ytr) = blobs.tensor(60, 17);
    let (pool, _) = blobs.sample(300, 18);
    let head = Head::fit_calibrated(&HeadParams::for_kind(kind), &xtr, &ytr, 3, None, None).unwrap();
    let model = SavedModel {
        classes: vec!["a".into(), "b".into(), "c".into()],
        encoder: EncoderSpec { id: "test@0".into(), modality: Modality::Text, dim: 24 },
        head,
        metrics: serde_json::json!({"accuracy": 0.9}),
        labels_used: 60,
        created_at: lightbulb::ml::model_io::unix_now(),
    };
    (model, embeddings_from(&pool, 24))
}

#[test]
fn saved_model_scores_identically() {
    for kind in [HeadKind::Logistic, HeadKind::Mlp] {
        let (model, emb) = saved(kind);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = SavedModel::load(dir.path()).unwrap();
        assert_eq!(loaded.classes, model.classes);
        assert_eq!(loaded.encoder, model.encoder);
        assert_eq!(loaded.labels_used, 60);
        assert_eq!(loaded.metrics, model.metrics);
        assert_eq!(loaded.head.temperature(), model.head.temperature());
        assert_eq!(loaded.head.kind(), kind);
        assert_eq!(loaded.head.score(&emb, None), model.head.score(&emb, None), "{kind:?}");
    }
}

#[test]
fn corrupted_or_mismatched_models_are_refused_with_a_clear_error() {
    let (model, _) = saved(HeadKind::Logistic);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let weights = dir.path().join("head.safetensors");
    let json = dir.path().join("model.json");

    // Flipped byte in the weights.
    let good = std::fs::read(&weights).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    std::fs::write(&weights, &bad).unwrap();
    let err = format!("{:#}", SavedModel::load(dir.path()).unwrap_err());
    assert!(err.contains("head.safetensors") && err.contains("sha256"), "{err}");
    std::fs::write(&weights, &good).unwrap();
    assert!(SavedModel::load(dir.path()).is_ok());

    // model.json disagreeing with itself / with the weights.
    let text = std::fs::read_to_string(&json).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        f(&mut v);
        std::fs::write(&json, serde_json::to_string(&v).unwrap()).unwrap();
        format!("{:#}", SavedModel::load(dir.path()).unwrap_err())
    };
    let err = edit(&|v| v["format_version"] = 99.into());
    assert!(err.contains("model.json") && err.contains("format version 99"), "{err}");
    let err = edit(&|v| v["classes"] = serde_json::json!(["a", "b"]));
    assert!(err.contains("model.json") && err.contains("2 class names"), "{err}");
    let err = edit(&|v| v["head"]["layers"][0] = serde_json::json!([24, 4]));
    assert!(err.contains("layer0.w") && err.contains("shape"), "{err}");
    std::fs::write(&json, "{ not json").unwrap();
    let err = format!("{:#}", SavedModel::load(dir.path()).unwrap_err());
    assert!(err.contains("model.json"), "{err}");
}

/// Tuning harness (not a check): macro-F1 of head settings on a real embedding cache, at
/// random-label counts and with entropy active learning. `LB_TUNE_DIR` holds `vectors.f16`,
/// `keys.jsonl`, `meta.json` (an embedding cache) and `truth.csv`.
#[test]
#[ignore]
fn tune_heads_on_cache() {
    use lightbulb::ml::head::Scaling;
    use rand::seq::SliceRandom;
    let Ok(dir) = std::env::var("LB_TUNE_DIR") else { return };
    let dir = std::path::PathBuf::from(dir);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let dim = meta["encoder"]["dim"].as_u64().unwrap() as usize;
    let raw = std::fs::read(dir.join("vectors.f16")).unwrap();
    let keys: Vec<String> = std::fs::read_to_string(dir.join("keys.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<(String, String)>(l).unwrap().0)
        .collect();
    let mut emb = Embeddings::new(dim);
    emb.extend_from_le_bytes(&raw[..keys.len() * dim * 2]);
    let index: std::collections::HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut rdr = csv::Reader::from_path(dir.join("truth.csv")).unwrap();
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut ys = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let id = rec[0].rsplit('/').next().unwrap().to_string();
        let Some(&r) = index.get(id.as_str()) else { continue };
        let label = rec[1].to_string();
        let k = names.iter().position(|n| *n == label).unwrap_or_else(|| {
            names.push(label.clone());
            names.len() - 1
        });
        rows.push(r);
        ys.push(k as i64);
    }
    let c = names.len();
    eprintln!("{} items, {c} classes, dim {dim}", rows.len());
    let base = HeadParams::default();
    let mut configs: Vec<(String, HeadParams)> = vec![(
        "sk-like std C1 noCW".into(),
        HeadParams {
            scaling: Scaling::Standard,
            std_prior: 0.0,
            c: 1.0,
            class_weighting: false,
            c_candidates: Vec::new(),
            ..base.clone()
        },
    )];
    let extra = std::env::var("LB_TUNE_CONFIGS").unwrap_or_default();
    for spec in extra.split(';').filter(|s| !s.is_empty()) {
        // e.g. "l2std:10:1" = scaling:prior:C, or "mlp:l2std:10:1e-3"
        let parts: Vec<&str> = spec.split(':').collect();
        let scaling = |s: &str| match s {
            "none" => Scaling::None,
            "std" => Scaling::Standard,
            "l2" => Scaling::L2,
            _ => Scaling::L2Standard,
        };
        let p = if parts[0] == "mlp" {
            HeadParams {
                kind: HeadKind::Mlp,
                scaling: scaling(parts[1]),
                std_prior: parts[2].parse().unwrap(),
                lr: parts[3].parse().unwrap(),
                epochs: parts.get(4).map_or(base.epochs, |v| v.parse().unwrap()),
                ..base.clone()
            }
        } else {
            HeadParams {
                scaling: scaling(parts[0]),
                std_prior: parts[1].parse().unwrap(),
                c: parts[2].parse().unwrap(),
                c_candidates: if parts.get(3) == Some(&"grid") { base.c_candidates.clone() } else { Vec::new() },
                ..base.clone()
            }
        };
        configs.push((spec.to_string(), p));
    }
    let counts = [10usize, 20, 50, 78, 100, 200, 500];
    let reps: u64 = std::env::var("LB_TUNE_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let al = std::env::var("LB_TUNE_AL").is_ok();
    let f1_of = |head: &Head, test: &[usize]| {
        let trows: Vec<usize> = test.iter().map(|&i| rows[i]).collect();
        let ty: Vec<i64> = test.iter().map(|&i| ys[i]).collect();
        evaluate(&ty, &argmax_rows(&head.score(&emb, Some(&trows)), c), c).macro_f1
    };
    let fit = |p: &HeadParams, idx: &[usize]| {
        let r: Vec<usize> = idx.iter().map(|&i| rows[i]).collect();
        let y: Vec<i64> = idx.iter().map(|&i| ys[i]).collect();
        Head::fit_calibrated(p, &emb.gather(&r), &y, c, None, None).unwrap()
    };
    for (name, p) in &configs {
        let mut sums = vec![0f64; counts.len() + 1];
        let mut al_sums = [0f64; 3];
        let mut nll_sum = 0.0;
        let t0 = std::time::Instant::now();
        for rep in 0..reps {
            let mut rng = ChaCha8Rng::seed_from_u64(rep);
            let mut all: Vec<usize> = (0..rows.len()).collect();
            all.shuffle(&mut rng);
            let n_test = rows.len() / 4;
            let (test, pool) = all.split_at(n_test);
            for (ci, &n) in counts.iter().enumerate() {
                let mut idx = pool[..n.min(pool.len())].to_vec();
                // guarantee two classes like the simulator's random warm-up would eventually
                if idx.iter().all(|&i| ys[i] == ys[idx[0]]) {
                    idx.push(*pool.iter().find(|&&i| ys[i] != ys[idx[0]]).unwrap());
                }
                let head = fit(p, &idx);
                sums[ci] += f1_of(&head, test);
                if n == 200 {
                    let trows: Vec<usize> = test.iter().map(|&i| rows[i]).collect();
                    let ty: Vec<i64> = test.iter().map(|&i| ys[i]).collect();
                    let lg: Vec<f32> = Vec::try_from(head.logits(&emb.gather(&trows)).flatten(0, -1)).unwrap();
                    nll_sum += nll(&lg, &ty, c, head.temperature());
                }
            }
            let ceiling = fit(p, pool);
            sums[counts.len()] += f1_of(&ceiling, test);
            if al {
                let mut labelled: Vec<usize> = pool[..10].to_vec();
                let mut unl: Vec<usize> = pool[10..].to_vec();
                for (stop, slot) in [(78usize, 0usize), (200, 1), (500, 2)] {
                    while labelled.len() < stop {
                        let head = fit(p, &labelled);
                        let urows: Vec<usize> = unl.iter().map(|&i| rows[i]).collect();
                        let pr = head.score(&emb, Some(&urows));
                        let mut ent: Vec<(f32, usize)> = pr
                            .chunks(c)
                            .enumerate()
                            .map(|(j, r)| (-r.iter().map(|&q| if q > 0.0 { q * q.ln() } else { 0.0 }).sum::<f32>(), j))
                            .collect();
                        ent.sort_by(|a, b| b.0.total_cmp(&a.0));
                        let take = (stop - labelled.len()).min(10);
                        let mut chosen: Vec<usize> = ent[..take].iter().map(|e| e.1).collect();
                        chosen.sort_unstable_by(|a, b| b.cmp(a));
                        for j in chosen {
                            labelled.push(unl.swap_remove(j));
                        }
                    }
                    al_sums[slot] += f1_of(&fit(p, &labelled), test);
                }
            }
        }
        let r = reps as f64;
        let cells: Vec<String> = sums.iter().map(|s| format!("{:.4}", s / r)).collect();
        eprintln!(
            "{name:<28} {}  | AL78 {:.4} AL200 {:.4} AL500 {:.4} | nll200 {:.4} | {:.1}s",
            cells.join(" "),
            al_sums[0] / r,
            al_sums[1] / r,
            al_sums[2] / r,
            nll_sum / r,
            t0.elapsed().as_secs_f64()
        );
    }
    eprintln!("columns: {counts:?} ceiling");
}
