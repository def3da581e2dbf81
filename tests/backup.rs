//! Backups from the admin's side: `hallway backup` against a running server (through its
//! control socket) and a stopped one, what it says when it cannot, and the copy itself
//! served again by a real server.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

/// Runs the `hallway` binary with `--data data` and `args`, with `envs` set.
async fn hallway(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .arg("--data")
        .arg(data)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .await
        .expect("the hallway binary should run")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn unlimited(config: &mut hallway::Config) {
    config.limits = hallway::limits::RateLimits::unlimited();
}

/// Every message of #general in the data file at `file`, as a server started on a copy of it
/// serves them to the admin.
async fn messages_in(file: &Path) -> Vec<(u64, String)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("served.redb");
    std::fs::copy(file, &copy).expect("copy the backup");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(copy)).await.expect("a server starts on the backup");
    let addr = server.local_addr().to_string();
    let http = reqwest::Client::new();
    let cookie = common::process::sign_in_admin(&http, &addr, None).await;
    let messages = common::process::all_messages(&http, &addr, &cookie, 1).await;
    server.shutdown().await;
    messages
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_server_under_load_holds_every_acknowledged_message_and_checks_out() {
    let server = TestServer::start_with(unlimited).await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    let data = server.data_file();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("backup.redb");

    // A colleague sends one message after another, each as soon as the last was acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tokio::spawn({
        let (acked, stop) = (acked.clone(), stop.clone());
        async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sent = Instant::now();
                let ack = tab.send_message(general, &format!("load {n}")).await;
                latencies.push((sent, sent.elapsed()));
                acked.store(ack["seq"].as_u64().expect("seq"), Ordering::SeqCst);
            }
            latencies
        }
    });
    // Enough history for the copy to take a moment; progress, not time, is the barrier.
    while acked.load(Ordering::SeqCst) < 500 {
        tokio::task::yield_now().await;
    }
    let before = acked.load(Ordering::SeqCst);
    let began = Instant::now();
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    let ended = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let latencies = sender.await.expect("the sender ran");
    assert!(backup.status.success(), "the backup should work against the running server: {}", text(&backup));
    assert!(text(&backup).contains("through the running server"), "{}", text(&backup));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).expect("the backup exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds password hashes: its owner alone reads it");
    }

    let mut during: Vec<Duration> =
        latencies.iter().filter(|(sent, _)| *sent >= began && *sent <= ended).map(|(_, latency)| *latency).collect();
    during.sort();
    println!(
        "backup took {:.0} ms; {} messages acknowledged during it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        (ended - began).as_secs_f64() * 1000.0,
        during.len(),
        percentile(&during, 0.5).as_secs_f64() * 1000.0,
        percentile(&during, 0.99).as_secs_f64() * 1000.0,
        during.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );

    let check = hallway(&data, &["check", out.to_str().expect("path")], &[]).await;
    assert!(check.status.success() && text(&check).contains("No problems found"), "the backup checks out: {}", text(&check));
    let messages = messages_in(&out).await;
    let load: Vec<&(u64, String)> = messages.iter().filter(|(_, text)| text.starts_with("load ")).collect();
    assert!(
        load.iter().any(|(seq, _)| *seq == before),
        "the last message acknowledged before the backup began (seq {before}) is in it"
    );
    let newest = load.last().map(|(seq, _)| *seq).unwrap_or(0);
    for (i, (_, text)) in load.iter().enumerate() {
        assert_eq!(*text, format!("load {}", i + 1), "every message up to the backup's newest ({newest}) is in it, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_private_replaces_a_stale_one_and_goes_with_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let socket = dir.path().join("hallway.redb.sock");
    // A server that was killed leaves its socket behind, with nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("a stale socket"));
    assert!(socket.exists());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("starts over a stale socket");
    let mode = std::fs::metadata(&socket).expect("the server listens on its socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the server's account (and root) may reach the control socket");
    let out = dir.path().join("first.redb");
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    assert!(backup.status.success(), "{}", text(&backup));

    // What the admin is told when a backup cannot be made.
    let again = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    assert!(!again.status.success() && text(&again).contains("exists"), "an existing file is never replaced: {}", text(&again));
    let nowhere = dir.path().join("no-such-folder").join("b.redb");
    let missing = hallway(&data, &["backup", nowhere.to_str().expect("path")], &[]).await;
    assert!(
        !missing.status.success() && text(&missing).contains("does not exist"),
        "a missing folder is named: {}",
        text(&missing)
    );
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    let refused = hallway(&data, &["backup", locked.join("b.redb").to_str().expect("path")], &[]).await;
    // Root may write anywhere; everyone else is told why not.
    // SAFETY: a plain system call without arguments.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !refused.status.success() && text(&refused).contains("permission denied"),
            "a folder the server may not write to is explained: {}",
            text(&refused)
        );
    }

    server.shutdown().await;
    assert!(!socket.exists(), "a clean shutdown removes the control socket");

    // Stopped: the command reads the file itself.
    let out = dir.path().join("stopped.redb");
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    assert!(backup.status.success() && text(&backup).contains("the server is stopped"), "{}", text(&backup));
    let none =
        hallway(&dir.path().join("absent.redb"), &["backup", dir.path().join("x.redb").to_str().expect("path")], &[]).await;
    assert!(!none.status.success() && text(&none).contains("no data file"), "{}", text(&none));
}

/// Sets the schema version a data file records, as a newer (or older) hallway would have.
fn set_schema(file: &Path, version: u64) {
    let db = redb::Database::open(file).expect("open");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta")).expect("meta");
        meta.insert("schema_version", version.to_be_bytes().as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

fn texts_of(messages: &[(u64, String)]) -> Vec<&str> {
    messages.iter().map(|(_, text)| text.as_str()).filter(|t| t.starts_with("before") || t.starts_with("after")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_brings_back_the_backup_keeps_the_replaced_file_and_refuses_junk_and_newer_files() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    let data = server.data_file();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("monday.redb");
    for n in 1..=3 {
        tab.send_message(general, &format!("before {n}")).await;
    }
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    assert!(backup.status.success(), "{}", text(&backup));
    for n in 1..=2 {
        tab.send_message(general, &format!("after {n}")).await;
    }
    let refused = hallway(&data, &["restore", out.to_str().expect("path")], &[]).await;
    assert!(
        !refused.status.success() && text(&refused).contains("server is running"),
        "a restore under a running server is refused: {}",
        text(&refused)
    );
    tab.close().await;
    server.stop().await;

    let restored = hallway(&data, &["restore", out.to_str().expect("path")], &[]).await;
    assert!(restored.status.success(), "{}", text(&restored));
    let aside: Vec<std::path::PathBuf> = std::fs::read_dir(data.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("hallway.redb.replaced-")))
        .collect();
    assert_eq!(aside.len(), 1, "the replaced file is kept aside with a timestamp: {aside:?}");
    assert!(text(&restored).contains(&aside[0].display().to_string()), "and the admin is told where: {}", text(&restored));
    assert!(out.exists(), "the backup itself stays");

    server.start_again().await;
    let admin = server.login(common::ADMIN_NAME, common::ADMIN_PASSWORD).await;
    let page = admin.history(general, "limit=100").await;
    let texts: Vec<String> =
        common::texts(&page).into_iter().filter(|t| t.starts_with("before") || t.starts_with("after")).collect();
    assert_eq!(texts, ["before 1", "before 2", "before 3"], "the server serves the state of the backup");
    server.stop().await;
    assert_eq!(
        texts_of(&messages_in(&aside[0]).await),
        ["before 1", "before 2", "before 3", "after 1", "after 2"],
        "the file kept aside holds what came after the backup"
    );

    // Files that are not backups of this Hallway change nothing.
    let before = std::fs::read(&data).expect("read the data file");
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"this is not a database, it is a shopping list".repeat(100)).expect("write");
    let refused = hallway(&data, &["restore", junk.to_str().expect("path")], &[]).await;
    assert!(!refused.status.success() && text(&refused).contains("not a Hallway data file"), "{}", text(&refused));
    let newer = dir.path().join("newer.redb");
    std::fs::copy(&out, &newer).expect("copy");
    set_schema(&newer, 99);
    let refused = hallway(&data, &["restore", newer.to_str().expect("path")], &[]).await;
    assert!(!refused.status.success() && text(&refused).contains("newer Hallway"), "{}", text(&refused));
    assert!(text(&refused).contains("schema 99"), "{}", text(&refused));
    assert_eq!(std::fs::read(&data).expect("read"), before, "the data file is as it was");
    let leftovers: Vec<String> = std::fs::read_dir(data.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "a refused restore leaves nothing behind: {leftovers:?}");

    let check = hallway(&data, &["check", junk.to_str().expect("path")], &[]).await;
    assert!(!check.status.success() && text(&check).contains("not a Hallway data file"), "{}", text(&check));
    let check = hallway(&data, &["check"], &[]).await;
    assert!(check.status.success(), "the restored data file checks out: {}", text(&check));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_page_copy_is_refused_a_backup_copies_the_tables_and_checks_out() {
    use common::process::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let refuse = [("HALLWAY_TEST_REFUSE_PAGE_COPY", "1"), ("RUST_LOG", "warn")];
    let mut server = start_binary_with_env(&data, &[], &refuse, std::process::Stdio::null()).await;
    let http = reqwest::Client::new();
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    let mut ws = raw_tab(&server.addr, &cookie).await;
    for i in 0..200 {
        let frame = serde_json::json!({"type": "send", "ref": i, "conv": 1, "text": format!("note {i}")});
        ws.send(Message::text(frame.to_string())).await.expect("send");
    }
    let mut acks = 0;
    while acks < 200 {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("acks should keep coming");
        let Some(Ok(Message::Text(frame))) = frame else { panic!("the connection ended before every ack") };
        let frame: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
        acks += usize::from(frame["type"] == "ack");
    }

    let out = dir.path().join("running.redb");
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &[]).await;
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(text(&backup).contains("(tables copy "), "the running server copied the tables: {}", text(&backup));
    let check = hallway(&data, &["check", out.to_str().expect("path")], &[]).await;
    assert!(check.status.success(), "the logical copy checks out: {}", text(&check));
    let notes = messages_in(&out).await.into_iter().filter(|(_, t)| t.starts_with("note ")).count();
    assert_eq!(notes, 200, "it holds every acknowledged message");

    // Killed: the socket is stale, and the command copies the stopped file's tables itself.
    server.child.start_kill().expect("kill -9");
    server.child.wait().await.expect("reaped");
    let out = dir.path().join("stopped.redb");
    let backup = hallway(&data, &["backup", out.to_str().expect("path")], &refuse).await;
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(text(&backup).contains("the server is stopped") && text(&backup).contains("(tables copy "), "{}", text(&backup));
    let check = hallway(&data, &["check", out.to_str().expect("path")], &[]).await;
    assert!(check.status.success(), "{}", text(&check));
    let pages = dir.path().join("pages.redb");
    let backup = hallway(&data, &["backup", pages.to_str().expect("path")], &[]).await;
    assert!(text(&backup).contains("(pages copy "), "without the test switch the pages are copied: {}", text(&backup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_downloads_a_checked_backup_and_a_member_is_refused_both_backup_endpoints() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    tab.send_message(general, "the backup should hold this").await;

    for path in ["/api/admin/backup", "/api/admin/backups"] {
        let (status, body) = bob.get(path).await;
        assert_eq!(status, 403, "a member may not reach {path}: {body}");
        assert_eq!(body["code"], "forbidden", "{body}");
        let (status, _) = server.anonymous_get(path).await;
        assert_eq!(status, 401, "nor may a stranger reach {path}");
    }

    let response = admin.http.get(format!("{}/api/admin/backup", admin.base)).send().await.expect("GET /api/admin/backup");
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"].to_str().expect("header").to_owned();
    assert!(disposition.starts_with("attachment; filename=\"hallway-") && disposition.ends_with(".redb\""), "{disposition}");
    let length: u64 = response.headers()["content-length"].to_str().expect("header").parse().expect("length");
    let bytes = response.bytes().await.expect("the backup's bytes");
    assert_eq!(bytes.len() as u64, length, "the whole backup arrives");
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("downloaded.redb");
    std::fs::write(&saved, &bytes).expect("save");
    let check = hallway(&server.data_file(), &["check", saved.to_str().expect("path")], &[]).await;
    assert!(check.status.success(), "the downloaded backup checks out: {}", text(&check));
    let messages = messages_in(&saved).await;
    assert!(messages.iter().any(|(_, t)| t == "the backup should hold this"), "{messages:?}");
    let left: Vec<String> = std::fs::read_dir(server.data_file().parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("download"))
        .collect();
    assert!(left.is_empty(), "nothing of the download is left beside the data file: {left:?}");

    let (status, overview) = admin.get("/api/admin/backups").await;
    assert_eq!(status, 200, "{overview}");
    assert!(overview["schedule"].is_null() && overview["backups"] == json!([]), "no schedule was set: {overview}");
}

fn daily(config: &mut hallway::Config) {
    let dir = config.data.with_file_name("backups");
    config.backup = Some(hallway::backups::Schedule { dir, keep: "7 daily, 4 weekly".parse().expect("keep") });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_writes_a_checked_backup_at_start_and_the_admin_page_lists_it() {
    let server = TestServer::start_with(daily).await;
    let admin = server.admin().await;
    // The first backup is due at start (the folder has none): wait for its result.
    let deadline = Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let (status, overview) = admin.get("/api/admin/backups").await;
        assert_eq!(status, 200, "{overview}");
        if !overview["last"].is_null() {
            break overview;
        }
        assert!(Instant::now() < deadline, "no scheduled backup within 30 s: {overview}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(overview["schedule"]["keep"], "7 daily, 4 weekly", "{overview}");
    assert_eq!(overview["schedule"]["every_hours"], 24, "{overview}");
    let last = &overview["last"];
    assert_eq!(last["ok"], true, "{overview}");
    assert!(last["check"].as_str().is_some_and(|c| c.starts_with("ok:")), "it was checked in full: {overview}");
    let listed = overview["backups"].as_array().expect("backups");
    assert_eq!(listed.len(), 1, "{overview}");
    assert_eq!(listed[0]["file"], last["file"]);
    assert_eq!(listed[0]["check"], last["check"]);
    let file = server.data_file().with_file_name("backups").join(last["file"].as_str().expect("file"));
    assert_eq!(listed[0]["bytes"], std::fs::metadata(&file).expect("the backup is in the folder").len());
    assert!(overview["schedule"]["next_at"].as_u64() > last["at"].as_u64(), "the next is a day later: {overview}");
    // A scraper sees how old the last good backup is (an alert fires when it grows).
    let metrics =
        admin.http.get(format!("{}/metrics", admin.base)).send().await.expect("GET /metrics").text().await.expect("text");
    let age = metrics
        .lines()
        .find(|l| l.starts_with("hallway_backup_age_seconds "))
        .unwrap_or_else(|| panic!("no backup age in:\n{metrics}"));
    let age: f64 = age.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number");
    assert!((0.0..60.0).contains(&age), "the backup was just made: {age}");
}
