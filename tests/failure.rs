//! Failure stays small: a bug while handling one command costs only that command, and a core
//! that stopped anyway is reported by the health check (so a service manager restarts it).

mod common;

use common::*;
use hallway::core::Fault;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_command_is_answered_internal_and_everyone_keeps_chatting() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let general = alice_tab.room_id("general");

    server.inject_fault(Fault::PanicNextFrame).await;
    let error = alice_tab.expect_error(json!({"type": "set_topic", "conv": general, "topic": "lunch"}), "internal").await;
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the refusal should say what happened, or alice's tab shows an empty error: {error}"
    );

    // Bob, who did nothing wrong, is still served; so is alice's next request.
    bob_tab.send_message(general, "is the printer fixed?").await;
    alice_tab.recv_message("is the printer fixed?").await;
    alice_tab.send_message(general, "yes, since noon").await;
    bob_tab.recv_message("yes, since noon").await;
    let (status, body) = server.anonymous_get("/api/health").await;
    assert_eq!(status, 200, "a contained panic must not make the server look dead: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_core_makes_the_health_check_fail() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let (status, _) = alice.get("/api/health").await;
    assert_eq!(status, 200);

    server.inject_fault(Fault::StopCore).await;
    server.core_ended().await;
    let (status, body) = server.anonymous_get("/api/health").await;
    assert_eq!(status, 503, "with the chat core gone nobody can chat; the health check must say so: {body}");
    assert_eq!(body["status"], "core_stopped", "the operator should see why: {body}");
}
