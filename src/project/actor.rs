//! The project actor: the one owner of a project's labelling state. HTTP handlers send it
//! messages; it answers from memory (no tensor work, no waiting on the trainer), hands
//! training jobs to the trainer thread, installs the results, and publishes events.
//!
//! It is supervised: if it stops, `actix::Supervisor` restarts it and `started` rebuilds the
//! state from the database (labels) and the trainer (embeddings), then retrains.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::prelude::*;

use super::compute::{EmbedFailed, EmbedProgress, Embedded, TrainJob, Trained, Trainer};
use super::events::{Event, Events};
use super::state::{Handout, Item, LabelPlan, LabelRefusal, LiveLabel, Millis, PendingBatch, ProjectState, Stage};
use super::views::*;
use crate::config::TaskConfig;
use crate::data::Dataset;
use crate::ml::head::Head;
use crate::ml::metrics::{argmax_rows, evaluate};
use crate::store::blob::BlobStore;
use crate::store::judgements::{JudgementRow, JudgementsFile};
use crate::store::{now_ms, ProjectScope, Store};

/// How long an item stays leased to the labeller it was handed to.
pub const LEASE_MS: Millis = 10 * 60 * 1000;
/// Labels arriving within this window are trained on together.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// Stats events are coalesced to at most one per this interval.
const STATS_EVERY: Duration = Duration::from_millis(300);

/// A row for the judgements file: (item index, class or None for an undo, user, stage, ms).
type JudgementEntry = (usize, Option<usize>, i64, Stage, Option<i64>);

/// Everything about a project that outlives an actor restart.
pub struct ProjectContext {
    pub slug: String,
    pub scope: ProjectScope,
    pub config: Arc<TaskConfig>,
    pub dataset: Arc<Dataset>,
    /// Database id of each item, by item index.
    pub item_ids: Vec<i64>,
    pub store: Store,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Events,
    pub judgements: Option<Mutex<JudgementsFile>>,
    pub current_head: Arc<RwLock<Option<Arc<Head>>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once the trainer has embedded the dataset.
    pub rows: RwLock<Option<Vec<Option<usize>>>>,
    /// The encoder's identity, known once the trainer loaded it.
    pub encoder_spec: RwLock<Option<crate::ml::encoder::EncoderSpec>>,
    pub trainer: Mutex<Option<Trainer>>,
    /// Settings that may change while the project runs (the API's PATCH .../settings).
    pub settings: Arc<RwLock<super::settings::ProjectSettings>>,
    /// Where leases are remembered beyond this process (Redis), for a takeover.
    pub lease_mirror: Option<Arc<dyn super::leases::LeaseMirror>>,
}

impl ProjectContext {
    /// The current auto-label threshold.
    pub fn threshold(&self) -> f64 {
        self.settings.read().map(|s| s.auto_label_threshold).unwrap_or(self.config.model.auto_label_threshold)
    }
}

pub struct ProjectActor {
    cx: Arc<ProjectContext>,
    state: ProjectState,
    loaded: bool,
    embedding: Progress,
    embedding_error: Option<String>,
    training: bool,
    /// Labels changed while a job ran: train again when it finishes.
    dirty: bool,
    debounce: Option<SpawnHandle>,
    version: i64,
    curve: Vec<CurvePoint>,
    stats_dirty: bool,
    user_names: HashMap<i64, String>,
}

impl ProjectActor {
    pub fn new(cx: Arc<ProjectContext>) -> Self {
        let state = Self::fresh_state(&cx);
        let total = cx.item_ids.len();
        ProjectActor {
            cx,
            state,
            loaded: false,
            embedding: Progress { done: 0, total },
            embedding_error: None,
            training: false,
            dirty: false,
            debounce: None,
            version: 0,
            curve: Vec::new(),
            stats_dirty: true,
            user_names: HashMap::new(),
        }
    }

    /// Tells the lease mirror about leases just given to `user_id`.
    fn mirror_held(&self, user_id: i64, indices: impl Iterator<Item = usize>) {
        let Some(mirror) = &self.cx.lease_mirror else { return };
        let held = indices
            .filter_map(|i| {
                let expires = self.state.lease_expiry(i)?;
                let test = self.state.is_test_pending(i);
                Some(super::leases::HeldLease { item_id: self.state.item(i).id, user_id, expires, test })
            })
            .collect();
        mirror.held(held);
    }

    fn fresh_state(cx: &ProjectContext) -> ProjectState {
        let items = cx
            .dataset
            .items
            .iter()
            .zip(&cx.item_ids)
            .map(|(it, &id)| Item { id, key: it.id.clone(), row: None })
            .collect();
        ProjectState::new(
            cx.config.label.classes.clone(),
            items,
            cx.config.model.test_fraction,
            LEASE_MS,
            cx.config.model.seed,
        )
    }

    fn embedded(&self) -> bool {
        self.cx.rows.read().map(|r| r.is_some()).unwrap_or(false)
    }

    fn mark_changed(&mut self) {
        self.stats_dirty = true;
    }

    /// Debounced: train at most DEBOUNCE after the first unfitted label, or after the running job.
    fn schedule_training(&mut self, ctx: &mut Context<Self>) {
        if !self.embedded() || !self.loaded {
            return;
        }
        if self.training {
            self.dirty = true;
            return;
        }
        // A fit is already due: let it start on time. Re-arming here would starve training
        // while labels keep arriving faster than the debounce (8 labellers flat out).
        if self.debounce.is_some() {
            return;
        }
        self.debounce = Some(ctx.run_later(DEBOUNCE, |act, ctx| {
            act.debounce = None;
            act.start_training(ctx);
        }));
    }

    fn start_training(&mut self, ctx: &mut Context<Self>) {
        let Some(rows) = self.cx.rows.read().ok().and_then(|r| r.clone()) else { return };
        let (train, _) = self.state.training_sets();
        let pool: Vec<(usize, usize)> =
            self.state.unlabelled_embedded().into_iter().filter_map(|i| rows[i].map(|r| (i, r))).collect();
        let strategy =
            self.cx.settings.read().map(|s| s.strategy).unwrap_or(crate::ml::strategy::StrategyKind::DEFAULT);
        let job = TrainJob { version: self.version + 1, train, pool, rows, strategy };
        let labels = job.train.len();
        let submitted = self.cx.trainer.lock().ok().and_then(|t| t.as_ref().map(|t| t.submit(job))).unwrap_or(false);
        if submitted {
            self.cx.metrics.compute_queue_depth.with_label_values(&["trainer"]).inc();
            self.training = true;
            self.dirty = false;
            self.cx.events.publish(&Event::TrainingStarted { labels });
            self.mark_changed();
        } else {
            // The trainer's slot is taken (a job from before a restart): try again shortly.
            ctx.run_later(Duration::from_secs(1), |act, ctx| act.schedule_training(ctx));
        }
    }

    /// The TEST labels that have a prediction: (true classes, their probability rows).
    fn test_predictions(&self) -> (Vec<i64>, Vec<f32>) {
        let mut y = Vec::new();
        let mut probs = Vec::new();
        for (i, l) in self.state.labels() {
            if let (Stage::Test, Some(p)) = (l.stage, self.state.prediction(i)) {
                y.push(l.class as i64);
                probs.extend_from_slice(p);
            }
        }
        (y, probs)
    }

    fn evaluation(&self) -> Option<crate::ml::metrics::Evaluation> {
        let (y_true, probs) = self.test_predictions();
        if y_true.is_empty() {
            return None;
        }
        let c = self.state.classes.len();
        Some(evaluate(&y_true, &argmax_rows(&probs, c), c))
    }

    fn expected_precision(&self) -> (Option<f64>, usize) {
        let (y, probs) = self.test_predictions();
        let c = self.state.classes.len();
        let est = crate::ml::autolabel::expected_precision(&probs, &y, c, self.cx.threshold());
        (est.precision, est.covered)
    }

    pub fn stats(&self) -> Stats {
        let c = self.state.classes.len();
        let mut counts = Counts {
            labelled: 0,
            train: 0,
            test: 0,
            model_labelled: 0,
            unlabelled: 0,
            total: self.state.items().len(),
            skipped_items: 0,
        };
        let mut times: Vec<i64> = Vec::new();
        for (_, l) in self.state.labels() {
            counts.labelled += 1;
            match l.stage {
                Stage::Train => counts.train += 1,
                Stage::Test => counts.test += 1,
            }
            if l.from_batch {
                counts.model_labelled += 1;
            } else if let Some(ms) = l.time_taken_ms.filter(|&ms| ms > 0) {
                times.push(ms);
            }
        }
        counts.unlabelled = counts.total - counts.labelled;
        counts.skipped_items = self.cx.dataset.skipped.len();
        times.sort_unstable();
        let median = (!times.is_empty()).then(|| times[times.len() / 2] as f64 / 1000.0);
        let eval = self.evaluation();
        let accuracy = eval.as_ref().map(Accuracy::of);
        let confusion =
            eval.as_ref().map(|e| Confusion { classes: self.state.classes.clone(), matrix: e.confusion.clone() });
        let per_class = eval
            .as_ref()
            .map(|e| {
                (0..c)
                    .map(|k| {
                        let predicted: usize = e.confusion.iter().map(|row| row[k]).sum();
                        let support: usize = e.confusion[k].iter().sum();
                        ClassRow {
                            class: self.state.classes[k].clone(),
                            precision: (predicted > 0).then(|| e.confusion[k][k] as f64 / predicted as f64),
                            recall: (support > 0).then(|| e.confusion[k][k] as f64 / support as f64),
                            support,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let threshold = self.cx.threshold();
        let groups = self.state.confident(threshold);
        let (expected_precision, covered) = self.expected_precision();
        Stats {
            counts,
            training: self.training,
            model_version: self.version,
            embedding: self.embedding.clone(),
            embedding_error: self.embedding_error.clone(),
            accuracy,
            curve: self.curve.clone(),
            confusion,
            per_class,
            median_seconds_per_label: median,
            auto_label: AutoLabelStats {
                threshold,
                ready_items: groups.iter().map(|g| g.1.len()).sum(),
                ready_batches: groups.len(),
                expected_precision,
                expected_precision_test_items: covered,
            },
        }
    }

    fn prediction(&self, index: usize) -> Option<Prediction> {
        let p = self.state.prediction(index)?;
        let best = argmax_rows(p, p.len()).first().copied().unwrap_or(0) as usize;
        Some(Prediction {
            label: self.state.classes[best].clone(),
            probabilities: self.state.classes.iter().cloned().zip(p.iter().copied()).collect(),
        })
    }

    fn append_judgements(&self, rows: &[JudgementEntry]) {
        let Some(file) = &self.cx.judgements else { return };
        let now = now_ms();
        let lines: Vec<(String, String, String, Option<i64>, &'static str)> = rows
            .iter()
            .map(|&(index, class, user, stage, ms)| {
                (
                    self.state.item(index).key.clone(),
                    class.map(|c| self.state.classes[c].clone()).unwrap_or_default(),
                    self.user_names.get(&user).cloned().unwrap_or_else(|| user.to_string()),
                    ms,
                    stage.as_str(),
                )
            })
            .collect();
        let rows: Vec<JudgementRow> = lines
            .iter()
            .map(|(path, label, by, ms, stage)| JudgementRow {
                path,
                label,
                labelled_by: by,
                time_taken_ms: *ms,
                stage,
                created_at: now,
            })
            .collect();
        if let Ok(mut f) = file.lock() {
            if let Err(e) = f.append(&rows) {
                tracing::error!(file = %f.path().display(), error = %e, "appending to the judgements file failed");
            }
        }
    }

    fn save_model(&self, ctx: &mut Context<Self>, head: Arc<Head>, version: i64, train_labels: usize) {
        let cx = self.cx.clone();
        let Some(encoder) = cx.encoder_spec.read().ok().and_then(|s| s.clone()) else { return };
        let point = self.curve.last().cloned();
        let curve = self.curve.clone();
        ctx.spawn(
            async move {
                let key = format!("models/v{version:06}");
                let metrics = serde_json::json!({ "point": point, "curve": curve });
                let saved = crate::ml::model_io::SavedModel {
                    classes: cx.config.label.classes.clone(),
                    encoder,
                    head: (*head).clone(),
                    metrics: metrics.clone(),
                    labels_used: train_labels,
                    created_at: crate::ml::model_io::unix_now(),
                };
                let blobs = cx.blobs.clone();
                let key2 = key.clone();
                let written = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    saved.save(dir.path())?;
                    for name in [crate::ml::model_io::WEIGHTS_FILE, crate::ml::model_io::MODEL_FILE] {
                        blobs.put(&format!("{key2}/{name}"), &std::fs::read(dir.path().join(name))?)?;
                    }
                    Ok(())
                })
                .await;
                match written {
                    Ok(Ok(())) => {
                        if let Err(e) =
                            cx.store.add_model(cx.scope, version, &key, &metrics.to_string(), train_labels as i64).await
                        {
                            tracing::error!(error = %e, "recording the model failed");
                        }
                    }
                    Ok(Err(e)) => {
                        cx.metrics.blob_errors.with_label_values(&["local"]).inc();
                        tracing::error!(error = %format!("{e:#}"), "saving the model failed")
                    }
                    Err(e) => tracing::error!(error = %e, "saving the model panicked"),
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for ProjectActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.cx.metrics.project_actors.inc();
        // Rebuild from persisted state before any other message is handled.
        let cx = self.cx.clone();
        ctx.wait(
            async move {
                let labels = cx.store.live_labels(cx.scope).await;
                let models = cx.store.models(cx.scope).await;
                let names = cx.store.member_names(crate::store::OrgScope { org_id: cx.scope.org_id }).await;
                let leases = match &cx.lease_mirror {
                    Some(mirror) => mirror.load().await,
                    None => Ok(Vec::new()),
                };
                (labels, models, names, leases)
            }
            .into_actor(self)
            .map(|(labels, models, names, leases), act, ctx| {
                act.state = Self::fresh_state(&act.cx);
                if let Some(rows) = act.cx.rows.read().ok().and_then(|r| r.clone()) {
                    act.state.set_rows(&rows);
                    act.embedding.done = act.embedding.total;
                }
                match labels {
                    Ok(labels) => {
                        for l in labels {
                            if let (Some(index), Some(class)) =
                                (act.state.index_of(l.item_id), act.state.class_index(&l.label))
                            {
                                act.state.restore_label(
                                    index,
                                    LiveLabel {
                                        label_id: l.id,
                                        class,
                                        user_id: l.user_id,
                                        stage: Stage::parse(&l.stage),
                                        from_batch: l.source != crate::store::LabelSource::Human,
                                        time_taken_ms: l.time_taken_ms,
                                    },
                                );
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "loading labels failed; stopping so the supervisor retries");
                        ctx.stop();
                        return;
                    }
                }
                if let Ok(models) = models {
                    act.version = models.last().map(|m| m.version).unwrap_or(0);
                    act.curve = models
                        .iter()
                        .filter_map(|m| serde_json::from_str::<serde_json::Value>(&m.metrics).ok())
                        .filter_map(|v| serde_json::from_value::<CurvePoint>(v.get("point")?.clone()).ok())
                        .collect();
                }
                if let Ok(names) = names {
                    act.user_names = names;
                }
                // Leases handed out by a previous owner of the project (before a takeover)
                // hold their items, and TEST ones keep them in TEST.
                match leases {
                    Ok(leases) => {
                        let now = now_ms();
                        let restored = leases
                            .iter()
                            .filter(|l| {
                                act.state
                                    .index_of(l.item_id)
                                    .is_some_and(|i| act.state.restore_lease(i, l.user_id, l.expires, l.test, now))
                            })
                            .count();
                        if restored > 0 {
                            tracing::info!(project = %act.cx.slug, restored, "leases restored");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "loading leases failed; their items may be handed out again"),
                }
                act.loaded = true;
                act.training = false;
                act.mark_changed();
                act.schedule_training(ctx);
            }),
        );
        ctx.run_interval(STATS_EVERY, |act, _| {
            if act.stats_dirty && act.cx.events.has_listeners() {
                act.stats_dirty = false;
                let stats = act.stats();
                act.cx.events.publish(&Event::Stats { stats: &stats });
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.cx.metrics.project_actors.dec();
    }
}

impl ProjectActor {
    fn record_training(&self, ok: bool, seconds: Option<f64>) {
        let m = &self.cx.metrics;
        m.training_runs.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
        if let Some(s) = seconds {
            m.training_duration.observe(s);
        }
    }
}

impl Supervised for ProjectActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!(project = %self.cx.slug, "project actor restarting from persisted state");
        self.loaded = false;
    }
}

// ---- Messages from the trainer -------------------------------------------------------------

impl Handler<EmbedProgress> for ProjectActor {
    type Result = ();
    fn handle(&mut self, msg: EmbedProgress, _: &mut Context<Self>) {
        self.embedding = Progress { done: msg.done, total: msg.total };
        self.mark_changed();
    }
}

impl Handler<EmbedFailed> for ProjectActor {
    type Result = ();
    fn handle(&mut self, msg: EmbedFailed, _: &mut Context<Self>) {
        self.embedding_error = Some(msg.error);
        self.mark_changed();
    }
}

impl Handler<Embedded> for ProjectActor {
    type Result = ();
    fn handle(&mut self, msg: Embedded, ctx: &mut Context<Self>) {
        for s in &msg.skipped {
            tracing::warn!(item = %s.id, reason = %s.reason, "item skipped");
        }
        tracing::info!(items = msg.rows.len(), seconds = msg.seconds, "dataset embedded");
        self.state.set_rows(&msg.rows);
        if let Ok(mut spec) = self.cx.encoder_spec.write() {
            *spec = Some(msg.spec);
        }
        if let Ok(mut rows) = self.cx.rows.write() {
            *rows = Some(msg.rows);
        }
        self.embedding.done = self.embedding.total;
        self.mark_changed();
        self.schedule_training(ctx);
    }
}

impl Handler<Trained> for ProjectActor {
    type Result = ();
    fn handle(&mut self, msg: Trained, ctx: &mut Context<Self>) {
        self.training = false;
        self.cx.metrics.compute_queue_depth.with_label_values(&["trainer"]).dec();
        self.record_training(msg.outcome.is_ok(), msg.outcome.as_ref().ok().map(|o| o.seconds));
        match msg.outcome {
            Ok(outcome) => match outcome.predictions {
                Some(p) => {
                    self.version = msg.version;
                    self.state.install_model(p, outcome.queue);
                    let accuracy = self.evaluation().as_ref().map(Accuracy::of);
                    if let Some(a) = &accuracy {
                        self.curve.push(CurvePoint {
                            labels: self.state.label_count(),
                            accuracy: a.value,
                            low: a.low,
                            high: a.high,
                            test_labels: a.test_labels,
                        });
                    }
                    if let Some(head) = outcome.head {
                        self.save_model(ctx, head, msg.version, msg.train_labels);
                    }
                    self.cx.events.publish(&Event::TrainingFinished {
                        model_version: self.version,
                        accuracy: accuracy.as_ref(),
                        seconds: outcome.seconds,
                    });
                    let threshold = self.cx.threshold();
                    for (class, items) in self.state.confident(threshold) {
                        self.cx
                            .events
                            .publish(&Event::BatchReady { class: &self.state.classes[class], size: items.len() });
                    }
                }
                None => self.state.install_queue(outcome.queue),
            },
            Err(e) => tracing::error!(error = %e, "training failed"),
        }
        self.mark_changed();
        if self.dirty {
            self.schedule_training(ctx);
        }
    }
}

// ---- Messages from HTTP handlers ------------------------------------------------------------

#[derive(Message)]
#[rtype(result = "Vec<LeasedItem>")]
pub struct Next {
    pub user_id: i64,
    pub count: usize,
}

impl Handler<Next> for ProjectActor {
    type Result = MessageResult<Next>;
    fn handle(&mut self, msg: Next, _: &mut Context<Self>) -> Self::Result {
        let handouts: Vec<Handout> = self.state.next(msg.user_id, msg.count, now_ms());
        self.mark_changed();
        self.mirror_held(msg.user_id, handouts.iter().map(|h| h.index));
        MessageResult(
            handouts
                .into_iter()
                .map(|h| {
                    let item = self.state.item(h.index);
                    LeasedItem {
                        index: h.index,
                        id: item.id,
                        key: item.key.clone(),
                        stage: h.stage,
                        // TEST items come without a prediction: the labeller is not anchored.
                        prediction: if h.stage == Stage::Test { None } else { self.prediction(h.index) },
                    }
                })
                .collect(),
        )
    }
}

/// Validates labels before they are written.
#[derive(Message)]
#[rtype(result = "Result<Vec<LabelPlan>, LabelRefusal>")]
pub struct PlanLabels {
    pub user_id: i64,
    /// (item id, class name)
    pub labels: Vec<(i64, String)>,
}

impl Handler<PlanLabels> for ProjectActor {
    type Result = Result<Vec<LabelPlan>, LabelRefusal>;
    fn handle(&mut self, msg: PlanLabels, _: &mut Context<Self>) -> Self::Result {
        let now = now_ms();
        msg.labels.iter().map(|(id, class)| self.state.plan_label(msg.user_id, *id, class, now)).collect()
    }
}

/// Labels written to the database: take them into the state, append the judgements file,
/// retrain.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CommitLabels {
    pub user_id: i64,
    pub user_name: String,
    /// (plan, label id, time taken)
    pub labels: Vec<(LabelPlan, i64, Option<i64>)>,
    pub from_batch: bool,
}

impl Handler<CommitLabels> for ProjectActor {
    type Result = usize;
    fn handle(&mut self, msg: CommitLabels, ctx: &mut Context<Self>) -> usize {
        self.user_names.entry(msg.user_id).or_insert(msg.user_name);
        let mut rows = Vec::with_capacity(msg.labels.len());
        let overlap = self.cx.settings.read().map(|s| s.overlap).unwrap_or(0.0);
        self.state.set_overlap(overlap);
        for (plan, label_id, ms) in msg.labels {
            self.state.commit_label(msg.user_id, plan, label_id, msg.from_batch, ms);
            rows.push((plan.index, Some(plan.class), msg.user_id, plan.stage, ms));
        }
        self.append_judgements(&rows);
        if let Some(m) = &self.cx.lease_mirror {
            m.released(rows.iter().map(|r| self.state.item(r.0).id).collect());
        }
        self.mark_changed();
        self.schedule_training(ctx);
        self.state.label_count()
    }
}

/// The caller's newest label: (label id, item index, class).
#[derive(Message)]
#[rtype(result = "Option<(i64, usize)>")]
pub struct LastLabel {
    pub user_id: i64,
}

impl Handler<LastLabel> for ProjectActor {
    type Result = Option<(i64, usize)>;
    fn handle(&mut self, msg: LastLabel, _: &mut Context<Self>) -> Self::Result {
        self.state.last_label_of(msg.user_id)
    }
}

/// A label marked undone in the database. Returns the item (id, key) and its former class.
#[derive(Message)]
#[rtype(result = "Option<(i64, String, String)>")]
pub struct CommitUndo {
    pub user_id: i64,
    pub label_id: i64,
    pub index: usize,
}

impl Handler<CommitUndo> for ProjectActor {
    type Result = Option<(i64, String, String)>;
    fn handle(&mut self, msg: CommitUndo, ctx: &mut Context<Self>) -> Self::Result {
        let live = self.state.commit_undo(msg.user_id, msg.label_id, msg.index, now_ms())?;
        self.mirror_held(msg.user_id, std::iter::once(msg.index));
        self.append_judgements(&[(msg.index, None, msg.user_id, live.stage, None)]);
        self.mark_changed();
        self.schedule_training(ctx);
        let item = self.state.item(msg.index);
        Some((item.id, item.key.clone(), self.state.classes[live.class].clone()))
    }
}

#[derive(Message)]
#[rtype(result = "Result<usize, LabelRefusal>")]
pub struct Skip {
    pub user_id: i64,
    pub item_id: i64,
}

impl Handler<Skip> for ProjectActor {
    type Result = Result<usize, LabelRefusal>;
    fn handle(&mut self, msg: Skip, _: &mut Context<Self>) -> Self::Result {
        let skipped = self.state.skip(msg.user_id, msg.item_id, now_ms())?;
        if let Some(m) = &self.cx.lease_mirror {
            m.released(vec![msg.item_id]);
        }
        Ok(skipped)
    }
}

#[derive(Message)]
#[rtype(result = "Option<BatchView>")]
pub struct TakeBatch {
    pub user_id: i64,
    pub size: usize,
}

impl Handler<TakeBatch> for ProjectActor {
    type Result = Option<BatchView>;
    fn handle(&mut self, msg: TakeBatch, _: &mut Context<Self>) -> Self::Result {
        let threshold = self.cx.threshold();
        let batch = self.state.take_batch(msg.user_id, threshold, msg.size, now_ms())?;
        Some(BatchView {
            id: batch.id,
            class: self.state.classes[batch.class].clone(),
            items: batch
                .items
                .iter()
                .map(|&(i, p)| {
                    let it = self.state.item(i);
                    (i, it.id, it.key.clone(), p)
                })
                .collect(),
        })
    }
}

/// Ends a reserved batch so its items can be labelled (or returned to the queue).
#[derive(Message)]
#[rtype(result = "Option<PendingBatch>")]
pub struct FinishBatch {
    pub user_id: i64,
    pub batch_id: String,
}

impl Handler<FinishBatch> for ProjectActor {
    type Result = Option<PendingBatch>;
    fn handle(&mut self, msg: FinishBatch, _: &mut Context<Self>) -> Self::Result {
        self.state.finish_batch(msg.user_id, &msg.batch_id, now_ms())
    }
}

/// Class names and item ids of a finished batch, for labelling it.
#[derive(Message)]
#[rtype(result = "Result<Vec<LabelPlan>, LabelRefusal>")]
pub struct PlanBatch {
    pub user_id: i64,
    /// (item index, class)
    pub labels: Vec<(usize, usize)>,
}

impl Handler<PlanBatch> for ProjectActor {
    type Result = Result<Vec<LabelPlan>, LabelRefusal>;
    fn handle(&mut self, msg: PlanBatch, _: &mut Context<Self>) -> Self::Result {
        let now = now_ms();
        msg.labels
            .iter()
            .map(|&(index, class)| {
                let id = self.state.item(index).id;
                let name = self.state.classes[class].clone();
                self.state.plan_label(msg.user_id, id, &name, now)
            })
            .collect()
    }
}

/// The current model's predicted class of each item (None: unknown item or no model yet).
#[derive(Message)]
#[rtype(result = "Vec<Option<usize>>")]
pub struct PredictedClasses {
    pub item_ids: Vec<i64>,
}

impl Handler<PredictedClasses> for ProjectActor {
    type Result = MessageResult<PredictedClasses>;
    fn handle(&mut self, msg: PredictedClasses, _: &mut Context<Self>) -> Self::Result {
        let c = self.state.classes.len();
        let predicted = msg
            .item_ids
            .iter()
            .map(|&id| {
                let probs = self.state.prediction(self.state.index_of(id)?)?;
                crate::ml::metrics::argmax_rows(probs, c).first().map(|&k| k as usize)
            })
            .collect();
        MessageResult(predicted)
    }
}

#[derive(Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

impl Handler<GetStats> for ProjectActor {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats())
    }
}

#[derive(Message)]
#[rtype(result = "Option<(usize, String)>")]
pub struct ItemById {
    pub item_id: i64,
}

impl Handler<ItemById> for ProjectActor {
    type Result = Option<(usize, String)>;
    fn handle(&mut self, msg: ItemById, _: &mut Context<Self>) -> Self::Result {
        let i = self.state.index_of(msg.item_id)?;
        Some((i, self.state.item(i).key.clone()))
    }
}

/// Browse: `matches_text` lets the caller add content search for text items.
#[derive(Message)]
#[rtype(result = "BrowsePage")]
pub struct Browse {
    pub filter: BrowseFilter,
    /// Item indices whose content matches the text query (None: match on the path).
    pub text_hits: Option<std::collections::HashSet<usize>>,
}

impl Handler<Browse> for ProjectActor {
    type Result = MessageResult<Browse>;
    fn handle(&mut self, msg: Browse, _: &mut Context<Self>) -> Self::Result {
        let f = &msg.filter;
        let per_page = f.per_page.unwrap_or(50).clamp(1, 500);
        let page = f.page.unwrap_or(1).max(1);
        let label = f.label.as_deref().and_then(|l| self.state.class_index(l));
        let predicted = f.predicted.as_deref().and_then(|l| self.state.class_index(l));
        let status = f.status.as_deref().unwrap_or("all");
        let q = f.q.as_deref().filter(|q| !q.is_empty()).map(str::to_lowercase);
        let mut rows = Vec::new();
        let mut total = 0;
        for index in 0..self.state.items().len() {
            let l = self.state.label_of(index);
            let keep_status = match status {
                "labelled" => l.is_some(),
                "unlabelled" => l.is_none(),
                "test" => l.is_some_and(|l| l.stage == Stage::Test),
                "model_labelled" => l.is_some_and(|l| l.from_batch),
                _ => true,
            };
            if !keep_status || label.is_some_and(|c| l.is_none_or(|l| l.class != c)) {
                continue;
            }
            let pred = self.state.prediction(index).map(|p| {
                let k = argmax_rows(p, p.len())[0] as usize;
                (k, p[k])
            });
            if predicted.is_some_and(|c| pred.is_none_or(|(k, _)| k != c)) {
                continue;
            }
            if f.min_confidence.is_some_and(|m| pred.is_none_or(|(_, p)| p < m))
                || f.max_confidence.is_some_and(|m| pred.is_none_or(|(_, p)| p > m))
            {
                continue;
            }
            let item = self.state.item(index);
            if let Some(q) = &q {
                let hit = match &msg.text_hits {
                    Some(hits) => hits.contains(&index),
                    None => item.key.to_lowercase().contains(q),
                };
                if !hit {
                    continue;
                }
            }
            total += 1;
            if total > (page - 1) * per_page && rows.len() < per_page {
                rows.push(BrowseRow {
                    index,
                    id: item.id,
                    key: item.key.clone(),
                    label: l.map(|l| self.state.classes[l.class].clone()),
                    labelled_by: l.map(|l| l.user_id),
                    stage: l.map(|l| l.stage),
                    predicted: pred.map(|(k, _)| self.state.classes[k].clone()),
                    confidence: pred.map(|(_, p)| p),
                });
            }
        }
        MessageResult(BrowsePage { total, page, per_page, rows })
    }
}
