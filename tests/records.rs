//! What is kept: the server's policy and each conversation's choice within it, as members
//! see it, and the promise behind "not recorded": not one byte of such a message reaches
//! the data file or the log, even when the server is killed and restarted.

mod common;

use std::time::Duration;

use common::process::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use hallway::core::records::Policy;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn off(config: &mut hallway::Config) {
    config.records = Policy::Off;
}
fn archive(config: &mut hallway::Config) {
    config.records = Policy::Archive;
}
fn retain_1(config: &mut hallway::Config) {
    config.records = Policy::Retain(1);
}
fn retain_30(config: &mut hallway::Config) {
    config.records = Policy::Retain(30);
}

fn set(conv: u64, keep: &str, days: Option<u32>) -> Value {
    json!({"type": "set_records", "conv": conv, "keep": keep, "days": days})
}

/// Alice (the admin) and bob, each with a tab, and their DM.
struct Dm {
    server: TestServer,
    admin: Client,
    bob: Client,
    alice_tab: Ws,
    bob_tab: Ws,
    bob_id: u64,
    dm: u64,
}

async fn dm_of_alice_and_bob() -> Dm {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let mut alice_tab = admin.ws().await;
    let mut bob_tab = bob.ws().await;
    let bob_id = bob_tab.hello["me"]["id"].as_u64().unwrap();
    let dm = alice_tab.ack(json!({"type": "open_dm", "users": [bob_id]})).await["conv"].as_u64().unwrap();
    bob_tab.recv_where("the DM", |f| f["type"] == "conversation").await;
    Dm { server, admin, bob, alice_tab, bob_tab, bob_id, dm }
}

fn general_of(ws: &Ws) -> u64 {
    ws.room_id("general")
}

#[tokio::test]
async fn the_policy_is_shown_before_and_after_sign_in_and_bounds_every_choice() {
    let server = TestServer::start_with(archive).await;
    // The sign-in page can warn that everything is archived before anyone signs in.
    let (status, body) = server.anonymous_get("/api/session").await;
    assert_eq!((status, body["records"]["policy"].as_str()), (200, Some("archive")), "{body}");
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = general_of(&tab);
    let conv = tab.hello_conversation(general).expect("general in hello");
    assert_eq!(conv["records"]["keep"], "archive", "under archive every conversation says it is archived: {conv}");
    assert_eq!(conv["records"]["default"], true);
    let refused = tab.expect_error(set(general, "nothing", None), "forbidden").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("archives"), "the refusal says why: {refused}");

    let server = TestServer::start_with(off).await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = general_of(&tab);
    assert_eq!(tab.hello_conversation(general).unwrap()["records"]["keep"], "nothing");
    assert_eq!(tab.hello_conversation(general).unwrap()["recorded"], false);
    tab.expect_error(set(general, "forever", None), "forbidden").await;

    let server = TestServer::start_with(retain_30).await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = general_of(&tab);
    let records = &tab.hello_conversation(general).unwrap()["records"];
    assert_eq!((records["keep"].as_str(), records["days"].as_u64()), (Some("days"), Some(30)), "forever is the policy's days");
    let refused = tab.expect_error(set(general, "days", Some(31)), "bad_request").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("30"), "{refused}");
    tab.ack(set(general, "days", Some(7))).await;
    let changed = tab.recv_type("records").await;
    assert_eq!((changed["records"]["keep"].as_str(), changed["records"]["days"].as_u64()), (Some("days"), Some(7)));
    assert_eq!(changed["records"]["default"], false, "a conversation keeping less than the default is marked");
}

#[tokio::test]
async fn only_a_rooms_creator_or_an_admin_changes_it_and_everyone_sees_who_did() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let carol = server.add_user(&admin, "carol").await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let (carol_id, bob_id) = (carol_tab.hello["me"]["id"].as_u64().unwrap(), bob_tab.hello["me"]["id"].as_u64().unwrap());
    let room =
        bob_tab.ack(json!({"type": "create_room", "name": "patrons", "members": [carol_id]})).await["conv"].as_u64().unwrap();
    carol_tab.recv_where("the new room", |f| f["type"] == "conversation").await;

    let refused = carol_tab.expect_error(set(room, "nothing", None), "forbidden").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("creator"), "{refused}");

    bob_tab.ack(set(room, "nothing", None)).await;
    for tab in [&mut bob_tab, &mut carol_tab] {
        let changed = tab.recv_type("records").await;
        assert_eq!(changed["records"]["keep"], "nothing");
        assert_eq!(changed["records"]["set_by"], bob_id, "members see who set it");
        let line = tab.recv_where("the system line", |f| f["type"] == "message" && f["message"]["system"].is_object()).await;
        assert_eq!(line["message"]["system"], json!({"type": "records", "keep": "nothing", "days": null}));
        assert_eq!(line["message"]["author"], bob_id);
    }
    // The line is unread for carol, like any message from someone else, in a tab she opens now.
    let carol_again = carol.ws().await;
    assert_eq!(carol_again.hello_conversation(room).unwrap()["unread"], 1, "the system line counts as unread");
    // The line that recording went off is kept (the history shows where the gap begins).
    let page = bob.history(room, "").await;
    assert!(page["messages"].as_array().unwrap().iter().any(|m| m["system"]["keep"] == "nothing"), "{page}");
    let line_seq = page["messages"].as_array().unwrap().last().unwrap()["seq"].clone();
    bob_tab.expect_error(json!({"type": "edit", "conv": room, "seq": line_seq, "text": "x"}), "forbidden").await;
}

#[tokio::test]
async fn a_dm_is_never_recorded_more_than_either_person_chose() {
    let Dm { server: _server, admin: _admin, bob: _bob, mut alice_tab, mut bob_tab, bob_id, dm } = dm_of_alice_and_bob().await;

    bob_tab.ack(set(dm, "nothing", None)).await;
    assert_eq!(bob_tab.recv_type("records").await["records"]["keep"], "nothing");
    // Alice asks for more: her choice is shown, but the DM keeps the less-keeping one's.
    alice_tab.ack(set(dm, "days", Some(7))).await;
    let shown = alice_tab
        .recv_where("records after alice's choice", |f| f["type"] == "records" && f["records"]["set_by"] != bob_id)
        .await;
    assert_eq!(shown["records"]["keep"], "nothing", "one person alone cannot record a DM: {shown}");
    let choices = shown["records"]["choices"].as_array().expect("choices in a DM");
    assert!(choices.iter().any(|c| c["user"] == bob_id && c["keep"] == "nothing"), "{shown}");
    // Once bob agrees to keep, the DM keeps what alice chose, the lesser of the two.
    bob_tab.ack(set(dm, "forever", None)).await;
    let agreed =
        bob_tab.recv_where("records after bob agrees", |f| f["type"] == "records" && f["records"]["keep"] != "nothing").await;
    assert_eq!((agreed["records"]["keep"].as_str(), agreed["records"]["days"].as_u64()), (Some("days"), Some(7)));
}

#[tokio::test]
async fn a_tab_that_blinked_catches_up_on_what_was_not_recorded_but_a_restart_forgets_it() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let room = tab.ack(json!({"type": "create_room", "name": "desk"})).await["conv"].as_u64().unwrap();
    tab.ack(set(room, "nothing", None)).await;
    let first = tab.send_message(room, "the code is 4411").await["seq"].as_u64().unwrap();
    tab.ack(json!({"type": "edit", "conv": room, "seq": first, "text": "the code is 4412"})).await;
    let second = tab.send_message(room, "back at 3").await["seq"].as_u64().unwrap();

    let caught_up = admin.history(room, "after=0").await;
    assert_eq!(
        texts(&caught_up).iter().filter(|t| !t.is_empty()).cloned().collect::<Vec<_>>(),
        ["the code is 4412", "back at 3"]
    );
    let page = admin.history(room, &format!("before={second}")).await;
    assert_eq!(texts(&page).last().map(String::as_str), Some("the code is 4412"), "paging back finds it too: {page}");
    let (status, found) = admin.get("/api/search?q=4412").await;
    assert_eq!((status, found["results"].as_array().map(Vec::len)), (200, Some(0)), "never indexed: {found}");

    server.restart().await;
    let admin = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let mut tab = admin.ws().await;
    let after_restart = admin.history(room, "after=0").await;
    assert!(
        !texts(&after_restart).iter().any(|t| t.contains("back at 3") || t.contains("4412")),
        "gone on restart: {after_restart}"
    );
    let next = tab.send_message(room, "new one").await["seq"].as_u64().unwrap();
    assert!(next > second, "a seq after the restart ({next}) must not repeat one a tab saw before it ({second})");
}

/// Every byte of `path`, searched for `needle`.
fn file_has(path: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Sends `frame` (with its `ref`) from a raw tab and returns the reply with that ref.
async fn request_raw(tab: &mut RawTab, frame: Value) -> Value {
    tab.send(Message::text(frame.to_string())).await.expect("send");
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), tab.next()).await.expect("a reply within 5 s");
        let Some(Ok(frame_in)) = next else { panic!("the tab closed before the reply to {frame}") };
        if let Message::Text(text) = frame_in {
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            // Frames are answered in order, so the first reply with this ref is this frame's.
            if value["ref"] == frame["ref"] {
                return value;
            }
        }
    }
}

/// Sends `text` to `conv` from a raw tab and waits for its ack.
/// `hallway backup OUT` against the server running on `data` (through its control socket).
async fn backup_running(data: &std::path::Path, out: &std::path::Path) {
    let done = tokio::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .arg("--data")
        .arg(data)
        .arg("backup")
        .arg(out)
        .output()
        .await
        .expect("hallway backup runs");
    assert!(done.status.success(), "hallway backup failed: {}", String::from_utf8_lossy(&done.stderr));
}

async fn send_raw(tab: &mut RawTab, conv: u64, text: &str) {
    let reply = request_raw(tab, json!({"type": "send", "ref": "s", "conv": conv, "text": text})).await;
    assert_eq!(reply["type"], "ack", "the send should be acked: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_records_off_no_byte_of_a_message_reaches_the_file_or_the_log_even_after_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let log = dir.path().join("stderr.log");
    let http = reqwest::Client::new();
    let mut setup = None;
    for round in 0..3 {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
        let mut server = start_binary_with(&data, &["--records", "off"], "debug", stderr).await;
        let token = if round == 0 { server.setup_token.take() } else { setup.take() };
        let cookie = sign_in_admin(&http, &server.addr, token).await;
        let mut tab = raw_tab(&server.addr, &cookie).await;
        let secret = format!("patron-secret-{round}-QX7");
        send_raw(&mut tab, 1, &secret).await;
        send_raw(&mut tab, 1, &format!("{secret} again, to flush")).await;
        let backup = dir.path().join(format!("meanwhile-{round}.redb"));
        backup_running(&data, &backup).await;
        assert!(!file_has(&backup, &secret), "round {round}: {secret} is in a backup taken meanwhile under --records off");
        // kill -9 right after the ack: nothing may be waiting to be written either.
        server.child.start_kill().expect("kill -9");
        server.child.wait().await.expect("reaped");
        for earlier in 0..=round {
            let secret = format!("patron-secret-{earlier}-QX7");
            assert!(!file_has(&data, &secret), "round {round}: {secret} is in the data file under --records off");
            assert!(!file_has(&log, &secret), "round {round}: {secret} is in the server's log");
        }
        assert!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > 0, "the log was written (else the check proves nothing)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_set_to_not_recorded_leaves_nothing_while_a_recorded_one_is_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let log = dir.path().join("stderr.log");
    let http = reqwest::Client::new();
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut server = start_binary_with(&data, &[], "debug", stderr).await;
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    let mut tab = raw_tab(&server.addr, &cookie).await;
    let created = request_raw(&mut tab, json!({"type": "create_room", "ref": "c", "name": "desk"})).await;
    let room = created["conv"].as_u64().expect("the room");
    let set = json!({"type": "set_records", "ref": "r", "conv": room, "keep": "nothing"});
    assert_eq!(request_raw(&mut tab, set).await["type"], "ack");
    send_raw(&mut tab, room, "unrecorded-token-ZZ9").await;
    send_raw(&mut tab, 1, "recorded-token-KK4").await;
    let backup = dir.path().join("meanwhile.redb");
    backup_running(&data, &backup).await;
    assert!(file_has(&backup, "recorded-token-KK4"), "a recorded message is in a backup taken meanwhile");
    assert!(!file_has(&backup, "unrecorded-token-ZZ9"), "a not-recorded message reached a backup taken meanwhile");
    server.child.start_kill().expect("kill -9");
    server.child.wait().await.expect("reaped");
    assert!(file_has(&data, "recorded-token-KK4"), "a recorded message is in the file (so the scan can see text)");
    assert!(!file_has(&data, "unrecorded-token-ZZ9"), "a not-recorded message reached the data file");
    assert!(!file_has(&log, "unrecorded-token-ZZ9"), "a not-recorded message reached the log");
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn until_read_keeps_a_message_until_everyone_read_it_then_no_byte_of_it_stays() {
    let Dm { server, admin, bob, mut alice_tab, mut bob_tab, bob_id: _, dm } = dm_of_alice_and_bob().await;
    alice_tab.ack(set(dm, "until_read", None)).await;
    bob_tab.ack(set(dm, "until_read", None)).await;
    let seq = alice_tab.send_message(dm, "until-read-token-U1 see you at 3").await["seq"].as_u64().unwrap();
    alice_tab.ack(json!({"type": "read", "conv": dm, "seq": seq})).await;

    // Bob has not read it: it is kept for him, in history and search.
    server.purge(now()).await;
    assert!(
        texts(&bob.history(dm, "").await).iter().any(|t| t.contains("until-read-token-U1")),
        "kept while bob has not read it"
    );
    let (_, found) = bob.get("/api/search?q=until").await;
    assert_eq!(found["results"].as_array().map(Vec::len), Some(1), "{found}");

    bob_tab.ack(json!({"type": "read", "conv": dm, "seq": seq})).await;
    // The read itself starts the purge (no sweep asked for): open tabs drop the message.
    // Open tabs drop it from view as well.
    for (who, tab) in [("alice", &mut alice_tab), ("bob", &mut bob_tab)] {
        let told = tab.recv_where("the purge", |f| f["type"] == "purged" && f["conv"] == dm).await;
        let seqs = told["seqs"].as_array().expect("seqs");
        assert!(seqs.contains(&json!(seq)), "{who}'s tab should be told the message went: {told}");
        assert!(seqs.iter().all(|s| s.as_u64().is_some_and(|s| s <= seq)), "only what everyone read went: {told}");
    }
    server.purge(now()).await; // waits for the rewrite of the file after the purge
    for (who, client) in [("alice", &admin), ("bob", &bob)] {
        let page = client.history(dm, "");
        assert!(!texts(&page.await).iter().any(|t| t.contains("until-read-token-U1")), "{who} still has it after both read it");
    }
    let (_, found) = bob.get("/api/search?q=until").await;
    assert_eq!(found["results"], json!([]), "the index forgot it too");
    // The purge that went first rewrote the file when it was done: no byte of it is left.
    assert!(!file_has(&server.data_file(), "until-read-token-U1"), "no byte of it is in the data file after the purge");
    let next = alice_tab.send_message(dm, "after").await["seq"].as_u64().unwrap();
    assert!(next > seq, "seqs go on after a purge");
}

#[tokio::test]
async fn under_retain_1_a_message_older_than_a_day_goes_from_history_search_and_the_file() {
    let server = TestServer::start_with(retain_1).await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    tab.send_message(general, "retained-token-R1 yesterday's news").await;
    assert_eq!(server.purge(now()).await, 0, "a message of today is kept");
    assert!(texts(&admin.history(general, "").await).iter().any(|t| t.contains("retained-token-R1")));

    // Two days later by the purge's clock.
    let purged = server.purge(now() + 2 * 24 * 3600 * 1000).await;
    assert!(purged >= 1, "the old message is purged: {purged}");
    assert!(!texts(&admin.history(general, "").await).iter().any(|t| t.contains("retained-token-R1")));
    let (_, found) = admin.get("/api/search?q=retained").await;
    assert_eq!(found["results"], json!([]));
    assert!(!file_has(&server.data_file(), "retained-token-R1"), "no byte of it is in the data file after the purge");
}

fn retain_1_indexing_on_demand(config: &mut hallway::Config) {
    config.records = Policy::Retain(1);
    config.hold_index = true;
}

/// In a stopped server's file: the keyword index's blocks of conversation `conv`, and the
/// terms queued for the sweep.
fn index_blocks_and_queue(path: &std::path::Path, conv: u64) -> (usize, u64) {
    use hallway::store::tables::{CONVTERM_PURGED, TERMCONVFIRST_POSTINGS};
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
    let db = redb::Database::open(path).expect("open the data file");
    let txn = db.begin_read().expect("read");
    let index = txn.open_table(TERMCONVFIRST_POSTINGS).expect("index");
    let blocks = index.iter().expect("iter").filter(|e| e.as_ref().expect("entry").0.value().1 == conv).count();
    (blocks, txn.open_table(CONVTERM_PURGED).expect("queue").len().expect("len"))
}

#[tokio::test]
async fn a_purge_leaves_no_search_index_entry_of_its_messages_even_before_the_file_is_rewritten() {
    let mut server = TestServer::start_with(retain_1_indexing_on_demand).await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    // A first purge, which rewrites the file: the next one today does not.
    tab.send_message(general, "warm-up").await;
    while server.index_steps(100).await {}
    assert_eq!(server.purge(now() + 2 * 24 * 3600 * 1000).await, 1);

    for i in 0..100 {
        tab.send_message(general, &format!("sweep-token-S1 lunch number {i}")).await;
    }
    while server.index_steps(100).await {}
    let purged = server.purge(now() + 4 * 24 * 3600 * 1000).await;
    assert_eq!(purged, 100, "every message of #general is past its day");
    let (_, found) = admin.get("/api/search?q=sweep-token-S1").await;
    assert_eq!(found["results"], json!([]), "search never reaches them: {found}");
    drop(tab);
    server.stop().await;
    let (blocks, queued) = index_blocks_and_queue(&server.data_file(), general);
    assert!(
        blocks > 0 && queued > 0,
        "the purge's own commit left the index as it was, and queued its terms: {blocks}, {queued}"
    );

    // The writer sweeps them in the background (here on demand), after a restart too.
    server.start_again().await;
    while server.index_steps(100).await {}
    server.stop().await;
    assert_eq!(
        index_blocks_and_queue(&server.data_file(), general),
        (0, 0),
        "no term of a purged message stays in the index, though the file was not rewritten"
    );
    let report = hallway::store::check::check_file(&server.data_file()).expect("check");
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn a_deleted_or_edited_away_text_leaves_the_file_at_the_next_sweep() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    let deleted = tab.send_message(general, "deleted-token-D1 oops, wrong room").await["seq"].as_u64().unwrap();
    let edited = tab.send_message(general, "edited-token-E1 typo").await["seq"].as_u64().unwrap();
    tab.send_message(general, "kept-token-K1 stays").await;
    tab.ack(json!({"type": "delete", "conv": general, "seq": deleted})).await;
    tab.ack(json!({"type": "edit", "conv": general, "seq": edited, "text": "fixed"})).await;
    // The sweep (every 10 minutes; here asked for) rewrites the file after deletes and edits.
    server.purge(now()).await;
    let file = server.data_file();
    assert!(file_has(&file, "kept-token-K1"), "what is kept is still in the file (so the scan sees text)");
    assert!(!file_has(&file, "deleted-token-D1"), "a deleted text is gone from the file's bytes");
    assert!(!file_has(&file, "edited-token-E1"), "an edited-away text is gone from the file's bytes");
}

fn fixed_keep(config: &mut hallway::Config) {
    config.records = Policy::Keep;
    config.records_fixed = true;
}

/// What an office notices if this fails: the admin changes what is kept, and people's
/// banners still show the old rule, or the change is lost at the next restart, or a member
/// could change it.
#[tokio::test]
async fn an_admin_changes_the_policy_online_every_tab_hears_it_and_it_outlives_a_restart() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let mut bob_tab = bob.ws().await;
    let general = bob_tab.room_id("general");
    assert_eq!(bob_tab.hello["records"]["policy"], "keep");
    assert_eq!(bob_tab.hello["records"]["fixed"], false);
    let mut admin_tab = admin.ws().await;
    admin_tab.send_message(general, "policy-token-P1 from before").await;

    let (status, body) = bob.post("/api/admin/records", json!({"policy": "off"})).await;
    assert_eq!(status, 403, "a member must not change what the office keeps: {body}");
    let (status, body) = admin.post("/api/admin/records", json!({"policy": "retain"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "retain needs its days: {body}");

    let (status, body) = admin.post("/api/admin/records", json!({"policy": "retain", "days": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"]["policy"], "retain");
    let told = bob_tab.recv_type("policy").await;
    assert_eq!((told["records"]["policy"].as_str(), told["records"]["days"].as_u64()), (Some("retain"), Some(1)), "{told}");
    let banner = bob_tab.recv_where("#general's records", |f| f["type"] == "records" && f["conv"] == general).await;
    assert_eq!((banner["records"]["keep"].as_str(), banner["records"]["days"].as_u64()), (Some("days"), Some(1)), "{banner}");
    let (_, session) = bob.get("/api/session").await;
    assert_eq!(session["records"]["policy"], "retain", "the sign-in page shows the new rule: {session}");

    // What the new rule no longer allows goes at the next purge.
    let purged = server.purge(now() + 2 * 24 * 3600 * 1000).await;
    assert!(purged >= 1, "the message older than the new limit is purged: {purged}");
    assert!(!texts(&admin.history(general, "").await).iter().any(|t| t.contains("policy-token-P1")));

    drop((bob_tab, admin_tab));
    server.restart().await;
    let bob = server.login("bob", &password_of("bob")).await;
    let tab = bob.ws().await;
    assert_eq!(tab.hello["records"]["policy"], "retain", "the admin's choice outlives a restart: {}", tab.hello["records"]);
    assert_eq!(tab.hello["records"]["days"], 1);
}

#[tokio::test]
async fn a_policy_the_configuration_sets_cannot_be_changed_from_the_admin_page() {
    let server = TestServer::start_with(fixed_keep).await;
    let admin = server.admin().await;
    let (status, body) = admin.get("/api/admin/records").await;
    assert_eq!((status, body["records"]["fixed"].as_bool()), (200, Some(true)), "{body}");
    let (status, body) = admin.post("/api/admin/records", json!({"policy": "off"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("configuration"), "the refusal says where it is set: {body}");
    let (_, session) = admin.get("/api/session").await;
    assert_eq!(session["records"]["policy"], "keep");
}

/// What a person notices if this fails: in a room that is not recorded, reading the first of
/// three new messages clears the badge, and the other two look read.
#[tokio::test]
async fn unread_counts_in_a_room_that_is_not_recorded_count_what_is_only_in_memory() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let mut tab = admin.ws().await;
    let room = tab.ack(json!({"type": "create_room", "name": "desk"})).await["conv"].as_u64().unwrap();
    let mut bob_tab = bob.ws().await;
    bob_tab.ack(json!({"type": "join", "conv": room})).await;
    tab.ack(set(room, "nothing", None)).await;
    let first = tab.send_message(room, "one").await["seq"].as_u64().unwrap();
    tab.send_message(room, "two").await;
    tab.send_message(room, "@bob three").await;
    bob_tab.recv_message("@bob three").await;
    bob_tab.ack(json!({"type": "read", "conv": room, "seq": first})).await;
    let again = bob.ws().await;
    let conv = again.hello_conversation(room).expect("the room in bob's hello");
    assert_eq!(
        (conv["unread"].as_u64(), conv["mentions"].as_u64()),
        (Some(2), Some(1)),
        "two unread after the first, one a mention: {conv}"
    );
}
