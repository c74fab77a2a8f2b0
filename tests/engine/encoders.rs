//! Tests: the pretrained encoders (MobileNetV2 on images, MiniLM on text) with the real
//! weights, including decode failures, batch independence and the weights' hash check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::sync::{Mutex, MutexGuard, OnceLock};

use lightbulb::ml::encoder::minilm::{MiniLmEncoder, Pooling};
use lightbulb::ml::encoder::mobilenet::MobileNetV2Encoder;
use lightbulb::ml::encoder::{self, Encoder, EncoderInput, EncoderKind, Modality};

use crate::common::{assets, data};

// Loading takes a while (hashing ~100 MB), so each model is loaded once for all tests; the
// encoders are Send but not Sync (tch tensors), hence the mutex.
fn mobilenet() -> MutexGuard<'static, MobileNetV2Encoder> {
    static ENC: OnceLock<Mutex<MobileNetV2Encoder>> = OnceLock::new();
    ENC.get_or_init(|| Mutex::new(MobileNetV2Encoder::load(&assets(), tch::Device::Cpu).unwrap()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn minilm() -> MutexGuard<'static, MiniLmEncoder> {
    static ENC: OnceLock<Mutex<MiniLmEncoder>> = OnceLock::new();
    ENC.get_or_init(|| Mutex::new(MiniLmEncoder::load(&assets(), tch::Device::Cpu, Pooling::LastLayer).unwrap()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap()
}

fn top_k(logits: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.truncate(k);
    idx
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

#[test]
fn specs_name_the_weights_version() {
    let m = mobilenet();
    assert_eq!(m.spec().id, "mobilenet_v2-imagenet@f06dd918");
    assert_eq!((m.spec().modality, m.spec().dim, m.preferred_batch()), (Modality::Image, 1280, 32));
    let t = minilm();
    assert_eq!(t.spec().id, "minilm_l6-w16@53aa5117");
    assert_eq!((t.spec().modality, t.spec().dim, t.preferred_batch()), (Modality::Text, 384, 64));
}

#[test]
fn mobilenet_recognises_a_cat_and_a_coffee_cup() {
    let m = mobilenet();
    let chelsea = read("skimage/chelsea.png");
    let coffee = read("skimage/coffee.png");
    let out = m.classify(&[&chelsea, &coffee]);
    let cat = top_k(out[0].as_ref().unwrap(), 5);
    let cup = top_k(out[1].as_ref().unwrap(), 5);
    // 281 tabby .. 285 Egyptian cat.
    assert!((281..=285).contains(&cat[0]), "chelsea top-5 {cat:?}");
    assert!(cat.iter().filter(|c| (281..=285).contains(*c)).count() >= 2, "chelsea top-5 {cat:?}");
    // 967 espresso, 968 cup, 504 coffee mug.
    assert!(cup.iter().take(2).any(|c| [967, 968, 504].contains(c)), "coffee top-5 {cup:?}");
}

#[test]
fn mobilenet_embeddings_are_pooled_features() {
    let m = mobilenet();
    let out = m.encode(&[EncoderInput::Image(read("skimage/chelsea.png"))]);
    let emb = out[0].as_ref().unwrap();
    assert_eq!(emb.len(), 1280);
    // Raw pooled ReLU6 outputs: non-negative, at most 6, not all zero.
    assert!(emb.iter().all(|v| v.is_finite() && (0.0..=6.0).contains(v)));
    assert!(emb.iter().filter(|v| **v > 0.0).count() > 100);
}

#[test]
fn bad_images_fail_in_their_slot_only() {
    let m = mobilenet();
    let chelsea = read("skimage/chelsea.png");
    let mut noise = vec![0u8; 4096];
    let mut x = 0x2545_f491_u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let truncated = chelsea[..chelsea.len() / 3].to_vec();
    let gray = read("mnist/images/00000.png");
    assert!(matches!(image::load_from_memory(&gray).unwrap(), image::DynamicImage::ImageLuma8(_)));
    // Same photo with an (opaque) alpha channel, and as a JPEG and a GIF.
    let decoded = image::load_from_memory(&chelsea).unwrap();
    let rgba = png(&image::DynamicImage::ImageRgba8(decoded.to_rgba8()));
    let mut gif = Vec::new();
    decoded.write_to(&mut Cursor::new(&mut gif), image::ImageFormat::Gif).unwrap();
    let batch = vec![
        EncoderInput::Image(chelsea.clone()),
        EncoderInput::Image(noise),
        EncoderInput::Image(truncated),
        EncoderInput::Image(gray),
        EncoderInput::Image(Vec::new()),
        EncoderInput::Image(rgba),
        EncoderInput::Image(read("skimage/rocket.jpg")),
        EncoderInput::Image(gif),
        EncoderInput::Text("not an image".into()),
    ];
    let out = m.encode(&batch);
    assert_eq!(out.len(), batch.len());
    for i in [1, 2, 4] {
        let err = out[i].as_ref().unwrap_err();
        assert!(err.starts_with("cannot decode image:"), "slot {i}: {err}");
    }
    assert!(out[8].is_err());
    for i in [0, 3, 5, 6, 7] {
        let emb = out[i].as_ref().unwrap_or_else(|e| panic!("slot {i}: {e}"));
        assert_eq!(emb.len(), 1280);
        assert!(emb.iter().all(|v| v.is_finite()));
    }
    // An opaque alpha channel changes nothing.
    assert!(max_abs_diff(out[0].as_ref().unwrap(), out[5].as_ref().unwrap()) < 1e-3);
    // The GIF (256-colour palette) is still the same cat.
    assert!(cosine(out[0].as_ref().unwrap(), out[7].as_ref().unwrap()) > 0.8);
}

#[test]
fn transparent_pixels_are_composited_on_white() {
    let m = mobilenet();
    let clear = image::RgbaImage::from_pixel(64, 48, image::Rgba([0, 0, 0, 0]));
    let white = image::RgbImage::from_pixel(64, 48, image::Rgb([255, 255, 255]));
    let out = m.encode(&[
        EncoderInput::Image(png(&image::DynamicImage::ImageRgba8(clear))),
        EncoderInput::Image(png(&image::DynamicImage::ImageRgb8(white))),
    ]);
    assert!(max_abs_diff(out[0].as_ref().unwrap(), out[1].as_ref().unwrap()) < 1e-4);
}

/// A PNG whose header claims a 100000 x 100000 canvas: decoding it would need 30 GB.
fn png_bomb() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    out
}

#[test]
fn oversized_images_are_refused() {
    let m = mobilenet();
    let out = m.encode(&[EncoderInput::Image(png_bomb()), EncoderInput::Image(read("skimage/coffee.png"))]);
    let err = out[0].as_ref().unwrap_err();
    assert!(err.starts_with("cannot decode image:"), "{err}");
    assert!(out[1].is_ok());
}

#[test]
fn odd_shapes_still_encode() {
    let m = mobilenet();
    let tall = image::RgbImage::from_fn(3, 2000, |x, y| image::Rgb([(x * 80) as u8, (y % 256) as u8, 7]));
    let tiny = image::RgbImage::from_pixel(1, 1, image::Rgb([200, 10, 10]));
    let out = m.encode(&[
        EncoderInput::Image(png(&image::DynamicImage::ImageRgb8(tall))),
        EncoderInput::Image(png(&image::DynamicImage::ImageRgb8(tiny))),
    ]);
    assert!(out.iter().all(|r| r.as_ref().is_ok_and(|e| e.len() == 1280)));
}

#[test]
fn image_embeddings_do_not_depend_on_the_batch() {
    let m = mobilenet();
    let chelsea = read("skimage/chelsea.png");
    let alone = m.encode(&[EncoderInput::Image(chelsea.clone())]);
    let mut batch: Vec<EncoderInput> = ["skimage/astronaut.png", "skimage/horse.png", "mnist/images/00001.png"]
        .iter()
        .map(|p| EncoderInput::Image(read(p)))
        .collect();
    batch.insert(2, EncoderInput::Image(chelsea));
    let together = m.encode(&batch);
    let (a, b) = (alone[0].as_ref().unwrap(), together[2].as_ref().unwrap());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    // Convolution kernels may block differently per batch size: allow float noise only.
    assert!(max_abs_diff(a, b) <= 1e-4 * scale.max(1.0), "diff {}", max_abs_diff(a, b));
}

#[test]
fn layered_minilm_keeps_the_sentence_embedding_as_its_last_block() {
    let layered = MiniLmEncoder::load(&assets(), tch::Device::Cpu, Pooling::TopThreeLayers).unwrap();
    assert_eq!(layered.spec().id, "minilm_l6_layers-w16@53aa5117");
    assert_eq!(layered.spec().dim, 3 * 384);
    let texts = ["A slow, self-indulgent mess.", "One of the warmest comedies of the year, and the funniest."];
    let plain = embed(&minilm(), &texts);
    for (row, last) in embed(&layered, &texts).iter().zip(&plain) {
        assert_eq!(row.len(), 3 * 384);
        // Each block is one layer mean-pooled and normalised (the lower two to half length);
        // the last is the model's own sentence embedding.
        for (block, want) in row.chunks(384).zip([0.5, 0.5, 1.0]) {
            let norm = block.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - want).abs() < 1e-4, "block norm {norm}, want {want}");
        }
        assert!(max_abs_diff(&row[2 * 384..], last) < 1e-5);
        let layer4: Vec<f32> = row[..384].iter().map(|v| 2.0 * v).collect();
        assert!(max_abs_diff(&layer4, last) > 0.1, "the lower layers must add something");
    }
}

fn embed(enc: &MiniLmEncoder, texts: &[&str]) -> Vec<Vec<f32>> {
    let batch: Vec<EncoderInput> = texts.iter().map(|t| EncoderInput::Text((*t).to_string())).collect();
    enc.encode(&batch).into_iter().map(|r| r.unwrap()).collect()
}

#[test]
fn minilm_scores_paraphrases_high_and_unrelated_text_low() {
    let t = minilm();
    let pairs = [
        ("A man is playing a guitar.", "Someone is strumming a guitar."),
        ("The film was a complete waste of time.", "This movie was a total waste of my time."),
        ("How do I reset my password?", "I forgot my password, how can I change it?"),
        ("The cat sat on the mat.", "A cat is sitting on a rug."),
        ("Stock markets fell sharply on Monday.", "Share prices dropped steeply at the start of the week."),
    ];
    let unrelated = [
        ("A man is playing a guitar.", "The quarterly tax filing deadline is in April."),
        ("How do I reset my password?", "Penguins live in the southern hemisphere."),
        ("The cat sat on the mat.", "Interest rates were raised by the central bank."),
        ("Stock markets fell sharply on Monday.", "She baked a chocolate cake for her daughter."),
    ];
    for (a, b) in pairs {
        let e = embed(&t, &[a, b]);
        let c = cosine(&e[0], &e[1]);
        assert!(c > 0.6, "{a:?} vs {b:?}: {c}");
    }
    for (a, b) in unrelated {
        let e = embed(&t, &[a, b]);
        let c = cosine(&e[0], &e[1]);
        assert!(c < 0.2, "{a:?} vs {b:?}: {c}");
    }
}

/// Values printed by `bench/pytorch_encoders.py --reference`: an independent PyTorch
/// implementation (torch.nn.functional BERT, PIL preprocessing) on the same weights.
#[test]
// The reference values are kept exactly as the script printed them.
#[allow(clippy::excessive_precision)]
fn outputs_match_an_independent_pytorch_implementation() {
    let t = minilm();
    let texts = ["A man is playing a guitar.", "", "The film was a complete waste of time."];
    let expected: [[f32; 8]; 3] = [
        [0.021664059, -0.004864221, -0.009649102, -0.063401252, -0.167493433, 0.004676433, 0.080599792, -0.024142098],
        [-0.118838452, 0.048298720, -0.002548160, -0.011011207, 0.051950790, 0.010291768, 0.115433328, 0.000700824],
        [-0.000891340, 0.119905427, 0.031763032, 0.045547795, 0.088501856, -0.000474458, 0.004333123, -0.012297696],
    ];
    let got = embed(&t, &texts);
    for (g, e) in got.iter().zip(&expected) {
        assert!(max_abs_diff(&g[..8], e) < 1e-5, "{:?} vs {e:?}", &g[..8]);
    }
    drop(t);
    let m = mobilenet();
    let chelsea = read("skimage/chelsea.png");
    let feats = m.encode(&[EncoderInput::Image(chelsea.clone())]);
    let expected = [0.463536, 1.651005, 2.270998, 1.640674, 0.092699, 0.036156, 0.008298, 0.276097];
    let got = &feats[0].as_ref().unwrap()[..8];
    // The resampler is not PIL's own code, so pixels may differ by a rounding step.
    assert!(max_abs_diff(got, &expected) < 0.05, "{got:?} vs {expected:?}");
    let logits = m.classify(&[&chelsea]);
    assert_eq!(top_k(logits[0].as_ref().unwrap(), 3), [285, 282, 281]);
}

#[test]
fn minilm_outputs_are_unit_vectors_and_empty_text_works() {
    let t = minilm();
    let e = embed(&t, &["", "short", "A longer sentence about movies, actors and the plot."]);
    for v in &e {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    // Identical texts give identical vectors; case does not matter (uncased model).
    let e = embed(&t, &["The Movie Was Great", "the movie was great"]);
    assert!(max_abs_diff(&e[0], &e[1]) < 1e-6);
}

#[test]
fn text_embeddings_do_not_depend_on_padding() {
    let t = minilm();
    let short = "A quiet, touching film.";
    let long = "An overlong, muddled thriller whose twists arrive on schedule, whose characters never \
                become more than sketches, and whose final act collapses under the weight of its own \
                ambitions, leaving the audience with little to remember but the score.";
    let alone = embed(&t, &[short]);
    let padded = embed(&t, &[long, short, "ok"]);
    assert!(max_abs_diff(&alone[0], &padded[1]) < 1e-4, "diff {}", max_abs_diff(&alone[0], &padded[1]));
    let long_alone = embed(&t, &[long]);
    assert!(max_abs_diff(&long_alone[0], &padded[0]) < 1e-4);
    // Fixed 128-token padding (the tokenizer file's own setting) gives the same vectors.
    let fixed = t.tokenize(&[short, long], Some(128)).unwrap();
    assert_eq!(fixed.len, 128);
    let fixed = t.embed_tokens(&fixed).unwrap();
    assert!(max_abs_diff(&alone[0], &fixed[0]) < 1e-4);
    assert!(max_abs_diff(&long_alone[0], &fixed[1]) < 1e-4);
}

#[test]
fn mixed_length_batches_match_single_items() {
    // Exercises the length-sorted sub-batching inside `encode`: output order and values must
    // be those of encoding each text on its own.
    let t = minilm();
    let texts: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("review {i}"),
            1 => "a fine, warm and funny film about growing up ".repeat(1 + i % 7),
            2 => "dull ".repeat(3 + i * 5),
            _ => String::new(),
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = embed(&t, &refs);
    for (i, text) in refs.iter().enumerate() {
        let alone = embed(&t, &[text]);
        assert!(max_abs_diff(&alone[0], &together[i]) < 1e-4, "item {i}: {}", max_abs_diff(&alone[0], &together[i]));
    }
}

#[test]
fn long_texts_are_read_in_windows_of_256_tokens() {
    let t = minilm();
    // The truncating tokenizer (benchmarks) still cuts at the model's 256 tokens.
    let long = "word ".repeat(1000);
    let batch = t.tokenize(&[long.as_str(), "short"], None).unwrap();
    assert_eq!(batch.len, 256);
    // "word" is one word piece, so 254 of them fill a window between [CLS] and [SEP]:
    // a text of two or twenty such windows has every window equal to the one-window
    // text's, and its token-weighted mean is that window's.
    let one = "word ".repeat(254);
    let e = embed(&t, &[one.as_str(), &"word ".repeat(508), &"word ".repeat(254 * 20)]);
    assert!(max_abs_diff(&e[0], &e[1]) < 1e-5, "two windows: {}", max_abs_diff(&e[0], &e[1]));
    assert!(max_abs_diff(&e[0], &e[2]) < 1e-5, "twenty windows: {}", max_abs_diff(&e[0], &e[2]));
    // What follows the first window counts (a truncating encoder gives these one vector)...
    let head = "the film opens with a long and careful description of the town ".repeat(30);
    let e = embed(
        &t,
        &[
            &format!("{head} the rest is wonderful, moving and beautifully acted"),
            &format!("{head} the rest is a dull, lifeless and boring mess"),
        ],
    );
    assert!(max_abs_diff(&e[0], &e[1]) > 1e-3, "the second window was not read");
    // ...up to 16 windows; beyond that nothing is read, and a 4.4 MB text is cut before it
    // is tokenised.
    let full = "word ".repeat(254 * 16);
    let e = embed(&t, &[full.as_str(), &format!("{full} {}", "other things entirely ".repeat(200_000))]);
    assert!(max_abs_diff(&e[0], &e[1]) < 1e-6);
}

#[test]
fn wrong_modality_is_an_error_in_its_slot() {
    let t = minilm();
    let out = t.encode(&[EncoderInput::Image(vec![1, 2, 3]), EncoderInput::Text("fine".into())]);
    assert!(out[0].is_err());
    assert!(out[1].is_ok());
}

#[test]
fn tampered_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "models/mobilenet_v2/model.safetensors";
    std::fs::create_dir_all(dir.path().join("models/mobilenet_v2")).unwrap();
    let mut bytes = std::fs::read(assets().join(rel)).unwrap();
    // The untouched copy loads: the temp dir is a valid assets root.
    std::fs::write(dir.path().join(rel), &bytes).unwrap();
    assert!(encoder::load(EncoderKind::MobilenetV2, dir.path(), tch::Device::Cpu).is_ok());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(dir.path().join(rel), &bytes).unwrap();
    let err = encoder::load(EncoderKind::MobilenetV2, dir.path(), tch::Device::Cpu).err().unwrap();
    assert!(format!("{err:#}").contains("sha256"), "{err:#}");
    // A missing file is an error too, not a panic.
    assert!(encoder::load(EncoderKind::MinilmL6, dir.path(), tch::Device::Cpu).is_err());
}
