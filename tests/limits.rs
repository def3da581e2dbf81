//! Connections are bounded: a client that never finishes its request, or leaves a connection
//! idle, is disconnected; one address cannot hold more than its share of connections.
//! Deadlines are set to a second here; the tests wait for the server's close, never on a clock.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for the server to close a connection before it fails: far above
/// the deadlines these tests configure.
const OUTER: Duration = Duration::from_secs(30);

fn short_deadlines(config: &mut hallway::Config) {
    config.header_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(1);
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn until_closed(socket: &mut TcpStream, what: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(OUTER, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: the server kept the connection open for {OUTER:?}");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_is_cut_off_while_a_quiet_tab_stays() {
    let server = TestServer::start_with(short_deadlines).await;
    let alice = server.admin().await;
    let mut tab = alice.ws().await;

    let mut slowloris = TcpStream::connect(server.addr()).await.expect("connect");
    slowloris.write_all(b"GET /api/hea").await.expect("half a request line");
    until_closed(&mut slowloris, "half a request line").await;

    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    until_closed(&mut silent, "a connection that never sends anything").await;

    // The tab was quiet for longer than both deadlines: WebSockets keep their own heartbeat.
    tab.ping().await;
    let (status, _) = alice.get("/api/me").await;
    assert_eq!(status, 200, "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let server = TestServer::start_with(short_deadlines).await;
    let mut socket = TcpStream::connect(server.addr()).await.expect("connect");
    let request = format!("GET /api/health HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
    socket.write_all(request.as_bytes()).await.expect("write");
    let answer = until_closed(&mut socket, "an idle keep-alive connection").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the request itself is answered before the idle close: {answer}");
}

/// Sends one GET on `socket` and returns the response's status and body.
async fn get(socket: &mut TcpStream, addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if socket.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").and_then(|v| v.trim().parse().ok()))
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return (status, body.to_owned());
            }
        }
        match tokio::time::timeout(OUTER, socket.read(&mut buf)).await.expect("an answer in time") {
            Ok(0) | Err(_) => return (0, text),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_a_clear_refusal_past_its_connection_limit() {
    let server = TestServer::start_with(|config| config.max_connections_per_address = 3).await;
    let addr = server.addr();
    let mut held = Vec::new();
    for i in 0..3 {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let (status, body) = get(&mut socket, addr, "/api/health").await;
        assert_eq!(status, 200, "connection {i} of 3 is within the limit: {body}");
        held.push(socket); // kept alive, so it keeps its place
    }

    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    let (status, body) = get(&mut fourth, addr, "/api/health").await;
    assert_eq!(status, 503, "a fourth connection from the same address is over the limit: {body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("a JSON error ({e}): {body}"));
    assert_eq!(error["code"], "too_many_connections", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("3 connections")), "the message says why: {error}");
    until_closed(&mut fourth, "the refused connection").await;

    // Once one closes, its place is free again (the server notices the close a moment later).
    drop(held.pop());
    let freed = tokio::time::timeout(OUTER, async {
        loop {
            let mut socket = TcpStream::connect(addr).await.expect("connect");
            if get(&mut socket, addr, "/api/health").await.0 == 200 {
                return;
            }
        }
    })
    .await;
    assert!(freed.is_ok(), "a closed connection's place was never given back");
}
