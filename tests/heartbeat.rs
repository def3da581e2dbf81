//! A tab that stops answering (a laptop lid closed, Wi-Fi gone) is closed after the 75 s the
//! protocol document promises, with a close frame that says why. Time is paused once the tab
//! is connected, so the test waits for no real minute.

mod common;

use common::*;
use tokio::io::AsyncReadExt;

/// Frames of a server-to-client byte stream (never masked): (opcode, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let (opcode, short) = (bytes[0] & 0x0f, (bytes[1] & 0x7f) as usize);
        let (len, head) = match short {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize, 10),
            len => (len, 2),
        };
        frames.push((opcode, bytes[head..head + len].to_vec()));
        bytes = &bytes[head + len..];
    }
    frames
}

#[tokio::test]
async fn a_silent_tab_is_closed_after_75_seconds_with_a_reason() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let (status, _, mut socket) = raw_handshake(server.addr(), &alice.session, "HTTP/1.1", key, "13").await;
    assert_eq!(status, 101);

    // From now on the tab reads nothing and answers nothing, not even pings.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(600), socket.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the server should close a silent tab, but kept it open for 10 minutes");
    // Paused time: this is the clock the server's timers ran on, not the wall clock.
    let silent_for = started.elapsed().as_secs_f64();
    assert!((70.0..80.0).contains(&silent_for), "closed after {silent_for:.1} s of silence instead of 75");

    let frames = frames(&bytes);
    let pings = frames.iter().filter(|(opcode, _)| *opcode == 0x9).count();
    assert_eq!(pings, 2, "pings every 30 s: at 30 and 60 s, then closed at 75 s (closed after {silent_for:.1} s)");
    let (opcode, close) = frames.last().expect("frames");
    assert_eq!(*opcode, 0x8, "the last thing the server sends is a close frame, not a dropped connection");
    let code = u16::from_be_bytes([close[0], close[1]]);
    assert_eq!((code, String::from_utf8_lossy(&close[2..]).as_ref()), (1001, "ping_timeout"), "the close says why");
}
