//! What each input line does: sending to the open conversation and the
//! `/` commands (list, open, direct chat, history paging, typing, groups).

use std::io::Write;
use std::time::{Duration, Instant};

use tern_client::{Ack, ClientError};
use tern_proto::{ConvId, Message, MessageKind};

use super::command::{self, Input, HELP};
use super::convs::Entry;
use super::render::{self, notice};
use super::say;
use super::session::{Open, Outcome, Session};

/// Attempts of a send that keeps failing transiently (a reconnect under
/// way), and the pause before the n-th retry (`n × SEND_RETRY_STEP`). The
/// same `cmid` is used, so the server stores the message at most once.
const SEND_ATTEMPTS: u32 = 5;
const SEND_RETRY_STEP: Duration = Duration::from_millis(500);

/// Moves the cursor up one line and clears it: removes the terminal's echo
/// of a line just typed.
const ERASE_ECHO: &str = "\x1b[1A\x1b[2K\r";

impl Session {
    /// Handles one input line; `Some` when the session should end.
    pub async fn on_line(&mut self, line: &str) -> Option<Outcome> {
        let input = match command::parse(line) {
            Ok(input) => input,
            Err(e) => {
                say(notice(&e));
                return None;
            }
        };
        match input {
            Input::Nothing => {}
            Input::Quit => return Some(Outcome::Quit),
            Input::Help => say(HELP),
            Input::List => self.list().await,
            Input::Text(text) => self.send(text).await,
            Input::Open(target) => self.open_target(&target).await,
            Input::Dm(user) => self.dm(&user).await,
            Input::More => self.more().await,
            Input::Typing => self.typing().await,
            Input::Close => match self.open.take() {
                Some(_) => say(notice("conversation closed; new messages show as notices")),
                None => say(notice("no conversation is open")),
            },
            Input::GroupCreate { name, members } => self.group_create(&name, &members).await,
            Input::GroupAdd(users) => self.group_add(&users).await,
            Input::GroupLeave => self.group_leave().await,
        }
        None
    }

    /// `/list`: fetches the conversations (numbers already shown stay) and
    /// seeds gap detection with their last seqs.
    pub async fn list(&mut self) {
        match self.client.convs().await {
            Ok(items) => {
                let entries: Vec<Entry> = items
                    .into_iter()
                    .map(|s| Entry::from_summary(s, &self.me))
                    .collect();
                for e in &entries {
                    self.client.track(e.conv.clone(), e.last_seq);
                }
                self.convs.merge(entries);
            }
            Err(e) => say(notice(&format!("could not list conversations: {e}"))),
        }
        let open = self.open.as_ref().map(|o| &o.conv);
        for line in render::list(self.convs.entries(), open) {
            say(line);
        }
    }

    /// `/open N | NAME | CONV-ID`.
    async fn open_target(&mut self, target: &str) {
        if let Some(e) = self.convs.find(target) {
            let (conv, title) = (e.conv.clone(), e.title.clone());
            return self.open_conv(conv, title).await;
        }
        if let Ok(conv) = ConvId::parse(target) {
            let title = conv
                .peer_of(&self.me)
                .map_or_else(|| conv.to_string(), str::to_owned);
            return self.open_conv(conv, title).await;
        }
        if tern_proto::ids::validate_username(target).is_ok() {
            return self.dm(target).await;
        }
        say(notice(&format!(
            "no conversation {target:?}: /list shows them"
        )));
    }

    /// `/dm USER`: checks that USER exists, then opens the conversation.
    async fn dm(&mut self, user: &str) {
        if let Err(e) = tern_proto::ids::validate_username(user) {
            return say(notice(&format!("{user:?}: {e}")));
        }
        if user != self.me {
            match self.api.presence(user).await {
                Ok(_) => {}
                Err(e) if e.status == 404 => return say(notice(&format!("no such user: {user}"))),
                Err(e) => return say(notice(&format!("cannot look up {user}: {e}"))),
            }
        }
        self.open_conv(ConvId::direct(&self.me, user), user.to_owned())
            .await;
    }

    /// Shows the conversation's latest messages and makes it the open one.
    pub async fn open_conv(&mut self, conv: ConvId, title: String) {
        let page = match self.client.sync_latest(&conv, self.history).await {
            Ok(page) => page,
            Err(e) => return say(notice(&format!("cannot open {conv}: {e}"))),
        };
        self.convs.ensure(&conv, || title);
        if let Some(e) = self.convs.get(&conv) {
            say(render::header(e));
        }
        let now = crate::service::now_ms();
        for m in &page.items {
            say(render::message(m, now));
        }
        let newest = page.items.last().map_or(0, |m| m.seq);
        let oldest = page.items.first().map_or(0, |m| m.seq);
        if let Some(last) = page.items.last() {
            self.convs.on_message(last, &self.me, true);
        }
        match (page.items.is_empty(), page.more) {
            (true, _) => say(notice("no messages yet; type a line to send one")),
            (false, true) => say(notice("/more shows older messages")),
            (false, false) => {}
        }
        let peer = conv
            .peer_of(&self.me)
            .filter(|p| *p != self.me)
            .map(str::to_owned);
        self.watch_presence(peer.as_deref()).await;
        self.client.track(conv.clone(), newest);
        self.open = Some(Open {
            conv: conv.clone(),
            oldest,
            newest,
            more: page.more,
            peer,
            own_seq: 0,
            own_read_shown: false,
        });
        if newest > 0 {
            self.mark_read(&conv, newest).await;
        }
    }

    /// Watches the presence of the open conversation's peer only.
    async fn watch_presence(&mut self, peer: Option<&str>) {
        if let Some(old) = self.open.as_ref().and_then(|o| o.peer.clone()) {
            if Some(old.as_str()) != peer {
                let _ = self.client.presence_unsub([old]).await;
            }
        }
        let Some(peer) = peer else { return };
        match self.client.presence_sub([peer.to_owned()]).await {
            Ok(items) => {
                for p in items {
                    let state = if p.online { "online" } else { "offline" };
                    say(notice(&format!("{} is {state}", p.user)));
                }
            }
            Err(e) => say(notice(&format!("no presence for {peer}: {e}"))),
        }
    }

    /// `/more`: the page before the oldest message shown.
    async fn more(&mut self) {
        let Some(open) = self.open.as_ref() else {
            return say(notice("no conversation is open"));
        };
        if !open.more || open.oldest <= 1 {
            return say(notice("no older messages"));
        }
        let conv = open.conv.clone();
        let page = match self
            .client
            .sync_before(&conv, open.oldest, self.history)
            .await
        {
            Ok(page) => page,
            Err(e) => return say(notice(&format!("cannot fetch older messages: {e}"))),
        };
        let (Some(first), Some(last)) = (page.items.first(), page.items.last()) else {
            return say(notice("no older messages"));
        };
        say(notice(&format!(
            "older messages #{} to #{}:",
            first.seq, last.seq
        )));
        let now = crate::service::now_ms();
        for m in &page.items {
            say(render::message(m, now));
        }
        say(notice(if page.more {
            "end of this page; /more for older ones"
        } else {
            "that was the beginning of the conversation"
        }));
        if let Some(open) = self.open.as_mut().filter(|o| o.conv == conv) {
            open.oldest = first.seq;
            open.more = page.more;
        }
    }

    /// `/typing`, at most once per `--typing-every` per conversation.
    async fn typing(&mut self) {
        let Some(conv) = self.open.as_ref().map(|o| o.conv.clone()) else {
            return say(notice("no conversation is open"));
        };
        let now = Instant::now();
        if self
            .typing_sent
            .get(&conv)
            .is_some_and(|at| now.duration_since(*at) < self.typing_every)
        {
            return;
        }
        self.typing_sent.insert(conv.clone(), now);
        if let Err(e) = self.client.typing(&conv).await {
            say(notice(&format!("typing notice not sent: {e}")));
        }
    }

    /// A line of text to the open conversation; shown once acknowledged.
    async fn send(&mut self, body: String) {
        let Some(conv) = self.open.as_ref().map(|o| o.conv.clone()) else {
            return say(notice(
                "no conversation is open: /list, /open N or /dm USER first (/help)",
            ));
        };
        if self.tty {
            let _ = write!(std::io::stdout(), "{ERASE_ECHO}");
        }
        match self.send_with_retry(&conv, &body).await {
            Ok(ack) => {
                let shown = Message {
                    conv: ack.conv,
                    seq: ack.seq,
                    mid: ack.mid,
                    from: self.me.clone(),
                    body,
                    kind: MessageKind::Text,
                    ts: ack.ts,
                    cmid: String::new(),
                    meta: None,
                };
                self.convs.on_message(&shown, &self.me, true);
                say(render::message(&shown, crate::service::now_ms()));
                if let Some(open) = self.open.as_mut().filter(|o| o.conv == conv) {
                    open.own_seq = ack.seq;
                    open.own_read_shown = false;
                }
            }
            Err(e) => say(notice(&format!("not sent: {e}"))),
        }
    }

    async fn send_with_retry(&self, conv: &ConvId, body: &str) -> Result<Ack, ClientError> {
        let cmid = format!("chat-{:016x}", rand::random::<u64>());
        let mut attempt = 0;
        loop {
            match self.client.send_conv(conv, &cmid, body).await {
                Err(e) if e.is_transient() && attempt + 1 < SEND_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(SEND_RETRY_STEP * attempt).await;
                }
                other => return other,
            }
        }
    }

    /// `/group create NAME USER…`: creates the group and opens it.
    async fn group_create(&mut self, name: &str, members: &[String]) {
        match self.api.create_group(name, members).await {
            Ok(group) => {
                say(notice(&format!(
                    "group \"{}\" created with {}",
                    render::sanitize(&group.name),
                    group.members.join(", ")
                )));
                self.open_conv(ConvId::Group(group.id), group.name).await;
            }
            Err(e) => say(notice(&format!("group not created: {e}"))),
        }
    }

    /// The id of the open group, or a notice that none is open.
    fn open_group(&self) -> Option<String> {
        match self.open.as_ref().map(|o| &o.conv) {
            Some(ConvId::Group(id)) => Some(id.clone()),
            _ => {
                say(notice("open a group first (/open N)"));
                None
            }
        }
    }

    /// `/group add USER…` to the open group.
    async fn group_add(&mut self, users: &[String]) {
        let Some(id) = self.open_group() else { return };
        match self.api.add_members(&id, users).await {
            Ok(group) => say(notice(&format!(
                "members of \"{}\": {}",
                render::sanitize(&group.name),
                group.members.join(", ")
            ))),
            Err(e) => say(notice(&format!("not added: {e}"))),
        }
    }

    /// `/group leave`: leaves the open group and closes it.
    async fn group_leave(&mut self) {
        let Some(id) = self.open_group() else { return };
        match self.api.leave_group(&id, &self.me).await {
            Ok(()) => {
                say(notice("you left the group"));
                self.forget(&ConvId::Group(id));
            }
            Err(e) => say(notice(&format!("could not leave: {e}"))),
        }
    }
}
