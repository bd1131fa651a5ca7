//! Argon2id, the only password-based KDF, with its parameters stored beside every wrap.
//!
//! Parameters travel with the data so they can be raised later without breaking old
//! wraps. A stored parameter set is checked before use: below [`Argon2Params::FLOOR`] it
//! is refused (a tampered blob must not make guessing cheaper), above the ceiling it is
//! refused too (a tampered blob must not make unlocking a denial of service).

use argon2::{Algorithm, Argon2, Params, Version};

use crate::{CryptoError, Password, SecretBytes};

/// Length of every KDF salt, in bytes (RFC 9106 recommends 128 bits).
pub const SALT_LEN: usize = 16;
/// Length of a derived key-encryption key, in bytes.
pub const KEK_LEN: usize = 32;

/// Largest memory cost a stored wrap may ask for: 4 GiB.
const MAX_M_KIB: u32 = 4 * 1024 * 1024;
/// Largest number of passes a stored wrap may ask for.
const MAX_T: u32 = 64;
/// Largest number of lanes a stored wrap may ask for.
const MAX_P: u32 = 64;

/// Argon2id cost parameters, as stored in a wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory, in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// What new wraps use: RFC 9106 §4's second recommended option (t=3, p=4) with four
    /// times its memory (256 MiB), which brings one evaluation to about half a second on
    /// a 2-core desktop: [`crate::password::CPU_SECONDS_PER_GUESS`] CPU-seconds, measured.
    pub const SHIPPED: Self = Self {
        m_kib: 256 * 1024,
        t: 3,
        p: 4,
    };

    /// The weakest parameters a stored wrap may carry: RFC 9106's second recommended
    /// option (64 MiB, t=3). Below it a wrap is refused without running the KDF.
    pub const FLOOR: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Checks these parameters against the floor and the ceiling.
    pub fn check(self) -> Result<Self, CryptoError> {
        if self.m_kib < Self::FLOOR.m_kib || self.t < Self::FLOOR.t || self.p == 0 {
            return Err(CryptoError::WeakKdfParams {
                m_kib: self.m_kib,
                t: self.t,
                p: self.p,
                min_m_kib: Self::FLOOR.m_kib,
                min_t: Self::FLOOR.t,
            });
        }
        if self.m_kib > MAX_M_KIB || self.t > MAX_T || self.p > MAX_P {
            return Err(CryptoError::ExcessiveKdfParams {
                m_kib: self.m_kib,
                t: self.t,
                p: self.p,
            });
        }
        Ok(self)
    }
}

/// Derives a key-encryption key from a password. The parameters are checked first.
pub fn derive_kek(
    password: &Password,
    salt: &[u8; SALT_LEN],
    params: Argon2Params,
) -> Result<SecretBytes<KEK_LEN>, CryptoError> {
    let params = params.check()?;
    let argon_params = Params::new(params.m_kib, params.t, params.p, Some(KEK_LEN))
        .map_err(|_| CryptoError::Kdf("invalid Argon2 parameters"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut kek = SecretBytes::new([0u8; KEK_LEN]);
    argon
        .hash_password_into(password.expose().as_bytes(), salt, kek.expose_mut())
        .map_err(|_| CryptoError::Kdf("Argon2 refused its input"))?;
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_parameters_meet_rfc9106_second_option() {
        let p = Argon2Params::SHIPPED;
        assert!(p.m_kib >= 64 * 1024 && p.t >= 3);
        assert_eq!(p.check(), Ok(p));
        assert_eq!(Argon2Params::FLOOR.check(), Ok(Argon2Params::FLOOR));
    }

    #[test]
    fn below_floor_is_refused() {
        for weak in [
            Argon2Params {
                m_kib: 19 * 1024,
                ..Argon2Params::SHIPPED
            },
            Argon2Params {
                t: 1,
                ..Argon2Params::SHIPPED
            },
            Argon2Params {
                p: 0,
                ..Argon2Params::SHIPPED
            },
        ] {
            assert!(
                matches!(weak.check(), Err(CryptoError::WeakKdfParams { .. })),
                "{weak:?}"
            );
        }
    }

    #[test]
    fn absurd_parameters_are_refused_before_allocating() {
        let huge = Argon2Params {
            m_kib: u32::MAX,
            ..Argon2Params::SHIPPED
        };
        assert!(matches!(
            huge.check(),
            Err(CryptoError::ExcessiveKdfParams { .. })
        ));
        let pw = Password::new("x").unwrap();
        assert!(derive_kek(&pw, &[0; SALT_LEN], huge).is_err());
    }

    #[test]
    fn derivation_is_deterministic_and_salted() {
        let pw = Password::new("correct horse").unwrap();
        let a = derive_kek(&pw, &[1; SALT_LEN], Argon2Params::SHIPPED).unwrap();
        let b = derive_kek(&pw, &[1; SALT_LEN], Argon2Params::SHIPPED).unwrap();
        let c = derive_kek(&pw, &[2; SALT_LEN], Argon2Params::SHIPPED).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
