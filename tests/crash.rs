//! The promise behind every `ack`: a message the server acknowledged is on disk, even if the
//! process is killed with SIGKILL the next instant. Runs the real binary, kills it mid-stream
//! several times, and checks every acknowledged message after each restart.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const ROUNDS: usize = 3;
const MESSAGES_PER_ROUND: usize = 300;

struct Running {
    child: Child,
    addr: String,
    setup_token: Option<String>,
}

async fn start(data: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["--listen", "127.0.0.1:0", "--no-mdns", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the hallway binary should start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addr = None;
    let mut setup_token = None;
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("serving on ").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(token) = line.split("/setup#").nth(1) {
                setup_token = Some(token.trim().to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the server should print where it serves within 10 s");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running { child, addr: addr.expect("the server should print `serving on ADDR`"), setup_token }
}

async fn sign_in(addr: &str, setup_token: Option<String>) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    let (path, body) = match setup_token {
        Some(token) => ("setup", json!({"token": token, "name": "alice", "password": "correct horse battery"})),
        None => ("login", json!({"name": "alice", "password": "correct horse battery"})),
    };
    let response = http.post(format!("http://{addr}/api/{path}")).json(&body).send().await.expect("sign-in request");
    assert!(response.status().is_success(), "alice should be able to sign in: {}", response.status());
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("hallway_session=")).map(str::to_owned))
        .expect("a session cookie");
    (http, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    let mut setup_token = None;

    for round in 0..ROUNDS {
        let mut server = start(&data).await;
        if round == 0 {
            setup_token = server.setup_token.take();
        }
        let (http, cookie) = sign_in(&server.addr, setup_token.take()).await;

        // Everything acknowledged before the previous kill must be there, exactly.
        let general = 1;
        let mut stored: BTreeMap<u64, String> = BTreeMap::new();
        let mut after = 0;
        loop {
            let page: Value = http
                .get(format!("http://{}/api/conversations/{general}/messages?after={after}&limit=200", server.addr))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("history")
                .json()
                .await
                .expect("history JSON");
            for m in page["messages"].as_array().expect("messages") {
                stored.insert(m["seq"].as_u64().expect("seq"), m["text"].as_str().unwrap_or_default().to_owned());
                after = after.max(m["rev"].as_u64().expect("rev"));
            }
            if page["more"] != true {
                break;
            }
        }
        for (seq, text) in &acknowledged {
            assert_eq!(stored.get(seq), Some(text), "round {round}: message {seq} was acknowledged before kill -9 but is missing after restart");
        }

        // Stream messages without waiting, and kill the server halfway through the acks.
        let mut request = format!("ws://{}/api/ws", server.addr).into_client_request().expect("ws request");
        request.headers_mut().insert("cookie", cookie.parse().expect("cookie header"));
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
        for i in 0..MESSAGES_PER_ROUND {
            let frame = json!({"type": "send", "ref": i, "conv": general, "text": format!("round {round} message {i}")});
            ws.send(Message::text(frame.to_string())).await.expect("send");
        }
        let kill_after = MESSAGES_PER_ROUND / 2;
        let mut acks = 0;
        while acks < kill_after {
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("acks should keep coming");
            let Some(Ok(Message::Text(text))) = frame else { panic!("the connection ended before {kill_after} acks") };
            let frame: Value = serde_json::from_str(&text).expect("JSON frame");
            if frame["type"] == "ack" {
                let i = frame["ref"].as_u64().expect("ref");
                acknowledged.insert(frame["seq"].as_u64().expect("seq"), format!("round {round} message {i}"));
                acks += 1;
            }
        }
        server.child.start_kill().expect("kill -9");
        server.child.wait().await.expect("the killed server is reaped");
    }
    assert!(acknowledged.len() >= ROUNDS * MESSAGES_PER_ROUND / 2);

    // And the file still opens for the command line after the last kill.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["user", "list", "--data"])
        .arg(&data)
        .output()
        .expect("hallway user list");
    assert!(output.status.success(), "the data file should open after kill -9: {}", String::from_utf8_lossy(&output.stderr));
}
