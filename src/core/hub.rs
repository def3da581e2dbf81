//! The core task's state and its dispatch of each command. Everything here runs on one task,
//! so it needs no locks; it must never wait on disk. A change is applied to memory at once
//! (so the next command sees it), handed to the store writer, and its effects (frames to
//! members, the acknowledgement) go out when the writer reports the commit. Conversations
//! that keep nothing skip the writer and deliver at once.
//!
//! The handling lives in child modules, one concern each, as `impl HubTask` blocks:
//! `access` (the one door: who may read what), `messages`, `conversations` (and membership),
//! `accounts`, `presence` (tabs, status, expiry) and `delivery` (commit outcomes, undo,
//! fan-out into the tabs' queues).

mod access;
mod accounts;
mod announce;
mod conversations;
mod delivery;
pub(crate) mod files;
mod keeping;
mod messages;
mod presence;
mod reactions;
mod signup;
mod stats;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::time::Instant;

use crate::protocol::Encoded;
use tokio::sync::mpsc;

use super::access::{Action, Allowed, Door};
use super::records::{self as rules, Policy};
use super::{CloseReason, Command, ConnId, Fault, Settings, SignupMode};
use crate::limits::{Bucket, RateLimits};
use crate::model::{ConvId, Millis, Seq, UserId, now_millis};
use crate::protocol::{ClientFrame, ErrorCode, PresenceState, Ref, Refusal, ServerFrame, User, user_info};
use crate::store::records::{ConversationRecord, InviteRecord, MessageRecord, StatusRecord, UserRecord};
use crate::store::writer::Writer;
use crate::store::{Change, Store, StoreError};
use conversations::ConvIndex;
use delivery::{Committed, Target};
use messages::{FromReader, MessageChange};

/// How long a shutdown waits for commits in progress before it closes the tabs anyway.
const SHUTDOWN_COMMITS: std::time::Duration = std::time::Duration::from_secs(5);

/// The room every account is a member of, created with the first admin.
pub const DEFAULT_ROOM: &str = "general";

struct UserState {
    info: User,
    /// The account as stored, so that a change to it starts from every change before it,
    /// committed or not.
    account: UserRecord,
    /// When a tab of theirs was last open, to the moment (`account.last_seen` is to the hour).
    seen: Option<Millis>,
    status: StatusRecord,
    conns: Vec<ConnId>,
    /// What colleagues were last told, to send presence only when it changes.
    shown: PresenceState,
    /// When they were told, so that changes reach them at most once per `PRESENCE_EVERY`.
    told_at: Option<Instant>,
    /// A `Timer::Presence` is queued to tell them the latest state.
    told_later: bool,
    /// The expiry a `Timer::StatusExpiry` is queued for: one at a time, however often the
    /// status is set (the check then queues the next one if the status changed).
    expiry_queued: Option<Millis>,
}

impl UserState {
    fn new(id: UserId, account: UserRecord, status: StatusRecord) -> UserState {
        UserState {
            info: user_info(id, &account),
            seen: account.last_seen,
            account,
            status,
            conns: Vec::new(),
            shown: PresenceState::Offline,
            told_at: None,
            told_later: false,
            expiry_queued: None,
        }
    }
}

/// Something the core does at a given time. Checked when due: a timer whose reason went
/// away (a status changed again) does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The person's status may have reached its expiry.
    StatusExpiry(UserId),
    /// Tell colleagues the person's presence, if it changed since they were last told.
    Presence(UserId),
    /// Messages that were not recorded may have been held in memory long enough.
    LiveExpiry(ConvId),
    /// The pause after a purge batch is over: the next one may go.
    PurgeNext,
    /// Time to look at every conversation that keeps less than forever.
    Sweep,
    /// Time to note, coarsely, who still has tabs open (`accounts::TOUCH_EVERY`).
    Touch,
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
    /// Messages that were not recorded, oldest first, with when they go: for tabs that catch
    /// up after a moment away. Memory only, so gone on restart.
    live: VecDeque<(Seq, MessageRecord, Instant)>,
}

struct ConnState {
    user: UserId,
    session: [u8; 32],
    outbox: mpsc::Sender<Encoded>,
    closed: Arc<std::sync::OnceLock<CloseReason>>,
    idle: bool,
    /// When the tab connected, for the admin's list of open tabs.
    since: Millis,
}

/// A remembered send: what a resend of it is answered with.
#[derive(Clone, Copy)]
struct Sent {
    seq: Seq,
    ts: Millis,
    /// `store::records::text_digest` of its text (`None`: unknown, any text matches).
    text_digest: Option<u64>,
}

/// One entry of a user's send order: (conversation, client_id, seq, ts).
type SentSlot = (ConvId, Arc<str>, Seq, Millis);

pub(crate) struct HubTask {
    store: Store,
    /// Message content, for the checks an edit or delete needs.
    door: Arc<Door>,
    writer: Writer,
    max_frame: usize,
    limits: RateLimits,
    /// What is kept, server-wide (`records.rs`).
    policy: Policy,
    /// Set by the configuration, not the admin page.
    policy_fixed: bool,
    /// How long messages that are not recorded stay in `ConvState::live`.
    live_for: std::time::Duration,
    /// New conversations each person may still create (`RateLimits::conversations`).
    created: HashMap<UserId, Bucket>,
    /// When members were last told that a person types in a conversation: one `typing` per
    /// person and conversation per `TYPING_EVERY` reaches them, however many tabs send it.
    typing_told: HashMap<(UserId, ConvId), Instant>,
    /// Status expiries and delayed presence, soonest first.
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    users: BTreeMap<UserId, UserState>,
    /// Sign-in name to account, for mentions and unique names (names never change).
    user_names: HashMap<String, UserId>,
    convs: BTreeMap<ConvId, ConvState>,
    /// Public rooms by name, DMs and groups by members (`conversations.rs`).
    index: ConvIndex,
    conns: HashMap<ConnId, ConnState>,
    next_user: u64,
    next_conv: u64,
    /// Each user's latest sends with a `client_id` since the start, by (sender, conversation,
    /// client_id), to answer a resend at once. Older ones, and those from before the start,
    /// the writer finds in the file, in the resend's own transaction (`AlreadySent`).
    recent_sends: HashMap<(UserId, ConvId, Arc<str>), Sent>,
    /// Messages written or changed but not yet committed, so an edit or delete right behind
    /// another one starts from the latest version, not the file's.
    pending: HashMap<(ConvId, Seq), MessageRecord>,
    /// Edits and deletes waiting behind one whose message a reader thread is reading.
    loading: HashMap<(ConvId, Seq), VecDeque<MessageChange>>,
    /// Each user's entries of `recent_sends` in the order they were sent, to forget the
    /// oldest.
    recent_order: HashMap<UserId, VecDeque<SentSlot>>,
    committed_tx: mpsc::UnboundedSender<Committed>,
    committed_rx: mpsc::UnboundedReceiver<Committed>,
    /// Unread counts from reader threads (`mark_read`).
    reader_tx: mpsc::UnboundedSender<FromReader>,
    reader_rx: mpsc::UnboundedReceiver<FromReader>,
    /// The purge pass under way, if any (`keeping.rs`).
    sweep: Option<keeping::Sweep>,
    /// Purge batches: which conversation's is under way, which wait, how large (`keeping.rs`).
    purges: keeping::Purges,
    /// Messages were purged, edited or deleted since the file was last rewritten: their old
    /// text may sit in redb's free pages until the next vacuum.
    freed_since_vacuum: bool,
    last_vacuum: Option<Instant>,
    /// Who may sign up without an admin, and the invite links (`signup.rs`).
    signup: SignupMode,
    invites: BTreeMap<[u8; 32], InviteRecord>,
    /// The clock invite and session expiry read.
    clock: crate::model::Clock,
    /// How often the sessions of open tabs are noted as used (`accounts.rs`).
    touch_every: std::time::Duration,
    /// Test hook (`Fault::PanicNextFrame`): the next client frame panics while handled.
    panic_next_frame: bool,
    /// Jobs handed to the writer whose commit has not been reported yet: at shutdown their
    /// acks go out before the tabs are closed.
    in_flight: usize,
    /// Who was noted as active today (`stats.rs`).
    activity: stats::Activity,
    /// Uploads waiting to be sent, and the next file id (`files.rs`).
    uploads: files::Uploads,
    /// Acknowledgements of announcements (`announce.rs`).
    acks: announce::Acks,
    /// Reactions held in memory and on their way to the file (`reactions.rs`).
    reactions: reactions::ReactionState,
}

impl HubTask {
    pub fn load(store: Store, door: Arc<Door>, writer: Writer, settings: Settings) -> Result<HubTask, StoreError> {
        let Settings {
            max_frame,
            max_file_size,
            limits,
            records,
            records_fixed: policy_fixed,
            records_buffer: live_for,
            clock,
            touch_every,
        } = settings;
        let policy = if policy_fixed { records } else { keeping::stored_policy(&store)?.unwrap_or(records) };
        let (next_file, waiting) = store.uploads()?;
        let (uploads, cut_short) = files::Uploads::load(next_file, waiting, max_file_size);
        let invites = store.invites()?.into_iter().collect();
        let signup = store.meta(signup::SIGNUP_KEY)?.and_then(|v| String::from_utf8(v).ok()).and_then(|v| SignupMode::parse(&v));
        let snapshot = store.load()?;
        let acks = announce::Acks::load(&store)?;
        let mut statuses: HashMap<UserId, StatusRecord> = snapshot.statuses.into_iter().collect();
        let mut users = BTreeMap::new();
        for (id, record) in snapshot.users {
            let status = statuses.remove(&id).unwrap_or_default();
            users.insert(id, UserState::new(id, record, status));
        }
        let mut convs: BTreeMap<ConvId, ConvState> = BTreeMap::new();
        for (id, record) in snapshot.conversations {
            let last_seq = snapshot.last_seq.get(&id).copied().unwrap_or(Seq(0));
            let state = ConvState { record, members: BTreeMap::new(), last_seq, committed_seq: last_seq, live: VecDeque::new() };
            convs.insert(id, state);
        }
        for (conv, user, member) in snapshot.members {
            let Some(state) = convs.get_mut(&conv) else { continue };
            state
                .members
                .insert(user, MemberState { read_seq: Seq(member.read_seq), joined: member.joined, unread: 0, mentions: 0 });
        }
        for state in convs.values_mut() {
            // Messages that were not recorded left no seq on disk, but tabs saw them: go on
            // from a number taken from the clock (a thousand per millisecond since 1970, still
            // below 2^53 for two centuries), so a tab never sees a seq twice after a restart.
            if !policy.kept(rules::chosen(&state.record, state.members.keys().copied())).recorded() {
                let from_clock = Seq(now_millis().saturating_mul(1000));
                state.last_seq = state.last_seq.max(from_clock);
                state.committed_seq = state.last_seq;
            }
        }
        // One pass over each conversation's newest messages counts unread for all its members.
        for (id, state) in convs.iter_mut() {
            let readers: Vec<(UserId, Seq)> = state.members.iter().map(|(user, m)| (*user, m.read_seq)).collect();
            let counts = store.unread_for(*id, &readers, Seq(u64::MAX))?;
            for ((user, _), count) in readers.iter().zip(counts) {
                if let Some(member) = state.members.get_mut(user) {
                    member.unread = count.unread;
                    member.mentions = count.mentions;
                }
            }
        }
        let user_names = users.iter().map(|(id, u): (&UserId, &UserState)| (u.info.name.clone(), *id)).collect();
        let mut index = ConvIndex::default();
        for (id, state) in &convs {
            index.add(*id, state);
        }
        let next_user = users.keys().next_back().map_or(1, |id| id.0 + 1);
        let next_conv = convs.keys().next_back().map_or(1, |id| id.0 + 1);
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        let (reader_tx, reader_rx) = mpsc::unbounded_channel();
        tracing::info!(users = users.len(), conversations = convs.len(), "chat core loaded");
        let mut task = HubTask {
            store,
            door,
            writer,
            max_frame,
            limits,
            policy,
            policy_fixed,
            live_for,
            created: HashMap::new(),
            typing_told: HashMap::new(),
            timers: BinaryHeap::new(),
            users,
            user_names,
            convs,
            index,
            conns: HashMap::new(),
            next_user,
            next_conv,
            recent_sends: HashMap::new(),
            recent_order: HashMap::new(),
            pending: HashMap::new(),
            loading: HashMap::new(),
            committed_tx,
            committed_rx,
            reader_tx,
            reader_rx,
            panic_next_frame: false,
            in_flight: 0,
            signup: signup.unwrap_or_default(),
            invites,
            clock,
            touch_every,
            activity: Default::default(),
            sweep: None,
            purges: Default::default(),
            freed_since_vacuum: false,
            last_vacuum: None,
            uploads,
            acks,
            reactions: Default::default(),
        };
        if !cut_short.is_empty() {
            tracing::info!(files = cut_short.len(), "removing uploads cut short before the restart");
            task.persist(vec![Change::DeleteFiles(cut_short)], delivery::Outcome::new(Vec::new(), delivery::Reply::None));
        }
        // The first sweep soon after start: what expired while the server was down goes.
        task.timers.push(Reverse((Instant::now() + std::time::Duration::from_secs(5), Timer::Sweep)));
        task.timers.push(Reverse((Instant::now() + task.touch_every, Timer::Touch)));
        let expiring: Vec<(UserId, Millis)> =
            task.users.iter().filter_map(|(id, u)| u.status.expires.map(|at| (*id, at))).collect();
        for (user, at) in expiring {
            task.expire_at(user, at);
        }
        Ok(task)
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let sleep = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Commits first: their effects must not wait behind new work.
                biased;
                Some(committed) = self.committed_rx.recv() => self.committed_guarded(committed),
                Some(read) = self.reader_rx.recv() => self.read_guarded(read).await,
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(Command::Fault(Fault::StopCore)) => panic!("fault injected: the chat core stops"),
                    Some(command) => self.guarded(command).await,
                },
                () = sleep => {
                    if let Err(panic) = AssertUnwindSafe(self.run_timers()).catch_unwind().await {
                        tracing::error!(panic = panic_text(&panic), "the chat core panicked running a timer; going on");
                    }
                }
            }
        }
        self.finish().await;
        tracing::info!("chat core stopped");
    }

    /// A commit's effects (acks, fan-out); a panic costs that commit's delivery, not the core.
    fn committed_guarded(&mut self, committed: Committed) {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| self.on_committed(committed))) {
            tracing::error!(panic = panic_text(&panic), "the chat core panicked delivering a commit; going on");
        }
    }

    /// A reader thread's answer; a panic costs that answer, not the core.
    async fn read_guarded(&mut self, read: FromReader) {
        if let Err(panic) = AssertUnwindSafe(self.on_read(read)).catch_unwind().await {
            tracing::error!(panic = panic_text(&panic), "the chat core panicked on a reader thread's answer; going on");
        }
    }

    /// The end of a graceful shutdown: what the writer is committing is reported (acks,
    /// fan-out), then every tab is told the server restarts and let go, so a client learns
    /// the fate of every frame the core took. Frames still queued for the core get no answer:
    /// the tab sends them again after reconnecting (a `send` with its `client_id`).
    async fn finish(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_COMMITS;
        if self.in_flight > 0 {
            tracing::info!(jobs = self.in_flight, "shutting down: waiting for the commits in progress");
        }
        while self.in_flight > 0 {
            tokio::select! {
                biased;
                Some(committed) = self.committed_rx.recv() => self.committed_guarded(committed),
                Some(read) = self.reader_rx.recv() => self.read_guarded(read).await,
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        jobs = self.in_flight,
                        waited_s = SHUTDOWN_COMMITS.as_secs(),
                        "shutting down without the acks of commits still in progress; those tabs send again after reconnecting"
                    );
                    break;
                }
            }
        }
        let tabs = self.conns.len();
        self.deliver(Target::Everyone, ServerFrame::restarting().encode());
        for (_, conn) in self.conns.drain() {
            let _ = conn.closed.set(CloseReason::ServerShutdown);
        }
        tracing::info!(tabs, "shutting down: told every tab the server is restarting");
    }

    /// Handles one command so that a bug in it costs only that command: a panic is logged
    /// with the command's kind, the client that sent it is answered `internal`, and the core
    /// goes on serving everyone else.
    async fn guarded(&mut self, command: Command) {
        let kind = command.kind();
        let asker = match &command {
            Command::Frame { conn, reference, .. } => Some((*conn, reference.clone())),
            _ => None,
        };
        if let Err(panic) = AssertUnwindSafe(self.handle(command)).catch_unwind().await {
            tracing::error!(command = kind, panic = panic_text(&panic), "the chat core panicked handling a command; going on");
            if let Some((conn, reference)) = asker {
                let frame = ServerFrame::error(reference, ErrorCode::Internal, "the server failed to handle this; it was logged");
                self.deliver(Target::Conn(conn), frame.encode());
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Connect(connection) => self.connect(connection).await,
            Command::Disconnect(conn) => self.disconnect(conn),
            Command::Frame { conn, reference, frame } => {
                let Some(user) = self.conns.get(&conn).map(|c| c.user) else { return };
                if std::mem::take(&mut self.panic_next_frame) {
                    panic!("fault injected: a panic while handling a {} frame", frame.kind());
                }
                if let Err(refusal) = self.client_frame(conn, user, reference.clone(), frame).await {
                    self.refused(conn, reference, refusal);
                }
            }
            Command::May { actor, conv, action, reply } => {
                let allowed = self.may(actor, conv, action).map(|last_seq| {
                    let history = action == Action::History;
                    let live = if history { self.live_copy(conv) } else { Vec::new() };
                    let live_reactions = if history { self.live_reactions(conv) } else { Default::default() };
                    Allowed { last_seq, live, live_reactions }
                });
                let _ = reply.send(allowed);
            }
            Command::Purge { as_of, reply } => self.sweep(as_of, Some(reply)),
            Command::Audit { record, reply } => {
                // Waited for off the core's loop: the core never waits on disk.
                let writer = self.writer.clone();
                tokio::spawn(async move {
                    let _ = reply.send(writer.write(vec![Change::Audit(record)]).await);
                });
            }
            Command::Reviewable { actor, reply } => {
                let convs = self.all_they_may(actor, Action::Review);
                let _ = reply.send(convs.into_iter().map(|conv| self.conversation_for(conv, actor)).collect());
            }
            Command::AllTheyMay { actor, action, reply } => {
                let _ = reply.send(self.all_they_may(actor, action));
            }
            Command::Rooms { user, reply } => {
                let _ = reply.send(self.directory(user));
            }
            Command::CreateUser { record, reply } => self.create_user(record, reply).await,
            Command::ChangeAccount { by, user, change, reply } => self.change_account(by, user, change, reply),
            Command::Accounts { reply } => {
                let _ = reply.send(self.accounts());
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.live_stats());
            }
            Command::Signup { reply } => {
                let _ = reply.send((self.signup, self.invite_list()));
            }
            Command::SetSignup { by, mode, reply } => self.set_signup(by, mode, reply),
            Command::Policy { reply } => {
                let _ = reply.send(self.policy_info());
            }
            Command::SetPolicy { by, policy, reply } => self.set_policy(by, policy, reply),
            Command::CreateInvite { by, hash, record, reply } => self.create_invite(by, hash, record, reply),
            Command::RevokeInvite { by, id, reply } => self.revoke_invite(by, id, reply),
            Command::MaySignUp { with, reply } => {
                let _ = reply.send(self.may_sign_up(with).map(|(role, invite)| (role, invite.map(|i| i.expires))));
            }
            Command::SignUp { with, record, reply } => self.sign_up(with, record, reply),
            Command::EndSessions { user, which, reply } => self.end_sessions(user, which, reply),
            Command::BeginUpload { user, upload, reply } => {
                let _ = reply.send(self.begin_upload(user, upload));
            }
            Command::UploadDone { file, ok } => self.upload_done(file, ok),
            Command::Fault(Fault::PanicNextFrame) => self.panic_next_frame = true,
            Command::Fault(Fault::StopCore) | Command::Shutdown => {}
        }
    }

    /// Answers a refused request with its error frame.
    fn refused(&mut self, conn: ConnId, reference: Option<Ref>, refusal: Refusal) {
        self.deliver(Target::Conn(conn), ServerFrame::refused(reference, refusal).encode());
    }

    async fn client_frame(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        frame: ClientFrame,
    ) -> Result<(), Refusal> {
        match frame {
            ClientFrame::Send { conv, text, client_id, attachments, reply_to } => {
                self.mark_active(user);
                let extras = messages::Extras { attachments, reply_to };
                self.send_message(conn, user, reference, conv, text, client_id, extras).await
            }
            ClientFrame::Edit { conv, seq, text } => self.change_message(conn, user, reference, conv, seq, Some(text)).await,
            ClientFrame::Delete { conv, seq } => self.change_message(conn, user, reference, conv, seq, None).await,
            ClientFrame::React { conv, seq, emoji, on } => self.react(conn, user, reference, conv, seq, emoji, on),
            ClientFrame::Typing { conv } => self.typing(conn, user, reference, conv),
            ClientFrame::Read { conv, seq } => {
                self.mark_active(user);
                self.mark_read(conn, user, reference, conv, seq).await
            }
            ClientFrame::Presence { idle } => {
                self.set_idle(conn, user, idle);
                self.ack_now(conn, reference);
                Ok(())
            }
            ClientFrame::SetStatus { dnd, status, status_expires } => {
                self.status_frame(conn, user, reference, dnd, status, status_expires).await
            }
            ClientFrame::CreateRoom { name, topic, private, members, announcements } => {
                self.may_create_announcements(user, announcements)?;
                self.create_room(conn, user, reference, name, topic, private, members, announcements).await
            }
            ClientFrame::OpenDm { users } => self.open_dm(conn, user, reference, users).await,
            ClientFrame::Join { conv } => self.join(conn, user, reference, conv).await,
            ClientFrame::Leave { conv } => self.leave(conn, user, reference, conv).await,
            ClientFrame::Invite { conv, user: invitee } => self.invite(conn, user, reference, conv, invitee).await,
            ClientFrame::RemoveMember { conv, user: member } => self.remove_member(conn, user, reference, conv, member).await,
            ClientFrame::SetRecords { conv, keep, days } => self.set_records(conn, user, reference, conv, keep, days).await,
            ClientFrame::SetTopic { conv, topic } => self.set_topic(conn, user, reference, conv, topic).await,
            ClientFrame::SetAnnouncements { conv, announcements } => {
                self.set_announcements(conn, user, reference, conv, announcements)
            }
            ClientFrame::Acknowledge { conv, seq } => self.announcement(conn, user, reference, conv, seq, true),
            ClientFrame::Acknowledgements { conv, seq: Some(seq) } => self.announcement(conn, user, reference, conv, seq, false),
            ClientFrame::Acknowledgements { conv, seq: None } => self.acknowledgements(conn, user, reference, conv),
            ClientFrame::Ping => {
                self.deliver(Target::Conn(conn), ServerFrame::Pong.encode());
                self.ack_now(conn, reference);
                Ok(())
            }
        }
    }
}

/// What a caught panic said, for the log.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)")
}
