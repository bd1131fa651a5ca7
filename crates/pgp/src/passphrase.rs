//! Passphrases: the one shown once to protect an exported key, and those typed to import one.

use std::fmt;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::PgpError;

/// The 32 symbols of a generated passphrase: lower-case letters and digits without the
/// look-alikes `0 1 l o`, so it can be read off a screen and typed without mistakes.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Symbols in a generated passphrase: 30 × 5 bits = 150 bits of entropy.
pub const GENERATED_SYMBOLS: usize = 30;
/// Symbols per group; groups are joined by `-`.
const GROUP: usize = 5;

/// A passphrase, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Takes ownership of `text` (for example what the user typed to import a key).
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// A fresh passphrase with 150 bits from the operating system's RNG, in six groups
    /// of five symbols, such as `k7dqz-...`. It is shown to the user once.
    pub fn generate() -> Result<Self, PgpError> {
        let mut random = Zeroizing::new([0u8; GENERATED_SYMBOLS]);
        rand::rngs::OsRng
            .try_fill_bytes(random.as_mut())
            .map_err(|_| PgpError::Randomness)?;
        let mut out = Zeroizing::new(String::with_capacity(GENERATED_SYMBOLS + 6));
        for (i, byte) in random.iter().enumerate() {
            if i > 0 && i % GROUP == 0 {
                out.push('-');
            }
            // Five low bits of each random byte: uniform over the 32 symbols.
            let symbol = ALPHABET
                .get(usize::from(byte & 0x1f))
                .copied()
                .unwrap_or(b'a');
            out.push(char::from(symbol));
        }
        Ok(Self(out))
    }

    /// The passphrase. Every call site is a place a secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// As Sequoia's own wiping password type.
    pub(crate) fn to_openpgp(&self) -> sequoia_openpgp::crypto::Password {
        sequoia_openpgp::crypto::Password::from(self.0.as_str())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_have_the_documented_shape_and_differ() {
        let a = Passphrase::generate().unwrap();
        let b = Passphrase::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let groups: Vec<&str> = a.expose().split('-').collect();
        assert_eq!(groups.len(), 6);
        for g in groups {
            assert_eq!(g.len(), 5);
            assert!(g.bytes().all(|c| ALPHABET.contains(&c)));
        }
    }

    #[test]
    fn debug_is_redacted() {
        let p = Passphrase::new("hunter2 hunter2".into());
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"));
    }
}
