//! Operations: `GET /metrics` (Prometheus text format) for admins, or for anyone on the
//! separate `--metrics-listen` address, which serves nothing else; and the server's
//! statistics for the admin page, `GET /api/admin/stats`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::App;
use super::auth::Session;
use crate::metrics::{self, Live};
use crate::model::{Role, now_millis};
use crate::protocol::{ErrorCode, Refusal};
use crate::store::stats::{Day, date_of, local_day};

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
    if let Some(at) = app.backups.last_good() {
        app.metrics.set_last_backup(at);
    }
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

/// Days of messages the statistics show, today included.
const STATS_DAYS: Day = 30;

/// `GET /api/admin/stats` (admins only): messages per day for the last 30 days, active
/// people today and this week, conversations, the data file and its disk, open tabs, uptime
/// and version. Cheap on any file: counters, not a walk over the messages.
pub async fn admin_stats(State(app): State<App>, session: Session) -> Result<Json<serde_json::Value>, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins see the server's statistics"));
    }
    let live = app.hub.stats().await?;
    let today = local_day(now_millis());
    let store = app.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let days = store.messages_per_day(today.saturating_sub(STATS_DAYS - 1), today)?;
        let active_today = store.active_users(today, today)?;
        let active_week = store.active_users(today.saturating_sub(6), today)?;
        Ok::<_, crate::store::StoreError>((days, active_today, active_week))
    });
    let (days, active_today, active_week) =
        read.await.map_err(|_| Refusal::new(ErrorCode::Internal, "reading the statistics failed; see the server log"))??;
    let per_day: Vec<serde_json::Value> =
        days.iter().map(|(day, count)| serde_json::json!({ "date": date_of(*day), "messages": count })).collect();
    let conversations = live.rooms + live.private_rooms + live.dms + live.groups;
    let tabs: usize = live.tabs.iter().map(|person| person.tabs).sum();
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "lan_name": app.lan_name.as_ref().map(|name| name.get()),
        "started": app.metrics.started_at(),
        "uptime_seconds": app.metrics.uptime().as_secs(),
        "messages_per_day": per_day,
        "active_users": { "today": active_today, "week": active_week },
        "conversations": {
            "total": conversations,
            "rooms": live.rooms,
            "private_rooms": live.private_rooms,
            "dms": live.dms,
            "groups": live.groups,
        },
        "data_file_bytes": app.store.file_bytes(),
        "free_disk_bytes": app.store.free_disk_bytes(),
        "tabs": { "total": tabs, "people": live.tabs },
    })))
}
