//! Room fan-out: N receivers in one room (a Hallway room, an MQTT topic, an IRC channel),
//! S extra sender connections posting `t=<micros>` texts, paced or not. Every delivery's
//! latency is measured from the send to the receiver reading it; deliveries that never
//! arrive are counted as lost.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::{server, stats, ws};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    Hallway,
    Mosquitto,
    Ngircd,
}

pub struct Params {
    pub members: usize,
    pub senders: usize,
    pub messages: usize,
    pub rate: u64,
    pub accounts: usize,
}

/// A receiver gives up after this long without a delivery.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

enum Sender {
    Hallway(futures_util::stream::SplitSink<ws::Tab, Message>),
    Mqtt(OwnedWriteHalf),
    Irc(OwnedWriteHalf),
}

impl Sender {
    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        match self {
            Sender::Hallway(sink) => {
                sink.send(Message::text(json!({"type": "send", "conv": 1, "text": text}).to_string())).await?
            }
            Sender::Mqtt(w) => w.write_all(&mqtt_publish("bench", text.as_bytes())).await?,
            Sender::Irc(w) => w.write_all(format!("PRIVMSG #bench :{text}\r\n").as_bytes()).await?,
        }
        Ok(())
    }
}

/// Counts deliveries as they happen, for the deliveries-per-second figure.
#[derive(Clone)]
struct Tally {
    base: Instant,
    delivered: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
}

impl Tally {
    fn record(&self, sent: u64, latencies: &mut Vec<u64>) {
        let now = self.base.elapsed().as_micros() as u64;
        latencies.push(now.saturating_sub(sent));
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last.fetch_max(now, Ordering::Relaxed);
    }
}

/// A peer server process started for the run.
struct PeerProcess {
    child: Child,
    _dir: tempfile::TempDir,
}

pub async fn run(bin: &Path, peer: Peer, p: &Params) -> anyhow::Result<()> {
    if p.senders == 0 {
        bail!("at least one sender");
    }
    let per_sender = p.messages / p.senders;
    let expected = (per_sender * p.senders) as u64;
    let tally = Tally { base: Instant::now(), delivered: Arc::new(AtomicU64::new(0)), last: Arc::new(AtomicU64::new(0)) };
    let dir = tempfile::tempdir()?;

    let mut hallway = None;
    let mut process = None;
    let mut receivers: Vec<JoinHandle<Vec<u64>>> = Vec::with_capacity(p.members);
    let mut senders = Vec::with_capacity(p.senders);
    match peer {
        Peer::Hallway => {
            let target = server::fresh(bin, dir.path(), &["--no-rate-limits".to_string()]).await?;
            let cookies = server::accounts(&target, p.accounts.clamp(1, p.members + p.senders)).await?;
            for i in 0..p.members + p.senders {
                let mut tab = ws::connect(&target.addr, &cookies[i % cookies.len()]).await?;
                wait_hello(&mut tab).await.with_context(|| format!("tab {i}"))?;
                let (sink, stream) = tab.split();
                if i < p.members {
                    receivers.push(tokio::spawn(receive_hallway(stream, expected, tally.clone())));
                } else {
                    senders.push(Sender::Hallway(sink));
                    // The sender's own copies are read and dropped so it never counts as slow.
                    tokio::spawn(stream.for_each(|_| async {}));
                }
            }
            hallway = Some(target);
        }
        Peer::Mosquitto => {
            let (child, addr) =
                start_peer("mosquitto", &["-c"], include_str!("../peers/mosquitto.conf"), "mosquitto.conf", &dir).await?;
            process = Some(child);
            for i in 0..p.members + p.senders {
                let (read, mut write) = mqtt_connect(&addr, &format!("c{i}")).await?;
                if i < p.members {
                    write.write_all(&mqtt_subscribe("bench")).await?;
                    let mut read = BufReader::new(read);
                    mqtt_wait_suback(&mut read).await?;
                    // The write half stays open inside the task so the broker keeps the session.
                    receivers.push(tokio::spawn(receive_mqtt(read, write, expected, tally.clone())));
                } else {
                    drop(read);
                    senders.push(Sender::Mqtt(write));
                }
            }
        }
        Peer::Ngircd => {
            let (child, addr) =
                start_peer("ngircd", &["-n", "-f"], include_str!("../peers/ngircd.conf"), "ngircd.conf", &dir).await?;
            process = Some(child);
            for i in 0..p.members + p.senders {
                let (read, write) = irc_join(&addr, &format!("u{i}")).await?;
                if i < p.members {
                    receivers.push(tokio::spawn(receive_irc(read, write, expected, tally.clone())));
                } else {
                    // Senders are in the channel too (it is +n); IRC does not echo to them.
                    tokio::spawn(async move {
                        let mut lines = read.lines();
                        while let Ok(Some(_)) = lines.next_line().await {}
                    });
                    senders.push(Sender::Irc(write));
                }
            }
        }
    }

    let first_send = tally.base.elapsed().as_micros() as u64;
    let mut tasks = Vec::new();
    for mut sender in senders {
        let base = tally.base;
        let interval = (p.rate > 0).then(|| Duration::from_secs_f64(p.senders as f64 / p.rate as f64));
        tasks.push(tokio::spawn(async move {
            let mut ticker = interval.map(tokio::time::interval);
            for _ in 0..per_sender {
                if let Some(ticker) = ticker.as_mut() {
                    ticker.tick().await;
                }
                sender.send(&format!("t={}", base.elapsed().as_micros())).await?;
            }
            Ok::<_, anyhow::Error>(sender)
        }));
    }
    let mut keep = Vec::new();
    for task in tasks {
        keep.push(task.await??);
    }
    let mut latencies = Vec::new();
    for receiver in receivers {
        latencies.extend(receiver.await?);
    }
    drop(keep);
    let total = tally.delivered.load(Ordering::Relaxed);
    let span = tally.last.load(Ordering::Relaxed).saturating_sub(first_send).max(1);
    let want = expected * p.members as u64;
    let s = stats::summarize(latencies);
    println!(
        "| fanout | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
        peer,
        p.members,
        p.senders,
        expected,
        if p.rate == 0 { "unpaced".to_string() } else { format!("{}/s", p.rate) },
        total,
        want - total.min(want),
        stats::ms(s.p50),
        stats::ms(s.p99),
        stats::ms(s.max),
        total as f64 / (span as f64 / 1e6)
    );
    if let Some(mut target) = hallway {
        target.stop().await;
    }
    if let Some(mut process) = process {
        let _ = process.child.kill().await;
    }
    if total < want {
        bail!("{} deliveries were lost", want - total);
    }
    Ok(())
}

pub const HEADER: &str = "| scenario | server | members | senders | messages | rate | deliveries | lost | p50 ms | p99 ms | max ms | deliveries/s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

async fn wait_hello(tab: &mut ws::Tab) -> anyhow::Result<()> {
    loop {
        match tab.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("{\"type\":\"hello\"") && t.contains("\"last\":true") => return Ok(()),
            Some(Ok(_)) => {}
            _ => bail!("closed before hello"),
        }
    }
}

async fn receive_hallway(mut stream: futures_util::stream::SplitStream<ws::Tab>, expected: u64, tally: Tally) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(expected as usize);
    while (latencies.len() as u64) < expected {
        match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Some(sent) = ws::sent_at(&text) {
                    tally.record(sent, &mut latencies);
                }
            }
            Ok(Some(Ok(Message::Close(close)))) => {
                eprintln!("the server closed a tab: {close:?}");
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    latencies
}

/// Starts a peer from its config template on a free loopback port; returns it and its address.
async fn start_peer(
    program: &str,
    flags: &[&str],
    template: &str,
    file: &str,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(PeerProcess, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config: PathBuf = dir.path().join(file);
    std::fs::write(&config, template.replace("PORT", &port.to_string()))?;
    let run_dir = tempfile::tempdir()?;
    let child = Command::new(program)
        .args(flags)
        .arg(&config)
        .current_dir(run_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program} (apt-get install {program})"))?;
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if TcpStream::connect(&addr).await.is_ok() {
            return Ok((PeerProcess { child, _dir: run_dir }, addr));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{program} did not listen on {addr} within 5 s")
}

// ---- MQTT 3.1.1, just CONNECT, SUBSCRIBE and QoS 0 PUBLISH ----

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn mqtt_packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut packet = vec![kind];
    remaining_length(body.len(), &mut packet);
    packet.extend_from_slice(body);
    packet
}

fn mqtt_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn mqtt_publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_string(topic, &mut body);
    body.extend_from_slice(payload);
    mqtt_packet(0x30, &body)
}

fn mqtt_subscribe(topic: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    mqtt_string(topic, &mut body);
    body.push(0);
    mqtt_packet(0x82, &body)
}

async fn mqtt_connect(addr: &str, client_id: &str) -> anyhow::Result<(OwnedReadHalf, OwnedWriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let mut body = Vec::new();
    mqtt_string("MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    mqtt_string(client_id, &mut body);
    write.write_all(&mqtt_packet(0x10, &body)).await?;
    let mut connack = [0u8; 4];
    read.read_exact(&mut connack).await?;
    if connack[0] != 0x20 || connack[3] != 0 {
        bail!("mosquitto refused the connection: {connack:?}");
    }
    Ok((read, write))
}

async fn mqtt_read_packet(read: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<(u8, Vec<u8>)> {
    let kind = read.read_u8().await?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let byte = read.read_u8().await?;
        len |= ((byte & 0x7f) as usize) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    read.read_exact(&mut body).await?;
    Ok((kind, body))
}

async fn mqtt_wait_suback(read: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<()> {
    loop {
        let (kind, _) = mqtt_read_packet(read).await?;
        if kind == 0x90 {
            return Ok(());
        }
    }
}

async fn receive_mqtt(mut read: BufReader<OwnedReadHalf>, _write: OwnedWriteHalf, expected: u64, tally: Tally) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(expected as usize);
    while (latencies.len() as u64) < expected {
        match tokio::time::timeout(IDLE_TIMEOUT, mqtt_read_packet(&mut read)).await {
            Ok(Ok((kind, body))) if kind & 0xf0 == 0x30 && body.len() >= 2 => {
                let topic_len = u16::from_be_bytes([body[0], body[1]]) as usize;
                let payload = &body[2 + topic_len..];
                if let Some(sent) =
                    std::str::from_utf8(payload).ok().and_then(|t| t.strip_prefix("t=")).and_then(|t| t.parse().ok())
                {
                    tally.record(sent, &mut latencies);
                }
            }
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    latencies
}

// ---- IRC: register, join, PRIVMSG ----

async fn irc_join(addr: &str, nick: &str) -> anyhow::Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #bench\r\n").as_bytes()).await?;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            bail!("ngircd closed the connection of {nick}");
        }
        if line.starts_with("PING") {
            write.write_all(line.replacen("PING", "PONG", 1).as_bytes()).await?;
        }
        // 366: end of the channel's name list, so the join is complete.
        if line.split_whitespace().nth(1) == Some("366") {
            return Ok((read, write));
        }
        if line.split_whitespace().nth(1).is_some_and(|c| c.starts_with('4')) {
            bail!("ngircd refused {nick}: {line}");
        }
    }
}

async fn receive_irc(mut read: BufReader<OwnedReadHalf>, mut write: OwnedWriteHalf, expected: u64, tally: Tally) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(expected as usize);
    let mut line = String::new();
    while (latencies.len() as u64) < expected {
        line.clear();
        match tokio::time::timeout(IDLE_TIMEOUT, read.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {
                if let Some(rest) = line.split(" PRIVMSG #bench :t=").nth(1) {
                    if let Ok(sent) = rest.trim_end().parse() {
                        tally.record(sent, &mut latencies);
                    }
                } else if line.starts_with("PING") {
                    let _ = write.write_all(line.replacen("PING", "PONG", 1).as_bytes()).await;
                }
            }
            _ => break,
        }
    }
    latencies
}
