//! Sign-up: the page's question (may I sign up, with this invite?), signing up, and the
//! admins' side: the mode and the invite links, each shown once as a link and a QR code.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use tokio::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Admin, Origin, add_device_cookie, signed_in, start_session};
use super::serve::address_key;
use super::{App, Body};
use crate::auth;
use crate::core::{SignupMode, SignupWith, new_account};
use crate::limits::{Bucket, Rate};
use crate::model::Role;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::records::InviteRecord;

/// Invite links last a week unless the admin says otherwise; a year at most.
const DEFAULT_INVITE_HOURS: u64 = 7 * 24;
const MAX_INVITE_HOURS: u64 = 365 * 24;
const MAX_INVITE_USES: u32 = 1000;

/// Whether `ip` is on this network rather than reached from the internet: loopback,
/// private IPv4 ranges, link-local, carrier-grade NAT, IPv6 unique-local. A server the admin
/// put behind a port forward does not become open to the world.
pub fn on_local_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => on_local_network(IpAddr::V4(v4)),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// Accounts one address may create by open sign-up: a whole office's first morning from
/// behind one address passes, a script making thousands of accounts does not.
const OPEN_SIGNUPS: Rate = Rate::per_hour(30.0, 30.0);
/// Addresses remembered at most; past it, those whose budget is whole again are forgotten.
const OPEN_SIGNUP_ADDRESSES: usize = 10_000;

/// The budget of open sign-ups per address (an IPv6 /64). Invite links have their own count.
#[derive(Default)]
pub struct OpenBudget(std::sync::Mutex<HashMap<IpAddr, Bucket>>);

impl OpenBudget {
    fn take(&self, ip: IpAddr) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut buckets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= OPEN_SIGNUP_ADDRESSES {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let bucket = buckets.entry(address_key(ip)).or_insert_with(|| Bucket::new(OPEN_SIGNUPS, now));
        bucket.take(1.0, now).map_err(|wait| {
            Refusal::new(ErrorCode::RateLimited, "too many accounts signed up from your address; try again later")
                .retry_after(wait)
        })
    }
}

fn with(invite: Option<&str>, peer: SocketAddr) -> SignupWith {
    match invite.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => SignupWith::Invite(auth::hash_token(token)),
        None => SignupWith::Open { lan: on_local_network(peer.ip()) },
    }
}

#[derive(Deserialize)]
pub struct SignupQuery {
    invite: Option<String>,
}

/// `GET /api/signup?invite=TOKEN`: whether this sign-up would be taken, and as which role.
pub async fn may_sign_up(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<SignupQuery>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let Query(query) = query?;
    let (mode, _) = app.hub.signup().await;
    Ok(Json(match app.hub.may_sign_up(with(query.invite.as_deref(), peer)).await {
        Ok((role, expires)) => json!({ "mode": mode, "allowed": true, "role": role, "expires": expires }),
        Err(refusal) => json!({ "mode": mode, "allowed": false, "code": refusal.code, "message": refusal.message }),
    }))
}

#[derive(Deserialize)]
pub struct SignupBody {
    #[serde(default)]
    invite: Option<String>,
    name: String,
    #[serde(default)]
    display_name: String,
    password: String,
}

/// `POST /api/signup`: creates the account and signs it in.
pub async fn sign_up(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(body): Body<SignupBody>,
) -> Result<Response, Refusal> {
    let how = with(body.invite.as_deref(), peer);
    // Asked first so that a closed server or a dead link costs no password hash.
    app.hub.may_sign_up(how).await?;
    if let SignupWith::Open { .. } = how {
        app.open_signups.take(peer.ip())?;
    }
    let name = body.name.trim().to_ascii_lowercase();
    // The role is the invite's; the core sets it.
    let record = new_account(&name, &body.display_name, &body.password, Role::Member).await?;
    let user = app.hub.sign_up(how, record).await?;
    tracing::info!(user = user.id.0, invited = matches!(how, SignupWith::Invite(_)), "signed up");
    let cookie = start_session(&app, user.id, Origin::of(&headers, peer)).await?;
    let name = user.name.clone();
    let mut response = signed_in(user, cookie);
    add_device_cookie(&app, &mut response, &name);
    Ok(response)
}

/// `GET /api/admin/signup`: the mode and every invite link.
pub async fn signup_settings(State(app): State<App>, _admin: Admin) -> Json<Value> {
    let (mode, invites) = app.hub.signup().await;
    Json(json!({ "mode": mode, "invites": invites }))
}

#[derive(Deserialize)]
pub struct ModeBody {
    mode: SignupMode,
}

/// `POST /api/admin/signup`: sets the mode.
pub async fn set_mode(State(app): State<App>, admin: Admin, Body(body): Body<ModeBody>) -> Result<Json<Value>, Refusal> {
    app.hub.set_signup(admin.0.user, body.mode).await?;
    Ok(Json(json!({ "mode": body.mode })))
}

#[derive(Deserialize)]
pub struct InviteBody {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    uses: Option<u32>,
    #[serde(default)]
    expires_in_hours: Option<u64>,
}

/// `POST /api/admin/invites`: a new invite link, answered with its link and QR code (the
/// only time the token is told: only its hash is kept).
pub async fn create_invite(
    State(app): State<App>,
    admin: Admin,
    headers: HeaderMap,
    Body(body): Body<InviteBody>,
) -> Result<impl IntoResponse, Refusal> {
    let uses = body.uses.unwrap_or(1);
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_INVITE_HOURS);
    if !(1..=MAX_INVITE_USES).contains(&uses) || !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("an invite link is for 1-{MAX_INVITE_USES} uses and lasts 1-{MAX_INVITE_HOURS} hours"),
        ));
    }
    // The link names the server as the admin's browser reached it, which colleagues reach too.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty() && !h.contains(['/', ' ']));
    let Some(host) = host else {
        return Err(Refusal::new(ErrorCode::BadRequest, "a Host header is needed to write the link"));
    };
    let (token, hash) = auth::new_token();
    let now = app.clock.now();
    let record = InviteRecord {
        created_by: admin.0.user,
        created: now,
        expires: now + hours * 3600 * 1000,
        max_uses: uses,
        uses: 0,
        role: body.role.unwrap_or(Role::Member),
    };
    let invite = app.hub.create_invite(admin.0.user, hash, record).await?;
    // After `#`: browsers never send it, so the token reaches no proxy's or server's log.
    let link = format!("http://{host}/signup#{token}");
    let qr = qrcode::QrCode::new(link.as_bytes())
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("could not draw the QR code: {e}")))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build();
    Ok((StatusCode::CREATED, Json(json!({ "invite": invite, "link": link, "qr_svg": qr }))))
}

/// `POST /api/admin/invites/{id}/revoke`
pub async fn revoke_invite(State(app): State<App>, admin: Admin, Path(id): Path<String>) -> Result<Json<Value>, Refusal> {
    app.hub.revoke_invite(admin.0.user, id).await?;
    Ok(Json(json!({ "revoked": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_office_network_is_told_from_the_internet() {
        let local = [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.5",
            "192.168.1.9",
            "169.254.3.4",
            "100.70.0.1",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:192.168.0.2",
        ];
        let far = ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "::ffff:1.1.1.1"];
        for ip in local {
            assert!(on_local_network(ip.parse().unwrap()), "{ip} is on the office network");
        }
        for ip in far {
            assert!(!on_local_network(ip.parse().unwrap()), "{ip} is not");
        }
    }
}
