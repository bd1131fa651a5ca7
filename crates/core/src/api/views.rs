//! What the API gives and takes: plain data, `camelCase` when serialised, the same for
//! the desktop app (whose TypeScript types are generated from these) and the command
//! line's `--json`. Nothing secret crosses, with one deliberate exception:
//! [`Created::recovery_code`] (and [`ProfileApi::new_recovery_code`]'s answer), which
//! the user must see once.
//!
//! [`ProfileApi::new_recovery_code`]: super::ProfileApi::new_recovery_code

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::mailbox::scheduler::{MailEvent, OutboxStepEvent, Phase};
pub use crate::mailbox::{
    Compose, FlushReport, FolderInfo, MessageState, MessageSummary, OutboxEntry, OutboxState,
};

/// Where the profile on this device stands.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProfileState {
    /// No profile yet: create an account or sign in.
    None,
    /// A profile, locked.
    Locked,
    /// Unlocked.
    Unlocked,
}

/// Which screen to show at start.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Where the profile stands.
    pub state: ProfileState,
    /// The account's user name, when there is a profile.
    pub user: Option<String>,
    /// The sync server's URL.
    pub sync_server: String,
}

/// A new account or profile: the user name, and the recovery code to show once.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// The normalised user name.
    pub user: String,
    /// The recovery code, formatted for reading (groups of four).
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub recovery_code: Zeroizing<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// After a sign-in or an unlock.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The user name.
    pub user: String,
    /// Failed sign-in attempts on the account since the previous successful one (0
    /// after a local unlock, which asks nobody).
    pub failed_attempts: i64,
}

/// The public facts of a profile, readable locked.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileFacts {
    /// The profile directory.
    pub dir: String,
    /// The user name.
    pub user: String,
    /// When it was made, Unix seconds.
    pub created_at: i64,
}

/// The password gate's verdict, for a live strength meter and for scripts.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCheck {
    /// Whether the password may be used.
    pub accepted: bool,
    /// zxcvbn's score, 0–4.
    pub score: u8,
    /// log10 of zxcvbn's guess estimate.
    pub guesses_log10: f64,
    /// CPU-seconds to crack at our key-derivation settings.
    pub crack_seconds: f64,
    /// The same in words ("3 days", "12 thousand years").
    pub crack_time: String,
    /// What is wrong, when zxcvbn recognised a pattern.
    pub warning: Option<String>,
    /// How to do better.
    pub suggestions: Vec<String>,
}

/// A device signed in to the account.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is this device.
    pub current: bool,
    /// First sign-in, Unix seconds.
    pub created_at: i64,
    /// Last sign-in, Unix seconds.
    pub last_seen: i64,
}

/// What a settings sync did.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsSynced {
    /// The settings version on the server afterwards.
    pub version: i64,
    /// How many secrets came from the server.
    pub pulled: usize,
    /// Whether this device's changes were uploaded.
    pub pushed: bool,
}

// ---------------------------------------------------------------- mail accounts

/// One server of a mail account, as a user edits it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSettings {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Implicit TLS (993/465), or STARTTLS — then required, never a plain fallback.
    pub security: Security,
}

/// How a connection is secured. There is no plain option.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Security {
    /// TLS from the first byte.
    Tls,
    /// STARTTLS, required.
    Starttls,
}

/// What discovery found for an address.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSetup {
    /// The address.
    pub address: String,
    /// The login name.
    pub login: String,
    /// Incoming.
    pub imap: ServerSettings,
    /// Outgoing.
    pub smtp: ServerSettings,
    /// Where the settings came from.
    pub source: SetupSource,
    /// The provider, when it wants OAuth2 ("Sign in with …") rather than a password.
    pub oauth: Option<OAuthProvider>,
}

/// Where an account's settings came from.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SetupSource {
    /// The provider's (or the domain's) autoconfig document.
    Autoconfig,
    /// Well-known host names that answered.
    Guess,
}

/// A provider whose accounts sign in with OAuth2 in the browser.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OAuthProvider {
    /// Gmail and Google Workspace.
    Google,
    /// Outlook.com and Microsoft 365.
    Microsoft,
}

/// A mail account as stored (no password).
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailAccountView {
    /// Its id.
    pub id: String,
    /// The address.
    pub address: String,
    /// The login.
    pub login: String,
    /// Incoming.
    pub imap: ServerSettings,
    /// Outgoing.
    pub smtp: ServerSettings,
    /// Where it signs in with OAuth2 (`Gmail`, `Microsoft 365`, an issuer); `None` for
    /// an account with a password.
    pub signed_in_at: Option<String>,
}

/// A mail account to add with a password.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMailAccount {
    /// The address.
    pub address: String,
    /// The login (empty: the address).
    pub login: String,
    /// Incoming.
    pub imap: ServerSettings,
    /// Outgoing.
    pub smtp: ServerSettings,
    /// The mail password; it goes into the vault only.
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub password: Zeroizing<String>,
    /// Extra CA certificates (PEM) this account's servers may use; empty for none.
    #[serde(default)]
    pub extra_roots_pem: String,
}

impl std::fmt::Debug for NewMailAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMailAccount")
            .field("address", &self.address)
            .field("login", &self.login)
            .field("imap", &self.imap)
            .field("smtp", &self.smtp)
            .finish_non_exhaustive()
    }
}

/// A window onto a folder or a search.
#[cfg_attr(feature = "specta", derive(specta::Type))]
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

/// What a sync of one account did, from the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailSynced {
    /// The account.
    pub account: String,
    /// Folders synced.
    pub folders: usize,
    /// New messages stored.
    pub new: usize,
    /// Messages gone from the server, removed here.
    pub removed: usize,
    /// Flag changes read from the server.
    pub flags_changed: usize,
    /// Messages that do not parse as mail (kept raw).
    pub unreadable: usize,
    /// What the outbox did first.
    pub outbox: FlushReport,
    /// Addresses whose key the directory published (its proof mail arrived).
    pub published_keys: Vec<String>,
}

// ---------------------------------------------------------------- reading

/// An attachment of an opened message.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// Its position, for saving it.
    pub index: usize,
    /// The file name the sender gave, or a neutral one.
    pub name: String,
    /// The MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size: usize,
}

/// A signature in words, for the app's own chrome.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureView {
    /// `none`, `confirmed`, `unconfirmed`, `bad` or `unknownKey`.
    pub state: String,
    /// e.g. "Signed by alice@example.org — key confirmed".
    pub text: String,
    /// The signer's fingerprint, when the signature names one.
    pub signer: Option<String>,
}

/// An opened message, as a reader shows it. Its HTML is not here: the mail frame loads
/// it by itself ([`super::MailApi::frame`]), from the same opening.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Its list row.
    pub summary: MessageSummary,
    /// The sender.
    pub from: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Unix seconds; 0 when unknown.
    pub date: i64,
    /// The subject (the protected one when the mail was encrypted).
    pub subject: String,
    /// Whether the subject came from inside the encryption.
    pub subject_protected: bool,
    /// The text; for HTML-only mail, the cleaned HTML's text.
    pub text: String,
    /// Whether there is an HTML body for the frame.
    pub has_html: bool,
    /// Remote content was removed from the HTML.
    pub remote_content_blocked: bool,
    /// Remote content from this sender is allowed (the frame's policy allows it).
    pub remote_content_allowed: bool,
    /// `none`, `decrypted` or `failed`.
    pub encryption: String,
    /// The encryption in words.
    pub encryption_text: String,
    /// The signature in words.
    pub signature: SignatureView,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
    /// The Message-ID, for a reply.
    pub message_id: Option<String>,
    /// The links in the message, for the chrome to list.
    pub links: Vec<String>,
}

/// The mail frame's content: the cleaned HTML and whether remote content may load.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The cleaned HTML.
    pub html: String,
    /// Remote content from this sender is allowed (the frame's policy must allow it).
    pub remote_allowed: bool,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.html.len())
            .field("remote_allowed", &self.remote_allowed)
            .finish()
    }
}

/// A message file opened with the profile's keys (`sealpost mail open FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenedFile {
    /// The message as the reader shows it (its summary is empty: it is not stored).
    #[serde(flatten)]
    pub message: MessageView,
    /// The Autocrypt key in its headers, and what remembering it did.
    pub autocrypt: Option<AutocryptSeen>,
}

/// An Autocrypt key offered by a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutocryptSeen {
    /// The address it is for.
    pub addr: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// What remembering it did, or why it was refused.
    #[serde(flatten)]
    pub observation: ObservationView,
}

// ---------------------------------------------------------------- compose

/// Whether a recipient's key is known.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientKey {
    /// The address as given.
    pub address: String,
    /// A key is known.
    pub has_key: bool,
    /// The key was confirmed (by the key directory's proof, or by the user).
    pub confirmed: bool,
}

/// A file picked for a compose; its path stays in the core.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedFile {
    /// Names the file in later calls.
    pub token: String,
    /// The file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A compose as a shell sends it: attachments are tokens from
/// [`super::ComposeApi::pick_files`] or [`super::ComposeApi::open_draft`].
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeRequest {
    /// The sending account.
    pub account_id: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc.
    pub bcc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Encrypt and sign.
    pub encrypt: bool,
    /// Sign without encrypting.
    pub sign: bool,
    /// Tokens of picked files.
    pub attachments: Vec<String>,
    /// The draft this compose updates, if saved before.
    pub draft_id: Option<i64>,
    /// The Message-ID this answers.
    pub in_reply_to: Option<String>,
}

/// A saved draft in a list: enough to recognise it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftSummary {
    /// Its id.
    pub id: i64,
    /// Its `To` addresses.
    pub to: Vec<String>,
    /// Its subject.
    pub subject: String,
    /// The start of its text.
    pub snippet: String,
    /// When it was last saved (Unix seconds).
    pub updated_at: i64,
}

/// A draft reopened for editing: its attachments are tokens, like picked files.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftView {
    /// Its id (pass it back as `draft_id` so saves update this draft).
    pub id: i64,
    /// The sending account.
    pub account_id: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc.
    pub bcc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text.
    pub text: String,
    /// Encrypt and sign.
    pub encrypt: bool,
    /// Sign without encrypting.
    pub sign: bool,
    /// The Message-ID it answers.
    pub in_reply_to: Option<String>,
    /// Its attachments, as tokens.
    pub attachments: Vec<PickedFile>,
}

// ---------------------------------------------------------------- keys

/// The own key, as the settings show it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyKey {
    /// The fingerprint (hex, upper case).
    pub fingerprint: String,
    /// The addresses bound to it.
    pub addresses: Vec<String>,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When it expires (Unix seconds), `None` for never.
    pub expires: Option<i64>,
}

/// The own key exported to a file: the armored key and the passphrase protecting it,
/// made now and shown once.
pub struct ExportedKey {
    /// The armored, passphrase-protected secret key.
    pub armored: String,
    /// The passphrase.
    pub passphrase: sealpost_pgp::Passphrase,
}

/// A contact's key.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    /// The address.
    pub address: String,
    /// The fingerprint in use.
    pub fingerprint: String,
    /// Where it came from (`directory`, `wkd`, `autocrypt`, `manual`).
    pub source: String,
    /// First seen, Unix seconds.
    pub first_seen: i64,
    /// Last seen, Unix seconds.
    pub last_seen: i64,
    /// Confirmed by the directory's proof or by the user.
    pub confirmed: bool,
    /// A different key that turned up and waits for the user.
    pub pending_fingerprint: Option<String>,
}

/// What learning a key did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "observation",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ObservationView {
    /// The address had no key: this one is now in use.
    New,
    /// The key in use, seen again.
    Known,
    /// A different key than the one in use: kept aside for the user.
    Changed {
        /// The fingerprint in use.
        current: String,
        /// The fingerprint offered.
        offered: String,
    },
    /// Not kept, and why.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A key found for an address (directory, WKD) and what keeping it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundKey {
    /// What keeping it did.
    #[serde(flatten)]
    pub observation: ObservationView,
    /// The contact record afterwards.
    pub contact: Option<ContactView>,
}

/// A key published in the directory.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The address.
    pub address: String,
    /// When, Unix seconds.
    pub published_at: i64,
}

/// A publication asked for: the proof mail is on its way.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishPending {
    /// The address.
    pub address: String,
    /// Until when the token in the mail can be spent, Unix seconds.
    pub expires_at: i64,
}
