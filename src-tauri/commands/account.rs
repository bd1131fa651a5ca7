//! The profile and the account on the sync server: onboarding, unlock, devices.

use crate::AppRuntime;
use sealpost_core::Core;
use sealpost_core::api::{self, Created, DeviceView, PasswordCheck, SessionInfo, Status};

use super::password;
use crate::error::AppError;

/// Which screen to show at start.
#[tauri::command]
#[specta::specta]
pub async fn status(core: tauri::State<'_, Core>) -> Result<Status, AppError> {
    Ok(core.status().await?)
}

/// Judges a password exactly as account creation will (the user name counts as a
/// guessable word), for the live strength meter.
#[tauri::command]
#[specta::specta]
pub fn check_password(password: String, user: String) -> Result<PasswordCheck, AppError> {
    Ok(api::check_password(&super::password(password)?, &[&user]))
}

/// Creates the account; returns the recovery code to show once.
#[tauri::command]
#[specta::specta]
pub async fn create_account(
    core: tauri::State<'_, Core>,
    user: String,
    password: String,
) -> Result<Created, AppError> {
    Ok(core
        .account()
        .create(user, super::password(password)?)
        .await?)
}

/// Saves the recovery kit through a save dialog; `false` if the user cancelled.
#[tauri::command]
#[specta::specta]
pub async fn save_recovery_kit(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
) -> Result<bool, AppError> {
    let kit = core.profile().recovery_kit().await?;
    let Some(path) = super::save_path(&app, "Save the recovery kit", "sealpost-recovery-kit.txt")?
    else {
        return Ok(false);
    };
    std::fs::write(&path, kit.as_bytes())
        .map_err(|e| AppError::new("io", format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

/// The user confirmed the recovery code is saved: it leaves memory.
#[tauri::command]
#[specta::specta]
pub async fn forget_recovery_code(core: tauri::State<'_, Core>) -> Result<(), AppError> {
    Ok(core.profile().forget_recovery_code().await?)
}

/// Signs in with the account's name and password (a new device gets everything).
#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    core: tauri::State<'_, Core>,
    user: String,
    password: String,
) -> Result<SessionInfo, AppError> {
    Ok(core
        .account()
        .sign_in(user, super::password(password)?)
        .await?)
}

/// Unlocks the profile on this device.
#[tauri::command]
#[specta::specta]
pub async fn unlock(
    core: tauri::State<'_, Core>,
    password: String,
) -> Result<SessionInfo, AppError> {
    Ok(core.profile().unlock(super::password(password)?).await?)
}

/// Locks now.
#[tauri::command]
#[specta::specta]
pub async fn lock(core: tauri::State<'_, Core>) -> Result<(), AppError> {
    Ok(core.profile().lock().await?)
}

/// Changes the password, on the server and here.
#[tauri::command]
#[specta::specta]
pub async fn change_password(
    core: tauri::State<'_, Core>,
    current: String,
    next: String,
) -> Result<(), AppError> {
    Ok(core
        .profile()
        .change_password(password(current)?, password(next)?)
        .await?)
}

/// Makes a new recovery code (the password is checked by a fresh sign-in); returns it
/// to show once. The old code stops working; `save_recovery_kit` saves the new one.
#[tauri::command]
#[specta::specta]
pub async fn new_recovery_code(
    core: tauri::State<'_, Core>,
    password: String,
) -> Result<String, AppError> {
    let code = core
        .profile()
        .new_recovery_code(super::password(password)?)
        .await?;
    Ok(code.to_string())
}

/// The account's devices.
#[tauri::command]
#[specta::specta]
pub async fn devices(core: tauri::State<'_, Core>) -> Result<Vec<DeviceView>, AppError> {
    Ok(core.account().devices().await?)
}

/// Revokes a device.
#[tauri::command]
#[specta::specta]
pub async fn revoke_device(core: tauri::State<'_, Core>, id: String) -> Result<(), AppError> {
    Ok(core.account().revoke_device(id).await?)
}
