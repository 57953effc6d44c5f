//! [`Delivery`]: pushes to the online sessions of a conversation's members,
//! on this node directly and on the other nodes of a cluster through the
//! bus (one event per node that holds recipients). Every frame is encoded
//! once and its bytes shared by all recipients. Members with no session
//! anywhere get an offline push event instead.

use std::sync::Arc;

use tern_cluster::PushTarget;
use tern_proto::{ConvId, Message, ServerFrame};

use super::cluster::ClusterLink;
use super::groups::GroupDirectory;
use super::outbox::Pushed;
use super::push::PushNotifier;
use super::registry::SessionRegistry;
use super::shared_frame::SharedFrame;
use crate::metrics as m;

/// Fan-out of pushes to the sessions of this node and, through the bus, of
/// the others.
pub struct Delivery {
    registry: Arc<SessionRegistry>,
    /// The offline push webhook, when configured.
    push: Option<Arc<PushNotifier>>,
    /// Group memberships, for fan-out to `g:<id>`.
    groups: Arc<GroupDirectory>,
    cluster: ClusterLink,
}

impl Delivery {
    pub fn new(
        registry: Arc<SessionRegistry>,
        push: Option<Arc<PushNotifier>>,
        groups: Arc<GroupDirectory>,
        cluster: ClusterLink,
    ) -> Self {
        Self {
            registry,
            push,
            groups,
            cluster,
        }
    }

    /// The bus and directory this delivery forwards through.
    pub fn cluster(&self) -> &ClusterLink {
        &self.cluster
    }

    /// The offline push webhook, when configured.
    pub fn push(&self) -> Option<&Arc<PushNotifier>> {
        self.push.as_ref()
    }

    /// A new message in a direct conversation: to every session of both
    /// parties but `except`, and offline push events.
    fn direct_message(&self, msg: &Message, except: Option<u64>) {
        let frame = SharedFrame::new(&ServerFrame::Msg(msg.clone()));
        self.to_members(&msg.conv, None, &frame, except);
        self.notify_offline(msg);
    }

    /// Whether `user` has a session on any node.
    pub fn is_online(&self, user: &str) -> bool {
        self.registry.is_online(user) || self.cluster.online_elsewhere(user)
    }

    /// A new message, for the fan-out workers: to every session of every
    /// member but `except`, and offline push events for members with no
    /// session. A large group is pushed in chunks, yielding between them so
    /// other tasks keep running.
    pub async fn message_chunked(&self, msg: &Message, except: Option<u64>) {
        const CHUNK: usize = 4096;
        let ConvId::Group(id) = &msg.conv else {
            return self.direct_message(msg, except);
        };
        let Some(members) = self.groups.members(id) else {
            return;
        };
        let frame = SharedFrame::new(&ServerFrame::Msg(msg.clone()));
        // Other nodes first: they fan out to their own members meanwhile.
        self.cluster
            .forward_conv(&msg.conv, members.iter(), None, frame.json());
        let mut pushed = 0;
        for (i, user) in members.iter().enumerate() {
            let (n, online) = self.push_to(user, &frame, except);
            pushed += n;
            // The offline-push check rides on the same registry lookup.
            if !online && user != msg.from && !self.cluster.online_elsewhere(user) {
                if let Some(push) = &self.push {
                    push.offline(user, msg);
                }
            }
            if i % CHUNK == CHUNK - 1 {
                tokio::task::yield_now().await;
            }
        }
        metrics::counter!(m::PUSHES_DELIVERED).increment(pushed as u64);
    }

    /// A push event for each party of a direct conversation, but the
    /// sender, with no session here. (Group members are checked during the
    /// fan-out itself, on the same registry lookup.)
    fn notify_offline(&self, msg: &Message) {
        let Some(push) = &self.push else { return };
        let ConvId::Direct { a, b } = &msg.conv else {
            return;
        };
        let parties = if a == b { &[a][..] } else { &[a, b][..] };
        for user in parties {
            if **user != msg.from && !self.is_online(user) {
                push.offline(user, msg);
            }
        }
    }

    /// A moved read pointer: to the other members, and to the reader's own
    /// other sessions so its devices stay in step.
    pub fn receipt(&self, conv: &ConvId, user: &str, seq: u64, except: Option<u64>) {
        let frame = SharedFrame::new(&ServerFrame::Receipt {
            conv: conv.clone(),
            user: user.to_owned(),
            seq,
        });
        self.to_members(conv, None, &frame, except);
    }

    /// A typing notice: to the other members only (never stored).
    pub fn typing(&self, conv: &ConvId, user: &str) {
        let frame = SharedFrame::new(&ServerFrame::Typing {
            conv: conv.clone(),
            user: user.to_owned(),
        });
        self.to_members(conv, Some(user), &frame, None);
    }

    /// Pushes `frame` to every session of `user` on every node (but the
    /// local session `except`); returns the pushes made here.
    pub fn to_user(&self, user: &str, frame: &SharedFrame, except: Option<u64>) -> usize {
        self.cluster.forward_users([user], frame.json());
        self.to_user_local(user, frame, except)
    }

    /// Pushes `frame` to every session of `user` on this node but `except`.
    pub fn to_user_local(&self, user: &str, frame: &SharedFrame, except: Option<u64>) -> usize {
        let (n, _) = self.push_to(user, frame, except);
        metrics::counter!(m::PUSHES_DELIVERED).increment(n as u64);
        n
    }

    /// Delivers a push another node forwarded, to this node's sessions.
    pub fn deliver_forwarded(&self, target: &PushTarget, frame: &SharedFrame) {
        match target {
            PushTarget::Users { users } => {
                for user in users {
                    self.to_user_local(user, frame, None);
                }
            }
            PushTarget::Conv { conv, skip } => match ConvId::parse(conv) {
                Ok(conv) => self.local_members(&conv, skip.as_deref(), frame, None),
                Err(_) => tracing::warn!(%conv, "forwarded push for a bad conversation id"),
            },
        }
    }

    /// Queues `frame` on every session of `user` but `except`: how many
    /// took it, and whether the user is online at all.
    fn push_to(&self, user: &str, frame: &SharedFrame, except: Option<u64>) -> (usize, bool) {
        let mut n = 0;
        let online = self.registry.for_each_session(user, |s| {
            if Some(s.id) != except && s.push(frame) == Pushed::Queued {
                n += 1;
            }
        });
        (n, online)
    }

    /// To the members of `conv` but `skip_user`, here and on other nodes.
    fn to_members(
        &self,
        conv: &ConvId,
        skip_user: Option<&str>,
        frame: &SharedFrame,
        except: Option<u64>,
    ) {
        match conv {
            ConvId::Direct { a, b } => {
                self.cluster
                    .forward_conv(conv, [a.as_str(), b.as_str()], skip_user, frame.json());
            }
            ConvId::Group(id) => {
                if let Some(members) = self.groups.members(id) {
                    self.cluster
                        .forward_conv(conv, members.iter(), skip_user, frame.json());
                }
            }
        }
        self.local_members(conv, skip_user, frame, except);
    }

    /// To the members of `conv` but `skip_user` that have sessions here.
    fn local_members(
        &self,
        conv: &ConvId,
        skip_user: Option<&str>,
        frame: &SharedFrame,
        except: Option<u64>,
    ) {
        match conv {
            ConvId::Direct { a, b } => {
                for user in [a, b].into_iter().filter(|u| Some(u.as_str()) != skip_user) {
                    self.to_user_local(user, frame, except);
                    if a == b {
                        break;
                    }
                }
            }
            ConvId::Group(id) => {
                // A snapshot: the lock is not held while pushing.
                let Some(members) = self.groups.members(id) else {
                    return;
                };
                for user in members.iter().filter(|u| Some(*u) != skip_user) {
                    self.to_user_local(user, frame, except);
                }
            }
        }
    }
}
