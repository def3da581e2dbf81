//! Flood isolation (issue 14): one account floods #general with one kind of traffic for a
//! bounded time while a victim pair keeps talking there, paced, among online bystander tabs.
//! What the flood costs everyone else is the figure: the victim's delivery latency and losses,
//! bystander tabs dropped, and the server's memory and CPU; and what the flooder got through.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout_at;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::{server, stats, ws};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// `send`, pipelined, as fast as the server takes them.
    Messages,
    /// 16,000-character texts of ~3,200 distinct made-up `@abc` names.
    Mentions,
    /// `typing` frames.
    Typing,
    /// `presence` idle/active toggles.
    Presence,
    /// New tabs of the flooder's account, one after another.
    Tabs,
    /// Public `create_room`s with both victims put in them.
    Rooms,
}

pub struct Params {
    pub kind: Kind,
    pub seconds: u64,
    /// Bystander tabs online in #general besides the victims and the flooder.
    pub members: usize,
    /// Accounts the bystander tabs belong to.
    pub accounts: usize,
    /// Most tab openings the `tabs` kind tries.
    pub tabs: usize,
}

pub const HEADER: &str = "| scenario | kind | seconds | flooder frames through | through/s | flooder errors | flooder closed | flood frames the victim got | victim sent | received | lost | p50 ms | p99 ms | max ms | bystander tabs dropped | RSS before MiB | RSS after MiB | RSS peak MiB | server CPU s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

/// Every account is a member of #general; it is the room everyone shares.
const GENERAL: u64 = 1;
/// The victim's pace: 20 messages a second, as many as the server lets one person send for
/// long (a faster victim would be rate limited itself, and that is not what is measured).
const VICTIM_EVERY: Duration = Duration::from_millis(50);
/// After the flood the server gets this long to work off what it already accepted.
const DRAIN: Duration = Duration::from_secs(30);
/// The victim's last message says so; deliveries are in order, so nothing follows it.
const LAST: &str = " last";
/// The ref of the barrier the flooder sends after its flood.
const BARRIER: &str = "after-flood";
/// A tab the server closed is replaced after this pause, as a script that retries would; at
/// most `RECONNECTS` times (the pause alone keeps it near 100 in a 10 s flood).
const RECONNECT_AFTER: Duration = Duration::from_millis(100);
const RECONNECTS: usize = 200;

/// Where and as whom the flooder connects again.
struct Account {
    addr: String,
    cookie: String,
}

/// What the flooding account saw.
#[derive(Default)]
struct Flooder {
    /// Frames acknowledged (or tabs opened).
    through: u64,
    /// When the last of them was, for the rate: acks may go on well after the flood.
    last: Option<Instant>,
    /// Errors (or refused tab openings) by code.
    errors: BTreeMap<String, u64>,
    /// Close reasons of the flooder's tabs, by reason.
    closed: BTreeMap<String, u64>,
}

pub async fn run(bin: &Path, p: &Params) -> anyhow::Result<()> {
    if p.accounts == 0 || p.seconds == 0 {
        bail!("at least one bystander account and one second");
    }
    let dir = tempfile::tempdir()?;
    let mut target = server::fresh(bin, dir.path(), &[]).await?;
    let pid = target.pid().context("server pid")?;
    // user1 sends, user2 receives, user3 floods; the others are bystanders.
    let cookies = server::accounts(&target, 3 + p.accounts).await?;
    let addr = target.addr.clone();
    let (sender, sender_id) = online(&addr, &cookies[0]).await?;
    let (receiver, receiver_id) = online(&addr, &cookies[1]).await?;
    let (flooder, _) = online(&addr, &cookies[2]).await?;
    let (stop, stopped) = watch::channel(false);
    let mut bystanders = Vec::with_capacity(p.members + 1);
    for i in 0..p.members {
        let (tab, _) = online(&addr, &cookies[3 + i % p.accounts]).await.with_context(|| format!("bystander tab {i}"))?;
        bystanders.push(tokio::spawn(watch_tab(tab, stopped.clone())));
    }
    let (sink, stream) = sender.split();
    bystanders.push(tokio::spawn(watch_tab(stream, stopped.clone())));

    let rss_before = server::rss_kib(pid).context("reading the server's memory")?;
    // The peak of the flood, not of the setup's password hashing.
    let peak_from_here = server::reset_peak_rss(pid);
    let cpu_before = server::cpu_seconds(pid).context("reading the server's CPU time")?;
    let base = Instant::now();
    let deadline = base + Duration::from_secs(p.seconds);
    let end = deadline + DRAIN;
    let count = (Duration::from_secs(p.seconds).as_micros() / VICTIM_EVERY.as_micros()) as u64;
    let sending = tokio::spawn(send_paced(sink, base, count, end));
    let receiving = tokio::spawn(receive(receiver, base, end));
    let flooding = match p.kind {
        Kind::Tabs => tokio::spawn(open_tabs(addr.clone(), cookies[2].clone(), p.tabs, deadline, stopped.clone())),
        kind => {
            let account = Account { addr: addr.clone(), cookie: cookies[2].clone() };
            let victims = [sender_id, receiver_id];
            tokio::spawn(async move { (flood(kind, flooder, account, victims, deadline, end).await, Vec::new()) })
        }
    };
    let sent = sending.await?;
    let received = receiving.await?;
    let (mut flooder, extra_tabs) = flooding.await?;
    let rss_after = server::rss_kib(pid).context("reading the server's memory")?;
    let cpu = server::cpu_seconds(pid).context("reading the server's CPU time")? - cpu_before;
    let peak = server::peak_rss_kib(pid).filter(|_| peak_from_here);
    let _ = stop.send(true);
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(reason) = received.closed {
        *dropped.entry(reason).or_default() += 1;
    }
    for bystander in bystanders {
        if let Some(reason) = bystander.await? {
            *dropped.entry(reason).or_default() += 1;
        }
    }
    for tab in extra_tabs {
        if let Some(reason) = tab.await? {
            *flooder.closed.entry(reason).or_default() += 1;
        }
    }

    let s = stats::summarize(received.latencies);
    let kind = format!("{:?}", p.kind).to_lowercase();
    let span = flooder.last.map_or(1.0, |last| last.duration_since(base).as_secs_f64());
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    println!(
        "| flood | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} of {}{} | {} | {} | {} | {:.2} |",
        kind,
        p.seconds,
        flooder.through,
        flooder.through as f64 / span,
        tally(&flooder.errors),
        tally(&flooder.closed),
        received.flood,
        sent,
        s.count,
        sent.saturating_sub(s.count as u64),
        stats::ms(s.p50),
        stats::ms(s.p99),
        stats::ms(s.max),
        dropped.values().sum::<u64>(),
        p.members + 2,
        if dropped.is_empty() { String::new() } else { format!(" ({})", tally(&dropped)) },
        mib(rss_before),
        mib(rss_after),
        peak.map_or("n/a".to_string(), mib),
        cpu
    );
    target.stop().await;
    Ok(())
}

/// A signed-in tab that has read its whole `hello`, and its user's id.
async fn online(addr: &str, cookie: &str) -> anyhow::Result<(ws::Tab, u64)> {
    let mut tab = ws::connect(addr, cookie).await?;
    while let Some(frame) = tab.next().await {
        if let Message::Text(text) = frame? {
            let hello: Value = serde_json::from_str(&text)?;
            if hello["type"] == "hello" && hello["last"] == true {
                return Ok((tab, hello["me"]["id"].as_u64().context("hello without me.id")?));
            }
        }
    }
    bail!("the connection closed before hello")
}

/// How a tab's connection ended, when it did.
fn ended(frame: Option<Result<Message, WsError>>) -> Option<String> {
    match frame {
        Some(Ok(Message::Close(Some(close)))) => Some(format!("{} {}", u16::from(close.code), close.reason)),
        Some(Ok(Message::Close(None))) => Some("close without reason".into()),
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(format!("error: {e}")),
        None => Some("gone without close".into()),
    }
}

/// Reads (and drops) a tab's frames, as a tab that keeps up would, until the run is over;
/// returns why the server closed it if it did.
async fn watch_tab(
    mut tab: impl Stream<Item = Result<Message, WsError>> + Unpin,
    mut stopped: watch::Receiver<bool>,
) -> Option<String> {
    loop {
        tokio::select! {
            frame = tab.next() => if let Some(reason) = ended(frame) { return Some(reason) },
            _ = stopped.changed() => return None,
        }
    }
}

/// The victim's sender: `count` messages `t=<micros>` to #general, one every `VICTIM_EVERY`;
/// returns how many went out (its tab's end is watched with the bystanders').
async fn send_paced(mut sink: SplitSink<ws::Tab, Message>, base: Instant, count: u64, end: Instant) -> u64 {
    let mut ticker = tokio::time::interval(VICTIM_EVERY);
    for i in 0..count {
        ticker.tick().await;
        let last = if i + 1 == count { LAST } else { "" };
        let text = format!("t={}{last}", base.elapsed().as_micros());
        let frame = json!({"type": "send", "conv": GENERAL, "text": text}).to_string();
        if !matches!(timeout_at(end.into(), sink.send(Message::text(frame))).await, Ok(Ok(()))) {
            return i;
        }
    }
    count
}

/// What the victim's receiver saw.
#[derive(Default)]
struct Received {
    /// Each delivery's latency (µs) from its send.
    latencies: Vec<u64>,
    /// Every other frame: what of the flood reached a colleague (messages, typing, presence,
    /// rooms it was put in).
    flood: u64,
    /// Why the server closed the tab, if it did.
    closed: Option<String>,
}

/// The victim's receiver, until the last message or `end`.
async fn receive(mut tab: ws::Tab, base: Instant, end: Instant) -> Received {
    let mut seen = Received::default();
    loop {
        let frame = match timeout_at(end.into(), tab.next()).await {
            Ok(frame) => frame,
            Err(_) => return seen,
        };
        if let Some(Ok(Message::Text(text))) = &frame {
            if let Some(sent) = ws::sent_at(text) {
                seen.latencies.push((base.elapsed().as_micros() as u64).saturating_sub(sent));
                if text.contains(&format!("{LAST}\"")) {
                    return seen;
                }
            } else {
                seen.flood += 1;
            }
        } else if let Some(reason) = ended(frame) {
            seen.closed = Some(reason);
            return seen;
        }
    }
}

/// The flooder's `n`th frame of `kind`, with `n` as its ref so every one is answered.
fn frame(kind: Kind, n: u64, victims: [u64; 2], random: &mut crate::Random) -> String {
    let frame = match kind {
        Kind::Messages => json!({"type": "send", "ref": n, "conv": GENERAL, "text": format!("flood {n}")}),
        Kind::Mentions => {
            // `@abc ` is 5 characters: 3,200 of them fill the 16,000 a message may have.
            let mut text = String::with_capacity(16_000);
            while text.len() + 5 <= 16_000 {
                let name: String = (0..3).map(|_| (b'a' + (random.next() % 26) as u8) as char).collect();
                text.push('@');
                text.push_str(&name);
                text.push(' ');
            }
            json!({"type": "send", "ref": n, "conv": GENERAL, "text": text})
        }
        Kind::Typing => json!({"type": "typing", "ref": n, "conv": GENERAL}),
        Kind::Presence => json!({"type": "presence", "ref": n, "idle": n.is_multiple_of(2)}),
        Kind::Rooms => json!({"type": "create_room", "ref": n, "name": format!("flood-{n}"), "topic": "",
                              "private": false, "members": victims}),
        Kind::Tabs => unreachable!("tabs are opened, not sent"),
    };
    frame.to_string()
}

/// Sends frames of `kind` as fast as the socket takes them until `deadline`, without waiting
/// for answers, then a ping barrier; counts the answers until the barrier's (or `end`). A
/// tab the server closes is replaced, after `RECONNECT_AFTER`, until the flood's time is up.
async fn flood(kind: Kind, first: ws::Tab, account: Account, victims: [u64; 2], deadline: Instant, end: Instant) -> Flooder {
    let mut seen = Flooder::default();
    let mut random = crate::Random(0x2545_f491_4f6c_dd1d);
    let mut n = 0u64;
    let mut next = Some(first);
    for _ in 0..=RECONNECTS {
        let tab = match next.take() {
            Some(tab) => tab,
            None => match timeout_at(deadline.into(), async {
                tokio::time::sleep(RECONNECT_AFTER).await;
                ws::connect(&account.addr, &account.cookie).await
            })
            .await
            {
                Ok(Ok(tab)) => tab,
                Ok(Err(e)) => {
                    *seen.errors.entry(format!("{e:#}")).or_default() += 1;
                    continue;
                }
                Err(_) => break,
            },
        };
        let (mut sink, stream) = tab.split();
        let mut reader = tokio::spawn(answers(stream, end));
        let closed = tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => None,
            answered = &mut reader => Some(answered),
            _ = async {
                while sink.send(Message::text(frame(kind, n, victims, &mut random))).await.is_ok() {
                    n += 1;
                }
            } => Some((&mut reader).await),
        };
        let answered = match closed {
            Some(answered) => answered,
            None => {
                let barrier = json!({"type": "ping", "ref": BARRIER}).to_string();
                let _ = timeout_at(end.into(), sink.send(Message::text(barrier))).await;
                reader.await
            }
        };
        let answered = answered.unwrap_or_default();
        seen.through += answered.through;
        seen.last = seen.last.max(answered.last);
        for (what, count) in answered.errors {
            *seen.errors.entry(what).or_default() += count;
        }
        for (reason, count) in answered.closed {
            *seen.closed.entry(reason).or_default() += count;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    seen
}

/// The flooder's tab's answers, until the barrier's, the tab's end, or `end`.
async fn answers(mut stream: SplitStream<ws::Tab>, end: Instant) -> Flooder {
    let mut seen = Flooder::default();
    loop {
        let frame = match timeout_at(end.into(), stream.next()).await {
            Ok(frame) => frame,
            Err(_) => {
                *seen.errors.entry(format!("barrier unanswered after {} s", DRAIN.as_secs())).or_default() += 1;
                return seen;
            }
        };
        if let Some(Ok(Message::Text(text))) = &frame {
            if text.starts_with("{\"type\":\"ack\"") {
                if text.contains(&format!("\"ref\":\"{BARRIER}\"")) {
                    return seen;
                }
                seen.through += 1;
                seen.last = Some(Instant::now());
            } else if text.starts_with("{\"type\":\"error\"") {
                let error: Value = serde_json::from_str(text).unwrap_or_default();
                *seen.errors.entry(error["code"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
            }
        } else if let Some(reason) = ended(frame) {
            *seen.closed.entry(reason).or_default() += 1;
            return seen;
        }
    }
}

/// Opens tabs of the flooder's account one after another (at most `tabs` tries, until
/// `deadline`); each is watched until the run is over, by the tasks returned.
async fn open_tabs(
    addr: String,
    cookie: String,
    tabs: usize,
    deadline: Instant,
    stopped: watch::Receiver<bool>,
) -> (Flooder, Vec<JoinHandle<Option<String>>>) {
    let mut seen = Flooder::default();
    let mut open = Vec::new();
    for _ in 0..tabs {
        match timeout_at(deadline.into(), ws::connect(&addr, &cookie)).await {
            Ok(Ok(tab)) => {
                seen.through += 1;
                seen.last = Some(Instant::now());
                open.push(tokio::spawn(watch_tab(tab, stopped.clone())));
            }
            Ok(Err(e)) => *seen.errors.entry(format!("{:#}", e)).or_default() += 1,
            Err(_) => break,
        }
    }
    (seen, open)
}

/// `reason ×count, ...`, or `none`.
fn tally(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(what, n)| format!("{what} ×{n}")).collect::<Vec<_>>().join(", ")
}
