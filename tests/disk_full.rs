//! A full disk: sends that cannot be saved get a `storage` error (never an ack), everything
//! acknowledged before is kept, and the server keeps serving everyone. Runs the real binary on
//! a tiny tmpfs that this test mounts (so it needs root, as the test command does).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::process::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a {size} tmpfs failed: this test needs root (tests/run.sh runs as root in CI)");
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Sends one message with `reference` and returns the `ack` or `error` answering it.
async fn send_and_wait(ws: &mut RawTab, reference: &str, text: &str) -> Value {
    request(ws, json!({"type": "send", "ref": reference, "conv": 1, "text": text})).await
}

/// Sends a frame carrying a string `ref` and returns the `ack` or `error` answering it.
async fn request(ws: &mut RawTab, frame: Value) -> Value {
    let reference = frame["ref"].clone();
    ws.send(Message::text(frame.to_string())).await.expect("send");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a reply within 10 s")
            .expect("open")
            .expect("frame");
        let Message::Text(frame) = frame else { continue };
        let frame: Value = serde_json::from_str(&frame).expect("json");
        if frame["ref"] == reference && (frame["type"] == "ack" || frame["type"] == "error") {
            return frame;
        }
    }
}

/// The whole `hello` of a new tab, its parts merged.
async fn hello_of(ws: &mut RawTab) -> Value {
    let mut hello = json!({"users": [], "presence": [], "conversations": []});
    loop {
        let Some(Ok(Message::Text(frame))) = ws.next().await else { panic!("the tab closed before its hello") };
        let part: Value = serde_json::from_str(&frame).expect("json");
        for list in ["users", "presence", "conversations"] {
            let more = part[list].as_array().cloned().unwrap_or_default();
            hello[list].as_array_mut().expect("list").extend(more);
        }
        if part["last"] == true {
            return hello;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_messages_clearly_and_loses_nothing_acknowledged() {
    let disk = SmallDisk::mount("3m");
    let data = disk.path.join("hallway.redb");
    let mut server = start_binary(&data).await;
    let addr = server.addr.clone();
    let http = reqwest::Client::new();
    let cookie = sign_in_admin(&http, &addr, Some(server.setup_token.take().expect("setup token"))).await;
    let mut ws = raw_tab(&addr, &cookie).await;

    // Fill the disk with 15 KB messages, one at a time, until the server says it cannot save.
    let text = "x".repeat(15_000);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..400 {
        let reply = send_and_wait(&mut ws, &format!("m{i}"), &format!("{i} {text}")).await;
        if reply["type"] == "ack" {
            acked.push(reply["seq"].as_u64().expect("seq"));
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a 3 MB disk must fill up within 400 messages of 15 KB");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "storage", "a send that could not be saved says so: {refused}");
    assert!(acked.len() > 10, "some messages fit before the disk filled: {}", acked.len());

    // The server keeps serving: the same tab still gets answers, and reads work.
    ws.send(Message::text(json!({"type": "ping", "ref": "p"}).to_string())).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(Message::Text(frame))) = ws.next().await {
            if frame.contains("\"pong\"") {
                return true;
            }
        }
        false
    })
    .await
    .expect("pong in time");
    assert!(pong, "the tab keeps working after the storage error");
    let health = http.get(format!("http://{addr}/api/health")).send().await.expect("health");
    assert_eq!(health.status(), 503, "the health endpoint tells the operator that saving fails");
    let health: Value = health.json().await.expect("health json");
    assert!(health["message"].as_str().is_some_and(|m| m.contains("free space")), "and what to do: {health}");

    // Still full: another send is refused the same way, and reading goes on.
    let again = send_and_wait(&mut ws, "again", "still full?").await;
    assert_eq!(again["code"], "storage", "{again}");

    // Other changes that cannot be saved are refused too, and taken back in memory: a tab
    // opened now sees the topic and the status as they are on disk.
    let topic = request(&mut ws, json!({"type": "set_topic", "ref": "topic", "conv": 1, "topic": "never saved"})).await;
    assert_eq!(topic["code"], "storage", "a topic that cannot be saved is refused: {topic}");
    let status = request(&mut ws, json!({"type": "set_status", "ref": "status", "dnd": true, "status": "never saved"})).await;
    assert_eq!(status["code"], "storage", "a status that cannot be saved is refused: {status}");
    let fresh = hello_of(&mut raw_tab(&addr, &cookie).await).await;
    let general =
        fresh["conversations"].as_array().expect("conversations").iter().find(|c| c["id"] == 1).expect("general").clone();
    assert_ne!(general["topic"], "never saved", "memory must not run ahead of the file: {general}");
    let me = fresh["presence"].as_array().expect("presence").iter().find(|p| p["user"] == 1).expect("my presence").clone();
    assert_ne!(me["status"], "never saved", "{me}");
    assert_ne!(me["state"], "dnd", "{me}");

    // Nothing acknowledged is lost: not now, and not after a hard kill and a restart with room.
    let history = |addr: String, cookie: String| {
        let http = http.clone();
        async move { all_messages(&http, &addr, &cookie, 1).await.into_iter().map(|(seq, _)| seq).collect::<Vec<u64>>() }
    };
    let stored = history(addr.clone(), cookie.clone()).await;
    for seq in &acked {
        assert!(stored.contains(seq), "acknowledged message {seq} is in history while the disk is full");
    }

    // The operator frees space: the next send is saved, without a restart.
    let status = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&disk.path).status().expect("remount");
    assert!(status.success(), "growing the tmpfs");
    let recovered = send_and_wait(&mut ws, "recovered", "room again").await;
    assert_eq!(recovered["type"], "ack", "once there is room the server saves again by itself: {recovered}");
    acked.push(recovered["seq"].as_u64().expect("seq"));
    let health = http.get(format!("http://{addr}/api/health")).send().await.expect("health");
    assert_eq!(health.status(), 200, "and says it is healthy again");

    server.child.start_kill().expect("kill -9");
    server.child.wait().await.expect("reaped");
    let restarted = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &restarted.addr, None).await;
    let stored = history(restarted.addr.clone(), cookie).await;
    for seq in &acked {
        assert!(stored.contains(seq), "acknowledged message {seq} survived the full disk, kill -9 and restart");
    }
}

/// A backup onto a disk without room for it (and for the data file to grow meanwhile) is
/// refused before it starts, with the sizes, and leaves nothing behind; the data file goes on
/// taking messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_would_fill_the_disk_is_refused_with_the_sizes() {
    use hallway::model::{ConvId, Seq, UserId};
    use hallway::store::records::MessageRecord;
    use hallway::store::{Change, Store, StoreError, writer::Writer};

    let message = |seq: u64| {
        let record =
            MessageRecord::new(UserId(1), format!("note {seq} {}", "and some more words to fill the disk ".repeat(12)), seq, 0);
        Change::PutMessage(ConvId(1), Seq(seq), record)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("live.redb")).expect("data file");
    let (writer, thread) = Writer::start(store.clone());
    writer.write((1..=100).map(message).collect()).await.expect("saved");

    // 80 MiB: room for a small file's backup and the 64 MiB kept free beside it.
    let disk = SmallDisk::mount("80m");
    writer.backup(disk.path.join("small.redb")).await.expect("a small file fits");

    for first in (101..=40_100).step_by(2_000) {
        writer.write((first..first + 2_000).map(message).collect()).await.expect("saved");
    }
    let size = std::fs::metadata(dir.path().join("live.redb")).expect("size").len();
    assert!(size > 16 << 20, "the data file grew to {size} bytes, too little for this test");
    let refused = writer.backup(disk.path.join("big.redb")).await;
    let Err(StoreError::Backup(why)) = &refused else { panic!("refused: {refused:?}") };
    assert!(why.contains("not enough space") && why.contains("MiB are free"), "{why}");
    let left: Vec<_> = std::fs::read_dir(&disk.path).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left, ["small.redb"], "nothing of the refused backup is left on the small disk");

    writer.write(vec![message(40_101)]).await.expect("chat goes on");
    thread.stop(writer).await;
}
