//! Stopping the server the way a service manager or an admin does (SIGTERM, Ctrl-C): every
//! send the server took is answered before the tab is told the server is restarting, the
//! file holds exactly the acknowledged messages, a reconnecting tab loses nothing, and a
//! second signal stops the server at once. Runs the real binary.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use common::process::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Sends a tab makes at most while the server stops (it stops long before).
const MAX_SENDS: usize = 10_000;
/// Long messages for the tab that does not read.
const BIG: usize = 400;

fn signal(process: &Process, signal: libc::c_int) {
    let pid = process.child.id().expect("the server is running") as libc::pid_t;
    // SAFETY: a plain system call on the child we started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal the server");
}

/// The next text frame as JSON, or how the socket closed.
async fn next_frame(ws: &mut (impl StreamExt<Item = Result<Message, WsError>> + Unpin)) -> Result<Value, Option<(u16, String)>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("the tab should hear from the server");
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON frame")),
            Some(Ok(Message::Close(close))) => return Err(close.map(|c| (u16::from(c.code), c.reason.as_str().to_owned()))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Reads the `hello` parts of a fresh tab; returns the last one.
async fn hello(ws: &mut RawTab) -> Value {
    loop {
        let frame = next_frame(ws).await.expect("hello");
        assert_eq!(frame["type"], "hello", "a tab's first frames are hello: {frame}");
        if frame["last"] == true {
            return frame;
        }
    }
}

fn send(i: usize) -> Message {
    let frame =
        json!({"type": "send", "ref": i, "conv": 1, "text": format!("before the restart {i}"), "client_id": format!("c{i}")});
    Message::text(frame.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_sends_answers_every_send_it_took_and_the_tab_reconnects_without_a_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let http = reqwest::Client::new();
    let mut server = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    let mut ws = raw_tab(&server.addr, &cookie).await;
    hello(&mut ws).await;

    // Sends keep coming, one a millisecond, until the socket closes; the server is told to
    // stop once it has answered the first.
    let (mut sink, mut stream) = ws.split();
    let sender = tokio::spawn(async move {
        let mut sent = 0;
        while sent < MAX_SENDS && sink.send(send(sent)).await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sent
    });
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut seen_live = 0;
    let mut signalled = false;
    let mut last_frame = Value::Null;
    let close = loop {
        match next_frame(&mut stream).await {
            Ok(frame) => {
                assert_ne!(last_frame["type"], "restarting", "`restarting` is the last frame, but {frame} came after it");
                match frame["type"].as_str() {
                    Some("ack") => {
                        acked.insert(frame["ref"].as_u64().expect("ref") as usize, frame["seq"].as_u64().expect("seq"));
                    }
                    Some("message") => seen_live = seen_live.max(frame["message"]["seq"].as_u64().expect("seq")),
                    Some("error") => panic!("a send failed: {frame}"),
                    _ => {}
                }
                if !signalled && !acked.is_empty() {
                    signal(&server, libc::SIGTERM);
                    signalled = true;
                }
                last_frame = frame;
            }
            Err(close) => break close,
        }
    };
    assert_eq!(last_frame["type"], "restarting", "the tab is told the server restarts before its socket closes");
    assert!(last_frame["message"].as_str().is_some_and(|m| m.contains("restarting")), "{last_frame}");
    assert_eq!(close, Some((1012, "restarting".to_owned())), "the socket closes with 1012 (service restart)");
    let status = server.child.wait().await.expect("the server exits");
    assert!(status.success(), "a graceful shutdown exits 0: {status:?}");
    let sent = sender.await.expect("the sending task");
    assert!(sent < MAX_SENDS, "the tab was still sending when the server stopped");
    assert!(!acked.is_empty(), "the server answered sends before it stopped");

    // The file holds exactly what was acknowledged: nothing the server took went unanswered.
    let mut server = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &server.addr, None).await;
    let stored: BTreeMap<u64, String> = all_messages(&http, &server.addr, &cookie, 1).await.into_iter().collect();
    let want: BTreeMap<u64, String> = acked.iter().map(|(i, seq)| (*seq, format!("before the restart {i}"))).collect();
    let stored_sends: BTreeMap<u64, String> =
        stored.iter().filter(|(_, t)| t.starts_with("before the restart")).map(|(s, t)| (*s, t.clone())).collect();
    assert_eq!(stored_sends, want, "after the restart the file holds every acknowledged send and no other");

    // The tab reconnects the way the web client does: its hello says how far the
    // conversation goes, `after=` what it saw live fills the rest, and it resends what was
    // not answered (with the same client_ids); every send is then posted exactly once.
    let mut ws = raw_tab(&server.addr, &cookie).await;
    let hello = hello(&mut ws).await;
    let general = hello["conversations"].as_array().expect("conversations").iter().find(|c| c["id"] == 1).cloned();
    let last_seq = general.expect("general in hello")["last_seq"].as_u64().expect("last_seq");
    assert_eq!(Some(&last_seq), stored.keys().next_back(), "hello tells the tab how far #general goes");
    let mut caught_up: Vec<u64> = Vec::new();
    let mut after = seen_live;
    loop {
        let url = format!("http://{}/api/conversations/1/messages?after={after}&limit=200", server.addr);
        let page: Value = http.get(url).header("cookie", &cookie).send().await.expect("catch-up").json().await.expect("JSON");
        for m in page["messages"].as_array().unwrap_or_else(|| panic!("a history page: {page}")) {
            caught_up.push(m["seq"].as_u64().expect("seq"));
            after = after.max(m["rev"].as_u64().expect("rev"));
        }
        if page["more"] != true {
            break;
        }
    }
    let missed: Vec<u64> = stored.keys().copied().filter(|seq| *seq > seen_live).collect();
    assert_eq!(caught_up, missed, "catching up after the last message seen live gets every later one");
    for i in (0..sent).filter(|i| !acked.contains_key(i)) {
        ws.send(send(i)).await.expect("resend");
    }
    let mut answered = 0;
    while answered < sent - acked.len() {
        let frame = next_frame(&mut ws).await.expect("an answer to each resend");
        assert_ne!(frame["type"], "error", "a resend failed: {frame}");
        answered += usize::from(frame["type"] == "ack");
    }
    let texts: Vec<String> = all_messages(&http, &server.addr, &cookie, 1).await.into_iter().map(|(_, t)| t).collect();
    for i in 0..sent {
        let count = texts.iter().filter(|t| **t == format!("before the restart {i}")).count();
        assert_eq!(count, 1, "send {i} is posted exactly once across the restart");
    }
    server.child.start_kill().expect("stop");
    let _ = server.child.wait().await;
}

/// A tab whose socket takes almost nothing: the kernel holds only a few KB for it.
async fn tab_that_does_not_read(addr: &str, cookie: &str) -> RawTab {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let stream = socket.connect(addr.parse().expect("address")).await.expect("connect");
    let mut request = format!("ws://{addr}/api/ws").into_client_request().expect("ws request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie header"));
    let (ws, _) = tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.expect("ws");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_a_shutdown_that_waits_for_a_stuck_tab_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("hallway.redb");
    let http = reqwest::Client::new();
    let mut server = start_binary_with(&data, &[], "hallway=info", Stdio::piped()).await;
    // Read the log as it comes, so the server never waits on a full pipe.
    let mut lines = BufReader::new(server.child.stderr.take().expect("stderr")).lines();
    let (log_tx, mut log) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log_tx.send(line);
        }
    });
    let cookie = sign_in_admin(&http, &server.addr, server.setup_token.take()).await;
    let mut stuck = tab_that_does_not_read(&server.addr, &cookie).await;
    hello(&mut stuck).await;
    let mut ws = raw_tab(&server.addr, &cookie).await;
    hello(&mut ws).await;
    // 6 MB of messages for a tab that reads none: more than the kernel buffers (4 MB at
    // most here), so its session waits to write, and the shutdown waits for it.
    let text = "x".repeat(15_000);
    for i in 0..BIG {
        let frame = json!({"type": "send", "ref": i, "conv": 1, "text": text, "client_id": format!("big{i}")});
        ws.send(Message::text(frame.to_string())).await.expect("send");
    }
    let mut acks = 0;
    while acks < BIG {
        let frame = next_frame(&mut ws).await.expect("acks");
        assert_ne!(frame["type"], "error", "{frame}");
        acks += usize::from(frame["type"] == "ack");
    }
    signal(&server, libc::SIGTERM);
    loop {
        let line = log.recv().await.expect("the server logs its shutdown");
        if line.contains("told every tab the server is restarting") {
            break;
        }
    }
    signal(&server, libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("the second signal stops the server")
        .expect("exit status");
    assert_eq!(status.code(), Some(130), "stopped by the second signal, not by the end of the shutdown");
    let mut rest = String::new();
    while let Some(line) = log.recv().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("second stop signal"), "the log says why it stopped at once:\n{rest}");
    drop(stuck);

    // Everything acknowledged is there after all.
    let server = start_binary(&data).await;
    let cookie = sign_in_admin(&http, &server.addr, None).await;
    let stored = all_messages(&http, &server.addr, &cookie, 1).await;
    assert_eq!(stored.iter().filter(|(_, t)| t.len() == text.len()).count(), BIG, "the acknowledged messages are on disk");
}
