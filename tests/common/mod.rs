//! The test harness: a real Hallway server on 127.0.0.1 port 0 with a real redb data file in
//! a temp dir, signed-in HTTP clients (one cookie jar per person) and a WebSocket tab wrapper
//! that waits for frames with a timeout and explains what a user would have missed.
//!
//! Everything here speaks only the wire protocol of `docs/protocol.md`; nothing reaches into
//! the server's internals besides the start/shutdown API of `hallway::Server`.
#![allow(dead_code)]

pub mod process;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hallway::{Config, Server};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a tab waits for a frame it expects before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

pub const ADMIN_NAME: &str = "alice";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// The password `add_user` gives every account: long enough for the 8-character rule.
pub fn password_of(name: &str) -> String {
    format!("{name}-secret-pw")
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// One running server with its own temp dir and data file.
pub struct TestServer {
    // Kept so the data file lives as long as the test (and survives restarts).
    dir: tempfile::TempDir,
    server: Option<Server>,
    addr: SocketAddr,
    tweak: fn(&mut Config),
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `tweak` adjusts (e.g. a small `max_frame`); restarts
    /// apply the same tweak.
    pub async fn start_with(tweak: fn(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temp dir for the data file");
        let (server, addr) = boot(dir.path().join("hallway.redb"), tweak).await;
        TestServer { dir, server: Some(server), addr, tweak }
    }

    pub fn data_file(&self) -> PathBuf {
        self.dir.path().join("hallway.redb")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `--metrics-listen` address, when the configuration asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().expect("server is running").metrics_addr()
    }

    pub fn setup_token(&self) -> Option<String> {
        self.server.as_ref().expect("server is running").setup_token()
    }

    /// Injects a failure through the library's test hook (never reachable from the network).
    pub async fn inject_fault(&self, fault: hallway::core::Fault) {
        self.server.as_ref().expect("server is running").inject_fault(fault).await
    }

    /// Moves the clock session expiry reads forward (see `Server::advance_clock`).
    pub fn advance_clock(&self, by: Duration) {
        self.server.as_ref().expect("server is running").advance_clock(by)
    }

    /// Waits until the chat core task has ended (after `Fault::StopCore`).
    pub async fn core_ended(&mut self) {
        let server = self.server.as_mut().expect("server is running");
        tokio::time::timeout(RECV_TIMEOUT, server.core_ended()).await.expect("the chat core should end after a fatal fault")
    }

    /// Purges as if the clock said `as_of`; returns once it is on disk (see `Server::purge`).
    pub async fn purge(&self, as_of: u64) -> usize {
        self.server.as_ref().expect("server is running").purge(as_of).await
    }

    /// Runs up to `steps` steps of the writer's indexing for search (with
    /// `Config::hold_index`, see `Server::index_steps`); says whether messages are left (to index, or to sweep).
    pub async fn index_steps(&self, steps: usize) -> bool {
        self.server.as_ref().expect("server is running").index_steps(steps).await
    }

    /// Graceful shutdown, then a new server on the same data file (on a new port: clients
    /// made before the restart must not be reused).
    pub async fn restart(&mut self) {
        let server = self.server.take().expect("server is running");
        server.shutdown().await;
        let (server, addr) = boot(self.data_file(), self.tweak).await;
        self.server = Some(server);
        self.addr = addr;
    }

    /// Graceful shutdown, leaving the data file for the command line (`start_again`).
    pub async fn stop(&mut self) {
        self.server.take().expect("server is running").shutdown().await;
    }

    /// A new server on the same data file, after `stop`.
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "start_again follows stop");
        let (server, addr) = boot(self.data_file(), self.tweak).await;
        self.server = Some(server);
        self.addr = addr;
    }

    /// Runs the one-time setup and returns the first admin (`alice`), signed in.
    pub async fn admin(&self) -> Client {
        let token = self.setup_token().expect("a fresh server should offer a setup token while no admin exists");
        let http = cookie_client();
        let resp = http
            .post(format!("{}/api/setup", self.base()))
            .json(&json!({
                "token": token,
                "name": ADMIN_NAME,
                "display_name": "Alice Admin",
                "password": ADMIN_PASSWORD,
            }))
            .send()
            .await
            .expect("POST /api/setup");
        Client::from_sign_in(http, self, resp, "setup of the first admin").await
    }

    /// Creates a member account through the admin's `POST /api/users` and signs it in.
    pub async fn add_user(&self, admin: &Client, name: &str) -> Client {
        let (status, body) = admin
            .post(
                "/api/users",
                json!({
                    "name": name,
                    "display_name": capitalize(name),
                    "password": password_of(name),
                    "role": "member",
                }),
            )
            .await;
        assert_eq!(status, 201, "the admin could not create the account {name:?}; the server answered {body}");
        assert_eq!(body["user"]["name"], name, "the new account should carry its name: {body}");
        self.login(name, &password_of(name)).await
    }

    /// Signs in and returns the person's client; fails the test if sign-in is refused.
    pub async fn login(&self, name: &str, password: &str) -> Client {
        let http = cookie_client();
        let resp = http
            .post(format!("{}/api/login", self.base()))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .expect("POST /api/login");
        Client::from_sign_in(http, self, resp, &format!("sign-in of {name}")).await
    }

    /// Tries to sign in and returns what the server said, whatever it was.
    pub async fn try_login(&self, name: &str, password: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/login", self.base()))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .expect("POST /api/login");
        read_response(resp).await
    }

    /// A GET with no cookie at all (a stranger, or a bot before sign-in).
    pub async fn anonymous_get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::Client::new().get(format!("{}{path}", self.base())).send().await.expect("anonymous GET");
        read_response(resp).await
    }

    /// A POST with no cookie.
    pub async fn anonymous_post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp =
            reqwest::Client::new().post(format!("{}{path}", self.base())).json(&body).send().await.expect("anonymous POST");
        read_response(resp).await
    }
}

async fn boot(data_file: PathBuf, tweak: fn(&mut Config)) -> (Server, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let mut config = Config::new(data_file);
    tweak(&mut config);
    let server = Server::start(listener, config).await.expect("the server should start on a fresh or existing data file");
    let addr = server.local_addr();
    (server, addr)
}

fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().expect("build a reqwest client")
}

fn capitalize(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Status and JSON body (`Value::Null` for an empty body, a JSON string for a non-JSON one).
pub async fn read_response(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("read the response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

// ---------------------------------------------------------------------------------------
// A signed-in person
// ---------------------------------------------------------------------------------------

/// One signed-in person: their cookie jar, their session cookie and who they are.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub addr: SocketAddr,
    /// The value of the `hallway_session` cookie, for WebSocket requests.
    pub session: String,
    /// The whole `Set-Cookie` header that carried the session.
    pub set_cookie: String,
    pub id: u64,
    pub name: String,
    pub user: Value,
}

impl Client {
    async fn from_sign_in(http: reqwest::Client, server: &TestServer, resp: reqwest::Response, what: &str) -> Client {
        let set_cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.trim_start().starts_with("hallway_session="))
            .map(str::to_owned);
        let (status, body) = read_response(resp).await;
        assert_eq!(status, 200, "{what} failed: the server answered {status} {body}");
        let set_cookie = set_cookie
            .unwrap_or_else(|| panic!("{what} succeeded but set no hallway_session cookie, so the person stays signed out"));
        let session =
            set_cookie.trim_start().trim_start_matches("hallway_session=").split(';').next().unwrap_or_default().to_owned();
        assert!(!session.is_empty(), "{what}: the session cookie is empty: {set_cookie}");
        let user = body["user"].clone();
        let id = user["id"].as_u64().unwrap_or_else(|| panic!("{what}: the answer should carry the user with an id: {body}"));
        let name = user["name"].as_str().unwrap_or_default().to_owned();
        Client { http, base: server.base(), addr: server.addr(), session, set_cookie, id, name, user }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} as {}: {e}", self.name));
        read_response(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} as {}: {e}", self.name));
        read_response(resp).await
    }

    /// The messages of one history page (`query` like `"after=3"` or `""`), asserting 200.
    pub async fn history(&self, conv: u64, query: &str) -> Value {
        let path = format!("/api/conversations/{conv}/messages?{query}");
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{} could not read the history of a conversation they are in ({path}): {body}", self.name);
        body
    }

    /// Opens a tab (a WebSocket) and waits for its `hello`.
    pub async fn ws(&self) -> Ws {
        self.ws_tab(&format!("{}'s tab", self.name)).await
    }

    /// Opens a tab without waiting for `hello` (for a tab the server may refuse).
    pub async fn ws_unchecked(&self, label: &str) -> Ws {
        let stream = match Ws::connect_raw(self.addr, Some(&self.session), None).await {
            Ok(stream) => stream,
            Err(status) => panic!("{label} could not connect: the upgrade was answered {status}"),
        };
        Ws { stream, pending: VecDeque::new(), hello: Value::Null, label: label.to_owned(), next_ref: 0, closed: None }
    }

    /// Same as `ws`, with a label used in failure messages ("bob's second tab").
    pub async fn ws_tab(&self, label: &str) -> Ws {
        match Ws::connect(self.addr, Some(&self.session), None, label).await {
            Ok(ws) => ws,
            Err(status) => panic!("{label} could not connect: the upgrade was answered {status}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A tab
// ---------------------------------------------------------------------------------------

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    /// Close code, `None` when the connection dropped without a close frame.
    pub code: Option<u16>,
    pub reason: String,
}

enum Read {
    Frame(Value),
    Closed(Closed),
    Timeout,
}

/// One browser tab: a WebSocket with the session cookie.
///
/// Frames skipped while waiting for another one are kept, in order, and looked at first by
/// the next wait, so a `message` that arrives before its `ack` is not lost.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    /// The `hello` frame the server sent first.
    pub hello: Value,
    label: String,
    next_ref: u64,
    closed: Option<Closed>,
}

impl Ws {
    /// Connects with an optional session cookie and `Origin`; `Err(status)` when the HTTP
    /// upgrade is refused.
    pub async fn connect(addr: SocketAddr, session: Option<&str>, origin: Option<&str>, label: &str) -> Result<Ws, u16> {
        let stream = Self::connect_raw(addr, session, origin).await?;
        let mut ws =
            Ws { stream, pending: VecDeque::new(), hello: Value::Null, label: label.to_owned(), next_ref: 0, closed: None };
        // The hello comes in parts; their lists add up to the whole.
        let mut hello = ws.recv().await;
        assert_eq!(
            hello["type"], "hello",
            "the first frame {label} gets should be `hello`, so the page can draw itself; got {hello}"
        );
        while hello["last"] != true {
            let part = ws.recv().await;
            assert_eq!(part["type"], "hello", "{label} should get every part of hello before anything else; got {part}");
            for list in ["users", "presence", "conversations"] {
                let more = part[list].as_array().cloned().unwrap_or_default();
                hello[list].as_array_mut().expect("hello lists are arrays").extend(more);
            }
            hello["last"] = part["last"].clone();
        }
        ws.hello = hello;
        Ok(ws)
    }

    /// Just the upgrade, without waiting for `hello`.
    pub async fn connect_raw(
        addr: SocketAddr,
        session: Option<&str>,
        origin: Option<&str>,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, u16> {
        let mut request = format!("ws://{addr}/api/ws").into_client_request().expect("a valid ws:// URL");
        if let Some(session) = session {
            request
                .headers_mut()
                .insert("Cookie", HeaderValue::from_str(&format!("hallway_session={session}")).expect("cookie header value"));
        }
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", HeaderValue::from_str(origin).expect("origin header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _response)) => Ok(stream),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("WebSocket connect to {addr} failed below HTTP: {e}"),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends one JSON object as a text frame.
    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    /// Sends a frame without failing the test if the server has closed the tab (a flooder
    /// that is cut off); `false` once the socket is gone.
    pub async fn try_send_json(&mut self, frame: Value) -> bool {
        self.closed.is_none() && self.stream.send(Message::text(frame.to_string())).await.is_ok()
    }

    /// Keeps every frame already arrived (none is waited for), as a browser reads what
    /// comes while it sends: a tab that never reads fills its socket.
    pub async fn take_ready(&mut self) {
        while let Read::Frame(frame) = self.read(Duration::ZERO).await {
            self.pending.push_back(frame);
        }
    }

    /// Sends raw text (for malformed frames).
    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.stream.send(Message::text(text)).await.unwrap_or_else(|e| panic!("{} could not send a frame: {e}", self.label));
    }

    async fn read(&mut self, timeout: Duration) -> Read {
        if let Some(closed) = &self.closed {
            return Read::Closed(closed.clone());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Read::Timeout,
                Ok(next) => next,
            };
            let closed = match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("{} got a frame that is not JSON ({e}): {}", self.label, text.as_str()));
                    return Read::Frame(value);
                }
                Some(Ok(Message::Binary(_))) => {
                    panic!("{} got a binary frame; the protocol only sends JSON text frames", self.label)
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                },
                Some(Err(_)) | None => Closed { code: None, reason: String::new() },
            };
            self.closed = Some(closed.clone());
            return Read::Closed(closed);
        }
    }

    fn pending_summary(&self) -> String {
        let frames: Vec<String> = self.pending.iter().map(|f| truncate(&f.to_string(), 300)).collect();
        if frames.is_empty() { "none".to_owned() } else { frames.join("\n    ") }
    }

    /// The next frame, whatever it is.
    pub async fn recv(&mut self) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        match self.read(RECV_TIMEOUT).await {
            Read::Frame(frame) => frame,
            Read::Closed(c) => panic!("{} was closed while waiting for a frame: {c:?}", self.label),
            Read::Timeout => panic!("{} waited {RECV_TIMEOUT:?} for any frame, none came", self.label),
        }
    }

    /// Waits for the first frame that matches `pred`, keeping the others for later.
    /// `what` describes it in the failure message.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index from position");
        }
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Read::Frame(frame) if pred(&frame) => return frame,
                Read::Frame(frame) => self.pending.push_back(frame),
                Read::Closed(c) => panic!(
                    "{} was closed ({c:?}) while waiting for {what}; frames seen meanwhile:\n    {}",
                    self.label,
                    self.pending_summary()
                ),
                Read::Timeout => panic!(
                    "{} waited {RECV_TIMEOUT:?} for {what} but it never came; frames seen meanwhile:\n    {}",
                    self.label,
                    self.pending_summary()
                ),
            }
        }
    }

    /// Waits for the first frame of this `type`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        self.recv_where(&format!("a `{ty}` frame"), |f| f["type"] == ty).await
    }

    /// Waits for a `message` frame whose text is `text`.
    pub async fn recv_message(&mut self, text: &str) -> Value {
        let frame =
            self.recv_where(&format!("the message {text:?}"), |f| f["type"] == "message" && f["message"]["text"] == text).await;
        frame["message"].clone()
    }

    /// Waits for the `ack` or `error` carrying `reference`.
    pub async fn recv_reply(&mut self, reference: &Value) -> Value {
        self.recv_where(&format!("the ack or error for ref {reference}"), |f| {
            (f["type"] == "ack" || f["type"] == "error") && &f["ref"] == reference
        })
        .await
    }

    /// Sends `frame` with a fresh `ref` (unless it has one) and returns the reply to it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        if frame.get("ref").is_none() {
            self.next_ref += 1;
            frame["ref"] = json!(format!("t{}", self.next_ref));
        }
        let reference = frame["ref"].clone();
        self.send_json(frame).await;
        self.recv_reply(&reference).await
    }

    /// `request`, failing the test unless the reply is an `ack`.
    pub async fn ack(&mut self, frame: Value) -> Value {
        let shown = truncate(&frame.to_string(), 200);
        let reply = self.request(frame).await;
        assert_eq!(reply["type"], "ack", "{} sent {shown} and expected it to succeed, but got {reply}", self.label);
        reply
    }

    /// `request`, failing the test unless the reply is an `error` with this `code`.
    pub async fn expect_error(&mut self, frame: Value, code: &str) -> Value {
        let shown = truncate(&frame.to_string(), 200);
        let reply = self.request(frame).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some(code)),
            "{} sent {shown} and expected an error `{code}`, but got {reply}",
            self.label
        );
        reply
    }

    /// Posts a message and returns the `ack` (which carries `seq`).
    pub async fn send_message(&mut self, conv: u64, text: &str) -> Value {
        self.next_ref += 1;
        let client_id = format!("{}-{}", self.label.replace(' ', "_"), self.next_ref);
        let ack = self.ack(json!({"type": "send", "conv": conv, "text": text, "client_id": client_id})).await;
        assert!(ack["seq"].as_u64().is_some(), "the ack of a send should carry the message's seq so the tab can place it: {ack}");
        assert_eq!(ack["conv"], conv, "the ack of a send should name the conversation: {ack}");
        ack
    }

    /// Pings with a `ref` and waits for both the `pong` and the `ack`: proves the connection
    /// is alive and the server still reads it.
    pub async fn ping(&mut self) {
        self.next_ref += 1;
        let reference = json!(format!("ping{}", self.next_ref));
        self.send_json(json!({"type": "ping", "ref": reference})).await;
        let reply = self.recv_reply(&reference).await;
        assert_eq!(reply["type"], "ack", "{} pinged and got {reply} instead of an ack", self.label);
        self.recv_type("pong").await;
    }

    /// Fails if a frame matching `pred` comes before the answer to a ping sent now (or was
    /// already received). The server queues a tab's frames in order, so by the `pong` every
    /// frame it queued for this tab before the ping has arrived: call this after the `ack`
    /// of whatever might have caused the frame, which is sent once all it caused is queued.
    pub async fn expect_none_before_pong(&mut self, what: &str, pred: impl Fn(&Value) -> bool) {
        self.ping().await;
        if let Some(frame) = self.pending.iter().find(|f| pred(f)) {
            panic!("{} should not get {what}, but got {frame}", self.label);
        }
    }

    /// Every frame already received (and not yet consumed) that matches `pred`.
    pub fn seen(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.pending.iter().filter(|f| pred(f)).cloned().collect()
    }

    /// Waits until the server closes this tab and returns how.
    pub async fn expect_closed(&mut self) -> Closed {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Read::Frame(frame) => self.pending.push_back(frame),
                Read::Closed(c) => return c,
                Read::Timeout => {
                    panic!("{} should have been closed by the server within {RECV_TIMEOUT:?}, but it stayed open", self.label)
                }
            }
        }
    }

    /// Closes the tab like a browser does, and waits for the close to complete.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.stream.next()).await {}
    }

    /// The conversation with this id in `hello`, if the tab was told about it.
    pub fn hello_conversation(&self, id: u64) -> Option<Value> {
        self.hello["conversations"]
            .as_array()
            .expect("hello.conversations should be a list")
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    }

    /// The id of the public room `name` as listed in `hello`.
    pub fn room_id(&self, name: &str) -> u64 {
        self.hello["conversations"]
            .as_array()
            .expect("hello.conversations should be a list")
            .iter()
            .find(|c| c["kind"] == "room" && c["name"] == name)
            .and_then(|c| c["id"].as_u64())
            .unwrap_or_else(|| {
                panic!(
                    "{} should list the room {name:?} among its conversations in hello: {}",
                    self.label,
                    truncate(&self.hello["conversations"].to_string(), 1000)
                )
            })
    }

    /// The presence of `user` as listed in `hello`.
    pub fn hello_presence(&self, user: u64) -> Option<Value> {
        self.hello["presence"].as_array().expect("hello.presence should be a list").iter().find(|p| p["user"] == user).cloned()
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// True for a `message` frame in conversation `conv`.
pub fn is_message_in(frame: &Value, conv: u64) -> bool {
    frame["type"] == "message" && frame["message"]["conv"] == conv
}

/// True for any frame that talks about conversation `conv` (for privacy checks).
pub fn mentions_conv(frame: &Value, conv: u64) -> bool {
    frame["conv"] == conv || frame["message"]["conv"] == conv || frame["conversation"]["id"] == conv
}

/// The texts of a history page, in the order given.
pub fn texts(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("a history page should carry a `messages` list: {page}"))
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Sends a WebSocket handshake by hand (HTTP `version`, `Sec-WebSocket-Version: ws_version`)
/// and returns the status and head of the response, and the socket, for tests that must see
/// what a WebSocket library would hide.
pub async fn raw_handshake(
    addr: SocketAddr,
    session: &str,
    version: &str,
    key: &str,
    ws_version: &str,
) -> (u16, String, TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /api/ws {version}\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: {ws_version}\r\nSec-WebSocket-Key: {key}\r\nCookie: hallway_session={session}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut byte)).await.expect("an answer");
        if read.expect("read") == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, socket)
}
