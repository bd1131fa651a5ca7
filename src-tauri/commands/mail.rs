//! Mail accounts, folders, the message list and the reader.

use crate::AppRuntime;
use sealpost_core::api::{
    AccountSetup, Flag, FolderInfo, MailAccountView, MessagePage, MessageView, NewMailAccount,
    OAuthChoice, OAuthProvider, OAuthSignIn, OpenUrl, SIGN_IN_TIMEOUT,
};
use sealpost_core::{Core, CoreError};
use tauri_plugin_opener::OpenerExt;

use crate::error::AppError;

/// Finds the servers of an address.
#[tauri::command]
#[specta::specta]
pub async fn discover_account(
    core: tauri::State<'_, Core>,
    address: String,
) -> Result<AccountSetup, AppError> {
    Ok(core.mail().discover(address, String::new()).await?)
}

/// Checks and adds a mail account; its first sync starts at once.
#[tauri::command]
#[specta::specta]
pub async fn add_mail_account(
    core: tauri::State<'_, Core>,
    account: NewMailAccount,
) -> Result<MailAccountView, AppError> {
    Ok(core.mail().add_account(account).await?)
}

/// Opens the system browser at a provider's sign-in page (an OAuth2 sign-in asked for
/// by the user; the page is never loaded in an app window).
fn browser_opener(app: tauri::AppHandle<AppRuntime>) -> OpenUrl {
    Box::new(move |url: &str| {
        app.opener()
            .open_url(url, None::<&str>)
            .map_err(|e| CoreError::Internal(format!("the browser could not be started: {e}")))
    })
}

/// Adds a mail account that signs in at Google or Microsoft (OAuth2 in the system
/// browser, the answer on a loopback address); its first sync starts at once.
#[tauri::command]
#[specta::specta]
pub async fn add_oauth_account(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
    provider: OAuthProvider,
    address: String,
) -> Result<MailAccountView, AppError> {
    let choice = match provider {
        OAuthProvider::Google => OAuthChoice::Google,
        OAuthProvider::Microsoft => OAuthChoice::Microsoft,
    };
    Ok(core
        .mail()
        .add_oauth_account(OAuthSignIn::new(choice, address), browser_opener(app))
        .await?)
}

/// Signs an OAuth2 account in again after the provider ended its sign-in.
#[tauri::command]
#[specta::specta]
pub async fn sign_in_mail_account_again(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
    account_id: String,
) -> Result<(), AppError> {
    Ok(core
        .mail()
        .sign_in_again(account_id, None, browser_opener(app), SIGN_IN_TIMEOUT)
        .await?)
}

/// The mail accounts.
#[tauri::command]
#[specta::specta]
pub async fn mail_accounts(core: tauri::State<'_, Core>) -> Result<Vec<MailAccountView>, AppError> {
    Ok(core.mail().accounts().await?)
}

/// Removes a mail account (refused while it holds unsent mail or drafts).
#[tauri::command]
#[specta::specta]
pub async fn remove_mail_account(
    core: tauri::State<'_, Core>,
    account_id: String,
) -> Result<(), AppError> {
    Ok(core.mail().remove_account(account_id).await?)
}

/// A cycle of every account's mail worker, now.
#[tauri::command]
#[specta::specta]
pub async fn sync_now(core: tauri::State<'_, Core>) -> Result<(), AppError> {
    Ok(core.mail().sync_now().await?)
}

/// An account's folders.
#[tauri::command]
#[specta::specta]
pub async fn folders(
    core: tauri::State<'_, Core>,
    account_id: String,
) -> Result<Vec<FolderInfo>, AppError> {
    Ok(core.mail().folders(account_id).await?)
}

/// A page of a folder, newest first.
#[tauri::command]
#[specta::specta]
pub async fn messages(
    core: tauri::State<'_, Core>,
    account_id: String,
    folder: String,
    offset: u32,
    limit: u32,
) -> Result<MessagePage, AppError> {
    Ok(core
        .mail()
        .messages(account_id, folder, offset, limit)
        .await?)
}

/// Messages of an account with every word of `query`.
#[tauri::command]
#[specta::specta]
pub async fn search(
    core: tauri::State<'_, Core>,
    account_id: String,
    query: String,
    limit: u32,
) -> Result<MessagePage, AppError> {
    Ok(core.mail().search(account_id, query, limit).await?)
}

/// Opens a message (decrypted and verified once, marked seen); its HTML reaches the
/// mail frame by itself.
#[tauri::command]
#[specta::specta]
pub async fn open_message(core: tauri::State<'_, Core>, id: i64) -> Result<MessageView, AppError> {
    Ok(core.mail().open_message(id).await?)
}

/// Allows remote content from the sender of message `id`.
#[tauri::command]
#[specta::specta]
pub async fn allow_remote_content(
    core: tauri::State<'_, Core>,
    id: i64,
) -> Result<MessageView, AppError> {
    Ok(core.mail().allow_remote_content(id).await?)
}

/// The flags the UI sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub enum UiFlag {
    /// Read.
    Seen,
    /// Starred.
    Flagged,
}

/// Sets or clears `seen` or `flagged`.
#[tauri::command]
#[specta::specta]
pub async fn set_flag(
    core: tauri::State<'_, Core>,
    id: i64,
    flag: UiFlag,
    on: bool,
) -> Result<(), AppError> {
    let flag = match flag {
        UiFlag::Seen => Flag::Seen,
        UiFlag::Flagged => Flag::Flagged,
    };
    Ok(core.mail().set_flag(id, flag, on).await?)
}

/// Saves an attachment through a save dialog; `false` if the user cancelled.
#[tauri::command]
#[specta::specta]
pub async fn save_attachment(
    app: tauri::AppHandle<AppRuntime>,
    core: tauri::State<'_, Core>,
    id: i64,
    index: u32,
) -> Result<bool, AppError> {
    let index = usize::try_from(index).map_err(|_| AppError::bad_request("no such attachment"))?;
    let name = core.mail().attachment_name(id, index).await?;
    let Some(path) = super::save_path(&app, "Save the attachment", &name)? else {
        return Ok(false);
    };
    core.mail().save_attachment(id, index, path).await?;
    Ok(true)
}
