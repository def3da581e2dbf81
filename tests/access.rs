//! The one door: every read of a conversation's content asks the core who may read it. A
//! colleague who is not a member gets `not_found` from every path, the same answer as for a
//! conversation that does not exist, so a private room stays invisible.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_reads_nothing_of_a_private_room_by_any_path() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let eve = server.add_user(&alice, "eve").await;
    let mut alice_tab = alice.ws().await;
    let ack = alice_tab.ack(json!({"type": "create_room", "name": "salaries", "private": true, "members": [bob.id]})).await;
    let room = ack["conv"].as_u64().expect("the ack names the new room");
    alice_tab.send_message(room, "the budget for raises is 4 percent").await;

    let missing = room + 1000;
    for path in [
        format!("/api/conversations/{room}/messages"),
        format!("/api/conversations/{room}/messages?after=0"),
        format!("/api/conversations/{room}/messages?before=5&limit=1"),
        format!("/api/search?q=budget&conv={room}"),
    ] {
        let (status, body) = eve.get(&path).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "eve, not a member, read {path}: {body}");
        let (status, _) = eve.get(&path.replace(&room.to_string(), &missing.to_string())).await;
        assert_eq!(status, 404, "a missing conversation answers as a private one does ({path})");
    }
    let (status, body) = eve.get("/api/search?q=budget").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"], json!([]), "eve's search covers only her own conversations: {body}");

    // The members read it through the same door.
    let page = bob.history(room, "").await;
    assert_eq!(texts(&page), vec!["the budget for raises is 4 percent"]);
    let (status, body) = bob.get("/api/search?q=budget").await;
    assert_eq!((status, body["results"].as_array().map(Vec::len)), (200, Some(1)), "{body}");
}
