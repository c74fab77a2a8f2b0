//! Projects created through the API (docs/HOSTED.md): creation, dataset upload (multipart,
//! streamed to disk, limits per file and per request) or import from an S3 prefix, indexing
//! and opening in the background with progress, settings, and per-labeller statistics.
//!
//! A created project's files live under `<data dir>/projects/<id>/` (`dataset/`, `out/`). With
//! S3 configured every dataset file is also written to `<prefix>datasets/<id>/<path>` before
//! the upload is acknowledged, and the project's models and embedding caches go to
//! `<prefix>projects/<id>/`: the local directory is then a cache that a new server process
//! refills from the bucket.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use anyhow::Context as _;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::access::{entry_access, identify, open_handle};
use super::error::ApiError;
use super::registry::{Entry, Source, Status};
use super::AppState;
use crate::auth::roles::Action;
use crate::config::task::Items;
use crate::config::TaskConfig;
use crate::project::settings::{ProjectSettings, SettingsChange};
use crate::project::{Opening, ProjectHandle};
use crate::store::blob::BlobStore;
use crate::store::entities::project;
use crate::store::{LabelSource, OrgScope, ProjectScope};

type Res = Result<HttpResponse, ApiError>;

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "bmp"];
const TEXT_EXTENSIONS: &[&str] = &["txt"];
/// Longest accepted relative path of a dataset file.
const MAX_PATH_BYTES: usize = 512;
/// Objects copied from S3 at once during an import.
const IMPORT_CONCURRENCY: usize = 8;

/// The local home of a created project.
fn project_dir(state: &AppState, project_id: i64) -> PathBuf {
    state.data_dir.join("projects").join(project_id.to_string())
}

/// The key (inside the server's S3 prefix) of a created project's dataset file.
fn dataset_key(project_id: i64, rel: &str) -> String {
    format!("datasets/{project_id}/{rel}")
}

/// Where a project's models and embedding caches go: S3 when configured, else its output dir.
fn project_blobs(state: &AppState, scope: ProjectScope, config: &TaskConfig) -> Arc<dyn BlobStore> {
    match &state.s3 {
        Some(s3) => s3.blobs(&format!("projects/{}/", scope.project_id)),
        None => crate::project::local_blobs(config),
    }
}

/// The config's settings with those changed through the API laid over them.
fn settings_of(config: &TaskConfig, stored: Option<&str>) -> ProjectSettings {
    let base = ProjectSettings::from_config(config);
    let Some(json) = stored else { return base };
    match serde_json::from_str::<SettingsChange>(json).map_err(|e| e.to_string()).and_then(|c| base.apply(&c)) {
        Ok(settings) => settings,
        Err(e) => {
            tracing::warn!(error = %e, "stored project settings are unreadable; using the config's");
            base
        }
    }
}

/// Opens a `--config` project at start.
pub async fn open_config_project(
    state: &Arc<AppState>,
    org: OrgScope,
    slug: &str,
    config: TaskConfig,
    yaml: &str,
) -> anyhow::Result<()> {
    if state.projects.get(org.org_id, slug).is_some() {
        anyhow::bail!("two configs map to the project id `{slug}`; rename one file");
    }
    let scope = state.store.upsert_project(org, slug, &config.task.title, yaml).await?;
    let elsewhere = state.store.other_orgs_with_labels(org, slug).await?;
    if !elsewhere.is_empty() {
        // Labels belong to an organisation: served under another --org, a project starts empty.
        tracing::warn!(
            project = slug,
            organisations = %elsewhere.join(", "),
            "this database has labels for a project `{slug}` of another organisation; they are not this \
             project's. Pass --org {} to serve those.",
            elsewhere[0]
        );
    }
    let row = state.store.project_row(scope).await?;
    let settings = settings_of(&config, row.settings_json.as_deref());
    let events = state.project_events(scope.project_id);
    let entry =
        Arc::new(Entry::new(scope, slug, Arc::new(config.clone()), Source::Config, settings, Status::Ready, events));
    state.projects.insert(entry.clone());
    if super::ownership::claim(state, &entry).await? {
        let handle = open_entry(state, &entry).await?;
        entry.set_open(handle);
    }
    Ok(())
}

/// Picks up where a project owned by this process was: opens a ready one, finishes an
/// interrupted import or indexing.
pub async fn resume(state: Arc<AppState>, entry: Arc<Entry>) {
    match entry.status() {
        Status::Ready | Status::Indexing => index(state, entry).await,
        Status::Importing => in_background(import(state, entry)),
        Status::AwaitingUpload | Status::Failed => {}
    }
}

/// Registers every project created through the API that this process does not know yet (all
/// of them at start; those created by other processes since, from the ownership loop), claims
/// and resumes those it may run, and refreshes the status shown for those run elsewhere. One
/// project's trouble is its own `failed` status, not the server's.
pub async fn register_hosted_projects(state: &Arc<AppState>) -> anyhow::Result<()> {
    for row in state.store.hosted_projects().await? {
        if let Some(known) = state.projects.get(row.org_id, &row.slug) {
            if known.remote_owner().is_some() {
                if let Some(status) = Status::parse(&row.status) {
                    known.set_status(status, row.status_error.clone());
                }
            }
            continue;
        }
        let entry = match entry_from_row(state, &row) {
            Ok(entry) => Arc::new(entry),
            Err(e) => {
                // Recorded once; a row already marked failed is not retried every round.
                if row.status != Status::Failed.as_str() {
                    tracing::error!(project = %row.slug, error = %e, "cannot restore a created project");
                    let scope = ProjectScope { org_id: row.org_id, project_id: row.id };
                    state.store.set_project_status(scope, Status::Failed.as_str(), Some(&e)).await?;
                }
                continue;
            }
        };
        if state.projects.insert(entry.clone()) && super::ownership::claim(state, &entry).await? {
            resume(state.clone(), entry).await;
        }
    }
    Ok(())
}

fn entry_from_row(state: &AppState, row: &project::Model) -> Result<Entry, String> {
    let source: Source = serde_json::from_str(&row.source).map_err(|e| format!("unreadable source: {e}"))?;
    let status = Status::parse(&row.status).ok_or_else(|| format!("unknown status `{}`", row.status))?;
    let dir = project_dir(state, row.id);
    std::fs::create_dir_all(dir.join("dataset")).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let name = format!("project {}", row.slug);
    let config = crate::config::task::parse_task_with(&row.config_yaml, Path::new(&name), &dir, Items::Later)
        .map_err(|e| e.to_string())?;
    let settings = settings_of(&config, row.settings_json.as_deref());
    let scope = ProjectScope { org_id: row.org_id, project_id: row.id };
    let events = state.project_events(row.id);
    let entry = Entry::new(scope, &row.slug, Arc::new(config), source, settings, status, events);
    if let Some(error) = &row.status_error {
        entry.set_status(status, Some(error.clone()));
    }
    Ok(entry)
}

/// Runs an import or an indexing on the system arbiter, where project actors live (an HTTP
/// worker's arbiter would tie the project's actor to that worker's thread).
fn in_background(task: impl std::future::Future<Output = ()> + Send + 'static) {
    if !actix_web::rt::System::current().arbiter().spawn(task) {
        tracing::error!("the system arbiter is gone: a background ingest did not start");
    }
}

/// Records a status in the entry and the database.
async fn set_status(state: &AppState, entry: &Entry, status: Status, error: Option<String>) {
    entry.set_status(status, error.clone());
    if let Err(e) = state.store.set_project_status(entry.scope, status.as_str(), error.as_deref()).await {
        tracing::error!(project = %entry.slug, error = %e, "recording the project status failed");
    }
}

/// Indexes the dataset and opens the project (its trainer then embeds in the background).
async fn index(state: Arc<AppState>, entry: Arc<Entry>) {
    set_status(&state, &entry, Status::Indexing, None).await;
    match open_entry(&state, &entry).await {
        Ok(handle) => {
            if let Ok(mut ingest) = entry.ingest.lock() {
                ingest.files = handle.cx.item_ids.len() as u64;
                for skipped in handle.cx.dataset.skipped.iter() {
                    ingest.reject(skipped.id.clone(), skipped.reason.clone());
                }
            }
            entry.set_open(handle);
            set_status(&state, &entry, Status::Ready, None).await;
        }
        Err(e) => {
            let message = format!("{e:#}");
            tracing::warn!(project = %entry.slug, error = %message, "indexing a created project failed");
            set_status(&state, &entry, Status::Failed, Some(message)).await;
        }
    }
}

async fn open_entry(state: &AppState, entry: &Entry) -> anyhow::Result<ProjectHandle> {
    if state.s3.is_some() && entry.source != Source::Config {
        refill_from_s3(state, entry).await?;
    }
    let config = (*entry.config).clone();
    let blobs = project_blobs(state, entry.scope, &config);
    let opening = Opening {
        scope: entry.scope,
        slug: entry.slug.clone(),
        config,
        blobs,
        settings: entry.settings.clone(),
        events: entry.events.clone(),
        lease_mirror: state.leases.as_ref().map(|l| l.for_project(entry.scope.project_id)),
    };
    crate::project::open(&state.store, opening, &state.open).await
}

/// Copies the dataset files the local directory lacks from the bucket (a new machine, or a
/// lost disk).
async fn refill_from_s3(state: &AppState, entry: &Entry) -> anyhow::Result<()> {
    let Some(s3) = &state.s3 else { return Ok(()) };
    let prefix = s3.key(&dataset_key(entry.scope.project_id, ""));
    let dir = project_dir(state, entry.scope.project_id).join("dataset");
    let bucket = s3.options().bucket.clone();
    let missing: Vec<_> = s3
        .list(&bucket, &prefix)
        .await?
        .into_iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(&prefix)?.to_string();
            (!dir.join(&rel).exists()).then_some((o.key, rel))
        })
        .collect();
    let fetched = futures_util::stream::iter(missing.into_iter().map(|(key, rel)| {
        let (s3, bucket, dir) = (s3.clone(), bucket.clone(), dir.clone());
        async move {
            let bytes = s3.get_from(&bucket, &key).await?;
            write_durably(&dir, &rel, &bytes).await?;
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(IMPORT_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    if !fetched.is_empty() {
        tracing::info!(project = %entry.slug, files = fetched.len(), "dataset files restored from S3");
    }
    Ok(())
}

/// Writes `bytes` to `dir/rel` through a temporary file, fsynced, then renamed into place.
async fn write_durably(dir: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(rel);
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    tokio::fs::create_dir_all(&parent).await.with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(".incoming-{}", crate::auth::random_secret(8)));
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, &path).await?;
    Ok(())
}

/// Why a dataset path is refused, if it is.
fn check_rel_path(rel: &str, extensions: &[&str]) -> Result<(), String> {
    if rel.is_empty() || rel.len() > MAX_PATH_BYTES {
        return Err(format!("a file path must be 1-{MAX_PATH_BYTES} bytes"));
    }
    let path = Path::new(rel);
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    let hidden = path.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    if !normal || rel.contains('\\') || rel.contains('\0') {
        return Err("the path leaves the dataset (absolute, `..` or `.` parts)".into());
    }
    if hidden {
        return Err("hidden files and folders (starting with `.`) are not items".into());
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    if !extensions.contains(&ext.as_str()) {
        return Err(format!("not a {} file", extensions.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(" ")));
    }
    Ok(())
}

fn extensions_for(config: &TaskConfig) -> &'static [&'static str] {
    match config.dataset.data_type {
        crate::config::task::DataType::Images => IMAGE_EXTENSIONS,
        _ => TEXT_EXTENSIONS,
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum SourceIn {
    Upload,
    S3 { bucket: Option<String>, prefix: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    id: String,
    title: String,
    data_type: String,
    classes: Vec<String>,
    encoder: Option<String>,
    auto_label_threshold: Option<f64>,
    strategy: Option<String>,
    #[serde(default)]
    description: String,
    source: SourceIn,
}

fn check_project_id(id: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("a project id is 1-64 of a-z 0-9 - _, got `{id}`")))
    }
}

/// The task config of a created project, as YAML (paths relative to its home directory).
fn config_yaml(b: &NewProject, user: &str) -> Result<String, ApiError> {
    if !matches!(b.data_type.as_str(), "images" | "text") {
        return Err(ApiError::BadRequest(format!("data_type: `images` or `text`, got `{}`", b.data_type)));
    }
    if b.classes.len() < 2 || b.classes.len() > 100 {
        return Err(ApiError::BadRequest(format!("classes: 2 to 100 names, got {}", b.classes.len())));
    }
    if let Some(bad) = b.classes.iter().find(|c| c.trim().is_empty() || c.chars().count() > 100) {
        return Err(ApiError::BadRequest(format!("classes: `{bad}` is not a name of 1-100 characters")));
    }
    let title = b.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::BadRequest("title: 1-200 characters".into()));
    }
    let mut model = serde_json::Map::new();
    model.insert("directory".into(), json!("out"));
    if let Some(encoder) = &b.encoder {
        model.insert("encoder".into(), json!(encoder));
    }
    if let Some(strategy) = &b.strategy {
        model.insert("strategy".into(), json!(strategy));
    }
    if let Some(t) = b.auto_label_threshold {
        if !(0.5..=1.0).contains(&t) {
            return Err(ApiError::BadRequest(format!("auto_label_threshold: between 0.5 and 1, got {t}")));
        }
        model.insert("auto_label_threshold".into(), json!(t));
    }
    let config = json!({
        "task": { "title": title, "description": b.description },
        "dataset": { "directory": "dataset", "data_type": b.data_type },
        "label": { "type": "classification", "classes": b.classes },
        "model": model,
        "user": user,
    });
    serde_yaml::to_string(&config).map_err(ApiError::internal)
}

/// `POST /api/v1/projects`: a new project of the caller's organisation, waiting for its data.
async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewProject>) -> Res {
    let who = identify(&req, &state).await?;
    who.check(Action::ManageProjects)?;
    let b = body.into_inner();
    check_project_id(&b.id)?;
    let yaml = config_yaml(&b, &who.name)?;
    let source = match &b.source {
        SourceIn::Upload => Source::Upload,
        SourceIn::S3 { bucket, prefix } => {
            let s3 = state.s3.as_ref().ok_or_else(|| {
                ApiError::BadRequest("this server has no S3 configured: upload the files instead".into())
            })?;
            let bucket = bucket.clone().unwrap_or_else(|| s3.options().bucket.clone());
            if prefix.is_empty() || prefix.starts_with('/') || prefix.contains("..") {
                return Err(ApiError::BadRequest(format!("source.prefix: `{prefix}` is not an object prefix")));
            }
            s3.may_import(&bucket, prefix).map_err(ApiError::Forbidden)?;
            Source::S3 { bucket, prefix: prefix.clone() }
        }
    };
    // Validate the whole config the way a config file is validated, before anything is stored.
    let probe = tempfile::tempdir().map_err(ApiError::internal)?;
    std::fs::create_dir_all(probe.path().join("dataset")).map_err(ApiError::internal)?;
    crate::config::task::parse_task_with(&yaml, Path::new("project"), probe.path(), Items::Later)
        .map_err(|e| ApiError::BadRequest(e.message.clone()))?;
    let status = match source {
        Source::S3 { .. } => Status::Importing,
        _ => Status::AwaitingUpload,
    };
    let source_json = serde_json::to_string(&source).map_err(ApiError::internal)?;
    let scope =
        state.store.create_project(who.org, &b.id, b.title.trim(), &yaml, &source_json, status.as_str()).await?;
    state.store.audit(who.org, Some(who.user_id), "project_created", &format!("{} ({source_json})", b.id)).await?;
    let row = state.store.project_row(scope).await?;
    let entry = Arc::new(entry_from_row(&state, &row).map_err(ApiError::internal)?);
    if !state.projects.insert(entry.clone()) {
        // The ownership loop (`register_hosted_projects`) can read the new row before this
        // handler registers it: it has then registered, claimed and resumed this very project,
        // which was created all the same.
        return match state.projects.get(scope.org_id, &b.id) {
            Some(known) if known.scope == scope => {
                Ok(HttpResponse::Created().json(super::routes::project_json(&known)))
            }
            _ => Err(ApiError::Conflict(format!("the organisation already has a project `{}`", b.id))),
        };
    }
    // The creating process runs the project (its uploads and ingest happen here) unless another
    // process's ownership loop claimed the new row first: that one imports it then.
    let owned = super::ownership::claim(&state, &entry).await.map_err(ApiError::internal)?;
    if owned && status == Status::Importing {
        in_background(import(state.clone().into_inner(), entry.clone()));
    }
    Ok(HttpResponse::Created().json(super::routes::project_json(&entry)))
}

/// A file stored by one upload request (for rolling the request back).
struct Stored {
    path: PathBuf,
    key: Option<String>,
}

/// `POST /api/v1/projects/{pid}/files`: dataset files, streamed to disk (and S3) one by one.
async fn upload(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>, payload: web::Payload) -> Res {
    let (who, entry) = entry_access(&req, &state, &pid, Action::ManageProjects).await?;
    if entry.source != Source::Upload || entry.status() != Status::AwaitingUpload {
        return Err(ApiError::Conflict(format!(
            "project `{pid}` takes no uploads now (status {}): files go to a new upload project before its ingest",
            entry.shown_status()
        )));
    }
    let limit = state.upload_limit_bytes;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit as usize));
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType("send multipart/form-data with parts named `file`".into()));
    }
    let mut stored = Vec::new();
    match receive(&state, &entry, Multipart::new(req.headers(), payload), &mut stored).await {
        Ok((bytes, rejected)) => {
            if let Ok(mut ingest) = entry.ingest.lock() {
                ingest.files += stored.len() as u64;
                ingest.bytes += bytes;
                for r in &rejected {
                    ingest.reject(r.name.clone(), r.reason.clone());
                }
            }
            state
                .store
                .audit(
                    who.org,
                    Some(who.user_id),
                    "dataset_uploaded",
                    &format!("{pid}: {} files, {bytes} bytes", stored.len()),
                )
                .await?;
            Ok(HttpResponse::Ok().json(json!({ "stored": stored.len(), "bytes": bytes, "rejected": rejected })))
        }
        Err(e) => {
            // The request failed as a whole: what it had stored goes, nothing stored before it.
            for s in &stored {
                let _ = tokio::fs::remove_file(&s.path).await;
                if let (Some(s3), Some(key)) = (&state.s3, &s.key) {
                    if let Err(err) = s3.delete(key).await {
                        tracing::warn!(key = %key, error = %err, "rolling back an uploaded file in S3 failed");
                    }
                }
            }
            Err(e)
        }
    }
}

/// Reads every part; returns the bytes stored and the files refused.
async fn receive(
    state: &AppState,
    entry: &Entry,
    mut form: Multipart,
    stored: &mut Vec<Stored>,
) -> Result<(u64, Vec<super::registry::Rejected>), ApiError> {
    let extensions = extensions_for(&entry.config);
    let dir = project_dir(state, entry.scope.project_id).join("dataset");
    let incoming = project_dir(state, entry.scope.project_id).join("incoming");
    tokio::fs::create_dir_all(&incoming).await.map_err(ApiError::internal)?;
    let (file_limit, request_limit) = (state.file_limit_bytes, state.upload_limit_bytes);
    let mut total = 0u64;
    let mut rejected = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
        if field.name() != Some("file") {
            return Err(ApiError::BadRequest(format!(
                "unexpected form field `{}`: send files as parts named `file`",
                field.name().unwrap_or_default()
            )));
        }
        let name = field.content_disposition().and_then(|cd| cd.get_filename()).unwrap_or_default().to_string();
        let reject = |reason: String| super::registry::Rejected { name: name.clone(), reason };
        if let Err(reason) = check_rel_path(&name, extensions) {
            rejected.push(reject(reason));
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading `{name}`: {e}")))?;
                total += chunk.len() as u64;
                if total > request_limit {
                    return Err(ApiError::PayloadTooLarge(request_limit as usize));
                }
            }
            continue;
        }
        let tmp = incoming.join(crate::auth::random_secret(8));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(ApiError::internal)?;
        let mut size = 0u64;
        let mut too_big = false;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading `{name}`: {e}")))?;
            total += chunk.len() as u64;
            if total > request_limit {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(ApiError::PayloadTooLarge(request_limit as usize));
            }
            size += chunk.len() as u64;
            if size > file_limit {
                too_big = true;
                continue;
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
            if state.s3.is_some() {
                bytes.extend_from_slice(&chunk);
            }
        }
        if too_big || size == 0 {
            let _ = tokio::fs::remove_file(&tmp).await;
            rejected.push(reject(if size == 0 {
                "empty file".into()
            } else {
                format!("larger than {file_limit} bytes")
            }));
            continue;
        }
        file.sync_all().await.map_err(ApiError::internal)?;
        drop(file);
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(ApiError::internal)?;
        }
        tokio::fs::rename(&tmp, &path).await.map_err(ApiError::internal)?;
        let key = match &state.s3 {
            Some(s3) => {
                let key = s3.key(&dataset_key(entry.scope.project_id, &name));
                stored.push(Stored { path: path.clone(), key: None });
                s3.put(&key, bytes).await.map_err(|e| ApiError::NotReady(format!("storing `{name}` in S3: {e}")))?;
                stored.pop();
                Some(key)
            }
            None => None,
        };
        stored.push(Stored { path, key });
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok((stored.iter().map(|s| std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0)).sum(), rejected))
}

/// Copies the objects under the project's S3 prefix into its dataset, then indexes it.
async fn import(state: Arc<AppState>, entry: Arc<Entry>) {
    let Source::S3 { bucket, prefix } = entry.source.clone() else { return };
    let Some(s3) = state.s3.clone() else {
        set_status(&state, &entry, Status::Failed, Some("this server has no S3 configured".into())).await;
        return;
    };
    let extensions = extensions_for(&entry.config);
    let dir = project_dir(&state, entry.scope.project_id).join("dataset");
    let listed = match s3.list(&bucket, &prefix).await {
        Ok(listed) => listed,
        Err(e) => {
            set_status(&state, &entry, Status::Failed, Some(format!("listing s3://{bucket}/{prefix}: {e}"))).await;
            return;
        }
    };
    let mut wanted = Vec::new();
    for object in listed {
        let rel = object.key.strip_prefix(&prefix).unwrap_or(&object.key).trim_start_matches('/').to_string();
        if rel.is_empty() || rel.ends_with('/') {
            continue;
        }
        let refusal = match check_rel_path(&rel, extensions) {
            Err(reason) => Some(reason),
            Ok(()) if object.size > state.file_limit_bytes => {
                Some(format!("larger than {} bytes", state.file_limit_bytes))
            }
            Ok(()) if object.size == 0 => Some("empty file".into()),
            Ok(()) => None,
        };
        match refusal {
            Some(reason) => {
                if let Ok(mut ingest) = entry.ingest.lock() {
                    ingest.reject(object.key.clone(), reason);
                }
            }
            None => wanted.push((object.key, rel)),
        }
    }
    let copies = futures_util::stream::iter(wanted.into_iter().map(|(key, rel)| {
        let (s3, bucket, dir, entry) = (s3.clone(), bucket.clone(), dir.clone(), entry.clone());
        async move {
            let bytes = s3.get_from(&bucket, &key).await?;
            let size = bytes.len() as u64;
            write_durably(&dir, &rel, &bytes).await?;
            s3.put(&s3.key(&dataset_key(entry.scope.project_id, &rel)), bytes).await?;
            if let Ok(mut ingest) = entry.ingest.lock() {
                ingest.files += 1;
                ingest.bytes += size;
            }
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(IMPORT_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await;
    if let Err(e) = copies {
        set_status(&state, &entry, Status::Failed, Some(format!("importing from s3://{bucket}/{prefix}: {e:#}"))).await;
        return;
    }
    index(state, entry).await;
}

/// `POST /api/v1/projects/{pid}/ingest`: the upload is complete; index and open the project.
async fn start_ingest(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (who, entry) = entry_access(&req, &state, &pid, Action::ManageProjects).await?;
    let status = entry.status();
    let retry = status == Status::Failed && entry.handle().is_none();
    if !(status == Status::AwaitingUpload || retry) {
        return Err(ApiError::Conflict(format!("project `{pid}` is {}: nothing to ingest", entry.shown_status())));
    }
    set_status(&state, &entry, Status::Indexing, None).await;
    state.store.audit(who.org, Some(who.user_id), "ingest_started", &pid).await?;
    let state = state.into_inner();
    match entry.source {
        Source::S3 { .. } => in_background(import(state, entry.clone())),
        _ => in_background(index(state, entry.clone())),
    }
    Ok(HttpResponse::Accepted().json(json!({ "status": Status::Indexing.as_str() })))
}

/// `GET /api/v1/projects/{pid}/ingest`: how far the dataset is.
async fn ingest_progress(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (_, entry) = entry_access(&req, &state, &pid, Action::Read).await?;
    let ingest = entry.ingest.lock().map_err(ApiError::internal)?.clone();
    let embedding = match entry.handle() {
        Some(h) => {
            let stats = h.addr.send(crate::project::actor::GetStats).await.map_err(ApiError::internal)?;
            Some(
                json!({ "done": stats.embedding.done, "total": stats.embedding.total, "error": stats.embedding_error }),
            )
        }
        None => None,
    };
    Ok(HttpResponse::Ok().json(json!({
        "status": entry.shown_status(),
        "files": ingest.files,
        "bytes": ingest.bytes,
        "rejected": ingest.rejected,
        "embedding": embedding,
        "error": ingest.error,
    })))
}

fn settings_json(s: &ProjectSettings) -> Value {
    json!({
        "title": s.title,
        "description": s.description,
        "auto_label_threshold": s.auto_label_threshold,
        "strategy": s.strategy.name(),
        "overlap": s.overlap,
    })
}

async fn get_settings(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (_, entry) = entry_access(&req, &state, &pid, Action::Read).await?;
    Ok(HttpResponse::Ok().json(settings_json(&entry.settings())))
}

/// `PATCH /api/v1/projects/{pid}/settings`: stored, then applied to the running project.
async fn patch_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    body: web::Json<SettingsChange>,
) -> Res {
    let (who, entry) = entry_access(&req, &state, &pid, Action::ManageProjects).await?;
    let next = entry.settings().apply(&body).map_err(ApiError::BadRequest)?;
    let stored = serde_json::to_string(&next.to_change()).map_err(ApiError::internal)?;
    state.store.save_project_settings(entry.scope, &next.title, &stored).await?;
    *entry.settings.write().map_err(ApiError::internal)? = next.clone();
    state.store.audit(who.org, Some(who.user_id), "settings_changed", &format!("{pid}: {stored}")).await?;
    Ok(HttpResponse::Ok().json(settings_json(&next)))
}

/// Agreement counts of one labeller.
#[derive(Default)]
struct Tally {
    labels: u64,
    times_ms: Vec<i64>,
    model_agree: u64,
    model_compared: u64,
    peer_agree: u64,
    peer_compared: u64,
}

/// `GET /api/v1/projects/{pid}/labellers`: labels, pace and agreement per labeller.
async fn labellers(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (_, entry) = entry_access(&req, &state, &pid, Action::Read).await?;
    let h = open_handle(&entry)?;
    let labels: Vec<_> =
        state.store.answers(entry.scope).await?.into_iter().filter(|l| l.source == LabelSource::Human).collect();
    let classes = &entry.config.label.classes;
    // Agreement with the model is measured on TEST labels only: the model never trained on
    // them, so agreeing there is not the model repeating what it was taught.
    let test: Vec<i64> = labels.iter().filter(|l| l.stage == "test").map(|l| l.item_id).collect();
    let predicted = h
        .addr
        .send(crate::project::actor::PredictedClasses { item_ids: test.clone() })
        .await
        .map_err(ApiError::internal)?;
    let predicted: HashMap<i64, String> = test
        .iter()
        .zip(predicted)
        .filter_map(|(&item, p)| p.and_then(|k| classes.get(k)).map(|c| (item, c.clone())))
        .collect();
    let mut by_item: HashMap<i64, Vec<(i64, &str)>> = HashMap::new();
    for l in &labels {
        by_item.entry(l.item_id).or_default().push((l.user_id, &l.label));
    }
    let mut tallies: BTreeMap<i64, Tally> = BTreeMap::new();
    for l in &labels {
        let t = tallies.entry(l.user_id).or_default();
        t.labels += 1;
        if let Some(ms) = l.time_taken_ms.filter(|&ms| ms > 0) {
            t.times_ms.push(ms);
        }
        if l.stage == "test" {
            if let Some(p) = predicted.get(&l.item_id) {
                t.model_compared += 1;
                t.model_agree += u64::from(*p == l.label);
            }
        }
        for (other, label) in by_item.get(&l.item_id).into_iter().flatten() {
            if *other != l.user_id {
                t.peer_compared += 1;
                t.peer_agree += u64::from(*label == l.label);
            }
        }
    }
    let rate = |agree: u64, n: u64| (n > 0).then(|| agree as f64 / n as f64);
    let mut out = Vec::with_capacity(tallies.len());
    for (user_id, mut t) in tallies {
        t.times_ms.sort_unstable();
        let median = (!t.times_ms.is_empty()).then(|| t.times_ms[t.times_ms.len() / 2] as f64 / 1000.0);
        out.push(json!({
            "user_id": user_id,
            "name": state.user_name(user_id).await?,
            "labels": t.labels,
            "median_seconds_per_label": median,
            "model_agreement": rate(t.model_agree, t.model_compared),
            "model_compared": t.model_compared,
            "peer_agreement": rate(t.peer_agree, t.peer_compared),
            "peer_compared": t.peer_compared,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "labellers": out })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/projects", web::post().to(create))
        .route("/api/v1/projects/{pid}/files", web::post().to(upload))
        .route("/api/v1/projects/{pid}/ingest", web::post().to(start_ingest))
        .route("/api/v1/projects/{pid}/ingest", web::get().to(ingest_progress))
        .route("/api/v1/projects/{pid}/settings", web::get().to(get_settings))
        .route("/api/v1/projects/{pid}/settings", web::patch().to(patch_settings))
        .route("/api/v1/projects/{pid}/labellers", web::get().to(labellers));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_paths_stay_inside_and_match_the_data_type() {
        for ok in ["a.png", "cats/001.JPG", "deep/er/x.webp"] {
            assert_eq!(check_rel_path(ok, IMAGE_EXTENSIONS), Ok(()), "{ok}");
        }
        for bad in
            ["../x.png", "/etc/x.png", "a/../../x.png", "./x.png", ".hidden/x.png", "a\\..\\x.png", "x.txt", "", "x"]
        {
            assert!(check_rel_path(bad, IMAGE_EXTENSIONS).is_err(), "{bad}");
        }
        assert!(check_rel_path("notes/a.txt", TEXT_EXTENSIONS).is_ok());
        assert!(check_rel_path(&"a/".repeat(300), TEXT_EXTENSIONS).is_err());
    }
}
