//! Errors of the core, each with a stable [`CoreError::code`] for UIs and scripts.

use std::path::PathBuf;

use sealpost_crypto::CryptoError;
use sealpost_crypto::password::Verdict;

/// What can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The password gate refused the password.
    #[error(
        "This password is too easy to guess: it could be cracked in {}{}",
        .0.crack_time,
        .0.warning.as_ref().map(|w| format!(". {w}")).unwrap_or_default()
    )]
    WeakPassword(Box<Verdict>),
    /// The password did not open the vault.
    #[error("That password is not right")]
    WrongPassword,
    /// The recovery code did not open the vault.
    #[error("wrong recovery code (or the vault's recovery wrap is damaged)")]
    WrongRecoveryCode,
    /// A recovery code that is malformed or has a typo; nothing was tried.
    #[error("{0}")]
    BadRecoveryCode(CryptoError),
    /// A password that cannot be used at all (too long).
    #[error("{0}")]
    BadPassword(CryptoError),
    /// This device's vault has no recovery wrap (it was set up by signing in).
    #[error(
        "this device was set up by signing in and keeps no recovery wrap; recover through the sync server"
    )]
    NoLocalRecovery,
    /// There is no profile in the directory.
    #[error("no Sealpost profile in {0}")]
    ProfileNotFound(PathBuf),
    /// The directory already holds a profile.
    #[error("a Sealpost profile already exists in {0}")]
    ProfileExists(PathBuf),
    /// A part of the vault is damaged: it does not parse or does not authenticate.
    #[error("the vault is damaged: {what}: {reason}")]
    VaultDamaged {
        /// Which part.
        what: String,
        /// Why it is judged damaged.
        reason: String,
    },
    /// A stored secret is damaged or belongs to another profile or row.
    #[error("the stored secret {name:?} is damaged or does not belong here: {reason}")]
    SecretDamaged {
        /// The secret's name.
        name: String,
        /// Why.
        reason: CryptoError,
    },
    /// A secret name that cannot be stored.
    #[error("invalid secret name {0:?}: use 1 to 256 printable characters")]
    InvalidSecretName(String),
    /// The store was written by a newer Sealpost.
    #[error("the store at {path} has schema version {found}; this Sealpost knows up to {known}")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// The crypto layer failed in a way that is not about the user's input.
    #[error("cryptography failed: {0}")]
    Crypto(#[from] CryptoError),
    /// SQLite failed.
    #[error("the local store failed: {0}")]
    Store(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The sync server could not be used.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// OPAQUE sign-in failed: wrong user name or password, or a locked account. The
    /// server does not say which.
    #[error(
        "sign-in failed: wrong user name or password, or the account is locked after too many \
         failed attempts (unlock it with the recovery code or from a signed-in device)"
    )]
    LoginFailed,
    /// The sync server is not the one this profile registered with.
    #[error("the sync server's identity changed ({0}); refusing to talk to it")]
    ServerMismatch(String),
    /// An OPAQUE message was malformed or the protocol refused to go on.
    #[error("the sign-in protocol failed: {0}")]
    Opaque(sealpost_crypto::opaque::OpaqueError),
    /// A user name that cannot be used.
    #[error("{0}")]
    BadUserName(#[from] sealpost_proto::UserNameError),
    /// OpenPGP refused: a key or certificate could not be made, read or used.
    #[error("{0}")]
    Pgp(#[from] sealpost_pgp::PgpError),
    /// The profile has an OpenPGP key already; importing another would replace it.
    #[error("this profile has an OpenPGP key already; replace it explicitly")]
    OwnKeyExists,
    /// The profile has no OpenPGP key yet.
    #[error("this profile has no OpenPGP key yet")]
    NoOwnKey,
    /// No key is known for the address (or nothing pending).
    #[error("no key known: {0}")]
    NoContact(String),
    /// The fingerprint the user gave is not the key's.
    #[error("the fingerprint does not match the key in use")]
    FingerprintMismatch,
    /// Not an e-mail address.
    #[error("{0}")]
    BadAddress(String),
    /// A request that cannot be carried out as given (the words say why); nothing
    /// changed.
    #[error("{0}")]
    BadInput(String),
    /// A Web Key Directory could not be asked.
    #[error("WKD: {0}")]
    Wkd(String),
    /// This profile has no sync account yet.
    #[error("this profile is not connected to a sync server; create an account or sign in")]
    NoSyncAccount,
    /// A mail server could not be used (connection, TLS, login, protocol).
    #[error("mail: {0}")]
    Mail(#[from] sealpost_mail::Error),
    /// An account check failed; the words say which server and why.
    #[error("{0}")]
    MailCheck(#[from] sealpost_mail::autoconfig::CheckError),
    /// No such mail account in this profile (or none at all).
    #[error("no mail account {0}")]
    NoMailAccount(String),
    /// The provider refused an OAuth2 account's grant (revoked, expired): the user must
    /// sign in to the account again. The words say which account and where.
    #[error("{0}")]
    OAuthSignInRequired(String),
    /// No such message, draft or folder in the local mail store.
    #[error("not in the mail store: {0}")]
    NotInMailStore(String),
    /// An encrypted send was refused: these recipients have no known key.
    #[error("cannot encrypt: no key known for {}", .0.join(", "))]
    NoRecipientKey(Vec<String>),
    /// The account still holds something the user wrote that exists nowhere else.
    #[error("{0}")]
    AccountBusy(String),
    /// The profile is locked (or there is none): unlock it first.
    #[error("the profile is locked; unlock it first")]
    Locked,
    /// The app's session thread is gone (it stopped, or a bug ended it).
    #[error("internal error: {0}")]
    Internal(String),
    /// A step was made to fail on purpose by a test.
    #[doc(hidden)]
    #[error("injected failure at {0}")]
    Injected(&'static str),
}

impl CoreError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WeakPassword(_) => "weak_password",
            Self::WrongPassword => "wrong_password",
            Self::WrongRecoveryCode => "wrong_recovery_code",
            Self::BadRecoveryCode(_) => "bad_recovery_code",
            Self::BadPassword(_) => "bad_password",
            Self::NoLocalRecovery => "no_local_recovery",
            Self::ProfileNotFound(_) => "profile_not_found",
            Self::ProfileExists(_) => "profile_exists",
            Self::VaultDamaged { .. } => "vault_damaged",
            Self::SecretDamaged { .. } => "secret_damaged",
            Self::InvalidSecretName(_) => "invalid_secret_name",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::Crypto(_) => "crypto",
            Self::Store(_) => "store",
            Self::Io { .. } => "io",
            Self::Sync(e) => match e.api_code() {
                Some("rate_limited") => "rate_limited",
                Some("account_exists") => "account_exists",
                Some("recovery_failed") => "wrong_recovery_code",
                Some(_) => "sync_refused",
                None => "sync_unreachable",
            },
            Self::LoginFailed => "login_failed",
            Self::ServerMismatch(_) => "server_mismatch",
            Self::Opaque(_) => "opaque",
            Self::BadUserName(_) => "bad_user_name",
            Self::NoSyncAccount => "no_sync_account",
            Self::Pgp(_) => "openpgp",
            Self::OwnKeyExists => "own_key_exists",
            Self::NoOwnKey => "no_own_key",
            Self::NoContact(_) => "no_contact",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::BadAddress(_) => "bad_address",
            Self::BadInput(_) => "bad_request",
            Self::Wkd(_) => "wkd",
            Self::Mail(_) => "mail",
            Self::MailCheck(_) => "mail_check",
            Self::NoMailAccount(_) => "no_mail_account",
            Self::OAuthSignInRequired(_) => "oauth_sign_in_required",
            Self::NotInMailStore(_) => "not_in_mail_store",
            Self::NoRecipientKey(_) => "no_recipient_key",
            Self::AccountBusy(_) => "account_busy",
            Self::Locked => "locked",
            Self::Internal(_) => "internal",
            Self::Injected(_) => "injected",
        }
    }
}

/// What can go wrong talking to the sync server.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server cannot be reached (or timed out).
    #[error(
        "The Sealpost server at {url} cannot be reached ({reason}): check the connection and try again"
    )]
    Unreachable {
        /// Where.
        url: String,
        /// Why (no secret in it).
        reason: String,
    },
    /// The server answered with an error.
    #[error("the sync server refused: {message} ({code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: String,
        /// For people.
        message: String,
    },
    /// The server's answer is not what the API says.
    #[error("the sync server sent an unexpected answer: {0}")]
    BadResponse(String),
}

impl SyncError {
    /// The API error code, if the server answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
