//! [`Bounded`]: any [`Store`] with a time limit on every call. A database
//! that is cut off or black-holed (packets vanish, nothing errors) would
//! otherwise hold a send, a sync or a login for minutes of TCP retries;
//! bounded, the caller gets `Unavailable` in time and nothing is lost: a
//! send whose commit timed out may or may not be stored, and its retry with
//! the same `cmid` is answered with the original ack if it was.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tern_proto::{ConvId, ConvSummary, Message};
use tracing::Instrument;

use crate::{
    Appended, GroupRecord, GroupRole, HistoryPage, NewMessage, Page, Provisioned, ReadOutcome,
    RoleOutcome, Store, StoreError, StoreResult, UserRecord,
};

/// A store whose every operation ends within `limit`.
pub struct Bounded {
    inner: Arc<dyn Store>,
    limit: Duration,
}

impl Bounded {
    pub fn wrap(inner: Arc<dyn Store>, limit: Duration) -> Arc<dyn Store> {
        Arc::new(Self { inner, limit })
    }

    async fn within<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let op = op.instrument(store_span(what));
        match tokio::time::timeout(self.limit, op).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(what, self.limit)),
        }
    }
}

/// The trace span of one store call. The target is tern-server's
/// `telemetry::SPAN_TARGET`: with tracing off no layer wants it and the
/// span is never built.
fn store_span(what: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: "tern::trace",
        "store",
        otel.name = %format_args!("store.{what}"),
        db.operation.name = what,
    )
}

fn timed_out(what: &str, limit: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "{what}: no answer from the database within {limit:?}"
    ))
}

#[async_trait]
impl Store for Bounded {
    async fn ping(&self) -> StoreResult<()> {
        self.within("ping", self.inner.ping()).await
    }

    async fn create_user(
        &self,
        username: &str,
        hash: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.within(
            "create_user",
            self.inner.create_user(username, hash, now_ms),
        )
        .await
    }

    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.within("get_user", self.inner.get_user(username)).await
    }

    async fn provision_users(
        &self,
        usernames: &[&str],
        now_ms: i64,
    ) -> StoreResult<Vec<Provisioned>> {
        self.within(
            "provision_users",
            self.inner.provision_users(usernames, now_ms),
        )
        .await
    }

    async fn set_last_seen_many(&self, items: &[(&str, i64)]) -> StoreResult<()> {
        self.within("set_last_seen", self.inner.set_last_seen_many(items))
            .await
    }

    async fn set_banned(&self, username: &str, banned: bool) -> StoreResult<bool> {
        self.within("set_banned", self.inner.set_banned(username, banned))
            .await
    }

    async fn banned_users(&self) -> StoreResult<Vec<String>> {
        self.within("banned_users", self.inner.banned_users()).await
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<StoreResult<Appended>> {
        let n = batch.len();
        let op = self.inner.append(batch).instrument(store_span("append"));
        match tokio::time::timeout(self.limit, op).await {
            Ok(results) => results,
            Err(_) => (0..n)
                .map(|_| Err(timed_out("append", self.limit)))
                .collect(),
        }
    }

    async fn history(&self, conv: &ConvId, page: Page) -> StoreResult<HistoryPage> {
        self.within("history", self.inner.history(conv, page)).await
    }

    async fn find_sent(&self, sender: &str, cmid: &str) -> StoreResult<Option<Message>> {
        self.within("find_sent", self.inner.find_sent(sender, cmid))
            .await
    }

    async fn conversations(&self, user: &str) -> StoreResult<Vec<ConvSummary>> {
        self.within("conversations", self.inner.conversations(user))
            .await
    }

    async fn mark_read(&self, user: &str, conv: &ConvId, seq: u64) -> StoreResult<ReadOutcome> {
        self.within("mark_read", self.inner.mark_read(user, conv, seq))
            .await
    }

    async fn create_group(
        &self,
        id: &str,
        name: &str,
        owner: &str,
        members: &[String],
        now_ms: i64,
    ) -> StoreResult<GroupRecord> {
        let op = self.inner.create_group(id, name, owner, members, now_ms);
        self.within("create_group", op).await
    }

    async fn get_group(&self, id: &str) -> StoreResult<Option<GroupRecord>> {
        self.within("get_group", self.inner.get_group(id)).await
    }

    async fn groups_of(&self, user: &str) -> StoreResult<Vec<GroupRecord>> {
        self.within("groups_of", self.inner.groups_of(user)).await
    }

    async fn rename_group(&self, id: &str, name: &str) -> StoreResult<Option<GroupRecord>> {
        self.within("rename_group", self.inner.rename_group(id, name))
            .await
    }

    async fn delete_group(&self, id: &str) -> StoreResult<bool> {
        self.within("delete_group", self.inner.delete_group(id))
            .await
    }

    async fn add_members(
        &self,
        id: &str,
        users: &[String],
        now_ms: i64,
    ) -> StoreResult<Option<(GroupRecord, Vec<String>)>> {
        self.within("add_members", self.inner.add_members(id, users, now_ms))
            .await
    }

    async fn remove_member(
        &self,
        id: &str,
        user: &str,
    ) -> StoreResult<Option<(GroupRecord, bool)>> {
        self.within("remove_member", self.inner.remove_member(id, user))
            .await
    }

    async fn set_role(&self, id: &str, user: &str, role: GroupRole) -> StoreResult<RoleOutcome> {
        self.within("set_role", self.inner.set_role(id, user, role))
            .await
    }

    async fn all_memberships(&self) -> StoreResult<Vec<(String, String, GroupRole)>> {
        self.within("all_memberships", self.inner.all_memberships())
            .await
    }

    async fn counts(&self) -> StoreResult<(u64, u64)> {
        self.within("counts", self.inner.counts()).await
    }

    async fn close(&self) {
        // Bounded too: a cut-off database must not hold the shutdown.
        let _ = tokio::time::timeout(self.limit, self.inner.close()).await;
    }
}
