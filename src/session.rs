//! One WebSocket (one browser tab), served by one task: it reads frames, parses them and
//! hands them to the core, and drains the tab's queue of ready-made frames onto the socket.
//! Protocol errors (bad JSON, unknown type, oversized frame) are answered here and never
//! reach the core. One task and one queue per tab keep an idle tab small.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tracing::Instrument;

use crate::core::{CloseReason, ConnId, Connection, Hub};
use crate::limits::{TabLimits, Verdict};
use crate::model::UserId;
use crate::protocol::{ClientFrame, Encoded, ErrorCode, Ref, Refusal, ServerFrame, frame_ref, parse_client_frame};

/// Frames waiting for a tab before it counts as too slow and is disconnected.
const OUTBOX: usize = 1024;
/// A quiet tab is pinged this often; one that has said nothing (not even a pong) for
/// `DEAD_AFTER` is gone (laptop lid closed, Wi-Fi lost) and is shown offline.
const PING_EVERY: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(75);
/// A write the socket does not take within this long means the tab is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames coalesced into one write at most.
const MAX_BATCH: usize = 64;
/// Messages longer than `FRAGMENT_ABOVE` are sent in fragments of `FRAGMENT` bytes.
/// tungstenite's write buffer keeps the capacity of the largest frame it ever held, so a long
/// paste sent whole would cost every tab that received it that much memory for as long as it
/// stays open (15 KiB per tab for a 14 KB paste: `hallway-load idle --paste`). Frames of
/// about 2 KB (most `hello` parts) go whole: cut in two, they left idle tabs 1.4 KiB larger.
const FRAGMENT_ABOVE: usize = 4 * 1024;
const FRAGMENT: usize = 2 * 1024;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The open tabs, counted by the guard each session holds: a shutdown waits until every tab
/// has written its last frames and closed, and `/metrics` reads the count.
#[derive(Clone)]
pub struct Tabs(Arc<tokio::sync::watch::Sender<()>>);

/// One tab's place in `Tabs`, held for as long as its session runs.
pub struct TabGuard(#[allow(dead_code)] tokio::sync::watch::Receiver<()>);

impl Default for Tabs {
    fn default() -> Tabs {
        Tabs(Arc::new(tokio::sync::watch::Sender::new(())))
    }
}

impl Tabs {
    pub fn open(&self) -> TabGuard {
        TabGuard(self.0.subscribe())
    }

    pub fn count(&self) -> usize {
        self.0.receiver_count()
    }

    /// Returns once no tab is open.
    pub async fn all_closed(&self) {
        self.0.closed().await
    }
}

/// The tab's task. A plain function, not `async`: what an async function is passed stays in
/// its future for the task's life, and this way the socket (hundreds of bytes) is split and
/// the `Tab` built before any future is, instead of each being kept once more per layer.
pub fn run<S>(socket: WebSocketStream<S>, hub: Hub, user: UserId, session: [u8; 32], max_frame: usize) -> impl Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
    let span = tracing::info_span!("conn", conn = id.0, user = user.0);
    let (sink, stream) = socket.split();
    let limits = hub.limiter().tab(user);
    let tab = Tab { id, hub, limits, sink, max_frame };
    serve(tab, stream, user, session).instrument(span)
}

struct Tab<S> {
    id: ConnId,
    hub: Hub,
    limits: TabLimits,
    sink: SplitSink<WebSocketStream<S>, Message>,
    max_frame: usize,
}

async fn serve<S>(mut tab: Tab<S>, mut stream: SplitStream<WebSocketStream<S>>, user: UserId, session: [u8; 32])
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = tab.id;
    let (outbox_tx, mut outbox) = mpsc::channel(OUTBOX);
    let closed = Arc::new(OnceLock::new());
    tab.hub.connect(Connection { id, user, session, outbox: outbox_tx, closed: closed.clone() }).await;
    tracing::debug!("connected");

    // One timer for the next ping and for the tab's end if it stays silent: a timer is
    // about 100 bytes of every tab, and an `Interval` a further allocation. A frame only
    // moves `heard` on; the timer, if it then fires early, is set again.
    let mut heard = Instant::now();
    let mut ping_at = heard + PING_EVERY;
    let timer = tokio::time::sleep_until(ping_at);
    tokio::pin!(timer);
    loop {
        let step = tokio::select! {
            frame = outbox.recv() => match (frame, closed.get().copied()) {
                // A shutdown sends what is queued first: the last acks and `restarting`.
                (Some(frame), None | Some(CloseReason::ServerShutdown)) => tab.write_batch(frame, &mut outbox, &closed).await,
                // Dropped by the core otherwise (too slow, signed out): close at once instead
                // of first sending the backlog, and say why.
                (None, reason) | (Some(_), reason @ Some(_)) => {
                    let _ = tab.write(Message::Close(Some(close_frame(reason)))).await;
                    ControlFlow::Break(())
                }
            },
            message = stream.next() => {
                heard = Instant::now();
                tab.read(message).await
            }
            () = &mut timer => {
                let now = Instant::now();
                let ping = now >= ping_at;
                if ping {
                    ping_at = now + PING_EVERY;
                }
                timer.as_mut().reset(ping_at.min(heard + DEAD_AFTER));
                if now >= heard + DEAD_AFTER {
                    tracing::info!("no answer to pings; dropping the tab");
                    let close = CloseFrame { code: CloseCode::Away, reason: Utf8Bytes::from_static("ping_timeout") };
                    let _ = tab.write(Message::Close(Some(close))).await;
                    ControlFlow::Break(())
                } else if ping {
                    tab.write(Message::Ping(Default::default())).await
                } else {
                    ControlFlow::Continue(())
                }
            }
        };
        if step.is_break() {
            break;
        }
    }
    tab.hub.disconnect(id).await;
    drain(&mut stream).await;
    tracing::debug!("disconnected");
}

impl<S: AsyncRead + AsyncWrite + Unpin> Tab<S> {
    /// Writes one message; `Break` when the socket is gone or does not take it in time.
    async fn write(&mut self, message: Message) -> ControlFlow<()> {
        match timeout(WRITE_TIMEOUT, self.sink.send(message)).await {
            Ok(Ok(())) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        }
    }

    /// Writes `first` and whatever else is already queued in one go: under a burst, one
    /// system call carries many frames instead of one each.
    async fn write_batch(
        &mut self,
        first: Encoded,
        outbox: &mut mpsc::Receiver<Encoded>,
        closed: &OnceLock<CloseReason>,
    ) -> ControlFlow<()> {
        let sink = &mut self.sink;
        let written = timeout(WRITE_TIMEOUT, async {
            let mut next = Some(first);
            let mut batch = 0;
            while let Some(frame) = next.take() {
                // All fragments of a message go out here, back to back: tungstenite does not
                // keep track of fragments, and only this task writes to the socket.
                if frame.len() <= FRAGMENT_ABOVE {
                    sink.feed(Message::Text(text_of(frame))).await?;
                } else {
                    for fragment in fragments(frame) {
                        sink.feed(Message::Frame(fragment)).await?;
                    }
                }
                batch += 1;
                // Stop early when the core let go of this tab: the loop then closes it.
                if batch < MAX_BATCH && closed.get().is_none_or(|r| *r == CloseReason::ServerShutdown) {
                    next = outbox.try_recv().ok();
                }
            }
            sink.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        }
    }

    /// Handles one message from the client.
    async fn read(&mut self, message: Option<Result<Message, WsError>>) -> ControlFlow<()> {
        // Decided first, then at most one wait: every idle tab's task is as large as the
        // largest future it can wait on, so the waits here are kept to the two small ones.
        match self.answer(message) {
            Answer::Core(reference, frame) => {
                self.hub.frame(self.id, reference, frame).await;
                ControlFlow::Continue(())
            }
            Answer::Reply(frame) => self.write(Message::Text(text_of(frame))).await,
            Answer::Close(close) => {
                let _ = self.write(Message::Close(Some(close))).await;
                ControlFlow::Break(())
            }
            Answer::Nothing => ControlFlow::Continue(()),
            Answer::End => ControlFlow::Break(()),
        }
    }

    /// What to do with one message from the client: checks its kind, size, syntax and the
    /// rate limits.
    fn answer(&mut self, message: Option<Result<Message, WsError>>) -> Answer {
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                return Answer::error(ServerFrame::error(None, ErrorCode::BadRequest, "frames are JSON text, not binary"));
            }
            // Reading yields whole messages, never raw frames.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return Answer::Nothing,
            Some(Ok(Message::Close(_))) | None => return Answer::End,
            Some(Err(e)) => {
                if matches!(e, WsError::Capacity(_)) {
                    // Over the hard size limit: tell the client why before closing.
                    tracing::info!("frame far over the limit; closing the tab");
                    return Answer::Close(CloseFrame { code: CloseCode::Size, reason: Utf8Bytes::from_static("too_large") });
                }
                tracing::info!(error = %e, "connection failed");
                return Answer::End;
            }
        };
        if text.len() > self.max_frame {
            tracing::info!(bytes = text.len(), "frame over the limit");
            if let Err(verdict) = self.limits.admit(None, Instant::now()) {
                return over_limit(verdict, None, "frame");
            }
            let max = self.max_frame;
            return Answer::error(ServerFrame::error(
                frame_ref(&text),
                ErrorCode::TooLarge,
                format!("frames are at most {max} bytes"),
            ));
        }
        let parsed = parse_client_frame(&text);
        let (reference, kind) = match &parsed {
            Ok((reference, frame)) => (reference.clone(), Some(frame)),
            Err(e) => (e.reference.clone(), None),
        };
        if let Err(verdict) = self.limits.admit(kind, Instant::now()) {
            return over_limit(verdict, reference, kind.map_or("malformed", |f| f.kind()));
        }
        match parsed {
            Ok((reference, frame)) => Answer::Core(reference, frame),
            Err(e) => {
                tracing::info!(code = ?e.refusal.code, bytes = text.len(), "bad frame");
                Answer::error(ServerFrame::refused(e.reference, e.refusal))
            }
        }
    }
}

/// What the session does with one message from the client.
enum Answer {
    /// Hand the frame to the core.
    Core(Option<Ref>, ClientFrame),
    /// Send the client this frame (an error) and go on.
    Reply(Encoded),
    /// Close the tab, saying why.
    Close(CloseFrame),
    /// Nothing to do (a pong).
    Nothing,
    /// The client closed or the connection failed.
    End,
}

impl Answer {
    fn error(frame: ServerFrame) -> Answer {
        Answer::Reply(frame.encode())
    }
}

/// Refuses a frame over a rate limit, or closes a tab that kept going after many refusals.
fn over_limit(verdict: Verdict, reference: Option<Ref>, kind: &str) -> Answer {
    match verdict {
        Verdict::Refuse(wait) => {
            tracing::debug!(kind, wait_ms = wait.as_millis() as u64, "frame over a rate limit");
            let message = format!("too many {kind} frames; try again in {:.1} s", wait.as_secs_f64());
            Answer::error(ServerFrame::refused(reference, Refusal::new(ErrorCode::RateLimited, message).retry_after(wait)))
        }
        Verdict::Close => {
            tracing::warn!(kind, "the tab kept sending over its rate limits; closing it");
            Answer::Close(CloseFrame { code: CloseCode::Policy, reason: Utf8Bytes::from_static("rate_limited") })
        }
    }
}

/// After a close, reads what the client still sends (its close reply) for a moment, so the
/// closing handshake completes instead of the connection being reset.
async fn drain<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut SplitStream<WebSocketStream<S>>) {
    let _ = timeout(Duration::from_secs(1), async { while let Some(Ok(_)) = stream.next().await {} }).await;
}

fn close_frame(reason: Option<CloseReason>) -> CloseFrame {
    let (code, reason) = match reason {
        Some(CloseReason::SlowConsumer) => (CloseCode::Policy, "slow_consumer"),
        Some(CloseReason::SignedOut) => (CloseCode::Normal, "signed_out"),
        Some(CloseReason::Disabled) => (CloseCode::Policy, "account_disabled"),
        Some(CloseReason::ServerShutdown) => (CloseCode::Restart, "restarting"),
        Some(CloseReason::TooManyTabs) => (CloseCode::Policy, "too_many_tabs"),
        None => (CloseCode::Normal, ""),
    };
    CloseFrame { code, reason: Utf8Bytes::from_static(reason) }
}

/// The frame as tungstenite's text type, sharing its bytes.
fn text_of(frame: Encoded) -> Utf8Bytes {
    // SAFETY: an `Encoded` is only ever made from a `String`, so its bytes are UTF-8.
    unsafe { Utf8Bytes::from_bytes_unchecked(frame.into_bytes()) }
}

/// A text message as a first frame and continuations of about `FRAGMENT` bytes each, cut
/// between characters; the bytes are shared, not copied.
fn fragments(text: Encoded) -> Vec<Frame> {
    let bytes: Bytes = text.into_bytes();
    // A UTF-8 continuation byte (10xxxxxx) never starts a character.
    let is_char_boundary = |at: usize| at >= bytes.len() || bytes[at] & 0xC0 != 0x80;
    let mut cuts = vec![0];
    while bytes.len() - cuts[cuts.len() - 1] > FRAGMENT {
        let mut end = cuts[cuts.len() - 1] + FRAGMENT;
        while !is_char_boundary(end) {
            end -= 1;
        }
        cuts.push(end);
    }
    cuts.push(bytes.len());
    let last = cuts.len() - 2;
    cuts.windows(2)
        .enumerate()
        .map(|(i, cut)| {
            let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
            Frame::message(bytes.slice(cut[0]..cut[1]), opcode, i == last)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_into_fragments_between_characters_that_add_up_to_it() {
        let text: String =
            (0..3000).map(|i| if i % 7 == 0 { 'é' } else { 'x' }).chain("日本語".chars().cycle().take(500)).collect();
        let frames = fragments(Encoded::from(text.clone()));
        assert!(frames.len() >= 3, "{} fragments", frames.len());
        let mut whole = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            assert!(frame.payload().len() <= FRAGMENT);
            assert!(std::str::from_utf8(frame.payload()).is_ok(), "fragment {i} is cut inside a character");
            let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            assert_eq!(frame.header().opcode, opcode);
            assert_eq!(frame.header().is_final, i == frames.len() - 1, "only the last fragment is final");
            whole.extend_from_slice(frame.payload());
        }
        assert_eq!(String::from_utf8(whole).unwrap(), text);
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::core::Settings;
    use crate::store::Store;
    use crate::store::writer::Writer;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// Every open tab is one task whose future is as large as everything it may hold across
    /// a wait: 1,000 idle tabs cost 1,000 times this. 1,312 bytes in session 6, from 2,504:
    /// each async layer kept its arguments (the 328-byte socket among them), and waiting on
    /// the core's queue held a frame three times.
    const MOST: usize = 1536;

    #[tokio::test]
    async fn a_tab_s_task_stays_small() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, key) = Store::open_with_key(&dir.path().join("hallway.redb")).expect("a fresh data file");
        let (writer, writer_thread) = Writer::start(store.clone());
        let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), Settings::default()).expect("the core starts");
        let (server, _client) = tokio::io::duplex(64);
        let socket = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let task = run(socket, hub.clone(), UserId(1), [0; 32], 1024);
        let size = std::mem::size_of_val(&task);
        drop(task);
        assert!(size <= MOST, "a tab's task takes {size} bytes, more than {MOST}");
        hub.shutdown().await;
        let _ = hub_task.await;
        writer_thread.stop(writer).await;
    }
}
