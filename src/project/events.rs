//! A project's event stream: JSON text frames fanned out to every WebSocket subscriber.
//!
//! Alone, a process delivers its actors' events to its own subscribers. With Redis, events go
//! out through a Redis channel per project instead, and every process (this one included)
//! delivers what arrives on the channels to its subscribers (`server::relay`), so a browser
//! connected to any process sees every event of the project.

use serde::Serialize;
use tokio::sync::broadcast;

use super::views::{Accuracy, Stats};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    Stats { stats: &'a Stats },
    TrainingStarted { labels: usize },
    TrainingFinished { model_version: i64, accuracy: Option<&'a Accuracy>, seconds: f64 },
    BatchReady { class: &'a str, size: usize },
}

/// Slow subscribers lose the oldest frames rather than hold the sender back.
const CAPACITY: usize = 256;

/// Where a relayed project's events go: (channel, JSON) pairs for the Redis publisher.
#[derive(Clone)]
pub struct Relay {
    pub channel: String,
    pub tx: tokio::sync::mpsc::UnboundedSender<(String, std::sync::Arc<str>)>,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<std::sync::Arc<str>>,
    relay: Option<Relay>,
}

impl Default for Events {
    fn default() -> Self {
        Events { tx: broadcast::channel(CAPACITY).0, relay: None }
    }
}

impl Events {
    /// Events that travel through Redis (see the module doc).
    pub fn relayed(relay: Relay) -> Self {
        Events { relay: Some(relay), ..Events::default() }
    }

    pub fn publish(&self, event: &Event) {
        if !self.has_listeners() {
            return;
        }
        let json: std::sync::Arc<str> = match serde_json::to_string(event) {
            Ok(json) => json.into(),
            Err(e) => {
                tracing::error!(error = %e, "serialising an event failed");
                return;
            }
        };
        if let Some(relay) = &self.relay {
            if relay.tx.send((relay.channel.clone(), json.clone())).is_ok() {
                return;
            }
            // The publisher is gone: at least this process's subscribers get it.
        }
        self.deliver(json);
    }

    /// Hands a frame to this process's subscribers.
    pub fn deliver(&self, json: std::sync::Arc<str>) {
        let _ = self.tx.send(json);
    }

    /// Whether anyone may be listening: with a relay, subscribers of other processes count.
    pub fn has_listeners(&self) -> bool {
        self.relay.is_some() || self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<str>> {
        self.tx.subscribe()
    }
}
