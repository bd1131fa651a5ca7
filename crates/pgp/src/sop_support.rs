//! What the Stateless OpenPGP command line (`sealpost sop`, draft-dkg-openpgp-stateless-cli)
//! needs beyond the mail functions: arbitrary keys and certificates (any algorithm, any
//! User IDs, password-protected secrets), detached and inline signatures in binary, text
//! and cleartext modes, password (SKESK) encryption, session keys, armor.
//!
//! It adds no engine of its own. [`decrypt`] is the mail reader's pipeline
//! ([`crate::message::decrypt_with`]: the same rules, size cap and panic guard), fed with
//! SOP's keys, passwords and session keys; [`encrypt`] writes with the mail's
//! [`crate::encrypt`](mod@crate::encrypt) choices (post-quantum first, the recipients' strongest common AES,
//! SEIPDv2 when all read it); [`verify`] and [`inline_verify`] use `verify.rs`.
//! What differs is only the verdict: SOP counts every valid signature by a given
//! certificate made inside the caller's time window, by a key that was valid when it
//! signed; there are no sender-address rules here.
//!
//! New keys are made like [`crate::KeyPair::generate`] makes them ([`generate_key`]).

mod keys;

use std::io::{Read, Write};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::packet::{Packet, Signature};
use openpgp::parse::stream::{
    MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Armorer, LiteralWriter, Message};
use openpgp::types::{DataFormat, RevocationStatus};
use openpgp::{Cert, Fingerprint, KeyHandle};

pub use self::keys::{
    change_key_password, extract_certs, generate_key, parse_certs, parse_keys, revoke_keys,
    serialize_certs, unlock,
};
pub use crate::message::SessionKeyText;

use crate::encrypt::{Seal, classical_first, recipient_keys, seal, signer_stack};
use crate::message::{OpenContext, Secrets, SigCheck, decrypt_with};
use crate::verify::{VerifyError, detached_checks, inline_checks};
use crate::{DecryptFailure, POLICY, Passphrase, WipedBytes};

/// The hash algorithm of every signature made here ([`crate::encrypt::HASH_ALGO`]), as a
/// PGP/MIME `micalg` (RFC 3156).
pub const MICALG: &str = "pgp-sha256";

/// Why a SOP operation failed. Each variant is one of the spec's failure modes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SopError {
    /// The input is not the OpenPGP data expected (no secret key where a key was
    /// expected, unparseable, ...).
    #[error("bad data: {0}")]
    BadData(String),
    /// No acceptable signature was found.
    #[error("no acceptable signature found")]
    NoSignature,
    /// A certificate has no usable encryption key.
    #[error("certificate {0} cannot encrypt")]
    CertCannotEncrypt(String),
    /// A key has no usable signing key.
    #[error("key {0} cannot sign")]
    KeyCannotSign(String),
    /// A needed secret key is locked and no password given unlocks it.
    #[error("key {0} is protected by a password that was not given")]
    KeyIsProtected(String),
    /// The message could not be decrypted; nothing of it is returned.
    #[error("cannot decrypt: {0}")]
    CannotDecrypt(DecryptFailure),
    /// Text was expected (UTF-8) but the input is not.
    #[error("the input is not UTF-8 text")]
    ExpectedText,
    /// A session key given to decrypt is not `ALGO:HEX`.
    #[error("not a session key (expected ALGONUM:HEX)")]
    BadSessionKey,
    /// The data is larger than the limit.
    #[error("the data is larger than {0} bytes")]
    TooLarge(usize),
    /// Sequoia refused the operation for another reason.
    #[error("OpenPGP: {0}")]
    Failed(String),
}

impl SopError {
    pub(crate) fn failed(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
    }

    pub(crate) fn bad(e: impl std::fmt::Display) -> Self {
        Self::BadData(e.to_string())
    }
}

/// How signed data is interpreted: as bytes, or as UTF-8 text whose line endings are
/// normalised before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigMode {
    /// A binary signature (type 0x00).
    Binary,
    /// A text signature (type 0x01).
    Text,
}

/// The output form of `inline-sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineMode {
    /// A signed message, binary signature.
    Binary,
    /// A signed message, text signature.
    Text,
    /// The Cleartext Signature Framework (always armored).
    Cleartext,
}

/// The window in which a signature's creation time must lie (inclusive; `None`: open).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeWindow {
    /// Signatures made before this do not count.
    pub not_before: Option<SystemTime>,
    /// Signatures made after this do not count.
    pub not_after: Option<SystemTime>,
}

impl TimeWindow {
    fn contains(&self, t: SystemTime) -> bool {
        self.not_before.is_none_or(|b| t >= b) && self.not_after.is_none_or(|a| t <= a)
    }
}

/// One valid signature, as a SOP `VERIFICATIONS` line reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// When the signature was made.
    pub created: SystemTime,
    /// The key (primary or subkey) that made it.
    pub signing_key: Fingerprint,
    /// The primary key of its certificate.
    pub primary: Fingerprint,
    /// Binary or text signature.
    pub mode: SigMode,
}

/// SOP's verdict on raw checks: every good signature made inside `window`.
fn verifications(checks: &[SigCheck], window: &TimeWindow) -> Vec<Verification> {
    checks
        .iter()
        .filter_map(|check| match check {
            SigCheck::Good {
                cert,
                key,
                created: Some(created),
                text,
            } if window.contains(*created) => Some(Verification {
                created: *created,
                signing_key: key.clone(),
                primary: cert.fingerprint(),
                mode: if *text {
                    SigMode::Text
                } else {
                    SigMode::Binary
                },
            }),
            _ => None,
        })
        .collect()
}

/// Parses a session key given to `decrypt` (`ALGONUM:HEX`).
pub fn parse_session_key(text: &str) -> Result<SessionKeyText, SopError> {
    SessionKeyText::parse(text).ok_or(SopError::BadSessionKey)
}

// ---------------------------------------------------------------- armor

/// Whether `data` starts (after whitespace) with an ASCII armor header line.
pub fn is_armored(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..)
        .is_some_and(|rest| rest.starts_with(b"-----BEGIN PGP "))
}

/// Armors OpenPGP data, choosing the label from the first packet. Armored input is
/// returned as it is (armor is idempotent).
pub fn armor(data: &[u8]) -> Result<Vec<u8>, SopError> {
    if is_armored(data) {
        return Ok(data.to_vec());
    }
    let ppr = PacketParser::from_bytes(data).map_err(SopError::bad)?;
    let PacketParserResult::Some(pp) = ppr else {
        return Err(SopError::BadData("no OpenPGP packets".into()));
    };
    let kind = match &pp.packet {
        Packet::SecretKey(_) => armor::Kind::SecretKey,
        Packet::PublicKey(_) => armor::Kind::PublicKey,
        Packet::Signature(_) => armor::Kind::Signature,
        _ => armor::Kind::Message,
    };
    let mut out = Vec::new();
    let mut writer = armor::Writer::new(&mut out, kind).map_err(SopError::failed)?;
    writer.write_all(data).map_err(SopError::failed)?;
    writer.finalize().map_err(SopError::failed)?;
    Ok(out)
}

/// Removes ASCII armor. Binary input is checked to be OpenPGP and returned as it is.
pub fn dearmor(data: &[u8]) -> Result<Vec<u8>, SopError> {
    if !is_armored(data) {
        PacketParser::from_bytes(data).map_err(SopError::bad)?;
        return Ok(data.to_vec());
    }
    let mut reader = armor::Reader::from_bytes(data, armor::ReaderMode::Tolerant(None));
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(SopError::bad)?;
    if out.is_empty() {
        return Err(SopError::BadData("empty armor".into()));
    }
    Ok(out)
}
// ---------------------------------------------------------------- signing

/// A usable signing key of each of `keys` at `now`.
fn signers(keys: &[Cert], now: SystemTime) -> Result<Vec<openpgp::crypto::KeyPair>, SopError> {
    let mut out = Vec::new();
    for key in keys {
        let fingerprint = key.fingerprint().to_hex();
        let vc = key
            .with_policy(&POLICY, now)
            .map_err(|_| SopError::KeyCannotSign(fingerprint.clone()))?;
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(SopError::KeyCannotSign(fingerprint));
        }
        if vc.alive().is_err() {
            return Err(SopError::KeyCannotSign(fingerprint));
        }
        let capable: Vec<_> = vc
            .keys()
            .secret()
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .collect();
        if capable.is_empty() {
            return Err(SopError::KeyCannotSign(fingerprint));
        }
        let pair = capable
            .iter()
            .filter(|ka| ka.key().has_unencrypted_secret())
            .find_map(|ka| ka.key().clone().into_keypair().ok())
            .ok_or(SopError::KeyIsProtected(fingerprint))?;
        out.push(pair);
    }
    if out.is_empty() {
        return Err(SopError::KeyCannotSign("no key given".into()));
    }
    Ok(out)
}

/// Checks `data` is UTF-8 when a text mode asks for text.
fn require_text(data: &[u8]) -> Result<(), SopError> {
    std::str::from_utf8(data)
        .map(|_| ())
        .map_err(|_| SopError::ExpectedText)
}

/// Makes detached signatures over `data`, one per key in `keys` (which must be
/// unlocked), armored or binary.
pub fn sign(
    data: &[u8],
    keys: &[Cert],
    mode: SigMode,
    armored: bool,
    now: SystemTime,
) -> Result<Vec<u8>, SopError> {
    let text = mode == SigMode::Text;
    if text {
        require_text(data)?;
    }
    let pairs = signers(keys, now)?;
    let mut sink = Vec::new();
    let mut message = Message::new(&mut sink);
    if armored {
        message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(SopError::failed)?;
    }
    let mut signing = signer_stack(message, pairs, text, now)
        .and_then(|s| s.detached().build())
        .map_err(SopError::failed)?;
    signing.write_all(data).map_err(SopError::failed)?;
    signing.finalize().map_err(SopError::failed)?;
    Ok(sink)
}

/// Makes an inline-signed message (or a cleartext-signed text) of `data`.
pub fn inline_sign(
    data: &[u8],
    keys: &[Cert],
    mode: InlineMode,
    armored: bool,
    now: SystemTime,
) -> Result<Vec<u8>, SopError> {
    let text = mode != InlineMode::Binary;
    if text {
        require_text(data)?;
    }
    let pairs = signers(keys, now)?;
    let mut sink = Vec::new();
    let mut message = Message::new(&mut sink);
    if mode == InlineMode::Cleartext {
        let mut signing = signer_stack(message, pairs, text, now)
            .and_then(|s| s.cleartext().build())
            .map_err(SopError::failed)?;
        signing.write_all(data).map_err(SopError::failed)?;
        signing.finalize().map_err(SopError::failed)?;
        return Ok(sink);
    }
    if armored {
        message = Armorer::new(message).build().map_err(SopError::failed)?;
    }
    let signing = signer_stack(message, pairs, text, now)
        .and_then(|s| s.build())
        .map_err(SopError::failed)?;
    let mut literal = LiteralWriter::new(signing)
        .format(if text {
            DataFormat::Unicode
        } else {
            DataFormat::Binary
        })
        .build()
        .map_err(SopError::failed)?;
    literal.write_all(data).map_err(SopError::failed)?;
    literal.finalize().map_err(SopError::failed)?;
    Ok(sink)
}

// ---------------------------------------------------------------- verification

/// Checks detached `signatures` over `data` against `certs`; returns every valid one
/// made inside `window`. None valid is [`SopError::NoSignature`]; data that holds no
/// signature packet of a known version is [`SopError::BadData`] only when it holds
/// something else than signatures.
pub fn verify(
    data: &[u8],
    signatures: &[u8],
    certs: &[Cert],
    window: TimeWindow,
    now: SystemTime,
) -> Result<Vec<Verification>, SopError> {
    let checks = detached_checks(data, signatures, certs, now).map_err(verify_error)?;
    let found = verifications(&checks, &window);
    if found.is_empty() {
        return Err(SopError::NoSignature);
    }
    Ok(found)
}

/// Verifies an inline-signed message or cleartext-signed text; returns its content and
/// every valid signature inside `window`. None valid is [`SopError::NoSignature`] and
/// no content.
pub fn inline_verify(
    data: &[u8],
    certs: &[Cert],
    window: TimeWindow,
    now: SystemTime,
) -> Result<(Vec<u8>, Vec<Verification>), SopError> {
    let (content, checks) = inline_checks(data, certs, now, crate::message::DEFAULT_MAX_PLAINTEXT)
        .map_err(verify_error)?;
    let found = verifications(&checks, &window);
    if found.is_empty() {
        return Err(SopError::NoSignature);
    }
    Ok((content, found))
}

fn verify_error(e: VerifyError) -> SopError {
    match e {
        VerifyError::BadData(why) => SopError::BadData(why),
        VerifyError::TooLarge => SopError::TooLarge(crate::message::DEFAULT_MAX_PLAINTEXT),
        VerifyError::Unverifiable => SopError::NoSignature,
    }
}

/// Splits an inline-signed message or cleartext-signed text into its content and its
/// signatures (armored or binary), without checking them.
pub fn inline_detach(data: &[u8], armored: bool) -> Result<(Vec<u8>, Vec<u8>), SopError> {
    let helper = CollectSignatures { sigs: Vec::new() };
    let mut verifier = VerifierBuilder::from_bytes(data)
        .and_then(|b| b.with_policy(&POLICY, None, helper))
        .map_err(SopError::bad)?;
    let mut content = Vec::new();
    verifier.read_to_end(&mut content).map_err(SopError::bad)?;
    let sigs = verifier.into_helper().sigs;
    if sigs.is_empty() {
        return Err(SopError::BadData("the message is not signed".into()));
    }
    let mut out = Vec::new();
    if armored {
        let mut writer =
            armor::Writer::new(&mut out, armor::Kind::Signature).map_err(SopError::failed)?;
        for sig in &sigs {
            Packet::from(sig.clone())
                .serialize(&mut writer)
                .map_err(SopError::failed)?;
        }
        writer.finalize().map_err(SopError::failed)?;
    } else {
        for sig in &sigs {
            Packet::from(sig.clone())
                .serialize(&mut out)
                .map_err(SopError::failed)?;
        }
    }
    Ok((content, out))
}

/// The signature packets in `data`; anything else is bad data.
/// Keeps every signature, checked or not (for `inline-detach`).
struct CollectSignatures {
    sigs: Vec<Signature>,
}

impl VerificationHelper for CollectSignatures {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for result in results {
                    let sig = match result {
                        Ok(good) => Some(good.sig),
                        Err(VerificationError::MissingKey { sig })
                        | Err(VerificationError::UnboundKey { sig, .. })
                        | Err(VerificationError::BadKey { sig, .. })
                        | Err(VerificationError::BadSignature { sig, .. })
                        | Err(VerificationError::MalformedSignature { sig, .. }) => Some(sig),
                        Err(_) => None,
                    };
                    self.sigs.extend(sig.cloned());
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- encryption

/// What `encrypt` needs.
#[derive(Debug)]
pub struct EncryptRequest<'a> {
    /// Encrypt to these certificates' encryption keys valid at `now`.
    pub recipients: &'a [Cert],
    /// And to these passwords (SKESK).
    pub passwords: &'a [Passphrase],
    /// Sign with these (unlocked) keys.
    pub signers: &'a [Cert],
    /// Literal data format and signature type.
    pub mode: SigMode,
    /// ASCII armor the output.
    pub armored: bool,
    /// The time of the signatures and of the validity checks.
    pub now: SystemTime,
}

/// Encrypts `plaintext` as the mail does (`encrypt.rs`: post-quantum keys first, the
/// strongest AES all recipients accept, SEIPDv2 when all read it, never compressed),
/// optionally signed.
pub fn encrypt(plaintext: &[u8], req: &EncryptRequest<'_>) -> Result<Vec<u8>, SopError> {
    let text = req.mode == SigMode::Text;
    if text {
        require_text(plaintext)?;
    }
    let mut keys = Vec::new();
    for cert in req.recipients {
        keys.push(
            recipient_keys(cert, req.now)
                .map_err(|_| SopError::CertCannotEncrypt(cert.fingerprint().to_hex()))?,
        );
    }
    let signers = if req.signers.is_empty() {
        Vec::new()
    } else {
        signers(req.signers, req.now)?
    };
    let spec = Seal {
        keys: classical_first(keys),
        certs: req.recipients.iter().collect(),
        passwords: req.passwords,
        signers,
        text,
        armored: req.armored,
        now: req.now,
    };
    seal(plaintext, spec).map_err(SopError::failed)
}

// ---------------------------------------------------------------- decryption

/// What `decrypt` needs.
#[derive(Debug)]
pub struct DecryptRequest<'a> {
    /// Secret keys (unlock protected ones with [`unlock`] first).
    pub keys: &'a [Cert],
    /// Passwords for SKESKs (each also tried without trailing whitespace).
    pub passwords: &'a [Passphrase],
    /// Session keys to try first.
    pub session_keys: &'a [SessionKeyText],
    /// Certificates whose signatures are checked.
    pub verify_with: &'a [Cert],
    /// The window in which signatures count.
    pub window: TimeWindow,
    /// The time of the policy checks.
    pub now: SystemTime,
    /// The largest plaintext accepted, in bytes
    /// ([`crate::message::DEFAULT_MAX_PLAINTEXT`], as for mail).
    pub max_plaintext: usize,
}

/// A decrypted message.
#[derive(Debug)]
pub struct SopDecrypted {
    /// The whole plaintext, returned only after every check passed; wiped when dropped.
    pub plaintext: WipedBytes,
    /// The session key that worked.
    pub session_key: Option<SessionKeyText>,
    /// The valid signatures by `verify_with` certificates inside the window.
    pub verifications: Vec<Verification>,
}

/// Decrypts with keys, passwords or session keys through the one pipeline
/// ([`crate::message::decrypt_with`]): integrity-protected only, checked to the end,
/// size-limited, and counted by [`crate::decryptions`].
pub fn decrypt(ciphertext: &[u8], req: &DecryptRequest<'_>) -> Result<SopDecrypted, SopError> {
    let ctx = OpenContext {
        own: &[],
        certs: req.verify_with,
        confirmed: &[],
        now: req.now,
        max_plaintext: req.max_plaintext,
    };
    let secrets = Secrets {
        keys: req.keys,
        passwords: req.passwords,
        session_keys: req.session_keys,
    };
    let mut opened = decrypt_with(ciphertext, &ctx, &secrets).map_err(|f| match f {
        DecryptFailure::NotEncrypted | DecryptFailure::Malformed(_) => {
            SopError::BadData(f.to_string())
        }
        DecryptFailure::KeyLocked { fingerprint } => SopError::KeyIsProtected(fingerprint),
        other => SopError::CannotDecrypt(other),
    })?;
    let verifications = verifications(opened.checks(), &req.window);
    let plaintext = std::mem::take(&mut opened.plaintext);
    Ok(SopDecrypted {
        plaintext,
        session_key: opened.take_session_key(),
        verifications,
    })
}

/// The OpenPGP library and crypto backend, for `sop version --backend`.
pub fn backend() -> String {
    format!(
        "Sequoia-OpenPGP {} ({})",
        openpgp::VERSION,
        openpgp::crypto::backend()
    )
}

#[cfg(test)]
mod tests;
