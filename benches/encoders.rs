//! Encoder throughput, to compare with `bench/pytorch_encoders.py` (same weights, inputs and
//! batch sizes). Prints items/s; `BENCH_SECONDS` (default 20) sets the time per measurement
//! and `BENCH_ONLY=images|text` picks one model.
//!
//!     cargo bench --bench encoders

use std::time::{Duration, Instant};

use lightbulb::ml::encoder::image_prep;
use lightbulb::ml::encoder::minilm::{MiniLmEncoder, Pooling};
use lightbulb::ml::encoder::mobilenet::{MobileNetV2Encoder, Options};
use lightbulb::ml::encoder::{Encoder, EncoderInput};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Items per second of `f` (which handles `items` items per call), after two warm-up calls.
fn rate(items: usize, seconds: f64, mut f: impl FnMut()) -> f64 {
    // seconds == 0 is the smoke run under `cargo test`: one call proves the path works.
    let (warmups, min_calls) = if seconds > 0.0 { (2, 3) } else { (0, 1) };
    for _ in 0..warmups {
        f();
    }
    let start = Instant::now();
    let mut calls = 0usize;
    while calls < min_calls || start.elapsed() < Duration::from_secs_f64(seconds) {
        f();
        calls += 1;
    }
    (items * calls) as f64 / start.elapsed().as_secs_f64()
}

/// The benchmark batch (same list as the Python script): 16 photos, 16 MNIST digits.
fn image_batch(assets: &std::path::Path) -> AnyResult<Vec<Vec<u8>>> {
    let photos = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "horse.png"];
    let mut out = Vec::new();
    for i in 0..16 {
        out.push(std::fs::read(assets.join("data/skimage").join(photos[i % photos.len()]))?);
    }
    for i in 0..16 {
        out.push(std::fs::read(assets.join(format!("data/mnist/images/{i:05}.png")))?);
    }
    Ok(out)
}

fn reviews(assets: &std::path::Path, n: usize) -> AnyResult<Vec<String>> {
    let mut rd = csv::Reader::from_path(assets.join("data/rotten_tomatoes/reviews.csv"))?;
    let mut out = Vec::new();
    for row in rd.records().take(n) {
        out.push(row?.get(1).unwrap_or_default().to_string());
    }
    Ok(out)
}

fn bench_images(assets: &std::path::Path, seconds: f64) -> AnyResult<()> {
    let files = image_batch(assets)?;
    let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let inputs: Vec<EncoderInput> = files.iter().cloned().map(EncoderInput::Image).collect();
    let prep = rate(files.len(), seconds, || {
        std::hint::black_box(image_prep::preprocess_batch(&refs));
    });
    println!("{:<60} {prep:7.1} img/s", "decode+resize+normalise only (rayon, all cores)");
    let (buf, _) = image_prep::preprocess_batch(&refs);
    let n = files.len();
    let variants = [
        ("eager NCHW", Options { channels_last: false, jit: false }),
        ("eager channels-last", Options { channels_last: true, jit: false }),
        ("traced channels-last", Options { channels_last: true, jit: true }),
    ];
    let mut reference: Option<Vec<Vec<f32>>> = None;
    for (name, options) in variants {
        let enc = MobileNetV2Encoder::load_with(assets, tch::Device::Cpu, options)?;
        let out = enc.embed_prepared(&buf, n)?;
        let diff = match &reference {
            None => 0.0,
            Some(r) => r.iter().flatten().zip(out.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max),
        };
        reference.get_or_insert(out);
        let model = rate(n, seconds, || {
            std::hint::black_box(enc.embed_prepared(&buf, n).ok());
        });
        let e2e = rate(n, seconds, || {
            std::hint::black_box(enc.encode(&inputs));
        });
        println!(
            "{:<60} model {model:7.1} img/s   decode+resize+model {e2e:7.1} img/s   (max |diff| {diff:.1e})",
            format!("MobileNetV2 b32 {name}")
        );
    }
    Ok(())
}

fn bench_text(assets: &std::path::Path, seconds: f64) -> AnyResult<()> {
    let enc = MiniLmEncoder::load(assets, tch::Device::Cpu, Pooling::LastLayer)?;
    // The smoke run (seconds == 0) encodes one batch per path.
    let texts = reviews(assets, if seconds > 0.0 { 64 * 8 } else { 64 })?;
    let batches: Vec<Vec<&str>> = texts.chunks(64).map(|c| c.iter().map(String::as_str).collect()).collect();
    for (name, fixed) in [("fixed 128 tokens", Some(128)), ("dynamic padding (longest in batch, max 256)", None)] {
        let tokens = batches.iter().map(|b| enc.tokenize(b, fixed)).collect::<Result<Vec<_>, _>>()?;
        let model = rate(texts.len(), seconds, || {
            for t in &tokens {
                std::hint::black_box(enc.embed_tokens(t).ok());
            }
        });
        let full = rate(texts.len(), seconds, || {
            for b in &batches {
                if let Ok(t) = enc.tokenize(b, fixed) {
                    std::hint::black_box(enc.embed_tokens(&t).ok());
                }
            }
        });
        println!("{:<60} model {model:7.1} texts/s   tokenize+model {full:7.1} texts/s", format!("MiniLM b64 {name}"));
    }
    // What the engine calls: `encode` (dynamic padding, plus any batching policy inside).
    let inputs: Vec<Vec<EncoderInput>> =
        batches.iter().map(|b| b.iter().map(|t| EncoderInput::Text((*t).to_string())).collect()).collect();
    let encode = rate(texts.len(), seconds, || {
        for b in &inputs {
            std::hint::black_box(enc.encode(b));
        }
    });
    println!("{:<60} {encode:7.1} texts/s", "MiniLM b64 Encoder::encode");
    Ok(())
}

fn main() -> AnyResult<()> {
    let assets = lightbulb::assets::default_dir();
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run (a few calls
    // per model) proves it works without spending minutes measuring.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_seconds = if measuring { 20.0 } else { 0.0 };
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_seconds);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    println!("libtorch threads {}", lightbulb::ml::device::cores());
    if only.is_empty() || only == "images" {
        bench_images(&assets, seconds)?;
    }
    if only.is_empty() || only == "text" {
        bench_text(&assets, seconds)?;
    }
    Ok(())
}
