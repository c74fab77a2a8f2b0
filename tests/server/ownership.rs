//! Several processes on one project: one runs its actor, the others forward to it, and when
//! the owner dies another takes over within the lease's lifetime, rebuilding from the
//! database. No item is ever handed to two labellers, whichever process they talk to.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{digits_project, read_frame, truth, ws_connect, Server};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Leases `count` items as `user` and labels them truthfully; returns the item ids.
fn lease_and_label(server: &Server, user: &str, count: usize) -> Vec<i64> {
    let truth = truth();
    let (status, next) = server.get_as(user, &format!("/api/v1/projects/digits/next?count={count}"));
    assert_eq!(status, 200, "{next}\n{}", server.log_text());
    let items = next["items"].as_array().unwrap().clone();
    let mut ids = Vec::new();
    for item in &items {
        let body =
            json!({ "item_id": item["id"], "label": truth[item["path"].as_str().unwrap()], "time_taken_ms": 400 });
        let (status, res) = server.post_as(user, "/api/v1/projects/digits/labels", &body);
        assert_eq!(status, 200, "{res}");
        ids.push(item["id"].as_i64().unwrap());
    }
    ids
}

#[test]
fn one_process_runs_a_project_others_forward_and_take_over_when_it_dies() {
    let redis = redis_url();
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 80, "");
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let args = ["--redis-url", redis.as_str(), "--database-url", db.as_str()];
    let env = [("LIGHTBULB__OWNER_TTL_S", "3")];
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(&args);
    let owner = Server::start_hosted(dir.path(), &all, &env);
    let other = Server::start_hosted(dir.path(), &all, &env);

    // Labellers on both processes: every item leased once, every label counted once.
    let mut seen = HashSet::new();
    for round in 0..4 {
        for (server, user) in [(&owner, "ann"), (&other, "bob")] {
            for id in lease_and_label(server, &format!("{user}{round}"), 3) {
                assert!(seen.insert(id), "item {id} was handed out twice");
            }
        }
    }
    let (_, stats) = other.get("/api/v1/projects/digits/stats");
    assert_eq!(stats["counts"]["labelled"], 24, "both processes see one project: {stats}");
    // The WebSocket of the forwarding process gets the owner's stats and events.
    let mut ws = ws_connect(other.port, "/api/v1/projects/digits/events");
    let first: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
    assert_eq!((first["type"].as_str(), first["stats"]["counts"]["labelled"].as_u64()), (Some("stats"), Some(24)));
    lease_and_label(&owner, "carl", 1);
    let started = Instant::now();
    loop {
        let frame: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
        if frame["type"] == "stats" && frame["stats"]["counts"]["labelled"] == 25 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no relayed stats frame");
    }

    // Eve holds two items (leased through the forwarding process) when the owner dies.
    let (status, held) = other.get_as("eve", "/api/v1/projects/digits/next?count=2");
    assert_eq!(status, 200, "{held}");
    let held: Vec<Value> = held["items"].as_array().unwrap().clone();
    assert_eq!(held.len(), 2);
    // Leases are written to Redis after the answer: give the writer a moment.
    std::thread::sleep(Duration::from_millis(300));

    // The owner dies without a word; within the lease (3 s) and a round, the other takes over.
    owner.kill9();
    let started = Instant::now();
    loop {
        let (status, next) = other.get_as("dora", "/api/v1/projects/digits/next?count=2");
        if status == 200 {
            for item in next["items"].as_array().unwrap() {
                assert!(!seen.contains(&item["id"].as_i64().unwrap()), "a labelled item came back: {item}");
                assert!(!held.iter().any(|h| h["id"] == item["id"]), "eve's leased item went to dora: {item}");
            }
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no takeover: {status} {next}\n{}", other.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, stats) = other.get("/api/v1/projects/digits/stats");
    assert_eq!(stats["counts"]["labelled"], 25, "every acknowledged label survived the takeover: {stats}");
    // Eve's leases survived in Redis: she labels her items on the new owner, in their stage.
    let truth = truth();
    for item in &held {
        let body =
            json!({ "item_id": item["id"], "label": truth[item["path"].as_str().unwrap()], "time_taken_ms": 400 });
        let (status, res) = other.post_as("eve", "/api/v1/projects/digits/labels", &body);
        assert_eq!(status, 200, "{res}");
    }
    let (_, listed) = other.get("/api/v1/projects/digits/items?status=labelled&per_page=100");
    for item in &held {
        let row = listed["items"].as_array().unwrap().iter().find(|r| r["id"] == item["id"]).unwrap().clone();
        assert_eq!(row["stage"], item["stage"], "the item kept its stage across the takeover: {row}");
    }
}
