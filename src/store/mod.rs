//! Persistent state behind sea-orm: the embedded SQLite file by default, PostgreSQL when a
//! `postgres://` URL is given. Every query takes the caller's scope (organisation, and project
//! where it applies), so one tenant's rows are never reachable with another's scope.
//!
//! The HTTP layer never builds queries: it calls these functions.

pub mod accounts;
pub mod blob;
pub mod entities;
pub mod hosted;
pub mod judgements;
pub mod owners;
pub mod s3;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lightbulb_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use entities::{item, label, membership, model, organisation, project, user};

/// The organisation a request acts within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgScope {
    pub org_id: i64,
}

/// One project of one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectScope {
    pub org_id: i64,
    pub project_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the database writer has stopped")]
    Closed,
    #[error("{0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where a label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// Typed by a person in the labelling view (or the API).
    Human,
    /// An auto-label a person confirmed in a batch.
    Confirmed,
    /// An auto-label a person corrected in a batch.
    Corrected,
}

impl LabelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Human => "human",
            LabelSource::Confirmed => "confirmed",
            LabelSource::Corrected => "corrected",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "confirmed" => LabelSource::Confirmed,
            "corrected" => LabelSource::Corrected,
            _ => LabelSource::Human,
        }
    }
}

/// A label to write.
#[derive(Debug, Clone)]
pub struct NewLabel {
    pub item_id: i64,
    pub user_id: i64,
    pub label: String,
    pub stage: &'static str,
    pub source: LabelSource,
    pub time_taken_ms: Option<i64>,
}

/// A live (not undone) label as stored.
#[derive(Debug, Clone)]
pub struct StoredLabel {
    pub id: i64,
    pub item_id: i64,
    pub user_id: i64,
    pub label: String,
    pub stage: String,
    pub source: LabelSource,
    pub time_taken_ms: Option<i64>,
    pub created_at: i64,
}

impl From<label::Model> for StoredLabel {
    fn from(m: label::Model) -> Self {
        StoredLabel {
            id: m.id,
            item_id: m.item_id,
            user_id: m.user_id,
            label: m.label,
            stage: m.stage,
            source: LabelSource::parse(&m.source),
            time_taken_ms: m.time_taken_ms,
            created_at: m.created_at,
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Rows per multi-row INSERT: under SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
const INSERT_CHUNK: usize = 2_000;

/// Label writes waiting for the group committer: each gets its own result.
struct LabelWrite {
    scope: ProjectScope,
    labels: Vec<NewLabel>,
    reply: oneshot::Sender<StoreResult<Vec<StoredLabel>>>,
}

/// Most label requests one commit takes in (each request holds up to 1,000 labels).
const GROUP_MAX: usize = 64;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    /// Held by every writer. SQLite allows one writer at a time, and a second one would wait in
    /// SQLite's busy handler, which sleeps in steps of up to 100 ms: queueing here instead
    /// keeps the labelling latency flat under many concurrent labellers.
    pub(crate) write_gate: Arc<tokio::sync::Mutex<()>>,
    /// The group committer of labels: concurrent label requests share one transaction and so
    /// one fsync (see [`label_writer`]).
    labels_tx: mpsc::Sender<LabelWrite>,
}

impl Store {
    /// Connects and brings the schema up to date. `url` is `sqlite://FILE` or `postgres://...`.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_string()
        };
        let mut options = ConnectOptions::new(url);
        options.sqlx_logging(false);
        if sqlite {
            // One writer at a time is SQLite's model anyway; a small pool keeps readers going.
            options.max_connections(4).min_connections(1);
        } else {
            options.max_connections(16);
        }
        // On every connection of the pool (a PRAGMA run once would reach only one of them).
        // WAL: readers never block the writer. synchronous=FULL: a committed label is on disk
        // before the client hears about it.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(std::time::Duration::from_secs(5))
                // Checkpoints run in the background (below), not inside a labeller's commit.
                .pragma("wal_autocheckpoint", "0")
        });
        let db = Database::connect(options).await?;
        Migrator::up(&db, None).await?;
        let write_gate = Arc::new(tokio::sync::Mutex::new(()));
        let (labels_tx, labels_rx) = mpsc::channel(1024);
        tokio::spawn(label_writer(db.clone(), write_gate.clone(), labels_rx));
        if sqlite {
            tokio::spawn(checkpointer(db.clone()));
        }
        Ok(Store { db, write_gate, labels_tx })
    }

    /// Connections of the pool: (open, idle).
    pub fn pool_connections(&self) -> (u32, usize) {
        match self.db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            sea_orm::DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        }
    }

    /// This database's deployment id (created by the first process to ask).
    pub async fn deployment_id(&self) -> StoreResult<String> {
        use entities::deployment;
        let _gate = self.write_gate.lock().await;
        let row = deployment::ActiveModel {
            key: Set("this".into()),
            id: Set(crate::auth::random_secret(12)),
            created_at: Set(now_ms()),
        };
        // Whoever inserts first wins; everyone then reads the same row.
        deployment::Entity::insert(row)
            .on_conflict(OnConflict::column(deployment::Column::Key).do_nothing().to_owned())
            .exec_without_returning(&self.db)
            .await?;
        let found = deployment::Entity::find_by_id("this".to_string()).one(&self.db).await?;
        Ok(found.ok_or(StoreError::NotFound("deployment"))?.id)
    }

    /// Cheap round trip for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// The organisation with this slug, created if absent.
    pub async fn ensure_org(&self, slug: &str, name: &str) -> StoreResult<OrgScope> {
        let _gate = self.write_gate.lock().await;
        if let Some(org) =
            organisation::Entity::find().filter(organisation::Column::Slug.eq(slug)).one(&self.db).await?
        {
            return Ok(OrgScope { org_id: org.id });
        }
        let org = organisation::ActiveModel {
            slug: Set(slug.to_string()),
            name: Set(name.to_string()),
            created_at: Set(now_ms()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(OrgScope { org_id: org.id })
    }

    /// The user with this name, created if absent, and made a member of `scope` with `role` if
    /// not one yet. Returns the user id.
    pub async fn ensure_member(&self, scope: OrgScope, name: &str, role: &str) -> StoreResult<i64> {
        let _gate = self.write_gate.lock().await;
        let user = match user::Entity::find().filter(user::Column::Name.eq(name)).one(&self.db).await? {
            Some(u) => u,
            None => {
                user::ActiveModel { name: Set(name.to_string()), created_at: Set(now_ms()), ..Default::default() }
                    .insert(&self.db)
                    .await?
            }
        };
        let member = membership::Entity::find_by_id((scope.org_id, user.id)).one(&self.db).await?;
        if member.is_none() {
            membership::ActiveModel {
                org_id: Set(scope.org_id),
                user_id: Set(user.id),
                role: Set(role.to_string()),
                created_at: Set(now_ms()),
            }
            .insert(&self.db)
            .await?;
        }
        Ok(user.id)
    }

    /// The project `slug` of the organisation, created (or its config updated) from `config_yaml`.
    pub async fn upsert_project(
        &self,
        scope: OrgScope,
        slug: &str,
        title: &str,
        config_yaml: &str,
    ) -> StoreResult<ProjectScope> {
        let _gate = self.write_gate.lock().await;
        let existing = project::Entity::find()
            .filter(project::Column::OrgId.eq(scope.org_id))
            .filter(project::Column::Slug.eq(slug))
            .one(&self.db)
            .await?;
        let id = match existing {
            Some(p) => {
                let mut active: project::ActiveModel = p.into();
                active.title = Set(title.to_string());
                active.config_yaml = Set(config_yaml.to_string());
                active.update(&self.db).await?.id
            }
            None => {
                project::ActiveModel {
                    org_id: Set(scope.org_id),
                    slug: Set(slug.to_string()),
                    title: Set(title.to_string()),
                    config_yaml: Set(config_yaml.to_string()),
                    created_at: Set(now_ms()),
                    source: Set("{\"kind\":\"config\"}".into()),
                    status: Set("ready".into()),
                    ..Default::default()
                }
                .insert(&self.db)
                .await?
                .id
            }
        };
        Ok(ProjectScope { org_id: scope.org_id, project_id: id })
    }

    /// The organisation's projects, by slug.
    pub async fn projects(&self, scope: OrgScope) -> StoreResult<Vec<project::Model>> {
        Ok(project::Entity::find()
            .filter(project::Column::OrgId.eq(scope.org_id))
            .order_by_asc(project::Column::Slug)
            .all(&self.db)
            .await?)
    }

    /// The organisations (slugs) other than `scope`'s that have a labelled project with this
    /// id: a config served under another `--org` than before starts empty, which deserves a
    /// warning. Not scoped on purpose: the server asks at start, not a caller.
    pub async fn other_orgs_with_labels(&self, scope: OrgScope, slug: &str) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        let others = project::Entity::find()
            .filter(project::Column::Slug.eq(slug))
            .filter(project::Column::OrgId.ne(scope.org_id))
            .all(&self.db)
            .await?;
        for p in others {
            let labelled = label::Entity::find().filter(label::Column::ProjectId.eq(p.id)).one(&self.db).await?;
            if labelled.is_some() {
                if let Some(org) = organisation::Entity::find_by_id(p.org_id).one(&self.db).await? {
                    out.push(org.slug);
                }
            }
        }
        Ok(out)
    }

    /// Registers the listed item keys (new ones get ids) and returns key -> id for all of the
    /// project's items. Existing ids never change, so labels stay attached across restarts.
    pub async fn sync_items(&self, scope: ProjectScope, keys: &[String]) -> StoreResult<HashMap<String, i64>> {
        self.check_project(scope).await?;
        let mut known = self.item_ids(scope).await?;
        let fresh: Vec<&String> = keys.iter().filter(|k| !known.contains_key(*k)).collect();
        if !fresh.is_empty() {
            let now = now_ms();
            let _gate = self.write_gate.lock().await;
            let txn = self.db.begin().await?;
            for chunk in fresh.chunks(INSERT_CHUNK) {
                let rows = chunk.iter().map(|k| item::ActiveModel {
                    project_id: Set(scope.project_id),
                    key: Set((*k).clone()),
                    created_at: Set(now),
                    ..Default::default()
                });
                item::Entity::insert_many(rows)
                    .on_conflict(
                        OnConflict::columns([item::Column::ProjectId, item::Column::Key]).do_nothing().to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?;
            }
            txn.commit().await?;
            known = self.item_ids(scope).await?;
        }
        Ok(known)
    }

    async fn item_ids(&self, scope: ProjectScope) -> StoreResult<HashMap<String, i64>> {
        let rows = item::Entity::find().filter(item::Column::ProjectId.eq(scope.project_id)).all(&self.db).await?;
        Ok(rows.into_iter().map(|m| (m.key, m.id)).collect())
    }

    /// Fails with `NotFound` unless the project belongs to the scope's organisation.
    async fn check_project(&self, scope: ProjectScope) -> StoreResult<()> {
        check_project(&self.db, scope).await
    }

    /// Writes labels atomically, replacing each item's live label. Durable on return: the
    /// transaction that holds them has committed.
    pub async fn put_labels(&self, scope: ProjectScope, labels: &[NewLabel]) -> StoreResult<Vec<StoredLabel>> {
        let (reply, answer) = oneshot::channel();
        let write = LabelWrite { scope, labels: labels.to_vec(), reply };
        self.labels_tx.send(write).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Marks the label `label_id` undone. Returns false when it was not live.
    pub async fn undo_label(&self, scope: ProjectScope, label_id: i64) -> StoreResult<bool> {
        let _gate = self.write_gate.lock().await;
        let res = label::Entity::update_many()
            .col_expr(label::Column::UndoneAt, now_ms().into())
            .filter(label::Column::ProjectId.eq(scope.project_id))
            .filter(label::Column::Id.eq(label_id))
            .filter(label::Column::UndoneAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Every answer each labeller gave and did not take back, oldest first: live labels and
    /// those superseded by a later label of the item (a second opinion, a correction), but not
    /// those undone. Of one labeller's answers on one item only the latest counts.
    pub async fn answers(&self, scope: ProjectScope) -> StoreResult<Vec<StoredLabel>> {
        self.check_project(scope).await?;
        let rows = label::Entity::find()
            .filter(label::Column::ProjectId.eq(scope.project_id))
            .order_by_asc(label::Column::Id)
            .all(&self.db)
            .await?;
        // A superseded row's undone_at is the creation time of the row that replaced it (one
        // transaction, one clock reading); an undo leaves no such row.
        let created: HashSet<(i64, i64)> = rows.iter().map(|r| (r.item_id, r.created_at)).collect();
        let mut latest: HashMap<(i64, i64), StoredLabel> = HashMap::new();
        for row in rows {
            let kept = match row.undone_at {
                None => true,
                Some(t) => created.contains(&(row.item_id, t)) && t >= row.created_at,
            };
            if kept {
                latest.insert((row.item_id, row.user_id), StoredLabel::from(row));
            }
        }
        let mut out: Vec<StoredLabel> = latest.into_values().collect();
        out.sort_by_key(|l| l.id);
        Ok(out)
    }

    /// Every live label of the project, oldest first.
    pub async fn live_labels(&self, scope: ProjectScope) -> StoreResult<Vec<StoredLabel>> {
        self.check_project(scope).await?;
        let rows = label::Entity::find()
            .filter(label::Column::ProjectId.eq(scope.project_id))
            .filter(label::Column::UndoneAt.is_null())
            .order_by_asc(label::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(StoredLabel::from).collect())
    }

    /// User id -> name for the organisation's members.
    pub async fn member_names(&self, scope: OrgScope) -> StoreResult<HashMap<i64, String>> {
        let ids: Vec<i64> = membership::Entity::find()
            .filter(membership::Column::OrgId.eq(scope.org_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        let users = user::Entity::find().filter(user::Column::Id.is_in(ids)).all(&self.db).await?;
        Ok(users.into_iter().map(|u| (u.id, u.name)).collect())
    }

    /// Records a trained model whose artifacts are at `blob_key`.
    pub async fn add_model(
        &self,
        scope: ProjectScope,
        version: i64,
        blob_key: &str,
        metrics_json: &str,
        train_labels: i64,
    ) -> StoreResult<()> {
        self.check_project(scope).await?;
        let _gate = self.write_gate.lock().await;
        model::ActiveModel {
            project_id: Set(scope.project_id),
            version: Set(version),
            blob_key: Set(blob_key.to_string()),
            metrics: Set(metrics_json.to_string()),
            train_labels: Set(train_labels),
            created_at: Set(now_ms()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The newest model of the project.
    pub async fn latest_model(&self, scope: ProjectScope) -> StoreResult<Option<model::Model>> {
        self.check_project(scope).await?;
        Ok(model::Entity::find()
            .filter(model::Column::ProjectId.eq(scope.project_id))
            .order_by_desc(model::Column::Version)
            .one(&self.db)
            .await?)
    }

    /// Every model of the project, oldest first (the learning curve across restarts).
    pub async fn models(&self, scope: ProjectScope) -> StoreResult<Vec<model::Model>> {
        self.check_project(scope).await?;
        Ok(model::Entity::find()
            .filter(model::Column::ProjectId.eq(scope.project_id))
            .order_by_asc(model::Column::Version)
            .all(&self.db)
            .await?)
    }
}

/// Copies the SQLite write-ahead log back into the database file every half second. SQLite
/// would otherwise do it inside whichever commit crosses 1,000 pages, and that commit (a
/// labeller waiting for an acknowledgement) would pay for copying and fsyncing the database
/// file. PASSIVE never waits for readers or the writer, so it adds no latency of its own.
async fn checkpointer(db: DatabaseConnection) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = db.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// Group commit: takes every label request waiting at that moment (up to [`GROUP_MAX`]) into
/// one transaction, each inside its own savepoint so that one failing request (a project that
/// is not in the scope's organisation) does not fail the others, then commits once and answers
/// each request. With eight labellers at once this turns eight fsyncs into one.
async fn label_writer(db: DatabaseConnection, gate: Arc<tokio::sync::Mutex<()>>, mut rx: mpsc::Receiver<LabelWrite>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let _gate = gate.lock().await;
        match write_group(&db, &group).await {
            Ok(results) => {
                for (w, r) in group.into_iter().zip(results) {
                    let _ = w.reply.send(r);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for w in group {
                    let _ = w.reply.send(Err(StoreError::Db(DbErr::Custom(message.clone()))));
                }
            }
        }
    }
}

/// One transaction for a group of label requests. The outer error is the transaction's own
/// (nothing was written); the inner ones are per request (that request was rolled back).
async fn write_group(db: &DatabaseConnection, group: &[LabelWrite]) -> StoreResult<Vec<StoreResult<Vec<StoredLabel>>>> {
    let now = now_ms();
    let txn = db.begin().await?;
    let mut results = Vec::with_capacity(group.len());
    for w in group {
        let savepoint = txn.begin().await?;
        match insert_labels(&savepoint, w.scope, &w.labels, now).await {
            Ok(stored) => {
                savepoint.commit().await?;
                results.push(Ok(stored));
            }
            Err(e) => {
                savepoint.rollback().await?;
                results.push(Err(e));
            }
        }
    }
    txn.commit().await?;
    Ok(results)
}

async fn insert_labels(
    txn: &impl ConnectionTrait,
    scope: ProjectScope,
    labels: &[NewLabel],
    now: i64,
) -> StoreResult<Vec<StoredLabel>> {
    check_project(txn, scope).await?;
    let mut out = Vec::with_capacity(labels.len());
    for l in labels {
        label::Entity::update_many()
            .col_expr(label::Column::UndoneAt, now.into())
            .filter(label::Column::ProjectId.eq(scope.project_id))
            .filter(label::Column::ItemId.eq(l.item_id))
            .filter(label::Column::UndoneAt.is_null())
            .exec(txn)
            .await?;
        let row = label::ActiveModel {
            project_id: Set(scope.project_id),
            item_id: Set(l.item_id),
            user_id: Set(l.user_id),
            label: Set(l.label.clone()),
            stage: Set(l.stage.to_string()),
            source: Set(l.source.as_str().to_string()),
            time_taken_ms: Set(l.time_taken_ms),
            created_at: Set(now),
            undone_at: Set(None),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        out.push(row.into());
    }
    Ok(out)
}

/// Fails with `NotFound` unless the project belongs to the scope's organisation.
async fn check_project(conn: &impl ConnectionTrait, scope: ProjectScope) -> StoreResult<()> {
    project::Entity::find_by_id(scope.project_id)
        .filter(project::Column::OrgId.eq(scope.org_id))
        .one(conn)
        .await?
        .map(|_| ())
        .ok_or(StoreError::NotFound("project"))
}
