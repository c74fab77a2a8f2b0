//! Several server processes sharing one database and one Redis: rate limits and events.

use serde_json::{json, Value};

use crate::accounts::{call, sign_up, token, KEY};
use crate::common::{digits_project, label_truthfully, raw, read_frame, ws_connect, Server};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// API-key rate limits are counted in Redis, so two server processes (sharing one database and
/// one Redis) enforce one limit together.
#[test]
fn rate_limits_are_shared_by_every_process_through_redis() {
    let redis = redis_url();
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 20, "");
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let args = ["--jwt-key", KEY, "--org", "acme", "--redis-url", &redis, "--api-key-rate", "4", "--database-url", &db];
    let first = Server::start(&config, &args);
    let second = Server::start(&config, &args);
    let alice = sign_up(&first, "acme", "alice");
    let (status, key) = call(
        &first,
        "POST",
        "/api/v1/projects/digits/api-keys",
        Some(token(&alice)),
        Some(&json!({ "name": "reader", "scopes": ["read"] })),
    );
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap();
    for server in [&first, &second, &first, &second] {
        let (status, res) = call(server, "GET", "/api/v1/projects/digits/stats", Some(secret), None);
        assert_eq!(status, 200, "{res}");
    }
    for server in [&second, &first] {
        let bearer = format!("Bearer {secret}");
        let (status, body) =
            raw(server.port, "GET", "/api/v1/projects/digits/stats", &[("Authorization", &bearer)], b"").unwrap();
        assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
    }
    // The Retry-After header comes with it.
    let bearer = format!("Bearer {secret}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", first.port)).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /api/v1/projects/digits/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {bearer}\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    s.read_to_string(&mut head).unwrap();
    let retry: u64 = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().parse().unwrap()))
        .expect("Retry-After header");
    assert!((1..=60).contains(&retry), "{head}");
}

/// A browser connected to one process sees the training events of labels sent to another.
#[test]
fn events_reach_subscribers_of_every_process() {
    let redis = redis_url();
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 80, "");
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let args = ["--redis-url", redis.as_str(), "--database-url", db.as_str()];
    let labelled = Server::start(&config, &args);
    let watched = Server::start(&config, &args);
    let mut ws = ws_connect(watched.port, "/api/v1/projects/digits/events");
    let first: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
    assert_eq!(first["type"], "stats");
    label_truthfully(&labelled, "alice", 30);
    let mut seen = std::collections::HashSet::new();
    while !seen.contains("training_finished") {
        let frame: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
        if frame["type"] == "stats" && frame["stats"]["counts"]["labelled"].as_u64() == Some(30) {
            seen.insert("stats_of_the_other_process".to_string());
        }
        seen.insert(frame["type"].as_str().unwrap().to_string());
    }
    assert!(seen.contains("training_started"), "{seen:?}");
    assert!(seen.contains("stats_of_the_other_process"), "{seen:?}");
}
