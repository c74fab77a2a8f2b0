//! Hosted projects and invitations: projects created through the API (their source, ingest
//! status and settings changed at run time) and invitations by link (stored as the digest of
//! their token, used once).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait};

use super::entities::{invitation, membership, organisation, project, user};
use super::{now_ms, OrgScope, ProjectScope, Store, StoreError, StoreResult};

/// A pending invitation with its organisation.
pub struct Invitation {
    pub row: invitation::Model,
    pub org_slug: String,
    pub org_name: String,
}

/// Who accepts an invitation.
pub enum Accepting<'a> {
    /// A new account.
    New { name: &'a str, password_hash: &'a str },
    /// An existing account (its password already checked).
    Existing { user_id: i64 },
}

impl Store {
    /// A project created through the API. `Conflict` when the organisation has one by that id.
    pub async fn create_project(
        &self,
        scope: OrgScope,
        slug: &str,
        title: &str,
        config_yaml: &str,
        source_json: &str,
        status: &str,
    ) -> StoreResult<ProjectScope> {
        let _gate = self.write_gate.lock().await;
        let exists = project::Entity::find()
            .filter(project::Column::OrgId.eq(scope.org_id))
            .filter(project::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::Conflict(format!("the organisation already has a project `{slug}`")));
        }
        let row = project::ActiveModel {
            org_id: Set(scope.org_id),
            slug: Set(slug.into()),
            title: Set(title.into()),
            config_yaml: Set(config_yaml.into()),
            created_at: Set(now_ms()),
            source: Set(source_json.into()),
            status: Set(status.into()),
            status_error: Set(None),
            settings_json: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(ProjectScope { org_id: scope.org_id, project_id: row.id })
    }

    /// Records a project's ingest status (and the error that stopped it).
    pub async fn set_project_status(&self, scope: ProjectScope, status: &str, error: Option<&str>) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        project::Entity::update_many()
            .col_expr(project::Column::Status, status.into())
            .col_expr(project::Column::StatusError, error.map(str::to_string).into())
            .filter(project::Column::Id.eq(scope.project_id))
            .filter(project::Column::OrgId.eq(scope.org_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Stores the settings changed through the API.
    pub async fn save_project_settings(
        &self,
        scope: ProjectScope,
        title: &str,
        settings_json: &str,
    ) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        project::Entity::update_many()
            .col_expr(project::Column::Title, title.into())
            .col_expr(project::Column::SettingsJson, Some(settings_json.to_string()).into())
            .filter(project::Column::Id.eq(scope.project_id))
            .filter(project::Column::OrgId.eq(scope.org_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One project of the organisation, by id.
    pub async fn project_row(&self, scope: ProjectScope) -> StoreResult<project::Model> {
        project::Entity::find_by_id(scope.project_id)
            .filter(project::Column::OrgId.eq(scope.org_id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("project"))
    }

    /// Every project created through the API, of every organisation: what a server process
    /// opens at start. Not scoped on purpose: the server, not a caller, asks.
    pub async fn hosted_projects(&self) -> StoreResult<Vec<project::Model>> {
        Ok(project::Entity::find()
            .filter(project::Column::Source.ne("{\"kind\":\"config\"}"))
            .order_by_asc(project::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn create_invitation(
        &self,
        scope: OrgScope,
        email: &str,
        role: &str,
        token_hash: &str,
        ttl_ms: i64,
        by: i64,
    ) -> StoreResult<invitation::Model> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let now = now_ms();
        let row = invitation::ActiveModel {
            org_id: Set(scope.org_id),
            email: Set(email.into()),
            role: Set(role.into()),
            token_hash: Set(token_hash.into()),
            created_by: Set(by),
            created_at: Set(now),
            expires_at: Set(now + ttl_ms),
            used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        super::accounts::audit_in(&txn, scope.org_id, Some(by), "invitation_created", &format!("{email} as {role}"))
            .await?;
        txn.commit().await?;
        Ok(row)
    }

    /// The organisation's pending invitations (not used, revoked or expired), newest first.
    pub async fn invitations(&self, scope: OrgScope) -> StoreResult<Vec<invitation::Model>> {
        Ok(invitation::Entity::find()
            .filter(invitation::Column::OrgId.eq(scope.org_id))
            .filter(invitation::Column::UsedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(now_ms()))
            .order_by_desc(invitation::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn revoke_invitation(&self, scope: OrgScope, id: i64, by: i64) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let res = invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, now_ms().into())
            .filter(invitation::Column::Id.eq(id))
            .filter(invitation::Column::OrgId.eq(scope.org_id))
            .filter(invitation::Column::UsedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("invitation"));
        }
        super::accounts::audit_in(&txn, scope.org_id, Some(by), "invitation_revoked", &format!("invitation {id}"))
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The pending invitation whose token has this digest.
    pub async fn invitation_by_token(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
        let Some(row) = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
            .filter(|i| i.used_at.is_none() && i.revoked_at.is_none() && i.expires_at > now_ms())
        else {
            return Ok(None);
        };
        let org = organisation::Entity::find_by_id(row.org_id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        Ok(Some(Invitation { row, org_slug: org.slug, org_name: org.name }))
    }

    /// Uses up the invitation and makes the account a member with its role, in one
    /// transaction: a token accepted twice at once makes one member.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        who: Accepting<'_>,
    ) -> StoreResult<(OrgScope, i64, String)> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let now = now_ms();
        let inv = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash))
            .one(&txn)
            .await?
            .filter(|i| i.used_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
            .ok_or(StoreError::NotFound("invitation"))?;
        let used = invitation::Entity::update_many()
            .col_expr(invitation::Column::UsedAt, now.into())
            .filter(invitation::Column::Id.eq(inv.id))
            .filter(invitation::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if used.rows_affected != 1 {
            return Err(StoreError::NotFound("invitation"));
        }
        let user_id = match who {
            Accepting::New { name, password_hash } => {
                super::accounts::insert_account(&txn, inv.org_id, &inv.email, name, password_hash, &inv.role).await?
            }
            Accepting::Existing { user_id } => {
                if membership::Entity::find_by_id((inv.org_id, user_id)).one(&txn).await?.is_some() {
                    return Err(StoreError::Conflict("you are already a member of this organisation".into()));
                }
                membership::ActiveModel {
                    org_id: Set(inv.org_id),
                    user_id: Set(user_id),
                    role: Set(inv.role.clone()),
                    created_at: Set(now),
                }
                .insert(&txn)
                .await?;
                user_id
            }
        };
        let name = user::Entity::find_by_id(user_id).one(&txn).await?.map(|u| u.name).unwrap_or_default();
        super::accounts::audit_in(
            &txn,
            inv.org_id,
            Some(user_id),
            "invitation_accepted",
            &format!("{name} ({}) as {}", inv.email, inv.role),
        )
        .await?;
        txn.commit().await?;
        Ok((OrgScope { org_id: inv.org_id }, user_id, inv.role))
    }
}
