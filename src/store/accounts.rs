//! Accounts in the database: sign-up, password logins, sessions (refresh tokens), members and
//! roles, API keys and the audit log. Secrets arrive here already hashed (see `crate::auth`).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait};

use super::entities::{api_key, audit, membership, organisation, session, user};
use super::{now_ms, OrgScope, ProjectScope, Store, StoreError, StoreResult};

/// A password account as stored.
pub struct Account {
    pub user_id: i64,
    pub name: String,
    pub password_hash: Option<String>,
}

/// One organisation a user belongs to.
pub struct Membership {
    pub org_id: i64,
    pub slug: String,
    pub name: String,
    pub role: String,
}

/// A live session: not revoked, not expired.
pub struct LiveSession {
    pub id: i64,
    pub user_id: i64,
    pub org_id: i64,
}

impl Store {
    /// Creates an organisation with its first owner (or makes the first account of an
    /// organisation that has none its owner). `Conflict` when the organisation has an owner
    /// already, or the e-mail or name is taken.
    pub async fn sign_up(
        &self,
        org_slug: &str,
        org_name: &str,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> StoreResult<(OrgScope, i64)> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let now = now_ms();
        let existing = organisation::Entity::find().filter(organisation::Column::Slug.eq(org_slug)).one(&txn).await?;
        let org = match existing {
            // An organisation the server created for its configured projects, with no account
            // yet: its first sign-up becomes its owner.
            Some(org) => {
                let members: Vec<i64> = membership::Entity::find()
                    .filter(membership::Column::OrgId.eq(org.id))
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|m| m.user_id)
                    .collect();
                let claimed = user::Entity::find()
                    .filter(user::Column::Id.is_in(members))
                    .filter(user::Column::PasswordHash.is_not_null())
                    .one(&txn)
                    .await?
                    .is_some();
                if claimed {
                    return Err(StoreError::Conflict(format!("the organisation `{org_slug}` already exists")));
                }
                org
            }
            None => {
                organisation::ActiveModel {
                    slug: Set(org_slug.into()),
                    name: Set(org_name.into()),
                    created_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?
            }
        };
        let user_id = insert_account(&txn, org.id, email, name, password_hash, "owner").await?;
        audit_in(&txn, org.id, Some(user_id), "signup", &format!("organisation {org_slug} created")).await?;
        txn.commit().await?;
        Ok((OrgScope { org_id: org.id }, user_id))
    }

    /// Adds a password account to an organisation with `role` (an invitation accepted).
    pub async fn add_account(
        &self,
        scope: OrgScope,
        email: &str,
        name: &str,
        password_hash: &str,
        role: &str,
        by: i64,
    ) -> StoreResult<i64> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let user_id = insert_account(&txn, scope.org_id, email, name, password_hash, role).await?;
        audit_in(&txn, scope.org_id, Some(by), "member_added", &format!("{name} as {role}")).await?;
        txn.commit().await?;
        Ok(user_id)
    }

    pub async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        Ok(user::Entity::find().filter(user::Column::Email.eq(email)).one(&self.db).await?.map(|u| Account {
            user_id: u.id,
            name: u.name,
            password_hash: u.password_hash,
        }))
    }

    /// Replaces the user's password and ends every session of theirs, in every organisation.
    pub async fn set_password(&self, scope: OrgScope, user_id: i64, password_hash: &str) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Some(password_hash.to_string()).into())
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, now_ms().into())
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        audit_in(&txn, scope.org_id, Some(user_id), "password_changed", "all sessions ended").await?;
        txn.commit().await?;
        Ok(())
    }

    /// The user's e-mail and password hash (None for accounts without a password).
    pub async fn credentials_of(&self, user_id: i64) -> StoreResult<(Option<String>, Option<String>)> {
        let u = user::Entity::find_by_id(user_id).one(&self.db).await?.ok_or(StoreError::NotFound("user"))?;
        Ok((u.email, u.password_hash))
    }

    pub async fn user_name(&self, user_id: i64) -> StoreResult<String> {
        Ok(user::Entity::find_by_id(user_id).one(&self.db).await?.ok_or(StoreError::NotFound("user"))?.name)
    }

    /// The user's role in the organisation, None when not a member.
    pub async fn role_of(&self, scope: OrgScope, user_id: i64) -> StoreResult<Option<String>> {
        Ok(membership::Entity::find_by_id((scope.org_id, user_id)).one(&self.db).await?.map(|m| m.role))
    }

    /// The organisations a user belongs to, oldest membership first.
    pub async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
        let ms = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .order_by_asc(membership::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(ms.len());
        for m in ms {
            if let Some(org) = organisation::Entity::find_by_id(m.org_id).one(&self.db).await? {
                out.push(Membership { org_id: org.id, slug: org.slug, name: org.name, role: m.role });
            }
        }
        Ok(out)
    }

    /// Members of the organisation: (user id, name, e-mail, role).
    pub async fn members(&self, scope: OrgScope) -> StoreResult<Vec<(i64, String, Option<String>, String)>> {
        let ms = membership::Entity::find().filter(membership::Column::OrgId.eq(scope.org_id)).all(&self.db).await?;
        let mut out = Vec::with_capacity(ms.len());
        for m in ms {
            if let Some(u) = user::Entity::find_by_id(m.user_id).one(&self.db).await? {
                out.push((u.id, u.name, u.email, m.role));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Changes a member's role. `NotFound` when the user is not a member of the scope.
    pub async fn set_role(&self, scope: OrgScope, user_id: i64, role: &str, by: i64) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        let m = membership::Entity::find_by_id((scope.org_id, user_id))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("member"))?;
        let old = m.role.clone();
        let mut active: membership::ActiveModel = m.into();
        active.role = Set(role.into());
        active.update(&self.db).await?;
        audit_in(&self.db, scope.org_id, Some(by), "role_changed", &format!("user {user_id}: {old} -> {role}")).await
    }

    /// Removes a member and revokes their sessions in this organisation, at once.
    pub async fn remove_member(&self, scope: OrgScope, user_id: i64, by: i64) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let gone = membership::Entity::delete_by_id((scope.org_id, user_id)).exec(&txn).await?;
        if gone.rows_affected == 0 {
            return Err(StoreError::NotFound("member"));
        }
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, now_ms().into())
            .filter(session::Column::OrgId.eq(scope.org_id))
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        audit_in(&txn, scope.org_id, Some(by), "member_removed", &format!("user {user_id}")).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Starts a session (a refresh token, stored as its digest). Returns the session id.
    pub async fn create_session(
        &self,
        scope: OrgScope,
        user_id: i64,
        token_hash: &str,
        ttl_ms: i64,
    ) -> StoreResult<i64> {
        let _gate = self.write_gate.lock().await;
        let now = now_ms();
        let s = session::ActiveModel {
            user_id: Set(user_id),
            org_id: Set(scope.org_id),
            token_hash: Set(token_hash.into()),
            created_at: Set(now),
            expires_at: Set(now + ttl_ms),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(s.id)
    }

    /// The live session whose refresh token has this digest.
    pub async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<LiveSession>> {
        let s = session::Entity::find().filter(session::Column::TokenHash.eq(token_hash)).one(&self.db).await?;
        Ok(s.filter(|s| s.revoked_at.is_none() && s.expires_at > now_ms()).map(|s| LiveSession {
            id: s.id,
            user_id: s.user_id,
            org_id: s.org_id,
        }))
    }

    /// Whether session `id` of `user_id` is live.
    pub async fn session_live(&self, id: i64, user_id: i64) -> StoreResult<bool> {
        let s = session::Entity::find_by_id(id).one(&self.db).await?;
        Ok(s.is_some_and(|s| s.user_id == user_id && s.revoked_at.is_none() && s.expires_at > now_ms()))
    }

    /// Revokes one session. Returns false when it was not live.
    pub async fn revoke_session(&self, id: i64) -> StoreResult<bool> {
        let _gate = self.write_gate.lock().await;
        let res = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, now_ms().into())
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    pub async fn create_api_key(
        &self,
        scope: ProjectScope,
        name: &str,
        prefix: &str,
        key_hash: &str,
        scopes: &str,
        by: i64,
    ) -> StoreResult<api_key::Model> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let key = api_key::ActiveModel {
            org_id: Set(scope.org_id),
            project_id: Set(scope.project_id),
            name: Set(name.into()),
            prefix: Set(prefix.into()),
            key_hash: Set(key_hash.into()),
            scopes: Set(scopes.into()),
            created_by: Set(by),
            created_at: Set(now_ms()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit_in(
            &txn,
            scope.org_id,
            Some(by),
            "api_key_created",
            &format!("key {prefix} ({name}) for project {}, scopes {scopes}", scope.project_id),
        )
        .await?;
        txn.commit().await?;
        Ok(key)
    }

    /// The project's keys, newest first (revoked ones included, marked).
    pub async fn api_keys(&self, scope: ProjectScope) -> StoreResult<Vec<api_key::Model>> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::OrgId.eq(scope.org_id))
            .filter(api_key::Column::ProjectId.eq(scope.project_id))
            .order_by_desc(api_key::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// A live (not revoked) key by its public prefix.
    pub async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<api_key::Model>> {
        let k = api_key::Entity::find().filter(api_key::Column::Prefix.eq(prefix)).one(&self.db).await?;
        Ok(k.filter(|k| k.revoked_at.is_none()))
    }

    /// Records a use of the key (best effort, not gated on the answer).
    pub async fn touch_api_key(&self, id: i64) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, now_ms().into())
            .filter(api_key::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Revokes a key of the project. `NotFound` when the project has no such live key.
    pub async fn revoke_api_key(&self, scope: ProjectScope, id: i64, by: i64) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        let txn = self.db.begin().await?;
        let res = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, now_ms().into())
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::OrgId.eq(scope.org_id))
            .filter(api_key::Column::ProjectId.eq(scope.project_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("API key"));
        }
        audit_in(&txn, scope.org_id, Some(by), "api_key_revoked", &format!("key {id}")).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Appends to the audit log.
    pub async fn audit(&self, scope: OrgScope, user_id: Option<i64>, action: &str, detail: &str) -> StoreResult<()> {
        let _gate = self.write_gate.lock().await;
        audit_in(&self.db, scope.org_id, user_id, action, detail).await
    }

    /// The organisation's audit log, newest first.
    pub async fn audit_log(&self, scope: OrgScope, limit: u64) -> StoreResult<Vec<audit::Model>> {
        use sea_orm::QuerySelect;
        Ok(audit::Entity::find()
            .filter(audit::Column::OrgId.eq(scope.org_id))
            .order_by_desc(audit::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

/// A password account and its membership; `Conflict` when the e-mail or name is taken.
pub(super) async fn insert_account(
    txn: &sea_orm::DatabaseTransaction,
    org_id: i64,
    email: &str,
    name: &str,
    password_hash: &str,
    role: &str,
) -> StoreResult<i64> {
    if user::Entity::find().filter(user::Column::Email.eq(email)).one(txn).await?.is_some() {
        return Err(StoreError::Conflict("an account with this e-mail already exists".into()));
    }
    if user::Entity::find().filter(user::Column::Name.eq(name)).one(txn).await?.is_some() {
        return Err(StoreError::Conflict(format!("the user name `{name}` is taken")));
    }
    let now = now_ms();
    let u = user::ActiveModel {
        name: Set(name.into()),
        email: Set(Some(email.into())),
        password_hash: Set(Some(password_hash.into())),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    membership::ActiveModel { org_id: Set(org_id), user_id: Set(u.id), role: Set(role.into()), created_at: Set(now) }
        .insert(txn)
        .await?;
    Ok(u.id)
}

pub(super) async fn audit_in(
    conn: &impl sea_orm::ConnectionTrait,
    org_id: i64,
    user_id: Option<i64>,
    action: &str,
    detail: &str,
) -> StoreResult<()> {
    audit::ActiveModel {
        org_id: Set(org_id),
        user_id: Set(user_id),
        action: Set(action.into()),
        detail: Set(detail.into()),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}
