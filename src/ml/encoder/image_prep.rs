//! Image bytes to ImageNet-normalised 224x224 input, torchvision's standard eval transform:
//! `Resize(256)` (shorter side, bilinear with antialiasing as PIL does it), `CenterCrop(224)`,
//! `ToTensor`, `Normalize(mean, std)`.

use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageReader, Limits, RgbImage};
use rayon::prelude::*;

/// Side of the square network input.
pub const CROP: u32 = 224;
/// The shorter side is resized to this before the centre crop.
pub const RESIZE: u32 = 256;
/// Refuse images with a side larger than this: a tiny compressed file can declare a huge
/// canvas (decompression bomb), and nothing useful for a 224 px classifier needs more.
pub const MAX_SIDE: u32 = 16_384;
/// Upper bound on what the decoder may allocate for one image (16k x 16k RGBA8 is 1 GiB, so
/// this also caps the product of the sides, not just each one).
const MAX_ALLOC: u64 = 512 << 20;

pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Floats per preprocessed image.
pub const ITEM_LEN: usize = (CROP * CROP * 3) as usize;

/// Decodes any supported format (the first frame of an animated GIF) to RGB8, compositing
/// transparency over white and reducing 16-bit and grayscale images to 8-bit RGB.
pub fn decode_rgb8(bytes: &[u8]) -> Result<RgbImage, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot decode image: {e}");
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| fail(&e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| fail(&e))?;
    if img.width() == 0 || img.height() == 0 {
        return Err("cannot decode image: it has no pixels".to_string());
    }
    Ok(to_rgb8(img))
}

fn to_rgb8(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return match img {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.to_rgb8(),
        };
    }
    // Transparent pixels are usually meant to show the page behind them, which is white far
    // more often than the black that dropping alpha would give.
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for px in rgba.as_raw().chunks_exact(4) {
        let a = u32::from(px[3]);
        for &c in &px[..3] {
            // c*a/255 + 255*(255-a)/255, rounded.
            out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

/// The source rectangle that torchvision's `Resize(256)` + `CenterCrop(224)` maps onto the
/// output, as (left, top, width, height) in source pixels.
///
/// Resizing only that box (the resampler still reads the pixels just outside it for the
/// filter support, as PIL does with `box=`) gives the same pixels as resizing the whole image
/// and cropping, without materialising a 256 x N intermediate, which for a very elongated
/// image could be huge.
pub fn crop_box(w: u32, h: u32) -> (f64, f64, f64, f64) {
    // torchvision: the short side becomes 256, the long side int(256 * long / short).
    let (rw, rh) = if w <= h {
        (RESIZE, ((u64::from(RESIZE) * u64::from(h)) / u64::from(w)) as u32)
    } else {
        (((u64::from(RESIZE) * u64::from(w)) / u64::from(h)) as u32, RESIZE)
    };
    // CenterCrop: offsets rounded half to even as Python's round() does.
    let left = ((f64::from(rw) - f64::from(CROP)) / 2.0).round_ties_even();
    let top = ((f64::from(rh) - f64::from(CROP)) / 2.0).round_ties_even();
    let sx = f64::from(w) / f64::from(rw);
    let sy = f64::from(h) / f64::from(rh);
    (left * sx, top * sy, f64::from(CROP) * sx, f64::from(CROP) * sy)
}

/// Resizes and crops to 224x224 RGB8.
pub fn resize_crop(img: &RgbImage, resizer: &mut Resizer) -> Result<RgbImage, String> {
    let (left, top, width, height) = crop_box(img.width(), img.height());
    let mut dst = RgbImage::new(CROP, CROP);
    // Bilinear convolution with support scaled by the downscale factor: what PIL's
    // BILINEAR (torchvision's default for PIL images) does.
    let options =
        ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(left, top, width, height);
    resizer.resize(img, &mut dst, &options).map_err(|e| format!("cannot resize image: {e}"))?;
    Ok(dst)
}

/// Writes the ImageNet-normalised floats of a 224x224 RGB8 image, channels last (HWC): the
/// encoder feeds the batch to the network as a channels-last NCHW view, which is also the
/// fastest layout for oneDNN's convolutions.
pub fn normalise_hwc(img: &RgbImage, out: &mut [f32]) {
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * STD[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| -MEAN[c] / STD[c]);
    for (o, px) in out.chunks_exact_mut(3).zip(img.as_raw().chunks_exact(3)) {
        for c in 0..3 {
            o[c] = f32::from(px[c]) * scale[c] + shift[c];
        }
    }
}

/// Decodes, resizes and normalises one image into `out` (`ITEM_LEN` floats, HWC).
pub fn preprocess_into(bytes: &[u8], out: &mut [f32], resizer: &mut Resizer) -> Result<(), String> {
    let img = decode_rgb8(bytes)?;
    let img = resize_crop(&img, resizer)?;
    normalise_hwc(&img, out);
    Ok(())
}

/// Preprocesses a batch in parallel (rayon). Returns one contiguous NHWC buffer holding the
/// images that decoded, in order, and per input either its row in that buffer or the error.
pub fn preprocess_batch(items: &[&[u8]]) -> (Vec<f32>, Vec<Result<usize, String>>) {
    let mut buf = vec![0f32; items.len() * ITEM_LEN];
    let status: Vec<Result<(), String>> = buf
        .par_chunks_mut(ITEM_LEN)
        .zip(items.par_iter())
        .map_init(Resizer::new, |resizer, (out, bytes)| preprocess_into(bytes, out, resizer))
        .collect();
    // Compact the good rows to the front so the network only sees real images.
    let mut rows = Vec::with_capacity(items.len());
    let mut next = 0usize;
    for (i, s) in status.into_iter().enumerate() {
        match s {
            Ok(()) => {
                if next != i {
                    buf.copy_within(i * ITEM_LEN..(i + 1) * ITEM_LEN, next * ITEM_LEN);
                }
                rows.push(Ok(next));
                next += 1;
            }
            Err(e) => rows.push(Err(e)),
        }
    }
    buf.truncate(next * ITEM_LEN);
    (buf, rows)
}
