//! Isolation: what one colleague's client does costs only that client. Mentions cost what the
//! text is long, and nothing inside code notifies anyone.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_inside_code_does_not_notify_anyone() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");

    alice_tab.send_message(general, "@bob the config says `owner: @carol`, and\n```\nssh @carol@db1\n```").await;
    let m = alice_tab.recv_message("@bob the config says `owner: @carol`, and\n```\nssh @carol@db1\n```").await;
    assert_eq!(m["mentions"], json!([bob.id]), "only bob is mentioned; carol appears only inside code: {m}");
    let carol_tab = carol.ws().await;
    let conv = carol_tab.hello_conversation(general).expect("carol is in general");
    assert_eq!(conv["mentions"], 0, "carol must not get a mention badge for a name inside code: {conv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_fifty_people_count_as_mentioned_in_one_message() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut names = Vec::new();
    for i in 0..55 {
        let name = format!("p{i}");
        let (status, body) = alice
            .post("/api/users", json!({"name": name, "display_name": name, "password": password_of(&name), "role": "member"}))
            .await;
        assert_eq!(status, 201, "{body}");
        names.push(name);
    }
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let text: String = names.iter().map(|n| format!("@{n} ")).collect::<String>() + "standup now";
    tab.send_message(general, &text).await;
    let m = tab.recv_message(&text).await;
    assert_eq!(m["mentions"].as_array().map(Vec::len), Some(50), "the first 50 named people are mentioned, the rest not: {m}");
}

/// An office of three: alice and bob keep chatting in #general while mallory's client floods.
struct Office {
    // Kept so the server runs as long as the office.
    _server: TestServer,
    alice: Ws,
    bob: Ws,
    mallory: Client,
    general: u64,
}

async fn office() -> Office {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mallory = server.add_user(&alice, "mallory").await;
    let alice = alice.ws().await;
    let bob = bob.ws().await;
    let general = alice.room_id("general");
    Office { _server: server, alice, bob, mallory, general }
}

impl Office {
    /// Bob sends and alice receives, `round` marking the text: a bystander's message must be
    /// acknowledged and delivered whatever the flood.
    async fn colleagues_chat(&mut self, round: usize) {
        let text = format!("bob's message {round} during the flood");
        self.bob.send_message(self.general, &text).await;
        self.alice.recv_message(&text).await;
    }

    /// After the flood: neither colleague was disconnected, and both are still served.
    async fn colleagues_are_fine(&mut self) {
        self.alice.ping().await;
        self.bob.ping().await;
    }
}

/// Floods `frames` (numbered) from one tab in chunks, while alice and bob chat between the
/// chunks; returns the flooder's tab, with what it was answered.
async fn flood(office: &mut Office, frames: usize, frame: impl Fn(usize) -> serde_json::Value) -> Ws {
    let mut flooder = office.mallory.ws_tab("mallory's flooding tab").await;
    let mut sent = 0;
    for round in 0..10 {
        for _ in 0..frames / 10 {
            if !flooder.try_send_json(frame(sent)).await {
                break;
            }
            sent += 1;
            flooder.take_ready().await;
        }
        office.colleagues_chat(round).await;
    }
    office.colleagues_are_fine().await;
    flooder
}

/// The flooder was told `rate_limited` (with when to retry) and then closed for keeping on.
async fn flooder_was_refused_then_closed(flooder: &mut Ws) {
    let closed = flooder.expect_closed().await;
    let refusals = flooder.seen(|f| f["type"] == "error" && f["code"] == "rate_limited");
    assert!(
        !refusals.is_empty(),
        "the flooder should first be told it is over a limit (closed: {closed:?}, frames: {:?})",
        flooder.seen(|f| f["type"] == "error").first()
    );
    assert!(
        refusals.iter().all(|f| f["retry_after"].as_f64().is_some_and(|s| s > 0.0)),
        "every refusal says when to try again: {:?}",
        refusals.first()
    );
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(1008), "rate_limited"),
        "a tab that keeps going over its limits is closed with a reason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_flood_is_refused_and_colleagues_keep_chatting() {
    let mut office = office().await;
    let general = office.general;
    let mut flooder =
        flood(&mut office, 2000, |i| json!({"type": "send", "conv": general, "text": format!("spam {i}"), "ref": i})).await;
    flooder_was_refused_then_closed(&mut flooder).await;
    let delivered = office.alice.seen(|f| f["type"] == "message" && f["message"]["author"] == office.mallory.id).len();
    assert!(delivered <= 100 + 20, "only the burst of the message budget reaches colleagues, not {delivered} of 2000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_flood_reaches_colleagues_once_and_is_cut_off() {
    let mut office = office().await;
    let general = office.general;
    let started = tokio::time::Instant::now();
    let mut flooder = flood(&mut office, 2000, |_| json!({"type": "typing", "conv": general})).await;
    flooder_was_refused_then_closed(&mut flooder).await;
    let shown = office.alice.seen(|f| f["type"] == "typing").len();
    let allowed = 1 + (started.elapsed().as_secs_f64() / 2.0) as usize;
    assert!(shown <= allowed, "at most one typing frame per person and conversation per 2 s reaches alice, not {shown}");
    assert!(shown >= 1, "the first typing is still shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_from_many_tabs_of_one_person_is_merged() {
    let mut office = office().await;
    let general = office.general;
    let started = tokio::time::Instant::now();
    let mut tabs = Vec::new();
    for i in 0..5 {
        tabs.push(office.mallory.ws_tab(&format!("mallory's tab {i}")).await);
    }
    for tab in tabs.iter_mut() {
        for _ in 0..3 {
            tab.send_json(json!({"type": "typing", "conv": general})).await;
        }
        tab.ping().await;
    }
    office.alice.ping().await;
    let shown = office.alice.seen(|f| f["type"] == "typing").len();
    let allowed = 1 + (started.elapsed().as_secs_f64() / 2.0) as usize;
    assert!(shown >= 1 && shown <= allowed, "15 typing frames from 5 tabs reach alice {shown} times, not at most {allowed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_flood_is_merged_and_cut_off() {
    let mut office = office().await;
    let mallory_id = office.mallory.id;
    office.alice.recv_where("mallory online", |f| f["type"] == "presence").await;
    let started = tokio::time::Instant::now();
    let mut flooder = flood(&mut office, 2000, |i| json!({"type": "presence", "idle": i % 2 == 0})).await;
    flooder_was_refused_then_closed(&mut flooder).await;
    let told = office.alice.seen(|f| f["type"] == "presence" && f["presence"]["user"] == mallory_id).len();
    // Each second at most one change, plus going offline when the tab is closed.
    let allowed = 2 + started.elapsed().as_secs() as usize;
    assert!(told <= allowed, "alice was told {told} presence changes of mallory's, at most {allowed} expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mention_heavy_messages_cost_their_sender_not_colleagues() {
    let mut office = office().await;
    let general = office.general;
    // 16,000 characters of distinct made-up names (a scan of every account per name, on the
    // core task, once held a colleague's ping for 7.6 s over 400 of these).
    let text: String = (0..3200)
        .map(|i: u32| format!("@{}{} ", char::from(b'a' + (i % 26) as u8), i))
        .collect::<String>()
        .chars()
        .take(16_000)
        .collect();
    let mut flooder = flood(&mut office, 400, |i| json!({"type": "send", "conv": general, "text": text, "ref": i})).await;
    flooder_was_refused_then_closed(&mut flooder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_gets_at_most_fifty_tabs() {
    let mut office = office().await;
    let mut tabs = Vec::new();
    for i in 0..50 {
        tabs.push(office.mallory.ws_tab(&format!("mallory's tab {i}")).await);
    }
    let mut refused = office.mallory.ws_unchecked("mallory's 51st tab").await;
    let closed = refused.expect_closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (Some(1008), "too_many_tabs"), "the 51st tab is told why it was closed");
    office.colleagues_chat(0).await;
    // Closing one tab makes room for another.
    tabs.pop().expect("a tab").close().await;
    office.colleagues_are_fine().await;
    office.mallory.ws_tab("mallory's tab after closing one").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_rooms_with_colleagues_in_them_is_limited() {
    let mut office = office().await;
    let alice_id = office.alice.hello["me"]["id"].clone();
    let mut tab = office.mallory.ws_tab("mallory's tab").await;
    let mut created = 0;
    let mut refusal = None;
    for i in 0..100 {
        let reply = tab.request(json!({"type": "create_room", "name": format!("spam-{i}"), "members": [alice_id]})).await;
        if reply["type"] == "ack" {
            created += 1;
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("a hundred rooms in a row should be refused at some point");
    assert_eq!(refusal["code"], "rate_limited", "{refusal}");
    assert!(refusal["retry_after"].as_f64().is_some_and(|s| s > 1.0), "it says when to try again: {refusal}");
    assert_eq!(created, 20, "the burst of new conversations is 20");
    office.colleagues_chat(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_dm_or_group_again_finds_it_after_someone_left_and_after_a_restart() {
    // Found through an index now, not a scan of every conversation: it must stay as exact.
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let open = |users: Vec<u64>| json!({"type": "open_dm", "users": users});
    let dm = alice_tab.ack(open(vec![bob.id])).await["conv"].clone();
    let group = alice_tab.ack(open(vec![bob.id, carol.id])).await["conv"].clone();
    assert_ne!(dm, group);
    assert_eq!(alice_tab.ack(open(vec![carol.id, bob.id])).await["conv"], group, "the same three open their group again");

    let mut carol_tab = carol.ws().await;
    carol_tab.ack(json!({"type": "leave", "conv": group})).await;
    assert_eq!(
        alice_tab.ack(open(vec![bob.id])).await["conv"],
        dm,
        "alice and bob still open their DM, not the group carol left"
    );
    let again = alice_tab.ack(open(vec![bob.id, carol.id])).await["conv"].clone();
    assert_ne!(again, group, "the three of them are no longer that group, so a new one opens");

    let (status, body) = alice.get("/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    let taken = alice_tab.expect_error(json!({"type": "create_room", "name": "general"}), "name_taken").await;
    assert!(taken["message"].as_str().is_some_and(|m| m.contains("general")), "{taken}");

    server.restart().await;
    let alice = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let mut alice_tab = alice.ws().await;
    assert_eq!(alice_tab.ack(open(vec![bob.id])).await["conv"], dm, "after a restart the DM is found again");
    assert_eq!(alice_tab.ack(open(vec![bob.id, carol.id])).await["conv"], again);
    alice_tab.expect_error(json!({"type": "create_room", "name": "general"}), "name_taken").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_part_way_leaves_the_rest_unread_without_the_core_reading_the_disk() {
    // The count after the marker comes from a reader thread; the `read` is acknowledged once
    // it is in, so every tab opened after the ack shows it.
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    let mut seqs = Vec::new();
    for i in 0..5 {
        let text = if i == 4 { "@bob last one".to_string() } else { format!("update {i}") };
        seqs.push(alice_tab.send_message(general, &text).await["seq"].as_u64().expect("seq"));
    }
    let mut bob_tab = bob.ws().await;
    bob_tab.ack(json!({"type": "read", "conv": general, "seq": seqs[1]})).await;
    let conv = bob.ws().await.hello_conversation(general).expect("bob is in general");
    assert_eq!(
        (conv["read_seq"].as_u64(), conv["unread"].as_u64(), conv["mentions"].as_u64()),
        (Some(seqs[1]), Some(3), Some(1)),
        "bob read the first two of five: three stay unread, one of them mentions him: {conv}"
    );
    // A later read behind it and then one further on: the marker never goes back.
    bob_tab.ack(json!({"type": "read", "conv": general, "seq": seqs[3]})).await;
    bob_tab.ack(json!({"type": "read", "conv": general, "seq": seqs[2]})).await;
    let conv = bob.ws().await.hello_conversation(general).expect("bob is in general");
    assert_eq!((conv["read_seq"].as_u64(), conv["unread"].as_u64()), (Some(seqs[3]), Some(1)), "{conv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_and_a_delete_sent_together_are_taken_in_order() {
    // The saved message is read by a reader thread, not the core; changes that come while it
    // is read wait behind it, in the order they were sent.
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let seq = tab.send_message(general, "lunch at 12?").await["seq"].as_u64().expect("seq");
    tab.send_json(json!({"type": "edit", "ref": "e", "conv": general, "seq": seq, "text": "lunch at 1?"})).await;
    tab.send_json(json!({"type": "delete", "ref": "d", "conv": general, "seq": seq})).await;
    tab.send_json(json!({"type": "edit", "ref": "late", "conv": general, "seq": seq, "text": "too late"})).await;
    let edited = tab.recv_reply(&json!("e")).await;
    assert_eq!(edited["type"], "ack", "{edited}");
    let deleted = tab.recv_reply(&json!("d")).await;
    assert_eq!(deleted["type"], "ack", "{deleted}");
    let late = tab.recv_reply(&json!("late")).await;
    assert_eq!(
        (late["type"].as_str(), late["code"].as_str()),
        (Some("error"), Some("not_found")),
        "a deleted message stays deleted: {late}"
    );
    let updates: Vec<serde_json::Value> =
        tab.seen(|f| f["type"] == "message_updated").into_iter().map(|f| f["message"].clone()).collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!((updates[0]["text"].as_str(), updates[1]["deleted"].as_bool()), (Some("lunch at 1?"), Some(true)), "{updates:?}");
    let page = alice.history(general, "").await;
    assert!(page["messages"].as_array().expect("messages").iter().any(|m| m["seq"] == seq && m["deleted"] == true), "{page}");
}
