//! The identity key: 64 random bytes made on the device, the root of every other key.
//!
//! It never exists outside memory in the clear. It is stored only wrapped (by a KEK from
//! the password, from the recovery code, and later from OPAQUE's export key), and the keys
//! that do the daily work are derived from it with HKDF-SHA256 under distinct labels, so
//! no two purposes ever share a key.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::kdf::Argon2Params;
use crate::wrap::{self, WrapContext};
use crate::{CryptoError, Password, RecoveryCode, SecretBytes, SecretVec};

/// Length of the identity key in bytes.
pub const IDENTITY_KEY_LEN: usize = 64;

/// A 32-byte key derived from the identity key.
pub type SubKey = SecretBytes<32>;

/// The labels subkeys are derived under. Each is used for one purpose only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKeyLabel {
    /// Seals every secret in the local store.
    Vault,
    /// Seals the settings blob synced through the server.
    Settings,
}

impl SubKeyLabel {
    /// The HKDF info string.
    pub fn info(self) -> &'static [u8] {
        match self {
            Self::Vault => b"sealpost/v1/subkey/vault",
            Self::Settings => b"sealpost/v1/subkey/settings",
        }
    }
}

/// The identity key. Compared in constant time, wiped on drop, never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey(SecretBytes<IDENTITY_KEY_LEN>);

impl IdentityKey {
    /// A new identity key from the operating system's RNG.
    pub fn generate() -> Result<Self, CryptoError> {
        SecretBytes::random().map(Self)
    }

    fn from_unwrapped(bytes: SecretVec) -> Result<Self, CryptoError> {
        SecretBytes::from_slice(bytes.expose())
            .map(Self)
            .ok_or(CryptoError::WrongLength {
                what: "identity key",
                found: bytes.len(),
                expected: IDENTITY_KEY_LEN,
            })
    }

    /// Derives the subkey for one purpose.
    pub fn subkey(&self, label: SubKeyLabel) -> Result<SubKey, CryptoError> {
        let hk = Hkdf::<Sha256>::new(None, self.0.expose());
        let mut key = SecretBytes::new([0u8; 32]);
        hk.expand(label.info(), key.expose_mut())
            .map_err(|_| CryptoError::Kdf("HKDF output length"))?;
        Ok(key)
    }

    /// Wraps under a KEK derived from `password` (Argon2id at `params`, fresh salt).
    pub fn wrap_with_password(
        &self,
        password: &Password,
        params: Argon2Params,
        ctx: &WrapContext<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        wrap::seal_with_password(password, params, ctx, self.0.expose())
    }

    /// Wraps under an already derived password KEK (see [`wrap::password_kek`]), so a
    /// caller can run Argon2 before it takes a lock.
    pub fn wrap_with_derived_kek(
        &self,
        kek: &SecretBytes<32>,
        header: wrap::KdfHeader,
        ctx: &WrapContext<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        wrap::seal(kek, header, ctx, self.0.expose())
    }

    /// Unwraps a password wrap.
    pub fn unwrap_with_password(
        password: &Password,
        ctx: &WrapContext<'_>,
        blob: &[u8],
    ) -> Result<Self, CryptoError> {
        Self::from_unwrapped(wrap::open_with_password(password, ctx, blob)?)
    }

    /// Wraps under the recovery code.
    pub fn wrap_with_recovery_code(
        &self,
        code: &RecoveryCode,
        ctx: &WrapContext<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        code.seal(ctx, self.0.expose())
    }

    /// Unwraps a recovery-code wrap.
    pub fn unwrap_with_recovery_code(
        code: &RecoveryCode,
        ctx: &WrapContext<'_>,
        blob: &[u8],
    ) -> Result<Self, CryptoError> {
        Self::from_unwrapped(code.open(ctx, blob)?)
    }

    /// Wraps under a key given directly (the cloud KEK).
    pub fn wrap_with_key(
        &self,
        kek: &SubKey,
        ctx: &WrapContext<'_>,
    ) -> Result<Vec<u8>, CryptoError> {
        wrap::seal_with_key(kek, ctx, self.0.expose())
    }

    /// Unwraps a direct-key wrap.
    pub fn unwrap_with_key(
        kek: &SubKey,
        ctx: &WrapContext<'_>,
        blob: &[u8],
    ) -> Result<Self, CryptoError> {
        Self::from_unwrapped(wrap::open_with_key(kek, ctx, blob)?)
    }

    /// The raw key bytes, for tests that prove the key never leaks.
    #[doc(hidden)]
    pub fn dangerous_expose_for_leak_tests(&self) -> &[u8; IDENTITY_KEY_LEN] {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Purpose;

    #[test]
    fn subkeys_are_distinct_and_stable() {
        let id = IdentityKey::generate().unwrap();
        let vault = id.subkey(SubKeyLabel::Vault).unwrap();
        let settings = id.subkey(SubKeyLabel::Settings).unwrap();
        assert_ne!(vault, settings);
        assert_eq!(vault, id.subkey(SubKeyLabel::Vault).unwrap());
        assert_ne!(&vault.expose()[..], &id.0.expose()[..32]);
    }

    #[test]
    fn two_identity_keys_differ() {
        assert_ne!(
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap()
        );
    }

    #[test]
    fn wraps_round_trip_by_password_code_and_key() {
        let id = IdentityKey::generate().unwrap();
        let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
        let ctx = WrapContext::new(Purpose::IdentityByPassword, b"p1");
        let blob = id
            .wrap_with_password(&pw, Argon2Params::SHIPPED, &ctx)
            .unwrap();
        assert_eq!(
            IdentityKey::unwrap_with_password(&pw, &ctx, &blob).unwrap(),
            id
        );

        let code = RecoveryCode::generate().unwrap();
        let rctx = WrapContext::new(Purpose::IdentityByRecovery, b"p1");
        let blob = id.wrap_with_recovery_code(&code, &rctx).unwrap();
        assert_eq!(
            IdentityKey::unwrap_with_recovery_code(&code, &rctx, &blob).unwrap(),
            id
        );
        // A recovery wrap is not a password wrap.
        assert!(matches!(
            IdentityKey::unwrap_with_password(&pw, &rctx, &blob),
            Err(CryptoError::WrongKdf { .. })
        ));

        let kek = SecretBytes::random().unwrap();
        let cctx = WrapContext::new(Purpose::IdentityByCloud, b"alice");
        let blob = id.wrap_with_key(&kek, &cctx).unwrap();
        assert_eq!(
            IdentityKey::unwrap_with_key(&kek, &cctx, &blob).unwrap(),
            id
        );
    }

    #[test]
    fn a_wrapped_value_of_the_wrong_length_is_not_an_identity_key() {
        let kek = SecretBytes::random().unwrap();
        let ctx = WrapContext::new(Purpose::IdentityByCloud, b"alice");
        let blob = wrap::seal_with_key(&kek, &ctx, &[0u8; 32]).unwrap();
        assert!(matches!(
            IdentityKey::unwrap_with_key(&kek, &ctx, &blob),
            Err(CryptoError::WrongLength { .. })
        ));
    }
}
