//! Operations: `GET /metrics` (Prometheus text format) for admins, or for anyone on the
//! separate `--metrics-listen` address, which serves nothing else.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use super::auth::Session;
use crate::metrics::{self, Live};
use crate::model::Role;
use crate::protocol::{ErrorCode, Refusal};

/// `GET /metrics` on the main address: admins only (a member learns nothing of the server).
pub async fn metrics_for_admins(State(app): State<App>, session: Session) -> Result<Response, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins read the server's metrics"));
    }
    Ok(metrics_text(&app))
}

/// The router of `--metrics-listen`: `/metrics` without a session (the address is the
/// admin's to protect: loopback, or a monitoring network) and a 404 for everything else.
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(|State(app): State<App>| async move { metrics_text(&app) }))
        .fallback(|| async { Refusal::new(ErrorCode::NotFound, "this address serves only /metrics") })
        .with_state(app)
}

fn metrics_text(app: &App) -> Response {
    let live = Live {
        tabs: app.tabs.count(),
        writer_queue: app.writer.queue_depth(),
        data_file_bytes: app.store.file_bytes(),
        storage_failing: app.writer.failing(),
    };
    let mut response = metrics::render(&app.metrics, &live).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
