//! A consistent copy of the data file, made while it is in use, at the speed of copying the
//! file.
//!
//! redb never writes over a page that a live read transaction can still reach (copy on write,
//! and freed pages wait for their last reader). So the store writer, between two batches,
//! commits durably and at once opens a read transaction on that commit (`Store::pin`), and
//! saves the file's first page, redb's header, which now names that commit. Then, while the
//! writer carries on, the file is copied as bytes (`copy_file_range`: in the kernel, like
//! `cp`), and the saved header is written over the copy's first page. Every page of the
//! pinned commit is the same in the copy as it was at the commit; every other page is
//! unreachable from it.
//!
//! The pin must be on a commit that is both durable and the newest. A non-durable commit on
//! top (an index step) would let the next durable commit free pages of the one the header
//! names. Only the writer thread commits, so it pins between batches (`writer.rs`).
//!
//! The pin is released as soon as the bytes are copied. It keeps `Store::reopen` waiting,
//! since a new handle would know nothing of it.
//!
//! The copy is not trusted: it is opened with redb's integrity check, which verifies the
//! checksum of every page the commit reaches and rebuilds the allocator state, and each table
//! must hold as many entries as in the pinned snapshot. Only then is it linked into place
//! (never over an existing file), so a backup file that exists is whole; it is readable by
//! its owner only. On a file system with reflinks (btrfs, XFS) `copy_file_range` may share
//! the live file's blocks instead of copying them. The admin page, `hallway backup` and
//! scheduled backups (`backups.rs`) build on `Writer::backup`.
//!
//! The page copy depends on redb's header layout, which a later redb may change. When the
//! header is not the one this file knows, the backup is a logical copy instead
//! (`vacuum::copy_tables`: every table from the pinned snapshot into a new file, a few times
//! slower), checked the same way, so backups keep working after a redb upgrade. Tests force
//! that path with the environment variable `HALLWAY_TEST_REFUSE_PAGE_COPY=1` (for tests
//! only: it makes every backup slower).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, TableHandle};

use super::{Store, StoreError};

/// redb keeps its header, with both commit slots, in the file's first page.
const HEADER_BYTES: usize = 4096;

/// Space left free beside a backup, so that chat can go on on the same disk.
const BACKUP_HEADROOM: u64 = 64 * 1024 * 1024;

/// What the backup needs to know of redb's header (redb 4, `tree_store/page_store/header.rs`):
/// a magic number, then a god byte whose lowest bit names the primary of two commit slots.
/// A slot holds flags, the user tree's root, the system tree's root and the transaction id,
/// then an XXH3-128 checksum of what precedes it.
const MAGIC: &[u8] = b"redb\x1A\x0A\xA9\x0D\x0A";
const GOD_BYTE: usize = 9;
const PAGE_SIZE: std::ops::Range<usize> = 12..16;
/// redb's file format 3, which the offsets below describe; a slot's first byte.
const FORMAT: u8 = 3;
const PRIMARY_BIT: u8 = 1;
const RECOVERY_REQUIRED: u8 = 2;
const SLOTS: [usize; 2] = [64, 192];
const SLOT_BYTES: usize = 128;
const SYSTEM_ROOT_PRESENT: usize = 2;
const SYSTEM_ROOT: std::ops::Range<usize> = 40..72;
const SLOT_CHECKSUM: usize = SLOT_BYTES - 16;

/// How a backup was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// The file's pages as bytes, under the header of the pinned commit.
    #[default]
    Pages,
    /// Every table copied entry by entry (the header was not in a format this build knows).
    Tables,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pages => "pages",
            Method::Tables => "tables",
        }
    }
}

/// The environment variable that makes every backup a logical copy, for tests of that path.
pub const REFUSE_PAGE_COPY_ENV: &str = "HALLWAY_TEST_REFUSE_PAGE_COPY";

/// What a backup copied.
#[derive(Debug, Default)]
pub struct Copied {
    pub method: Method,
    /// Entries in all tables, each checked in the copy.
    pub entries: u64,
    /// Size of the backup file.
    pub bytes: u64,
    /// Time taken to copy the file and sync the copy, then to check it.
    pub copying: Duration,
    pub checking: Duration,
}

/// A durable commit held still by a read transaction, with the header that names it (none:
/// the header's format is unknown, so the tables are copied) and the entry count of each of
/// its tables.
pub struct Pinned {
    snapshot: ReadTransaction,
    /// Counted in `Inner::pins`, so that `Store::reopen` waits for a page copy (a logical
    /// copy reads through its transaction and needs no such care).
    counted: Option<PinCount>,
    header: Option<Vec<u8>>,
    len: u64,
    counts: BTreeMap<String, u64>,
}

struct PinCount(Store);

impl Drop for PinCount {
    fn drop(&mut self) {
        self.0.inner.pins.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A backup being written to `dest`: no other may write the same file meanwhile, and its
/// partial file is removed when it ends, however it ends.
struct InProgress<'a> {
    store: &'a Store,
    dest: PathBuf,
    partial: PathBuf,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.partial);
        self.store.inner.backups.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.dest);
    }
}

impl Store {
    /// Commits durably and pins that commit. Correct only if nothing else commits in between:
    /// the store writer calls it between batches (`Writer::backup`).
    pub(crate) fn pin(&self) -> Result<Pinned, StoreError> {
        let db = self.db()?;
        super::begin_write(&db)?.commit()?;
        let file = File::open(&self.inner.path).map_err(|e| backup_error("reading the data file", e))?;
        let len = file.metadata().map_err(|e| backup_error("reading the data file", e))?.len();
        let mut header = vec![0; HEADER_BYTES];
        file.read_exact_at(&mut header, 0).map_err(|e| backup_error("reading the data file's header", e))?;
        let known = if self.inner.refuse_page_copy.load(Ordering::Relaxed) {
            Err(StoreError::Backup("the page copy is refused for a test".into()))
        } else {
            backup_header(&mut header)
        };
        let (header, counted) = match known {
            Ok(()) => {
                self.inner.pins.fetch_add(1, Ordering::SeqCst);
                (Some(header), Some(PinCount(self.clone())))
            }
            Err(e) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(
                    || tracing::warn!(reason = %e, "backups copy the tables one by one (slower) instead of the file's pages"),
                );
                (None, None)
            }
        };
        let snapshot = db.begin_read()?;
        let counts = table_counts(&snapshot)?;
        Ok(Pinned { snapshot, counted, header, len, counts })
    }

    /// Copies the pinned commit into `dest`, which must not exist, and checks the copy.
    pub(crate) fn copy_pinned(&self, pinned: Pinned, dest: &Path) -> Result<Copied, StoreError> {
        let exists = || StoreError::Backup(format!("{} exists; choose a new name", dest.display()));
        if dest.exists() {
            return Err(exists());
        }
        if !self.inner.backups.lock().unwrap_or_else(|e| e.into_inner()).insert(dest.to_path_buf()) {
            return Err(StoreError::Backup(format!("a backup to {} is being written already", dest.display())));
        }
        let partial = PathBuf::from(format!("{}.partial", dest.display()));
        // Left by an interrupted backup, if any: none to this name is running.
        let _ = std::fs::remove_file(&partial);
        let in_progress = InProgress { store: self, dest: dest.to_path_buf(), partial };
        // A backup must not fill the disk that the data file, maybe on the same disk, grows on.
        let needed = pinned.len + BACKUP_HEADROOM;
        if let Some(free) = super::free_bytes(dest).filter(|&free| free < needed) {
            return Err(StoreError::Backup(format!(
                "not enough space for the backup: it needs {} MiB and {} MiB are free",
                needed >> 20,
                free >> 20
            )));
        }
        let mut copied = self.copy_and_check(pinned, &in_progress.partial)?;
        // A link, unlike a rename, never replaces a file that appeared meanwhile.
        std::fs::hard_link(&in_progress.partial, dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => exists(),
            _ => backup_error("putting the finished copy in place", e),
        })?;
        drop(in_progress);
        let dir = folder_of(dest);
        // The new name survives a power loss only once the folder is synced.
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(error = %e, "the backup is complete, but its folder could not be synced");
        }
        copied.bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(copied)
    }

    fn copy_and_check(&self, pinned: Pinned, partial: &Path) -> Result<Copied, StoreError> {
        let started = Instant::now();
        let Pinned { snapshot, counted, header, len, counts } = pinned;
        let Some(header) = header else {
            let copied = super::vacuum::copy_tables(&snapshot, partial).map_err(|e| match e {
                StoreError::Vacuum(why) => StoreError::Backup(why),
                other => other,
            });
            drop(snapshot);
            // The copy by tables leaves out the index entries of purged messages (and so
            // starts with an empty sweep queue): it must hold what was written.
            let (db, written) = copied?;
            drop(db); // closed before the check opens it again
            let copying = started.elapsed();
            let entries = check(&written, partial)?;
            return Ok(Copied { method: Method::Tables, entries, bytes: 0, copying, checking: started.elapsed() - copying });
        };
        let source = File::open(&self.inner.path).map_err(|e| backup_error("reading the data file", e))?;
        // Only its owner may read it: it holds password and session hashes.
        let out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(partial)
            .map_err(|e| backup_error(&format!("creating the backup in {}", folder_of(partial).display()), e))?;
        copy_in_steps(&source, &out, len).map_err(|e| backup_error("copying the data file", e))?;
        // Copied: the live file may reuse the pinned pages again.
        drop((snapshot, counted));
        // The file may have shrunk meanwhile (free pages at its end); the pinned pages did not.
        out.set_len(len).map_err(|e| backup_error("copying the data file", e))?;
        out.write_all_at(&header, 0).map_err(|e| backup_error("writing the backup's header", e))?;
        #[cfg(test)]
        tests::maybe_damage(&out, partial, len);
        out.sync_all().map_err(|e| backup_error("syncing the backup file", e))?;
        drop(out);
        let copying = started.elapsed();
        let entries = check(&counts, partial)?;
        Ok(Copied { method: Method::Pages, entries, bytes: 0, copying, checking: started.elapsed() - copying })
    }
}

/// Bytes of the copy written back to the disk at a time.
const WRITE_BACK_STEP: u64 = 32 * 1024 * 1024;

/// Copies the first `len` bytes of `source` to `out`, from and to their current positions,
/// with copy_file_range (as `cp`: the bytes never leave the kernel), and has each step
/// written to the disk before the next. Chat's commits fsync the data file meanwhile, and on
/// ext4 a commit's journal may have to write other files' dirty data first: left to itself
/// the kernel would hold gigabytes of the copy dirty, and a commit could wait for them all.
fn copy_in_steps(source: &File, out: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut done = 0;
    while done < len {
        let step = WRITE_BACK_STEP.min(len - done);
        let copied = std::io::copy(&mut std::io::Read::take(source, step), &mut &*out)?;
        if copied == 0 {
            break; // the file is shorter now; the pinned pages are all below its end
        }
        // SAFETY: a system call on a file descriptor we hold open, over a range we wrote.
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        if unsafe { libc::sync_file_range(out.as_raw_fd(), done as i64, copied as i64, flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        done += copied;
    }
    Ok(())
}

/// Every table's entry count.
pub(crate) fn table_counts(txn: &ReadTransaction) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for handle in txn.list_tables()? {
        let len = txn.open_untyped_table(handle.clone())?.len()?;
        counts.insert(handle.name().to_string(), len);
    }
    Ok(counts)
}

/// Opens the copy with redb's integrity check: the checksum of every page the commit reaches
/// (a torn or stale page fails it), the allocator state rebuilt, then a clean close. Every
/// table must then hold `counts` entries: as many as the pinned snapshot did for a copy of
/// its pages, which catches a header naming another commit than the one pinned; as many as
/// were written for a copy by tables.
fn check(counts: &BTreeMap<String, u64>, copy: &Path) -> Result<u64, StoreError> {
    let db = Database::builder()
        .set_check_integrity_on_open(true)
        // Each page is read once per pass; a cache would only cost copying.
        .set_cache_size(1024 * 1024)
        .open(copy)
        .map_err(|e| StoreError::Backup(format!("the copy does not check out, so it was deleted: {e}")))?;
    let found = table_counts(&db.begin_read()?)?;
    if &found != counts {
        return Err(StoreError::Backup(format!(
            "the copy's tables do not hold what the data file's did ({found:?} instead of {counts:?}), so it was deleted"
        )));
    }
    db.close().map_err(redb::Error::from)?;
    Ok(counts.values().sum())
}

/// Turns the header of the pinned commit into the backup's: both slots name the pinned commit
/// with its user tree (every table of ours) and without its system tree.
///
/// The system tree holds redb's own records of freed and allocated pages, and a read
/// transaction does not keep it from being overwritten; the copy's would not check out. The
/// copy needs none of it: the integrity check at its first open marks every page the tables
/// reach as used and the rest as free. Recovery is marked required, so any open does that.
fn backup_header(header: &mut [u8]) -> Result<(), StoreError> {
    let unknown = || StoreError::Backup("the data file's header is not in the format this build knows".into());
    if !header.starts_with(MAGIC) || header[PAGE_SIZE] != (HEADER_BYTES as u32).to_le_bytes() {
        return Err(unknown());
    }
    let god = header[GOD_BYTE];
    let primary = SLOTS[usize::from(god & PRIMARY_BIT)];
    let mut slot = header[primary..primary + SLOT_BYTES].to_vec();
    if slot[0] != FORMAT || slot[SLOT_CHECKSUM..] != checksum(&slot[..SLOT_CHECKSUM]) {
        return Err(unknown());
    }
    slot[SYSTEM_ROOT_PRESENT] = 0;
    slot[SYSTEM_ROOT].fill(0);
    let sum = checksum(&slot[..SLOT_CHECKSUM]);
    slot[SLOT_CHECKSUM..].copy_from_slice(&sum);
    for at in SLOTS {
        header[at..at + SLOT_BYTES].copy_from_slice(&slot);
    }
    // No other flag of the live file's (two-phase commit, an unflushed primary) applies.
    header[GOD_BYTE] = (god & PRIMARY_BIT) | RECOVERY_REQUIRED;
    Ok(())
}

fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn checksum(bytes: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128_with_seed(bytes, 0).to_le_bytes()
}

fn backup_error(what: &str, e: std::io::Error) -> StoreError {
    match e.kind() {
        std::io::ErrorKind::StorageFull => StoreError::Backup(format!("{what}: the disk is full")),
        std::io::ErrorKind::PermissionDenied => {
            // SAFETY: a plain system call without arguments.
            let uid = unsafe { libc::geteuid() };
            StoreError::Backup(format!(
                "{what}: permission denied (the backup is written by the account hallway runs as, uid {uid}: \
                 choose a folder it may write to)"
            ))
        }
        std::io::ErrorKind::NotFound => StoreError::Backup(format!("{what}: the folder does not exist")),
        _ => StoreError::Backup(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConvId, Seq, UserId};
    use crate::store::records::MessageRecord;
    use crate::store::writer::Writer;
    use crate::store::{Change, ContentKey};

    fn message(text: &str) -> MessageRecord {
        MessageRecord::new(UserId(1), text.into(), 1, 0)
    }

    /// Partial files that a test wants damaged before they are checked.
    static DAMAGE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

    /// Flips a byte in the middle of every page but the header, if a test asked for it.
    pub(super) fn maybe_damage(out: &File, partial: &Path, len: u64) {
        let mut damage = DAMAGE.lock().unwrap();
        let Some(at) = damage.iter().position(|p| p == partial) else { return };
        damage.remove(at);
        for page in 1..len / HEADER_BYTES as u64 {
            let offset = page * HEADER_BYTES as u64 + 2048;
            let mut byte = [0];
            out.read_exact_at(&mut byte, offset).unwrap();
            out.write_all_at(&[byte[0] ^ 0xFF], offset).unwrap();
        }
    }

    fn put(conv: u64, seq: u64, text: &str) -> Change {
        Change::PutMessage(ConvId(conv), Seq(seq), message(text))
    }

    fn search(store: &Store, conv: u64, word: &str) -> usize {
        let terms = [crate::store::search::Term::Word(word.into())];
        let page = crate::store::search::Page { before: None, since: None, offset: 0, limit: 100 };
        store.search(&ContentKey(()), &[ConvId(conv)], &terms, &page).unwrap().results.len()
    }

    /// If the copy caught a page the writer reused, the restored history would be wrong or
    /// the file would not open: this writes over everything the pinned commit holds before
    /// the copy starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_holds_the_moment_it_was_pinned_however_much_is_rewritten_before_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let (writer, thread) = Writer::start(store.clone());
        for first in (1..=3_000u64).step_by(100) {
            writer.write((first..first + 100).map(|seq| put(1, seq, &format!("before {seq}"))).collect()).await.unwrap();
        }
        let pinned = writer.pin().await.unwrap();

        // Every message rewritten, every other one deleted, a second conversation as big,
        // with the background indexing going on between the batches.
        for first in (1..=3_000u64).step_by(100) {
            let mut changes = Vec::new();
            for seq in first..first + 100 {
                let mut record = message(&format!("rewritten {seq}"));
                record.deleted = seq % 2 == 0;
                changes.push(Change::PutMessage(ConvId(1), Seq(seq), record));
                changes.push(put(2, seq, &format!("later {seq} {}", "padding ".repeat(20))));
            }
            writer.write(changes).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(25)).await; // idle: an index step
        }
        let dest = dir.path().join("backup.redb");
        let copied = tokio::task::spawn_blocking({
            let (store, dest) = (store.clone(), dest.clone());
            move || store.copy_pinned(pinned, &dest)
        })
        .await
        .unwrap()
        .unwrap();
        thread.stop(writer).await;
        assert!(copied.entries > 3_000, "{copied:?}");

        let copy = Store::open(&dest).unwrap();
        let (messages, more) = copy.messages_before(&ContentKey(()), ConvId(1), Seq(u64::MAX), 5_000).unwrap();
        assert!(!more);
        let texts: Vec<String> = messages.iter().map(|(seq, m)| format!("{} {} {}", seq.0, m.text, m.deleted)).collect();
        let expected: Vec<String> = (1..=3_000u64).map(|seq| format!("{seq} before {seq} false")).collect();
        assert_eq!(texts, expected, "the backup holds conversation 1 as it was when pinned");
        assert!(
            copy.messages_before(&ContentKey(()), ConvId(2), Seq(u64::MAX), 1).unwrap().0.is_empty(),
            "nothing written after the pin"
        );
        assert_eq!(search(&copy, 1, "before"), 100, "the backup searches like the original did");
        assert_eq!(search(&copy, 1, "rewritten"), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_made_while_messages_keep_coming_is_whole_and_never_overwrites() {
        backups_while_messages_keep_coming(Method::Pages).await
    }

    /// The fallback for a redb whose header this build does not know.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_logical_backup_made_while_messages_keep_coming_is_whole_too() {
        backups_while_messages_keep_coming(Method::Tables).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_logical_backup_of_a_file_whose_purge_is_not_swept_yet_checks_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        store.inner.refuse_page_copy.store(true, Ordering::Relaxed);
        let (writer, thread) = Writer::start_with(store.clone(), true);
        writer.write((1..=300u64).map(|seq| put(1, seq, &format!("note {seq}"))).collect()).await.unwrap();
        while writer.index_steps(10).await.unwrap() {}
        writer.write(vec![Change::PurgeMessages(ConvId(1), (1..=200).map(Seq).collect())]).await.unwrap();
        assert!(store.sweep_pending().unwrap(), "the sweep is held: dead entries and their queue are in the file");
        let dest = dir.path().join("backup.redb");
        assert_eq!(writer.backup(dest.clone()).await.unwrap().method, Method::Tables);
        thread.stop(writer).await;
        let copy = Store::open(&dest).unwrap();
        assert!(!copy.sweep_pending().unwrap(), "the copy left the dead entries out, and their queue");
        assert_eq!(search(&copy, 1, "250"), 1);
        assert_eq!(search(&copy, 1, "150"), 0);
    }

    async fn backups_while_messages_keep_coming(method: Method) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        store.inner.refuse_page_copy.store(method == Method::Tables, Ordering::Relaxed);
        let (writer, thread) = Writer::start(store.clone());
        writer.write((1..=5_000u64).map(|seq| put(1, seq, &format!("note {seq}"))).collect()).await.unwrap();
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(5_000));
        let chat = tokio::spawn({
            let (writer, acked) = (writer.clone(), acked.clone());
            async move {
                for seq in 5_001..=7_000u64 {
                    writer.write(vec![put(1, seq, &format!("note {seq}"))]).await.unwrap();
                    acked.store(seq, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });

        let mut backups = Vec::new();
        for n in 0..5 {
            let before = acked.load(std::sync::atomic::Ordering::SeqCst);
            let dest = dir.path().join(format!("backup-{n}.redb"));
            assert_eq!(writer.backup(dest.clone()).await.unwrap().method, method);
            assert!(!dir.path().join(format!("backup-{n}.redb.partial")).exists(), "the partial file became the backup");
            backups.push((dest, before));
        }
        chat.await.unwrap();
        let again = writer.backup(backups[0].0.clone()).await;
        assert!(matches!(again, Err(StoreError::Backup(_))), "an existing file is never overwritten: {again:?}");
        thread.stop(writer).await;

        for (dest, before) in backups {
            let copy = Store::open(&dest).unwrap();
            let (messages, _) = copy.messages_before(&ContentKey(()), ConvId(1), Seq(u64::MAX), 10_000).unwrap();
            let newest = messages.last().unwrap().0.0;
            assert!(newest >= before, "every message acked before the backup began is in it ({newest} < {before})");
            assert_eq!(messages.len() as u64, newest, "and every one before the newest, none missing");
            assert!(messages.iter().all(|(seq, m)| m.text == format!("note {}", seq.0)));
            assert_eq!(search(&copy, 1, "4321"), 1, "the search index came along");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_that_does_not_check_out_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let (writer, thread) = Writer::start(store.clone());
        writer.write((1..=1_000u64).map(|seq| put(1, seq, &format!("note {seq}"))).collect()).await.unwrap();
        let dest = dir.path().join("backup.redb");
        let partial = dir.path().join("backup.redb.partial");
        DAMAGE.lock().unwrap().push(partial.clone());
        let refused = writer.backup(dest.clone()).await;
        assert!(
            matches!(&refused, Err(StoreError::Backup(why)) if why.contains("does not check out")),
            "a damaged copy is refused: {refused:?}"
        );
        assert!(!dest.exists() && !partial.exists(), "nothing of it is left");

        let copied = writer.backup(dest.clone()).await.unwrap();
        assert_eq!(copied.bytes, std::fs::metadata(&dest).unwrap().len(), "the next backup to that name works");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner may read a backup: it holds password hashes");

        // Two backups to one name at once: one is written, the other is refused.
        let other = dir.path().join("twice.redb");
        let (a, b) = tokio::join!(writer.backup(other.clone()), writer.backup(other.clone()));
        assert!(a.is_ok() != b.is_ok(), "exactly one of two backups to one name is written: {a:?} {b:?}");
        let refused = if a.is_ok() { b } else { a };
        assert!(matches!(refused, Err(StoreError::Backup(_))), "{refused:?}");
        thread.stop(writer).await;
    }
}
