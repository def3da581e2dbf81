//! History, read markers and unread counts, restarts, and catching up after a reconnect.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

fn seq_of(ack: &Value) -> u64 {
    ack["seq"].as_u64().expect("ack carries seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_in_one_tab_clears_unread_in_the_others() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let mut alice_tab = alice.ws().await;
    let mut bob_desk = bob.ws_tab("bob's desk tab").await;
    let mut bob_laptop = bob.ws_tab("bob's laptop tab").await;
    let general = alice_tab.room_id("general");

    let first = seq_of(&alice_tab.send_message(general, "standup moved to 10").await);
    let last = seq_of(&alice_tab.send_message(general, "room 3B").await);
    bob_desk.recv_message("room 3B").await;
    bob_laptop.recv_message("room 3B").await;

    bob_desk.ack(json!({"type": "read", "conv": general, "seq": last})).await;
    let read = bob_laptop.recv_type("read").await;
    assert_eq!(
        (read["conv"].as_u64(), read["seq"].as_u64()),
        (Some(general), Some(last)),
        "bob's laptop should learn he read general on his desk, or it keeps showing the badge: {read}"
    );

    // The marker only moves forward (whether this is acked or refused does not matter).
    bob_desk.request(json!({"type": "read", "conv": general, "seq": first})).await;

    let fresh = bob.ws_tab("bob's new tab").await;
    let conv = fresh.hello_conversation(general).expect("general in hello");
    assert_eq!(conv["read_seq"], last, "a new tab should start from bob's read marker: {conv}");
    assert_eq!(conv["unread"], 0, "nothing should be unread after bob read everything: {conv}");
    assert_eq!(conv["mentions"], 0, "{conv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_made_while_you_were_away_are_counted_when_you_come_back() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;

    // Carol has no tab open while the others talk about her.
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");
    alice_tab.send_message(general, "@carol can you review the release notes?").await;
    alice_tab.send_message(general, "build is green").await;
    let last = seq_of(&bob_tab.send_message(general, "@carol lunch later?").await);

    let page = carol.history(general, "").await;
    let mentions: Vec<Value> = page["messages"].as_array().expect("messages").iter().map(|m| m["mentions"].clone()).collect();
    assert_eq!(mentions, [json!([carol.id]), json!([]), json!([carol.id])], "each message should list whom it @mentions: {page}");

    let mut carol_tab = carol.ws().await;
    let conv = carol_tab.hello_conversation(general).expect("general in carol's hello");
    assert_eq!(conv["unread"], 3, "carol should see three unread messages in general: {conv}");
    assert_eq!(conv["mentions"], 2, "carol should see that she was mentioned twice: {conv}");
    assert_eq!(conv["last_seq"], last, "{conv}");

    let alice_view = alice.ws_tab("alice's new tab").await.hello_conversation(general).expect("general");
    assert_eq!(alice_view["unread"], 1, "alice's own messages are not unread for her, bob's is: {alice_view}");
    assert_eq!(alice_view["mentions"], 0, "nobody mentioned alice: {alice_view}");

    carol_tab.ack(json!({"type": "read", "conv": general, "seq": last})).await;
    let conv = carol.ws_tab("carol's new tab").await.hello_conversation(general).expect("general");
    assert_eq!(
        (conv["unread"].as_u64(), conv["mentions"].as_u64()),
        (Some(0), Some(0)),
        "after reading, carol's badges should be gone: {conv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_history_comes_in_pages() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let mut seqs = Vec::new();
    for text in ["one", "two", "three", "four", "five"] {
        seqs.push(seq_of(&tab.send_message(general, text).await));
    }

    let newest = alice.history(general, "limit=2").await;
    assert_eq!(texts(&newest), ["four", "five"], "the first page should be the newest, in ascending order: {newest}");
    assert_eq!(newest["more"], true, "older messages exist: {newest}");
    assert_eq!(newest["last_seq"], seqs[4], "{newest}");

    let older = alice.history(general, &format!("before={}&limit=2", seqs[3])).await;
    assert_eq!(texts(&older), ["two", "three"], "scrolling up should load the page before: {older}");
    assert_eq!(older["more"], true, "{older}");

    let oldest = alice.history(general, &format!("before={}&limit=2", seqs[1])).await;
    assert_eq!(texts(&oldest), ["one"], "{oldest}");
    assert_eq!(oldest["more"], false, "scrolling should stop at the first message: {oldest}");

    let caught_up = alice.history(general, &format!("after={}&limit=2", seqs[1])).await;
    assert_eq!(texts(&caught_up), ["three", "four"], "after= pages forward from the given seq: {caught_up}");
    assert_eq!(caught_up["more"], true, "the after= page was cut at the limit: {caught_up}");

    let (status, body) = alice.get(&format!("/api/conversations/{general}/messages?limit=0")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "limit=0 is out of range: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_accounts_survive_a_restart() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    let dm = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await["conv"].as_u64().expect("open_dm acks with conv");
    let s1 = seq_of(&alice_tab.send_message(general, "before the restart").await);
    let s2 = seq_of(&alice_tab.send_message(dm, "a private word").await);
    alice_tab.close().await;

    server.restart().await;

    assert!(server.setup_token().is_none(), "a restarted server must not offer setup again: an admin exists");
    let (status, body) = server.anonymous_get("/api/setup").await;
    assert_eq!((status, body["needed"].as_bool()), (200, Some(false)), "{body}");

    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let bob = server.login("bob", &password_of("bob")).await;
    let (_, users) = bob.get("/api/users").await;
    let names: Vec<&str> = users["users"].as_array().expect("users").iter().filter_map(|u| u["name"].as_str()).collect();
    assert_eq!(names, ["alice", "bob"], "accounts should survive the restart, ordered by name");

    let page = bob.history(general, "").await;
    assert_eq!(texts(&page), ["before the restart"], "general's history should survive the restart: {page}");
    assert_eq!(page["messages"][0]["seq"], s1, "{page}");
    let page = bob.history(dm, "").await;
    assert_eq!(texts(&page), ["a private word"], "the DM's history should survive the restart: {page}");
    assert_eq!(page["messages"][0]["seq"], s2, "{page}");

    let mut bob_tab = bob.ws().await;
    assert!(bob_tab.hello_conversation(dm).is_some(), "bob's DM with alice should still be in his sidebar");
    let s3 = seq_of(&bob_tab.send_message(general, "after the restart").await);
    assert!(s3 > s1, "seq numbers must not be reused after a restart ({s3} vs {s1})");
    let page = alice.history(general, "").await;
    assert_eq!(texts(&page), ["before the restart", "after the restart"], "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_tab_catches_up_without_gaps_or_duplicates() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    // What alice's messages should look like in the end: seq -> text.
    let mut expected: BTreeMap<u64, String> = BTreeMap::new();
    let s = seq_of(&alice_tab.send_message(general, "m0 before bob leaves").await);
    expected.insert(s, "m0 before bob leaves".into());
    let known = bob_tab.recv_message("m0 before bob leaves").await["seq"].as_u64().expect("seq");
    bob_tab.close().await;

    let mut missed = Vec::new();
    for i in 1..=3 {
        let text = format!("m{i} while bob is away");
        let s = seq_of(&alice_tab.send_message(general, &text).await);
        expected.insert(s, text);
        missed.push(s);
    }
    alice_tab.ack(json!({"type": "edit", "conv": general, "seq": missed[0], "text": "m1 edited"})).await;
    expected.insert(missed[0], "m1 edited".into());

    let mut bob_tab = bob.ws_tab("bob's reconnected tab").await;
    let hello_last = bob_tab.hello_conversation(general).expect("general")["last_seq"].as_u64().expect("last_seq");
    assert!(hello_last > known, "hello should tell bob that general moved on while he was away");

    // Bob's view: what he had, then history after= (repeat while more), then live frames.
    let mut view: BTreeMap<u64, Value> = BTreeMap::new();
    let mut from = known;
    loop {
        let page = bob.history(general, &format!("after={from}&limit=2")).await;
        let messages = page["messages"].as_array().expect("messages").clone();
        let seqs: Vec<u64> = messages.iter().filter_map(|m| m["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a history page must be in ascending seq order: {seqs:?}");
        for m in messages {
            let seq = m["seq"].as_u64().expect("seq");
            from = from.max(m["rev"].as_u64().unwrap_or(seq)).max(seq);
            assert!(view.insert(seq, m).is_none(), "history after={from} repeated message {seq}");
        }
        if page["more"] != true {
            break;
        }
    }
    assert!(from >= hello_last, "catching up should reach hello's last_seq {hello_last}, got to {from}");

    for i in 4..=5 {
        let text = format!("m{i} after bob is back");
        let s = seq_of(&alice_tab.send_message(general, &text).await);
        expected.insert(s, text.clone());
        let m = bob_tab.recv_message(&text).await;
        assert!(
            m["seq"].as_u64() > Some(hello_last),
            "a live message should be newer than hello's last_seq, or bob sees it twice: {m}"
        );
        assert!(view.insert(s, m).is_none(), "bob got message {s} both from history and live");
    }
    bob_tab
        .expect_none_before_pong("a live copy of a message he caught up from history", |f| {
            f["type"] == "message" && f["message"]["seq"].as_u64() <= Some(hello_last)
        })
        .await;

    let got: BTreeMap<u64, String> = view.iter().map(|(s, m)| (*s, m["text"].as_str().unwrap_or_default().to_owned())).collect();
    let mut want = expected.clone();
    want.remove(&known);
    assert_eq!(got, want, "bob's merged view should hold every message he missed exactly once, with the edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_server_restart_is_still_recognized() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let send = json!({"type": "send", "conv": general, "text": "sent just before the restart", "client_id": "k-1"});
    let first = tab.ack(send.clone()).await;
    drop(tab);

    // The server restarts before the tab saw its ack; the tab resends on reconnect.
    server.restart().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let mut tab = alice.ws().await;
    let again = tab.ack(send).await;
    assert_eq!(first["seq"], again["seq"], "the resend is answered with the first message's seq: {again}");
    let page = alice.history(general, "").await;
    assert_eq!(texts(&page), ["sent just before the restart"], "the message is in history once: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_restart_is_recognized_however_many_messages_came_after_it() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = tab.room_id("general");
    let send = json!({"type": "send", "conv": general, "text": "the first of many", "client_id": "early-1"});
    let first = tab.ack(send.clone()).await;
    // A busy room: the message is far from the newest when the server restarts.
    for i in 0..100 {
        bob_tab.send_message(general, &format!("chatter {i}")).await;
    }
    drop(tab);
    server.restart().await;

    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let mut tab = alice.ws().await;
    let again = tab.ack(send).await;
    assert_eq!(first["seq"], again["seq"], "the resend is answered with the first message's seq: {again}");
    assert_eq!(first["ts"], again["ts"], "and its time: {again}");
    let page = alice.history(general, "limit=200").await;
    assert_eq!(texts(&page).iter().filter(|t| *t == "the first of many").count(), 1, "posted once: {page}");
}
