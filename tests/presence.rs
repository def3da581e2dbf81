//! Presence and typing: who is online, away, in do-not-disturb or gone, as colleagues see it.

mod common;

use common::*;
use serde_json::{Value, json};

/// Waits until `tab` is told that `user` is in `state`, and returns that presence.
async fn presence_becomes(tab: &mut Ws, user: u64, state: &str) -> Value {
    tab.recv_where(&format!("user {user} shown as {state}"), |f| {
        f["type"] == "presence" && f["presence"]["user"] == user && f["presence"]["state"] == state
    })
    .await["presence"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colleagues_see_each_other_come_online_go_away_set_dnd_and_leave() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let mut alice_tab = alice.ws().await;
    let before = alice_tab.hello_presence(bob.id);
    assert!(
        before.is_none() || before.as_ref().map(|p| p["state"] == "offline") == Some(true),
        "before bob opens a tab alice should see him offline, got {before:?}"
    );

    let mut bob_tab = bob.ws().await;
    presence_becomes(&mut alice_tab, bob.id, "online").await;

    bob_tab.ack(json!({"type": "presence", "idle": true})).await;
    presence_becomes(&mut alice_tab, bob.id, "away").await;

    bob_tab.ack(json!({"type": "presence", "idle": false})).await;
    presence_becomes(&mut alice_tab, bob.id, "online").await;

    let expires = 4_102_444_800_000u64; // 2100-01-01: far enough not to clear during the test
    bob_tab.ack(json!({"type": "set_status", "dnd": true, "status": "Building B until 3", "status_expires": expires})).await;
    let dnd = presence_becomes(&mut alice_tab, bob.id, "dnd").await;
    assert_eq!(dnd["status"], "Building B until 3", "alice should see where bob said he is: {dnd}");
    assert_eq!(dnd["status_expires"], expires, "alice should see when bob's status clears: {dnd}");

    // DND wins over away while a tab is open.
    bob_tab.ack(json!({"type": "presence", "idle": true})).await;
    alice_tab
        .expect_none_before_pong("bob shown as away while he is in do-not-disturb", |f| {
            f["type"] == "presence" && f["presence"]["user"] == bob.id && f["presence"]["state"] == "away"
        })
        .await;

    // A tab opened now learns all of it from hello.
    let carol = server.add_user(&alice, "carol").await;
    let carol_tab = carol.ws().await;
    let seen = carol_tab
        .hello_presence(bob.id)
        .unwrap_or_else(|| panic!("carol's hello should list bob's presence: {}", carol_tab.hello["presence"]));
    assert_eq!(seen["state"], "dnd", "carol's new tab should show bob in do-not-disturb: {seen}");
    assert_eq!(seen["status"], "Building B until 3", "carol's new tab should show bob's status: {seen}");

    bob_tab.close().await;
    presence_becomes(&mut alice_tab, bob.id, "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_every_tab_a_person_has_open() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let mut alice_tab = alice.ws().await;
    let mut bob_desk = bob.ws_tab("bob's desk tab").await;
    presence_becomes(&mut alice_tab, bob.id, "online").await;
    let mut bob_phone = bob.ws_tab("bob's phone tab").await;

    let bob_presence = |f: &Value| f["type"] == "presence" && f["presence"]["user"] == bob.id;

    bob_desk.ack(json!({"type": "presence", "idle": true})).await;
    alice_tab
        .expect_none_before_pong("bob shown as away while his phone tab is in use", |f| {
            bob_presence(f) && f["presence"]["state"] == "away"
        })
        .await;
    bob_phone.ack(json!({"type": "presence", "idle": true})).await;
    presence_becomes(&mut alice_tab, bob.id, "away").await;

    bob_phone.ack(json!({"type": "presence", "idle": false})).await;
    presence_becomes(&mut alice_tab, bob.id, "online").await;

    bob_phone.close().await;
    alice_tab
        .expect_none_before_pong("bob shown as offline while his desk tab is open", |f| {
            bob_presence(f) && f["presence"]["state"] == "offline"
        })
        .await;
    bob_desk.close().await;
    presence_becomes(&mut alice_tab, bob.id, "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_shown_to_others_but_not_to_the_typists_own_tabs() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let mut alice_tab = alice.ws_tab("alice's first tab").await;
    let mut alice_tab2 = alice.ws_tab("alice's second tab").await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    alice_tab.send_json(json!({"type": "typing", "conv": general})).await;
    let typing = bob_tab.recv_type("typing").await;
    assert_eq!(
        (typing["conv"].as_u64(), typing["user"].as_u64()),
        (Some(general), Some(alice.id)),
        "bob should see alice typing in general: {typing}"
    );

    // The message is sent after the typing frame, so once it arrived (and a ping came back)
    // any typing frame for alice's own tabs would have arrived too.
    alice_tab.send_message(general, "here is the agenda").await;
    alice_tab2.recv_message("here is the agenda").await;
    alice_tab2.expect_none_before_pong("a typing frame", |f| f["type"] == "typing").await;
    alice_tab.expect_none_before_pong("a typing frame", |f| f["type"] == "typing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_with_an_expiry_clears_itself() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    presence_becomes(&mut alice_tab, bob.id, "online").await;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    bob_tab.ack(json!({"type": "set_status", "dnd": true, "status": "In a meeting", "status_expires": now + 400})).await;
    let dnd = presence_becomes(&mut alice_tab, bob.id, "dnd").await;
    assert_eq!(dnd["status"], "In a meeting", "{dnd}");

    // Nobody touches anything: the server clears the status at its expiry and says so.
    let cleared = presence_becomes(&mut alice_tab, bob.id, "online").await;
    assert_eq!(cleared["status"], "", "an expired status should be cleared for everyone: {cleared}");
    assert_eq!(cleared["status_expires"], Value::Null, "{cleared}");

    // And it stays cleared for a tab opened afterwards.
    let carol = server.add_user(&alice, "carol").await;
    let carol_tab = carol.ws().await;
    let seen = carol_tab.hello_presence(bob.id).expect("bob's presence in carol's hello");
    assert_eq!(seen["status"], "", "{seen}");
}
