//! The data file. `Store` opens it (creating tables and migrating an older schema), answers
//! reads from any task through redb's MVCC snapshots, and applies `Change`s. During serving,
//! all changes go through the single writer task (`writer.rs`) so they are group-committed;
//! the command line applies them directly while the server is stopped.
//!
//! The store knows nothing of WebSockets or live state.

mod acks;
mod archive;
pub mod backup;
pub mod check;
pub mod files;
mod history;
pub mod migrate;
mod postings;
mod purge;
pub mod reactions;
pub mod records;
pub mod search;
mod sends;
pub mod stats;
pub mod tables;
pub mod vacuum;
pub mod writer;

pub use acks::StoredAck;
pub use history::Unread;
pub use sends::Pruned;
pub(crate) use sends::SendTables;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::model::{ConvId, Seq, UserId};
use records::{
    AuditRecord, ConversationRecord, DecodeError, InviteRecord, MemberRecord, MessageRecord, SendRecord, SessionRecord,
    StatusRecord, UserRecord, decode, encode,
};
use tables::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data file {0} is in use by another process (is the server running?)")]
    InUse(String),
    #[error("the data file has schema version {found}, newer than this binary understands ({supported}); use a newer hallway")]
    TooNew { found: u64, supported: u64 },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("storage error: {0}")]
    Redb(#[from] redb::Error),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("the store writer's queue is full")]
    Busy,
    #[error("the data file is being reopened after an I/O error")]
    Reopening,
    #[error("the data file is closed: the server is stopping")]
    Closed,
    #[error("backup: {0}")]
    Backup(String),
    #[error("vacuum: {0}")]
    Vacuum(String),
    /// A file that is not a data file (a backup given to restore or check), with why.
    #[error("{0}")]
    NotHallway(String),
    #[error("{0} (a bug: see the server log)")]
    Internal(String),
    /// Not an failure of the file: the message's `client_id` was sent before (this is the
    /// first send), so the writer did not post it again.
    #[error("this client_id was sent before")]
    AlreadySent(SendRecord),
}

impl StoreError {
    /// An I/O failure (a full disk): redb then refuses writes until the file is reopened.
    pub fn is_io(&self) -> bool {
        matches!(self, StoreError::Redb(redb::Error::Io(_) | redb::Error::PreviousIo))
    }
}

macro_rules! redb_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
redb_error!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// One logical change to the data file. A batch of them is applied in one write transaction.
#[derive(Debug)]
pub enum Change {
    PutUser(UserId, UserRecord),
    PutSession([u8; 32], SessionRecord),
    DeleteSession([u8; 32]),
    /// A session was used at `at` (from `address`, when known); nothing if it is gone.
    TouchSession {
        hash: [u8; 32],
        at: crate::model::Millis,
        address: Option<String>,
    },
    /// Signs a user out everywhere (a password reset, a disabled account), or everywhere but
    /// in the session `except` (the one that changed its own password, or asked for it).
    DeleteUserSessions {
        user: UserId,
        except: Option<[u8; 32]>,
    },
    PutStatus(UserId, StatusRecord),
    PutConversation(ConvId, ConversationRecord),
    PutMember(ConvId, UserId, MemberRecord),
    DeleteMember(ConvId, UserId),
    /// A new message at `Seq`.
    PutMessage(ConvId, Seq, MessageRecord),
    /// An edit or delete of the message at `Seq`; `record.rev` is the change's own seq.
    UpdateMessage(ConvId, Seq, MessageRecord),
    /// Keeps the version of a message an edit or delete replaces (`archive` policy only).
    KeepVersion(ConvId, Seq, MessageRecord),
    /// Appends to the reviewers' audit log.
    Audit(AuditRecord),
    /// Removes these messages of the conversation and everything keyed by them (their edits'
    /// and delete's seqs, keyword index entries, remembered `client_id`), for a records
    /// policy (`purge.rs`). A list rather than a range: the candidates come in batches
    /// (`Store::purgeable_before`, `Store::seqs_upto`) and need not be contiguous. A seq
    /// without a message is skipped. Seqs are never reused afterwards.
    PurgeMessages(ConvId, Vec<Seq>),
    /// An invite link made, or one of its uses taken.
    PutInvite([u8; 32], InviteRecord),
    DeleteInvite([u8; 32]),
    /// An upload's record (`files.rs`): written first (incomplete), then once every chunk is.
    PutFile(u64, records::FileRecord),
    /// One chunk of an upload's bytes (`files::CHUNK` at most).
    PutFileChunk(u64, u64, Vec<u8>),
    /// Removes files with every chunk: an upload cancelled or never sent, or the files of a
    /// message deleted outside archive.
    DeleteFiles(Vec<u64>),
    /// One person's reaction to a message given (`on`) or taken back (`reactions.rs`); nothing
    /// for a message that is gone.
    React {
        conv: ConvId,
        seq: Seq,
        emoji: String,
        user: UserId,
        on: bool,
        at: crate::model::Millis,
    },
    /// A fact about the file in `meta` (e.g. the key that signs sign-in device cookies).
    PutMeta(&'static str, Vec<u8>),
    /// The person used Hallway on this local day (`stats.rs`), for the admin's statistics.
    MarkActive(stats::Day, UserId),
    /// A member acknowledged the announcement at `seq` (`acks.rs`).
    PutAck {
        conv: ConvId,
        seq: Seq,
        user: UserId,
        ts: crate::model::Millis,
    },
    /// Fails when applied: a bad job next to good ones, for the writer's tests.
    #[cfg(test)]
    FailForTest,
}

/// Everything the chat core needs in memory at start-up.
#[derive(Default)]
pub struct Snapshot {
    pub users: Vec<(UserId, UserRecord)>,
    pub statuses: Vec<(UserId, StatusRecord)>,
    pub conversations: Vec<(ConvId, ConversationRecord)>,
    pub members: Vec<(ConvId, UserId, MemberRecord)>,
    /// Highest seq (message or change, purged ones included) per conversation.
    pub last_seq: HashMap<ConvId, Seq>,
}

/// redb's page cache. Recent history is what is read; a small cache keeps an idle server
/// small (redb's default is 1 GiB).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Handle to the data file; clone freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `None` only while `reopen` swaps the file after an I/O error.
    db: RwLock<Option<Arc<Database>>>,
    /// Held by the one thread opening the file.
    opening: Mutex<()>,
    /// Commits pinned for backups being copied (`backup.rs`): the file is not reopened
    /// meanwhile, since a new handle would not know of the pins and could reuse their pages.
    pins: AtomicUsize,
    /// Destinations of the backups being written.
    backups: Mutex<HashSet<PathBuf>>,
    /// Backups copy the tables even when the page copy would work (`backup::REFUSE_PAGE_COPY_ENV`).
    refuse_page_copy: AtomicBool,
    /// `close` was called: the file stays closed, whoever still holds a handle.
    closed: AtomicBool,
}

/// Free space on the data file's disk below which `reopen` does not try.
const REOPEN_MIN_FREE: u64 = 4 * 1024 * 1024;

/// Bytes available to us on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a struct we own.
    let ok = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } == 0;
    ok.then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Creates a missing data file as 0600 (and a missing directory as 0700) before redb fills
/// it: it holds every message and password hash, so no other local account may read it. An
/// existing file keeps its mode (the admin may have chosen it), with a warning if others can
/// read it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o044 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data file is readable by other accounts on this machine (messages, password hashes): chmod 600 it"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Set to 1 for benchmarks only: durable commits without redb's quick-repair record, to
/// measure what the record costs a commit and what it saves after a crash (`hallway-load`).
pub const SLOW_REPAIR_ENV: &str = "HALLWAY_TEST_SLOW_REPAIR";

fn quick_repair() -> bool {
    static QUICK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *QUICK.get_or_init(|| std::env::var_os(SLOW_REPAIR_ENV).is_none_or(|v| v != "1"))
}

/// Begins a write transaction whose durable commit records redb's allocator state (quick
/// repair, a two-phase commit). After a crash or power cut, opening the file then loads that
/// record instead of reading every page of the file to rebuild it, which took 9.7 s on a
/// 2 GiB file. Every write transaction of the server begins here: the record is trusted only
/// if the last durable commit wrote it, so one commit without it makes the next crash's
/// repair slow again.
pub(crate) fn begin_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(quick_repair());
    Ok(txn)
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    let repairing = Arc::new(AtomicBool::new(false));
    let mut builder = Database::builder();
    let (flag, shown) = (repairing.clone(), path.display().to_string());
    builder.set_cache_size(CACHE_BYTES).set_repair_callback(move |_| {
        // Only when the file was not closed cleanly and its last commit left no allocator
        // record (written by an older binary, or without quick repair).
        if !flag.swap(true, Ordering::Relaxed) {
            tracing::warn!(path = %shown, "the data file was not closed cleanly; reading all of it to repair it");
        }
    });
    let started = std::time::Instant::now();
    let db = builder.create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.display().to_string()),
        other => other.into(),
    })?;
    if repairing.load(Ordering::Relaxed) {
        tracing::info!(millis = started.elapsed().as_millis() as u64, "repaired the data file");
    }
    Ok(db)
}

/// What it takes to read what people wrote (history pages, search, one message): only
/// `Store::open_with_key` makes one, and the server hands it to the chat core's one door
/// (`core::access`) alone, so a handler cannot read a conversation without asking the core
/// who may read it: the compiler refuses the call without the key.
pub struct ContentKey(());

impl Store {
    /// Opens the data file (as `open`) with the key to its message content.
    pub fn open_with_key(path: &Path) -> Result<(Store, ContentKey), StoreError> {
        Ok((Store::open(path)?, ContentKey(())))
    }

    /// Opens (or creates) the data file, creates missing tables and migrates an older schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path).map_err(|e| StoreError::Redb(redb::Error::Io(e)))?;
        let db = open_database(path)?;
        migrate::bring_up_to_date(&db)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                db: RwLock::new(Some(Arc::new(db))),
                opening: Mutex::new(()),
                pins: AtomicUsize::new(0),
                backups: Mutex::new(HashSet::new()),
                refuse_page_copy: AtomicBool::new(std::env::var_os(backup::REFUSE_PAGE_COPY_ENV).is_some_and(|v| v == "1")),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The open database, for one transaction. If the file was closed to be reopened and
    /// that failed, the next caller tries again.
    pub(crate) fn db(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.inner.db.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(db);
        }
        self.open_again()
    }

    /// Opens the file into the empty slot; one thread at a time, the others are told to try
    /// later instead of waiting (a reopen may repair the file, which takes a while).
    fn open_again(&self) -> Result<Arc<Database>, StoreError> {
        let Ok(_opening) = self.inner.opening.try_lock() else { return Err(StoreError::Reopening) };
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if let Some(db) = self.inner.db.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(db);
        }
        // Opening on a disk that is still full would fail (and may write): wait for room.
        if free_bytes(&self.inner.path).is_some_and(|free| free < REOPEN_MIN_FREE) {
            return Err(StoreError::Reopening);
        }
        let db = Arc::new(open_database(&self.inner.path)?);
        *self.inner.db.write().unwrap_or_else(|e| e.into_inner()) = Some(db.clone());
        tracing::info!("reopened the data file");
        Ok(db)
    }

    /// Closes and reopens the data file. After an I/O error (a full disk) redb refuses every
    /// further write until the file is reopened; this lets the server recover by itself once
    /// space is freed. Reads meanwhile fail fast with `Reopening` (a `storage` error).
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        if free_bytes(&self.inner.path).is_some_and(|free| free < REOPEN_MIN_FREE) {
            return Err(StoreError::Reopening);
        }
        if self.inner.pins.load(Ordering::SeqCst) > 0 {
            return Err(StoreError::Reopening); // the next write tries again, once copied
        }
        let old = self.inner.db.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(old);
        self.open_again().map(|_| ())
    }

    /// Closes the data file for every handle, at shutdown: a handle still held somewhere (a
    /// task not dropped yet) must not keep redb's lock, or a `hallway backup` or a restart
    /// right after finds the file in use. A transaction under way keeps it open until done.
    pub fn close(&self) {
        let _opening = self.inner.opening.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.closed.store(true, Ordering::SeqCst);
        drop(self.inner.db.write().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// The data file's size in bytes.
    pub fn file_bytes(&self) -> Option<u64> {
        std::fs::metadata(&self.inner.path).ok().map(|m| m.len())
    }

    /// Bytes free for us on the disk that holds the data file.
    pub fn free_disk_bytes(&self) -> Option<u64> {
        free_bytes(&self.inner.path)
    }

    /// Applies changes in one durable transaction (used by the CLI; the server uses the writer).
    pub fn apply_now(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let txn = begin_write(&*self.db()?)?;
        let mut sends = SendTables::new(&txn);
        for change in &changes {
            apply(&txn, &mut sends, change)?;
        }
        drop(sends);
        txn.commit()?;
        Ok(())
    }

    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut snap = Snapshot::default();
        for entry in txn.open_table(USER_RECORD)?.iter()? {
            let (id, value) = entry?;
            snap.users.push((UserId(id.value()), decode(value.value())?));
        }
        for entry in txn.open_table(USER_STATUS)?.iter()? {
            let (id, value) = entry?;
            snap.statuses.push((UserId(id.value()), decode(value.value())?));
        }
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let revisions = txn.open_table(CONVREV_SEQ)?;
        for entry in txn.open_table(CONV_RECORD)?.iter()? {
            let (id, value) = entry?;
            let conv = id.value();
            snap.conversations.push((ConvId(conv), decode(value.value())?));
            let last_message = messages.range((conv, 0)..=(conv, u64::MAX))?.next_back().transpose()?;
            let last_rev = revisions.range((conv, 0)..=(conv, u64::MAX))?.next_back().transpose()?;
            let last = last_message.map(|(k, _)| k.value().1).max(last_rev.map(|(k, _)| k.value().1)).unwrap_or(0);
            // The newest messages may have been purged: their seqs are not handed out again.
            let last = last.max(purge::purged_seq(&txn, ConvId(conv))?);
            snap.last_seq.insert(ConvId(conv), Seq(last));
        }
        for entry in txn.open_table(CONVUSER_MEMBER)?.iter()? {
            let (key, value) = entry?;
            let (conv, user) = key.value();
            snap.members.push((ConvId(conv), UserId(user), decode(value.value())?));
        }
        Ok(snap)
    }

    pub fn users(&self) -> Result<Vec<(UserId, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut users = Vec::new();
        for entry in txn.open_table(USER_RECORD)?.iter()? {
            let (id, value) = entry?;
            users.push((UserId(id.value()), decode(value.value())?));
        }
        Ok(users)
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<(UserId, UserRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let Some(id) = txn.open_table(NAME_USER)?.get(name)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let record = txn.open_table(USER_RECORD)?.get(id)?.map(|v| decode(v.value())).transpose()?;
        Ok(record.map(|r| (UserId(id), r)))
    }

    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(USER_RECORD)?;
        Ok(table.get(id.0)?.map(|v| decode(v.value())).transpose()?)
    }

    pub fn next_user_id(&self) -> Result<UserId, StoreError> {
        let txn = self.db()?.begin_read()?;
        let last = txn.open_table(USER_RECORD)?.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(UserId(last + 1))
    }

    /// Sessions last used before `cutoff` (expired), by token hash.
    pub fn sessions_unused_since(&self, cutoff: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut expired = Vec::new();
        for entry in txn.open_table(TOKENHASH_SESSION)?.iter()? {
            let (hash, value) = entry?;
            let session: SessionRecord = decode(value.value())?;
            if session.last_used.max(session.created) < cutoff
                && let Ok(hash) = <[u8; 32]>::try_from(hash.value())
            {
                expired.push(hash);
            }
        }
        Ok(expired)
    }

    /// A user's sessions (signed-in browsers), by token hash.
    pub fn sessions_of(&self, user: UserId) -> Result<Vec<([u8; 32], SessionRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(USER_TOKENHASH)?;
        let sessions = txn.open_table(TOKENHASH_SESSION)?;
        let mut found = Vec::new();
        for entry in index.range((user.0, [].as_slice())..(user.0 + 1, [].as_slice()))? {
            let (key, _) = entry?;
            let hash = key.value().1;
            if let (Ok(id), Some(value)) = (<[u8; 32]>::try_from(hash), sessions.get(hash)?) {
                found.push((id, decode(value.value())?));
            }
        }
        Ok(found)
    }

    /// How many sessions (signed-in browsers) a user has.
    pub fn session_count(&self, user: UserId) -> Result<usize, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(USER_TOKENHASH)?;
        Ok(index.range((user.0, [].as_slice())..(user.0 + 1, [].as_slice()))?.count())
    }

    /// Every invite link, by the hash of its token.
    pub fn invites(&self) -> Result<Vec<([u8; 32], InviteRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = match txn.open_table(INVITEHASH_INVITE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut invites = Vec::new();
        for entry in table.iter()? {
            let (hash, value) = entry?;
            if let Ok(hash) = <[u8; 32]>::try_from(hash.value()) {
                invites.push((hash, decode(value.value())?));
            }
        }
        Ok(invites)
    }

    /// A value of the file's `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(META)?.get(key)?.map(|v| v.value().to_vec()))
    }

    /// The schema version the data file holds.
    pub fn schema_version(&self) -> Result<Option<u64>, StoreError> {
        migrate::schema_version(&*self.db()?)
    }

    pub fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(TOKENHASH_SESSION)?;
        Ok(table.get(token_hash.as_slice())?.map(|v| decode(v.value())).transpose()?)
    }
}

/// Writes a message (new or changed); an edit or delete of an indexed message takes the
/// keyword index along (new messages are indexed in the background, see `search/`).
fn put_message(txn: &WriteTransaction, conv: ConvId, seq: Seq, record: &MessageRecord) -> Result<(), StoreError> {
    let old = txn.open_table(CONVSEQ_MESSAGE)?.insert((conv.0, seq.0), encode(record).as_slice())?.map(|v| decode(v.value()));
    search::reindex(txn, conv, seq, old.transpose()?.as_ref(), Some(record))
}

/// The error a peeked range item held.
fn next_error<T>(item: Option<Result<T, redb::StorageError>>) -> StoreError {
    match item {
        Some(Err(e)) => e.into(),
        _ => StoreError::Redb(redb::Error::Corrupted("a range ended while reading".into())),
    }
}

/// Applies one change inside a write transaction, whose send tables `sends` holds. The one
/// place that knows which tables a change touches.
pub(crate) fn apply(txn: &WriteTransaction, sends: &mut SendTables, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::PutUser(id, record) => {
            txn.open_table(NAME_USER)?.insert(record.name.as_str(), id.0)?;
            txn.open_table(USER_RECORD)?.insert(id.0, encode(record).as_slice())?;
        }
        Change::PutSession(hash, record) => {
            txn.open_table(USER_TOKENHASH)?.insert((record.user.0, hash.as_slice()), ())?;
            txn.open_table(TOKENHASH_SESSION)?.insert(hash.as_slice(), encode(record).as_slice())?;
        }
        Change::TouchSession { hash, at, address } => {
            let mut table = txn.open_table(TOKENHASH_SESSION)?;
            let found = table.get(hash.as_slice())?.map(|v| decode::<SessionRecord>(v.value())).transpose()?;
            // A session deleted since it was read (signed out) stays deleted.
            if let Some(mut session) = found {
                session.last_used = session.last_used.max(*at);
                if let Some(address) = address {
                    session.address = address.clone();
                }
                table.insert(hash.as_slice(), encode(&session).as_slice())?;
            }
        }
        Change::DeleteSession(hash) => {
            let removed = txn.open_table(TOKENHASH_SESSION)?.remove(hash.as_slice())?.map(|v| decode::<SessionRecord>(v.value()));
            if let Some(session) = removed.transpose()? {
                txn.open_table(USER_TOKENHASH)?.remove((session.user.0, hash.as_slice()))?;
            }
        }
        Change::DeleteUserSessions { user, except } => {
            let mut index = txn.open_table(USER_TOKENHASH)?;
            let mut sessions = txn.open_table(TOKENHASH_SESSION)?;
            let hashes: Vec<Vec<u8>> = index
                .range((user.0, [].as_slice())..(user.0 + 1, [].as_slice()))?
                .map(|entry| entry.map(|(key, _)| key.value().1.to_vec()))
                .collect::<Result<_, _>>()?;
            for hash in hashes.into_iter().filter(|h| except.is_none_or(|keep| h.as_slice() != keep.as_slice())) {
                sessions.remove(hash.as_slice())?;
                index.remove((user.0, hash.as_slice()))?;
            }
        }
        Change::PutStatus(id, record) => {
            txn.open_table(USER_STATUS)?.insert(id.0, encode(record).as_slice())?;
        }
        Change::PutConversation(id, record) => {
            txn.open_table(CONV_RECORD)?.insert(id.0, encode(record).as_slice())?;
        }
        Change::PutMember(conv, user, record) => {
            txn.open_table(CONVUSER_MEMBER)?.insert((conv.0, user.0), encode(record).as_slice())?;
        }
        Change::DeleteMember(conv, user) => {
            txn.open_table(CONVUSER_MEMBER)?.remove((conv.0, user.0))?;
        }
        Change::PutInvite(hash, record) => {
            txn.open_table(INVITEHASH_INVITE)?.insert(hash.as_slice(), encode(record).as_slice())?;
        }
        Change::DeleteInvite(hash) => {
            txn.open_table(INVITEHASH_INVITE)?.remove(hash.as_slice())?;
        }
        Change::PutMeta(key, value) => {
            txn.open_table(META)?.insert(*key, value.as_slice())?;
        }
        Change::PutMessage(conv, seq, record) => {
            sends.remember(*conv, *seq, record)?;
            put_message(txn, *conv, *seq, record)?;
            files::attach(txn, *conv, *seq, record)?;
            stats::count_message(sends, record)?;
        }
        Change::MarkActive(day, user) => stats::mark_active(txn, *day, *user)?,
        Change::KeepVersion(conv, seq, record) => archive::keep_version(txn, *conv, *seq, record)?,
        Change::Audit(record) => archive::audit(txn, record)?,
        Change::UpdateMessage(conv, seq, record) => {
            txn.open_table(CONVREV_SEQ)?.insert((conv.0, record.rev), seq.0)?;
            put_message(txn, *conv, *seq, record)?;
            if record.deleted {
                acks::remove(txn, *conv, &[*seq])?;
                reactions::remove_all(txn, *conv, [seq.0])?;
            }
        }
        Change::PutAck { conv, seq, user, ts } => acks::put(txn, *conv, *seq, *user, *ts)?,
        Change::React { conv, seq, emoji, user, on, at } => reactions::react(txn, *conv, *seq, emoji, *user, *on, *at)?,
        Change::PurgeMessages(conv, seqs) => purge::purge_messages(txn, sends, *conv, seqs)?,
        Change::PutFile(id, record) => files::put_file(txn, *id, record)?,
        Change::PutFileChunk(id, n, bytes) => files::put_chunk(txn, *id, *n, bytes)?,
        Change::DeleteFiles(ids) => files::remove_files(txn, ids.iter().copied())?,
        #[cfg(test)]
        Change::FailForTest => return Err(StoreError::Internal("a change that always fails (test)".into())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short message by `author` that mentions `mentions`, for the store's tests.
    pub(crate) fn message(author: u64, mentions: &[u64]) -> MessageRecord {
        MessageRecord {
            author: UserId(author),
            text: "hi".into(),
            ts: 0,
            edited_ts: None,
            deleted: false,
            mentions: mentions.iter().map(|m| UserId(*m)).collect(),
            client_id: None,
            rev: 0,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        }
    }

    #[test]
    fn expired_sessions_are_found_and_deleted_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let session =
            |at| SessionRecord { user: UserId(1), created: at, last_used: at, device: String::new(), address: String::new() };
        let (old, fresh) = (session(1_000), session(9_000));
        store.apply_now(vec![Change::PutSession([1; 32], old), Change::PutSession([2; 32], fresh)]).unwrap();
        assert_eq!(store.session_count(UserId(1)).unwrap(), 2);
        let expired = store.sessions_unused_since(5_000).unwrap();
        assert_eq!(expired, vec![[1; 32]], "only the old session is past the cutoff");
        store.apply_now(expired.into_iter().map(Change::DeleteSession).collect()).unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none());
        assert!(store.session(&[2; 32]).unwrap().is_some(), "the fresh session still signs in");
        assert_eq!(store.session_count(UserId(1)).unwrap(), 1, "the per-user index follows");
    }

    #[test]
    fn a_touched_session_is_not_idle_and_a_deleted_one_is_not_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let session = SessionRecord {
            user: UserId(1),
            created: 1_000,
            last_used: 1_000,
            device: "Firefox on Linux".into(),
            address: String::new(),
        };
        store.apply_now(vec![Change::PutSession([1; 32], session)]).unwrap();
        store.apply_now(vec![Change::TouchSession { hash: [1; 32], at: 8_000, address: Some("10.0.0.7".into()) }]).unwrap();
        assert!(store.sessions_unused_since(5_000).unwrap().is_empty(), "used at 8,000: not idle since 5,000");
        let (_, touched) = &store.sessions_of(UserId(1)).unwrap()[0];
        assert_eq!(
            (touched.last_used, touched.address.as_str(), touched.device.as_str()),
            (8_000, "10.0.0.7", "Firefox on Linux")
        );
        store.apply_now(vec![Change::DeleteSession([1; 32])]).unwrap();
        store.apply_now(vec![Change::TouchSession { hash: [1; 32], at: 9_000, address: None }]).unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none(), "a touch after sign-out does not sign back in");
    }
}
