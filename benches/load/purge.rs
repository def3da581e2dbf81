//! `hallway-load purge`: a generated file whose oldest messages are past a one-day limit,
//! served under `--records retain:1`, purged by the server on its own (its first sweep comes
//! 5 s after start) while one tab posts to #general and another receives it over a real
//! WebSocket. Prints the purge rate, the chat's delivery latency before, during and after
//! the purge and during the vacuum that follows it, the purge batches as the server's log
//! tells them, the online vacuum's time, and then `hallway compact` on the stopped server.
//! Stops once the vacuum is done, or after `timeout` seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{http, server, stats, ws};

pub struct Params {
    pub messages: u64,
    pub past: u64,
    pub rate: u64,
    pub dir: PathBuf,
    pub timeout: u64,
}

fn micros_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn sign_in(addr: &str, name: &str) -> anyhow::Result<String> {
    let body = json!({"name": name, "password": server::PASSWORD});
    let login = http::request(addr, "POST", "/api/login", None, Some(&body)).await?;
    login.cookie.with_context(|| format!("signing in {name}: {} {}", login.status, login.body))
}

pub async fn run(bin: &std::path::Path, params: &Params) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(&params.dir)?;
    let data = dir.path().join("purge.redb");
    let (messages, past) = (params.messages, params.past);
    let path = data.clone();
    tokio::task::spawn_blocking(move || {
        crate::generate(&path, &crate::Generated { messages, past, edits: 0, profile: false, index: true })
    })
    .await??;
    let generated_bytes = std::fs::metadata(&data)?.len();

    let extra: Vec<String> = ["--records", "retain:1", "--no-rate-limits"].map(String::from).into();
    let (child, addr, startup, mut log) =
        server::spawn_logged(bin, &data, &extra, "hallway=info,hallway::core::hub::keeping=debug").await?;
    let mut target = server::Target { addr: addr.clone(), admin: String::new(), child: Some(child) };
    let result = measure(&addr, params, &mut log, generated_bytes, startup).await;
    target.stop().await;
    result?;

    // Offline, as an operator would with the server stopped.
    let before = std::fs::metadata(&data)?.len();
    let started = Instant::now();
    let status = tokio::process::Command::new(bin)
        .arg("compact")
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("hallway compact failed: {status}");
    }
    let after = std::fs::metadata(&data)?.len();
    println!(
        "| purge | `hallway compact` afterwards (server stopped) | {:.1} s, {} -> {} MiB | |",
        started.elapsed().as_secs_f64(),
        before / 1048576,
        after / 1048576
    );
    Ok(())
}

/// What the server's log said, as the tool read it.
#[derive(Default)]
struct Seen {
    purge_start: Option<Instant>,
    purge_end: Option<Instant>,
    purged: u64,
    batches: Vec<u64>,
    batch_micros: Vec<u64>,
    vacuum_end: Option<Instant>,
    vacuum: Option<(u64, u64, u64)>,
}

async fn measure(
    addr: &str,
    params: &Params,
    log: &mut tokio::sync::mpsc::UnboundedReceiver<server::LogLine>,
    generated_bytes: u64,
    startup: Duration,
) -> anyhow::Result<()> {
    let sender_cookie = sign_in(addr, "admin").await?;
    let receiver_cookie = sign_in(addr, "user2").await?;
    let mut receiver = ws::connect(addr, &receiver_cookie).await?;
    let sender = ws::connect(addr, &sender_cookie).await?;
    let (mut send, mut echo) = sender.split();
    // The sender's own copies and acks, read so that its queue never fills.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = echo.next().await {} });
    let stop = Arc::new(AtomicBool::new(false));
    let general = 1;
    let rate = params.rate.max(1);
    let sending = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let text = format!("t={} chat while the purge runs", micros_now());
                n += 1;
                send.send(Message::text(json!({"type": "send", "ref": n, "conv": general, "text": text}).to_string())).await?;
            }
            Ok::<_, anyhow::Error>(n)
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let receiving = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, u64)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), receiver.next()).await else { continue };
                let Some(frame) = frame else { break };
                let Ok(text) = frame?.into_text() else { continue };
                if let Some(sent) = ws::sent_at(&text) {
                    samples.push((Instant::now(), micros_now().saturating_sub(sent)));
                }
            }
            Ok::<_, anyhow::Error>(samples)
        })
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(params.timeout);
    let mut seen = Seen::default();
    while seen.vacuum_end.is_none() {
        let Ok(Some((at, line))) = tokio::time::timeout_at(deadline.into(), log.recv()).await else {
            break;
        };
        if line.contains("purged messages past what the conversation keeps") {
            let micros = field(&line, "micros").unwrap_or(0);
            seen.purge_start.get_or_insert(at - Duration::from_micros(micros));
            seen.batches.push(field(&line, "messages").unwrap_or(0));
            seen.batch_micros.push(micros);
        } else if line.contains("purge sweep done") {
            seen.purge_end = Some(at);
            seen.purged = field(&line, "messages").unwrap_or(0);
        } else if line.contains("data file rewritten after purges") {
            seen.vacuum_end = Some(at);
            seen.vacuum = Some((
                field(&line, "bytes_before").unwrap_or(0),
                field(&line, "bytes_after").unwrap_or(0),
                field(&line, "millis").unwrap_or(0),
            ));
        } else if line.contains("WARN") || line.contains("ERROR") {
            eprintln!("server: {line}");
        }
    }
    // A few seconds of chat after the vacuum, then the last deliveries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = sending.await??;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // What is left of #general is younger than the limit.
    let cookie = sign_in(addr, "admin").await?;
    let oldest = http::request(addr, "GET", "/api/conversations/1/messages?after=0&limit=1", Some(&cookie), None).await?;
    let first_ts = oldest.body["messages"][0]["ts"].as_u64().unwrap_or(0);
    let day_ago = micros_now() / 1000 - 24 * 3600 * 1000;
    drain.abort();
    done.store(true, Ordering::Relaxed);
    let samples = receiving.await??;
    let (Some(start), Some(end), Some(vacuumed), Some((before, after, millis))) =
        (seen.purge_start, seen.purge_end, seen.vacuum_end, seen.vacuum)
    else {
        bail!("the purge and vacuum did not both finish within {} s (purged {} so far)", params.timeout, seen.batches.len());
    };
    if first_ts < day_ago {
        bail!("#general still holds a message older than the limit (ts {first_ts})");
    }
    let phase = |from: Option<Instant>, to: Option<Instant>| {
        stats::summarize(
            samples
                .iter()
                .filter(|(at, _)| from.is_none_or(|f| *at >= f) && to.is_none_or(|t| *at < t))
                .map(|(_, l)| *l)
                .collect(),
        )
    };
    let took = (end - start).as_secs_f64();
    let batches = stats::summarize(seen.batches.clone());
    let batch_micros = stats::summarize(seen.batch_micros.clone());
    println!("| scenario | what | result | |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| purge | file | {} messages, {} past the limit, {} MiB; server up in {:.1} s | |",
        params.messages,
        params.past,
        generated_bytes / 1048576,
        startup.as_secs_f64()
    );
    println!(
        "| purge | purged {} in {:.1} s | {:.0} messages/s | {} batches |",
        seen.purged,
        took,
        seen.purged as f64 / took,
        seen.batches.len()
    );
    println!("| purge | batch size p50 / p99 / max | {} / {} / {} messages | |", batches.p50, batches.p99, batches.max);
    println!(
        "| purge | batch submit to commit p50 / p99 / max | {} / {} / {} ms | |",
        stats::ms(batch_micros.p50),
        stats::ms(batch_micros.p99),
        stats::ms(batch_micros.max)
    );
    for (what, summary) in [
        ("chat delivery before the purge", phase(None, Some(start))),
        ("chat delivery during the purge", phase(Some(start), Some(end))),
        ("chat delivery during the vacuum", phase(Some(end), Some(vacuumed))),
        ("chat delivery after", phase(Some(vacuumed), None)),
    ] {
        println!(
            "| purge | {what}: p50 / p99 / max | {} / {} / {} ms | {} messages |",
            stats::ms(summary.p50),
            stats::ms(summary.p99),
            stats::ms(summary.max),
            summary.count
        );
    }
    println!(
        "| purge | online vacuum after the purge | {:.1} s, {} -> {} MiB | {sent} chat messages sent, {} received |",
        millis as f64 / 1000.0,
        before / 1048576,
        after / 1048576,
        samples.len()
    );
    Ok(())
}
