//! A compact in-memory matrix of item embeddings: row-major f16, one row per item.
//!
//! f16 halves the memory of f32 (1,000,000 x 1280 fits in 2.6 GB) and is exact enough for
//! L2-normalised features; rows are widened to f32 in chunks right before the matmul.

use half::f16;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Default)]
pub struct Embeddings {
    dim: usize,
    data: Vec<f16>,
}

impl Embeddings {
    pub fn new(dim: usize) -> Self {
        Self { dim, data: Vec::new() }
    }

    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        Self { dim, data: Vec::with_capacity(dim * rows) }
    }

    /// Builds from raw f16 storage; `data.len()` must be a multiple of `dim`.
    pub fn from_f16(dim: usize, data: Vec<f16>) -> Option<Self> {
        (dim > 0 && data.len().is_multiple_of(dim)).then_some(Self { dim, data })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_f16(&self) -> &[f16] {
        &self.data
    }

    pub fn push(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.dim, "embedding width");
        self.data.extend(row.iter().map(|&v| f16::from_f32(v)));
    }

    /// Appends whole rows stored as little-endian f16 bytes (`bytes.len()` a multiple of
    /// `2 * dim`, as the embedding cache's file holds them).
    pub fn extend_from_le_bytes(&mut self, bytes: &[u8]) {
        assert_eq!(bytes.len() % (2 * self.dim.max(1)), 0, "whole f16 rows");
        self.data.extend(bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])));
    }

    pub fn row_f16(&self, i: usize) -> &[f16] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Row `i` widened to f32 into `out` (`out.len() == dim`).
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        half::slice::HalfFloatSliceExt::convert_to_f32_slice(self.row_f16(i), out);
    }

    pub fn row(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        self.row_into(i, &mut out);
        out
    }

    /// The given rows as an f32 tensor of shape `[rows.len(), dim]` on the CPU.
    pub fn gather(&self, rows: &[usize]) -> Tensor {
        let mut buf = vec![0f32; rows.len() * self.dim];
        for (chunk, &r) in buf.chunks_mut(self.dim.max(1)).zip(rows) {
            self.row_into(r, chunk);
        }
        Tensor::from_slice(&buf).reshape([rows.len() as i64, self.dim as i64])
    }

    /// Rows `start..end` as an f32 tensor (contiguous range: one bulk conversion).
    pub fn range(&self, start: usize, end: usize) -> Tensor {
        let src = &self.data[start * self.dim..end * self.dim];
        let mut buf = vec![0f32; src.len()];
        half::slice::HalfFloatSliceExt::convert_to_f32_slice(src, &mut buf);
        Tensor::from_slice(&buf).reshape([(end - start) as i64, self.dim as i64])
    }

    /// All rows as one f32 tensor. For pools that fit; large pools go through `range`.
    pub fn to_tensor(&self) -> Tensor {
        self.range(0, self.len()).to_kind(Kind::Float)
    }
}
