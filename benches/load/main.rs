//! hallway-load: drives a real Hallway over real WebSockets on loopback, speaking the
//! documented protocol, for a bounded time, and prints what it measured.
//!
//!   hallway-load fanout --members 500 --rate 100 --messages 200 [--peer mosquitto|ngircd]
//!   hallway-load idle --tabs 10000
//!   hallway-load ingest --senders 10 --seconds 5
//!   hallway-load generate --messages 1000000 --data big.redb
//!   hallway-load history --data big.redb
//!
//! Each scenario starts its own server (the `hallway` binary next to this one, or
//! `--server-bin`) on a temp data file bound to 127.0.0.1, with mDNS off, and stops it after.

mod fanout;
mod http;
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
    },
    /// Messages per second acknowledged after their durable commit, S senders each waiting
    /// for its ack before the next send, each in its own conversation.
    Ingest {
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Writes a data file holding many messages (admin `admin`, password as in the tool).
    Generate {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long)]
        data: PathBuf,
    },
    /// Start-up time and history fetches on a (generated) data file.
    History {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 200)]
        repeat: usize,
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
        Scenario::Idle { tabs, accounts } => {
            if tabs as u64 + 64 > fds {
                bail!("{tabs} tabs need more file descriptors than the limit of {fds}");
            }
            idle(&bin, tabs, accounts).await
        }
        Scenario::Ingest { senders, seconds } => ingest(&bin, senders, seconds).await,
        Scenario::Generate { messages, data } => generate(&data, messages),
        Scenario::History { data, repeat } => history(&bin, &data, repeat).await,
    }
}

async fn idle(bin: &std::path::Path, tabs: usize, accounts: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut target = server::fresh(bin, dir.path(), &[]).await?;
    let cookies = server::accounts(&target, accounts.clamp(1, tabs.max(1))).await?;
    let pid = target.pid().context("server pid")?;
    // One tab first, so one-time allocations are not counted per tab.
    let warm = ws::connect(&target.addr, &cookies[0]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server::rss_kib(pid).context("reading the server's memory")?;
    let mut open = Vec::with_capacity(tabs);
    for i in 0..tabs {
        let mut tab = ws::connect(&target.addr, &cookies[i % cookies.len()]).await?;
        // Read the whole hello so the server's send buffers are empty, as for a real idle tab.
        while let Some(Ok(frame)) = tab.next().await {
            if frame.to_text().is_ok_and(|t| t.contains("\"last\":true")) {
                break;
            }
        }
        open.push(tab);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server::rss_kib(pid).context("reading the server's memory")?;
    let per_tab = (after.saturating_sub(before)) as f64 * 1024.0 / tabs as f64;
    println!("| scenario | tabs | server RSS before (MiB) | after (MiB) | per tab (KiB) |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| idle | {tabs} | {:.1} | {:.1} | {:.2} |", before as f64 / 1024.0, after as f64 / 1024.0, per_tab / 1024.0);
    drop(open);
    drop(warm);
    target.stop().await;
    Ok(())
}

async fn ingest(bin: &std::path::Path, senders: usize, seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut target = server::fresh(bin, dir.path(), &[]).await?;
    let cookies = server::accounts(&target, senders).await?;
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
    let summary = stats::summarize(all);
    println!("| scenario | senders | seconds | acked | acked/s | ack p50 ms | ack p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| ingest | {senders} | {seconds} | {} | {:.0} | {} | {} |",
        summary.count,
        summary.count as f64 / elapsed,
        stats::ms(summary.p50),
        stats::ms(summary.p99)
    );
    target.stop().await;
    Ok(())
}

fn generate(data: &std::path::Path, messages: u64) -> anyhow::Result<()> {
    use hallway::model::{ConvId, ConvKind, Role, Seq, UserId};
    use hallway::store::records::{ConversationRecord, Keep, MemberRecord, MessageRecord, UserRecord};
    use hallway::store::{Change, Store};

    if data.exists() {
        bail!("{} exists; choose a new path", data.display());
    }
    let store = Store::open(data)?;
    let now = hallway::model::now_millis();
    let hash = hallway::auth::hash_password(server::PASSWORD).map_err(|e| anyhow::anyhow!(e))?;
    let admin = UserId(1);
    let mut setup = vec![Change::PutUser(
        admin,
        UserRecord { name: "admin".into(), display_name: "Admin".into(), password_hash: hash, role: Role::Admin, created: now },
    )];
    let rooms = 10u64;
    for room in 1..=rooms {
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
            },
        ));
        setup.push(Change::PutMember(ConvId(room), admin, MemberRecord { joined: now, read_seq: 0 }));
    }
    store.apply_now(setup)?;
    let started = Instant::now();
    const BATCH: u64 = 20_000;
    let words = ["deploy", "lunch", "printer", "invoice", "meeting", "coffee", "release", "backup", "budget", "holiday"];
    let mut written = 0;
    while written < messages {
        let mut batch = Vec::with_capacity(BATCH as usize);
        for i in written..(written + BATCH).min(messages) {
            // Most traffic in #general, the rest spread over the other rooms.
            let room = if i % 2 == 0 { 1 } else { 2 + (i / 2) % (rooms - 1) };
            let seq = if room == 1 { i / 2 + 1 } else { (i / 2) / (rooms - 1) + 1 };
            let text = format!("message {i} about the {} and the {}", words[(i % 10) as usize], words[((i / 10) % 10) as usize]);
            batch.push(Change::PutMessage(
                ConvId(room),
                Seq(seq),
                MessageRecord {
                    author: admin,
                    text,
                    ts: now - (messages - i),
                    edited_ts: None,
                    deleted: false,
                    mentions: Vec::new(),
                    client_id: None,
                    rev: seq,
                },
            ));
        }
        written += batch.len() as u64;
        store.apply_now(batch)?;
    }
    let size = std::fs::metadata(data)?.len();
    println!(
        "wrote {messages} messages in {rooms} rooms to {} ({:.1} MiB) in {:.1} s",
        data.display(),
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
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
    let time = |path: String| {
        let addr = addr.clone();
        let cookie = cookie.clone();
        async move {
            let mut samples = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let t = Instant::now();
                let response = http::request(&addr, "GET", &path, Some(&cookie), None).await?;
                samples.push(t.elapsed().as_micros() as u64);
                if response.status != 200 || response.body["messages"].as_array().is_none_or(|m| m.is_empty()) {
                    bail!("GET {path}: {} {}", response.status, response.body);
                }
            }
            Ok::<_, anyhow::Error>(stats::summarize(samples))
        }
    };
    let latest = time("/api/conversations/1/messages?limit=50".into()).await?;
    let deep = time("/api/conversations/1/messages?before=1000&limit=50".into()).await?;
    println!("| scenario | what | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| history | start to serving | {} | | |", stats::ms(startup.as_micros() as u64));
    println!(
        "| history | latest 50 of #general (HTTP round trip) | {} | {} | {} |",
        stats::ms(latest.p50),
        stats::ms(latest.p99),
        stats::ms(latest.max)
    );
    println!(
        "| history | 50 before seq 1000 (deep) | {} | {} | {} |",
        stats::ms(deep.p50),
        stats::ms(deep.p99),
        stats::ms(deep.max)
    );
    println!("| history | keyword search | not built yet (records issue) | | |");
    target.stop().await;
    Ok(())
}
