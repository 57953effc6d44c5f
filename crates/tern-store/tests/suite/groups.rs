//! Group cases: create / get / list / rename, members, roles, delete, group
//! conversations (append, history, read pointers, the conversation list) and
//! the membership dump.

use std::sync::Arc;

use tern_proto::frame::{ConvKind, GroupInfo};
use tern_proto::ConvId;
use tern_store::{GroupRecord, GroupRole, Page, ReadOutcome, RoleOutcome, Store, StoreError};

use super::{direct, msg, send};

fn users(v: &[&str]) -> Vec<String> {
    v.iter().map(|u| (*u).to_owned()).collect()
}

fn gconv(id: &str) -> ConvId {
    ConvId::Group(id.to_owned())
}

fn ids(groups: &[GroupRecord]) -> Vec<&str> {
    groups.iter().map(|g| g.id.as_str()).collect()
}

async fn get(store: &Arc<dyn Store>, id: &str) -> GroupRecord {
    store.get_group(id).await.unwrap().unwrap()
}

async fn history_bodies(store: &Arc<dyn Store>, conv: &ConvId) -> Vec<String> {
    let page = store
        .history(conv, Page::Latest { limit: 500 })
        .await
        .unwrap();
    page.items.into_iter().map(|m| m.body).collect()
}

pub async fn group_create_get_list_rename(store: Arc<dyn Store>) {
    let members = users(&["carol", "bob", "alice", "bob"]);
    let g1 = store
        .create_group("g1", "Friends", "alice", &members, 1_000)
        .await
        .unwrap();
    let expected = GroupRecord {
        id: "g1".into(),
        name: "Friends".into(),
        owner: "alice".into(),
        admins: vec![],
        members: users(&["alice", "bob", "carol"]),
        created_at: 1_000,
    };
    assert_eq!(g1, expected);
    assert_eq!(get(&store, "g1").await, expected);
    assert_eq!(g1.conv().to_string(), "g:g1");
    assert_eq!(
        g1.to_info(),
        GroupInfo {
            id: "g1".into(),
            name: "Friends".into(),
            owner: "alice".into(),
            admins: vec![],
            members: users(&["alice", "bob", "carol"]),
            created_at: 1_000,
        }
    );
    assert_eq!(g1.role_of("alice"), Some(GroupRole::Owner));
    assert_eq!(g1.role_of("bob"), Some(GroupRole::Member));
    assert_eq!(g1.role_of("dave"), None);

    // The owner alone; byte order (uppercase first) whatever the collation.
    let g2 = store
        .create_group("g2", "Solo", "bob", &users(&["bob", "Zed", "amy"]), 2_000)
        .await
        .unwrap();
    assert_eq!(g2.members, users(&["Zed", "amy", "bob"]));
    let g3 = store
        .create_group("g3", "Empty", "bob", &[], 3_000)
        .await
        .unwrap();
    assert_eq!(
        (g3.owner.as_str(), g3.members.clone()),
        ("bob", users(&["bob"]))
    );

    // An existing id is a conflict and changes nothing.
    let err = store
        .create_group("g1", "Again", "dave", &users(&["erin"]), 4_000)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(get(&store, "g1").await, expected);
    assert!(store.groups_of("dave").await.unwrap().is_empty());
    assert!(store.groups_of("erin").await.unwrap().is_empty());
    // Ids that no `g:<id>` could carry are refused.
    for bad in ["", "a:b", "sp ace", &"x".repeat(65)] {
        let err = store.create_group(bad, "Bad", "alice", &[], 1).await;
        assert!(matches!(err, Err(StoreError::Other(_))), "{bad:?}: {err:?}");
    }
    assert_eq!(store.counts().await.unwrap(), (0, 0));

    // Newest first.
    let bobs = store.groups_of("bob").await.unwrap();
    assert_eq!(ids(&bobs), ["g3", "g2", "g1"]);
    assert_eq!(bobs[2], expected);
    assert_eq!(bobs[1], g2);
    assert_eq!(ids(&store.groups_of("alice").await.unwrap()), ["g1"]);
    assert_eq!(ids(&store.groups_of("Zed").await.unwrap()), ["g2"]);
    assert!(store.groups_of("nobody").await.unwrap().is_empty());
    assert!(store.get_group("nope").await.unwrap().is_none());

    let renamed = store.rename_group("g1", "Family").await.unwrap().unwrap();
    assert_eq!(
        renamed,
        GroupRecord {
            name: "Family".into(),
            ..expected.clone()
        }
    );
    assert_eq!(get(&store, "g1").await.name, "Family");
    assert!(store.rename_group("nope", "X").await.unwrap().is_none());
    assert!(store.get_group("nope").await.unwrap().is_none());
}

pub async fn group_members(store: Arc<dyn Store>) {
    store
        .create_group("g1", "G", "alice", &users(&["bob"]), 1_000)
        .await
        .unwrap();
    let (g, added) = store
        .add_members(
            "g1",
            &users(&["dave", "bob", "carol", "alice", "dave"]),
            2_000,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(added, users(&["carol", "dave"]));
    assert_eq!(g.members, users(&["alice", "bob", "carol", "dave"]));
    assert_eq!(g.owner, "alice");
    assert_eq!(get(&store, "g1").await, g);
    assert_eq!(
        ids(&store.groups_of("dave").await.unwrap()),
        ["g1"],
        "an added member lists the group"
    );

    // Nothing new: all already members, or nobody at all.
    let (same, added) = store
        .add_members("g1", &users(&["bob", "carol"]), 3_000)
        .await
        .unwrap()
        .unwrap();
    assert!(added.is_empty());
    assert_eq!(same, g);
    let (same, added) = store.add_members("g1", &[], 3_000).await.unwrap().unwrap();
    assert!(added.is_empty());
    assert_eq!(same, g);
    assert!(store
        .add_members("nope", &users(&["bob"]), 1)
        .await
        .unwrap()
        .is_none());

    let (g, was) = store.remove_member("g1", "carol").await.unwrap().unwrap();
    assert!(was);
    assert_eq!(g.members, users(&["alice", "bob", "dave"]));
    assert!(store.groups_of("carol").await.unwrap().is_empty());
    assert!(store
        .conversations("carol")
        .await
        .unwrap()
        .iter()
        .all(|c| c.conv != gconv("g1")));
    let (same, was) = store.remove_member("g1", "carol").await.unwrap().unwrap();
    assert!(!was);
    assert_eq!(same, g);
    let (_, was) = store.remove_member("g1", "zed").await.unwrap().unwrap();
    assert!(!was);
    assert!(store.remove_member("nope", "bob").await.unwrap().is_none());

    // The owner cannot be removed (it deletes the group or hands it over).
    let err = store.remove_member("g1", "alice").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(get(&store, "g1").await, g);

    // An admin removed and added again comes back as a plain member.
    store.set_role("g1", "bob", GroupRole::Admin).await.unwrap();
    assert_eq!(get(&store, "g1").await.admins, users(&["bob"]));
    let (g, was) = store.remove_member("g1", "bob").await.unwrap().unwrap();
    assert!(was);
    assert!(g.admins.is_empty());
    let (g, added) = store
        .add_members("g1", &users(&["bob"]), 4_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(added, users(&["bob"]));
    assert_eq!(g.role_of("bob"), Some(GroupRole::Member));
}

fn done(outcome: RoleOutcome) -> (GroupRecord, bool) {
    match outcome {
        RoleOutcome::Done { group, changed } => (group, changed),
        other => panic!("expected Done, got {other:?}"),
    }
}

pub async fn group_roles(store: Arc<dyn Store>) {
    store
        .create_group("g1", "G", "alice", &users(&["bob", "carol", "dave"]), 1)
        .await
        .unwrap();
    let (g, changed) = done(
        store
            .set_role("g1", "carol", GroupRole::Admin)
            .await
            .unwrap(),
    );
    assert!(changed);
    assert_eq!(g.admins, users(&["carol"]));
    let (g, changed) = done(store.set_role("g1", "bob", GroupRole::Admin).await.unwrap());
    assert!(changed);
    assert_eq!(g.admins, users(&["bob", "carol"]));
    assert_eq!(g.members, users(&["alice", "bob", "carol", "dave"]));
    assert_eq!(get(&store, "g1").await, g);
    // Again: no change.
    let (same, changed) = done(store.set_role("g1", "bob", GroupRole::Admin).await.unwrap());
    assert!(!changed);
    assert_eq!(same, g);
    let (g, changed) = done(
        store
            .set_role("g1", "carol", GroupRole::Member)
            .await
            .unwrap(),
    );
    assert!(changed);
    assert_eq!(g.admins, users(&["bob"]));
    assert_eq!(g.role_of("carol"), Some(GroupRole::Member));
    let (_, changed) = done(
        store
            .set_role("g1", "dave", GroupRole::Member)
            .await
            .unwrap(),
    );
    assert!(!changed);

    // Errors change nothing.
    assert_eq!(
        store
            .set_role("nope", "bob", GroupRole::Admin)
            .await
            .unwrap(),
        RoleOutcome::NoGroup
    );
    assert_eq!(
        store.set_role("g1", "zed", GroupRole::Admin).await.unwrap(),
        RoleOutcome::NotMember
    );
    assert_eq!(
        store.set_role("g1", "zed", GroupRole::Owner).await.unwrap(),
        RoleOutcome::NotMember
    );
    for role in [GroupRole::Admin, GroupRole::Member] {
        assert_eq!(
            store.set_role("g1", "alice", role).await.unwrap(),
            RoleOutcome::IsOwner
        );
    }
    let (same, changed) = done(
        store
            .set_role("g1", "alice", GroupRole::Owner)
            .await
            .unwrap(),
    );
    assert!(!changed);
    assert_eq!(same, g);
    assert_eq!(get(&store, "g1").await, g);

    // Handing ownership over: the old owner becomes an admin.
    let (g, changed) = done(
        store
            .set_role("g1", "dave", GroupRole::Owner)
            .await
            .unwrap(),
    );
    assert!(changed);
    assert_eq!(g.owner, "dave");
    assert_eq!(g.admins, users(&["alice", "bob"]));
    assert_eq!(g.members, users(&["alice", "bob", "carol", "dave"]));
    assert_eq!(get(&store, "g1").await, g);
    let all = store.all_memberships().await.unwrap();
    let owners: Vec<_> = all
        .iter()
        .filter(|(_, _, r)| *r == GroupRole::Owner)
        .collect();
    assert_eq!(
        owners,
        [&("g1".to_owned(), "dave".to_owned(), GroupRole::Owner)]
    );
    // Now the old owner may leave, and the new one may not.
    assert!(store.remove_member("g1", "alice").await.unwrap().unwrap().1);
    assert!(matches!(
        store.remove_member("g1", "dave").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .set_role("g1", "dave", GroupRole::Member)
            .await
            .unwrap(),
        RoleOutcome::IsOwner
    );
}

pub async fn group_delete_cascades(store: Arc<dyn Store>) {
    let g = gconv("g1");
    store
        .create_group("g1", "Doomed", "alice", &users(&["bob"]), 1)
        .await
        .unwrap();
    store
        .create_group("g2", "Kept", "alice", &users(&["bob"]), 2)
        .await
        .unwrap();
    let ab = direct("alice", "bob");
    send(&store, msg(&ab, "alice", "d1", "direct", 3)).await;
    send(&store, msg(&g, "alice", "x1", "one", 4)).await;
    send(&store, msg(&g, "bob", "x2", "two", 5)).await;
    send(&store, msg(&gconv("g2"), "bob", "y1", "kept", 6)).await;
    store.mark_read("bob", &g, 2).await.unwrap();
    assert_eq!(store.counts().await.unwrap().1, 4);

    assert!(store.delete_group("g1").await.unwrap());
    assert!(store.get_group("g1").await.unwrap().is_none());
    assert_eq!(ids(&store.groups_of("bob").await.unwrap()), ["g2"]);
    assert!(history_bodies(&store, &g).await.is_empty());
    for user in ["alice", "bob"] {
        let convs: Vec<String> = store
            .conversations(user)
            .await
            .unwrap()
            .iter()
            .map(|c| c.conv.to_string())
            .collect();
        assert_eq!(convs, ["g:g2", "d:alice:bob"], "{user}");
    }
    assert!(store
        .all_memberships()
        .await
        .unwrap()
        .iter()
        .all(|(id, _, _)| id == "g2"));
    assert_eq!(store.counts().await.unwrap().1, 2);
    assert!(store.find_sent("alice", "x1").await.unwrap().is_none());
    assert_eq!(
        store.mark_read("bob", &g, 2).await.unwrap(),
        ReadOutcome {
            read_seq: 0,
            moved: false
        }
    );
    // Everything about the group answers "no such group".
    assert!(!store.delete_group("g1").await.unwrap());
    assert!(store.rename_group("g1", "X").await.unwrap().is_none());
    assert!(store
        .add_members("g1", &users(&["carol"]), 9)
        .await
        .unwrap()
        .is_none());
    assert!(store.remove_member("g1", "bob").await.unwrap().is_none());
    assert_eq!(
        store.set_role("g1", "bob", GroupRole::Admin).await.unwrap(),
        RoleOutcome::NoGroup
    );
    // The rest is untouched.
    assert_eq!(history_bodies(&store, &ab).await, ["direct"]);
    assert_eq!(history_bodies(&store, &gconv("g2")).await, ["kept"]);
    assert!(!store.delete_group("never").await.unwrap());
}

pub async fn group_messaging(store: Arc<dyn Store>) {
    let g = gconv("g1");
    store
        .create_group("g1", "Team", "alice", &users(&["bob"]), 10)
        .await
        .unwrap();
    // Listed before any message, by its creation time.
    let list = store.conversations("bob").await.unwrap();
    let [c] = &list[..] else {
        panic!("one conversation expected: {list:?}")
    };
    assert_eq!(
        (c.conv.clone(), c.kind, c.name.as_deref(), c.peer.as_deref()),
        (g.clone(), ConvKind::Group, Some("Team"), None)
    );
    assert_eq!((c.last_seq, c.read_seq, c.unread), (0, 0, 0));
    assert!(c.last.is_none());

    let a = send(&store, msg(&g, "alice", "a1", "hello", 20)).await;
    assert_eq!((a.message.seq, a.duplicate), (1, false));
    let b = store
        .append(vec![
            msg(&g, "bob", "b1", "hi", 21),
            msg(&g, "alice", "a2", "how are you", 22),
            msg(&g, "bob", "b1", "hi (again)", 23),
        ])
        .await;
    let seqs: Vec<(u64, bool)> = b
        .iter()
        .map(|r| {
            let a = r.as_ref().unwrap();
            (a.message.seq, a.duplicate)
        })
        .collect();
    assert_eq!(seqs, [(2, false), (3, false), (2, true)]);
    let again = send(&store, msg(&g, "alice", "a1", "hello?", 24)).await;
    assert_eq!((again.message.seq, again.duplicate), (1, true));
    assert_eq!(
        history_bodies(&store, &g).await,
        ["hello", "hi", "how are you"]
    );

    // Senders' pointers follow their sends.
    let unread = |user: &'static str| {
        let store = store.clone();
        let g = g.clone();
        async move {
            let list = store.conversations(user).await.unwrap();
            let c = list.iter().find(|c| c.conv == g).unwrap();
            (c.last_seq, c.read_seq, c.unread)
        }
    };
    assert_eq!(unread("alice").await, (3, 3, 0));
    assert_eq!(unread("bob").await, (3, 2, 1));
    assert_eq!(
        store.mark_read("bob", &g, 9).await.unwrap(),
        ReadOutcome {
            read_seq: 3,
            moved: true
        }
    );
    assert_eq!(unread("bob").await, (3, 3, 0));

    // A member added later sees the earlier history, all unread.
    let (_, added) = store
        .add_members("g1", &users(&["carol"]), 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(added, users(&["carol"]));
    assert_eq!(unread("carol").await, (3, 0, 3));
    let list = store.conversations("carol").await.unwrap();
    assert_eq!(list[0].name.as_deref(), Some("Team"));
    assert_eq!(list[0].last.as_ref().unwrap().body, "how are you");
    assert_eq!(
        store.mark_read("carol", &g, 1).await.unwrap(),
        ReadOutcome {
            read_seq: 1,
            moved: true
        }
    );
    assert_eq!(unread("carol").await, (3, 1, 2));
    send(&store, msg(&g, "carol", "c1", "I'm new", 40)).await;
    assert_eq!(unread("carol").await, (4, 4, 0));
    assert_eq!(unread("alice").await, (4, 3, 1));

    // A removed member's pointer goes; the conversation leaves its list.
    store.remove_member("g1", "bob").await.unwrap();
    assert!(store.conversations("bob").await.unwrap().is_empty());
    assert_eq!(store.mark_read("bob", &g, 4).await.unwrap().read_seq, 0);
    // The rename shows in the list.
    store.rename_group("g1", "Crew").await.unwrap();
    assert_eq!(
        store.conversations("alice").await.unwrap()[0]
            .name
            .as_deref(),
        Some("Crew")
    );
}

pub async fn group_memberships_dump(store: Arc<dyn Store>) {
    assert!(store.all_memberships().await.unwrap().is_empty());
    store
        .create_group("gb", "B", "bob", &users(&["carol", "alice"]), 1)
        .await
        .unwrap();
    store
        .create_group("ga", "A", "alice", &users(&["Bob"]), 2)
        .await
        .unwrap();
    store
        .set_role("gb", "carol", GroupRole::Admin)
        .await
        .unwrap();
    // Direct conversations are not groups.
    send(&store, msg(&direct("alice", "bob"), "alice", "1", "hi", 3)).await;
    let all = store.all_memberships().await.unwrap();
    let expect = |g: &str, u: &str, r| (g.to_owned(), u.to_owned(), r);
    assert_eq!(
        all,
        [
            expect("ga", "Bob", GroupRole::Member),
            expect("ga", "alice", GroupRole::Owner),
            expect("gb", "alice", GroupRole::Member),
            expect("gb", "bob", GroupRole::Owner),
            expect("gb", "carol", GroupRole::Admin),
        ]
    );
}

/// Concurrent membership changes on one group, racing its deletion: every
/// call answers (no FK or deadlock errors), and the end state is whole.
pub async fn group_concurrent_changes(store: Arc<dyn Store>) {
    store
        .create_group("g1", "G", "owner", &[], 1)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("u{i:02}");
            let (_, added) = store
                .add_members("g1", &[user.clone(), "common".to_owned()], 2)
                .await
                .unwrap()
                .unwrap();
            assert!(added.contains(&user));
            send(&store, msg(&gconv("g1"), &user, "c", "hi", 3)).await;
            if i % 2 == 0 {
                assert!(store.remove_member("g1", &user).await.unwrap().unwrap().1);
            } else {
                done(store.set_role("g1", &user, GroupRole::Admin).await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let g = get(&store, "g1").await;
    let odd: Vec<String> = (0..16)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("u{i:02}"))
        .collect();
    assert_eq!(g.admins, odd);
    let mut members = odd.clone();
    members.extend(["common".to_owned(), "owner".to_owned()]);
    members.sort();
    assert_eq!(g.members, members);
    let page = store
        .history(&gconv("g1"), Page::Latest { limit: 100 })
        .await
        .unwrap();
    let seqs: Vec<u64> = page.items.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());

    // Changes racing a delete: each sees the group whole or not at all.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("v{i}");
            let r = store
                .add_members("g1", std::slice::from_ref(&user), 4)
                .await
                .unwrap();
            if let Some((g, added)) = r {
                assert_eq!(added, std::slice::from_ref(&user));
                assert!(g.members.contains(&user));
            }
            store
                .set_role("g1", "u01", GroupRole::Member)
                .await
                .unwrap();
            store.remove_member("g1", "u03").await.unwrap();
        }));
    }
    let deleter = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_group("g1").await.unwrap() })
    };
    for t in tasks {
        t.await.unwrap();
    }
    assert!(deleter.await.unwrap());
    assert!(store.get_group("g1").await.unwrap().is_none());
    assert!(store.all_memberships().await.unwrap().is_empty());
    assert!(store.conversations("common").await.unwrap().is_empty());
}
