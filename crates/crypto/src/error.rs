//! The one error type of this crate. Messages name what is wrong without echoing secrets.

/// What can go wrong in the key hierarchy.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// A password is longer than we accept.
    #[error("the password is longer than {max} characters")]
    PasswordTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A wrapped blob is shorter than its format requires.
    #[error("the {what} is truncated")]
    Truncated {
        /// Which part was missing.
        what: &'static str,
    },
    /// The bytes are not a Sealpost wrap at all.
    #[error("not a Sealpost wrap (bad magic bytes)")]
    BadMagic,
    /// A wrap written by a newer format version, or a damaged version byte.
    #[error("unsupported wrap format version {0}")]
    UnsupportedVersion(u8),
    /// An algorithm identifier we do not know.
    #[error("unsupported {what} identifier {id}")]
    UnsupportedAlgorithm {
        /// Which kind of algorithm (AEAD, KDF).
        what: &'static str,
        /// The identifier found.
        id: u8,
    },
    /// A wrap asks for a KDF weaker than we ever ship: refused, so a tampered blob cannot
    /// make guessing cheaper.
    #[error(
        "the wrap's KDF parameters (m={m_kib} KiB, t={t}, p={p}) are below the minimum of \
         m={min_m_kib} KiB, t={min_t}"
    )]
    WeakKdfParams {
        /// Memory in KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
        /// The floor's memory.
        min_m_kib: u32,
        /// The floor's passes.
        min_t: u32,
    },
    /// A wrap asks for a KDF so expensive that running it would be a denial of service.
    #[error("the wrap's KDF parameters (m={m_kib} KiB, t={t}, p={p}) exceed the maximum")]
    ExcessiveKdfParams {
        /// Memory in KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// The wrap was recorded for a different KDF than the caller supplied a key for
    /// (for example a password wrap opened with a recovery code).
    #[error("the wrap was made with {found}, not {expected}")]
    WrongKdf {
        /// What the caller expected.
        expected: &'static str,
        /// What the blob says.
        found: &'static str,
    },
    /// The AEAD tag did not verify: a wrong password or key, a damaged blob, or a blob
    /// that belongs to another purpose, owner or item.
    #[error("decryption failed: wrong key, or the data is damaged or belongs elsewhere")]
    Authentication,
    /// Argon2 refused its inputs (should not happen with validated parameters).
    #[error("the key derivation function failed: {0}")]
    Kdf(&'static str),
    /// A recovery code with characters outside its alphabet or of the wrong length.
    #[error(
        "a recovery code is {expected} characters from 0-9 and A-Z (without I, L, O, U); {found}"
    )]
    RecoveryCodeFormat {
        /// The expected number of characters.
        expected: usize,
        /// What was wrong.
        found: String,
    },
    /// A recovery code whose checksum does not match: a typo.
    #[error("the recovery code has a typo (its checksum does not match); check each group")]
    RecoveryCodeChecksum,
    /// A plaintext that was expected to be a key has the wrong length.
    #[error("the unwrapped {what} has length {found}, expected {expected}")]
    WrongLength {
        /// What was unwrapped.
        what: &'static str,
        /// Its length.
        found: usize,
        /// The length it must have.
        expected: usize,
    },
}
