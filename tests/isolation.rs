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
