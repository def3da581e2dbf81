//! The HTTP face of the server: the embedded web client, the REST API and the WebSocket
//! upgrade, on one axum router. Handlers are thin: the `Session` extractor checks sign-in,
//! `check_origin` guards every state-changing request, and the core or store does the work.

mod admin;
mod api;
mod assets;
pub(crate) mod auth;
mod backup;
mod ca;
mod error;
mod files;
mod me;
mod ops;
mod review;
pub mod serve;
pub(crate) mod signup;
mod ws;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use tower_http::compression::CompressionLayer;

use crate::auth::Throttle;
use crate::core::Hub;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::{Store, writer::Writer};

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub writer: Writer,
    pub hub: Hub,
    pub max_frame: usize,
    /// Largest file one may attach (`--max-file-size`).
    pub max_file_size: u64,
    pub throttle: Throttle,
    /// Signs device cookies (`auth::device_mac`); kept in the data file's `meta`.
    pub device_key: [u8; 32],
    /// How long a session may go unused (`--session-idle-days`).
    pub session_idle: std::time::Duration,
    /// The clock session expiry reads (tests move it: `Server::advance_clock`).
    pub clock: crate::model::Clock,
    /// Open sign-ups per address (`signup::OpenBudget`).
    pub open_signups: signup::OpenBudget,
    /// The one-time setup token while no admin exists (kept in memory only: a restart
    /// prints a new one).
    pub setup: Mutex<Option<String>>,
    /// Backups on demand and on schedule (`backups.rs`).
    pub backups: crate::backups::Backups,
    /// The open WebSocket tabs, which a shutdown waits for.
    pub tabs: crate::session::Tabs,
    /// Counters and gauges for `/metrics` (and the admin's statistics).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The name announced on the LAN, for the admin page; `None` when not announcing.
    pub lan_name: Option<crate::discovery::NameInUse>,
    /// HTTPS mode's certificates (`--https`); cookies are `Secure` then.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

pub type App = Arc<AppState>;

pub use ca::plain_router;
pub use ops::metrics_router;

pub fn router(state: App) -> Router {
    let max_frame = state.max_frame;
    Router::new()
        .route("/api/health", get(api::health))
        .route("/api/setup", get(auth::setup_needed).post(auth::setup))
        .route("/api/login", post(auth::login))
        .route("/api/logout", post(auth::logout))
        .route("/api/admin/signin-failures", get(auth::signin_failures))
        .route("/api/signup", get(signup::may_sign_up).post(signup::sign_up))
        .route("/api/admin/signup", get(signup::signup_settings).post(signup::set_mode))
        .route("/api/admin/invites", post(signup::create_invite))
        .route("/api/admin/invites/{id}/revoke", post(signup::revoke_invite))
        .route("/api/admin/users", get(admin::users))
        .route("/api/admin/records", get(admin::records).post(admin::set_records))
        .route("/api/admin/users/{id}/disable", post(admin::disable))
        .route("/api/admin/users/{id}/enable", post(admin::enable))
        .route("/api/admin/users/{id}/role", post(admin::role))
        .route("/api/admin/users/{id}/password", post(admin::password))
        .route("/api/me", get(api::me))
        .route("/api/me/password", post(me::password))
        .route("/api/me/sessions", get(me::sessions))
        .route("/api/me/sessions/sign-out-others", post(me::sign_out_others))
        .route("/api/me/sessions/{id}/sign-out", post(me::sign_out_one))
        .route("/api/session", get(api::session))
        .route("/api/users", get(api::users).post(api::create_user))
        .route("/api/rooms", get(api::rooms))
        .route("/api/conversations/{id}/messages", get(api::messages))
        .route("/api/conversations/{id}/files", post(files::upload))
        .route("/api/files/{id}", get(files::download))
        .route("/api/files/{id}/thumbnail", get(files::thumbnail))
        .route("/api/search", get(api::search))
        .route("/api/review/conversations", get(review::conversations))
        .route("/api/review/conversations/{id}/messages", get(review::messages))
        .route("/api/review/conversations/{id}/export", get(review::export))
        .route("/api/review/search", get(review::search))
        .route("/api/review/search/export", get(review::export_search))
        .route("/api/review/files/{id}", get(review::file))
        .route("/api/admin/audit", get(review::audit))
        .route("/api/admin/conversations/{id}/transcript", get(review::transcript))
        .route("/api/admin/backup", get(backup::download))
        .route("/api/admin/backups", get(backup::list))
        .route("/api/ws", get(ws::upgrade))
        .route("/metrics", get(ops::metrics_for_admins))
        .route("/api/admin/stats", get(ops::admin_stats))
        .route("/api/{*rest}", axum::routing::any(api::no_such_endpoint))
        .merge(ca::routes())
        .fallback(assets::serve)
        .layer(DefaultBodyLimit::max(max_frame))
        .layer(middleware::from_fn(check_origin))
        .layer(middleware::from_fn(close_if_body_unread))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers every answer carries, JSON and errors included: no content sniffing (a JSON body
/// that looks like HTML must not be run as a page) and no framing by another site
/// (clickjacking). `index.html` sets its own, fuller policy (`assets.rs`).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let not_modified = response.status() == axum::http::StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not on a 304: the browser merges its headers into the cached answer, and this policy
    // would replace the page's own and block its scripts.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) && !not_modified {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    }
    response
}

/// Refuses state-changing requests (and the WebSocket upgrade) sent by a page of another
/// origin. Requests without an `Origin` header (bots, curl) pass: browsers always send one.
async fn check_origin(request: Request, next: Next) -> Response {
    let changes_state = request.method() != Method::GET && request.method() != Method::HEAD;
    let is_upgrade = request.headers().contains_key(header::UPGRADE);
    if (changes_state || is_upgrade)
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin_host = origin.to_str().unwrap_or("").split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            tracing::warn!(origin = ?origin, host, path = request.uri().path(), "refused a request from a foreign origin");
            return Refusal::new(ErrorCode::BadOrigin, "requests must come from this server's own pages").into_response();
        }
    }
    next.run(request).await
}

/// Answers `Connection: close` when a request's body was not read to its end (a POST
/// refused before its body: no session, a foreign origin, an unknown endpoint). hyper then
/// cannot reuse the connection and closes it; without the header a pooling client (reqwest,
/// curl) sends its next request on a connection that is closing, and it fails.
async fn close_if_body_unread(request: Request, next: Next) -> Response {
    use axum::body::HttpBody;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Poll;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let read_to_end = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let mut data = body.into_data_stream();
    let seen = read_to_end.clone();
    let watched = futures_util::stream::poll_fn(move |cx| {
        let next = data.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            seen.store(true, Ordering::Relaxed);
        }
        next
    });
    let mut response = next.run(Request::from_parts(parts, axum::body::Body::from_stream(watched))).await;
    if !read_to_end.load(Ordering::Relaxed) && response.status() != axum::http::StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A JSON request body whose every failure is a protocol error (`bad_json`, `bad_request`,
/// `too_large`) instead of axum's plain-text rejection.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refusal> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(JsonRejection::JsonSyntaxError(e)) => {
                Err(Refusal::new(ErrorCode::BadJson, format!("not valid JSON: {}", e.body_text())))
            }
            Err(JsonRejection::JsonDataError(e)) => Err(Refusal::new(ErrorCode::BadRequest, e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(Refusal::new(ErrorCode::BadRequest, "send the body as Content-Type: application/json"))
            }
            Err(JsonRejection::BytesRejection(e)) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Refusal::new(ErrorCode::TooLarge, "the request body is over the server's limit"))
            }
            Err(e) => Err(Refusal::new(ErrorCode::BadRequest, e.body_text())),
        }
    }
}
