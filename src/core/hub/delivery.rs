//! What a change causes and how it is taken back: `Outcome` (frames to deliver, the reply,
//! the undo), `persist` (hand the change to the store writer), `on_committed` (its effects,
//! once durable) and `deliver` (the same bytes into every recipient's bounded queue).

use std::sync::Arc;

use crate::protocol::Encoded;
use tokio::sync::{mpsc, oneshot};

use super::{HubTask, MemberState, Sent};
use crate::core::{CloseReason, ConnId, HubError};
use crate::model::{ConvId, Millis, Seq, UserId};
use crate::protocol::{ErrorCode, Ref, ServerFrame, User, user_info};
use crate::store::records::{ConversationRecord, InviteRecord, SendRecord, StatusRecord, UserRecord};
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
    /// An `ack` frame to this connection on success (when the frame had a `ref`), an `error`
    /// frame on failure.
    Ack(ConnId, Option<Ref>, Encoded),
    User(oneshot::Sender<Result<User, HubError>>, User),
    /// Only whether it was saved.
    Done(oneshot::Sender<Result<(), HubError>>),
}

/// What a change causes once it is durable, and how to take its in-memory part back if it
/// could not be saved (so memory never runs ahead of the file).
pub(super) struct Outcome {
    pub(super) deliveries: Vec<(Target, Encoded)>,
    pub(super) reply: Reply,
    /// A message written or changed by this commit: (conversation, seq, rev).
    pub(super) message: Option<(ConvId, Seq, Seq)>,
    /// A repeated send: acknowledge it only if the first one is (still) saved.
    pub(super) resend: Option<(UserId, String, ConvId, Seq)>,
    /// A new send with a `client_id`: (sender, client_id, digest of its text). If the file
    /// already holds that client_id (`AlreadySent`), it is answered as a resend.
    pub(super) sent: Option<(UserId, String, u64)>,
    /// A batch of a purge (`keeping.rs`), which goes on once it is on disk.
    pub(super) purged: Option<super::keeping::Purged>,
    /// A new records policy: purge what may no longer be kept, once it is on disk.
    pub(super) sweep: bool,
    /// A reaction to this message (conversation, seq) was written (`reactions.rs`).
    pub(super) reacted: Option<(ConvId, Seq)>,
    pub(super) undo: Vec<Undo>,
}

impl Outcome {
    pub(super) fn new(deliveries: Vec<(Target, Encoded)>, reply: Reply) -> Outcome {
        Outcome {
            deliveries,
            reply,
            message: None,
            resend: None,
            sent: None,
            purged: None,
            sweep: false,
            reacted: None,
            undo: Vec::new(),
        }
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
    /// A records policy that was not saved.
    Policy(crate::core::records::Policy),
    /// A send that was not saved: a retry with the same `client_id` must post again.
    ForgetSend {
        user: UserId,
        conv: ConvId,
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
    /// An invite's use (or its making) that was not saved.
    RestoreInvite {
        hash: [u8; 32],
        before: Option<InviteRecord>,
    },
    /// Uploads a send attached whose message was not saved: they wait to be sent again.
    RestoreUploads(Vec<(u64, super::files::Upload)>),
    /// An acknowledgement, or a delete's removal of them, that was not saved (`announce.rs`).
    Acks(super::announce::AckUndo),
    /// An account change that was not saved (its tabs stay closed: they reconnect).
    RestoreAccount {
        user: UserId,
        before: UserRecord,
        wrote: UserRecord,
    },
}

pub(super) struct Committed {
    pub(super) outcome: Outcome,
    pub(super) result: Result<(), Arc<StoreError>>,
}

impl HubTask {
    /// Hands changes to the store writer without waiting (a full queue refuses them at
    /// once); the outcome happens when they are durable.
    pub(super) fn persist(&mut self, changes: Vec<Change>, outcome: Outcome) {
        let notify = self.committed_tx.clone();
        self.in_flight += 1;
        // Called on the writer thread in commit order; the core's queue keeps that order.
        let job = Job {
            changes,
            done: Box::new(move |result| {
                let _ = notify.send(Committed { outcome, result });
            }),
        };
        self.writer.try_submit(job);
    }

    /// A job `persist` gave the writer is done (on disk, or failed).
    pub(super) fn on_committed(&mut self, committed: Committed) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.settle(committed);
    }

    /// A change that writes nothing (a conversation that is not recorded) takes effect at
    /// once, as if committed; it was never in flight, so shutdown does not count it.
    pub(super) fn done_without_disk(&mut self, outcome: Outcome) {
        self.settle(Committed { outcome, result: Ok(()) });
    }

    /// What a change's outcome does once it holds: its frames, its reply, or its undo.
    fn settle(&mut self, committed: Committed) {
        let Committed { mut outcome, result } = committed;
        if let Some(purged) = outcome.purged.take() {
            self.purge_committed(purged, result.is_ok());
        }
        if let Some(key) = outcome.reacted.take() {
            self.reaction_committed(key);
        }
        if let Some((user, client_id, conv, seq)) = outcome.resend.take() {
            let saved = self.recent_sends.get(&(user, conv, Arc::from(client_id))).is_some_and(|sent| sent.seq == seq)
                && self.convs.get(&conv).is_some_and(|c| c.committed_seq >= seq);
            if result.is_err() || !saved {
                if let Reply::Ack(conn, reference, _) = outcome.reply {
                    // A full queue says nothing of the first send: try again, same client_id.
                    let busy = matches!(&result, Err(e) if matches!(**e, StoreError::Busy));
                    let message = if busy {
                        "the server is too busy saving to answer this now; send it again with the same client_id"
                    } else {
                        "the first send of this message was not saved; send it again with a new client_id"
                    };
                    let frame = ServerFrame::error(reference, ErrorCode::Storage, message);
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
                if outcome.sweep {
                    self.sweep(crate::model::now_millis(), None);
                }
                match outcome.reply {
                    Reply::None => {}
                    // A frame without a ref is answered only when it fails.
                    Reply::Ack(conn, Some(_), ack) => self.deliver(Target::Conn(conn), ack),
                    Reply::Ack(_, None, _) => {}
                    Reply::User(reply, user) => {
                        let _ = reply.send(Ok(user));
                    }
                    Reply::Done(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Err(e) => match outcome.reply {
                Reply::None => {}
                Reply::Ack(conn, reference, _)
                    if let StoreError::AlreadySent(first) = &*e
                        && let Some((user, client_id, digest)) = outcome.sent =>
                {
                    self.answer_resend(conn, reference, user, client_id, digest, first);
                }
                Reply::Ack(conn, reference, _) => {
                    let frame = ServerFrame::error(
                        reference,
                        ErrorCode::Storage,
                        match *e {
                            StoreError::Busy => "the server is too busy saving to take this now; nothing was posted, try again",
                            _ => "the server could not save this (its disk may be full); nothing was posted",
                        },
                    );
                    self.deliver(Target::Conn(conn), frame.encode());
                }
                Reply::User(reply, _) => {
                    let _ = reply.send(Err(HubError::Storage(e)));
                }
                Reply::Done(reply) => {
                    let _ = reply.send(Err(HubError::Storage(e)));
                }
            },
        }
    }

    /// A send the writer found already in the file (sent before this start, or too long ago
    /// for the core to remember): its own seq was taken back; answer with the first one's.
    fn answer_resend(
        &mut self,
        conn: ConnId,
        reference: Option<Ref>,
        user: UserId,
        client_id: String,
        digest: u64,
        first: &SendRecord,
    ) {
        if first.text_digest.is_some_and(|d| d != digest) {
            let message = "client_id already used for another text in this conversation; give each new message a new client_id";
            self.deliver(Target::Conn(conn), ServerFrame::error(reference, ErrorCode::BadRequest, message).encode());
            return;
        }
        let sent = Sent { seq: first.seq, ts: first.ts, text_digest: first.text_digest };
        self.remember_send(user, first.conv, &client_id, sent);
        if reference.is_some() {
            let ack = ServerFrame::Ack {
                reference,
                conv: Some(first.conv),
                seq: Some(first.seq),
                client_id: Some(client_id),
                ts: Some(first.ts),
            };
            self.deliver(Target::Conn(conn), ack.encode());
        }
    }

    /// Takes back the in-memory part of a change whose commit failed, unless a later change
    /// has replaced it since.
    pub(super) fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Policy(before) => self.policy = before,
            Undo::Acks(undo) => self.undo_acks(undo),
            Undo::ForgetSend { user, conv, client_id, seq } => {
                let key = (user, conv, Arc::from(client_id));
                if self.recent_sends.get(&key).is_some_and(|sent| sent.seq == seq) {
                    self.recent_sends.remove(&key);
                }
                // Newest first: the failed send is at or near the end.
                if let Some(order) = self.recent_order.get_mut(&user)
                    && let Some(i) = order.iter().rposition(|(c, id, s, _)| *c == conv && *s == seq && **id == *key.2)
                {
                    order.remove(i);
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
            Undo::RestoreUploads(taken) => self.restore_uploads(taken),
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
            Undo::RestoreInvite { hash, before } => match before {
                Some(record) => {
                    self.invites.insert(hash, record);
                }
                None => {
                    self.invites.remove(&hash);
                }
            },
            Undo::RestoreAccount { user, before, wrote } => {
                // `last_seen` moves on its own meanwhile; any other change since wins.
                if let Some(state) = self.users.get_mut(&user)
                    && (UserRecord { last_seen: wrote.last_seen, ..state.account.clone() }) == wrote
                {
                    let last_seen = state.account.last_seen;
                    state.account = UserRecord { last_seen, ..before };
                    state.info = user_info(user, &state.account);
                    let frame = ServerFrame::User { user: state.info.clone() }.encode();
                    self.deliver(Target::Everyone, frame);
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
    pub(super) fn deliver(&mut self, target: Target, frame: Encoded) {
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
    let ack = if reference.is_some() { ServerFrame::ack(reference.clone()).encode() } else { Encoded::default() };
    Reply::Ack(conn, reference, ack)
}
