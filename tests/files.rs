//! Files attached to messages, on a real server: uploaded and downloaded in chunks, refused
//! when too large before the body is read, served only to members of their conversation and
//! never as a page, gone with their message (purge, delete), and in backups.

mod common;

use std::time::Duration;

use common::*;
use hallway::core::records::Policy;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A file of `len` bytes made of a repeated marker, so a scan of the data file finds it.
fn file_of(marker: &str, len: usize) -> Vec<u8> {
    marker.bytes().cycle().take(len).collect()
}

/// Uploads `bytes` (after a thumbnail, if any) to `conv` as `client`.
async fn upload(client: &Client, conv: u64, name: &str, mime: &str, bytes: Vec<u8>, thumb: Option<Vec<u8>>) -> (u16, Value) {
    let mut query = vec![("name", name.to_string()), ("type", mime.to_string())];
    let mut body = Vec::new();
    if let Some(thumb) = thumb {
        query.push(("thumbnail", thumb.len().to_string()));
        query.push(("thumbnail_type", "image/png".to_string()));
        body.extend(thumb);
    }
    body.extend(bytes);
    let resp = client
        .http
        .post(format!("{}/api/conversations/{conv}/files", client.base))
        .query(&query)
        .body(body)
        .send()
        .await
        .expect("upload request");
    read_response(resp).await
}

/// Uploads and returns the file's id, asserting it was taken.
async fn uploaded(client: &Client, conv: u64, name: &str, mime: &str, bytes: Vec<u8>) -> u64 {
    let (status, body) = upload(client, conv, name, mime, bytes, None).await;
    assert_eq!(status, 200, "{} could not upload {name}: {body}", client.name);
    body["file"]["id"].as_u64().expect("the upload answers the file's id")
}

/// GET of a file: status, headers and bytes.
async fn fetch(client: &Client, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = client.http.get(format!("{}{path}", client.base)).send().await.expect("download request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("download body").to_vec())
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn file_has(path: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64
}

/// Alice (admin) and bob in a private room; carol outside it.
struct Office {
    server: TestServer,
    alice: Client,
    bob: Client,
    carol: Client,
    alice_tab: Ws,
    bob_tab: Ws,
    room: u64,
}

async fn office_with(tweak: fn(&mut hallway::Config)) -> Office {
    let server = TestServer::start_with(tweak).await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let mut alice_tab = alice.ws().await;
    let mut bob_tab = bob.ws().await;
    let room = alice_tab.ack(json!({"type": "create_room", "name": "plans", "private": true, "members": [bob.id]})).await["conv"]
        .as_u64()
        .expect("the room's id");
    bob_tab.recv_where("the new room", |f| f["type"] == "conversation").await;
    Office { server, alice, bob, carol, alice_tab, bob_tab, room }
}

#[tokio::test]
async fn a_file_sent_in_a_room_streams_back_whole_to_its_members_and_to_nobody_else() {
    let mut o = office_with(|_| {}).await;
    // Over three chunks and not a multiple of one, with a thumbnail before it in the body.
    let bytes = file_of("plan-marker-P1 ", 200_000);
    let png = b"\x89PNG\r\n\x1a\nthumb".to_vec();
    let (status, body) = upload(&o.alice, o.room, "plan.bin", "application/x-thing", bytes.clone(), Some(png.clone())).await;
    assert_eq!(status, 200, "{body}");
    let id = body["file"]["id"].as_u64().expect("id");
    assert_eq!(
        body["file"],
        json!({"id": id, "name": "plan.bin", "size": 200_000, "type": "application/x-thing", "thumbnail": true})
    );

    let (status, _, _) = fetch(&o.bob, &format!("/api/files/{id}")).await;
    assert_eq!(status, 404, "before it is sent, only its uploader sees the upload");
    let sent = o.alice_tab.ack(json!({"type": "send", "conv": o.room, "text": "", "attachments": [id]})).await;
    let message = o.bob_tab.recv_where("the message with the file", |f| f["type"] == "message").await;
    assert_eq!(message["message"]["attachments"], json!([body["file"]]), "the message lists the file for the other member");

    let (status, headers, got) = fetch(&o.bob, &format!("/api/files/{id}")).await;
    assert_eq!(status, 200);
    assert!(got == bytes, "the file comes back byte for byte ({} bytes of {})", got.len(), bytes.len());
    assert_eq!(header(&headers, "content-type"), "application/octet-stream");
    assert_eq!(header(&headers, "content-disposition"), "attachment; filename=\"plan.bin\"; filename*=UTF-8''plan.bin");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    let (status, headers, thumb) = fetch(&o.bob, &format!("/api/files/{id}/thumbnail")).await;
    assert_eq!((status, thumb), (200, png), "the thumbnail is served apart");
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert!(header(&headers, "content-disposition").starts_with("inline"), "a PNG is shown inline");

    let (status, _, got) = fetch(&o.carol, &format!("/api/files/{id}")).await;
    assert_eq!((status, got.len() < 100), (404, true), "someone outside the room gets a 404, as for no file");
    let (status, _, _) = fetch(&o.carol, "/api/files/999").await;
    assert_eq!(status, 404);
    // An edit keeps the files, and a message with files may lose its words.
    o.alice_tab.ack(json!({"type": "edit", "conv": o.room, "seq": sent["seq"], "text": "plan v2"})).await;
    o.alice_tab.ack(json!({"type": "edit", "conv": o.room, "seq": sent["seq"], "text": ""})).await;
    let (status, _, _) = fetch(&o.bob, &format!("/api/files/{id}")).await;
    assert_eq!(status, 200, "edits keep the file");
    let history = o.bob.history(o.room, "").await;
    assert_eq!(history["messages"][0]["attachments"][0]["id"], id, "history pages list the file too");

    // A resend of a sent upload is refused: a file belongs to one message.
    o.alice_tab.expect_error(json!({"type": "send", "conv": o.room, "text": "again", "attachments": [id]}), "bad_request").await;
    let (status, body) = upload(&o.carol, o.room, "x.txt", "text/plain", b"hi".to_vec(), None).await;
    assert_eq!(status, 404, "a non-member cannot upload to the room: {body}");
}

#[tokio::test]
async fn an_html_or_svg_file_downloads_and_never_renders() {
    let mut o = office_with(|_| {}).await;
    for (name, mime) in [("evil.html", "text/html"), ("logo.svg", "image/svg+xml")] {
        let id = uploaded(&o.alice, o.room, name, mime, b"<script>alert(1)</script>".to_vec()).await;
        o.alice_tab.ack(json!({"type": "send", "conv": o.room, "text": "look", "attachments": [id]})).await;
        let (status, headers, _) = fetch(&o.bob, &format!("/api/files/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-type"), "application/octet-stream", "{name} is not served as {mime}");
        assert!(header(&headers, "content-disposition").starts_with("attachment;"), "{name} downloads");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert!(header(&headers, "content-security-policy").starts_with("sandbox"), "{name} is sandboxed");
    }
}

#[tokio::test]
async fn an_oversized_file_is_refused_with_413_before_its_body_is_read() {
    let o = office_with(|config| config.max_file_size = 1_000).await;
    assert_eq!(o.bob_tab.hello["limits"]["max_file"], 1_000, "the client is told the limit");
    let (status, body) = upload(&o.alice, o.room, "big.bin", "application/octet-stream", vec![7; 1_001], None).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("at most 1 KB"), "the error shows the limit: {body}");

    // Ten gigabytes declared, a kilobyte sent: the answer comes without the rest.
    let mut socket = tokio::net::TcpStream::connect(o.server.addr()).await.expect("connect");
    let head = format!(
        "POST /api/conversations/{}/files?name=huge.iso HTTP/1.1\r\nHost: {}\r\nCookie: hallway_session={}\r\nContent-Length: 10000000000\r\n\r\n",
        o.room,
        o.server.addr(),
        o.alice.session
    );
    socket.write_all(head.as_bytes()).await.expect("write head");
    socket.write_all(&[0; 1024]).await.expect("write a little body");
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("the server answers without waiting for ten gigabytes")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"too_large\""), "a JSON error: {answer}");
}

#[tokio::test]
async fn a_purged_message_takes_its_file_along_and_no_byte_of_it_stays_in_the_data_file() {
    let mut o = office_with(|config| config.records = Policy::Retain(1)).await;
    let id = uploaded(&o.alice, o.room, "old.txt", "text/plain", file_of("purge-marker-Q7 ", 150_000)).await;
    o.alice_tab.ack(json!({"type": "send", "conv": o.room, "text": "minutes", "attachments": [id]})).await;
    assert!(file_has(&o.server.data_file(), "purge-marker-Q7"), "the file is in the data file (so the scan sees it)");
    let purged = o.server.purge(now() + 2 * 24 * 3600 * 1000).await;
    assert!(purged >= 1, "the message is purged");
    let (status, _, _) = fetch(&o.bob, &format!("/api/files/{id}")).await;
    assert_eq!(status, 404, "its file went with it");
    assert!(!file_has(&o.server.data_file(), "purge-marker-Q7"), "no byte of the file is left after the vacuum");
}

#[tokio::test]
async fn a_deleted_message_takes_its_file_along() {
    let mut o = office_with(|_| {}).await;
    let id = uploaded(&o.alice, o.room, "oops.txt", "text/plain", file_of("delete-marker-D3 ", 70_000)).await;
    let seq = o.alice_tab.ack(json!({"type": "send", "conv": o.room, "text": "x", "attachments": [id]})).await["seq"].clone();
    o.alice_tab.ack(json!({"type": "delete", "conv": o.room, "seq": seq})).await;
    let (status, _, _) = fetch(&o.alice, &format!("/api/files/{id}")).await;
    assert_eq!(status, 404);
    o.server.purge(now()).await; // the sweep's vacuum
    assert!(!file_has(&o.server.data_file(), "delete-marker-D3"), "no byte of the deleted file is left");
}

#[tokio::test]
async fn a_backup_holds_the_files_and_checks_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut o = office_with(|_| {}).await;
    let id = uploaded(&o.alice, o.room, "notes.txt", "text/plain", file_of("backup-marker-B2 ", 100_000)).await;
    o.alice_tab.ack(json!({"type": "send", "conv": o.room, "text": "notes", "attachments": [id]})).await;
    // One upload left waiting, to be checked too.
    uploaded(&o.alice, o.room, "draft.txt", "text/plain", b"draft".to_vec()).await;
    let (status, _, bytes) = fetch(&o.alice, "/api/admin/backup").await;
    assert_eq!(status, 200);
    let copy = dir.path().join("backup.redb");
    std::fs::write(&copy, &bytes).expect("save the backup");
    assert!(file_has(&copy, "backup-marker-B2"), "the backup holds the file's bytes");
    let report = hallway::store::check::check_file(&copy).expect("check the backup");
    assert!(report.is_ok(), "the backup checks out: {:?}", report.problems);
    assert_eq!(report.counts.get("file_record"), Some(&2));
    assert_eq!(report.counts.get("filechunk_bytes"), Some(&3), "two chunks of the sent file, one of the draft");
}

#[tokio::test]
async fn a_conversation_that_keeps_nothing_refuses_files_and_says_why() {
    let mut o = office_with(|_| {}).await;
    o.alice_tab.ack(json!({"type": "set_records", "conv": o.room, "keep": "nothing"})).await;
    let (status, body) = upload(&o.bob, o.room, "a.txt", "text/plain", b"secret".to_vec(), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("keeps nothing"), "{body}");
    let _ = &mut o.bob_tab;
}

/// The counts of the file tables in a backup of the running server.
async fn file_tables_in_backup(admin: &Client, dir: &std::path::Path, n: usize) -> (u64, u64) {
    let (status, _, bytes) = fetch(admin, "/api/admin/backup").await;
    assert_eq!(status, 200);
    let copy = dir.join(format!("backup-{n}.redb"));
    std::fs::write(&copy, &bytes).expect("save the backup");
    let report = hallway::store::check::check_file(&copy).expect("check the backup");
    assert!(report.is_ok(), "the backup checks out mid-upload too: {:?}", report.problems);
    (report.counts.get("file_record").copied().unwrap_or(0), report.counts.get("filechunk_bytes").copied().unwrap_or(0))
}

#[tokio::test]
async fn an_upload_cut_short_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = office_with(|_| {}).await;
    let mut socket = tokio::net::TcpStream::connect(o.server.addr()).await.expect("connect");
    let head = format!(
        "POST /api/conversations/{}/files?name=half.bin HTTP/1.1\r\nHost: {}\r\nCookie: hallway_session={}\r\nContent-Length: 1000000\r\n\r\n",
        o.room,
        o.server.addr(),
        o.alice.session
    );
    socket.write_all(head.as_bytes()).await.expect("write head");
    socket.write_all(&[1; 400_000]).await.expect("write part of the body");
    // Until the server has written chunks of it (each backup is one moment of the file).
    let mut n = 0;
    loop {
        n += 1;
        let (records, chunks) = file_tables_in_backup(&o.alice, dir.path(), n).await;
        if records == 1 && chunks >= 4 {
            break;
        }
        assert!(n < 200, "the upload's chunks never reached the file ({records} records, {chunks} chunks)");
    }
    drop(socket); // the browser's cancel
    loop {
        n += 1;
        let (records, chunks) = file_tables_in_backup(&o.alice, dir.path(), n).await;
        if (records, chunks) == (0, 0) {
            break;
        }
        assert!(n < 400, "the cut-short upload stays in the file ({records} records, {chunks} chunks)");
    }
}
