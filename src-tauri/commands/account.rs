//! The profile and the account on the sync server: onboarding, unlock, devices.

use sealpost_core::session::{Created, Session, SessionInfo, Status};
use serde::Serialize;
use tauri::Runtime;

use super::password;
use crate::error::AppError;

/// Which screen to show at start.
#[tauri::command]
pub async fn status(session: tauri::State<'_, Session>) -> Result<Status, AppError> {
    Ok(session.status().await?)
}

/// The gate's verdict on a password, for the live strength meter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCheck {
    /// Whether the password may be used.
    pub accepted: bool,
    /// zxcvbn's score, 0–4.
    pub score: u8,
    /// Time to crack at our key-derivation settings, in words.
    pub crack_time: String,
    /// What is wrong, when zxcvbn recognised a pattern.
    pub warning: Option<String>,
    /// How to do better.
    pub suggestions: Vec<String>,
}

/// Judges a password exactly as account creation will (the user name counts as a
/// guessable word).
#[tauri::command]
pub fn check_password(password: String, user: String) -> Result<PasswordCheck, AppError> {
    let password = super::password(password)?;
    let verdict = sealpost_core::vault::judge_password(&password, &user);
    Ok(PasswordCheck {
        accepted: verdict.accepted,
        score: verdict.score,
        crack_time: verdict.crack_time,
        warning: verdict.warning,
        suggestions: verdict.suggestions,
    })
}

/// Creates the account; returns the recovery code to show once.
#[tauri::command]
pub async fn create_account(
    session: tauri::State<'_, Session>,
    user: String,
    password: String,
) -> Result<Created, AppError> {
    Ok(session
        .create_account(user, super::password(password)?)
        .await?)
}

/// Saves the recovery kit through a save dialog; `false` if the user cancelled.
#[tauri::command]
pub async fn save_recovery_kit<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
) -> Result<bool, AppError> {
    let kit = session.recovery_kit().await?;
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
pub async fn forget_recovery_code(session: tauri::State<'_, Session>) -> Result<(), AppError> {
    Ok(session.forget_recovery_code().await?)
}

/// Signs in with the account's name and password (a new device gets everything).
#[tauri::command]
pub async fn sign_in(
    session: tauri::State<'_, Session>,
    user: String,
    password: String,
) -> Result<SessionInfo, AppError> {
    Ok(session.sign_in(user, super::password(password)?).await?)
}

/// Unlocks the profile on this device.
#[tauri::command]
pub async fn unlock(
    session: tauri::State<'_, Session>,
    password: String,
) -> Result<SessionInfo, AppError> {
    Ok(session.unlock(super::password(password)?).await?)
}

/// Locks now.
#[tauri::command]
pub async fn lock(session: tauri::State<'_, Session>) -> Result<(), AppError> {
    Ok(session.lock().await?)
}

/// Changes the password, on the server and here.
#[tauri::command]
pub async fn change_password(
    session: tauri::State<'_, Session>,
    current: String,
    next: String,
) -> Result<(), AppError> {
    Ok(session
        .change_password(password(current)?, password(next)?)
        .await?)
}

/// Makes a new recovery code (the password is checked by a fresh sign-in); returns it
/// to show once. The old code stops working; `save_recovery_kit` saves the new one.
#[tauri::command]
pub async fn new_recovery_code(
    session: tauri::State<'_, Session>,
    password: String,
) -> Result<zeroize::Zeroizing<String>, AppError> {
    Ok(session
        .new_recovery_code(super::password(password)?)
        .await?)
}

/// A device signed in to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDto {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is this device.
    pub current: bool,
    /// Last sign-in, Unix seconds.
    pub last_seen: i64,
}

/// The account's devices.
#[tauri::command]
pub async fn devices(session: tauri::State<'_, Session>) -> Result<Vec<DeviceDto>, AppError> {
    Ok(session
        .devices()
        .await?
        .into_iter()
        .map(|d| DeviceDto {
            id: d.id,
            name: d.name,
            current: d.current,
            last_seen: d.last_seen_at,
        })
        .collect())
}

/// Revokes a device.
#[tauri::command]
pub async fn revoke_device(session: tauri::State<'_, Session>, id: String) -> Result<(), AppError> {
    Ok(session.revoke_device(id).await?)
}
