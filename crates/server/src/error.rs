//! Errors as the API shows them: a status and an [`ApiError`] body with a stable code.
//! Messages never contain a secret, a blob, or whether an account exists.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sealpost_proto::ApiError;

use crate::hsm::HsmError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ServerError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ServerError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// A 401 with `code`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
        }
    }

    /// The one answer for any failed login, whatever the reason.
    pub fn login_failed() -> Self {
        Self::unauthorized(
            "login_failed",
            "login failed: wrong user name or password, an expired attempt, or an account \
             locked after too many failed attempts (unlock it with the recovery code or a \
             signed-in device)",
        )
    }

    /// A 429.
    pub fn too_many() -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: "too many requests from this address; wait a moment".into(),
        }
    }

    /// A 503: the server cannot work safely now and fails closed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }

    /// A 500 whose details go to the log, not to the client.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(context, error = %err, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error".into(),
        }
    }
}

impl From<HsmError> for ServerError {
    fn from(e: HsmError) -> Self {
        match e {
            HsmError::Unavailable(detail) => {
                tracing::error!(%detail, "HSM unavailable: failing closed");
                Self::unavailable("the key service is unavailable; try again later")
            }
            HsmError::Integrity | HsmError::UnknownKey(_) | HsmError::Malformed(_) => {
                Self::internal("hsm", e)
            }
            HsmError::Config(_) => Self::internal("hsm config", e),
        }
    }
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AccountExists => Self {
                status: StatusCode::CONFLICT,
                code: "account_exists",
                message: "this user name is taken".into(),
            },
            StoreError::NoAccount => Self::unauthorized("no_account", "no such account"),
            StoreError::VersionConflict { current } => Self {
                status: StatusCode::CONFLICT,
                code: "version_conflict",
                message: format!("the settings changed elsewhere; now at version {current}"),
            },
            StoreError::Backend(detail) => {
                tracing::error!(%detail, "store failed");
                Self::unavailable("the store is unavailable; try again later")
            }
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_owned(),
            message: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
