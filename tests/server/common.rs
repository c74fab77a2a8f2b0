//! A server process per test, on its own port and temporary directory.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn assets() -> PathBuf {
    lightbulb::assets::default_dir()
}

/// Writes a 10-class digits project over the first `n` MNIST images into `dir`.
pub fn digits_project(dir: &Path, n: usize, extra_model: &str) -> PathBuf {
    let truth = std::fs::read_to_string(assets().join("data/mnist/truth-1000.csv")).unwrap();
    let subset: Vec<&str> = truth.lines().take(n + 1).collect();
    std::fs::write(dir.join("include.csv"), subset.join("\n") + "\n").unwrap();
    let images = std::fs::canonicalize(assets().join("data/mnist/images")).unwrap();
    let config = format!(
        "task:\n  title: Digits\ndataset:\n  directory: {}\n  include: {}\n  data_type: images\n  judgements_file: {}\n\
         label:\n  type: classification\n  classes: [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]\n\
         model:\n  directory: {}\n{extra_model}",
        images.display(),
        dir.join("include.csv").display(),
        dir.join("labels.csv").display(),
        dir.join("out").display(),
    );
    let path = dir.join("digits.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Truth labels of the MNIST slice: path -> digit.
pub fn truth() -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(assets().join("data/mnist/truth-1000.csv")).unwrap();
    text.lines().skip(1).filter_map(|l| l.split_once(',')).map(|(p, l)| (p.to_string(), l.to_string())).collect()
}

pub struct Server {
    child: Child,
    pub base: String,
    pub port: u16,
    pub log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start(config: &Path, args: &[&str]) -> Server {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        Server::spawn(config.parent().unwrap(), &all, &[])
    }

    /// A server without `--config` (hosted mode: projects come from the API), logging into
    /// `dir`, with extra environment variables.
    pub fn start_hosted(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(dir, args, env)
    }

    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        // With LIGHTBULB_TEST_DATABASE=postgres every server of a test directory runs on its
        // own PostgreSQL database (the same one across restarts), unless the test picks one.
        let mut database = Vec::new();
        if std::env::var("LIGHTBULB_TEST_DATABASE").as_deref() == Ok("postgres") && !args.contains(&"--database-url") {
            database = vec!["--database-url".to_string(), postgres_database(&database_name(dir))];
        }
        let child = Command::new(env!("CARGO_BIN_EXE_lightbulb"))
            .arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .args(&database)
            .env("LIGHTBULB_ASSETS", assets())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), port, log };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = server.try_get("/readyz") {
                return server;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "server did not become ready: {}", server.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown hooks, no flushing.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn try_get(&self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        raw(self.port, "GET", path, &[], b"")
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = raw(self.port, "GET", path, &[], b"").unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        raw(self.port, "GET", path, &[], b"").unwrap()
    }

    pub fn get_as(&self, user: &str, path: &str) -> (u16, Value) {
        let (status, body) = raw(self.port, "GET", path, &[("X-Lightbulb-User", user)], b"").unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn post_as(&self, user: &str, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        self.post_raw(user, path, "application/json", &bytes)
    }

    pub fn post_raw(&self, user: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let (status, body) =
            raw(self.port, "POST", path, &[("X-Lightbulb-User", user), ("Content-Type", content_type)], body).unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Polls stats until `pred` holds (or panics after `secs`).
    pub fn wait_stats(&self, pid: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, stats) = self.get(&format!("/api/v1/projects/{pid}/stats"));
            if pred(&stats) {
                return stats;
            }
            assert!(started.elapsed() < Duration::from_secs(secs), "timed out waiting; last stats {stats}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A database name for a test directory: the same directory, the same database.
fn database_name(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("lb_t_{}_{:016x}", std::process::id(), h.finish())
}

/// The URL of PostgreSQL database `name` (created when missing) on the test server
/// (`TEST_POSTGRES_URL`, default: the local server `.ci/run` starts).
pub fn postgres_database(name: &str) -> String {
    use sea_orm::{ConnectionTrait, Database};
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| panic!("PostgreSQL at {admin_url}: {e}"));
        let exists = admin
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ))
            .await
            .unwrap()
            .is_some();
        if !exists {
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        }
    });
    let base = admin_url.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (Connection: close), so tests see exactly what went over the
/// wire, paths included (no client-side normalisation of `..`).
pub fn raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = buf.get(split + 4..).unwrap_or_default().to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// Labels `n` items handed out to `user` with their true digit; returns the item ids.
pub fn label_truthfully(server: &Server, user: &str, n: usize) -> Vec<i64> {
    let truth = truth();
    let mut ids = Vec::new();
    while ids.len() < n {
        let (status, next) = server.get_as(user, "/api/v1/projects/digits/next?count=5");
        assert_eq!(status, 200, "{next}");
        let items = next["items"].as_array().unwrap().clone();
        assert!(!items.is_empty(), "ran out of items");
        for item in items.iter().take(n - ids.len()) {
            let id = item["id"].as_i64().unwrap();
            let label = &truth[item["path"].as_str().unwrap()];
            let (status, body) = server.post_as(
                user,
                "/api/v1/projects/digits/labels",
                &serde_json::json!({ "item_id": id, "label": label, "time_taken_ms": 900 }),
            );
            assert_eq!(status, 200, "{body}");
            ids.push(id);
        }
    }
    ids
}

/// Opens a WebSocket on `path` (the handshake checked: 101), reads with a 60 s timeout.
pub fn ws_connect(port: u16, path: &str) -> TcpStream {
    let mut ws = TcpStream::connect(("127.0.0.1", port)).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        ws,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        ws.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    ws
}

/// The next text frame (server frames are unmasked). A ping is answered with a pong, as a
/// browser does: the server drops a client it has not heard from in 30 s, which a test that
/// waits for a slow training run would otherwise hit. Other control frames are skipped.
pub fn read_frame(s: &mut TcpStream) -> String {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut len = (head[1] & 0x7f) as usize;
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        len = u16::from_be_bytes(b) as usize;
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).unwrap();
        len = u64::from_be_bytes(b) as usize;
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    match head[0] & 0x0f {
        1 => String::from_utf8(payload).unwrap(),
        9 => {
            send_pong(s, &payload);
            read_frame(s)
        }
        _ => read_frame(s),
    }
}

/// A client pong (FIN, opcode 10) echoing `payload` (at most 125 bytes, as pings carry),
/// masked as client frames must be; the zero mask leaves the bytes as they are.
fn send_pong(s: &mut TcpStream, payload: &[u8]) {
    let mut frame = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    s.write_all(&frame).unwrap();
}
