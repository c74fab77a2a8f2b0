//! The HTTP side: actix-web routes over the project actors. Handlers parse and check input,
//! ask the project actor, write to the store, and shape JSON; they never run tensor work
//! (scoring goes to the scorer thread, training to the trainer thread).

pub mod access;
pub mod accounts;
pub mod error;
pub mod fetch;
mod forward;
mod frontend;
mod ingest;
mod invitations;
mod leases;
pub mod limits;
mod metrics_mw;
mod ownership;
pub mod registry;
pub mod relay;
mod routes;
mod scoring;
pub mod settings;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};

use crate::metrics::Metrics;
use crate::project::OpenOptions;
use crate::store::{OrgScope, Store};
use error::ApiError;
use fetch::FetchPolicy;

/// Largest JSON body accepted (labels, scoring with base64 images).
pub const JSON_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeOptions {
    pub configs: Vec<PathBuf>,
    pub bind: SocketAddr,
    /// `sqlite://...` or `postgres://...`; default: `<first project's output dir>/lightbulb.db`.
    pub database_url: Option<String>,
    pub assets: PathBuf,
    pub allow_private_urls: bool,
    pub score_batch: usize,
    pub workers: usize,
    /// Access-token signing keys, `KID:SECRET`; none = embedded mode (no accounts).
    pub jwt_keys: Vec<String>,
    /// The key that signs new tokens (default: the last given).
    pub jwt_active_key: Option<String>,
    pub access_ttl_s: i64,
    pub refresh_ttl_s: i64,
    /// The organisation (slug) that owns the `--config` projects.
    pub org: String,
    /// `redis://...`: shared rate limits (and, later, events) across server processes.
    pub redis_url: Option<String>,
    /// Requests per minute allowed to one API key.
    pub api_key_rate: u32,
    /// Where projects created through the API keep their local files (datasets, or their
    /// working copies when S3 holds them, and embedding caches), and the default database.
    pub data_dir: PathBuf,
    /// S3 for models, embedding caches and the datasets of created projects; none = local disk.
    pub s3: Option<crate::store::s3::S3Options>,
    /// Largest upload request (`POST .../files`), bytes.
    pub upload_limit_bytes: u64,
    /// Largest single dataset file, bytes.
    pub file_limit_bytes: u64,
    /// The URL other server processes reach this one at (its identity as a project owner);
    /// default `http://<bind>`.
    pub advertise_url: Option<String>,
    /// How long a process's claim on a project lasts without renewal, seconds.
    pub owner_ttl_s: u64,
}

pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub org: OrgScope,
    pub default_user: String,
    pub projects: registry::Registry,
    pub data_dir: PathBuf,
    pub s3: Option<Arc<crate::store::s3::S3Store>>,
    /// How projects opened later (created through the API) are started.
    pub open: OpenOptions,
    pub upload_limit_bytes: u64,
    pub file_limit_bytes: u64,
    /// This process's identity as a project owner: the URL others forward requests to.
    pub instance: String,
    pub owner_ttl_ms: i64,
    /// Proves a request was forwarded by a process of this deployment (the deployment id,
    /// which lives in the shared database only).
    pub forward_token: String,
    /// Client for forwarding requests to the process that owns a project.
    pub http: reqwest::Client,
    /// Item leases remembered in Redis (for takeovers); none without Redis.
    leases: Option<Arc<leases::RedisLeases>>,
    pub fetch: FetchPolicy,
    /// Sign-in required when present; embedded mode otherwise.
    pub auth: Option<access::AuthConfig>,
    pub limiter: limits::RateLimiter,
    /// Requests per minute allowed to one API key.
    pub api_key_rate: u32,
    users: Mutex<HashMap<String, i64>>,
    names: Mutex<HashMap<i64, String>>,
    ready: AtomicBool,
}

impl AppState {
    /// The user id of a labeller name (created on first sight in embedded mode).
    pub async fn user_id(&self, name: &str) -> Result<i64, ApiError> {
        if let Some(&id) = self.users.lock().map_err(ApiError::internal)?.get(name) {
            return Ok(id);
        }
        let id = self.store.ensure_member(self.org, name, "labeller").await?;
        self.users.lock().map_err(ApiError::internal)?.insert(name.to_string(), id);
        Ok(id)
    }

    /// A user's name (cached: names never change).
    pub async fn user_name(&self, user_id: i64) -> Result<String, ApiError> {
        if let Some(name) = self.names.lock().map_err(ApiError::internal)?.get(&user_id) {
            return Ok(name.clone());
        }
        let name = self.store.user_name(user_id).await?;
        self.names.lock().map_err(ApiError::internal)?.insert(user_id, name.clone());
        Ok(name)
    }

    /// A project's event stream in this process, fed by Redis from whichever process owns it.
    pub fn project_events(&self, project_id: i64) -> crate::project::events::Events {
        match &self.open.relay {
            Some(relay) => {
                let events = crate::project::events::Events::relayed(relay.for_project(project_id));
                relay.register(project_id, events.clone());
                events
            }
            None => crate::project::events::Events::default(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The project's id in URLs: the config file's stem, lower-cased, [a-z0-9_-] only.
pub fn slug_of(path: &std::path::Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("project");
    let slug: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if slug.is_empty() {
        "project".into()
    } else {
        slug
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            configs: Vec::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            database_url: None,
            assets: crate::assets::default_dir(),
            allow_private_urls: false,
            score_batch: 32,
            workers: 2,
            jwt_keys: Vec::new(),
            jwt_active_key: None,
            access_ttl_s: 900,
            refresh_ttl_s: 30 * 24 * 3600,
            org: "local".into(),
            redis_url: None,
            api_key_rate: 600,
            data_dir: PathBuf::from("lightbulb-data"),
            s3: None,
            upload_limit_bytes: 2 << 30,
            file_limit_bytes: 32 << 20,
            advertise_url: None,
            owner_ttl_s: 15,
        }
    }
}

/// Secrets stay out: signing keys show their ids, URLs lose their passwords.
impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.jwt_keys.iter().map(|k| k.split(':').next().unwrap_or_default()).collect();
        f.debug_struct("ServeOptions")
            .field("configs", &self.configs)
            .field("bind", &self.bind)
            .field("database_url", &self.database_url.as_deref().map(redact))
            .field("assets", &self.assets)
            .field("allow_private_urls", &self.allow_private_urls)
            .field("score_batch", &self.score_batch)
            .field("workers", &self.workers)
            .field("jwt_keys", &kids)
            .field("jwt_active_key", &self.jwt_active_key)
            .field("access_ttl_s", &self.access_ttl_s)
            .field("refresh_ttl_s", &self.refresh_ttl_s)
            .field("org", &self.org)
            .field("redis_url", &self.redis_url.as_deref().map(redact))
            .field("api_key_rate", &self.api_key_rate)
            .field("data_dir", &self.data_dir)
            .field("s3", &self.s3)
            .field("upload_limit_bytes", &self.upload_limit_bytes)
            .field("file_limit_bytes", &self.file_limit_bytes)
            .field("advertise_url", &self.advertise_url)
            .field("owner_ttl_s", &self.owner_ttl_s)
            .finish()
    }
}

/// Without accounts only loopback binds are allowed.
pub fn check_bind(bind: &SocketAddr, accounts: bool) -> anyhow::Result<()> {
    if !accounts && !bind.ip().is_loopback() {
        bail!(
            "refusing to bind {bind}: embedded mode has no authentication, so it only listens on loopback \
             (127.0.0.1 or ::1). Bind 127.0.0.1, or turn accounts on with signing keys \
             (`--jwt-key KID:SECRET`, or LIGHTBULB_JWT_KEYS)."
        );
    }
    Ok(())
}

/// A URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Opens the store and the projects, ready to serve.
pub async fn build_state(options: &ServeOptions) -> anyhow::Result<Arc<AppState>> {
    if options.configs.is_empty() && options.jwt_keys.is_empty() {
        bail!(
            "no project: pass at least one --config FILE (or turn accounts on with --jwt-key to create \
             projects through the API)"
        );
    }
    let mut loaded = Vec::new();
    for path in &options.configs {
        let config = crate::config::load_task(path)?;
        let yaml = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        loaded.push((slug_of(path), config, yaml));
    }
    let url = match &options.database_url {
        Some(u) => u.clone(),
        None => {
            let dir = match loaded.first() {
                Some((_, config, _)) => config.output_dir(),
                None => options.data_dir.clone(),
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            format!("sqlite://{}", dir.join("lightbulb.db").display())
        }
    };
    let store = Store::connect(&url).await.with_context(|| format!("opening the database {}", redact(&url)))?;
    let org = store.ensure_org(&options.org, &options.org).await?;
    let auth = if options.jwt_keys.is_empty() {
        None
    } else {
        let keys = crate::auth::tokens::SigningKeys::parse(&options.jwt_keys, options.jwt_active_key.as_deref())
            .map_err(|e| anyhow::anyhow!("access-token signing keys: {e}"))?;
        if options.access_ttl_s <= 0 || options.refresh_ttl_s <= options.access_ttl_s {
            bail!("token lifetimes: access must be > 0 s and refresh longer than access");
        }
        let dummy_hash = crate::auth::password::hash(&crate::auth::random_secret(16))?;
        Some(access::AuthConfig {
            keys,
            access_ttl_s: options.access_ttl_s,
            refresh_ttl_s: options.refresh_ttl_s,
            dummy_hash,
        })
    };
    let default_user = loaded.first().map(|(_, c, _)| c.user.clone()).unwrap_or_else(|| "admin".into());
    if !loaded.is_empty() {
        store.ensure_member(org, &default_user, "owner").await?;
    }
    let metrics = Arc::new(Metrics::new().context("registering the metrics")?);
    // A bucket turns S3 on; other S3 settings alone (AWS_REGION in the environment) do not.
    let s3 = match options.s3.as_ref().filter(|s3| !s3.bucket.is_empty()) {
        Some(s3) => Some(
            crate::store::s3::S3Store::connect(s3.clone(), metrics.clone())
                .await
                .with_context(|| format!("connecting to S3 bucket `{}`", s3.bucket))?,
        ),
        None => None,
    };
    // One Redis client and one multiplexed connection, shared by the rate limiter and the
    // event publisher (the event subscriber opens its own: pub/sub needs a dedicated one).
    let redis = match &options.redis_url {
        Some(url) => {
            let connect = async {
                let client = redis::Client::open(url.as_str())?;
                let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
                Ok::<_, redis::RedisError>((client, conn))
            };
            Some(connect.await.with_context(|| format!("connecting to Redis at {}", redact(url)))?)
        }
        None => None,
    };
    let (limiter, relay, lease_store) = match &redis {
        Some((_, conn)) => {
            let deployment = store.deployment_id().await?;
            let relay = relay::EventRelay::start(conn.clone(), &deployment, metrics.clone());
            let leases = leases::RedisLeases::start(conn.clone(), &deployment, metrics.clone());
            (limits::RateLimiter::Redis(conn.clone()), Some(Arc::new(relay)), Some(Arc::new(leases)))
        }
        None => (limits::RateLimiter::local(), None, None),
    };
    if let (Some(relay), Some((client, _))) = (&relay, redis) {
        relay.subscribe(client, metrics.clone());
    }
    let open = OpenOptions {
        assets: options.assets.clone(),
        score_batch: options.score_batch,
        metrics: metrics.clone(),
        relay: relay.clone(),
    };
    if options.owner_ttl_s < 3 {
        bail!("owner_ttl_s must be at least 3 seconds (claims are renewed every third of it)");
    }
    let forward_token = store.deployment_id().await?;
    let instance = options.advertise_url.clone().unwrap_or_else(|| format!("http://{}", options.bind));
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .context("building the HTTP client for forwarding")?;
    let state = Arc::new(AppState {
        store,
        metrics,
        org,
        default_user,
        projects: registry::Registry::default(),
        data_dir: options.data_dir.clone(),
        s3,
        open,
        upload_limit_bytes: options.upload_limit_bytes,
        file_limit_bytes: options.file_limit_bytes,
        instance,
        owner_ttl_ms: options.owner_ttl_s as i64 * 1000,
        forward_token,
        http,
        leases: lease_store,
        fetch: FetchPolicy { allow_private: options.allow_private_urls, ..FetchPolicy::default() },
        auth,
        limiter,
        api_key_rate: options.api_key_rate,
        users: Mutex::new(HashMap::new()),
        names: Mutex::new(HashMap::new()),
        ready: AtomicBool::new(true),
    });
    for (slug, config, yaml) in loaded {
        ingest::open_config_project(&state, org, &slug, config, &yaml).await?;
    }
    ingest::register_hosted_projects(&state).await?;
    Ok(state)
}

/// Routes and extractor settings, shared by the server and the tests.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(state))
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|err, _| error::json_error(err, JSON_LIMIT).into()),
            )
            .app_data(web::PayloadConfig::new(JSON_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(|err, _| ApiError::BadRequest(err.to_string()).into()))
            .app_data(web::PathConfig::default().error_handler(|err, _| ApiError::NotFound(err.to_string()).into()))
            .configure(routes::configure)
            .configure(accounts::configure)
            .configure(ingest::configure)
            .configure(invitations::configure)
            .configure(scoring::configure)
            .configure(ws::configure)
            .configure(frontend::configure);
    }
}

/// Runs the labelling server until interrupted.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    check_bind(&options.bind, !options.jwt_keys.is_empty())?;
    let state = build_state(&options).await?;
    let first = state.projects.of_org(state.org.org_id).first().map(|e| e.slug.clone()).unwrap_or_default();
    ownership::start(state.clone());
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let state = app_state.clone();
        App::new()
            .wrap(actix_web::middleware::from_fn(forward::forward))
            .wrap(actix_web::middleware::from_fn(metrics_mw::record))
            .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("lightbulb::http"))
            .configure(configure(state.clone()))
    })
    .workers(options.workers.max(1))
    .bind(options.bind)
    .with_context(|| format!("binding {}", options.bind))?;
    eprintln!("Lightbulb is serving project `{first}` on http://{}/", options.bind);
    server.run().await?;
    // A clean stop hands this process's projects over at once instead of after their lease.
    if let Err(e) = state.store.release_projects(&state.instance).await {
        tracing::warn!(error = %e, "releasing the projects failed; others take over when the lease lapses");
    }
    Ok(())
}
