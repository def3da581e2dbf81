//! Bad input gets a clear error and never takes anyone's connection down but the sender's
//! (and that one only for a frame far over the limit).

mod common;

use common::*;
use serde_json::json;

fn small_frames(config: &mut hallway::Config) {
    config.max_frame = 1024;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_get_clear_errors_and_the_tab_keeps_working() {
    let server = TestServer::start_with(small_frames).await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = tab.room_id("general");
    assert_eq!(tab.hello["limits"]["max_frame"], 1024, "hello should announce the configured frame limit");

    // Not JSON at all.
    tab.send_text(r#"{"type": "send", "conv": "#).await;
    let error = tab.recv_type("error").await;
    assert_eq!(error["code"], "bad_json", "a broken frame should be answered with bad_json: {error}");
    assert!(error["ref"].is_null(), "an unparsable frame has no ref to echo: {error}");
    tab.ping().await;

    // A type this server does not know.
    tab.expect_error(json!({"type": "teleport", "ref": "u1", "to": "Building B"}), "unknown_type").await;
    tab.ping().await;

    // A missing field, a wrong type, a value out of range.
    tab.expect_error(json!({"type": "send", "ref": "m1", "conv": general}), "bad_request").await;
    tab.ping().await;
    tab.expect_error(json!({"type": "send", "conv": "general", "text": "hi"}), "bad_request").await;
    tab.ping().await;
    tab.expect_error(json!({"type": "send", "conv": general, "text": "   "}), "bad_request").await;
    tab.ping().await;

    // Over the frame limit (but not 4 times over): refused, connection kept.
    let long = "x".repeat(2000);
    tab.send_json(json!({"type": "send", "ref": "big", "conv": general, "text": long})).await;
    let error = tab.recv_type("error").await;
    assert_eq!(error["code"], "too_large", "an oversized frame should be answered with too_large: {error}");
    assert_eq!(error["ref"], "big", "the error names the frame it answers, so a bot knows which send failed: {error}");
    tab.ping().await;
    // An oversized frame that is not JSON has no ref to give back.
    tab.send_text(format!("{{\"ref\": \"cut\", \"text\": \"{long}")).await;
    let error = tab.recv_type("error").await;
    assert_eq!((error["code"].as_str(), &error["ref"]), (Some("too_large"), &serde_json::Value::Null), "{error}");
    tab.ping().await;

    // A ref is a string or any number, and comes back as it was sent.
    for reference in [json!(1.5), json!(-3), json!(18446744073709551615u64), json!("r-1")] {
        let reply = tab.request(json!({"type": "ping", "ref": reference})).await;
        assert_eq!((reply["type"].as_str(), &reply["ref"]), (Some("ack"), &reference), "ref {reference}: {reply}");
        tab.recv_type("pong").await;
    }
    tab.send_json(json!({"type": "ping", "ref": [1]})).await;
    let error = tab.recv_type("error").await;
    assert_eq!((error["code"].as_str(), &error["ref"]), (Some("bad_request"), &serde_json::Value::Null), "{error}");

    // None of it was posted, and bob never noticed a thing.
    bob_tab.expect_none_before_pong("a `message` frame", |f| f["type"] == "message").await;
    tab.send_message(general, "sorry, fat fingers").await;
    bob_tab.recv_message("sorry, fat fingers").await;
    bob_tab.send_message(general, "no worries").await;
    tab.recv_message("no worries").await;
    let page = bob.history(general, "").await;
    assert_eq!(texts(&page), ["sorry, fat fingers", "no worries"], "only the valid messages are kept: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_over_16000_characters_is_too_large_even_in_a_frame_within_the_limit() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;
    let general = tab.room_id("general");
    let error = tab.expect_error(json!({"type": "send", "conv": general, "text": "z".repeat(16_001)}), "too_large").await;
    assert!(error["message"].as_str().unwrap_or_default().contains("16000"), "the error gives the limit: {error}");
    let seq = tab.send_message(general, &"z".repeat(16_000)).await["seq"].clone();
    tab.expect_error(json!({"type": "edit", "conv": general, "seq": seq, "text": "y".repeat(16_001)}), "too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_far_over_the_limit_closes_only_that_tab() {
    let server = TestServer::start_with(small_frames).await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut rogue = alice.ws_tab("alice's misbehaving tab").await;
    let mut alice_tab = alice.ws_tab("alice's other tab").await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    let huge = "y".repeat(5000);
    rogue.send_json(json!({"type": "send", "conv": general, "text": huge})).await;
    let closed = rogue.expect_closed().await;
    assert_eq!(closed.code, Some(1009), "a frame over 4x the limit should close the tab with 1009: {closed:?}");

    alice_tab.ping().await;
    alice_tab.send_message(general, "still here").await;
    bob_tab.recv_message("still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_broken_and_oversized_bodies_with_clear_errors() {
    let server = TestServer::start_with(small_frames).await;
    let alice = server.admin().await;

    let raw = |body: String| {
        reqwest::Client::new()
            .post(format!("{}/api/login", server.base()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let (status, body) = read_response(raw("{\"name\": ".into()).await.expect("POST")).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_json")), "broken JSON: {body}");

    let (status, body) =
        read_response(raw(json!({"name": "alice", "password": "z".repeat(3000)}).to_string()).await.expect("POST")).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")), "oversized body: {body}");

    let (status, body) = server.anonymous_post("/api/login", json!({"name": "alice"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "missing password: {body}");

    let (status, body) = alice.get("/api/me").await;
    assert_eq!((status, body["user"]["name"].as_str()), (200, Some("alice")), "the server still serves: {body}");
}
