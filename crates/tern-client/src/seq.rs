//! Per-conversation sequence tracking: drops duplicate pushes and reveals gaps
//! (PROTOCOL.md §3: seqs are 1, 2, 3, … without gaps or duplicates).

use std::collections::{BTreeMap, BTreeSet};

use tern_proto::ConvId;

/// What a message's seq means given what was seen before in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// A conversation never seen or seeded: this seq becomes the baseline.
    Untracked,
    /// Already seen: drop it.
    Duplicate,
    /// Exactly the next one.
    Next,
    /// Messages `after + 1 ..= seq - 1` are missing; fetch them with
    /// `sync after=after`.
    Gap { after: u64 },
}

#[derive(Debug, Default, Clone)]
struct ConvSeqs {
    /// Highest seq up to which every message was seen.
    contiguous: u64,
    /// Seqs above `contiguous + 1` already seen (e.g. the acks of our own
    /// sends that overtook another member's push).
    ahead: BTreeSet<u64>,
}

/// The highest contiguous seq seen per conversation.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    convs: BTreeMap<ConvId, ConvSeqs>,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds (or moves forward) a conversation: everything up to `last_seq`
    /// counts as seen. Never moves a conversation backwards.
    pub fn track(&mut self, conv: ConvId, last_seq: u64) {
        let entry = self.convs.entry(conv).or_default();
        if last_seq > entry.contiguous {
            entry.contiguous = last_seq;
            entry.absorb();
        }
    }

    /// Forgets a conversation (e.g. after leaving a group).
    pub fn untrack(&mut self, conv: &ConvId) {
        self.convs.remove(conv);
    }

    /// The highest contiguous seq seen, if the conversation is tracked.
    pub fn last_seen(&self, conv: &ConvId) -> Option<u64> {
        self.convs.get(conv).map(|c| c.contiguous)
    }

    /// Every tracked conversation with its last contiguous seq.
    pub fn snapshot(&self) -> Vec<(ConvId, u64)> {
        self.convs
            .iter()
            .map(|(conv, c)| (conv.clone(), c.contiguous))
            .collect()
    }

    /// Classifies `seq` without recording it.
    pub fn check(&self, conv: &ConvId, seq: u64) -> SeqCheck {
        let Some(c) = self.convs.get(conv) else {
            return SeqCheck::Untracked;
        };
        if seq <= c.contiguous || c.ahead.contains(&seq) {
            SeqCheck::Duplicate
        } else if seq == c.contiguous + 1 {
            SeqCheck::Next
        } else {
            SeqCheck::Gap {
                after: c.contiguous,
            }
        }
    }

    /// Records a delivered message: `Untracked` and `Next` seqs become the new
    /// contiguous end. Returns what [`Self::check`] said before.
    pub fn accept(&mut self, conv: &ConvId, seq: u64) -> SeqCheck {
        let verdict = self.check(conv, seq);
        match verdict {
            SeqCheck::Untracked | SeqCheck::Next => self.track(conv.clone(), seq),
            SeqCheck::Duplicate | SeqCheck::Gap { .. } => {}
        }
        verdict
    }

    /// Records the ack of one of our own sends (the server pushes it to our
    /// other sessions only). Untracked conversations stay untracked, so a
    /// push racing the ack is never mistaken for a duplicate.
    pub fn record_own(&mut self, conv: &ConvId, seq: u64) {
        if let Some(c) = self.convs.get_mut(conv) {
            if seq > c.contiguous {
                c.ahead.insert(seq);
                c.absorb();
            }
        }
    }
}

impl ConvSeqs {
    /// Moves `contiguous` over seqs in `ahead` that now follow it, and drops
    /// the ones at or below it.
    fn absorb(&mut self) {
        while self.ahead.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        let contiguous = self.contiguous;
        self.ahead.retain(|&s| s > contiguous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> ConvId {
        ConvId::direct("alice", "bob")
    }

    #[test]
    fn first_seq_is_the_baseline_then_next_and_duplicates() {
        let mut t = SeqTracker::new();
        assert_eq!(t.accept(&conv(), 7), SeqCheck::Untracked);
        assert_eq!(t.last_seen(&conv()), Some(7));
        assert_eq!(t.accept(&conv(), 7), SeqCheck::Duplicate);
        assert_eq!(t.accept(&conv(), 3), SeqCheck::Duplicate);
        assert_eq!(t.accept(&conv(), 8), SeqCheck::Next);
        assert_eq!(t.last_seen(&conv()), Some(8));
    }

    #[test]
    fn gaps_are_reported_and_not_recorded() {
        let mut t = SeqTracker::new();
        t.track(conv(), 0);
        assert_eq!(t.accept(&conv(), 3), SeqCheck::Gap { after: 0 });
        assert_eq!(t.last_seen(&conv()), Some(0));
        assert_eq!(t.accept(&conv(), 1), SeqCheck::Next);
        assert_eq!(t.check(&conv(), 3), SeqCheck::Gap { after: 1 });
    }

    #[test]
    fn seeding_never_moves_back() {
        let mut t = SeqTracker::new();
        t.track(conv(), 10);
        t.track(conv(), 4);
        assert_eq!(t.last_seen(&conv()), Some(10));
        assert_eq!(t.snapshot(), vec![(conv(), 10)]);
        t.untrack(&conv());
        assert_eq!(t.last_seen(&conv()), None);
    }

    #[test]
    fn own_acks_fill_in_without_delivery() {
        let mut t = SeqTracker::new();
        t.record_own(&conv(), 5);
        assert_eq!(t.last_seen(&conv()), None, "untracked stays untracked");
        t.track(conv(), 3);
        t.record_own(&conv(), 5);
        assert_eq!(t.check(&conv(), 5), SeqCheck::Duplicate);
        assert_eq!(t.accept(&conv(), 4), SeqCheck::Next);
        assert_eq!(t.last_seen(&conv()), Some(5), "absorbed the own ack");
        t.record_own(&conv(), 6);
        assert_eq!(t.last_seen(&conv()), Some(6));
    }
}
