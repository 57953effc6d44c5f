//! Holds many idle, authenticated WebSocket connections to a tern server, to
//! measure the server's memory per connection. Tokens are minted from the
//! server's HS256 secret, so no registration is needed.
//!
//! ```sh
//! cargo run --release -p tern-client --example idle -- \
//!     --url ws://127.0.0.1:8080/ws --secret "$SECRET" --count 5000 --hold 60 --prefix p1
//! ```
//! Prints `READY <n> <secs>` once every connection got its `auth_ok`, holds
//! them for `--hold` seconds (answering nothing; the server's idle timeout
//! must be longer), then exits.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_websockets::ClientBuilder;

struct Args {
    url: String,
    secret: String,
    count: usize,
    concurrency: usize,
    hold: u64,
    prefix: String,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        url: "ws://127.0.0.1:8080/ws".into(),
        secret: String::new(),
        count: 1000,
        concurrency: 200,
        hold: 30,
        prefix: "idle".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--secret" => a.secret = value,
            "--count" => a.count = num(&value)?,
            "--concurrency" => a.concurrency = num(&value)?.max(1),
            "--hold" => a.hold = num(&value)? as u64,
            "--prefix" => a.prefix = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.secret.is_empty() {
        return Err("--secret is required".into());
    }
    Ok(a)
}

fn token(secret: &str, user: &str) -> Result<String, String> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        + 3600;
    let claims = serde_json::json!({"sub": user, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = parse()?;
    let started = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let user = format!("{}-{i}", args.prefix);
        let url = format!("{}?token={}", args.url, token(&args.secret, &user)?);
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let uri = url.parse::<http::Uri>().map_err(|e| e.to_string())?;
            let (mut ws, _) = ClientBuilder::from_uri(uri)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            match ws.next().await {
                Some(Ok(m)) if m.as_text().is_some_and(|t| t.contains("auth_ok")) => Ok(ws),
                other => Err(format!("no auth_ok: {other:?}")),
            }
        }));
    }
    let mut held = Vec::with_capacity(args.count);
    for t in tasks {
        held.push(t.await.map_err(|e| e.to_string())??);
    }
    println!(
        "READY {} {:.2}",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    drop(held);
    Ok(())
}
