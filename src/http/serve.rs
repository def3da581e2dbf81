//! The accept loop: every TCP connection is served by hyper's HTTP/1 connection directly
//! (axum's `serve` has no timeouts or limits), with what a server on an office LAN needs to
//! stay reachable when one machine misbehaves: a deadline for a request's headers and for an
//! idle keep-alive connection, caps on connections in all and per address, and accept
//! failures (out of file descriptors) logged once instead of silently retried.
//!
//! In HTTPS mode one port speaks both: a connection that opens with a TLS handshake gets the
//! chat, any other gets plain HTTP's router (the redirect, and the CA's page).
//!
//! A WebSocket keeps its connection's slot (the slot lives in the socket's wrapper, which the
//! upgrade hands on) but leaves the deadlines behind: the session has its own heartbeat.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, Sleep};

use crate::ratelog::RateLimitedLog;

/// How connections are bounded; `Config` fills it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From the first byte of a request (or from accept) to the end of its headers.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request is closed after this long.
    pub idle_timeout: Duration,
    /// Connections open at once, WebSockets included; 0 for no cap.
    pub max_connections: usize,
    /// Connections open at once from one address (an IPv6 /64); 0 for no cap.
    pub max_per_address: usize,
}

/// HTTPS mode: TLS on the listener, and the router plain HTTP on the same port gets.
#[derive(Clone)]
pub struct Https {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub plain: Router,
}

/// File descriptors kept free of connections: the data file, the listener, a refusal's socket.
const RESERVED_FDS: usize = 64;

/// Serves `router` on `listener` until `stop` fires, then closes idle connections, lets
/// requests in flight finish and returns once every HTTP connection is done (WebSockets are
/// the core's to close). `open` is kept at the number of connections open, for `/metrics`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    https: Option<Https>,
    limits: Limits,
    stop: oneshot::Receiver<()>,
    open: Arc<AtomicUsize>,
) {
    let limits = fit_to_open_file_limit(limits);
    let counts = Arc::new(Counts::new(&limits, open));
    let (stopping_tx, stopping) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut failures = AcceptFailures { failing: 0, log: RateLimitedLog::new(EVERY) };
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                failures.failed(&e);
                // Out of descriptors, the listener stays readable: wait for some to free up
                // instead of spinning, and try again.
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        failures.succeeded();
        // Chat is small writes answered at once: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs add 40 ms to a request-response exchange such as send -> ack.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let task = Connection {
            router: router.clone(),
            https: https.clone(),
            peer,
            limits: limits.clone(),
            stopping: stopping.clone(),
            _open: open.clone(),
        };
        tokio::spawn(task.serve(tcp, counts.take(peer.ip())));
    }
    let _ = stopping_tx.send(true);
    drop(open);
    open_tx.closed().await;
}

/// One accepted connection's task. `_open` is dropped when it ends, which `serve` waits for.
struct Connection {
    router: Router,
    https: Option<Https>,
    peer: SocketAddr,
    limits: Limits,
    stopping: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
}

impl Connection {
    /// Serves the connection, or answers its first request with a refusal when it is over a
    /// cap (`slot` is then `Err`).
    async fn serve(mut self, tcp: TcpStream, slot: Result<Slot, Full>) {
        let deadlines = Arc::new(Deadlines::new(&self.limits));
        let (slot, refusal) = match slot {
            Ok(slot) => (Some(slot), None),
            Err(refusal) => (None, Some(refusal)),
        };
        let Some(https) = self.https.take() else {
            let timed = Timed::new(tcp, deadlines.clone(), slot);
            let router = self.router.clone();
            return self.speak(timed, deadlines, router, refusal).await;
        };
        // A TLS connection opens with a handshake record (0x16); HTTP with a method's letter.
        let mut first = [0u8; 1];
        let peeked = tokio::select! {
            peeked = tokio::time::timeout(self.limits.header_timeout, tcp.peek(&mut first)) => peeked,
            _ = self.stopping.wait_for(|stopping| *stopping) => return,
        };
        if !matches!(peeked, Ok(Ok(1))) {
            return;
        }
        let timed = Timed::new(tcp, deadlines.clone(), slot);
        if first[0] != 0x16 {
            return self.speak(timed, deadlines, https.plain, refusal).await;
        }
        // The handshake's reads have the header deadline (`Timed`), so a silent client
        // cannot hold the slot.
        match https.acceptor.accept(timed).await {
            Ok(tls) => {
                let router = self.router.clone();
                self.speak(tls, deadlines, router, refusal).await
            }
            Err(e) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
        }
    }

    async fn speak<I>(mut self, io: I, deadlines: Arc<Deadlines>, router: Router, refusal: Option<Full>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if let Some(refusal) = refusal {
            return refuse(io, refusal).await;
        }
        let io = TokioIo::new(io);
        let service = PerConnection { app: TowerToHyperService::new(router), peer: self.peer, deadlines };
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Deadlines are `Timed`'s: hyper's header timer also runs while a connection idles.
        builder.header_read_timeout(None);
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        if !*self.stopping.borrow() {
            tokio::select! {
                result = connection.as_mut() => return log_end(result),
                _ = self.stopping.wait_for(|stopping| *stopping) => {}
            }
        }
        connection.as_mut().graceful_shutdown();
        log_end(connection.await);
    }
}

/// Over a cap: a 503 with a JSON error to the first request, then the connection closes.
async fn refuse<I>(io: I, refusal: Full)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let body = serde_json::json!({ "code": "too_many_connections", "message": refusal.message() }).to_string();
    let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
        let mut response = Response::new(Body::from(body.clone()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        async { Ok::<_, Infallible>(response) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(false);
    log_end(builder.serve_connection(io, service).await);
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset)
}

/// The router for one connection's requests: hands handlers the peer address
/// (`ConnectInfo<SocketAddr>`) and tells the deadlines when a request is being answered.
#[derive(Clone)]
struct PerConnection {
    app: TowerToHyperService<Router>,
    peer: SocketAddr,
    deadlines: Arc<Deadlines>,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        self.deadlines.answering();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = self.app.call(request);
        let deadlines = self.deadlines.clone();
        Box::pin(async move {
            let response = response.await?;
            deadlines.answered(response.status() == StatusCode::SWITCHING_PROTOCOLS);
            Ok(response)
        })
    }
}

/// Where a connection is between requests, and so which deadline its reads have.
enum Phase {
    /// Waiting for a request: `until`, after which the connection is closed. `idle` while no
    /// byte of the next request has come (the first byte starts the header deadline).
    Waiting { until: Instant, idle: bool },
    /// A request is being answered: the handler's time is not the client's fault.
    Answering,
    /// A WebSocket now: the session's heartbeat takes over.
    Upgraded,
}

struct Deadlines {
    phase: Mutex<Phase>,
    header: Duration,
    idle: Duration,
    /// The read that waited with no deadline (hyper watches a busy connection for a close):
    /// woken when the answer is out, so the idle deadline starts even if no byte comes.
    reader: Mutex<Option<std::task::Waker>>,
}

impl Deadlines {
    fn new(limits: &Limits) -> Deadlines {
        // A new connection is for a request: it gets the header deadline from the start, so
        // silent connections do not pile up.
        let phase = Phase::Waiting { until: Instant::now() + limits.header_timeout, idle: false };
        Deadlines { phase: Mutex::new(phase), header: limits.header_timeout, idle: limits.idle_timeout, reader: Mutex::new(None) }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_came(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting { idle: true, .. } = *phase {
            *phase = Phase::Waiting { until: Instant::now() + self.header, idle: false };
        }
    }

    fn answering(&self) {
        *self.phase() = Phase::Answering;
    }

    fn answered(&self, upgraded: bool) {
        *self.phase() = if upgraded { Phase::Upgraded } else { Phase::Waiting { until: Instant::now() + self.idle, idle: true } };
        // Taken after the phase is set and its lock released: see `until_or_wake`.
        if let Some(reader) = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take() {
            reader.wake();
        }
    }

    /// The deadline of a read that has to wait; with none while answering, the read is
    /// woken once the answer is out (the lock on the phase orders it with `answered`).
    fn until_or_wake(&self, cx: &Context<'_>) -> Option<Instant> {
        let phase = self.phase();
        match *phase {
            Phase::Waiting { until, .. } => Some(until),
            Phase::Answering => {
                *self.reader.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                None
            }
            Phase::Upgraded => None,
        }
    }

    fn until(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Waiting { until, .. } => Some(until),
            Phase::Answering | Phase::Upgraded => None,
        }
    }

    fn upgraded(&self) -> bool {
        matches!(*self.phase(), Phase::Upgraded)
    }
}

/// The TCP stream with its read deadlines and its connection slot (freed when the socket,
/// WebSocket or not, is dropped).
struct Timed {
    tcp: TcpStream,
    /// The deadlines and their timer while the connection speaks HTTP; `None` once it is a
    /// WebSocket, which lives for hours. A timer left registered holds the waker of the
    /// finished HTTP task, and so all of that task's memory, until it fires (about 1 KiB per
    /// tab for the first 10 s: `hallway-load idle`); the deadlines would cost a lock per read.
    http: Option<Http>,
    _slot: Option<Slot>,
}

struct Http {
    deadlines: Arc<Deadlines>,
    /// Made when a read or a flush first has a deadline to wait for.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timed {
    fn new(tcp: TcpStream, deadlines: Arc<Deadlines>, slot: Option<Slot>) -> Timed {
        Timed { tcp, http: Some(Http { deadlines, sleep: None }), _slot: slot }
    }

    /// The deadlines while the connection speaks HTTP; forgets them (and their timer) once
    /// it has been upgraded.
    fn http(&mut self) -> Option<&mut Http> {
        if self.http.as_ref().is_some_and(|http| http.deadlines.upgraded()) {
            self.http = None;
        }
        self.http.as_mut()
    }
}

impl Http {
    /// Whether `until` has passed; if not, the task is woken when it does.
    fn expired(&mut self, until: Instant, cx: &mut Context<'_>) -> bool {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if sleep.deadline() != until {
            sleep.as_mut().reset(until);
        }
        sleep.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for Timed {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if result.is_ok()
                    && buf.filled().len() > before
                    && let Some(http) = this.http()
                {
                    http.deadlines.bytes_came();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if let Some(http) = this.http()
                    && let Some(until) = http.deadlines.until_or_wake(cx)
                    && http.expired(until, cx)
                {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request in time")));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Timed {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // An answer was just written and hyper may not read again before bytes come: arm the
        // idle deadline here too, so that its expiry wakes the connection to close it.
        if let Some(http) = this.http()
            && let Some(until) = http.deadlines.until()
            && http.expired(until, cx)
        {
            cx.waker().wake_by_ref();
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Connections open, in all and per address.
struct Counts {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// The total of `open`, readable without the lock.
    gauge: Arc<AtomicUsize>,
    max: usize,
    max_per_address: usize,
    log: RateLimitedLog,
}

/// Holds one connection's place in `Counts`.
struct Slot {
    counts: Arc<Counts>,
    address: IpAddr,
}

/// A connection turned away: the caps are reached (in all, or from its address).
struct Full {
    address: IpAddr,
    open: usize,
    per_address: bool,
}

impl Full {
    fn message(&self) -> String {
        if self.per_address {
            format!(
                "{} connections are open from your address, the server's limit; close some tabs or try again in a moment",
                self.open
            )
        } else {
            format!("the server has {} connections open, its limit; try again in a moment", self.open)
        }
    }
}

impl Counts {
    fn new(limits: &Limits, gauge: Arc<AtomicUsize>) -> Counts {
        Counts {
            open: Mutex::new((0, HashMap::new())),
            gauge,
            max: limits.max_connections,
            max_per_address: limits.max_per_address,
            log: RateLimitedLog::new(EVERY),
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        let address = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_address = open.1.get(&address).copied().unwrap_or(0);
        let refusal = if self.max > 0 && open.0 >= self.max {
            Some(Full { address, open: open.0, per_address: false })
        } else if self.max_per_address > 0 && from_address >= self.max_per_address {
            Some(Full { address, open: from_address, per_address: true })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(open);
            self.log.warn(|skipped| {
                tracing::warn!(
                    address = %refusal.address,
                    open = refusal.open,
                    limit = if refusal.per_address { self.max_per_address } else { self.max },
                    per_address = refusal.per_address,
                    refused_since_last_line = skipped,
                    "refused a connection: over the connection limit"
                )
            });
            return Err(refusal);
        }
        open.0 += 1;
        self.gauge.store(open.0, Ordering::Relaxed);
        *open.1.entry(address).or_insert(0) += 1;
        Ok(Slot { counts: self.clone(), address })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        self.counts.gauge.store(open.0, Ordering::Relaxed);
        if let Some(count) = open.1.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

/// The address a client is counted under: an IPv4 address, or the /64 of an IPv6 one (a
/// single machine has a whole /64 to choose from).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// At most one line per `EVERY` for refused connections and failing accepts.
const EVERY: Duration = Duration::from_secs(10);

/// Accept failures (out of file descriptors: EMFILE) logged when they start, at most once
/// per `EVERY` while they go on, and when accepting works again.
struct AcceptFailures {
    failing: u64,
    log: RateLimitedLog,
}

impl AcceptFailures {
    fn failed(&mut self, e: &io::Error) {
        self.failing += 1;
        let failing = self.failing;
        self.log.warn(|_| {
            tracing::error!(
                error = %e,
                failed_in_a_row = failing,
                open_file_limit = open_file_limit(),
                "cannot accept connections (out of file descriptors?); new visitors cannot connect until some close"
            )
        });
    }

    fn succeeded(&mut self) {
        if self.failing > 0 {
            tracing::info!(failed = self.failing, "accepting connections again");
            self.failing = 0;
            self.log = RateLimitedLog::new(EVERY);
        }
    }
}

/// This process's limit of open files (the soft one), if the system says.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a plain system call filling a struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Lowers the connection cap below the open-file limit, so that past the cap connections
/// get a clear 503 instead of failing to be accepted at all.
fn fit_to_open_file_limit(mut limits: Limits) -> Limits {
    let Some(fds) = open_file_limit().and_then(|l| usize::try_from(l).ok()) else { return limits };
    let fit = fds.saturating_sub(RESERVED_FDS).max(1);
    if limits.max_connections == 0 || limits.max_connections > fit {
        if limits.max_connections != 0 {
            tracing::warn!(
                open_file_limit = fds,
                configured = limits.max_connections,
                max_connections = fit,
                "the open-file limit is below the connection limit; connections are capped lower (raise LimitNOFILE)"
            );
        }
        limits.max_connections = fit;
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_per_ipv4_address_and_per_ipv6_64() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), v4);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
    }

    /// A waker that counts how many copies of it are held elsewhere.
    struct Counted;

    impl std::task::Wake for Counted {
        fn wake(self: Arc<Self>) {}
    }

    #[tokio::test]
    async fn an_upgraded_connection_lets_go_of_the_http_task_and_its_timer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 0,
            max_per_address: 0,
        };
        let deadlines = Arc::new(Deadlines::new(&limits));
        let mut timed = Timed::new(tcp, deadlines.clone(), None);

        // The HTTP task waits for a request: its waker goes to the header deadline's timer.
        let http_task = Arc::new(Counted);
        let waker = std::task::Waker::from(http_task.clone());
        let mut buf = [0u8; 16];
        let mut read = ReadBuf::new(&mut buf);
        assert!(Pin::new(&mut timed).poll_read(&mut Context::from_waker(&waker), &mut read).is_pending());
        drop(waker);
        assert!(Arc::strong_count(&http_task) > 1, "the timer holds the HTTP task's waker");

        // The 101 is flushed by the HTTP task; then the WebSocket's session waits for frames.
        deadlines.answering();
        deadlines.answered(true);
        let waker = std::task::Waker::from(Arc::new(Counted));
        assert!(Pin::new(&mut timed).poll_flush(&mut Context::from_waker(&waker)).is_ready());
        let session = std::task::Waker::from(Arc::new(Counted));
        let mut read = ReadBuf::new(&mut buf);
        assert!(Pin::new(&mut timed).poll_read(&mut Context::from_waker(&session), &mut read).is_pending());
        assert_eq!(Arc::strong_count(&http_task), 1, "nothing of the finished HTTP task is kept");
        assert!(timed.http.is_none(), "no deadlines or timer for the WebSocket's lifetime");
    }
}
