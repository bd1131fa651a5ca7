//! Errors of the core, each with a stable [`CoreError::code`] for UIs and scripts.

use std::path::PathBuf;

use sealpost_crypto::CryptoError;
use sealpost_crypto::password::Verdict;

/// What can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The password gate refused the password.
    #[error("the password is too weak: it could be cracked in {}", .0.crack_time)]
    WeakPassword(Box<Verdict>),
    /// The password did not open the vault.
    #[error("wrong password (or the vault's password wrap is damaged)")]
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
            Self::ProfileNotFound(_) => "profile_not_found",
            Self::ProfileExists(_) => "profile_exists",
            Self::VaultDamaged { .. } => "vault_damaged",
            Self::SecretDamaged { .. } => "secret_damaged",
            Self::InvalidSecretName(_) => "invalid_secret_name",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::Crypto(_) => "crypto",
            Self::Store(_) => "store",
            Self::Io { .. } => "io",
            Self::Injected(_) => "injected",
        }
    }
}
