//! Mail accounts, folders, the message list and the reader.

use sealpost_core::CoreError;
use sealpost_core::mailbox::oauth::{AccountAuth, OAuthChoice};
use sealpost_core::mailbox::{FolderInfo, MailAccount, MessageSummary};
use sealpost_core::session::oauth::{OAuthSignIn, OpenUrl};
use sealpost_core::session::{MessageView, Session};
use sealpost_mail::autoconfig::{AccountSettings, AuthMethod, Source};
use sealpost_mail::{Flag, Secret, Security, Server};
use serde::{Deserialize, Serialize};
use tauri::Runtime;
use tauri_plugin_opener::OpenerExt;

use crate::error::AppError;

/// One server of a mail account, as the UI edits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerDto {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `tls` or `starttls`.
    pub security: String,
}

impl ServerDto {
    fn from_server(s: &Server) -> Self {
        Self {
            host: s.host.clone(),
            port: s.port,
            security: match s.security {
                Security::StartTls => "starttls",
                _ => "tls",
            }
            .to_owned(),
        }
    }

    fn to_server(&self) -> Result<Server, AppError> {
        let host = self.host.trim();
        if host.is_empty() || self.port == 0 {
            return Err(AppError::bad_request(
                "a server needs a host name and a port",
            ));
        }
        match self.security.as_str() {
            "tls" => Ok(Server::tls(host, self.port)),
            "starttls" => Ok(Server::starttls(host, self.port)),
            other => Err(AppError::bad_request(format!(
                "unknown connection security {other:?} (tls or starttls)"
            ))),
        }
    }
}

/// What discovery found for an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSetupDto {
    /// The address.
    pub address: String,
    /// The login name.
    pub login: String,
    /// Incoming.
    pub imap: ServerDto,
    /// Outgoing.
    pub smtp: ServerDto,
    /// `autoconfig` or `guess`.
    pub source: &'static str,
    /// `google`/`microsoft` when the provider wants OAuth2, else `None`.
    pub oauth: Option<&'static str>,
}

fn setup_dto(address: String, s: &AccountSettings) -> AccountSetupDto {
    let host = s.imap.host.to_ascii_lowercase();
    AccountSetupDto {
        address,
        login: s.imap_username.clone(),
        imap: ServerDto::from_server(&s.imap),
        smtp: ServerDto::from_server(&s.smtp),
        source: match s.source {
            Source::Autoconfig { .. } => "autoconfig",
            _ => "guess",
        },
        oauth: match s.auth {
            AuthMethod::OAuth2 if host.ends_with("gmail.com") || host.ends_with("google.com") => {
                Some("google")
            }
            AuthMethod::OAuth2 => Some("microsoft"),
            _ => None,
        },
    }
}

/// A mail account as the UI lists it (no password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailAccountDto {
    /// Its id.
    pub id: String,
    /// The address.
    pub address: String,
    /// The login.
    pub login: String,
    /// Incoming.
    pub imap: ServerDto,
    /// Outgoing.
    pub smtp: ServerDto,
    /// Where it signs in with OAuth2 (`Gmail`, `Microsoft 365`, an issuer); `None` for
    /// an account with a password.
    pub signed_in_at: Option<String>,
}

impl From<MailAccount> for MailAccountDto {
    fn from(a: MailAccount) -> Self {
        Self {
            imap: ServerDto::from_server(&a.imap),
            smtp: ServerDto::from_server(&a.smtp),
            id: a.id,
            address: a.address,
            login: a.login,
            signed_in_at: None,
        }
    }
}

/// What `add_mail_account` takes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMailAccountDto {
    address: String,
    login: String,
    imap: ServerDto,
    smtp: ServerDto,
    password: zeroize::Zeroizing<String>,
}

/// Finds the servers of an address.
#[tauri::command]
pub async fn discover_account(
    session: tauri::State<'_, Session>,
    address: String,
) -> Result<AccountSetupDto, AppError> {
    let found = session.discover_account(address.clone()).await?;
    Ok(setup_dto(address, &found))
}

/// Checks and adds a mail account; its first sync starts at once.
#[tauri::command]
pub async fn add_mail_account(
    session: tauri::State<'_, Session>,
    account: NewMailAccountDto,
) -> Result<MailAccountDto, AppError> {
    let imap = account.imap.to_server()?;
    let smtp = account.smtp.to_server()?;
    let login = if account.login.trim().is_empty() {
        account.address.clone()
    } else {
        account.login.trim().to_owned()
    };
    let password = Secret::new(account.password.as_str());
    Ok(session
        .add_mail_account(account.address.clone(), login, imap, smtp, password)
        .await?
        .into())
}

/// An account as the UI lists it, with where it signs in.
async fn account_dto(session: &Session, account: MailAccount) -> Result<MailAccountDto, AppError> {
    let auth = session.mail_account_auth(account.id.clone()).await?;
    let mut dto = MailAccountDto::from(account);
    if let AccountAuth::OAuth2(provider) = auth {
        dto.signed_in_at = Some(provider.name);
    }
    Ok(dto)
}

/// Opens the system browser at a provider's sign-in page (an OAuth2 sign-in asked for
/// by the user; the page is never loaded in an app window).
fn browser_opener<R: Runtime>(app: tauri::AppHandle<R>) -> OpenUrl {
    Box::new(move |url: &str| {
        app.opener()
            .open_url(url, None::<&str>)
            .map_err(|e| CoreError::Internal(format!("the browser could not be started: {e}")))
    })
}

/// `google` or `microsoft`, the providers the UI offers.
fn oauth_choice(provider: &str) -> Result<OAuthChoice, AppError> {
    match provider {
        "google" => Ok(OAuthChoice::Google),
        "microsoft" => Ok(OAuthChoice::Microsoft),
        other => Err(AppError::bad_request(format!(
            "unknown sign-in provider {other:?} (google or microsoft)"
        ))),
    }
}

/// Adds a mail account that signs in at Google or Microsoft (OAuth2): the provider's
/// page opens in the system browser, the app waits for its answer on a loopback
/// address, checks IMAP and SMTP with the token, then stores the account (the tokens
/// in the vault only). Its first sync starts at once.
#[tauri::command]
pub async fn add_oauth_account<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
    provider: String,
    address: String,
) -> Result<MailAccountDto, AppError> {
    let choice = oauth_choice(&provider)?;
    let account = session
        .add_oauth_mail_account(OAuthSignIn::new(choice, address), browser_opener(app))
        .await?;
    account_dto(&session, account).await
}

/// Signs an OAuth2 account in again after the provider ended its sign-in (the worker
/// stopped with `oauth_sign_in_required`).
#[tauri::command]
pub async fn sign_in_mail_account_again<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
    account_id: String,
) -> Result<(), AppError> {
    Ok(session
        .sign_in_mail_account_again(
            account_id,
            None,
            browser_opener(app),
            sealpost_core::mailbox::oauth::SIGN_IN_TIMEOUT,
        )
        .await?)
}

/// The mail accounts.
#[tauri::command]
pub async fn mail_accounts(
    session: tauri::State<'_, Session>,
) -> Result<Vec<MailAccountDto>, AppError> {
    let mut out = Vec::new();
    for account in session.mail_accounts().await? {
        out.push(account_dto(&session, account).await?);
    }
    Ok(out)
}

/// Removes a mail account from this device (refused while it holds unsent mail or
/// drafts).
#[tauri::command]
pub async fn remove_mail_account(
    session: tauri::State<'_, Session>,
    account_id: String,
) -> Result<(), AppError> {
    Ok(session.remove_mail_account(account_id).await?)
}

/// A cycle of every account's mail worker, now.
#[tauri::command]
pub async fn sync_now(session: tauri::State<'_, Session>) -> Result<(), AppError> {
    Ok(session.sync_now().await?)
}

/// An account's folders.
#[tauri::command]
pub async fn folders(
    session: tauri::State<'_, Session>,
    account_id: String,
) -> Result<Vec<FolderInfo>, AppError> {
    Ok(session.folders(account_id).await?)
}

/// A window onto a folder or a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// Rows in the folder (or hits of the search), not only this page.
    pub total: i64,
    /// Where this page starts.
    pub offset: u32,
    /// The rows.
    pub items: Vec<MessageSummary>,
}

/// A page of a folder, newest first.
#[tauri::command]
pub async fn messages(
    session: tauri::State<'_, Session>,
    account_id: String,
    folder: String,
    offset: u32,
    limit: u32,
) -> Result<MessagePage, AppError> {
    let (total, items) = session.messages(account_id, folder, offset, limit).await?;
    Ok(MessagePage {
        total,
        offset,
        items,
    })
}

/// Messages of an account with every word of `query`.
#[tauri::command]
pub async fn search(
    session: tauri::State<'_, Session>,
    account_id: String,
    query: String,
    limit: u32,
) -> Result<MessagePage, AppError> {
    let (total, items) = session.search(account_id, query, limit).await?;
    Ok(MessagePage {
        total,
        offset: 0,
        items,
    })
}

/// Opens a message (decrypts, verifies, cleans the HTML, marks it seen).
#[tauri::command]
pub async fn open_message(
    session: tauri::State<'_, Session>,
    id: i64,
) -> Result<MessageView, AppError> {
    Ok(session.open_message(id).await?)
}

/// Allows remote content from the sender of message `id`.
#[tauri::command]
pub async fn allow_remote_content(
    session: tauri::State<'_, Session>,
    id: i64,
) -> Result<MessageView, AppError> {
    Ok(session.allow_remote_content(id).await?)
}

/// Sets or clears `seen` or `flagged`.
#[tauri::command]
pub async fn set_flag(
    session: tauri::State<'_, Session>,
    id: i64,
    flag: String,
    on: bool,
) -> Result<(), AppError> {
    let flag = match flag.as_str() {
        "seen" => Flag::Seen,
        "flagged" => Flag::Flagged,
        other => return Err(AppError::bad_request(format!("unknown flag {other:?}"))),
    };
    Ok(session.set_flag(id, flag, on).await?)
}

/// Saves an attachment through a save dialog; `false` if the user cancelled.
#[tauri::command]
pub async fn save_attachment<R: Runtime>(
    app: tauri::AppHandle<R>,
    session: tauri::State<'_, Session>,
    id: i64,
    index: usize,
) -> Result<bool, AppError> {
    let view = session.open_message(id).await?;
    let name = view
        .attachments
        .get(index)
        .map(|a| safe_file_name(&a.name))
        .ok_or_else(|| AppError::bad_request("no such attachment"))?;
    let Some(path) = super::save_path(&app, "Save the attachment", &name)? else {
        return Ok(false);
    };
    session.save_attachment(id, index, path).await?;
    Ok(true)
}

/// A sender's file name, reduced to one harmless path component.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim_start_matches('.')
        .trim()
        .to_owned();
    if clean.is_empty() {
        "attachment".to_owned()
    } else {
        clean
    }
}

/// Opens an `http(s)` link in the system browser (the UI asked the user first). Never
/// in an app window.
#[tauri::command]
pub async fn open_link<R: Runtime>(app: tauri::AppHandle<R>, url: String) -> Result<(), AppError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_cannot_leave_the_chosen_folder() {
        assert_eq!(safe_file_name("../../.bashrc"), "bashrc");
        assert_eq!(safe_file_name("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name("report.pdf"), "report.pdf");
    }

    #[test]
    fn servers_need_host_port_and_known_security() {
        let ok = ServerDto {
            host: "imap.example.org".into(),
            port: 993,
            security: "tls".into(),
        };
        assert_eq!(
            ok.to_server().unwrap(),
            Server::tls("imap.example.org", 993)
        );
        let plain = ServerDto {
            security: "none".into(),
            ..ok.clone()
        };
        assert!(plain.to_server().is_err());
        let no_host = ServerDto {
            host: " ".into(),
            ..ok
        };
        assert!(no_host.to_server().is_err());
    }
}
