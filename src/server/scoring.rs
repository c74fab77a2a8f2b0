//! Scoring new data with the project's current model: `POST /api/v1/projects/{pid}/score`
//! (texts, image URLs, base64 images or multipart uploads) and the seed article's `POST /score`
//! for the embedded (first) project. Inputs are fetched/decoded here; encoding and the head
//! run on the project's scorer thread, batched with concurrent requests.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::access::{identify, project_access, visible_entry};
use super::error::ApiError;
use super::fetch::fetch_image;
use super::AppState;
use crate::auth::roles::Action;
use crate::config::task::DataType;
use crate::ml::encoder::EncoderInput;
use crate::project::compute::ScoreError;
use crate::project::ProjectHandle;

/// Inputs per request.
const MAX_INPUTS: usize = 64;
/// Per uploaded or decoded image.
const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScoreIn {
    #[serde(default)]
    texts: Option<Vec<String>>,
    #[serde(default)]
    urls: Option<Vec<String>>,
    #[serde(default)]
    images_base64: Option<Vec<String>>,
}

/// The article's form: `{"type": "images", "urls": [...]}` / `{"type": "text", "texts": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    urls: Option<Vec<String>>,
    #[serde(default)]
    texts: Option<Vec<String>>,
}

fn wants_images(h: &ProjectHandle) -> bool {
    h.cx.config.dataset.data_type == DataType::Images
}

async fn inputs_from(state: &AppState, h: &ProjectHandle, body: ScoreIn) -> Result<Vec<EncoderInput>, ApiError> {
    let given = [body.texts.is_some(), body.urls.is_some(), body.images_base64.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(ApiError::BadRequest("send exactly one of `texts`, `urls`, `images_base64`".into()));
    }
    let n = body.texts.as_ref().or(body.urls.as_ref()).or(body.images_base64.as_ref()).map_or(0, Vec::len);
    if n == 0 || n > MAX_INPUTS {
        return Err(ApiError::BadRequest(format!("send between 1 and {MAX_INPUTS} inputs, got {n}")));
    }
    let images = wants_images(h);
    if let Some(texts) = body.texts {
        if images {
            return Err(ApiError::BadRequest("this project scores images: send `urls` or `images_base64`".into()));
        }
        return Ok(texts.into_iter().map(EncoderInput::Text).collect());
    }
    if !images {
        return Err(ApiError::BadRequest("this project scores text: send `texts`".into()));
    }
    if let Some(urls) = body.urls {
        let fetches = urls.iter().map(|u| fetch_image(&state.fetch, u));
        let fetched = futures_util::future::join_all(fetches).await;
        return fetched
            .into_iter()
            .map(|r| r.map(EncoderInput::Image).map_err(|e| ApiError::Unprocessable(e.to_string())))
            .collect();
    }
    let engine = base64::engine::general_purpose::STANDARD;
    body.images_base64
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            // Accept data URLs as well as bare base64.
            let raw = b64.split_once(";base64,").map_or(b64.as_str(), |(_, d)| d);
            let bytes = engine
                .decode(raw.trim())
                .map_err(|e| ApiError::BadRequest(format!("images_base64[{i}] is not valid base64: {e}")))?;
            if bytes.len() > MAX_IMAGE_BYTES {
                return Err(ApiError::PayloadTooLarge(MAX_IMAGE_BYTES));
            }
            Ok(EncoderInput::Image(bytes))
        })
        .collect()
}

async fn inputs_from_multipart(mut form: Multipart) -> Result<Vec<EncoderInput>, ApiError> {
    let mut out = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(ApiError::PayloadTooLarge(MAX_IMAGE_BYTES));
            }
            bytes.extend_from_slice(&chunk);
        }
        out.push(EncoderInput::Image(bytes));
        if out.len() > MAX_INPUTS {
            return Err(ApiError::BadRequest(format!("send at most {MAX_INPUTS} files")));
        }
    }
    if out.is_empty() {
        return Err(ApiError::BadRequest("the form holds no file".into()));
    }
    Ok(out)
}

/// Scores inputs; an input that cannot be read fails the request with its position and why.
async fn score_inputs(h: &ProjectHandle, inputs: Vec<EncoderInput>) -> Result<Vec<Vec<f32>>, ApiError> {
    let started = std::time::Instant::now();
    let scored = h.scorer.score(inputs).await;
    let m = &h.cx.metrics;
    m.scoring_duration.observe(started.elapsed().as_secs_f64());
    let outcome = match &scored {
        Ok(_) => "ok",
        Err(ScoreError::NotReady) => "not_ready",
        Err(ScoreError::Overloaded) => "overloaded",
        Err(ScoreError::Failed(_)) => "error",
    };
    m.scoring_requests.with_label_values(&[outcome]).inc();
    let rows = scored?;
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|reason| ApiError::Unprocessable(format!("input {i} cannot be scored: {reason}"))))
        .collect()
}

fn predictions(classes: &[String], scores: &[Vec<f32>]) -> Vec<String> {
    scores
        .iter()
        .map(|row| {
            let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(k, _)| k);
            classes[best].clone()
        })
        .collect()
}

async fn score(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, h) = project_access(&req, &state, &pid, Action::Score).await?;
    let h = &h;
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let inputs = if content_type.starts_with("multipart/form-data") {
        if !wants_images(h) {
            return Err(ApiError::BadRequest("this project scores text: send JSON `texts`".into()));
        }
        inputs_from_multipart(Multipart::new(req.headers(), payload)).await?
    } else if content_type.starts_with("application/json") {
        let body = read_json::<ScoreIn>(payload).await?;
        inputs_from(&state, h, body).await?
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "send application/json ({texts|urls|images_base64}) or multipart/form-data".into(),
        ));
    };
    let scores = score_inputs(h, inputs).await?;
    let classes = &h.cx.config.label.classes;
    Ok(HttpResponse::Ok().json(json!({
        "labels": classes, "predictions": predictions(classes, &scores), "scores": scores,
    })))
}

/// Reads a JSON body with the server's size limit and clear errors.
async fn read_json<T: serde::de::DeserializeOwned>(mut payload: web::Payload) -> Result<T, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if body.len() + chunk.len() > super::JSON_LIMIT {
            return Err(ApiError::PayloadTooLarge(super::JSON_LIMIT));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// The article's form, for the caller's first project (in embedded mode: the first config).
async fn article_score(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ArticleIn>,
) -> Result<HttpResponse, ApiError> {
    let who = identify(&req, &state).await?;
    let h = state
        .projects
        .of_org(who.org.org_id)
        .iter()
        .filter_map(|e| visible_entry(&state, &who, &e.slug).ok())
        .find_map(|e| e.handle().cloned())
        .ok_or_else(|| ApiError::NotFound("no project".into()))?;
    let h = &h;
    who.check(Action::Score)?;
    let body = body.into_inner();
    let input = match body.kind.as_str() {
        "images" => ScoreIn { urls: body.urls, ..Default::default() },
        "text" => ScoreIn { texts: body.texts, ..Default::default() },
        other => return Err(ApiError::BadRequest(format!("type must be `images` or `text`, got `{other}`"))),
    };
    let inputs = inputs_from(&state, h, input).await?;
    let scores = score_inputs(h, inputs).await?;
    Ok(HttpResponse::Ok().json(json!({ "labels": h.cx.config.label.classes, "scores": scores })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/projects/{pid}/score", web::post().to(score)).route("/score", web::post().to(article_score));
}
