//! The wrap: Sealpost's one AEAD envelope, for keys and for secrets alike.
//!
//! A wrap is self-describing, so it can be opened years later by a newer release, and
//! every header byte is authenticated:
//!
//! ```text
//! "SPWR"  version=1  aead  kdf  [kdf parameters]  nonce(24)  ciphertext‖tag(16)
//!                          │     ├ 0 direct key:   (none)
//!                          │     ├ 1 Argon2id:     m_kib u32 BE, t u32 BE, p u32 BE, salt(16)
//!                          │     └ 2 HKDF-SHA256:  salt(16)   (for high-entropy secrets)
//!                          └ 1 = XChaCha20-Poly1305
//! ```
//!
//! The associated data is the whole header followed by a [`WrapContext`]: the
//! [`Purpose`] (what the plaintext is), the owner (the profile or account it belongs to)
//! and the item (a secret's name). A wrap moved to another row, another profile or
//! another purpose fails to open, exactly like a wrong key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::kdf::{self, Argon2Params, SALT_LEN};
use crate::{CryptoError, Password, SecretBytes, SecretVec};

/// The first bytes of every wrap.
pub const MAGIC: &[u8; 4] = b"SPWR";
/// The format version this code writes.
pub const VERSION: u8 = 1;
/// AEAD identifier: XChaCha20-Poly1305 (random 192-bit nonces never collide in practice).
pub const AEAD_XCHACHA20POLY1305: u8 = 1;
/// Nonce length of the AEAD.
pub const NONCE_LEN: usize = 24;
/// Tag length of the AEAD.
pub const TAG_LEN: usize = 16;
/// Domain separator at the head of the associated data.
const AAD_LABEL: &[u8] = b"sealpost-wrap-v1";

const KDF_DIRECT: u8 = 0;
const KDF_ARGON2ID: u8 = 1;
const KDF_HKDF_SHA256: u8 = 2;

/// What a wrap protects. Its label is part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The identity key, under a KEK derived from the password on this device.
    IdentityByPassword,
    /// The identity key, under a KEK derived from the recovery code.
    IdentityByRecovery,
    /// The identity key, under the cloud KEK derived from OPAQUE's export key.
    IdentityByCloud,
    /// A value in the local secrets table, under the vault key.
    VaultSecret,
    /// The settings blob synced through the server, under the settings key.
    Settings,
}

impl Purpose {
    /// The stable label bound into the associated data.
    pub fn label(self) -> &'static str {
        match self {
            Self::IdentityByPassword => "identity-key/password",
            Self::IdentityByRecovery => "identity-key/recovery-code",
            Self::IdentityByCloud => "identity-key/cloud",
            Self::VaultSecret => "vault/secret",
            Self::Settings => "settings",
        }
    }
}

/// What a wrap is bound to: its purpose, its owner and the item within the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapContext<'a> {
    purpose: Purpose,
    owner: &'a [u8],
    item: &'a [u8],
}

impl<'a> WrapContext<'a> {
    /// A context for one purpose and owner (a profile id, an account id).
    pub fn new(purpose: Purpose, owner: &'a [u8]) -> Self {
        Self {
            purpose,
            owner,
            item: &[],
        }
    }

    /// Binds the wrap to one item as well, such as a secret's name.
    pub fn with_item(self, item: &'a [u8]) -> Self {
        Self { item, ..self }
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let label = self.purpose.label().as_bytes();
        let mut aad = Vec::with_capacity(
            header.len() + AAD_LABEL.len() + label.len() + self.owner.len() + self.item.len() + 12,
        );
        aad.extend_from_slice(header);
        aad.extend_from_slice(AAD_LABEL);
        for part in [label, self.owner, self.item] {
            // Lengths are u32 so no two different contexts serialise the same way.
            aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }
}

/// How a wrap's key was obtained, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfHeader {
    /// The key was given directly (a subkey of the identity key, a cloud KEK).
    Direct,
    /// The key is Argon2id of a password with these parameters and salt.
    Argon2id {
        /// Cost parameters.
        params: Argon2Params,
        /// Salt.
        salt: [u8; SALT_LEN],
    },
    /// The key is HKDF-SHA256 of a high-entropy secret (a recovery code) with this salt.
    HkdfSha256 {
        /// Salt.
        salt: [u8; SALT_LEN],
    },
}

impl KdfHeader {
    fn name(&self) -> &'static str {
        match self {
            Self::Direct => "a direct key",
            Self::Argon2id { .. } => "a password (Argon2id)",
            Self::HkdfSha256 { .. } => "a recovery code (HKDF)",
        }
    }
}

/// A wrap, parsed but not yet opened. Borrowed from the blob.
#[derive(Debug, Clone, Copy)]
pub struct ParsedWrap<'b> {
    /// How the key was derived.
    pub kdf: KdfHeader,
    header: &'b [u8],
    nonce: &'b [u8],
    ciphertext: &'b [u8],
}

/// Splits `n` bytes off the front of `rest`, naming the field when it is missing.
fn take<'b>(rest: &mut &'b [u8], n: usize, what: &'static str) -> Result<&'b [u8], CryptoError> {
    let (head, tail) = rest
        .split_at_checked(n)
        .ok_or(CryptoError::Truncated { what })?;
    *rest = tail;
    Ok(head)
}

fn take_u32(rest: &mut &[u8], what: &'static str) -> Result<u32, CryptoError> {
    let bytes = take(rest, 4, what)?;
    let arr: [u8; 4] = bytes
        .try_into()
        .map_err(|_| CryptoError::Truncated { what })?;
    Ok(u32::from_be_bytes(arr))
}

fn take_salt(rest: &mut &[u8]) -> Result<[u8; SALT_LEN], CryptoError> {
    take(rest, SALT_LEN, "wrap's salt")?
        .try_into()
        .map_err(|_| CryptoError::Truncated {
            what: "wrap's salt",
        })
}

/// Parses a wrap's header. Checks structure only; nothing is authenticated yet.
pub fn parse(blob: &[u8]) -> Result<ParsedWrap<'_>, CryptoError> {
    let mut rest = blob;
    if take(&mut rest, MAGIC.len(), "wrap's magic bytes")? != MAGIC {
        return Err(CryptoError::BadMagic);
    }
    let fixed = take(&mut rest, 3, "wrap's header")?;
    let (version, aead, kdf_id) = match fixed {
        [v, a, k] => (*v, *a, *k),
        _ => {
            return Err(CryptoError::Truncated {
                what: "wrap's header",
            });
        }
    };
    if version != VERSION {
        return Err(CryptoError::UnsupportedVersion(version));
    }
    if aead != AEAD_XCHACHA20POLY1305 {
        return Err(CryptoError::UnsupportedAlgorithm {
            what: "AEAD",
            id: aead,
        });
    }
    let kdf = match kdf_id {
        KDF_DIRECT => KdfHeader::Direct,
        KDF_ARGON2ID => {
            let m_kib = take_u32(&mut rest, "wrap's Argon2 memory cost")?;
            let t = take_u32(&mut rest, "wrap's Argon2 time cost")?;
            let p = take_u32(&mut rest, "wrap's Argon2 parallelism")?;
            KdfHeader::Argon2id {
                params: Argon2Params { m_kib, t, p },
                salt: take_salt(&mut rest)?,
            }
        }
        KDF_HKDF_SHA256 => KdfHeader::HkdfSha256 {
            salt: take_salt(&mut rest)?,
        },
        other => {
            return Err(CryptoError::UnsupportedAlgorithm {
                what: "KDF",
                id: other,
            });
        }
    };
    let nonce = take(&mut rest, NONCE_LEN, "wrap's nonce")?;
    let header_len = blob.len() - rest.len();
    let header = blob.get(..header_len).ok_or(CryptoError::Truncated {
        what: "wrap's header",
    })?;
    if rest.len() < TAG_LEN {
        return Err(CryptoError::Truncated {
            what: "wrap's ciphertext",
        });
    }
    Ok(ParsedWrap {
        kdf,
        header,
        nonce,
        ciphertext: rest,
    })
}

fn encode_header(kdf: &KdfHeader, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut h = Vec::with_capacity(4 + 3 + 28 + NONCE_LEN);
    h.extend_from_slice(MAGIC);
    h.push(VERSION);
    h.push(AEAD_XCHACHA20POLY1305);
    match kdf {
        KdfHeader::Direct => h.push(KDF_DIRECT),
        KdfHeader::Argon2id { params, salt } => {
            h.push(KDF_ARGON2ID);
            h.extend_from_slice(&params.m_kib.to_be_bytes());
            h.extend_from_slice(&params.t.to_be_bytes());
            h.extend_from_slice(&params.p.to_be_bytes());
            h.extend_from_slice(salt);
        }
        KdfHeader::HkdfSha256 { salt } => {
            h.push(KDF_HKDF_SHA256);
            h.extend_from_slice(salt);
        }
    }
    h.extend_from_slice(nonce);
    h
}

/// Seals `plaintext` under `key`, recording `kdf` in the header.
pub fn seal(
    key: &SecretBytes<32>,
    kdf: KdfHeader,
    ctx: &WrapContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::os_random(&mut nonce)?;
    let mut blob = encode_header(&kdf, &nonce);
    let aad = ctx.aad(&blob);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)?;
    blob.extend_from_slice(&ct);
    Ok(blob)
}

/// Opens a parsed wrap with `key`.
pub fn open(
    key: &SecretBytes<32>,
    parsed: &ParsedWrap<'_>,
    ctx: &WrapContext<'_>,
) -> Result<SecretVec, CryptoError> {
    let aad = ctx.aad(parsed.header);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(parsed.nonce),
            Payload {
                msg: parsed.ciphertext,
                aad: &aad,
            },
        )
        .map(SecretVec::new)
        .map_err(|_| CryptoError::Authentication)
}

/// Seals under a key given directly (a subkey of the identity key, a cloud KEK).
pub fn seal_with_key(
    key: &SecretBytes<32>,
    ctx: &WrapContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal(key, KdfHeader::Direct, ctx, plaintext)
}

/// Opens a wrap sealed with [`seal_with_key`].
pub fn open_with_key(
    key: &SecretBytes<32>,
    ctx: &WrapContext<'_>,
    blob: &[u8],
) -> Result<SecretVec, CryptoError> {
    let parsed = parse(blob)?;
    expect_kdf(&parsed.kdf, "a direct key", |k| {
        matches!(k, KdfHeader::Direct)
    })?;
    open(key, &parsed, ctx)
}

/// Derives a fresh password KEK with a new random salt. Run once, use for one wrap.
pub fn password_kek(
    password: &Password,
    params: Argon2Params,
) -> Result<(SecretBytes<32>, KdfHeader), CryptoError> {
    let mut salt = [0u8; SALT_LEN];
    crate::os_random(&mut salt)?;
    let kek = kdf::derive_kek(password, &salt, params)?;
    Ok((kek, KdfHeader::Argon2id { params, salt }))
}

/// Seals under a KEK derived from `password` with Argon2id at `params`.
pub fn seal_with_password(
    password: &Password,
    params: Argon2Params,
    ctx: &WrapContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (kek, header) = password_kek(password, params)?;
    seal(&kek, header, ctx, plaintext)
}

/// Opens a password wrap. The stored KDF parameters are checked against the floor and
/// the ceiling before Argon2 runs.
pub fn open_with_password(
    password: &Password,
    ctx: &WrapContext<'_>,
    blob: &[u8],
) -> Result<SecretVec, CryptoError> {
    let parsed = parse(blob)?;
    let KdfHeader::Argon2id { params, salt } = parsed.kdf else {
        return Err(CryptoError::WrongKdf {
            expected: "a password (Argon2id)",
            found: parsed.kdf.name(),
        });
    };
    let kek = kdf::derive_kek(password, &salt, params)?;
    open(&kek, &parsed, ctx)
}

pub(crate) fn expect_kdf(
    kdf: &KdfHeader,
    expected: &'static str,
    ok: impl Fn(&KdfHeader) -> bool,
) -> Result<(), CryptoError> {
    if ok(kdf) {
        Ok(())
    } else {
        Err(CryptoError::WrongKdf {
            expected,
            found: kdf.name(),
        })
    }
}

#[cfg(test)]
mod tests;
