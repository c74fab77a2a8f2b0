//! The scoring hot path of the MLP head: its first layer in int8.
//!
//! Re-scoring a pool of 1,000,000 x 1280 rows through a 256-wide hidden layer is 1e6 x 1280 x
//! 256 multiply-adds (655 GFLOP): 3-5 s in f32 on two cores, whatever the code, because that is
//! the arithmetic peak of two AVX2 cores. Integer products are several times cheaper per cycle
//! (VNNI, AMX, or `vpmaddubsw` on plain AVX2; torch's `_int_mm` picks through oneDNN), so the
//! product is done on int8 with int32 sums, which are exact: only the two roundings to int8
//! differ from f32.
//!
//! Rows are quantised after standardisation, not before: there every feature has unit scale,
//! so one scale per row (its largest |z| over 127) costs each feature the same. Folding the
//! standardisation into the weights and quantising the raw rows instead would round a feature
//! whose raw values are small to zero and then multiply that error by its large weight.
//! Weights get one scale per hidden unit.
//!
//! Only x86-64 with AVX2 and F16C (the row pass widens f16 with F16C): elsewhere
//! [`QuantizedFirstLayer::new`] returns None and the head keeps the f32 torch path.

// SIMD intrinsics behind a runtime CPU check, and torch views of buffers this module owns.
#![allow(unsafe_code)]

use half::f16;
use tch::{Kind, Tensor};

#[cfg(target_arch = "x86_64")]
use super::linear_f16::hsum;
use super::{Layer, Normalizer};

/// Features handled per step by the row pass (four 8-lane vectors packed into 32 bytes).
const STEP: usize = 32;

/// A first layer `z @ W + b` over standardised rows `z`, with `W` in int8.
#[derive(Clone, Debug)]
pub struct QuantizedFirstLayer {
    /// `[d x h]` row-major, `round(W / col_scale)`.
    w: Vec<i8>,
    col_scale: Vec<f32>,
    b: Vec<f32>,
    /// `1 / scale_j` and `mean_j / scale_j` of the normaliser: `z_j = x_j f inv_j - shift_j`.
    inv: Vec<f32>,
    shift: Vec<f32>,
    d: usize,
    h: usize,
    l2: bool,
}

impl QuantizedFirstLayer {
    /// `layer` reads the standardised features of `norm` (no basis: unrotated). None when the
    /// CPU lacks the instructions, `d` is not a multiple of 32, or the shapes disagree.
    pub fn new(norm: &Normalizer, layer: &Layer) -> Option<Self> {
        let (d, h) = (layer.inputs, layer.outputs);
        if !super::linear_f16::supported()
            || d == 0
            || h == 0
            || !d.is_multiple_of(STEP)
            || norm.basis.is_some()
            || norm.mean.len() != d
            || norm.scale.len() != d
            || layer.w.len() != d * h
        {
            return None;
        }
        let mut col_max = vec![0f32; h];
        for row in layer.w.chunks_exact(h) {
            for (m, &v) in col_max.iter_mut().zip(row) {
                *m = m.max(v.abs());
            }
        }
        let col_scale: Vec<f32> =
            col_max.iter().map(|&m| if m > 0.0 && m.is_finite() { m / 127.0 } else { 1.0 }).collect();
        let w = layer
            .w
            .chunks_exact(h)
            .flat_map(|row| row.iter().zip(&col_scale).map(|(&v, &s)| (v / s).round().clamp(-127.0, 127.0) as i8))
            .collect();
        let inv: Vec<f32> = norm.scale.iter().map(|&s| 1.0 / s).collect();
        let shift = norm.mean.iter().zip(&inv).map(|(&m, &i)| m * i).collect();
        Some(Self { w, col_scale, b: layer.b.clone(), inv, shift, d, h, l2: norm.l2 })
    }

    /// Pre-activations `[n x h]` (f32) of the raw f16 rows `row(0) .. row(n-1)`; an error only
    /// if torch refuses the int8 product.
    pub fn pre_activations<'a>(&self, n: usize, row: &dyn Fn(usize) -> &'a [f16]) -> anyhow::Result<Tensor> {
        let (d, h) = (self.d, self.h);
        let mut q = vec![0i8; n * d];
        let mut row_scale = vec![0f32; n];
        let mut buf = vec![0f32; d];
        for (i, (out, s)) in q.chunks_exact_mut(d).zip(row_scale.iter_mut()).enumerate() {
            let src = row(i);
            assert_eq!(src.len(), d, "embedding width");
            // SAFETY: `new` only builds a QuantizedFirstLayer when the CPU has AVX2 and F16C
            // and `d` is a multiple of STEP; `src`, `buf` and `out` are `d` long.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                *s = self.quantize_row_avx2(src, &mut buf, out);
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("QuantizedFirstLayer::new returns None off x86-64");
        }
        // SAFETY: both views are read by `_int_mm` before `q` and `self.w` go out of scope,
        // and neither is written while they exist.
        let (x, w) = unsafe {
            (
                Tensor::f_from_blob(
                    q.as_ptr() as *const u8,
                    &[n as i64, d as i64],
                    &[d as i64, 1],
                    Kind::Int8,
                    tch::Device::Cpu,
                )?,
                Tensor::f_from_blob(
                    self.w.as_ptr() as *const u8,
                    &[d as i64, h as i64],
                    &[h as i64, 1],
                    Kind::Int8,
                    tch::Device::Cpu,
                )?,
            )
        };
        let sums = x.f_internal_int_mm(&w)?;
        let z = sums.to_kind(Kind::Float)
            * Tensor::from_slice(&row_scale).unsqueeze(1)
            * Tensor::from_slice(&self.col_scale)
            + Tensor::from_slice(&self.b);
        Ok(z)
    }

    /// Widens one f16 row, standardises it and rounds it to int8 in `out`; returns its scale.
    /// `buf` (`d` long) holds the row in f32 between the passes. No closures here: they would
    /// not inherit the target features, and every intrinsic would become a call.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quantize_row_avx2(&self, src: &[f16], buf: &mut [f32], out: &mut [i8]) -> f32 {
        use std::arch::x86_64::*;
        let d = self.d;
        let (x, inv, shift) = (buf.as_mut_ptr(), self.inv.as_ptr(), self.shift.as_ptr());
        let mut ss = _mm256_setzero_ps();
        for j in (0..d).step_by(8) {
            let v = _mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().add(j) as *const __m128i));
            _mm256_storeu_ps(x.add(j), v);
            ss = _mm256_fmadd_ps(v, v, ss);
        }
        let factor = if self.l2 { (d as f32).sqrt() / hsum(ss).sqrt().max(1e-12) } else { 1.0 };
        let f = _mm256_set1_ps(factor);
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut largest = _mm256_setzero_ps();
        for j in (0..d).step_by(8) {
            let z = _mm256_fmsub_ps(
                _mm256_mul_ps(_mm256_loadu_ps(x.add(j)), f),
                _mm256_loadu_ps(inv.add(j)),
                _mm256_loadu_ps(shift.add(j)),
            );
            _mm256_storeu_ps(x.add(j), z);
            largest = _mm256_max_ps(largest, _mm256_and_ps(z, abs_mask));
        }
        let largest = hmax(largest);
        let scale = if largest > 0.0 && largest.is_finite() { largest / 127.0 } else { 1.0 };
        let to_int = _mm256_set1_ps(1.0 / scale);
        // Four 8-lane vectors of i32 packed to 32 i8: the packs interleave 128-bit lanes, the
        // permutation puts the 4-byte groups back in order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for j in (0..d).step_by(STEP) {
            let a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(j)), to_int));
            let b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(j + 8)), to_int));
            let c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(j + 16)), to_int));
            let e = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(j + 24)), to_int));
            let packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, e));
            _mm256_storeu_si256(out.as_mut_ptr().add(j) as *mut __m256i, _mm256_permutevar8x32_epi32(packed, order));
        }
        scale
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn hmax(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an f64 reference on the same standardised rows, twice: with the same roundings
    /// done in f64 (so a wrong lane order or scale shows up far above rounding), and without
    /// them (the quantisation error itself: a few hundredths of units whose spread is ~1).
    #[test]
    fn matches_f64_reference() {
        let (d, h, n) = (64, 5, 9);
        let mean: Vec<f32> = (0..d).map(|j| (j % 7) as f32 / 10.0).collect();
        let scale: Vec<f32> = (0..d).map(|j| 0.5 + (j % 5) as f32 / 4.0).collect();
        let w: Vec<f32> = (0..d * h).map(|i| ((i * 37 % 101) as f32 - 50.0) / 400.0).collect();
        let b: Vec<f32> = (0..h).map(|k| k as f32 / 10.0 - 0.2).collect();
        let x: Vec<f16> = (0..n * d).map(|i| f16::from_f32(((i * 13 % 29) as f32) / 9.0 + 0.1)).collect();
        let col: Vec<f64> =
            (0..h).map(|k| (0..d).map(|j| (w[j * h + k] as f64).abs()).fold(0.0, f64::max) / 127.0).collect();
        for l2 in [false, true] {
            let norm = Normalizer::standard(l2, mean.clone(), scale.clone());
            let layer = Layer { inputs: d, outputs: h, w: w.clone(), b: b.clone() };
            let Some(q) = QuantizedFirstLayer::new(&norm, &layer) else { return };
            let got = q.pre_activations(n, &|i| &x[i * d..(i + 1) * d]).unwrap();
            let got: Vec<f32> = Vec::try_from(got.flatten(0, -1)).unwrap();
            for i in 0..n {
                let row: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|v| v.to_f64()).collect();
                let f = if l2 { (d as f64).sqrt() / row.iter().map(|v| v * v).sum::<f64>().sqrt() } else { 1.0 };
                let z: Vec<f64> = (0..d).map(|j| (row[j] * f - mean[j] as f64) / scale[j] as f64).collect();
                let step = z.iter().fold(0f64, |m, v| m.max(v.abs())) / 127.0;
                for k in 0..h {
                    let wq = |j: usize| (w[j * h + k] as f64 / col[k]).round() * col[k];
                    let rounded: f64 =
                        (0..d).map(|j| (z[j] / step).round_ties_even() * step * wq(j)).sum::<f64>() + b[k] as f64;
                    let exact = (0..d).map(|j| z[j] * w[j * h + k] as f64).sum::<f64>() + b[k] as f64;
                    let g = got[i * h + k] as f64;
                    assert!(
                        (g - rounded).abs() < 1e-2,
                        "row {i} unit {k} (l2 {l2}): {g} vs {rounded} with int8 roundings"
                    );
                    assert!((g - exact).abs() < 0.05, "row {i} unit {k} (l2 {l2}): {g} vs {exact}");
                }
            }
        }
    }

    /// A basis (the covariance prior's training-time rotation) or an odd width keeps f32.
    #[test]
    fn declines_what_it_cannot_fold() {
        let norm = Normalizer::standard(true, vec![0.0; 40], vec![1.0; 40]);
        let layer = Layer { inputs: 40, outputs: 2, w: vec![0.1; 80], b: vec![0.0; 2] };
        assert!(QuantizedFirstLayer::new(&norm, &layer).is_none());
        let rotated = Normalizer {
            basis: Some(vec![0f32; 64 * 64].into()),
            ..Normalizer::standard(true, vec![0.0; 64], vec![1.0; 64])
        };
        let layer = Layer { inputs: 64, outputs: 2, w: vec![0.1; 128], b: vec![0.0; 2] };
        assert!(QuantizedFirstLayer::new(&rotated, &layer).is_none());
    }
}
