//! Per-item uncertainty of a predicted distribution: higher means "ask a person".

/// How to turn a distribution into one uncertainty score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncertainty {
    Entropy,
    /// `1 - (p1 - p2)`: small gap between the two most likely classes.
    Margin,
    /// `1 - p1`.
    LeastConfidence,
}

/// One score per row of the row-major `probs` (`[n x classes]`).
pub fn uncertainty_scores(probs: &[f32], classes: usize, measure: Uncertainty) -> Vec<f32> {
    probs
        .chunks_exact(classes.max(1))
        .map(|p| match measure {
            Uncertainty::Entropy => -p.iter().filter(|&&v| v > 0.0).map(|&v| v * v.ln()).sum::<f32>(),
            Uncertainty::Margin => {
                let (p1, p2) = top_two(p);
                1.0 - (p1 - p2)
            }
            Uncertainty::LeastConfidence => 1.0 - top_two(p).0,
        })
        .collect()
}

fn top_two(p: &[f32]) -> (f32, f32) {
    let mut best = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in p {
        if v > best.0 {
            best = (v, best.0);
        } else if v > best.1 {
            best.1 = v;
        }
    }
    (best.0, best.1.max(0.0))
}
