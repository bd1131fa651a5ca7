//! Compose: recipients' keys, attachments, drafts and sending.

use sealpost_core::mailbox::{Compose, OutboxEntry};
use sealpost_core::session::{
    ComposeRequest, DraftSummary, DraftView, PickedFile, RecipientKey, Session,
};
use serde::Deserialize;
use tauri::Runtime;
use tauri_plugin_dialog::DialogExt;

use crate::error::AppError;

/// A compose as the UI sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeDto {
    account_id: String,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    subject: String,
    body: String,
    encrypt: bool,
    sign: bool,
    attachments: Vec<String>,
    draft_id: Option<i64>,
    in_reply_to: Option<String>,
}

impl ComposeDto {
    fn into_request(self) -> ComposeRequest {
        let clean = |list: Vec<String>| -> Vec<String> {
            list.into_iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect()
        };
        ComposeRequest {
            account_id: self.account_id,
            compose: Compose {
                to: clean(self.to),
                cc: clean(self.cc),
                bcc: clean(self.bcc),
                subject: self.subject,
                text: self.body,
                encrypt: self.encrypt,
                sign: self.sign,
                attachments: Vec::new(),
                in_reply_to: self.in_reply_to,
            },
            attachments: self.attachments,
            draft_id: self.draft_id,
        }
    }
}

/// Whether each recipient has a known key (the key directory is asked for unknown ones).
#[tauri::command]
pub async fn recipient_keys(
    session: tauri::State<'_, Session>,
    addresses: Vec<String>,
) -> Result<Vec<RecipientKey>, AppError> {
    Ok(session.recipient_keys(addresses).await?)
}

/// Lets the user pick files to attach; the paths stay in Rust, the UI gets tokens.
#[tauri::command]
pub async fn pick_attachments<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
) -> Result<Vec<PickedFile>, AppError> {
    // No dialog for a locked profile: its answer could not be used.
    session.require_unlocked().await?;
    let Some(files) = app
        .dialog()
        .file()
        .set_title("Attach files")
        .blocking_pick_files()
    else {
        return Ok(Vec::new());
    };
    let paths = files
        .into_iter()
        .map(super::local_path)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(session.pick_files(paths).await?)
}

/// Saves the compose as a draft; returns its id.
#[tauri::command]
pub async fn save_draft(
    session: tauri::State<'_, Session>,
    compose: ComposeDto,
) -> Result<i64, AppError> {
    Ok(session.save_draft(compose.into_request()).await?)
}

/// The account's saved drafts, newest first.
#[tauri::command]
pub async fn drafts(
    session: tauri::State<'_, Session>,
    account_id: String,
) -> Result<Vec<DraftSummary>, AppError> {
    Ok(session.drafts(account_id).await?)
}

/// Reopens a draft for editing; its attachments come back as tokens.
#[tauri::command]
pub async fn open_draft(
    session: tauri::State<'_, Session>,
    account_id: String,
    id: i64,
) -> Result<DraftView, AppError> {
    Ok(session.open_draft(account_id, id).await?)
}

/// Deletes a draft.
#[tauri::command]
pub async fn delete_draft(session: tauri::State<'_, Session>, id: i64) -> Result<bool, AppError> {
    Ok(session.delete_draft(id).await?)
}

/// The account's outbox (what waits, is being sent, or may have been sent).
#[tauri::command]
pub async fn outbox(
    session: tauri::State<'_, Session>,
    account_id: String,
) -> Result<Vec<OutboxEntry>, AppError> {
    Ok(session.outbox(account_id).await?)
}

/// Sends an entry that may have been sent again, because the user said so.
#[tauri::command]
pub async fn resend_outbox_entry(
    session: tauri::State<'_, Session>,
    account_id: String,
    id: i64,
) -> Result<(), AppError> {
    Ok(session.resend_outbox_entry(account_id, id).await?)
}

/// Drops an entry from the outbox without sending it, because the user said so.
#[tauri::command]
pub async fn discard_outbox_entry(
    session: tauri::State<'_, Session>,
    account_id: String,
    id: i64,
) -> Result<(), AppError> {
    Ok(session.discard_outbox_entry(account_id, id).await?)
}

/// Queues the message in the outbox; the account's worker sends it (`outbox` events).
#[tauri::command]
pub async fn send(session: tauri::State<'_, Session>, compose: ComposeDto) -> Result<(), AppError> {
    session.send(compose.into_request()).await?;
    Ok(())
}
