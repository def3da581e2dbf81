//! Sign-in, sign-out, first-admin setup, and the `Session` extractor that every other
//! endpoint uses to know who is asking.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::serve::address_key;
use super::{App, Body};
use crate::auth::{self, Refused};
use crate::core::EndSessions;
use crate::model::{Role, UserId, valid_name};
use crate::protocol::user_info;
use crate::protocol::{ErrorCode, Refusal, User};
use crate::store::Change;
use crate::store::records::SessionRecord;

pub const COOKIE: &str = "hallway_session";

/// The signed-in user of a request; rejects with `401 unauthorized` when there is none.
pub struct Session {
    pub user: UserId,
    pub role: Role,
    pub token_hash: [u8; 32],
}

impl<S: Send + Sync> FromRequestParts<S> for Session
where
    App: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Session, Refusal> {
        let app = App::from_ref(state);
        let token = session_cookie(&parts.headers).ok_or_else(Refusal::unauthorized)?;
        let token_hash = auth::hash_token(token);
        let record = app.store.session(&token_hash)?.ok_or_else(Refusal::unauthorized)?;
        let now = app.clock.now();
        if now.saturating_sub(record.last_used.max(record.created)) > app.session_idle.as_millis() as u64 {
            return Err(Refusal::new(ErrorCode::Unauthorized, "your session ended after going unused; sign in again"));
        }
        let user = app.store.user(record.user)?.ok_or_else(Refusal::unauthorized)?;
        if user.disabled {
            return Err(Refusal::new(ErrorCode::Unauthorized, "this account is disabled; ask your admin"));
        }
        if now.saturating_sub(record.last_used) >= auth::TOUCH_EVERY_MS {
            // At most hourly per session, so that using Hallway costs no disk write per request.
            let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
            if let Err(e) = app.writer.write(vec![Change::TouchSession { hash: token_hash, at: now, address }]).await {
                tracing::warn!(error = %e, "could not note a session's use");
            }
        }
        Ok(Session { user: record.user, role: user.role, token_hash })
    }
}

/// A signed-in admin; rejects everyone else with `403 forbidden` (and `401` without a
/// session), so that an admin endpoint checks its caller in its signature alone.
pub struct Admin(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for Admin
where
    App: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admin, Refusal> {
        let session = Session::from_request_parts(parts, state).await?;
        if session.role != Role::Admin {
            return Err(Refusal::new(ErrorCode::Forbidden, "only admins may do this"));
        }
        Ok(Admin(session))
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

/// Where a sign-in comes from, as the list of one's sessions shows it.
pub(super) struct Origin {
    pub device: String,
    pub address: String,
}

impl Origin {
    pub fn of(headers: &HeaderMap, peer: SocketAddr) -> Origin {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        Origin { device: auth::device_label(agent), address: peer.ip().to_string() }
    }
}

/// Starts a session for `user`: stores its hash durably, returns the cookie to set.
pub(super) async fn start_session(app: &App, user: UserId, origin: Origin) -> Result<HeaderValue, Refusal> {
    let (token, hash) = auth::new_token();
    let now = app.clock.now();
    let record = SessionRecord { user, created: now, last_used: now, device: origin.device, address: origin.address };
    app.writer.write(vec![Change::PutSession(hash, record)]).await.map_err(|e| {
        tracing::error!(error = %e, "saving a session failed");
        Refusal::new(ErrorCode::Storage, "the server could not save your session; try again later")
    })?;
    // The browser keeps the cookie long; the server ends the session once it goes unused.
    let max_age = auth::COOKIE_DAYS * 24 * 3600;
    let secure = secure(app);
    HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"))
        .map_err(|_| Refusal::new(ErrorCode::Internal, "could not build the session cookie"))
}

/// In HTTPS mode cookies go only over HTTPS.
fn secure(app: &App) -> &'static str {
    if app.tls.is_some() { "; Secure" } else { "" }
}

pub(super) fn signed_in(user: User, cookie: HeaderValue) -> Response {
    let mut response = Json(json!({ "user": user })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// `GET /api/setup`: whether the first admin still has to be created.
pub async fn setup_needed(State(app): State<App>) -> Json<serde_json::Value> {
    let needed = app.setup.lock().unwrap_or_else(|e| e.into_inner()).is_some();
    Json(json!({ "needed": needed }))
}

#[derive(Deserialize)]
pub struct SetupBody {
    token: String,
    name: String,
    #[serde(default)]
    display_name: String,
    password: String,
}

/// `POST /api/setup`: the one-time link creates the first admin and signs them in.
pub async fn setup(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body<SetupBody>,
) -> Result<Response, Refusal> {
    let expected = app.setup.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(expected) = expected else {
        return Err(Refusal::new(ErrorCode::SetupDone, "this server is already set up; sign in instead"));
    };
    if auth::hash_token(&body.token) != auth::hash_token(&expected) {
        tracing::warn!("setup attempted with a wrong token");
        return Err(Refusal::new(ErrorCode::BadToken, "this setup link is not valid; use the one the server printed"));
    }
    let record = crate::core::new_account(&body.name, &body.display_name, &body.password, Role::Admin).await?;
    // Take the token before creating the account so that two racing requests cannot both win.
    if app.setup.lock().unwrap_or_else(|e| e.into_inner()).take().is_none() {
        return Err(Refusal::new(ErrorCode::SetupDone, "this server is already set up; sign in instead"));
    }
    let user = match app.hub.create_user(record).await {
        Ok(user) => user,
        Err(e) => {
            *app.setup.lock().unwrap_or_else(|e| e.into_inner()) = Some(expected);
            return Err(e.into());
        }
    };
    tracing::info!(user = user.id.0, "first admin created through the setup link");
    let cookie = start_session(&app, user.id, Origin::of(&headers, peer)).await?;
    let name = user.name.clone();
    let mut response = signed_in(user, cookie);
    add_device_cookie(&app, &mut response, &name);
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginBody {
    name: String,
    password: String,
}

/// The cookie that marks a browser which signed in to an account before (OWASP's device
/// cookie): its failures count against it alone, so others' guessing cannot lock it out.
pub const DEVICE_COOKIE: &str = "hallway_device";
/// A device cookie lasts this long after the sign-in that set it.
const DEVICE_DAYS: u64 = 365;

/// `POST /api/login`
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body<LoginBody>,
) -> Result<Response, Refusal> {
    let name = body.name.trim().to_ascii_lowercase();
    let wrong = || Refusal::new(ErrorCode::BadCredentials, "wrong name or password");
    if !valid_name(&name) {
        // No such account can exist; nothing to throttle or hash.
        return Err(wrong());
    }
    let address = address_key(peer.ip());
    let device = cookie(&headers, DEVICE_COOKIE).and_then(|c| auth::check_device_cookie(&app.device_key, c, &name));
    let Some(turn) = auth::hashing_turn().await else {
        return Err(Refusal::new(ErrorCode::Internal, "the server is shutting down"));
    };
    let attempt = app.throttle.attempt(&name, address, device).map_err(|refused| {
        let retry_after = refused.retry_after();
        let whose = match refused {
            Refused::Name(_) => "for this name",
            Refused::Address(_) => "from your address",
        };
        Refusal::new(ErrorCode::TooManyAttempts, format!("too many failed sign-ins {whose}; try again in {retry_after} s"))
            .retry_after(std::time::Duration::from_secs(retry_after))
    })?;
    let found = app.store.user_by_name(&name)?;
    // Verify against a real hash even for unknown names, so timing does not reveal them.
    let hash = found.as_ref().map_or(DUMMY_HASH.to_string(), |(_, record)| record.password_hash.clone());
    let ok = auth::verify_password_in_turn(turn, body.password, hash).await;
    let Some((id, record)) = found.as_ref().filter(|_| ok).cloned() else {
        app.throttle.failed(&attempt, found.map(|(id, _)| id.0));
        tracing::info!(trusted_device = device.is_some(), "failed sign-in");
        return Err(wrong());
    };
    app.throttle.succeeded(&attempt);
    if record.disabled {
        // Said only to whoever knows the password: others learn nothing of the account.
        tracing::info!(user = id.0, "refused a sign-in: the account is disabled");
        return Err(Refusal::new(ErrorCode::AccountDisabled, "this account is disabled; ask your admin to enable it"));
    }
    let cookie = start_session(&app, id, Origin::of(&headers, peer)).await?;
    tracing::info!(user = id.0, trusted_device = device.is_some(), "signed in");
    let mut response = signed_in(user_info(id, &record), cookie);
    add_device_cookie(&app, &mut response, &name);
    Ok(response)
}

/// A fresh device cookie for `name`, after each sign-in. Sent back only to `/api/login`.
pub(super) fn add_device_cookie(app: &App, response: &mut Response, name: &str) {
    let value = auth::new_device_cookie(&app.device_key, name);
    let max_age = DEVICE_DAYS * 24 * 3600;
    let secure = secure(app);
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api/login; Max-Age={max_age}{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// `GET /api/admin/signin-failures` (admins only): recent lockouts, newest first.
pub async fn signin_failures(State(app): State<App>, session: Session) -> Result<Json<serde_json::Value>, Refusal> {
    if session.role != Role::Admin {
        return Err(Refusal::new(ErrorCode::Forbidden, "only admins see failed sign-ins"));
    }
    Ok(Json(json!({ "lockouts": app.throttle.lockouts() })))
}

/// An argon2id hash of a random password, for constant-time failures on unknown names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Qp2q1nN0l3o3mJXqB7m4b1Gm1nJm3Jx2KcQy2p2v0xw";

/// `POST /api/logout`
pub async fn logout(State(app): State<App>, session: Session) -> Result<Response, Refusal> {
    app.hub.end_sessions(session.user, EndSessions::One(session.token_hash)).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}", secure(&app));
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
