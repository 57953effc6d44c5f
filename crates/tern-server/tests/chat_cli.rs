//! Whole-binary tests of `tern chat`: the `tern` binary runs as a child
//! process with stdin and stdout piped, against an in-process server, while
//! the other side of the chat is a raw WebSocket client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use common::TestServer;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Generous: the child is a debug build on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct-horse";

/// A running `tern chat`.
struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every stdout line read so far (for failure messages).
    seen: Vec<String>,
}

impl Chat {
    /// `tern chat --url http://ADDR ARGS…`, with no inherited `TERN_*`.
    fn spawn(server: &TestServer, args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TERN_") {
                cmd.env_remove(name);
            }
        }
        cmd.arg("chat")
            .arg("--url")
            .arg(format!("http://{}", server.addr))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
            seen: Vec::new(),
        }
    }

    /// Logs in as `user` with the password on stdin.
    async fn login(server: &TestServer, user: &str) -> Self {
        let mut chat = Self::spawn(server, &["--user", user, "--password-stdin"]);
        chat.type_line(PASSWORD).await;
        chat.expect(&format!("as {user}")).await;
        chat
    }

    async fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Reads stdout until a line contains `needle`; returns that line.
    async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stdout.next_line()).await;
            match next {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                other => panic!(
                    "no line with {needle:?} ({other:?}); stdout so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit; returns the status, the rest of stdout and stderr.
    async fn exit(mut self) -> (ExitStatus, String, String) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("tern chat did not exit")
            .unwrap();
        let mut rest = self.seen.join("\n");
        while let Ok(Some(line)) = self.stdout.next_line().await {
            rest.push('\n');
            rest.push_str(&line);
        }
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err).await.unwrap();
        }
        (status, rest, err)
    }
}

async fn register(server: &TestServer, user: &str) {
    let body = json!({"username": user, "password": PASSWORD});
    let (status, reply) = server
        .http("POST", "/api/v1/register", None, Some(body))
        .await;
    assert_eq!(status, 201, "{reply}");
}

#[tokio::test]
async fn alice_chats_with_a_websocket_bob_and_quits_cleanly() {
    let server = TestServer::start().await;
    register(&server, "alice").await;
    register(&server, "bob").await;
    let mut bob = server.connect("bob").await;

    let mut alice = Chat::login(&server, "alice").await;
    alice.expect("no conversations yet").await;
    alice.type_line("/dm bob").await;
    alice.expect("== bob (d:alice:bob) ==").await;
    alice.expect("bob is online").await;

    // Typing is relayed both ways.
    alice.type_line("/typing").await;
    let typing = bob.recv_type("typing").await;
    assert_eq!(
        (typing["conv"].as_str(), typing["user"].as_str()),
        (Some("d:alice:bob"), Some("alice"))
    );
    bob.send(json!({"type":"typing","conv":"d:alice:bob"}))
        .await;
    alice.expect("bob is typing…").await;

    // alice's line reaches bob; his reply shows on alice's screen.
    alice.type_line("hello bob").await;
    let msg = bob.recv_type("msg").await;
    assert_eq!(
        (msg["from"].as_str(), msg["body"].as_str()),
        (Some("alice"), Some("hello bob"))
    );
    assert!(alice.expect("alice: hello bob").await.starts_with('['));
    bob.send(json!({"type":"send","id":"b1","conv":"d:alice:bob","cmid":"b-1","body":"hi alice"}))
        .await;
    let line = alice.expect("bob: hi alice").await;
    assert!(line.starts_with('['), "{line}");
    // The open conversation is marked read as the message arrives.
    let (mut acked, mut receipt) = (false, None);
    while !acked || receipt.is_none() {
        let frame = bob.recv().await;
        match frame["type"].as_str() {
            Some("ack") if frame["id"] == "b1" => acked = true,
            Some("receipt") if frame["user"] == "alice" => receipt = Some(frame),
            _ => {}
        }
    }
    assert_eq!(receipt.unwrap()["seq"], 2);

    // A message elsewhere is a one-line notice with the unread count.
    let group = server
        .http(
            "POST",
            "/api/v1/groups",
            Some(&common::token("bob")),
            Some(json!({"name":"Lunch crew","members":["alice"]})),
        )
        .await;
    assert_eq!(group.0, 201, "{}", group.1);
    let conv = format!("g:{}", group.1["id"].as_str().unwrap());
    alice.expect("you are in the group \"Lunch crew\"").await;
    let send = json!({"type":"send","id":"b2","conv":conv,"cmid":"b-2","body":"pizza?"});
    assert_eq!(bob.request(send).await["type"], "ack");
    let notice = alice.expect("pizza?").await;
    assert!(
        notice.contains("Lunch crew") && notice.contains("1 unread"),
        "{notice}"
    );

    // /list shows both with their unread counts.
    alice.type_line("/list").await;
    alice.expect("conversations").await;
    let first = alice.expect("Lunch crew (group)").await;
    assert!(first.contains("1 unread"), "{first}");

    alice.type_line("/quit").await;
    let (status, out, err) = alice.exit().await;
    assert!(status.success(), "{status}; stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("bye"), "{out}");
    // Her session is closed: she goes offline.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let path = "/api/v1/users/alice/presence";
        let (_, presence) = server
            .http("GET", path, Some(&common::token("bob")), None)
            .await;
        if presence["online"] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice still online: {presence}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(bob);
    server.shutdown().await;
}

#[tokio::test]
async fn a_kick_ends_tern_chat_with_4011() {
    let server = TestServer::start().await;
    register(&server, "alice").await;
    let mut alice = Chat::login(&server, "alice").await;
    alice.expect("no conversations yet").await;

    let admin = common::token_with(
        json!({"sub":"ops","role":"admin","exp": common::now_s() + 600}),
        common::SECRET,
    );
    let (status, body) = server
        .http("POST", "/api/v1/admin/users/alice/kick", Some(&admin), None)
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, out, err) = alice.exit().await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("4011"), "stderr: {err}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_or_password_fails_with_the_reason() {
    let server = TestServer::start().await;
    register(&server, "alice").await;

    let chat = Chat::spawn(&server, &["--token", "not-a-jwt"]);
    let (status, out, err) = chat.exit().await;
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("4001"), "stderr: {err}");

    let mut chat = Chat::spawn(&server, &["--user", "alice", "--password-stdin"]);
    chat.type_line("wrong-password").await;
    let (status, _, err) = chat.exit().await;
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("wrong username or password"), "stderr: {err}");

    // --register creates the account, then chats; end of input quits with 0.
    let mut chat = Chat::spawn(&server, &["--user", "carol", "--register"]);
    chat.type_line(PASSWORD).await;
    chat.expect("account carol created").await;
    chat.expect("as carol").await;
    chat.stdin = None;
    let (status, out, err) = chat.exit().await;
    assert!(status.success(), "stdout:\n{out}\nstderr:\n{err}");
    server.shutdown().await;
}

/// `/quit` closes the WebSocket with 1000, seen by a stand-in server that
/// answers the client's `auth` and `convs` and records the close frame.
#[tokio::test]
async fn quit_closes_the_websocket_with_1000() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_websockets::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (_, mut ws) = tokio_websockets::ServerBuilder::new()
            .accept(tcp)
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("the client went silent")
                .expect("stream ended without a close frame")
                .unwrap();
            if let Some((code, _)) = msg.as_close() {
                return u16::from(code);
            }
            let Some(text) = msg.as_text() else { continue };
            let frame: serde_json::Value = serde_json::from_str(text).unwrap();
            let reply = match frame["type"].as_str() {
                Some("auth") => json!({"type":"auth_ok","id":frame["id"],"user":"alice",
                    "session":"s-1","heartbeat_ms":24000,"server_time":0}),
                Some("convs") => json!({"type":"convs","id":frame["id"],"items":[]}),
                other => panic!("unexpected frame {other:?}: {frame}"),
            };
            ws.send(Message::text(reply.to_string())).await.unwrap();
        }
    });

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.env_remove("TERN_TOKEN")
        .args(["chat", "--url", &format!("http://{addr}"), "--token", "t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdin = child.stdin.take().unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let line = tokio::time::timeout_at(deadline, stdout.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l.contains("no conversations yet") => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("tern chat did not start: {other:?}"),
        }
    }
    stdin.write_all(b"/quit\n").await.unwrap();
    let code = tokio::time::timeout(PATIENCE, fake).await.unwrap().unwrap();
    assert_eq!(code, 1000);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
