//! Measures purging and vacuuming a big data file; ignored by the test command. Run it in
//! release, alone on the machine:
//!
//! ```text
//! cargo test --release -j2 --test vacuum_bench -- --ignored --nocapture
//! ```
//!
//! `HALLWAY_BENCH_MESSAGES` sets the number of messages (default 1,000,000), in 10
//! conversations, with texts of 5 to 25 words from a vocabulary of 5,000, all indexed. The
//! oldest quarter of conversations 1, 2 and 3 is purged in batches of 20, 50 and 100 through
//! the store writer, one batch after the other, while a message of conversation 10 is written
//! every 2 ms (chat sharing the writer with the purge: its wait is the delay a purge adds to
//! delivery); then the writer sweeps their index entries while a message is written every 2
//! ms; then the file is vacuumed through the writer while a message is written every 2 ms,
//! then vacuumed again offline (what `hallway compact` does).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hallway::model::{ConvId, Seq, UserId};
use hallway::store::records::MessageRecord;
use hallway::store::writer::Writer;
use hallway::store::{Change, Store};

const CONVERSATIONS: u64 = 10;
/// Purge batches: conversation 1 in batches of 20, 2 of 50, 3 of 100 (the core sizes its own
/// by the time the last one took, `core/hub/keeping.rs`).
const PURGED: [(u64, usize); 3] = [(1, 20), (2, 50), (3, 100)];
/// The conversation chat goes on in while the others are purged.
const CHAT: ConvId = ConvId(CONVERSATIONS);

/// xorshift64: the same texts every run, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn text(rng: &mut Rng) -> String {
    let words = 5 + rng.next() % 21;
    (0..words).map(|_| format!("w{}", rng.next() % 5_000)).collect::<Vec<_>>().join(" ")
}

fn message(rng: &mut Rng, seq: u64, ts: u64) -> MessageRecord {
    MessageRecord {
        author: UserId(1 + rng.next() % 50),
        text: text(rng),
        ts,
        edited_ts: None,
        deleted: false,
        mentions: Vec::new(),
        client_id: Some(format!("bench-{seq}")),
        rev: seq,
        system: None,
        attachments: Vec::new(),
        reply_to: None,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Writes a message of `conv` every 2 ms, each waiting for its commit, from `seq` on, until
/// `stop`; gives how long each waited.
fn chat(writer: Writer, conv: ConvId, seq: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Duration>> {
    chat_every(writer, conv, seq, stop, Duration::from_millis(2))
}

/// `chat`, a message every `every`.
fn chat_every(
    writer: Writer,
    conv: ConvId,
    mut seq: u64,
    stop: Arc<AtomicBool>,
    every: Duration,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let mut rng = Rng(seq);
        let mut waits = Vec::new();
        let mut tick = tokio::time::interval(every);
        while !stop.load(Ordering::Relaxed) && waits.len() <= 1_000_000 {
            tick.tick().await;
            let sent = Instant::now();
            let record = message(&mut rng, seq, seq * 1_000);
            if writer.write(vec![Change::PutMessage(conv, Seq(seq), record)]).await.is_err() {
                break;
            }
            waits.push(sent.elapsed());
            seq += 1;
        }
        waits
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it in release with --ignored"]
async fn purge_and_vacuum_a_million_messages() {
    let total: u64 = std::env::var("HALLWAY_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let per_conv = total / CONVERSATIONS;
    let dir = tempfile::tempdir_in(std::env::var("HALLWAY_BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).expect("temp dir");
    let path = dir.path().join("bench.redb");
    let store = Store::open(&path).expect("open");
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for first in (1..=per_conv).step_by(5_000) {
        let mut changes = Vec::new();
        for seq in first..(first + 5_000).min(per_conv + 1) {
            for conv in 1..=CONVERSATIONS {
                changes.push(Change::PutMessage(ConvId(conv), Seq(seq), message(&mut rng, seq, seq * 1_000)));
            }
        }
        store.apply_now(changes).expect("write");
    }
    let written = started.elapsed();
    store.index_everything().expect("index");
    let size = std::fs::metadata(&path).expect("size").len();
    eprintln!(
        "{total} messages written in {:.1} s, indexed in {:.1} s: {}",
        written.as_secs_f64(),
        (started.elapsed() - written).as_secs_f64(),
        mib(size)
    );

    // The oldest quarter of each conversation is past its limit.
    let (writer, thread) = Writer::start(store.clone());
    let cutoff = (per_conv / 4) * 1_000 + 1;
    let started = Instant::now();
    let mut purged = 0;
    let mut chat_seq = per_conv + 1;
    for (conv, batch_size) in PURGED {
        let mut batches = Vec::new();
        let (mut finding, mut found) = (Duration::ZERO, 0);
        let stop = Arc::new(AtomicBool::new(false));
        let chatting = chat(writer.clone(), CHAT, chat_seq, stop.clone());
        let conv_started = Instant::now();
        loop {
            let asked = Instant::now();
            let seqs = store.purgeable_before(ConvId(conv), cutoff, batch_size).expect("candidates");
            finding += asked.elapsed();
            if seqs.is_empty() {
                break;
            }
            found += seqs.len();
            let batch = Instant::now();
            writer.write(vec![Change::PurgeMessages(ConvId(conv), seqs)]).await.expect("purge");
            batches.push(batch.elapsed());
        }
        let rate = found as f64 / conv_started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut waits = chatting.await.expect("chat");
        chat_seq += waits.len() as u64 + 1;
        purged += found;
        batches.sort_unstable();
        waits.sort_unstable();
        eprintln!(
            "conversation {conv}: purged {found} in batches of {batch_size}: {rate:.0} messages/s; a batch's commit p50 {:?}, p99 {:?}, max {:?}; finding them took {:?}; {} chat writes meanwhile waited p50 {:?}, p99 {:?}, max {:?}",
            percentile(&batches, 0.5),
            percentile(&batches, 0.99),
            batches.last().copied().unwrap_or_default(),
            finding,
            waits.len(),
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
            waits.last().copied().unwrap_or_default()
        );
    }
    let took = started.elapsed();
    eprintln!("purged {purged} in {:.1} s ({:.0} messages/s)", took.as_secs_f64(), purged as f64 / took.as_secs_f64());

    // The writer sweeps the purged messages' index entries in background steps while chat
    // goes on: a write every 2 ms never leaves it idle (busy-sized steps, taking turns with
    // indexing the chat, one a second), one every 50 ms (an office's chat) does.
    let stop = Arc::new(AtomicBool::new(false));
    let pace = std::env::var("HALLWAY_BENCH_SWEEP_CHAT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let chatting = chat_every(writer.clone(), CHAT, chat_seq, stop.clone(), Duration::from_millis(pace));
    let started = Instant::now();
    while store.sweep_pending().expect("the sweep's queue") {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let swept = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut waits = chatting.await.expect("chat");
    chat_seq += waits.len() as u64 + 1;
    waits.sort_unstable();
    eprintln!(
        "swept the purged messages' index entries in {:.1} s; {} chat writes (one every {pace} ms) meanwhile waited p50 {:?}, p99 {:?}, max {:?}",
        swept.as_secs_f64(),
        waits.len(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or_default()
    );

    // Online: chat goes on, one message every 2 ms, each waiting for its commit.
    let stop = Arc::new(AtomicBool::new(false));
    let chatting = chat(writer.clone(), CHAT, chat_seq, stop.clone());
    let done = writer.vacuum().await.expect("vacuum");
    stop.store(true, Ordering::Relaxed);
    thread.stop(writer).await;
    let mut waits = chatting.await.expect("chat");
    waits.sort_unstable();
    eprintln!(
        "online vacuum: {} -> {}, {} entries, copy {:.1} s, in all {:.1} s, the writer paused {:?} to replay {} changes and switch; {} writes meanwhile waited p50 {:?}, p99 {:?}, max {:?}",
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.copying.as_secs_f64(),
        done.total.as_secs_f64(),
        done.paused,
        done.replayed,
        waits.len(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or_default()
    );

    // Offline, as `hallway compact` does.
    let done = store.vacuum().expect("vacuum");
    eprintln!(
        "offline vacuum: {} -> {}, {} entries, in {:.1} s",
        mib(done.bytes_before),
        mib(done.bytes_after),
        done.entries,
        done.total.as_secs_f64()
    );
}
