//! Accounts as the core takes them: the rules a new account must meet, checked in one place
//! for the web client, the REST API and the command line alike.

use super::HubError;
use crate::auth::{self, MIN_PASSWORD};
use crate::model::{Role, now_millis, valid_name};
use crate::protocol::{ErrorCode, Refusal};
use crate::store::records::UserRecord;

/// Validates a new account and hashes its password (off the async threads); the record is
/// then created with `Hub::create_user`.
pub async fn new_account(name: &str, display_name: &str, password: &str, role: Role) -> Result<UserRecord, HubError> {
    let name = name.trim().to_string();
    if !valid_name(&name) {
        return Err(HubError::Refused(Refusal::new(
            ErrorCode::BadRequest,
            "a name is 1-32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        )));
    }
    let display_name = match display_name.trim() {
        "" => name.clone(),
        other => other.chars().take(64).collect(),
    };
    let password_hash = new_password_hash(password).await?;
    Ok(UserRecord { name, display_name, password_hash, role, created: now_millis(), disabled: false, last_seen: None })
}

/// Checks a new password against the rules and hashes it (off the async threads).
pub async fn new_password_hash(password: &str) -> Result<String, HubError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(HubError::Refused(Refusal::new(
            ErrorCode::BadRequest,
            format!("a password needs at least {MIN_PASSWORD} characters"),
        )));
    }
    auth::hash_password_async(password.to_string())
        .await
        .map_err(|e| HubError::Refused(Refusal::new(ErrorCode::Internal, format!("hashing the password failed: {e}"))))
}
