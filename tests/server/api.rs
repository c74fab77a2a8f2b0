//! The labelling loop over HTTP and WebSocket, end to end.

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{digits_project, label_truthfully, read_frame, ws_connect, Server};

#[test]
fn the_whole_loop_labels_trains_confirms_scores_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 200, "");
    let server = Server::start(&config, &[]);

    let (status, projects) = server.get("/api/v1/projects");
    assert_eq!(status, 200);
    assert_eq!(projects["projects"][0]["id"], "digits");
    assert_eq!(projects["projects"][0]["classes"].as_array().unwrap().len(), 10);

    // Two labellers never get the same item.
    let (_, a) = server.get_as("alice", "/api/v1/projects/digits/next?count=10");
    let (_, b) = server.get_as("bob", "/api/v1/projects/digits/next?count=10");
    let ids = |v: &Value| v["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let (ia, ib) = (ids(&a), ids(&b));
    assert_eq!(ia.len(), 10);
    assert!(ia.iter().all(|i| !ib.contains(i)), "{ia:?} / {ib:?}");

    // Undo returns the caller's last label.
    let labelled = label_truthfully(&server, "carol", 60);
    let (status, undone) = server.post_as("carol", "/api/v1/projects/digits/labels/undo", &json!({}));
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["item_id"].as_i64(), labelled.last().copied());
    let (status, _) = server.post_as("dave", "/api/v1/projects/digits/labels/undo", &json!({}));
    assert_eq!(status, 404, "dave has nothing to undo");

    // The model trains, and accuracy comes with its interval and test count.
    let stats =
        server.wait_stats("digits", 120, |s| s["model_version"].as_i64() >= Some(1) && !s["accuracy"].is_null());
    assert_eq!(stats["counts"]["labelled"], 59);
    let test = stats["counts"]["test"].as_u64().unwrap();
    assert!((10..=20).contains(&test), "a quarter of 59 labels should be TEST, got {test}");
    let acc = &stats["accuracy"];
    assert!(acc["low"].as_f64() <= acc["value"].as_f64() && acc["value"].as_f64() <= acc["high"].as_f64());
    assert_eq!(acc["test_labels"].as_u64(), Some(test));
    assert_eq!(stats["confusion"]["matrix"].as_array().unwrap().len(), 10);
    assert!(stats["median_seconds_per_label"].as_f64().is_some());

    // Predictions arrive with the next TRAIN items.
    let (_, next) = server.get_as("carol", "/api/v1/projects/digits/next?count=5");
    let train_item = next["items"].as_array().unwrap().iter().find(|i| i["stage"] == "train");
    if let Some(item) = train_item {
        assert!(item["prediction"]["probabilities"].as_object().unwrap().len() == 10, "{item}");
    }

    // Browse with filters.
    let (status, page) = server.get("/api/v1/projects/digits/items?status=labelled&per_page=5");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 59);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let (_, page) = server.get("/api/v1/projects/digits/items?status=unlabelled&min_confidence=0.5");
    assert!(page["items"].as_array().unwrap().iter().all(|i| i["confidence"].as_f64().unwrap() >= 0.5));

    // Scoring an uploaded image (base64) and via multipart.
    let png = std::fs::read(crate::common::assets().join("data/mnist/images/00000.png")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let (status, scored) = server.post_as("x", "/api/v1/projects/digits/score", &json!({ "images_base64": [b64] }));
    assert_eq!(status, 200, "{scored}");
    let row = scored["scores"][0].as_array().unwrap();
    assert_eq!(row.len(), 10);
    assert!((row.iter().map(|v| v.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-3);
    let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    form.extend_from_slice(&png);
    form.extend_from_slice(b"\r\n--XyZ--\r\n");
    let (status, scored2) =
        server.post_raw("x", "/api/v1/projects/digits/score", "multipart/form-data; boundary=XyZ", &form);
    assert_eq!(status, 200, "{scored2}");
    assert_eq!(scored2["scores"], scored["scores"], "same image, same model, same scores");

    // Export and model download.
    let (status, csv) = server.get_bytes("/api/v1/projects/digits/export?format=csv");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 60, "header + 59 labels");
    let (status, tar) = server.get_bytes("/api/v1/projects/digits/model");
    assert_eq!(status, 200);
    let names: Vec<String> = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, vec!["model.json", "head.safetensors"]);

    // The judgements file has the original's columns and every label (plus the undo row).
    let judgements = std::fs::read_to_string(dir.path().join("labels.csv")).unwrap();
    assert!(judgements.starts_with("path,label,labelled_by,time_taken_ms,stage,created_at\n"));
    assert_eq!(judgements.lines().count(), 1 + 60 + 1);

    // Prometheus sees all of that, under route templates and never a project or item id.
    let (status, text) = server.get_bytes("/metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
    };
    assert!(value(r#"lightbulb_labels_submitted_total{source="human"}"#) >= 60.0);
    assert!(
        value(r#"lightbulb_http_requests_total{method="POST",route="/api/v1/projects/{pid}/labels",status="200"}"#)
            >= 1.0
    );
    assert!(value(r#"lightbulb_training_runs_total{outcome="ok"}"#) >= 1.0);
    assert!(value(r#"lightbulb_scoring_requests_total{outcome="ok"}"#) >= 2.0);
    assert_eq!(value("lightbulb_project_actors"), 1.0);
    assert!(text.contains("lightbulb_scoring_batch_size_bucket"));
    assert!(text.contains(r#"lightbulb_db_pool_connections{state="idle"}"#));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("lightbulb_"), "{line}");
        assert!(!line.contains("digits\"") && !line.contains("alice"), "a tenant value leaked: {line}");
    }
}

#[test]
fn batches_are_confirmed_with_corrections_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    // A low threshold so that a batch is ready after a few labels.
    let config = digits_project(dir.path(), 150, "  auto_label_threshold: 0.3\n");
    let server = Server::start(&config, &[]);
    label_truthfully(&server, "alice", 40);
    server.wait_stats("digits", 120, |s| {
        s["auto_label"]["ready_batches"].as_u64() > Some(0) && !s["training"].as_bool().unwrap()
    });
    let (status, batch) = server.get_as("alice", "/api/v1/projects/digits/batches/next?size=10");
    assert_eq!(status, 200, "{batch}");
    let batch = &batch["batch"];
    let items: Vec<i64> = batch["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(items.len() >= 3, "{batch}");
    let class = batch["class"].as_str().unwrap();
    let other = if class == "0" { "1" } else { "0" };
    let bid = batch["id"].as_str().unwrap();
    // Someone else cannot confirm alice's batch.
    let (status, _) = server.post_as("bob", &format!("/api/v1/projects/digits/batches/{bid}/confirm"), &json!({}));
    assert_eq!(status, 404);
    let body = json!({ "rejected": [items[0]], "corrections": { items[1].to_string(): other } });
    let (status, res) = server.post_as("alice", &format!("/api/v1/projects/digits/batches/{bid}/confirm"), &body);
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["confirmed"].as_u64(), Some(items.len() as u64 - 2));
    assert_eq!(res["corrected"], 1);
    assert_eq!(res["rejected"], 1);
    let stats =
        server.wait_stats("digits", 10, |s| s["counts"]["model_labelled"].as_u64() == Some(items.len() as u64 - 1));
    assert_eq!(stats["counts"]["labelled"].as_u64(), Some(40 + items.len() as u64 - 1));
    let (_, page) = server.get(&format!("/api/v1/projects/digits/items?status=model_labelled&label={other}"));
    assert!(page["items"].as_array().unwrap().iter().any(|i| i["id"].as_i64() == Some(items[1])));
}

/// Reads one WebSocket text frame (server frames are unmasked).
#[test]
fn events_stream_stats_and_training_over_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 120, "");
    let server = Server::start(&config, &[]);
    let mut ws = ws_connect(server.port, "/api/v1/projects/digits/events");
    let first: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
    assert_eq!(first["type"], "stats");
    label_truthfully(&server, "alice", 30);
    let mut seen = std::collections::HashSet::new();
    while !(seen.contains("training_started") && seen.contains("training_finished")) {
        let frame: Value = serde_json::from_str(&read_frame(&mut ws)).unwrap();
        seen.insert(frame["type"].as_str().unwrap().to_string());
    }
}

#[test]
fn the_openapi_document_names_only_routes_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 20, "");
    let server = Server::start(&config, &[]);
    let (status, doc) = server.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 19, "{} paths", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{pid}", "digits")
            .replace("{iid}", "1")
            .replace("{bid}", "b1")
            .replace("{uid}", "1")
            .replace("{kid}", "1")
            .replace("{inv}", "1")
            .replace("{token}", "t");
        for method in ops.as_object().unwrap().keys() {
            let verb = method.to_ascii_uppercase();
            let (status, body) = match verb.as_str() {
                "GET" => crate::common::raw(server.port, "GET", &concrete, &[], b"").unwrap(),
                _ => crate::common::raw(server.port, &verb, &concrete, &[("Content-Type", "application/json")], b"{}")
                    .unwrap(),
            };
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("no route for"), "{method} {path} is documented but not routed ({status})");
        }
    }
}

#[test]
fn a_semi_supervised_project_spreads_labels_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let config = digits_project(dir.path(), 120, "  semi_supervised: auto\n");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start_hosted(dir.path(), &args, &[("RUST_LOG", "info")]);
    label_truthfully(&server, "alice", 40);
    let stats =
        server.wait_stats("digits", 120, |s| s["model_version"].as_i64() >= Some(1) && !s["accuracy"].is_null());
    let acc = stats["accuracy"]["value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{stats}");
    let log = server.log_text();
    assert!(log.contains("label-spreading graph built"), "the trainer did not build the graph:\n{log}");
    // The queue is still ranked by the model: TRAIN items come with predictions (a quarter of
    // items are TEST, shown without one; ten of them all TEST is a one-in-a-million draw).
    let (_, next) = server.get_as("alice", "/api/v1/projects/digits/next?count=10");
    let with_prediction = next["items"].as_array().unwrap().iter().filter(|i| i["prediction"].is_object()).count();
    assert!(with_prediction > 0, "{next}");
}
