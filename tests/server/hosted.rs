//! Hosted mode end to end against real PostgreSQL, Redis and S3 (SeaweedFS) servers: projects
//! created through the API from uploaded files and from an S3 prefix, ingest progress, models
//! and embedding caches in S3, a second process on an empty disk restoring everything from
//! PostgreSQL and S3, settings, per-labeller statistics, invitations by link, switching
//! organisation and changing a password.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::accounts::{call, sign_up, token, KEY};
use crate::common::{assets, postgres_database, raw, truth, Server};
use lightbulb::store::s3::{S3Options, S3Store};

const S3_ENDPOINT: &str = "http://127.0.0.1:8333";

fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| S3_ENDPOINT.into())
}

fn s3_options(bucket: &str) -> S3Options {
    S3Options {
        endpoint: Some(s3_endpoint()),
        bucket: bucket.into(),
        access_key_id: "lightbulb".into(),
        secret_access_key: "lightbulb-secret".into(),
        create_bucket: true,
        ..S3Options::default()
    }
}

/// A `multipart/form-data` body of files named `file`.
fn multipart(files: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "lightbulb-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(server: &Server, token: &str, pid: &str, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
    let (content_type, body) = multipart(files);
    let bearer = format!("Bearer {token}");
    let path = format!("/api/v1/projects/{pid}/files");
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", content_type.as_str())];
    let (status, body) = raw(server.port, "POST", &path, &headers, &body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Polls the ingest progress until `pred` holds.
fn wait_ingest(server: &Server, token: &str, pid: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, progress) = call(server, "GET", &format!("/api/v1/projects/{pid}/ingest"), Some(token), None);
        assert_eq!(status, 200, "{progress}");
        if pred(&progress) {
            return progress;
        }
        assert_ne!(progress["status"], "failed", "{progress}\n{}", server.log_text());
        assert!(started.elapsed() < Duration::from_secs(secs), "timed out: {progress}\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn embedded(p: &Value) -> bool {
    p["embedding"]["total"].as_u64().is_some_and(|t| t > 0 && p["embedding"]["done"] == t)
}

fn label_digits(server: &Server, token: &str, n: usize) {
    let truth = truth();
    let mut done = 0;
    while done < n {
        let (status, next) = call(server, "GET", "/api/v1/projects/digits/next?count=5", Some(token), None);
        assert_eq!(status, 200, "{next}");
        for item in next["items"].as_array().unwrap().iter().take(n - done) {
            let label = &truth[item["path"].as_str().unwrap()];
            let body = json!({ "item_id": item["id"], "label": label, "time_taken_ms": 500 });
            let (status, res) = call(server, "POST", "/api/v1/projects/digits/labels", Some(token), Some(&body));
            assert_eq!(status, 200, "{res}");
            done += 1;
        }
    }
}

fn mnist_file(i: usize) -> (String, Vec<u8>) {
    let name = format!("{i:05}.png");
    let bytes = std::fs::read(assets().join("data/mnist/images").join(&name)).unwrap();
    (name, bytes)
}

#[test]
fn hosted_projects_from_uploads_and_s3_survive_a_new_process_on_an_empty_disk() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = postgres_database(&format!("lb_hosted_{}_{}", std::process::id(), lightbulb::store::now_ms()));
    let bucket = format!("lb-test-{}", lightbulb::store::now_ms());
    let metrics = Arc::new(lightbulb::metrics::Metrics::new().unwrap());
    let s3 = rt.block_on(S3Store::connect(s3_options(&bucket), metrics)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("data-a");
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let endpoint = s3_endpoint();
    let args = |data: &std::path::Path| -> Vec<String> {
        [
            "--jwt-key",
            KEY,
            "--database-url",
            &db,
            "--redis-url",
            &redis,
            "--data-dir",
            data.to_str().unwrap(),
            "--s3-bucket",
            &bucket,
            "--s3-endpoint",
            &endpoint,
            "--s3-access-key-id",
            "lightbulb",
            "--s3-secret-access-key",
            "lightbulb-secret",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let env = [("LIGHTBULB__FILE_LIMIT_BYTES", "100000"), ("LIGHTBULB__UPLOAD_LIMIT_BYTES", "300000")];
    let a_args = args(&data_a);
    let a = Server::start_hosted(dir.path(), &a_args.iter().map(String::as_str).collect::<Vec<_>>(), &env);

    let (status, info) = call(&a, "GET", "/api/v1/server", None, None);
    assert_eq!((status, &info["accounts"], &info["s3"]), (200, &json!(true), &json!(true)), "{info}");
    let alice = sign_up(&a, "acme", "alice");
    let alice_t = token(&alice).to_string();
    let bob = sign_up(&a, "globex", "bob");
    let bob_t = token(&bob).to_string();

    // Creating: validated like a config file, by admins only.
    let new_digits = json!({
        "id": "digits", "title": "Digits", "data_type": "images",
        "classes": ["0","1","2","3","4","5","6","7","8","9"], "auto_label_threshold": 0.95,
        "source": { "kind": "upload" },
    });
    let mut bad = new_digits.clone();
    bad["classes"] = json!(["only"]);
    let (status, res) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&bad));
    assert_eq!(status, 400, "{res}");
    let mut bad = new_digits.clone();
    bad["strategy"] = json!("psychic");
    let (status, res) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&bad));
    assert_eq!(status, 400, "{res}");
    assert!(res["error"]["message"].as_str().unwrap().contains("psychic"), "{res}");
    let (status, created) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&new_digits));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "awaiting_upload");
    let (status, res) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&new_digits));
    assert_eq!(status, 409, "{res}");
    // Not open yet: labelling routes say so.
    let (status, res) = call(&a, "GET", "/api/v1/projects/digits/next", Some(&alice_t), None);
    assert_eq!(status, 409, "{res}");

    // Uploading: 40 digits, and files refused by name; nothing of another organisation.
    let mut files: Vec<(String, Vec<u8>)> = (1..=40).map(mnist_file).collect();
    files.push(("../escape.png".into(), b"x".to_vec()));
    files.push(("notes.txt".into(), b"not an image".to_vec()));
    files.push(("empty.png".into(), Vec::new()));
    files.push(("huge.png".into(), vec![7u8; 150_000]));
    let borrowed: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (status, res) = upload(&a, &bob_t, "digits", &borrowed);
    assert_eq!(status, 404, "{res}");
    let (status, res) = upload(&a, &alice_t, "digits", &borrowed);
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["stored"], 40, "{res}");
    let rejected: Vec<&str> = res["rejected"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(rejected, ["../escape.png", "notes.txt", "empty.png", "huge.png"], "{res}");
    // A request over the limit is refused whole.
    let (status, res) = upload(&a, &alice_t, "digits", &vec![("big/a.png", vec![1u8; 90_000]); 5]);
    assert_eq!(status, 413, "{res}");
    let stored = rt.block_on(s3.list(&bucket, "lightbulb/datasets/")).unwrap();
    assert_eq!(stored.len(), 40, "every acknowledged file is in S3, none of the refused request");

    let (status, res) = call(&a, "POST", "/api/v1/projects/digits/ingest", Some(&alice_t), None);
    assert_eq!(status, 202, "{res}");
    let progress = wait_ingest(&a, &alice_t, "digits", 120, embedded);
    assert_eq!(progress["files"], 40, "{progress}");
    let (status, res) = upload(&a, &alice_t, "digits", &borrowed[..1]);
    assert_eq!(status, 409, "no uploads after ingest: {res}");
    label_digits(&a, &alice_t, 16);
    let started = Instant::now();
    loop {
        let (_, stats) = call(&a, "GET", "/api/v1/projects/digits/stats", Some(&alice_t), None);
        if stats["model_version"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no model: {stats}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Models and the embedding cache went to S3, under the project's prefix. The model is
    // written after its version is served (a model can be retrained from the labels), so the
    // listing is polled.
    let started = Instant::now();
    loop {
        let objects = rt.block_on(s3.list(&bucket, "lightbulb/projects/")).unwrap();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let model = keys.iter().any(|k| k.contains("/models/"));
        let embeddings = keys.iter().any(|k| k.contains("/embeddings/"));
        if model && embeddings {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "model in S3: {model}, embeddings: {embeddings}: {keys:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Importing a text project from an S3 prefix of the bucket.
    rt.block_on(async {
        for i in 0..10 {
            let text = if i % 2 == 0 {
                format!("a wonderful, joyful film number {i}")
            } else {
                format!("dull and tedious film {i}")
            };
            s3.put(&format!("incoming/notes/{i:02}.txt"), text.into_bytes()).await.unwrap();
        }
        s3.put("incoming/notes/readme.md", b"# not an item".to_vec()).await.unwrap();
    });
    let own = json!({ "id": "stolen", "title": "t", "data_type": "text", "classes": ["pos", "neg"],
        "source": { "kind": "s3", "prefix": "lightbulb/datasets/" } });
    let (status, res) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&own));
    assert_eq!(status, 403, "the server's own objects cannot be imported: {res}");
    let notes = json!({ "id": "notes", "title": "Notes", "data_type": "text", "classes": ["pos", "neg"],
        "source": { "kind": "s3", "prefix": "incoming/notes/" } });
    let (status, res) = call(&a, "POST", "/api/v1/projects", Some(&alice_t), Some(&notes));
    assert_eq!(status, 201, "{res}");
    let progress = wait_ingest(&a, &alice_t, "notes", 180, embedded);
    assert_eq!(progress["files"], 10, "{progress}");
    assert!(progress["rejected"].to_string().contains("readme.md"), "{progress}");

    // Tenant isolation over the new routes.
    let (_, list) = call(&a, "GET", "/api/v1/projects", Some(&bob_t), None);
    assert_eq!(list["projects"], json!([]), "{list}");
    for (method, path) in [
        ("GET", "/api/v1/projects/digits/ingest"),
        ("POST", "/api/v1/projects/digits/ingest"),
        ("GET", "/api/v1/projects/digits/settings"),
        ("PATCH", "/api/v1/projects/digits/settings"),
        ("GET", "/api/v1/projects/digits/labellers"),
    ] {
        let (status, res) = call(&a, method, path, Some(&bob_t), Some(&json!({})));
        assert_eq!(status, 404, "{method} {path}: {res}");
    }

    // Settings: admins change them, the change is validated and shows at once.
    let (status, res) = call(
        &a,
        "PATCH",
        "/api/v1/projects/digits/settings",
        Some(&alice_t),
        Some(&json!({ "auto_label_threshold": 0.9, "strategy": "margin", "overlap": 0.5 })),
    );
    assert_eq!(status, 200, "{res}");
    // Half of alice's next labels go to a second labeller as well.
    label_digits(&a, &alice_t, 8);
    let (_, project) = call(&a, "GET", "/api/v1/projects/digits", Some(&alice_t), None);
    assert_eq!((project["auto_label_threshold"].as_f64(), project["strategy"].as_str()), (Some(0.9), Some("margin")));
    let (status, res) = call(
        &a,
        "PATCH",
        "/api/v1/projects/digits/settings",
        Some(&alice_t),
        Some(&json!({ "auto_label_threshold": 2.0 })),
    );
    assert_eq!(status, 400, "{res}");

    // An invitation by link: used once, then the labeller labels and shows in the statistics.
    let (status, inv) = call(
        &a,
        "POST",
        "/api/v1/invitations",
        Some(&alice_t),
        Some(&json!({ "email": "carol@acme.test", "role": "labeller" })),
    );
    assert_eq!(status, 201, "{inv}");
    let link = inv["token"].as_str().unwrap().to_string();
    let (status, seen) = call(&a, "GET", &format!("/api/v1/invitations/{link}"), None, None);
    assert_eq!((status, seen["organisation"].as_str(), seen["role"].as_str()), (200, Some("acme"), Some("labeller")));
    let accept = json!({ "token": link, "name": "carol", "password": "carol's long password" });
    let (status, carol) = call(&a, "POST", "/api/v1/auth/accept", None, Some(&accept));
    assert_eq!(status, 200, "{carol}");
    let (status, res) = call(&a, "POST", "/api/v1/auth/accept", None, Some(&accept));
    assert_eq!(status, 404, "an invitation is used once: {res}");
    let carol_t = token(&carol).to_string();
    let (status, res) =
        call(&a, "PATCH", "/api/v1/projects/digits/settings", Some(&carol_t), Some(&json!({ "title": "x" })));
    assert_eq!(status, 403, "{res}");
    label_digits(&a, &carol_t, 8);
    let (status, stats) = call(&a, "GET", "/api/v1/projects/digits/labellers", Some(&alice_t), None);
    assert_eq!(status, 200, "{stats}");
    let rows = stats["labellers"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name}: {stats}")).clone();
    assert_eq!(row("alice")["labels"], 24, "{stats}");
    assert_eq!(row("carol")["labels"], 8, "{stats}");
    let checked = row("carol")["peer_compared"].as_u64().unwrap();
    assert!(checked >= 1, "carol gave second opinions on alice's items: {stats}");
    assert_eq!(row("carol")["peer_agreement"].as_f64(), Some(1.0), "both labelled truthfully: {stats}");
    assert_eq!(row("alice")["peer_compared"].as_u64(), Some(checked), "{stats}");
    assert_eq!(row("carol")["median_seconds_per_label"].as_f64(), Some(0.5), "{stats}");
    let compared = row("alice")["model_compared"].as_u64().unwrap();
    assert!(compared >= 1, "the TEST share of alice's labels is compared with the model: {stats}");

    // A viewer reads but changes nothing, on every new write route.
    let (status, inv) = call(
        &a,
        "POST",
        "/api/v1/invitations",
        Some(&alice_t),
        Some(&json!({ "email": "vic@acme.test", "role": "viewer" })),
    );
    assert_eq!(status, 201, "{inv}");
    let (status, vic) = call(
        &a,
        "POST",
        "/api/v1/auth/accept",
        None,
        Some(&json!({ "token": inv["token"], "name": "vic", "password": "vic's long password" })),
    );
    assert_eq!(status, 200, "{vic}");
    let vic_t = token(&vic).to_string();
    for (method, path, body) in [
        ("POST", "/api/v1/projects", new_digits.clone()),
        ("POST", "/api/v1/projects/digits/ingest", json!({})),
        ("PATCH", "/api/v1/projects/digits/settings", json!({ "title": "mine" })),
        ("POST", "/api/v1/invitations", json!({ "email": "x@acme.test", "role": "viewer" })),
        ("GET", "/api/v1/invitations", json!({})),
    ] {
        let (status, res) = call(&a, method, path, Some(&vic_t), Some(&body));
        assert_eq!(status, 403, "a viewer on {method} {path}: {res}");
    }
    let (status, res) = upload(&a, &vic_t, "digits", &borrowed[..1]);
    assert_eq!(status, 403, "a viewer uploading: {res}");
    let (status, _) = call(&a, "GET", "/api/v1/projects/digits/labellers", Some(&vic_t), None);
    assert_eq!(status, 200, "a viewer reads the statistics");

    // Password change: every other session of the user ends at once.
    let (status, fresh) = call(
        &a,
        "POST",
        "/api/v1/auth/password",
        Some(&carol_t),
        Some(&json!({ "current_password": "carol's long password", "new_password": "carol's newer password" })),
    );
    assert_eq!(status, 200, "{fresh}");
    let (status, _) = call(&a, "GET", "/api/v1/me", Some(&carol_t), None);
    assert_eq!(status, 401, "the old session ended");
    let old_refresh = json!({ "refresh_token": carol["refresh_token"] });
    let (status, _) = call(&a, "POST", "/api/v1/auth/refresh", None, Some(&old_refresh));
    assert_eq!(status, 401, "the old refresh token is revoked");
    let (status, _) = call(&a, "GET", "/api/v1/me", Some(token(&fresh)), None);
    assert_eq!(status, 200);
    let login = json!({ "email": "carol@acme.test", "password": "carol's newer password" });
    let (status, _) = call(&a, "POST", "/api/v1/auth/login", None, Some(&login));
    assert_eq!(status, 200);

    // Alice joins globex by link with her existing account, then switches organisation.
    let (status, inv) = call(
        &a,
        "POST",
        "/api/v1/invitations",
        Some(&bob_t),
        Some(&json!({ "email": "alice@acme.test", "role": "viewer" })),
    );
    assert_eq!(status, 201, "{inv}");
    let join = json!({ "token": inv["token"], "name": "ignored", "password": "wrong password" });
    let (status, _) = call(&a, "POST", "/api/v1/auth/accept", None, Some(&join));
    assert_eq!(status, 403, "an existing account must give its own password");
    let join = json!({ "token": inv["token"], "name": "ignored", "password": "a long enough password" });
    let (status, in_globex) = call(&a, "POST", "/api/v1/auth/accept", None, Some(&join));
    assert_eq!(status, 200, "{in_globex}");
    let (_, me) = call(&a, "GET", "/api/v1/me", Some(token(&in_globex)), None);
    assert_eq!((me["organisation"].as_str(), me["role"].as_str()), (Some("globex"), Some("viewer")), "{me}");
    assert_eq!(me["organisations"].as_array().unwrap().len(), 2, "{me}");
    let (_, list) = call(&a, "GET", "/api/v1/projects", Some(token(&in_globex)), None);
    assert_eq!(list["projects"], json!([]));
    let (status, back) =
        call(&a, "POST", "/api/v1/auth/switch", Some(token(&in_globex)), Some(&json!({ "organisation": "acme" })));
    assert_eq!(status, 200, "{back}");
    let (_, list) = call(&a, "GET", "/api/v1/projects", Some(token(&back)), None);
    assert_eq!(list["projects"].as_array().unwrap().len(), 2, "{list}");
    let (status, _) = call(&a, "GET", "/api/v1/me", Some(token(&in_globex)), None);
    assert_eq!(status, 401, "switching ended the globex session");

    // A second process with an empty disk: projects, datasets and the model come back from
    // PostgreSQL and S3, and it scores at once.
    let data_b = dir.path().join("data-b");
    let b_args = args(&data_b);
    let b = Server::start_hosted(dir.path(), &b_args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    let progress = wait_ingest(&b, &alice_t, "digits", 120, |p| p["status"] == "embedding" || p["status"] == "ready");
    assert_eq!(progress["files"], 40, "{progress}");
    let image = base64_of(&mnist_file(1).1);
    let (status, scored) =
        call(&b, "POST", "/api/v1/projects/digits/score", Some(&alice_t), Some(&json!({ "images_base64": [image] })));
    assert_eq!(status, 200, "{scored}\n{}", b.log_text());
    assert_eq!(scored["scores"][0].as_array().unwrap().len(), 10);
    let restored = std::fs::read_dir(data_b.join("projects")).unwrap().count();
    assert_eq!(restored, 2, "both created projects have a local copy on the new process");
    let (_, settings) = call(&b, "GET", "/api/v1/projects/digits/settings", Some(&alice_t), None);
    assert_eq!(settings["strategy"], "margin", "settings are stored, not per process: {settings}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
