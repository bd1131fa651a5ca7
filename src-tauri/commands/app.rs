//! The app itself: what it is, and links opened in the system browser.

use crate::AppRuntime;
use sealpost_core::Core;
use serde::Serialize;
use tauri_plugin_opener::OpenerExt;

use crate::error::AppError;

/// Product name shown by the UI.
pub const APP_NAME: &str = "Sealpost";

/// What the UI shows about the running app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
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
#[specta::specta]
pub fn app_info(core: tauri::State<'_, Core>) -> Result<AppInfo, AppError> {
    Ok(AppInfo {
        name: APP_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        sync_server: core.server_url(),
    })
}

/// Opens an `http(s)` link in the system browser (the UI asked the user first). Never
/// in an app window.
#[tauri::command]
#[specta::specta]
pub async fn open_link(app: tauri::AppHandle<AppRuntime>, url: String) -> Result<(), AppError> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|_| AppError::bad_request("that is not a link Sealpost can open"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AppError::bad_request(
            "only web links (http, https) open in the browser",
        ));
    }
    app.opener()
        .open_url(parsed.as_str(), None::<&str>)
        .map_err(|e| AppError::new("io", format!("the browser could not be started: {e}")))
}
