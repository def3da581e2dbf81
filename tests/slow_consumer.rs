//! A tab that stops reading (a frozen laptop, a stuck script) must not slow anyone else down
//! or make the server hold its backlog forever: its queue fills, the server closes it with
//! `slow_consumer`, colleagues see it go offline, and chat goes on.

mod common;

use common::process::session_cookie;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const MAX_MESSAGES: usize = 6000;
const BURST: usize = 100;

async fn sign_in(base: &str, http: &reqwest::Client, path: &str, body: Value) -> String {
    let response = http.post(format!("{base}/api/{path}")).json(&body).send().await.expect("sign-in");
    assert!(response.status().is_success(), "{path} should succeed: {}", response.status());
    session_cookie(&response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_stops_reading_is_disconnected_and_nobody_else_notices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // Many colleagues together can fill a tab's queue; here one sender stands in for them, so
    // its rate limits are off (tests/isolation.rs tests those).
    let mut config = hallway::Config::new(dir.path().join("h.redb"));
    config.limits = hallway::limits::RateLimits::unlimited();
    let server = hallway::Server::start(listener, config).await.expect("start");
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();
    let token = server.setup_token().expect("setup token");
    let alice =
        sign_in(&base, &http, "setup", json!({"token": token, "name": "alice", "password": "correct horse battery"})).await;
    let created = http
        .post(format!("{base}/api/users"))
        .header("cookie", &alice)
        .json(&json!({"name": "carol", "password": "carol-password"}))
        .send()
        .await
        .expect("create carol");
    assert_eq!(created.status(), 201);
    let carol = sign_in(&base, &http, "login", json!({"name": "carol", "password": "carol-password"})).await;

    let connect = |cookie: String| {
        let base = base.clone();
        async move {
            let mut request = format!("{}/api/ws", base.replace("http", "ws")).into_client_request().expect("request");
            request.headers_mut().insert("cookie", cookie.parse().expect("cookie"));
            tokio_tungstenite::connect_async(request).await.expect("websocket").0
        }
    };
    // Carol's tab connects and then never reads again.
    let mut frozen = connect(carol).await;
    let mut alice_tab = connect(alice).await;
    let general = 1;

    let big = "z".repeat(15_000);
    let mut carol_dropped = false;
    let mut sent = 0;
    while sent < MAX_MESSAGES && !carol_dropped {
        // A burst (sharing commits), then read until its last ack, watching for carol.
        for _ in 0..BURST {
            alice_tab
                .send(Message::text(json!({"type": "send", "ref": sent, "conv": general, "text": big}).to_string()))
                .await
                .expect("alice can always send");
            sent += 1;
        }
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), alice_tab.next())
                .await
                .expect("alice's tab keeps getting answers while carol's is stuck")
                .expect("alice's tab stays open")
                .expect("alice's tab stays healthy");
            let Message::Text(text) = frame else { continue };
            let frame: Value = serde_json::from_str(&text).expect("json");
            if frame["type"] == "presence" && frame["presence"]["user"] == 2 && frame["presence"]["state"] == "offline" {
                carol_dropped = true;
            }
            if frame["type"] == "ack" && frame["ref"] == sent - 1 {
                break;
            }
        }
    }
    assert!(carol_dropped, "after {sent} big messages carol's stuck tab should have been dropped and shown offline");

    // Carol's tab finally reads: its backlog ends with a close frame that says why.
    let reason = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(frame)) = frozen.next().await {
            if let Message::Close(close) = frame {
                return close.map(|c| (u16::from(c.code), c.reason.to_string()));
            }
        }
        None
    })
    .await
    .expect("the stuck tab's backlog ends");
    assert_eq!(reason, Some((1008, "slow_consumer".to_owned())), "the stuck tab is told it was too slow");
    server.shutdown().await;
}
