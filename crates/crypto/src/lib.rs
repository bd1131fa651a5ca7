//! Sealpost's key hierarchy, pure and synchronous: no I/O, no clocks, no async.
//!
//! ```text
//! password ──gate──┬─ Argon2id ──► local KEK ──wraps──► identity key (64 random bytes)
//!                  └─ (OPAQUE, in a later crate) ──► cloud KEK ──wraps──► identity key
//! identity key ─HKDF─► vault key     ─seals─► every secret in the local store
//!              ─HKDF─► settings key  ─seals─► the settings blob synced through the server
//! recovery code (130 random bits, checksummed) ─HKDF─► recovery KEK ──wraps──► identity key
//! ```
//!
//! What this crate is not: it stores nothing and talks to nothing. The `sealpost-core`
//! crate decides where wraps live; this one decides what a wrap *is*.
//!
//! # Reading order
//!
//! - [`secret`]: the types every secret lives in. They wipe on drop, print as
//!   `[redacted]` and compare in constant time.
//! - [`password`]: a [`Password`] is Unicode-normalised (NFKC) once, at the edge; the
//!   [`password::gate`] refuses a password whose estimated offline cracking cost at our
//!   KDF settings is under [`password::MIN_CRACK_YEARS`] years.
//! - [`kdf`]: Argon2id with parameters stored beside every wrap, and a floor below which a
//!   stored parameter set is refused (a tampered blob cannot downgrade the KDF).
//! - [`identity`]: the identity key and the subkeys derived from it with distinct labels.
//! - [`wrap`]: the one AEAD envelope format (XChaCha20-Poly1305), versioned and
//!   self-describing, whose associated data binds purpose, owner and item.
//! - [`recovery`]: the recovery code a person writes down, with a checksum that catches
//!   a typo before any key is derived.
//!
//! Every algorithm and parameter choice is a named constant in the module that owns it.
//!
//! # Example
//!
//! ```
//! use sealpost_crypto::{IdentityKey, Password, WrapContext, Purpose, kdf::Argon2Params};
//!
//! let password = Password::new("correct horse battery staple orbit")?;
//! let identity = IdentityKey::generate()?;
//! let ctx = WrapContext::new(Purpose::IdentityByPassword, b"profile-1234");
//! let blob = identity.wrap_with_password(&password, Argon2Params::SHIPPED, &ctx)?;
//! let again = IdentityKey::unwrap_with_password(&password, &ctx, &blob)?;
//! assert_eq!(identity, again);
//! # Ok::<(), sealpost_crypto::CryptoError>(())
//! ```

pub mod error;
pub mod identity;
pub mod kdf;
pub mod opaque;
pub mod password;
pub mod recovery;
pub mod secret;
pub mod wrap;

pub use error::CryptoError;
pub use identity::{IdentityKey, SubKey, SubKeyLabel};
pub use password::Password;
pub use recovery::RecoveryCode;
pub use secret::{SecretBytes, SecretVec};
pub use wrap::{Purpose, WrapContext};

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    use rand::RngCore;
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|_| CryptoError::Randomness)
}
