//! sentence-transformers all-MiniLM-L6-v2 as a text encoder: BERT (6 layers, 384 wide),
//! mean pooling over real tokens, L2 normalisation; optionally the last three layers pooled
//! that way and concatenated (see [`Pooling`]). Texts longer than the model's 256 word
//! pieces are read in consecutive windows and pooled over all their tokens.

use std::path::Path;

use anyhow::anyhow;
use tch::{Device, Kind, TchError, Tensor};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::bert::{self, Bert, BertConfig};
use super::{Encoder, EncoderInput, EncoderSpec, Modality};
use crate::assets;

const WEIGHTS: &str = "minilm_l6/model.safetensors";
const TOKENIZER: &str = "minilm_l6/tokenizer.json";
pub const DIM: usize = 384;
/// sentence-transformers' `max_seq_length` for this model: it was trained on at most 256
/// word pieces (the tokenizer file's own 128 comes from an older export).
pub const MAX_TOKENS: usize = 256;
/// Word pieces of one window, between its `[CLS]` and `[SEP]`.
const WINDOW_CONTENT: usize = MAX_TOKENS - 2;
/// Most windows one text is read in: 16 x 254 word pieces, about 3,000 words. It bounds the
/// cost of any one text; the rest of a longer one is not read.
pub const MAX_WINDOWS: usize = 16;
/// Bytes of a text handed to the tokenizer (cut on a character boundary): far more than
/// [`MAX_WINDOWS`] windows hold (24 per word piece), so nothing that would be read is cut, yet
/// a hostile megabyte-long text is not tokenised whole.
const MAX_CHARS: usize = MAX_WINDOWS * WINDOW_CONTENT * 24;
/// Most windows in one forward pass: the attention of 64 windows of 256 tokens is about
/// 200 MB; all of a batch's windows at once could be 16 times that.
const MAX_FORWARD_ROWS: usize = 64;

/// Which hidden states make the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The last layer: the model's own sentence embedding (what its cosine similarities
    /// were trained for).
    LastLayer,
    /// Layers 4, 5 and 6, each mean-pooled and L2-normalised, side by side (1,152-d). The
    /// last layer was trained to say what a text is about; the two below it keep more of
    /// how it says it (tone, negation), which a head trained on labels can use: on review
    /// sentiment the pooled layers add points from 50 labels on, on topics they are level
    /// (`bench/results/lc-adaptive.md`).
    TopThreeLayers,
}

impl Pooling {
    /// Layers for [`Bert::forward_layers`] (0 is the embedding layer) and the norm
    /// of each layer's block.
    ///
    /// The lower layers' blocks are half as long as the last one's. Heads standardise every
    /// feature, which undoes that scale once there are enough labels, but with a few dozen
    /// their variances are shrunk towards the pooled one (`Scaling::L2Standard`), so the
    /// half-length blocks count for less until the labels can tell; and everything that
    /// measures distances (the diverse cold start, k-center, cluster-margin, label
    /// spreading) stays dominated by the sentence embedding. With equal norms the default
    /// strategy, whose first picks are a diverse cold start, lost 4 points at 20 labels on
    /// 20 Newsgroups by topic; at half length it is level there.
    fn layers(self) -> &'static [(usize, f64)] {
        match self {
            Self::LastLayer => &[(6, 1.0)],
            Self::TopThreeLayers => &[(4, 0.5), (5, 0.5), (6, 1.0)],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::LastLayer => "minilm_l6",
            Self::TopThreeLayers => "minilm_l6_layers",
        }
    }
}

pub struct MiniLmEncoder {
    spec: EncoderSpec,
    /// Pads to the batch's longest text and truncates at [`MAX_TOKENS`] (benchmarks, tests).
    tokenizer: Tokenizer,
    /// No special tokens, padding or truncation: the word pieces [`Self::embed_texts`] cuts
    /// into windows.
    pieces: Tokenizer,
    /// `[CLS]`, `[SEP]` and `[PAD]` ids.
    cls: i64,
    sep: i64,
    pad: i64,
    bert: Bert,
    pooling: Pooling,
}

/// Token ids and attention mask of a batch, padded to its longest item.
pub struct TokenBatch {
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
    pub rows: usize,
    pub len: usize,
}

impl MiniLmEncoder {
    pub fn load(assets: &Path, device: Device, pooling: Pooling) -> anyhow::Result<Self> {
        let weights = assets::verified_model_file(assets, WEIGHTS)?;
        let tok_path = assets::verified_model_file(assets, TOKENIZER)?;
        let mut tokenizer =
            Tokenizer::from_file(&tok_path).map_err(|e| anyhow!("reading {}: {e}", tok_path.display()))?;
        // The file pads every text to 128 tokens; padding to the batch's longest text gives
        // identical embeddings (padding is masked out) for a fraction of the work.
        let mut padding = tokenizer.get_padding().cloned().unwrap_or_default();
        padding.strategy = PaddingStrategy::BatchLongest;
        let pad = i64::from(padding.pad_id);
        let mut pieces = tokenizer.clone();
        pieces.with_padding(None);
        pieces.with_truncation(None).map_err(|e| anyhow!("clearing truncation: {e}"))?;
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| anyhow!("setting truncation: {e}"))?;
        let special = |token: &str| {
            tokenizer
                .token_to_id(token)
                .map(i64::from)
                .ok_or_else(|| anyhow!("{} has no {token} token", tok_path.display()))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let bert = tch::no_grad(|| Bert::load(&weights, BertConfig::MINILM_L6, device))?;
        let spec = EncoderSpec { id: Self::id(pooling), modality: Modality::Text, dim: DIM * pooling.layers().len() };
        Ok(Self { spec, tokenizer, pieces, cls, sep, pad, bert, pooling })
    }

    /// The spec id: the name, how many windows a text is read in (texts read otherwise
    /// embed differently), and the weights' hash prefix from the manifest.
    pub fn id(pooling: Pooling) -> String {
        format!("{}-w{MAX_WINDOWS}@{}", pooling.name(), assets::short_hash(WEIGHTS))
    }

    /// Tokenises a batch with padding to its longest text (or to `fixed_len`, for
    /// benchmarks that compare against fixed-length padding).
    pub fn tokenize(&self, texts: &[&str], fixed_len: Option<usize>) -> Result<TokenBatch, String> {
        let encodings = if let Some(len) = fixed_len {
            let mut tok = self.tokenizer.clone();
            tok.with_padding(Some(PaddingParams { strategy: PaddingStrategy::Fixed(len), ..Default::default() }));
            tok.with_truncation(Some(TruncationParams { max_length: len, ..Default::default() }))
                .map_err(|e| e.to_string())?;
            tok.encode_batch(texts.to_vec(), true)
        } else {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        }
        .map_err(|e| format!("cannot tokenize text: {e}"))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.len());
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for e in &encodings {
            if e.len() != len {
                return Err("tokenizer returned rows of different lengths".to_string());
            }
            ids.extend(e.get_ids().iter().map(|&i| i64::from(i)));
            mask.extend(e.get_attention_mask().iter().map(|&m| i64::from(m)));
        }
        Ok(TokenBatch { ids, mask, rows, len })
    }

    /// Embeddings [rows, 384 x pooled layers] of a tokenised batch (each row one window of
    /// at most [`MAX_TOKENS`]).
    pub fn embed_tokens(&self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>, TchError> {
        if batch.rows == 0 {
            return Ok(Vec::new());
        }
        let means = self.layer_means(batch)?;
        let ones = Tensor::f_ones([batch.rows as i64], (Kind::Float, Device::Cpu))?;
        self.finish(&means, &ones.f_diag(0)?)
    }

    /// Mean hidden state of each pooled layer over each row's real tokens, not normalised:
    /// [rows, layers, 384] on the CPU.
    fn layer_means(&self, batch: &TokenBatch) -> Result<Tensor, TchError> {
        let device = self.bert.device();
        let shape = [batch.rows as i64, batch.len as i64];
        crate::ml::device::with_threads(crate::ml::device::cores(), || {
            tch::no_grad(|| {
                let ids = Tensor::f_from_slice(&batch.ids)?.f_view(shape)?.f_to_device(device)?;
                let mask = Tensor::f_from_slice(&batch.mask)?.f_view(shape)?.f_to_device(device)?;
                let layers: Vec<usize> = self.pooling.layers().iter().map(|&(layer, _)| layer).collect();
                let hidden = self.bert.forward_layers(&ids, &mask, &layers)?;
                let means = hidden.iter().map(|h| bert::mean_pool(h, &mask)).collect::<Result<Vec<_>, _>>()?;
                Tensor::f_stack(&means, 1)?.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)
            })
        })
    }

    /// Texts' embeddings from their windows' layer means [windows, layers, 384]: `share`
    /// [texts, windows] holds each window's share of its text's tokens, so a text's mean is
    /// over all its tokens, each read in the context of its own window. Each layer's mean is
    /// then L2-normalised and scaled by its block weight.
    fn finish(&self, means: &Tensor, share: &Tensor) -> Result<Vec<Vec<f32>>, TchError> {
        tch::no_grad(|| {
            let (windows, layers, width) = means.size3()?;
            let texts = share.f_matmul(&means.f_view([windows, layers * width])?)?.f_view([-1, layers, width])?;
            let norm = texts.f_norm_scalaropt_dim(2, [2i64].as_slice(), true)?.f_clamp_min(1e-12)?;
            let weights: Vec<f32> = self.pooling.layers().iter().map(|&(_, w)| w as f32).collect();
            let weights = Tensor::f_from_slice(&weights)?.f_view([1, layers, 1])?;
            let pooled = texts.f_div(&norm)?.f_mul(&weights)?.f_view([-1, layers * width])?;
            Vec::<Vec<f32>>::try_from(&pooled)
        })
    }

    /// Each text's windows: its word pieces cut into runs of [`WINDOW_CONTENT`], each between
    /// `[CLS]` and `[SEP]` as the model was trained to read them (a text that fits in one is
    /// exactly what the truncating tokenizer gives), at most [`MAX_WINDOWS`] per text. Returns
    /// the windows' ids and the text each belongs to.
    fn windows(&self, texts: &[&str]) -> Result<(Vec<Vec<i64>>, Vec<usize>), String> {
        let capped: Vec<&str> = texts.iter().map(|t| cut_at_char_boundary(t, MAX_CHARS)).collect();
        let encodings = self.pieces.encode_batch(capped, false).map_err(|e| format!("cannot tokenize text: {e}"))?;
        let mut windows = Vec::new();
        let mut owner = Vec::new();
        for (text, e) in encodings.iter().enumerate() {
            let ids = e.get_ids();
            let count = ids.len().div_ceil(WINDOW_CONTENT).clamp(1, MAX_WINDOWS);
            for w in 0..count {
                let part = ids.get(w * WINDOW_CONTENT..ids.len().min((w + 1) * WINDOW_CONTENT)).unwrap_or(&[]);
                let mut window = Vec::with_capacity(part.len() + 2);
                window.push(self.cls);
                window.extend(part.iter().map(|&i| i64::from(i)));
                window.push(self.sep);
                windows.push(window);
                owner.push(text);
            }
        }
        Ok((windows, owner))
    }

    /// Embeds texts; errors apply to the whole batch (tokenising plain text cannot fail
    /// per item).
    ///
    /// A text longer than the model's [`MAX_TOKENS`] is read in consecutive windows, not cut
    /// at its first 256 word pieces: on newsgroup posts (44 % of them longer) the first
    /// window alone misses most of what a post says (`bench/results/lc-adaptive.md`, "Long
    /// texts read in windows").
    ///
    /// Padding every window to the longest of the batch wastes most of the work on typical
    /// data: one 256-token review among 63 short ones makes the whole forward 256 wide. So
    /// the windows are sorted by length and run as a few length-homogeneous sub-batches (the
    /// split that minimises padded tokens plus a per-forward overhead). Padding is masked
    /// out, so the vectors are the same as from one padded batch.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (windows, owner) = self.windows(texts)?;
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| windows[i].len());
        let sorted: Vec<usize> = order.iter().map(|&i| windows[i].len()).collect();
        let failed = |e: TchError| format!("encoder failed: {e}");
        let mut parts = Vec::new();
        for group in plan_groups(&sorted) {
            for rows in order[group].chunks(MAX_FORWARD_ROWS) {
                let len = windows[*rows.last().unwrap_or(&0)].len();
                let mut sub = TokenBatch { ids: Vec::new(), mask: Vec::new(), rows: rows.len(), len };
                for &w in rows {
                    let ids = &windows[w];
                    sub.ids.extend_from_slice(ids);
                    sub.ids.resize(sub.ids.len() + len - ids.len(), self.pad);
                    sub.mask.extend(std::iter::repeat_n(1, ids.len()));
                    sub.mask.resize(sub.mask.len() + len - ids.len(), 0);
                }
                parts.push(self.layer_means(&sub).map_err(failed)?);
            }
        }
        // Back from length order to window order, then each text the token-weighted mean of
        // its windows (a text in one window gets exactly its own: weight 1, the rest 0).
        let to_sorted: Vec<i64> = {
            let mut position = vec![0i64; order.len()];
            for (p, &w) in order.iter().enumerate() {
                position[w] = p as i64;
            }
            position
        };
        let means = Tensor::f_cat(&parts, 0)
            .and_then(|m| m.f_index_select(0, &Tensor::from_slice(&to_sorted)))
            .map_err(failed)?;
        let mut tokens = vec![0f32; texts.len()];
        for (w, &text) in owner.iter().enumerate() {
            tokens[text] += windows[w].len() as f32;
        }
        let mut share = vec![0f32; texts.len() * windows.len()];
        for (w, &text) in owner.iter().enumerate() {
            share[text * windows.len() + w] = windows[w].len() as f32 / tokens[text];
        }
        let share = Tensor::f_from_slice(&share)
            .and_then(|s| s.f_view([texts.len() as i64, windows.len() as i64]))
            .map_err(failed)?;
        self.finish(&means, &share).map_err(failed)
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
/// (`str::floor_char_boundary` does this from Rust 1.91; the crate's `rust-version` is 1.89.)
fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Fixed cost of one forward pass, in padded tokens: a new sub-batch must save at least
/// this much padding to be worth it (kernel launches, small-GEMM inefficiency).
const GROUP_OVERHEAD_TOKENS: usize = 256;

/// Splits ascending token lengths into contiguous groups minimising
/// sum(rows x longest + overhead): an exact O(n^2) dynamic programme (n is a batch).
fn plan_groups(sorted_lens: &[usize]) -> Vec<std::ops::Range<usize>> {
    let n = sorted_lens.len();
    let mut best = vec![usize::MAX; n + 1];
    let mut cut = vec![0usize; n + 1];
    best[0] = 0;
    for j in 1..=n {
        for i in 0..j {
            let cost = best[i] + (j - i) * sorted_lens[j - 1].max(1) + GROUP_OVERHEAD_TOKENS;
            if cost < best[j] {
                best[j] = cost;
                cut[j] = i;
            }
        }
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        groups.push(cut[j]..j);
        j = cut[j];
    }
    groups.reverse();
    groups
}

impl Encoder for MiniLmEncoder {
    fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    fn preferred_batch(&self) -> usize {
        64
    }

    fn encode(&self, batch: &[EncoderInput]) -> Vec<Result<Vec<f32>, String>> {
        let mut texts = Vec::with_capacity(batch.len());
        let mut slots = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                EncoderInput::Text(t) => {
                    slots.push(Ok(texts.len()));
                    texts.push(t.as_str());
                }
                EncoderInput::Image(_) => slots.push(Err("the text encoder was given an image".to_string())),
            }
        }
        match self.embed_texts(&texts) {
            Ok(mut rows) => slots
                .into_iter()
                .map(|s| {
                    s.and_then(|i| rows.get_mut(i).map(std::mem::take).ok_or_else(|| "encoder lost a row".to_string()))
                })
                .collect(),
            Err(e) => slots.into_iter().map(|s| s.and(Err(e.clone()))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_on_character_boundaries() {
        let text = "é".repeat(10); // two bytes each
        assert_eq!(cut_at_char_boundary(&text, 5), "éé");
        assert_eq!(cut_at_char_boundary(&text, 6), "ééé");
        assert_eq!(cut_at_char_boundary(&text, 100), text);
        assert_eq!(cut_at_char_boundary("", 0), "");
    }

    #[test]
    fn groups_cover_every_row_in_order() {
        let lens = [3, 3, 4, 10, 200, 256, 256];
        let groups = plan_groups(&lens);
        assert_eq!(groups.first().map(|g| g.start), Some(0));
        assert_eq!(groups.last().map(|g| g.end), Some(lens.len()));
        assert!(groups.windows(2).all(|w| w[0].end == w[1].start));
    }
}
