//! `GET /api/ws`: checks the session (and, through the router's middleware, the Origin),
//! sizes the socket's buffers and hands it to a session task.

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::response::Response;

use super::auth::Session;
use super::{ApiError, App};
use crate::protocol::ErrorCode;
use crate::session;

/// Small buffers: an idle tab should cost a few KB, not tungstenite's 128 KiB default (chat
/// frames are mostly well under 1 KiB; bigger ones take a few reads). Queued frames are
/// written once this much is buffered or at the session's flush after a batch. The writer
/// keeps its buffer's largest size for the life of the tab, so this is a trade: 2 KiB gives
/// ~9 KiB per idle tab and 1.5M deliveries/s unpaced; 8 KiB ~13 KiB and 2.3M/s
/// (benches/README.md). A 512-byte read buffer (most client frames are smaller; bigger ones
/// take a few reads) instead of 1 KiB took 10,000 idle tabs from 96.7 to 91.7 MiB.
const READ_BUFFER: usize = 512;
const WRITE_BUFFER: usize = 2 * 1024;
/// Frames up to this many times the limit are read and answered with `too_large`; larger
/// ones close the connection (1009) without being buffered whole.
const HARD_LIMIT_FACTOR: usize = 4;

pub async fn upgrade(
    State(app): State<App>,
    session: Session,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| {
        ApiError::new(ErrorCode::BadRequest, format!("this endpoint takes a WebSocket upgrade: {}", e.body_text()))
    })?;
    let max_frame = app.max_frame;
    let hub = app.hub.clone();
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max_frame * HARD_LIMIT_FACTOR)
        .max_frame_size(max_frame * HARD_LIMIT_FACTOR)
        .on_upgrade(move |socket| session::run(socket, hub, session.user, session.token_hash, max_frame)))
}
