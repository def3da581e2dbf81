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

pub use accounts::new_account;
pub use hub::DEFAULT_ROOM;
use hub::HubTask;

/// Identifies one WebSocket connection (one browser tab).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Why the server ended a connection; read by the session when its queue closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client did not read fast enough and its queue filled up.
    SlowConsumer,
    SignedOut,
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
    SignOut {
        session: [u8; 32],
    },
    /// Conversations and open tabs, for the admin's statistics.
    Stats {
        reply: oneshot::Sender<LiveStats>,
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
            Command::SignOut { .. } => "sign_out",
            Command::Stats { .. } => "stats",
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
    pub limits: RateLimits,
    /// The operator's records policy (`--records`).
    pub records: records::Policy,
    /// How long a message that is not recorded stays in memory for tabs catching up.
    pub records_buffer: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_frame: crate::config::DEFAULT_MAX_FRAME,
            limits: RateLimits::default(),
            records: records::Policy::Keep,
            records_buffer: crate::config::DEFAULT_RECORDS_BUFFER,
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
        // A closed channel means the core is shutting down; there is nobody left to tell.
        let _ = self.tx.send(command).await;
    }

    pub async fn connect(&self, connection: Connection) {
        self.send(Command::Connect(connection)).await
    }

    pub async fn disconnect(&self, conn: ConnId) {
        self.send(Command::Disconnect(conn)).await
    }

    pub async fn frame(&self, conn: ConnId, reference: Option<Ref>, frame: ClientFrame) {
        self.send(Command::Frame { conn, reference, frame }).await
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

    /// Conversations and open tabs right now.
    pub async fn stats(&self) -> Result<LiveStats, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply }).await;
        rx.await.map_err(|_| HubError::Gone)
    }

    /// Closes every tab of a session that just signed out.
    pub async fn sign_out(&self, session: [u8; 32]) {
        self.send(Command::SignOut { session }).await
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
