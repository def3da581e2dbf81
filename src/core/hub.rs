//! The core task's state and its handling of each command. Everything here runs on one task,
//! so it needs no locks; it must never wait on disk. A change is applied to memory at once
//! (so the next command sees it), handed to the store writer, and its effects (frames to
//! members, the acknowledgement) go out when the writer reports the commit. Conversations
//! that keep nothing skip the writer and deliver at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{CloseReason, Command, ConnId, Connection, HubError, RoomEntry, presence};
use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId, mentioned_names, now_millis, valid_name};
use crate::protocol::{self, ClientFrame, ErrorCode, Limits, Presence, PresenceState, Ref, ServerFrame, User};
use crate::store::records::{ConversationRecord, Keep, MemberRecord, MessageRecord, StatusRecord, UserRecord};
use crate::store::writer::{Job, Writer};
use crate::store::{Change, Store, StoreError, Unread};

/// The room every account is a member of, created with the first admin.
pub const DEFAULT_ROOM: &str = "general";
const MAX_TEXT_CHARS: usize = 16_000;
const MAX_TOPIC_CHARS: usize = 250;
const MAX_STATUS_CHARS: usize = 100;
const MAX_CLIENT_ID: usize = 64;
/// Remembered `client_id`s for idempotent sends.
const RECENT_SENDS: usize = 4096;

struct UserState {
    info: User,
    status: StatusRecord,
    conns: Vec<ConnId>,
    /// What colleagues were last told, to send presence only when it changes.
    shown: PresenceState,
}

#[derive(Clone)]
struct MemberState {
    read_seq: Seq,
    joined: Millis,
    unread: u32,
    mentions: u32,
}

struct ConvState {
    record: ConversationRecord,
    members: BTreeMap<UserId, MemberState>,
    /// The last seq handed out (messages, edits, deletes), committed or not.
    last_seq: Seq,
    /// The last seq that is durable and was broadcast: what clients are told, so that
    /// "everything up to last_seq is in history" holds.
    committed_seq: Seq,
}

struct ConnState {
    user: UserId,
    session: [u8; 32],
    outbox: mpsc::Sender<Utf8Bytes>,
    closed: Arc<std::sync::OnceLock<CloseReason>>,
    idle: bool,
}

/// Who receives a frame. Resolved to connections at delivery time, so a tab that connected
/// while the change was being committed still gets it.
enum Target {
    Conn(ConnId),
    Users(Vec<UserId>),
    /// All tabs of these users except those of one user (e.g. typing, not to the typist).
    UsersExcept(Vec<UserId>, UserId),
    Everyone,
}

/// How the one who asked for a change hears the result.
enum Reply {
    None,
    /// An `ack` frame to this connection on success, an `error` frame on failure.
    Ack(ConnId, Option<Ref>, Utf8Bytes),
    User(oneshot::Sender<Result<User, HubError>>, User),
}

/// What a change causes once it is durable, and how to take its in-memory part back if it
/// could not be saved (so memory never runs ahead of the file).
struct Outcome {
    deliveries: Vec<(Target, Utf8Bytes)>,
    reply: Reply,
    /// A message written or changed by this commit: (conversation, seq, rev).
    message: Option<(ConvId, Seq, Seq)>,
    /// A repeated send: acknowledge it only if the first one is (still) saved.
    resend: Option<(UserId, String, ConvId, Seq)>,
    undo: Vec<Undo>,
}

impl Outcome {
    fn new(deliveries: Vec<(Target, Utf8Bytes)>, reply: Reply) -> Outcome {
        Outcome { deliveries, reply, message: None, resend: None, undo: Vec::new() }
    }

    fn undo(mut self, undo: Undo) -> Outcome {
        self.undo.push(undo);
        self
    }
}

/// The reverse of an in-memory change, applied when its commit fails. Each restores the
/// earlier state only while memory still holds what the failed change wrote: a later change
/// that did reach the file must not be clobbered. (The writer reports a failed batch newest
/// job first, so changes of one batch unwind in reverse.)
enum Undo {
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

struct Committed {
    outcome: Outcome,
    result: Result<(), Arc<StoreError>>,
}

/// A refusal of a client request: an error frame with this code and message.
struct Refusal(ErrorCode, String);

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal(code, message.into())
}

fn not_found() -> Refusal {
    refuse(ErrorCode::NotFound, "no such conversation")
}

pub(crate) struct HubTask {
    store: Store,
    writer: Writer,
    max_frame: usize,
    users: BTreeMap<UserId, UserState>,
    convs: BTreeMap<ConvId, ConvState>,
    conns: HashMap<ConnId, ConnState>,
    next_user: u64,
    next_conv: u64,
    recent_sends: HashMap<(UserId, String), (ConvId, Seq, Millis)>,
    /// Messages written or changed but not yet committed, so an edit or delete right behind
    /// another one starts from the latest version, not the file's.
    pending: HashMap<(ConvId, Seq), MessageRecord>,
    recent_order: VecDeque<((UserId, String), Seq)>,
    committed_tx: mpsc::UnboundedSender<Committed>,
    committed_rx: mpsc::UnboundedReceiver<Committed>,
}

impl HubTask {
    pub fn load(store: Store, writer: Writer, max_frame: usize) -> Result<HubTask, StoreError> {
        let snapshot = store.load()?;
        let mut statuses: HashMap<UserId, StatusRecord> = snapshot.statuses.into_iter().collect();
        let mut users = BTreeMap::new();
        for (id, record) in snapshot.users {
            let status = statuses.remove(&id).unwrap_or_default();
            users
                .insert(id, UserState { info: user_info(id, &record), status, conns: Vec::new(), shown: PresenceState::Offline });
        }
        let mut convs: BTreeMap<ConvId, ConvState> = BTreeMap::new();
        for (id, record) in snapshot.conversations {
            let last_seq = snapshot.last_seq.get(&id).copied().unwrap_or(Seq(0));
            // A conversation that keeps nothing has no seqs on disk: restart its numbering from
            // the clock so a tab never sees a seq it already had (records-policy issue).
            convs.insert(id, ConvState { record, members: BTreeMap::new(), last_seq, committed_seq: last_seq });
        }
        for (conv, user, member) in snapshot.members {
            let Some(state) = convs.get_mut(&conv) else { continue };
            state
                .members
                .insert(user, MemberState { read_seq: Seq(member.read_seq), joined: member.joined, unread: 0, mentions: 0 });
        }
        // One pass over each conversation's newest messages counts unread for all its members.
        for (id, state) in convs.iter_mut() {
            let readers: Vec<(UserId, Seq)> = state.members.iter().map(|(user, m)| (*user, m.read_seq)).collect();
            let counts = store.unread_for(*id, &readers)?;
            for ((user, _), count) in readers.iter().zip(counts) {
                if let Some(member) = state.members.get_mut(user) {
                    member.unread = count.unread;
                    member.mentions = count.mentions;
                }
            }
        }
        let next_user = users.keys().next_back().map_or(1, |id| id.0 + 1);
        let next_conv = convs.keys().next_back().map_or(1, |id| id.0 + 1);
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        tracing::info!(users = users.len(), conversations = convs.len(), "chat core loaded");
        let mut task = HubTask {
            store,
            writer,
            max_frame,
            users,
            convs,
            conns: HashMap::new(),
            next_user,
            next_conv,
            recent_sends: HashMap::new(),
            recent_order: VecDeque::new(),
            pending: HashMap::new(),
            committed_tx,
            committed_rx,
        };
        for (user, client_id, conv, seq, ts) in snapshot.recent_sends {
            task.remember_send(user, client_id, conv, seq, ts);
        }
        Ok(task)
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let next_expiry = self.next_status_expiry();
            let sleep = async {
                match next_expiry {
                    Some(at) => tokio::time::sleep(std::time::Duration::from_millis(at.saturating_sub(now_millis()))).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Commits first: their effects must not wait behind new work.
                biased;
                Some(committed) = self.committed_rx.recv() => self.on_committed(committed),
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.handle(command).await,
                },
                () = sleep => self.expire_statuses().await,
            }
        }
        for (_, conn) in self.conns.drain() {
            let _ = conn.closed.set(CloseReason::ServerShutdown);
        }
        // Pending commits still run to the end in the writer; their acks have nobody to go to.
        tracing::info!("chat core stopped");
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Connect(connection) => self.connect(connection).await,
            Command::Disconnect(conn) => self.disconnect(conn),
            Command::Frame { conn, reference, frame } => {
                let Some(user) = self.conns.get(&conn).map(|c| c.user) else { return };
                if let Err(Refusal(code, message)) = self.client_frame(conn, user, reference.clone(), frame).await {
                    self.deliver(Target::Conn(conn), ServerFrame::error(reference, code, message).encode());
                }
            }
            Command::CanRead { user, conv, reply } => {
                let readable = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).map(|c| c.committed_seq);
                let _ = reply.send(readable);
            }
            Command::Memberships { user, reply } => {
                let convs = self.convs.iter().filter(|(_, c)| c.members.contains_key(&user)).map(|(id, _)| *id).collect();
                let _ = reply.send(convs);
            }
            Command::Rooms { user, reply } => {
                let mut rooms: Vec<RoomEntry> = self
                    .convs
                    .iter()
                    .filter(|(_, c)| c.record.kind == ConvKind::Room)
                    .map(|(id, c)| RoomEntry {
                        id: *id,
                        name: c.record.name.clone(),
                        topic: c.record.topic.clone(),
                        member_count: c.members.len(),
                        joined: c.members.contains_key(&user),
                    })
                    .collect();
                rooms.sort_by(|a, b| a.name.cmp(&b.name));
                let _ = reply.send(rooms);
            }
            Command::CreateUser { record, reply } => self.create_user(record, reply).await,
            Command::SignOut { session } => {
                let ids: Vec<ConnId> = self.conns.iter().filter(|(_, c)| c.session == session).map(|(id, _)| *id).collect();
                for id in ids {
                    self.drop_conn(id, CloseReason::SignedOut);
                }
            }
            Command::Shutdown => {}
        }
    }

    // ---- connections and presence ----

    async fn connect(&mut self, connection: Connection) {
        let Connection { id, user, session, outbox, closed } = connection;
        let Some(state) = self.users.get_mut(&user) else { return };
        state.conns.push(id);
        self.conns.insert(id, ConnState { user, session, outbox, closed, idle: false });
        let hello = protocol::Hello {
            me: self.users[&user].info.clone(),
            limits: Limits { max_frame: self.max_frame },
            users: self.users.values().map(|u| u.info.clone()).collect(),
            presence: self.users.keys().map(|id| self.presence_of(*id)).collect(),
            conversations: self
                .convs
                .iter()
                .filter(|(_, c)| c.members.contains_key(&user))
                .map(|(id, _)| self.conversation_for(*id, user))
                .collect(),
        };
        for part in protocol::hello_parts(&hello) {
            self.deliver(Target::Conn(id), part);
        }
        tracing::debug!(conn = id.0, user = user.0, "tab connected");
        self.presence_changed(user);
    }

    fn disconnect(&mut self, conn: ConnId) {
        if let Some(state) = self.conns.remove(&conn) {
            self.forget_conn(conn, state.user);
        }
    }

    /// Removes a connection the server is ending; dropping its outbox tells the session.
    fn drop_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(state) = self.conns.remove(&conn) {
            let _ = state.closed.set(reason);
            match reason {
                CloseReason::SlowConsumer => {
                    tracing::warn!(conn = conn.0, user = state.user.0, "tab too slow to keep up; disconnecting it")
                }
                _ => tracing::info!(conn = conn.0, user = state.user.0, ?reason, "closing tab"),
            }
            self.forget_conn(conn, state.user);
        }
    }

    fn forget_conn(&mut self, conn: ConnId, user: UserId) {
        if let Some(state) = self.users.get_mut(&user) {
            state.conns.retain(|c| *c != conn);
        }
        self.presence_changed(user);
    }

    fn presence_of(&self, user: UserId) -> Presence {
        let state = &self.users[&user];
        let idle = state.conns.iter().filter(|c| self.conns.get(c).is_some_and(|c| c.idle)).count();
        Presence {
            user,
            state: presence::aggregate(&state.status, state.conns.len(), idle),
            status: state.status.text.clone(),
            status_expires: state.status.expires,
        }
    }

    /// Tells everyone when a user's aggregated presence changed.
    fn presence_changed(&mut self, user: UserId) {
        let presence = self.presence_of(user);
        let Some(state) = self.users.get_mut(&user) else { return };
        if state.shown == presence.state {
            return;
        }
        state.shown = presence.state;
        self.deliver(Target::Everyone, ServerFrame::Presence { presence }.encode());
    }

    /// Sets status text and DND; everyone is told once it is saved (the text may change at
    /// the same presence state, so this always tells).
    async fn set_status(&mut self, user: UserId, record: StatusRecord, reply: Reply, expiring: bool) {
        let Some(state) = self.users.get_mut(&user) else { return };
        let before = std::mem::replace(&mut state.status, record.clone());
        let presence = self.presence_of(user);
        if let Some(state) = self.users.get_mut(&user) {
            state.shown = presence.state;
        }
        let frame = ServerFrame::Presence { presence }.encode();
        let mut outcome = Outcome::new(vec![(Target::Everyone, frame)], reply);
        // An expiry that could not be saved stays cleared in memory: undoing it would bring
        // back a status already past its expiry and retry at once, in a loop, on a full disk.
        // At the next start the stored status is found expired and cleared again.
        if !expiring {
            outcome = outcome.undo(Undo::RestoreStatus { user, before, wrote: record.clone() });
        }
        self.persist(vec![Change::PutStatus(user, record)], outcome).await;
    }

    fn next_status_expiry(&self) -> Option<Millis> {
        self.users.values().filter_map(|u| u.status.expires).min()
    }

    async fn expire_statuses(&mut self) {
        let now = now_millis();
        let expired: Vec<UserId> =
            self.users.iter().filter(|(_, u)| presence::expired(&u.status, now)).map(|(id, _)| *id).collect();
        for user in expired {
            self.set_status(user, StatusRecord::default(), Reply::None, true).await;
        }
    }

    // ---- client frames ----

    async fn client_frame(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        frame: ClientFrame,
    ) -> Result<(), Refusal> {
        match frame {
            ClientFrame::Send { conv, text, client_id } => self.send_message(conn, user, reference, conv, text, client_id).await,
            ClientFrame::Edit { conv, seq, text } => self.change_message(conn, user, reference, conv, seq, Some(text)).await,
            ClientFrame::Delete { conv, seq } => self.change_message(conn, user, reference, conv, seq, None).await,
            ClientFrame::Typing { conv } => {
                let members = self.members_of(conv, user)?;
                self.deliver(Target::UsersExcept(members, user), ServerFrame::Typing { conv, user }.encode());
                self.ack_now(conn, reference);
                Ok(())
            }
            ClientFrame::Read { conv, seq } => self.mark_read(conn, user, reference, conv, seq).await,
            ClientFrame::Presence { idle } => {
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.idle = idle;
                }
                self.presence_changed(user);
                self.ack_now(conn, reference);
                Ok(())
            }
            ClientFrame::SetStatus { dnd, status, status_expires } => {
                let text = status.trim().to_string();
                if text.chars().count() > MAX_STATUS_CHARS {
                    return Err(refuse(ErrorCode::BadRequest, format!("a status is at most {MAX_STATUS_CHARS} characters")));
                }
                let record = StatusRecord { dnd, text, expires: status_expires };
                self.set_status(user, record, ack_reply(conn, reference), false).await;
                Ok(())
            }
            ClientFrame::CreateRoom { name, topic, private, members } => {
                self.create_room(conn, user, reference, name, topic, private, members).await
            }
            ClientFrame::OpenDm { users } => self.open_dm(conn, user, reference, users).await,
            ClientFrame::Join { conv } => {
                let state = self.convs.get(&conv).ok_or_else(not_found)?;
                if state.record.kind != ConvKind::Room {
                    return Err(not_found());
                }
                if state.members.contains_key(&user) {
                    self.persist(Vec::new(), Outcome::new(Vec::new(), ack_reply(conn, reference))).await;
                    return Ok(());
                }
                self.add_member(conv, user, ack_reply(conn, reference)).await;
                Ok(())
            }
            ClientFrame::Leave { conv } => self.leave(conn, user, reference, conv).await,
            ClientFrame::Invite { conv, user: invitee } => {
                let state = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(not_found)?;
                if !state.record.kind.is_room() {
                    return Err(refuse(ErrorCode::BadRequest, "only rooms take invitations; open a new group DM instead"));
                }
                if !self.users.contains_key(&invitee) {
                    return Err(refuse(ErrorCode::NotFound, "no such user"));
                }
                if state.members.contains_key(&invitee) {
                    self.persist(Vec::new(), Outcome::new(Vec::new(), ack_reply(conn, reference))).await;
                    return Ok(());
                }
                self.add_member(conv, invitee, ack_reply(conn, reference)).await;
                Ok(())
            }
            ClientFrame::SetTopic { conv, topic } => {
                let members = self.members_of(conv, user)?;
                let topic = topic.trim().to_string();
                if topic.chars().count() > MAX_TOPIC_CHARS {
                    return Err(refuse(ErrorCode::BadRequest, format!("a topic is at most {MAX_TOPIC_CHARS} characters")));
                }
                let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
                if !state.record.kind.is_room() {
                    return Err(refuse(ErrorCode::BadRequest, "only rooms have a topic"));
                }
                let before = state.record.clone();
                state.record.topic = topic.clone();
                let change = Change::PutConversation(conv, state.record.clone());
                let frame = ServerFrame::Topic { conv, topic, user }.encode();
                let outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference))
                    .undo(Undo::RestoreRecord { conv, before, wrote: state.record.clone() });
                self.persist(vec![change], outcome).await;
                Ok(())
            }
            ClientFrame::Ping => {
                self.deliver(Target::Conn(conn), ServerFrame::Pong.encode());
                self.ack_now(conn, reference);
                Ok(())
            }
        }
    }

    async fn send_message(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        text: String,
        client_id: Option<String>,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let text = text.trim_end().to_string();
        check_text(&text)?;
        if client_id.as_ref().is_some_and(|id| id.chars().count() > MAX_CLIENT_ID) {
            return Err(refuse(ErrorCode::BadRequest, format!("client_id is at most {MAX_CLIENT_ID} characters")));
        }
        if let Some(id) = &client_id
            && let Some(&(sent_conv, seq, ts)) = self.recent_sends.get(&(user, id.clone()))
        {
            // A resend: acknowledge the first message again. Going through the writer
            // queue puts this ack after the first message's commit.
            let ack = ServerFrame::Ack {
                reference: reference.clone(),
                conv: Some(sent_conv),
                seq: Some(seq),
                client_id: client_id.clone(),
                ts: Some(ts),
            };
            let mut outcome = Outcome::new(Vec::new(), Reply::Ack(conn, reference, ack.encode()));
            outcome.resend = Some((user, id.clone(), sent_conv, seq));
            self.persist(Vec::new(), outcome).await;
            return Ok(());
        }
        let mentions = self.resolve_mentions(&text);
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
        let seq = state.last_seq.next();
        state.last_seq = seq;
        for (member, counts) in state.members.iter_mut() {
            if *member != user {
                counts.unread += 1;
                if mentions.contains(member) {
                    counts.mentions += 1;
                }
            }
        }
        let recorded = state.record.keep != Keep::Nothing;
        let ts = now_millis();
        if let Some(id) = &client_id {
            self.remember_send(user, id.clone(), conv, seq, ts);
        }
        let record = MessageRecord {
            author: user,
            text,
            ts,
            edited_ts: None,
            deleted: false,
            mentions,
            client_id: client_id.clone(),
            rev: seq.0,
        };
        let frame = ServerFrame::Message { message: message_frame(conv, seq, &record) }.encode();
        let ack = ServerFrame::Ack {
            reference: reference.clone(),
            conv: Some(conv),
            seq: Some(seq),
            client_id: client_id.clone(),
            ts: Some(ts),
        };
        tracing::debug!(conv = conv.0, seq = seq.0, user = user.0, bytes = record.text.len(), recorded, "message");
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], Reply::Ack(conn, reference, ack.encode()))
            .undo(Undo::Unread { conv, author: user, mentions: record.mentions.clone() });
        if let Some(client_id) = client_id {
            outcome = outcome.undo(Undo::ForgetSend { user, client_id, seq });
        }
        outcome.message = Some((conv, seq, seq));
        if recorded {
            self.pending.insert((conv, seq), record.clone());
            self.persist(vec![Change::PutMessage(conv, seq, record)], outcome).await;
        } else {
            self.on_committed(Committed { outcome, result: Ok(()) });
        }
        Ok(())
    }

    /// Edit (`Some(text)`) or delete (`None`) a message.
    async fn change_message(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
        text: Option<String>,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        // The latest version: one still waiting for its commit, else a point read from redb's
        // cache. Only the author (or an admin, for deletes) may change it.
        let latest = match self.pending.get(&(conv, seq)) {
            Some(record) => Ok(Some(record.clone())),
            None => self.store.message(conv, seq),
        };
        let mut record = match latest {
            Ok(Some(record)) if !record.deleted => record,
            Ok(_) => return Err(refuse(ErrorCode::NotFound, "no such message")),
            Err(e) => {
                tracing::error!(error = %e, conv = conv.0, seq = seq.0, "reading a message failed");
                return Err(refuse(ErrorCode::Storage, "the message could not be read"));
            }
        };
        let is_admin = self.users.get(&user).is_some_and(|u| u.info.role == Role::Admin);
        if record.author != user && !(text.is_none() && is_admin) {
            return Err(refuse(ErrorCode::Forbidden, "you can only change your own messages"));
        }
        match text {
            Some(text) => {
                let text = text.trim_end().to_string();
                check_text(&text)?;
                record.mentions = self.resolve_mentions(&text);
                record.text = text;
                record.edited_ts = Some(now_millis());
            }
            None => {
                // The text leaves the file with the delete; an archive policy (later) keeps
                // the original for the reviewer elsewhere.
                record.text.clear();
                record.mentions.clear();
                record.deleted = true;
            }
        }
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
        let rev = state.last_seq.next();
        state.last_seq = rev;
        record.rev = rev.0;
        let frame = ServerFrame::MessageUpdated { message: message_frame(conv, seq, &record) }.encode();
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference));
        outcome.message = Some((conv, seq, rev));
        self.pending.insert((conv, seq), record.clone());
        self.persist(vec![Change::UpdateMessage(conv, seq, record)], outcome).await;
        Ok(())
    }

    async fn mark_read(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
    ) -> Result<(), Refusal> {
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
        let last_seq = state.committed_seq;
        let Some(member) = state.members.get_mut(&user) else { return Err(not_found()) };
        let before = member.clone();
        let seq = seq.min(last_seq);
        if seq <= member.read_seq {
            self.ack_now(conn, reference);
            return Ok(());
        }
        member.read_seq = seq;
        let joined = member.joined;
        let stored = if seq == last_seq {
            Unread::default()
        } else {
            self.store.unread_for(conv, &[(user, seq)]).map(|counts| counts[0]).unwrap_or_else(|e| {
                tracing::error!(error = %e, conv = conv.0, "counting unread failed");
                Unread::default()
            })
        };
        // Messages still being committed are unread too: they were counted when sent.
        let (pending, pending_mentions) = self
            .pending
            .iter()
            .filter(|((c, s), m)| *c == conv && *s > seq && m.rev == s.0 && m.author != user)
            .fold((0, 0), |(n, k), (_, m)| (n + 1, k + u32::from(m.mentions.contains(&user))));
        if let Some(member) = self.convs.get_mut(&conv).and_then(|c| c.members.get_mut(&user)) {
            member.unread = stored.unread + pending;
            member.mentions = stored.mentions + pending_mentions;
        }
        let record = MemberRecord { joined, read_seq: seq.0 };
        let frame = ServerFrame::Read { conv, seq }.encode();
        let outcome = Outcome::new(vec![(Target::Users(vec![user]), frame)], ack_reply(conn, reference))
            .undo(Undo::RestoreMember { conv, user, before, wrote: Some(seq) });
        self.persist(vec![Change::PutMember(conv, user, record)], outcome).await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_room(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        name: String,
        topic: String,
        private: bool,
        members: Vec<UserId>,
    ) -> Result<(), Refusal> {
        let name = name.trim().to_string();
        if !valid_name(&name) {
            return Err(refuse(
                ErrorCode::BadRequest,
                "a room name is 1-32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            ));
        }
        // Only public rooms must have unique names: checking private ones too would tell
        // anyone that a private room of that name exists.
        if !private && self.convs.values().any(|c| c.record.kind == ConvKind::Room && c.record.name == name) {
            return Err(refuse(ErrorCode::NameTaken, format!("a public room named {name} exists")));
        }
        let topic = topic.trim().to_string();
        if topic.chars().count() > MAX_TOPIC_CHARS {
            return Err(refuse(ErrorCode::BadRequest, format!("a topic is at most {MAX_TOPIC_CHARS} characters")));
        }
        let mut everyone = vec![user];
        for member in members {
            if !self.users.contains_key(&member) {
                return Err(refuse(ErrorCode::NotFound, format!("no user with id {member}")));
            }
            if !everyone.contains(&member) {
                everyone.push(member);
            }
        }
        let kind = if private { ConvKind::Private } else { ConvKind::Room };
        let (id, changes, deliveries) = self.new_conversation(kind, name, topic, user, &everyone);
        let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(id), seq: None, client_id: None, ts: None };
        let outcome = Outcome::new(deliveries, Reply::Ack(conn, reference, ack.encode())).undo(Undo::RemoveConversation(id));
        self.persist(changes, outcome).await;
        Ok(())
    }

    async fn open_dm(&mut self, conn: ConnId, user: UserId, reference: Option<Ref>, users: Vec<UserId>) -> Result<(), Refusal> {
        let mut everyone = vec![user];
        for other in users {
            if !self.users.contains_key(&other) {
                return Err(refuse(ErrorCode::NotFound, format!("no user with id {other}")));
            }
            if !everyone.contains(&other) {
                everyone.push(other);
            }
        }
        everyone.sort();
        let kind = if everyone.len() <= 2 { ConvKind::Dm } else { ConvKind::Group };
        // A group whose members left down to two is not the DM of those two.
        let existing =
            self.convs.iter().find(|(_, c)| c.record.kind == kind && c.members.keys().copied().eq(everyone.iter().copied()));
        if let Some((id, _)) = existing {
            // Through the writer queue, so the ack never overtakes the commit that made it.
            let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(*id), seq: None, client_id: None, ts: None };
            self.persist(Vec::new(), Outcome::new(Vec::new(), Reply::Ack(conn, reference, ack.encode()))).await;
            return Ok(());
        }
        let (id, changes, deliveries) = self.new_conversation(kind, String::new(), String::new(), user, &everyone);
        let ack = ServerFrame::Ack { reference: reference.clone(), conv: Some(id), seq: None, client_id: None, ts: None };
        let outcome = Outcome::new(deliveries, Reply::Ack(conn, reference, ack.encode())).undo(Undo::RemoveConversation(id));
        self.persist(changes, outcome).await;
        Ok(())
    }

    async fn leave(&mut self, conn: ConnId, user: UserId, reference: Option<Ref>, conv: ConvId) -> Result<(), Refusal> {
        let state = self.convs.get_mut(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(not_found)?;
        if state.record.kind == ConvKind::Dm {
            return Err(refuse(ErrorCode::BadRequest, "a direct message cannot be left"));
        }
        let Some(member) = state.members.remove(&user) else { return Err(not_found()) };
        let others: Vec<UserId> = state.members.keys().copied().collect();
        let deliveries = vec![
            (Target::Users(vec![user]), ServerFrame::ConversationLeft { conv }.encode()),
            (Target::Users(others), ServerFrame::MemberLeft { conv, user }.encode()),
        ];
        let outcome = Outcome::new(deliveries, ack_reply(conn, reference)).undo(Undo::RestoreMember {
            conv,
            user,
            before: member,
            wrote: None,
        });
        self.persist(vec![Change::DeleteMember(conv, user)], outcome).await;
        Ok(())
    }

    // ---- accounts ----

    async fn create_user(&mut self, mut record: UserRecord, reply: oneshot::Sender<Result<User, HubError>>) {
        if self.users.values().any(|u| u.info.name == record.name) {
            let _ = reply.send(Err(HubError::Refused(ErrorCode::NameTaken, format!("an account named {} exists", record.name))));
            return;
        }
        let id = UserId(self.next_user);
        self.next_user += 1;
        record.created = now_millis();
        let info = user_info(id, &record);
        self.users.insert(
            id,
            UserState { info: info.clone(), status: StatusRecord::default(), conns: Vec::new(), shown: PresenceState::Offline },
        );
        let mut changes = vec![Change::PutUser(id, record)];
        let mut deliveries = vec![(Target::Everyone, ServerFrame::User { user: info.clone() }.encode())];
        let mut undo = vec![Undo::RemoveUser(id)];
        let general =
            self.convs.iter().find(|(_, c)| c.record.kind == ConvKind::Room && c.record.name == DEFAULT_ROOM).map(|(id, _)| *id);
        match general {
            Some(conv) => {
                let (more_changes, more_deliveries) = self.member_added(conv, id);
                changes.extend(more_changes);
                deliveries.extend(more_deliveries);
                if let Some(joined) = self.convs.get(&conv).and_then(|c| c.members.get(&id)).map(|m| m.joined) {
                    undo.push(Undo::RemoveMember { conv, user: id, joined });
                }
            }
            None if self.convs.is_empty() => {
                let (conv, more_changes, more_deliveries) =
                    self.new_conversation(ConvKind::Room, DEFAULT_ROOM.into(), "Everyone in the office".into(), id, &[id]);
                changes.extend(more_changes);
                deliveries.extend(more_deliveries);
                undo.push(Undo::RemoveConversation(conv));
            }
            None => {}
        }
        tracing::info!(user = id.0, "account created");
        let mut outcome = Outcome::new(deliveries, Reply::User(reply, info));
        outcome.undo = undo;
        self.persist(changes, outcome).await;
    }

    // ---- conversations ----

    /// Creates a conversation in memory; returns its id, the changes to persist and the frames
    /// that announce it to its members.
    fn new_conversation(
        &mut self,
        kind: ConvKind,
        name: String,
        topic: String,
        creator: UserId,
        members: &[UserId],
    ) -> (ConvId, Vec<Change>, Vec<(Target, Utf8Bytes)>) {
        let id = ConvId(self.next_conv);
        self.next_conv += 1;
        let now = now_millis();
        let record = ConversationRecord { kind, name, topic, created_by: creator, created: now, keep: Keep::Forever };
        let mut changes = vec![Change::PutConversation(id, record.clone())];
        let mut state = ConvState { record, members: BTreeMap::new(), last_seq: Seq(0), committed_seq: Seq(0) };
        for member in members {
            state.members.insert(*member, MemberState { read_seq: Seq(0), joined: now, unread: 0, mentions: 0 });
            changes.push(Change::PutMember(id, *member, MemberRecord { joined: now, read_seq: 0 }));
        }
        self.convs.insert(id, state);
        let deliveries = members
            .iter()
            .map(|m| {
                (Target::Users(vec![*m]), ServerFrame::Conversation { conversation: self.conversation_for(id, *m) }.encode())
            })
            .collect();
        tracing::info!(conv = id.0, ?kind, members = members.len(), "conversation created");
        (id, changes, deliveries)
    }

    /// Adds a member in memory; returns the changes and the frames announcing it.
    fn member_added(&mut self, conv: ConvId, user: UserId) -> (Vec<Change>, Vec<(Target, Utf8Bytes)>) {
        let Some(state) = self.convs.get_mut(&conv) else { return (Vec::new(), Vec::new()) };
        let now = now_millis();
        // A newcomer starts with everything before them read.
        let read_seq = state.last_seq;
        state.members.insert(user, MemberState { read_seq, joined: now, unread: 0, mentions: 0 });
        let others: Vec<UserId> = state.members.keys().copied().filter(|m| *m != user).collect();
        let changes = vec![Change::PutMember(conv, user, MemberRecord { joined: now, read_seq: read_seq.0 })];
        let deliveries = vec![
            (Target::Users(vec![user]), ServerFrame::Conversation { conversation: self.conversation_for(conv, user) }.encode()),
            (Target::Users(others), ServerFrame::MemberJoined { conv, user }.encode()),
        ];
        (changes, deliveries)
    }

    async fn add_member(&mut self, conv: ConvId, user: UserId, reply: Reply) {
        let (changes, deliveries) = self.member_added(conv, user);
        let mut outcome = Outcome::new(deliveries, reply);
        if let Some(joined) = self.convs.get(&conv).and_then(|c| c.members.get(&user)).map(|m| m.joined) {
            outcome = outcome.undo(Undo::RemoveMember { conv, user, joined });
        }
        self.persist(changes, outcome).await;
    }

    fn conversation_for(&self, id: ConvId, user: UserId) -> protocol::Conversation {
        let state = &self.convs[&id];
        let member = state.members.get(&user);
        protocol::Conversation {
            id,
            kind: state.record.kind,
            name: state.record.name.clone(),
            topic: state.record.topic.clone(),
            members: state.members.keys().copied().collect(),
            last_seq: state.committed_seq,
            read_seq: member.map_or(Seq(0), |m| m.read_seq),
            unread: member.map_or(0, |m| m.unread),
            mentions: member.map_or(0, |m| m.mentions),
            recorded: state.record.keep != Keep::Nothing,
        }
    }

    /// The members of a conversation `user` belongs to; `not_found` otherwise, so that
    /// non-members cannot tell a private conversation from a missing one.
    fn members_of(&self, conv: ConvId, user: UserId) -> Result<Vec<UserId>, Refusal> {
        match self.convs.get(&conv) {
            Some(state) if state.members.contains_key(&user) => Ok(state.members.keys().copied().collect()),
            _ => Err(not_found()),
        }
    }

    fn resolve_mentions(&self, text: &str) -> Vec<UserId> {
        mentioned_names(text)
            .into_iter()
            .filter_map(|name| {
                let name = name.to_ascii_lowercase();
                self.users.iter().find(|(_, u)| u.info.name == name).map(|(id, _)| *id)
            })
            .collect()
    }

    fn remember_send(&mut self, user: UserId, client_id: String, conv: ConvId, seq: Seq, ts: Millis) {
        if self.recent_order.len() == RECENT_SENDS
            && let Some((oldest, oldest_seq)) = self.recent_order.pop_front()
            && self.recent_sends.get(&oldest).is_some_and(|(_, s, _)| *s == oldest_seq)
        {
            // Only the entry this slot remembered: the same client_id may have been sent
            // again (after a failed save) and be remembered by a newer slot.
            self.recent_sends.remove(&oldest);
        }
        self.recent_order.push_back(((user, client_id.clone()), seq));
        self.recent_sends.insert((user, client_id), (conv, seq, ts));
    }

    // ---- persistence and delivery ----

    /// Hands changes to the store writer; the outcome happens when they are durable.
    async fn persist(&mut self, changes: Vec<Change>, outcome: Outcome) {
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

    fn on_committed(&mut self, committed: Committed) {
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
    fn undo(&mut self, undo: Undo) {
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
                self.users.remove(&user);
            }
            Undo::RemoveConversation(conv) => {
                self.convs.remove(&conv);
            }
            Undo::RemoveMember { conv, user, joined } => {
                if let Some(state) = self.convs.get_mut(&conv) {
                    if state.members.get(&user).is_some_and(|m| m.joined == joined) {
                        state.members.remove(&user);
                    }
                }
            }
            Undo::RestoreMember { conv, user, before, wrote } => {
                if let Some(state) = self.convs.get_mut(&conv) {
                    let unchanged = match wrote {
                        Some(read_seq) => state.members.get(&user).is_some_and(|m| m.read_seq == read_seq),
                        None => !state.members.contains_key(&user),
                    };
                    if unchanged {
                        state.members.insert(user, before);
                    }
                }
            }
            Undo::RestoreRecord { conv, before, wrote } => {
                if let Some(state) = self.convs.get_mut(&conv) {
                    if state.record.topic == wrote.topic && state.record.name == wrote.name {
                        state.record = before;
                    }
                }
            }
            Undo::RestoreStatus { user, before, wrote } => {
                if let Some(state) = self.users.get_mut(&user) {
                    if state.status == wrote {
                        state.status = before;
                    }
                }
                self.presence_changed(user);
            }
        }
    }

    fn ack_now(&mut self, conn: ConnId, reference: Option<Ref>) {
        if reference.is_some() {
            self.deliver(Target::Conn(conn), ServerFrame::ack(reference).encode());
        }
    }

    /// Puts the same bytes in each recipient's queue. A full queue means the tab cannot keep
    /// up: it is disconnected (it will resync on reconnect) instead of slowing everyone.
    fn deliver(&mut self, target: Target, frame: Utf8Bytes) {
        let conns: Vec<ConnId> = match target {
            Target::Conn(id) => vec![id],
            Target::Users(users) => self.conns_of(users.into_iter()),
            Target::UsersExcept(users, except) => self.conns_of(users.into_iter().filter(|u| *u != except)),
            Target::Everyone => self.conns.keys().copied().collect(),
        };
        let slow: Vec<ConnId> = conns
            .into_iter()
            .filter(|id| self.conns.get(id).is_some_and(|conn| conn.outbox.try_send(frame.clone()).is_err()))
            .collect();
        for id in slow {
            self.drop_conn(id, CloseReason::SlowConsumer);
        }
    }

    fn conns_of(&self, users: impl Iterator<Item = UserId>) -> Vec<ConnId> {
        users.filter_map(|u| self.users.get(&u)).flat_map(|u| u.conns.iter().copied()).collect()
    }
}

fn ack_reply(conn: ConnId, reference: Option<Ref>) -> Reply {
    if reference.is_some() {
        let ack = ServerFrame::ack(reference.clone()).encode();
        Reply::Ack(conn, reference, ack)
    } else {
        Reply::None
    }
}

fn check_text(text: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(refuse(ErrorCode::BadRequest, "a message needs some text"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(refuse(ErrorCode::TooLarge, format!("a message is at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(())
}

pub fn user_info(id: UserId, record: &UserRecord) -> User {
    User { id, name: record.name.clone(), display_name: record.display_name.clone(), role: record.role }
}

pub fn message_frame(conv: ConvId, seq: Seq, record: &MessageRecord) -> protocol::Message {
    protocol::Message {
        conv,
        seq,
        rev: Seq(record.rev),
        author: record.author,
        text: record.text.clone(),
        ts: record.ts,
        edited_ts: record.edited_ts,
        deleted: record.deleted,
        mentions: record.mentions.clone(),
        client_id: record.client_id.clone(),
    }
}
