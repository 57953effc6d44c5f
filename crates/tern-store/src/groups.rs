//! Backend-neutral pieces of group storage: id checks, member lists and
//! turning membership rows into [`GroupRecord`]s.

use std::collections::BTreeSet;

use tern_proto::ConvId;

use crate::{GroupRecord, GroupRole, StoreError, StoreResult};

/// `id, name, owner, created_at` of a `groups` row.
pub(crate) type GroupRow = (String, String, String, i64);

/// A `groups` row joined with one of its `conv_members` rows:
/// `id, name, owner, created_at, username, role`.
pub(crate) type GroupMemberRow = (String, String, String, i64, String, String);

/// The conversation of group `id`, as stored: `g:<id>`.
pub(crate) fn group_conv(id: &str) -> String {
    format!("g:{id}")
}

/// Refuses ids that would make a `g:<id>` the protocol cannot parse (such a
/// conversation would break its members' conversation lists).
pub(crate) fn check_group_id(id: &str) -> StoreResult<()> {
    match ConvId::parse(&group_conv(id)) {
        Ok(ConvId::Group(_)) => Ok(()),
        _ => Err(StoreError::Other(format!("invalid group id {id:?}"))),
    }
}

/// `(username, role)` of the initial members: the owner first, then every
/// other distinct user of `members` as a plain member, sorted.
pub(crate) fn initial_members<'a>(
    owner: &'a str,
    members: &'a [String],
) -> Vec<(&'a str, &'static str)> {
    let others: BTreeSet<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| *m != owner)
        .collect();
    std::iter::once((owner, GroupRole::Owner.as_str()))
        .chain(others.into_iter().map(|m| (m, GroupRole::Member.as_str())))
        .collect()
}

/// The distinct users of `users`, sorted.
pub(crate) fn distinct(users: &[String]) -> Vec<&str> {
    let set: BTreeSet<&str> = users.iter().map(String::as_str).collect();
    set.into_iter().collect()
}

pub(crate) fn parse_role(role: &str) -> StoreResult<GroupRole> {
    GroupRole::parse(role).ok_or_else(|| StoreError::Corrupt(format!("group role {role:?}")))
}

/// A group from its row and its `(username, role)` membership rows (any
/// order). The owner is listed as a member even if its row were missing.
pub(crate) fn group_from_rows(
    head: GroupRow,
    members: Vec<(String, String)>,
) -> StoreResult<GroupRecord> {
    let (id, name, owner, created_at) = head;
    let mut all = Vec::with_capacity(members.len() + 1);
    let mut admins = Vec::new();
    let mut owner_listed = false;
    for (user, role) in members {
        match parse_role(&role)? {
            GroupRole::Owner if user != owner => {
                return Err(StoreError::Corrupt(format!(
                    "group {id}: {user} has role owner, the owner is {owner}"
                )))
            }
            GroupRole::Owner => owner_listed = true,
            GroupRole::Admin if user == owner => owner_listed = true,
            GroupRole::Admin => admins.push(user.clone()),
            GroupRole::Member => owner_listed |= user == owner,
        }
        all.push(user);
    }
    if !owner_listed {
        all.push(owner.clone());
    }
    // Byte order, the same on both databases whatever their collation.
    all.sort_unstable();
    all.dedup();
    admins.sort_unstable();
    Ok(GroupRecord {
        id,
        name,
        owner,
        admins,
        members: all,
        created_at,
    })
}

/// Groups from joined rows, grouped by id (rows of one group adjacent), in
/// the order the groups first appear.
pub(crate) fn groups_from_joined_rows(rows: Vec<GroupMemberRow>) -> StoreResult<Vec<GroupRecord>> {
    let mut out = Vec::new();
    let mut current: Option<(GroupRow, Vec<(String, String)>)> = None;
    for (id, name, owner, created_at, user, role) in rows {
        match &mut current {
            Some((head, members)) if head.0 == id => members.push((user, role)),
            _ => {
                if let Some((head, members)) = current.take() {
                    out.push(group_from_rows(head, members)?);
                }
                current = Some(((id, name, owner, created_at), vec![(user, role)]));
            }
        }
    }
    if let Some((head, members)) = current {
        out.push(group_from_rows(head, members)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn initial_members_dedup_and_owner_first() {
        let m = s(&["carol", "bob", "alice", "bob"]);
        assert_eq!(
            initial_members("alice", &m),
            [("alice", "owner"), ("bob", "member"), ("carol", "member")]
        );
        assert_eq!(initial_members("alice", &[]), [("alice", "owner")]);
    }

    #[test]
    fn group_ids_are_checked() {
        assert!(check_group_id("01HX-a_b").is_ok());
        assert!(check_group_id("").is_err());
        assert!(check_group_id("a:b").is_err());
        assert!(check_group_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn rows_to_records() {
        let head = ("g1".to_owned(), "G".to_owned(), "zed".to_owned(), 5);
        let rows = vec![
            ("bob".to_owned(), "admin".to_owned()),
            ("zed".to_owned(), "owner".to_owned()),
            ("Al".to_owned(), "member".to_owned()),
        ];
        let g = group_from_rows(head.clone(), rows).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.members, s(&["Al", "bob", "zed"]));
        assert_eq!(g.admins, s(&["bob"]));
        assert_eq!(g.role_of("zed"), Some(GroupRole::Owner));
        assert_eq!(g.role_of("bob"), Some(GroupRole::Admin));
        assert_eq!(g.role_of("Al"), Some(GroupRole::Member));
        assert_eq!(g.role_of("nobody"), None);
        let bad = vec![("bob".to_owned(), "boss".to_owned())];
        assert!(matches!(
            group_from_rows(head.clone(), bad),
            Err(StoreError::Corrupt(_))
        ));
        let two_owners = vec![("bob".to_owned(), "owner".to_owned())];
        assert!(group_from_rows(head, two_owners).is_err());
    }
}
