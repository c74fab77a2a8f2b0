//! The `lightbulb` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lightbulb::config::task::HeadChoice;
use lightbulb::config::{load_task, TaskConfig};
use lightbulb::ml::head::{HeadKind, HeadParams};
use lightbulb::ml::strategy::StrategyKind;
use lightbulb::simulate::{self, SimulateOptions};

#[derive(Parser)]
#[command(name = "lightbulb", version, about = "Label data, learn as labels arrive, pick what to label next")]
struct Cli {
    /// Directory holding `models/` and `data/` fetched by scripts/setup.sh.
    #[arg(long, global = true, env = "LIGHTBULB_ASSETS")]
    assets: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the labelling app and API for one or more task configs.
    Serve(Box<ServeArgs>),
    /// Replay active learning against a truth file and print the learning curve.
    Simulate(SimulateArgs),
    /// Compute and cache the embeddings of a task's dataset.
    Embed {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a task config and exit (non-zero with file:line:column on error).
    Check {
        #[arg(long)]
        config: PathBuf,
    },
}

/// `serve`'s flags. Every one is optional: what is not given comes from the environment
/// (`LIGHTBULB__…`), the `--settings` file or the defaults (server::settings). Names in the
/// file and the environment are the serde names below.
#[derive(Args, serde::Serialize)]
struct ServeArgs {
    /// YAML settings file (any of the keys below, by their long names with `_`).
    #[arg(long)]
    #[serde(skip)]
    settings: Option<PathBuf>,
    /// Task config (YAML); repeat for several projects. The first is the embedded project of
    /// `POST /score`.
    #[arg(long)]
    #[serde(rename = "configs", skip_serializing_if = "Vec::is_empty")]
    config: Vec<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000]. Without accounts it must be loopback.
    #[arg(long, env = "LIGHTBULB_BIND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<std::net::SocketAddr>,
    /// `sqlite://FILE` or `postgres://...` (default: SQLite in the first project's output dir).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Let `/score` fetch image URLs on private and loopback addresses.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_private_urls: bool,
    /// Items encoded together at most when scoring (1 disables dynamic batching) [default: 32].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    score_batch: Option<usize>,
    /// HTTP worker threads [default: 2].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    /// Access-token signing key `KID:SECRET` (secret >= 32 bytes); repeat to keep old keys
    /// valid while rotating. Giving one turns accounts on (sign-in on every API route).
    #[arg(long = "jwt-key", env = "LIGHTBULB_JWT_KEYS", value_delimiter = ',', hide_env_values = true)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    jwt_keys: Vec<String>,
    /// Id of the key that signs new tokens (default: the last --jwt-key).
    #[arg(long, env = "LIGHTBULB_JWT_ACTIVE_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt_active_key: Option<String>,
    /// Access token lifetime, seconds [default: 900].
    #[arg(long)]
    #[serde(rename = "access_ttl_s", skip_serializing_if = "Option::is_none")]
    access_ttl: Option<i64>,
    /// Refresh token (session) lifetime, seconds [default: 2592000].
    #[arg(long)]
    #[serde(rename = "refresh_ttl_s", skip_serializing_if = "Option::is_none")]
    refresh_ttl: Option<i64>,
    /// Organisation (id) that owns the --config projects [default: local].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    /// Redis (`redis://host:6379/0`): API-key rate limits and events shared by every server
    /// process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// Requests per minute allowed to one API key (429 with Retry-After beyond) [default: 600].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_rate: Option<u32>,
    /// Directory of the projects created through the API (their datasets, or working copies
    /// of them when S3 holds them) and of the default database without --config
    /// [default: lightbulb-data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    #[serde(skip_serializing_if = "S3Flags::is_empty")]
    s3: S3Flags,
    /// URL other server processes reach this one at, to forward requests for the projects it
    /// runs [default: http://<bind>].
    #[arg(long, env = "LIGHTBULB_ADVERTISE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    advertise_url: Option<String>,
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    assets: Option<PathBuf>,
}

/// S3 for models, embedding caches and uploaded datasets (all optional: local disk without).
#[derive(Args, serde::Serialize, Default)]
struct S3Flags {
    /// S3 bucket; giving one turns S3 on.
    #[arg(long = "s3-bucket", env = "LIGHTBULB_S3_BUCKET")]
    #[serde(rename = "bucket", skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    /// Endpoint of an S3-compatible server (e.g. http://127.0.0.1:8333); default: AWS.
    #[arg(long = "s3-endpoint", env = "LIGHTBULB_S3_ENDPOINT")]
    #[serde(rename = "endpoint", skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    /// Region [default: us-east-1].
    #[arg(long = "s3-region", env = "AWS_REGION")]
    #[serde(rename = "region", skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[arg(long = "s3-access-key-id", env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    #[serde(rename = "access_key_id", skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[arg(long = "s3-secret-access-key", env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    #[serde(rename = "secret_access_key", skip_serializing_if = "Option::is_none")]
    secret_access_key: Option<String>,
    /// Prefix of every object the server writes [default: lightbulb/].
    #[arg(long = "s3-prefix")]
    #[serde(rename = "prefix", skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    /// Create the bucket at start when it does not exist.
    #[arg(long = "s3-create-bucket")]
    #[serde(rename = "create_bucket", skip_serializing_if = "std::ops::Not::not")]
    create_bucket: bool,
}

impl S3Flags {
    fn is_empty(&self) -> bool {
        self.bucket.is_none()
            && self.endpoint.is_none()
            && self.region.is_none()
            && self.access_key_id.is_none()
            && self.secret_access_key.is_none()
            && self.prefix.is_none()
            && !self.create_bucket
    }
}

#[derive(Args)]
struct SimulateArgs {
    #[arg(long)]
    config: PathBuf,
    /// CSV with header `path,label`.
    #[arg(long)]
    truth: PathBuf,
    /// Query strategy (default: the config's, else adaptive_bait).
    #[arg(long)]
    strategy: Option<StrategyKind>,
    /// Labels to acquire.
    #[arg(long, default_value_t = 500)]
    budget: usize,
    /// Labels per active-learning round.
    #[arg(long, default_value_t = 10)]
    step: usize,
    #[arg(long)]
    seed: Option<u64>,
    /// Share of labelled items held out as the test set.
    #[arg(long)]
    test_fraction: Option<f64>,
    /// Head: logistic or mlp (default: the config's).
    #[arg(long, value_parser = ["logistic", "mlp"])]
    head: Option<String>,
    /// Label spreading over the unlabelled pool: off, on, or auto (kept per fit where it
    /// predicts held-out labels better); true and false mean on and off (default: the
    /// config's setting).
    #[arg(long)]
    semi_supervised: Option<lightbulb::config::task::SemiSupervised>,
    /// Two-class tasks: keep the model's mean pool prediction between uniform and the
    /// labelled class frequencies after each fit (default: the config's setting, on unless
    /// turned off).
    #[arg(long)]
    prior_matching: Option<bool>,
    /// Normalise features by the statistics of the whole pool rather than of the labelled
    /// items (default: the config's setting, on unless turned off).
    #[arg(long)]
    pool_statistics: Option<bool>,
    /// Exponent of the pool-covariance prior on the head's weights, 0-2; 0 turns it off
    /// (default: the config's setting, off unless set).
    #[arg(long)]
    covariance_prior: Option<f64>,
    /// Also write the labels the strategy asked for, in order, and the test set to this CSV
    /// (`path,label,set,order`).
    #[arg(long)]
    picks: Option<PathBuf>,
    /// Print one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let assets = cli.assets.clone().unwrap_or_else(lightbulb::assets::default_dir);
    match run(cli.command, cli.assets.is_some(), &assets) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<TaskConfig> {
    Ok(load_task(path)?)
}

/// `assets_given`: whether `--assets`/`LIGHTBULB_ASSETS` was set (it then overrides the
/// server's settings file).
fn run(command: Command, assets_given: bool, assets: &std::path::Path) -> anyhow::Result<()> {
    match command {
        Command::Serve(mut args) => {
            args.assets = assets_given.then(|| assets.to_path_buf());
            let options = lightbulb::server::settings::layered(args.settings.as_deref(), &args)?;
            tracing::debug!(?options, "settings");
            actix_web::rt::System::new().block_on(lightbulb::server::serve(options))
        }
        Command::Check { config } => {
            let task = load(&config)?;
            eprintln!("{}: ok ({} classes, {:?})", config.display(), task.label.classes.len(), task.dataset.data_type);
            Ok(())
        }
        Command::Embed { config } => {
            let task = load(&config)?;
            let dataset = lightbulb::data::open(&task)?;
            let encoder = lightbulb::ml::encoder::load(task.encoder(), assets, lightbulb::ml::device::best())?;
            let out = lightbulb::embed::embed_dataset(
                &dataset,
                encoder.as_ref(),
                &task.output_dir().join("embeddings"),
                true,
            )?;
            for s in &out.skipped {
                eprintln!("skipped {}: {}", s.id, s.reason);
            }
            eprintln!(
                "{} items, {} embedded now ({:.1} items/s), {} skipped",
                dataset.len(),
                out.computed,
                out.items_per_s,
                out.skipped.len()
            );
            Ok(())
        }
        Command::Simulate(args) => {
            let task = load(&args.config)?;
            let strategy = match (args.strategy, task.model.strategy.as_deref()) {
                (Some(s), _) => s,
                (None, Some(name)) => name.parse().map_err(anyhow::Error::msg)?,
                (None, None) => StrategyKind::DEFAULT,
            };
            let seed = args.seed.unwrap_or(task.model.seed);
            let mut head = HeadParams {
                seed,
                prior_matching: args.prior_matching.unwrap_or(task.model.prior_matching),
                pool_statistics: args.pool_statistics.unwrap_or(task.model.pool_statistics),
                covariance_prior: args.covariance_prior.unwrap_or(task.model.covariance_prior),
                ..HeadParams::default()
            };
            head.kind = match (args.head.as_deref(), task.model.head) {
                (Some("mlp"), _) | (None, HeadChoice::Mlp) => HeadKind::Mlp,
                _ => HeadKind::Logistic,
            };
            let opts = SimulateOptions {
                truth: args.truth.clone(),
                strategy,
                budget: args.budget,
                step: args.step,
                seed,
                test_fraction: args.test_fraction.unwrap_or(task.model.test_fraction),
                head,
                semi_supervised: args.semi_supervised.unwrap_or(task.model.semi_supervised),
                auto_label_threshold: task.model.auto_label_threshold,
                show_progress: !args.json,
            };
            if !lightbulb::ml::head::COVARIANCE_PRIOR_RANGE.contains(&opts.head.covariance_prior) {
                anyhow::bail!("--covariance-prior must be in [0, 2], got {}", opts.head.covariance_prior);
            }
            if !(0.0..1.0).contains(&opts.test_fraction) || opts.test_fraction == 0.0 {
                anyhow::bail!("--test-fraction must be in (0, 1), got {}", opts.test_fraction);
            }
            // Checked before the run, which can take minutes, rather than when writing after it.
            if let Some(dir) = args.picks.as_deref().and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    anyhow::bail!("--picks: the directory {} does not exist", dir.display());
                }
            }
            let data = simulate::prepare(&task, &args.truth, assets, true)?;
            let report = simulate::run(&data, &opts)?;
            if let Some(path) = &args.picks {
                let csv = simulate::picks_csv(&data, &report, &task.label.classes)?;
                lightbulb::ml::cache::write_atomic(path, &csv)
                    .with_context(|| format!("writing the picks to {}", path.display()))?;
            }
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
    }
}
