//! Temperature scaling: one scalar T so that softmax(logits / T) has minimal negative
//! log-likelihood on held-out (out-of-fold) logits.

use tch::{Kind, Tensor};

/// Search range for T: sharpening by up to 20x, softening by up to 20x.
const LOG_T_MIN: f64 = -3.0;
const LOG_T_MAX: f64 = 3.0;

/// Mean NLL of `softmax(logits / t)` (logits flat `[n x c]`).
pub fn nll(logits: &[f32], y: &[i64], c: usize, t: f64) -> f64 {
    let mut total = 0.0;
    let mut n = 0usize;
    for (row, &label) in logits.chunks_exact(c).zip(y) {
        if label < 0 || label as usize >= c {
            continue;
        }
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let lse = row.iter().map(|&v| ((v as f64 - max) / t).exp()).sum::<f64>().ln();
        total += lse - (row[label as usize] as f64 - max) / t;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        total / n as f64
    }
}

/// The NLL by which fits on labels a strategy chose are compared (`HeadParams::
/// designed_labels`): of `softmax(logits / t)` at the best `t` no greater than 1, i.e. at the
/// fitted temperature `t_fit` when that sharpens and at 1 when it would cool (the NLL is
/// convex in 1/t, so the constrained optimum is the nearer end). Sharpening only undoes the
/// shrinkage of a strongly regularised fit (20 groups: C = 0.01 wants t near 0.4 and is the
/// most accurate). Cooling rescues an overfitted one: on the labels an active learner picked,
/// where the model was unsure, a weakly regularised fit cooled by t = 3-5 had the lowest
/// calibrated NLL on RT sentiment but was 1.2 points less accurate on the test set than
/// C = 0.01 (`bench/results/lc-adaptive.md`, "Choosing C on actively chosen labels").
pub fn selection_nll(logits: &[f32], y: &[i64], c: usize, t_fit: f64) -> f64 {
    nll(logits, y, c, t_fit.min(1.0))
}

/// The temperature T > 0 minimising the NLL of `softmax(logits / T)` against `y`: a grid over
/// log T in [-3, 3] then golden-section refinement around the best grid point. The NLL is
/// convex in 1/T, so this finds the optimum; deterministic. Returns 1 when there is nothing
/// to fit (no rows, or all logits identical).
pub fn fit_temperature(logits: &Tensor, y: &[i64]) -> f64 {
    let Ok((n, c)) = logits.size2() else {
        return 1.0;
    };
    let Ok(flat) = Vec::<f32>::try_from(logits.to_kind(Kind::Float).contiguous().flatten(0, -1)) else {
        return 1.0;
    };
    let (n, c) = (n as usize, c as usize);
    if n == 0 || c < 2 || y.len() != n || flat.iter().any(|v| !v.is_finite()) {
        return 1.0;
    }
    // Rows with all-equal logits give the same NLL at any T: nothing to fit.
    let informative = flat.chunks_exact(c).any(|row| row.iter().any(|&v| v != row[0]));
    if !informative {
        return 1.0;
    }
    let f = |log_t: f64| nll(&flat, y, c, log_t.exp());
    let steps = 60;
    let h = (LOG_T_MAX - LOG_T_MIN) / steps as f64;
    let mut best = (0.0, f(0.0));
    for i in 0..=steps {
        let lt = LOG_T_MIN + i as f64 * h;
        let v = f(lt);
        if v < best.1 {
            best = (lt, v);
        }
    }
    let (mut a, mut b) = ((best.0 - h).max(LOG_T_MIN), (best.0 + h).min(LOG_T_MAX));
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = b - phi * (b - a);
    let mut x2 = a + phi * (b - a);
    let (mut f1, mut f2) = (f(x1), f(x2));
    for _ in 0..40 {
        if f1 <= f2 {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - phi * (b - a);
            f1 = f(x1);
        } else {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + phi * (b - a);
            f2 = f(x2);
        }
    }
    let lt = (a + b) / 2.0;
    let t = if f(lt) <= best.1 { lt.exp() } else { best.0.exp() };
    if t.is_finite() && t > 0.0 {
        t
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_temperature() {
        // Labels drawn deterministically from softmax(z / 2): the fitted T should be near 2.
        let c = 3;
        let mut logits = Vec::new();
        let mut y = Vec::new();
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..4000 {
            let z: Vec<f64> = (0..c).map(|_| next() * 8.0 - 4.0).collect();
            let e: Vec<f64> = z.iter().map(|v| (v / 2.0).exp()).collect();
            let s: f64 = e.iter().sum();
            let u = next() * s;
            let mut acc = 0.0;
            let mut label = c - 1;
            for (k, v) in e.iter().enumerate() {
                acc += v;
                if u < acc {
                    label = k;
                    break;
                }
            }
            logits.extend(z.iter().map(|&v| v as f32));
            y.push(label as i64);
        }
        let t = fit_temperature(&Tensor::from_slice(&logits).reshape([4000, 3]), &y);
        assert!((t - 2.0).abs() < 0.25, "{t}");
    }

    /// Rows whose logits are `scale` times the log-odds their labels were drawn with: too
    /// confident above 1 (fitted T > 1), not confident enough below.
    fn scaled_rows(scale: f32) -> (Vec<f32>, Vec<i64>) {
        let (mut logits, mut y) = (Vec::new(), Vec::new());
        for i in 0..400 {
            let z = (i % 20) as f32 / 5.0 - 2.0;
            // Label 1 at the rate sigmoid(z), spread evenly over each group of 20.
            let p = 1.0 / (1.0 + (-z).exp());
            let label = i64::from(((i / 20) as f32 + 0.5) / 20.0 < p);
            logits.extend([0.0, z * scale]);
            y.push(label);
        }
        (logits, y)
    }

    #[test]
    fn fits_are_compared_sharpened_but_never_cooled() {
        for (scale, cools) in [(4.0f32, true), (0.25, false)] {
            let (logits, y) = scaled_rows(scale);
            let t = fit_temperature(&Tensor::from_slice(&logits).reshape([400, 2]), &y);
            assert_eq!(t > 1.0, cools, "scale {scale}: fitted T {t}");
            let score = selection_nll(&logits, &y, 2, t);
            let (raw, calibrated) = (nll(&logits, &y, 2, 1.0), nll(&logits, &y, 2, t));
            let expected = if cools { raw } else { calibrated };
            assert!((score - expected).abs() < 1e-12, "scale {scale}: {score} vs {expected}");
            assert!(calibrated < raw - 0.01, "scale {scale}: calibration should matter here");
        }
    }
}
