//! Upgrading by replacing the binary: a data file written by the previous schema version
//! (kept in tests/fixtures, made by the schema-1 server with accounts, messages, an edit, a
//! DM and a status) opens, migrates, and keeps everything.

mod common;

use common::process::session_cookie;
use serde_json::{Value, json};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v1.redb");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_data_file_is_migrated_and_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    std::fs::copy(FIXTURE, &data).expect("copy the fixture");

    let store = hallway::store::Store::open(&data).expect("a schema-1 file opens");
    assert_eq!(
        store.schema_version().expect("version"),
        Some(hallway::store::records::SCHEMA_VERSION),
        "opening migrates the file"
    );
    // Version 2 indexes sessions per user: alice's and bob's sessions from schema 1 are found.
    assert!(store.session_count(hallway::model::UserId(1)).expect("sessions") >= 1, "alice's old sessions are indexed");
    assert!(store.session_count(hallway::model::UserId(2)).expect("sessions") >= 1, "bob's old sessions are indexed");
    drop(store);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("the migrated file serves");
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{base}/api/login"))
        .json(&json!({"name": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "alice's schema-1 password still works");
    let cookie = session_cookie(&login);
    let get = |path: &str| {
        let request = http.get(format!("{base}{path}")).header("cookie", &cookie);
        async move { request.send().await.expect("GET").json::<Value>().await.expect("json") }
    };
    let history = get("/api/conversations/1/messages").await;
    let texts: Vec<&str> = history["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(
        texts,
        ["hello from schema one", "@bob edited in schema one"],
        "general's history survives the upgrade: {history}"
    );
    assert_eq!(history["messages"][1]["mentions"], json!([2]), "the mention of bob survives: {history}");
    assert!(history["messages"][1]["edited_ts"].is_u64(), "the edit mark survives: {history}");
    let dm = get("/api/conversations/2/messages").await;
    assert_eq!(dm["messages"][0]["text"], "a private word", "the DM survives: {dm}");
    server.shutdown().await;
}
