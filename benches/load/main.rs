//! hallway-load: drives a real Hallway over real WebSockets on loopback, speaking the
//! documented protocol, for a bounded time, and prints what it measured.
//!
//!   hallway-load fanout --members 500 --rate 100 --messages 200 [--peer mosquitto|ngircd]
//!   hallway-load idle --tabs 10000
//!   hallway-load ingest --senders 10 --seconds 5 [--slow-repair]
//!   hallway-load crash --data big.redb --rounds 5 [--slow-repair]
//!   hallway-load generate --messages 1000000 --data big.redb [--past 250000] [--edits 100000]
//!   hallway-load purge --messages 4000000 --past 1000000
//!   hallway-load review --data big.redb
//!   hallway-load history --data big.redb
//!   hallway-load rebuild --data unindexed.redb --seconds 30
//!   hallway-load flood --kind mentions|typing|presence|messages|tabs|rooms --seconds 10
//!   hallway-load backup-cli --data big.redb
//!
//! Each scenario starts its own server (the `hallway` binary next to this one, or
//! `--server-bin`) on a temp data file bound to 127.0.0.1, with mDNS off, and stops it after.

mod fanout;
mod flood;
mod http;
mod purge;
mod rebuild;
mod server;
mod stats;
mod ws;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "hallway-load", about = "Measures a Hallway server on loopback.")]
struct Cli {
    /// The hallway binary to start (default: the one next to this tool).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N members online in one room; senders post; every delivery's latency is measured.
    /// The same run against mosquitto (MQTT) or ngircd (IRC) with `--peer`.
    Fanout {
        #[arg(long, value_enum, default_value = "hallway")]
        peer: fanout::Peer,
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 1)]
        senders: usize,
        /// Messages in all (split over the senders).
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Messages per second over all senders; 0 sends as fast as possible.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Distinct accounts the tabs belong to (creating one costs a password hash).
        #[arg(long, default_value_t = 50)]
        accounts: usize,
    },
    /// K open, idle tabs and the server's resident memory per tab.
    Idle {
        #[arg(long, default_value_t = 1000)]
        tabs: usize,
        #[arg(long, default_value_t = 50)]
        accounts: usize,
        /// Then one long paste (16,000 characters) to #general, which every tab receives,
        /// and the memory again.
        #[arg(long)]
        paste: bool,
    },
    /// Messages per second acknowledged after their durable commit, S senders each waiting
    /// for its ack before the next send, each in its own conversation.
    Ingest {
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The server commits without redb's quick-repair record (what that record costs).
        #[arg(long)]
        slow_repair: bool,
        /// A (generated) data file to write to instead of a fresh one: the quick-repair
        /// record grows with the file.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Start to serving after kill -9 on a (generated) data file: `rounds` times, senders
    /// post to #general (each waiting for its ack) for `write_ms`, then the server is killed
    /// with SIGKILL and started again.
    Crash {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 500)]
        write_ms: u64,
        /// The server commits without redb's quick-repair record, so each start after a kill
        /// repairs the whole file.
        #[arg(long)]
        slow_repair: bool,
    },
    /// Writes a data file holding many messages (admin `admin`, password as in the tool).
    Generate {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long)]
        data: PathBuf,
        /// The oldest this many are dated two days back: past a `retain:1` limit.
        #[arg(long, default_value_t = 0)]
        past: u64,
        /// What each half-million messages cost to write and to index (time, CPU, bytes
        /// written), on stderr.
        #[arg(long)]
        profile: bool,
        /// Leaves the messages out of the search index, as a file from before the index (or
        /// after a tokenizer change): the server then indexes them in the background.
        #[arg(long)]
        no_index: bool,
        /// Then edits about this many messages (some several times, a few at last deleted),
        /// drawn from the whole file, keeping each earlier version as the server does under
        /// `--records archive`; the messages themselves are the same as without edits.
        #[arg(long, default_value_t = 0)]
        edits: u64,
    },
    /// Generates a file whose oldest `past` messages are past a one-day limit, serves it
    /// under `--records retain:1` and, while a tab posts to #general and another receives it,
    /// waits for the server's purge and the vacuum after it: the purge rate, the chat's
    /// delivery latency meanwhile, and the time to rewrite the file.
    Purge {
        #[arg(long, default_value_t = 4_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 1_000_000)]
        past: u64,
        /// Chat messages per second during the run.
        #[arg(long, default_value_t = 20)]
        rate: u64,
        /// Where to write the generated file (a temp dir there; removed after).
        #[arg(long, default_value = "/tmp")]
        dir: PathBuf,
        /// Gives up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Start-up time and history fetches on a (generated) data file.
    History {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 200)]
        repeat: usize,
    },
    /// Searches while the server rebuilds the search index of a file made with `generate
    /// --no-index` (changes the file: copy it first), then the rebuild's CPU time.
    Rebuild {
        #[arg(long)]
        data: PathBuf,
        /// How long to search while the rebuild goes on (0: only the rebuild's CPU time).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Reviewer searches by keyword, person and date over a (generated) data file served
    /// under `--records archive` (adds a reviewer account and audit entries to the file).
    Review {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 50)]
        repeat: usize,
    },
    /// An online backup of a (generated) data file, against `cp` of the same file, while
    /// messages keep being committed to it.
    Backup {
        #[arg(long)]
        data: PathBuf,
        /// Messages per second committed during the backup.
        #[arg(long, default_value_t = 200)]
        rate: u64,
    },
    /// `hallway backup` (the command) against a running server on a (generated) data file,
    /// against `cp`, while a tab posts to #general and another measures each delivery; then
    /// the same with the page copy refused, so the tables are copied (the fallback).
    BackupCli {
        #[arg(long)]
        data: PathBuf,
        /// Messages per second posted during the backup.
        #[arg(long, default_value_t = 200)]
        rate: u64,
    },
    /// One account floods #general with one kind of traffic for a bounded time while a victim
    /// pair talks there (a message every 50 ms) among online bystanders: the victim's latency.
    Flood {
        #[arg(long, value_enum)]
        kind: flood::Kind,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Bystander tabs online in #general.
        #[arg(long, default_value_t = 50)]
        members: usize,
        /// Accounts the bystander tabs belong to (creating one costs a password hash).
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        /// Most tabs the `tabs` kind tries to open.
        #[arg(long, default_value_t = 500)]
        tabs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let fds = hallway::cli::raise_fd_limit();
    let bin = match cli.server_bin {
        Some(bin) => bin,
        None => server::sibling_binary()?,
    };
    match cli.scenario {
        Scenario::Fanout { peer, members, senders, messages, rate, accounts } => {
            println!("{}", fanout::HEADER);
            fanout::run(&bin, peer, &fanout::Params { members, senders, messages, rate, accounts }).await
        }
        Scenario::Idle { tabs, accounts, paste } => {
            if tabs as u64 + 64 > fds {
                bail!("{tabs} tabs need more file descriptors than the limit of {fds}");
            }
            idle(&bin, tabs, accounts, paste).await
        }
        Scenario::Ingest { senders, seconds, slow_repair, data } => {
            ingest(&bin, senders, seconds, slow_repair, data.as_deref()).await
        }
        Scenario::Crash { data, rounds, senders, write_ms, slow_repair } => {
            crash(&bin, &data, rounds, senders, write_ms, slow_repair).await
        }
        Scenario::Generate { messages, data, past, profile, no_index, edits } => {
            generate(&data, &Generated { messages, past, edits, profile, index: !no_index })
        }
        Scenario::Purge { messages, past, rate, dir, timeout } => {
            purge::run(&bin, &purge::Params { messages, past, rate, dir, timeout }).await
        }
        Scenario::History { data, repeat } => history(&bin, &data, repeat).await,
        Scenario::Review { data, repeat } => review(&bin, &data, repeat).await,
        Scenario::Rebuild { data, seconds } => rebuild::run(&bin, &data, seconds).await,
        Scenario::Backup { data, rate } => backup(&data, rate).await,
        Scenario::BackupCli { data, rate } => backup_cli(&bin, &data, rate).await,
        Scenario::Flood { kind, seconds, members, accounts, tabs } => {
            if (members + tabs) as u64 + 64 > fds {
                bail!("{members} bystanders and {tabs} tabs need more file descriptors than the limit of {fds}");
            }
            println!("{}", flood::HEADER);
            flood::run(&bin, &flood::Params { kind, seconds, members, accounts, tabs }).await
        }
    }
}

/// The backup runs in this process, on the library's `Store`, with the server's own writer
/// thread committing messages meanwhile: the same code paths as in the server, without HTTP.
async fn backup(data: &std::path::Path, rate: u64) -> anyhow::Result<()> {
    use hallway::model::{ConvId, Seq, UserId};
    use hallway::store::records::MessageRecord;
    use hallway::store::{Change, Store, writer::Writer};

    let dir = tempfile::tempdir_in(data.parent().unwrap_or(std::path::Path::new(".")))?;
    let cp = time_cp(data, dir.path())?;

    let store = Store::open(data)?;
    let general = ConvId(1);
    let mut seq = store.load()?.last_seq.get(&general).copied().unwrap_or(Seq(0));
    let (writer, thread) = Writer::start(store.clone());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chat = {
        let (writer, done) = (writer.clone(), done.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                seq = seq.next();
                let record = MessageRecord::new(
                    UserId(1),
                    format!("written during the backup {}", seq.0),
                    hallway::model::now_millis(),
                    seq.0,
                );
                let t = Instant::now();
                writer.write(vec![Change::PutMessage(general, seq, record)]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                latencies.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(latencies)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // the chat is flowing
    let dest = dir.path().join("backup.redb");
    let started = Instant::now();
    let copied = writer.backup(dest.clone()).await?;
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let latencies = chat.await??;
    thread.stop(writer).await;
    let size = std::fs::metadata(data)?.len() as f64 / 1048576.0;
    let commits = stats::summarize(latencies);
    println!(
        "| scenario | file MiB | cp s | cp MiB/s | backup s | backup MiB/s | backup / cp speed | of which copy s | copy / cp speed | entries | backup file MiB | commits meanwhile | commit p50 ms | commit p99 ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| backup | {size:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {} | {} | {} |",
        cp.as_secs_f64(),
        size / cp.as_secs_f64(),
        took.as_secs_f64(),
        size / took.as_secs_f64(),
        cp.as_secs_f64() / took.as_secs_f64(),
        copied.copying.as_secs_f64(),
        cp.as_secs_f64() / copied.copying.as_secs_f64(),
        copied.entries,
        copied.bytes as f64 / 1048576.0,
        commits.count,
        stats::ms(commits.p50),
        stats::ms(commits.p99)
    );
    // The copy is a data file like any other: it opens and holds the history.
    let (copy, key) = Store::open_with_key(&dest)?;
    let (page, _) = copy.messages_before(&key, general, Seq(u64::MAX), 1)?;
    if page.is_empty() {
        bail!("the backup holds no messages in #general");
    }
    Ok(())
}

/// `cp` of the file (plus fsync), twice, timing the second so that both it and the backup
/// read the file from the page cache.
fn time_cp(data: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<Duration> {
    let mut cp = Duration::ZERO;
    for _ in 0..2 {
        let started = Instant::now();
        std::fs::copy(data, dir.join("cp.redb"))?;
        std::fs::File::open(dir.join("cp.redb"))?.sync_all()?;
        cp = started.elapsed();
        std::fs::remove_file(dir.join("cp.redb"))?;
    }
    Ok(cp)
}

fn micros_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

async fn backup_cli(bin: &std::path::Path, data: &std::path::Path, rate: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(data.parent().unwrap_or(std::path::Path::new(".")))?;
    let cp = time_cp(data, dir.path())?;
    let size = std::fs::metadata(data)?.len() as f64 / 1048576.0;
    println!(
        "| scenario | file MiB | cp s | hallway backup s | backup / cp speed | messages during it | delivery p50 ms | delivery p99 ms | delivery max ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (label, envs) in [
        ("hallway backup (pages)", &[][..]),
        ("hallway backup (tables: fallback)", &[("HALLWAY_TEST_REFUSE_PAGE_COPY", "1")][..]),
    ] {
        let (child, addr, _, _) = server::spawn_with_env(bin, data, &["--no-rate-limits".to_string()], envs).await?;
        let login =
            http::request(&addr, "POST", "/api/login", None, Some(&json!({"name": "admin", "password": server::PASSWORD})))
                .await?;
        let cookie = login.cookie.with_context(|| format!("signing the generated admin in: {}", login.status))?;
        let mut target = server::Target { addr: addr.clone(), admin: cookie.clone(), child: Some(child) };
        let mut sender = ws::connect(&addr, &cookie).await?;
        let mut receiver = ws::connect(&addr, &cookie).await?;
        until(&mut receiver, "\"last\":true").await?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sending = {
            let done = done.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
                let mut n = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    tick.tick().await;
                    n += 1;
                    let frame = json!({"type": "send", "ref": n, "conv": 1, "text": format!("t={}", micros_now())});
                    sender.send(Message::text(frame.to_string())).await?;
                    // Acks and echoes are read so that the sender's queue never fills.
                    while let Some(Some(Ok(_))) = futures_util::FutureExt::now_or_never(sender.next()) {}
                }
                Ok::<_, anyhow::Error>(sender)
            })
        };
        let receiving = tokio::spawn(async move {
            // (sent at, latency) of every delivery, in microseconds.
            let mut deliveries = Vec::new();
            while let Some(frame) = receiver.next().await {
                let Ok(Message::Text(text)) = frame else { break };
                if let Some(sent) = ws::sent_at(&text) {
                    deliveries.push((sent, micros_now().saturating_sub(sent)));
                }
                if text.contains("\"text\":\"stop\"") {
                    break;
                }
            }
            deliveries
        });
        tokio::time::sleep(Duration::from_millis(500)).await; // the chat is flowing
        let out = dir.path().join("backup.redb");
        let began = micros_now();
        let started = Instant::now();
        let run = tokio::process::Command::new(bin).arg("--data").arg(data).arg("backup").arg(&out).output().await?;
        let took = started.elapsed();
        let ended = micros_now();
        if !run.status.success() {
            bail!("hallway backup failed: {}", String::from_utf8_lossy(&run.stderr));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut sender = sending.await??;
        sender.send(Message::text(json!({"type": "send", "ref": "stop", "conv": 1, "text": "stop"}).to_string())).await?;
        let deliveries = receiving.await?;
        let during: Vec<u64> =
            deliveries.iter().filter(|(sent, _)| *sent >= began && *sent <= ended).map(|(_, latency)| *latency).collect();
        let delivered = stats::summarize(during);
        println!(
            "| {label} | {size:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
            cp.as_secs_f64(),
            took.as_secs_f64(),
            cp.as_secs_f64() / took.as_secs_f64(),
            delivered.count,
            stats::ms(delivered.p50),
            stats::ms(delivered.p99),
            stats::ms(delivered.max)
        );
        eprintln!("{}", String::from_utf8_lossy(&run.stdout).trim());
        std::fs::remove_file(&out)?;
        target.stop().await;
    }
    Ok(())
}

async fn idle(bin: &std::path::Path, tabs: usize, accounts: usize, paste: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut target = server::fresh(bin, dir.path(), &["--no-rate-limits".to_string()]).await?;
    let cookies = server::accounts(&target, accounts.clamp(1, tabs.max(1))).await?;
    let pid = target.pid().context("server pid")?;
    // One tab first, so one-time allocations are not counted per tab.
    let mut warm = ws::connect(&target.addr, &cookies[0]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server::rss_kib(pid).context("reading the server's memory")?;
    let mut open = Vec::with_capacity(tabs);
    for i in 0..tabs {
        let mut tab = ws::connect(&target.addr, &cookies[i % cookies.len()]).await?;
        // Read the whole hello so the server's send buffers are empty, as for a real idle tab.
        until(&mut tab, "\"last\":true").await?;
        open.push(tab);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server::rss_kib(pid).context("reading the server's memory")?;
    let per_tab = |rss: u64| (rss.saturating_sub(before)) as f64 / tabs as f64;
    println!("| scenario | tabs | server RSS before (MiB) | after (MiB) | per tab (KiB) |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| idle | {tabs} | {:.1} | {:.1} | {:.2} |", before as f64 / 1024.0, after as f64 / 1024.0, per_tab(after));
    if paste {
        // A pasted log: 16,000 characters, the most a message may have, with line breaks.
        let text: String = (0..400).map(|i| format!("{i:>5} a line of a pasted log file ..\n")).collect();
        let general = 1;
        warm.send(Message::text(json!({"type": "send", "ref": "paste", "conv": general, "text": text}).to_string())).await?;
        until(&mut warm, "\"ref\":\"paste\"").await?;
        for tab in &mut open {
            until(tab, "a line of a pasted log file").await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pasted = server::rss_kib(pid).context("reading the server's memory")?;
        println!(
            "| idle, after a {} KB paste to all | {tabs} | {:.1} | {:.1} | {:.2} |",
            text.len() / 1000,
            before as f64 / 1024.0,
            pasted as f64 / 1024.0,
            per_tab(pasted)
        );
    }
    drop(open);
    drop(warm);
    target.stop().await;
    Ok(())
}

/// Reads frames until one contains `needle`.
async fn until(tab: &mut ws::Tab, needle: &str) -> anyhow::Result<()> {
    while let Some(frame) = tab.next().await {
        if frame?.to_text().is_ok_and(|t| t.contains(needle)) {
            return Ok(());
        }
    }
    bail!("the connection closed before a frame with {needle}")
}

async fn ingest(
    bin: &std::path::Path,
    senders: usize,
    seconds: u64,
    slow_repair: bool,
    data: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (flags, envs) = (["--no-rate-limits".to_string()], server::repair_env(slow_repair));
    let mut target = match data {
        None => server::fresh_with_env(bin, dir.path(), &flags, envs).await?,
        Some(data) => {
            let (child, addr, _, _) = server::spawn_with_env(bin, data, &flags, envs).await?;
            let body = json!({"name": "admin", "password": server::PASSWORD});
            let login = http::request(&addr, "POST", "/api/login", None, Some(&body)).await?;
            let admin = login.cookie.with_context(|| format!("signing the generated admin in: {}", login.status))?;
            server::Target { addr, admin, child: Some(child) }
        }
    };
    let cookies = server::accounts(&target, senders).await?;
    let pid = target.pid().context("server pid")?;
    let cpu_before = server::cpu_seconds(pid).context("reading the server's CPU time")?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for cookie in cookies {
        let addr = target.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut tab = ws::connect(&addr, &cookie).await?;
            // Each sender writes to its own notes-to-self conversation.
            tab.send(Message::text(json!({"type": "open_dm", "ref": "dm", "users": []}).to_string())).await?;
            let conv = loop {
                let Some(Ok(Message::Text(text))) = tab.next().await else { bail!("closed") };
                let frame: serde_json::Value = serde_json::from_str(&text)?;
                if frame["type"] == "ack" && frame["ref"] == "dm" {
                    break frame["conv"].as_u64().context("conv")?;
                }
            };
            let mut acked = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let frame = json!({"type": "send", "ref": acked, "conv": conv, "text": "durable please"});
                tab.send(Message::text(frame.to_string())).await?;
                loop {
                    let Some(Ok(Message::Text(text))) = tab.next().await else { bail!("closed") };
                    if text.starts_with("{\"type\":\"ack\"") {
                        break;
                    }
                    if text.starts_with("{\"type\":\"error\"") {
                        bail!("the server refused a send: {text}");
                    }
                }
                latencies.push(sent.elapsed().as_micros() as u64);
                acked += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server::cpu_seconds(pid).context("reading the server's CPU time")? - cpu_before;
    let summary = stats::summarize(all);
    println!(
        "| scenario | commits | senders | seconds | acked | acked/s | ack p50 ms | ack p99 ms | server CPU s | server CPU µs per message |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| ingest | {} | {senders} | {seconds} | {} | {:.0} | {} | {} | {cpu:.2} | {:.1} |",
        if slow_repair { "without quick repair" } else { "quick repair" },
        summary.count,
        summary.count as f64 / elapsed,
        stats::ms(summary.p50),
        stats::ms(summary.p99),
        cpu * 1e6 / summary.count.max(1) as f64
    );
    target.stop().await;
    Ok(())
}

async fn crash(
    bin: &std::path::Path,
    data: &std::path::Path,
    rounds: usize,
    senders: usize,
    write_ms: u64,
    slow_repair: bool,
) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("{} does not exist; make it with `hallway-load generate --data ...`", data.display());
    }
    let envs = server::repair_env(slow_repair);
    let commits = if slow_repair { "without quick repair" } else { "quick repair" };
    let size = std::fs::metadata(data)?.len() as f64 / 1048576.0;
    println!("| scenario | commits | file MiB | round | start to serving ms | acked before the kill |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let (child, addr, _, startup) = server::spawn_with_env(bin, data, &["--no-rate-limits".to_string()], envs).await?;
    println!("| crash | {commits} | {size:.0} | clean start | {} | |", stats::ms(startup.as_micros() as u64));
    let mut target = server::Target { addr, admin: String::new(), child: Some(child) };
    let mut restarts = Vec::new();
    for round in 1..=rounds {
        let body = json!({"name": "admin", "password": server::PASSWORD});
        let login = http::request(&target.addr, "POST", "/api/login", None, Some(&body)).await?;
        let cookie = login.cookie.with_context(|| format!("signing the generated admin in: {}", login.status))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for sender in 0..senders {
            let mut tab = ws::connect(&target.addr, &cookie).await?;
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = format!("crash round {round} sender {sender} message {acked}");
                    let frame = json!({"type": "send", "ref": acked, "conv": 1, "text": text});
                    if tab.send(Message::text(frame.to_string())).await.is_err() {
                        break;
                    }
                    loop {
                        match tab.next().await {
                            Some(Ok(Message::Text(text))) if text.starts_with("{\"type\":\"ack\"") => break,
                            Some(Ok(Message::Text(text))) if text.starts_with("{\"type\":\"error\"") => {
                                bail!("the server refused a send: {text}")
                            }
                            Some(Ok(_)) => {}
                            _ => return Ok(acked),
                        }
                    }
                    acked += 1;
                }
                Ok::<_, anyhow::Error>(acked)
            }));
        }
        tokio::time::sleep(Duration::from_millis(write_ms)).await;
        if let Some(child) = target.child.as_mut() {
            child.kill().await?; // SIGKILL, while the senders wait for acks
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut acked = 0;
        for task in tasks {
            acked += task.await??;
        }
        let (child, addr, _, restart) = server::spawn_with_env(bin, data, &["--no-rate-limits".to_string()], envs).await?;
        (target.child, target.addr) = (Some(child), addr);
        restarts.push(restart.as_micros() as u64);
        println!(
            "| crash | {commits} | {size:.0} | after kill -9 #{round} | {} | {acked} |",
            stats::ms(*restarts.last().unwrap_or(&0))
        );
    }
    let summary = stats::summarize(restarts);
    println!(
        "| crash | {commits} | {size:.0} | after kill -9: p50 / max of {} | {} / {} | |",
        summary.count,
        stats::ms(summary.p50),
        stats::ms(summary.max)
    );
    target.stop().await;
    Ok(())
}

/// The generated text's vocabulary: `VOCABULARY` made-up words whose frequencies follow
/// Zipf's law (the word of rank r is used in proportion to 1/r), like words in real chat.
const VOCABULARY: usize = 5000;
const AUTHORS: u64 = 20;
const ROOMS: u64 = 10;

/// The made-up word of rank `rank` (1 = most used): syllables spelling out the rank, so each
/// rank has its own word and the benchmark can name the words it searches for.
fn vocabulary_word(rank: usize) -> String {
    const SYLLABLES: [&str; 16] =
        ["ka", "lo", "mi", "ne", "ru", "ta", "si", "po", "de", "fu", "ga", "hi", "jo", "be", "vu", "zo"];
    let mut word = String::new();
    let mut n = rank;
    loop {
        word.push_str(SYLLABLES[n % 16]);
        n /= 16;
        if n == 0 {
            break;
        }
    }
    word
}

/// xorshift64*: a fixed sequence, so every generated file holds the same messages.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A rank from 1 to `cumulative.len()`, drawn with the Zipf weights `cumulative` sums.
    fn zipf(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        cumulative.partition_point(|c| *c < x) + 1
    }
}

/// This process's CPU time so far (user and system), in seconds: the wall clock of a phase
/// on a shared machine says more about the neighbours than about the phase.
fn process_cpu() -> f64 {
    server::cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Bytes this process has had written to disk so far (`/proc/self/io`).
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// `generate --profile`: what each half-million messages of a phase cost, on stderr.
struct Progress {
    at: Instant,
    cpu: f64,
    bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress { at: Instant::now(), cpu: process_cpu(), bytes: written_bytes() }
    }

    fn report(&mut self, phase: &str, done: u64) {
        let (cpu, bytes) = (process_cpu(), written_bytes());
        eprintln!(
            "{phase} {done}: {:.1} s, CPU {:.1} s, {:.0} MiB written",
            self.at.elapsed().as_secs_f64(),
            cpu - self.cpu,
            (bytes - self.bytes) as f64 / 1048576.0
        );
        *self = Progress::new();
    }
}

/// What `generate` writes.
pub(crate) struct Generated {
    pub messages: u64,
    /// The oldest this many are dated two days back.
    pub past: u64,
    /// About this many messages edited afterwards, as under `--records archive` (`edit`).
    pub edits: u64,
    /// What each half-million messages cost, on stderr.
    pub profile: bool,
    pub index: bool,
}

pub(crate) fn generate(data: &std::path::Path, params: &Generated) -> anyhow::Result<()> {
    use hallway::model::{ConvId, ConvKind, Role, Seq, UserId};
    use hallway::store::records::{ConversationRecord, Keep, MemberRecord, MessageRecord, UserRecord};
    use hallway::store::{Change, Store};

    let &Generated { messages, past, edits, profile, index } = params;
    if data.exists() {
        bail!("{} exists; choose a new path", data.display());
    }
    if edits > messages {
        bail!("--edits {edits} is more than the {messages} messages");
    }
    let store = Store::open(data)?;
    let now = hallway::model::now_millis();
    let hash = hallway::auth::hash_password(server::PASSWORD).map_err(|e| anyhow::anyhow!(e))?;
    let admin = UserId(1);
    let mut setup = Vec::new();
    for user in 1..=AUTHORS {
        let (name, role) = if user == 1 { ("admin".to_string(), Role::Admin) } else { (format!("user{user}"), Role::Member) };
        let display_name = name.clone();
        let password_hash = hash.clone();
        setup.push(Change::PutUser(
            UserId(user),
            UserRecord { name, display_name, password_hash, role, created: now, disabled: false, last_seen: None },
        ));
    }
    for room in 1..=ROOMS {
        let name = if room == 1 { "general".to_string() } else { format!("room{room}") };
        setup.push(Change::PutConversation(
            ConvId(room),
            ConversationRecord {
                kind: ConvKind::Room,
                name,
                topic: String::new(),
                created_by: admin,
                created: now,
                keep: Keep::Forever,
                keep_set_by: None,
                choices: Vec::new(),
                announcements: false,
            },
        ));
        for user in 1..=AUTHORS {
            setup.push(Change::PutMember(ConvId(room), UserId(user), MemberRecord { joined: now, read_seq: 0 }));
        }
    }
    store.apply_now(setup)?;
    let started = Instant::now();
    let start_cpu = process_cpu();
    let mut progress = Progress::new();
    let cumulative: Vec<f64> = (1..=VOCABULARY)
        .scan(0.0, |sum, rank| {
            *sum += 1.0 / rank as f64;
            Some(*sum)
        })
        .collect();
    let words: Vec<String> = (1..=VOCABULARY).map(vocabulary_word).collect();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut next_seq = vec![1u64; ROOMS as usize + 1];
    // Which messages are edited, and how many times: drawn apart from the messages, so that
    // those are the same with and without edits.
    let mut edit_random = Random(0x2545_f491_4f6c_dd1d);
    let mut to_edit = std::collections::HashMap::new();
    while (to_edit.len() as u64) < edits {
        to_edit.entry(edit_random.next() % messages).or_insert_with(|| edit_plan(&mut edit_random));
    }
    let mut edited = Vec::with_capacity(to_edit.len());
    const BATCH: u64 = 20_000;
    let mut written = 0;
    while written < messages {
        let mut batch = Vec::with_capacity(BATCH as usize);
        for i in written..(written + BATCH).min(messages) {
            // Half the traffic in #general, the rest spread over the other rooms.
            let room = if i % 2 == 0 { 1 } else { 2 + (i / 2) % (ROOMS - 1) };
            let seq = next_seq[room as usize];
            next_seq[room as usize] += 1;
            let length = 4 + random.next() % 12;
            let text: Vec<&str> = (0..length).map(|_| words[random.zipf(&cumulative) - 1].as_str()).collect();
            let record = MessageRecord::new(
                UserId(1 + random.next() % AUTHORS),
                text.join(" "),
                now - (messages - i) - if i < past { 2 * 24 * 3600 * 1000 } else { 0 },
                seq,
            );
            if let Some(plan) = to_edit.get(&i) {
                edited.push((ConvId(room), Seq(seq), record.clone(), *plan));
            }
            batch.push(Change::PutMessage(ConvId(room), Seq(seq), record));
        }
        written += batch.len() as u64;
        store.apply_now(batch)?;
        if profile && written % 500_000 < BATCH {
            progress.report("write", written);
        }
    }
    // The edits come after every message (each takes its conversation's next seq, as the
    // server's do), in the order the messages were written.
    let edit_started = Instant::now();
    let (mut versions, mut deleted) = (0, 0);
    let mut edited_at = now;
    let draft = edited_away_word();
    for chunk in edited.chunks(BATCH as usize / 4) {
        let mut batch = Vec::new();
        for (conv, seq, record, plan) in chunk {
            let mut record = record.clone();
            for change in 0..plan.changes {
                let rev = Seq(next_seq[conv.0 as usize]);
                next_seq[conv.0 as usize] += 1;
                edited_at += 1;
                let text = if plan.delete && change + 1 == plan.changes {
                    None
                } else {
                    let length = 4 + edit_random.next() % 12;
                    let mut text: Vec<&str> = (0..length).map(|_| words[edit_random.zipf(&cumulative) - 1].as_str()).collect();
                    // Only a version an edit replaces holds this word: what a reviewer must
                    // still find.
                    if change == 0 && plan.changes > 1 {
                        text.push(&draft);
                    }
                    Some(text.join(" "))
                };
                deleted += u64::from(text.is_none());
                versions += 1;
                let (keep, update) = edit(*conv, *seq, &record, text, rev, edited_at);
                if let Change::UpdateMessage(_, _, after) = &update {
                    record = after.clone();
                }
                batch.extend([keep, update]);
            }
        }
        store.apply_now(batch)?;
    }
    let edit_took = edit_started.elapsed();
    let stored = started.elapsed();
    let stored_cpu = process_cpu();
    let mut reported = 0;
    if index {
        store.index_everything_reporting(|indexed| {
            if profile && indexed / 500_000 != reported / 500_000 {
                progress.report("index", indexed as u64);
            }
            reported = indexed;
        })?;
    }
    let size = std::fs::metadata(data)?.len();
    println!(
        "wrote {messages} messages of 4-15 words (a vocabulary of {VOCABULARY}, Zipf) by {AUTHORS} authors in {ROOMS} rooms \
         to {} ({:.1} MiB) in {:.1} s (CPU {:.1} s), then indexed them for search in {:.1} s (CPU {:.1} s)",
        data.display(),
        size as f64 / 1048576.0,
        stored.as_secs_f64(),
        stored_cpu - start_cpu,
        (started.elapsed() - stored).as_secs_f64(),
        process_cpu() - stored_cpu
    );
    if edits > 0 {
        println!(
            "the writing included {} edited messages: {versions} changes, {deleted} of them deletes, each replaced version \
             kept as under archive, in {:.1} s",
            edited.len(),
            edit_took.as_secs_f64()
        );
    }
    Ok(())
}

/// How one message chosen by `generate --edits` changes.
#[derive(Clone, Copy)]
struct EditPlan {
    /// Edits (or the delete) in all, each keeping the version it replaces.
    changes: u64,
    /// The last change deletes the message.
    delete: bool,
}

/// Most chosen messages are edited once, one in four two to four times, one in fifty is
/// deleted at last.
fn edit_plan(random: &mut Random) -> EditPlan {
    let draw = random.next() % 100;
    let changes = match draw {
        0..75 => 1,
        75..90 => 2,
        90..97 => 3,
        _ => 4,
    };
    EditPlan { changes, delete: random.next().is_multiple_of(50) }
}

/// A word in no generated message (the vocabulary's words have ranks up to `VOCABULARY`),
/// only in the first version of messages `generate --edits` edits more than once.
fn edited_away_word() -> String {
    vocabulary_word(VOCABULARY + 1)
}

/// The changes the server writes under archive when the message at `seq`, now `before`, is
/// edited to `text` (`None`: deleted) as the conversation's seq `rev` at `at`
/// (`change_message` in `core/hub/messages.rs`): the replaced version kept, the new one in its
/// place.
fn edit(
    conv: hallway::model::ConvId,
    seq: hallway::model::Seq,
    before: &hallway::store::records::MessageRecord,
    text: Option<String>,
    rev: hallway::model::Seq,
    at: hallway::model::Millis,
) -> (hallway::store::Change, hallway::store::Change) {
    use hallway::store::Change;
    let mut after = before.clone();
    match text {
        Some(text) => {
            after.text = text;
            after.edited_ts = Some(at);
        }
        None => {
            after.text.clear();
            after.mentions.clear();
            after.deleted = true;
        }
    }
    after.rev = rev.0;
    (Change::KeepVersion(conv, seq, before.clone()), Change::UpdateMessage(conv, seq, after))
}

/// Reviewer searches with a person and a date range (`/api/review/search`), each answered
/// after its audit entry is on disk, as an HTTP round trip.
async fn review(bin: &std::path::Path, data: &std::path::Path, repeat: usize) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("{} does not exist; make it with `hallway-load generate --data ...`", data.display());
    }
    let (child, addr, _, _) = server::spawn(bin, data, &["--records".into(), "archive".into()]).await?;
    let mut target = server::Target { addr: addr.clone(), admin: String::new(), child: Some(child) };
    let result = review_searches(&addr, repeat).await;
    target.stop().await;
    result
}

async fn review_searches(addr: &str, repeat: usize) -> anyhow::Result<()> {
    let sign_in = |name: &'static str| async move {
        let body = json!({"name": name, "password": server::PASSWORD});
        let login = http::request(addr, "POST", "/api/login", None, Some(&body)).await?;
        login.cookie.with_context(|| format!("signing in {name}: {} {}", login.status, login.body))
    };
    let admin = sign_in("admin").await?;
    let body = json!({"name": "rita", "password": server::PASSWORD, "role": "reviewer"});
    let created = http::request(addr, "POST", "/api/users", Some(&admin), Some(&body)).await?;
    if created.status != 201 && created.status != 409 {
        bail!("creating the reviewer: {} {}", created.status, created.body);
    }
    let reviewer = sign_in("rita").await?;
    // The file's time span, from the oldest and newest message of #general.
    let ts_of = |path: &'static str| {
        let admin = admin.clone();
        async move {
            let page = http::request(addr, "GET", path, Some(&admin), None).await?;
            page.body["messages"][0]["ts"].as_u64().with_context(|| format!("{path}: {}", page.body))
        }
    };
    let oldest = ts_of("/api/conversations/1/messages?after=0&limit=1").await?;
    let newest = ts_of("/api/conversations/1/messages?limit=1").await?;
    let at = |fraction: f64| oldest + ((newest - oldest) as f64 * fraction) as u64;
    let w = vocabulary_word;
    let searches = [
        (format!("q={}&from=user7", w(50)), "a word (rank 50) from one person, no dates".to_string()),
        (
            format!("q={}&from=user7&since={}&until={}", w(50), at(0.45), at(0.55)),
            "the same, within the middle tenth of the time span".to_string(),
        ),
        (format!("from=user7&since={}&until={}", at(0.45), at(0.55)), "one person, the middle tenth".to_string()),
        (format!("from=user7&since={}&until={}", at(0.0), at(0.01)), "one person, the oldest hundredth".to_string()),
        (
            format!("q={}&from=user7&since={}&until={}", w(1), at(0.1), at(0.2)),
            "the most common word from one person, the second tenth".to_string(),
        ),
        (
            format!("q={}&from=user7&since={}&until={}", w(4000), at(0.45), at(0.55)),
            "a rare word (rank 4000) from one person, the middle tenth".to_string(),
        ),
        (format!("q={}", w(4000)), "a rare word (rank 4000), no person, no dates".to_string()),
        // The walk goes back through the whole archive: every earlier version is read.
        ("q=nosuchword".to_string(), "a word that is in no message, no person, no dates".to_string()),
        // Found only through earlier versions (none without `generate --edits`).
        (format!("q={}&from=user7", edited_away_word()), "a word only earlier versions hold, one person, no dates".to_string()),
        (
            format!("q={}&since={}&until={}", edited_away_word(), at(0.45), at(0.55)),
            "a word only earlier versions hold, the middle tenth".to_string(),
        ),
    ];
    edited_away_is_found(addr, &admin, &reviewer).await?;
    println!("| scenario | what | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (query, what) in searches {
        let path = format!("/api/review/search?{query}");
        let mut samples = Vec::with_capacity(repeat);
        let mut found = 0;
        for _ in 0..repeat {
            let t = Instant::now();
            let response = http::request(addr, "GET", &path, Some(&reviewer), None).await?;
            samples.push(t.elapsed().as_micros() as u64);
            match response.body["results"].as_array() {
                Some(results) if response.status == 200 => found = results.len(),
                _ => bail!("GET {path}: {} {}", response.status, response.body),
            }
        }
        let summary = stats::summarize(samples);
        println!(
            "| review | {what}, {found} results | {} | {} | {} |",
            stats::ms(summary.p50),
            stats::ms(summary.p99),
            stats::ms(summary.max)
        );
    }
    Ok(())
}

/// A member's search never finds the word edits took away, and each result of the reviewer's
/// holds it in an earlier version only; printed as how many the reviewer finds.
async fn edited_away_is_found(addr: &str, admin: &str, reviewer: &str) -> anyhow::Result<()> {
    let word = edited_away_word();
    let members = http::request(addr, "GET", &format!("/api/search?q={word}"), Some(admin), None).await?;
    match members.body["results"].as_array() {
        Some(results) if results.is_empty() => {}
        _ => bail!("a member's search for the edited-away word: {} {}", members.status, members.body),
    }
    let (mut found, mut before) = (0, String::new());
    loop {
        let path = format!("/api/review/search?q={word}&limit=100{before}");
        let page = http::request(addr, "GET", &path, Some(reviewer), None).await?;
        let Some(results) = page.body["results"].as_array().filter(|_| page.status == 200) else {
            bail!("GET {path}: {} {}", page.status, page.body);
        };
        for result in results {
            let holds = |m: &serde_json::Value| m["text"].as_str().is_some_and(|t| t.split(' ').any(|w| w == word));
            let earlier = result["versions"].as_array().is_some_and(|versions| versions.iter().any(holds));
            if holds(result) || !earlier {
                bail!("a reviewer's result for the edited-away word: {result}");
            }
        }
        found += results.len();
        match (page.body["more"].as_bool(), page.body["next"].as_str()) {
            (Some(true), Some(next)) => before = format!("&before={next}"),
            _ => break,
        }
    }
    println!("(the reviewer finds {found} messages by a word only their earlier versions hold; a member finds none)");
    Ok(())
}

async fn history(bin: &std::path::Path, data: &std::path::Path, repeat: usize) -> anyhow::Result<()> {
    if !data.exists() {
        bail!("{} does not exist; make it with `hallway-load generate --data ...`", data.display());
    }
    let (child, addr, _, startup) = server::spawn(bin, data, &[]).await?;
    let mut target = server::Target { addr: addr.clone(), admin: String::new(), child: Some(child) };
    let login =
        http::request(&addr, "POST", "/api/login", None, Some(&json!({"name": "admin", "password": server::PASSWORD}))).await?;
    let cookie = login.cookie.context("signing in as admin on the generated file")?;
    // Times `repeat` GETs of `path`; each answer must hold a non-empty array under `key`
    // (or an empty one, for a search that finds nothing).
    let time = |path: String, key: &'static str, may_be_empty: bool| {
        let addr = addr.clone();
        let cookie = cookie.clone();
        async move {
            let mut samples = Vec::with_capacity(repeat);
            let mut found = 0;
            for _ in 0..repeat {
                let t = Instant::now();
                let response = http::request(&addr, "GET", &path, Some(&cookie), None).await?;
                samples.push(t.elapsed().as_micros() as u64);
                let items = response.body[key].as_array().map(Vec::len);
                if response.status != 200 || items.is_none() || (items == Some(0) && !may_be_empty) {
                    bail!("GET {path}: {} {}", response.status, response.body);
                }
                found = items.unwrap_or(0);
            }
            Ok::<_, anyhow::Error>((stats::summarize(samples), found))
        }
    };
    let row = |what: &str, (summary, _): (stats::Summary, usize)| {
        println!("| history | {what} | {} | {} | {} |", stats::ms(summary.p50), stats::ms(summary.p99), stats::ms(summary.max))
    };
    let latest = time("/api/conversations/1/messages?limit=50".into(), "messages", false).await?;
    let deep = time("/api/conversations/1/messages?before=1000&limit=50".into(), "messages", false).await?;
    println!("| scenario | what | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| history | start to serving | {} | | |", stats::ms(startup.as_micros() as u64));
    row("latest 50 of #general (HTTP round trip)", latest);
    row("50 before seq 1000 (deep)", deep);
    // Keyword searches over all 10 rooms (the admin is in all), 20 results a page, as the
    // web client asks. Word of rank r: see `generate` (rank 1 is in most messages).
    let w = vocabulary_word;
    let searches = [
        (format!("q={}", w(1)), "the most common word (rank 1)".to_string()),
        (format!("q={}", w(100)), "a word of rank 100".to_string()),
        (format!("q={}", w(4000)), "a rare word (rank 4000)".to_string()),
        (format!("q={}+{}", w(2), w(3)), "two common words (ranks 2 and 3), both in each result".to_string()),
        (format!("q={}+{}", w(4000), w(1)), "a rare and a common word together".to_string()),
        (format!("q={}+{}", w(300), w(400)), "two uncommon words together (ranks 300 and 400)".to_string()),
        (format!("q={}&from=user7", w(50)), "a word (rank 50) from one of 20 authors".to_string()),
        (format!("q={}&offset=1000", w(1)), "the most common word, results 1001-1020".to_string()),
        ("q=nosuchword".to_string(), "a word that is in no message".to_string()),
    ];
    for (query, what) in searches {
        let (summary, found) = time(format!("/api/search?{query}"), "results", true).await?;
        row(&format!("search: {what}, {found} results"), (summary, found));
    }
    // A crash: write something (an account), kill -9, start again: the start-up an office
    // sees after a power cut (`crash` kills it while people write).
    let created = http::request(
        &addr,
        "POST",
        "/api/users",
        Some(&cookie),
        Some(&json!({"name": format!("crash{}", std::process::id()), "password": server::PASSWORD})),
    )
    .await?;
    if created.status != 201 {
        bail!("creating an account before the kill: {} {}", created.status, created.body);
    }
    if let Some(child) = target.child.as_mut() {
        child.kill().await?; // SIGKILL
    }
    let (child, _, _, restart) = server::spawn(bin, data, &[]).await?;
    target.child = Some(child);
    println!("| history | start to serving after kill -9 | {} | | |", stats::ms(restart.as_micros() as u64));
    target.stop().await;
    Ok(())
}
