//! Wiring: open the data file, start the store writer and the chat core, serve HTTP on an
//! already-bound listener, and shut all of it down in order (connections, core, writer) so
//! that every acknowledged change is on disk and the file is closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::{self, AddressBudget, Throttle};
use crate::backups::Backups;
use crate::config::Config;
use crate::core::Hub;
use crate::discovery::{Announcer, NameInUse};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::model::Role;
use crate::model::now_millis;
use crate::session::Tabs;
use crate::store::writer::{Writer, WriterThread};
use crate::store::{Change, Store};

/// How long a shutdown waits for tabs to take their last frames (a tab that does not read
/// would otherwise hold it for the session's write timeout).
const SHUTDOWN_TABS: Duration = Duration::from_secs(5);

/// Deletes sessions unused for longer than `idle` (they are refused anyway; this keeps the
/// file tidy).
async fn purge_expired_sessions(store: &Store, writer: &Writer, idle: Duration) {
    let cutoff = now_millis().saturating_sub(idle.as_millis() as u64);
    match store.sessions_unused_since(cutoff) {
        Ok(expired) if !expired.is_empty() => {
            let count = expired.len();
            match writer.write(expired.into_iter().map(Change::DeleteSession).collect()).await {
                Ok(()) => tracing::info!(count, "deleted expired sessions"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired sessions"),
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not list sessions"),
    }
}

/// The key that signs sign-in device cookies: made once, kept in the data file (so cookies
/// outlive restarts and a restored backup keeps them valid).
async fn device_key(store: &Store, writer: &Writer) -> anyhow::Result<[u8; 32]> {
    const KEY: &str = "device_cookie_key";
    if let Some(key) = store.meta(KEY)?.and_then(|k| <[u8; 32]>::try_from(k).ok()) {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    writer.write(vec![Change::PutMeta(KEY, key.to_vec())]).await.context("saving the device cookie key")?;
    Ok(key)
}

/// The names HTTPS mode's certificate carries: the LAN name asked for and the one in use
/// (suffixed when taken), `localhost`, and every address people can reach the server at.
fn tls_names(addr: SocketAddr, wanted: &crate::discovery::HostName, in_use: Option<NameInUse>) -> crate::tls::Names {
    let dns = [Some(wanted.to_string()), in_use.map(|n| n.get()), Some("localhost".to_string())];
    let loopback = [std::net::IpAddr::from([127, 0, 0, 1]), std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
    let ips = crate::discovery::lan_addresses(addr).into_iter().chain(loopback);
    crate::tls::Names::new(dns.into_iter().flatten(), ips)
}

/// How often HTTPS mode looks whether its certificate needs renewing: 30 days before it
/// expires, or when an address (DHCP) or the LAN name (a suffix after probing) changed.
const RENEW_EVERY: Duration = Duration::from_secs(10 * 60);

async fn renew(tls: Arc<crate::tls::Tls>, addr: SocketAddr, wanted: crate::discovery::HostName, in_use: Option<NameInUse>) {
    // The first look comes soon: probing the LAN name takes about a second.
    let mut wait = Duration::from_secs(5);
    loop {
        tokio::time::sleep(wait).await;
        wait = RENEW_EVERY;
        let names = tls_names(addr, &wanted, in_use.clone());
        let tls = tls.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || tls.refresh(names, std::time::SystemTime::now())).await {
            tracing::warn!(error = %e, "could not renew the HTTPS certificate; the current one is served");
        }
    }
}

/// A running server. Dropping it without `shutdown` leaves the tasks running.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    hub: Hub,
    /// Taken by `core_ended` when the core task ends early; awaited at shutdown otherwise.
    hub_task: Option<JoinHandle<()>>,
    writer: Writer,
    writer_thread: WriterThread,
    stop_http: oneshot::Sender<()>,
    http_task: JoinHandle<()>,
    announcer: Option<Announcer>,
    /// Where `hallway backup` reaches this server; removed at shutdown.
    control: Option<crate::control::ControlSocket>,
    /// Scheduled backups (`--backup-dir`), stopped at shutdown.
    schedule: Option<JoinHandle<()>>,
    /// The `--metrics-listen` server, if asked for: its address, how to stop it, its task.
    metrics_http: Option<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>)>,
    /// HTTPS mode's certificate renewal, stopped at shutdown.
    renewal: Option<JoinHandle<()>>,
}

impl Server {
    pub async fn start(listener: TcpListener, config: Config) -> anyhow::Result<Server> {
        let addr = listener.local_addr().context("reading the listening address")?;
        let (store, key) =
            Store::open_with_key(&config.data).with_context(|| format!("opening the data file {}", config.data.display()))?;
        let (writer, writer_thread) = Writer::start_with(store.clone(), config.hold_index);
        // One clock for session and invite expiry, which tests move together.
        let clock = crate::model::Clock::default();
        let settings = crate::core::Settings { clock: clock.clone(), ..config.hub_settings() };
        let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), settings).context("loading the data file")?;
        purge_expired_sessions(&store, &writer, config.session_idle).await;

        let device_key = device_key(&store, &writer).await?;
        let backups = Backups::new(writer.clone(), config.data.clone(), config.backup.clone());
        let schedule = backups.start_schedule();
        let control = match crate::control::ControlSocket::bind(&config.data, backups.clone()) {
            Ok(control) => Some(control),
            Err(e) => {
                tracing::warn!(error = %e, "no control socket: `hallway backup` cannot reach this server (the admin page can)");
                None
            }
        };
        let has_admin = store.users()?.iter().any(|(_, u)| u.role == Role::Admin);
        let setup_token = if has_admin { None } else { Some(auth::new_token().0) };
        // Being found by name is a convenience: without it people use the printed addresses.
        let announcer = config.mdns.as_ref().and_then(|options| match Announcer::start(addr, options) {
            Ok(announcer) => announcer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot announce on the LAN over mDNS; people can still open the addresses printed");
                None
            }
        });
        let tls = match &config.https {
            Some(name) => {
                let names = tls_names(addr, name, announcer.as_ref().map(Announcer::name));
                Some(Arc::new(crate::tls::Tls::open(&config.data, names).context("setting up HTTPS")?))
            }
            None => None,
        };
        let state = Arc::new(AppState {
            store,
            writer: writer.clone(),
            hub: hub.clone(),
            max_frame: config.max_frame,
            max_file_size: config.max_file_size,
            throttle: Throttle::new(AddressBudget { burst: config.signin_address_burst, refill: config.signin_address_refill }),
            device_key,
            session_idle: config.session_idle,
            clock,
            open_signups: Default::default(),
            setup: Mutex::new(setup_token),
            backups,
            tabs: Tabs::default(),
            metrics: Arc::new(Metrics::new(writer.stats().clone())),
            lan_name: announcer.as_ref().map(Announcer::name),
            tls: tls.clone(),
        });
        let app = http::router(state.clone());
        let (stop_http, stopped) = oneshot::channel::<()>();
        let limits = http::serve::Limits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
            max_per_address: config.max_connections_per_address,
        };
        let metrics_http = match config.metrics_listen {
            Some(at) => {
                let listener = TcpListener::bind(at).await.with_context(|| {
                    format!("cannot listen on {at} for metrics; choose another with --metrics-listen ADDR:PORT")
                })?;
                let metrics_addr = listener.local_addr().context("reading the metrics address")?;
                let (stop, stopped) = oneshot::channel::<()>();
                let router = http::metrics_router(state.clone());
                let task = tokio::spawn(http::serve::serve(listener, router, None, limits.clone(), stopped, Arc::default()));
                tracing::info!(addr = %metrics_addr, "serving /metrics without sign-in");
                Some((metrics_addr, stop, task))
            }
            None => None,
        };
        let connections = state.metrics.connections.clone();
        let https = match &tls {
            Some(tls) => Some(http::serve::Https { acceptor: tls.acceptor()?, plain: http::plain_router(state.clone()) }),
            None => None,
        };
        let renewal = match (&tls, &config.https) {
            (Some(tls), Some(name)) => Some(tokio::spawn(renew(tls.clone(), addr, name.clone(), state.lan_name.clone()))),
            _ => None,
        };
        let http_task = tokio::spawn(http::serve::serve(listener, app, https, limits, stopped, connections));
        tracing::info!(%addr, data = %config.data.display(), "serving");
        Ok(Server {
            addr,
            state,
            hub,
            hub_task: Some(hub_task),
            writer,
            writer_thread,
            stop_http,
            http_task,
            announcer,
            control,
            schedule,
            metrics_http,
            renewal,
        })
    }

    /// HTTPS mode's certificates, if on.
    pub fn tls(&self) -> Option<Arc<crate::tls::Tls>> {
        self.state.tls.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name announced on the LAN (`hallway.local`, or a suffixed one when it was taken);
    /// `None` when not announcing.
    pub fn mdns_name(&self) -> Option<crate::discovery::NameInUse> {
        self.announcer.as_ref().map(Announcer::name)
    }

    /// Where `/metrics` is served without sign-in (`--metrics-listen`), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_http.as_ref().map(|(addr, ..)| *addr)
    }

    /// The server's counters and gauges; a backup schedule sets the last backup's time here.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// The one-time token that creates the first admin, while none exists.
    pub fn setup_token(&self) -> Option<String> {
        self.state.setup.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Returns when the chat core task has ended before `shutdown` asked it to: a bug the core
    /// could not contain. Chat cannot go on without it (`/api/health` then answers 503), so the
    /// caller should shut down and exit non-zero, for the service manager to restart it.
    pub async fn core_ended(&mut self) {
        let Some(task) = self.hub_task.as_mut() else { return std::future::pending().await };
        let result = task.await;
        self.hub_task = None;
        match result {
            Err(e) if e.is_panic() => tracing::error!("the chat core stopped after a panic"),
            _ => tracing::error!("the chat core stopped unexpectedly"),
        }
    }

    /// Moves the clock that session expiry reads forward by `by`, for tests of idle expiry.
    #[doc(hidden)]
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by)
    }

    #[doc(hidden)]
    pub async fn inject_fault(&self, fault: crate::core::Fault) {
        self.hub.inject_fault(fault).await
    }

    /// Purges what each conversation may no longer keep as if the clock said `as_of` (the
    /// server does this on its own every few minutes with the real clock); returns how many
    /// messages went. For tests of day limits, and `hallway purge`.
    pub async fn purge(&self, as_of: crate::model::Millis) -> usize {
        self.hub.purge(as_of).await
    }

    /// Runs up to `steps` steps of the writer's background indexing for search now (tests,
    /// with `Config::hold_index`); says whether messages are left to index or purged ones to sweep out of the index.
    #[doc(hidden)]
    pub async fn index_steps(&self, steps: usize) -> bool {
        self.writer.index_steps(steps).await.unwrap_or(false)
    }

    /// Stops taking connections, closes every tab, commits what is queued and closes the file.
    pub async fn shutdown(self) {
        // Withdraw the announcement first, so browsers stop offering a server that is going.
        if let Some(announcer) = self.announcer {
            let _ = tokio::task::spawn_blocking(move || announcer.goodbye()).await;
        }
        // Then stop accepting, so tabs closed below cannot reconnect to a core that is gone.
        let _ = self.stop_http.send(());
        drop(self.control);
        if let Some(schedule) = self.schedule {
            schedule.abort();
        }
        if let Some(renewal) = self.renewal {
            renewal.abort();
        }
        if let Some((_, stop, task)) = self.metrics_http {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.hub.shutdown().await;
        let mut http_task = self.http_task;
        if tokio::time::timeout(Duration::from_secs(5), &mut http_task).await.is_err() {
            tracing::warn!("connections did not close in time; dropping them");
            http_task.abort();
            let _ = http_task.await;
        }
        if let Some(task) = self.hub_task {
            let _ = task.await;
        }
        // The core has queued each tab its last acks and `restarting`; let them go out.
        let tabs = self.state.tabs.clone();
        if tokio::time::timeout(SHUTDOWN_TABS, tabs.all_closed()).await.is_err() {
            tracing::warn!(tabs = tabs.count(), "tabs did not take their last frames in time; closing them unsent");
        }
        drop(self.hub);
        let store = self.state.store.clone();
        drop(self.state);
        self.writer_thread.stop(self.writer).await;
        store.close();
        tracing::info!("stopped; the data file is closed");
    }
}
