//! The compliance reviewer under `--records archive`: finds messages by keyword, person and
//! date in every conversation, reads edits and deletes as they were, exports, and every one
//! of those reads lands in an audit log that admins read and nobody can change. Members get
//! 403; a reviewer never posts; without `archive` there is nothing to review.

mod common;

use common::*;
use hallway::core::records::Policy;
use serde_json::{Value, json};

fn archive(config: &mut hallway::Config) {
    config.records = Policy::Archive;
}

async fn add_reviewer(server: &TestServer, admin: &Client) -> Client {
    let body = json!({"name": "rita", "display_name": "Rita", "password": password_of("rita"), "role": "reviewer"});
    let (status, created) = admin.post("/api/users", body).await;
    assert_eq!(status, 201, "the admin creates a reviewer: {created}");
    server.login("rita", &password_of("rita")).await
}

/// A server under archive with alice the admin, bob (a member, with a tab open) and rita,
/// a reviewer; `general` is #general's id.
struct Office {
    server: TestServer,
    admin: Client,
    bob: Client,
    rita: Client,
    tab: Ws,
    general: u64,
}

async fn archive_office() -> Office {
    let server = TestServer::start_with(archive).await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let rita = add_reviewer(&server, &admin).await;
    let tab = bob.ws().await;
    let general = tab.room_id("general");
    Office { server, admin, bob, rita, tab, general }
}

fn texts_of(list: &Value) -> Vec<String> {
    list.as_array().map(|l| l.iter().map(|m| m["text"].as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_reviewer_reads_edits_and_deletes_as_they_were_and_every_read_is_audited() {
    let Office { mut server, admin, bob, rita, mut tab, general } = archive_office().await;
    let edited = tab.send_message(general, "quarterly numbers 4477").await["seq"].as_u64().unwrap();
    tab.ack(json!({"type": "edit", "conv": general, "seq": edited, "text": "quarterly numbers 4478"})).await;
    let deleted = tab.send_message(general, "quarterly draft delete me 9911").await["seq"].as_u64().unwrap();
    tab.ack(json!({"type": "delete", "conv": general, "seq": deleted})).await;
    tab.send_message(general, "<script>alert(1)</script> quarterly").await;

    // Users see the edit and the delete.
    let page = bob.history(general, "").await;
    let seen = texts(&page);
    assert!(
        seen.contains(&"quarterly numbers 4478".to_string()) && !seen.iter().any(|t| t.contains("4477") || t.contains("9911"))
    );

    // The reviewer sees what was written, version by version.
    let (status, listed) = rita.get("/api/review/conversations").await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed["conversations"].as_array().unwrap().iter().any(|c| c["id"] == general), "{listed}");
    let (status, read) = rita.get(&format!("/api/review/conversations/{general}/messages")).await;
    assert_eq!(status, 200, "{read}");
    let messages = read["messages"].as_array().unwrap();
    let find = |seq: u64| messages.iter().find(|m| m["seq"] == seq).cloned().expect("the message is in the review");
    assert_eq!(texts_of(&find(edited)["versions"]), ["quarterly numbers 4477"], "the original of an edit stays");
    assert_eq!(find(deleted)["deleted"], true);
    assert_eq!(texts_of(&find(deleted)["versions"]), ["quarterly draft delete me 9911"], "a deleted text stays for review");

    // By keyword and person, across conversations; the date range bounds it.
    let (_, found) = rita.get("/api/review/search?q=quarterly&from=bob").await;
    assert_eq!(
        found["results"].as_array().map(Vec::len),
        Some(3),
        "the edited message, the deleted one (by the text it had) and the script one: {found}"
    );
    let (_, none) = rita.get(&format!("/api/review/search?q=quarterly&until={}", 1_000)).await;
    assert_eq!(none["results"].as_array().map(Vec::len), Some(0), "nothing was written before 1970: {none}");
    let (_, none) = rita.get(&format!("/api/review/search?q=quarterly&since={}", u64::MAX / 2)).await;
    assert_eq!(none["results"].as_array().map(Vec::len), Some(0), "nothing was written in the far future: {none}");

    // Export as an offline page: text escaped, never run.
    let export = reqwest::Client::new()
        .get(format!("{}/api/review/conversations/{general}/export?format=html", server.base()))
        .header("cookie", format!("hallway_session={}", rita.session))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    let html = export.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "the export escapes what people wrote");
    assert!(html.contains("quarterly numbers 4477"), "the export has earlier versions");
    let export = reqwest::Client::new()
        .get(format!("{}/api/review/search/export?q=quarterly&from=bob&format=txt", server.base()))
        .header("cookie", format!("hallway_session={}", rita.session))
        .send()
        .await
        .expect("search export");
    assert_eq!(export.status(), 200);
    let text = export.text().await.unwrap();
    assert_eq!(text.lines().count(), 5, "one line per result and per earlier version: {text}");
    assert!(text.contains("quarterly numbers 4478") && text.contains("bob"), "{text}");

    // Members and the reviewer's own role are held to their side.
    for path in
        ["/api/review/conversations", &format!("/api/review/conversations/{general}/messages"), "/api/review/search?q=quarterly"]
    {
        let (status, body) = bob.get(path).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "a member calling {path}: {body}");
    }
    let mut rita_tab = rita.ws().await;
    rita_tab.expect_error(json!({"type": "send", "conv": general, "text": "hi"}), "forbidden").await;
    let (status, _) = rita.get("/api/admin/audit").await;
    assert_eq!(status, 403, "the reviewer cannot read (or weed) the audit log");

    // The admin sees each of the reviewer's actions, with what was asked and how much came back.
    let (status, log) = admin.get("/api/admin/audit").await;
    assert_eq!(status, 200, "{log}");
    let entries = log["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["list", "read", "search", "search", "search", "export", "export"], "{log}");
    assert!(entries.iter().all(|e| e["reviewer"] == rita_tab.hello["me"]["id"]));
    assert_eq!(entries[2]["query"], "q=quarterly from=bob");
    assert_eq!(entries[2]["results"], 3);
    // No API changes it, and it survives a restart.
    for method in [reqwest::Method::POST, reqwest::Method::DELETE, reqwest::Method::PUT] {
        let status = reqwest::Client::new()
            .request(method.clone(), format!("{}/api/admin/audit", server.base()))
            .header("cookie", format!("hallway_session={}", admin.session))
            .header("origin", server.base())
            .send()
            .await
            .expect("request")
            .status();
        assert!(!status.is_success(), "{method} /api/admin/audit must not succeed: {status}");
    }
    server.restart().await;
    let admin = server.login(ADMIN_NAME, ADMIN_PASSWORD).await;
    let (_, again) = admin.get("/api/admin/audit").await;
    assert_eq!(again["entries"].as_array().unwrap(), &entries, "the audit log is the same after a restart");
}

#[tokio::test]
async fn without_archive_a_reviewer_reads_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rita = add_reviewer(&server, &admin).await;
    let mut tab = admin.ws().await;
    let general = tab.room_id("general");
    tab.send_message(general, "kept but not archived").await;
    let (_, listed) = rita.get("/api/review/conversations").await;
    assert_eq!(listed["conversations"], json!([]), "a conversation kept for its members is not the reviewer's");
    let (status, _) = rita.get(&format!("/api/review/conversations/{general}/messages")).await;
    assert_eq!(status, 404);
    let (_, found) = rita.get("/api/review/search?q=archived").await;
    assert_eq!(found["results"], json!([]));
}

#[tokio::test]
async fn an_admin_exports_a_transcript_with_pseudonyms_and_no_addresses() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let bob = server.add_user(&admin, "bob").await;
    let mut tab = bob.ws().await;
    let general = tab.room_id("general");
    tab.send_message(general, "Hi alice, my card expired; mail me at bob.b@example.org or call 555-0199-123").await;
    let mut alice_tab = admin.ws().await;
    alice_tab.send_message(general, "Sure Bob, renewed it").await;

    let (status, body) = admin.get(&format!("/api/admin/conversations/{general}/transcript")).await;
    assert_eq!(status, 200, "{body}");
    let lines = body["lines"].as_array().unwrap();
    let speakers: Vec<&str> = lines.iter().map(|l| l["speaker"].as_str().unwrap()).collect();
    assert_eq!(speakers, ["Staff 1", "Staff 2"]);
    let text = body.to_string().to_lowercase();
    for leak in ["alice", "bob", "example.org", "0199"] {
        assert!(!text.contains(leak), "the transcript still has {leak:?}: {body}");
    }
    assert_eq!(lines[1]["text"], "Sure Staff 1, renewed it");

    let (status, _) = bob.get(&format!("/api/admin/conversations/{general}/transcript")).await;
    assert_eq!(status, 403, "a member cannot export transcripts");
    let (_, log) = admin.get("/api/admin/audit").await;
    assert_eq!(log["entries"][0]["action"], "transcript", "the export is audited: {log}");

    // What is not recorded has no transcript.
    let room = alice_tab.ack(json!({"type": "create_room", "name": "desk"})).await["conv"].as_u64().unwrap();
    alice_tab.ack(json!({"type": "set_records", "conv": room, "keep": "nothing"})).await;
    let (status, _) = admin.get(&format!("/api/admin/conversations/{room}/transcript")).await;
    assert_eq!(status, 404);
}

/// What a compliance office notices if this fails: words edited or deleted away vanish from
/// the reviewer's keyword search, though the archive kept them.
#[tokio::test]
async fn a_reviewer_finds_words_that_were_edited_or_deleted_away() {
    let Office { server: _server, admin: _admin, bob, rita, mut tab, general } = archive_office().await;
    let edited = tab.send_message(general, "wire the funds to offshoreacct today").await["seq"].as_u64().unwrap();
    tab.ack(json!({"type": "edit", "conv": general, "seq": edited, "text": "lunch today?"})).await;
    let deleted = tab.send_message(general, "shred the offshoreacct papers").await["seq"].as_u64().unwrap();
    tab.ack(json!({"type": "delete", "conv": general, "seq": deleted})).await;
    tab.send_message(general, "nothing to see here").await;

    let (status, found) = rita.get("/api/review/search?q=offshoreacct").await;
    assert_eq!(status, 200, "{found}");
    let results = found["results"].as_array().unwrap();
    let seqs: Vec<u64> = results.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [deleted, edited], "both messages are found by the words they had, newest first: {found}");
    assert_eq!(texts_of(&results[1]["versions"]), ["wire the funds to offshoreacct today"], "with the version that matched");
    assert_eq!(results[0]["deleted"], true);
    assert_eq!(texts_of(&results[0]["versions"]), ["shred the offshoreacct papers"]);
    let (_, by_person) = rita.get("/api/review/search?q=funds&from=bob").await;
    assert_eq!(by_person["results"].as_array().map(Vec::len), Some(1), "{by_person}");

    // Members search what is there now: the words are gone for them.
    let (_, mine) = bob.get("/api/search?q=offshoreacct").await;
    assert_eq!(mine["results"], json!([]), "a member must not find edited-away words: {mine}");
    let (_, export) = rita.get("/api/review/search/export?q=offshoreacct&format=json").await;
    let exported = export["messages"].as_array().map(Vec::len);
    assert_eq!(exported, Some(2), "the export holds both: {export}");
}

/// Uploads `bytes` to `conv` as `client`, answering the file's id.
async fn upload(client: &Client, conv: u64, name: &str, bytes: &[u8]) -> u64 {
    let resp = client
        .http
        .post(format!("{}/api/conversations/{conv}/files", client.base))
        .query(&[("name", name), ("type", "application/pdf")])
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload request");
    let (status, body) = read_response(resp).await;
    assert_eq!(status, 200, "{} could not upload {name}: {body}", client.name);
    body["file"]["id"].as_u64().expect("the upload answers the file's id")
}

async fn download(client: &Client, path: &str) -> (u16, Vec<u8>) {
    let resp = client.http.get(format!("{}{path}", client.base)).send().await.expect("download request");
    (resp.status().as_u16(), resp.bytes().await.expect("download body").to_vec())
}

#[tokio::test]
async fn a_reviewer_downloads_the_file_of_a_deleted_message_and_the_download_is_audited() {
    let Office { server: _server, admin, bob, rita, mut tab, general } = archive_office().await;
    let contract = b"%PDF-1.4 the signed contract".to_vec();
    let id = upload(&bob, general, "contract.pdf", &contract).await;
    let unsent = upload(&bob, general, "draft.pdf", b"%PDF-1.4 not sent").await;
    let sent = tab.ack(json!({"type": "send", "conv": general, "text": "the contract", "attachments": [id]})).await;
    let seq = sent["seq"].as_u64().expect("the send answers its seq");
    tab.ack(json!({"type": "delete", "conv": general, "seq": seq})).await;

    // Members lose the file with the message; the reviewer does not.
    let (status, _) = download(&bob, &format!("/api/files/{id}")).await;
    assert_eq!(status, 404, "a deleted message's file is gone for members");
    let (_, read) = rita.get(&format!("/api/review/conversations/{general}/messages")).await;
    let message = read["messages"].as_array().unwrap().iter().find(|m| m["seq"] == seq).cloned().expect("in the review");
    assert_eq!(message["versions"][0]["attachments"][0]["id"], id, "the review lists the file of the deleted message: {message}");
    let (status, bytes) = download(&rita, &format!("/api/review/files/{id}")).await;
    assert_eq!((status, bytes), (200, contract), "the reviewer downloads the file as it was sent");

    // Nobody else gets it this way, and a file never sent is nobody's record.
    let (status, _) = download(&bob, &format!("/api/review/files/{id}")).await;
    assert_eq!(status, 403, "a member cannot use the reviewer's door");
    let (status, _) = download(&rita, &format!("/api/review/files/{unsent}")).await;
    assert_eq!(status, 404, "an upload not sent yet is not in the archive");
    let (status, _) = download(&rita, &format!("/api/files/{id}")).await;
    assert_eq!(status, 404, "the members' door stays shut to a reviewer");

    let (_, log) = admin.get("/api/admin/audit").await;
    let files: Vec<&Value> = log["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "file").collect();
    assert_eq!(files.len(), 1, "the one download is audited, the refused one is not: {log}");
    assert_eq!(files[0]["conv"], general);
    assert_eq!(files[0]["query"], format!("file={id} size=28"));
}
