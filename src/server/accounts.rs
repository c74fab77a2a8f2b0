//! Sign-up, login, token refresh, logout, members and roles, API keys and the audit log.
//! Only with accounts configured (signing keys); in embedded mode these routes answer 404.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{entry_access, identify, AuthConfig, Caller, Grant};
use super::error::ApiError;
use super::AppState;
use crate::auth::roles::{Action, Role};
use crate::auth::tokens::AccessClaims;
use crate::auth::{digest, keys, password, random_secret};
use crate::store::{now_ms, OrgScope};

type Res = Result<HttpResponse, ApiError>;

pub(super) fn accounts(state: &AppState) -> Result<&AuthConfig, ApiError> {
    state.auth.as_ref().ok_or_else(|| ApiError::NotFound("accounts are off: this server runs in embedded mode".into()))
}

/// The caller, when accounts are on and they may manage the organisation's members.
pub(super) async fn member_manager(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    accounts(state)?;
    let who = identify(req, state).await?;
    who.check(Action::ManageMembers)?;
    Ok(who)
}

/// The role of member `user_id` of the organisation (404 when not a member).
async fn member_role(state: &AppState, org: OrgScope, user_id: i64) -> Result<Role, ApiError> {
    state
        .store
        .role_of(org, user_id)
        .await?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| ApiError::NotFound("no such member".into()))
}

pub(super) fn parse_role(role: &str) -> Result<Role, ApiError> {
    Role::parse(role).ok_or_else(|| ApiError::BadRequest("role must be owner, admin, labeller or viewer".into()))
}

pub(super) fn check_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254 && email.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("`{email}` is not an e-mail address")))
    }
}

pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest("a user name is 1-64 letters, digits, '-', '_', '.' or '@'".into()))
    }
}

fn check_slug(slug: &str) -> Result<(), ApiError> {
    let ok = (2..=40).contains(&slug.len())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest("an organisation id is 2-40 lower-case letters, digits or '-'".into()))
    }
}

pub(super) fn check_password(pw: &str) -> Result<(), ApiError> {
    password::check(pw).map_err(ApiError::BadRequest)
}

/// A new session: a refresh token (stored as its digest) and an access token naming it.
pub(super) async fn start_session(state: &AppState, auth: &AuthConfig, org: OrgScope, user_id: i64, role: Role) -> Res {
    let refresh = random_secret(32);
    let sid = state.store.create_session(org, user_id, &digest(&refresh), auth.refresh_ttl_s * 1000).await?;
    let now = now_ms() / 1000;
    let claims = AccessClaims {
        sub: user_id.to_string(),
        org: org.org_id,
        role: role.as_str().into(),
        sid,
        iat: now,
        exp: now + auth.access_ttl_s,
    };
    let access = auth.keys.issue(&claims).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": auth.access_ttl_s,
        "refresh_token": refresh,
        "user_id": user_id,
        "organisation_id": org.org_id,
        "role": role.as_str(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUp {
    organisation: String,
    organisation_name: Option<String>,
    email: String,
    name: String,
    password: String,
}

/// A new organisation and its first owner, signed in.
async fn sign_up(state: web::Data<AppState>, body: web::Json<SignUp>) -> Res {
    let auth = accounts(&state)?;
    let b = body.into_inner();
    check_slug(&b.organisation)?;
    check_email(&b.email)?;
    check_name(&b.name)?;
    check_password(&b.password)?;
    let hash = password::hash(&b.password).map_err(ApiError::internal)?;
    let title = b.organisation_name.unwrap_or_else(|| b.organisation.clone());
    let (org, user_id) = state.store.sign_up(&b.organisation, &title, &b.email, &b.name, &hash).await?;
    start_session(&state, auth, org, user_id, Role::Owner).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
    /// Organisation id (slug) to act in; default: the first the user joined.
    organisation: Option<String>,
}

async fn login(state: web::Data<AppState>, body: web::Json<Login>) -> Res {
    let auth = accounts(&state)?;
    let b = body.into_inner();
    let refused = || ApiError::Unauthenticated("wrong e-mail or password".into());
    let account = state.store.account_by_email(&b.email).await?;
    // The same argon2 work whether or not the account exists: timing tells nothing.
    let stored = account.as_ref().and_then(|a| a.password_hash.clone()).unwrap_or_else(|| auth.dummy_hash.clone());
    let ok = password::verify(&b.password, &stored) && account.is_some();
    let Some(account) = account.filter(|_| ok) else {
        return Err(refused());
    };
    let memberships = state.store.memberships_of(account.user_id).await?;
    let chosen = match &b.organisation {
        Some(slug) => memberships.iter().find(|m| &m.slug == slug),
        None => memberships.first(),
    };
    let chosen = chosen.ok_or_else(|| ApiError::Forbidden("you are not a member of that organisation".into()))?;
    let org = OrgScope { org_id: chosen.org_id };
    let role = Role::parse(&chosen.role).ok_or_else(|| ApiError::internal("unknown role in the database"))?;
    state.store.audit(org, Some(account.user_id), "login", &account.name).await?;
    start_session(&state, auth, org, account.user_id, role).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshIn {
    refresh_token: String,
}

/// Rotates the refresh token: the old one stops working, whoever uses it next.
async fn refresh(state: web::Data<AppState>, body: web::Json<RefreshIn>) -> Res {
    let auth = accounts(&state)?;
    let session = state
        .store
        .session_by_token(&digest(&body.refresh_token))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the refresh token is unknown, expired or revoked".into()))?;
    if !state.store.revoke_session(session.id).await? {
        return Err(ApiError::Unauthenticated("the refresh token was just used".into()));
    }
    let org = OrgScope { org_id: session.org_id };
    let role = state
        .store
        .role_of(org, session.user_id)
        .await?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| ApiError::Unauthenticated("you are no longer a member of this organisation".into()))?;
    start_session(&state, auth, org, session.user_id, role).await
}

/// Ends the session of the refresh token given (or of the access token presented).
async fn logout(req: HttpRequest, state: web::Data<AppState>, body: Option<web::Json<RefreshIn>>) -> Res {
    accounts(&state)?;
    let sid = match body {
        Some(b) => state.store.session_by_token(&digest(&b.refresh_token)).await?.map(|s| s.id),
        None => match identify(&req, &state).await?.grant {
            Grant::Role { session, .. } => session,
            Grant::Key { .. } => None,
        },
    };
    let sid = sid.ok_or_else(|| ApiError::Unauthenticated("no live session to end".into()))?;
    state.store.revoke_session(sid).await?;
    Ok(HttpResponse::Ok().json(json!({ "logged_out": true })))
}

/// Who the caller is, in which organisation, and which others they may switch to.
async fn me(req: HttpRequest, state: web::Data<AppState>) -> Res {
    let who = identify(&req, &state).await?;
    let memberships = match who.grant {
        Grant::Role { .. } => state.store.memberships_of(who.user_id).await?,
        Grant::Key { .. } => Vec::new(),
    };
    let current = memberships.iter().find(|m| m.org_id == who.org.org_id);
    let email = match who.grant {
        Grant::Role { .. } => state.store.credentials_of(who.user_id).await?.0,
        Grant::Key { .. } => None,
    };
    let organisations: Vec<Value> =
        memberships.iter().map(|m| json!({ "id": m.org_id, "slug": m.slug, "name": m.name, "role": m.role })).collect();
    Ok(HttpResponse::Ok().json(json!({
        "user_id": who.user_id,
        "name": who.name,
        "email": email,
        "organisation_id": who.org.org_id,
        "organisation": current.map(|m| m.slug.clone()),
        "organisation_name": current.map(|m| m.name.clone()),
        "role": who.role().map(Role::as_str),
        "accounts": state.auth.is_some(),
        "organisations": organisations,
    })))
}

/// What the browser app needs to know before anyone signs in.
async fn server_info(state: web::Data<AppState>) -> Res {
    Ok(HttpResponse::Ok().json(json!({
        "accounts": state.auth.is_some(),
        "s3": state.s3.is_some(),
        "upload_limit_bytes": state.upload_limit_bytes,
        "file_limit_bytes": state.file_limit_bytes,
    })))
}

/// The signed-in caller's person and session (API keys have neither).
fn person(who: &Caller) -> Result<Option<i64>, ApiError> {
    match who.grant {
        Grant::Role { session, .. } => Ok(session),
        Grant::Key { .. } => Err(ApiError::Forbidden("an API key has no account".into())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchIn {
    organisation: String,
}

/// A session in another organisation of the caller's; the current one ends.
async fn switch(req: HttpRequest, state: web::Data<AppState>, body: web::Json<SwitchIn>) -> Res {
    let auth = accounts(&state)?;
    let who = identify(&req, &state).await?;
    let session = person(&who)?;
    let memberships = state.store.memberships_of(who.user_id).await?;
    let target = memberships
        .iter()
        .find(|m| m.slug == body.organisation)
        .ok_or_else(|| ApiError::Forbidden("you are not a member of that organisation".into()))?;
    let role = Role::parse(&target.role).ok_or_else(|| ApiError::internal("unknown role in the database"))?;
    if let Some(sid) = session {
        state.store.revoke_session(sid).await?;
    }
    start_session(&state, auth, OrgScope { org_id: target.org_id }, who.user_id, role).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordIn {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every session of theirs ends, and this answer is a new one.
async fn change_password(req: HttpRequest, state: web::Data<AppState>, body: web::Json<PasswordIn>) -> Res {
    let auth = accounts(&state)?;
    let who = identify(&req, &state).await?;
    person(&who)?;
    let role = who.role().ok_or_else(|| ApiError::internal("a person without a role"))?;
    let (_, stored) = state.store.credentials_of(who.user_id).await?;
    let stored = stored.unwrap_or_else(|| auth.dummy_hash.clone());
    if !password::verify(&body.current_password, &stored) {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    check_password(&body.new_password)?;
    let hash = password::hash(&body.new_password).map_err(ApiError::internal)?;
    state.store.set_password(who.org, who.user_id, &hash).await?;
    start_session(&state, auth, who.org, who.user_id, role).await
}

async fn members(req: HttpRequest, state: web::Data<AppState>) -> Res {
    let who = member_manager(&req, &state).await?;
    let list: Vec<Value> = state
        .store
        .members(who.org)
        .await?
        .into_iter()
        .map(|(id, name, email, role)| json!({ "user_id": id, "name": name, "email": email, "role": role }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "members": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    name: String,
    password: String,
    role: String,
}

/// An admin creates a member's account with a first password (the member signs in with it).
async fn add_member(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewMember>) -> Res {
    let who = member_manager(&req, &state).await?;
    let b = body.into_inner();
    let role = parse_role(&b.role)?;
    if !who.role().is_some_and(|r| r.may_assign(role)) {
        return Err(ApiError::Forbidden(format!("you may not make someone {}", role.as_str())));
    }
    check_email(&b.email)?;
    check_name(&b.name)?;
    check_password(&b.password)?;
    let hash = password::hash(&b.password).map_err(ApiError::internal)?;
    let id = state.store.add_account(who.org, &b.email, &b.name, &hash, role.as_str(), who.user_id).await?;
    Ok(HttpResponse::Created().json(json!({ "user_id": id, "name": b.name, "role": role.as_str() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleIn {
    role: String,
}

async fn set_role(req: HttpRequest, state: web::Data<AppState>, uid: web::Path<i64>, body: web::Json<RoleIn>) -> Res {
    let who = member_manager(&req, &state).await?;
    let role = parse_role(&body.role)?;
    let current = member_role(&state, who.org, *uid).await?;
    let mine = who.role().unwrap_or(Role::Viewer);
    if !mine.may_assign(role) || !mine.may_assign(current) {
        return Err(ApiError::Forbidden("you may not change that member's role".into()));
    }
    state.store.set_role(who.org, *uid, role.as_str(), who.user_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "user_id": *uid, "role": role.as_str() })))
}

async fn remove_member(req: HttpRequest, state: web::Data<AppState>, uid: web::Path<i64>) -> Res {
    let who = member_manager(&req, &state).await?;
    let current = member_role(&state, who.org, *uid).await?;
    if !who.role().is_some_and(|r| r.may_assign(current)) {
        return Err(ApiError::Forbidden("you may not remove that member".into()));
    }
    state.store.remove_member(who.org, *uid, who.user_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "removed": *uid })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

/// A new API key for the project: the key is in this response only.
async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    pid: web::Path<String>,
    body: web::Json<NewKey>,
) -> Res {
    accounts(&state)?;
    let (who, h) = entry_access(&req, &state, &pid, Action::ManageKeys).await?;
    let b = body.into_inner();
    if b.name.is_empty() || b.name.len() > 100 {
        return Err(ApiError::BadRequest("a key's name is 1-100 characters".into()));
    }
    let mut scopes = Vec::new();
    for s in &b.scopes {
        let scope =
            keys::Scope::parse(s).ok_or_else(|| ApiError::BadRequest(format!("unknown scope `{s}` (score, read)")))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::BadRequest("give at least one scope (score, read)".into()));
    }
    let scopes = scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    let (key, prefix, hash) = keys::generate();
    let row = state.store.create_api_key(h.scope, &b.name, &prefix, &hash, &scopes, who.user_id).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.id, "name": row.name, "prefix": prefix, "scopes": scopes.split(',').collect::<Vec<_>>(),
        "key": key,
        "note": "this is the only time the key is shown",
    })))
}

async fn list_keys(req: HttpRequest, state: web::Data<AppState>, pid: web::Path<String>) -> Res {
    accounts(&state)?;
    let (_, h) = entry_access(&req, &state, &pid, Action::ManageKeys).await?;
    let list: Vec<Value> = state
        .store
        .api_keys(h.scope)
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes.split(',').collect::<Vec<_>>(),
                "created_at": k.created_at, "last_used_at": k.last_used_at, "revoked": k.revoked_at.is_some(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": list })))
}

async fn revoke_key(req: HttpRequest, state: web::Data<AppState>, path: web::Path<(String, i64)>) -> Res {
    accounts(&state)?;
    let (pid, id) = path.into_inner();
    let (who, h) = entry_access(&req, &state, &pid, Action::ManageKeys).await?;
    state.store.revoke_api_key(h.scope, id, who.user_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id })))
}

async fn audit_log(req: HttpRequest, state: web::Data<AppState>) -> Res {
    let who = member_manager(&req, &state).await?;
    let rows: Vec<Value> = state
        .store
        .audit_log(who.org, 500)
        .await?
        .into_iter()
        .map(|a| json!({ "at": a.created_at, "user_id": a.user_id, "action": a.action, "detail": a.detail }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "entries": rows })))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/auth/signup", web::post().to(sign_up))
        .route("/api/v1/auth/login", web::post().to(login))
        .route("/api/v1/auth/refresh", web::post().to(refresh))
        .route("/api/v1/auth/logout", web::post().to(logout))
        .route("/api/v1/auth/switch", web::post().to(switch))
        .route("/api/v1/auth/password", web::post().to(change_password))
        .route("/api/v1/server", web::get().to(server_info))
        .route("/api/v1/me", web::get().to(me))
        .route("/api/v1/members", web::get().to(members))
        .route("/api/v1/members", web::post().to(add_member))
        .route("/api/v1/members/{uid}", web::patch().to(set_role))
        .route("/api/v1/members/{uid}", web::delete().to(remove_member))
        .route("/api/v1/audit", web::get().to(audit_log))
        .route("/api/v1/projects/{pid}/api-keys", web::get().to(list_keys))
        .route("/api/v1/projects/{pid}/api-keys", web::post().to(create_key))
        .route("/api/v1/projects/{pid}/api-keys/{kid}", web::delete().to(revoke_key));
}
