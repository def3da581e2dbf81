//! Sign-up without an admin (docs/protocol.md "Sign-up"): closed by default; invite links
//! sign a colleague up once per use, with the link's role, and never after they expire, are
//! used up or are revoked; open sign-up takes anyone on the office network.

mod common;

use std::time::Duration;

use common::{TestServer, read_response};
use serde_json::{Value, json};

/// Signs up through the server's own endpoint, as the sign-up page does, with a fresh browser.
async fn sign_up(server: &TestServer, invite: Option<&str>, name: &str) -> (u16, Value) {
    let mut body = json!({"name": name, "display_name": name, "password": format!("{name}-password")});
    if let Some(token) = invite {
        body["invite"] = json!(token);
    }
    server.anonymous_post("/api/signup", body).await
}

/// Makes an invite link as `admin` and returns its token (what follows `#` in the link).
async fn invite(admin: &common::Client, body: Value) -> (String, Value) {
    let (status, made) = admin.post("/api/admin/invites", body).await;
    assert_eq!(status, 201, "the admin makes an invite link: {made}");
    let link = made["link"].as_str().expect("a link");
    assert!(link.starts_with(&format!("{}/signup#", admin.base)), "the link opens this server's sign-up page: {link}");
    let token = link.rsplit_once('#').expect("the token after #").1.to_string();
    (token, made)
}

async fn set_mode(admin: &common::Client, mode: &str) {
    let (status, body) = admin.post("/api/admin/signup", json!({"mode": mode})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sign_up_is_closed_until_an_admin_allows_it() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let (_, asked) = server.anonymous_get("/api/signup").await;
    assert_eq!((asked["mode"].as_str(), &asked["allowed"]), (Some("admin"), &json!(false)), "{asked}");
    let (status, body) = sign_up(&server, None, "mallory").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = alice.post("/api/admin/invites", json!({})).await;
    assert_eq!(status, 400, "no invite links while only admins create accounts: {body}");
    for (path, body) in [("/api/admin/signup", json!({"mode": "open"})), ("/api/admin/invites", json!({}))] {
        let (status, answer) = bob.post(path, body).await;
        assert_eq!(status, 403, "a member's POST {path}: {answer}");
    }
    let (status, _) = bob.get("/api/admin/signup").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_invite_link_signs_up_once_per_use_with_its_role_and_not_beyond() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    set_mode(&alice, "invite").await;
    let (token, made) = invite(&alice, json!({"uses": 2, "role": "reviewer", "expires_in_hours": 48})).await;
    let qr = made["qr_svg"].as_str().expect("a QR code");
    assert!(qr.contains("<svg") && qr.contains("<path"), "the QR code is an SVG drawing: {}", common::truncate(qr, 200));
    assert_eq!((made["invite"]["uses"].as_u64(), made["invite"]["max_uses"].as_u64()), (Some(0), Some(2)), "{made}");

    let (_, asked) = server.anonymous_get(&format!("/api/signup?invite={token}")).await;
    assert_eq!((&asked["allowed"], asked["role"].as_str()), (&json!(true), Some("reviewer")), "{asked}");
    let (status, body) = sign_up(&server, None, "nobody").await;
    assert_eq!(status, 403, "without the link nobody signs up: {body}");

    let (status, body) = sign_up(&server, Some(&token), "dan").await;
    assert_eq!((status, body["user"]["role"].as_str()), (200, Some("reviewer")), "{body}");
    server.login("dan", "dan-password").await;
    let (status, body) = sign_up(&server, Some(&token), "dan").await;
    assert_eq!(status, 409, "a taken name is refused: {body}");
    let (status, body) = sign_up(&server, Some(&token), "erin").await;
    assert_eq!(status, 200, "the taken name did not cost the link a use: {body}");
    let (status, body) = sign_up(&server, Some(&token), "frank").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("bad_token")), "a third use of a link of two: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("used"), "{body}");
    let (_, settings) = alice.get("/api/admin/signup").await;
    assert_eq!(settings["invites"][0]["uses"], 2, "{settings}");
}

#[tokio::test]
async fn two_colleagues_racing_for_the_last_use_of_a_link_cannot_both_sign_up() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    set_mode(&alice, "invite").await;
    let (token, _) = invite(&alice, json!({"uses": 1})).await;
    let (a, b) = tokio::join!(sign_up(&server, Some(&token), "gina"), sign_up(&server, Some(&token), "hank"));
    let won = [a.0, b.0].iter().filter(|s| **s == 200).count();
    assert_eq!(won, 1, "a link of one use signs up one person: {a:?} {b:?}");
}

#[tokio::test]
async fn an_invite_link_stops_working_once_it_expires_or_is_revoked_and_after_a_restart_keeps_its_count() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    set_mode(&alice, "invite").await;
    let (short, _) = invite(&alice, json!({"uses": 5, "expires_in_hours": 1})).await;
    let (revoked, made) = invite(&alice, json!({"uses": 5})).await;
    let (kept, _) = invite(&alice, json!({"uses": 2})).await;
    let (status, body) = sign_up(&server, Some(&kept), "ivy").await;
    assert_eq!(status, 200, "{body}");

    server.advance_clock(Duration::from_secs(2 * 3600));
    let (status, body) = sign_up(&server, Some(&short), "jack").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("bad_token")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("expired"), "{body}");

    let id = made["invite"]["id"].as_str().expect("an id");
    let (status, body) = alice.post(&format!("/api/admin/invites/{id}/revoke"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sign_up(&server, Some(&revoked), "kim").await;
    assert_eq!(status, 403, "a revoked link: {body}");

    server.restart().await;
    let (status, body) = sign_up(&server, Some(&kept), "lee").await;
    assert_eq!(status, 200, "the second use after a restart: {body}");
    let (status, body) = sign_up(&server, Some(&kept), "max").await;
    assert_eq!(status, 403, "a restart does not give a link its uses back: {body}");
}

#[tokio::test]
async fn open_sign_up_takes_anyone_on_the_office_network_as_a_member() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    set_mode(&alice, "open").await;
    let (_, asked) = server.anonymous_get("/api/signup").await;
    assert_eq!((asked["mode"].as_str(), &asked["allowed"]), (Some("open"), &json!(true)), "{asked}");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/signup", server.base()))
        .json(&json!({"name": "nora", "display_name": "Nora", "password": "nora-password"}))
        .send()
        .await
        .expect("sign up");
    let signed_in =
        resp.headers().get_all("set-cookie").iter().any(|v| v.to_str().is_ok_and(|v| v.starts_with("hallway_session=")));
    let (status, body) = read_response(resp).await;
    assert_eq!((status, body["user"]["role"].as_str()), (200, Some("member")), "{body}");
    assert!(signed_in, "signing up signs in");
    let tab = server.login("nora", "nora-password").await.ws().await;
    tab.room_id("general");
}

#[tokio::test]
async fn open_sign_up_takes_at_most_thirty_accounts_an_hour_from_one_address() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    set_mode(&alice, "open").await;
    for i in 0..30 {
        let (status, body) = sign_up(&server, None, &format!("colleague{i}")).await;
        assert_eq!(status, 200, "a first morning's sign-up {i}: {body}");
    }
    let (status, body) = sign_up(&server, None, "one-too-many").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "{body}");
    assert!(body["retry_after"].as_u64().is_some_and(|s| s > 0), "{body}");
    // An invite link has its own count, and still works from that address.
    set_mode(&alice, "invite").await;
    let (token, _) = invite(&alice, json!({})).await;
    let (status, body) = sign_up(&server, Some(&token), "invited").await;
    assert_eq!(status, 200, "{body}");
}
