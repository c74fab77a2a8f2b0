//! An acknowledged label survives `kill -9`; the project resumes with its labels and model.

use crate::common::{digits_project, label_truthfully, Server};

#[test]
fn acknowledged_labels_survive_kill_9_and_the_project_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 120, "");
    let server = Server::start(&config, &[]);
    label_truthfully(&server, "alice", 30);
    let before = server.wait_stats("digits", 120, |s| s["model_version"].as_i64() >= Some(1));
    // More labels, acknowledged, then SIGKILL straight away (no time to flush anything else).
    let late = label_truthfully(&server, "alice", 7);
    server.kill9();

    let server = Server::start(&config, &[]);
    let stats = server.wait_stats("digits", 60, |s| s["counts"]["labelled"].as_u64().is_some());
    assert_eq!(stats["counts"]["labelled"], 37, "{stats}");
    // The saved model scores at once, without waiting for the trainer to embed and fit again.
    let png = std::fs::read(crate::common::assets().join("data/mnist/images/00000.png")).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let (status, scored) =
        server.post_as("x", "/api/v1/projects/digits/score", &serde_json::json!({ "images_base64": [b64] }));
    assert_eq!(status, 200, "{scored}");
    // The model history survived and training resumes from it.
    assert!(stats["model_version"].as_i64() >= before["model_version"].as_i64(), "{stats}");
    let stats = server.wait_stats("digits", 120, |s| s["model_version"].as_i64() > before["model_version"].as_i64());
    assert!(!stats["curve"].as_array().unwrap().is_empty());
    // Undo still knows alice's last label after the restart.
    let (status, undone) = server.post_as("alice", "/api/v1/projects/digits/labels/undo", &serde_json::json!({}));
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["item_id"].as_i64(), late.last().copied());
    // And the queue hands out only unlabelled items.
    let (_, next) = server.get_as("bob", "/api/v1/projects/digits/next?count=50");
    let (_, labelled) = server.get("/api/v1/projects/digits/items?status=labelled&per_page=500");
    let done: Vec<i64> = labelled["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    for item in next["items"].as_array().unwrap() {
        assert!(!done.contains(&item["id"].as_i64().unwrap()));
    }
}
