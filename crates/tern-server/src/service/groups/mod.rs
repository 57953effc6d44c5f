//! Groups (PROTOCOL.md §5): creating, renaming and deleting them, members
//! and admins, with the role rules, and the `group` pushes that tell members.
//! Membership for the send path lives in the in-memory [`GroupDirectory`].

mod directory;

pub use directory::{GroupDirectory, Members};

use std::collections::BTreeSet;

use tern_cluster::{Event, GroupChange};
use tern_proto::frame::{GroupEvent, GroupInfo};
use tern_proto::ServerFrame;
use tern_store::{GroupRecord, GroupRole, RoleOutcome};

use super::shared_frame::SharedFrame;
use super::{now_ms, Hub, ServiceError, ServiceResult};

/// Longest group name, in characters (after trimming).
pub const MAX_GROUP_NAME_CHARS: usize = 100;

impl Hub {
    /// Warms the membership directory from the store (call once at start).
    pub async fn load_groups(&self) -> ServiceResult<()> {
        let rows = self.store.all_memberships().await?;
        self.groups.load(&rows);
        tracing::info!(groups = self.groups.len(), "group memberships loaded");
        Ok(())
    }

    /// Creates a group owned by `owner` with `members`; every initial member
    /// gets `member_added` with all of them.
    pub async fn create_group(
        &self,
        owner: &str,
        name: &str,
        members: &[String],
    ) -> ServiceResult<GroupInfo> {
        let name = group_name(name)?;
        let others: BTreeSet<&str> = members
            .iter()
            .map(String::as_str)
            .filter(|m| *m != owner)
            .collect();
        self.check_size(0, others.len() + 1)?;
        for user in &others {
            self.require_user(user).await?;
        }
        let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let _changes = self.groups.lock_changes().await;
        let group = self
            .store
            .create_group(&id, &name, owner, members, now_ms())
            .await?;
        self.set_group_members(&group.id, &group.members).await;
        tracing::info!(group = %group.id, owner, members = group.members.len(), "group created");
        let users = group.members.clone();
        self.push_group(GroupEvent::MemberAdded, &group, users, &group.members);
        Ok(group.to_info())
    }

    /// The group, for one of its members.
    pub async fn group_for(&self, user: &str, id: &str) -> ServiceResult<GroupInfo> {
        let group = self.group_as(user, id, GroupRole::Member, "see").await?;
        Ok(group.to_info())
    }

    /// The groups `user` belongs to, newest first.
    pub async fn groups_of(&self, user: &str) -> ServiceResult<Vec<GroupInfo>> {
        let groups = self.store.groups_of(user).await?;
        Ok(groups.iter().map(GroupRecord::to_info).collect())
    }

    /// Renames the group (owner or admin); every member gets `updated`.
    pub async fn rename_group(&self, user: &str, id: &str, name: &str) -> ServiceResult<GroupInfo> {
        let name = group_name(name)?;
        let _changes = self.groups.lock_changes().await;
        self.group_as(user, id, GroupRole::Admin, "rename").await?;
        let group = self
            .store
            .rename_group(id, &name)
            .await?
            .ok_or_else(|| no_group(id))?;
        self.push_group(GroupEvent::Updated, &group, Vec::new(), &group.members);
        Ok(group.to_info())
    }

    /// Deletes the group with its history (owner only); every member gets
    /// `deleted` with the group as it was.
    pub async fn delete_group(&self, user: &str, id: &str) -> ServiceResult<()> {
        let _changes = self.groups.lock_changes().await;
        let group = self.group_as(user, id, GroupRole::Owner, "delete").await?;
        if !self.store.delete_group(id).await? {
            return Err(no_group(id));
        }
        self.forget_group(id).await;
        tracing::info!(group = id, user, "group deleted");
        self.push_group(GroupEvent::Deleted, &group, Vec::new(), &group.members);
        Ok(())
    }

    /// Adds members (owner or admin). Existing members are skipped; the
    /// members, the added included, get `member_added` with those added.
    pub async fn add_members(
        &self,
        user: &str,
        id: &str,
        users: &[String],
    ) -> ServiceResult<GroupInfo> {
        let _changes = self.groups.lock_changes().await;
        let group = self
            .group_as(user, id, GroupRole::Admin, "add members to")
            .await?;
        let new: BTreeSet<&str> = users
            .iter()
            .map(String::as_str)
            .filter(|u| group.role_of(u).is_none())
            .collect();
        self.check_size(group.members.len(), new.len())?;
        for u in &new {
            self.require_user(u).await?;
        }
        if new.is_empty() {
            return Ok(group.to_info());
        }
        let (group, added) = self
            .store
            .add_members(id, users, now_ms())
            .await?
            .ok_or_else(|| no_group(id))?;
        self.set_group_members(id, &group.members).await;
        if !added.is_empty() {
            self.push_group(GroupEvent::MemberAdded, &group, added, &group.members);
        }
        Ok(group.to_info())
    }

    /// Removes `target`: `user` itself leaving (not the owner), or the owner
    /// or an admin removing a plain member (the owner also admins). The
    /// remaining members and the removed get `member_removed`.
    pub async fn remove_member(&self, user: &str, id: &str, target: &str) -> ServiceResult<()> {
        let _changes = self.groups.lock_changes().await;
        let group = self.group_as(user, id, GroupRole::Member, "leave").await?;
        check_removal(&group, user, target)?;
        let (group, was_member) = self
            .store
            .remove_member(id, target)
            .await?
            .ok_or_else(|| no_group(id))?;
        self.set_group_members(id, &group.members).await;
        if was_member {
            let to: Vec<String> = group
                .members
                .iter()
                .cloned()
                .chain([target.into()])
                .collect();
            self.push_group(GroupEvent::MemberRemoved, &group, vec![target.into()], &to);
        }
        Ok(())
    }

    /// Names admins (owner only); each must be a member. Every member gets
    /// `updated` when a role changed.
    pub async fn add_admins(
        &self,
        user: &str,
        id: &str,
        users: &[String],
    ) -> ServiceResult<GroupInfo> {
        let _changes = self.groups.lock_changes().await;
        let mut group = self
            .group_as(user, id, GroupRole::Owner, "name admins of")
            .await?;
        if let Some(stranger) = users.iter().find(|u| group.role_of(u).is_none()) {
            return Err(ServiceError::BadRequest(format!(
                "{stranger} is not a member of group {id}"
            )));
        }
        let mut changed = false;
        let owner = group.owner.clone();
        for u in users.iter().filter(|u| **u != owner) {
            if let Some((g, c)) = self.set_role(id, u, GroupRole::Admin).await? {
                (group, changed) = (g, changed || c);
            }
        }
        if changed {
            self.push_group(GroupEvent::Updated, &group, Vec::new(), &group.members);
        }
        Ok(group.to_info())
    }

    /// Makes admin `target` a plain member again (owner only); every member
    /// gets `updated`.
    pub async fn remove_admin(&self, user: &str, id: &str, target: &str) -> ServiceResult<()> {
        let _changes = self.groups.lock_changes().await;
        let group = self
            .group_as(user, id, GroupRole::Owner, "remove admins of")
            .await?;
        if group.role_of(target) != Some(GroupRole::Admin) {
            return Err(ServiceError::NotFound(format!(
                "{target} is not an admin of group {id}"
            )));
        }
        if let Some((group, true)) = self.set_role(id, target, GroupRole::Member).await? {
            self.push_group(GroupEvent::Updated, &group, Vec::new(), &group.members);
        }
        Ok(())
    }

    /// The group, if `user` holds at least role `min` in it (owner > admin >
    /// member): `not_found` without such a group, else `forbidden`.
    async fn group_as(
        &self,
        user: &str,
        id: &str,
        min: GroupRole,
        action: &str,
    ) -> ServiceResult<GroupRecord> {
        let group = self
            .store
            .get_group(id)
            .await?
            .ok_or_else(|| no_group(id))?;
        match group.role_of(user) {
            None => Err(ServiceError::Forbidden(format!(
                "not a member of group {id}"
            ))),
            // `GroupRole` orders Owner < Admin < Member.
            Some(role) if role > min => Err(ServiceError::Forbidden(format!(
                "only {} may {action} group {id}",
                who_may(min)
            ))),
            Some(_) => Ok(group),
        }
    }

    /// Sets a member's role: the group after it and whether it changed;
    /// `None` for the owner (whose role never changes here).
    async fn set_role(
        &self,
        id: &str,
        user: &str,
        role: GroupRole,
    ) -> ServiceResult<Option<(GroupRecord, bool)>> {
        match self.store.set_role(id, user, role).await? {
            RoleOutcome::NoGroup => Err(no_group(id)),
            RoleOutcome::NotMember => Err(ServiceError::BadRequest(format!(
                "{user} is not a member of group {id}"
            ))),
            RoleOutcome::IsOwner => Ok(None),
            RoleOutcome::Done { group, changed } => Ok(Some((group, changed))),
        }
    }

    /// `too_large` when `current + adding` members exceed the limit.
    fn check_size(&self, current: usize, adding: usize) -> ServiceResult<()> {
        let max = self.config().limits.max_group_members;
        if current.saturating_add(adding) > max {
            return Err(ServiceError::TooLarge(format!(
                "a group has at most {max} members"
            )));
        }
        Ok(())
    }

    /// Puts a group's members in effect here and on every other node,
    /// which confirm it before this returns: the `group` push that follows,
    /// and any message sent after it on any node, meet the new members.
    async fn set_group_members(&self, id: &str, members: &[String]) {
        self.groups.set(id, members);
        self.tell_nodes(Event::Group(GroupChange::Members {
            group: id.to_owned(),
            members: members.to_vec(),
        }));
        self.reach_every_node().await;
    }

    /// Forgets a deleted group here and on every other node (confirmed).
    async fn forget_group(&self, id: &str) {
        self.groups.remove(id);
        self.tell_nodes(Event::Group(GroupChange::Deleted {
            group: id.to_owned(),
        }));
        self.reach_every_node().await;
    }

    /// Encodes one `group` push and queues the same bytes for every session
    /// of every user of `to`.
    fn push_group(
        &self,
        event: GroupEvent,
        group: &GroupRecord,
        users: Vec<String>,
        to: &[String],
    ) {
        let frame = SharedFrame::new(&ServerFrame::Group {
            event,
            group: group.to_info(),
            users,
        });
        for user in to {
            self.delivery.to_user(user, &frame, None);
        }
    }
}

/// Who may remove `target` (`user` already is a member): anyone but the
/// owner leaves; the owner removes anyone else; an admin removes plain
/// members only.
fn check_removal(group: &GroupRecord, user: &str, target: &str) -> ServiceResult<()> {
    let forbidden = |m: &str| Err(ServiceError::Forbidden(m.into()));
    let actor = group.role_of(user);
    if target == user {
        return match actor {
            Some(GroupRole::Owner) => forbidden("the owner cannot leave: delete the group instead"),
            _ => Ok(()),
        };
    }
    match (actor, group.role_of(target)) {
        (Some(GroupRole::Member) | None, _) => {
            forbidden("only the owner or an admin may remove members")
        }
        (_, None) => Err(ServiceError::NotFound(format!(
            "{target} is not a member of group {}",
            group.id
        ))),
        (_, Some(GroupRole::Owner)) => forbidden("the owner cannot be removed"),
        (Some(GroupRole::Admin), Some(GroupRole::Admin)) => {
            forbidden("only the owner may remove an admin")
        }
        _ => Ok(()),
    }
}

/// A group name: trimmed, 1 to [`MAX_GROUP_NAME_CHARS`] characters, no NUL.
fn group_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_GROUP_NAME_CHARS || name.contains('\0') {
        return Err(ServiceError::BadRequest(format!(
            "a group name has 1 to {MAX_GROUP_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

fn no_group(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no such group: {id}"))
}

fn who_may(min: GroupRole) -> &'static str {
    match min {
        GroupRole::Owner => "the owner",
        GroupRole::Admin => "the owner or an admin",
        GroupRole::Member => "a member",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupRecord {
        GroupRecord {
            id: "g1".into(),
            name: "n".into(),
            owner: "olga".into(),
            admins: vec!["ada".into(), "adam".into()],
            members: ["ada", "adam", "max", "mia", "olga"]
                .map(String::from)
                .to_vec(),
            created_at: 0,
        }
    }

    #[test]
    fn removal_rules() {
        let g = group();
        let ok = |u, t| check_removal(&g, u, t).is_ok();
        assert!(ok("mia", "mia"), "a member leaves");
        assert!(ok("adam", "adam"), "an admin leaves");
        assert!(!ok("olga", "olga"), "the owner cannot leave");
        assert!(!ok("mia", "max"), "a member removes nobody");
        assert!(ok("adam", "mia"), "an admin removes a member");
        assert!(!ok("adam", "ada"), "an admin does not remove an admin");
        assert!(!ok("adam", "olga"), "nor the owner");
        assert!(ok("olga", "ada"), "the owner removes an admin");
        assert!(matches!(
            check_removal(&g, "olga", "zed"),
            Err(ServiceError::NotFound(_))
        ));
    }

    #[test]
    fn names() {
        assert_eq!(group_name("  team ").ok().as_deref(), Some("team"));
        assert!(group_name("   ").is_err());
        assert!(group_name(&"é".repeat(100)).is_ok());
        assert!(group_name(&"é".repeat(101)).is_err());
    }
}
