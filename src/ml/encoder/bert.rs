//! A BERT encoder (inference only) on raw tch tensors, loaded from a Hugging Face
//! `BertModel` safetensors file.
//!
//! Post-LN layers, exact (erf) GELU, absolute position embeddings, token type 0 everywhere.
//! The query/key/value projections are concatenated into one matrix at load so each layer
//! does one GEMM for them instead of three, and attention runs through
//! `scaled_dot_product_attention`, which picks libtorch's fused kernel for the device.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context};
use tch::{Device, Kind, TchError, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct BertConfig {
    pub hidden: i64,
    pub layers: usize,
    pub heads: i64,
    pub intermediate: i64,
    pub max_position: i64,
    pub layer_norm_eps: f64,
}

impl BertConfig {
    /// all-MiniLM-L6-v2 (`nreimers/MiniLM-L6-H384-uncased`).
    pub const MINILM_L6: Self =
        Self { hidden: 384, layers: 6, heads: 12, intermediate: 1536, max_position: 512, layer_norm_eps: 1e-12 };
}

struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_linear(&self.weight, Some(&self.bias))
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    out_ln: LayerNorm,
}

pub struct Bert {
    config: BertConfig,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
}

struct Weights {
    map: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    fn take(&mut self, name: &str) -> anyhow::Result<Tensor> {
        let t = self.map.remove(name).ok_or_else(|| anyhow!("weights file lacks tensor {name}"))?;
        Ok(t.f_to_kind(Kind::Float)?.f_to_device(self.device)?)
    }

    fn linear(&mut self, prefix: &str) -> anyhow::Result<Linear> {
        Ok(Linear { weight: self.take(&format!("{prefix}.weight"))?, bias: self.take(&format!("{prefix}.bias"))? })
    }

    fn layer_norm(&mut self, prefix: &str) -> anyhow::Result<LayerNorm> {
        Ok(LayerNorm { weight: self.take(&format!("{prefix}.weight"))?, bias: self.take(&format!("{prefix}.bias"))? })
    }
}

impl Bert {
    pub fn load(path: &Path, config: BertConfig, device: Device) -> anyhow::Result<Self> {
        let tensors = Tensor::read_safetensors(path).with_context(|| format!("reading {}", path.display()))?;
        let mut w = Weights { map: tensors.into_iter().collect(), device };
        // Some exports prefix every name with the model type.
        if w.map.keys().all(|k| k.starts_with("bert.")) {
            w.map = w.map.into_iter().map(|(k, v)| (k["bert.".len()..].to_string(), v)).collect();
        }
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let p = format!("encoder.layer.{i}");
            let q = w.linear(&format!("{p}.attention.self.query"))?;
            let k = w.linear(&format!("{p}.attention.self.key"))?;
            let v = w.linear(&format!("{p}.attention.self.value"))?;
            let qkv = Linear {
                weight: Tensor::f_cat(&[&q.weight, &k.weight, &v.weight], 0)?,
                bias: Tensor::f_cat(&[&q.bias, &k.bias, &v.bias], 0)?,
            };
            layers.push(Layer {
                qkv,
                attn_out: w.linear(&format!("{p}.attention.output.dense"))?,
                attn_ln: w.layer_norm(&format!("{p}.attention.output.LayerNorm"))?,
                ff_in: w.linear(&format!("{p}.intermediate.dense"))?,
                ff_out: w.linear(&format!("{p}.output.dense"))?,
                out_ln: w.layer_norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let word = w.take("embeddings.word_embeddings.weight")?;
        let position = w.take("embeddings.position_embeddings.weight")?;
        let token_type = w.take("embeddings.token_type_embeddings.weight")?;
        let emb_ln = w.layer_norm("embeddings.LayerNorm")?;
        let shape_ok = word.size().get(1) == Some(&config.hidden)
            && position.size() == [config.max_position, config.hidden]
            && layers.first().map(|l| l.ff_in.weight.size()) == Some(vec![config.intermediate, config.hidden]);
        if !shape_ok {
            anyhow::bail!("BERT weights do not match the configuration {config:?}");
        }
        Ok(Self { config, word, position, token_type, emb_ln, layers })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.word.device()
    }

    fn layer_norm(&self, xs: &Tensor, ln: &LayerNorm) -> Result<Tensor, TchError> {
        xs.f_layer_norm([self.config.hidden], Some(&ln.weight), Some(&ln.bias), self.config.layer_norm_eps, true)
    }

    /// The hidden states [B, T, H] after the given layers, in the order asked (0 is the
    /// embedding layer's output, `config.layers` the last), for token ids [B, T] (int64) and
    /// a 0/1 attention mask [B, T] (any kind) on the model's device; the other layers'
    /// states are freed as the forward goes on.
    pub fn forward_layers(&self, ids: &Tensor, mask: &Tensor, keep: &[usize]) -> Result<Vec<Tensor>, TchError> {
        if let Some(&l) = keep.iter().find(|&&l| l > self.config.layers) {
            return Err(TchError::Shape(format!("layer {l} asked of a {}-layer model", self.config.layers)));
        }
        let size = ids.size();
        let (b, t) = match size.as_slice() {
            [b, t] => (*b, *t),
            _ => return Err(TchError::Shape(format!("token ids must be [batch, len], got {size:?}"))),
        };
        if t > self.config.max_position {
            return Err(TchError::Shape(format!("{t} tokens exceed the {} positions", self.config.max_position)));
        }
        let (hidden, heads) = (self.config.hidden, self.config.heads);
        let head_dim = hidden / heads;
        // Position and token-type (always 0) embeddings are the same for every row: add
        // them once as a [T, H] term that broadcasts over the batch.
        let pos_type = self.position.f_narrow(0, 0, t)?.f_add(&self.token_type.f_get(0)?)?;
        let emb = Tensor::f_embedding(&self.word, ids, -1, false, false)?.f_add_(&pos_type)?;
        let mut xs = self.layer_norm(&emb, &self.emb_ln)?;
        let mut kept: Vec<Option<Tensor>> = keep.iter().map(|_| None).collect();
        let mut keep_state = |layer: usize, xs: &Tensor| {
            for (slot, _) in kept.iter_mut().zip(keep).filter(|(_, &k)| k == layer) {
                *slot = Some(xs.shallow_clone());
            }
        };
        keep_state(0, &xs);
        // Keys that are padding get no attention weight: a boolean mask (true = attend)
        // broadcast over heads and query positions.
        let attn_mask = mask.f_to_kind(Kind::Bool)?.f_view([b, 1, 1, t])?;
        for (i, layer) in self.layers.iter().enumerate() {
            // [B, T, 3H] -> 3 x [B, heads, T, head_dim]
            let qkv = layer.qkv.forward(&xs)?.f_view([b, t, 3, heads, head_dim])?.f_permute([2, 0, 3, 1, 4])?;
            let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
            let ctx = Tensor::f_scaled_dot_product_attention(&q, &k, &v, Some(&attn_mask), 0.0, false, None, false)?
                .f_transpose(1, 2)?
                .f_reshape([b, t, hidden])?;
            let attn = layer.attn_out.forward(&ctx)?.f_add_(&xs)?;
            let attn = self.layer_norm(&attn, &layer.attn_ln)?;
            let ff = layer.ff_in.forward(&attn)?.f_gelu("none")?;
            let ff = layer.ff_out.forward(&ff)?.f_add_(&attn)?;
            xs = self.layer_norm(&ff, &layer.out_ln)?;
            keep_state(i + 1, &xs);
        }
        Ok(kept.into_iter().flatten().collect())
    }
}

/// Mean of the hidden states over real tokens (sentence-transformers' `Pooling(mean)`; the
/// caller normalises): `hidden` [B, T, H], `mask` [B, T]; returns [B, H].
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor, TchError> {
    let m = mask.f_to_kind(Kind::Float)?.f_unsqueeze(-1)?;
    let summed = hidden.f_mul(&m)?.f_sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Float)?;
    let counts = m.f_sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Float)?.f_clamp_min(1e-9)?;
    summed.f_div(&counts)
}
