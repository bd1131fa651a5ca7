//! The mail engine: mail accounts, a local store of folders and messages, sync with the
//! IMAP server, full-text search, an outbox and drafts.
//!
//! What it is: everything between the wire (`sealpost-mail`, which knows bytes) and a
//! UI (which knows a list and a reader). What it is not: MIME or OpenPGP (that is
//! `sealpost-pgp`, the one message model). [`scheduler::run_account`] keeps one
//! account in sync in the background (sync, outbox, IDLE, reconnecting with backoff);
//! a script calls [`Mailbox::sync`] and [`Mailbox::flush_outbox`] itself.
//!
//! # Files and what is sealed
//!
//! `<profile dir>/mail.sqlite3`, next to the vault: WAL, `synchronous=FULL`, numbered
//! forward-only migrations ([`schema`]), `STRICT` tables, `NOT NULL` columns.
//!
//! | table     | in the clear                                                   | sealed (vault key, [`Unlocked::seal_blob`]) |
//! |-----------|----------------------------------------------------------------|---------------------------------------------|
//! | `account` | address, login, servers, extra CA roots (the user typed them); password or OAuth2, and the OAuth2 provider (endpoints, client id, scopes) | — the password is the vault secret `mail/<id>/password`, the OAuth2 tokens `mail/<id>/oauth` ([`oauth`]), never here |
//! | `folder`  | name, special use, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ         | —                                           |
//! | `message` | folder, UID, UIDVALIDITY, flags, date, state, encrypted/signed, size, a keyed hash of the Message-ID | the list entry (From, To, Subject) |
//! | `body`    | —                                                              | the raw RFC 5322 bytes (attachments inside) |
//! | `search`  | keyed hashes of words (see below)                              | —                                           |
//! | `outbox`  | account, state, attempts, times, keyed hash of the Message-ID  | the envelope and the exact bytes to send    |
//! | `draft`   | account, time                                                  | the draft                                   |
//! | `flag_change` | message, flag, set or cleared (made in the app, not yet told to the server) | —                        |
//!
//! The rule: whatever a message says (who wrote, to whom, about what, the text) is
//! sealed; what the server says about it (folder, UID, flags, date, size) is not, so the
//! list can be sorted, paged and counted in SQL without opening anything. The subject
//! and sender are sealed for every message, not only for encrypted ones: the list opens
//! one small blob per shown row (≈ 1 µs each), and a plain message's subject is no
//! less private on a stolen laptop. Each sealed value is bound to its table and row
//! (the purpose `mail/raw/<id>`, `mail/summary/<id>`, …), so a value copied to another
//! row does not open. The decrypted text of an encrypted message is never stored: the
//! reader decrypts the sealed raw message again ([`Mailbox::read`]).
//!
//! # Search
//!
//! An FTS5 table with `content=''` (contentless: FTS5 keeps only its inverted index)
//! whose tokens are not words but `HMAC-SHA256(search key, word)` truncated to 128 bits
//! and hex-encoded. The search key is 32 random bytes kept as the vault secret
//! [`SEARCH_KEY_SECRET`]. Words are the NFKC-normalised, lower-cased runs of letters
//! and digits of the subject, the addresses and names, the text (the HTML with its tags
//! dropped when there is no text) and the attachment names — of the decrypted content
//! for encrypted mail. A query is normalised the same way and each word hashed; all
//! must occur (AND).
//!
//! Trade-offs, written down because they are choices:
//! - Whole words only: no prefix, phrase or fuzzy search (the hash of `meet` says
//!   nothing about `meeting`).
//! - The index does not hold the text: without the search key, a token cannot be turned
//!   back into a word, except by guessing words and needing the key to check them.
//! - What leaks to someone holding the file but not the key: how many distinct words each
//!   message has, and which messages share a word (the same token), so word frequencies
//!   across the mailbox and, with outside knowledge, a frequency analysis. Each word is
//!   indexed once per message (a set), so counts within one message do not leak.
//! - Deleting a message deletes its tokens (`contentless_delete=1`).
//!
//! # Sync and what survives a kill
//!
//! Per folder, UID-incremental ([`sealpost_mail::ImapSession::sync`]): a UIDVALIDITY
//! change drops the folder's messages and fetches them again. With QRESYNC (RFC 7162,
//! enabled when offered) and a saved MODSEQ, one `SELECT … (QRESYNC …)` brings the
//! expunged UIDs (`VANISHED (EARLIER)`) and the changed flags since the last sync;
//! otherwise flags are refreshed with CONDSTORE's `CHANGEDSINCE` when offered and UIDs
//! gone from the server are found with `UID SEARCH`. A second copy of a Message-ID in
//! one folder is kept out of the list (`message_duplicate`).
//! Each fetched message is committed raw (sealed, state `pending`) before anything
//! reads it; the folder's new UIDNEXT is saved only after every new message is stored.
//! Only then are pending messages opened: parsed, decrypted, indexed, their Autocrypt
//! key offered to [`crate::keys::observe_key`], and marked `ready` — or `unreadable`,
//! kept raw and listed as such, when they do not parse as mail. A sync killed at any
//! point starts again from the saved state; UIDs already stored are not fetched twice
//! (`UNIQUE (folder, uid_validity, uid)`), and pending messages are opened next time.
//!
//! Flags changed in the app ([`Mailbox::set_flag_local`], [`Mailbox::mark_seen`]) change
//! the store at once and are recorded in `flag_change`; the next sync tells the server
//! first (`UID STORE`), then reads the server's flags, so the server's old state never
//! overwrites the user's change. A message with a change not yet told keeps its local
//! flags when the server's are read.
//!
//! # The outbox
//!
//! [`Mailbox::queue`] builds the exact bytes (encrypted and signed when asked, with a
//! fresh Message-ID) and commits them sealed in `outbox` before anything is sent.
//! [`Mailbox::flush_outbox`] then, per entry: records that its SMTP transaction starts
//! (`outbox_attempt`, committed before `MAIL FROM`), submits, commits `sent` together
//! with clearing that record, makes sure a copy is in the Sent folder (looking for the
//! Message-ID first, so a copy appended before a kill is not appended again), and only
//! then deletes the entry. Killed before the transaction started, the message is sent
//! on the next flush. An entry whose transaction started but whose outcome was never
//! recorded (killed after `MAIL FROM`, even after the server's `250`; or the connection
//! died before a reply) is never sent again by itself: the next flush looks for its
//! Message-ID on the server (Sent, and INBOX when the account is a recipient) and counts
//! it as sent if found; if not, the entry is `inDoubt` and waits for the user to send it
//! again ([`Mailbox::resend_outbox_entry`]) or discard it
//! ([`Mailbox::discard_outbox_entry`]). So a message is sent once or waits: never twice
//! without the user asking.
//!
//! # Modules
//!
//! - [`schema`]: the database and its migrations.
//! - [`oauth`]: accounts that sign in with OAuth2 (Gmail, Microsoft 365, any OpenID
//!   provider): the sign-in, the tokens in the vault, refresh before expiry.
//! - `index`: word normalisation and keyed hashing for search.
//! - `sync`: fetching, opening and indexing messages; flags and moves.
//! - [`scheduler`]: the background loop of one account, and the events it reports.
//! - `roster`: the list of accounts travels to the user's other devices.
//! - `outbox`: composing, the outbox, drafts.

mod index;
pub mod oauth;
mod outbox;
mod roster;
pub mod scheduler;
pub mod schema;
mod sync;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sealpost_crypto::{SecretBytes, SecretVec};
use sealpost_mail::{Credentials, Flag, ImapConfig, Secret, Server, SmtpConfig, TlsPolicy};
use serde::{Deserialize, Serialize};

use crate::vault::Unlocked;
use crate::{Clock, CoreError};

pub use outbox::{
    Compose, ComposeAttachment, FlushReport, OutboxEntry, OutboxState, OutboxStep,
};
#[cfg(any(test, feature = "testing"))]
pub use outbox::{Draft, OutboxUpdate};
#[cfg(any(test, feature = "testing"))]
pub use roster::{Adopted, account_secret};
pub use sync::{SyncProgress, SyncReport};

/// The mail store's file name inside a profile directory.
pub const MAIL_FILE: &str = "mail.sqlite3";
/// The vault secret holding the search index's HMAC key.
pub const SEARCH_KEY_SECRET: &str = "mail/search-key";
/// Up to this many hits, [`Mailbox::search_page`] looks each up and sorts them; above,
/// it walks the messages newest first (measured by `benches/mail_search.rs`).
const SEARCH_SORT_MAX: i64 = 4000;
/// How long any one network step may take.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// The vault secret that holds an account's password.
pub fn password_secret(account_id: &str) -> String {
    format!("mail/{account_id}/password")
}

/// The vault secret that holds an OAuth2 account's tokens.
pub fn oauth_secret(account_id: &str) -> String {
    format!("mail/{account_id}/oauth")
}

/// A mail account: the address, the servers and the login. The password is not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailAccount {
    /// Random id (32 hex digits).
    pub id: String,
    /// The e-mail address.
    pub address: String,
    /// The login name for IMAP and SMTP.
    pub login: String,
    /// Incoming mail.
    pub imap: Server,
    /// Outgoing mail.
    pub smtp: Server,
    /// Extra trusted CA certificates (PEM) for this account's servers, as the user gave
    /// them; empty for none.
    pub extra_roots_pem: String,
}

/// What [`Mailbox::add_account`] needs (the id is made there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The e-mail address.
    pub address: String,
    /// The login name.
    pub login: String,
    /// Incoming mail.
    pub imap: Server,
    /// Outgoing mail.
    pub smtp: Server,
    /// Extra trusted CA certificates (PEM); empty for none.
    pub extra_roots_pem: String,
}

/// Where a message stands in the store.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MessageState {
    /// Stored raw, not yet opened (a sync was interrupted): opened by the next sync.
    Pending,
    /// Opened and indexed.
    Ready,
    /// Does not parse as mail: kept raw, listed as unreadable.
    Unreadable,
}

impl MessageState {
    fn parse(s: &str) -> Self {
        match s {
            "ready" => Self::Ready,
            "unreadable" => Self::Unreadable,
            _ => Self::Pending,
        }
    }
}

/// A folder as the store knows it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderInfo {
    /// The IMAP name.
    pub name: String,
    /// `\Sent`, `\Drafts`, … when the server says so.
    pub special_use: Option<String>,
    /// Messages stored.
    pub total: i64,
    /// Of which without `\Seen`.
    pub unread: i64,
}

/// One row of the message list.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSummary {
    /// The local id (stable until the message leaves the folder).
    pub id: i64,
    /// The folder's IMAP name.
    pub folder: String,
    /// The IMAP UID.
    pub uid: u32,
    /// The flags, as IMAP writes them (`\Seen`, `$Forwarded`).
    pub flags: Vec<String>,
    /// The Date header (Unix seconds), 0 when unknown.
    pub date: i64,
    /// The sender (the protected one for encrypted mail).
    pub from: String,
    /// The subject (the protected one for encrypted mail).
    pub subject: String,
    /// Encrypted (whether or not it could be decrypted).
    pub encrypted: bool,
    /// Carries a signature that counts (valid, by the sender).
    pub signed: bool,
    /// Where it stands.
    pub state: MessageState,
    /// Size in bytes.
    pub size: i64,
}

/// A message opened for reading.
#[derive(Debug)]
#[cfg(any(test, feature = "testing"))]
pub struct ReadMessage {
    /// Its list row.
    pub summary: MessageSummary,
    /// The raw bytes, as received.
    pub raw: SecretVec,
    /// The opened message; `None` when it does not parse as mail.
    pub opened: Option<sealpost_pgp::OpenedMail>,
}

/// The sealed part of a list row.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SealedSummary {
    from: String,
    subject: String,
    to: Vec<String>,
}

/// The mail store of an unlocked profile, through one SQLite connection of its own.
///
/// It is `Send`: the core keeps a pool of them for the calls of its API (each used by one
/// call at a time, on the blocking pool) and gives each mail worker its own. Its async
/// methods take `&mut self`, so their futures are `Send` too and run on the core's
/// multi-threaded runtime.
pub struct Mailbox {
    u: Arc<Unlocked>,
    conn: Connection,
    search_key: SecretBytes<32>,
    /// The time for what the store decides by itself: whether an OAuth2 access token
    /// is due for a refresh ([`Mailbox::credentials`]).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random id: 32 hex digits.
pub(crate) fn random_id() -> Result<String, CoreError> {
    Ok(hex(SecretBytes::<16>::random()?.expose()))
}

fn damaged(what: impl Into<String>, reason: impl ToString) -> CoreError {
    CoreError::VaultDamaged {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// IMAP's spelling of a flag.
pub fn flag_name(flag: &Flag) -> String {
    match flag {
        Flag::Seen => "\\Seen".to_owned(),
        Flag::Answered => "\\Answered".to_owned(),
        Flag::Flagged => "\\Flagged".to_owned(),
        Flag::Deleted => "\\Deleted".to_owned(),
        Flag::Draft => "\\Draft".to_owned(),
        Flag::Keyword(k) => k.clone(),
    }
}

/// A flag from IMAP's spelling (`\Seen`, `seen` or a keyword such as `$Forwarded`).
pub fn parse_flag(s: &str) -> Result<Flag, CoreError> {
    Ok(match s.to_ascii_lowercase().trim_start_matches('\\') {
        "seen" => Flag::Seen,
        "answered" => Flag::Answered,
        "flagged" => Flag::Flagged,
        "deleted" => Flag::Deleted,
        "draft" => Flag::Draft,
        _ => Flag::keyword(s)?,
    })
}

fn flags_text(flags: &BTreeSet<Flag>) -> String {
    flags.iter().map(flag_name).collect::<Vec<_>>().join(" ")
}

/// The DER certificates in a PEM text (anything else in it is ignored).
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, CoreError> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = current.take() {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        CoreError::Mail(sealpost_mail::Error::Invalid {
                            what: "CA certificate (PEM)",
                            value: e.to_string(),
                        })
                    })?;
                out.push(der);
            }
        } else if let Some(b64) = current.as_mut() {
            b64.push_str(line);
        }
    }
    Ok(out)
}

impl MailAccount {
    fn tls(&self) -> Result<TlsPolicy, CoreError> {
        let mut tls = TlsPolicy::new();
        for der in pem_certificates(&self.extra_roots_pem)? {
            tls = tls.with_extra_root(&der);
        }
        Ok(tls)
    }

    /// How to reach the IMAP server.
    pub fn imap_config(&self) -> Result<ImapConfig, CoreError> {
        let mut c = ImapConfig::new(self.imap.clone());
        c.tls = self.tls()?;
        c.timeout = NETWORK_TIMEOUT;
        Ok(c)
    }

    /// How to reach the SMTP server.
    pub fn smtp_config(&self) -> Result<SmtpConfig, CoreError> {
        let mut c = SmtpConfig::new(self.smtp.clone());
        c.tls = self.tls()?;
        c.timeout = NETWORK_TIMEOUT;
        Ok(c)
    }

    /// Logs in to IMAP (listing the folders) and to SMTP with `creds`, without sending.
    pub async fn check(&self, creds: &sealpost_mail::Credentials) -> Result<(), CoreError> {
        sealpost_mail::autoconfig::check_account(
            &self.imap_config()?,
            creds,
            &self.smtp_config()?,
            creds,
        )
        .await?;
        Ok(())
    }
}

fn server_from(host: String, port: i64, security: &str) -> Server {
    let port = u16::try_from(port).unwrap_or(0);
    if security == "starttls" {
        Server::starttls(host, port)
    } else {
        Server::tls(host, port)
    }
}

fn security_name(s: &Server) -> &'static str {
    match s.security {
        sealpost_mail::Security::StartTls => "starttls",
        _ => "tls",
    }
}

impl Mailbox {
    /// Opens (creating on first use) the mail store of `u`'s profile. `clock` also
    /// tells when an OAuth2 access token is due for a refresh.
    pub fn open(u: &Arc<Unlocked>, clock: Arc<dyn Clock>) -> Result<Self, CoreError> {
        let conn = schema::open(&Self::path(u))?;
        let search_key = match u.secret(SEARCH_KEY_SECRET)? {
            Some(k) => SecretBytes::from_slice(k.expose())
                .ok_or_else(|| damaged("the search key", "it has the wrong length"))?,
            None => {
                let k = SecretBytes::<32>::random()?;
                u.put_secret(SEARCH_KEY_SECRET, k.expose(), &*clock)?;
                k
            }
        };
        Ok(Self {
            u: Arc::clone(u),
            conn,
            search_key,
            clock,
        })
    }

    /// Where the store lives.
    pub fn path(u: &Unlocked) -> PathBuf {
        u.info().dir.join(MAIL_FILE)
    }

    // ------------------------------------------------------------------ accounts

    /// Adds an account; its password goes into the vault only.
    pub fn add_account(
        &self,
        new: &NewAccount,
        password: &Secret,
        clock: &dyn Clock,
    ) -> Result<MailAccount, CoreError> {
        let id = random_id()?;
        self.u
            .put_secret(&password_secret(&id), password.expose().as_bytes(), clock)?;
        self.insert_account(
            &id,
            &roster::Row::new(new, "password", String::new(), clock.now_unix()),
        )?;
        self.publish_account(&id)?;
        self.account(&id)
    }

    /// Removes an account from this device: its folders and messages (copies of what
    /// its server keeps) and its password. Refused while its outbox or its drafts hold
    /// something the user wrote, which would exist nowhere else.
    pub fn remove_account(&self, id: &str) -> Result<(), CoreError> {
        let account = self.account(id)?;
        let (waiting, drafts): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM outbox WHERE account_id = ?1),
                    (SELECT count(*) FROM draft WHERE account_id = ?1)",
            [&account.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if waiting > 0 || drafts > 0 {
            return Err(CoreError::AccountBusy(format!(
                "{} still has {waiting} message(s) waiting to be sent and {drafts} draft(s): \
                 send or delete them first",
                account.address
            )));
        }
        self.conn
            .execute("DELETE FROM account WHERE id = ?1", [&account.id])?;
        // Removed on every device: the tombstone travels with the settings.
        self.bury_account(&account.id)?;
        self.u.delete_secret(&password_secret(&account.id))?;
        self.u.delete_secret(&oauth_secret(&account.id))?;
        Ok(())
    }

    /// Every account, oldest first.
    pub fn accounts(&self) -> Result<Vec<MailAccount>, CoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, address, login, imap_host, imap_port, imap_security, smtp_host,
                    smtp_port, smtp_security, extra_roots_pem
             FROM account ORDER BY created_at, id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(MailAccount {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    login: r.get(2)?,
                    imap: server_from(r.get(3)?, r.get(4)?, &r.get::<_, String>(5)?),
                    smtp: server_from(r.get(6)?, r.get(7)?, &r.get::<_, String>(8)?),
                    extra_roots_pem: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The account with this id or address.
    pub fn account(&self, id_or_address: &str) -> Result<MailAccount, CoreError> {
        self.accounts()?
            .into_iter()
            .find(|a| a.id == id_or_address || a.address.eq_ignore_ascii_case(id_or_address))
            .ok_or_else(|| CoreError::NoMailAccount(id_or_address.to_owned()))
    }

    /// The account message `id` belongs to.
    pub fn account_of(&self, id: i64) -> Result<MailAccount, CoreError> {
        let account_id: String = self
            .conn
            .query_row(
                "SELECT f.account_id FROM message m JOIN folder f ON f.id = m.folder_id
                 WHERE m.id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("message {id}")))?;
        self.account(&account_id)
    }

    /// The login for an account: its password from the vault, or for an OAuth2 account
    /// its access token, refreshed first when it expires within
    /// [`sealpost_mail::oauth::REFRESH_MARGIN_SECS`] (the new tokens are stored before
    /// they are used). A grant the provider refused is
    /// [`oauth::sign_in_again`]'s error: the user must sign in again.
    pub async fn credentials(&mut self, account: &MailAccount) -> Result<Credentials, CoreError> {
        match self.auth(account)? {
            oauth::AccountAuth::Password => self.password_credentials(account),
            oauth::AccountAuth::OAuth2(provider) => {
                self.oauth_credentials(account, &provider).await
            }
        }
    }

    fn password_credentials(&self, account: &MailAccount) -> Result<Credentials, CoreError> {
        let pw = self
            .u
            .secret(&password_secret(&account.id))?
            .ok_or_else(|| {
                CoreError::NoMailAccount(format!("{} has no password", account.address))
            })?;
        let text = std::str::from_utf8(pw.expose()).map_err(|e| damaged("the mail password", e))?;
        Ok(Credentials::password(
            account.login.clone(),
            Secret::new(text.to_owned()),
        ))
    }

    /// Logs in to IMAP (listing the folders) and to SMTP, without sending.
    pub async fn test_account(&mut self, account: &MailAccount) -> Result<(), CoreError> {
        account.check(&self.credentials(account).await?).await
    }

    // ------------------------------------------------------------------ reading

    /// The folders of an account, by name.
    pub fn folders(&self, account: &MailAccount) -> Result<Vec<FolderInfo>, CoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT f.name, f.special_use,
                    (SELECT count(*) FROM message m WHERE m.folder_id = f.id),
                    (SELECT count(*) FROM message m WHERE m.folder_id = f.id
                        AND (' ' || m.flags || ' ') NOT LIKE '% \\Seen %')
             FROM folder f WHERE f.account_id = ?1 ORDER BY f.name",
        )?;
        let rows = stmt
            .query_map([&account.id], |r| {
                let special: String = r.get(1)?;
                Ok(FolderInfo {
                    name: r.get(0)?,
                    special_use: (!special.is_empty()).then_some(special),
                    total: r.get(2)?,
                    unread: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The messages of a folder, newest first.
    #[cfg(any(test, feature = "testing"))]
    pub fn list(
        &self,
        account: &MailAccount,
        folder: &str,
    ) -> Result<Vec<MessageSummary>, CoreError> {
        let ids: Vec<i64> = self
            .conn
            .prepare(
                "SELECT m.id FROM message m JOIN folder f ON f.id = m.folder_id
                 WHERE f.account_id = ?1 AND f.name = ?2 ORDER BY m.date DESC, m.id DESC",
            )?
            .query_map(params![account.id, folder], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter().map(|id| self.summary(id)).collect()
    }

    /// A window of a folder's messages, newest first, and how many the folder holds:
    /// what a virtualized list asks for as it scrolls. Only the rows of the window are
    /// opened, so the cost does not grow with the folder.
    pub fn list_page(
        &self,
        account: &MailAccount,
        folder: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(i64, Vec<MessageSummary>), CoreError> {
        let folder_id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM folder WHERE account_id = ?1 AND name = ?2",
                params![account.id, folder],
                |r| r.get(0),
            )
            .optional()?;
        let Some(folder_id) = folder_id else {
            return Ok((0, Vec::new()));
        };
        let total: i64 = self.conn.query_row(
            "SELECT count(*) FROM message WHERE folder_id = ?1",
            [folder_id],
            |r| r.get(0),
        )?;
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM message WHERE folder_id = ?1
                 ORDER BY date DESC, id DESC LIMIT ?2 OFFSET ?3",
            )?
            .query_map(params![folder_id, limit, offset], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let rows = ids
            .into_iter()
            .map(|id| self.summary(id))
            .collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    /// One list row.
    pub fn summary(&self, id: i64) -> Result<MessageSummary, CoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT f.name, m.uid, m.flags, m.date, m.encrypted, m.signed, m.state,
                        m.size, m.summary
                 FROM message m JOIN folder f ON f.id = m.folder_id WHERE m.id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Vec<u8>>(8)?,
                ))
            })
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("message {id}")))?;
        let (folder, uid, flags, date, encrypted, signed, state, size, sealed) = row;
        let sealed_summary = if sealed.is_empty() {
            SealedSummary::default()
        } else {
            let plain = self.u.open_blob(&format!("mail/summary/{id}"), &sealed)?;
            serde_json::from_slice(plain.expose())
                .map_err(|e| damaged(format!("the list entry of message {id}"), e))?
        };
        Ok(MessageSummary {
            id,
            folder,
            uid: u32::try_from(uid).unwrap_or(0),
            flags: flags.split_whitespace().map(str::to_owned).collect(),
            date,
            from: sealed_summary.from,
            subject: sealed_summary.subject,
            encrypted,
            signed,
            state: MessageState::parse(&state),
            size,
        })
    }

    /// Opens a message for reading: decrypts and verifies it again with the keys known
    /// now. Nothing decrypted is stored.
    #[cfg(any(test, feature = "testing"))]
    pub fn read(&self, id: i64, clock: &dyn Clock) -> Result<ReadMessage, CoreError> {
        let summary = self.summary(id)?;
        let raw = self.raw(id)?;
        let opened = if summary.state == MessageState::Unreadable {
            None
        } else {
            let ring = crate::keys::Keyring::load(&self.u, clock)?;
            sealpost_pgp::open_mail(raw.expose(), &ring.context(crate::keys::system_time(clock)))
                .ok()
        };
        Ok(ReadMessage {
            summary,
            raw,
            opened,
        })
    }

    /// The raw bytes of a message, as received.
    pub fn raw(&self, id: i64) -> Result<SecretVec, CoreError> {
        let sealed: Vec<u8> = self
            .conn
            .query_row("SELECT raw FROM body WHERE message_id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("message {id}")))?;
        self.u.open_blob(&format!("mail/raw/{id}"), &sealed)
    }

    /// Like [`Mailbox::search`], within one account and at most `limit` rows, with the
    /// number of hits: the search box's query, whose cost is bounded by `limit` however
    /// many messages match.
    pub fn search_page(
        &self,
        account: &MailAccount,
        query: &str,
        limit: u32,
    ) -> Result<(i64, Vec<MessageSummary>), CoreError> {
        let tokens: Vec<String> = index::words(query)
            .iter()
            .map(|w| format!("\"{}\"", index::token(&self.search_key, w)))
            .collect();
        if tokens.is_empty() {
            return Ok((0, Vec::new()));
        }
        let matched = tokens.join(" AND ");
        // With no other account in the store every hit is this account's: the account
        // filter (a lookup per hit) is left out. Otherwise hits are kept to the
        // account's folders.
        let alone: bool = self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM account WHERE id != ?1)",
            [&account.id],
            |r| r.get(0),
        )?;
        let total: i64 = if alone {
            self.conn
                .prepare_cached("SELECT count(*) FROM search WHERE search MATCH ?1")?
                .query_row([&matched], |r| r.get(0))?
        } else {
            self.conn
                .prepare_cached(
                    "SELECT count(*) FROM message m
                     WHERE m.id IN (SELECT rowid FROM search WHERE search MATCH ?1)
                     AND m.folder_id IN (SELECT id FROM folder WHERE account_id = ?2)",
                )?
                .query_row(params![matched, account.id], |r| r.get(0))?
        };
        // Newest first, two ways, by the number of hits: few hits are looked up and
        // sorted; many are gathered once (a temporary set of ids) and the messages
        // walked newest first by `message_by_time` until `limit` are found, so a word in
        // half the mailbox costs about as much as a rare one.
        let sql = if total <= SEARCH_SORT_MAX {
            "SELECT m.id FROM search s JOIN message m ON m.id = s.rowid
             WHERE search MATCH ?1
             AND (?3 OR m.folder_id IN (SELECT id FROM folder WHERE account_id = ?4))
             ORDER BY m.date DESC, m.id DESC LIMIT ?2"
        } else {
            "SELECT m.id FROM message m INDEXED BY message_by_time
             WHERE m.id IN (SELECT rowid FROM search WHERE search MATCH ?1)
             AND (?3 OR m.folder_id IN (SELECT id FROM folder WHERE account_id = ?4))
             ORDER BY m.date DESC, m.id DESC LIMIT ?2"
        };
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(sql)?
            .query_map(params![matched, limit, alone, account.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let rows = ids
            .into_iter()
            .map(|id| self.summary(id))
            .collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    /// Messages containing every word of `query` (whole words, any case), newest first.
    #[cfg(any(test, feature = "testing"))]
    pub fn search(&self, query: &str) -> Result<Vec<MessageSummary>, CoreError> {
        let tokens: Vec<String> = index::words(query)
            .iter()
            .map(|w| format!("\"{}\"", index::token(&self.search_key, w)))
            .collect();
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = self
            .conn
            .prepare(
                "SELECT m.id FROM search s JOIN message m ON m.id = s.rowid
                 WHERE search MATCH ?1 ORDER BY m.date DESC, m.id DESC",
            )?
            .query_map([tokens.join(" AND ")], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter().map(|id| self.summary(id)).collect()
    }
}
