//! The heavy work of a project, on dedicated threads so that HTTP workers and the project
//! actor never wait on a tensor:
//! - the trainer thread embeds the dataset once (cache on disk), then fits heads, scores the
//!   pool, ranks the queue and saves each model, one job at a time;
//! - the scorer thread serves scoring requests with dynamic batching: whatever requests are
//!   queued when it wakes are encoded as one batch (up to `max_batch` items).
//!
//! Results go back to the actor as messages through a [`Recipient`].

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use actix::{Message, Recipient};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::TaskConfig;
use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::ml::cache::EmbeddingCache;
use crate::ml::embeddings::Embeddings;
use crate::ml::encoder::{Encoder, EncoderInput, EncoderKind, EncoderSpec};
use crate::ml::head::{Head, HeadParams};
use crate::ml::prior;
use crate::ml::semi::{self, KnnGraph};
use crate::ml::strategy::{self, Pool, StrategyKind};
use crate::store::blob::{BlobError, BlobStore};

use super::pool_stats::PoolStatsCache;

/// How many items the queue ranks after each training (the rest follow at random).
pub const QUEUE_DEPTH: usize = 200;

/// The embedding matrix rows of the dataset's items, by item index.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Embedded {
    pub spec: crate::ml::encoder::EncoderSpec,
    pub rows: Vec<Option<usize>>,
    pub skipped: Vec<crate::data::Skipped>,
    pub seconds: f64,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct EmbedProgress {
    pub done: usize,
    pub total: usize,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct EmbedFailed {
    pub error: String,
}

/// What the trainer needs for one fit: a snapshot taken by the actor.
pub struct TrainJob {
    pub version: i64,
    /// (embedding row, class) of TRAIN labels.
    pub train: Vec<(usize, i64)>,
    /// Item index and embedding row of every unlabelled embedded item (the pool to rank).
    pub pool: Vec<(usize, usize)>,
    /// Embedding row of every item (by index), `None` when not embedded.
    pub rows: Vec<Option<usize>>,
    /// How to rank the pool (a project setting, so it travels with each job).
    pub strategy: StrategyKind,
}

/// A finished fit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Trained {
    pub version: i64,
    pub train_labels: usize,
    pub outcome: Result<TrainOutcome, String>,
}

pub struct TrainOutcome {
    pub head: Option<Arc<Head>>,
    /// By item index (uniform for items without an embedding), ranked per class.
    pub predictions: Option<super::state::Predictions>,
    /// Item indices, most useful first.
    pub queue: Vec<usize>,
    pub seconds: f64,
}

enum TrainerCommand {
    Train(TrainJob),
}

/// Handle to a project's trainer thread.
#[derive(Clone)]
pub struct Trainer {
    tx: SyncSender<TrainerCommand>,
}

pub struct TrainerSetup {
    pub config: Arc<TaskConfig>,
    pub dataset: Arc<Dataset>,
    pub assets: std::path::PathBuf,
    pub head: HeadParams,
    /// The head the scorer serves, swapped after each fit.
    pub current_head: Arc<RwLock<Option<Arc<Head>>>>,
    /// Where the embedding cache is kept (under `embeddings/`).
    pub blobs: Arc<dyn BlobStore>,
}

impl Trainer {
    /// Starts the thread: it embeds the dataset first, then takes training jobs.
    pub fn start(
        setup: TrainerSetup,
        embedded: Recipient<Embedded>,
        progress: Recipient<EmbedProgress>,
        failed: Recipient<EmbedFailed>,
        trained: Recipient<Trained>,
    ) -> std::io::Result<Trainer> {
        // Depth 1: the actor debounces, and a newer job supersedes a queued one anyway.
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name(format!("train-{}", setup.config.task.title.chars().take(8).collect::<String>()))
            .spawn(move || trainer_loop(setup, rx, embedded, progress, failed, trained))?;
        Ok(Trainer { tx })
    }

    /// Queues a job; false when one is already waiting (the caller retries after it ends).
    pub fn submit(&self, job: TrainJob) -> bool {
        self.tx.try_send(TrainerCommand::Train(job)).is_ok()
    }
}

/// Where the trainer's embedding cache lives. On a blob store with a local disk path (the
/// embedded default) the cache is appended to in place; on a remote one (S3) a working copy
/// under the output directory is filled from the store before embedding and written back
/// after, so a new machine reuses what another one computed.
struct CacheHome<'a> {
    blobs: &'a dyn BlobStore,
    root: std::path::PathBuf,
    remote: bool,
}

impl<'a> CacheHome<'a> {
    const PREFIX: &'static str = "embeddings";

    fn new(blobs: &'a dyn BlobStore, output_dir: &std::path::Path) -> Self {
        match blobs.local_path(Self::PREFIX) {
            Some(root) => CacheHome { blobs, root, remote: false },
            None => CacheHome { blobs, root: output_dir.join("embedding-cache"), remote: true },
        }
    }

    fn key(spec: &EncoderSpec, file: &str) -> String {
        format!("{}/{}/{file}", Self::PREFIX, EmbeddingCache::dir_name(spec))
    }

    /// Copies the stored cache into the working copy when the working copy has none.
    fn fetch(&self, spec: &EncoderSpec) -> anyhow::Result<()> {
        let dir = self.root.join(EmbeddingCache::dir_name(spec));
        if !self.remote || dir.join("meta.json").exists() {
            return Ok(());
        }
        let mut files = Vec::new();
        for file in crate::ml::cache::FILES.iter().rev() {
            match self.blobs.get(&Self::key(spec, file)) {
                Ok(bytes) => files.push((file, bytes)),
                Err(BlobError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        std::fs::create_dir_all(&dir)?;
        for (file, bytes) in files.iter().rev() {
            crate::ml::cache::write_atomic(&dir.join(file), bytes)?;
        }
        Ok(())
    }

    /// Writes the working copy back to the store (meta.json last, as above).
    fn publish(&self, spec: &EncoderSpec) -> anyhow::Result<()> {
        if !self.remote {
            return Ok(());
        }
        let dir = self.root.join(EmbeddingCache::dir_name(spec));
        for file in crate::ml::cache::FILES {
            self.blobs.put(&Self::key(spec, file), &std::fs::read(dir.join(file))?)?;
        }
        Ok(())
    }
}

fn trainer_loop(
    setup: TrainerSetup,
    rx: Receiver<TrainerCommand>,
    embedded: Recipient<Embedded>,
    progress: Recipient<EmbedProgress>,
    failed: Recipient<EmbedFailed>,
    trained: Recipient<Trained>,
) {
    crate::ml::device::lower_thread_priority();
    let started = Instant::now();
    let result = crate::ml::encoder::load(setup.config.encoder(), &setup.assets, crate::ml::device::best()).and_then(
        |encoder| {
            let report = |done: usize, total: usize| progress.do_send(EmbedProgress { done, total });
            let spec = encoder.spec().clone();
            let cache = CacheHome::new(setup.blobs.as_ref(), &setup.config.output_dir());
            cache.fetch(&spec)?;
            let data = crate::embed::embed_dataset_with(&setup.dataset, encoder.as_ref(), &cache.root, false, &report)?;
            if data.computed > 0 {
                cache.publish(&spec)?;
            }
            Ok((spec, data))
        },
    );
    let (spec, data) = match result {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "embedding the dataset failed");
            failed.do_send(EmbedFailed { error: format!("{e:#}") });
            return;
        }
    };
    embedded.do_send(Embedded {
        spec,
        rows: data.row_of_item.clone(),
        skipped: data.skipped.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    let embeddings = data.embeddings;
    let num_classes = setup.config.label.classes.len();
    let spreading = semi::Spreading::for_setting(setup.config.model.semi_supervised);
    let mut graph = spreading.and_then(|s| spreading_graph(&embeddings).map(|g| (semi::SpreadingPolicy::new(s), g)));
    let mut rng = ChaCha8Rng::seed_from_u64(setup.config.model.seed);
    let mut pool_stats = PoolStatsCache::default();
    for TrainerCommand::Train(job) in rx {
        let version = job.version;
        let train_labels = job.train.len();
        let graph = graph.as_mut().map(|(policy, g)| (policy, &*g));
        let outcome = train_once(&setup, &embeddings, graph, num_classes, job, &mut pool_stats, &mut rng);
        if let Ok(TrainOutcome { head: Some(head), .. }) = &outcome {
            if let Ok(mut slot) = setup.current_head.write() {
                *slot = Some(head.clone());
            }
        }
        trained.do_send(Trained { version, train_labels, outcome: outcome.map_err(|e| format!("{e:#}")) });
    }
}

/// Most embedded items the label-spreading graph is built for: its nearest-neighbour pass is
/// quadratic in the items (about a minute at this size on 2 cores, once per trainer start).
const SPREADING_MAX_ITEMS: usize = 50_000;

/// The label-spreading graph over every embedded item (node `i` is embedding row `i`), or
/// `None` with a warning when the dataset is too large for it.
fn spreading_graph(embeddings: &Embeddings) -> Option<KnnGraph> {
    if embeddings.len() > SPREADING_MAX_ITEMS {
        tracing::warn!(
            items = embeddings.len(),
            limit = SPREADING_MAX_ITEMS,
            "semi_supervised is on but the dataset is too large for the label-spreading graph; training on human labels only"
        );
        return None;
    }
    let started = Instant::now();
    let rows: Vec<usize> = (0..embeddings.len()).collect();
    let graph = KnnGraph::build(embeddings, &rows, semi::GRAPH_K);
    tracing::info!(items = rows.len(), seconds = started.elapsed().as_secs_f64(), "label-spreading graph built");
    Some(graph)
}

fn train_once(
    setup: &TrainerSetup,
    embeddings: &Embeddings,
    graph: Option<(&mut semi::SpreadingPolicy, &KnnGraph)>,
    num_classes: usize,
    job: TrainJob,
    pool_stats: &mut PoolStatsCache,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<TrainOutcome> {
    let started = Instant::now();
    let y: Vec<i64> = job.train.iter().map(|&(_, y)| y).collect();
    let mut seen = y.clone();
    seen.sort_unstable();
    seen.dedup();
    // Embedding rows of the unlabelled pool: the strategy ranks them, label spreading guesses them.
    let candidates: Vec<usize> = job.pool.iter().map(|&(_, row)| row).collect();
    // Embedding rows of the TRAIN labels: what the head is fitted on, and what the strategy
    // counts as labelled (as in the simulator, whose curves chose the strategies; TEST labels
    // never shape the model, so BAIT's Hessian must not count them either).
    let rows: Vec<usize> = job.train.iter().map(|&(r, _)| r).collect();
    let head_params = HeadParams { designed_labels: job.strategy.designs_labels(), ..setup.head.clone() };
    let mut head = if seen.len() >= 2 {
        // Feature statistics of the training items and the unlabelled pool (no labels
        // involved, no TEST items): the labelled items alone are not a random sample once a
        // strategy has chosen them.
        let stats = if setup.head.pool_statistics {
            let pool: Vec<usize> = rows.iter().chain(&candidates).copied().collect();
            Some(pool_stats.get(embeddings, &pool, &setup.head)?)
        } else {
            None
        };
        Some(match graph {
            Some((policy, graph)) => {
                // Graph nodes are embedding rows; pseudo-labels only for the unlabelled pool.
                let params = semi::SemiParams::default();
                let (head, pseudo_labels) = semi::fit_with_graph(
                    &head_params,
                    &params,
                    policy,
                    embeddings,
                    graph,
                    &rows,
                    &y,
                    &candidates,
                    num_classes,
                    stats,
                )?;
                tracing::debug!(labels = rows.len(), pseudo_labels, "trained with label spreading");
                head
            }
            None => Head::fit_calibrated(&head_params, &embeddings.gather(&rows), &y, num_classes, None, stats)?,
        })
    } else {
        None
    };
    let mut predictions = head.as_ref().map(|h| {
        let present: Vec<usize> = job.rows.iter().flatten().copied().collect();
        let scored = h.score(embeddings, Some(&present));
        let mut out = vec![1.0 / num_classes as f32; job.rows.len() * num_classes];
        let mut k = 0;
        for (index, row) in job.rows.iter().enumerate() {
            if row.is_some() {
                out[index * num_classes..(index + 1) * num_classes]
                    .copy_from_slice(&scored[k * num_classes..(k + 1) * num_classes]);
                k += 1;
            }
        }
        out
    });
    let pool_of = |p: &[f32]| -> Vec<f32> {
        job.pool
            .iter()
            .flat_map(|&(index, _)| p[index * num_classes..(index + 1) * num_classes].iter().copied())
            .collect()
    };
    if let (Some(h), Some(p)) = (head.as_mut(), predictions.as_mut()) {
        // The shift the head now carries, applied to the probabilities already computed (one
        // scoring pass instead of two).
        if let Some(rates) = prior::match_labelled_prior(h, |_| pool_of(p), &y) {
            for (index, row) in job.rows.iter().enumerate() {
                if row.is_some() {
                    prior::apply_rates(&mut p[index * num_classes..(index + 1) * num_classes], num_classes, &rates);
                }
            }
        }
    }
    let head = head.map(Arc::new);
    let pool_probs: Option<Vec<f32>> = predictions.as_ref().map(|p| pool_of(p));
    let view = Pool {
        embeddings,
        candidates: &candidates,
        labelled: &rows,
        labels: &y,
        probs: pool_probs.as_deref().filter(|_| job.strategy.needs_model()),
        num_classes,
        head: head.as_deref().filter(|_| job.strategy.needs_model()),
    };
    let picked = strategy::select(job.strategy, &view, QUEUE_DEPTH, rng);
    let index_of_row: std::collections::HashMap<usize, usize> = job.pool.iter().map(|&(i, r)| (r, i)).collect();
    let queue = picked.iter().filter_map(|r| index_of_row.get(r).copied()).collect();
    let predictions = predictions.map(|p| super::state::Predictions::new(p, num_classes));
    Ok(TrainOutcome { head, predictions, queue, seconds: started.elapsed().as_secs_f64() })
}

/// One probability row per input, or the reason that input could not be read.
pub type ScoredRows = Vec<Result<Vec<f32>, String>>;

/// One scoring request: inputs, and where to send the rows.
struct ScoreRequest {
    inputs: Vec<EncoderInput>,
    reply: tokio::sync::oneshot::Sender<Result<ScoredRows, ScoreError>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoreError {
    #[error("no model has been trained yet")]
    NotReady,
    #[error("the scoring queue is full; retry shortly")]
    Overloaded,
    #[error("scoring failed: {0}")]
    Failed(String),
}

/// Handle to a project's scorer thread.
#[derive(Clone)]
pub struct Scorer {
    tx: SyncSender<ScoreRequest>,
    metrics: Arc<Metrics>,
}

impl Scorer {
    /// `max_batch` items are encoded together at most (1 disables dynamic batching: the
    /// benchmark's baseline).
    pub fn start(
        kind: EncoderKind,
        assets: std::path::PathBuf,
        head: Arc<RwLock<Option<Arc<Head>>>>,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Scorer> {
        let (tx, rx) = sync_channel::<ScoreRequest>(1024);
        let thread_metrics = metrics.clone();
        std::thread::Builder::new().name("scorer".into()).spawn(move || {
            let metrics = thread_metrics;
            let encoder = match crate::ml::encoder::load(kind, &assets, crate::ml::device::best()) {
                Ok(e) => e,
                Err(e) => {
                    let msg = format!("{e:#}");
                    for req in rx {
                        metrics.compute_queue_depth.with_label_values(&["scorer"]).dec();
                        let _ = req.reply.send(Err(ScoreError::Failed(msg.clone())));
                    }
                    return;
                }
            };
            scorer_loop(encoder.as_ref(), &head, &rx, max_batch.max(1), &metrics);
        })?;
        Ok(Scorer { tx, metrics })
    }

    /// Scores `inputs` (one probability row per input, or the reason it could not be read).
    pub async fn score(&self, inputs: Vec<EncoderInput>) -> Result<ScoredRows, ScoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        match self.tx.try_send(ScoreRequest { inputs, reply }) {
            Ok(()) => self.metrics.compute_queue_depth.with_label_values(&["scorer"]).inc(),
            Err(TrySendError::Full(_)) => return Err(ScoreError::Overloaded),
            Err(TrySendError::Disconnected(_)) => return Err(ScoreError::Failed("the scorer stopped".into())),
        }
        rx.await.map_err(|_| ScoreError::Failed("the scorer stopped".into()))?
    }
}

fn scorer_loop(
    encoder: &dyn Encoder,
    head: &RwLock<Option<Arc<Head>>>,
    rx: &Receiver<ScoreRequest>,
    max_batch: usize,
    metrics: &Metrics,
) {
    let queued = metrics.compute_queue_depth.with_label_values(&["scorer"]);
    while let Ok(first) = rx.recv() {
        // Dynamic batching: take what is already waiting, up to max_batch items.
        let mut batch = vec![first];
        let mut items = batch[0].inputs.len();
        while items < max_batch {
            match rx.try_recv() {
                Ok(req) => {
                    items += req.inputs.len();
                    batch.push(req);
                }
                Err(_) => break,
            }
        }
        queued.sub(batch.len() as i64);
        metrics.scoring_batch_size.observe(items as f64);
        let Some(head) = head.read().ok().and_then(|h| h.clone()) else {
            for req in batch {
                let _ = req.reply.send(Err(ScoreError::NotReady));
            }
            continue;
        };
        let mut inputs = Vec::with_capacity(items);
        let mut sizes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for req in batch {
            sizes.push(req.inputs.len());
            inputs.extend(req.inputs);
            replies.push(req.reply);
        }
        let encoded = encoder.encode(&inputs);
        let c = head.num_classes();
        let ok: Vec<&Vec<f32>> = encoded.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut probs: Vec<f32> = Vec::new();
        if !ok.is_empty() {
            let flat: Vec<f32> = ok.iter().flat_map(|v| v.iter().copied()).collect();
            let x = tch::Tensor::from_slice(&flat).reshape([ok.len() as i64, head.dim() as i64]);
            probs = Vec::try_from(head.predict_proba(&x).flatten(0, -1)).unwrap_or_default();
        }
        let mut k = 0;
        let mut results = encoded.into_iter().map(|r| match r {
            Ok(_) => {
                let row =
                    probs.get(k * c..(k + 1) * c).map(<[f32]>::to_vec).ok_or_else(|| "scoring failed".to_string());
                k += 1;
                row
            }
            Err(e) => Err(e),
        });
        for (reply, n) in replies.into_iter().zip(sizes) {
            let part: Vec<_> = results.by_ref().take(n).collect();
            let _ = reply.send(Ok(part));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::ml::encoder::Modality;

    /// A blob store with no local disk path, as S3 will be.
    #[derive(Default)]
    struct Remote(Mutex<HashMap<String, Vec<u8>>>);

    impl BlobStore for Remote {
        fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
            self.0.lock().unwrap().insert(key.to_string(), bytes.to_vec());
            Ok(())
        }
        fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
            self.0.lock().unwrap().get(key).cloned().ok_or_else(|| BlobError::NotFound(key.to_string()))
        }
    }

    #[test]
    fn a_remote_cache_is_published_and_fetched_by_another_machine() {
        let spec = EncoderSpec { id: "test@0001".into(), modality: Modality::Text, dim: 4 };
        let remote = Remote::default();
        let first: PathBuf = tempfile::tempdir().unwrap().keep();
        let home = CacheHome::new(&remote, &first);
        home.fetch(&spec).unwrap(); // nothing stored yet: a no-op
        let mut cache = EmbeddingCache::open(&home.root, &spec).unwrap();
        cache.append(&[("a".into(), "fp-a".into(), vec![1.0, 2.0, 3.0, 4.0])]).unwrap();
        cache.append(&[("b".into(), "fp-b".into(), vec![5.0, 6.0, 7.0, 8.0])]).unwrap();
        drop(cache);
        home.publish(&spec).unwrap();
        assert_eq!(remote.0.lock().unwrap().len(), 3);

        let second = tempfile::tempdir().unwrap();
        let home = CacheHome::new(&remote, second.path());
        home.fetch(&spec).unwrap();
        let cache = EmbeddingCache::open(&home.root, &spec).unwrap();
        assert_eq!(cache.len(), 2);
        let b = cache.row("b", "fp-b").unwrap();
        assert_eq!(cache.embeddings().row_f16(b)[3].to_f32(), 8.0);
        assert!(cache.row("b", "changed").is_none());
        let _ = std::fs::remove_dir_all(first);
    }

    #[test]
    fn a_local_store_holds_the_cache_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let local = crate::store::blob::LocalDir::new(dir.path());
        let home = CacheHome::new(&local, &dir.path().join("unused"));
        assert_eq!(home.root, dir.path().join("embeddings"));
        assert!(!home.remote);
    }
}
