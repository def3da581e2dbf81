//! Announcements rooms: only admins post, members say "Got it", and the author sees who has
//! and who has not, live. Acknowledgements follow the room's records: on disk with a stored
//! message (across a restart), never on disk in a room that keeps nothing, and gone with a
//! deleted message. They are not messages: no unread count moves.

mod common;

use common::*;
use hallway::store::tables::CONVSEQUSER_ACK;
use redb::{ReadableDatabase, ReadableTableMetadata};
use serde_json::{Value, json};

/// Alice (admin) made the announcements room "news" with bob and carol in it; dave is not in
/// it. Each of alice, bob and carol has a tab.
struct Office {
    server: TestServer,
    alice: Client,
    bob: Client,
    alice_tab: Ws,
    bob_tab: Ws,
    carol_tab: Ws,
    dave_tab: Ws,
    room: u64,
}

async fn office() -> Office {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let dave = server.add_user(&alice, "dave").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let dave_tab = dave.ws().await;
    let created =
        alice_tab.ack(json!({"type": "create_room", "name": "news", "members": [bob.id, carol.id], "announcements": true})).await;
    let room = created["conv"].as_u64().expect("the new room's id");
    for tab in [&mut bob_tab, &mut carol_tab] {
        let shown = tab.recv_where("the new room", |f| f["type"] == "conversation" && f["conversation"]["id"] == room).await;
        assert_eq!(shown["conversation"]["announcements"], true, "members are told it is an announcements room: {shown}");
    }
    Office { server, alice, bob, alice_tab, bob_tab, carol_tab, dave_tab, room }
}

fn acknowledge(conv: u64, seq: u64) -> Value {
    json!({"type": "acknowledge", "conv": conv, "seq": seq})
}

/// The author's full lists of one announcement, from `acknowledgements`.
async fn lists(tab: &mut Ws, conv: u64, seq: u64) -> Value {
    tab.ack(json!({"type": "acknowledgements", "conv": conv, "seq": seq})).await;
    let frame = tab.recv_where("the acknowledgements", |f| f["type"] == "acknowledgements" && f["conv"] == conv).await;
    frame["announcements"][0].clone()
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array().expect("a list").iter().map(|v| v["user"].as_u64().or(v.as_u64()).expect("a user id")).collect()
}

#[tokio::test]
async fn only_admins_post_and_members_are_told_why_with_a_code() {
    let Office { server: _server, alice, mut alice_tab, mut bob_tab, mut carol_tab, room, .. } = office().await;
    let refused = bob_tab.expect_error(json!({"type": "send", "conv": room, "text": "me too"}), "admins_only").await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("admins"), "{refused}");
    let seq = alice_tab.send_message(room, "The office is closed on Friday").await["seq"].as_u64().unwrap();
    for tab in [&mut bob_tab, &mut carol_tab] {
        let message = tab.recv_message("The office is closed on Friday").await;
        assert_eq!((message["seq"].as_u64(), message["author"].as_u64()), (Some(seq), Some(alice.id)));
    }
    // A fresh tab's hello shows the room's kind too.
    let fresh = alice.ws().await;
    assert_eq!(fresh.hello_conversation(room).expect("the room in hello")["announcements"], true);
    assert!(
        fresh.hello_conversation(fresh.room_id("general")).unwrap().get("announcements").is_none(),
        "ordinary rooms say nothing"
    );
}

#[tokio::test]
async fn only_an_admin_makes_an_announcements_room_or_switches_it_back() {
    let Office { server: _server, mut alice_tab, mut bob_tab, room, .. } = office().await;
    bob_tab.expect_error(json!({"type": "create_room", "name": "bobs-news", "announcements": true}), "forbidden").await;
    let plain = bob_tab.ack(json!({"type": "create_room", "name": "bobs-room"})).await["conv"].as_u64().unwrap();
    bob_tab.expect_error(json!({"type": "set_announcements", "conv": room, "announcements": false}), "forbidden").await;
    alice_tab.ack(json!({"type": "set_announcements", "conv": room, "announcements": false})).await;
    let changed =
        bob_tab.recv_where("the room changed", |f| f["type"] == "conversation" && f["conversation"]["id"] == room).await;
    assert!(changed["conversation"].get("announcements").is_none(), "an ordinary room again: {changed}");
    bob_tab.send_message(room, "now anyone posts").await;
    // Not even in a room they created: they would lock themselves out of posting in it.
    bob_tab.expect_error(json!({"type": "set_announcements", "conv": plain, "announcements": true}), "forbidden").await;
    bob_tab.send_message(plain, "still mine to post in").await;
    alice_tab.ack(json!({"type": "join", "conv": plain})).await;
    alice_tab.ack(json!({"type": "set_announcements", "conv": plain, "announcements": true})).await;
    bob_tab.expect_error(json!({"type": "send", "conv": plain, "text": "hello?"}), "admins_only").await;
}

#[tokio::test]
async fn got_it_reaches_the_author_live_and_the_lists_say_who_has_and_who_has_not() {
    let Office { server: _server, alice, bob, mut alice_tab, mut bob_tab, mut carol_tab, room, .. } = office().await;
    let seq = alice_tab.send_message(room, "Fire drill at 10").await["seq"].as_u64().unwrap();
    bob_tab.recv_message("Fire drill at 10").await;
    let before = lists(&mut alice_tab, room, seq).await;
    assert_eq!((before["count"].as_u64(), before["of"].as_u64()), (Some(0), Some(2)), "{before}");

    bob_tab.ack(acknowledge(room, seq)).await;
    let live = alice_tab.recv_where("bob's Got it", |f| f["type"] == "acknowledged").await;
    assert_eq!(
        (live["conv"].as_u64(), live["seq"].as_u64(), live["user"].as_u64(), live["count"].as_u64(), live["of"].as_u64()),
        (Some(room), Some(seq), Some(bob.id), Some(1), Some(2)),
        "the author hears it at once: {live}"
    );
    let mine = bob_tab.recv_where("his own Got it", |f| f["type"] == "acknowledged").await;
    assert_eq!(mine["user"], bob.id, "the member's other tabs learn it too (the button becomes Acknowledged)");
    carol_tab.expect_none_before_pong("bob's acknowledgement", |f| f["type"] == "acknowledged").await;

    let after = lists(&mut alice_tab, room, seq).await;
    let carol_id =
        alice_tab.hello["users"].as_array().unwrap().iter().find(|u| u["name"] == "carol").unwrap()["id"].as_u64().unwrap();
    assert_eq!(ids(&after["acked"]), vec![bob.id], "who has: {after}");
    assert_eq!(ids(&after["pending"]), vec![carol_id], "who has not: {after}");
    assert!(after["acked"][0]["ts"].as_u64().is_some(), "with when: {after}");

    // A member sees that they acknowledged, not the others' names.
    let theirs = lists(&mut bob_tab, room, seq).await;
    assert_eq!(theirs["mine"], true, "{theirs}");
    assert!(theirs.get("acked").is_none() && theirs.get("pending").is_none(), "only the author and admins see names: {theirs}");
    let all = {
        bob_tab.ack(json!({"type": "acknowledgements", "conv": room})).await;
        bob_tab.recv_where("every acknowledged announcement", |f| f["type"] == "acknowledgements").await
    };
    assert_eq!(all["announcements"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["announcements"][0]["seq"], seq);
    let _ = alice;
}

#[tokio::test]
async fn acknowledging_twice_is_one_acknowledgement_and_nobody_is_told_again() {
    let Office { server: _server, mut alice_tab, mut bob_tab, room, .. } = office().await;
    let seq = alice_tab.send_message(room, "New coffee machine").await["seq"].as_u64().unwrap();
    bob_tab.ack(acknowledge(room, seq)).await;
    alice_tab.recv_where("the first Got it", |f| f["type"] == "acknowledged").await;
    bob_tab.ack(acknowledge(room, seq)).await;
    alice_tab.expect_none_before_pong("a second acknowledged frame", |f| f["type"] == "acknowledged").await;
    let list = lists(&mut alice_tab, room, seq).await;
    assert_eq!((list["count"].as_u64(), ids(&list["acked"]).len()), (Some(1), 1), "{list}");
    // The author does not acknowledge their own announcement.
    alice_tab.expect_error(acknowledge(room, seq), "bad_request").await;
}

#[tokio::test]
async fn a_non_member_cannot_acknowledge_nor_read_the_lists() {
    let Office { server: _server, mut alice_tab, mut dave_tab, room, .. } = office().await;
    let seq = alice_tab.send_message(room, "Members only").await["seq"].as_u64().unwrap();
    dave_tab.expect_error(acknowledge(room, seq), "not_found").await;
    dave_tab.expect_error(json!({"type": "acknowledgements", "conv": room, "seq": seq}), "not_found").await;
    alice_tab.expect_none_before_pong("an acknowledgement by a non-member", |f| f["type"] == "acknowledged").await;
    // A message that does not exist is not found either; an ordinary room takes none.
    let general = alice_tab.room_id("general");
    dave_tab.expect_error(acknowledge(room, seq + 100), "not_found").await;
    dave_tab.expect_error(acknowledge(general, 1), "bad_request").await;
}

#[tokio::test]
async fn acknowledging_changes_no_unread_count() {
    let Office { server: _server, alice, bob, mut alice_tab, mut bob_tab, room, .. } = office().await;
    let seq = alice_tab.send_message(room, "Payday moved").await["seq"].as_u64().unwrap();
    bob_tab.recv_message("Payday moved").await;
    bob_tab.ack(acknowledge(room, seq)).await;
    alice_tab.recv_where("the Got it", |f| f["type"] == "acknowledged").await;
    for tab in [&mut alice_tab, &mut bob_tab] {
        let new = |f: &Value| (f["type"] == "message" && f["message"]["seq"].as_u64() > Some(seq)) || f["type"] == "read";
        tab.expect_none_before_pong("a new message or read marker", new).await;
    }
    let (bob_fresh, alice_fresh) = (bob.ws().await, alice.ws().await);
    let (bobs, alices) = (bob_fresh.hello_conversation(room).unwrap(), alice_fresh.hello_conversation(room).unwrap());
    assert_eq!(
        (bobs["unread"].as_u64(), bobs["last_seq"].as_u64()),
        (Some(1), Some(seq)),
        "still one unread, no new seq: {bobs}"
    );
    assert_eq!(alices["unread"], 0, "the author has nothing new to read: {alices}");
}

#[tokio::test]
async fn an_acknowledgement_outlives_a_restart_in_a_recorded_room() {
    let Office { mut server, mut alice_tab, mut bob_tab, room, .. } = office().await;
    let seq = alice_tab.send_message(room, "Parking closed").await["seq"].as_u64().unwrap();
    bob_tab.ack(acknowledge(room, seq)).await;
    alice_tab.recv_where("the Got it", |f| f["type"] == "acknowledged").await;
    let bob_id = bob_tab.hello["me"]["id"].as_u64().unwrap();
    drop((alice_tab, bob_tab));
    server.restart().await;
    let alice = server.login("alice", ADMIN_PASSWORD).await;
    let mut tab = alice.ws().await;
    let list = lists(&mut tab, room, seq).await;
    assert_eq!(ids(&list["acked"]), vec![bob_id], "bob's Got it is still there after the restart: {list}");
    tab.ack(json!({"type": "acknowledgements", "conv": room})).await;
    let all = tab.recv_where("every acknowledged announcement", |f| f["type"] == "acknowledgements").await;
    assert_eq!(all["announcements"][0]["count"], 1, "{all}");
}

/// Rows of the acknowledgements table in a stopped server's data file.
fn acks_on_disk(server: &TestServer) -> u64 {
    let db = redb::Database::open(server.data_file()).expect("the data file opens");
    let txn = db.begin_read().expect("a read");
    txn.open_table(CONVSEQUSER_ACK).map(|t| t.len().expect("a count")).unwrap_or(0)
}

#[tokio::test]
async fn in_a_room_that_keeps_nothing_an_acknowledgement_never_reaches_the_disk() {
    let Office { mut server, mut alice_tab, mut bob_tab, room, .. } = office().await;
    alice_tab.ack(json!({"type": "set_records", "conv": room, "keep": "nothing"})).await;
    let seq = alice_tab.send_message(room, "Gone in five minutes").await["seq"].as_u64().unwrap();
    bob_tab.recv_message("Gone in five minutes").await;
    bob_tab.ack(acknowledge(room, seq)).await;
    let live = alice_tab.recv_where("the Got it", |f| f["type"] == "acknowledged").await;
    assert_eq!(live["count"], 1, "shown live all the same: {live}");
    let list = lists(&mut alice_tab, room, seq).await;
    assert_eq!(list["count"], 1, "held in memory beside the message: {list}");
    drop((alice_tab, bob_tab));
    server.stop().await;
    assert_eq!(acks_on_disk(&server), 0, "no acknowledgement of a message that is not recorded is on disk");
    // The same check sees one where the room records.
    server.start_again().await;
    let alice = server.login("alice", ADMIN_PASSWORD).await;
    let bob = server.login("bob", &password_of("bob")).await;
    let (mut alice_tab, mut bob_tab) = (alice.ws().await, bob.ws().await);
    alice_tab.ack(json!({"type": "set_records", "conv": room, "keep": "forever"})).await;
    let seq = alice_tab.send_message(room, "Kept").await["seq"].as_u64().unwrap();
    bob_tab.ack(acknowledge(room, seq)).await;
    drop((alice_tab, bob_tab));
    server.stop().await;
    assert_eq!(acks_on_disk(&server), 1, "a recorded room's acknowledgement is on disk");
}

#[tokio::test]
async fn deleting_an_announcement_removes_its_acknowledgements() {
    let Office { mut server, mut alice_tab, mut bob_tab, mut carol_tab, room, .. } = office().await;
    let first = alice_tab.send_message(room, "Wrong date").await["seq"].as_u64().unwrap();
    let second = alice_tab.send_message(room, "Right date").await["seq"].as_u64().unwrap();
    bob_tab.ack(acknowledge(room, first)).await;
    carol_tab.ack(acknowledge(room, first)).await;
    bob_tab.ack(acknowledge(room, second)).await;
    alice_tab.ack(json!({"type": "delete", "conv": room, "seq": first})).await;
    alice_tab.ack(json!({"type": "acknowledgements", "conv": room})).await;
    let all = alice_tab.recv_where("what is left", |f| f["type"] == "acknowledgements").await;
    let seqs: Vec<u64> = all["announcements"].as_array().unwrap().iter().map(|a| a["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![second], "the deleted one's acknowledgements are gone: {all}");
    carol_tab.expect_error(acknowledge(room, first), "not_found").await;
    drop((alice_tab, bob_tab, carol_tab));
    server.stop().await;
    assert_eq!(acks_on_disk(&server), 1, "only the remaining announcement's acknowledgement is on disk");
}
