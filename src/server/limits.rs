//! Rate limits per API key: a fixed one-minute window, counted in Redis when configured (so
//! every server process shares the count) and in process memory otherwise (embedded mode,
//! one process). Over the limit: 429 with `Retry-After` (the seconds left in the window).
//!
//! If Redis fails the request is let through (and `lightbulb_redis_errors_total` counts it):
//! scoring clients should not go down with the cache.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::metrics::Metrics;

const WINDOW_S: u64 = 60;

pub enum RateLimiter {
    Local(Mutex<HashMap<String, (u64, u32)>>),
    Redis(redis::aio::ConnectionManager),
}

impl RateLimiter {
    pub fn local() -> Self {
        RateLimiter::Local(Mutex::new(HashMap::new()))
    }

    /// Counts one request of the key `id` (its public prefix); `Err(seconds)` when it is over
    /// `per_minute` in the current window.
    pub async fn hit(&self, id: &str, per_minute: u32, metrics: &Metrics) -> Result<(), u64> {
        let now = crate::store::now_ms() as u64 / 1000;
        let window = now / WINDOW_S;
        let retry_after = WINDOW_S - now % WINDOW_S;
        let count = match self {
            RateLimiter::Local(map) => {
                let Ok(mut map) = map.lock() else { return Ok(()) };
                // Old windows go away: the map stays as small as the set of active keys.
                map.retain(|_, (w, _)| *w == window);
                let entry = map.entry(id.to_string()).or_insert((window, 0));
                entry.1 += 1;
                entry.1
            }
            RateLimiter::Redis(conn) => {
                let key = format!("lightbulb:ratelimit:{id}:{window}");
                let mut conn = conn.clone();
                let counted: redis::RedisResult<(u32,)> = redis::pipe()
                    .atomic()
                    .incr(&key, 1u32)
                    .expire(&key, (WINDOW_S * 2) as i64)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                match counted {
                    Ok((n,)) => n,
                    Err(e) => {
                        metrics.redis_errors.inc();
                        tracing::warn!(error = %e, "rate limit check failed; letting the request through");
                        return Ok(());
                    }
                }
            }
        };
        if count > per_minute {
            Err(retry_after)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_limiter_counts_per_key() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let metrics = Metrics::new().unwrap();
        let limiter = RateLimiter::local();
        rt.block_on(async {
            for _ in 0..3 {
                assert!(limiter.hit("a", 3, &metrics).await.is_ok());
            }
            let retry = limiter.hit("a", 3, &metrics).await.unwrap_err();
            assert!((1..=60).contains(&retry));
            assert!(limiter.hit("b", 3, &metrics).await.is_ok(), "keys are counted apart");
        });
    }
}
