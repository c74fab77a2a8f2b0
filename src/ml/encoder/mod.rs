//! Pretrained encoders behind one trait: bytes or text in, one fixed-width vector per item out.

pub mod bert;
pub mod image_prep;
pub mod minilm;
pub mod mobilenet;

use std::path::Path;

/// What an encoder consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Image,
    Text,
}

/// One item handed to an encoder.
#[derive(Debug, Clone)]
pub enum EncoderInput {
    /// Encoded image file bytes (JPEG, PNG, GIF, WebP, BMP); decoding is the encoder's job.
    Image(Vec<u8>),
    Text(String),
}

/// Identity of an encoder: cached embeddings and saved heads are only valid for the same id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncoderSpec {
    /// Stable, versioned name, e.g. `mobilenet_v2-imagenet@f06dd918`: the suffix is the
    /// weights' sha256 prefix so a changed artifact invalidates caches.
    pub id: String,
    pub modality: Modality,
    pub dim: usize,
}

/// A frozen feature extractor.
///
/// `encode` is synchronous and CPU/GPU heavy: callers run it on a compute thread. Items that
/// cannot be decoded come back as `Err(reason)` in their slot; they never fail the batch.
pub trait Encoder: Send {
    fn spec(&self) -> &EncoderSpec;
    /// A batch size that keeps the cores busy without blowing memory.
    fn preferred_batch(&self) -> usize;
    fn encode(&self, batch: &[EncoderInput]) -> Vec<Result<Vec<f32>, String>>;
}

/// Which pretrained encoder a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    MobilenetV2,
    MinilmL6,
    /// MiniLM with its last three layers pooled (`minilm::Pooling::TopThreeLayers`).
    MinilmL6Layers,
}

impl EncoderKind {
    pub fn modality(self) -> Modality {
        match self {
            Self::MobilenetV2 => Modality::Image,
            Self::MinilmL6 | Self::MinilmL6Layers => Modality::Text,
        }
    }
}

/// The id the encoder's spec will have (known without loading its weights).
pub fn spec_id(kind: EncoderKind) -> String {
    match kind {
        EncoderKind::MobilenetV2 => mobilenet::MobileNetV2Encoder::id(),
        EncoderKind::MinilmL6 => minilm::MiniLmEncoder::id(minilm::Pooling::LastLayer),
        EncoderKind::MinilmL6Layers => minilm::MiniLmEncoder::id(minilm::Pooling::TopThreeLayers),
    }
}

/// Loads the encoder's weights from the assets directory (`<assets>/models/...`), verifying
/// their sha256 against `assets::MANIFEST`.
pub fn load(kind: EncoderKind, assets: &Path, device: tch::Device) -> anyhow::Result<Box<dyn Encoder>> {
    match kind {
        EncoderKind::MobilenetV2 => Ok(Box::new(mobilenet::MobileNetV2Encoder::load(assets, device)?)),
        EncoderKind::MinilmL6 => Ok(Box::new(minilm::MiniLmEncoder::load(assets, device, minilm::Pooling::LastLayer)?)),
        EncoderKind::MinilmL6Layers => {
            Ok(Box::new(minilm::MiniLmEncoder::load(assets, device, minilm::Pooling::TopThreeLayers)?))
        }
    }
}
