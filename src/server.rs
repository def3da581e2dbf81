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
use crate::config::Config;
use crate::core::Hub;
use crate::http::{self, AppState};
use crate::model::Role;
use crate::model::now_millis;
use crate::store::writer::{Writer, WriterThread};
use crate::store::{Change, Store};

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
}

impl Server {
    pub async fn start(listener: TcpListener, config: Config) -> anyhow::Result<Server> {
        let addr = listener.local_addr().context("reading the listening address")?;
        let (store, key) =
            Store::open_with_key(&config.data).with_context(|| format!("opening the data file {}", config.data.display()))?;
        let (writer, writer_thread) = Writer::start(store.clone());
        // One clock for session and invite expiry, which tests move together.
        let clock = crate::model::Clock::default();
        let settings = crate::core::Settings { clock: clock.clone(), ..config.hub_settings() };
        let (hub, hub_task) = Hub::start(store.clone(), key, writer.clone(), settings).context("loading the data file")?;
        purge_expired_sessions(&store, &writer, config.session_idle).await;

        let device_key = device_key(&store, &writer).await?;
        let has_admin = store.users()?.iter().any(|(_, u)| u.role == Role::Admin);
        let setup_token = if has_admin { None } else { Some(auth::new_token().0) };
        let state = Arc::new(AppState {
            store,
            writer: writer.clone(),
            hub: hub.clone(),
            max_frame: config.max_frame,
            records: config.records.to_json(config.records_buffer.as_secs()),
            throttle: Throttle::new(AddressBudget { burst: config.signin_address_burst, refill: config.signin_address_refill }),
            device_key,
            session_idle: config.session_idle,
            clock,
            open_signups: Default::default(),
            setup: Mutex::new(setup_token),
        });
        let app = http::router(state.clone());
        let (stop_http, stopped) = oneshot::channel::<()>();
        let limits = http::serve::Limits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
            max_per_address: config.max_connections_per_address,
        };
        let http_task = tokio::spawn(http::serve::serve(listener, app, limits, stopped));
        tracing::info!(%addr, data = %config.data.display(), "serving");
        Ok(Server { addr, state, hub, hub_task: Some(hub_task), writer, writer_thread, stop_http, http_task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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

    /// Stops taking connections, closes every tab, commits what is queued and closes the file.
    pub async fn shutdown(self) {
        // Stop accepting first, so tabs closed below cannot reconnect to a core that is gone.
        let _ = self.stop_http.send(());
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
        drop(self.hub);
        drop(self.state);
        self.writer_thread.stop(self.writer).await;
        tracing::info!("stopped; the data file is closed");
    }
}
