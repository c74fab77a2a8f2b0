//! Forwarding: a request for a project that another process runs is passed to that process
//! (ARCHITECTURE.md, "Which process runs a project's actor"), so a load balancer may send any
//! request anywhere. Bodies and answers are streamed, not buffered.
//!
//! Only `/api/v1/projects/{pid}/…` routes that need the actor are forwarded; the WebSocket
//! stays local (events arrive through Redis from the owner). A forwarded request carries the
//! deployment's forwarding token, so the owner neither forwards it again nor counts it twice
//! against an API key's rate limit.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use super::error::ApiError;
use super::AppState;

/// Header carrying the deployment's forwarding token on forwarded requests.
pub const FORWARDED: &str = "x-lightbulb-forwarded";

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
const NOT_COPIED: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"];

/// The project id of a path that may need forwarding.
fn project_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/projects/")?;
    let (pid, tail) = rest.split_once('/').unwrap_or((rest, ""));
    // The WebSocket is served by every process from the relayed event stream.
    (!pid.is_empty() && tail != "events").then_some(pid)
}

/// Whether the request came from another process of this deployment.
pub fn is_forwarded(state: &AppState, headers: &actix_web::http::header::HeaderMap) -> bool {
    headers.get(FORWARDED).and_then(|v| v.to_str().ok()).is_some_and(|v| crate::auth::same(v, &state.forward_token))
}

pub async fn forward(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let target = match project_of(req.path()) {
        Some(pid) if state.projects.any_remote(pid) && !is_forwarded(&state, req.headers()) => {
            owner_for(&state, &req, pid).await
        }
        _ => Ok(None),
    };
    let owner = match target {
        Ok(Some(owner)) => owner,
        Ok(None) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Err(e) => {
            let response = actix_web::ResponseError::error_response(&e);
            return Ok(req.into_response(response));
        }
    };
    let (http, payload) = req.into_parts();
    let response = match proxy(&state, &http, payload, &owner).await {
        Ok(response) => {
            state.metrics.forwarded_requests.with_label_values(&["ok"]).inc();
            response
        }
        Err(e) => {
            state.metrics.forwarded_requests.with_label_values(&["error"]).inc();
            actix_web::ResponseError::error_response(&e)
        }
    };
    Ok(ServiceResponse::new(http, response))
}

/// The owner's URL when the caller's project `pid` is run elsewhere. The caller is only
/// resolved to an organisation here: the owner checks everything again.
async fn owner_for(state: &AppState, req: &ServiceRequest, pid: &str) -> Result<Option<String>, ApiError> {
    let Some(org) = super::access::caller_org(req.request(), state).await? else { return Ok(None) };
    Ok(state.projects.get(org, pid).and_then(|e| e.remote_owner()))
}

async fn proxy(
    state: &AppState,
    req: &actix_web::HttpRequest,
    mut payload: actix_web::dev::Payload,
    owner: &str,
) -> Result<HttpResponse, ApiError> {
    let url = format!("{}{}", owner.trim_end_matches('/'), req.uri().path_and_query().map_or("", |p| p.as_str()));
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(ApiError::internal)?;
    // actix's payload lives on this worker's thread; a channel hands its chunks to the client.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let mut out = state.http.request(method, &url).body(body).header(FORWARDED, state.forward_token.as_str());
    for (name, value) in req.headers() {
        if !NOT_COPIED.contains(&name.as_str()) && name.as_str() != FORWARDED {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = out.send().await.map_err(|e| {
        ApiError::NotReady(format!("the process running this project ({owner}) did not answer: {e}; retry shortly"))
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(ApiError::internal)?;
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !NOT_COPIED.contains(&name.as_str()) {
            response.insert_header((name.as_str(), value.as_bytes()));
        }
    }
    let stream = answer.bytes_stream().map(|chunk| chunk.map_err(|e| actix_web::error::ErrorBadGateway(e.to_string())));
    Ok(response.streaming(stream))
}

/// A `Stream` over a Tokio receiver (what `tokio-stream`'s wrapper does, without the crate).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_project_routes_but_the_websocket_are_forwarded() {
        assert_eq!(project_of("/api/v1/projects/digits/next"), Some("digits"));
        assert_eq!(project_of("/api/v1/projects/digits"), Some("digits"));
        assert_eq!(project_of("/api/v1/projects/digits/events"), None);
        assert_eq!(project_of("/api/v1/projects"), None);
        assert_eq!(project_of("/api/v1/projects/"), None);
        assert_eq!(project_of("/api/v1/members"), None);
    }
}
