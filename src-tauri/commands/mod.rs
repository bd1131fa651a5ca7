//! Tauri commands: thin adapters between the UI and plain Rust.
//!
//! Each command takes its inputs, makes one call and maps the result to a `camelCase` DTO
//! or an [`AppError`]. A new command must also be listed in `src-tauri/build.rs`
//! (`COMMANDS`), registered in [`crate::builder`] and granted in `capabilities/`.

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
pub fn app_info(sync: tauri::State<'_, crate::SyncServer>) -> Result<AppInfo, AppError> {
    Ok(AppInfo {
        name: APP_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sync_server: sync.url.clone(),
    })
}
