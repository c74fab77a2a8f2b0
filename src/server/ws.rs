//! `GET /api/v1/projects/{pid}/events`: the project's events as WebSocket text frames. A stats
//! snapshot goes first; pings every 10 s; a client silent for 30 s is dropped.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::Message;
use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use super::access::project_access;
use super::error::ApiError;
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
    let (_, h) = project_access(&req, &state, &pid, Action::Read).await?;
    let h = h.clone();
    let (response, mut session, mut incoming) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::BadRequest(format!("WebSocket upgrade failed: {e}")))?;
    let mut rx = h.cx.events.subscribe();
    let open = OpenSocket::new(&state.metrics.websocket_connections);
    actix_web::rt::spawn(async move {
        let _open = open;
        if let Ok(stats) = h.addr.send(GetStats).await {
            if let Ok(json) = serde_json::to_string(&Event::Stats { stats: &stats }) {
                if session.text(json).await.is_err() {
                    return;
                }
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/projects/{pid}/events", web::get().to(events));
}
