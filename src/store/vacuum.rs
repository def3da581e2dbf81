//! The vacuum: the data file rewritten from its live tables, so that nothing of deleted,
//! edited-away or purged text is left in its bytes, and its free space goes back to the disk.
//!
//! redb's own `Database::compact` is not enough for that. It moves pages from the end of the
//! file into free ones lower down and cuts the file after the last page in use, but it stops
//! at the first page that has no free place low enough (a long message's page, larger than any
//! hole), and it never clears the pages it leaves free: in `tests/vacuum.rs`, 876 of 1,000
//! removed texts are still in the file after it. So the vacuum is a logical copy instead
//! (`copy_tables`): every entry of every table, read from one snapshot, is written into a
//! fresh file beside the data file, which only ever holds live data (the keyword index
//! without the entries a purge left below each conversation's first message); that file is synced and
//! renamed over the data file, and the store's handle is switched to it. A reader in the
//! middle of a transaction on the old file finishes there; the next one reads the new file;
//! none fails. Once the last reader is done the old file's blocks go back to the file system
//! (they are not overwritten: on the disk itself only encryption of the disk hides them).
//!
//! While the server runs, the store writer (`writer.rs`) keeps committing during the copy:
//! it takes the snapshot between two batches and keeps every job it commits from then on.
//! When the copy is done, the copying thread applies the kept jobs to the new file beside the
//! writer, in a few rounds, and the writer applies the last few between two batches and
//! switches, so nothing acknowledged is lost and chat waits neither for the copy nor for the
//! bulk of the replay. Background indexing and pruning pause meanwhile (they would have to be replayed
//! too), and the switch waits while a backup is copying the old file. What a purge removes
//! during a vacuum is gone from the tables, but its bytes are only gone after the next one.
//! `copy_tables` is also what a logical backup can use.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, Key, MultimapTableHandle, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, Value,
};
use tokio::sync::oneshot;

use super::tables::*;
use super::writer::JobResult;
use super::{CACHE_BYTES, Change, SendTables, Store, StoreError, apply, postings, search};

/// Entries written per transaction of the copy: bounds what redb holds in memory.
const COPY_STEP: u64 = 50_000;
/// Bytes of values copied in one step at most.
const COPY_STEP_BYTES: usize = 32 * 1024 * 1024;
/// Bytes copied between durable commits: the copy is synced as it goes, so that its end is
/// not one fsync of the whole file, which would stall the chat's own commits on that disk.
const SYNC_BYTES: usize = 64 * 1024 * 1024;
/// Space left free beside the copy, so that chat can go on on the same disk.
const VACUUM_HEADROOM: u64 = 64 * 1024 * 1024;
/// Changes kept for replay at most while the copy runs; past this the vacuum gives up
/// rather than hold an unbounded log in memory.
const LOG_LIMIT: usize = 200_000;

/// What a vacuum did.
#[derive(Debug, Default)]
pub struct Vacuumed {
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Entries in all tables of the new file.
    pub entries: u64,
    /// Time to copy the tables, and in all (with the replay and the switch).
    pub copying: Duration,
    pub total: Duration,
    /// Changes the writer replayed into the copy at the switch, and how long it stopped
    /// taking jobs for that and the switch (the rest was replayed beside it).
    pub replayed: usize,
    pub paused: Duration,
}

/// Copies every table of `snapshot` into a new data file at `dest`, which must not exist
/// (created readable by its owner only), commits it durably and checks that each table holds
/// as many entries as in the snapshot. A table this binary does not know is an error, never
/// left behind. Returns the new file's database and the entries of each of its tables (the
/// index's without those of purged messages, the sweep's queue empty).
pub fn copy_tables(snapshot: &ReadTransaction, dest: &Path) -> Result<(Database, BTreeMap<String, u64>), StoreError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| StoreError::Vacuum(format!("creating {}: {e}", dest.display())))?;
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(dest)?;
    // What each table of the copy holds: every table of the snapshot, named once copied.
    let mut written = BTreeMap::new();
    let mut unsynced = 0;
    copy(snapshot, &db, &mut unsynced, META, &mut written)?;
    copy(snapshot, &db, &mut unsynced, USER_RECORD, &mut written)?;
    copy(snapshot, &db, &mut unsynced, NAME_USER, &mut written)?;
    copy(snapshot, &db, &mut unsynced, TOKENHASH_SESSION, &mut written)?;
    copy(snapshot, &db, &mut unsynced, USER_TOKENHASH, &mut written)?;
    copy(snapshot, &db, &mut unsynced, USER_STATUS, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONV_RECORD, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVUSER_MEMBER, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVSEQ_MESSAGE, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVREV_SEQ, &mut written)?;
    copy_postings(snapshot, &db, &mut unsynced, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONV_INDEXEDSEQ, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONV_INDEXEDLOW, &mut written)?;
    copy(snapshot, &db, &mut unsynced, USERSENDNO_SEND, &mut written)?;
    copy(snapshot, &db, &mut unsynced, USERCONVCLIENTID_SENDNO, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONV_PURGEDSEQ, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVSEQREV_VERSION, &mut written)?;
    copy(snapshot, &db, &mut unsynced, N_AUDIT, &mut written)?;
    copy(snapshot, &db, &mut unsynced, INVITEHASH_INVITE, &mut written)?;
    copy(snapshot, &db, &mut unsynced, DAY_MESSAGES, &mut written)?;
    copy(snapshot, &db, &mut unsynced, DAYUSER_ACTIVE, &mut written)?;
    copy(snapshot, &db, &mut unsynced, FILE_RECORD, &mut written)?;
    copy(snapshot, &db, &mut unsynced, FILECHUNK_BYTES, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVSEQUSER_ACK, &mut written)?;
    copy(snapshot, &db, &mut unsynced, CONVSEQEMOJIUSER_TS, &mut written)?;
    // The sweep's queue names entries below each conversation's first message, and the
    // copy of the index left all of those out: the copy's queue starts empty.
    written.insert(CONVTERM_PURGED.name().to_string(), 0);
    for table in snapshot.list_tables()? {
        if !written.contains_key(table.name()) {
            return Err(StoreError::Vacuum(format!("the data file has a table this binary does not know: {}", table.name())));
        }
    }
    if let Some(table) = snapshot.list_multimap_tables()?.next() {
        return Err(StoreError::Vacuum(format!("the data file has a table this binary does not know: {}", table.name())));
    }
    // The last steps were not synced: this commit makes them durable.
    let txn = super::begin_write(&db)?;
    txn.open_table(CONVTERM_PURGED)?;
    txn.commit()?;
    // The file grew by doubling while it was written: give back what is left at its end.
    let mut db = db;
    db.compact().map_err(|e| StoreError::Redb(e.into()))?;
    Ok((db, written))
}

/// Copies one table in steps; a table missing from the snapshot stays missing.
fn copy<K: Key + 'static, V: Value + 'static>(
    snapshot: &ReadTransaction,
    dest: &Database,
    unsynced: &mut usize,
    table: TableDefinition<K, V>,
    written: &mut BTreeMap<String, u64>,
) -> Result<(), StoreError> {
    let source = match snapshot.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut entries = source.iter()?;
    let mut copied = 0;
    loop {
        let txn = super::begin_write(dest)?;
        let (mut step, mut bytes, mut ended) = (0, 0, false);
        {
            let mut out = txn.open_table(table)?;
            // File chunks are 64 KiB each: a step is bounded in bytes as well as entries.
            while step < COPY_STEP && bytes < COPY_STEP_BYTES {
                let Some(entry) = entries.next() else {
                    ended = true;
                    break;
                };
                let (key, value) = entry?;
                let (key, value) = (key.value(), value.value());
                bytes += K::as_bytes(&key).as_ref().len() + V::as_bytes(&value).as_ref().len();
                out.insert(key, value)?;
                step += 1;
            }
        }
        step_commit(txn, unsynced, bytes)?;
        copied += step;
        if ended {
            break;
        }
    }
    let expected = source.len()?;
    if copied != expected {
        return Err(StoreError::Vacuum(format!("{}: copied {copied} entries of {expected}", table.name())));
    }
    written.insert(table.name().to_string(), copied);
    Ok(())
}

/// Copies the keyword index in steps like `copy`, without the entries below each
/// conversation's first stored message (`search::floor`): those of purged messages, which
/// the purge left for this copy rather than rewriting a block per word of each. Returns the
/// entries written; every entry of the snapshot must have been read.
fn copy_postings(
    snapshot: &ReadTransaction,
    dest: &Database,
    unsynced: &mut usize,
    tables: &mut BTreeMap<String, u64>,
) -> Result<(), StoreError> {
    let source = match snapshot.open_table(TERMCONVFIRST_POSTINGS) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let messages = snapshot.open_table(CONVSEQ_MESSAGE)?;
    let mut floors = search::Floors::default();
    let mut entries = source.iter()?;
    let (mut read, mut written) = (0, 0);
    loop {
        let txn = super::begin_write(dest)?;
        let (mut step, mut bytes) = (0, 0);
        {
            let mut out = txn.open_table(TERMCONVFIRST_POSTINGS)?;
            while step < COPY_STEP {
                let Some(entry) = entries.next() else { break };
                let (key, value) = entry?;
                step += 1;
                let (term, conv, first) = key.value();
                let floor = floors.of(&messages, conv)?;
                if first >= floor {
                    bytes += value.value().len();
                    out.insert((term, conv, first), value.value())?;
                    written += 1;
                } else if let Some((first, kept)) = postings::trim_below(first, value.value(), floor)? {
                    bytes += kept.len();
                    out.insert((term, conv, first), kept.as_slice())?;
                    written += 1;
                }
            }
        }
        step_commit(txn, unsynced, bytes)?;
        read += step;
        if step < COPY_STEP {
            break;
        }
    }
    let expected = source.len()?;
    if read != expected {
        return Err(StoreError::Vacuum(format!("{}: read {read} entries of {expected}", TERMCONVFIRST_POSTINGS.name())));
    }
    tables.insert(TERMCONVFIRST_POSTINGS.name().to_string(), written);
    Ok(())
}

/// Commits one step of a copy: durably once `SYNC_BYTES` were copied since the last durable
/// one, else without a sync.
fn step_commit(mut txn: redb::WriteTransaction, unsynced: &mut usize, bytes: usize) -> Result<(), StoreError> {
    *unsynced += bytes;
    if *unsynced >= SYNC_BYTES {
        *unsynced = 0;
    } else {
        txn.set_durability(Durability::None).map_err(|e| StoreError::Redb(e.into()))?;
    }
    txn.commit()?;
    Ok(())
}

/// A finished copy of the tables, waiting to take the data file's place. Dropped without
/// taking it, it removes its file.
pub(crate) struct Fresh {
    store: Store,
    db: Option<Database>,
    path: PathBuf,
    entries: u64,
    bytes_before: u64,
    started: Instant,
    copying: Duration,
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            drop(db);
            let _ = std::fs::remove_file(&self.path);
        }
        self.store.inner.backups.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.path);
    }
}

impl Store {
    /// Rewrites the data file from its live tables (see the top of this file) and switches to
    /// the new file. Only while nothing else writes to it: for the command line, with the
    /// server stopped (`hallway compact`); the server vacuums through `Writer::vacuum`.
    pub fn vacuum(&self) -> Result<Vacuumed, StoreError> {
        let snapshot = self.db()?.begin_read()?;
        let fresh = self.copy_live(snapshot)?;
        self.install(fresh)
    }

    /// Copies the tables of `snapshot` into a new file beside the data file.
    pub(crate) fn copy_live(&self, snapshot: ReadTransaction) -> Result<Fresh, StoreError> {
        let started = Instant::now();
        let path = PathBuf::from(format!("{}.vacuum", self.inner.path.display()));
        if !self.inner.backups.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone()) {
            return Err(StoreError::Vacuum("a vacuum is running already".into()));
        }
        let mut fresh =
            Fresh { store: self.clone(), db: None, path, entries: 0, bytes_before: 0, started, copying: Duration::ZERO };
        fresh.bytes_before = file_bytes(&self.inner.path);
        // Left by an interrupted vacuum, if any: none is running.
        let _ = std::fs::remove_file(&fresh.path);
        let needed = fresh.bytes_before + VACUUM_HEADROOM;
        if let Some(free) = super::free_bytes(&fresh.path).filter(|&free| free < needed) {
            return Err(StoreError::Vacuum(format!(
                "not enough space beside the data file: the copy needs up to {} MiB and {} MiB are free",
                needed >> 20,
                free >> 20
            )));
        }
        let copied = copy_tables(&snapshot, &fresh.path);
        drop(snapshot);
        match copied {
            Ok((db, written)) => (fresh.db, fresh.entries) = (Some(db), written.values().sum()),
            Err(e) => {
                let _ = std::fs::remove_file(&fresh.path);
                return Err(e);
            }
        }
        fresh.copying = started.elapsed();
        Ok(fresh)
    }

    /// Puts the copy in the data file's place and reads and writes it from now on. Refused
    /// while a backup copies the old file's bytes (`backup.rs`).
    pub(crate) fn install(&self, mut fresh: Fresh) -> Result<Vacuumed, StoreError> {
        if self.inner.pins.load(Ordering::SeqCst) > 0 {
            return Err(StoreError::Vacuum("a backup is being copied; try again when it is done".into()));
        }
        let Some(db) = fresh.db.take() else { return Err(StoreError::Internal("a vacuum's copy was taken twice".into())) };
        if let Err(e) = std::fs::rename(&fresh.path, &self.inner.path) {
            fresh.db = Some(db); // removed with its file
            return Err(StoreError::Vacuum(format!("putting the copy in place: {e}")));
        }
        let dir = self.inner.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // The new name survives a power loss only once the folder is synced.
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(error = %e, "the data file was vacuumed, but its folder could not be synced");
        }
        let old = self.inner.db.write().unwrap_or_else(|e| e.into_inner()).replace(Arc::new(db));
        // Closing a big file takes a while (redb records its allocator state): not on the
        // writer's time. It closes for good once its last reader is done.
        let _ = std::thread::Builder::new().name("store-close-old".into()).spawn(move || drop(old));
        let vacuumed = Vacuumed {
            bytes_before: fresh.bytes_before,
            bytes_after: file_bytes(&self.inner.path),
            entries: fresh.entries,
            copying: fresh.copying,
            total: fresh.started.elapsed(),
            replayed: 0,
            paused: Duration::ZERO,
        };
        tracing::info!(
            bytes_before = vacuumed.bytes_before,
            bytes_after = vacuumed.bytes_after,
            entries = vacuumed.entries,
            millis = vacuumed.total.as_millis() as u64,
            "vacuumed the data file"
        );
        Ok(vacuumed)
    }
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What the writer thread is asked for a vacuum (`Writer::vacuum`).
pub(crate) enum Request {
    /// Take the snapshot to copy, and keep every job committed from now on.
    Start(oneshot::Sender<Result<ReadTransaction, StoreError>>),
    /// The jobs kept so far, for the copying thread to replay into the copy beside the
    /// writer, so that few are left to replay at the switch.
    Drain(oneshot::Sender<Vec<Vec<Change>>>),
    /// The copy is done (or failed): replay the kept jobs into it and switch.
    Copied(Result<Fresh, StoreError>, oneshot::Sender<Result<Vacuumed, StoreError>>),
}

/// The writer thread's side of a vacuum.
#[derive(Default)]
pub(crate) struct Vacuum {
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    /// The copy runs; the jobs committed since its snapshot, in commit order.
    Copying { log: Vec<Vec<Change>>, changes: usize },
    /// The copy is done; the switch waits for a backup to finish copying the old file.
    Waiting { log: Vec<Vec<Change>>, changes: usize, fresh: Fresh, reply: oneshot::Sender<Result<Vacuumed, StoreError>> },
    /// Too many changes came during the copy: the vacuum fails once the copy is done.
    GaveUp,
}

/// How often a switch waiting for a backup is tried again.
pub(crate) const RETRY: Duration = Duration::from_millis(10);

impl Vacuum {
    /// Whether a vacuum is under way: background writes (indexing, pruning) wait.
    pub(crate) fn busy(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Whether a finished copy waits for its switch (`retry`).
    pub(crate) fn waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }

    /// Takes a request; says whether the data file was switched.
    pub(crate) fn handle(&mut self, store: &Store, request: Request, failing: &AtomicBool) -> bool {
        match request {
            Request::Start(reply) => {
                let started = if self.busy() {
                    Err(StoreError::Vacuum("a vacuum is running already".into()))
                } else if failing.load(Ordering::Relaxed) {
                    Err(StoreError::Vacuum("the data file cannot be written at the moment".into()))
                } else {
                    store.db().and_then(|db| Ok(db.begin_read()?))
                };
                if started.is_ok() {
                    self.state = State::Copying { log: Vec::new(), changes: 0 };
                }
                if let Err(Ok(_)) = reply.send(started) {
                    self.state = State::Idle; // nobody waits for this vacuum any more
                }
                false
            }
            Request::Drain(reply) => {
                let log = match &mut self.state {
                    State::Copying { log, changes } => {
                        *changes = 0;
                        std::mem::take(log)
                    }
                    _ => Vec::new(),
                };
                let _ = reply.send(log);
                false
            }
            Request::Copied(copied, reply) => match (std::mem::take(&mut self.state), copied) {
                (State::Copying { log, changes }, Ok(fresh)) => {
                    self.state = State::Waiting { log, changes, fresh, reply };
                    self.retry(store, failing)
                }
                (State::GaveUp, Ok(_)) => {
                    let _ = reply
                        .send(Err(StoreError::Vacuum("too many changes came during the copy; try at a quieter time".into())));
                    false
                }
                (_, copied) => {
                    let _ = reply.send(copied.and(Err(StoreError::Internal("a vacuum's copy came unasked".into()))));
                    false
                }
            },
        }
    }

    /// Keeps a batch's committed jobs for the replay while the copy runs.
    pub(crate) fn committed(&mut self, jobs: Vec<Vec<Change>>, results: &[JobResult]) {
        let (State::Copying { log, changes } | State::Waiting { log, changes, .. }) = &mut self.state else { return };
        for (job, result) in jobs.into_iter().zip(results) {
            if result.is_ok() && !job.is_empty() {
                *changes += job.len();
                log.push(job);
            }
        }
        if *changes > LOG_LIMIT {
            tracing::warn!(changes = *changes, "too many changes during the vacuum's copy; giving the vacuum up");
            match std::mem::take(&mut self.state) {
                State::Waiting { reply, .. } => {
                    let _ = reply.send(Err(StoreError::Vacuum("too many changes came during the vacuum".into())));
                }
                _ => self.state = State::GaveUp,
            }
        }
    }

    /// Replays the kept jobs into the copy and switches to it, unless a backup is copying
    /// the old file (then later); says whether it switched.
    pub(crate) fn retry(&mut self, store: &Store, failing: &AtomicBool) -> bool {
        if !self.waiting() || store.inner.pins.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let State::Waiting { log, changes, fresh, reply } = std::mem::take(&mut self.state) else { return false };
        let paused = Instant::now();
        let finished = if failing.load(Ordering::Relaxed) {
            Err(StoreError::Vacuum("the data file could not be written during the vacuum".into()))
        } else {
            replay(&fresh, &log).and_then(|()| store.install(fresh)).map(|vacuumed| Vacuumed {
                replayed: changes,
                paused: paused.elapsed(),
                ..vacuumed
            })
        };
        let switched = finished.is_ok();
        if let Err(e) = &finished {
            tracing::warn!(error = %e, "the vacuum failed; the data file is as it was");
        }
        let _ = reply.send(finished);
        switched
    }
}

/// Rounds of replaying beside the writer at most, and the changes a round must have found
/// to be worth another: the rest is replayed by the writer at the switch.
const CATCH_UP_ROUNDS: usize = 4;
const CATCH_UP_ENOUGH: usize = 200;

/// Replays into the copy, beside the writer, the jobs it has kept so far, until few are left
/// (`ask` fetches them: `Request::Drain`).
pub(crate) fn catch_up(fresh: &Fresh, mut ask: impl FnMut() -> Option<Vec<Vec<Change>>>) -> Result<(), StoreError> {
    for _ in 0..CATCH_UP_ROUNDS {
        let Some(log) = ask() else { break };
        let changes: usize = log.iter().map(Vec::len).sum();
        replay(fresh, &log)?;
        if changes < CATCH_UP_ENOUGH {
            break;
        }
    }
    Ok(())
}

/// Applies jobs committed during the copy to the copy, in one durable transaction.
fn replay(fresh: &Fresh, log: &[Vec<Change>]) -> Result<(), StoreError> {
    let Some(db) = &fresh.db else { return Err(StoreError::Internal("a vacuum's copy was taken twice".into())) };
    let txn = super::begin_write(db)?;
    {
        let mut sends = SendTables::new(&txn);
        for change in log.iter().flatten() {
            apply(&txn, &mut sends, change)?;
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, Seq};
    use crate::store::ContentKey;
    use crate::store::tests::message;

    fn put(seq: u64) -> Vec<Change> {
        vec![Change::PutMessage(ConvId(1), Seq(seq), message(1, &[]))]
    }

    #[test]
    fn jobs_committed_during_the_copy_are_replayed_into_it_and_the_switch_waits_for_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        store.apply_now(put(1)).unwrap();
        let failing = AtomicBool::new(false);
        let mut vacuum = Vacuum::default();
        let (tx, mut rx) = oneshot::channel();
        assert!(!vacuum.handle(&store, Request::Start(tx), &failing));
        let snapshot = rx.try_recv().unwrap().unwrap();
        let (tx, mut rx) = oneshot::channel();
        vacuum.handle(&store, Request::Start(tx), &failing);
        assert!(matches!(rx.try_recv().unwrap(), Err(StoreError::Vacuum(_))), "one vacuum at a time");

        // The writer goes on committing during the copy: a job that was saved, one that was
        // not; the first is replayed beside the writer, and one saved later at the switch.
        store.apply_now(put(2)).unwrap();
        vacuum.committed(vec![put(2), put(3)], &[Ok(()), Err(Arc::new(StoreError::Busy))]);
        let fresh = store.copy_live(snapshot).unwrap();
        let mut rounds = 0;
        catch_up(&fresh, || {
            rounds += 1;
            let (tx, mut rx) = oneshot::channel();
            vacuum.handle(&store, Request::Drain(tx), &failing);
            rx.try_recv().ok()
        })
        .unwrap();
        assert_eq!(rounds, 1, "one change left: not worth another round");
        store.apply_now(put(4)).unwrap();
        vacuum.committed(vec![put(4)], &[Ok(())]);

        // A backup copying the old file's bytes holds the switch back.
        store.inner.pins.fetch_add(1, Ordering::SeqCst);
        let (tx, mut done) = oneshot::channel();
        assert!(!vacuum.handle(&store, Request::Copied(Ok(fresh), tx), &failing));
        assert!(vacuum.waiting() && done.try_recv().is_err(), "the switch waits");
        assert!(!vacuum.retry(&store, &failing));
        store.inner.pins.fetch_sub(1, Ordering::SeqCst);
        assert!(vacuum.retry(&store, &failing), "and happens once the backup is copied");
        assert_eq!(done.try_recv().unwrap().unwrap().replayed, 1, "only the last job is replayed at the switch");
        assert!(!vacuum.busy());

        let key = ContentKey(());
        assert!(store.message(&key, ConvId(1), Seq(1)).unwrap().is_some(), "copied");
        assert!(store.message(&key, ConvId(1), Seq(2)).unwrap().is_some(), "committed during the copy: replayed");
        assert!(store.message(&key, ConvId(1), Seq(4)).unwrap().is_some(), "committed during the catch-up: replayed");
        assert!(store.message(&key, ConvId(1), Seq(3)).unwrap().is_none(), "a job that failed is not replayed");
        assert!(!dir.path().join("t.redb.vacuum").exists(), "the copy took the data file's place");
        store.apply_now(put(4)).unwrap();
        assert!(store.message(&key, ConvId(1), Seq(4)).unwrap().is_some(), "the new file is written to");
    }

    #[test]
    fn a_copy_that_is_not_used_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        store.apply_now(put(1)).unwrap();
        let fresh = store.copy_live(store.db().unwrap().begin_read().unwrap()).unwrap();
        assert!(dir.path().join("t.redb.vacuum").exists());
        let again = store.copy_live(store.db().unwrap().begin_read().unwrap());
        assert!(matches!(again, Err(StoreError::Vacuum(_))), "one copy at a time");
        drop(fresh);
        assert!(!dir.path().join("t.redb.vacuum").exists(), "an abandoned copy is removed");
        assert!(store.vacuum().is_ok(), "and the next vacuum works");
    }
}
