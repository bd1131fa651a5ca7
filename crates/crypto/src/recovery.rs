//! The recovery code: the second way to the identity key, written down by the user.
//!
//! A code is 28 characters of Crockford's base32 in seven groups of four, such as
//! `7KQ2-M9XD-...`. The first 26 characters are random (130 bits); the last two are a
//! check value: the code's number modulo the prime 1021. Because 1021 is prime and larger
//! than the alphabet, every single mistyped character and every swap of two neighbours
//! among the random characters changes the check, so a typo is caught before any key is
//! derived. Reading is forgiving: case, spaces and dashes do not matter, and `O`, `I`, `L`
//! read as `0`, `1`, `1`.
//!
//! The key-encryption key is HKDF-SHA256 of the random part. The code has 130 bits of
//! entropy, so a slow KDF would add nothing.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::wrap::{self, KdfHeader, WrapContext};
use crate::{CryptoError, SecretBytes, SecretVec};

/// Crockford's base32 alphabet: digits and letters without I, L, O, U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random characters in a code (5 bits each: 130 bits).
pub const RANDOM_CHARS: usize = 26;
/// Check characters at the end.
pub const CHECK_CHARS: usize = 2;
/// All characters of a code, without separators.
pub const CODE_CHARS: usize = RANDOM_CHARS + CHECK_CHARS;
/// Characters per group when a code is written out.
pub const GROUP_CHARS: usize = 4;
/// The check modulus: a prime above the alphabet's size and below 32².
const CHECK_MODULUS: u32 = 1021;
// The random part carries at least 128 bits; checked when the crate compiles.
const _: () = assert!(RANDOM_CHARS * 5 >= 128);
/// HKDF info for the recovery KEK.
const KEK_INFO: &[u8] = b"sealpost/v1/recovery-kek";
/// HKDF info for the key that proves knowledge of the code to the sync server.
const AUTH_INFO: &[u8] = b"sealpost/v1/recovery-auth";

/// A recovery code. Wiped on drop; prints as `[redacted]` in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RecoveryCode {
    /// The random part, one 5-bit value per byte.
    symbols: [u8; RANDOM_CHARS],
}

impl RecoveryCode {
    /// A new random code.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut symbols = [0u8; RANDOM_CHARS];
        crate::os_random(&mut symbols)?;
        // 32 divides 256, so masking keeps every symbol uniform.
        for s in symbols.iter_mut() {
            *s &= 0x1f;
        }
        Ok(Self { symbols })
    }

    /// Reads a code as a person typed it. Checks the alphabet, the length and the check
    /// characters; no key is derived here.
    pub fn parse(input: &str) -> Result<Self, CryptoError> {
        let mut values: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(CODE_CHARS));
        for c in input.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            let Some(v) = ALPHABET.iter().position(|&a| char::from(a) == c) else {
                return Err(CryptoError::RecoveryCodeFormat {
                    expected: CODE_CHARS,
                    found: "it contains a character outside the alphabet".to_owned(),
                });
            };
            values.push(v as u8); // position < 32
        }
        if values.len() != CODE_CHARS {
            return Err(CryptoError::RecoveryCodeFormat {
                expected: CODE_CHARS,
                found: format!("{} were given", values.len()),
            });
        }
        let mut symbols = [0u8; RANDOM_CHARS];
        let (random, check) = values.split_at(RANDOM_CHARS);
        symbols.copy_from_slice(random);
        let code = Self { symbols };
        let expected = code.check_symbols();
        if check != expected {
            return Err(CryptoError::RecoveryCodeChecksum);
        }
        Ok(code)
    }

    fn check_symbols(&self) -> [u8; CHECK_CHARS] {
        let v = self
            .symbols
            .iter()
            .fold(0u32, |acc, &s| (acc * 32 + u32::from(s)) % CHECK_MODULUS);
        // v < 1021 < 32², so both digits are below 32.
        [(v / 32) as u8, (v % 32) as u8]
    }

    /// The code as it is shown once to the user: seven groups of four, dash-separated.
    pub fn display(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS + CODE_CHARS / GROUP_CHARS));
        let check = self.check_symbols();
        for (i, &v) in self.symbols.iter().chain(check.iter()).enumerate() {
            if i > 0 && i % GROUP_CHARS == 0 {
                out.push('-');
            }
            out.push(
                ALPHABET
                    .get(usize::from(v & 0x1f))
                    .map_or('0', |&b| char::from(b)),
            );
        }
        out
    }

    fn kek(&self, salt: &[u8]) -> Result<SecretBytes<32>, CryptoError> {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.symbols);
        let mut kek = SecretBytes::new([0u8; 32]);
        hk.expand(KEK_INFO, kek.expose_mut())
            .map_err(|_| CryptoError::Kdf("HKDF output length"))?;
        Ok(kek)
    }

    /// A key that proves knowledge of the code to the sync server, which stores only its
    /// SHA-256 ([`RecoveryCode::auth_verifier`]). Independent of the KEK (another HKDF
    /// label), so the server learns nothing that opens the recovery wrap.
    pub fn auth_key(&self) -> SecretBytes<32> {
        let hk = Hkdf::<Sha256>::new(None, &self.symbols);
        let mut key = SecretBytes::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(AUTH_INFO, key.expose_mut());
        key
    }

    /// SHA-256 of [`RecoveryCode::auth_key`]: what the server keeps. With 130 bits behind
    /// it, a stolen verifier cannot be inverted.
    pub fn auth_verifier(&self) -> [u8; 32] {
        auth_verifier(&self.auth_key())
    }

    /// Seals `plaintext` under a KEK derived from this code with a fresh salt.
    pub fn seal(&self, ctx: &WrapContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut salt = [0u8; crate::kdf::SALT_LEN];
        crate::os_random(&mut salt)?;
        let kek = self.kek(&salt)?;
        wrap::seal(&kek, KdfHeader::HkdfSha256 { salt }, ctx, plaintext)
    }

    /// Opens a wrap sealed with [`RecoveryCode::seal`].
    pub fn open(&self, ctx: &WrapContext<'_>, blob: &[u8]) -> Result<SecretVec, CryptoError> {
        let parsed = wrap::parse(blob)?;
        let KdfHeader::HkdfSha256 { salt } = parsed.kdf else {
            wrap::expect_kdf(&parsed.kdf, "a recovery code (HKDF)", |_| false)?;
            return Err(CryptoError::Authentication);
        };
        let kek = self.kek(&salt)?;
        wrap::open(&kek, &parsed, ctx)
    }
}

/// SHA-256 of a recovery authentication key, as the server computes it.
pub fn auth_verifier(auth_key: &SecretBytes<32>) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(auth_key.expose()).into()
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Purpose;

    #[test]
    fn round_trips_through_its_written_form() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), CODE_CHARS + 6);
        assert_eq!(shown.split('-').count(), 7);
        assert!(shown.split('-').all(|g| g.len() == GROUP_CHARS));
        assert_eq!(RecoveryCode::parse(&shown).unwrap(), code);
        // Forgiving reading: lower case, spaces instead of dashes.
        let sloppy = shown.to_lowercase().replace('-', " ");
        assert_eq!(RecoveryCode::parse(&sloppy).unwrap(), code);
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let code = RecoveryCode::generate().unwrap();
        let shown: Vec<char> = code.display().chars().collect();
        for i in 0..shown.len() {
            if shown[i] == '-' {
                continue;
            }
            for &a in ALPHABET.iter() {
                let a = char::from(a);
                if a == shown[i] {
                    continue;
                }
                let mut typo = shown.clone();
                typo[i] = a;
                let typo: String = typo.into_iter().collect();
                assert_eq!(
                    RecoveryCode::parse(&typo).unwrap_err(),
                    CryptoError::RecoveryCodeChecksum,
                    "position {i}"
                );
            }
        }
    }

    #[test]
    fn every_adjacent_swap_in_the_random_part_is_caught() {
        let code = RecoveryCode::generate().unwrap();
        let compact: Vec<char> = code.display().chars().filter(|&c| c != '-').collect();
        for i in 0..RANDOM_CHARS - 1 {
            if compact[i] == compact[i + 1] {
                continue;
            }
            let mut swapped = compact.clone();
            swapped.swap(i, i + 1);
            let swapped: String = swapped.into_iter().collect();
            assert!(RecoveryCode::parse(&swapped).is_err(), "swap at {i}");
        }
    }

    #[test]
    fn wrong_length_and_alphabet_are_explained() {
        assert!(matches!(
            RecoveryCode::parse("ABCD-EFGH"),
            Err(CryptoError::RecoveryCodeFormat { .. })
        ));
        assert!(matches!(
            RecoveryCode::parse("UUUU-UUUU-UUUU-UUUU-UUUU-UUUU-UUUU"),
            Err(CryptoError::RecoveryCodeFormat { .. })
        ));
    }

    #[test]
    fn seals_and_opens_only_with_the_same_code() {
        let code = RecoveryCode::generate().unwrap();
        let other = RecoveryCode::generate().unwrap();
        let ctx = WrapContext::new(Purpose::IdentityByRecovery, b"owner");
        let blob = code.seal(&ctx, b"identity").unwrap();
        assert_eq!(code.open(&ctx, &blob).unwrap().expose(), b"identity");
        assert_eq!(
            other.open(&ctx, &blob).unwrap_err(),
            CryptoError::Authentication
        );
    }

    #[test]
    fn the_auth_key_is_not_the_kek() {
        let code = RecoveryCode::generate().unwrap();
        let kek = code.kek(&[0u8; 16]).unwrap();
        assert_ne!(code.auth_key(), kek);
        assert_eq!(code.auth_verifier(), auth_verifier(&code.auth_key()));
        assert_ne!(
            code.auth_verifier(),
            RecoveryCode::generate().unwrap().auth_verifier()
        );
    }

    #[test]
    fn debug_is_redacted() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.display();
        let first_group = shown.split('-').next().unwrap();
        assert!(!format!("{code:?}").contains(first_group));
    }
}
