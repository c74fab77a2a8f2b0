//! Invitations by link: an admin invites an e-mail with a role and gets a link holding a
//! random token (stored as its digest, valid for a week, used once); whoever opens the link
//! joins with a new account, or with an existing one by giving its password.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::{accounts, check_email, check_name, check_password, member_manager, parse_role, start_session};
use super::error::ApiError;
use super::AppState;
use crate::auth::roles::Role;
use crate::auth::{digest, password, random_secret};
use crate::store::hosted::Accepting;

type Res = Result<HttpResponse, ApiError>;

/// How long an invitation link works.
const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvitation {
    email: String,
    role: String,
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewInvitation>) -> Res {
    let who = member_manager(&req, &state).await?;
    let role = parse_role(&body.role)?;
    if !who.role().is_some_and(|r| r.may_assign(role)) {
        return Err(ApiError::Forbidden(format!("you may not make someone {}", role.as_str())));
    }
    check_email(&body.email)?;
    let token = random_secret(32);
    let row = state
        .store
        .create_invitation(who.org, &body.email, role.as_str(), &digest(&token), INVITATION_TTL_MS, who.user_id)
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "token": token,
        "url": format!("/invite/{token}"),
        "expires_at": row.expires_at,
        "note": "this is the only time the link is shown",
    })))
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Res {
    let who = member_manager(&req, &state).await?;
    let rows: Vec<Value> = state
        .store
        .invitations(who.org)
        .await?
        .into_iter()
        .map(|i| {
            json!({ "id": i.id, "email": i.email, "role": i.role, "created_at": i.created_at, "expires_at": i.expires_at })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "invitations": rows })))
}

async fn revoke(req: HttpRequest, state: web::Data<AppState>, id: web::Path<i64>) -> Res {
    let who = member_manager(&req, &state).await?;
    state.store.revoke_invitation(who.org, *id, who.user_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": *id })))
}

/// What the link is for (public: the token is the credential).
async fn lookup(state: web::Data<AppState>, token: web::Path<String>) -> Res {
    accounts(&state)?;
    let inv = state
        .store
        .invitation_by_token(&digest(&token))
        .await?
        .ok_or_else(|| ApiError::NotFound("this invitation link is unknown, used, revoked or expired".into()))?;
    Ok(HttpResponse::Ok().json(json!({
        "organisation": inv.org_slug,
        "organisation_name": inv.org_name,
        "email": inv.row.email,
        "role": inv.row.role,
        "expires_at": inv.row.expires_at,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptIn {
    token: String,
    name: String,
    password: String,
}

/// Joins the organisation of the invitation, signed in.
async fn accept(state: web::Data<AppState>, body: web::Json<AcceptIn>) -> Res {
    let auth = accounts(&state)?;
    let b = body.into_inner();
    let hash = digest(&b.token);
    let inv = state
        .store
        .invitation_by_token(&hash)
        .await?
        .ok_or_else(|| ApiError::NotFound("this invitation link is unknown, used, revoked or expired".into()))?;
    let existing = state.store.account_by_email(&inv.row.email).await?;
    let (org, user_id, role) = match existing {
        Some(account) => {
            let stored = account.password_hash.clone().unwrap_or_else(|| auth.dummy_hash.clone());
            if !password::verify(&b.password, &stored) {
                return Err(ApiError::Forbidden(
                    "an account with this e-mail exists: give its password to join".into(),
                ));
            }
            state.store.accept_invitation(&hash, Accepting::Existing { user_id: account.user_id }).await?
        }
        None => {
            check_name(&b.name)?;
            check_password(&b.password)?;
            let password_hash = password::hash(&b.password).map_err(ApiError::internal)?;
            state
                .store
                .accept_invitation(&hash, Accepting::New { name: &b.name, password_hash: &password_hash })
                .await?
        }
    };
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("unknown role in the database"))?;
    start_session(&state, auth, org, user_id, role).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/invitations", web::post().to(create))
        .route("/api/v1/invitations", web::get().to(list))
        .route("/api/v1/invitations/{id}", web::delete().to(revoke))
        .route("/api/v1/invitations/{token}", web::get().to(lookup))
        .route("/api/v1/auth/accept", web::post().to(accept));
}
