//! How a `Refusal` (the one error shape, `protocol.rs`) answers an HTTP request: mapped once
//! to a status and the protocol's `{"code", "message"}` body. The cause of internal errors is
//! logged, never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::HubError;
use crate::protocol::{ErrorCode, Refusal};
use crate::store::StoreError;

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadJson | ErrorCode::BadRequest | ErrorCode::UnknownType => StatusCode::BAD_REQUEST,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized | ErrorCode::BadCredentials => StatusCode::UNAUTHORIZED,
        ErrorCode::TooManyAttempts | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Forbidden
        | ErrorCode::AdminsOnly
        | ErrorCode::BadOrigin
        | ErrorCode::BadToken
        | ErrorCode::AccountDisabled => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::NameTaken | ErrorCode::LastAdmin => StatusCode::CONFLICT,
        ErrorCode::SetupDone => StatusCode::GONE,
        ErrorCode::Storage => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // HTTP's Retry-After counts whole seconds: round up, so a client never comes back early.
        let retry_after = self.retry_after.map(|wait| wait.as_secs_f64().ceil() as u64);
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(seconds) = retry_after {
            body["retry_after"] = json!(seconds);
        }
        let mut response = (status_of(self.code), Json(body)).into_response();
        if let Some(seconds) = retry_after
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// A query string that does not fit the endpoint's parameters.
impl From<axum::extract::rejection::QueryRejection> for Refusal {
    fn from(e: axum::extract::rejection::QueryRejection) -> Refusal {
        Refusal::new(ErrorCode::BadRequest, e.body_text())
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        tracing::error!(error = %e, "storage error");
        Refusal::new(ErrorCode::Storage, "the server could not read or save its data; try again later")
    }
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Refusal {
        match e {
            HubError::Refused(refusal) => refusal,
            HubError::Storage(e) => {
                tracing::error!(error = %e, "storage error");
                Refusal::new(ErrorCode::Storage, "the server could not save this; try again later")
            }
            HubError::Gone => Refusal::new(ErrorCode::Internal, "the server is shutting down"),
        }
    }
}
