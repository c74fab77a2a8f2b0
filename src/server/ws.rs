//! `GET /api/v1/projects/{pid}/events`: the project's events as WebSocket text frames. A stats
//! snapshot goes first; pings every 10 s; a client silent for 30 s is dropped.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::Message;
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use super::access::{entry_access, open_handle};
use super::error::ApiError;
use super::registry::Entry;
use super::AppState;
use crate::auth::roles::Action;
use crate::project::actor::GetStats;
use crate::project::events::Event;

const PING_EVERY: Duration = Duration::from_secs(10);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts a WebSocket as open for as long as its task holds this.
struct OpenSocket(prometheus::IntGauge);

impl OpenSocket {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        OpenSocket(gauge.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn events(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    pid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, entry) = entry_access(&req, &state, &pid, Action::Read).await?;
    let first = first_stats(&req, &state, &entry).await?;
    let (response, mut session, mut incoming) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::BadRequest(format!("WebSocket upgrade failed: {e}")))?;
    let mut rx = entry.events.subscribe();
    let open = OpenSocket::new(&state.metrics.websocket_connections);
    actix_web::rt::spawn(async move {
        let _open = open;
        if let Some(json) = first {
            if session.text(json).await.is_err() {
                return;
            }
        }
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Ok(json) => if session.text(json.to_string()).await.is_err() { break },
                    // Too slow: frames were dropped; the next stats frame brings it up to date.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Ping(bytes))) => {
                        last_heard = Instant::now();
                        if session.pong(&bytes).await.is_err() { break }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > CLIENT_TIMEOUT || session.ping(b"").await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// The stats frame a new socket starts with: from the actor here, or from the process that
/// runs the project (events keep arriving through Redis either way).
async fn first_stats(req: &HttpRequest, state: &AppState, entry: &Entry) -> Result<Option<String>, ApiError> {
    if let Some(owner) = entry.remote_owner() {
        let url = format!("{}/api/v1/projects/{}/stats", owner.trim_end_matches('/'), entry.slug);
        let mut get = state.http.get(url).header(super::forward::FORWARDED, state.forward_token.as_str());
        if let Some(token) = super::access::presented_token(req) {
            get = get.bearer_auth(token);
        }
        let stats: Option<serde_json::Value> = match get.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()),
            _ => None,
        };
        return Ok(stats.map(|stats| serde_json::json!({ "type": "stats", "stats": stats }).to_string()));
    }
    let h = open_handle(entry)?;
    let stats = h.addr.send(GetStats).await.map_err(ApiError::internal)?;
    Ok(serde_json::to_string(&Event::Stats { stats: &stats }).ok())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/projects/{pid}/events", web::get().to(events));
}
