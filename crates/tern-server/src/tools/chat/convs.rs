//! The conversation list of `tern chat`: numbered entries with unread
//! counts, as the server's `convs` gave them and as pushes changed them
//! since. A conversation keeps its number for the whole session; new ones
//! are appended.

use tern_proto::frame::{ConvKind, ConvSummary};
use tern_proto::{ConvId, Message};

/// One conversation as the client shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub conv: ConvId,
    /// The peer of a direct conversation, or the group's name.
    pub title: String,
    pub is_group: bool,
    pub last_seq: u64,
    pub unread: u64,
    pub last: Option<Message>,
}

impl Entry {
    /// An entry from the server's summary, seen by `me`.
    pub fn from_summary(s: ConvSummary, me: &str) -> Self {
        let is_group = s.kind == ConvKind::Group;
        let title = match (&s.name, &s.peer) {
            (Some(name), _) if is_group => name.clone(),
            (_, Some(peer)) => peer.clone(),
            _ => s.conv.peer_of(me).unwrap_or("?").to_owned(),
        };
        Self {
            conv: s.conv,
            title,
            is_group,
            last_seq: s.last_seq,
            unread: s.unread,
            last: s.last,
        }
    }

    /// An empty direct conversation with `peer`, or a group with no message.
    pub fn new(conv: ConvId, title: String) -> Self {
        Self {
            is_group: conv.is_group(),
            conv,
            title,
            last_seq: 0,
            unread: 0,
            last: None,
        }
    }
}

/// The numbered list (numbers start at 1).
#[derive(Debug, Default)]
pub struct ConvList {
    entries: Vec<Entry>,
}

impl ConvList {
    /// Takes in the server's list: listed conversations keep their number
    /// (with the server's counts), new ones are appended in the server's
    /// order (most recent first), ones the server no longer lists go.
    pub fn merge(&mut self, fresh: Vec<Entry>) {
        let mut fresh: Vec<Option<Entry>> = fresh.into_iter().map(Some).collect();
        let mut merged = Vec::with_capacity(fresh.len());
        for old in &self.entries {
            let slot = fresh
                .iter_mut()
                .find(|f| f.as_ref().is_some_and(|f| f.conv == old.conv));
            if let Some(entry) = slot.and_then(Option::take) {
                merged.push(entry);
            }
        }
        merged.extend(fresh.into_iter().flatten());
        self.entries = merged;
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, conv: &ConvId) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.conv == conv)
    }

    /// The entry of `conv`, appended if new (then titled `title`); returns
    /// its number.
    pub fn ensure(&mut self, conv: &ConvId, title: impl FnOnce() -> String) -> usize {
        if let Some(at) = self.entries.iter().position(|e| &e.conv == conv) {
            return at + 1;
        }
        self.entries.push(Entry::new(conv.clone(), title()));
        self.entries.len()
    }

    /// The number of `conv` in the list, if listed.
    pub fn number(&self, conv: &ConvId) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| &e.conv == conv)
            .map(|i| i + 1)
    }

    /// Records a message; counts it unread unless it is `me`'s or `open`.
    /// Returns the entry's unread count afterwards, or `None` when the
    /// message is not newer than the entry's last one.
    pub fn on_message(&mut self, m: &Message, me: &str, open: bool) -> Option<u64> {
        let title = || m.conv.peer_of(me).unwrap_or(&m.from).to_owned();
        let at = self.ensure(&m.conv, title) - 1;
        let e = self.entries.get_mut(at)?;
        if m.seq <= e.last_seq {
            return None;
        }
        if !open && m.from != me {
            e.unread += 1;
        }
        e.last_seq = m.seq;
        e.last = Some(m.clone());
        Some(e.unread)
    }

    /// Everything up to the last known seq is read.
    pub fn mark_read(&mut self, conv: &ConvId) {
        if let Some(e) = self.entries.iter_mut().find(|e| &e.conv == conv) {
            e.unread = 0;
        }
    }

    /// Renames a conversation (a group renamed).
    pub fn set_title(&mut self, conv: &ConvId, title: &str) {
        if let Some(e) = self.entries.iter_mut().find(|e| &e.conv == conv) {
            e.title = title.to_owned();
        }
    }

    /// Drops a conversation (a group left or deleted).
    pub fn remove(&mut self, conv: &ConvId) {
        self.entries.retain(|e| &e.conv != conv);
    }

    /// What `/open TARGET` means: a number from the list, a conversation
    /// id, a listed peer or group name (case-insensitive), in that order.
    pub fn find(&self, target: &str) -> Option<&Entry> {
        if let Ok(n) = target.parse::<usize>() {
            return n.checked_sub(1).and_then(|i| self.entries.get(i));
        }
        if let Ok(conv) = ConvId::parse(target) {
            return self.get(&conv);
        }
        self.entries
            .iter()
            .find(|e| e.title.eq_ignore_ascii_case(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::MessageKind;

    fn msg(conv: &ConvId, seq: u64, from: &str) -> Message {
        Message {
            conv: conv.clone(),
            seq,
            mid: format!("m{seq}"),
            from: from.into(),
            body: "hi".into(),
            kind: MessageKind::Text,
            ts: 0,
            cmid: format!("c{seq}"),
            meta: None,
        }
    }

    fn summary(
        conv: ConvId,
        kind: ConvKind,
        peer: Option<&str>,
        name: Option<&str>,
    ) -> ConvSummary {
        ConvSummary {
            conv,
            kind,
            peer: peer.map(str::to_owned),
            name: name.map(str::to_owned),
            last_seq: 4,
            read_seq: 1,
            unread: 3,
            last: None,
        }
    }

    #[test]
    fn entries_from_summaries_and_lookup() {
        let dm = ConvId::direct("alice", "bob");
        let g = ConvId::Group("g1".into());
        let mut list = ConvList::default();
        list.merge(vec![
            Entry::from_summary(
                summary(dm.clone(), ConvKind::Direct, Some("bob"), None),
                "alice",
            ),
            Entry::from_summary(
                summary(g.clone(), ConvKind::Group, None, Some("Lunch crew")),
                "alice",
            ),
        ]);
        assert_eq!(list.entries()[0].title, "bob");
        assert!(list.entries()[1].is_group);
        assert_eq!(list.find("1").map(|e| &e.conv), Some(&dm));
        assert_eq!(list.find("2").map(|e| &e.conv), Some(&g));
        assert_eq!(list.find("g:g1").map(|e| &e.conv), Some(&g));
        assert_eq!(list.find("lunch CREW").map(|e| &e.conv), Some(&g));
        assert_eq!(list.find("BOB").map(|e| &e.conv), Some(&dm));
        for missing in ["0", "3", "carol", "d:alice:carol"] {
            assert!(list.find(missing).is_none(), "{missing}");
        }
        assert_eq!(list.number(&g), Some(2));

        // Numbers stay; new conversations are appended, gone ones dropped.
        let carol = ConvId::direct("alice", "carol");
        list.merge(vec![
            Entry::new(carol.clone(), "carol".into()),
            Entry::from_summary(
                summary(g.clone(), ConvKind::Group, None, Some("Lunch")),
                "alice",
            ),
        ]);
        assert_eq!(list.number(&g), Some(1));
        assert_eq!(list.number(&carol), Some(2));
        assert_eq!(list.number(&dm), None);
        assert_eq!(list.entries()[0].title, "Lunch");
    }

    #[test]
    fn unread_counts_follow_messages() {
        let dm = ConvId::direct("alice", "bob");
        let mut list = ConvList::default();
        // A new conversation is appended, titled by the peer.
        assert_eq!(
            list.on_message(&msg(&dm, 1, "bob"), "alice", false),
            Some(1)
        );
        assert_eq!(list.entries()[0].title, "bob");
        assert_eq!(
            list.on_message(&msg(&dm, 2, "bob"), "alice", false),
            Some(2)
        );
        // A repeat changes nothing; own messages and the open one are read.
        assert_eq!(list.on_message(&msg(&dm, 2, "bob"), "alice", false), None);
        assert_eq!(
            list.on_message(&msg(&dm, 3, "alice"), "alice", false),
            Some(2)
        );
        assert_eq!(list.on_message(&msg(&dm, 4, "bob"), "alice", true), Some(2));
        assert_eq!(list.entries()[0].last_seq, 4);
        list.mark_read(&dm);
        assert_eq!(list.entries()[0].unread, 0);
        assert_eq!(list.ensure(&dm, || unreachable!()), 1);
        list.remove(&dm);
        assert!(list.entries().is_empty());
    }
}
