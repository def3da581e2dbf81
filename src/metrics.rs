//! The server's figures for `GET /metrics`, and the Prometheus text format they are written
//! in (version 0.0.4: `# HELP`, `# TYPE`, one `name{labels} value` a line), by hand: a
//! dozen lines of format do not need a metrics library. Counters and the commit histogram
//! are atomics that the store writer moves; gauges are read when scraped.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::model::{Millis, now_millis};

/// Upper bounds of the commit latency buckets, in seconds: an fsync on an SSD takes about a
/// millisecond, a spinning disk ten, a disk in trouble a second.
const COMMIT_BOUNDS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A histogram of durations with fixed buckets.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bucket (not cumulative), and one for above the last bound.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum_nanos: AtomicU64::new(0) }
    }

    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = self.bounds.iter().position(|bound| seconds <= *bound).unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

/// What the store writer counts at each commit.
pub struct CommitStats {
    /// Messages posted (not edits or deletes) in commits that succeeded.
    pub messages: AtomicU64,
    /// How long each commit of a batch took, from the transaction's start to the end of its
    /// fsync.
    pub latency: Histogram,
}

impl Default for CommitStats {
    fn default() -> CommitStats {
        CommitStats { messages: AtomicU64::new(0), latency: Histogram::new(&COMMIT_BOUNDS) }
    }
}

/// The figures that live beside the server's parts (the rest are read from them when
/// scraped); one per server, shared by `Arc`.
pub struct Metrics {
    started: Instant,
    /// The same moment on the clock (ms since 1970), for people.
    started_at: Millis,
    /// When the last good backup was written (ms since 1970), 0 for none yet: set by whoever
    /// makes backups (`set_last_backup`).
    last_backup: AtomicU64,
    /// TCP connections open on the main listener, WebSockets included (`http::serve` keeps it).
    pub connections: Arc<AtomicUsize>,
    /// The store writer's counters.
    pub commits: Arc<CommitStats>,
}

impl Metrics {
    pub fn new(commits: Arc<CommitStats>) -> Metrics {
        Metrics {
            started: Instant::now(),
            started_at: now_millis(),
            last_backup: AtomicU64::new(0),
            connections: Arc::default(),
            commits,
        }
    }

    /// Records a backup that was written and checked at `at`, for `hallway_backup_age_seconds`.
    pub fn set_last_backup(&self, at: Millis) {
        self.last_backup.store(at.max(1), Ordering::Relaxed);
    }

    /// When the last good backup was made, if any since the start.
    pub fn last_backup(&self) -> Option<Millis> {
        Some(self.last_backup.load(Ordering::Relaxed)).filter(|at| *at > 0)
    }

    pub fn started_at(&self) -> Millis {
        self.started_at
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// What a scrape reads from the running server besides `Metrics`.
pub struct Live {
    pub tabs: usize,
    pub writer_queue: usize,
    pub data_file_bytes: Option<u64>,
    pub storage_failing: bool,
}

/// The whole `/metrics` answer.
pub fn render(metrics: &Metrics, live: &Live) -> String {
    let mut out = Text(String::with_capacity(4096));
    out.sample(
        "hallway_build_info",
        "gauge",
        "The running version (always 1).",
        &format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
        1.0,
    );
    out.metric("hallway_uptime_seconds", "gauge", "Seconds since the server started.", metrics.uptime().as_secs_f64());
    out.metric(
        "hallway_connections",
        "gauge",
        "TCP connections open, WebSockets included.",
        metrics.connections.load(Ordering::Relaxed) as f64,
    );
    out.metric("hallway_tabs", "gauge", "WebSocket tabs open.", live.tabs as f64);
    out.metric(
        "hallway_messages_committed_total",
        "counter",
        "Messages posted and durably committed since the start (not edits, deletes or messages that are not recorded).",
        metrics.commits.messages.load(Ordering::Relaxed) as f64,
    );
    out.histogram(
        "hallway_commit_duration_seconds",
        "Time of each commit of a batch of changes, its fsync included.",
        &metrics.commits.latency,
    );
    out.metric("hallway_writer_queue_depth", "gauge", "Jobs waiting for the store writer.", live.writer_queue as f64);
    out.metric(
        "hallway_storage_failing",
        "gauge",
        "1 while the data file cannot be written (a full disk), else 0.",
        if live.storage_failing { 1.0 } else { 0.0 },
    );
    out.header("hallway_data_file_bytes", "gauge", "Size of the data file.");
    if let Some(bytes) = live.data_file_bytes {
        out.value("hallway_data_file_bytes", "", bytes as f64);
    }
    // No sample until a backup was made: an alert on a missing series is one rule, and a
    // made-up age would be a lie.
    out.header("hallway_backup_age_seconds", "gauge", "Seconds since the last good backup (absent before the first).");
    if let Some(at) = metrics.last_backup() {
        out.value("hallway_backup_age_seconds", "", now_millis().saturating_sub(at) as f64 / 1000.0);
    }
    out.0
}

/// The Prometheus text format.
struct Text(String);

impl Text {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn value(&mut self, name: &str, labels: &str, value: f64) {
        let _ = writeln!(self.0, "{name}{labels} {}", number(value));
    }

    fn sample(&mut self, name: &str, kind: &str, help: &str, labels: &str, value: f64) {
        self.header(name, kind, help);
        self.value(name, labels, value);
    }

    fn metric(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.sample(name, kind, help, "", value);
    }

    fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram) {
        self.header(name, "histogram", help);
        let mut cumulative = 0;
        for (i, count) in histogram.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = histogram.bounds.get(i).map_or("+Inf".to_owned(), |bound| number(*bound));
            let _ = writeln!(self.0, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(self.0, "{name}_sum {}\n{name}_count {cumulative}", number(sum));
    }
}

/// A number as Prometheus reads it: integers without a fraction, others as Rust prints them.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_duration_in_its_bucket_and_the_buckets_add_up() {
        let stats = CommitStats::default();
        for ms in [0.2, 0.7, 0.7, 3.0, 4000.0] {
            stats.latency.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let metrics = Metrics::new(Arc::new(stats));
        let text = render(&metrics, &Live { tabs: 0, writer_queue: 0, data_file_bytes: None, storage_failing: false });
        let bucket = |le: &str| {
            let prefix = format!("hallway_commit_duration_seconds_bucket{{le=\"{le}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| v.parse::<u64>().unwrap())
        };
        assert_eq!(bucket("0.0005"), Some(1));
        assert_eq!(bucket("0.001"), Some(3));
        assert_eq!(bucket("0.005"), Some(4));
        assert_eq!(bucket("2.5"), Some(4));
        assert_eq!(bucket("+Inf"), Some(5));
        assert!(text.contains("hallway_commit_duration_seconds_count 5\n"), "{text}");
        assert!(!text.contains("\nhallway_backup_age_seconds "), "no backup age before a backup: {text}");
    }
}
