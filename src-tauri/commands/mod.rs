//! Tauri commands: thin adapters between the UI and the core's API
//! ([`sealpost_core::api`]).
//!
//! Each command takes its inputs, makes one call on the [`Core`] (or opens a dialog,
//! which only the shell can show) and returns a view or an [`AppError`]. Every command is
//! named once, in `commands/list.rs`; from there come the handler, the ACL, the window's
//! capability, the isolation allow-list and the UI's TypeScript bindings.
//!
//! Nothing secret is returned, with one exception the product needs: the recovery code,
//! once. Passwords come in and go straight into `Password` values, which wipe themselves.

pub mod account;
pub mod app;
pub mod compose;
pub mod keys;
pub mod mail;

use sealpost_core::api::Password;

use crate::error::AppError;

/// A password from the UI, as a value that wipes itself.
fn password(text: String) -> Result<Password, AppError> {
    let text = zeroize::Zeroizing::new(text);
    Password::new(&text).map_err(|e| AppError::new("bad_password", e.to_string()))
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

/// Asks for files to open (the OS's dialog); empty if cancelled.
fn pick_paths<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    title: &str,
) -> Result<Vec<std::path::PathBuf>, AppError> {
    use tauri_plugin_dialog::DialogExt;
    app.dialog()
        .file()
        .set_title(title)
        .blocking_pick_files()
        .unwrap_or_default()
        .into_iter()
        .map(local_path)
        .collect()
}

/// A path the dialog gave, as a local file path.
fn local_path(file: tauri_plugin_dialog::FilePath) -> Result<std::path::PathBuf, AppError> {
    file.into_path()
        .map_err(|e| AppError::bad_request(e.to_string()))
}
