//! The one error shape the UI sees: `{ "code": "...", "message": "..." }`.
//!
//! Commands return `Result<T, AppError>`; Tauri serialises the error and the UI's
//! `backend.ts` turns it into a `BackendError`. `code` is stable and meant for program
//! logic; `message` is for people and may change.

use serde::Serialize;

/// Stable, machine-readable error codes, serialised in kebab-case (`"internal"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// A fault inside the shell that the user cannot fix.
    Internal,
}

/// An error returned by a command, serialised for the UI as `{ code, message }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    code: ErrorCode,
    message: String,
}

impl AppError {
    /// An error with the given code and human-readable message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The stable code the UI branches on.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<tauri::Error> for AppError {
    fn from(err: tauri::Error) -> Self {
        Self::new(ErrorCode::Internal, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_code_and_message() {
        let err = AppError::new(ErrorCode::Internal, "boom");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({ "code": "internal", "message": "boom" })
        );
        assert_eq!(err.to_string(), "boom");
    }
}
