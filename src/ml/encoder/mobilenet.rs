//! TODO
pub struct MobileNetV2Encoder;
impl MobileNetV2Encoder { pub fn load(_a: &std::path::Path, _d: tch::Device) -> anyhow::Result<Self> { anyhow::bail!("todo") } }
impl super::Encoder for MobileNetV2Encoder { fn spec(&self) -> &super::EncoderSpec { todo!() } fn preferred_batch(&self) -> usize { 32 } fn encode(&self, _b: &[super::EncoderInput]) -> Vec<Result<Vec<f32>, String>> { todo!() } }
