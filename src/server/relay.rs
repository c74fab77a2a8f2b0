//! Project events through Redis pub/sub, for several server processes: a publisher task sends
//! each project's events to the channel `lightbulb:<deployment>:events:<project id>`, and a
//! subscriber task hands whatever arrives on this deployment's channels to the local
//! subscribers of that project. The deployment id (stored in the database) keeps deployments
//! that share a Redis apart. Lost connections are retried every second; meanwhile events are
//! counted in `lightbulb_redis_errors_total` and dropped (the next stats frame catches up).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::project::events::{Events, Relay};

pub struct EventRelay {
    prefix: String,
    tx: mpsc::UnboundedSender<(String, Arc<str>)>,
    /// This process's projects, by id: where events arriving from Redis go. Projects created
    /// while the server runs are added as they open.
    local: Arc<std::sync::RwLock<HashMap<i64, Events>>>,
}

impl EventRelay {
    /// Starts the publisher task on `conn`.
    pub fn start(mut conn: redis::aio::ConnectionManager, deployment: &str, metrics: Arc<Metrics>) -> EventRelay {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, Arc<str>)>();
        tokio::spawn(async move {
            while let Some((channel, json)) = rx.recv().await {
                let sent: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(&channel).arg(&*json).query_async(&mut conn).await;
                if let Err(e) = sent {
                    metrics.redis_errors.inc();
                    tracing::warn!(error = %e, "publishing an event to Redis failed");
                }
            }
        });
        EventRelay { prefix: format!("lightbulb:{deployment}:events:"), tx, local: Default::default() }
    }

    /// The relay of one project's events.
    pub fn for_project(&self, project_id: i64) -> Relay {
        Relay { channel: format!("{}{project_id}", self.prefix), tx: self.tx.clone() }
    }

    /// Starts the subscriber task: frames on this deployment's channels go to the local
    /// subscribers of the project (`events` by project id).
    /// Events of project `id` arriving from Redis go to `events` from now on.
    pub fn register(&self, id: i64, events: Events) {
        if let Ok(mut local) = self.local.write() {
            local.insert(id, events);
        }
    }

    pub fn subscribe(&self, client: redis::Client, metrics: Arc<Metrics>) {
        let prefix = self.prefix.clone();
        let local = self.local.clone();
        tokio::spawn(async move {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if let Err(e) = pubsub.psubscribe(format!("{prefix}*")).await {
                            metrics.redis_errors.inc();
                            tracing::warn!(error = %e, "subscribing to Redis failed");
                        } else {
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let channel = msg.get_channel_name().to_string();
                                let project = channel.strip_prefix(&prefix).and_then(|id| id.parse::<i64>().ok());
                                let (Some(project), Ok(json)) = (project, msg.get_payload::<String>()) else {
                                    continue;
                                };
                                let events = local.read().ok().and_then(|l| l.get(&project).cloned());
                                if let Some(ev) = events {
                                    ev.deliver(json.into());
                                }
                            }
                        }
                    }
                    Err(e) => {
                        metrics.redis_errors.inc();
                        tracing::warn!(error = %e, "connecting to Redis for events failed");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
