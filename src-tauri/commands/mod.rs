//! Tauri commands: thin adapters between the UI and `sealpost_core::session`.
//!
//! Each command takes its inputs, makes one call on the [`Session`] (or a dialog, which
//! only the shell can show) and maps the result to a `camelCase` DTO or an [`AppError`].
//! A new command must also be listed in `src-tauri/build.rs` (`COMMANDS`), registered in
//! [`crate::builder`] and granted in `capabilities/`; `ui/src/backend.ts` names it.
//!
//! Nothing secret is returned, with one exception the product needs: the recovery code,
//! once, from `create_account`. Passwords come in and go straight into `Password`
//! values, which wipe themselves.

pub mod account;
pub mod compose;
pub mod keys;
pub mod mail;

use sealpost_core::session::Session;
use serde::Serialize;

use crate::error::AppError;

/// Product name shown by the UI.
pub const APP_NAME: &str = "Sealpost";

/// What the UI shows about the running app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Product name, `"Sealpost"`.
    pub name: String,
    /// Version of the app package (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The sync server's URL.
    pub sync_server: String,
}

/// Returns the product name and version of the running app.
#[tauri::command]
pub fn app_info(session: tauri::State<'_, Session>) -> Result<AppInfo, AppError> {
    Ok(AppInfo {
        name: APP_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sync_server: session.server_url().to_owned(),
    })
}

/// A password from the UI, as a value that wipes itself.
fn password(text: String) -> Result<sealpost_crypto::Password, AppError> {
    let text = zeroize::Zeroizing::new(text);
    sealpost_crypto::Password::new(&text).map_err(|e| AppError::new("bad_password", e.to_string()))
}

/// Asks where to save a file (the OS's dialog, opened by Rust only); `None` if cancelled.
fn save_path<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    title: &str,
    file_name: &str,
) -> Result<Option<std::path::PathBuf>, AppError> {
    use tauri_plugin_dialog::DialogExt;
    app.dialog()
        .file()
        .set_title(title)
        .set_file_name(file_name)
        .blocking_save_file()
        .map(local_path)
        .transpose()
}

/// A path the dialog gave, as a local file path.
fn local_path(file: tauri_plugin_dialog::FilePath) -> Result<std::path::PathBuf, AppError> {
    file.into_path()
        .map_err(|e| AppError::bad_request(e.to_string()))
}
