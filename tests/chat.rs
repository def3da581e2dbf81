//! Chatting: rooms, direct messages, group DMs, private rooms, edits and deletes, and
//! idempotent sends, each seen from every tab of every person involved.

mod common;

use common::*;
use serde_json::{Value, json};

fn seq_of(ack: &Value) -> u64 {
    ack["seq"].as_u64().expect("ack carries seq")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_colleagues_chat_in_general_and_every_tab_sees_it() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws_tab("bob's first tab").await;
    let mut bob_tab2 = bob.ws_tab("bob's second tab").await;

    assert_eq!(alice_tab.hello["protocol"], 1, "hello should announce protocol 1: {}", alice_tab.hello);
    assert_eq!(
        alice_tab.hello["me"]["id"], alice.id,
        "hello.me should be the signed-in person, or the page shows someone else's name"
    );
    assert_eq!(alice_tab.hello["limits"]["max_frame"], 65536, "hello should tell the tab the default frame limit");
    let names: Vec<&str> =
        alice_tab.hello["users"].as_array().expect("hello.users is a list").iter().filter_map(|u| u["name"].as_str()).collect();
    assert!(names.contains(&"bob"), "alice's tab should know bob to show his name next to his messages; users: {names:?}");
    let general = alice_tab.room_id("general");
    assert_eq!(bob_tab.room_id("general"), general, "a new account should start as a member of general");

    let ack = alice_tab.send_message(general, "morning, anyone for coffee?").await;
    let first_seq = seq_of(&ack);
    for tab in [&mut alice_tab, &mut bob_tab, &mut bob_tab2] {
        let label = tab.label().to_owned();
        let m = tab.recv_message("morning, anyone for coffee?").await;
        assert_eq!(m["seq"], first_seq, "{label} shows the message with a different seq than the ack: {m}");
        assert_eq!(m["conv"], general, "{label} shows the message in the wrong conversation: {m}");
        assert_eq!(m["author"], alice.id, "{label} shows the wrong author: {m}");
        assert!(m["ts"].as_u64().is_some(), "{label} cannot show when it was sent: {m}");
        assert_eq!(m["deleted"], false, "{label} shows a fresh message as deleted: {m}");
        assert!(m["edited_ts"].is_null(), "{label} shows a fresh message as edited: {m}");
    }

    let ack = bob_tab.send_message(general, "yes, in 5 minutes").await;
    let second_seq = seq_of(&ack);
    assert!(
        second_seq > first_seq,
        "a later message should get a higher seq ({second_seq} after {first_seq}), or tabs sort it wrong"
    );
    let own = bob_tab2.recv_message("yes, in 5 minutes").await;
    assert_eq!(own["author"], bob.id, "bob's second tab should show his own reply as his: {own}");
    assert_eq!(own["client_id"], ack["client_id"], "the sender's tabs match their pending send by client_id: {own}");
    bob_tab.recv_message("yes, in 5 minutes").await;
    let seen_by_alice = alice_tab.recv_message("yes, in 5 minutes").await;
    assert_eq!(seen_by_alice["seq"], second_seq);

    let page = bob.history(general, "").await;
    assert_eq!(
        texts(&page),
        ["morning, anyone for coffee?", "yes, in 5 minutes"],
        "history should show both messages, oldest first: {page}"
    );
    assert_eq!(page["messages"][0]["seq"], first_seq);
    assert_eq!(page["messages"][1]["seq"], second_seq);
    assert!(page["last_seq"].as_u64() >= Some(second_seq), "history's last_seq should cover the newest message: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_reaches_both_people_and_nobody_else() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;

    let mut alice_tab = alice.ws_tab("alice's first tab").await;
    let mut alice_tab2 = alice.ws_tab("alice's second tab").await;
    let mut bob_tab = bob.ws_tab("bob's first tab").await;
    let mut bob_tab2 = bob.ws_tab("bob's second tab").await;
    let mut carol_tab = carol.ws().await;

    let ack = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await;
    let dm = ack["conv"].as_u64().unwrap_or_else(|| panic!("open_dm's ack should carry the conv: {ack}"));

    for tab in [&mut bob_tab, &mut bob_tab2] {
        let label = tab.label().to_owned();
        let frame =
            tab.recv_where("the new DM with alice", |f| f["type"] == "conversation" && f["conversation"]["id"] == dm).await;
        let conv = &frame["conversation"];
        assert_eq!(conv["kind"], "dm", "{label} should see a direct message, got {conv}");
        let mut members: Vec<u64> = conv["members"].as_array().expect("members").iter().filter_map(Value::as_u64).collect();
        members.sort();
        assert_eq!(members, [alice.id, bob.id], "{label}: the DM should hold exactly alice and bob: {conv}");
    }

    let ack = bob_tab.ack(json!({"type": "open_dm", "users": [alice.id]})).await;
    assert_eq!(ack["conv"], dm, "bob opening the DM with alice should reuse the existing one, not make a second");

    let ack = alice_tab.send_message(dm, "can you look at ticket 42?").await;
    let first = seq_of(&ack);
    for tab in [&mut alice_tab, &mut alice_tab2, &mut bob_tab, &mut bob_tab2] {
        let label = tab.label().to_owned();
        let m = tab.recv_message("can you look at ticket 42?").await;
        assert_eq!((m["conv"].as_u64(), m["seq"].as_u64()), (Some(dm), Some(first)), "{label}: {m}");
    }
    let ack = bob_tab2.send_message(dm, "on it").await;
    let second = seq_of(&ack);
    for tab in [&mut alice_tab, &mut alice_tab2, &mut bob_tab, &mut bob_tab2] {
        tab.recv_message("on it").await;
    }

    // Carol is signed in the whole time: a sentinel in general proves her tab is being fed,
    // and nothing of the DM came before it.
    alice_tab.send_message(alice_tab.room_id("general"), "sentinel for carol").await;
    carol_tab.recv_message("sentinel for carol").await;
    carol_tab.expect_none_before_pong("anything about alice and bob's DM", |f| mentions_conv(f, dm)).await;

    for person in [&alice, &bob] {
        let page = person.history(dm, "").await;
        assert_eq!(texts(&page), ["can you look at ticket 42?", "on it"], "{}'s DM history: {page}", person.name);
        assert_eq!(page["messages"][0]["seq"], first);
        assert_eq!(page["messages"][1]["seq"], second);
    }
    let (status, body) = carol.get(&format!("/api/conversations/{dm}/messages")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "carol must not read someone else's DM: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_dm_reaches_its_three_members_and_nobody_else() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let dave = server.add_user(&alice, "dave").await;

    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let mut dave_tab = dave.ws().await;
    let general = alice_tab.room_id("general");

    let ack = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id, carol.id]})).await;
    let group = ack["conv"].as_u64().unwrap_or_else(|| panic!("open_dm's ack should carry the conv: {ack}"));
    for tab in [&mut bob_tab, &mut carol_tab] {
        let label = tab.label().to_owned();
        let frame = tab.recv_where("the new group DM", |f| f["type"] == "conversation" && f["conversation"]["id"] == group).await;
        assert_eq!(frame["conversation"]["kind"], "group", "{label} should see a group DM: {frame}");
        let mut members: Vec<u64> =
            frame["conversation"]["members"].as_array().expect("members").iter().filter_map(Value::as_u64).collect();
        members.sort();
        assert_eq!(members, [alice.id, bob.id, carol.id], "{label}: the group should be exactly the three");
    }

    alice_tab.send_message(group, "quick sync on the release?").await;
    for tab in [&mut alice_tab, &mut bob_tab, &mut carol_tab] {
        tab.recv_message("quick sync on the release?").await;
    }
    carol_tab.send_message(group, "sure, 2pm").await;
    for tab in [&mut alice_tab, &mut bob_tab, &mut carol_tab] {
        tab.recv_message("sure, 2pm").await;
    }

    alice_tab.send_message(general, "sentinel for dave").await;
    dave_tab.recv_message("sentinel for dave").await;
    dave_tab.expect_none_before_pong("anything about the group DM he is not in", |f| mentions_conv(f, group)).await;

    dave_tab.expect_error(json!({"type": "send", "conv": group, "text": "let me in"}), "not_found").await;
    let (status, body) = dave.get(&format!("/api/conversations/{group}/messages")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "dave read the group's history: {body}");
    let fresh = dave.ws_tab("dave's new tab").await;
    assert!(fresh.hello_conversation(group).is_none(), "dave's sidebar should not list the group DM he is not in");

    let page = bob.history(group, "").await;
    assert_eq!(texts(&page), ["quick sync on the release?", "sure, 2pm"], "bob's view of the group: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_invisible_to_non_members() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;

    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let general = alice_tab.room_id("general");

    let ack =
        alice_tab.ack(json!({"type": "create_room", "name": "layoffs", "topic": "", "private": true, "members": [bob.id]})).await;
    let secret = ack["conv"].as_u64().unwrap_or_else(|| panic!("create_room's ack should carry the conv: {ack}"));
    let frame = bob_tab
        .recv_where("the private room he was added to", |f| f["type"] == "conversation" && f["conversation"]["id"] == secret)
        .await;
    assert_eq!(frame["conversation"]["kind"], "private", "bob should see the room as private: {frame}");

    alice_tab.send_message(secret, "draft list attached").await;
    bob_tab.recv_message("draft list attached").await;

    alice_tab.send_message(general, "sentinel for carol").await;
    carol_tab.recv_message("sentinel for carol").await;
    carol_tab.expect_none_before_pong("anything about the private room", |f| mentions_conv(f, secret)).await;

    // Carol gets the same answer as for a conversation that does not exist at all.
    let missing = secret + 100_000;
    carol_tab.expect_error(json!({"type": "send", "conv": secret, "text": "what is this?"}), "not_found").await;
    carol_tab.expect_error(json!({"type": "send", "conv": missing, "text": "what is this?"}), "not_found").await;
    carol_tab.expect_error(json!({"type": "join", "conv": secret}), "not_found").await;

    let (status, body) = carol.get(&format!("/api/conversations/{secret}/messages")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "carol could read the private room's history: {body}");
    let (status_missing, body_missing) = carol.get(&format!("/api/conversations/{missing}/messages")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (status_missing, body_missing["code"].clone()),
        "a private room must answer like a missing one, or its existence leaks"
    );

    for person in [&carol, &alice] {
        let (status, body) = person.get("/api/rooms").await;
        assert_eq!(status, 200, "{} could not list rooms: {body}", person.name);
        let names: Vec<&str> = body["rooms"].as_array().expect("rooms").iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"general"), "the directory should list general: {names:?}");
        assert!(!names.contains(&"layoffs"), "the public directory shown to {} lists the private room: {names:?}", person.name);
    }

    let fresh = carol.ws_tab("carol's new tab").await;
    assert!(fresh.hello_conversation(secret).is_none(), "carol's sidebar lists the private room");
    let bob_fresh = bob.ws_tab("bob's new tab").await;
    assert!(bob_fresh.hello_conversation(secret).is_some(), "bob's sidebar should list the private room he is in");

    // The message never leaked into carol's feed, even later.
    carol_tab.expect_none_before_pong("the private message", |f| is_message_in(f, secret)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_edit_and_delete_their_own_messages_but_not_others() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;

    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let general = bob_tab.room_id("general");

    let seq = seq_of(&bob_tab.send_message(general, "lunch at 11?").await);
    carol_tab.recv_message("lunch at 11?").await;

    bob_tab.ack(json!({"type": "edit", "conv": general, "seq": seq, "text": "lunch at 12?"})).await;
    let updated = carol_tab.recv_type("message_updated").await["message"].clone();
    assert_eq!(updated["seq"], seq, "an edit must keep the message's place (seq): {updated}");
    assert_eq!(updated["text"], "lunch at 12?", "carol should see the new text: {updated}");
    assert!(updated["edited_ts"].as_u64().is_some(), "carol should see the message marked as edited: {updated}");
    let edit_rev = updated["rev"].as_u64().unwrap_or_else(|| panic!("an edited message carries rev: {updated}"));
    assert!(edit_rev > seq, "an edit takes a new rev after the seq: {updated}");

    carol_tab.expect_error(json!({"type": "edit", "conv": general, "seq": seq, "text": "lunch never"}), "forbidden").await;
    carol_tab.expect_error(json!({"type": "delete", "conv": general, "seq": seq}), "forbidden").await;
    bob_tab.expect_none_before_pong("carol's refused edit", |f| f["message"]["text"] == "lunch never").await;

    bob_tab.ack(json!({"type": "delete", "conv": general, "seq": seq})).await;
    let deleted = carol_tab
        .recv_where("the deletion", |f| f["type"] == "message_updated" && f["message"]["deleted"] == true)
        .await["message"]
        .clone();
    assert_eq!(deleted["seq"], seq, "the deleted message keeps its seq: {deleted}");
    assert_eq!(deleted["text"], "", "a deleted message must not show its text any more: {deleted}");
    assert!(deleted["rev"].as_u64() > Some(edit_rev), "the delete takes a newer rev: {deleted}");

    bob_tab.expect_error(json!({"type": "edit", "conv": general, "seq": seq, "text": "undelete"}), "not_found").await;

    // Admins may delete anyone's message.
    let carol_seq = seq_of(&carol_tab.send_message(general, "spam spam spam").await);
    let mut alice_tab = alice.ws().await;
    alice_tab.ack(json!({"type": "delete", "conv": general, "seq": carol_seq})).await;
    carol_tab
        .recv_where("the admin's removal of her message", |f| {
            f["type"] == "message_updated" && f["message"]["seq"] == carol_seq && f["message"]["deleted"] == true
        })
        .await;

    let page = carol.history(general, "").await;
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "history keeps both (deleted) messages in place: {page}");
    assert_eq!((messages[0]["seq"].as_u64(), messages[0]["deleted"].as_bool()), (Some(seq), Some(true)));
    assert_eq!(messages[0]["text"], "", "history must not reveal a deleted message's text: {page}");
    assert_eq!(messages[1]["deleted"], true, "the admin's delete should stick: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_the_same_client_id_twice_posts_one_message() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    let send = json!({"type": "send", "conv": general, "text": "deploy done", "client_id": "deploy-42"});
    let first = alice_tab.ack(send.clone()).await;
    assert_eq!(first["client_id"], "deploy-42", "the ack should echo the client_id: {first}");
    // The tab resends after, say, a reconnect that lost the ack.
    let second = alice_tab.ack(send).await;
    assert_eq!(
        first["seq"], second["seq"],
        "a resend with the same client_id should answer with the first message's seq, not post again"
    );
    assert_eq!(first["ts"], second["ts"], "the repeated ack carries the first message's time: {second}");

    let m = bob_tab.recv_message("deploy done").await;
    assert_eq!(m["client_id"], "deploy-42");
    bob_tab
        .expect_none_before_pong("the same message twice", |f| f["type"] == "message" && f["message"]["text"] == "deploy done")
        .await;
    let page = bob.history(general, "").await;
    assert_eq!(texts(&page), ["deploy done"], "history should hold the message once: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_numbers_its_sends_per_conversation_has_every_reply_posted() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bot_tab = alice.ws_tab("alice's bot").await;
    let mut bob_tab = bob.ws().await;
    let general = bot_tab.room_id("general");
    let release = bot_tab.ack(json!({"type": "create_room", "name": "release", "members": [bob.id]})).await["conv"]
        .as_u64()
        .expect("the ack of create_room names the room");

    // The same client_id in two conversations: two different messages, both posted.
    let in_general = bot_tab.ack(json!({"type": "send", "conv": general, "text": "build 7 green", "client_id": "reply-1"})).await;
    let in_release = bot_tab.ack(json!({"type": "send", "conv": release, "text": "tag 7 pushed", "client_id": "reply-1"})).await;
    assert_eq!(in_release["conv"], release, "the second reply is acknowledged in its own conversation: {in_release}");
    bob_tab.recv_message("build 7 green").await;
    let m = bob_tab.recv_message("tag 7 pushed").await;
    assert_eq!(
        (m["conv"].as_u64(), &m["seq"]),
        (Some(release), &in_release["seq"]),
        "the reply is posted where it was sent: {m}"
    );

    // The same client_id with another text in the same conversation is a mistake: refused.
    let refused = bot_tab
        .expect_error(json!({"type": "send", "conv": general, "text": "build 8 green", "client_id": "reply-1"}), "bad_request")
        .await;
    assert!(refused["message"].as_str().unwrap_or_default().contains("client_id"), "the error says why: {refused}");
    // ...while the same text again is a resend, answered with the first seq.
    let again = bot_tab.ack(json!({"type": "send", "conv": general, "text": "build 7 green", "client_id": "reply-1"})).await;
    assert_eq!(again["seq"], in_general["seq"], "a resend is answered with the first message's seq: {again}");
    bob_tab.ping().await;
    assert!(bob_tab.seen(|f| f["type"] == "message").is_empty(), "nothing else was posted: {:?}", bob_tab.seen(|_| true));
    assert_eq!(texts(&bob.history(general, "").await), ["build 7 green"]);
    assert_eq!(texts(&bob.history(release, "").await), ["tag 7 pushed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_without_ref_is_answered_only_when_it_fails() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");

    tab.send_json(json!({"type": "send", "conv": general, "text": "fire and forget", "client_id": "ff-1"})).await;
    tab.send_json(json!({"type": "create_room", "name": "quiet"})).await;
    let own = tab.recv_message("fire and forget").await;
    assert_eq!(own["client_id"], "ff-1", "the sender's tab learns the seq from its own message: {own}");
    tab.recv_where("the new room", |f| f["type"] == "conversation" && f["conversation"]["name"] == "quiet").await;
    tab.expect_none_before_pong("an ack for a frame without ref", |f| f["type"] == "ack").await;

    tab.send_json(json!({"type": "send", "conv": general + 1000, "text": "nowhere"})).await;
    let error = tab.recv_type("error").await;
    assert_eq!((error["code"].as_str(), &error["ref"]), (Some("not_found"), &Value::Null), "a failure is answered: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_room_can_be_found_joined_discussed_and_left() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;

    let ack =
        alice_tab.ack(json!({"type": "create_room", "name": "release", "topic": "", "private": false, "members": []})).await;
    let release = ack["conv"].as_u64().unwrap_or_else(|| panic!("create_room's ack should carry the conv: {ack}"));
    alice_tab
        .expect_error(
            json!({"type": "create_room", "name": "release", "topic": "", "private": false, "members": []}),
            "name_taken",
        )
        .await;

    let (_, rooms) = bob.get("/api/rooms").await;
    let listed = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["name"] == "release")
        .unwrap_or_else(|| panic!("bob should find the new public room in the directory: {rooms}"))
        .clone();
    assert_eq!(listed["joined"], false, "bob has not joined release yet: {listed}");
    assert_eq!(listed["member_count"], 1, "only alice is in release: {listed}");

    bob_tab.ack(json!({"type": "join", "conv": release})).await;
    bob_tab.recv_where("the room he joined", |f| f["type"] == "conversation" && f["conversation"]["id"] == release).await;
    let joined = alice_tab.recv_type("member_joined").await;
    assert_eq!(
        (joined["conv"].as_u64(), joined["user"].as_u64()),
        (Some(release), Some(bob.id)),
        "alice should see bob join release: {joined}"
    );

    bob_tab.ack(json!({"type": "set_topic", "conv": release, "topic": "Release Friday"})).await;
    let topic = alice_tab.recv_type("topic").await;
    assert_eq!(topic["topic"], "Release Friday", "alice should see the new topic: {topic}");
    assert_eq!(topic["user"], bob.id, "alice should see who set it: {topic}");

    alice_tab.send_message(release, "freeze at noon").await;
    bob_tab.recv_message("freeze at noon").await;

    bob_tab.ack(json!({"type": "leave", "conv": release})).await;
    let left = bob_tab.recv_type("conversation_left").await;
    assert_eq!(left["conv"], release, "bob's sidebar should drop the room: {left}");
    let left = alice_tab.recv_type("member_left").await;
    assert_eq!((left["conv"].as_u64(), left["user"].as_u64()), (Some(release), Some(bob.id)), "{left}");

    alice_tab.send_message(release, "after bob left").await;
    alice_tab.send_message(alice_tab.room_id("general"), "sentinel for bob").await;
    bob_tab.recv_message("sentinel for bob").await;
    bob_tab.expect_none_before_pong("messages of a room he left", |f| is_message_in(f, release)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_creator_or_an_admin_removes_a_member_who_then_gets_nothing_more_of_it() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let dave = server.add_user(&alice, "dave").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let mut carol_tab = carol.ws().await;
    let mut dave_tab = dave.ws().await;

    let standup = bob_tab.ack(json!({"type": "create_room", "name": "standup"})).await["conv"].as_u64().expect("conv");
    for tab in [&mut alice_tab, &mut carol_tab] {
        tab.ack(json!({"type": "join", "conv": standup})).await;
    }
    let remove = |user: u64| json!({"type": "remove_member", "conv": standup, "user": user});

    // Carol is a member, not the creator nor an admin; dave is not even in the room.
    carol_tab.expect_error(remove(bob.id), "forbidden").await;
    dave_tab.expect_error(remove(carol.id), "not_found").await;
    bob_tab.expect_error(remove(bob.id), "bad_request").await;
    bob_tab.expect_error(remove(dave.id), "not_found").await;

    bob_tab.ack(remove(carol.id)).await;
    let left = carol_tab.recv_where("her removal", |f| f["type"] == "conversation_left").await;
    assert_eq!(
        (left["conv"].as_u64(), left["by"].as_u64()),
        (Some(standup), Some(bob.id)),
        "carol should be told bob removed her: {left}"
    );
    let left = alice_tab.recv_where("carol's removal", |f| f["type"] == "member_left").await;
    assert_eq!(
        (left["conv"].as_u64(), left["user"].as_u64(), left["by"].as_u64()),
        (Some(standup), Some(carol.id), Some(bob.id)),
        "alice should see bob remove carol: {left}"
    );
    bob_tab.send_message(standup, "after carol was removed").await;
    alice_tab.recv_message("after carol was removed").await;
    carol_tab.expect_none_before_pong("messages of a room she was removed from", |f| f["type"] == "message").await;
    let (status, _) = carol.get(&format!("/api/conversations/{standup}/messages")).await;
    assert_eq!(status, 404, "a removed member no longer reads the room's history");

    // An admin who did not create the room removes its creator too.
    alice_tab.ack(remove(bob.id)).await;
    bob_tab.recv_where("his removal", |f| f["type"] == "conversation_left" && f["by"] == alice.id).await;

    // A group has no one to remove members: each leaves it.
    let group = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id, carol.id]})).await["conv"].clone();
    alice_tab.expect_error(json!({"type": "remove_member", "conv": group, "user": bob.id}), "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_invited_into_a_private_room_sees_it_and_its_history() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;

    let ack = alice_tab.ack(json!({"type": "create_room", "name": "hiring", "topic": "", "private": true, "members": []})).await;
    let hiring = ack["conv"].as_u64().expect("conv");
    alice_tab.send_message(hiring, "two candidates left").await;
    let (status, _) = bob.get(&format!("/api/conversations/{hiring}/messages")).await;
    assert_eq!(status, 404, "bob cannot read the room before he is invited");

    alice_tab.ack(json!({"type": "invite", "conv": hiring, "user": bob.id})).await;
    let frame = bob_tab
        .recv_where("the room he was invited to", |f| f["type"] == "conversation" && f["conversation"]["id"] == hiring)
        .await;
    assert_eq!(frame["conversation"]["name"], "hiring", "{frame}");
    let page = bob.history(hiring, "").await;
    assert_eq!(texts(&page), ["two candidates left"], "an invited member reads the room's history: {page}");
    bob_tab.send_message(hiring, "I can interview Tuesday").await;
    alice_tab.recv_message("I can interview Tuesday").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_rooms_name_does_not_give_it_away() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;

    let private = alice_tab.ack(json!({"type": "create_room", "name": "layoffs", "private": true})).await["conv"].clone();
    // Bob, who is not in it, can use the name: a name_taken would tell him the room exists.
    let public = bob_tab.ack(json!({"type": "create_room", "name": "layoffs", "private": false})).await["conv"].clone();
    assert_ne!(private, public, "they are two different rooms");
    // Public names stay unique, so the directory is unambiguous.
    alice_tab.expect_error(json!({"type": "create_room", "name": "layoffs", "private": false}), "name_taken").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_shrank_to_two_is_not_reused_as_their_dm() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let mut carol_tab = carol.ws().await;

    let group = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id, carol.id]})).await["conv"].clone();
    carol_tab
        .recv_where("the group in carol's sidebar", |f| f["type"] == "conversation" && f["conversation"]["id"] == group)
        .await;
    carol_tab.ack(json!({"type": "leave", "conv": group})).await;
    let dm = alice_tab.ack(json!({"type": "open_dm", "users": [bob.id]})).await["conv"].clone();
    assert_ne!(dm, group, "alice's DM with bob must be a DM, not the group carol left");
    let frame = alice_tab.recv_where("the new DM", |f| f["type"] == "conversation" && f["conversation"]["id"] == dm).await;
    assert_eq!(frame["conversation"]["kind"], "dm", "{frame}");
}

/// A long paste (15,000 characters of several-byte letters, far more than one read of the
/// socket) arrives whole in every tab and in history, and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_paste_arrives_whole() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    let paste: String = (0..15_000).map(|i| ['å', 'é', 'x', '\n', '€'][i % 5]).collect();
    assert!(paste.len() > 20_000, "many bytes, far over one read: {} bytes", paste.len());
    let ack = alice_tab.send_message(general, &paste).await;
    let m = bob_tab.recv_message(&paste).await;
    assert_eq!(m["seq"], ack["seq"], "bob's tab got the paste whole");
    let page = bob.history(general, "limit=1").await;
    assert_eq!(page["messages"][0]["text"], paste.trim_end(), "history holds it whole");
    alice_tab.send_message(general, "and a short one after").await;
    bob_tab.recv_message("and a short one after").await;
}

/// On the wire, a long message goes out as fragments of at most 2 KiB (so no tab's write buffer
/// grows to the size of a paste): a text frame that is not final, continuation frames, and a
/// final one; put back together they are the message. Read here without a WebSocket library,
/// which would hide the fragments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_message_goes_out_in_fragments_of_2_kib() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");

    let (status, head, mut raw) = raw_handshake(server.addr(), &bob.session, "HTTP/1.1", "dGhlIHNhbXBsZSBub25jZQ==", "13").await;
    assert_eq!(status, 101, "{head}");

    let paste: String = (0..2_000).map(|i| format!("{i:>4} é\n")).collect();
    alice_tab.send_message(general, &paste).await;
    // (fin, opcode, payload) of each frame until the fragmented one is complete.
    let mut fragments: Vec<(bool, u8, Vec<u8>)> = Vec::new();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let b0 = raw.read_u8().await?;
            let len = match raw.read_u8().await? & 0x7f {
                126 => u64::from(raw.read_u16().await?),
                127 => raw.read_u64().await?,
                n => u64::from(n),
            };
            let mut payload = vec![0; len as usize];
            raw.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>((b0 & 0x80 != 0, b0 & 0x0f, payload))
        })
        .await
        .expect("frames keep coming")
        .expect("a frame");
        let (fin, opcode, _) = &frame;
        if fragments.is_empty() && (*fin || *opcode != 1) {
            continue; // hello, presence: whole frames before the paste
        }
        let done = *fin;
        fragments.push(frame);
        if done {
            break;
        }
    }
    let mut whole = Vec::new();
    for (i, (fin, opcode, payload)) in fragments.iter().enumerate() {
        assert_eq!(*opcode, if i == 0 { 1 } else { 0 }, "a text frame, then continuations");
        assert_eq!(*fin, i == fragments.len() - 1, "only the last fragment is final");
        assert!(payload.len() <= 2048, "fragment {i} has {} bytes", payload.len());
        whole.extend_from_slice(payload);
    }
    assert!(fragments.len() >= whole.len() / 2048, "a {} byte frame in {} fragments", whole.len(), fragments.len());
    let message: serde_json::Value = serde_json::from_slice(&whole).expect("the fragments make one JSON frame");
    assert_eq!((message["type"].as_str(), message["message"]["text"].as_str()), (Some("message"), Some(paste.trim_end())));
}
