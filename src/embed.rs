//! Computes every item's embedding once per encoder and caches it: the glue between `data`
//! (what the items are) and `ml` (what the encoder makes of them).
//!
//! Reading the next batch from disk overlaps encoding the current one; texts are sorted by
//! length first so each batch pads to similar lengths (dynamic padding wastes little).

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::data::{Content, Dataset, Location, Skipped};
use crate::ml::cache::EmbeddingCache;
use crate::ml::embeddings::Embeddings;
use crate::ml::encoder::{Encoder, EncoderInput};

/// A dataset's embeddings: `row_of_item[i]` is item `i`'s row in `embeddings`, or `None`
/// when the item could not be read or decoded (then it is in `skipped`).
pub struct EmbeddedDataset {
    pub embeddings: Embeddings,
    pub row_of_item: Vec<Option<usize>>,
    pub skipped: Vec<Skipped>,
    /// Items encoded in this call (the rest came from the cache).
    pub computed: usize,
    /// Throughput of this call's encoding, items per second (0 when all were cached).
    pub items_per_s: f64,
}

/// Cheap change detector: size and modification time for files, a hash for inline text.
pub fn fingerprint(location: &Location) -> String {
    match location {
        Location::File(path) => std::fs::metadata(path)
            .map(|m| {
                let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                format!("{}:{}", m.len(), mtime.map(|d| d.as_nanos()).unwrap_or(0))
            })
            .unwrap_or_default(),
        Location::Inline(text) => hex::encode(&Sha256::digest(text.as_bytes())[..12]),
    }
}

fn to_input(content: Content) -> EncoderInput {
    match content {
        Content::Image(bytes) => EncoderInput::Image(bytes),
        Content::Text(text) => EncoderInput::Text(text),
    }
}

fn progress_bar(len: usize, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len as u64),
        if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    if let Ok(style) = ProgressStyle::with_template("embedding {bar:30} {pos}/{len} {per_sec} ETA {eta}") {
        bar.set_style(style);
    }
    bar
}

/// Embeds every item of `dataset` not yet in the cache under `cache_root`, then returns all.
/// `show_progress` draws a bar on stderr (it stays hidden when stderr is not a terminal).
pub fn embed_dataset(
    dataset: &Dataset,
    encoder: &dyn Encoder,
    cache_root: &Path,
    show_progress: bool,
) -> anyhow::Result<EmbeddedDataset> {
    embed_dataset_with(dataset, encoder, cache_root, show_progress, &|_, _| {})
}

/// [`embed_dataset`], calling `on_progress(done, total)` after each batch (the server turns
/// these into progress events).
pub fn embed_dataset_with(
    dataset: &Dataset,
    encoder: &dyn Encoder,
    cache_root: &Path,
    show_progress: bool,
    on_progress: &dyn Fn(usize, usize),
) -> anyhow::Result<EmbeddedDataset> {
    let mut cache = EmbeddingCache::open(cache_root, encoder.spec())?;
    let fingerprints: Vec<String> = dataset.items.par_iter().map(|it| fingerprint(&it.location)).collect();
    let mut row_of_item: Vec<Option<usize>> =
        dataset.items.iter().zip(&fingerprints).map(|(it, fp)| cache.row(&it.id, fp)).collect();
    let mut missing: Vec<usize> = (0..dataset.len()).filter(|&i| row_of_item[i].is_none()).collect();
    let mut skipped = dataset.skipped.clone();
    let started = Instant::now();
    let computed = missing.len();
    if !missing.is_empty() {
        let is_text = encoder.spec().modality == crate::ml::encoder::Modality::Text;
        let mut texts: Vec<Option<Content>> = Vec::new();
        if is_text {
            // Texts are small: read them all, then batch by length for tight padding.
            texts = missing.par_iter().map(|&i| dataset.read(i).ok()).collect();
            let mut order: Vec<usize> = (0..missing.len()).collect();
            order.sort_by_key(|&k| match &texts[k] {
                Some(Content::Text(t)) => t.len(),
                _ => 0,
            });
            missing = order.iter().map(|&k| missing[k]).collect();
            texts = order.into_iter().map(|k| texts[k].take()).collect();
        }
        let bar = progress_bar(missing.len(), show_progress);
        let total = dataset.len();
        let mut done = total - missing.len();
        on_progress(done, total);
        let batch = encoder.preferred_batch().max(1);
        let mut encode = |contents: Vec<(usize, Result<Content, String>)>| -> anyhow::Result<()> {
            let n = contents.len() as u64;
            encode_batch(encoder, dataset, &mut cache, contents, &fingerprints, &mut row_of_item, &mut skipped)?;
            bar.inc(n);
            done += n as usize;
            on_progress(done, total);
            Ok(())
        };
        let read = |i: usize| (i, dataset.read(i).map_err(|e| e.to_string()));
        if is_text {
            let mut texts = texts.into_iter();
            for chunk in missing.chunks(batch) {
                let contents = chunk
                    .iter()
                    .map(|&i| match texts.next().flatten() {
                        Some(c) => (i, Ok(c)),
                        None => read(i),
                    })
                    .collect();
                encode(contents)?;
            }
        } else {
            // A reader thread keeps the next batches' bytes ready while the encoder works.
            let (tx, rx) = sync_channel::<Vec<(usize, Result<Content, String>)>>(2);
            std::thread::scope(|scope| -> anyhow::Result<()> {
                let missing = &missing;
                scope.spawn(move || {
                    for chunk in missing.chunks(batch) {
                        if tx.send(chunk.par_iter().map(|&i| read(i)).collect()).is_err() {
                            return;
                        }
                    }
                });
                for contents in rx {
                    encode(contents)?;
                }
                Ok(())
            })?;
        }
        bar.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(EmbeddedDataset {
        embeddings: cache.into_embeddings(),
        row_of_item,
        skipped,
        computed,
        items_per_s: if computed > 0 && secs > 0.0 { computed as f64 / secs } else { 0.0 },
    })
}

fn encode_batch(
    encoder: &dyn Encoder,
    dataset: &Dataset,
    cache: &mut EmbeddingCache,
    contents: Vec<(usize, Result<Content, String>)>,
    fingerprints: &[String],
    row_of_item: &mut [Option<usize>],
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<()> {
    let mut ok_items = Vec::new();
    let mut inputs = Vec::new();
    for (i, content) in contents {
        match content {
            Ok(c) => {
                ok_items.push(i);
                inputs.push(to_input(c));
            }
            Err(reason) => skipped.push(Skipped { id: dataset.items[i].id.clone(), reason }),
        }
    }
    if inputs.is_empty() {
        return Ok(());
    }
    let outputs = encoder.encode(&inputs);
    let mut entries = Vec::new();
    let mut entry_items = Vec::new();
    for (i, out) in ok_items.into_iter().zip(outputs) {
        match out {
            Ok(v) => {
                entries.push((dataset.items[i].id.clone(), fingerprints[i].clone(), v));
                entry_items.push(i);
            }
            Err(reason) => {
                tracing::warn!(item = %dataset.items[i].id, %reason, "skipping item");
                skipped.push(Skipped { id: dataset.items[i].id.clone(), reason });
            }
        }
    }
    let rows = cache.append(&entries)?;
    for (i, row) in entry_items.into_iter().zip(rows) {
        row_of_item[i] = Some(row);
    }
    Ok(())
}
