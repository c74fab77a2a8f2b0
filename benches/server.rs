//! End-to-end server benchmark against the real release binary (`lightbulb serve` as a child
//! process, spoken to over loopback HTTP like the browser app would):
//!
//! 1. start-up on 100,000 items, as one CSV file and as a directory of 100,000 `.txt` files:
//!    process start to the first `/readyz` 200, and the server's own "dataset indexed" figure
//!    (listing + registering the items in the database), first start and restart;
//! 2. latency of one labelling step (`POST labels` + `GET next`) with 8 concurrent labellers,
//!    (a) on the 100,000-row project while the trainer embeds it on the same cores, and (b) on
//!    a small project whose model retrains as the labels arrive;
//! 3. `/score` throughput with 16 concurrent one-text clients, dynamic batching on
//!    (`--score-batch 32`) against off (`--score-batch 1`), same labels and so the same model.
//!
//!     cargo bench --bench server            # BENCH_SECONDS (default 20) per measurement
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a smoke run: 2,000 rows and
//! 2 s per measurement, nothing written. With `--bench` the report also goes to
//! `bench/results/server.md`.
//!
//! A plain `harness = false` main, not criterion: each figure is one long run against a
//! separate process, and the client runs on one thread so that it takes as little as possible
//! of the CPU the server is being measured on.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The review data's classes (rotten-tomatoes `truth-sentiment.csv`).
const CLASSES: [&str; 2] = ["fresh", "rotten"];
const LABELLERS: usize = 8;
/// A brisk labeller's pace: 50-150 ms per item, ten times a person's speed, so 8 of them send
/// about 80 labels a second.
const PACE: Think = Some(0.05..0.15);
const PACE_LABEL: &str = "0.05-0.15 s per label";
const SCORE_CLIENTS: usize = 16;
/// How long a server may take to answer `/readyz`, embed the small project or train.
const PATIENCE: Duration = Duration::from_secs(600);

/// A short review and its truth label.
struct Review {
    text: String,
    label: String,
}

/// The rotten-tomatoes snippets that have a sentiment label (the file also holds long plot
/// synopses, which are not what people label one by one).
fn reviews(assets: &Path) -> Result<Vec<Review>> {
    let data = assets.join("data/rotten_tomatoes");
    let mut truth = HashMap::new();
    for row in csv::Reader::from_path(data.join("truth-sentiment.csv"))?.records() {
        let row = row?;
        truth.insert(row.get(0).unwrap_or_default().to_string(), row.get(1).unwrap_or_default().to_string());
    }
    let mut out = Vec::new();
    for row in csv::Reader::from_path(data.join("reviews.csv"))?.records() {
        let row = row?;
        if let Some(label) = truth.get(row.get(0).unwrap_or_default()) {
            let text = row.get(1).unwrap_or_default().trim().to_string();
            if !text.is_empty() {
                out.push(Review { text, label: label.clone() });
            }
        }
    }
    if out.len() < 100 {
        bail!("only {} labelled reviews under {}: run scripts/setup.sh", out.len(), data.display());
    }
    Ok(out)
}

/// Writes `n` rows `id,text` cycling through the reviews (with the row number appended when
/// `numbered`, so that every text, and every embedding, differs). Returns id -> truth label.
fn write_rows(path: &Path, reviews: &[Review], n: usize, numbered: bool) -> Result<HashMap<String, String>> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["id", "text"])?;
    let mut truth = HashMap::with_capacity(n);
    for i in 0..n {
        let r = &reviews[i % reviews.len()];
        let id = format!("t{i:06}");
        let text = if numbered { format!("{} #{i}", r.text) } else { r.text.clone() };
        w.write_record([id.as_str(), text.as_str()])?;
        truth.insert(id, r.label.clone());
    }
    w.flush()?;
    Ok(truth)
}

/// Writes `n` `.txt` items, 1,000 per folder (`d000/t000000.txt`), as a dataset directory.
fn write_files(root: &Path, reviews: &[Review], n: usize) -> Result<()> {
    for i in 0..n {
        let dir = root.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("t{i:06}.txt")), format!("{} #{i}", reviews[i % reviews.len()].text))?;
    }
    Ok(())
}

/// A project config `<dir>/<name>.yml` (its stem is the project id) with outputs beside it.
/// Paths are absolute: the server resolves relative ones against its working directory.
fn write_config(dir: &Path, name: &str, dataset: &str) -> Result<PathBuf> {
    let out = dir.join(format!("{name}-out"));
    let yaml = format!(
        "task:\n  title: {name}\ndataset:\n{dataset}  data_type: text\n  judgements_file: {}\n\
         label:\n  type: binary\n  classes: [{}]\nmodel:\n  directory: {}\n",
        out.join("labels.csv").display(),
        CLASSES.join(", "),
        out.display(),
    );
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// Fills a project's embedding cache with synthetic vectors (its class's direction plus noise)
/// for every item, so that a server started on it has 100,000 embedded items and trains at
/// once: embedding them with MiniLM would take half an hour on 2 cores, and the labelling and
/// training paths do not depend on what the vectors mean.
fn prefill_embeddings(config: &Path, assets: &Path, truth: &HashMap<String, String>) -> Result<()> {
    let cfg = lightbulb::config::task::load_task(config)?;
    let dataset = lightbulb::data::open(&cfg)?;
    let encoder = lightbulb::ml::encoder::load(cfg.encoder(), assets, tch::Device::Cpu)?;
    let spec = encoder.spec().clone();
    let mut cache = lightbulb::ml::cache::EmbeddingCache::open(&cfg.output_dir().join("embeddings"), &spec)?;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centres: Vec<Vec<f32>> =
        CLASSES.iter().map(|_| (0..spec.dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
    for chunk in dataset.items.chunks(10_000) {
        let entries: Vec<(String, String, Vec<f32>)> = chunk
            .iter()
            .map(|it| {
                let class = CLASSES.iter().position(|c| truth.get(&it.id).is_some_and(|t| t == c)).unwrap_or(0);
                let v = centres[class].iter().map(|c| c * 0.15 + rng.random_range(-1.0f32..1.0)).collect();
                (it.id.clone(), lightbulb::embed::fingerprint(&it.location), v)
            })
            .collect();
        cache.append(&entries)?;
    }
    Ok(())
}

/// A `lightbulb serve` child process, killed when dropped (also when the benchmark panics or
/// fails half-way), so no server outlives the run.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
    spawned: Instant,
}

impl Server {
    fn start(config: &Path, db: &Path, score_batch: usize, assets: &Path) -> Result<Server> {
        Self::start_with(config, db, score_batch, assets, &[])
    }

    /// [`Server::start`] with more command-line arguments (accounts, rate limits).
    fn start_with(config: &Path, db: &Path, score_batch: usize, assets: &Path, extra: &[&str]) -> Result<Server> {
        // The port is free now; a race with another process for it is unlikely on loopback.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = config.with_file_name(format!("server-{port}.log"));
        // A file, not a pipe: nobody has to drain it for the server to keep going.
        let stderr = std::fs::File::create(&log)?;
        let spawned = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_lightbulb"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--score-batch")
            .arg(score_batch.to_string())
            .arg("--assets")
            .arg(assets)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting the lightbulb binary")?;
        Ok(Server { child, base: format!("http://127.0.0.1:{port}"), log, spawned })
    }

    /// Time from spawning the process to its first `/readyz` 200 (the server binds only after
    /// listing the dataset and registering its items, so connections are refused until then).
    async fn ready(&mut self, client: &reqwest::Client) -> Result<Duration> {
        let url = format!("{}/readyz", self.base);
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(self.spawned.elapsed());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if self.spawned.elapsed() > PATIENCE {
                bail!("the server was not ready after {PATIENCE:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn log_text(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        strip_ansi(&raw)
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The `seconds=` of the server's "dataset indexed" log line: listing the dataset plus
    /// registering its items in the database.
    fn indexed_seconds(&self) -> Option<f64> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("dataset indexed"))?;
        let rest = &line[line.find("seconds=")? + "seconds=".len()..];
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-')).unwrap_or(rest.len());
        rest[..end].parse().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log lines without terminal colour codes (in case the subscriber ignores NO_COLOR).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte (@ to ~).
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- 4. Hosted mode: accounts, API keys -------------------------------------------------------

const KEY_CLIENTS: usize = 32;
const ACCOUNT_LABELLERS: usize = 50;
const SIGNING_KEY: &str = "bench:0123456789abcdef0123456789abcdef0123";

async fn with_bearer(req: reqwest::RequestBuilder, token: &str, body: Option<&Value>) -> Result<Value> {
    let mut req = req.header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(serde_json::to_vec(b)?);
    }
    call(req).await
}

/// Signs up the first owner of the organisation that owns the configured projects (`local`,
/// the default `--org`, under which the earlier runs stored the labels); returns the access
/// token.
async fn owner_token(client: &reqwest::Client, base: &str) -> Result<String> {
    let body = json!({ "organisation": "local", "email": "owner@bench.test", "name": "owner", "password": "bench owner password" });
    let req = client.post(format!("{base}/api/v1/auth/signup")).header("content-type", "application/json");
    let v = call(req.body(serde_json::to_vec(&body)?)).await?;
    Ok(v["access_token"].as_str().unwrap_or_default().to_string())
}

struct LoadReport {
    name: String,
    clients: usize,
    lat: Latencies,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    note: String,
}

/// `/score` with an API key from 32 concurrent clients (one review per request).
async fn keyed_scoring(
    client: &reqwest::Client,
    setup: &SmallProject<'_>,
    texts: &[String],
    seconds: f64,
) -> Result<LoadReport> {
    let extra = ["--jwt-key", SIGNING_KEY, "--api-key-rate", "1000000"];
    let mut server = Server::start_with(setup.config, setup.db, 32, setup.assets, &extra)?;
    server.ready(client).await?;
    let owner = owner_token(client, &server.base).await?;
    let project = format!("{}/api/v1/projects/{}", server.base, setup.pid);
    let key = with_bearer(
        client.post(format!("{project}/api-keys")),
        &owner,
        Some(&json!({ "name": "bench", "scopes": ["score"] })),
    )
    .await?;
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let url = format!("{project}/score");
    let waited = Instant::now();
    while with_bearer(client.post(&url), &key, Some(&json!({ "texts": [texts[0]] }))).await.is_err() {
        if waited.elapsed() > PATIENCE {
            bail!("/score with a key still failing after {PATIENCE:?}:\n{}", server.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let clients = (0..KEY_CLIENTS).map(|c| score_client(client, &url, texts, c * 97, deadline, Some(&key)));
    let results = join_all(clients).await;
    let wall = start.elapsed();
    let (all, errors, first_error) = merge_runs(results);
    Ok(LoadReport {
        name: format!("`/score` with an API key, {KEY_CLIENTS} clients"),
        clients: KEY_CLIENTS,
        lat: Latencies::new(all),
        wall,
        errors,
        first_error,
        note: "dynamic batching on (32)".into(),
    })
}

/// 50 labellers, each with their own account, label one project flat out; every item leased
/// is recorded, and no item may have been handed to two of them.
async fn fifty_labellers(
    client: &reqwest::Client,
    config: &Path,
    db: &Path,
    no_assets: &Path,
    pid: &str,
    truth: &HashMap<String, String>,
    seconds: f64,
) -> Result<LoadReport> {
    let extra = ["--jwt-key", SIGNING_KEY];
    let mut server = Server::start_with(config, db, 32, no_assets, &extra)?;
    server.ready(client).await?;
    let owner = owner_token(client, &server.base).await?;
    let mut tokens = Vec::with_capacity(ACCOUNT_LABELLERS);
    for k in 0..ACCOUNT_LABELLERS {
        let member = json!({ "email": format!("l{k}@bench.test"), "name": format!("labeller-{k}"), "password": "bench labeller password", "role": "labeller" });
        with_bearer(client.post(format!("{}/api/v1/members", server.base)), &owner, Some(&member)).await?;
        let login = json!({ "email": format!("l{k}@bench.test"), "password": "bench labeller password" });
        let req = client.post(format!("{}/api/v1/auth/login", server.base)).header("content-type", "application/json");
        let v = call(req.body(serde_json::to_vec(&login)?)).await?;
        tokens.push(v["access_token"].as_str().unwrap_or_default().to_string());
    }
    let project = format!("{}/api/v1/projects/{pid}", server.base);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let runs = tokens.iter().map(|token| {
        let project = &project;
        async move {
            let next = || async {
                let v = with_bearer(client.get(format!("{project}/next?count=1")), token, None).await?;
                Ok::<_, anyhow::Error>(v["items"].get(0).map(|it| {
                    (it["id"].as_i64().unwrap_or_default(), it["path"].as_str().unwrap_or_default().to_string())
                }))
            };
            let (mut lat, mut leased, mut errors, mut first_error) = (Vec::new(), Vec::new(), 0usize, None);
            let mut item: Option<(i64, String)> = None;
            // When the last label was sent: the pair is timed up to the next item's arrival.
            let mut sent: Option<Instant> = None;
            while Instant::now() < deadline {
                let Some((id, path)) = item.take() else {
                    match next().await {
                        Ok(Some(it)) => {
                            if let Some(t) = sent.take() {
                                lat.push(t.elapsed());
                            }
                            leased.push(it.0);
                            item = Some(it);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                    continue;
                };
                let label = truth.get(&path).map_or(CLASSES[0], String::as_str);
                let started = Instant::now();
                let body = json!({ "item_id": id, "label": label, "time_taken_ms": 1 });
                match with_bearer(client.post(format!("{project}/labels")), token, Some(&body)).await {
                    Ok(_) => sent = Some(started),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (lat, leased, errors, first_error)
        }
    });
    let results = join_all(runs).await;
    let wall = start.elapsed();
    let mut holder: HashMap<i64, usize> = HashMap::new();
    let (mut all, mut errors, mut first_error, mut duplicates, mut leased_total) = (Vec::new(), 0, None, 0, 0);
    for (k, (lat, leased, e, first)) in results.into_iter().enumerate() {
        all.extend(lat);
        errors += e;
        first_error = first_error.or(first);
        leased_total += leased.len();
        for id in leased {
            if holder.insert(id, k).is_some_and(|other| other != k) {
                duplicates += 1;
            }
        }
    }
    Ok(LoadReport {
        name: format!("label + next, {ACCOUNT_LABELLERS} labellers with accounts"),
        clients: ACCOUNT_LABELLERS,
        lat: Latencies::new(all),
        wall,
        errors,
        first_error,
        note: format!("{leased_total} leases, {duplicates} items leased to two labellers"),
    })
}

fn load_table(out: &mut String, rows: &[LoadReport]) -> std::fmt::Result {
    writeln!(out, "| run | clients | requests | req/s | p50 ms | p99 ms | max ms | errors | notes |")?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
            r.name,
            r.clients,
            r.lat.0.len(),
            r.lat.0.len() as f64 / r.wall.as_secs_f64(),
            r.lat.ms(50.0),
            r.lat.ms(99.0),
            r.lat.ms(100.0),
            r.errors,
            r.note
        )?;
    }
    for r in rows.iter().filter(|r| r.first_error.is_some()) {
        writeln!(out, "\n{}: first error: {}", r.name, r.first_error.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

// ---- HTTP -----------------------------------------------------------------------------------

/// reqwest is built without its `json` feature here: bodies are (de)serialised by hand.
async fn call(req: reqwest::RequestBuilder) -> Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Value> {
    call(client.get(url)).await
}

async fn post(client: &reqwest::Client, url: &str, user: Option<&str>, body: &Value) -> Result<Value> {
    let mut req = client.post(url).header("content-type", "application/json").body(serde_json::to_vec(body)?);
    if let Some(u) = user {
        req = req.header("X-Lightbulb-User", u);
    }
    call(req).await
}

/// Leases the caller's next item: (id, path), or `None` when nothing is left.
async fn next_item(client: &reqwest::Client, project: &str, user: &str) -> Result<Option<(i64, String)>> {
    let v = call(client.get(format!("{project}/next?count=1")).header("X-Lightbulb-User", user)).await?;
    Ok(v["items"]
        .get(0)
        .map(|it| (it["id"].as_i64().unwrap_or_default(), it["path"].as_str().unwrap_or_default().to_string())))
}

async fn stats(client: &reqwest::Client, project: &str) -> Result<Value> {
    get(client, &format!("{project}/stats")).await
}

/// Polls stats until `done` holds (the trainer finished embedding, a model exists, ...).
async fn wait_stats(
    client: &reqwest::Client,
    project: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let start = Instant::now();
    loop {
        let s = stats(client, project).await?;
        if let Some(e) = s.get("embedding_error").and_then(Value::as_str) {
            bail!("embedding failed: {e}");
        }
        if done(&s) {
            return Ok(s);
        }
        if start.elapsed() > PATIENCE {
            bail!("gave up waiting for {what} after {PATIENCE:?}; last stats: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn embedded(s: &Value) -> bool {
    let e = &s["embedding"];
    e["total"].as_u64().is_some_and(|t| e["done"].as_u64() == Some(t))
}

fn training(s: &Value) -> bool {
    s["training"].as_bool().unwrap_or(false)
}

fn model_version(s: &Value) -> i64 {
    s["model_version"].as_i64().unwrap_or(0)
}

fn embedding_done(s: &Value) -> u64 {
    s["embedding"]["done"].as_u64().unwrap_or(0)
}

// ---- Measurements ---------------------------------------------------------------------------

/// Latencies in a sortable form, with the percentiles the report prints.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut all: Vec<Duration>) -> Self {
        all.sort_unstable();
        Latencies(all)
    }

    /// Nearest-rank percentile, in milliseconds.
    fn ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// What one labeller did in a run.
struct LabellerRun {
    pairs: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    exhausted: bool,
    /// When it stopped (before the deadline if it ran out of items).
    ended: Instant,
}

impl LabellerRun {
    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| format!("{e:#}"));
    }
}

/// How long a labeller looks at an item before labelling it, in seconds: `None` labels at
/// once (the server's worst case), a range draws uniformly from it (a person's pace, which
/// leaves the gaps between labels the trainer's debounce waits for).
type Think = Option<std::ops::Range<f64>>;

/// One labeller: lease an item (not timed: it also creates the labeller's account), then until
/// the deadline time each step a person makes, submit the label and fetch the next item.
async fn labeller(
    client: &reqwest::Client,
    project: &str,
    k: usize,
    truth: &HashMap<String, String>,
    think: Think,
    deadline: Instant,
) -> LabellerRun {
    let user = format!("bench-{k}");
    let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
    let mut run =
        LabellerRun { pairs: Vec::new(), errors: 0, first_error: None, exhausted: false, ended: Instant::now() };
    let mut item: Option<(i64, String)> = None;
    while Instant::now() < deadline {
        let Some((id, path)) = item.take() else {
            match next_item(client, project, &user).await {
                Ok(Some(it)) => item = Some(it),
                Ok(None) => {
                    run.exhausted = true;
                    break;
                }
                Err(e) => {
                    run.error(&e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            continue;
        };
        let looked = think.clone().map_or(0.0, |range| rng.random_range(range));
        if looked > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(looked)).await;
        }
        let label = truth.get(&path).map_or(CLASSES[0], String::as_str);
        let body = json!({ "item_id": id, "label": label, "time_taken_ms": (looked * 1000.0) as i64 + 1 });
        let started = Instant::now();
        if let Err(e) = post(client, &format!("{project}/labels"), Some(&user), &body).await {
            run.error(&e);
            continue;
        }
        match next_item(client, project, &user).await {
            Ok(Some(it)) => {
                run.pairs.push(started.elapsed());
                item = Some(it);
            }
            Ok(None) => {
                run.pairs.push(started.elapsed());
                run.exhausted = true;
                break;
            }
            Err(e) => run.error(&e),
        }
    }
    run.ended = Instant::now();
    run
}

/// Stats seen while labellers ran: how often a training started (rising edges of `training`;
/// a fit shorter than the poll interval can be missed, the model version delta cannot).
struct StatsTrace {
    training_starts: usize,
    samples: usize,
    training_samples: usize,
}

/// Samples stats every `every` until `stop` is set (when the labellers are done).
async fn trace_stats(client: &reqwest::Client, project: &str, every: Duration, stop: &Cell<bool>) -> StatsTrace {
    let mut trace = StatsTrace { training_starts: 0, samples: 0, training_samples: 0 };
    let mut was_training = false;
    while !stop.get() {
        if let Ok(s) = stats(client, project).await {
            let now = training(&s);
            trace.samples += 1;
            trace.training_samples += usize::from(now);
            trace.training_starts += usize::from(now && !was_training);
            was_training = now;
        }
        tokio::time::sleep(every).await;
    }
    trace
}

struct LabelReport {
    name: String,
    items: u64,
    lat: Latencies,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    exhausted: usize,
    before: Value,
    after: Value,
    trace: StatsTrace,
}

async fn label_run(
    client: &reqwest::Client,
    project: &str,
    name: &str,
    truth: &HashMap<String, String>,
    think: Think,
    seconds: f64,
    poll: Duration,
) -> Result<LabelReport> {
    let before = stats(client, project).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    // One thread runs both futures: a plain Cell tells the stats sampler to stop.
    let stop = Cell::new(false);
    let runs = async {
        let runs = join_all((0..LABELLERS).map(|k| labeller(client, project, k, truth, think.clone(), deadline))).await;
        stop.set(true);
        runs
    };
    let (runs, trace) = tokio::join!(runs, trace_stats(client, project, poll, &stop));
    let after = stats(client, project).await?;
    // Up to the last labeller's stop: they may all run out of items before the deadline.
    let wall = runs.iter().map(|r| r.ended).max().unwrap_or(start) - start;
    let mut all = Vec::new();
    let (mut errors, mut exhausted, mut first_error) = (0, 0, None);
    for r in runs {
        all.extend(r.pairs);
        errors += r.errors;
        exhausted += usize::from(r.exhausted);
        first_error = first_error.or(r.first_error);
    }
    Ok(LabelReport {
        name: name.to_string(),
        items: before["counts"]["total"].as_u64().unwrap_or(0),
        lat: Latencies::new(all),
        wall,
        errors,
        first_error,
        exhausted,
        before,
        after,
        trace,
    })
}

/// One scoring client: a single review per request, back to back until the deadline.
/// One scoring client until the deadline: one review per request, with an API key when given.
async fn score_client(
    client: &reqwest::Client,
    url: &str,
    texts: &[String],
    first: usize,
    deadline: Instant,
    key: Option<&str>,
) -> (Vec<Duration>, usize, Option<String>) {
    let (mut lat, mut errors, mut first_error) = (Vec::new(), 0, None);
    let mut k = first;
    while Instant::now() < deadline {
        let body = json!({ "texts": [texts[k % texts.len()]] });
        k += 1;
        let started = Instant::now();
        let sent = match key {
            Some(key) => with_bearer(client.post(url), key, Some(&body)).await,
            None => post(client, url, None, &body).await,
        };
        match sent {
            Ok(_) => lat.push(started.elapsed()),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    (lat, errors, first_error)
}

/// All clients' latencies, their error count and the first error.
fn merge_runs(results: Vec<(Vec<Duration>, usize, Option<String>)>) -> (Vec<Duration>, usize, Option<String>) {
    let (mut all, mut errors, mut first_error) = (Vec::new(), 0, None);
    for (lat, e, first) in results {
        all.extend(lat);
        errors += e;
        first_error = first_error.or(first);
    }
    (all, errors, first_error)
}

struct ScoreReport {
    batch: usize,
    lat: Latencies,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    model_version: i64,
    train_labels: u64,
}

impl ScoreReport {
    fn rate(&self) -> f64 {
        self.lat.0.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Restarts the small project with `--score-batch batch` on the labels of run (b), waits for
/// the model its start-up retraining makes (same labels, deterministic fit: the same model for
/// both settings), then runs the scoring clients.
async fn score_run(
    client: &reqwest::Client,
    setup: &SmallProject<'_>,
    batch: usize,
    texts: &[String],
    seconds: f64,
) -> Result<ScoreReport> {
    let mut server = Server::start(setup.config, setup.db, batch, setup.assets)?;
    server.ready(client).await?;
    let project = format!("{}/api/v1/projects/{}", server.base, setup.pid);
    let url = format!("{project}/score");
    // Wait for a score to succeed: this keeps the scorer's encoder loading out of the timing.
    let waited = Instant::now();
    while post(client, &url, None, &json!({ "texts": [texts[0]] })).await.is_err() {
        if waited.elapsed() > PATIENCE {
            bail!("/score still failing after {PATIENCE:?}:\n{}", server.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = wait_stats(client, &project, "the start-up retraining", |s| embedded(s) && !training(s)).await?;
    for t in texts.iter().take(4) {
        post(client, &url, None, &json!({ "texts": [t] })).await?;
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let clients = (0..SCORE_CLIENTS).map(|c| score_client(client, &url, texts, c * 97, deadline, None));
    let results = join_all(clients).await;
    let wall = start.elapsed();
    let (all, errors, first_error) = merge_runs(results);
    Ok(ScoreReport {
        batch,
        lat: Latencies::new(all),
        wall,
        errors,
        first_error,
        model_version: model_version(&s),
        train_labels: s["counts"]["train"].as_u64().unwrap_or(0),
    })
}

struct SmallProject<'a> {
    config: &'a Path,
    db: &'a Path,
    assets: &'a Path,
    pid: &'a str,
}

struct StartupRow {
    dataset: String,
    start: &'static str,
    ready: Duration,
    indexed: Option<f64>,
}

/// Starts a server on `config`, returns its start-up figures and the server (still running).
async fn start_timed(
    client: &reqwest::Client,
    config: &Path,
    db: &Path,
    assets: &Path,
    dataset: &str,
    start: &'static str,
) -> Result<(StartupRow, Server)> {
    let mut server = Server::start(config, db, 32, assets)?;
    let ready = server.ready(client).await?;
    let row = StartupRow { dataset: dataset.to_string(), start, ready, indexed: server.indexed_seconds() };
    Ok((row, server))
}

// ---- Report ---------------------------------------------------------------------------------

/// 100000 -> "100,000".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "?".into(), |v| format!("{v:.digits$}"))
}

fn startup_table(out: &mut String, rows: &[StartupRow]) -> std::fmt::Result {
    writeln!(out, "| dataset | start | process start → `/readyz` 200 (s) | \"dataset indexed\" (s) |")?;
    writeln!(out, "|---|---|---:|---:|")?;
    for r in rows {
        writeln!(out, "| {} | {} | {:.2} | {} |", r.dataset, r.start, r.ready.as_secs_f64(), fmt_opt(r.indexed, 2))?;
    }
    Ok(())
}

fn label_table(out: &mut String, rows: &[LabelReport]) -> std::fmt::Result {
    writeln!(
        out,
        "| run | items | pairs | pairs/s | p50 ms | p90 ms | p99 ms | max ms | errors | embedded during run | \
         model_version Δ | training starts seen |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")?;
    for r in rows {
        let n = r.lat.0.len();
        let total = r.before["embedding"]["total"].as_u64().unwrap_or(0);
        let embed = if r.after["embedding_error"].is_string() {
            "none (no encoder)".to_string()
        } else {
            format!("{} → {} of {total}", embedding_done(&r.before), embedding_done(&r.after))
        };
        writeln!(
            out,
            "| {} | {} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {embed} | {} | {} |",
            r.name,
            grouped(r.items),
            n as f64 / r.wall.as_secs_f64(),
            r.lat.ms(50.0),
            r.lat.ms(90.0),
            r.lat.ms(99.0),
            r.lat.ms(100.0),
            r.errors,
            model_version(&r.after) - model_version(&r.before),
            r.trace.training_starts,
        )?;
    }
    for r in rows {
        writeln!(
            out,
            "\n{}: {:.1} s measured; labels {} → {}; `training` true in {} of {} stats samples{}{}.",
            r.name,
            r.wall.as_secs_f64(),
            r.before["counts"]["labelled"],
            r.after["counts"]["labelled"],
            r.trace.training_samples,
            r.trace.samples,
            if r.exhausted > 0 { format!("; {} labellers ran out of items", r.exhausted) } else { String::new() },
            r.first_error.as_ref().map(|e| format!("; first error: {e}")).unwrap_or_default(),
        )?;
    }
    Ok(())
}

fn score_table(out: &mut String, rows: &[ScoreReport]) -> std::fmt::Result {
    writeln!(
        out,
        "| `--score-batch` | requests | req/s | p50 ms | p99 ms | max ms | errors | model_version | train labels |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            r.batch,
            r.lat.0.len(),
            r.rate(),
            r.lat.ms(50.0),
            r.lat.ms(99.0),
            r.lat.ms(100.0),
            r.errors,
            r.model_version,
            r.train_labels,
        )?;
    }
    if let [batched, single] = rows {
        writeln!(out, "\nDynamic batching / one at a time: {:.2}x requests/s.", batched.rate() / single.rate())?;
    }
    for r in rows.iter().filter(|r| r.errors > 0) {
        writeln!(out, "\n`--score-batch {}` first error: {}", r.batch, r.first_error.as_deref().unwrap_or("?"))?;
    }
    Ok(())
}

// ---- Main -----------------------------------------------------------------------------------

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run at small
    // sizes proves the path works without minutes of measuring.
    let measuring = std::env::args().any(|a| a == "--bench");
    let seconds: f64 =
        std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(if measuring { 20.0 } else { 2.0 });
    let big = if measuring { 100_000 } else { 2_000 };
    // The small project is embedded before its runs: keep that short in the smoke run.
    let small = if measuring { 2_000 } else { 500 };
    // Current-thread runtime: the client's CPU use stays on one core and is small.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = rt.block_on(run(big, small, seconds))?;
    println!("{report}");
    if measuring {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/server.md");
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}

async fn run(big: usize, small: usize, seconds: f64) -> Result<String> {
    let assets = std::fs::canonicalize(lightbulb::assets::default_dir())?;
    let reviews = reviews(&assets)?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;

    eprintln!("generating {big} rows and {big} files under {}", dir.display());
    let rows_csv = dir.join("rows.csv");
    let big_truth = write_rows(&rows_csv, &reviews, big, true)?;
    let files_dir = dir.join("files");
    write_files(&files_dir, &reviews, big)?;
    let small_csv = dir.join("small.csv");
    let small_truth = write_rows(&small_csv, &reviews, small, false)?;
    let rows_cfg =
        write_config(dir, "rows", &format!("  file: {}\n  text_column: text\n  id_column: id\n", rows_csv.display()))?;
    let files_cfg = write_config(dir, "files", &format!("  directory: {}\n", files_dir.display()))?;
    let small_cfg = write_config(
        dir,
        "small",
        &format!("  file: {}\n  text_column: text\n  id_column: id\n", small_csv.display()),
    )?;

    let (big_n, small_n) = (grouped(big as u64), grouped(small as u64));
    // 1. Start-up. Each dataset gets its own database; the restart finds every item in it.
    let mut startup = Vec::new();
    let files_label = format!("directory of {big_n} `.txt` files (1,000 per folder)");
    let files_db = dir.join("files.sqlite");
    for start in ["first (empty database)", "restart (items registered)"] {
        eprintln!("start-up: files, {start}");
        let (row, server) = start_timed(&client, &files_cfg, &files_db, &assets, &files_label, start).await?;
        startup.push(row);
        drop(server);
    }
    // 2a. A control first, before any server embeds: the same rows with no encoder to load
    // (the trainer fails at once and stays idle), so the run shows the cost of the labelling
    // path alone at this size. Its own database: the rows' first start below stays first.
    let mut labelling = Vec::new();
    {
        let no_assets = dir.join("no-assets");
        let mut control = Server::start(&rows_cfg, &dir.join("control.sqlite"), 32, &no_assets)?;
        control.ready(&client).await?;
        let project = format!("{}/api/v1/projects/rows", control.base);
        eprintln!("labelling (a0): {big} items, no trainer, {seconds} s");
        let name = format!("(a0) {big_n} items, trainer idle (control: no encoder)");
        labelling.push(label_run(&client, &project, &name, &big_truth, None, seconds, Duration::from_secs(1)).await?);
        eprintln!("labelling (a0p): {big} items, no trainer, paced, {seconds} s");
        let name = format!("(a0p) {big_n} items, trainer idle, {PACE_LABEL}");
        labelling.push(label_run(&client, &project, &name, &big_truth, PACE, seconds, Duration::from_secs(1)).await?);
    }

    let rows_label = format!("one CSV file, {big_n} rows");
    let rows_db = dir.join("rows.sqlite");
    eprintln!("start-up: rows, first");
    let (row, server) =
        start_timed(&client, &rows_cfg, &rows_db, &assets, &rows_label, "first (empty database)").await?;
    startup.push(row);

    // That server goes on to embed its rows (minutes for 100,000 texts on 2 cores): label
    // against it meanwhile.
    let project = format!("{}/api/v1/projects/rows", server.base);
    // Let the trainer get past loading its encoder, so the run overlaps actual encoding.
    wait_stats(&client, &project, "embedding to start", |s| embedding_done(s) > 0 || embedded(s)).await?;
    eprintln!("labelling (a): {big} items while embedding, {seconds} s");
    let name = format!("(a) {big_n} items, trainer embedding");
    let poll = Duration::from_secs(1);
    labelling.push(label_run(&client, &project, &name, &big_truth, None, seconds, poll).await?);
    eprintln!("labelling (ap): {big} items while embedding, paced, {seconds} s");
    let name = format!("(ap) {big_n} items, trainer embedding, {PACE_LABEL}");
    labelling.push(label_run(&client, &project, &name, &big_truth, PACE, seconds, poll).await?);
    drop(server);
    eprintln!("start-up: rows, restart");
    let (row, server) =
        start_timed(&client, &rows_cfg, &rows_db, &assets, &rows_label, "restart (items registered)").await?;
    startup.push(row);
    drop(server);

    // 2c. The same 100,000 rows already embedded (synthetic vectors): every fit re-scores and
    // re-ranks the whole pool while the labellers go on.
    {
        let synth_cfg = write_config(
            dir,
            "synth",
            &format!("  file: {}\n  text_column: text\n  id_column: id\n", rows_csv.display()),
        )?;
        eprintln!("writing synthetic embeddings for {big} rows");
        prefill_embeddings(&synth_cfg, &assets, &big_truth)?;
        let mut server = Server::start(&synth_cfg, &dir.join("synth.sqlite"), 32, &assets)?;
        server.ready(&client).await?;
        let project = format!("{}/api/v1/projects/synth", server.base);
        wait_stats(&client, &project, "the synthetic embeddings to load", |s| embedded(s) && !training(s)).await?;
        eprintln!("labelling (c): {big} items embedded, retraining, paced, {seconds} s");
        let name = format!("(c) {big_n} items embedded, retraining, {PACE_LABEL}");
        let poll = Duration::from_millis(50);
        labelling.push(label_run(&client, &project, &name, &big_truth, PACE, seconds, poll).await?);
        eprintln!("labelling (c'): flat out");
        let name = format!("(c') {big_n} items embedded, retraining, no pause");
        labelling.push(label_run(&client, &project, &name, &big_truth, None, seconds, poll).await?);
    }

    // 2b. A small project, embedded, retraining as labels arrive.
    let small_db = dir.join("small.sqlite");
    let mut server = Server::start(&small_cfg, &small_db, 32, &assets)?;
    server.ready(&client).await?;
    let project = format!("{}/api/v1/projects/small", server.base);
    eprintln!("waiting for the small project to be embedded");
    wait_stats(&client, &project, "the small project's embedding", |s| embedded(s) && !training(s)).await?;
    // At a person's pace first: the trainer's debounce needs pauses between labels to start a
    // fit. Then flat out on the items left (they run out within seconds at that rate).
    let poll = Duration::from_millis(50);
    eprintln!("labelling (b): {small} items, retraining, {seconds} s at a person's pace");
    let name = format!("(b) {small_n} items, retraining, 0.5-2.5 s per label");
    labelling.push(label_run(&client, &project, &name, &small_truth, Some(0.5..2.5), seconds, poll).await?);
    eprintln!("labelling (b): flat out");
    let name = format!("(b') {small_n} items, retraining, no pause");
    labelling.push(label_run(&client, &project, &name, &small_truth, None, seconds, poll).await?);
    drop(server);

    // 3. Scoring, batched and not, on (b)'s labels.
    let texts: Vec<String> = reviews.iter().skip(small).take(512).map(|r| r.text.clone()).collect();
    let setup = SmallProject { config: &small_cfg, db: &small_db, assets: &assets, pid: "small" };
    let mut scoring = Vec::new();
    for batch in [32, 1] {
        eprintln!("scoring with --score-batch {batch}, {seconds} s");
        scoring.push(score_run(&client, &setup, batch, &texts, seconds).await?);
    }

    // 4. Hosted mode: the same model scored with an API key by 32 clients, and 50 labellers
    // with their own accounts on the big rows (trainer idle: its own database, no encoder).
    eprintln!("hosted: scoring with an API key, {KEY_CLIENTS} clients, {seconds} s");
    let mut hosted = vec![keyed_scoring(&client, &setup, &texts, seconds).await?];
    eprintln!("hosted: {ACCOUNT_LABELLERS} labellers, {seconds} s");
    let hosted_db = dir.join("hosted.sqlite");
    hosted.push(
        fifty_labellers(&client, &rows_cfg, &hosted_db, &dir.join("no-assets"), "rows", &big_truth, seconds).await?,
    );

    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    writeln!(out, "# Server benchmark (`cargo bench --bench server`)\n")?;
    writeln!(
        out,
        "Release binary as a child process on loopback, {cores} cores shared by server and client, \
         SQLite (WAL, synchronous=FULL), {seconds} s per measurement. Texts: rotten-tomatoes \
         review snippets (the big dataset appends the row number to each).\n"
    )?;
    writeln!(out, "## 1. Start-up with {big_n} items\n")?;
    writeln!(
        out,
        "\"dataset indexed\" is the server's own log figure: listing the dataset plus registering \
         its items in the database. The rest of the start is loading the binary and libtorch, \
         opening the database and starting the project threads.\n"
    )?;
    startup_table(&mut out, &startup)?;
    writeln!(out, "\n## 2. Label + next latency, {LABELLERS} concurrent labellers\n")?;
    writeln!(
        out,
        "One pair = `POST /labels` (durable on return) then `GET /next?count=1`, timed together; \
         each labeller has its own `X-Lightbulb-User` and labels with the truth class. \
         (a0) and (a) label flat out on the big CSV project: (a0) with the trainer idle (no \
         encoder to load: a control), (a) while the trainer embeds the rows on the same cores; \
         (a0p) and (ap) are the same at a brisk pace (0.05-0.15 s per label, about 80 labels/s \
         from the 8). Flat out, latency is throughput-bound (8 clients and the server share 2 \
         cores: by Little's law mean latency = 8 / pairs per s); the paced runs show the \
         server's latency under load. (c) and (c') use the same 100,000 rows with synthetic \
         embeddings already cached, so every fit re-scores and re-ranks the whole pool while \
         the labellers go on. \
         (b) waits 0.5-2.5 s before each label like a person (the trainer's 300 ms debounce \
         only starts a fit in a pause between labels); (b') then labels the rest flat out. \
         model_version Δ counts fits that produced a model; training starts are rising edges \
         of stats `training`, sampled every 1 s in (a0)/(a) and 50 ms in (b)/(c).\n"
    )?;
    label_table(&mut out, &labelling)?;
    writeln!(out, "\n## 3. `/score` throughput, {SCORE_CLIENTS} concurrent clients, one review per request\n")?;
    writeln!(
        out,
        "The small project restarted on run (b)'s labels for each setting (same labels, same \
         deterministic fit). Latency is per request, client side.\n"
    )?;
    score_table(&mut out, &scoring)?;
    writeln!(out, "\n## 4. Hosted mode: accounts on (`--jwt-key`)\n")?;
    writeln!(
        out,
        "Scoring: the small project's model (run (b)'s labels), `Authorization: Bearer lb_...` on \
         every request (key lookup, digest check, rate limit in process, last-use update), one \
         review per request. Labelling: {ACCOUNT_LABELLERS} members with the labeller role, each \
         signed in with its own access token (session and role checked on every request), \
         labelling the {big_n}-row project flat out; every item leased is recorded and checked \
         against the other labellers' leases.\n"
    )?;
    load_table(&mut out, &hosted)?;
    Ok(out)
}
