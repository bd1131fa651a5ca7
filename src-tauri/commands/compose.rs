//! Compose: recipients' keys, attachments, drafts and sending.

use crate::AppRuntime;
use sealpost_core::Core;
use sealpost_core::api::{
    ComposeRequest, DraftSummary, DraftView, OutboxEntry, PickedFile, RecipientKey,
};

use crate::error::AppError;

/// Whether each address has a known key (the key directory is asked for unknown ones).
#[tauri::command]
#[specta::specta]
pub async fn recipient_keys(
    core: tauri::State<'_, Core>,
    addresses: Vec<String>,
) -> Result<Vec<RecipientKey>, AppError> {
    Ok(core.compose().recipient_keys(addresses).await?)
}

/// Picks files to attach through the OS's dialog; their paths stay in Rust.
#[tauri::command]
#[specta::specta]
pub async fn pick_attachments(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
) -> Result<Vec<PickedFile>, AppError> {
    // No dialog for a locked profile: its answer could not be used.
    core.profile().require_unlocked().await?;
    let paths = super::pick_paths(&app, "Attach files")?;
    Ok(core.compose().pick_files(paths).await?)
}

/// Saves a draft; its id, or `None` when the compose holds nothing (no draft is kept).
#[tauri::command]
#[specta::specta]
pub async fn save_draft(
    core: tauri::State<'_, Core>,
    compose: ComposeRequest,
) -> Result<Option<i64>, AppError> {
    Ok(core.compose().save_draft(compose).await?)
}

/// The account's drafts, newest first.
#[tauri::command]
#[specta::specta]
pub async fn drafts(
    core: tauri::State<'_, Core>,
    account_id: String,
) -> Result<Vec<DraftSummary>, AppError> {
    Ok(core.compose().drafts(account_id).await?)
}

/// Reopens a draft.
#[tauri::command]
#[specta::specta]
pub async fn open_draft(
    core: tauri::State<'_, Core>,
    account_id: String,
    id: i64,
) -> Result<DraftView, AppError> {
    Ok(core.compose().open_draft(account_id, id).await?)
}

/// Deletes a draft; `false` if there was none.
#[tauri::command]
#[specta::specta]
pub async fn delete_draft(core: tauri::State<'_, Core>, id: i64) -> Result<bool, AppError> {
    Ok(core.compose().delete_draft(id).await?)
}

/// The account's outbox.
#[tauri::command]
#[specta::specta]
pub async fn outbox(
    core: tauri::State<'_, Core>,
    account_id: String,
) -> Result<Vec<OutboxEntry>, AppError> {
    Ok(core.compose().outbox(Some(account_id)).await?)
}

/// Sends an entry in doubt again (the user's answer).
#[tauri::command]
#[specta::specta]
pub async fn resend_outbox_entry(
    core: tauri::State<'_, Core>,
    account_id: String,
    id: i64,
) -> Result<(), AppError> {
    Ok(core.compose().resend(Some(account_id), id).await?)
}

/// Drops an entry without sending it (the user's answer).
#[tauri::command]
#[specta::specta]
pub async fn discard_outbox_entry(
    core: tauri::State<'_, Core>,
    account_id: String,
    id: i64,
) -> Result<(), AppError> {
    Ok(core.compose().discard(Some(account_id), id).await?)
}

/// Queues in the outbox and starts sending; the steps come as `outbox` events.
#[tauri::command]
#[specta::specta]
pub async fn send(core: tauri::State<'_, Core>, compose: ComposeRequest) -> Result<(), AppError> {
    core.compose().send(compose).await?;
    Ok(())
}
