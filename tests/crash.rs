//! The promise behind every `ack`: a message the server acknowledged is on disk, even if the
//! process is killed with SIGKILL the next instant. Runs the real binary, kills it mid-stream
//! several times, and checks every acknowledged message after each restart, in history and
//! in search (whose index is written in the background without an fsync of its own). After
//! every kill the file must open without redb's full repair (which reads the whole file, about
//! a second per GiB): each commit records the allocator state (quick repair).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::process::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Kill rounds; `HALLWAY_CRASH_ROUNDS=20` for the DESIGN.md target (benches/README.md).
fn rounds() -> usize {
    std::env::var("HALLWAY_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3)
}
const MESSAGES_PER_ROUND: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let http = reqwest::Client::new();
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    let general = 1;

    // One start more than kills: the last start checks the last round's acks.
    for round in 0..=rounds() {
        let mut server = start_binary(&data).await;
        let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;

        // Everything acknowledged before the previous kill must be there, exactly.
        let stored: BTreeMap<u64, String> = all_messages(&http, &server.addr, &cookie, general).await.into_iter().collect();
        for (seq, text) in &acknowledged {
            assert_eq!(
                stored.get(seq),
                Some(text),
                "round {round}: message {seq} was acknowledged before kill -9 but is missing after restart"
            );
        }
        // Search finds exactly the stored messages of each earlier round, acknowledged or not.
        for earlier in 0..round {
            let word = format!("round{earlier}");
            let found: BTreeMap<u64, String> = search_all(&http, &server.addr, &cookie, &word).await.into_iter().collect();
            let expected: BTreeMap<u64, String> =
                stored.iter().filter(|(_, text)| text.starts_with(&format!("{word} "))).map(|(s, t)| (*s, t.clone())).collect();
            assert_eq!(found, expected, "round {round}: searching {word} after kill -9 finds what history holds");
        }
        if round == rounds() {
            server.child.start_kill().expect("stop the server");
            server.child.wait().await.expect("the server is reaped");
            break;
        }

        // Stream messages without waiting, and kill the server halfway through the acks.
        let mut ws = raw_tab(&server.addr, &cookie).await;
        for i in 0..MESSAGES_PER_ROUND {
            let frame = json!({"type": "send", "ref": i, "conv": general, "text": format!("round{round} message {i}")});
            ws.send(Message::text(frame.to_string())).await.expect("send");
        }
        let kill_after = MESSAGES_PER_ROUND / 2;
        let mut acks = 0;
        while acks < kill_after {
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("acks should keep coming");
            let Some(Ok(Message::Text(text))) = frame else { panic!("the connection ended before {kill_after} acks") };
            let frame: Value = serde_json::from_str(&text).expect("JSON frame");
            if frame["type"] == "ack" {
                let i = frame["ref"].as_u64().expect("ref");
                acknowledged.insert(frame["seq"].as_u64().expect("seq"), format!("round{round} message {i}"));
                acks += 1;
            }
        }
        server.child.start_kill().expect("kill -9");
        server.child.wait().await.expect("the killed server is reaped");
        assert_opens_without_full_repair(&data, dir.path(), round);
    }
    assert!(acknowledged.len() >= rounds() * MESSAGES_PER_ROUND / 2);
    let last_round = format!("round{} ", rounds() - 1);
    assert!(acknowledged.values().any(|text| text.starts_with(&last_round)), "the last round's acks were checked too");

    // And the file still opens for the command line after the last kill.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["user", "list", "--data"])
        .arg(&data)
        .output()
        .expect("hallway user list");
    assert!(output.status.success(), "the data file should open after kill -9: {}", String::from_utf8_lossy(&output.stderr));
}

/// Opens a copy of the file a kill left (the file itself is for the next start) with a repair
/// callback that refuses a full repair: redb calls it only when the last durable commit left
/// no valid allocator record, that is, when opening would read every page of the file.
fn assert_opens_without_full_repair(data: &std::path::Path, dir: &std::path::Path, round: usize) {
    let copy = dir.join("copy.redb");
    std::fs::copy(data, &copy).expect("copy the data file");
    let opened = redb::Database::builder().set_repair_callback(|session| session.abort()).open(&copy);
    assert!(
        opened.is_ok(),
        "round {round}: after kill -9 the data file needs redb's full repair: {:?}",
        opened.err().map(|e| e.to_string())
    );
    drop(opened);
    std::fs::remove_file(&copy).expect("remove the copy");
}

/// Sends in flight per tab while the server is killed.
const IN_FLIGHT: usize = 64;
/// Acks each tab reads before the kill.
const ACKED_BEFORE_KILL: usize = 300;

/// One tab that keeps `IN_FLIGHT` sends with a `client_id` in flight until it has
/// `ACKED_BEFORE_KILL` acks, then stops reading. Returns the acks as client_id -> seq, and
/// every send made (client_id -> text).
async fn keep_sends_in_flight(mut ws: RawTab, tab: usize, conv: u64) -> (BTreeMap<String, u64>, BTreeMap<String, String>) {
    let mut sent: BTreeMap<String, String> = BTreeMap::new();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = 0;
    let mut send_next = async |ws: &mut RawTab, sent: &mut BTreeMap<String, String>| {
        let (client_id, text) = (format!("tab{tab}-{next}"), format!("tab{tab} in flight {next}"));
        let frame = json!({"type": "send", "ref": client_id, "conv": conv, "text": text, "client_id": client_id});
        ws.send(Message::text(frame.to_string())).await.expect("send");
        sent.insert(client_id, text);
        next += 1;
    };
    for _ in 0..IN_FLIGHT {
        send_next(&mut ws, &mut sent).await;
    }
    while acked.len() < ACKED_BEFORE_KILL {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("acks should keep coming");
        let Some(Ok(Message::Text(text))) = frame else { panic!("tab {tab}: the connection ended before the kill") };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        if frame["type"] == "ack" {
            let client_id = frame["client_id"].as_str().expect("the ack of a send echoes its client_id").to_owned();
            acked.insert(client_id, frame["seq"].as_u64().expect("seq"));
            send_next(&mut ws, &mut sent).await;
        }
        assert_ne!(frame["type"], "error", "tab {tab}: a send failed: {frame}");
    }
    (acked, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_every_unacknowledged_send_after_kill_9_posts_nothing_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let http = reqwest::Client::new();
    let general = 1;

    let mut server = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    // A message acknowledged long before the crash, whose ack the client then lost.
    let mut ws = raw_tab(&server.addr, &cookie).await;
    let early = json!({"type": "send", "ref": "early", "conv": general, "text": "sent long before", "client_id": "early-1"});
    ws.send(Message::text(early.to_string())).await.expect("send");
    let first_seq = loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else { panic!("the connection ended") };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        if frame["type"] == "ack" {
            break frame["seq"].as_u64().expect("seq");
        }
    };
    drop(ws);

    let tabs = [raw_tab(&server.addr, &cookie).await, raw_tab(&server.addr, &cookie).await];
    let runs = tabs.into_iter().enumerate().map(|(tab, ws)| tokio::spawn(keep_sends_in_flight(ws, tab, general)));
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent: BTreeMap<String, String> = BTreeMap::new();
    for run in runs.collect::<Vec<_>>() {
        let (tab_acked, tab_sent) = run.await.expect("a tab's sends");
        acked.extend(tab_acked);
        sent.extend(tab_sent);
    }
    server.child.start_kill().expect("kill -9");
    server.child.wait().await.expect("the killed server is reaped");

    // After the restart the client resends everything it has no ack for, and the early one.
    let mut server = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    let mut ws = raw_tab(&server.addr, &cookie).await;
    let unacknowledged: Vec<(&String, &String)> = sent.iter().filter(|(id, _)| !acked.contains_key(*id)).collect();
    assert!(unacknowledged.len() >= 2 * IN_FLIGHT - 2, "each tab had its sends in flight at the kill");
    for (client_id, text) in &unacknowledged {
        let frame = json!({"type": "send", "ref": client_id, "conv": general, "text": text, "client_id": client_id});
        ws.send(Message::text(frame.to_string())).await.expect("resend");
    }
    ws.send(Message::text(early.to_string())).await.expect("resend");
    let mut answered = BTreeSet::new();
    let mut early_again = None;
    while answered.len() < unacknowledged.len() || early_again.is_none() {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("every resend is answered");
        let Some(Ok(Message::Text(text))) = frame else { panic!("the connection ended before every resend was answered") };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        match (frame["type"].as_str(), frame["ref"].as_str()) {
            (Some("ack"), Some("early")) => early_again = frame["seq"].as_u64(),
            (Some("ack"), Some(client_id)) => {
                answered.insert(client_id.to_owned());
            }
            (Some("error"), _) => panic!("a resend was refused: {frame}"),
            _ => {}
        }
    }
    assert_eq!(early_again, Some(first_seq), "the resend of a message acknowledged long before is answered with its first seq");

    let stored = all_messages(&http, &server.addr, &cookie, general).await;
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, text) in &stored {
        *count.entry(text.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "messages posted more than once after resending: {twice:?}");
    for text in sent.values() {
        assert_eq!(count.get(text.as_str()), Some(&1), "{text:?} is in history once");
    }
    let id_of: BTreeMap<&String, &String> = sent.iter().map(|(id, text)| (text, id)).collect();
    for (seq, text) in &stored {
        if let Some(acked_seq) = id_of.get(text).and_then(|id| acked.get(*id)) {
            assert_eq!(acked_seq, seq, "{text:?} is where its ack said");
        }
    }
    server.child.start_kill().expect("stop the server");
    server.child.wait().await.expect("the server is reaped");
}
