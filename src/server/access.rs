//! Who is calling, and may they? One place for REST and WebSocket routes alike.
//!
//! Embedded mode (no signing keys configured, loopback only): the caller is the labeller named
//! by `X-Lightbulb-User` (or the config's user), an owner of the local organisation. With
//! accounts: `Authorization: Bearer <token>` (or `?access_token=` on the WebSocket, which
//! browsers cannot give headers) holds either an access token (JWT, checked against its live
//! session and the caller's current role) or an API key (`lb_...`, one project, scoped).
//! A project of another organisation, or outside an API key's project, is a 404: callers
//! cannot learn that it exists.

use actix_web::HttpRequest;

use super::error::ApiError;
use super::AppState;
use crate::auth::keys::{self, Scope};
use crate::auth::roles::{Action, Role};
use crate::auth::tokens::{SigningKeys, TokenError};
use std::sync::Arc;

use super::registry::Entry;
use crate::project::ProjectHandle;
use crate::store::OrgScope;

/// How precisely an API key's last use is recorded.
const LAST_USE_RESOLUTION_MS: i64 = 60_000;

/// Accounts configuration (present: sign-in required on every API route).
pub struct AuthConfig {
    pub keys: SigningKeys,
    /// Access token lifetime, seconds.
    pub access_ttl_s: i64,
    /// Refresh token (session) lifetime, seconds.
    pub refresh_ttl_s: i64,
    /// An argon2id hash of a random password: logins for unknown e-mails verify against it,
    /// so they take as long as real ones.
    pub dummy_hash: String,
}

pub struct Caller {
    pub user_id: i64,
    pub name: String,
    pub org: OrgScope,
    pub grant: Grant,
}

pub enum Grant {
    /// A person, with their role in `org`.
    Role { role: Role, session: Option<i64> },
    /// An API key of one project.
    Key { id: i64, project_id: i64, scopes: Vec<Scope> },
}

impl Caller {
    pub fn role(&self) -> Option<Role> {
        match self.grant {
            Grant::Role { role, .. } => Some(role),
            Grant::Key { .. } => None,
        }
    }

    /// Forbidden unless the caller may do `action`.
    pub fn check(&self, action: Action) -> Result<(), ApiError> {
        let allowed = match &self.grant {
            Grant::Role { role, .. } => role.allows(action),
            Grant::Key { scopes, .. } => match action {
                Action::Score => scopes.contains(&Scope::Score),
                Action::Read => scopes.contains(&Scope::Read),
                _ => false,
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match &self.grant {
                Grant::Role { role, .. } => format!("a {} may not do this", role.as_str()),
                Grant::Key { .. } => "this API key's scopes do not allow this".into(),
            }))
        }
    }
}

/// The token of `Authorization: Bearer`, else of `?access_token=`.
pub(super) fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    let query = req.query_string();
    query.split('&').find_map(|pair| pair.strip_prefix("access_token=")).map(str::to_string)
}

/// Identifies the caller (401 when accounts are on and no valid credential is presented).
pub async fn identify(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let Some(auth) = &state.auth else {
        let (user_id, name) = super::routes::caller(req, state).await?;
        return Ok(Caller { user_id, name, org: state.org, grant: Grant::Role { role: Role::Owner, session: None } });
    };
    let token = presented_token(req)
        .ok_or_else(|| ApiError::Unauthenticated("sign in first: send Authorization: Bearer <token>".into()))?;
    if let Some(presented) = keys::parse(&token) {
        let key = state
            .store
            .api_key_by_prefix(presented.prefix)
            .await?
            .filter(|k| crate::auth::same(&k.key_hash, &crate::auth::digest(presented.whole)))
            .ok_or_else(|| ApiError::Unauthenticated("the API key is unknown or revoked".into()))?;
        // A request forwarded by another process of the deployment was counted there.
        if !super::forward::is_forwarded(state, req.headers()) {
            state.limiter.hit(&key.prefix, state.api_key_rate, &state.metrics).await.map_err(ApiError::RateLimited)?;
        }
        // Last use to the minute: a scoring client does not turn every request into a write.
        let stale = key.last_used_at.is_none_or(|t| crate::store::now_ms() - t >= LAST_USE_RESOLUTION_MS);
        if stale {
            if let Err(e) = state.store.touch_api_key(key.id).await {
                tracing::warn!(error = %e, "recording an API key's use failed");
            }
        }
        let scopes = key.scopes.split(',').filter_map(Scope::parse).collect();
        return Ok(Caller {
            user_id: key.created_by,
            name: format!("api-key:{}", key.prefix),
            org: OrgScope { org_id: key.org_id },
            grant: Grant::Key { id: key.id, project_id: key.project_id, scopes },
        });
    }
    let claims = auth.keys.verify(&token).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthenticated("the access token has expired: refresh it".into()),
        other => ApiError::Unauthenticated(other.to_string()),
    })?;
    let user_id = claims.user_id().ok_or_else(|| ApiError::Unauthenticated("the token names no user".into()))?;
    if !state.store.session_live(claims.sid, user_id).await? {
        return Err(ApiError::Unauthenticated("the session has ended: sign in again".into()));
    }
    let org = OrgScope { org_id: claims.org };
    let role = state
        .store
        .role_of(org, user_id)
        .await?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| ApiError::Unauthenticated("you are no longer a member of this organisation".into()))?;
    let name = state.user_name(user_id).await?;
    Ok(Caller { user_id, name, org, grant: Grant::Role { role, session: Some(claims.sid) } })
}

/// The organisation a request acts in, from its credential alone (no session check): enough
/// to route it; the process that answers checks everything else. An API key's request is
/// counted against its rate limit here, since the process it is forwarded to will not.
pub async fn caller_org(req: &HttpRequest, state: &AppState) -> Result<Option<i64>, ApiError> {
    let Some(auth) = &state.auth else { return Ok(Some(state.org.org_id)) };
    let Some(token) = presented_token(req) else { return Ok(None) };
    if let Some(presented) = keys::parse(&token) {
        let Some(key) = state.store.api_key_by_prefix(presented.prefix).await? else { return Ok(None) };
        state.limiter.hit(&key.prefix, state.api_key_rate, &state.metrics).await.map_err(ApiError::RateLimited)?;
        return Ok(Some(key.org_id));
    }
    Ok(auth.keys.verify(&token).ok().map(|claims| claims.org))
}

/// The caller and the open project `pid`, when they may do `action` on it. A project still
/// being ingested answers 409 with its status.
pub async fn project_access(
    req: &HttpRequest,
    state: &AppState,
    pid: &str,
    action: Action,
) -> Result<(Caller, ProjectHandle), ApiError> {
    let (caller, entry) = entry_access(req, state, pid, action).await?;
    let handle = open_handle(&entry)?;
    Ok((caller, handle))
}

/// The caller and the project `pid` whether or not it is open yet.
pub async fn entry_access(
    req: &HttpRequest,
    state: &AppState,
    pid: &str,
    action: Action,
) -> Result<(Caller, Arc<Entry>), ApiError> {
    let caller = identify(req, state).await?;
    let entry = visible_entry(state, &caller, pid)?;
    caller.check(action)?;
    Ok((caller, entry))
}

/// The running project of an entry, or why there is none yet.
pub fn open_handle(entry: &Entry) -> Result<ProjectHandle, ApiError> {
    if let Some(owner) = entry.remote_owner() {
        return Err(ApiError::NotReady(format!(
            "project `{}` is run by another server process ({owner}) and this request was not forwarded; retry",
            entry.slug
        )));
    }
    entry.handle().cloned().ok_or_else(|| {
        ApiError::Conflict(format!(
            "project `{}` is not open yet (status {}): see GET /api/v1/projects/{}/ingest",
            entry.slug,
            entry.shown_status(),
            entry.slug
        ))
    })
}

/// The project when the caller may see it at all (else the same 404 as a missing project).
pub fn visible_entry(state: &AppState, caller: &Caller, pid: &str) -> Result<Arc<Entry>, ApiError> {
    let not_found = || ApiError::NotFound(format!("project `{pid}` not found"));
    let entry = state.projects.get(caller.org.org_id, pid).ok_or_else(not_found)?;
    if let Grant::Key { project_id, .. } = caller.grant {
        if project_id != entry.scope.project_id {
            return Err(not_found());
        }
    }
    Ok(entry)
}
