//! sentence-transformers all-MiniLM-L6-v2 as a text encoder: BERT (6 layers, 384 wide),
//! mean pooling over real tokens, L2 normalisation; optionally the last three layers pooled
//! that way and concatenated (see [`Pooling`]).

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
    tokenizer: Tokenizer,
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
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| anyhow!("setting truncation: {e}"))?;
        let bert = tch::no_grad(|| Bert::load(&weights, BertConfig::MINILM_L6, device))?;
        let spec = EncoderSpec { id: Self::id(pooling), modality: Modality::Text, dim: DIM * pooling.layers().len() };
        Ok(Self { spec, tokenizer, bert, pooling })
    }

    /// The spec id: the name and the weights' hash prefix from the manifest.
    pub fn id(pooling: Pooling) -> String {
        format!("{}@{}", pooling.name(), assets::short_hash(WEIGHTS))
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

    /// Embeddings [rows, 384 x pooled layers] of a tokenised batch.
    pub fn embed_tokens(&self, batch: &TokenBatch) -> Result<Vec<Vec<f32>>, TchError> {
        if batch.rows == 0 {
            return Ok(Vec::new());
        }
        let device = self.bert.device();
        let shape = [batch.rows as i64, batch.len as i64];
        crate::ml::device::with_threads(crate::ml::device::cores(), || {
            tch::no_grad(|| {
                let ids = Tensor::f_from_slice(&batch.ids)?.f_view(shape)?.f_to_device(device)?;
                let mask = Tensor::f_from_slice(&batch.mask)?.f_view(shape)?.f_to_device(device)?;
                let (layers, weights): (Vec<usize>, Vec<f64>) = self.pooling.layers().iter().copied().unzip();
                let hidden = self.bert.forward_layers(&ids, &mask, &layers)?;
                let parts = hidden
                    .iter()
                    .zip(weights)
                    .map(|(h, w)| bert::mean_pool_normalised(h, &mask)?.f_mul_scalar(w))
                    .collect::<Result<Vec<_>, _>>()?;
                let pooled = Tensor::f_cat(&parts, 1)?;
                Vec::<Vec<f32>>::try_from(&pooled.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?)
            })
        })
    }

    /// Embeds texts; errors apply to the whole batch (tokenising plain text cannot fail
    /// per item).
    ///
    /// Padding every text to the longest of the batch wastes most of the work on typical
    /// data: one 256-token review among 63 short ones makes the whole forward 256 wide. So
    /// the texts are sorted by length and run as a few length-homogeneous sub-batches (the
    /// split that minimises padded tokens plus a per-forward overhead). Padding is masked
    /// out, so the vectors are the same as from one padded batch.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let batch = self.tokenize(texts, None)?;
        let lens: Vec<usize> =
            batch.mask.chunks(batch.len.max(1)).map(|m| m.iter().filter(|&&v| v != 0).count()).collect();
        let mut order: Vec<usize> = (0..batch.rows).collect();
        order.sort_by_key(|&i| lens[i]);
        let sorted: Vec<usize> = order.iter().map(|&i| lens[i]).collect();
        let mut out = vec![Vec::new(); batch.rows];
        for group in plan_groups(&sorted) {
            let len = sorted[group.end - 1].max(1);
            let mut sub = TokenBatch { ids: Vec::new(), mask: Vec::new(), rows: group.len(), len };
            for &row in &order[group.clone()] {
                let start = row * batch.len;
                sub.ids.extend_from_slice(&batch.ids[start..start + len]);
                sub.mask.extend_from_slice(&batch.mask[start..start + len]);
            }
            let embs = self.embed_tokens(&sub).map_err(|e| format!("encoder failed: {e}"))?;
            for (&row, emb) in order[group].iter().zip(embs) {
                out[row] = emb;
            }
        }
        Ok(out)
    }
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
