//! The admin's account work on a running server (docs/protocol.md "Accounts (admin only)"):
//! the list, disabling (the tabs close at once, sign-in is refused), re-enabling, password
//! resets that end sessions, roles, and the last admin who always stays.

mod common;

use common::{TestServer, password_of};
use serde_json::{Value, json};

/// The entry of the admins' list for `name`.
fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["name"] == name))
        .unwrap_or_else(|| panic!("the admins' list should show {name}: {list}"))
}

#[tokio::test]
async fn admin_endpoints_refuse_members_with_403() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let carol = server.add_user(&alice, "carol").await;
    let target = carol.id;
    let tries = [
        ("GET", "/api/admin/users".to_string(), Value::Null),
        ("POST", format!("/api/admin/users/{target}/disable"), json!({})),
        ("POST", format!("/api/admin/users/{target}/enable"), json!({})),
        ("POST", format!("/api/admin/users/{target}/role"), json!({"role": "admin"})),
        ("POST", format!("/api/admin/users/{target}/password"), json!({"password": "taken-over-pw"})),
    ];
    for (method, path, body) in &tries {
        let (status, answer) = if *method == "GET" { bob.get(path).await } else { bob.post(path, body.clone()).await };
        assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")), "a member's {method} {path}: {answer}");
    }
    let (status, _) = server.anonymous_get("/api/admin/users").await;
    assert_eq!(status, 401, "without a session the list is not shown at all");
    // Nothing of it happened: carol still signs in with her own password, as a member.
    server.login("carol", &password_of("carol")).await;
    let (status, list) = alice.get("/api/admin/users").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(entry(&list, "carol")["role"], "member", "{list}");
    assert_eq!(entry(&list, "carol")["disabled"], false, "{list}");
}

#[tokio::test]
async fn the_list_shows_each_role_how_many_tabs_are_open_and_when_someone_was_last_seen() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    server.add_user(&alice, "carol").await;
    let mut tab1 = bob.ws().await;
    let mut tab2 = bob.ws_tab("bob's second tab").await;
    tab1.ping().await;
    tab2.ping().await;
    let (status, list) = alice.get("/api/admin/users").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(entry(&list, "alice")["role"], "admin");
    assert_eq!(entry(&list, "bob")["tabs"], 2, "bob has two tabs open: {list}");
    assert!(entry(&list, "bob")["last_seen"].as_u64().is_some(), "bob is seen now: {list}");
    assert_eq!(entry(&list, "carol")["tabs"], 0, "{list}");
    assert!(entry(&list, "carol")["last_seen"].is_null(), "carol never opened a tab: {list}");
    tab1.close().await;
    tab2.close().await;
}

#[tokio::test]
async fn disabling_a_user_closes_their_open_tab_at_once_and_refuses_their_sign_in() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bobs_tab = bob.ws().await;
    let mut alices_tab = alice.ws().await;

    let (status, body) = alice.post(&format!("/api/admin/users/{}/disable", bob.id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["disabled"], true, "{body}");
    let closed = bobs_tab.expect_closed().await;
    assert_eq!(closed.reason, "account_disabled", "bob's tab is told why it closes: {closed:?}");
    let told =
        alices_tab.recv_where("the user frame of disabled bob", |f| f["type"] == "user" && f["user"]["id"] == bob.id).await;
    assert_eq!(told["user"]["disabled"], true, "colleagues learn bob is disabled: {told}");

    let (status, body) = bob.get("/api/me").await;
    assert_eq!(status, 401, "bob's session ended: {body}");
    let (status, body) = server.try_login("bob", &password_of("bob")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("account_disabled")), "a disabled account cannot sign in: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("disabled"), "and is told why: {body}");
    let (status, _) = server.try_login("bob", "not-bobs-password").await;
    assert_eq!(status, 401, "a wrong password says nothing of the account being disabled");

    let (status, body) = alice.post(&format!("/api/admin/users/{}/enable", bob.id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let bob = server.login("bob", &password_of("bob")).await;
    bob.ws().await.ping().await;
}

#[tokio::test]
async fn a_disabled_account_stays_disabled_after_a_restart() {
    let mut server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let (status, body) = alice.post(&format!("/api/admin/users/{}/disable", bob.id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    server.restart().await;
    let (status, body) = server.try_login("bob", &password_of("bob")).await;
    assert_eq!(status, 403, "{body}");
    let alice = server.login("alice", common::ADMIN_PASSWORD).await;
    let (_, list) = alice.get("/api/admin/users").await;
    assert_eq!(entry(&list, "bob")["disabled"], true, "{list}");
}

#[tokio::test]
async fn an_admin_resets_a_password_online_and_every_session_of_it_ends() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bobs_tab = bob.ws().await;
    let (status, body) = alice.post(&format!("/api/admin/users/{}/password", bob.id), json!({"password": "short"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "the password rule holds: {body}");
    bobs_tab.ping().await;

    let (status, body) = alice.post(&format!("/api/admin/users/{}/password", bob.id), json!({"password": "brand-new-pw"})).await;
    assert_eq!(status, 200, "{body}");
    let closed = bobs_tab.expect_closed().await;
    assert_eq!(closed.reason, "signed_out", "{closed:?}");
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 401, "whoever had bob's session is out");
    let (status, _) = server.try_login("bob", &password_of("bob")).await;
    assert_eq!(status, 401, "the old password no longer works");
    server.login("bob", "brand-new-pw").await;
}

#[tokio::test]
async fn a_role_change_reaches_everyone_and_takes_effect_at_once() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bobs_tab = bob.ws().await;
    let (status, body) = alice.post(&format!("/api/admin/users/{}/role", bob.id), json!({"role": "boss"})).await;
    assert_eq!(status, 400, "only the three roles exist: {body}");
    let (status, body) = alice.post(&format!("/api/admin/users/{}/role", bob.id), json!({"role": "admin"})).await;
    assert_eq!((status, body["user"]["role"].as_str()), (200, Some("admin")), "{body}");
    let told = bobs_tab.recv_where("bob's own user frame", |f| f["type"] == "user" && f["user"]["id"] == bob.id).await;
    assert_eq!(told["user"]["role"], "admin", "{told}");
    let (status, list) = bob.get("/api/admin/users").await;
    assert_eq!(status, 200, "bob, now an admin, reads the list with the session he had: {list}");
    let (status, body) = alice.post(&format!("/api/admin/users/{}/role", bob.id), json!({"role": "reviewer"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = bob.get("/api/admin/users").await;
    assert_eq!(status, 403, "a reviewer is no admin");
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    for (action, body) in [("disable", json!({})), ("role", json!({"role": "member"}))] {
        let (status, answer) = alice.post(&format!("/api/admin/users/{}/{action}", alice.id), body).await;
        assert_eq!((status, answer["code"].as_str()), (409, Some("last_admin")), "{action} of the only admin: {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains("another"), "the refusal says what to do: {answer}");
    }
    let (_, list) = alice.get("/api/admin/users").await;
    assert_eq!((entry(&list, "alice")["role"].as_str(), &entry(&list, "alice")["disabled"]), (Some("admin"), &json!(false)));

    // With a second admin, the first may step down; the second is then the last.
    let (status, body) = alice.post(&format!("/api/admin/users/{}/role", bob.id), json!({"role": "admin"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = alice.post(&format!("/api/admin/users/{}/role", alice.id), json!({"role": "member"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = bob.post(&format!("/api/admin/users/{}/disable", bob.id), json!({})).await;
    assert_eq!(status, 409, "{body}");
    // A disabled admin does not count as one.
    let (status, body) = bob.post(&format!("/api/admin/users/{}/role", alice.id), json!({"role": "admin"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = bob.post(&format!("/api/admin/users/{}/disable", alice.id), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = bob.post(&format!("/api/admin/users/{}/role", bob.id), json!({"role": "member"})).await;
    assert_eq!(status, 409, "alice is an admin but disabled, so bob is the last: {body}");
}
