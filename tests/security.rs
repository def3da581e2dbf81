//! The doors: no session, no data; pages of other origins cannot act for a signed-in person.

mod common;

use common::*;
use serde_json::json;

const EVIL: &str = "http://evil.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_from_a_foreign_origin_is_refused() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let refused = Ws::connect_raw(server.addr(), Some(&bob.session), Some(EVIL)).await.err();
    assert_eq!(refused, Some(403), "a page on another site must not open a chat connection with bob's cookie");

    let own_origin = format!("http://{}", server.addr());
    let tab = Ws::connect(server.addr(), Some(&bob.session), Some(&own_origin), "bob's tab (same origin)").await;
    assert!(tab.is_ok(), "the web client's own origin must be allowed, got {:?}", tab.err());
    let bot = Ws::connect(server.addr(), Some(&bob.session), None, "bob's bot (no Origin)").await;
    assert!(bot.is_ok(), "a bot that sends no Origin must be allowed, got {:?}", bot.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_from_a_foreign_origin_is_refused() {
    let server = TestServer::start().await;
    let alice = server.admin().await;

    let resp = alice
        .http
        .post(format!("{}/api/users", server.base()))
        .header(reqwest::header::ORIGIN, EVIL)
        .json(&json!({"name": "mallory", "display_name": "M", "password": "hunter22hunter", "role": "admin"}))
        .send()
        .await
        .expect("POST /api/users");
    let (status, body) = read_response(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("bad_origin")),
        "another site made alice's browser create an account: {body}"
    );
    let (status, _) = server.try_login("mallory", "hunter22hunter").await;
    assert_eq!(status, 401, "the account from the foreign page must not exist");

    let resp = reqwest::Client::new()
        .post(format!("{}/api/login", server.base()))
        .header(reqwest::header::ORIGIN, EVIL)
        .json(&json!({"name": ADMIN_NAME, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("POST /api/login");
    let (status, body) = read_response(resp).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("bad_origin")), "login from a foreign page: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_only_health_and_setup_answer() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let mut alice_tab = alice.ws().await;
    let general = alice_tab.room_id("general");
    alice_tab.send_message(general, "internal only").await;

    let (status, body) = server.anonymous_get("/api/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "health needs no session: {body}");
    let (status, _) = server.anonymous_get("/api/setup").await;
    assert_eq!(status, 200, "the setup check needs no session");

    for path in ["/api/me", "/api/users", "/api/rooms", &format!("/api/conversations/{general}/messages")] {
        let (status, body) = server.anonymous_get(path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthorized")),
            "GET {path} without signing in should be refused: {body}"
        );
    }
    let (status, body) = server
        .anonymous_post("/api/users", json!({"name": "x", "display_name": "X", "password": "hunter22hunter", "role": "admin"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "POST /api/users: {body}");

    let (status, body) = read_response(
        reqwest::Client::new()
            .get(format!("{}/api/me", server.base()))
            .header(reqwest::header::COOKIE, "hallway_session=made-up-session-id")
            .send()
            .await
            .expect("GET /api/me"),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "a made-up cookie: {body}");

    assert_eq!(
        Ws::connect_raw(server.addr(), None, None).await.err(),
        Some(401),
        "a WebSocket without a session must be refused"
    );
    assert_eq!(
        Ws::connect_raw(server.addr(), Some("made-up-session-id"), None).await.err(),
        Some(401),
        "a WebSocket with a made-up session must be refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_out_of_reach_of_scripts_and_other_sites() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    for client in [&alice, &bob] {
        let attrs: Vec<String> = client.set_cookie.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
        assert!(attrs.iter().any(|a| a == "httponly"), "a script could read the session: {}", client.set_cookie);
        assert!(
            attrs.iter().any(|a| a == "samesite=strict"),
            "other sites' requests would carry the session: {}",
            client.set_cookie
        );
        assert!(attrs.iter().any(|a| a == "path=/"), "the cookie should cover the whole app: {}", client.set_cookie);
    }
    assert_ne!(alice.session, bob.session, "two people must not share a session id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_connection_needs_a_session_and_a_real_websocket_upgrade() {
    let server = TestServer::start().await;
    let alice = server.admin().await;

    let refused = Ws::connect_raw(server.addr(), None, None).await.err();
    assert_eq!(refused, Some(401), "a chat connection without a session cookie must be refused");

    // A plain GET (no Upgrade headers) with a valid session: a clear 400, not a hang or a 101.
    let (status, body) = alice.get("/api/ws").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("WebSocket upgrade")), "{body}");

    // Upgrades that cannot work get a 400 too, never a 101 followed by a closed connection:
    // HTTP/1.0 (a proxy left at its default), a malformed key, another protocol version.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    for (version, key, ws_version, what) in [
        ("HTTP/1.0", key, "13", "an upgrade over HTTP/1.0"),
        ("HTTP/1.1", "x", "13", "a malformed Sec-WebSocket-Key"),
        ("HTTP/1.1", key, "8", "Sec-WebSocket-Version 8"),
    ] {
        let (status, head, _) = raw_handshake(server.addr(), &alice.session, version, key, ws_version).await;
        assert_eq!(status, 400, "{what} got: {head}");
        if ws_version != "13" {
            assert!(head.to_ascii_lowercase().contains("sec-websocket-version: 13"), "the 400 names the version spoken: {head}");
        }
    }
    let (status, head, _) = raw_handshake(server.addr(), &alice.session, "HTTP/1.1", key, "13").await;
    assert_eq!(status, 101, "a proper handshake is accepted: {head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "with the accept value of RFC 6455's example: {head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_file_and_the_directory_made_for_it_are_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    // The usual umask, which left the file readable by every local account.
    // SAFETY: umask only sets this process's file creation mask.
    unsafe { libc::umask(0o022) };
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("made-by-hallway");
    let data = data_dir.join("hallway.redb");
    let start = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        hallway::Server::start(listener, hallway::Config::new(data.clone())).await.expect("start")
    };

    let server = start().await;
    assert_eq!(mode(&data), 0o600, "other local accounts could read every message and password hash");
    assert_eq!(mode(&data_dir), 0o700, "the directory Hallway made for the data file is for its account only");
    server.shutdown().await;

    // An admin who chose a mode keeps it.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let server = start().await;
    assert_eq!(mode(&data), 0o640, "an existing file's mode is left as the admin set it");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_forbids_sniffing_and_framing_by_other_sites() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let http = reqwest::Client::new();
    let base = server.base();
    let requests = [
        ("the page", http.get(format!("{base}/"))),
        ("a script", http.get(format!("{base}/app.js"))),
        ("health", http.get(format!("{base}/api/health"))),
        ("a refusal", http.get(format!("{base}/api/me"))),
        ("an unknown endpoint", http.get(format!("{base}/api/nothing-here"))),
        ("a bad sign-in", http.post(format!("{base}/api/login")).json(&json!({"name": "x", "password": "y"}))),
        ("a foreign origin", http.post(format!("{base}/api/logout")).header(reqwest::header::ORIGIN, EVIL)),
        ("JSON of a signed-in person", alice.http.get(format!("{base}/api/me"))),
    ];
    for (what, request) in requests {
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert_eq!(header("x-content-type-options"), "nosniff", "{what} ({}) may be sniffed as another type", response.status());
        assert_eq!(header("x-frame-options"), "DENY", "{what} ({}) may be framed by another site", response.status());
        assert!(
            header("content-security-policy").contains("frame-ancestors 'none'"),
            "{what} ({}) needs frame-ancestors 'none': {:?}",
            response.status(),
            header("content-security-policy")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_post_does_not_break_the_next_request_of_a_pooling_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let _alice = server.admin().await;
    let body = json!({"name": "mallory", "password": "hunter22hunter", "padding": "x".repeat(200_000)}).to_string();

    // One reqwest client, so its pool reuses the connection the refusal came on.
    let http = reqwest::Client::new();
    for round in 0..5 {
        let refused = http.post(format!("{}/api/users", server.base())).body(body.clone()).send().await;
        let status = refused.map(|r| r.status().as_u16()).unwrap_or_else(|e| panic!("round {round}: the refused POST: {e}"));
        assert_eq!(status, 401, "round {round}: a POST without a session is refused before its body is read");
        let next = http.get(format!("{}/api/health", server.base())).send().await;
        let status = next.map(|r| r.status().as_u16()).unwrap_or_else(|e| panic!("round {round}: the next request: {e:?}"));
        assert_eq!(status, 200, "round {round}");
    }

    // What such a pool does, without its luck of noticing the close in time: unless told
    // `Connection: close`, it sends the next request on the same connection right away.
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.expect("connect");
    let head = format!(
        "POST /api/users HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("write the head");
    let _ = socket.write_all(body.as_bytes()).await; // the server may stop reading: fine
    let first = read_one_response(&mut socket).await;
    assert!(first.starts_with("HTTP/1.1 401"), "the refusal: {first}");
    if !first.to_ascii_lowercase().contains("connection: close") {
        let get = format!("GET /api/health HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
        let _ = socket.write_all(get.as_bytes()).await;
        let second = read_one_response(&mut socket).await;
        assert!(
            second.starts_with("HTTP/1.1 200"),
            "the refusal kept the connection open by its headers ({first:?}), but the next request on it got {second:?}"
        );
    }
    let _ = socket.shutdown().await;
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest).await;
}

/// The head and body (by Content-Length) of one response, or what came before the socket
/// closed; "" when nothing did.
async fn read_one_response(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&bytes).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .and_then(|v| v.ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&buf[..n]),
            Ok(_) => return String::from_utf8_lossy(&bytes).to_string(),
            Err(_) => panic!("no complete response within 10 s: {}", String::from_utf8_lossy(&bytes)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revalidated_page_keeps_its_own_policy() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/", server.base())).send().await.expect("GET /");
    let etag = page.headers().get(reqwest::header::ETAG).cloned().expect("the page has an ETag");
    let again = http.get(format!("{}/", server.base())).header(reqwest::header::IF_NONE_MATCH, etag).send().await.expect("GET /");
    assert_eq!(again.status().as_u16(), 304);
    // A browser merges a 304's headers into the cached page: a policy here would replace the
    // page's own, and a stricter one blocks its scripts (a blank page after a reload).
    let policy = again.headers().get(reqwest::header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(!policy.contains("default-src 'none'"), "the 304 would block the page's scripts: {policy}");
    assert_eq!(again.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
}
