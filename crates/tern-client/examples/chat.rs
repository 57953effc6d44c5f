//! A terminal chat with one peer: prints incoming messages and sends every
//! stdin line.
//!
//! ```text
//! cargo run -p tern-client --example chat -- --url ws://127.0.0.1:8080/ws --token <jwt> --to bob
//! ```

use std::time::Duration;

use tern_client::{AuthMode, Client, ClientConfig, ClientError, Push};
use tern_proto::ConvId;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Args {
    url: String,
    token: String,
    to: String,
    device: String,
}

fn parse_args() -> Result<Args, String> {
    let mut url = "ws://127.0.0.1:8080/ws".to_owned();
    let (mut token, mut to, mut device) = (None, None, "chat-example".to_owned());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = value()?,
            "--token" => token = Some(value()?),
            "--to" => to = Some(value()?),
            "--device" => device = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        url,
        token: token.ok_or("--token is required")?,
        to: to.ok_or("--to is required")?,
        device,
    })
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: chat --url ws://127.0.0.1:8080/ws --token <jwt> --to <user>");
            std::process::exit(64);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), ClientError> {
    let cfg = ClientConfig::new(&args.url, &args.token).with_auth(AuthMode::Frame {
        device: args.device.clone(),
    });
    let (client, mut pushes) = Client::connect(cfg).await?;
    let conv = ConvId::direct(&client.user(), &args.to);
    println!(
        "connected as {} (session {}), chatting in {conv}",
        client.user(),
        client.session()
    );
    show_history(&client, &conv).await?;
    match client.presence_sub([args.to.clone()]).await {
        Ok(items) => print_push(Push::Presence(items)),
        Err(e) => eprintln!("  (no presence for {}: {e})", args.to),
    }

    let printer = tokio::spawn(async move {
        while let Some(push) = pushes.recv().await {
            print_push(push);
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        match send_with_retry(&client, &args.to, &line).await {
            Ok(ack) => println!("  (sent, seq {})", ack.seq),
            Err(e) => eprintln!("  (not sent: {e})"),
        }
    }
    client.close().await?;
    let _ = printer.await;
    Ok(())
}

/// Prints the last messages and seeds gap detection from them.
async fn show_history(client: &Client, conv: &ConvId) -> Result<(), ClientError> {
    match client.sync_latest(conv, 20).await {
        Ok(page) => {
            let last = page.items.last().map_or(0, |m| m.seq);
            for m in page.items {
                println!("{}: {}", m.from, m.body);
            }
            client.track(conv.clone(), last);
            Ok(())
        }
        // No conversation yet (or no such peer): start from scratch.
        Err(ClientError::Server { .. }) => {
            client.track(conv.clone(), 0);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sends; on a dropped connection retries with the same cmid, which the
/// server stores at most once.
async fn send_with_retry(
    client: &Client,
    to: &str,
    body: &str,
) -> Result<tern_client::Ack, ClientError> {
    let cmid = format!("chat-{:016x}", rand::random::<u64>());
    let mut attempt = 0;
    loop {
        match client.send_to(to, &cmid, body).await {
            Err(e) if e.is_transient() && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            other => return other,
        }
    }
}

fn print_push(push: Push) {
    match push {
        Push::Msg(m) => println!("[{}] {}: {}", m.conv, m.from, m.body),
        Push::Typing { user, .. } => println!("  ({user} is typing)"),
        Push::Receipt { user, seq, .. } => println!("  ({user} read up to {seq})"),
        Push::Presence(items) => {
            for p in items {
                let state = if p.online { "online" } else { "offline" };
                println!("  ({} is {state})", p.user);
            }
        }
        Push::Closed {
            code,
            reason,
            reconnecting,
        } => println!("  (connection closed: {code} {reason}; reconnecting: {reconnecting})"),
        Push::Reconnected { session, .. } => println!("  (reconnected, session {session})"),
        Push::Goaway { reconnect_ms } => {
            println!("  (server draining; moving in {reconnect_ms} ms)")
        }
        Push::Error { code, message, .. } => println!("  (error {code}: {message})"),
        Push::Group { event, group, .. } => println!("  (group {}: {event:?})", group.name),
        Push::Resync => println!("  (server asked to resync; catching up)"),
    }
}
