//! The own OpenPGP key: show, export, import, publish.

use crate::AppRuntime;
use sealpost_core::Core;
use sealpost_core::api::{MyKey, PublishPending};

use crate::error::AppError;

/// The own key, if there is one.
#[tauri::command]
#[specta::specta]
pub async fn my_key(core: tauri::State<'_, Core>) -> Result<Option<MyKey>, AppError> {
    Ok(core.keys().mine().await?)
}

/// The own public key, armored.
#[tauri::command]
#[specta::specta]
pub async fn export_public_key(core: tauri::State<'_, Core>) -> Result<String, AppError> {
    Ok(core.keys().export_public().await?)
}

/// Imports an own key from a file picked in a dialog (a GnuPG export, say), protected by
/// `passphrase` when it is not empty; `None` if the user cancelled.
#[tauri::command]
#[specta::specta]
pub async fn import_key(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
    passphrase: String,
) -> Result<Option<MyKey>, AppError> {
    core.profile().require_unlocked().await?;
    let Some(path) = super::pick_paths(&app, "Import a secret key")?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let data = zeroize::Zeroizing::new(
        std::fs::read(&path)
            .map_err(|e| AppError::new("io", format!("cannot read {}: {e}", path.display())))?,
    );
    let passphrase =
        (!passphrase.is_empty()).then(|| sealpost_core::api::Passphrase::new(passphrase));
    Ok(Some(core.keys().import(data, passphrase, true).await?))
}

/// Asks the key directory to publish the own key for `address` (a proof mail follows,
/// which the app confirms by itself).
#[tauri::command]
#[specta::specta]
pub async fn publish_key(
    core: tauri::State<'_, Core>,
    address: String,
) -> Result<PublishPending, AppError> {
    Ok(core.keys().publish(address).await?)
}
