//! Projects, labelling, batches, stats, browsing, export and health.

use std::collections::{BTreeMap, HashSet};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{entry_access, identify, project_access, Grant};
use super::error::ApiError;
use super::registry::Entry;
use super::AppState;
use crate::auth::roles::Action;
use crate::config::task::DataType;
use crate::data::Content;
use crate::project::actor::{
    Browse, CommitLabels, CommitUndo, FinishBatch, GetStats, ItemById, LastLabel, Next, PlanBatch, PlanLabels, Skip,
    TakeBatch,
};
use crate::project::views::BrowseFilter;
use crate::project::ProjectHandle;
use crate::store::judgements::JudgementRow;
use crate::store::{LabelSource, NewLabel};

type Res = Result<HttpResponse, ApiError>;

/// The labeller: `X-Lightbulb-User` (embedded mode has no accounts) or the config's `user`.
pub async fn caller(req: &HttpRequest, state: &AppState) -> Result<(i64, String), ApiError> {
    let name = match req.headers().get("X-Lightbulb-User") {
        Some(v) => {
            let name = v.to_str().map_err(|_| ApiError::BadRequest("X-Lightbulb-User is not valid text".into()))?;
            let ok = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
            if !ok {
                return Err(ApiError::BadRequest(
                    "X-Lightbulb-User must be 1-64 characters of letters, digits, '-', '_', '.', '@'".into(),
                ));
            }
            name.to_string()
        }
        None => state.default_user.clone(),
    };
    Ok((state.user_id(&name).await?, name))
}

fn content_url(pid: &str, item_id: i64) -> String {
    format!("/api/v1/projects/{pid}/items/{item_id}/content")
}

/// Reads a text or JSON item's content (for images the client follows `content_url`).
async fn inline_content(h: &ProjectHandle, index: usize) -> (Option<String>, Option<Value>) {
    let dataset = h.cx.dataset.clone();
    let data_type = dataset.data_type;
    if data_type == DataType::Images {
        return (None, None);
    }
    let read = web::block(move || match data_type {
        DataType::Json => (None, dataset.read_json(index).ok()),
        _ => match dataset.read(index) {
            Ok(Content::Text(t)) => (Some(t), None),
            _ => (None, None),
        },
    })
    .await;
    read.unwrap_or((None, None))
}

pub(super) fn project_json(entry: &Entry) -> Value {
    let c = &entry.config;
    let settings = entry.settings();
    let mut shortcuts = BTreeMap::new();
    for (i, class) in c.label.classes.iter().enumerate() {
        if i < 9 {
            shortcuts.entry(((i + 1) % 10).to_string()).or_insert_with(|| class.clone());
        }
        if let Some(first) = class.chars().next().map(|ch| ch.to_ascii_lowercase()) {
            if first.is_ascii_alphabetic() {
                shortcuts.entry(first.to_string()).or_insert_with(|| class.clone());
            }
        }
    }
    // Single-character class names (digits) are their own key.
    for class in &c.label.classes {
        if class.chars().count() == 1 {
            shortcuts.insert(class.to_lowercase(), class.clone());
        }
    }
    json!({
        "id": entry.slug,
        "title": settings.title,
        "description": settings.description,
        "template": c.task.template,
        "data_type": c.dataset.data_type.name(),
        "classes": c.label.classes,
        "shortcuts": shortcuts,
        "auto_label_threshold": settings.auto_label_threshold,
        "encoder": c.encoder(),
        "strategy": settings.strategy.name(),
        "items": entry.handle().map(|h| h.cx.item_ids.len()),
        "status": entry.shown_status(),
        "source": entry.source,
    })
}

/// The projects the caller can see: those of their organisation (an API key: its project).
async fn projects(req: HttpRequest, state: web::Data<AppState>) -> Res {
    let who = identify(&req, &state).await?;
    who.check(Action::Read)?;
    let list: Vec<Value> = state
        .projects
        .of_org(who.org.org_id)
        .iter()
        .filter(|e| match who.grant {
            Grant::Key { project_id, .. } => project_id == e.scope.project_id,
            Grant::Role { .. } => true,
        })
        .map(|e| project_json(e))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "projects": list })))
}

async fn project(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (_, entry) = entry_access(&req, &state, &pid, Action::Read).await?;
    Ok(HttpResponse::Ok().json(project_json(&entry)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NextQuery {
    count: Option<usize>,
}

async fn next(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>, q: web::Query<NextQuery>) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let count = q.count.unwrap_or(5);
    if !(1..=50).contains(&count) {
        return Err(ApiError::BadRequest(format!("count must be between 1 and 50, got {count}")));
    }
    let user_id = who.user_id;
    let leased = h.addr.send(Next { user_id, count }).await?;
    let done = leased.is_empty();
    let mut items = Vec::with_capacity(leased.len());
    for it in leased {
        let (text, data) = inline_content(&h, it.index).await;
        items.push(json!({
            "id": it.id,
            "path": it.key,
            "content_url": content_url(&pid, it.id),
            "text": text,
            "data": data,
            "stage": it.stage,
            "prediction": it.prediction,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "items": items, "done": done })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelIn {
    item_id: i64,
    label: String,
    #[serde(default)]
    time_taken_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelsIn {
    Batch { labels: Vec<LabelIn> },
    One(LabelIn),
}

/// Checks with the actor, writes durably, then tells the actor: the client hears "accepted"
/// only once the labels are in the database.
async fn write_labels(
    state: &AppState,
    h: &ProjectHandle,
    user_id: i64,
    user_name: &str,
    labels: Vec<(i64, String, Option<i64>)>,
    source: LabelSource,
) -> Result<usize, ApiError> {
    let plans = h
        .addr
        .send(PlanLabels { user_id, labels: labels.iter().map(|(id, l, _)| (*id, l.clone())).collect() })
        .await??;
    let rows: Vec<NewLabel> = plans
        .iter()
        .zip(&labels)
        .map(|(plan, (id, label, ms))| NewLabel {
            item_id: *id,
            user_id,
            label: label.clone(),
            stage: plan.stage.as_str(),
            source,
            time_taken_ms: *ms,
        })
        .collect();
    let stored = state.store.put_labels(h.cx.scope, &rows).await?;
    state.metrics.labels_submitted.with_label_values(&[source.as_str()]).inc_by(stored.len() as u64);
    let commits = plans.into_iter().zip(stored).map(|(p, s)| (p, s.id, s.time_taken_ms)).collect();
    let total = h
        .addr
        .send(CommitLabels {
            user_id,
            user_name: user_name.to_string(),
            labels: commits,
            from_batch: source != LabelSource::Human,
        })
        .await?;
    Ok(total)
}

async fn post_labels(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    body: web::Json<LabelsIn>,
) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let (user_id, user_name) = (who.user_id, who.name.clone());
    let labels = match body.into_inner() {
        LabelsIn::Batch { labels } => labels,
        LabelsIn::One(l) => vec![l],
    };
    if labels.is_empty() || labels.len() > 1000 {
        return Err(ApiError::BadRequest("send between 1 and 1000 labels".into()));
    }
    let mut seen = HashSet::new();
    for l in &labels {
        if !seen.insert(l.item_id) {
            return Err(ApiError::BadRequest(format!("item {} appears twice in one request", l.item_id)));
        }
        if l.time_taken_ms.is_some_and(|ms| ms < 0) {
            return Err(ApiError::BadRequest("time_taken_ms cannot be negative".into()));
        }
    }
    let n = labels.len();
    let labels = labels.into_iter().map(|l| (l.item_id, l.label, l.time_taken_ms)).collect();
    let total = write_labels(&state, &h, user_id, &user_name, labels, LabelSource::Human).await?;
    Ok(HttpResponse::Ok().json(json!({ "accepted": n, "labelled": total })))
}

async fn undo(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let user_id = who.user_id;
    let Some((label_id, index)) = h.addr.send(LastLabel { user_id }).await? else {
        return Err(ApiError::NotFound("you have no label to undo".into()));
    };
    if !state.store.undo_label(h.cx.scope, label_id).await? {
        return Err(ApiError::NotFound("that label was already replaced or undone".into()));
    }
    let Some((item_id, path, label)) = h.addr.send(CommitUndo { user_id, label_id, index }).await? else {
        return Err(ApiError::NotFound("that label was already replaced or undone".into()));
    };
    Ok(HttpResponse::Ok().json(json!({ "item_id": item_id, "path": path, "label": label })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipIn {
    item_id: i64,
}

async fn skip(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>, body: web::Json<SkipIn>) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let user_id = who.user_id;
    h.addr.send(Skip { user_id, item_id: body.item_id }).await??;
    Ok(HttpResponse::Ok().json(json!({ "skipped": body.item_id })))
}

async fn content(req: HttpRequest, state: web::Data<AppState>, path: web::Path<(String, i64)>) -> Res {
    let (pid, item_id) = path.into_inner();
    let (_, h) = project_access(&req, &state, &pid, Action::Read).await?;
    let Some((index, key)) = h.addr.send(ItemById { item_id }).await? else {
        return Err(ApiError::NotFound(format!("item {item_id} does not exist in this project")));
    };
    let unreadable = |e: crate::data::DataError| ApiError::Unprocessable(format!("item {item_id} cannot be read: {e}"));
    let dataset = h.cx.dataset.clone();
    if dataset.data_type == DataType::Json {
        // JSON items are served whole, not as the text the encoder reads from them.
        let v = web::block(move || dataset.read_json(index)).await.map_err(ApiError::internal)?;
        return Ok(HttpResponse::Ok().json(v.map_err(unreadable)?));
    }
    match web::block(move || dataset.read(index)).await.map_err(ApiError::internal)?.map_err(unreadable)? {
        Content::Image(bytes) => {
            let mime = mime_guess::from_path(&key).first_or_octet_stream();
            Ok(HttpResponse::Ok()
                .content_type(mime.as_ref())
                .insert_header(("Cache-Control", "private, max-age=3600"))
                .body(bytes))
        }
        Content::Text(text) => Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(text)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchQuery {
    size: Option<usize>,
}

async fn next_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    q: web::Query<BatchQuery>,
) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let size = q.size.unwrap_or(50);
    if !(1..=200).contains(&size) {
        return Err(ApiError::BadRequest(format!("size must be between 1 and 200, got {size}")));
    }
    let user_id = who.user_id;
    let Some(batch) = h.addr.send(TakeBatch { user_id, size }).await? else {
        return Ok(HttpResponse::Ok().json(json!({ "batch": null })));
    };
    let mut items = Vec::with_capacity(batch.items.len());
    for (index, id, key, p) in batch.items {
        let (text, data) = inline_content(&h, index).await;
        items.push(json!({
            "id": id, "path": key, "content_url": content_url(&pid, id),
            "text": text, "data": data, "probability": p,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "batch": { "id": batch.id, "class": batch.class, "items": items } })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmIn {
    #[serde(default)]
    rejected: Vec<i64>,
    #[serde(default)]
    corrections: BTreeMap<String, String>,
}

async fn confirm_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<ConfirmIn>,
) -> Res {
    let (pid, bid) = path.into_inner();
    let (who, h) = project_access(&req, &state, &pid, Action::Label).await?;
    let (user_id, user_name) = (who.user_id, who.name.clone());
    let body = body.into_inner();
    let classes = &h.cx.config.label.classes;
    let mut corrections = BTreeMap::new();
    for (id, class) in &body.corrections {
        let id: i64 =
            id.parse().map_err(|_| ApiError::BadRequest(format!("correction key `{id}` is not an item id")))?;
        let k = classes
            .iter()
            .position(|c| c == class)
            .ok_or_else(|| ApiError::UnknownClass(format!("`{class}` is not one of the project's classes")))?;
        corrections.insert(id, k);
    }
    let Some(batch) = h.addr.send(FinishBatch { user_id, batch_id: bid.clone() }).await? else {
        return Err(ApiError::NotFound(format!("batch `{bid}` is not open for you (expired or already confirmed)")));
    };
    let ids: Vec<i64> = batch.items.iter().map(|&(i, _)| h.cx.item_ids[i]).collect();
    for id in body.rejected.iter().chain(corrections.keys()) {
        if !ids.contains(id) {
            return Err(ApiError::BadRequest(format!("item {id} is not in batch `{bid}`")));
        }
    }
    let rejected: HashSet<i64> = body.rejected.iter().copied().collect();
    let mut confirmed = Vec::new();
    let mut corrected = Vec::new();
    for (&(index, _), &id) in batch.items.iter().zip(&ids) {
        if let Some(&k) = corrections.get(&id) {
            corrected.push((index, k));
        } else if !rejected.contains(&id) {
            confirmed.push((index, batch.class));
        }
    }
    let (n_confirmed, n_corrected) = (confirmed.len(), corrected.len());
    for (labels, source) in [(confirmed, LabelSource::Confirmed), (corrected, LabelSource::Corrected)] {
        if labels.is_empty() {
            continue;
        }
        let plans = h.addr.send(PlanBatch { user_id, labels: labels.clone() }).await??;
        let rows: Vec<(i64, String, Option<i64>)> =
            plans.iter().map(|p| (h.cx.item_ids[p.index], classes[p.class].clone(), None)).collect();
        write_labels(&state, &h, user_id, &user_name, rows, source).await?;
    }
    Ok(HttpResponse::Ok().json(json!({
        "confirmed": n_confirmed, "corrected": n_corrected, "rejected": rejected.len(),
    })))
}

async fn stats(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (_, h) = project_access(&req, &state, &pid, Action::Read).await?;
    Ok(HttpResponse::Ok().json(h.addr.send(GetStats).await?))
}

async fn items(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    q: web::Query<BrowseFilter>,
) -> Res {
    let (_, h) = project_access(&req, &state, &pid, Action::Read).await?;
    let filter = q.into_inner();
    if let Some(s) = filter.status.as_deref() {
        if !["all", "labelled", "unlabelled", "test", "model_labelled"].contains(&s) {
            return Err(ApiError::BadRequest(format!(
                "status must be all, labelled, unlabelled, test or model_labelled; got `{s}`"
            )));
        }
    }
    for (what, class) in [("label", &filter.label), ("predicted", &filter.predicted)] {
        if let Some(c) = class {
            if !h.cx.config.label.classes.contains(c) {
                return Err(ApiError::UnknownClass(format!("{what}: `{c}` is not one of the project's classes")));
            }
        }
    }
    // Text items: the query searches their content too (on a blocking thread).
    let text_hits = match (filter.q.clone().filter(|q| !q.is_empty()), h.cx.dataset.data_type) {
        (Some(q), DataType::Text | DataType::Json) => {
            let dataset = h.cx.dataset.clone();
            let q = q.to_lowercase();
            Some(
                web::block(move || {
                    (0..dataset.len())
                        .filter(|&i| {
                            dataset.items[i].id.to_lowercase().contains(&q)
                                || matches!(dataset.read(i), Ok(Content::Text(t)) if t.to_lowercase().contains(&q))
                        })
                        .collect::<HashSet<usize>>()
                })
                .await
                .map_err(ApiError::internal)?,
            )
        }
        _ => None,
    };
    let page = h.addr.send(Browse { filter, text_hits }).await?;
    let names = state.store.member_names(state.org).await?;
    let mut rows = Vec::with_capacity(page.rows.len());
    for r in page.rows {
        let (text, _) = inline_content(&h, r.index).await;
        rows.push(json!({
            "id": r.id, "path": r.key, "content_url": content_url(&pid, r.id), "text": text,
            "label": r.label, "labelled_by": r.labelled_by.and_then(|u| names.get(&u).cloned()),
            "stage": r.stage, "predicted": r.predicted, "confidence": r.confidence,
        }));
    }
    Ok(HttpResponse::Ok()
        .json(json!({ "total": page.total, "page": page.page, "per_page": page.per_page, "items": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
}

async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    q: web::Query<ExportQuery>,
) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Export).await?;
    state.store.audit(who.org, Some(who.user_id), "export", &format!("labels of {pid}")).await?;
    let format = q.format.as_deref().unwrap_or("csv");
    if !["csv", "jsonl"].contains(&format) {
        return Err(ApiError::BadRequest(format!("format must be csv or jsonl, got `{format}`")));
    }
    let labels = state.store.live_labels(h.cx.scope).await?;
    let names = state.store.member_names(state.org).await?;
    let key_of: std::collections::HashMap<i64, &str> =
        h.cx.item_ids.iter().zip(&h.cx.dataset.items).map(|(&id, it)| (id, it.id.as_str())).collect();
    let body = if format == "csv" {
        let by: Vec<String> = labels.iter().map(|l| names.get(&l.user_id).cloned().unwrap_or_default()).collect();
        let rows: Vec<JudgementRow> = labels
            .iter()
            .zip(&by)
            .map(|(l, by)| JudgementRow {
                path: key_of.get(&l.item_id).copied().unwrap_or_default(),
                label: &l.label,
                labelled_by: by,
                time_taken_ms: l.time_taken_ms,
                stage: &l.stage,
                created_at: l.created_at,
            })
            .collect();
        crate::store::judgements::encode(true, &rows).map_err(ApiError::internal)?
    } else {
        let mut body = Vec::new();
        for l in &labels {
            let row = json!({
                "path": key_of.get(&l.item_id), "label": l.label, "labelled_by": names.get(&l.user_id),
                "time_taken_ms": l.time_taken_ms, "stage": l.stage, "source": l.source.as_str(), "created_at": l.created_at,
            });
            body.extend_from_slice(row.to_string().as_bytes());
            body.push(b'\n');
        }
        body
    };
    let (mime, ext) = if format == "csv" { ("text/csv", "csv") } else { ("application/x-ndjson", "jsonl") };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{pid}-labels.{ext}\"")))
        .body(body))
}

async fn model(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    let (who, h) = project_access(&req, &state, &pid, Action::Export).await?;
    state.store.audit(who.org, Some(who.user_id), "export", &format!("model of {pid}")).await?;
    let Some(m) = state.store.latest_model(h.cx.scope).await? else {
        return Err(ApiError::NotFound("no model has been trained yet".into()));
    };
    let blobs = h.cx.blobs.clone();
    let key = m.blob_key.clone();
    let tar = web::block(move || -> anyhow::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for name in [crate::ml::model_io::MODEL_FILE, crate::ml::model_io::WEIGHTS_FILE] {
            let bytes = blobs.get(&format!("{key}/{name}"))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, bytes.as_slice())?;
        }
        Ok(builder.into_inner()?)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{pid}-model-v{}.tar\"", m.version)))
        .body(tar))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> Res {
    if !state.is_ready() {
        return Err(ApiError::NotReady("starting".into()));
    }
    state.store.ping().await.map_err(|e| ApiError::NotReady(format!("database: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
}

/// Prometheus text format. Pool gauges are read at scrape time.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (open, idle) = state.store.pool_connections();
    let m = &state.metrics;
    m.db_pool_connections.with_label_values(&["idle"]).set(idle as i64);
    m.db_pool_connections.with_label_values(&["in_use"]).set(open as i64 - idle as i64);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(m.render())
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

/// The OpenAPI document; a test checks that it names every route registered here.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/v1/openapi.json", web::get().to(openapi))
        .route("/api/v1/projects", web::get().to(projects))
        .route("/api/v1/projects/{pid}", web::get().to(project))
        .route("/api/v1/projects/{pid}/next", web::get().to(next))
        .route("/api/v1/projects/{pid}/labels", web::post().to(post_labels))
        .route("/api/v1/projects/{pid}/labels/undo", web::post().to(undo))
        .route("/api/v1/projects/{pid}/skip", web::post().to(skip))
        .route("/api/v1/projects/{pid}/items", web::get().to(items))
        .route("/api/v1/projects/{pid}/items/{iid}/content", web::get().to(content))
        .route("/api/v1/projects/{pid}/batches/next", web::get().to(next_batch))
        .route("/api/v1/projects/{pid}/batches/{bid}/confirm", web::post().to(confirm_batch))
        .route("/api/v1/projects/{pid}/stats", web::get().to(stats))
        .route("/api/v1/projects/{pid}/export", web::get().to(export))
        .route("/api/v1/projects/{pid}/model", web::get().to(model));
}
