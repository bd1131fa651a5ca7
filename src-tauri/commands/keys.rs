//! The own OpenPGP key: show, export, import, publish.

use sealpost_core::session::{MyKey, Session};
use tauri::Runtime;
use tauri_plugin_dialog::DialogExt;

use crate::error::AppError;

/// The own key, if any.
#[tauri::command]
pub async fn my_key(session: tauri::State<'_, Session>) -> Result<Option<MyKey>, AppError> {
    Ok(session.my_key().await?)
}

/// The own public key, armored (public: safe to show and copy).
#[tauri::command]
pub async fn export_public_key(session: tauri::State<'_, Session>) -> Result<String, AppError> {
    Ok(session.export_public_key().await?)
}

/// Imports an own key from a file the user picks; `None` if cancelled.
#[tauri::command]
pub async fn import_key<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
    passphrase: String,
) -> Result<Option<MyKey>, AppError> {
    let passphrase = zeroize::Zeroizing::new(passphrase);
    // No dialog for a locked profile: its answer could not be used.
    session.require_unlocked().await?;
    let Some(file) = app
        .dialog()
        .file()
        .set_title("Import an OpenPGP secret key")
        .blocking_pick_file()
    else {
        return Ok(None);
    };
    let path = super::local_path(file)?;
    let passphrase =
        (!passphrase.is_empty()).then(|| sealpost_pgp::Passphrase::new(passphrase.to_string()));
    Ok(Some(session.import_key(path, passphrase).await?))
}

/// Publishes the own key for `address` in the key directory (a proof mail follows).
#[tauri::command]
pub async fn publish_key(
    session: tauri::State<'_, Session>,
    address: String,
) -> Result<(), AppError> {
    Ok(session.publish_key(address).await?)
}
