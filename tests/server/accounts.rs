//! Accounts: sign-up, login, refresh, logout, roles, API keys, and tenant isolation over every
//! project route, against the real binary with signing keys configured.

use serde_json::{json, Value};

use crate::common::{assets, digits_project, raw, truth, Server};
use lightbulb::auth::tokens::{AccessClaims, SigningKeys};

pub const KEY: &str = "k1:0123456789abcdef0123456789abcdef-test";

pub fn call(server: &Server, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, body) = raw(server.port, method, path, &headers, &bytes).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub fn sign_up(server: &Server, org: &str, name: &str) -> Value {
    let body = json!({ "organisation": org, "email": format!("{name}@{org}.test"), "name": name, "password": "a long enough password" });
    let (status, tokens) = call(server, "POST", "/api/v1/auth/signup", None, Some(&body));
    assert_eq!(status, 200, "{tokens}");
    tokens
}

pub fn token(v: &Value) -> &str {
    v["access_token"].as_str().unwrap()
}

/// Labels with the true digit as `token`'s user; returns the number labelled.
fn label(server: &Server, token: &str, n: usize) -> usize {
    let truth = truth();
    let (status, next) = call(server, "GET", &format!("/api/v1/projects/digits/next?count={n}"), Some(token), None);
    assert_eq!(status, 200, "{next}");
    let labels: Vec<Value> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({ "item_id": i["id"], "label": truth[i["path"].as_str().unwrap()], "time_taken_ms": 500 }))
        .collect();
    let (status, res) =
        call(server, "POST", "/api/v1/projects/digits/labels", Some(token), Some(&json!({ "labels": labels })));
    assert_eq!(status, 200, "{res}");
    labels.len()
}

/// Every project route, with a body where it needs one.
fn project_routes() -> Vec<(&'static str, String, Option<Value>)> {
    let p = "/api/v1/projects/digits";
    vec![
        ("GET", p.to_string(), None),
        ("GET", format!("{p}/next?count=1"), None),
        ("POST", format!("{p}/labels"), Some(json!({ "item_id": 1, "label": "0" }))),
        ("POST", format!("{p}/labels/undo"), Some(json!({}))),
        ("POST", format!("{p}/skip"), Some(json!({ "item_id": 1 }))),
        ("GET", format!("{p}/items"), None),
        ("GET", format!("{p}/items/1/content"), None),
        ("GET", format!("{p}/stats"), None),
        ("GET", format!("{p}/export?format=csv"), None),
        ("GET", format!("{p}/model"), None),
        ("GET", format!("{p}/batches/next"), None),
        ("POST", format!("{p}/batches/b1/confirm"), Some(json!({}))),
        ("POST", format!("{p}/score"), Some(json!({ "texts": ["x"] }))),
        ("GET", format!("{p}/events"), None),
        ("GET", format!("{p}/api-keys"), None),
        ("POST", format!("{p}/api-keys"), Some(json!({ "name": "k", "scopes": ["score"] }))),
        ("DELETE", format!("{p}/api-keys/1"), None),
    ]
}

#[test]
fn accounts_roles_keys_and_tenant_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 60, "");
    let server = Server::start(&config, &["--jwt-key", KEY, "--org", "acme"]);

    // No credential: 401 on every project route, and on the list.
    for (method, path, body) in project_routes() {
        let (status, res) = call(&server, method, &path, None, body.as_ref());
        assert_eq!(status, 401, "{method} {path}: {res}");
        assert_eq!(res["error"]["code"], "unauthenticated");
    }
    assert_eq!(call(&server, "GET", "/api/v1/projects", None, None).0, 401);

    // The first sign-up of the configured organisation owns it; a second is refused.
    let alice = sign_up(&server, "acme", "alice");
    let body =
        json!({ "organisation": "acme", "email": "eve@x.test", "name": "eve", "password": "a long enough password" });
    assert_eq!(call(&server, "POST", "/api/v1/auth/signup", None, Some(&body)).0, 409);
    // Bad input is named.
    let weak = json!({ "organisation": "initech", "email": "p@initech.test", "name": "p", "password": "short" });
    let (status, res) = call(&server, "POST", "/api/v1/auth/signup", None, Some(&weak));
    assert_eq!(status, 400);
    assert!(res["error"]["message"].as_str().unwrap().contains("at least"), "{res}");

    // Another organisation sees nothing of acme's: every route is a 404.
    let bob = sign_up(&server, "globex", "bob");
    let (status, list) = call(&server, "GET", "/api/v1/projects", Some(token(&bob)), None);
    assert_eq!(status, 200);
    assert_eq!(list["projects"], json!([]));
    for (method, path, body) in project_routes() {
        let (status, res) = call(&server, method, &path, Some(token(&bob)), body.as_ref());
        assert_eq!(status, 404, "{method} {path}: {res}");
    }
    let (_, list) = call(&server, "GET", "/api/v1/projects", Some(token(&alice)), None);
    assert_eq!(list["projects"][0]["id"], "digits", "{list}");

    // Alice labels; a model is trained.
    assert_eq!(label(&server, token(&alice), 30), 30);
    let started = std::time::Instant::now();
    loop {
        let (_, s) = call(&server, "GET", "/api/v1/projects/digits/stats", Some(token(&alice)), None);
        if s["model_version"].as_i64() >= Some(1) {
            break;
        }
        assert!(started.elapsed().as_secs() < 120, "no model: {s}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // A viewer reads but cannot label, export or manage keys.
    let carol =
        json!({ "email": "carol@acme.test", "name": "carol", "password": "carol's long password", "role": "viewer" });
    let (status, res) = call(&server, "POST", "/api/v1/members", Some(token(&alice)), Some(&carol));
    assert_eq!(status, 201, "{res}");
    let carol_id = res["user_id"].as_i64().unwrap();
    let login = json!({ "email": "carol@acme.test", "password": "carol's long password" });
    let (status, carol) = call(&server, "POST", "/api/v1/auth/login", None, Some(&login));
    assert_eq!(status, 200, "{carol}");
    assert_eq!(carol["role"], "viewer");
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(token(&carol)), None).0, 200);
    for (method, path, body) in project_routes() {
        let writes = method != "GET" && !path.ends_with("/score")
            || path.contains("export")
            || path.contains("/model")
            || path.contains("api-keys")
            || path.contains("/next");
        if writes {
            let (status, res) = call(&server, method, &path, Some(token(&carol)), body.as_ref());
            assert_eq!(status, 403, "viewer on {method} {path}: {res}");
        }
    }
    // A viewer cannot promote herself.
    let (status, _) = call(
        &server,
        "PATCH",
        &format!("/api/v1/members/{carol_id}"),
        Some(token(&carol)),
        Some(&json!({ "role": "admin" })),
    );
    assert_eq!(status, 403);
    let wrong = json!({ "email": "carol@acme.test", "password": "not her password at all" });
    assert_eq!(call(&server, "POST", "/api/v1/auth/login", None, Some(&wrong)).0, 401);

    // Expired tokens and tokens signed with another key are refused.
    let keys = SigningKeys::parse(&[KEY.into()], None).unwrap();
    let now = lightbulb::store::now_ms() / 1000;
    let claims = |exp: i64| AccessClaims {
        sub: alice["user_id"].to_string(),
        org: alice["organisation_id"].as_i64().unwrap(),
        role: "owner".into(),
        sid: 1,
        iat: now - 100,
        exp,
    };
    let expired = keys.issue(&claims(now - 10)).unwrap();
    let (status, res) = call(&server, "GET", "/api/v1/projects/digits/stats", Some(&expired), None);
    assert_eq!(status, 401);
    assert!(res["error"]["message"].as_str().unwrap().contains("expired"), "{res}");
    let forger = SigningKeys::parse(&["k1:someone-else's-secret-of-enough-bytes".into()], None).unwrap();
    let forged = forger.issue(&claims(now + 600)).unwrap();
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(&forged), None).0, 401);
    let unknown_kid = SigningKeys::parse(&["k9:0123456789abcdef0123456789abcdef-test".into()], None).unwrap();
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/projects/digits/stats",
            Some(&unknown_kid.issue(&claims(now + 600)).unwrap()),
            None
        )
        .0,
        401
    );

    // Refresh rotates: the old refresh token is dead, the new one works; logout ends the
    // session and its access tokens at once.
    let refresh = json!({ "refresh_token": alice["refresh_token"] });
    let (status, alice2) = call(&server, "POST", "/api/v1/auth/refresh", None, Some(&refresh));
    assert_eq!(status, 200, "{alice2}");
    assert_eq!(
        call(&server, "POST", "/api/v1/auth/refresh", None, Some(&refresh)).0,
        401,
        "a used refresh token is revoked"
    );
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(token(&alice2)), None).0, 200);
    let (status, _) =
        call(&server, "POST", "/api/v1/auth/logout", None, Some(&json!({ "refresh_token": alice2["refresh_token"] })));
    assert_eq!(status, 200);
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(token(&alice2)), None).0, 401);
    let login = json!({ "email": "alice@acme.test", "password": "a long enough password" });
    let (status, alice) = call(&server, "POST", "/api/v1/auth/login", None, Some(&login));
    assert_eq!(status, 200, "{alice}");

    // API keys: shown once, scoped, revocable, with last use recorded.
    let (status, key) = call(
        &server,
        "POST",
        "/api/v1/projects/digits/api-keys",
        Some(token(&alice)),
        Some(&json!({ "name": "scorer", "scopes": ["score"] })),
    );
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_string();
    let png = std::fs::read(assets().join("data/mnist/images/00000.png")).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let (status, scored) =
        call(&server, "POST", "/api/v1/projects/digits/score", Some(&secret), Some(&json!({ "images_base64": [b64] })));
    assert_eq!(status, 200, "{scored}");
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(&secret), None).0, 403, "no read scope");
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/v1/projects/digits/labels",
            Some(&secret),
            Some(&json!({ "item_id": 1, "label": "0" }))
        )
        .0,
        403
    );
    let (_, keys_list) = call(&server, "GET", "/api/v1/projects/digits/api-keys", Some(token(&alice)), None);
    assert!(keys_list["keys"][0]["last_used_at"].as_i64().is_some(), "{keys_list}");
    assert!(!keys_list.to_string().contains(&secret), "the key is never shown again");
    let kid = key["id"].as_i64().unwrap();
    assert_eq!(
        call(&server, "DELETE", &format!("/api/v1/projects/digits/api-keys/{kid}"), Some(token(&alice)), None).0,
        200
    );
    assert_eq!(
        call(&server, "POST", "/api/v1/projects/digits/score", Some(&secret), Some(&json!({ "images_base64": [b64] })))
            .0,
        401
    );

    // Removing a member ends their access at once.
    assert_eq!(call(&server, "DELETE", &format!("/api/v1/members/{carol_id}"), Some(token(&alice)), None).0, 200);
    assert_eq!(call(&server, "GET", "/api/v1/projects/digits/stats", Some(token(&carol)), None).0, 401);

    // The audit log has the security-relevant actions.
    let (status, audit) = call(&server, "GET", "/api/v1/audit", Some(token(&alice)), None);
    assert_eq!(status, 200);
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["signup", "login", "member_added", "api_key_created", "api_key_revoked", "member_removed"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(!audit.to_string().contains("globex"), "bob's organisation is not in acme's log");
}

#[test]
fn binding_beyond_loopback_needs_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 10, "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lightbulb"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--bind", "0.0.0.0:0", "--jwt-key", "k1:short"])
        .env("LIGHTBULB_ASSETS", assets())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 32 bytes"), "{err}");
    assert!(!err.contains("k1:short"), "a secret reached the log: {err}");
}
