//! The promise behind every `ack`: a message the server acknowledged is on disk, even if the
//! process is killed with SIGKILL the next instant. Runs the real binary, kills it mid-stream
//! several times, and checks every acknowledged message after each restart, in history and
//! in search (whose index is written in the background without an fsync of its own).

mod common;

use std::collections::BTreeMap;
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

    for round in 0..rounds() {
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
    }
    assert!(acknowledged.len() >= rounds() * MESSAGES_PER_ROUND / 2);

    // And the file still opens for the command line after the last kill.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["user", "list", "--data"])
        .arg(&data)
        .output()
        .expect("hallway user list");
    assert!(output.status.success(), "the data file should open after kill -9: {}", String::from_utf8_lossy(&output.stderr));
}
