//! How the server says no: the error codes of the wire protocol and `Refusal`, the one shape
//! of a refused request everywhere in the server.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    BadRequest,
    TooLarge,
    Unauthorized,
    BadCredentials,
    TooManyAttempts,
    RateLimited,
    Forbidden,
    /// Only admins post in an announcements room.
    AdminsOnly,
    BadOrigin,
    NotFound,
    NameTaken,
    /// The change would leave the server without an admin who can sign in.
    LastAdmin,
    /// The account was disabled by an admin; told only with its right password.
    AccountDisabled,
    SetupDone,
    BadToken,
    Storage,
    Internal,
}

/// A request refused, in the one shape every part of the server uses: the core, the HTTP
/// endpoints and the session each say no with a code and a message for the person (and, when
/// trying again later helps, how long to wait). The session sends it as an `error` frame
/// (`ServerFrame::refused`); HTTP as a status and the same JSON body (`http/error.rs`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<std::time::Duration>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into(), retry_after: None }
    }

    /// Refused for now: the same request may succeed after `wait`.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Refusal {
        self.retry_after = Some(wait);
        self
    }

    pub fn unauthorized() -> Refusal {
        Refusal::new(ErrorCode::Unauthorized, "sign in first")
    }

    /// What a conversation that does not exist and one the asker may not see both get, so
    /// that nobody learns which private conversations exist.
    pub fn not_found() -> Refusal {
        Refusal::new(ErrorCode::NotFound, "no such conversation")
    }
}
