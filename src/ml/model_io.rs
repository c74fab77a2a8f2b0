//! A trained model on disk: `model.json` (classes, encoder, head description, metrics) and
//! `head.safetensors` (normalisation stats and layer weights, f32).
//!
//! Each file is written to a temporary name and renamed, so a crash never leaves a half
//! file; `model.json` is written last and records the weights' sha256, so a weights file from
//! another save (or a corrupted one) is refused instead of silently scoring differently.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ml::cache::write_atomic;
use crate::ml::encoder::EncoderSpec;
use crate::ml::head::{Head, HeadKind, HeadParams, Layer, Normalizer};

pub const FORMAT_VERSION: u32 = 1;
pub const MODEL_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "head.safetensors";

#[derive(Clone, Debug)]
pub struct SavedModel {
    pub classes: Vec<String>,
    pub encoder: EncoderSpec,
    pub head: Head,
    pub metrics: serde_json::Value,
    pub labels_used: usize,
    /// RFC 3339 or unix seconds, as the caller likes; `unix_now()` gives the latter.
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
struct ModelJson {
    format_version: u32,
    classes: Vec<String>,
    encoder: EncoderSpec,
    head: HeadJson,
    metrics: serde_json::Value,
    labels_used: usize,
    created_at: String,
}

#[derive(Serialize, Deserialize)]
struct HeadJson {
    kind: HeadKind,
    params: HeadParams,
    dim: usize,
    num_classes: usize,
    temperature: f64,
    l2_rows: bool,
    /// `[inputs, outputs]` per layer, checked against the weights file.
    layers: Vec<[usize; 2]>,
    weights_file: String,
    weights_sha256: String,
}

/// Seconds since the Unix epoch, as a string for `created_at`.
pub fn unix_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_else(|_| "0".into())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl SavedModel {
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let head = &self.head;
        ensure!(
            self.classes.len() == head.num_classes(),
            "{} class names for a head with {} classes",
            self.classes.len(),
            head.num_classes()
        );
        let norm = head.normalizer();
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
            ("norm.mean".into(), vec![head.dim()], f32_bytes(&norm.mean)),
            ("norm.scale".into(), vec![head.dim()], f32_bytes(&norm.scale)),
        ];
        // The temperature also goes here, bit-exact: JSON float parsing may be off by one ulp.
        named.push(("temperature".into(), vec![1], head.temperature().to_le_bytes().to_vec()));
        let layers = head.plain_layers();
        for (i, l) in layers.iter().enumerate() {
            named.push((format!("layer{i}.w"), vec![l.inputs, l.outputs], f32_bytes(&l.w)));
            named.push((format!("layer{i}.b"), vec![l.outputs], f32_bytes(&l.b)));
        }
        let views = named
            .iter()
            .map(|(name, shape, bytes)| {
                let dtype = if name == "temperature" { Dtype::F64 } else { Dtype::F32 };
                Ok((name.clone(), TensorView::new(dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .context("building head tensors")?;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "lightbulb-head".to_string());
        let weights = safetensors::serialize(views, Some(meta)).context("serialising head weights")?;
        write_atomic(&dir.join(WEIGHTS_FILE), &weights)?;

        let json = ModelJson {
            format_version: FORMAT_VERSION,
            classes: self.classes.clone(),
            encoder: self.encoder.clone(),
            head: HeadJson {
                kind: head.kind(),
                params: head.params().clone(),
                dim: head.dim(),
                num_classes: head.num_classes(),
                temperature: head.temperature(),
                l2_rows: norm.l2,
                layers: layers.iter().map(|l| [l.inputs, l.outputs]).collect(),
                weights_file: WEIGHTS_FILE.into(),
                weights_sha256: hex::encode(Sha256::digest(&weights)),
            },
            metrics: self.metrics.clone(),
            labels_used: self.labels_used,
            created_at: self.created_at.clone(),
        };
        let text = serde_json::to_vec_pretty(&json).context("serialising model.json")?;
        write_atomic(&dir.join(MODEL_FILE), &text)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let json_path = dir.join(MODEL_FILE);
        let text = std::fs::read(&json_path).with_context(|| format!("reading {}", json_path.display()))?;
        let json: ModelJson = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a valid model description", json_path.display()))?;
        let jp = json_path.display();
        if json.format_version != FORMAT_VERSION {
            bail!("{jp}: format version {} is not supported (expected {FORMAT_VERSION})", json.format_version);
        }
        let h = &json.head;
        ensure!(
            h.kind == h.params.kind,
            "{jp}: head kind {:?} disagrees with its params ({:?})",
            h.kind,
            h.params.kind
        );
        ensure!(
            json.classes.len() == h.num_classes,
            "{jp}: {} class names but the head has {} classes",
            json.classes.len(),
            h.num_classes
        );
        ensure!(
            json.encoder.dim == h.dim,
            "{jp}: encoder {} is {}-d but the head takes {}-d input",
            json.encoder.id,
            json.encoder.dim,
            h.dim
        );
        ensure!(
            !h.weights_file.contains(['/', '\\']) && !h.weights_file.starts_with('.'),
            "{jp}: weights file name {:?} must be a plain file in the model directory",
            h.weights_file
        );
        let wpath = dir.join(&h.weights_file);
        let wp = wpath.display();
        let bytes = std::fs::read(&wpath).with_context(|| format!("reading {wp}"))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        ensure!(
            sha == h.weights_sha256,
            "{wp}: sha256 {sha} differs from {} recorded in {jp}: the weights are corrupt or from another save",
            h.weights_sha256
        );
        let st =
            safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{wp}: not a safetensors file"))?;
        let read = |name: &str, shape: &[usize]| -> anyhow::Result<Vec<f32>> {
            let t = st.tensor(name).with_context(|| format!("{wp}: tensor {name} is missing"))?;
            ensure!(t.dtype() == Dtype::F32, "{wp}: tensor {name} is {:?}, expected F32", t.dtype());
            ensure!(t.shape() == shape, "{wp}: tensor {name} has shape {:?}, {jp} says {:?}", t.shape(), shape);
            Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let norm = Normalizer::standard(h.l2_rows, read("norm.mean", &[h.dim])?, read("norm.scale", &[h.dim])?);
        let mut layers = Vec::with_capacity(h.layers.len());
        for (i, &[inputs, outputs]) in h.layers.iter().enumerate() {
            layers.push(Layer {
                inputs,
                outputs,
                w: read(&format!("layer{i}.w"), &[inputs, outputs])?,
                b: read(&format!("layer{i}.b"), &[outputs])?,
            });
        }
        let temperature = {
            let t = st.tensor("temperature").with_context(|| format!("{wp}: tensor temperature is missing"))?;
            ensure!(
                t.dtype() == Dtype::F64 && t.shape() == [1] && t.data().len() == 8,
                "{wp}: tensor temperature must be one F64"
            );
            let mut b = [0u8; 8];
            b.copy_from_slice(t.data());
            f64::from_le_bytes(b)
        };
        ensure!(
            (temperature - h.temperature).abs() <= 1e-9 * h.temperature.abs().max(1.0),
            "{wp}: temperature {temperature} differs from {} in {jp}",
            h.temperature
        );
        let head = Head::from_parts(h.params.clone(), h.dim, h.num_classes, temperature, norm, layers)
            .with_context(|| format!("{jp}: inconsistent head"))?;
        Ok(SavedModel {
            classes: json.classes,
            encoder: json.encoder,
            head,
            metrics: json.metrics,
            labels_used: json.labels_used,
            created_at: json.created_at,
        })
    }
}
