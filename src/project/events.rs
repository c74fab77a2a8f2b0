//! A project's event stream: JSON text frames fanned out to every WebSocket subscriber of this
//! process (the next issue puts Redis behind the same interface for several processes).

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

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<std::sync::Arc<str>>,
}

impl Default for Events {
    fn default() -> Self {
        Events { tx: broadcast::channel(CAPACITY).0 }
    }
}

impl Events {
    pub fn publish(&self, event: &Event) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(event) {
            Ok(json) => {
                let _ = self.tx.send(json.into());
            }
            Err(e) => tracing::error!(error = %e, "serialising an event failed"),
        }
    }

    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<str>> {
        self.tx.subscribe()
    }
}
