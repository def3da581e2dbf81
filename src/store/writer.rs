//! The store writer: one thread that owns every write transaction while the server runs.
//! It takes whatever jobs are waiting, applies them all in one transaction, commits once
//! durably (fsync), and only then tells each job's owner. Many messages arriving together
//! thus share one fsync (group commit) instead of paying one each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::{Change, Store, StoreError, apply};

/// Called once the job's changes are durable (`Ok`) or could not be saved (`Err`).
pub type Done = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

pub struct Job {
    pub changes: Vec<Change>,
    pub done: Done,
}

/// Jobs taken into one transaction at most; bounds the latency a huge burst adds.
const MAX_BATCH: usize = 4096;
/// Jobs waiting before senders have to wait: backpressure instead of unbounded memory.
const QUEUE: usize = 16384;

enum Msg {
    Job(Job),
    /// Commit what came before, then stop; later submits fail with `WriterGone`.
    Stop,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    /// Set while commits fail (disk full, I/O error), for the health endpoint.
    failing: Arc<AtomicBool>,
}

pub struct WriterThread(JoinHandle<()>);

impl Writer {
    pub fn start(store: Store) -> (Writer, WriterThread) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx, flag))
            .expect("spawning the store writer thread");
        (Writer { tx, failing }, WriterThread(handle))
    }

    /// Whether the last commit failed: nothing new can be saved until that is fixed.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Queues a job; waits only when the queue is full.
    pub async fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(Msg::Job(job)).await.map_err(|_| StoreError::WriterGone)
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
}

impl WriterThread {
    /// Commits every job queued so far, stops the writer and waits for it.
    pub async fn stop(self, writer: Writer) {
        let _ = writer.tx.send(Msg::Stop).await;
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

fn run(store: Store, mut rx: mpsc::Receiver<Msg>, failing: Arc<AtomicBool>) {
    let mut batch: Vec<Job> = Vec::new();
    let mut stopping = false;
    while !stopping {
        match rx.blocking_recv() {
            Some(Msg::Job(job)) => batch.push(job),
            Some(Msg::Stop) | None => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let (changes, dones): (Vec<_>, Vec<_>) = batch.drain(..).map(|job| (job.changes, job.done)).unzip();
        if failing.load(Ordering::Relaxed) {
            // redb refuses all writes after an I/O error until the file is reopened.
            if let Err(e) = store.reopen() {
                tracing::warn!(error = %e, "could not reopen the data file");
            }
        }
        let result = commit(&store, changes);
        match &result {
            Ok(changes) => {
                tracing::debug!(jobs = dones.len(), changes, micros = started.elapsed().as_micros() as u64, "committed")
            }
            Err(e) => tracing::error!(
                jobs = dones.len(),
                error = %e,
                "could not save to the data file; nothing of this batch was saved or acknowledged. \
                 If the disk is full, free space: the next write reopens the file and retries"
            ),
        }
        // Only I/O failures need the file reopened; a failed batch of any kind is reported.
        failing.store(result.as_ref().is_err_and(StoreError::is_io), Ordering::Relaxed);
        let result = result.map(|_| ()).map_err(Arc::new);
        // A failed batch is reported newest job first, so that what the jobs changed in
        // memory unwinds in reverse order.
        let dones: Box<dyn Iterator<Item = Done>> =
            if result.is_ok() { Box::new(dones.into_iter()) } else { Box::new(dones.into_iter().rev()) };
        for done in dones {
            done(result.clone());
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit(store: &Store, jobs: Vec<Vec<Change>>) -> Result<usize, StoreError> {
    let txn = store.db()?.begin_write()?;
    let mut count = 0;
    for changes in jobs {
        for change in changes {
            apply(&txn, change)?;
            count += 1;
        }
    }
    txn.commit()?;
    Ok(count)
}
