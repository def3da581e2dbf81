//! Accounts: first-run setup, signing in and out, the sign-in lockout, who may create accounts.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_token_works_exactly_once() {
    let server = TestServer::start().await;
    let (status, body) = server.anonymous_get("/api/setup").await;
    assert_eq!((status, body["needed"].as_bool()), (200, Some(true)), "a fresh server needs setup: {body}");
    let token = server.setup_token().expect("a fresh server offers a setup token");

    let setup = |token: &str, password: &str| {
        server
            .anonymous_post("/api/setup", json!({"token": token, "name": "alice", "display_name": "Alice", "password": password}))
    };
    let (status, body) = setup("not-the-token", "correct horse battery").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("bad_token")), "a guessed token must not work: {body}");
    let (status, body) = setup(&token, "short").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "a password under 8 characters should be refused: {body}"
    );

    let alice = server.admin().await;
    assert_eq!(alice.user["role"], "admin", "the setup account should be an admin: {}", alice.user);
    let (status, body) = alice.get("/api/me").await;
    assert_eq!((status, body["user"]["id"].as_u64()), (200, Some(alice.id)), "setup should sign alice in: {body}");
    let (_, rooms) = alice.get("/api/rooms").await;
    let general = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["name"] == "general")
        .unwrap_or_else(|| panic!("setup should create the room general: {rooms}"))
        .clone();
    assert_eq!(general["joined"], true, "the admin should be in general: {general}");

    let (status, body) = setup(&token, "another password").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("setup_done")),
        "the setup link must not work a second time (someone could make themselves admin): {body}"
    );
    let (_, body) = server.anonymous_get("/api/setup").await;
    assert_eq!(body["needed"], false, "no setup needed once an admin exists: {body}");
    assert!(server.setup_token().is_none(), "no setup token once an admin exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_repeated_failures_lock_the_name() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let _bob = server.add_user(&alice, "bob").await;

    let (status, body) = server.try_login("nobody", "whatever123").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("bad_credentials")),
        "an unknown name answers like a wrong password: {body}"
    );
    for attempt in 1..=5 {
        let (status, body) = server.try_login("bob", "guess-number-one").await;
        assert_eq!((status, body["code"].as_str()), (401, Some("bad_credentials")), "wrong password, attempt {attempt}: {body}");
    }
    let (status, body) = server.try_login("bob", &password_of("bob")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_attempts")),
        "after 5 failures the name should be locked, even for the right password: {body}"
    );
    let retry_after = body["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("a locked sign-in should say when to retry (retry_after seconds): {body}"));
    assert!((1..=300).contains(&retry_after), "retry_after should be 1 s to 5 min: {body}");

    let (status, _) = server.try_login(ADMIN_NAME, ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "bob's lockout must not lock alice out");

    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200)).await;
    let bob = server.login("bob", &password_of("bob")).await;
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 200, "after waiting retry_after, bob can sign in again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_create_accounts() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bob_tab = bob.ws().await;

    let (status, body) = bob
        .post("/api/users", json!({"name": "mallory", "display_name": "Mallory", "password": "hunter22hunter", "role": "admin"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "a member created an account: {body}");
    let (status, _) = server.try_login("mallory", "hunter22hunter").await;
    assert_eq!(status, 401, "the refused account must not exist");

    let (status, body) = alice
        .post("/api/users", json!({"name": "bob", "display_name": "Bob 2", "password": "hunter22hunter", "role": "member"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("name_taken")), "a second bob: {body}");
    let (status, body) = alice
        .post("/api/users", json!({"name": "Bad Name!", "display_name": "X", "password": "hunter22hunter", "role": "member"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "an invalid name: {body}");

    let carol = server.add_user(&alice, "carol").await;
    let frame = bob_tab.recv_type("user").await;
    assert_eq!(frame["user"]["id"], carol.id, "bob's tab should learn about the new colleague: {frame}");
    assert_eq!(frame["user"]["role"], "member", "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_everywhere() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    let mut bob_tab = bob.ws().await;
    let mut alice_tab = alice.ws().await;
    let old_cookie = bob.session.clone();

    let (status, body) = bob.post("/api/logout", json!({})).await;
    assert_eq!(status, 204, "sign-out should succeed: {body}");

    let closed = bob_tab.expect_closed().await;
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(1000), "signed_out"),
        "bob's open tab should be closed as signed out"
    );

    // Someone who copied the old cookie cannot use it.
    let (status, body) = read_response(
        reqwest::Client::new()
            .get(format!("{}/api/me", server.base()))
            .header(reqwest::header::COOKIE, format!("hallway_session={old_cookie}"))
            .send()
            .await
            .expect("GET /api/me"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "the old session must be dead on the server: {body}"
    );
    let refused = Ws::connect_raw(server.addr(), Some(&old_cookie), None).await.err();
    assert_eq!(refused, Some(401), "a WebSocket with the old session must be refused");
    let (status, _) = bob.get("/api/me").await;
    assert_eq!(status, 401, "bob's browser is signed out");

    alice_tab.ping().await;
    let (status, _) = alice.get("/api/me").await;
    assert_eq!(status, 200, "alice stays signed in when bob signs out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_get_no_further_than_sequential_ones() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let _bob = server.add_user(&alice, "bob").await;
    let server = std::sync::Arc::new(server);

    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move { server.try_login("bob", &format!("guess-number-{i}")).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("guess task"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(checked <= 5, "at most 5 of 20 parallel guesses may reach the password check, {checked} did: {statuses:?}");
    assert_eq!(checked + refused, 20, "every guess is either wrong or throttled: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_signing_in_at_once_from_one_address_gets_in() {
    // Offices share one NAT address; 30 people arriving at nine must all get in, although
    // the address's budget of failures is 20 (sign-ins waiting for their turn to hash hold
    // none of it).
    let server = TestServer::start().await;
    let alice = server.admin().await;
    for i in 0..30 {
        let name = format!("colleague{i}");
        let (status, body) = alice
            .post("/api/users", json!({"name": name, "display_name": name, "password": password_of(&name), "role": "member"}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let server = std::sync::Arc::new(server);
    let sign_ins: Vec<_> = (0..30)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let name = format!("colleague{i}");
                server.try_login(&name, &password_of(&name)).await
            })
        })
        .collect();
    for (i, sign_in) in sign_ins.into_iter().enumerate() {
        let (status, body) = sign_in.await.expect("sign-in task");
        assert_eq!(status, 200, "colleague{i} signing in with the others was refused: {body}");
    }
}

/// A stranger (a fresh browser, no cookies) guessing `name`'s password `times` times in a
/// row; the statuses it got.
async fn hammer(server: &TestServer, name: &str, times: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..times {
        statuses.push(server.try_login(name, &format!("guess-number-{i}")).await.0);
    }
    statuses
}

/// Signs in again from `client`'s own browser (its cookie jar, so its device cookie).
async fn sign_in_again(client: &Client, password: &str) -> (u16, serde_json::Value) {
    let resp = client
        .http
        .post(format!("{}/api/login", client.base))
        .json(&json!({"name": client.name, "password": password}))
        .send()
        .await
        .expect("POST /api/login");
    read_response(resp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_hammering_an_account_does_not_lock_out_the_browser_its_owner_used_before() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    let statuses = hammer(&server, "bob", 8).await;
    assert_eq!(&statuses[..5], &[401; 5], "the first guesses are checked: {statuses:?}");
    assert_eq!(statuses[5], 429, "then the stranger is refused too_many_attempts: {statuses:?}");

    // Same address (127.0.0.1), but the browser bob signed in with before carries his device
    // cookie: the stranger's failures are not his.
    let (status, body) = sign_in_again(&bob, "bob's own typo").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("bad_credentials")), "a typo is just wrong: {body}");
    let (status, body) = sign_in_again(&bob, &password_of("bob")).await;
    assert_eq!(status, 200, "bob's own browser gets in while his account is hammered: {body}");
    let (status, body) = sign_in_again(&alice, ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "and so does everyone else: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_cookie_is_out_of_reach_of_scripts_and_other_sites() {
    let server = TestServer::start().await;
    let _alice = server.admin().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/login", server.base()))
        .json(&json!({"name": ADMIN_NAME, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("POST /api/login");
    let device = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hallway_device="))
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| panic!("a sign-in sets the device cookie: {:?}", resp.headers()));
    for attribute in ["httponly", "samesite=strict", "path=/api/login"] {
        assert!(device.split(';').any(|a| a.trim() == attribute), "the device cookie needs {attribute}: {device}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_many_names_from_one_address_is_refused_past_its_budget() {
    let server = TestServer::start_with(|config| config.signin_address_burst = 5).await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;

    for i in 0..5 {
        let (status, body) = server.try_login(&format!("colleague{i}"), "Spring2026!").await;
        assert_eq!(status, 401, "guess {i} is within the address's budget: {body}");
    }
    let (status, body) = server.try_login("colleague5", "Spring2026!").await;
    assert_eq!((status, body["code"].as_str()), (429, Some("too_many_attempts")), "past the budget: {body}");
    assert!(body["retry_after"].as_u64().is_some_and(|s| s >= 1), "it says when to try again: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("address")), "and why: {body}");
    let (status, body) = server.try_login("bob", &password_of("bob")).await;
    assert_eq!(status, 429, "a new browser at that address waits too, even with the right password: {body}");

    let (status, body) = sign_in_again(&bob, &password_of("bob")).await;
    assert_eq!(status, 200, "a browser that signed in before is not held back by the address: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_who_was_locked_out_and_members_do_not() {
    let server = TestServer::start().await;
    let alice = server.admin().await;
    let bob = server.add_user(&alice, "bob").await;
    hammer(&server, "bob", 6).await;

    let (status, body) = alice.get("/api/admin/signin-failures").await;
    assert_eq!(status, 200, "{body}");
    let lockouts = body["lockouts"].as_array().unwrap_or_else(|| panic!("a list of lockouts: {body}"));
    let bobs = lockouts
        .iter()
        .find(|l| l["kind"] == "account" && l["name"] == "bob")
        .unwrap_or_else(|| panic!("bob's lockout is listed: {body}"));
    assert_eq!(bobs["user"], bob.id, "{bobs}");
    assert_eq!(bobs["address"], "127.0.0.1", "{bobs}");
    assert!(bobs["failures"].as_u64().is_some_and(|n| n >= 5), "{bobs}");
    assert!(bobs["since"].as_u64().is_some_and(|t| t > 0), "{bobs}");

    let (status, body) = bob.get("/api/admin/signin-failures").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "a member: {body}");
    let (status, body) = server.anonymous_get("/api/admin/signin-failures").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "no session: {body}");
}
