//! What every signed-in person does for themselves (`/api/me/...`): change their password
//! (knowing the current one), list their signed-in sessions and end any of them.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Session;
use super::serve::address_key;
use super::{App, Body};
use crate::auth;
use crate::core::{AccountChange, By, EndSessions, new_password_hash};
use crate::protocol::{ErrorCode, Refusal};

/// A session's id on the wire: the first 8 bytes of its token's hash, in hex. Enough to tell
/// one's own sessions apart; it lets nobody sign in.
fn session_id(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /api/me/sessions`: the person's signed-in browsers, the one asking first.
pub async fn sessions(State(app): State<App>, session: Session) -> Result<Json<Value>, Refusal> {
    let mut list = app.store.sessions_of(session.user)?;
    list.sort_by_key(|(hash, s)| (*hash != session.token_hash, std::cmp::Reverse(s.last_used.max(s.created))));
    let sessions: Vec<Value> = list
        .iter()
        .map(|(hash, s)| {
            json!({
                "id": session_id(hash),
                "current": *hash == session.token_hash,
                "device": s.device,
                "address": s.address,
                "created": s.created,
                "last_used": s.last_used.max(s.created),
            })
        })
        .collect();
    let idle_days = app.session_idle.as_secs() / (24 * 3600);
    Ok(Json(json!({ "sessions": sessions, "idle_days": idle_days })))
}

/// `POST /api/me/sessions/{id}/sign-out`: ends one of the person's own sessions.
pub async fn sign_out_one(State(app): State<App>, session: Session, Path(id): Path<String>) -> Result<Json<Value>, Refusal> {
    let list = app.store.sessions_of(session.user)?;
    let Some((hash, _)) = list.iter().find(|(hash, _)| session_id(hash) == id) else {
        return Err(Refusal::new(ErrorCode::NotFound, "no such session (it may have ended already)"));
    };
    app.hub.end_sessions(session.user, EndSessions::One(*hash)).await?;
    Ok(Json(json!({ "ended": 1 })))
}

/// `POST /api/me/sessions/sign-out-others`: ends every session of the person but this one.
pub async fn sign_out_others(State(app): State<App>, session: Session) -> Result<Json<Value>, Refusal> {
    let others = app.store.sessions_of(session.user)?.len().saturating_sub(1);
    app.hub.end_sessions(session.user, EndSessions::AllBut(session.token_hash)).await?;
    Ok(Json(json!({ "ended": others })))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    current: String,
    password: String,
}

/// `POST /api/me/password`: a new password, given the current one. The person's other
/// sessions end; this one goes on.
pub async fn password(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Body(body): Body<PasswordBody>,
) -> Result<Json<Value>, Refusal> {
    let record = app.store.user(session.user)?.ok_or_else(Refusal::unauthorized)?;
    let Some(turn) = auth::hashing_turn().await else {
        return Err(Refusal::new(ErrorCode::Internal, "the server is shutting down"));
    };
    // Counted like sign-ins: a stolen session must not become a way to guess the password.
    let attempt = app.throttle.attempt(&record.name, address_key(peer.ip()), None).map_err(|refused| {
        let wait = refused.retry_after();
        Refusal::new(ErrorCode::TooManyAttempts, format!("too many wrong passwords; try again in {wait} s"))
            .retry_after(std::time::Duration::from_secs(wait))
    })?;
    if !auth::verify_password_in_turn(turn, body.current, record.password_hash.clone()).await {
        app.throttle.failed(&attempt, Some(session.user.0));
        return Err(Refusal::new(ErrorCode::BadCredentials, "your current password is not that"));
    }
    app.throttle.succeeded(&attempt);
    let hash = new_password_hash(&body.password).await?;
    let change = AccountChange::Password { hash, keep: Some(session.token_hash) };
    let user = app.hub.change_account(By::User(session.user), session.user, change).await?;
    Ok(Json(json!({ "user": user })))
}
