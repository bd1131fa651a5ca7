//! The one error shape the UI sees: `{ "code": "...", "message": "..." }`.
//!
//! Commands return `Result<T, AppError>`; Tauri serialises the error and the UI's
//! `backend.ts` turns it into a `BackendError`. `code` is stable and meant for program
//! logic (the core's codes, `snake_case`: `wrong_password`, `weak_password`, `locked`,
//! …); `message` is for people, in the core's words (one place for them: `CoreError`).

use sealpost_core::CoreError;
use serde::Serialize;

/// Codes the shell itself uses, beside the core's.
pub mod code {
    /// A fault inside the shell that the user cannot fix.
    pub const INTERNAL: &str = "internal";
    /// The request itself is malformed (a bad flag name, an empty field).
    pub const BAD_REQUEST: &str = "bad_request";
}

/// An error returned by a command, serialised for the UI as `{ code, message }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    code: &'static str,
    message: String,
}

impl AppError {
    /// An error with the given code and human-readable message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(code::BAD_REQUEST, message)
    }

    /// The stable code the UI branches on.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<tauri::Error> for AppError {
    fn from(err: tauri::Error) -> Self {
        Self::new(code::INTERNAL, err.to_string())
    }
}

impl From<CoreError> for AppError {
    fn from(err: CoreError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_code_and_message() {
        let err = AppError::new(code::INTERNAL, "boom");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({ "code": "internal", "message": "boom" })
        );
        assert_eq!(err.to_string(), "boom");
    }

    #[test]
    fn core_errors_keep_their_code_and_words() {
        let err = AppError::from(CoreError::WrongPassword);
        assert_eq!(err.code(), "wrong_password");
        assert_eq!(err.to_string(), CoreError::WrongPassword.to_string());
        assert_eq!(AppError::from(CoreError::Locked).code(), "locked");
    }
}
