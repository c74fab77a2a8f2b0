//! Projects at run time: one supervised actor per project owning its labelling state, a
//! trainer thread and a scorer thread for the heavy work, and an event stream.

pub mod actor;
pub mod compute;
pub mod events;
pub mod leases;
pub mod pool_stats;
pub mod settings;
pub mod state;
pub mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use actix::{Addr, Supervisor};
use anyhow::Context as _;

use crate::config::TaskConfig;
use crate::ml::head::HeadParams;
use crate::store::blob::{BlobStore, LocalDir};
use crate::store::judgements::JudgementsFile;
use crate::store::{ProjectScope, Store};
use actor::{ProjectActor, ProjectContext};
use compute::{Scorer, Trainer, TrainerSetup};
use settings::ProjectSettings;

/// What the server holds per project.
#[derive(Clone)]
pub struct ProjectHandle {
    pub cx: Arc<ProjectContext>,
    pub addr: Addr<ProjectActor>,
    pub scorer: Scorer,
}

/// Start-up options for a project.
#[derive(Clone)]
pub struct OpenOptions {
    pub assets: PathBuf,
    /// Items per scoring batch (1 turns dynamic batching off).
    pub score_batch: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Events go through Redis when set (several server processes).
    pub relay: Option<Arc<crate::server::relay::EventRelay>>,
}

/// What a project opens with.
pub struct Opening {
    pub scope: ProjectScope,
    pub slug: String,
    pub config: TaskConfig,
    /// Where its models and embedding caches go.
    pub blobs: Arc<dyn BlobStore>,
    pub settings: Arc<RwLock<ProjectSettings>>,
    /// Where the actor publishes events (relayed through Redis when configured).
    pub events: events::Events,
    /// Where leases are remembered beyond this process (Redis when configured).
    pub lease_mirror: Option<Arc<dyn leases::LeaseMirror>>,
}

/// The local directory of the config's `model.directory` (the embedded default).
pub fn local_blobs(config: &TaskConfig) -> Arc<dyn BlobStore> {
    Arc::new(LocalDir::new(config.output_dir()))
}

/// Lists the dataset, registers its items, and starts the actor, trainer and scorer. Listing
/// runs on a blocking thread; embedding starts in the background.
pub async fn open(store: &Store, opening: Opening, options: &OpenOptions) -> anyhow::Result<ProjectHandle> {
    let Opening { scope, slug, config, blobs, settings, events, lease_mirror } = opening;
    let slug = slug.as_str();
    let listed = Instant::now();
    let cfg = config.clone();
    let dataset = tokio::task::spawn_blocking(move || crate::data::open(&cfg))
        .await
        .context("listing the dataset")?
        .with_context(|| format!("project {slug}"))?;
    for s in &dataset.skipped {
        tracing::warn!(item = %s.id, reason = %s.reason, "skipped while listing");
    }
    let keys: Vec<String> = dataset.items.iter().map(|it| it.id.clone()).collect();
    let ids = store.sync_items(scope, &keys).await?;
    let item_ids: Vec<i64> = keys.iter().map(|k| ids.get(k).copied().unwrap_or_default()).collect();
    tracing::info!(project = slug, items = keys.len(), seconds = listed.elapsed().as_secs_f64(), "dataset indexed");

    let judgements = match &config.dataset.judgements_file {
        Some(path) => Some(Mutex::new(
            JudgementsFile::open(path).with_context(|| format!("opening the judgements file {}", path.display()))?,
        )),
        None => None,
    };
    let head = HeadParams {
        prior_matching: config.model.prior_matching,
        pool_statistics: config.model.pool_statistics,
        covariance_prior: config.model.covariance_prior,
        ..HeadParams::for_kind(match config.model.head {
            crate::config::task::HeadChoice::Logistic => crate::ml::head::HeadKind::Logistic,
            crate::config::task::HeadChoice::Mlp => crate::ml::head::HeadKind::Mlp,
        })
    };
    let config = Arc::new(config);
    let dataset = Arc::new(dataset);
    // The latest saved model serves /score from the first request after a restart, before the
    // trainer has re-read the embeddings and fitted again.
    let restored = restore_head(store, scope, blobs.clone(), &config).await;
    let current_head = Arc::new(RwLock::new(restored.map(Arc::new)));
    let cx = Arc::new(ProjectContext {
        slug: slug.to_string(),
        scope,
        config: config.clone(),
        dataset: dataset.clone(),
        item_ids,
        store: store.clone(),
        blobs,
        events,
        judgements,
        current_head: current_head.clone(),
        rows: RwLock::new(None),
        encoder_spec: RwLock::new(None),
        trainer: Mutex::new(None),
        metrics: options.metrics.clone(),
        settings,
        lease_mirror,
    });
    let actor_cx = cx.clone();
    let addr = Supervisor::start(move |_| ProjectActor::new(actor_cx));
    let trainer = Trainer::start(
        TrainerSetup {
            config: config.clone(),
            dataset,
            assets: options.assets.clone(),
            head,
            current_head: current_head.clone(),
            blobs: cx.blobs.clone(),
        },
        addr.clone().recipient(),
        addr.clone().recipient(),
        addr.clone().recipient(),
        addr.clone().recipient(),
    )?;
    if let Ok(mut slot) = cx.trainer.lock() {
        *slot = Some(trainer);
    }
    let scorer = Scorer::start(
        config.encoder(),
        options.assets.clone(),
        current_head,
        options.score_batch,
        options.metrics.clone(),
    )?;
    Ok(ProjectHandle { cx, addr, scorer })
}

/// The head of the project's newest saved model, when it still fits the configuration (same
/// classes in the same order, same encoder weights). Anything wrong is logged and skipped: the
/// trainer fits a new model anyway.
async fn restore_head(
    store: &Store,
    scope: crate::store::ProjectScope,
    blobs: Arc<dyn BlobStore>,
    config: &TaskConfig,
) -> Option<crate::ml::head::Head> {
    let latest = match store.latest_model(scope).await {
        Ok(latest) => latest?,
        Err(e) => {
            tracing::warn!(error = %e, "looking up the latest model failed");
            return None;
        }
    };
    let key = latest.blob_key;
    let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::ml::model_io::SavedModel> {
        let dir = tempfile::tempdir()?;
        for name in [crate::ml::model_io::WEIGHTS_FILE, crate::ml::model_io::MODEL_FILE] {
            std::fs::write(dir.path().join(name), blobs.get(&format!("{key}/{name}"))?)?;
        }
        crate::ml::model_io::SavedModel::load(dir.path())
    })
    .await;
    let saved = match loaded {
        Ok(Ok(saved)) => saved,
        Ok(Err(e)) => {
            tracing::warn!(version = latest.version, error = %format!("{e:#}"), "the saved model cannot be loaded");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "loading the saved model panicked");
            return None;
        }
    };
    let encoder = crate::ml::encoder::spec_id(config.encoder());
    if saved.classes != config.label.classes || saved.encoder.id != encoder {
        tracing::info!(version = latest.version, "the saved model was trained for other classes or another encoder");
        return None;
    }
    tracing::info!(version = latest.version, "serving the saved model until the next fit");
    Some(saved.head)
}
