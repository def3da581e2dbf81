//! The writer's work between batches: keeping the keyword index in bounded steps
//! (`Indexer`: adding new messages, then sweeping out purged ones' entries), and forgetting
//! remembered `client_id`s past their window (`Pruner`). Both run on the writer thread, so
//! they never race a batch.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{commit, guarded};
use crate::model::{ConvId, UserId, now_millis};
use crate::store::search::INDEX_STEP;
use crate::store::{Store, StoreError};

/// How long new messages wait for the index at most while jobs keep coming.
const INDEX_LATEST: Duration = Duration::from_secs(1);
/// How often idle steps are synced. Each fsync writes out every block the steps since the
/// last one touched, megabytes a step on a big index; unsynced steps rewrite the same pages.
const INDEX_SYNC_EVERY: Duration = Duration::from_secs(1);
/// How many times the busy step's budget an idle step may take: each step rewrites a block
/// per term it touches, so a rebuild in small steps costs several times the CPU of the bulk
/// one. Idle steps grow (doubling) while no job comes, up to this, and shrink again while one
/// takes longer than `IDLE_STEP_TIME`. A job that arrives during a grown step makes it give
/// up (nothing written: the job waits a few milliseconds at most), and the next idle step is
/// of the busy size, which is never given up, as before.
const IDLE_SCALE_MAX: usize = 32;
const IDLE_STEP_TIME: Duration = Duration::from_millis(250);
/// How often the writer forgets remembered `client_id`s that left their window, and how
/// many at most in one (short) transaction.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_STEP: usize = 1000;
/// The sweep of a purge waits until purges have been quiet this long: a big purge comes in
/// batches 20 ms apart, sweeping between them slowed every batch (benches/README.md), and
/// the vacuum after a big purge (at most daily) drops the dead entries wholesale anyway.
const SWEEP_QUIET: Duration = Duration::from_secs(2);
/// Sweep steps are at least this far apart: each writes about a page per term and is synced,
/// so a long queue takes a small share of the writer.
const SWEEP_PACE: Duration = Duration::from_millis(100);

/// The writer's forgetting of remembered sends that left their window (`Store::prune_sends`):
/// a step every `PRUNE_EVERY`, and while a backlog lasts one after every batch or idle moment.
pub(super) struct Pruner {
    pub(super) next: Instant,
    /// Where the last step ran out of its budget.
    resume: UserId,
}

impl Pruner {
    pub(super) fn start() -> Pruner {
        Pruner { next: Instant::now() + PRUNE_EVERY, resume: UserId(0) }
    }

    pub(super) fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    pub(super) fn step(&mut self, store: &Store, failing: &AtomicBool) {
        self.next = Instant::now() + PRUNE_EVERY;
        if failing.load(Ordering::Relaxed) {
            return; // the next batch reopens the file first
        }
        match guarded("forgetting old client_ids", || store.prune_sends(now_millis(), self.resume, PRUNE_STEP)) {
            Ok(pruned) => {
                if pruned.removed > 0 {
                    tracing::debug!(removed = pruned.removed, "forgot client_ids past their window");
                }
                match pruned.resume {
                    Some(user) => (self.resume, self.next) = (user, Instant::now()),
                    None => self.resume = UserId(0),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not forget old client_ids; trying again later");
                if e.is_io() {
                    failing.store(true, Ordering::Relaxed); // reopen before the next batch
                }
            }
        }
    }
}

/// The writer's view of the background indexing.
pub(super) struct Indexer {
    /// Conversations with messages not in the index yet.
    convs: BTreeSet<ConvId>,
    /// Purged messages' terms are queued for the sweep (`Store::sweep_step`).
    sweep: bool,
    /// While both indexing and the sweep have work (steady traffic keeps adding messages to
    /// index), their steps take turns, so that neither waits for the other to run dry.
    sweep_turn: bool,
    /// When the last purge was committed, and the last sweep step (`SWEEP_QUIET`,
    /// `SWEEP_PACE`); `unpaced` (a test's `run_steps`) sweeps without waiting for either.
    purged_at: Option<Instant>,
    swept_at: Option<Instant>,
    unpaced: bool,
    /// Where the last step stopped: conversations take turns.
    after: ConvId,
    /// New messages committed since the last step, and when the first of them was.
    behind: usize,
    since: Option<Instant>,
    /// A step failed: wait for the next successful commit before trying again.
    paused: bool,
    /// `convs` may be missing conversations (the file was reopened, or the scan at start
    /// failed): scan the file again after the next successful commit.
    pub(super) needs_scan: bool,
    /// A step was committed without an fsync since the last durable commit.
    pub(super) unsynced: bool,
    /// When the last durable commit was (a batch's or a step's).
    synced: Instant,
    /// Indexing hit a bug: it stops until the next start (searches read the messages).
    broken: bool,
    /// How many times the busy step's budget the next idle step takes.
    idle_scale: usize,
    /// Tests only: no background steps; `Writer::index_steps` runs them.
    held: bool,
}

impl Indexer {
    pub(super) fn start(store: &Store, held: bool) -> Indexer {
        let mut indexer = Indexer {
            convs: BTreeSet::new(),
            sweep: false,
            sweep_turn: false,
            purged_at: None,
            swept_at: None,
            unpaced: false,
            after: ConvId(0),
            behind: 0,
            since: None,
            paused: false,
            needs_scan: true,
            unsynced: false,
            synced: Instant::now(),
            broken: false,
            idle_scale: 1,
            held,
        };
        indexer.scan(store);
        if !indexer.convs.is_empty() {
            tracing::info!(conversations = indexer.convs.len(), "indexing messages for search in the background");
        }
        if indexer.sweep {
            tracing::info!("sweeping purged messages out of the search index in the background");
        }
        indexer
    }

    /// Finds every conversation with messages the index lacks, and whether a sweep waits.
    fn scan(&mut self, store: &Store) {
        match store.unindexed().and_then(|convs| Ok((convs, store.sweep_pending()?))) {
            Ok((convs, sweep)) => {
                (self.convs, self.sweep) = (convs, sweep);
                self.needs_scan = false;
            }
            Err(e) => tracing::error!(error = %e, "could not find the messages to index; searches read them instead"),
        }
    }

    pub(super) fn has_work(&self) -> bool {
        (!self.convs.is_empty() || self.sweep) && !self.paused && !self.broken && !self.held
    }

    /// Runs up to `steps` idle steps now, held or not (a test's hook); says whether
    /// messages are left to index or purged ones to sweep.
    pub(super) fn run_steps(&mut self, store: &Store, failing: &AtomicBool, steps: usize) -> bool {
        if self.needs_scan {
            self.scan(store);
        }
        let held = std::mem::replace(&mut self.held, false);
        self.unpaced = true;
        for _ in 0..steps {
            if !self.has_work() {
                break;
            }
            self.step(store, failing, false, 1, &|| false);
        }
        self.finish(store);
        let left = self.has_work();
        (self.held, self.unpaced) = (held, false);
        left
    }

    /// Whether to index now even though jobs keep coming: a full step waits, or messages
    /// have waited for `INDEX_LATEST` (steady traffic never leaves the writer idle).
    pub(super) fn due(&self) -> bool {
        self.has_work() && (self.behind >= INDEX_STEP || self.since.is_some_and(|t| t.elapsed() >= INDEX_LATEST))
    }

    /// A batch was committed (durably) with new messages in these conversations, and with
    /// a purge or not.
    pub(super) fn committed(&mut self, store: &Store, convs: Vec<ConvId>, purged: bool) {
        if self.needs_scan {
            self.scan(store);
        }
        if !convs.is_empty() || purged {
            self.since.get_or_insert_with(Instant::now);
        }
        self.sweep |= purged;
        if purged {
            self.purged_at = Some(Instant::now());
        }
        self.behind += convs.len();
        self.convs.extend(convs);
        self.paused = false;
        self.idle_scale = 1;
        self.unsynced = false;
        self.synced = Instant::now();
    }

    /// A step while no job waits: synced once a second and when the backlog is done (no ack
    /// waits for these fsyncs, but a backlog of a whole file would pay one per step). It
    /// ends early once `waiting` says a job came.
    pub(super) fn idle_step(&mut self, store: &Store, failing: &AtomicBool, waiting: &dyn Fn() -> bool) {
        if self.convs.is_empty() && !self.sweep_is_next() {
            return; // only a sweep waits, and not yet
        }
        if self.sweep_is_next() {
            // Synced at once: unsynced sweep steps would leave a page per term they took for
            // the next chat commit to write out, and a second of them makes that commit
            // tens of milliseconds slower (benches/README.md). An idle step's own sync
            // delays nobody.
            self.step(store, failing, true, 1, &|| false);
            if !self.has_work() {
                self.finish(store);
            }
            return;
        }
        let started = Instant::now();
        let scale = self.idle_scale;
        let stop: &dyn Fn() -> bool = if scale > 1 { waiting } else { &|| false };
        self.step(store, failing, self.synced.elapsed() >= INDEX_SYNC_EVERY, scale, stop);
        self.idle_scale = if waiting() {
            1
        } else if started.elapsed() > IDLE_STEP_TIME {
            (scale / 2).max(1)
        } else {
            (scale * 2).min(IDLE_SCALE_MAX)
        };
        if !self.has_work() {
            self.finish(store);
        }
    }

    /// One step of `scale` times the busy budget, ended early once `stop` says so.
    pub(super) fn step(&mut self, store: &Store, failing: &AtomicBool, durable: bool, scale: usize, stop: &dyn Fn() -> bool) {
        if self.paused || self.broken {
            return;
        }
        if self.sweep_is_next() {
            self.sweep_turn = false;
            return self.sweep_step(store, failing, durable);
        }
        if self.convs.is_empty() {
            return; // only a sweep waits, and not yet
        }
        self.sweep_turn = true;
        let started = Instant::now();
        // On a copy: if the step fails, every conversation it took stays to do.
        let mut convs = self.convs.clone();
        match guarded("indexing for search", || store.index_step_of(&mut convs, self.after, durable, scale, stop)) {
            Ok(step) => {
                self.convs = convs;
                self.after = step.last;
                self.behind = self.behind.saturating_sub(step.messages);
                if self.convs.is_empty() {
                    self.behind = 0;
                }
                self.stepped(durable, step.given_up);
                tracing::debug!(
                    messages = step.messages,
                    scale,
                    micros = started.elapsed().as_micros() as u64,
                    durable,
                    "indexed for search"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not index messages for search; searches read them instead");
                self.failed(&e, failing);
            }
        }
    }

    /// After a step (committed, or given up for a job): whether anything is still due soon,
    /// and what is left unsynced.
    fn stepped(&mut self, durable: bool, given_up: bool) {
        if self.convs.is_empty() && !self.sweep {
            self.since = None;
        } else if self.since.is_some() {
            self.since = Some(Instant::now());
        }
        // A step given up committed nothing, so it synced nothing either.
        if !given_up {
            if durable {
                (self.unsynced, self.synced) = (false, Instant::now());
            } else {
                self.unsynced = true;
            }
        }
    }

    /// Whether the next step is the sweep's: when it may go on (`SWEEP_QUIET`,
    /// `SWEEP_PACE`), and nothing is left to index or it is its turn.
    fn sweep_is_next(&self) -> bool {
        let paced = |at: Option<Instant>, gap: Duration| at.is_none_or(|at| at.elapsed() >= gap);
        let ready = self.unpaced || (paced(self.purged_at, SWEEP_QUIET) && paced(self.swept_at, SWEEP_PACE));
        self.sweep && ready && (self.convs.is_empty() || self.sweep_turn)
    }

    /// A step of the sweep of purged messages' entries.
    fn sweep_step(&mut self, store: &Store, failing: &AtomicBool, durable: bool) {
        let started = Instant::now();
        self.swept_at = Some(started);
        match guarded("sweeping purged messages out of the search index", || store.sweep_step(durable)) {
            Ok(swept) => {
                self.sweep = swept.more;
                self.stepped(durable, false);
                tracing::debug!(
                    blocks = swept.blocks,
                    micros = started.elapsed().as_micros() as u64,
                    durable,
                    "swept purged messages out of the search index"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not sweep purged messages out of the search index; trying again later");
                self.failed(&e, failing);
            }
        }
    }

    /// A step failed: wait for the next commit, after the file is reopened if the disk
    /// failed; a bug stops the steps until the next start.
    fn failed(&mut self, e: &StoreError, failing: &AtomicBool) {
        if e.is_io() {
            failing.store(true, Ordering::Relaxed); // reopen before the next batch
        }
        self.paused = true;
        self.broken = matches!(e, StoreError::Internal(_));
    }

    /// Makes the steps since the last durable commit durable, so a restart need not redo them.
    pub(super) fn finish(&mut self, store: &Store) {
        if !self.unsynced {
            return;
        }
        match commit(store, &[]) {
            Ok(_) => (self.unsynced, self.synced) = (false, Instant::now()),
            Err(e) => tracing::warn!(error = %e, "could not sync the search index; it is redone at the next start"),
        }
    }
}
