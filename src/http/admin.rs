//! The admin page's account endpoints (`/api/admin/users...`): the list, disable, enable,
//! role and password reset; and the records policy (`/api/admin/records`). Each handler
//! takes an `Admin` (403 for anyone else) and hands the change to the core, which checks it
//! again (it keeps the last admin, and a policy the configuration set).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Admin;
use super::{App, Body};
use crate::core::{AccountChange, By, new_password_hash};
use crate::model::{Role, UserId};
use crate::protocol::{ErrorCode, Refusal};

fn user_id(id: Result<Path<u64>, PathRejection>) -> Result<UserId, Refusal> {
    id.map(|Path(id)| UserId(id)).map_err(|_| Refusal::new(ErrorCode::BadRequest, "a user id is a number"))
}

/// `GET /api/admin/users`: every account with its role, tabs open and when last seen.
pub async fn users(State(app): State<App>, _admin: Admin) -> Json<Value> {
    let session_idle_days = app.session_idle.as_secs() / (24 * 3600);
    Json(json!({ "users": app.hub.accounts().await, "session_idle_days": session_idle_days }))
}

async fn change(app: &App, admin: &Admin, id: UserId, change: AccountChange) -> Result<Json<Value>, Refusal> {
    let user = app.hub.change_account(By::User(admin.0.user), id, change).await?;
    Ok(Json(json!({ "user": user })))
}

/// `POST /api/admin/users/{id}/disable`
pub async fn disable(State(app): State<App>, admin: Admin, id: Result<Path<u64>, PathRejection>) -> Result<Json<Value>, Refusal> {
    change(&app, &admin, user_id(id)?, AccountChange::Disable).await
}

/// `POST /api/admin/users/{id}/enable`
pub async fn enable(State(app): State<App>, admin: Admin, id: Result<Path<u64>, PathRejection>) -> Result<Json<Value>, Refusal> {
    change(&app, &admin, user_id(id)?, AccountChange::Enable).await
}

#[derive(Deserialize)]
pub struct RoleBody {
    role: Role,
}

/// `POST /api/admin/users/{id}/role`
pub async fn role(
    State(app): State<App>,
    admin: Admin,
    id: Result<Path<u64>, PathRejection>,
    Body(body): Body<RoleBody>,
) -> Result<Json<Value>, Refusal> {
    change(&app, &admin, user_id(id)?, AccountChange::Role(body.role)).await
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

/// `POST /api/admin/users/{id}/password`: a new password, set by an admin; every session of
/// the account ends.
pub async fn password(
    State(app): State<App>,
    admin: Admin,
    id: Result<Path<u64>, PathRejection>,
    Body(body): Body<PasswordBody>,
) -> Result<Json<Value>, Refusal> {
    let id = user_id(id)?;
    let hash = new_password_hash(&body.password).await?;
    change(&app, &admin, id, AccountChange::Password { hash, keep: None }).await
}

/// `GET /api/admin/records`: the records policy in effect, and whether the configuration
/// set it (`fixed`: then this page cannot change it).
pub async fn records(State(app): State<App>, _admin: Admin) -> Json<Value> {
    Json(json!({ "records": app.hub.policy().await.to_json() }))
}

#[derive(Deserialize)]
pub struct PolicyBody {
    policy: String,
    #[serde(default)]
    days: Option<u32>,
}

/// `POST /api/admin/records` `{"policy": "off" | "keep" | "retain" | "archive", "days": N}`:
/// a new records policy, answered once it is on disk.
pub async fn set_records(State(app): State<App>, admin: Admin, Body(body): Body<PolicyBody>) -> Result<Json<Value>, Refusal> {
    let text = match (body.policy.as_str(), body.days) {
        ("retain", Some(days)) => format!("retain:{days}"),
        ("retain", None) => return Err(Refusal::new(ErrorCode::BadRequest, "say how many `days` to retain")),
        (other, _) => other.to_string(),
    };
    let policy = text.parse().map_err(|e: String| Refusal::new(ErrorCode::BadRequest, e))?;
    app.hub.set_policy(admin.0.user, policy).await?;
    Ok(Json(json!({ "records": app.hub.policy().await.to_json() })))
}
