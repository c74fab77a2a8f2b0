//! Evaluation of predictions against human TEST labels: accuracy with a Wilson interval,
//! confusion matrix, per-class precision / recall / F1 and macro-F1.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassStats {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub n: usize,
    pub accuracy: f64,
    /// Wilson 95% interval of the accuracy.
    pub accuracy_ci: (f64, f64),
    /// Mean F1 over the classes that occur in `y_true` or `y_pred` (scikit-learn's macro).
    pub macro_f1: f64,
    /// `confusion[true][pred]`.
    pub confusion: Vec<Vec<usize>>,
    pub per_class: Vec<ClassStats>,
}

/// Scores predictions; pairs with a label outside `0..num_classes` are ignored.
pub fn evaluate(y_true: &[i64], y_pred: &[i64], num_classes: usize) -> Evaluation {
    let mut confusion = vec![vec![0usize; num_classes]; num_classes];
    let in_range = |v: i64| v >= 0 && (v as usize) < num_classes;
    let mut n = 0;
    for (&t, &p) in y_true.iter().zip(y_pred) {
        if in_range(t) && in_range(p) {
            confusion[t as usize][p as usize] += 1;
            n += 1;
        }
    }
    let correct: usize = (0..num_classes).map(|k| confusion[k][k]).sum();
    let mut per_class = Vec::with_capacity(num_classes);
    let (mut f1_sum, mut f1_count) = (0.0, 0usize);
    for k in 0..num_classes {
        let tp = confusion[k][k];
        let support: usize = confusion[k].iter().sum();
        let predicted: usize = confusion.iter().map(|row| row[k]).sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        if support > 0 || predicted > 0 {
            f1_sum += f1;
            f1_count += 1;
        }
        per_class.push(ClassStats { precision, recall, f1, support });
    }
    Evaluation {
        n,
        accuracy: ratio(correct, n),
        accuracy_ci: wilson(correct, n, 1.96),
        macro_f1: if f1_count > 0 { f1_sum / f1_count as f64 } else { 0.0 },
        confusion,
        per_class,
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Wilson score interval for a binomial proportion; (0, 1) when `n == 0`.
pub fn wilson(successes: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let nf = n as f64;
    let p = successes.min(n) as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Index of the largest value in each row of a flat row-major `[n x num_classes]` matrix
/// (first index on ties).
pub fn argmax_rows(probs: &[f32], num_classes: usize) -> Vec<i64> {
    if num_classes == 0 {
        return Vec::new();
    }
    probs
        .chunks_exact(num_classes)
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best as i64
        })
        .collect()
}
