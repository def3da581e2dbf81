//! Replies: a message answering another carries `reply_to` (the original's seq) live and in
//! history, and a reply to no message of the conversation is refused.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_reply_names_the_message_it_answers_live_and_in_history() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");
    let original = alice_tab.send_message(general, "who has the projector key?").await["seq"].as_u64().expect("seq");
    let reply = bob_tab.ack(json!({"type": "send", "conv": general, "text": "I do", "reply_to": original})).await;
    let seen = alice_tab.recv_message("I do").await;
    assert_eq!(seen["reply_to"], original, "the reply names the original: {seen}");
    let page = alice.history(general, "").await;
    let stored = page["messages"].as_array().expect("messages").iter().find(|m| m["seq"] == reply["seq"]).cloned();
    assert_eq!(stored.expect("the reply is in history")["reply_to"], original);
    let plain = page["messages"].as_array().expect("messages").iter().find(|m| m["seq"] == original).cloned();
    assert!(plain.expect("the original").get("reply_to").is_none(), "a message that answers nothing has no reply_to");

    bob_tab.expect_error(json!({"type": "send", "conv": general, "text": "?", "reply_to": 9999}), "bad_request").await;
    bob_tab.expect_error(json!({"type": "send", "conv": general, "text": "?", "reply_to": 0}), "bad_request").await;
}
