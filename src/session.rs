//! One WebSocket (one browser tab): a read loop that parses frames and hands them to the
//! core, and a write task that drains the tab's queue of ready-made frames onto the socket.
//! Protocol errors (bad JSON, unknown type, oversized frame) are answered here and never
//! reach the core.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tracing::Instrument;

use crate::core::{CloseReason, ConnId, Connection, Hub};
use crate::model::UserId;
use crate::protocol::{ErrorCode, ServerFrame, parse_client_frame};

/// Frames waiting for a tab before it counts as too slow and is disconnected.
const OUTBOX: usize = 1024;
/// Replies produced by the session itself (errors for frames the core never sees).
const LOCAL: usize = 16;
/// A quiet tab is pinged this often; one that has said nothing (not even a pong) for
/// `DEAD_AFTER` is gone (laptop lid closed, Wi-Fi lost) and is shown offline.
const PING_EVERY: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(75);

/// A write the socket does not take within this long means the tab is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames coalesced into one write at most.
const MAX_BATCH: usize = 64;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub async fn run(socket: WebSocket, hub: Hub, user: UserId, session: [u8; 32], max_frame: usize) {
    let id = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let span = tracing::info_span!("conn", conn = id.0, user = user.0);
    serve(socket, hub, id, user, session, max_frame).instrument(span).await
}

async fn serve(socket: WebSocket, hub: Hub, id: ConnId, user: UserId, session: [u8; 32], max_frame: usize) {
    let (outbox_tx, outbox) = mpsc::channel(OUTBOX);
    let (local_tx, local) = mpsc::channel(LOCAL);
    let closed = Arc::new(OnceLock::new());
    hub.connect(Connection { id, user, session, outbox: outbox_tx, closed: closed.clone() }).await;
    tracing::debug!("connected");

    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(sink, outbox, local, closed).in_current_span());
    let mut heartbeat = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let mut writer_done = false;
    loop {
        let message = tokio::select! {
            _ = &mut writer => {
                writer_done = true;
                break;
            }
            message = stream.next() => message,
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= DEAD_AFTER {
                    tracing::info!("no answer to pings; dropping the tab");
                    break;
                }
                if !reply(&local_tx, Message::Ping(Default::default())) {
                    break;
                }
                continue;
            }
        };
        last_heard = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let error = ServerFrame::error(None, ErrorCode::BadRequest, "frames are JSON text, not binary");
                if !reply(&local_tx, Message::Text(error.encode())) {
                    break;
                }
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                let e = e.into_inner();
                let too_large = e
                    .downcast_ref::<tokio_tungstenite::tungstenite::Error>()
                    .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)));
                if too_large {
                    // Over the hard size limit: tell the client why before closing.
                    tracing::info!("frame far over the limit; closing the tab");
                    let close = CloseFrame { code: close_code::SIZE, reason: Utf8Bytes::from_static("too_large") };
                    let _ = local_tx.try_send(Message::Close(Some(close)));
                } else {
                    tracing::info!(error = %e, "connection failed");
                }
                break;
            }
        };
        if text.len() > max_frame {
            tracing::info!(bytes = text.len(), "frame over the limit");
            let error = ServerFrame::error(None, ErrorCode::TooLarge, format!("frames are at most {max_frame} bytes"));
            if !reply(&local_tx, Message::Text(error.encode())) {
                break;
            }
            continue;
        }
        match parse_client_frame(&text) {
            Ok((reference, frame)) => hub.frame(id, reference, frame).await,
            Err(e) => {
                tracing::info!(code = ?e.code, bytes = text.len(), "bad frame");
                let error = ServerFrame::error(e.reference, e.code, e.message);
                if !reply(&local_tx, Message::Text(error.encode())) {
                    break;
                }
            }
        }
    }
    hub.disconnect(id).await;
    drop(local_tx);
    if !writer_done {
        let _ = writer.await;
    }
    tracing::debug!("disconnected");
}

/// Queues a reply of the session's own; `false` when the client has not read the last ones
/// (its queue is full), and so is dropped rather than waited for.
fn reply(local: &mpsc::Sender<Message>, message: Message) -> bool {
    match local.try_send(message) {
        Ok(()) => true,
        Err(_) => {
            tracing::info!("the tab does not read its replies; dropping it");
            false
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Utf8Bytes>,
    mut local: mpsc::Receiver<Message>,
    closed: Arc<OnceLock<CloseReason>>,
) {
    let mut local_open = true;
    loop {
        let written = tokio::select! {
            biased;
            message = local.recv(), if local_open => match message {
                Some(message) => {
                    let is_close = matches!(message, Message::Close(_));
                    let written = timeout(WRITE_TIMEOUT, sink.send(message)).await;
                    if is_close {
                        return;
                    }
                    written
                }
                None => {
                    local_open = false;
                    continue;
                }
            },
            frame = outbox.recv() => match (frame, closed.get().copied()) {
                // Dropped by the core (too slow, signed out, shutdown): close at once instead
                // of first sending the backlog, and say why.
                (None, reason) | (Some(_), reason @ Some(_)) => {
                    let _ = timeout(WRITE_TIMEOUT, sink.send(Message::Close(Some(close_frame(reason))))).await;
                    return;
                }
                (Some(frame), None) => {
                    // Coalesce what else is already queued into the same socket write: under
                    // a burst, one system call carries many frames instead of one each.
                    timeout(WRITE_TIMEOUT, async {
                        let mut next = Some(frame);
                        let mut batch = 0;
                        while let Some(frame) = next.take() {
                            sink.feed(Message::Text(frame)).await?;
                            batch += 1;
                            if batch < MAX_BATCH {
                                next = outbox.try_recv().ok();
                            }
                        }
                        sink.flush().await
                    })
                    .await
                }
            },
        };
        // A socket that takes this long to accept a write belongs to a tab that is gone.
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
}

fn close_frame(reason: Option<CloseReason>) -> CloseFrame {
    let (code, reason) = match reason {
        Some(CloseReason::SlowConsumer) => (close_code::POLICY, "slow_consumer"),
        Some(CloseReason::SignedOut) => (close_code::NORMAL, "signed_out"),
        Some(CloseReason::ServerShutdown) => (close_code::AWAY, "server_shutdown"),
        None => (close_code::NORMAL, ""),
    };
    CloseFrame { code, reason: Utf8Bytes::from_static(reason) }
}
