//! Group commit for `append`, backend-neutral: which messages a batch really
//! stores, the seqs they get, the rows to touch, and the per-message fallback
//! when a whole-batch transaction fails.

use std::collections::hash_map::{Entry, HashMap};

use async_trait::async_trait;
use tern_proto::Message;

use crate::common::{conv_kind_str, direct_parties, is_transient, map_err, message_of};
use crate::{Appended, NewMessage, StoreError, StoreResult};

/// Why a batch transaction failed, and whether retrying could help.
#[derive(Debug)]
pub(crate) struct TxFailure {
    pub error: StoreError,
    pub transient: bool,
}

impl From<sqlx::Error> for TxFailure {
    fn from(e: sqlx::Error) -> Self {
        Self {
            transient: is_transient(&e),
            error: map_err(e),
        }
    }
}

impl From<StoreError> for TxFailure {
    fn from(error: StoreError) -> Self {
        Self {
            error,
            transient: false,
        }
    }
}

/// A backend's "store these messages, in this order, in one transaction".
#[async_trait]
pub(crate) trait BatchWriter: Sync {
    async fn write_batch(&self, msgs: &[&NewMessage]) -> Result<Vec<Appended>, TxFailure>;
}

/// How a batch is processed: each (sender, cmid) once, first copy in input
/// order wins; processing order is stably sorted by conversation so that
/// concurrent batches take conversation row locks in the same order.
struct BatchPlan {
    order: Vec<usize>,
    /// For a later copy of a (sender, cmid) seen earlier in the batch: the
    /// index of the first copy.
    alias: Vec<Option<usize>>,
}

impl BatchPlan {
    fn new(batch: &[NewMessage]) -> Self {
        let mut first = HashMap::with_capacity(batch.len());
        let mut alias = vec![None; batch.len()];
        let mut order = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            match first.entry((m.from.as_str(), m.cmid.as_str())) {
                Entry::Occupied(e) => alias[i] = Some(*e.get()),
                Entry::Vacant(e) => {
                    e.insert(i);
                    order.push(i);
                }
            }
        }
        order.sort_by(|&x, &y| batch[x].conv.cmp(&batch[y].conv));
        Self { order, alias }
    }

    /// Results in input order from the results of `order`.
    fn assemble(&self, done: Vec<Appended>) -> Vec<StoreResult<Appended>> {
        let mut slots: Vec<Option<Appended>> = vec![None; self.alias.len()];
        for (&i, appended) in self.order.iter().zip(done) {
            slots[i] = Some(appended);
        }
        (0..self.alias.len())
            .map(|i| {
                let source = self.alias[i].unwrap_or(i);
                match (&slots[source], self.alias[i].is_some()) {
                    (Some(a), false) => Ok(a.clone()),
                    (Some(a), true) => Ok(Appended {
                        message: a.message.clone(),
                        duplicate: true,
                    }),
                    (None, _) => Err(StoreError::Other("batch result missing".into())),
                }
            })
            .collect()
    }
}

/// Transient failures of a single message are retried this often.
const SINGLE_ATTEMPTS: usize = 3;

/// `Store::append` for any backend: the whole batch in one transaction; if
/// that fails for a reason other than an unreachable database, each message
/// again in its own transaction so one bad message cannot fail the others.
pub(crate) async fn append_batch<W: BatchWriter>(
    writer: &W,
    batch: Vec<NewMessage>,
) -> Vec<StoreResult<Appended>> {
    if batch.is_empty() {
        return Vec::new();
    }
    let plan = BatchPlan::new(&batch);
    let msgs: Vec<&NewMessage> = plan.order.iter().map(|&i| &batch[i]).collect();
    let failure = match writer.write_batch(&msgs).await {
        Ok(done) if done.len() == msgs.len() => return plan.assemble(done),
        Ok(_) => TxFailure::from(StoreError::Other("batch result count mismatch".into())),
        Err(f) => f,
    };
    let unavailable = failure.error.is_unavailable();
    if unavailable || (batch.len() == 1 && !failure.transient) {
        return batch.iter().map(|_| Err(failure.error.clone())).collect();
    }
    if batch.len() > 1 {
        tracing::warn!(error = %failure.error, size = batch.len(), "batch append failed; retrying one by one");
    }
    let mut results = Vec::with_capacity(batch.len());
    for m in &batch {
        results.push(append_single(writer, m).await);
    }
    results
}

async fn append_single<W: BatchWriter>(writer: &W, m: &NewMessage) -> StoreResult<Appended> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match writer.write_batch(&[m]).await {
            Ok(mut done) => {
                return done
                    .pop()
                    .ok_or_else(|| StoreError::Other("empty append result".into()))
            }
            Err(f) if f.transient && attempt < SINGLE_ATTEMPTS => {
                tracing::debug!(error = %f.error, attempt, "retrying single append");
            }
            Err(f) => return Err(f.error),
        }
    }
}

/// One conversation counter bump: `count` new messages, newest `last_ts`.
pub(crate) struct ConvBump {
    pub conv: String,
    pub kind: &'static str,
    pub count: i64,
    pub last_ts: i64,
}

/// The messages of a batch that are really new (not already stored), in
/// processing order, with everything the set-based statements need.
pub(crate) struct Fresh<'a> {
    pub msgs: Vec<&'a NewMessage>,
    /// `msgs[i].conv` as text.
    pub convs: Vec<String>,
    /// Counter bumps, sorted by conversation (the row lock order).
    pub bumps: Vec<ConvBump>,
}

impl<'a> Fresh<'a> {
    /// `msgs` minus those whose index is in `stored`.
    pub fn new(msgs: &[&'a NewMessage], stored: &HashMap<usize, Message>) -> Self {
        let msgs: Vec<&NewMessage> = (0..msgs.len())
            .filter(|i| !stored.contains_key(i))
            .map(|i| msgs[i])
            .collect();
        let convs: Vec<String> = msgs.iter().map(|m| m.conv.to_string()).collect();
        let mut bumps: Vec<ConvBump> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (m, conv) in msgs.iter().zip(&convs) {
            let i = *at.entry(conv).or_insert_with(|| {
                bumps.push(ConvBump {
                    conv: conv.clone(),
                    kind: conv_kind_str(&m.conv),
                    count: 0,
                    last_ts: m.ts,
                });
                bumps.len() - 1
            });
            bumps[i].count += 1;
            bumps[i].last_ts = bumps[i].last_ts.max(m.ts);
        }
        bumps.sort_by(|x, y| x.conv.cmp(&y.conv));
        Self { msgs, convs, bumps }
    }

    /// Each message's seq, given every bumped conversation's new `last_seq`:
    /// the batch's messages of a conversation take the `count` seqs ending
    /// there, in processing order.
    pub fn seqs(&self, last_seq: &HashMap<String, i64>) -> StoreResult<Vec<i64>> {
        let mut next: HashMap<&str, i64> = HashMap::with_capacity(self.bumps.len());
        for b in &self.bumps {
            // Only a group conversation can be missing (deleted, or never
            // created): nothing is stored for it.
            let last = last_seq
                .get(&b.conv)
                .ok_or_else(|| StoreError::NotFound(format!("no such conversation: {}", b.conv)))?;
            next.insert(&b.conv, last - b.count + 1);
        }
        self.convs
            .iter()
            .map(|conv| {
                let slot = next
                    .get_mut(conv.as_str())
                    .ok_or_else(|| StoreError::Other(format!("no seq for {conv}")))?;
                *slot += 1;
                Ok(*slot - 1)
            })
            .collect()
    }

    /// `(conv, user, joined_at)` for both parties of each direct conversation
    /// whose first message is in this batch.
    pub fn first_members(&self, seqs: &[i64]) -> Vec<(String, String, i64)> {
        let mut out = Vec::new();
        for ((m, conv), &seq) in self.msgs.iter().zip(&self.convs).zip(seqs) {
            if seq == 1 && !m.conv.is_group() {
                for party in direct_parties(&m.conv) {
                    out.push((conv.clone(), party.to_owned(), m.ts));
                }
            }
        }
        out
    }

    /// `(conv, sender, highest new seq)` per conversation and sender, sorted
    /// (the row lock order): senders' read pointers move to their messages.
    pub fn read_moves(&self, seqs: &[i64]) -> Vec<(String, String, i64)> {
        let mut top: HashMap<(&str, &str), i64> = HashMap::new();
        for ((m, conv), &seq) in self.msgs.iter().zip(&self.convs).zip(seqs) {
            let e = top.entry((conv.as_str(), m.from.as_str())).or_insert(seq);
            *e = (*e).max(seq);
        }
        let mut out: Vec<_> = top
            .into_iter()
            .map(|((c, u), s)| (c.to_owned(), u.to_owned(), s))
            .collect();
        out.sort();
        out
    }

    /// Results for the original `msgs` (in processing order): stored ones
    /// as duplicates, fresh ones with their seqs.
    pub fn results(
        &self,
        total: usize,
        mut stored: HashMap<usize, Message>,
        seqs: &[i64],
    ) -> StoreResult<Vec<Appended>> {
        let mut fresh = self.msgs.iter().zip(seqs);
        (0..total)
            .map(|i| match stored.remove(&i) {
                Some(message) => Ok(Appended {
                    message,
                    duplicate: true,
                }),
                None => {
                    let (m, &seq) = fresh
                        .next()
                        .ok_or_else(|| StoreError::Other("batch result missing".into()))?;
                    Ok(Appended {
                        message: message_of(m, seq)?,
                        duplicate: false,
                    })
                }
            })
            .collect()
    }
}

/// `(sender, cmid)` of every message, for the duplicate lookup.
pub(crate) fn keys<'a>(msgs: &[&'a NewMessage]) -> (Vec<&'a str>, Vec<&'a str>) {
    msgs.iter()
        .map(|m| (m.from.as_str(), m.cmid.as_str()))
        .unzip()
}
