//! Prometheus metrics, served as text at `GET /metrics`. Every name starts with `lightbulb_`.
//! Label values are bounded sets chosen by the server (route templates, methods, status codes,
//! outcomes): never a tenant, project, user or item id, so the number of series stays fixed
//! however many organisations a process serves. docs/METRICS.md lists every metric.
//!
//! One `Metrics` per process, created by the server and handed to whoever records (the HTTP
//! middleware, the project actors, the scorer threads): nothing global, so tests can run
//! several servers in one process.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: 0.5 ms to 10 s (labelling is milliseconds, scoring tenths).
const LATENCY: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Training durations: 10 ms (a small fit) to 10 minutes (embedding a big data set first).
const TRAINING: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0];
/// Items per scoring batch (the scorer's maximum is configurable, 32 by default).
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub labels_submitted: IntCounterVec,
    pub training_runs: IntCounterVec,
    pub training_duration: Histogram,
    pub scoring_requests: IntCounterVec,
    pub scoring_duration: Histogram,
    pub scoring_batch_size: Histogram,
    pub compute_queue_depth: IntGaugeVec,
    pub project_actors: IntGauge,
    pub websocket_connections: IntGauge,
    pub db_pool_connections: IntGaugeVec,
    pub blob_errors: IntCounterVec,
    pub redis_errors: IntCounter,
    /// Requests passed to the process that runs their project, by outcome (`ok`, `error`).
    pub forwarded_requests: IntCounterVec,
    /// Projects whose actor runs in this process.
    pub owned_projects: IntGauge,
}

impl Metrics {
    /// Fails only if a name or label set above is malformed (a programming error).
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let metrics = Metrics {
            http_requests: IntCounterVec::new(
                Opts::new("lightbulb_http_requests_total", "HTTP requests by route template, method and status"),
                &["route", "method", "status"],
            )?,
            http_duration: HistogramVec::new(
                HistogramOpts::new("lightbulb_http_request_duration_seconds", "HTTP request latency")
                    .buckets(LATENCY.to_vec()),
                &["route", "method"],
            )?,
            labels_submitted: IntCounterVec::new(
                Opts::new(
                    "lightbulb_labels_submitted_total",
                    "Labels written, by source (human, confirmed, corrected)",
                ),
                &["source"],
            )?,
            training_runs: IntCounterVec::new(
                Opts::new("lightbulb_training_runs_total", "Training runs finished, by outcome (ok, error)"),
                &["outcome"],
            )?,
            training_duration: Histogram::with_opts(
                HistogramOpts::new("lightbulb_training_duration_seconds", "Duration of one training run")
                    .buckets(TRAINING.to_vec()),
            )?,
            scoring_requests: IntCounterVec::new(
                Opts::new("lightbulb_scoring_requests_total", "Scoring requests, by outcome"),
                &["outcome"],
            )?,
            scoring_duration: Histogram::with_opts(
                HistogramOpts::new("lightbulb_scoring_duration_seconds", "Scoring latency, queue wait included")
                    .buckets(LATENCY.to_vec()),
            )?,
            scoring_batch_size: Histogram::with_opts(
                HistogramOpts::new("lightbulb_scoring_batch_size", "Items the scorer ran through the model at once")
                    .buckets(BATCH.to_vec()),
            )?,
            compute_queue_depth: IntGaugeVec::new(
                Opts::new("lightbulb_compute_queue_depth", "Jobs waiting for a compute thread (scorer, trainer)"),
                &["queue"],
            )?,
            project_actors: IntGauge::new("lightbulb_project_actors", "Project actors running in this process")?,
            websocket_connections: IntGauge::new("lightbulb_websocket_connections", "Open event WebSockets")?,
            db_pool_connections: IntGaugeVec::new(
                Opts::new("lightbulb_db_pool_connections", "Database pool connections, by state (idle, in_use)"),
                &["state"],
            )?,
            blob_errors: IntCounterVec::new(
                Opts::new("lightbulb_blob_store_errors_total", "Failed blob store operations, by backend (local, s3)"),
                &["backend"],
            )?,
            redis_errors: IntCounter::new("lightbulb_redis_errors_total", "Failed Redis operations")?,
            forwarded_requests: IntCounterVec::new(
                Opts::new(
                    "lightbulb_forwarded_requests_total",
                    "Requests forwarded to the process that runs their project, by outcome (ok, error)",
                ),
                &["outcome"],
            )?,
            owned_projects: IntGauge::new("lightbulb_owned_projects", "Projects whose actor runs in this process")?,
            registry,
        };
        metrics.register_all()?;
        Ok(metrics)
    }

    fn register_all(&self) -> prometheus::Result<()> {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_requests.clone()),
            Box::new(self.http_duration.clone()),
            Box::new(self.labels_submitted.clone()),
            Box::new(self.training_runs.clone()),
            Box::new(self.training_duration.clone()),
            Box::new(self.scoring_requests.clone()),
            Box::new(self.scoring_duration.clone()),
            Box::new(self.scoring_batch_size.clone()),
            Box::new(self.compute_queue_depth.clone()),
            Box::new(self.project_actors.clone()),
            Box::new(self.websocket_connections.clone()),
            Box::new(self.db_pool_connections.clone()),
            Box::new(self.blob_errors.clone()),
            Box::new(self.redis_errors.clone()),
            Box::new(self.forwarded_requests.clone()),
            Box::new(self.owned_projects.clone()),
        ];
        for c in collectors {
            self.registry.register(c)?;
        }
        // Series that exist before their first event, so dashboards show 0 rather than nothing.
        for queue in ["scorer", "trainer"] {
            self.compute_queue_depth.with_label_values(&[queue]).set(0);
        }
        for outcome in ["ok", "error"] {
            self.training_runs.with_label_values(&[outcome]).inc_by(0);
        }
        for backend in ["local", "s3"] {
            self.blob_errors.with_label_values(&[backend]).inc_by(0);
        }
        for outcome in ["ok", "error"] {
            self.forwarded_requests.with_label_values(&[outcome]).inc_by(0);
        }
        Ok(())
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_the_prefix() {
        let m = Metrics::new().unwrap();
        m.http_requests.with_label_values(&["/healthz", "GET", "200"]).inc();
        m.http_duration.with_label_values(&["/healthz", "GET"]).observe(0.001);
        m.labels_submitted.with_label_values(&["human"]).inc();
        m.scoring_requests.with_label_values(&["ok"]).inc();
        m.db_pool_connections.with_label_values(&["idle"]).set(1);
        let text = m.render();
        for name in [
            "lightbulb_http_requests_total",
            "lightbulb_http_request_duration_seconds",
            "lightbulb_labels_submitted_total",
            "lightbulb_training_runs_total",
            "lightbulb_training_duration_seconds",
            "lightbulb_scoring_requests_total",
            "lightbulb_scoring_duration_seconds",
            "lightbulb_scoring_batch_size",
            "lightbulb_compute_queue_depth",
            "lightbulb_project_actors",
            "lightbulb_websocket_connections",
            "lightbulb_db_pool_connections",
            "lightbulb_blob_store_errors_total",
            "lightbulb_redis_errors_total",
            "lightbulb_forwarded_requests_total",
            "lightbulb_owned_projects",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing from:\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("lightbulb_"), "{line}");
        }
    }
}
