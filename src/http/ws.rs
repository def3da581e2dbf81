//! `GET /api/ws`: checks the session (and, through the router's middleware, the Origin),
//! answers the WebSocket handshake, sizes the socket's buffers and hands it to a session task.
//!
//! The handshake is answered here, with tokio-tungstenite, rather than by axum's
//! `WebSocketUpgrade`: axum's socket cannot send a message in fragments, and the session
//! sends long ones that way (see `session::FRAGMENT`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::App;
use super::auth::Session;
use crate::protocol::{ErrorCode, Refusal};
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

pub async fn upgrade(State(app): State<App>, session: Session, mut request: Request) -> Result<Response, Refusal> {
    let bad = |why: &str| Refusal::new(ErrorCode::BadRequest, format!("this endpoint takes a WebSocket upgrade: {why}"));
    let headers = request.headers();
    let upgrade = request.method() == Method::GET
        && has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket");
    if !upgrade {
        return Err(bad("GET with Connection: upgrade and Upgrade: websocket"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        // RFC 6455 4.4: say which version this server speaks.
        let mut response = bad("Sec-WebSocket-Version: 13").into_response();
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Ok(response);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).filter(|key| is_handshake_key(key.as_bytes()));
    let Some(accept) = key.map(|key| derive_accept_key(key.as_bytes())) else {
        return Err(bad("a Sec-WebSocket-Key of 16 bytes in base64"));
    };
    // Present only on an HTTP/1.1 connection that can be taken over.
    let Some(upgraded) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err(bad("over HTTP/1.1"));
    };
    let max_frame = app.max_frame;
    let hub = app.hub.clone();
    let tab = app.tabs.open();
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_frame * HARD_LIMIT_FACTOR))
        .max_frame_size(Some(max_frame * HARD_LIMIT_FACTOR));
    tokio::spawn(async move {
        match upgraded.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                // A task of its own, sized for the session alone: this one's future also
                // keeps what it captured (the hub, the session, the config) to its end. The
                // tab's place in `Tabs` goes with it, for the shutdown to wait on.
                let run = session::run(socket, hub, session.user, session.token_hash, max_frame);
                tokio::spawn(async move {
                    run.await;
                    drop(tab);
                });
            }
            Err(e) => tracing::info!(error = %e, "the WebSocket upgrade did not complete"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header value"));
    Ok(response)
}

/// Whether a comma-separated header has `token`, in any case (RFC 6455 4.2.1).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// 16 bytes in base64: 22 characters of the alphabet, then "==".
fn is_handshake_key(key: &[u8]) -> bool {
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}
