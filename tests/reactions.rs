//! Reactions: an emoji on a message reaches every tab of every member at once, comes back
//! with the message in history, catch-up and search, survives a restart when the
//! conversation is recorded and never reaches the disk when it is not, leaves with a deleted
//! message, and counts nowhere as unread. Who may not react, and what is not a reaction, is
//! refused with a reason.

mod common;

use common::*;
use serde_json::{Value, json};

fn react(conv: u64, seq: u64, emoji: &str, on: bool) -> Value {
    json!({"type": "react", "conv": conv, "seq": seq, "emoji": emoji, "on": on})
}

fn is_reactions(frame: &Value, conv: u64, seq: u64) -> bool {
    frame["type"] == "reactions" && frame["conv"] == conv && frame["seq"] == seq
}

/// The reactions of message `seq` in a history page (or search results), `[]` when none.
fn reactions_in(list: &Value, seq: u64) -> Value {
    let message = list.as_array().and_then(|l| l.iter().find(|m| m["seq"] == seq)).cloned();
    let message = message.unwrap_or_else(|| panic!("message {seq} is not in {list}"));
    message.get("reactions").cloned().unwrap_or(json!([]))
}

/// Every byte of `path`, searched for `needle`.
fn file_has(path: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Alice (the admin) and bob, each with a tab open; `general` is #general's id.
struct Pair {
    server: TestServer,
    alice: Client,
    bob: Client,
    alice_tab: Ws,
    bob_tab: Ws,
    general: u64,
}

async fn pair() -> Pair {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let alice_tab = alice.ws().await;
    let bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");
    Pair { server, alice, bob, alice_tab, bob_tab, general }
}

#[tokio::test]
async fn a_reaction_reaches_every_tab_of_every_member_at_once_and_giving_it_twice_is_once() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut bob_phone = bob.ws_tab("bob's phone").await;
    let general = alice_tab.room_id("general");
    let seq = alice_tab.send_message(general, "lunch at noon?").await["seq"].as_u64().unwrap();

    bob_tab.ack(react(general, seq, "👍", true)).await;
    for tab in [&mut alice_tab, &mut bob_tab, &mut bob_phone] {
        let frame = tab.recv_where("the reactions frame", |f| is_reactions(f, general, seq)).await;
        assert_eq!(frame["reactions"], json!([{"emoji": "👍", "users": [bob.id]}]), "{frame}");
    }
    alice_tab.ack(react(general, seq, "👍", true)).await;
    let frame = bob_phone.recv_where("alice's reaction too", |f| is_reactions(f, general, seq)).await;
    assert_eq!(frame["reactions"], json!([{"emoji": "👍", "users": [bob.id, alice.id]}]));
    alice_tab.recv_where("her own reaction", |f| is_reactions(f, general, seq)).await;

    // Twice is once: acknowledged, and nobody is told anything changed.
    bob_tab.ack(react(general, seq, "👍", true)).await;
    alice_tab.expect_none_before_pong("a second reactions frame", |f| is_reactions(f, general, seq)).await;
    bob_tab.ack(react(general, seq, "🎉", false)).await;
    alice_tab.expect_none_before_pong("a frame for taking back what was never given", |f| is_reactions(f, general, seq)).await;

    bob_tab.ack(react(general, seq, "👍", false)).await;
    let frame = alice_tab.recv_where("bob's taken back", |f| is_reactions(f, general, seq)).await;
    assert_eq!(frame["reactions"], json!([{"emoji": "👍", "users": [alice.id]}]));
    alice_tab.ack(react(general, seq, "👍", false)).await;
    let frame = bob_tab.recv_where("the last one taken back", |f| f["reactions"] == json!([])).await;
    assert!(is_reactions(&frame, general, seq), "{frame}");
}

#[tokio::test]
async fn reactions_in_a_recorded_conversation_come_back_in_history_and_search_after_a_restart() {
    let Pair { mut server, alice: _alice, bob, mut alice_tab, mut bob_tab, general } = pair().await;
    let seq = alice_tab.send_message(general, "the projector works again").await["seq"].as_u64().unwrap();
    let other = alice_tab.send_message(general, "unrelated").await["seq"].as_u64().unwrap();
    bob_tab.ack(react(general, seq, "🎉", true)).await;
    alice_tab.ack(react(general, seq, "❤️", true)).await;
    bob_tab.ack(react(general, seq, "❤️", true)).await;
    // An edit leaves them as they were.
    alice_tab.ack(json!({"type": "edit", "conv": general, "seq": seq, "text": "the projector works again!"})).await;

    server.restart().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let want = json!([{"emoji": "🎉", "users": [bob.id]}, {"emoji": "❤️", "users": [alice.id, bob.id]}]);
    let page = alice.history(general, "").await;
    assert_eq!(reactions_in(&page["messages"], seq), want, "the newest page carries them, in the order given");
    assert_eq!(reactions_in(&page["messages"], other), json!([]), "a message without any has none");
    let caught_up = alice.history(general, &format!("after={}", seq - 1)).await;
    assert_eq!(reactions_in(&caught_up["messages"], seq), want, "a catch-up page too");
    let (status, found) = alice.get("/api/search?q=projector").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(reactions_in(&found["results"], seq), want, "and search results");
    assert!(file_has(&server.data_file(), "🎉"), "a recorded conversation keeps its reactions in the file");
}

#[tokio::test]
async fn a_reaction_in_a_conversation_that_keeps_nothing_stays_in_memory_only() {
    let Pair { mut server, alice, bob, mut alice_tab, mut bob_tab, general: _ } = pair().await;
    let room = alice_tab.ack(json!({"type": "create_room", "name": "desk", "members": [bob.id]})).await["conv"].as_u64().unwrap();
    alice_tab.ack(json!({"type": "set_records", "conv": room, "keep": "nothing"})).await;
    let seq = alice_tab.send_message(room, "off the record").await["seq"].as_u64().unwrap();
    bob_tab.ack(react(room, seq, "🦩", true)).await;
    let frame = alice_tab.recv_where("bob's reaction", |f| is_reactions(f, room, seq)).await;
    assert_eq!(frame["reactions"], json!([{"emoji": "🦩", "users": [bob.id]}]));
    // A recorded one beside it, so that the scan below can see an emoji at all.
    let general = alice_tab.room_id("general");
    let kept = alice_tab.send_message(general, "on the record").await["seq"].as_u64().unwrap();
    bob_tab.ack(react(general, kept, "🦜", true)).await;

    let caught_up = alice.history(room, "after=0").await;
    assert_eq!(reactions_in(&caught_up["messages"], seq), json!([{"emoji": "🦩", "users": [bob.id]}]), "a tab that blinked");
    let file = server.data_file();
    assert!(file_has(&file, "🦜"), "the recorded reaction is in the file");
    assert!(!file_has(&file, "🦩"), "a reaction in a conversation that keeps nothing reached the data file");

    server.restart().await;
    assert!(!file_has(&file, "🦩"), "nor at shutdown");
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let page = alice.history(room, "after=0").await;
    assert!(!page.to_string().contains("🦩"), "gone with its message on restart: {page}");
}

#[tokio::test]
async fn a_reaction_counts_nowhere_as_unread_and_notifies_nobody() {
    let Pair { mut server, alice, bob: _bob, mut alice_tab, mut bob_tab, general } = pair().await;
    let seq = bob_tab.send_message(general, "can someone check the printer @alice").await["seq"].as_u64().unwrap();
    alice_tab.recv_message("can someone check the printer @alice").await;
    alice_tab.ack(json!({"type": "read", "conv": general, "seq": seq})).await;
    alice_tab.recv_type("read").await;
    let unread = |tab: &Ws| {
        let c = tab.hello_conversation(general).expect("general");
        (c["unread"].as_u64(), c["mentions"].as_u64(), c["last_seq"].as_u64())
    };
    let before = unread(&alice.ws().await);
    assert_eq!((before.0, before.1), (Some(0), Some(0)));

    bob_tab.ack(react(general, seq, "👀", true)).await;
    alice_tab.recv_where("the reaction", |f| is_reactions(f, general, seq)).await;
    alice_tab
        .expect_none_before_pong("a message, mention or read for a reaction", |f| {
            ["message", "message_updated", "read"].contains(&f["type"].as_str().unwrap_or_default())
        })
        .await;
    assert_eq!(unread(&alice.ws().await), before, "no unread, no mention, and no new seq for a reaction");
    server.restart().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    assert_eq!(unread(&alice.ws().await), before, "nor counted from the file after a restart");
}

#[tokio::test]
async fn who_may_not_react_and_what_is_not_a_reaction_are_told_why() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let (status, body) = alice
        .post("/api/users", json!({"name": "rita", "display_name": "Rita", "password": password_of("rita"), "role": "reviewer"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let rita = server.login("rita", &password_of("rita")).await;
    let mut alice_tab = alice.ws().await;
    let mut carol_tab = carol.ws().await;
    let mut rita_tab = rita.ws().await;
    let private =
        alice_tab.ack(json!({"type": "create_room", "name": "plans", "private": true, "members": [bob.id]})).await["conv"]
            .as_u64()
            .unwrap();
    let seq = alice_tab.send_message(private, "the surprise party is friday").await["seq"].as_u64().unwrap();
    carol_tab.expect_error(react(private, seq, "👍", true), "not_found").await;

    let general = alice_tab.room_id("general");
    let seq = alice_tab.send_message(general, "hello").await["seq"].as_u64().unwrap();
    let refused = rita_tab.expect_error(react(general, seq, "👍", true), "forbidden").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("reviewer"), "{refused}");
    carol_tab.expect_error(react(general, 9999, "👍", true), "not_found").await;
    carol_tab.expect_error(react(general, 0, "👍", true), "not_found").await;
    for text in ["+1", "thumbs", "👍 ", "<img src=x>", ""] {
        carol_tab.expect_error(react(general, seq, text, true), "bad_request").await;
    }
    carol_tab.expect_error(react(general, seq, &"👍".repeat(17), true), "too_large").await;

    // At most 20 different emoji; adding to one of them still works.
    for i in 0..20u32 {
        let emoji = char::from_u32(0x1f600 + i).unwrap().to_string();
        carol_tab.ack(react(general, seq, &emoji, true)).await;
    }
    let refused = carol_tab.expect_error(react(general, seq, "🚀", true), "too_large").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("20"), "{refused}");
    alice_tab.ack(react(general, seq, "😀", true)).await;
}

#[tokio::test]
async fn deleting_a_message_takes_its_reactions_along() {
    let Pair { mut server, alice, bob, mut alice_tab, mut bob_tab, general } = pair().await;
    let seq = alice_tab.send_message(general, "wrong room, sorry").await["seq"].as_u64().unwrap();
    let kept = alice_tab.send_message(general, "this one stays").await["seq"].as_u64().unwrap();
    bob_tab.ack(react(general, seq, "🙈", true)).await;
    bob_tab.ack(react(general, kept, "👌", true)).await;
    alice_tab.ack(json!({"type": "delete", "conv": general, "seq": seq})).await;
    bob_tab.expect_error(react(general, seq, "👍", true), "not_found").await;

    // The table itself holds only the reaction of the message that stays (and a backup, which
    // goes through the same tables, checks out).
    let backup = alice.http.get(format!("{}/api/admin/backup", alice.base)).send().await.expect("GET /api/admin/backup");
    assert_eq!(backup.status(), 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("backup.redb");
    std::fs::write(&copy, backup.bytes().await.expect("the backup's bytes")).expect("save the backup");
    let report = hallway::store::check::check_file(&copy).expect("check the backup");
    assert!(report.is_ok(), "the backup checks out: {:?}", report.problems);
    assert_eq!(report.counts.get("convseqemojiuser_ts"), Some(&1), "the deleted message's reaction is gone from the table");

    server.restart().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let page = alice.history(general, "").await;
    assert_eq!(reactions_in(&page["messages"], seq), json!([]), "a deleted message shows none: {page}");
    assert_eq!(reactions_in(&page["messages"], kept), json!([{"emoji": "👌", "users": [bob.id]}]));
    let mut bob_tab = server.login("bob", &password_of("bob")).await.ws().await;
    bob_tab.expect_error(react(general, seq, "👍", true), "not_found").await;
}
