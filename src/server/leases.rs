//! Item leases in Redis (`project::leases::LeaseMirror`): one hash per project,
//! `lightbulb:<deployment>:leases:<project id>`, field = item id, value =
//! `<user id>:<expires ms>:<train|test>`. Writes go through one task per process on the shared
//! connection, in order; the hash expires a while after its last write so an idle project
//! leaves nothing behind.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::project::leases::{HeldLease, LeaseMirror};

/// How long a project's lease hash outlives its last write, seconds (leases last minutes).
const HASH_TTL_S: i64 = 3600;

enum Op {
    Held(String, Vec<HeldLease>),
    Released(String, Vec<i64>),
}

/// The process's writer of lease hashes.
pub struct RedisLeases {
    prefix: String,
    tx: mpsc::UnboundedSender<Op>,
    conn: redis::aio::ConnectionManager,
}

impl RedisLeases {
    pub fn start(conn: redis::aio::ConnectionManager, deployment: &str, metrics: Arc<Metrics>) -> RedisLeases {
        let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
        let mut writer = conn.clone();
        tokio::spawn(async move {
            while let Some(op) = rx.recv().await {
                let mut pipe = redis::pipe();
                match &op {
                    Op::Held(key, leases) => {
                        for l in leases {
                            let value =
                                format!("{}:{}:{}", l.user_id, l.expires, if l.test { "test" } else { "train" });
                            pipe.hset(key, l.item_id, value).ignore();
                        }
                        pipe.expire(key, HASH_TTL_S).ignore();
                    }
                    Op::Released(key, items) => {
                        pipe.hdel(key, items).ignore();
                    }
                }
                let written: redis::RedisResult<()> = pipe.query_async(&mut writer).await;
                if let Err(e) = written {
                    metrics.redis_errors.inc();
                    tracing::warn!(error = %e, "writing item leases to Redis failed");
                }
            }
        });
        RedisLeases { prefix: format!("lightbulb:{deployment}:leases:"), tx, conn }
    }

    /// The mirror of one project's leases.
    pub fn for_project(self: &Arc<Self>, project_id: i64) -> Arc<dyn LeaseMirror> {
        Arc::new(ProjectLeases { key: format!("{}{project_id}", self.prefix), leases: self.clone() })
    }
}

struct ProjectLeases {
    key: String,
    leases: Arc<RedisLeases>,
}

/// A stored value back into a lease (None for anything malformed).
fn parse(item: &str, value: &str) -> Option<HeldLease> {
    let mut parts = value.split(':');
    let user_id = parts.next()?.parse().ok()?;
    let expires = parts.next()?.parse().ok()?;
    let test = match parts.next()? {
        "test" => true,
        "train" => false,
        _ => return None,
    };
    Some(HeldLease { item_id: item.parse().ok()?, user_id, expires, test })
}

impl LeaseMirror for ProjectLeases {
    fn held(&self, leases: Vec<HeldLease>) {
        if !leases.is_empty() {
            let _ = self.leases.tx.send(Op::Held(self.key.clone(), leases));
        }
    }

    fn released(&self, item_ids: Vec<i64>) {
        if !item_ids.is_empty() {
            let _ = self.leases.tx.send(Op::Released(self.key.clone(), item_ids));
        }
    }

    fn load(&self) -> BoxFuture<'static, Result<Vec<HeldLease>, String>> {
        let mut conn = self.leases.conn.clone();
        let key = self.key.clone();
        Box::pin(async move {
            let all: std::collections::HashMap<String, String> =
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.map_err(|e| e.to_string())?;
            Ok(all.iter().filter_map(|(item, value)| parse(item, value)).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip_and_junk_is_ignored() {
        let l = parse("42", "7:1700000000000:test").unwrap();
        assert_eq!(l, HeldLease { item_id: 42, user_id: 7, expires: 1_700_000_000_000, test: true });
        assert!(parse("42", "7:1700000000000:maybe").is_none());
        assert!(parse("x", "7:1:train").is_none());
        assert!(parse("42", "7").is_none());
    }
}
