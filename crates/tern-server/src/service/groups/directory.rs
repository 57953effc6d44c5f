//! [`GroupDirectory`]: who belongs to which group, in memory, so that the
//! send path and fan-out never query the database for group membership.
//!
//! Each group's members are an immutable [`Members`] behind an `Arc`: a change
//! builds a new one and swaps it in under a short lock; readers clone the
//! `Arc` and iterate without holding any lock (copy-on-write).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tern_store::GroupRole;

/// The members of one group: a set for membership checks and a list for
/// fan-out, holding the same names.
#[derive(Debug, Default)]
pub struct Members {
    set: HashSet<Arc<str>>,
    list: Vec<Arc<str>>,
}

impl Members {
    /// Builds from usernames (duplicates are dropped).
    pub fn new<'a>(users: impl IntoIterator<Item = &'a str>) -> Self {
        let mut m = Self::default();
        for user in users {
            let user: Arc<str> = Arc::from(user);
            if m.set.insert(user.clone()) {
                m.list.push(user);
            }
        }
        m
    }

    pub fn contains(&self, user: &str) -> bool {
        self.set.contains(user)
    }

    /// Every member, for fan-out.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|u| &**u)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Group id → its members, exact after every change this node makes.
///
/// Group changes go through [`GroupDirectory::lock_changes`] so that a
/// change's permission check, its store write and the cache update happen
/// in one order: two concurrent changes of a group can never leave the
/// cache holding the older state.
#[derive(Debug, Default)]
pub struct GroupDirectory {
    groups: RwLock<HashMap<String, Arc<Members>>>,
    changes: tokio::sync::Mutex<()>,
}

impl GroupDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole directory with the store's memberships
    /// (`(group id, user, role)` rows, as from `Store::all_memberships`).
    pub fn load(&self, rows: &[(String, String, GroupRole)]) {
        let mut by_group: HashMap<&str, Vec<&str>> = HashMap::new();
        for (group, user, _) in rows {
            by_group.entry(group).or_default().push(user);
        }
        let groups = by_group
            .into_iter()
            .map(|(id, users)| (id.to_owned(), Arc::new(Members::new(users))))
            .collect();
        *self.write() = groups;
    }

    /// The members of group `id`, or `None` when there is no such group.
    pub fn members(&self, id: &str) -> Option<Arc<Members>> {
        self.read().get(id).cloned()
    }

    /// Whether `user` belongs to group `id`; `None` when there is no such group.
    pub fn is_member(&self, id: &str, user: &str) -> Option<bool> {
        self.read().get(id).map(|m| m.contains(user))
    }

    /// Sets the members of group `id` (after a create or a member change).
    pub fn set(&self, id: &str, members: &[String]) {
        let members = Arc::new(Members::new(members.iter().map(String::as_str)));
        self.write().insert(id.to_owned(), members);
    }

    /// Adds `users` to group `id` (a change made on another node).
    pub fn add(&self, id: &str, users: &[String]) {
        let mut groups = self.write();
        let Some(old) = groups.get(id) else { return };
        let members = Members::new(old.iter().chain(users.iter().map(String::as_str)));
        groups.insert(id.to_owned(), Arc::new(members));
    }

    /// Removes `users` from group `id` (a change made on another node).
    pub fn remove_users(&self, id: &str, users: &[String]) {
        let mut groups = self.write();
        let Some(old) = groups.get(id) else { return };
        let members = Members::new(old.iter().filter(|m| !users.iter().any(|u| u == m)));
        groups.insert(id.to_owned(), Arc::new(members));
    }

    /// Forgets a deleted group.
    pub fn remove(&self, id: &str) {
        self.write().remove(id);
    }

    /// Number of groups known.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Serialises group changes on this node (held across the store write).
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<Members>>> {
        self.groups.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<Members>>> {
        self.groups.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_set_remove() {
        let d = GroupDirectory::new();
        let row = |g: &str, u: &str| (g.to_owned(), u.to_owned(), GroupRole::Member);
        d.load(&[row("g1", "alice"), row("g1", "bob"), row("g2", "carol")]);
        assert_eq!(d.len(), 2);
        assert_eq!(d.is_member("g1", "bob"), Some(true));
        assert_eq!(d.is_member("g1", "carol"), Some(false));
        assert_eq!(d.is_member("nope", "carol"), None);
        let before = d.members("g1");
        d.set("g1", &["alice".to_owned()]);
        assert_eq!(d.is_member("g1", "bob"), Some(false));
        // A reader's snapshot is unaffected by the change (copy-on-write).
        assert_eq!(before.map(|m| m.len()), Some(2));
        d.remove("g2");
        assert_eq!(d.members("g2").map(|m| m.len()), None);
    }

    #[test]
    fn members_dedup() {
        let m = Members::new(["a", "b", "a"]);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(m.contains("b") && !m.contains("c"));
    }
}
