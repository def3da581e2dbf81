//! The real `hallway` binary as a separate process, for the stories an in-process server
//! cannot tell: `kill -9`, a full disk, restarts of the executable. Loopback only, mDNS off.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ADMIN_NAME, ADMIN_PASSWORD};

pub type RawTab = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Process {
    pub child: Child,
    pub addr: String,
    pub setup_token: Option<String>,
}

/// Starts the binary on `data` and waits until it printed where it serves. Rate limits are
/// off: these tests stream hundreds of messages from one tab (to fill a disk, or to crash
/// under load), which a real client would be refused (`tests/isolation.rs` tests limits).
pub async fn start_binary(data: &Path) -> Process {
    start_binary_with(data, &[], "info", Stdio::null()).await
}

/// `start_binary` with more flags, logging at `log` (a `RUST_LOG` filter) to `stderr`.
pub async fn start_binary_with(data: &Path, flags: &[&str], log: &str, stderr: impl Into<Stdio>) -> Process {
    start_binary_with_env(data, flags, &[("RUST_LOG", log)], stderr).await
}

/// `start_binary_with` with environment variables (`RUST_LOG` among them, if wanted).
pub async fn start_binary_with_env(data: &Path, flags: &[&str], envs: &[(&str, &str)], stderr: impl Into<Stdio>) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallway"))
        .args(["--listen", "127.0.0.1:0", "--no-mdns", "--no-rate-limits", "--data"])
        .arg(data)
        .args(flags)
        .envs(envs.iter().copied())
        // Whatever the test runner's terminal says: the server decides colours by itself.
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the hallway binary should start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut addr, mut setup_token) = (None, None);
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
    Process { child, addr: addr.expect("the server should print `serving on ADDR`"), setup_token }
}

/// The `hallway_session=...` pair of a sign-in response.
pub fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("hallway_session=")).map(str::to_owned))
        .expect("a session cookie")
}

/// Signs the admin in: through the setup link when given one, else with the password.
pub async fn sign_in_admin(http: &reqwest::Client, addr: &str, setup_token: Option<String>) -> String {
    let (path, body) = match setup_token {
        Some(token) => ("setup", json!({"token": token, "name": ADMIN_NAME, "password": ADMIN_PASSWORD})),
        None => ("login", json!({"name": ADMIN_NAME, "password": ADMIN_PASSWORD})),
    };
    let response = http.post(format!("http://{addr}/api/{path}")).json(&body).send().await.expect("sign-in request");
    assert!(response.status().is_success(), "the admin should be able to sign in: {}", response.status());
    session_cookie(&response)
}

/// A WebSocket tab with `cookie`, without the test harness around it.
pub async fn raw_tab(addr: &str, cookie: &str) -> RawTab {
    let mut request = format!("ws://{addr}/api/ws").into_client_request().expect("ws request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie header"));
    tokio_tungstenite::connect_async(request).await.expect("websocket").0
}

/// Every message of a conversation as (seq, text), read with `after=` page by page.
pub async fn all_messages(http: &reqwest::Client, addr: &str, cookie: &str, conv: u64) -> Vec<(u64, String)> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let page =
            get_json(http, cookie, format!("http://{addr}/api/conversations/{conv}/messages?after={after}&limit=200")).await;
        for m in page["messages"].as_array().expect("messages") {
            messages.push((m["seq"].as_u64().expect("seq"), m["text"].as_str().unwrap_or_default().to_owned()));
            after = after.max(m["rev"].as_u64().expect("rev"));
        }
        if page["more"] != true {
            return messages;
        }
    }
}

/// Every search result for `q`, page by page: (seq, text).
pub async fn search_all(http: &reqwest::Client, addr: &str, cookie: &str, q: &str) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    loop {
        let page = get_json(http, cookie, format!("http://{addr}/api/search?q={q}&limit=100&offset={}", found.len())).await;
        for m in page["results"].as_array().expect("results") {
            found.push((m["seq"].as_u64().expect("seq"), m["text"].as_str().unwrap_or_default().to_owned()));
        }
        if page["more"] != true {
            return found;
        }
    }
}

/// GET with the session cookie, the answer as JSON.
async fn get_json(http: &reqwest::Client, cookie: &str, url: String) -> Value {
    let response = http.get(&url).header("cookie", cookie).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}
