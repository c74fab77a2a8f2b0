//! Multinomial logistic regression with L2, solved to convergence by full-batch L-BFGS.
//!
//! torch does the two matmuls per evaluation (the only O(n d C) work); the L-BFGS state lives
//! in f64 Vecs, which keeps per-iteration overhead to microseconds on small problems and makes
//! the solution deterministic for a given input and thread count (no randomness at all).

use anyhow::ensure;
use tch::{Kind, Tensor};

use super::{HeadParams, Layer};

/// L-BFGS history length.
const MEMORY: usize = 10;

struct Problem<'a> {
    x: &'a Tensor,
    /// One-hot labels times per-row weight / sum(weights), `[n, C]` f32.
    yw: Tensor,
    /// Per-row weight / sum(weights), `[n, 1]` f32.
    w: Tensor,
    d: usize,
    c: usize,
    lambda: f64,
    /// L2 on each class bias: 0 for classes with training rows (free intercept, as in
    /// scikit-learn), `lambda` for absent classes so their bias stays finite.
    bias_lambda: Vec<f64>,
}

impl Problem<'_> {
    /// Objective and gradient at `theta` (`[(d + 1) x C]` row-major, last row = biases).
    fn eval(&self, theta: &[f64]) -> anyhow::Result<(f64, Vec<f64>)> {
        let (d, c) = (self.d as i64, self.c as i64);
        let t32: Vec<f32> = theta.iter().map(|&v| v as f32).collect();
        let t = Tensor::from_slice(&t32).reshape([d + 1, c]);
        let logits = self.x.matmul(&t.narrow(0, 0, d)) + t.narrow(0, d, 1);
        let logp = logits.log_softmax(1, Kind::Float);
        let data_loss =
            -(logp.to_kind(Kind::Double) * self.yw.to_kind(Kind::Double)).sum(Kind::Double).double_value(&[]);
        // d/dlogits of sum_i w_i CE_i = w_i (p_i - y_i)
        let g = logp.exp() * &self.w - &self.yw;
        let gw = self.x.tr().matmul(&g);
        let gb = g.sum_dim_intlist(0, true, Kind::Float);
        let grad32: Vec<f32> = Vec::try_from(Tensor::cat(&[gw, gb], 0).flatten(0, -1))?;
        let mut grad: Vec<f64> = grad32.iter().map(|&v| v as f64).collect();
        let mut reg = 0.0;
        let wlen = self.d * self.c;
        for (gi, &ti) in grad[..wlen].iter_mut().zip(&theta[..wlen]) {
            *gi += self.lambda * ti;
            reg += ti * ti;
        }
        let mut loss = data_loss + 0.5 * self.lambda * reg;
        for k in 0..self.c {
            let b = theta[wlen + k];
            grad[wlen + k] += self.bias_lambda[k] * b;
            loss += 0.5 * self.bias_lambda[k] * b * b;
        }
        Ok((loss, grad))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Trains on normalised features `x` `[n, d]`; `weights` are per-row (mean 1). `init` warm
/// starts from another solution of the same shape (calibration folds).
pub(crate) fn train(
    x: &Tensor,
    y: &[i64],
    num_classes: usize,
    weights: &[f64],
    params: &HeadParams,
    init: Option<&Layer>,
) -> anyhow::Result<Layer> {
    let (n, d) = x.size2()?;
    let (n, d, c) = (n as usize, d as usize, num_classes);
    ensure!(weights.len() == n && y.len() == n, "rows, labels and weights differ in length");
    let total: f64 = weights.iter().sum();
    ensure!(total > 0.0, "all sample weights are zero");
    let mut yw = vec![0f32; n * c];
    let mut present = vec![false; c];
    for (i, (&label, &w)) in y.iter().zip(weights).enumerate() {
        yw[i * c + label as usize] = (w / total) as f32;
        present[label as usize] |= w > 0.0;
    }
    let wcol: Vec<f32> = weights.iter().map(|&w| (w / total) as f32).collect();
    // scikit-learn's scaling: 0.5 ||W||^2 + C sum_i w_i CE_i, divided by C sum(w).
    let lambda = 1.0 / (params.c.max(1e-12) * total);
    let problem = Problem {
        x,
        yw: Tensor::from_slice(&yw).reshape([n as i64, c as i64]),
        w: Tensor::from_slice(&wcol).reshape([n as i64, 1]),
        d,
        c,
        lambda,
        bias_lambda: present.iter().map(|&p| if p { 0.0 } else { lambda }).collect(),
    };
    let mut theta = vec![0f64; (d + 1) * c];
    if let Some(l) = init.filter(|l| l.inputs == d && l.outputs == c) {
        for (t, &w) in theta.iter_mut().zip(l.w.iter().chain(&l.b)) {
            *t = w as f64;
        }
    }
    let theta = lbfgs(&problem, theta, params.max_iter, params.tol)?;
    let w = theta[..d * c].iter().map(|&v| v as f32).collect();
    let b = theta[d * c..].iter().map(|&v| v as f32).collect();
    Ok(Layer { inputs: d, outputs: c, w, b })
}

/// Minimises the problem from `x0` until max |grad| <= tol, the objective stalls, or
/// `max_iter` iterations. Backtracking Armijo line search; the objective is smooth and
/// strictly convex (L2), so curvature pairs are always usable.
fn lbfgs(p: &Problem, mut x: Vec<f64>, max_iter: usize, tol: f64) -> anyhow::Result<Vec<f64>> {
    let (mut f, mut g) = p.eval(&x)?;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    for iter in 0..max_iter {
        let gmax = g.iter().fold(0f64, |m, v| m.max(v.abs()));
        if gmax <= tol {
            break;
        }
        // Two-loop recursion: dir = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0f64; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            alpha[i] = rho[i] * dot(&s_hist[i], &q);
            for (qj, yj) in q.iter_mut().zip(&y_hist[i]) {
                *qj -= alpha[i] * yj;
            }
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            // First step: a unit-length move along -g.
            _ => 1.0 / dot(&g, &g).sqrt().max(1e-12),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let beta = rho[i] * dot(&y_hist[i], &q);
            for (qj, sj) in q.iter_mut().zip(&s_hist[i]) {
                *qj += (alpha[i] - beta) * sj;
            }
        }
        let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut gd = dot(&g, &dir);
        if gd >= 0.0 {
            // Not a descent direction (numerical noise): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-12);
            dir = g.iter().map(|v| -v * scale).collect();
            gd = dot(&g, &dir);
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let xn: Vec<f64> = x.iter().zip(&dir).map(|(a, b)| a + step * b).collect();
            let (fn_, gn) = p.eval(&xn)?;
            if fn_.is_finite() && fn_ <= f + 1e-4 * step * gd {
                accepted = Some((xn, fn_, gn));
                break;
            }
            step *= 0.5;
        }
        let Some((xn, fn_, gn)) = accepted else {
            tracing::debug!(iter, "lbfgs: line search found no decrease; stopping");
            break;
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &yv);
        if sy > 1e-12 * dot(&yv, &yv).max(1e-300) {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
            rho.push(1.0 / sy);
        }
        let stalled = (f - fn_).abs() <= 1e-12 * f.abs().max(1e-12);
        x = xn;
        f = fn_;
        g = gn;
        if stalled {
            break;
        }
    }
    Ok(x)
}
