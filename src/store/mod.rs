//! Persistent state behind sea-orm: the embedded SQLite file by default, PostgreSQL when a
//! `postgres://` URL is given. Every query takes the caller's scope (organisation, and project
//! where it applies), so one tenant's rows are never reachable with another's scope.
//!
//! The HTTP layer never builds queries: it calls these functions.

pub mod blob;
pub mod entities;
pub mod judgements;

use std::collections::HashMap;

use lightbulb_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};

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

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
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
        let db = Database::connect(options).await?;
        if sqlite {
            // WAL: readers never block the writer. synchronous=FULL: a committed label is on
            // disk before the client hears about it (sqlx opens connections this way too).
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=5000"] {
                db.execute_unprepared(pragma).await?;
            }
        }
        Migrator::up(&db, None).await?;
        Ok(Store { db })
    }

    /// Cheap round trip for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// The organisation with this slug, created if absent.
    pub async fn ensure_org(&self, slug: &str, name: &str) -> StoreResult<OrgScope> {
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

    /// Registers the listed item keys (new ones get ids) and returns key -> id for all of the
    /// project's items. Existing ids never change, so labels stay attached across restarts.
    pub async fn sync_items(&self, scope: ProjectScope, keys: &[String]) -> StoreResult<HashMap<String, i64>> {
        self.check_project(scope).await?;
        let mut known = self.item_ids(scope).await?;
        let fresh: Vec<&String> = keys.iter().filter(|k| !known.contains_key(*k)).collect();
        if !fresh.is_empty() {
            let now = now_ms();
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
        project::Entity::find_by_id(scope.project_id)
            .filter(project::Column::OrgId.eq(scope.org_id))
            .one(&self.db)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound("project"))
    }

    /// Writes labels in one transaction, replacing each item's live label. Durable on return.
    pub async fn put_labels(&self, scope: ProjectScope, labels: &[NewLabel]) -> StoreResult<Vec<StoredLabel>> {
        self.check_project(scope).await?;
        let now = now_ms();
        let txn = self.db.begin().await?;
        let mut out = Vec::with_capacity(labels.len());
        for l in labels {
            label::Entity::update_many()
                .col_expr(label::Column::UndoneAt, now.into())
                .filter(label::Column::ProjectId.eq(scope.project_id))
                .filter(label::Column::ItemId.eq(l.item_id))
                .filter(label::Column::UndoneAt.is_null())
                .exec(&txn)
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
            .insert(&txn)
            .await?;
            out.push(row.into());
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Marks the label `label_id` undone. Returns false when it was not live.
    pub async fn undo_label(&self, scope: ProjectScope, label_id: i64) -> StoreResult<bool> {
        let res = label::Entity::update_many()
            .col_expr(label::Column::UndoneAt, now_ms().into())
            .filter(label::Column::ProjectId.eq(scope.project_id))
            .filter(label::Column::Id.eq(label_id))
            .filter(label::Column::UndoneAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
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
