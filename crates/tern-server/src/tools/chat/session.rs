//! The running chat: the connection, the conversation list and the open
//! conversation; one loop that handles input lines and server pushes in
//! turn, and the pushes' effect on the screen.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use tern_client::{AuthMode, Client, ClientConfig, ClientError, Push, PushStream};
use tern_proto::frame::{GroupEvent, GroupInfo};
use tern_proto::{ConvId, ErrorCode, Message};
use tokio::sync::mpsc;

use super::args::{ChatArgs, Endpoints};
use super::convs::ConvList;
use super::http::Api;
use super::input::Line;
use super::login::{self, Auth};
use super::render::{self, notice};
use super::say;
use crate::tools::ToolError;

/// Device name given in the `auth` frame.
const DEVICE: &str = "tern-chat";

/// How the session ended.
pub enum Outcome {
    /// `/quit` or the end of input.
    Quit,
    /// The server ended it for good; the message says why.
    Ended(String),
}

/// The open conversation.
pub struct Open {
    pub conv: ConvId,
    /// Lowest seq shown (for `/more`), 0 when nothing was.
    pub oldest: u64,
    /// Highest seq shown from history or pushes (own sends not counted).
    pub newest: u64,
    /// Older messages exist.
    pub more: bool,
    /// The other party of a direct conversation (presence is watched).
    pub peer: Option<String>,
    /// Seq of the last message sent here, and whether a receipt covering it
    /// was shown.
    pub own_seq: u64,
    pub own_read_shown: bool,
}

/// Everything the loop works on.
pub struct Session {
    pub client: Client,
    pub api: Api,
    pub me: String,
    pub history: u32,
    pub typing_every: Duration,
    pub convs: ConvList,
    pub open: Option<Open>,
    pub typing_sent: HashMap<ConvId, Instant>,
    typing_seen: HashMap<(ConvId, String), Instant>,
    /// The last `error` push that announced a close: its message.
    closing_error: Option<String>,
    /// stdin and stdout are both terminals: a sent line's echo is replaced
    /// by the formatted message.
    pub tty: bool,
}

/// Logs in, connects and runs the loop until `/quit`, the end of input or
/// the server ending the session.
pub async fn run(
    args: &ChatArgs,
    endpoints: Endpoints,
    auth: Auth,
    lines: mpsc::Receiver<Line>,
) -> Result<(), ToolError> {
    let mut api = Api::new(&endpoints.http, args.timeout);
    let token = login::token(auth, &api).await?;
    api.set_token(token.clone());
    let cfg = ClientConfig::new(&endpoints.ws, &token)
        .with_auth(AuthMode::Frame {
            device: DEVICE.into(),
        })
        .with_request_timeout(args.timeout);
    let (client, pushes) = Client::connect(cfg)
        .await
        .map_err(|e| connect_error(e, &endpoints.ws))?;
    let me = client.user();
    say(notice(&format!(
        "connected to {} as {me}; /help for commands, /quit to leave",
        endpoints.http
    )));
    let mut session = Session {
        client: client.clone(),
        api,
        me,
        history: args.history,
        typing_every: args.typing_every,
        convs: ConvList::default(),
        open: None,
        typing_sent: HashMap::new(),
        typing_seen: HashMap::new(),
        closing_error: None,
        tty: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
    };
    session.list().await;
    match session.run_loop(lines, pushes).await {
        Outcome::Quit => {
            client
                .close()
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            say(notice("bye"));
            Ok(())
        }
        Outcome::Ended(why) => Err(ToolError::Failed(why)),
    }
}

/// Why the first connection failed, in words.
fn connect_error(e: ClientError, url: &str) -> ToolError {
    let why = match e {
        ClientError::Server {
            code: ErrorCode::Unauthorized,
            message,
            ..
        } => render::ended(tern_proto::CloseCode::BadToken.code(), &message),
        ClientError::Server {
            code: ErrorCode::Forbidden,
            message,
            ..
        } => render::ended(tern_proto::CloseCode::Kicked.code(), &message),
        ClientError::Closed { code, reason } => render::ended(code, &reason),
        other => format!("cannot connect to {url}: {other}"),
    };
    ToolError::Failed(why)
}

impl Session {
    async fn run_loop(
        &mut self,
        mut lines: mpsc::Receiver<Line>,
        mut pushes: PushStream,
    ) -> Outcome {
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(Line::Text(text)) => {
                        if let Some(outcome) = self.on_line(&text).await {
                            return outcome;
                        }
                    }
                    Some(Line::End) | None => return Outcome::Quit,
                },
                push = pushes.recv() => match push {
                    Some(push) => {
                        if let Some(outcome) = self.on_push(push).await {
                            return outcome;
                        }
                    }
                    None => return Outcome::Ended(render::ended(1006, "the connection ended")),
                },
            }
        }
    }

    pub fn is_open(&self, conv: &ConvId) -> bool {
        self.open.as_ref().is_some_and(|o| &o.conv == conv)
    }

    async fn on_push(&mut self, push: Push) -> Option<Outcome> {
        match push {
            Push::Msg(m) => self.on_msg(m).await,
            Push::Typing { conv, user } => self.on_typing(conv, user),
            Push::Receipt { conv, user, seq } => self.on_receipt(&conv, &user, seq),
            Push::Presence(items) => {
                for p in items {
                    if self.open.as_ref().and_then(|o| o.peer.as_deref()) == Some(&p.user) {
                        let state = if p.online { "online" } else { "offline" };
                        say(notice(&format!("{} is {state}", p.user)));
                    }
                }
            }
            Push::Group {
                event,
                group,
                users,
            } => self.on_group(event, &group, &users),
            Push::Goaway { .. } => say(notice(
                "the server is restarting; moving to a new connection…",
            )),
            Push::Resync => {}
            Push::Error {
                code,
                message,
                close,
                ..
            } => match close {
                Some(_) => self.closing_error = Some(format!("{code}: {message}")),
                None => say(notice(&format!("error {code}: {message}"))),
            },
            Push::Closed {
                code,
                reason,
                reconnecting: true,
            } => say(notice(&format!(
                "connection lost ({code}{}); reconnecting…",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" {reason}")
                }
            ))),
            Push::Closed { code, reason, .. } => {
                let why = self.closing_error.take().unwrap_or(reason);
                return Some(Outcome::Ended(render::ended(code, &why)));
            }
            Push::Reconnected { .. } => {
                self.closing_error = None;
                say(notice("reconnected"));
            }
        }
        None
    }

    async fn on_msg(&mut self, m: Message) {
        let now = crate::service::now_ms();
        if let Some(open) = self.open.as_mut().filter(|o| o.conv == m.conv) {
            if m.seq <= open.newest {
                return; // shown with the history already
            }
            open.newest = m.seq;
            self.convs.on_message(&m, &self.me, true);
            self.typing_seen.remove(&(m.conv.clone(), m.from.clone()));
            say(render::message(&m, now));
            if m.from != self.me {
                self.mark_read(&m.conv, m.seq).await;
            }
            return;
        }
        if self.convs.on_message(&m, &self.me, false).is_some() && m.from != self.me {
            let number = self.convs.number(&m.conv).unwrap_or(0);
            if let Some(entry) = self.convs.get(&m.conv) {
                say(render::elsewhere(entry, number, &m));
            }
        }
    }

    /// Moves the read pointer; a failure is only reported.
    pub async fn mark_read(&mut self, conv: &ConvId, seq: u64) {
        self.convs.mark_read(conv);
        if let Err(e) = self.client.read(conv, seq).await {
            say(notice(&format!("could not mark {conv} read: {e}")));
        }
    }

    fn on_typing(&mut self, conv: ConvId, user: String) {
        if !self.is_open(&conv) || user == self.me {
            return;
        }
        let now = Instant::now();
        let every = self.typing_every;
        self.typing_seen
            .retain(|_, at| now.duration_since(*at) < every);
        if let std::collections::hash_map::Entry::Vacant(slot) =
            self.typing_seen.entry((conv, user.clone()))
        {
            slot.insert(now);
            say(notice(&format!("{user} is typing…")));
        }
    }

    fn on_receipt(&mut self, conv: &ConvId, user: &str, seq: u64) {
        if user == self.me {
            // Read on another device.
            self.convs.mark_read(conv);
            return;
        }
        if let Some(open) = self.open.as_mut().filter(|o| &o.conv == conv) {
            if open.own_seq > 0 && seq >= open.own_seq && !open.own_read_shown {
                open.own_read_shown = true;
                say(notice(&format!("read by {user}")));
            }
        }
    }

    fn on_group(&mut self, event: GroupEvent, group: &GroupInfo, users: &[String]) {
        let conv = ConvId::Group(group.id.clone());
        let name = render::sanitize(&group.name);
        let me_too = users.iter().any(|u| u == &self.me);
        let open = self.is_open(&conv);
        match event {
            GroupEvent::MemberAdded if me_too => {
                let known = self.convs.get(&conv).is_some();
                let number = self.convs.ensure(&conv, || group.name.clone());
                if !known && !open {
                    say(notice(&format!(
                        "you are in the group \"{name}\" (owner {}): /open {number}",
                        group.owner
                    )));
                }
            }
            GroupEvent::MemberAdded if open => {
                say(notice(&format!("{} joined \"{name}\"", users.join(", "))));
            }
            GroupEvent::MemberRemoved if me_too => {
                if self.convs.get(&conv).is_some() {
                    say(notice(&format!(
                        "you are no longer in the group \"{name}\""
                    )));
                }
                self.forget(&conv);
            }
            GroupEvent::MemberRemoved if open => {
                say(notice(&format!("{} left \"{name}\"", users.join(", "))));
            }
            GroupEvent::Updated => {
                let renamed = self.convs.get(&conv).is_some_and(|e| e.title != group.name);
                self.convs.set_title(&conv, &group.name);
                if renamed && open {
                    say(notice(&format!("the group is now called \"{name}\"")));
                }
            }
            GroupEvent::Deleted => {
                if self.convs.get(&conv).is_some() {
                    say(notice(&format!("the group \"{name}\" was deleted")));
                }
                self.forget(&conv);
            }
            GroupEvent::MemberAdded | GroupEvent::MemberRemoved => {}
        }
    }

    /// Drops a conversation from the list, and closes it if open.
    pub fn forget(&mut self, conv: &ConvId) {
        self.convs.remove(conv);
        if self.is_open(conv) {
            self.open = None;
            say(notice("conversation closed: /list, /open N or /dm USER"));
        }
    }
}
