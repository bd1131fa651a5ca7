//! The crate's error type, and the reasons a message cannot be decrypted.

use std::fmt;

/// What can go wrong with keys, building mail or exporting and importing.
///
/// Reading a message never fails with this type for bad *ciphertext*: that becomes
/// [`crate::EncryptionStatus::CannotDecrypt`] with a [`DecryptFailure`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgpError {
    /// Sequoia refused an operation or could not parse key material.
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
    /// An address is not a valid e-mail address for a User ID.
    #[error("not a usable e-mail address: {0:?}")]
    InvalidAddress(String),
    /// The sender's From address is not a User ID of the sender's key: recipients would
    /// see a bad signature, so such mail is not built.
    #[error("the From address {0:?} is not bound to the sender's key")]
    FromNotBound(String),
    /// A new key needs at least one address.
    #[error("a key needs at least one e-mail address")]
    NoAddress,
    /// A certificate has no encryption-capable key that is valid now.
    #[error("certificate {fingerprint} has no usable encryption key")]
    NoEncryptionKey {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// A key has no signing-capable key with secret material that is valid now.
    #[error("certificate {fingerprint} has no usable signing key")]
    NoSigningKey {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// The certificate is revoked.
    #[error("certificate {fingerprint} is revoked")]
    Revoked {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// The certificate has expired.
    #[error("certificate {fingerprint} has expired")]
    Expired {
        /// The certificate's fingerprint.
        fingerprint: String,
    },
    /// Import was given a public key (or a key whose secret parts are missing).
    #[error("this is a public key only; a secret key is needed")]
    NotASecretKey,
    /// The data holds more than one certificate (or none).
    #[error("expected exactly one certificate, found {0}")]
    CertificateCount(usize),
    /// The secret key is protected and no passphrase was given.
    #[error("the secret key is protected by a passphrase")]
    PassphraseNeeded,
    /// The passphrase does not unlock the secret key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The primary key's secret is not available, so the certificate cannot be changed.
    #[error("the primary key's secret is not available (cannot renew or re-bind)")]
    PrimaryKeyUnavailable,
    /// Randomness could not be drawn from the operating system.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// A mail could not be parsed or built.
    #[error("mail: {0}")]
    Mime(String),
    /// A reply or forward of an encrypted message must itself be encrypted.
    #[error("a reply to or forward of an encrypted message must be encrypted")]
    ReplyMustBeEncrypted,
}

impl PgpError {
    /// Wraps an error from Sequoia (its `anyhow::Error`) without exposing its type.
    pub(crate) fn openpgp(e: impl fmt::Display) -> Self {
        Self::OpenPgp(e.to_string())
    }
}

/// Why an encrypted message could not be decrypted. No plaintext is ever returned with one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptFailure {
    /// The encrypted data has no integrity protection (a Symmetrically Encrypted Data
    /// packet, tag 9, without MDC): refused outright (EFAIL).
    #[error("the message has no integrity protection")]
    NoIntegrityProtection,
    /// The integrity check (MDC or AEAD tag) failed: the ciphertext was modified.
    #[error("the message was modified (integrity check failed)")]
    IntegrityCheckFailed,
    /// None of our secret keys can decrypt the session key.
    #[error("no secret key for this message")]
    NoMatchingKey,
    /// The only secret keys the message is addressed to are locked by a password.
    #[error("the secret key {fingerprint} is locked")]
    KeyLocked {
        /// The locked key's certificate.
        fingerprint: String,
    },
    /// The plaintext is larger than the limit (this also stops decompression bombs).
    #[error("the decrypted message is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The data is OpenPGP but not an encrypted message.
    #[error("the data is not an encrypted OpenPGP message")]
    NotEncrypted,
    /// The data is malformed, truncated or uses something we do not support.
    #[error("malformed or unsupported OpenPGP data: {0}")]
    Malformed(String),
    /// The decrypted content is not a usable MIME entity.
    #[error("the decrypted content is not a valid MIME entity")]
    BadMime,
}
