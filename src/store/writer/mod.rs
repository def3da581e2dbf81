//! The store writer: one thread that owns every write transaction while the server runs.
//! It takes whatever jobs are waiting, applies them all in one transaction, commits once
//! durably (fsync), and only then tells each job's owner. Many messages arriving together
//! thus share one fsync (group commit) instead of paying one each. A job without changes
//! exists only for its acknowledgement to follow the jobs before it: a batch of such jobs
//! is acknowledged without a transaction. Every commit records redb's allocator state (quick
//! repair, `store::begin_write`), so that opening the file after a crash or power cut loads it
//! instead of reading the whole file: a second fsync per commit, for a start in milliseconds.
//!
//! Between batches (`background.rs`) it adds new messages to the keyword index (`search/index.rs`) in bounded steps:
//! when no job came for `INDEX_IDLE` (synced once a second and at the end), and while jobs keep coming
//! once `INDEX_STEP` messages wait or the oldest has waited `INDEX_LATEST`, then without an
//! fsync of its own (the next batch's fsync makes it durable). Indexing many messages at once
//! writes each index block once for all of them, so idle steps grow while no job comes (a
//! rebuild of a whole file then costs about twice the bulk indexing's CPU instead of three
//! times), and a grown step gives up as soon as a job waits. Once a minute it also forgets remembered
//! `client_id`s that left their window, in small transactions (`Store::prune_sends`).

mod background;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use background::{Indexer, Pruner};

use super::backup::{Copied, Pinned};
use super::vacuum::{self, Vacuum, Vacuumed};
use super::{Change, SendTables, Store, StoreError, apply};
use crate::metrics::CommitStats;
use crate::model::ConvId;
use crate::ratelog::RateLimitedLog;

/// Called once the job's changes are durable (`Ok`) or could not be saved (`Err`).
pub type Done = Box<dyn FnOnce(JobResult) + Send>;

/// How a job fared: saved, or why not (`AlreadySent`: its message was posted before).
pub type JobResult = Result<(), Arc<StoreError>>;

pub struct Job {
    pub changes: Vec<Change>,
    pub done: Done,
}

/// Jobs taken into one transaction at most; bounds the latency a huge burst adds.
const MAX_BATCH: usize = 4096;
/// Jobs waiting before senders have to wait: backpressure instead of unbounded memory.
const QUEUE: usize = 16384;
/// How long the writer waits for a job before it indexes the messages still waiting.
const INDEX_IDLE: Duration = Duration::from_millis(20);

enum Msg {
    Job(Job),
    /// Pin a durable commit for a backup, between two batches (see `backup.rs`).
    Pin(oneshot::Sender<Result<Pinned, StoreError>>),
    /// A step of a vacuum (`vacuum.rs`), between two batches.
    Vacuum(vacuum::Request),
    /// Commit what came before, then stop; later submits fail with `WriterGone`.
    Stop,
    /// Tests only: run up to this many index steps now; answers whether any are left.
    Index(usize, oneshot::Sender<bool>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    store: Store,
    /// Set while commits fail (disk full, I/O error), for the health endpoint.
    failing: Arc<AtomicBool>,
    /// Messages committed and commit times, for `/metrics`.
    stats: Arc<CommitStats>,
}

pub struct WriterThread(JoinHandle<()>);

impl Writer {
    pub fn start(store: Store) -> (Writer, WriterThread) {
        Self::start_with(store, false)
    }

    /// `start`, with `hold_index` (tests only) keeping the writer from indexing in the
    /// background: only `index_steps` does.
    pub fn start_with(store: Store, hold_index: bool) -> (Writer, WriterThread) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        let stats = Arc::new(CommitStats::default());
        let thread_stats = stats.clone();
        let thread_store = store.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(thread_store, rx, flag, thread_stats, hold_index))
            .expect("spawning the store writer thread");
        (Writer { tx, store, failing, stats }, WriterThread(handle))
    }

    /// What the writer counts for `/metrics`.
    pub fn stats(&self) -> &Arc<CommitStats> {
        &self.stats
    }

    /// Jobs (and backup or vacuum steps) waiting for the writer thread.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Whether the last commit failed: nothing new can be saved until that is fixed.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Queues a job; waits only when the queue is full.
    pub async fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(Msg::Job(job)).await.map_err(|_| StoreError::WriterGone)
    }

    /// Queues a job without waiting: when the queue is full (the disk cannot keep up) the
    /// job fails at once with `Busy`, so the caller (the chat core) never waits for the disk.
    pub fn try_submit(&self, job: Job) {
        match self.tx.try_send(Msg::Job(job)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Msg::Job(job))) => {
                // A disk that cannot keep up refuses many jobs: a line a second at most.
                static FULL: RateLimitedLog = RateLimitedLog::new(Duration::from_secs(1));
                FULL.warn(|skipped| {
                    tracing::warn!(
                        queued = QUEUE,
                        refused_since_last_line = skipped,
                        "the store writer's queue is full; refusing changes until it drains"
                    )
                });
                (job.done)(Err(Arc::new(StoreError::Busy)))
            }
            Err(mpsc::error::TrySendError::Closed(Msg::Job(job))) => (job.done)(Err(Arc::new(StoreError::WriterGone))),
            Err(_) => {}
        }
    }

    /// Applies changes and waits for them to be durable.
    pub async fn write(&self, changes: Vec<Change>) -> Result<(), Arc<StoreError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: Done = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.submit(Job { changes, done }).await.map_err(Arc::new)?;
        rx.await.map_err(|_| Arc::new(StoreError::WriterGone))?
    }

    /// Writes a consistent copy of the data file to `dest` (which must not exist) while
    /// writes go on, and checks it (see `backup.rs`).
    pub async fn backup(&self, dest: PathBuf) -> Result<Copied, StoreError> {
        let pinned = self.pin().await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.copy_pinned(pinned, &dest))
            .await
            .map_err(|_| StoreError::Internal("the backup task failed".into()))?
    }

    /// Rewrites the data file from its live tables while writes go on, so that nothing of
    /// deleted or purged messages is left in its bytes (see `vacuum.rs`). Reads never fail
    /// meanwhile, and writes wait only for the replay of those made during the copy.
    pub async fn vacuum(&self) -> Result<Vacuumed, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Vacuum(vacuum::Request::Start(tx))).await.map_err(|_| StoreError::WriterGone)?;
        let snapshot = rx.await.map_err(|_| StoreError::WriterGone)??;
        let (store, queue) = (self.store.clone(), self.tx.clone());
        let (tx, rx) = oneshot::channel();
        // The copy reports to the writer even if this caller is gone, so the writer stops
        // keeping jobs for it; if the writer is gone, the copy's file is removed with it.
        tokio::task::spawn_blocking(move || {
            let drain = || {
                let (tx, rx) = oneshot::channel();
                queue.blocking_send(Msg::Vacuum(vacuum::Request::Drain(tx))).ok()?;
                rx.blocking_recv().ok()
            };
            let copied = store.copy_live(snapshot).and_then(|fresh| vacuum::catch_up(&fresh, drain).map(|()| fresh));
            let _ = queue.blocking_send(Msg::Vacuum(vacuum::Request::Copied(copied, tx)));
        });
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs up to `steps` background index steps now, between two batches, whether or not
    /// the index is held (tests); says whether messages are left to index or purged ones to sweep out of the index.
    #[doc(hidden)]
    pub async fn index_steps(&self, steps: usize) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Index(steps, tx)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }

    /// A durable commit, pinned by the writer thread between two batches.
    pub(crate) async fn pin(&self) -> Result<Pinned, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Pin(tx)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl WriterThread {
    /// Commits every job queued so far, stops the writer and waits for it.
    pub async fn stop(self, writer: Writer) {
        let _ = writer.tx.send(Msg::Stop).await;
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

fn run(store: Store, mut rx: mpsc::Receiver<Msg>, failing: Arc<AtomicBool>, stats: Arc<CommitStats>, hold_index: bool) {
    // Only for waiting on the queue with a timeout.
    let timer = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a timer for the store writer");
    let mut batch: Vec<Job> = Vec::new();
    let mut stopping = false;
    let mut index = Indexer::start(&store, hold_index);
    let mut prune = Pruner::start();
    let mut vacuum = Vacuum::default();
    while !stopping {
        // Wait for a job, but not past the next background step (indexing, pruning).
        let mut wait = if index.has_work() { INDEX_IDLE } else { prune.next.saturating_duration_since(Instant::now()) };
        if vacuum.waiting() {
            wait = wait.min(vacuum::RETRY);
        }
        let first = match timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
            Ok(msg) => msg,
            Err(_) => {
                index.needs_scan |= vacuum.retry(&store, &failing);
                if vacuum.busy() {
                    continue; // background writes would have to be replayed into the copy
                }
                if index.has_work() {
                    index.idle_step(&store, &failing, &|| !rx.is_empty());
                }
                if prune.due() {
                    prune.step(&store, &failing);
                }
                continue;
            }
        };
        match first {
            Some(Msg::Job(job)) => batch.push(job),
            Some(Msg::Pin(reply)) => {
                pin(&store, &mut index, reply);
                continue;
            }
            Some(Msg::Vacuum(request)) => {
                index.needs_scan |= vacuum.handle(&store, request, &failing);
                continue;
            }
            Some(Msg::Index(steps, reply)) => {
                let left = vacuum.busy() || index.run_steps(&store, &failing, steps);
                let _ = reply.send(left);
                continue;
            }
            Some(Msg::Stop) | None => break,
        }
        // A pin asked for meanwhile waits for this batch, so that it includes it.
        let mut pins = Vec::new();
        let mut vacuums = Vec::new();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Pin(reply)) => {
                    pins.push(reply);
                    break;
                }
                Ok(Msg::Vacuum(request)) => {
                    vacuums.push(request);
                    break;
                }
                Ok(Msg::Index(steps, reply)) => {
                    let left = vacuum.busy() || index.run_steps(&store, &failing, steps);
                    let _ = reply.send(left);
                }
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let (changes, dones): (Vec<_>, Vec<_>) = batch.drain(..).map(|job| (job.changes, job.done)).unzip();
        let results = if changes.iter().all(Vec::is_empty) {
            // Jobs without changes only wait for the jobs before them (a DM opened again, a
            // rejoin, a resend answered from memory), and those were taken in earlier batches,
            // committed and reported: acknowledge them without a transaction or an fsync.
            // Nothing was committed, so the indexer's and the health flag's view stays.
            vec![Ok(()); changes.len()]
        } else {
            if failing.load(Ordering::Relaxed) {
                // redb refuses all writes after an I/O error until the file is reopened.
                match store.reopen() {
                    // Index steps that were not synced are gone with the old handle.
                    Ok(()) => index.needs_scan = true,
                    Err(e) => tracing::warn!(error = %e, "could not reopen the data file"),
                }
            }
            let results = commit_batch(&store, &changes, &stats);
            // Only I/O failures need the file reopened; a failed job of any kind is reported.
            failing.store(results.iter().any(|r| r.as_ref().is_err_and(|e| e.is_io())), Ordering::Relaxed);
            let new_messages: Vec<ConvId> = changes
                .iter()
                .zip(&results)
                .filter(|(_, result)| result.is_ok())
                .flat_map(|(job, _)| job.iter())
                .filter_map(|change| match change {
                    Change::PutMessage(conv, ..) => Some(*conv),
                    _ => None,
                })
                .collect();
            stats.messages.fetch_add(new_messages.len() as u64, Ordering::Relaxed);
            let purged = changes
                .iter()
                .zip(&results)
                .any(|(job, result)| result.is_ok() && job.iter().any(|change| matches!(change, Change::PurgeMessages(..))));
            if results.iter().any(Result::is_ok) {
                index.committed(&store, new_messages, purged);
            }
            results
        };
        vacuum.committed(changes, &results);
        // Saved jobs are reported in commit order, then failed ones newest first, so that
        // what the failed jobs changed in memory unwinds in reverse order.
        let (saved, failed): (Vec<_>, Vec<_>) = dones.into_iter().zip(results).partition(|(_, result)| result.is_ok());
        for (done, result) in saved.into_iter().chain(failed.into_iter().rev()) {
            done(result);
        }
        for reply in pins {
            pin(&store, &mut index, reply);
        }
        for request in vacuums {
            index.needs_scan |= vacuum.handle(&store, request, &failing);
        }
        index.needs_scan |= vacuum.retry(&store, &failing);
        if vacuum.busy() {
            continue; // background writes would have to be replayed into the copy
        }
        if index.due() {
            index.step(&store, &failing, false, 1, &|| false); // busy: index now, without an fsync of its own
        }
        if prune.due() {
            prune.step(&store, &failing);
        }
    }
    index.finish(&store);
    tracing::debug!("store writer stopped");
}

/// Pins a durable commit for a backup. Only here, in the one thread that commits, is the
/// commit it makes still the newest when the read transaction starts.
fn pin(store: &Store, index: &mut Indexer, reply: oneshot::Sender<Result<Pinned, StoreError>>) {
    let pinned = guarded("pinning a commit for a backup", || store.pin());
    match &pinned {
        Ok(_) => index.unsynced = false, // the pin's commit was durable
        Err(e) => tracing::warn!(error = %e, "could not start a backup"),
    }
    let _ = reply.send(pinned);
}

/// Runs `work`, turning a panic (a bug) into an error: the jobs concerned are told their
/// changes were not saved, and the writer, with every later write, carries on.
fn guarded<T>(what: &str, work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let cause = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        tracing::error!(cause = cause.as_deref().unwrap_or("?"), "the store writer failed while {what}; nothing of it was saved");
        Err(StoreError::Internal(format!("the store writer failed while {what}")))
    })
}

/// Commits a batch of jobs in one transaction, and says how each job fared. When that fails
/// for a reason other than I/O (a bug, a record that does not decode: something one job
/// brought), each job is committed alone, so one bad job fails only its own sender. After
/// an I/O error every job fails: redb refuses all writes until the file is reopened.
fn commit_batch(store: &Store, jobs: &[Vec<Change>], stats: &CommitStats) -> Vec<JobResult> {
    let started = Instant::now();
    let error = match guarded("committing a batch", || commit(store, jobs)) {
        Ok((results, changes)) => {
            stats.latency.observe(started.elapsed());
            tracing::debug!(jobs = jobs.len(), changes, micros = started.elapsed().as_micros() as u64, "committed");
            return results;
        }
        Err(e) => e,
    };
    let whole_file = error.is_io() || matches!(error, StoreError::Reopening | StoreError::WriterGone);
    if whole_file || jobs.len() == 1 {
        tracing::error!(
            jobs = jobs.len(),
            error = %error,
            "could not save to the data file; nothing of this batch was saved or acknowledged. \
             If the disk is full, free space: the next write reopens the file and retries"
        );
        return vec![Err(Arc::new(error)); jobs.len()];
    }
    tracing::warn!(jobs = jobs.len(), error = %error, "a batch could not be saved; saving its jobs one at a time");
    jobs.iter()
        .enumerate()
        .map(|(i, job)| {
            if job.is_empty() {
                return Ok(()); // nothing to save, and the jobs before it are done (see `run`)
            }
            match guarded("committing a job", || commit(store, std::slice::from_ref(job))) {
                Ok((mut results, _)) => results.pop().unwrap_or(Ok(())),
                Err(e) => {
                    tracing::error!(job = i, changes = job.len(), error = %e, "could not save a job; its sender is told");
                    Err(Arc::new(e))
                }
            }
        })
        .collect()
}

/// Applies jobs in one transaction and commits it: how each job fared (a job whose message
/// was sent before is left out, with `AlreadySent`) and how many changes were applied.
fn commit(store: &Store, jobs: &[Vec<Change>]) -> Result<(Vec<JobResult>, usize), StoreError> {
    let txn = super::begin_write(&*store.db()?)?;
    let mut sends = SendTables::new(&txn);
    let mut results = Vec::with_capacity(jobs.len());
    let mut count = 0;
    for job in jobs {
        if let Some(first) = sends.already_sent(job)? {
            results.push(Err(Arc::new(StoreError::AlreadySent(first))));
            continue;
        }
        for change in job {
            apply(&txn, &mut sends, change)?;
            count += 1;
        }
        results.push(Ok(()));
    }
    drop(sends);
    txn.commit()?;
    Ok((results, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use crate::store::ContentKey;

    /// A job's `done` that sends `label` to `tx`, and whether the job was saved and `also` held
    /// at that moment.
    fn report(
        tx: &std::sync::mpsc::Sender<(&'static str, bool)>,
        label: &'static str,
        also: impl Fn() -> bool + Send + 'static,
    ) -> Done {
        let tx = tx.clone();
        Box::new(move |result| {
            let _ = tx.send((label, result.is_ok() && also()));
        })
    }

    #[tokio::test]
    async fn a_job_without_changes_is_acknowledged_without_a_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (writer, thread) = Writer::start(store.clone());
        // redb has one write transaction at a time: while this one is open, a job that
        // begins one waits for it.
        let held = store.db().unwrap().begin_write().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        writer.try_submit(Job { changes: Vec::new(), done: report(&tx, "empty", || true) });
        // The bound only keeps a writer that does wait from hanging the test.
        let acked = rx.recv_timeout(Duration::from_secs(30));
        drop(held);
        assert_eq!(acked, Ok(("empty", true)), "acknowledged while another write transaction was open");
        thread.stop(writer).await;
    }

    #[tokio::test]
    async fn a_job_without_changes_is_acknowledged_after_the_jobs_before_it_are_saved() {
        use crate::store::records::StatusRecord;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (writer, thread) = Writer::start(store.clone());
        // A pin for a backup commits first, and waits for this transaction: the two jobs
        // below are queued meanwhile, so the writer takes them into one batch.
        let held = store.db().unwrap().begin_write().unwrap();
        let (pin_tx, pin_rx) = oneshot::channel();
        assert!(writer.tx.try_send(Msg::Pin(pin_tx)).is_ok());
        let (tx, rx) = std::sync::mpsc::channel();
        let status = StatusRecord { dnd: false, text: "at lunch".into(), expires: None };
        writer.try_submit(Job { changes: vec![Change::PutStatus(UserId(1), status)], done: report(&tx, "status", || true) });
        let reader = store.clone();
        let saved = move || reader.load().is_ok_and(|snapshot| snapshot.statuses.len() == 1);
        writer.try_submit(Job { changes: Vec::new(), done: report(&tx, "empty", saved) });
        drop(held);
        assert!(pin_rx.await.is_ok_and(|pinned| pinned.is_ok()));
        let acks: Vec<(&str, bool)> = (0..2).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(acks, [("status", true), ("empty", true)], "the empty job's ack comes after the status is in the file");
        // Without a pin the writer may take the two together or one at a time: the same.
        let status = StatusRecord { dnd: true, text: "in a meeting".into(), expires: None };
        writer
            .try_submit(Job { changes: vec![Change::PutStatus(UserId(2), status)], done: report(&tx, "second status", || true) });
        let reader = store.clone();
        let saved = move || reader.load().is_ok_and(|snapshot| snapshot.statuses.len() == 2);
        writer.try_submit(Job { changes: Vec::new(), done: report(&tx, "empty", saved) });
        let acks: Vec<(&str, bool)> = (0..2).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(acks, [("second status", true), ("empty", true)]);
        thread.stop(writer).await;
    }

    #[test]
    fn a_panic_while_writing_becomes_an_error_and_the_writer_goes_on() {
        let failed = guarded("testing", || -> Result<(), StoreError> { panic!("a bug") });
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        assert_eq!(guarded("testing", || Ok(7)).unwrap(), 7);
    }

    #[tokio::test]
    async fn the_sweep_of_a_purge_goes_on_while_new_messages_keep_coming() {
        use crate::model::Seq;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (writer, thread) = Writer::start_with(store.clone(), true);
        let put = |conv: u64, seq: u64| {
            let mut record = crate::store::tests::message(1, &[]);
            (record.text, record.rev) = (format!("lunch n{seq}"), seq);
            Change::PutMessage(ConvId(conv), Seq(seq), record)
        };
        writer.write((1..=10).map(|seq| put(1, seq)).collect()).await.unwrap();
        while writer.index_steps(1).await.unwrap() {}
        writer.write(vec![Change::PurgeMessages(ConvId(1), (1..=5).map(Seq).collect())]).await.unwrap();
        assert!(store.sweep_pending().unwrap());
        // Steady chat elsewhere: a new message to index before every step.
        for seq in 1..=4 {
            writer.write(vec![put(2, seq)]).await.unwrap();
            writer.index_steps(1).await.unwrap();
        }
        assert!(!store.sweep_pending().unwrap(), "the sweep had its turns");
        thread.stop(writer).await;
    }

    /// Waits (at most a minute) until the writer swept everything queued; false if it never did.
    async fn swept(store: &Store) -> bool {
        for _ in 0..6000 {
            if !store.sweep_pending().unwrap() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_sweeps_a_purge_on_its_own_when_idle_and_under_steady_chat() {
        use crate::model::Seq;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (writer, thread) = Writer::start(store.clone());
        let put = |conv: u64, seq: u64| {
            let mut record = crate::store::tests::message(1, &[]);
            (record.text, record.rev) = (format!("lunch n{seq}"), seq);
            Change::PutMessage(ConvId(conv), Seq(seq), record)
        };
        writer.write((1..=2000).map(|seq| put(1, seq)).collect()).await.unwrap();
        let indexed = |store: &Store| store.unindexed().unwrap().is_empty();
        while !indexed(&store) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Idle: nothing but the purge.
        writer.write(vec![Change::PurgeMessages(ConvId(1), (1..=1000).map(Seq).collect())]).await.unwrap();
        assert!(swept(&store).await, "an idle writer sweeps the purge");
        // A write every 2 ms never leaves the writer idle for a step.
        writer.write(vec![Change::PurgeMessages(ConvId(1), (1001..=1500).map(Seq).collect())]).await.unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let chat = tokio::spawn({
            let (writer, stop) = (writer.clone(), stop.clone());
            async move {
                let mut seq = 1;
                while !stop.load(Ordering::Relaxed) {
                    writer.write(vec![put(2, seq)]).await.unwrap();
                    seq += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        let done = swept(&store).await;
        stop.store(true, Ordering::Relaxed);
        chat.await.unwrap();
        assert!(done, "a writer that is never idle sweeps the purge too");
        thread.stop(writer).await;
    }

    #[test]
    fn a_message_whose_client_id_was_sent_before_is_not_posted_again() {
        use crate::model::Seq;
        use crate::store::records::MessageRecord;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let message = |client_id: &str, conv: u64, seq: u64| {
            let record = MessageRecord {
                author: UserId(2),
                text: "deploy done".into(),
                ts: 7,
                edited_ts: None,
                deleted: false,
                mentions: Vec::new(),
                client_id: Some(client_id.into()),
                rev: seq,
                system: None,
                attachments: Vec::new(),
                reply_to: None,
            };
            vec![Change::PutMessage(ConvId(conv), Seq(seq), record)]
        };
        assert!(commit_batch(&store, &[message("d-1", 1, 1)], &CommitStats::default())[0].is_ok());
        // After a restart: a resend of d-1, a new d-2, d-2 again in the same batch, and d-1
        // in another conversation (a client_id belongs to its conversation).
        let jobs = [message("d-1", 1, 2), message("d-2", 1, 3), message("d-2", 1, 4), message("d-1", 2, 1)];
        let results = commit_batch(&store, &jobs, &CommitStats::default());
        let first = |i: usize| match &results[i] {
            Err(e) => match &**e {
                StoreError::AlreadySent(first) => Some(first.seq),
                _ => None,
            },
            Ok(()) => None,
        };
        assert_eq!((first(0), first(2)), (Some(Seq(1)), Some(Seq(3))), "resends name the first send: {results:?}");
        assert!(results[1].is_ok() && results[3].is_ok(), "new messages are saved: {results:?}");
        assert!(store.message(&ContentKey(()), ConvId(1), Seq(2)).unwrap().is_none(), "the resend was not posted");
        assert!(store.message(&ContentKey(()), ConvId(1), Seq(4)).unwrap().is_none(), "nor the one in the same batch");
        assert!(store.message(&ContentKey(()), ConvId(2), Seq(1)).unwrap().is_some());
    }

    #[test]
    fn one_bad_job_in_a_batch_fails_only_itself_and_the_good_ones_are_saved() {
        use crate::store::records::StatusRecord;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let status = |text: &str| StatusRecord { dnd: false, text: text.into(), expires: None };
        let jobs = vec![
            vec![Change::PutStatus(UserId(1), status("before the bad one"))],
            vec![Change::PutStatus(UserId(2), status("in the bad job")), Change::FailForTest],
            vec![Change::PutStatus(UserId(3), status("after the bad one"))],
        ];
        let results = commit_batch(&store, &jobs, &CommitStats::default());
        assert!(results[0].is_ok() && results[2].is_ok(), "the good jobs are saved: {results:?}");
        assert!(results[1].as_ref().is_err_and(|e| matches!(**e, StoreError::Internal(_))), "the bad job fails: {results:?}");
        let saved: Vec<UserId> = store.load().unwrap().statuses.into_iter().map(|(user, _)| user).collect();
        assert_eq!(saved, [UserId(1), UserId(3)], "nothing of the bad job reached the file, all of the good ones did");
    }
}
