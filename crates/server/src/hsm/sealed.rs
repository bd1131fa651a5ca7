//! The sealed-blob format both HSM implementations write and read.
//!
//! ```text
//! offset  size        field
//! 0       1           version (1)
//! 1       1           k = length of the key id (1..=64)
//! 2       k           key id: printable ASCII, e.g. the PKCS#11 key label "seal-v1"
//! 2+k     1           n = length of the nonce / IV (1..=32)
//! 3+k     n           nonce (24 bytes for XChaCha20-Poly1305, 12 for AES-GCM)
//! 3+k+n   rest        ciphertext ‖ 16-byte tag
//! ```
//!
//! The AEAD's associated data is not the caller's `aad` alone but
//! [`associated_data`]: a domain string, the version, the key id and the caller's aad,
//! each length-prefixed, so the version byte and key id are authenticated and no two
//! (key id, aad) pairs give the same bytes. The nonce is authenticated by the AEAD itself
//! (another nonce gives another keystream and tag).
//!
//! Parsing is bounds-checked and never panics: any malformed input is
//! [`HsmError::Malformed`].

use super::HsmError;

/// The version byte of blobs written now.
pub(crate) const VERSION: u8 = 1;
/// The longest key id a blob may carry.
pub(crate) const MAX_KEY_ID_LEN: usize = 64;
/// The longest nonce a blob may carry.
pub(crate) const MAX_NONCE_LEN: usize = 32;
/// The AEAD tag length of both implementations (Poly1305 and 128-bit GCM tags).
pub(crate) const TAG_LEN: usize = 16;

/// Separates our associated data from any other use of the same keys.
const AAD_DOMAIN: &[u8] = b"sealpost/hsm-seal";

/// A blob split into its fields, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealedBlob<'a> {
    /// The name of the key that sealed it.
    pub(crate) key_id: &'a str,
    /// The nonce (IV) the blob was sealed with.
    pub(crate) nonce: &'a [u8],
    /// The ciphertext followed by the tag (at least [`TAG_LEN`] bytes).
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> SealedBlob<'a> {
    /// Splits `bytes` into its fields, checking every length.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, HsmError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(HsmError::Malformed("empty blob"))?;
        if version != VERSION {
            return Err(HsmError::Malformed("unsupported sealed-blob version"));
        }
        let (key_id, rest) = take_prefixed(rest, MAX_KEY_ID_LEN, "bad key id length")?;
        let key_id = std::str::from_utf8(key_id)
            .ok()
            .filter(|id| is_valid_key_id(id))
            .ok_or(HsmError::Malformed("key id is not printable ASCII"))?;
        let (nonce, ciphertext) = take_prefixed(rest, MAX_NONCE_LEN, "bad nonce length")?;
        if ciphertext.len() < TAG_LEN {
            return Err(HsmError::Malformed("ciphertext shorter than its tag"));
        }
        Ok(Self {
            key_id,
            nonce,
            ciphertext,
        })
    }

    /// Serializes a blob. `key_id` and `nonce` come from the implementation, never from
    /// input, so their lengths are checked when the implementation is built
    /// ([`check_key_id`]) and by the constants of its cipher.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, HsmError> {
        let key_id_len = length_byte(self.key_id.len(), MAX_KEY_ID_LEN)?;
        let nonce_len = length_byte(self.nonce.len(), MAX_NONCE_LEN)?;
        let mut out =
            Vec::with_capacity(3 + self.key_id.len() + self.nonce.len() + self.ciphertext.len());
        out.push(VERSION);
        out.push(key_id_len);
        out.extend_from_slice(self.key_id.as_bytes());
        out.push(nonce_len);
        out.extend_from_slice(self.nonce);
        out.extend_from_slice(self.ciphertext);
        Ok(out)
    }
}

/// The AEAD associated data for a blob under `key_id` with the caller's `aad`:
/// `len ‖ domain ‖ version ‖ len ‖ key id ‖ len ‖ aad`, lengths as 8-byte big-endian.
pub(crate) fn associated_data(key_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + AAD_DOMAIN.len() + 1 + 8 + key_id.len() + 8 + aad.len());
    push_prefixed(&mut out, AAD_DOMAIN);
    out.push(VERSION);
    push_prefixed(&mut out, key_id.as_bytes());
    push_prefixed(&mut out, aad);
    out
}

/// Checks that `key_id` can name a key in a blob: 1..=64 printable ASCII characters.
pub(crate) fn check_key_id(key_id: &str) -> Result<(), HsmError> {
    if is_valid_key_id(key_id) {
        Ok(())
    } else {
        Err(HsmError::Config(format!(
            "key id {key_id:?} must be 1 to {MAX_KEY_ID_LEN} printable ASCII characters"
        )))
    }
}

fn is_valid_key_id(key_id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&key_id.len()) && key_id.bytes().all(|b| b.is_ascii_graphic())
}

/// Splits `len ‖ bytes[len]` off the front of `input`; `len` is one byte, 1..=max.
fn take_prefixed<'a>(
    input: &'a [u8],
    max: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), HsmError> {
    let (&len, rest) = input.split_first().ok_or(HsmError::Malformed(what))?;
    let len = usize::from(len);
    if len == 0 || len > max {
        return Err(HsmError::Malformed(what));
    }
    if rest.len() < len {
        return Err(HsmError::Malformed("blob truncated"));
    }
    Ok(rest.split_at(len))
}

fn length_byte(len: usize, max: usize) -> Result<u8, HsmError> {
    if len == 0 || len > max {
        return Err(HsmError::Config(format!(
            "sealed-blob field of {len} bytes (must be 1..={max})"
        )));
    }
    u8::try_from(len).map_err(|_| HsmError::Config(format!("sealed-blob field of {len} bytes")))
}

fn push_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize → u64 is lossless on every platform Rust supports.
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        SealedBlob {
            key_id: "seal-v1",
            nonce: &[7; 12],
            ciphertext: &[9; 40],
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let bytes = sample();
        assert_eq!(bytes.len(), 1 + 1 + 7 + 1 + 12 + 40);
        let blob = SealedBlob::parse(&bytes).unwrap();
        assert_eq!(blob.key_id, "seal-v1");
        assert_eq!(blob.nonce, &[7; 12]);
        assert_eq!(blob.ciphertext, &[9; 40]);
    }

    #[test]
    fn every_truncation_is_malformed_not_a_panic() {
        let bytes = sample();
        // Everything shorter than header + tag is malformed; longer prefixes parse
        // (the AEAD then rejects them).
        let min_len = 1 + 1 + 7 + 1 + 12 + TAG_LEN;
        for len in 0..min_len {
            assert!(
                matches!(
                    SealedBlob::parse(&bytes[..len]),
                    Err(HsmError::Malformed(_))
                ),
                "prefix of {len} bytes"
            );
        }
        assert!(SealedBlob::parse(&bytes[..min_len]).is_ok());
    }

    #[test]
    fn bad_headers_are_malformed() {
        let mut bytes = sample();
        bytes[0] = 2;
        assert!(matches!(
            SealedBlob::parse(&bytes),
            Err(HsmError::Malformed(_))
        ));

        for bad_len in [0u8, 65, 255] {
            let mut bytes = sample();
            bytes[1] = bad_len;
            assert!(matches!(
                SealedBlob::parse(&bytes),
                Err(HsmError::Malformed(_))
            ));
        }

        let mut bytes = sample();
        bytes[2] = b' '; // not printable-without-space
        assert!(matches!(
            SealedBlob::parse(&bytes),
            Err(HsmError::Malformed(_))
        ));

        let mut bytes = sample();
        bytes[2] = 0xff; // not UTF-8
        assert!(matches!(
            SealedBlob::parse(&bytes),
            Err(HsmError::Malformed(_))
        ));

        for bad_len in [0u8, 33, 200] {
            let mut bytes = sample();
            bytes[9] = bad_len;
            assert!(matches!(
                SealedBlob::parse(&bytes),
                Err(HsmError::Malformed(_))
            ));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every short input over a small alphabet.
        let alphabet = [0u8, 1, 2, 7, 12, 16, 24, 33, 64, 65, b'a', 0xff];
        let mut input = Vec::new();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        input.clear();
                        input.extend_from_slice(&[a, b, c, d]);
                        input.extend_from_slice(&[b'x'; 20]);
                        let _ = SealedBlob::parse(&input);
                        let _ = SealedBlob::parse(&input[..4]);
                    }
                }
            }
        }
    }

    #[test]
    fn associated_data_is_injective_over_key_id_and_aad() {
        // Moving bytes between key id and aad must change the associated data.
        assert_ne!(associated_data("ab", b"c"), associated_data("a", b"bc"));
        assert_ne!(
            associated_data("seal-v1", b""),
            associated_data("seal-v", b"1")
        );
        assert_ne!(associated_data("k", b""), associated_data("k", b"\0"));
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(check_key_id("seal-v1").is_ok());
        assert!(check_key_id("").is_err());
        assert!(check_key_id("has space").is_err());
        assert!(check_key_id(&"x".repeat(65)).is_err());
        assert!(check_key_id("é").is_err());
    }

    #[test]
    fn encode_refuses_bad_lengths() {
        let blob = SealedBlob {
            key_id: "",
            nonce: &[0; 12],
            ciphertext: &[0; 16],
        };
        assert!(blob.encode().is_err());
        let blob = SealedBlob {
            key_id: "k",
            nonce: &[0; 33],
            ciphertext: &[0; 16],
        };
        assert!(blob.encode().is_err());
    }
}
