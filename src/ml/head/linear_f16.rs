//! The scoring hot path of a linear head: logits straight from the f16 embedding cache.
//!
//! Re-ranking the pool after every fit reads the whole cache (1,000,000 x 1280 f16 is 2.4 GiB),
//! so the cost is memory traffic, not arithmetic. Going through torch meant copying each chunk,
//! widening it to an f32 temporary four times its size, and reading that twice more (matmul and
//! row norms). This kernel reads every f16 row once: it widens a tile of rows into an L1-sized
//! buffer while summing their squares (the L2 norm comes for free), then multiplies the tile
//! by each class's weights with FMA, so each weight vector loaded serves four rows.
//!
//! Only x86-64 with AVX2, FMA and F16C: elsewhere [`LinearF16::new`] returns None and the
//! caller keeps the torch path.

// The one place in the engine that needs `unsafe`: SIMD intrinsics behind a runtime CPU check.
#![allow(unsafe_code)]

use half::f16;

/// Rows widened and multiplied together: four rows share each weight load.
const TILE: usize = 4;
/// Classes multiplied together: with four rows that is twelve accumulators, three weight
/// vectors and one row vector, all sixteen AVX2 registers, and seven loads per twelve FMAs.
const CLASS_BLOCK: usize = 3;
/// `d` must be a multiple of this (one 8-lane vector).
const STEP: usize = 8;

/// A linear layer `z = (x · W) * f(x) + b` over raw f16 rows, where `f(x)` is `sqrt(d)/|x|`
/// when the head L2-normalises its inputs and 1 otherwise (the normaliser's mean and scale are
/// already folded into `W` and `b`).
#[derive(Clone, Debug)]
pub struct LinearF16 {
    /// Class-major weights `[c x d]`: each class's column of `W`, contiguous.
    wt: Vec<f32>,
    b: Vec<f32>,
    d: usize,
    c: usize,
    l2: bool,
}

impl LinearF16 {
    /// `w` is row-major `[d x c]` (as the head stores it). None when the CPU lacks the
    /// instructions or `d` is not a multiple of 16.
    pub fn new(w: &[f32], b: &[f32], d: usize, c: usize, l2: bool) -> Option<Self> {
        if !supported() || d == 0 || !d.is_multiple_of(STEP) || c == 0 || w.len() != d * c || b.len() != c {
            return None;
        }
        let mut wt = vec![0f32; c * d];
        for j in 0..d {
            for k in 0..c {
                wt[k * d + j] = w[j * c + k];
            }
        }
        Some(Self { wt, b: b.to_vec(), d, c, l2 })
    }

    /// Writes the logits of `row(0) .. row(n-1)` to `out` (`[n x c]`, row-major).
    pub fn logits<'a>(&self, n: usize, row: &dyn Fn(usize) -> &'a [f16], out: &mut [f32]) {
        assert_eq!(out.len(), n * self.c, "output size");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` only builds a LinearF16 when the CPU has AVX2, FMA and F16C.
        unsafe {
            self.logits_avx2(n, row, out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("LinearF16::new returns None off x86-64")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn logits_avx2<'a>(&self, n: usize, row: &dyn Fn(usize) -> &'a [f16], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (d, c) = (self.d, self.c);
        let sqrt_d = (d as f32).sqrt();
        let mut buf = vec![0f32; TILE * d];
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(TILE);
            let mut factor = [1f32; TILE];
            for (r, f) in factor.iter_mut().enumerate().take(rows) {
                let src = row(start + r);
                assert_eq!(src.len(), d, "embedding width");
                let dst = buf.as_mut_ptr().add(r * d);
                let mut ss = _mm256_setzero_ps();
                for j in (0..d).step_by(8) {
                    let x = _mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().add(j) as *const __m128i));
                    _mm256_storeu_ps(dst.add(j), x);
                    ss = _mm256_fmadd_ps(x, x, ss);
                }
                if self.l2 {
                    *f = sqrt_d / hsum(ss).sqrt().max(1e-12);
                }
            }
            // A short last tile runs the full kernel on zeros: cheaper than a second kernel.
            if rows < TILE {
                buf[rows * d..].fill(0.0);
            }
            let x = buf.as_ptr();
            let out_tile = &mut out[start * c..(start + rows) * c];
            let mut k = 0;
            while k + CLASS_BLOCK <= c {
                self.class_block::<CLASS_BLOCK>(x, k, rows, &factor, out_tile);
                k += CLASS_BLOCK;
            }
            match c - k {
                2 => self.class_block::<2>(x, k, rows, &factor, out_tile),
                1 => self.class_block::<1>(x, k, rows, &factor, out_tile),
                _ => {}
            }
            start += rows;
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl LinearF16 {
    /// Logits of classes `k0 .. k0 + K` for the widened tile `x` (`[TILE x d]`) into `out`
    /// (`[rows x c]`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn class_block<const K: usize>(
        &self,
        x: *const f32,
        k0: usize,
        rows: usize,
        factor: &[f32; TILE],
        out: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let d = self.d;
        let w: [*const f32; K] = std::array::from_fn(|q| self.wt.as_ptr().add((k0 + q) * d));
        let mut acc = [[_mm256_setzero_ps(); K]; TILE];
        for j in (0..d).step_by(STEP) {
            let wv: [__m256; K] = std::array::from_fn(|q| _mm256_loadu_ps(w[q].add(j)));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_loadu_ps(x.add(r * d + j));
                for q in 0..K {
                    a[q] = _mm256_fmadd_ps(xv, wv[q], a[q]);
                }
            }
        }
        for r in 0..rows {
            for q in 0..K {
                out[r * self.c + k0 + q] = hsum(acc[r][q]) * factor[r] + self.b[k0 + q];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_hadd_ps(s, s);
    _mm_cvtss_f32(_mm_hadd_ps(s, s))
}

/// Whether this CPU runs the f16 kernels (x86-64 with AVX2, FMA and F16C).
pub(super) fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `softmax(z / t)` of each `c`-wide row, in place.
pub fn softmax_rows(z: &mut [f32], c: usize, t: f64) {
    let inv_t = (1.0 / t) as f32;
    for row in z.chunks_exact_mut(c) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = ((*v - max) * inv_t).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel against a plain f64 reference, with and without the L2 factor, including a
    /// short last tile.
    #[test]
    fn matches_reference() {
        let (d, c, n) = (48, 3, 7);
        let w: Vec<f32> = (0..d * c).map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0).collect();
        let b = vec![0.5, -0.25, 0.0];
        let x: Vec<f16> = (0..n * d).map(|i| f16::from_f32(((i * 13 % 29) as f32 - 14.0) / 7.0)).collect();
        for l2 in [false, true] {
            let Some(k) = LinearF16::new(&w, &b, d, c, l2) else { return };
            let mut out = vec![0f32; n * c];
            k.logits(n, &|i| &x[i * d..(i + 1) * d], &mut out);
            for i in 0..n {
                let row: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|v| v.to_f64()).collect();
                let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                let f = if l2 { (d as f64).sqrt() / norm } else { 1.0 };
                for kk in 0..c {
                    let dot: f64 = (0..d).map(|j| row[j] * w[j * c + kk] as f64).sum();
                    let want = dot * f + b[kk] as f64;
                    assert!(
                        (out[i * c + kk] as f64 - want).abs() < 1e-4,
                        "row {i} class {kk}: {} vs {want}",
                        out[i * c + kk]
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_with_temperature() {
        let mut z = vec![1.0, 2.0, 3.0];
        softmax_rows(&mut z, 3, 2.0);
        let e: Vec<f64> = [-1.0f64, -0.5, 0.0].iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        for (got, want) in z.iter().zip(e.iter().map(|v| v / s)) {
            assert!((*got as f64 - want).abs() < 1e-6);
        }
    }
}
