//! Every person's own sessions (docs/protocol.md "Your account"): changing one's password
//! (knowing the current one) ends the other sessions; the list of signed-in browsers with
//! device, address and last use; signing out one or all others; and the idle expiry the
//! admin sets, with a clock the test moves.

mod common;

use std::time::Duration;

use common::{TestServer, password_of, read_response};
use serde_json::{Value, json};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Signs `name` in from a browser that says `agent`; its cookie jar is the session.
async fn browser(server: &TestServer, name: &str, agent: &str) -> reqwest::Client {
    let http = reqwest::Client::builder().cookie_store(true).user_agent(agent).build().expect("client");
    let resp = http
        .post(format!("{}/api/login", server.base()))
        .json(&json!({"name": name, "password": password_of(name)}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200, "{name} signs in from {agent}");
    http
}

async fn get(server: &TestServer, http: &reqwest::Client, path: &str) -> (u16, Value) {
    read_response(http.get(format!("{}{path}", server.base())).send().await.expect("GET")).await
}

async fn post(server: &TestServer, http: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
    read_response(http.post(format!("{}{path}", server.base())).json(&body).send().await.expect("POST")).await
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const PHONE: &str = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";

#[tokio::test]
async fn a_person_changes_their_password_knowing_the_current_one_and_their_other_sessions_end() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut other_tab = bob.ws().await;
    let laptop = browser(&server, "bob", FIREFOX).await;

    let (status, body) =
        post(&server, &laptop, "/api/me/password", json!({"current": "a guess", "password": "newer-password"})).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("bad_credentials")), "{body}");
    other_tab.ping().await;
    let change = json!({"current": password_of("bob"), "password": "newer-password"});
    let (status, body) = post(&server, &laptop, "/api/me/password", change).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(other_tab.expect_closed().await.reason, "signed_out", "the other browser's tab is signed out");
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 401, "the other session ended");
    let (status, _) = get(&server, &laptop, "/api/me").await;
    assert_eq!(status, 200, "the session that changed the password goes on");
    server.login("bob", "newer-password").await;
}

#[tokio::test]
async fn a_person_lists_their_sessions_and_signs_out_one_or_all_others() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    server.add_user(&alice, "bob").await;
    let laptop = browser(&server, "bob", FIREFOX).await;
    let phone = browser(&server, "bob", PHONE).await;
    let third = browser(&server, "bob", "curl/8.5.0").await;

    let (status, list) = get(&server, &laptop, "/api/me/sessions").await;
    assert_eq!(status, 200, "{list}");
    let sessions = list["sessions"].as_array().expect("a list of sessions");
    assert_eq!(sessions.len(), 4, "the add_user sign-in and three browsers: {list}");
    assert_eq!((&sessions[0]["current"], sessions[0]["device"].as_str()), (&json!(true), Some("Firefox on Linux")), "{list}");
    assert_eq!(sessions[0]["address"], "127.0.0.1", "{list}");
    assert!(sessions[0]["last_used"].as_u64().is_some(), "{list}");
    assert_eq!(list["idle_days"], 30, "{list}");
    let phone_id = sessions.iter().find(|s| s["device"] == "Chrome on Android").expect("the phone is listed")["id"].clone();
    let phone_id = phone_id.as_str().expect("an id");

    let (status, body) = post(&server, &alice.http, &format!("/api/me/sessions/{phone_id}/sign-out"), json!({})).await;
    assert_eq!(status, 404, "alice cannot end bob's session: {body}");
    let (status, _) = get(&server, &phone, "/api/me").await;
    assert_eq!(status, 200, "and bob's phone is still signed in");

    let (status, body) = post(&server, &laptop, &format!("/api/me/sessions/{phone_id}/sign-out"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&server, &phone, "/api/me").await;
    assert_eq!(status, 401, "the phone was signed out from the laptop");
    let (status, _) = get(&server, &third, "/api/me").await;
    assert_eq!(status, 200, "only the phone");

    let (status, body) = post(&server, &laptop, "/api/me/sessions/sign-out-others", json!({})).await;
    assert_eq!((status, &body["ended"]), (200, &json!(2)), "{body}");
    let (status, _) = get(&server, &third, "/api/me").await;
    assert_eq!(status, 401);
    let (_, list) = get(&server, &laptop, "/api/me/sessions").await;
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(1), "only this browser is left: {list}");
}

#[tokio::test]
async fn a_session_unused_for_the_idle_time_ends_and_one_in_use_goes_on() {
    let server = TestServer::start_with(|config| config.session_idle = 30 * DAY).await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    server.advance_clock(20 * DAY);
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 200, "20 days unused is within 30");
    server.advance_clock(20 * DAY);
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 200, "bob used his session 20 days ago: 40 days after sign-in it goes on");
    let (status, body) = alice.get("/api/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "alice's session was unused 40 days: {body}");
    let (status, body) = alice.get("/api/session").await;
    assert_eq!(body["signed_in"], false, "{status} {body}");
}

#[tokio::test]
async fn a_sessions_last_use_is_written_at_most_hourly() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let last_used = || async {
        let (_, list) = alice.get("/api/me/sessions").await;
        list["sessions"][0]["last_used"].as_u64().expect("last_used")
    };
    let first = last_used().await;
    for _ in 0..5 {
        alice.get("/api/me").await;
    }
    assert_eq!(last_used().await, first, "requests within the hour do not rewrite the session");
    server.advance_clock(Duration::from_secs(2 * 3600));
    alice.get("/api/me").await;
    let later = last_used().await;
    assert!(later >= first + 2 * 3600 * 1000, "two hours later the use is noted: {first} -> {later}");
}

#[tokio::test]
async fn a_tab_left_open_past_the_idle_time_keeps_its_session() {
    // The open tab notes its session's use every 100 ms here (hourly in an office).
    let server = TestServer::start_with(|config| {
        config.session_idle = 30 * DAY;
        config.touch_every = Duration::from_millis(100);
    })
    .await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut tab = bob.ws().await;
    tab.ping().await;
    server.advance_clock(40 * DAY);
    // The tab made no request in 40 days; its session goes on because the server noted the
    // tab's use. Without that, every request here is refused as idle.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = bob.get("/api/me").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 401, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "bob's tab was open all along, yet his session ended as unused: {body}");
        tokio::task::yield_now().await;
    }
    let (status, body) = alice.get("/api/me").await;
    assert_eq!(status, 401, "alice had no tab open: her session still ends after 40 unused days: {body}");
    tab.ping().await;
}
