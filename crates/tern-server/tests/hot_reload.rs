//! Whole-server tests of config hot reload: a changed file is applied after
//! the debounce to clients that stay connected, an invalid file keeps the
//! old config, restart-only keys are reported and not applied, and SIGHUP
//! reloads the `tern` binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{token, Ws, SECRET, WAIT};
use serde_json::{json, Value};
use tern_server::app::{self, RunningServer};
use tern_server::cli::ServeArgs;
use tern_server::Config;

/// Longer than the file poll plus the debounce: a reload has been tried.
const SETTLE: Duration = Duration::from_millis(1200);

/// A server started from a config file, with the reloader watching it.
struct FileServer {
    server: RunningServer,
    path: PathBuf,
    data: String,
    _dir: tempfile::TempDir,
}

impl FileServer {
    async fn start(limits: &str, rest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").to_string_lossy().into_owned();
        let path = dir.path().join("tern.toml");
        std::fs::write(&path, config_text(&data, "127.0.0.1:0", limits, rest)).unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let cfg = tern_server::config::load::load(&args).unwrap();
        let server = app::start(cfg).await.unwrap();
        tern_server::reload::spawn(server.state.clone(), args, None);
        Self {
            server,
            path,
            data,
            _dir: dir,
        }
    }

    /// Replaces the file the way editors do: write a new one, rename it over.
    fn rewrite(&self, http_addr: &str, limits: &str, rest: &str) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, config_text(&self.data, http_addr, limits, rest)).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    fn write_raw(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    fn config(&self) -> std::sync::Arc<Config> {
        self.server.state.hub.config()
    }

    /// Waits until the config in effect satisfies `done`.
    async fn wait_for(&self, done: impl Fn(&Config) -> bool) {
        let started = Instant::now();
        while !done(&self.config()) {
            assert!(started.elapsed() < WAIT, "reload not applied in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn connect(&self, user: &str) -> Ws {
        connect(self.server.http_addr, user).await
    }
}

fn config_text(data: &str, http_addr: &str, limits: &str, rest: &str) -> String {
    format!(
        "http_addr = \"{http_addr}\"\ntcp_addr = \"off\"\ndata_dir = \"{data}\"\n\
         jwt_secret = \"{SECRET}\"\n\n[limits]\nsend_rate = 10000\nsend_burst = 10000\n\
         {limits}\n\n{rest}\n"
    )
}

async fn connect(addr: std::net::SocketAddr, user: &str) -> Ws {
    let mut ws = Ws::open(&format!("ws://{addr}/ws"), Some(&token(user))).await;
    assert_eq!(ws.recv().await["type"], "auth_ok");
    ws
}

async fn send(ws: &mut Ws, id: u64, body: &str) -> Value {
    ws.request(json!({"type":"send","id":id,"to":"bob","cmid":format!("c{id}"),"body":body}))
        .await
}

fn assert_acked(r: &Value) {
    assert_eq!(r["type"], "ack", "{r}");
}

fn assert_error(r: &Value, code: &str) {
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some(code)),
        "{r}"
    );
}

#[tokio::test]
async fn file_change_applies_to_connected_clients_and_bad_files_are_refused() {
    let srv = FileServer::start("max_body_bytes = 1000", "").await;
    let mut alice = srv.connect("alice").await;
    let mut bob = srv.connect("bob").await;
    let body = "x".repeat(200);
    assert_acked(&send(&mut alice, 1, &body).await);
    assert_acked(&send(&mut alice, 2, "oh darn").await);

    // A smaller limit and a banned word: in effect on the same connection.
    let banned = "[moderation]\nbanned_words = [\"darn\"]";
    srv.rewrite("127.0.0.1:0", "max_body_bytes = 100", banned);
    srv.wait_for(|c| c.limits.max_body_bytes == 100).await;
    assert_error(&send(&mut alice, 3, &body).await, "too_large");
    assert_error(&send(&mut alice, 4, "oh darn").await, "forbidden");
    assert_acked(&send(&mut alice, 5, "short").await);

    // Unknown key, then a bad value: both refused, the old config stays.
    srv.write_raw(&format!(
        "{}\nno_such_key = 1\n",
        config_text(&srv.data, "127.0.0.1:0", "max_body_bytes = 5000", "")
    ));
    tokio::time::sleep(SETTLE).await;
    srv.rewrite("127.0.0.1:0", "max_body_bytes = 0", "");
    tokio::time::sleep(SETTLE).await;
    let c = srv.config();
    assert_eq!(c.limits.max_body_bytes, 100);
    assert_eq!(c.moderation.banned_words, ["darn"]);
    assert_error(&send(&mut alice, 6, &body).await, "too_large");
    assert_error(&send(&mut alice, 7, "darn").await, "forbidden");
    assert_acked(&send(&mut alice, 8, "still serving").await);

    // A good file again is applied.
    srv.rewrite("127.0.0.1:0", "max_body_bytes = 1000", "");
    srv.wait_for(|c| c.limits.max_body_bytes == 1000).await;
    assert_acked(&send(&mut alice, 9, &body).await);
    assert_acked(&send(&mut alice, 10, "oh darn").await);

    // Both clients stayed connected throughout and bob got every message.
    let mut bodies = Vec::new();
    for _ in 0..5 {
        bodies.push(bob.recv_type("msg").await["body"].clone());
    }
    assert_eq!(
        bodies,
        [
            json!(body),
            json!("oh darn"),
            json!("short"),
            json!("still serving"),
            json!(body)
        ]
    );
    let mut late = srv.connect("carol").await;
    late.request(json!({"type":"ping","id":1})).await;
}

#[tokio::test]
async fn restart_only_keys_are_not_applied() {
    let srv = FileServer::start("max_body_bytes = 1000", "").await;
    let mut alice = srv.connect("alice").await;
    let _bob = srv.connect("bob").await;
    // `http_addr` needs a restart; the limit beside it applies.
    srv.rewrite(
        "127.0.0.1:1",
        "max_body_bytes = 100",
        "[store]\nbatch_max = 7",
    );
    srv.wait_for(|c| c.limits.max_body_bytes == 100).await;
    let c = srv.config();
    assert_eq!(c.http_addr, "127.0.0.1:0");
    assert_eq!(c.store.batch_max, Config::default().store.batch_max);
    assert_error(&send(&mut alice, 1, &"x".repeat(200)).await, "too_large");
    // Still serving on the address it was started on.
    let mut carol = srv.connect("carol").await;
    assert_eq!(
        carol.request(json!({"type":"ping","id":1})).await["type"],
        "pong"
    );
}

#[tokio::test]
async fn reload_now_reports_what_it_did_and_refuses_bad_word_files() {
    let srv = FileServer::start("", "").await;
    let old = srv.config();
    let mut new = (*old).clone();
    new.limits.max_presence_subs = 3;
    new.auth.token_ttl_s = 60;
    new.node_id = "elsewhere".into();
    let done = srv.server.reload_now(new.clone()).unwrap();
    assert_eq!(
        done.applied,
        ["auth.token_ttl_s", "limits.max_presence_subs"]
    );
    assert_eq!(done.restart_needed, ["node_id"]);
    assert_eq!(srv.config().node_id, old.node_id);

    let mut bad = new;
    bad.limits.max_presence_subs = 9;
    bad.moderation.banned_words_file = "/no/such/word/file".into();
    assert!(srv.server.reload_now(bad).is_err());
    assert_eq!(srv.config().limits.max_presence_subs, 3);
    assert!(srv.config().moderation.banned_words_file.is_empty());
}

/// Push body settings apply to the next event; the URL is restart-only.
#[tokio::test]
async fn push_settings_are_reloaded() {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = events.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| async move {
            let batch = body.0["events"].as_array().unwrap().clone();
            sink.lock().unwrap().extend(batch);
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let push = format!("[push]\nwebhook_url = \"http://{hook}/hook\"\nbatch_delay_ms = 20");
    let srv = FileServer::start("", &push).await;
    // Bob exists but is offline: his messages become push events.
    drop(srv.connect("bob").await);
    let registry = &srv.server.state.hub.registry();
    while registry.is_online("bob") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut alice = srv.connect("alice").await;
    let wait_events = |n: usize| {
        let events = events.clone();
        async move {
            let started = Instant::now();
            loop {
                let got = events.lock().unwrap().clone();
                if got.len() >= n {
                    return got;
                }
                assert!(started.elapsed() < WAIT, "{got:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_acked(&send(&mut alice, 1, "hello world").await);
    assert_eq!(wait_events(1).await[0]["body"], "hello world");

    let mut new = (*srv.config()).clone();
    new.push.include_body = false;
    new.push.webhook_url = "http://127.0.0.1:1/elsewhere".into();
    let done = srv.server.reload_now(new).unwrap();
    assert_eq!(done.applied, ["push.include_body"]);
    assert_eq!(done.restart_needed, ["push.webhook_url"]);
    assert_acked(&send(&mut alice, 2, "secret").await);
    let got = wait_events(2).await;
    assert!(got[1].get("body").is_none(), "{got:?}");
}

/// The binary reloads on SIGHUP (the file watcher is told apart by the
/// trigger in the log line).
#[tokio::test]
async fn sighup_reloads_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let path = dir.path().join("tern.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // `drain_timeout_ms = 0`: the clients still connected at SIGTERM do
    // not hold the shutdown up.
    let write = |limits: &str| {
        let limits = format!("drain_timeout_ms = 0\n{limits}");
        let text = config_text(
            &data,
            &addr.to_string(),
            &limits,
            "[log]\nfilter = \"info\"",
        );
        std::fs::write(&path, text).unwrap();
    };
    write("max_body_bytes = 1000");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_for_line(&lines, "tern is serving");
    let mut alice = connect(addr, "alice").await;
    let _bob = connect(addr, "bob").await;
    assert_acked(&send(&mut alice, 1, &"x".repeat(200)).await);

    // SIGHUP right after the write: well before the watcher's debounce ends.
    write("max_body_bytes = 100");
    let pid = i32::try_from(child.id()).unwrap();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    let line = wait_for_line(&lines, "config reloaded");
    assert!(line.contains("SIGHUP"), "{line}");
    assert!(line.contains("limits.max_body_bytes"), "{line}");
    assert_error(&send(&mut alice, 2, &"x".repeat(200)).await, "too_large");

    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The first line containing `needle`, waiting up to 20 s.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}
