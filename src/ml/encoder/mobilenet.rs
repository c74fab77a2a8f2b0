//! torchvision's ImageNet MobileNetV2 as an image encoder.
//!
//! The network is rebuilt here rather than with `tch::vision::mobilenet::v2` because that
//! module fuses the classifier into its forward, and the encoder needs the pooled features
//! on their own. Batch norm (eval mode, running statistics) is folded into the preceding
//! convolution at load: the network then runs convolutions and clamps only, which saves a
//! full pass over every activation per layer.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use tch::{CModule, Device, Kind, TchError, Tensor};

use super::image_prep::{self, CROP, ITEM_LEN};
use super::{Encoder, EncoderInput, EncoderSpec, Modality};
use crate::assets;

const WEIGHTS: &str = "mobilenet_v2/model.safetensors";
/// Width of the globally pooled features (the embedding).
pub const DIM: usize = 1280;
pub const CLASSES: usize = 1000;
/// torchvision's `BatchNorm2d` default.
const BN_EPS: f64 = 1e-5;

/// (expansion, output channels, repeats, first stride), torchvision's table.
const SETTINGS: [(i64, i64, i64, i64); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// How the forward pass is executed; the default is the fastest measured on CPU (see
/// `bench/README-encoders.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Feed NHWC-strided tensors (and weights) so oneDNN runs its channels-last kernels.
    pub channels_last: bool,
    /// Run the feature extractor as a traced TorchScript graph instead of op by op.
    pub jit: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { channels_last: true, jit: false }
    }
}

/// A convolution with its batch norm folded in, optionally followed by ReLU6.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
    relu6: bool,
}

impl ConvBn {
    fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let mut ys = xs.f_conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        )?;
        if self.relu6 {
            // In place: no second activation-sized buffer.
            let _ = ys.f_clamp_(0.0, 6.0)?;
        }
        Ok(ys)
    }
}

struct Block {
    convs: Vec<ConvBn>,
    residual: bool,
}

impl Block {
    fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let mut ys = xs.shallow_clone();
        for conv in &self.convs {
            ys = conv.forward(&ys)?;
        }
        if self.residual {
            let _ = ys.f_add_(xs)?;
        }
        Ok(ys)
    }
}

/// The weights as loaded, with batch norms folded.
struct Net {
    blocks: Vec<Block>,
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl Net {
    fn load(path: &Path, device: Device, channels_last: bool) -> anyhow::Result<Self> {
        let tensors = Tensor::read_safetensors(path).with_context(|| format!("reading {}", path.display()))?;
        let mut map: HashMap<String, Tensor> = tensors.into_iter().collect();
        let mut conv = |conv: &str, bn: &str, stride: i64, groups: i64, relu6: bool| -> anyhow::Result<ConvBn> {
            let w = take(&mut map, &format!("{conv}.weight"))?;
            let gamma = take(&mut map, &format!("{bn}.weight"))?;
            let beta = take(&mut map, &format!("{bn}.bias"))?;
            let mean = take(&mut map, &format!("{bn}.running_mean"))?;
            let var = take(&mut map, &format!("{bn}.running_var"))?;
            let (weight, bias) = fold_bn(&w, &gamma, &beta, &mean, &var)?;
            let ks = weight.size().get(2).copied().unwrap_or(1);
            let weight = weight.f_to_device(device)?;
            let weight = if channels_last { to_channels_last(&weight)? } else { weight };
            Ok(ConvBn { weight, bias: bias.f_to_device(device)?, stride, padding: (ks - 1) / 2, groups, relu6 })
        };
        let mut blocks =
            vec![Block { convs: vec![conv("features.0.0", "features.0.1", 2, 1, true)?], residual: false }];
        let mut c_in = 32;
        let mut idx = 1;
        for (er, c_out, n, first_stride) in SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { first_stride } else { 1 };
                let p = format!("features.{idx}.conv");
                let hidden = c_in * er;
                let mut convs = Vec::new();
                let mut j = 0;
                if er != 1 {
                    convs.push(conv(&format!("{p}.0.0"), &format!("{p}.0.1"), 1, 1, true)?);
                    j = 1;
                }
                convs.push(conv(&format!("{p}.{j}.0"), &format!("{p}.{j}.1"), stride, hidden, true)?);
                convs.push(conv(&format!("{p}.{}", j + 1), &format!("{p}.{}", j + 2), 1, 1, false)?);
                blocks.push(Block { convs, residual: stride == 1 && c_in == c_out });
                c_in = c_out;
                idx += 1;
            }
        }
        blocks.push(Block {
            convs: vec![conv(&format!("features.{idx}.0"), &format!("features.{idx}.1"), 1, 1, true)?],
            residual: false,
        });
        let fc_weight = take(&mut map, "classifier.1.weight")?.f_to_device(device)?;
        let fc_bias = take(&mut map, "classifier.1.bias")?.f_to_device(device)?;
        if fc_weight.size() != [CLASSES as i64, DIM as i64] {
            bail!("classifier.1.weight has shape {:?}, expected [{CLASSES}, {DIM}]", fc_weight.size());
        }
        Ok(Self { blocks, fc_weight, fc_bias })
    }

    /// NCHW images (any strides) to [N, 1280] pooled features.
    fn features(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let mut ys = xs.shallow_clone();
        for block in &self.blocks {
            ys = block.forward(&ys)?;
        }
        ys.f_mean_dim(Some([2i64, 3].as_slice()), false, Kind::Float)
    }
}

fn take(map: &mut HashMap<String, Tensor>, name: &str) -> anyhow::Result<Tensor> {
    map.remove(name).ok_or_else(|| anyhow!("weights file lacks tensor {name}"))
}

/// Folds eval-mode batch norm into the convolution: w' = w * g/sqrt(var+eps),
/// b' = beta - mean * g/sqrt(var+eps). Computed in f64 so the fold adds no rounding of its own.
fn fold_bn(
    w: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<(Tensor, Tensor), TchError> {
    let d = |t: &Tensor| t.f_to_kind(Kind::Double);
    let scale = d(gamma)?.f_div(&d(var)?.f_add_scalar(BN_EPS)?.f_sqrt()?)?;
    let weight = d(w)?.f_mul(&scale.f_view([-1, 1, 1, 1])?)?.f_to_kind(Kind::Float)?;
    let bias = d(beta)?.f_sub(&d(mean)?.f_mul(&scale)?)?.f_to_kind(Kind::Float)?;
    Ok((weight, bias))
}

/// Same values and NCHW shape, NHWC memory order (PyTorch's `channels_last`).
fn to_channels_last(t: &Tensor) -> Result<Tensor, TchError> {
    t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])
}

enum Runner {
    Eager,
    Traced(CModule),
}

/// ImageNet MobileNetV2. The embedding is the 1280-d global-average-pooled feature vector,
/// returned raw rather than L2-normalised: the heads standardise their inputs, and the
/// magnitudes carry information (how strongly a feature fires) that normalising would drop.
pub struct MobileNetV2Encoder {
    spec: EncoderSpec,
    net: Net,
    runner: Runner,
    device: Device,
    options: Options,
}

impl MobileNetV2Encoder {
    /// The spec id: the name and the weights' hash prefix from the manifest.
    pub fn id() -> String {
        format!("mobilenet_v2-imagenet@{}", assets::short_hash(WEIGHTS))
    }

    pub fn load(assets: &Path, device: Device) -> anyhow::Result<Self> {
        Self::load_with(assets, device, Options::default())
    }

    pub fn load_with(assets: &Path, device: Device, options: Options) -> anyhow::Result<Self> {
        let path = assets::verified_model_file(assets, WEIGHTS)?;
        let net = tch::no_grad(|| Net::load(&path, device, options.channels_last))?;
        let runner = if options.jit {
            let example = Tensor::f_zeros([1, 3, CROP as i64, CROP as i64], (Kind::Float, device))?;
            let example = if options.channels_last { to_channels_last(&example)? } else { example };
            let mut failure = None;
            let module = tch::no_grad(|| {
                CModule::create_by_tracing("MobileNetV2", "forward", &[example], &mut |xs| match net.features(&xs[0]) {
                    Ok(t) => vec![t],
                    Err(e) => {
                        failure = Some(e);
                        vec![]
                    }
                })
            });
            if let Some(e) = failure {
                bail!("tracing MobileNetV2: {e}");
            }
            let mut module = module.context("tracing MobileNetV2")?;
            module.f_set_eval()?;
            Runner::Traced(module)
        } else {
            Runner::Eager
        };
        let spec = EncoderSpec { id: Self::id(), modality: Modality::Image, dim: DIM };
        Ok(Self { spec, net, runner, device, options })
    }

    /// Turns an NHWC float buffer of `n` preprocessed images into the network's input.
    fn input(&self, buf: &[f32], n: usize) -> Result<Tensor, TchError> {
        let side = CROP as i64;
        let nhwc = Tensor::f_from_slice(buf)?.f_view([n as i64, side, side, 3])?.f_to_device(self.device)?;
        let nchw = nhwc.f_permute([0, 3, 1, 2])?;
        if self.options.channels_last {
            Ok(nchw)
        } else {
            nchw.f_contiguous()
        }
    }

    fn features_of(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        match &self.runner {
            Runner::Eager => self.net.features(xs),
            Runner::Traced(m) => m.forward_ts(&[xs]),
        }
    }

    /// Pooled features [n, 1280] of `n` images preprocessed by
    /// [`image_prep::preprocess_batch`] (NHWC floats).
    pub fn embed_prepared(&self, buf: &[f32], n: usize) -> Result<Vec<Vec<f32>>, TchError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        crate::ml::device::with_threads(crate::ml::device::cores(), || {
            tch::no_grad(|| {
                let feats = self.features_of(&self.input(buf, n)?)?;
                Vec::<Vec<f32>>::try_from(&feats.f_to_device(Device::Cpu)?)
            })
        })
    }

    /// ImageNet logits ([1000] per item) from image bytes, for checking the weights and
    /// preprocessing against known labels.
    pub fn classify(&self, batch: &[&[u8]]) -> Vec<Result<Vec<f32>, String>> {
        let (buf, rows) = image_prep::preprocess_batch(batch);
        let n = buf.len() / ITEM_LEN;
        let logits = (n > 0)
            .then(|| {
                crate::ml::device::with_threads(crate::ml::device::cores(), || {
                    tch::no_grad(|| {
                        let feats = self.features_of(&self.input(&buf, n)?)?;
                        let logits = feats.f_linear(&self.net.fc_weight, Some(&self.net.fc_bias))?;
                        Vec::<Vec<f32>>::try_from(&logits.f_to_device(Device::Cpu)?)
                    })
                })
            })
            .transpose();
        scatter(rows, logits)
    }
}

/// Puts the network's rows back in their input slots, next to the decode errors.
fn scatter(
    rows: Vec<Result<usize, String>>,
    out: Result<Option<Vec<Vec<f32>>>, TchError>,
) -> Vec<Result<Vec<f32>, String>> {
    match out {
        Ok(out) => {
            let mut out = out.unwrap_or_default();
            rows.into_iter()
                .map(|r| {
                    r.and_then(|i| out.get_mut(i).map(std::mem::take).ok_or_else(|| "encoder lost a row".to_string()))
                })
                .collect()
        }
        Err(e) => {
            let msg = format!("encoder failed: {e}");
            rows.into_iter().map(|r| r.and(Err(msg.clone()))).collect()
        }
    }
}

impl Encoder for MobileNetV2Encoder {
    fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    fn preferred_batch(&self) -> usize {
        32
    }

    fn encode(&self, batch: &[EncoderInput]) -> Vec<Result<Vec<f32>, String>> {
        let bytes: Vec<&[u8]> = batch
            .iter()
            .map(|item| match item {
                EncoderInput::Image(b) => b.as_slice(),
                // An empty buffer fails decoding with a clear message in that slot.
                EncoderInput::Text(_) => &[],
            })
            .collect();
        let (buf, mut rows) = image_prep::preprocess_batch(&bytes);
        for (row, item) in rows.iter_mut().zip(batch) {
            if matches!(item, EncoderInput::Text(_)) {
                *row = Err("the image encoder was given text".to_string());
            }
        }
        let n = buf.len() / ITEM_LEN;
        let out = self.embed_prepared(&buf, n).map(Some);
        scatter(rows, out)
    }
}
