//! The chat core: one task that owns the live state (accounts, conversations, membership,
//! connections, presence) and fans events out. Sessions and HTTP handlers talk to it through
//! `Hub`, a cheap handle that sends commands over a channel, so nothing is locked across
//! tasks. The core never waits on disk: changes go to the store writer, and what they cause
//! (fan-out, acks) happens when the writer reports the commit.

pub mod access;
mod accounts;
mod hub;
mod presence;
pub mod records;
pub mod transcript;

use std::sync::{Arc, OnceLock, Weak};

use crate::protocol::Encoded;
use tokio::sync::{mpsc, oneshot};

use crate::limits::{Limiter, RateLimits};
use crate::model::{ConvId, UserId};
use crate::protocol::{self, ClientFrame, Ref, Refusal, User};
use crate::store::records::UserRecord;
use crate::store::{ContentKey, Store, StoreError, writer::Writer};
use access::{Action, Door};

pub use accounts::{new_account, new_password_hash};
pub use hub::DEFAULT_ROOM;
use hub::HubTask;
pub use hub::files::{NewUpload, size_words, too_large};

/// Identifies one WebSocket connection (one browser tab).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Why the server ended a connection; read by the session when its queue closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client did not read fast enough and its queue filled up.
    SlowConsumer,
    SignedOut,
    /// An admin disabled the account.
    Disabled,
    ServerShutdown,
    /// The person already has the most tabs open that one person may.
    TooManyTabs,
}

/// What a session hands the core when its tab connects.
pub struct Connection {
    pub id: ConnId,
    pub user: UserId,
    /// SHA-256 of the session token, so signing out can close this tab.
    pub session: [u8; 32],
    /// Bounded queue of ready-to-send frames; full means the client is too slow.
    pub outbox: mpsc::Sender<Encoded>,
    /// Set by the core before it drops `outbox`, to tell the session why.
    pub closed: Arc<OnceLock<CloseReason>>,
}

/// What the core counts for the admin's statistics (`GET /api/admin/stats`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LiveStats {
    pub rooms: usize,
    pub private_rooms: usize,
    pub dms: usize,
    pub groups: usize,
    /// Everyone with a tab open, by user id.
    pub tabs: Vec<TabsOf>,
}

/// One person's open tabs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TabsOf {
    pub user: UserId,
    pub name: String,
    pub display_name: String,
    pub tabs: usize,
    /// When the oldest of them connected (ms since 1970).
    pub since: crate::model::Millis,
}

/// A public room as listed in the directory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoomEntry {
    pub id: ConvId,
    pub name: String,
    pub topic: String,
    pub member_count: usize,
    pub joined: bool,
}

/// Who asks for a change to an account: a signed-in person (the core checks that they may),
/// or the operator at the machine (`hallway user ...`, the server stopped), who may do anything
/// an admin may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    User(UserId),
    Console,
}

/// A change to an existing account (`Hub::change_account`).
#[derive(Clone, Debug)]
pub enum AccountChange {
    /// Closes the account's tabs at once, ends its sessions and refuses its sign-ins.
    Disable,
    Enable,
    Role(crate::model::Role),
    /// A new password (already hashed): ends the account's sessions, but for `keep` (the
    /// session that changed its own password).
    Password {
        hash: String,
        keep: Option<[u8; 32]>,
    },
}

/// Which of a person's sessions to end (`Hub::end_sessions`).
#[derive(Clone, Copy, Debug)]
pub enum EndSessions {
    /// This one (signing out, or one chosen from the list of one's sessions).
    One([u8; 32]),
    /// Every one but this (the session that asks).
    AllBut([u8; 32]),
}

/// The records policy in effect (`Hub::policy`).
#[derive(Clone, Copy, Debug)]
pub struct PolicyInfo {
    pub policy: records::Policy,
    /// Set by the configuration: the admin page cannot change it.
    pub fixed: bool,
    /// How long messages that are not recorded stay in memory (`--records-buffer`).
    pub buffer_seconds: u64,
}

impl PolicyInfo {
    /// As `hello`, `GET /api/session` and the `policy` frame show it.
    pub fn to_json(self) -> serde_json::Value {
        let mut json = self.policy.to_json(self.buffer_seconds);
        json["fixed"] = self.fixed.into();
        json
    }
}

/// Who may create an account without an admin (`Hub::set_signup`), kept in the data file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignupMode {
    /// Only admins create accounts (the default).
    #[default]
    Admin,
    /// Whoever has a valid invite link.
    Invite,
    /// Anyone on the office network (invite links work too).
    Open,
}

impl SignupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupMode::Admin => "admin",
            SignupMode::Invite => "invite",
            SignupMode::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Option<SignupMode> {
        [SignupMode::Admin, SignupMode::Invite, SignupMode::Open].into_iter().find(|m| m.as_str() == s)
    }
}

/// An invite link as the admins' list shows it (never its token).
#[derive(Clone, Debug, serde::Serialize)]
pub struct InviteInfo {
    pub id: String,
    pub role: crate::model::Role,
    pub uses: u32,
    pub max_uses: u32,
    pub created: crate::model::Millis,
    pub expires: crate::model::Millis,
    pub created_by: UserId,
}

/// How one signs up (`Hub::sign_up`).
#[derive(Clone, Copy, Debug)]
pub enum SignupWith {
    /// The hash of an invite link's token.
    Invite([u8; 32]),
    /// No invite: open sign-up, for an address on the office network (`lan`).
    Open { lan: bool },
}

/// One account as the admins' list shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Account {
    pub id: UserId,
    pub name: String,
    pub display_name: String,
    pub role: crate::model::Role,
    pub disabled: bool,
    pub created: crate::model::Millis,
    /// Tabs open now.
    pub tabs: usize,
    /// When a tab of theirs was last open (now, if one is); `None`: never since this was kept.
    pub last_seen: Option<crate::model::Millis>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("could not save: {0}")]
    Storage(#[from] Arc<StoreError>),
    #[error("the server is shutting down")]
    Gone,
}

enum Command {
    Connect(Connection),
    Disconnect(ConnId),
    Frame {
        conn: ConnId,
        reference: Option<Ref>,
        frame: ClientFrame,
    },
    May {
        actor: UserId,
        conv: ConvId,
        action: Action,
        reply: oneshot::Sender<Option<access::Allowed>>,
    },
    AllTheyMay {
        actor: UserId,
        action: Action,
        reply: oneshot::Sender<Vec<ConvId>>,
    },
    /// The archived conversations a reviewer may read, as a non-member sees them.
    Reviewable {
        actor: UserId,
        reply: oneshot::Sender<Vec<protocol::Conversation>>,
    },
    /// Purges what every conversation may no longer keep as of this time; answered with how
    /// many messages went, once that is on disk.
    Purge {
        as_of: crate::model::Millis,
        reply: oneshot::Sender<usize>,
    },
    /// Appends to the audit log; answered once it is on disk.
    Audit {
        record: crate::store::records::AuditRecord,
        reply: oneshot::Sender<Result<(), Arc<StoreError>>>,
    },
    Rooms {
        user: UserId,
        reply: oneshot::Sender<Vec<RoomEntry>>,
    },
    CreateUser {
        record: UserRecord,
        reply: oneshot::Sender<Result<User, HubError>>,
    },
    ChangeAccount {
        by: By,
        user: UserId,
        change: AccountChange,
        reply: oneshot::Sender<Result<User, HubError>>,
    },
    Accounts {
        reply: oneshot::Sender<Vec<Account>>,
    },
    /// The sign-up mode and every invite link.
    Signup {
        reply: oneshot::Sender<(SignupMode, Vec<InviteInfo>)>,
    },
    SetSignup {
        by: UserId,
        mode: SignupMode,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    /// The records policy in effect, and whether the admin page may change it.
    Policy {
        reply: oneshot::Sender<PolicyInfo>,
    },
    SetPolicy {
        by: UserId,
        policy: records::Policy,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    CreateInvite {
        by: UserId,
        hash: [u8; 32],
        record: crate::store::records::InviteRecord,
        reply: oneshot::Sender<Result<InviteInfo, HubError>>,
    },
    RevokeInvite {
        by: UserId,
        id: String,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    /// Whether a sign-up that way would be taken now, and with which role.
    MaySignUp {
        with: SignupWith,
        reply: oneshot::Sender<Result<(crate::model::Role, Option<crate::model::Millis>), Refusal>>,
    },
    SignUp {
        with: SignupWith,
        record: UserRecord,
        reply: oneshot::Sender<Result<User, HubError>>,
    },
    EndSessions {
        user: UserId,
        which: EndSessions,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    /// Conversations and open tabs, for the admin's statistics.
    Stats {
        reply: oneshot::Sender<LiveStats>,
    },
    /// An upload may start (member, recorded conversation, size): its file id and record.
    BeginUpload {
        user: UserId,
        upload: hub::files::NewUpload,
        reply: oneshot::Sender<Result<(u64, crate::store::records::FileRecord), Refusal>>,
    },
    /// An upload's bytes are all written (`ok`), or it was cut short.
    UploadDone {
        file: u64,
        ok: bool,
    },
    Fault(Fault),
    Shutdown,
}

impl Command {
    /// The command's name, for the log.
    fn kind(&self) -> &'static str {
        match self {
            Command::Connect(_) => "connect",
            Command::Disconnect(_) => "disconnect",
            Command::Frame { frame, .. } => frame.kind(),
            Command::May { .. } => "may",
            Command::AllTheyMay { .. } => "all_they_may",
            Command::Reviewable { .. } => "reviewable",
            Command::Audit { .. } => "audit",
            Command::Purge { .. } => "purge",
            Command::Rooms { .. } => "rooms",
            Command::CreateUser { .. } => "create_user",
            Command::ChangeAccount { .. } => "change_account",
            Command::Accounts { .. } => "accounts",
            Command::Signup { .. } => "signup",
            Command::SetSignup { .. } => "set_signup",
            Command::Policy { .. } => "policy",
            Command::SetPolicy { .. } => "set_policy",
            Command::CreateInvite { .. } => "create_invite",
            Command::RevokeInvite { .. } => "revoke_invite",
            Command::MaySignUp { .. } => "may_sign_up",
            Command::SignUp { .. } => "sign_up",
            Command::EndSessions { .. } => "end_sessions",
            Command::Stats { .. } => "stats",
            Command::BeginUpload { .. } => "begin_upload",
            Command::UploadDone { .. } => "upload_done",
            Command::Fault(_) => "fault",
            Command::Shutdown => "shutdown",
        }
    }
}

/// Failures tests inject to check that one failure stays small. Reachable only from the
/// library's API (`Server::inject_fault`), never from the network.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// The next client frame panics while the core handles it.
    PanicNextFrame,
    /// The core task panics outside any command, and ends.
    StopCore,
}

/// Handle to the chat core; clone freely.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::Sender<Command>,
    /// The rate limits every session checks frames against before they get here.
    limiter: Arc<Limiter>,
    /// The store with the key to message content, for the one door (`access.rs`). Owned by
    /// the core task, so the data file closes when the core stops, whatever tabs still
    /// hold a handle.
    door: Weak<Door>,
}

/// What the core is told at start: the options of `Config` that are its business.
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_frame: usize,
    /// Largest file one may attach, in bytes.
    pub max_file_size: u64,
    pub limits: RateLimits,
    /// The operator's records policy (`--records`); with `records_fixed` false, the one an
    /// admin chose on the admin page (kept in the data file) takes its place.
    pub records: records::Policy,
    /// The policy was set in the configuration (a flag, the environment or the settings
    /// file): the admin page shows it and cannot change it.
    pub records_fixed: bool,
    /// How long a message that is not recorded stays in memory for tabs catching up.
    pub records_buffer: std::time::Duration,
    /// The clock invite and session expiry read (tests move it).
    pub clock: crate::model::Clock,
    /// How often open tabs note their sessions' use, so that a tab left open for weeks keeps
    /// its session (an hour; tests shorten it).
    pub touch_every: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_frame: crate::config::DEFAULT_MAX_FRAME,
            max_file_size: crate::config::DEFAULT_MAX_FILE_SIZE,
            limits: RateLimits::default(),
            records: records::Policy::Keep,
            records_fixed: false,
            records_buffer: crate::config::DEFAULT_RECORDS_BUFFER,
            clock: crate::model::Clock::default(),
            touch_every: std::time::Duration::from_millis(crate::auth::TOUCH_EVERY_MS),
        }
    }
}

/// Commands waiting for the core before senders wait.
const COMMAND_QUEUE: usize = 4096;

impl Hub {
    /// Loads the live state from the store and starts the core task.
    /// `key` unlocks message content: only the core's one door (`access.rs`) reads it.
    pub fn start(
        store: Store,
        key: ContentKey,
        writer: Writer,
        settings: Settings,
    ) -> Result<(Hub, tokio::task::JoinHandle<()>), StoreError> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let door = Arc::new(Door::new(store.clone(), key));
        let weak = Arc::downgrade(&door);
        let limiter = Arc::new(Limiter::new(settings.limits.clone()));
        let task = HubTask::load(store, door, writer, settings)?;
        let handle = tokio::spawn(task.run(rx));
        Ok((Hub { tx, limiter, door: weak }, handle))
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    async fn send(&self, command: Command) {
        // A slot first, then the command into it: waiting in `Sender::send` would hold a
        // second copy of the command, and every tab's task is as large as the largest
        // future it waits on (`session.rs`).
        // A closed channel means the core is shutting down; there is nobody left to tell.
        if let Ok(slot) = self.tx.reserve().await {
            slot.send(command);
        }
    }

    // The session's commands are plain functions returning `send`'s future, so the future
    // holds the command once rather than also its parts.
    pub fn connect(&self, connection: Connection) -> impl Future<Output = ()> + '_ {
        self.send(Command::Connect(connection))
    }

    pub fn disconnect(&self, conn: ConnId) -> impl Future<Output = ()> + '_ {
        self.send(Command::Disconnect(conn))
    }

    pub fn frame(&self, conn: ConnId, reference: Option<Ref>, frame: ClientFrame) -> impl Future<Output = ()> + '_ {
        self.send(Command::Frame { conn, reference, frame })
    }

    /// Purges, in small batches while chat goes on, what each conversation may no longer
    /// keep as of `as_of` (the clock, or another time for tests); how many messages went.
    pub async fn purge(&self, as_of: crate::model::Millis) -> usize {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Purge { as_of, reply }).await;
        rx.await.unwrap_or(0)
    }

    pub async fn rooms(&self, user: UserId) -> Vec<RoomEntry> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Rooms { user, reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Creates an account (its password already hashed); returns once it is durable.
    pub async fn create_user(&self, record: UserRecord) -> Result<User, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::CreateUser { record, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Changes an account (see `AccountChange`); returns once it is durable. Refused
    /// `forbidden` unless `by` is an admin (or the account itself, for its password),
    /// `not_found` for no such account, `last_admin` for the last admin's role or account.
    pub async fn change_account(&self, by: By, user: UserId, change: AccountChange) -> Result<User, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ChangeAccount { by, user, change, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// The records policy in effect (what `GET /api/session` and the admin page show).
    pub async fn policy(&self) -> PolicyInfo {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Policy { reply }).await;
        rx.await.unwrap_or(PolicyInfo { policy: records::Policy::Off, fixed: true, buffer_seconds: 0 })
    }

    /// Sets the records policy (admins only, and only where the configuration does not);
    /// returns once it is durable. Every tab is told, and what may no longer be kept is purged.
    pub async fn set_policy(&self, by: UserId, policy: records::Policy) -> Result<(), HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetPolicy { by, policy, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// The sign-up mode and every invite link.
    pub async fn signup(&self) -> (SignupMode, Vec<InviteInfo>) {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Signup { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Sets who may sign up (admins only); returns once it is durable.
    pub async fn set_signup(&self, by: UserId, mode: SignupMode) -> Result<(), HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetSignup { by, mode, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Keeps a new invite link (admins only, not while only admins create accounts).
    pub async fn create_invite(
        &self,
        by: UserId,
        hash: [u8; 32],
        record: crate::store::records::InviteRecord,
    ) -> Result<InviteInfo, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::CreateInvite { by, hash, record, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Deletes an invite link by its id (admins only).
    pub async fn revoke_invite(&self, by: UserId, id: String) -> Result<(), HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RevokeInvite { by, id, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Whether a sign-up `with` would be taken now: the role it gives and the invite's expiry.
    pub async fn may_sign_up(&self, with: SignupWith) -> Result<(crate::model::Role, Option<crate::model::Millis>), Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::MaySignUp { with, reply }).await;
        rx.await.unwrap_or_else(|_| Err(Refusal::new(protocol::ErrorCode::Internal, "the server is shutting down")))
    }

    /// Creates an account by sign-up (its role comes from the invite, or is member); an
    /// invite's use is taken in the same commit, so a link of one use signs up one person.
    pub async fn sign_up(&self, with: SignupWith, record: UserRecord) -> Result<User, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SignUp { with, record, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Every account with its tabs and when it was last seen, by name.
    pub async fn accounts(&self) -> Vec<Account> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Accounts { reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Ends sessions of `user` (their tabs close at once with `signed_out`); returns once
    /// they are deleted from the file.
    pub async fn end_sessions(&self, user: UserId, which: EndSessions) -> Result<(), HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::EndSessions { user, which, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?
    }

    /// Conversations and open tabs right now.
    pub async fn stats(&self) -> Result<LiveStats, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply }).await;
        rx.await.map_err(|_| HubError::Gone)
    }

    /// Starts an upload to `conv` if `user` may attach files there: the new file's id and the
    /// record to write first (incomplete). The bytes go to the writer from the caller.
    pub async fn begin_upload(
        &self,
        user: UserId,
        upload: NewUpload,
    ) -> Result<(u64, crate::store::records::FileRecord), Refusal> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::BeginUpload { user, upload, reply }).await;
        rx.await.unwrap_or_else(|_| Err(Refusal::new(protocol::ErrorCode::Internal, "the server is shutting down")))
    }

    /// Tells the core an upload's bytes are all on disk (`ok`), or that it was cut short.
    pub async fn upload_done(&self, file: u64, ok: bool) {
        self.send(Command::UploadDone { file, ok }).await
    }

    /// Whether the core task is still running (it ends only at shutdown, or after a bug).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    #[doc(hidden)]
    pub async fn inject_fault(&self, fault: Fault) {
        self.send(Command::Fault(fault)).await
    }

    /// Closes every connection and stops the core.
    pub async fn shutdown(&self) {
        self.send(Command::Shutdown).await
    }
}
