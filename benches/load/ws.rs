//! WebSocket tabs for the load tool: connect with a session cookie and small buffers, and
//! pull the send time out of a `message` frame without parsing all of its JSON.

use anyhow::Context;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Tab = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(addr: &str, cookie: &str) -> anyhow::Result<Tab> {
    let mut request = format!("ws://{addr}/api/ws").into_client_request()?;
    request.headers_mut().insert("cookie", cookie.parse()?);
    // Small buffers so that thousands of idle tabs fit in the tool's memory too.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (tab, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.context("websocket connect")?;
    Ok(tab)
}

/// The microsecond timestamp a sender put in a message text as `t=<micros>`.
pub fn sent_at(frame: &str) -> Option<u64> {
    if !frame.starts_with("{\"type\":\"message\",") {
        return None;
    }
    let start = frame.find("\"text\":\"t=")? + "\"text\":\"t=".len();
    let digits = &frame[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}
