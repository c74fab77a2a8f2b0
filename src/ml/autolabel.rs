//! Auto-labelling: propose confident predictions in per-class batches for one-click review,
//! and estimate the precision of such labels on the human TEST stage.

use serde::Serialize;

use crate::ml::metrics::wilson;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AutoLabelBatch {
    pub class: usize,
    /// (row, calibrated top probability), most confident first.
    pub items: Vec<(usize, f32)>,
}

/// Groups rows whose calibrated top probability is >= `threshold` by predicted class, most
/// confident first (ties: lower row first), in batches of at most `max_batch` (0 = unbounded).
/// `probs` is flat `[rows.len() x num_classes]`, row `i` belonging to `rows[i]`. Batches come
/// class by class (ascending), each class's most confident batch first.
pub fn propose(
    probs: &[f32],
    rows: &[usize],
    num_classes: usize,
    threshold: f64,
    max_batch: usize,
) -> Vec<AutoLabelBatch> {
    if num_classes == 0 {
        return Vec::new();
    }
    let mut groups: Vec<Vec<(usize, f32)>> = vec![Vec::new(); num_classes];
    for (row_probs, &row) in probs.chunks_exact(num_classes).zip(rows) {
        let mut best = 0;
        for (k, &p) in row_probs.iter().enumerate() {
            if p > row_probs[best] {
                best = k;
            }
        }
        let p = row_probs[best];
        if p.is_finite() && p as f64 >= threshold {
            groups[best].push((row, p));
        }
    }
    let size = if max_batch == 0 { usize::MAX } else { max_batch };
    let mut out = Vec::new();
    for (class, mut items) in groups.into_iter().enumerate() {
        items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for chunk in items.chunks(size.min(items.len().max(1))) {
            out.push(AutoLabelBatch { class, items: chunk.to_vec() });
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrecisionEstimate {
    pub threshold: f64,
    /// Test items whose calibrated top probability is at or above the threshold.
    pub covered: usize,
    /// Of those, the ones predicted right.
    pub correct: usize,
    /// `correct / covered`; None when nothing is covered.
    pub precision: Option<f64>,
    /// Wilson 95% interval of the precision.
    pub ci: Option<(f64, f64)>,
    /// `covered / test items`.
    pub coverage: f64,
}

/// Precision auto-labels would have at `threshold`, measured on the TEST stage: of the test
/// items whose calibrated top probability is >= threshold, the share predicted right.
pub fn expected_precision(test_probs: &[f32], test_y: &[i64], num_classes: usize, threshold: f64) -> PrecisionEstimate {
    let mut covered = 0;
    let mut correct = 0;
    let mut total = 0;
    if num_classes > 0 {
        for (row, &label) in test_probs.chunks_exact(num_classes).zip(test_y) {
            total += 1;
            let mut best = 0;
            for (k, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = k;
                }
            }
            if row[best] as f64 >= threshold {
                covered += 1;
                correct += usize::from(best as i64 == label);
            }
        }
    }
    PrecisionEstimate {
        threshold,
        covered,
        correct,
        precision: (covered > 0).then(|| correct as f64 / covered as f64),
        ci: (covered > 0).then(|| wilson(correct, covered, 1.96)),
        coverage: if total > 0 { covered as f64 / total as f64 } else { 0.0 },
    }
}
