//! What a change causes and how it is taken back: `Outcome` (frames to deliver, the reply,
//! the undo), `persist` (hand the change to the store writer), `on_committed` (its effects,
//! once durable) and `deliver` (the same bytes into every recipient's bounded queue).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{HubTask, MemberState};
use crate::core::{CloseReason, ConnId, HubError};
use crate::model::{ConvId, Millis, Seq, UserId};
use crate::protocol::{ErrorCode, Ref, ServerFrame, User};
use crate::store::records::{ConversationRecord, StatusRecord};
use crate::store::writer::Job;
use crate::store::{Change, StoreError};

/// Who receives a frame. Resolved to connections at delivery time, so a tab that connected
/// while the change was being committed still gets it.
pub(super) enum Target {
    Conn(ConnId),
    Users(Vec<UserId>),
    /// All tabs of these users except those of one user (e.g. typing, not to the typist).
    UsersExcept(Vec<UserId>, UserId),
    Everyone,
}

/// How the one who asked for a change hears the result.
pub(super) enum Reply {
    None,
    /// An `ack` frame to this connection on success, an `error` frame on failure.
    Ack(ConnId, Option<Ref>, Utf8Bytes),
    User(oneshot::Sender<Result<User, HubError>>, User),
}

/// What a change causes once it is durable, and how to take its in-memory part back if it
/// could not be saved (so memory never runs ahead of the file).
pub(super) struct Outcome {
    pub(super) deliveries: Vec<(Target, Utf8Bytes)>,
    pub(super) reply: Reply,
    /// A message written or changed by this commit: (conversation, seq, rev).
    pub(super) message: Option<(ConvId, Seq, Seq)>,
    /// A repeated send: acknowledge it only if the first one is (still) saved.
    pub(super) resend: Option<(UserId, String, ConvId, Seq)>,
    pub(super) undo: Vec<Undo>,
}

impl Outcome {
    pub(super) fn new(deliveries: Vec<(Target, Utf8Bytes)>, reply: Reply) -> Outcome {
        Outcome { deliveries, reply, message: None, resend: None, undo: Vec::new() }
    }

    pub(super) fn undo(mut self, undo: Undo) -> Outcome {
        self.undo.push(undo);
        self
    }
}

/// The reverse of an in-memory change, applied when its commit fails. Each restores the
/// earlier state only while memory still holds what the failed change wrote: a later change
/// that did reach the file must not be clobbered. (The writer reports a failed batch newest
/// job first, so changes of one batch unwind in reverse.)
pub(super) enum Undo {
    /// A send that was not saved: a retry with the same `client_id` must post again.
    ForgetSend {
        user: UserId,
        client_id: String,
        seq: Seq,
    },
    /// Take back the unread counts a message that was not saved added.
    Unread {
        conv: ConvId,
        author: UserId,
        mentions: Vec<UserId>,
    },
    RemoveUser(UserId),
    RemoveConversation(ConvId),
    /// A join that was not saved (`joined` tells it from a later join).
    RemoveMember {
        conv: ConvId,
        user: UserId,
        joined: Millis,
    },
    /// A read marker (`wrote: Some(seq)`) or a leave (`wrote: None`) that was not saved.
    RestoreMember {
        conv: ConvId,
        user: UserId,
        before: MemberState,
        wrote: Option<Seq>,
    },
    RestoreRecord {
        conv: ConvId,
        before: ConversationRecord,
        wrote: ConversationRecord,
    },
    RestoreStatus {
        user: UserId,
        before: StatusRecord,
        wrote: StatusRecord,
    },
}

pub(super) struct Committed {
    pub(super) outcome: Outcome,
    pub(super) result: Result<(), Arc<StoreError>>,
}

impl HubTask {
    /// Hands changes to the store writer; the outcome happens when they are durable.
    pub(super) async fn persist(&mut self, changes: Vec<Change>, outcome: Outcome) {
        let notify = self.committed_tx.clone();
        // Called on the writer thread in commit order; the core's queue keeps that order.
        let job = Job {
            changes,
            done: Box::new(move |result| {
                let _ = notify.send(Committed { outcome, result });
            }),
        };
        if let Err(e) = self.writer.submit(job).await {
            tracing::error!(error = %e, "the store writer is gone");
        }
    }

    pub(super) fn on_committed(&mut self, committed: Committed) {
        let Committed { mut outcome, result } = committed;
        if let Some((user, client_id, conv, seq)) = outcome.resend.take() {
            let saved = self.recent_sends.get(&(user, client_id)).is_some_and(|(_, s, _)| *s == seq)
                && self.convs.get(&conv).is_some_and(|c| c.committed_seq >= seq);
            if result.is_err() || !saved {
                if let Reply::Ack(conn, reference, _) = outcome.reply {
                    let frame = ServerFrame::error(
                        reference,
                        ErrorCode::Storage,
                        "the first send of this message was not saved; send it again with a new client_id",
                    );
                    self.deliver(Target::Conn(conn), frame.encode());
                }
                return;
            }
        }
        if let Some((conv, seq, rev)) = outcome.message {
            // Forget the pending version unless a later change of the message is on its way.
            if self.pending.get(&(conv, seq)).is_some_and(|r| r.rev == rev.0) {
                self.pending.remove(&(conv, seq));
            }
            if result.is_ok()
                && let Some(state) = self.convs.get_mut(&conv)
            {
                state.committed_seq = state.committed_seq.max(rev);
            }
        }
        if result.is_err() {
            for undo in outcome.undo.into_iter().rev() {
                self.undo(undo);
            }
        }
        match result {
            Ok(()) => {
                for (target, frame) in outcome.deliveries {
                    self.deliver(target, frame);
                }
                match outcome.reply {
                    Reply::None => {}
                    Reply::Ack(conn, _, ack) => self.deliver(Target::Conn(conn), ack),
                    Reply::User(reply, user) => {
                        let _ = reply.send(Ok(user));
                    }
                }
            }
            Err(e) => match outcome.reply {
                Reply::None => {}
                Reply::Ack(conn, reference, _) => {
                    let frame = ServerFrame::error(
                        reference,
                        ErrorCode::Storage,
                        "the server could not save this (its disk may be full); nothing was posted",
                    );
                    self.deliver(Target::Conn(conn), frame.encode());
                }
                Reply::User(reply, _) => {
                    let _ = reply.send(Err(HubError::Storage(e)));
                }
            },
        }
    }

    /// Takes back the in-memory part of a change whose commit failed, unless a later change
    /// has replaced it since.
    pub(super) fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::ForgetSend { user, client_id, seq } => {
                let key = (user, client_id);
                if self.recent_sends.get(&key).is_some_and(|(_, s, _)| *s == seq) {
                    self.recent_sends.remove(&key);
                }
            }
            Undo::Unread { conv, author, mentions } => {
                if let Some(state) = self.convs.get_mut(&conv) {
                    for (member, counts) in state.members.iter_mut().filter(|(m, _)| **m != author) {
                        counts.unread = counts.unread.saturating_sub(1);
                        if mentions.contains(member) {
                            counts.mentions = counts.mentions.saturating_sub(1);
                        }
                    }
                }
            }
            Undo::RemoveUser(user) => {
                if let Some(state) = self.users.remove(&user) {
                    self.user_names.remove(&state.info.name);
                }
            }
            Undo::RemoveConversation(conv) => {
                if let Some(state) = self.convs.remove(&conv) {
                    self.index.remove(conv, &state);
                }
            }
            Undo::RemoveMember { conv, user, joined } => {
                if let Some(state) = self.convs.get_mut(&conv)
                    && state.members.get(&user).is_some_and(|m| m.joined == joined)
                {
                    self.index.remove(conv, state);
                    state.members.remove(&user);
                    self.index.add(conv, state);
                }
            }
            Undo::RestoreMember { conv, user, before, wrote } => {
                if let Some(state) = self.convs.get_mut(&conv) {
                    let unchanged = match wrote {
                        Some(read_seq) => state.members.get(&user).is_some_and(|m| m.read_seq == read_seq),
                        None => !state.members.contains_key(&user),
                    };
                    if unchanged {
                        self.index.remove(conv, state);
                        state.members.insert(user, before);
                        self.index.add(conv, state);
                    }
                }
            }
            Undo::RestoreRecord { conv, before, wrote } => {
                if let Some(state) = self.convs.get_mut(&conv)
                    && state.record.topic == wrote.topic
                    && state.record.name == wrote.name
                {
                    state.record = before;
                }
            }
            Undo::RestoreStatus { user, before, wrote } => {
                if let Some(state) = self.users.get_mut(&user)
                    && state.status == wrote
                {
                    let expires = before.expires;
                    state.status = before;
                    if let Some(at) = expires {
                        self.expire_at(user, at);
                    }
                }
                self.presence_changed(user);
            }
        }
    }

    pub(super) fn ack_now(&mut self, conn: ConnId, reference: Option<Ref>) {
        if reference.is_some() {
            self.deliver(Target::Conn(conn), ServerFrame::ack(reference).encode());
        }
    }

    /// Puts the same bytes in each recipient's queue. A full queue means the tab cannot keep
    /// up: it is disconnected (it will resync on reconnect) instead of slowing everyone.
    pub(super) fn deliver(&mut self, target: Target, frame: Utf8Bytes) {
        let conns: Vec<ConnId> = match target {
            Target::Conn(id) => vec![id],
            Target::Users(users) => self.conns_of(users.into_iter()),
            Target::UsersExcept(users, except) => self.conns_of(users.into_iter().filter(|u| *u != except)),
            Target::Everyone => self.conns.keys().copied().collect(),
        };
        let mut slow = Vec::new();
        let mut gone = Vec::new();
        for id in conns {
            let Some(conn) = self.conns.get(&id) else { continue };
            match conn.outbox.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => slow.push(id),
                // The tab has already closed and its disconnect is on its way: not slow, and
                // not worth a warning (a mass disconnect would write thousands).
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(id),
            }
        }
        for id in slow {
            self.drop_conn(id, CloseReason::SlowConsumer);
        }
        for id in gone {
            self.disconnect(id);
        }
    }

    pub(super) fn conns_of(&self, users: impl Iterator<Item = UserId>) -> Vec<ConnId> {
        users.filter_map(|u| self.users.get(&u)).flat_map(|u| u.conns.iter().copied()).collect()
    }
}

pub(super) fn ack_reply(conn: ConnId, reference: Option<Ref>) -> Reply {
    if reference.is_some() {
        let ack = ServerFrame::ack(reference.clone()).encode();
        Reply::Ack(conn, reference, ack)
    } else {
        Reply::None
    }
}
