//! Hostile and wrong input: each gets a clear error with the right status, and nothing
//! stored is lost.

use serde_json::json;

use crate::common::{digits_project, label_truthfully, raw, Server};

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[test]
fn bad_requests_get_clear_errors_and_leave_labels_intact() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 40, "");
    let server = Server::start(&config, &["--allow-private-urls"]);
    label_truthfully(&server, "alice", 20);
    server.wait_stats("digits", 120, |s| s["model_version"].as_i64() >= Some(1));
    let labels = "/api/v1/projects/digits/labels";

    // Malformed JSON names the parse error.
    let (status, body) = server.post_raw("alice", labels, "application/json", b"{\"item_id\": 1, \"label\": ");
    assert_eq!((status, code(&body)), (400, "invalid_json"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("EOF"), "{body}");
    // Wrong content type.
    let (status, body) = server.post_raw("alice", labels, "text/plain", b"hi");
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"), "{body}");
    // Oversized body.
    let big = vec![b' '; 17 * 1024 * 1024];
    let (status, _) = server.post_raw("alice", labels, "application/json", &big);
    assert_eq!(status, 413);
    // Unknown class, unknown item, someone else's lease.
    let (_, next) = server.get_as("bob", "/api/v1/projects/digits/next?count=1");
    let bobs = next["items"][0]["id"].as_i64().unwrap();
    let (status, body) = server.post_as("alice", labels, &json!({ "item_id": bobs, "label": "zebra" }));
    assert_eq!((status, code(&body)), (422, "unknown_class"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("zebra"));
    let (status, body) = server.post_as("alice", labels, &json!({ "item_id": 999_999, "label": "1" }));
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = server.post_as("alice", labels, &json!({ "item_id": bobs, "label": "1" }));
    assert_eq!((status, code(&body)), (409, "leased_elsewhere"), "{body}");
    // A batch with one bad label writes nothing.
    let (_, mine) = server.get_as("alice", "/api/v1/projects/digits/next?count=1");
    let mine = mine["items"][0]["id"].as_i64().unwrap();
    let batch = json!({ "labels": [{ "item_id": mine, "label": "1" }, { "item_id": bobs, "label": "1" }] });
    let (status, _) = server.post_as("alice", labels, &batch);
    assert_eq!(status, 409);
    // Unknown fields and bad query values.
    let (status, body) = server.post_as("alice", labels, &json!({ "item_id": mine, "label": "1", "extra": true }));
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get_as("alice", "/api/v1/projects/digits/next?count=0");
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let (status, _) = server.get_as("alice", "/api/v1/projects/digits/next?count=abc");
    assert_eq!(status, 400);
    let (status, _) = server.get_as("bad user!", "/api/v1/projects/digits/next");
    assert_eq!(status, 400);

    // Path traversal in every path parameter.
    for path in [
        "/api/v1/projects/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/projects/../../etc/passwd",
        "/api/v1/projects/digits/items/..%2F..%2Fetc%2Fpasswd/content",
        "/api/v1/projects/digits/items/-1/content",
        "/assets/../../../../etc/passwd",
        "/..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let (status, body) = raw(server.port, "GET", path, &[], b"").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("root:"), "{path} leaked a file");
        assert!(
            status == 404 || status == 400 || (status == 200 && text.contains("<!doctype html>")),
            "{path}: {status}"
        );
    }

    // Scoring: corrupt images, private URLs (allowed here, refused below), wrong modality.
    let score = "/api/v1/projects/digits/score";
    let (status, body) = server.post_as("x", score, &json!({ "images_base64": ["bm90IGFuIGltYWdl"] }));
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.post_as("x", score, &json!({ "images_base64": ["***"] }));
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let (status, body) = server.post_as("x", score, &json!({ "texts": ["hello"] }));
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.post_as("x", score, &json!({ "urls": ["file:///etc/passwd"] }));
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not a valid http"), "{body}");

    // Nothing stored was lost.
    let stats = server.wait_stats("digits", 5, |_| true);
    assert_eq!(stats["counts"]["labelled"], 20);
}

#[test]
fn private_urls_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 20, "");
    let server = Server::start(&config, &[]);
    let url = format!("{}/api/v1/projects/digits/items/1/content", server.base);
    let (status, body) = server.post_as("x", "/score", &json!({ "type": "images", "urls": [url] }));
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("private or loopback"), "{body}");
}

#[test]
fn a_config_that_does_not_validate_stops_the_server_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "task:\n  title: x\ndataset:\n  directory: /nonexistent\n  data_type: imagez\nlabel:\n  classes: [a]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lightbulb"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:5:"), "{err}");
}

#[test]
fn binding_beyond_loopback_without_accounts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 20, "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lightbulb"))
        .args(["serve", "--bind", "0.0.0.0:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only listens on loopback"));
}
