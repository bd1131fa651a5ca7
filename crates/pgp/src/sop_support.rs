//! What the Stateless OpenPGP command line (`sealpost sop`, draft-dkg-openpgp-stateless-cli)
//! needs beyond the mail functions: arbitrary keys and certificates (any algorithm, any
//! User IDs, password-protected secrets), detached and inline signatures in binary, text
//! and cleartext modes, password (SKESK) encryption, session keys, armor.
//!
//! It keeps the crate's safety rules: [`decrypt`] reads the whole message before it
//! returns a byte, refuses SED packets (no integrity protection) before any key is used,
//! fails the whole message on a bad MDC/AEAD tag, and stops at
//! [`DecryptRequest::max_plaintext`]. Verification follows SOP, not mail: every valid
//! signature by a given certificate counts, made inside the caller's time window, by a
//! key that was valid when it signed; there are no sender-address rules here.
//!
//! New keys are made like [`crate::KeyPair::generate`] makes them: v4, Cv25519, a
//! certification-only primary key, a signing subkey and an encryption subkey,
//! advertising SEIPDv1 only, valid for [`KEY_VALIDITY`].

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::{PKESK, Packet, SKESK, Signature, UserID};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, GoodChecksum, MessageLayer,
    MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{
    DataFormat, Features, HashAlgorithm, KeyFlags, ReasonForRevocation, RevocationStatus,
    SignatureType, SymmetricAlgorithm,
};
use openpgp::{Cert, Fingerprint, KeyHandle, Profile};

use crate::key::KEY_VALIDITY;
use crate::message::{SYMMETRIC_ALGO, classify, prescan};
use crate::{DecryptFailure, POLICY, Passphrase};

/// The hash algorithm of every signature made here, and its `micalg` name (RFC 3156).
const HASH_ALGO: HashAlgorithm = HashAlgorithm::SHA512;
/// [`HASH_ALGO`] as a PGP/MIME `micalg` parameter.
pub const MICALG: &str = "pgp-sha512";

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
    /// Sequoia refused the operation for another reason.
    #[error("OpenPGP: {0}")]
    Failed(String),
}

impl SopError {
    fn failed(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
    }

    fn bad(e: impl std::fmt::Display) -> Self {
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

/// A session key as SOP writes it: `ALGONUM:HEX`, such as `9:FCA4...` for AES-256.
/// (SEIPDv2 keeps its algorithm in the encrypted packet; if none is known, the field
/// before the colon is empty.) Wiped on drop and never printed by `Debug`.
pub struct SessionKeyText {
    algo: Option<SymmetricAlgorithm>,
    key: SessionKey,
}

impl SessionKeyText {
    /// Parses `ALGONUM:HEX` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, SopError> {
        let text = text.trim();
        let (algo, hex) = text.split_once(':').ok_or(SopError::BadSessionKey)?;
        let algo = if algo.is_empty() {
            None
        } else {
            Some(SymmetricAlgorithm::from(
                algo.parse::<u8>().map_err(|_| SopError::BadSessionKey)?,
            ))
        };
        let bytes = Zeroizing::new(hex_decode(hex).ok_or(SopError::BadSessionKey)?);
        Ok(Self {
            algo,
            key: SessionKey::from(bytes.as_slice()),
        })
    }

    /// `ALGONUM:HEX`, upper-case hex, as other implementations write it.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        if let Some(algo) = self.algo {
            out.push_str(&u8::from(algo).to_string());
        }
        out.push(':');
        for b in self.key.iter() {
            out.push_str(&format!("{b:02X}"));
        }
        out
    }
}

impl std::fmt::Debug for SessionKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeyText([redacted])")
    }
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) || digits.is_empty() {
        return None;
    }
    Some(
        digits
            .chunks(2)
            .map(|p| p.iter().fold(0u8, |acc, d| acc * 16 + d))
            .collect(),
    )
}

// ---------------------------------------------------------------- keys and certificates

/// Parses one or more certificates (armored or binary). Secret parts are kept if present.
pub fn parse_certs(data: &[u8]) -> Result<Vec<Cert>, SopError> {
    let certs = CertParser::from_bytes(data)
        .map_err(SopError::bad)?
        .collect::<openpgp::Result<Vec<Cert>>>()
        .map_err(SopError::bad)?;
    if certs.is_empty() {
        return Err(SopError::BadData("no certificate found".into()));
    }
    Ok(certs)
}

/// Parses one or more secret keys; a certificate without secret material is bad data.
pub fn parse_keys(data: &[u8]) -> Result<Vec<Cert>, SopError> {
    let keys = parse_certs(data)?;
    if let Some(public) = keys.iter().find(|c| !c.is_tsk()) {
        return Err(SopError::BadData(format!(
            "{} is a certificate, not a secret key",
            public.fingerprint()
        )));
    }
    Ok(keys)
}

/// Unlocks every secret in `key` that one of `passwords` opens (each is tried as given,
/// then without trailing whitespace, as SOP asks). Secrets no password opens stay locked.
pub fn unlock(key: Cert, passwords: &[Passphrase]) -> Cert {
    let candidates: Vec<Password> = password_variants(passwords);
    let mut unlocked: Vec<Packet> = Vec::new();
    for ka in key.keys().secret() {
        if ka.key().has_unencrypted_secret() {
            continue;
        }
        let opened = candidates
            .iter()
            .find_map(|p| ka.key().clone().decrypt_secret(p).ok());
        if let Some(k) = opened {
            unlocked.push(if ka.primary() {
                Packet::from(k.role_into_primary())
            } else {
                Packet::from(k.role_into_subordinate())
            });
        }
    }
    if unlocked.is_empty() {
        return key;
    }
    match key.clone().insert_packets(unlocked) {
        Ok((k, _)) => k,
        Err(_) => key,
    }
}

/// Each password as given, and again without trailing whitespace when that differs.
fn password_variants(passwords: &[Passphrase]) -> Vec<Password> {
    let mut out = Vec::new();
    for p in passwords {
        out.push(Password::from(p.expose()));
        let trimmed = p.expose().trim_end();
        if trimmed.len() != p.expose().len() {
            out.push(Password::from(trimmed));
        }
    }
    out
}

/// Makes a new v4 Cv25519 key with `userids` (the first is primary; none is allowed),
/// created at `now`, valid for [`KEY_VALIDITY`]. With `signing_only` it has no
/// encryption subkey. With `password` every secret is encrypted under it.
pub fn generate_key(
    userids: &[String],
    password: Option<&Passphrase>,
    signing_only: bool,
    now: SystemTime,
) -> Result<Cert, SopError> {
    let mut builder = CertBuilder::new()
        .set_profile(Profile::RFC4880)
        .map_err(SopError::failed)?
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(now)
        .set_validity_period(Some(KEY_VALIDITY))
        .set_features(Features::empty().set_seipdv1())
        .map_err(SopError::failed)?
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .add_signing_subkey()
        .set_password(password.map(|p| Password::from(p.expose())));
    if !signing_only {
        builder = builder.add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        );
    }
    for uid in userids {
        builder = builder.add_userid(UserID::from(uid.as_str()));
    }
    let (key, _revocation) = builder.generate().map_err(SopError::failed)?;
    Ok(key)
}

/// Serializes keys (with their secrets, `secret`) or certificates, armored or binary.
pub fn serialize_certs(certs: &[Cert], secret: bool, armored: bool) -> Result<Vec<u8>, SopError> {
    let mut out = Vec::new();
    if armored {
        let kind = if secret {
            armor::Kind::SecretKey
        } else {
            armor::Kind::PublicKey
        };
        let mut writer = armor::Writer::new(&mut out, kind).map_err(SopError::failed)?;
        write_certs(&mut writer, certs, secret)?;
        writer.finalize().map_err(SopError::failed)?;
    } else {
        write_certs(&mut out, certs, secret)?;
    }
    Ok(out)
}

fn write_certs(sink: &mut dyn Write, certs: &[Cert], secret: bool) -> Result<(), SopError> {
    for cert in certs {
        if secret {
            cert.as_tsk().serialize(sink).map_err(SopError::failed)?;
        } else {
            cert.serialize(sink).map_err(SopError::failed)?;
        }
    }
    Ok(())
}

/// The certificates of `keys` (secret material removed).
pub fn extract_certs(keys: Vec<Cert>) -> Vec<Cert> {
    keys.into_iter()
        .map(Cert::strip_secret_key_material)
        .collect()
}

/// Unlocks every secret of each key with `old` (all must open, or
/// [`SopError::KeyIsProtected`]), then locks them all under `new`, or leaves them
/// unprotected when `new` is `None`.
pub fn change_key_password(
    keys: Vec<Cert>,
    old: &[Passphrase],
    new: Option<&Passphrase>,
) -> Result<Vec<Cert>, SopError> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let key = unlock(key, old);
        if key
            .keys()
            .secret()
            .any(|ka| !ka.key().has_unencrypted_secret())
        {
            return Err(SopError::KeyIsProtected(key.fingerprint().to_hex()));
        }
        let Some(new) = new else {
            out.push(key);
            continue;
        };
        let password = Password::from(new.expose());
        let mut locked: Vec<Packet> = Vec::new();
        for ka in key.keys().secret() {
            let k = ka
                .key()
                .clone()
                .encrypt_secret(&password)
                .map_err(SopError::failed)?;
            locked.push(if ka.primary() {
                Packet::from(k.role_into_primary())
            } else {
                Packet::from(k.role_into_subordinate())
            });
        }
        let (key, _) = key.insert_packets(locked).map_err(SopError::failed)?;
        out.push(key);
    }
    Ok(out)
}

/// A revocation certificate for each key: the certificate with a key revocation
/// signature (reason unspecified) made by its (unlocked) primary key at `now`.
pub fn revoke_keys(keys: &[Cert], now: SystemTime) -> Result<Vec<Cert>, SopError> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let fingerprint = key.fingerprint().to_hex();
        let primary = key
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .map_err(|_| SopError::BadData(format!("{fingerprint}: no primary secret key")))?;
        if !primary.has_unencrypted_secret() {
            return Err(SopError::KeyIsProtected(fingerprint));
        }
        let mut signer = primary.into_keypair().map_err(SopError::failed)?;
        let revocation = CertRevocationBuilder::new()
            .set_signature_creation_time(now)
            .and_then(|b| b.set_reason_for_revocation(ReasonForRevocation::Unspecified, b""))
            .and_then(|b| b.build(&mut signer, key, None))
            .map_err(SopError::failed)?;
        let (revoked, _) = key
            .clone()
            .strip_secret_key_material()
            .insert_packets(Some(revocation))
            .map_err(SopError::failed)?;
        out.push(revoked);
    }
    Ok(out)
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
    Ok(out)
}

fn template(mode: SigMode) -> SignatureBuilder {
    SignatureBuilder::new(match mode {
        SigMode::Binary => SignatureType::Binary,
        SigMode::Text => SignatureType::Text,
    })
}

/// Adds every signer after the first to a [`Signer`] made from the first.
fn signer_stack<'a>(
    message: Message<'a>,
    mut pairs: Vec<openpgp::crypto::KeyPair>,
    mode: SigMode,
    now: SystemTime,
) -> Result<Signer<'a>, SopError> {
    if pairs.is_empty() {
        return Err(SopError::KeyCannotSign("no key given".into()));
    }
    let first = pairs.remove(0);
    let mut signer = Signer::with_template(message, first, template(mode))
        .map_err(SopError::failed)?
        .hash_algo(HASH_ALGO)
        .map_err(SopError::failed)?
        .creation_time(now);
    for pair in pairs {
        signer = signer.add_signer(pair).map_err(SopError::failed)?;
    }
    Ok(signer)
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
    if mode == SigMode::Text {
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
    let mut signing = signer_stack(message, pairs, mode, now)?
        .detached()
        .build()
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
    let sig_mode = match mode {
        InlineMode::Binary => SigMode::Binary,
        InlineMode::Text | InlineMode::Cleartext => SigMode::Text,
    };
    if sig_mode == SigMode::Text {
        require_text(data)?;
    }
    let pairs = signers(keys, now)?;
    let mut sink = Vec::new();
    let mut message = Message::new(&mut sink);
    if mode == InlineMode::Cleartext {
        let mut signing = signer_stack(message, pairs, sig_mode, now)?
            .cleartext()
            .build()
            .map_err(SopError::failed)?;
        signing.write_all(data).map_err(SopError::failed)?;
        signing.finalize().map_err(SopError::failed)?;
        return Ok(sink);
    }
    if armored {
        message = Armorer::new(message).build().map_err(SopError::failed)?;
    }
    let signing = signer_stack(message, pairs, sig_mode, now)?
        .build()
        .map_err(SopError::failed)?;
    let mut literal = LiteralWriter::new(signing)
        .format(literal_format(sig_mode))
        .build()
        .map_err(SopError::failed)?;
    literal.write_all(data).map_err(SopError::failed)?;
    literal.finalize().map_err(SopError::failed)?;
    Ok(sink)
}

fn literal_format(mode: SigMode) -> DataFormat {
    match mode {
        SigMode::Binary => DataFormat::Binary,
        SigMode::Text => DataFormat::Unicode,
    }
}

// ---------------------------------------------------------------- verification

/// Checks detached `signatures` over `data` against `certs`; returns every valid one
/// made inside `window`. None valid is [`SopError::NoSignature`].
pub fn verify(
    data: &[u8],
    signatures: &[u8],
    certs: &[Cert],
    window: TimeWindow,
    now: SystemTime,
) -> Result<Vec<Verification>, SopError> {
    // The signatures must at least parse as OpenPGP signatures.
    let sigs = signature_packets(signatures)?;
    if sigs.is_empty() {
        return Err(SopError::BadData("no signature found".into()));
    }
    let helper = VerifyHelper::new(certs, window);
    let found = DetachedVerifierBuilder::from_bytes(signatures)
        .and_then(|b| b.with_policy(&POLICY, Some(now), helper))
        .and_then(|mut v| {
            v.verify_bytes(data)?;
            Ok(v.into_helper().found)
        });
    match found {
        Ok(found) if !found.is_empty() => Ok(found),
        _ => Err(SopError::NoSignature),
    }
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
    let helper = VerifyHelper::new(certs, window);
    let mut verifier = VerifierBuilder::from_bytes(data)
        .map_err(SopError::bad)?
        .with_policy(&POLICY, Some(now), helper)
        .map_err(|e| match e.downcast_ref::<openpgp::Error>() {
            // Sequoia checks signatures early for small messages; a failure then is
            // about signatures, not about the data's shape.
            Some(openpgp::Error::MalformedMessage(_)) | None => SopError::bad(e),
            Some(_) => SopError::NoSignature,
        })?;
    let mut content = Vec::new();
    verifier
        .read_to_end(&mut content)
        .map_err(|_| SopError::NoSignature)?;
    let found = verifier.into_helper().found;
    if found.is_empty() {
        return Err(SopError::NoSignature);
    }
    Ok((content, found))
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
fn signature_packets(data: &[u8]) -> Result<Vec<Signature>, SopError> {
    let mut sigs = Vec::new();
    let mut ppr = PacketParser::from_bytes(data).map_err(SopError::bad)?;
    while let PacketParserResult::Some(pp) = ppr {
        let (packet, next) = pp.next().map_err(SopError::bad)?;
        match packet {
            Packet::Signature(sig) => sigs.push(sig),
            Packet::Marker(_) | Packet::Padding(_) => {}
            other => {
                return Err(SopError::BadData(format!(
                    "expected signatures, found a {} packet",
                    other.tag()
                )));
            }
        }
        ppr = next;
    }
    Ok(sigs)
}

/// The verification of one good checksum, if it falls inside `window`.
fn verification(good: &GoodChecksum<'_>, window: &TimeWindow) -> Option<Verification> {
    let created = good.sig.signature_creation_time()?;
    if !window.contains(created) {
        return None;
    }
    Some(Verification {
        created,
        signing_key: good.ka.key().fingerprint(),
        primary: good.ka.cert().fingerprint(),
        mode: if good.sig.typ() == SignatureType::Text {
            SigMode::Text
        } else {
            SigMode::Binary
        },
    })
}

/// Certificates matching `ids`.
fn matching_certs(certs: &[Cert], ids: &[KeyHandle]) -> Vec<Cert> {
    certs
        .iter()
        .filter(|c| {
            c.keys()
                .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
        })
        .cloned()
        .collect()
}

/// Collects the valid signatures of any layer.
struct VerifyHelper<'a> {
    certs: &'a [Cert],
    window: TimeWindow,
    found: Vec<Verification>,
}

impl<'a> VerifyHelper<'a> {
    fn new(certs: &'a [Cert], window: TimeWindow) -> Self {
        Self {
            certs,
            window,
            found: Vec::new(),
        }
    }
}

impl VerificationHelper for VerifyHelper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(matching_certs(self.certs, ids))
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                self.found.extend(
                    results
                        .iter()
                        .filter_map(|r| r.as_ref().ok())
                        .filter_map(|good| verification(good, &self.window)),
                );
            }
        }
        Ok(())
    }
}

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

/// Encrypts `plaintext` (SEIPDv1 unless every recipient advertises SEIPDv2; never
/// compressed), optionally signed.
pub fn encrypt(plaintext: &[u8], req: &EncryptRequest<'_>) -> Result<Vec<u8>, SopError> {
    if req.mode == SigMode::Text {
        require_text(plaintext)?;
    }
    let mut keys: Vec<Recipient<'_>> = Vec::new();
    for cert in req.recipients {
        let fingerprint = cert.fingerprint().to_hex();
        let cannot = || SopError::CertCannotEncrypt(fingerprint.clone());
        let vc = cert.with_policy(&POLICY, req.now).map_err(|_| cannot())?;
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(cannot());
        }
        vc.alive().map_err(|_| cannot())?;
        let before = keys.len();
        keys.extend(
            vc.keys()
                .supported()
                .alive()
                .revoked(false)
                .key_flags(
                    KeyFlags::empty()
                        .set_transport_encryption()
                        .set_storage_encryption(),
                )
                .map(Recipient::from),
        );
        if keys.len() == before {
            return Err(cannot());
        }
    }
    let pairs = if req.signers.is_empty() {
        Vec::new()
    } else {
        signers(req.signers, req.now)?
    };
    let passwords: Vec<Password> = req
        .passwords
        .iter()
        .map(|p| Password::from(p.expose()))
        .collect();

    let mut sink = Vec::with_capacity(plaintext.len() + 4096);
    let mut message = Message::new(&mut sink);
    if req.armored {
        message = Armorer::new(message).build().map_err(SopError::failed)?;
    }
    let mut message = Encryptor::for_recipients(message, keys)
        .add_passwords(passwords)
        .symmetric_algo(SYMMETRIC_ALGO)
        .build()
        .map_err(SopError::failed)?;
    if !pairs.is_empty() {
        let mut signing = signer_stack(message, pairs, req.mode, req.now)?;
        for cert in req.recipients {
            signing = signing.add_intended_recipient(cert);
        }
        message = signing.build().map_err(SopError::failed)?;
    }
    let mut literal = LiteralWriter::new(message)
        .format(literal_format(req.mode))
        .build()
        .map_err(SopError::failed)?;
    literal.write_all(plaintext).map_err(SopError::failed)?;
    literal.finalize().map_err(SopError::failed)?;
    Ok(sink)
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
    /// The largest plaintext accepted, in bytes.
    pub max_plaintext: usize,
}

/// A decrypted message.
#[derive(Debug)]
pub struct SopDecrypted {
    /// The whole plaintext, returned only after every check passed.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The session key that worked.
    pub session_key: Option<SessionKeyText>,
    /// The valid signatures by `verify_with` certificates inside the window.
    pub verifications: Vec<Verification>,
}

/// Decrypts with keys, passwords or session keys. All or nothing, with the rules of
/// [`crate::decrypt`]: integrity-protected only, checked to the end, size-limited.
pub fn decrypt(ciphertext: &[u8], req: &DecryptRequest<'_>) -> Result<SopDecrypted, SopError> {
    prescan(ciphertext).map_err(|f| match f {
        DecryptFailure::NotEncrypted | DecryptFailure::Malformed(_) => {
            SopError::BadData(f.to_string())
        }
        other => SopError::CannotDecrypt(other),
    })?;
    let helper = DecryptHelper {
        req,
        found: Vec::new(),
        session_key: None,
        layers_ok: false,
        protected: None,
    };
    let mut buffer: Zeroizing<Vec<u8>> =
        Zeroizing::new(Vec::with_capacity(ciphertext.len().min(req.max_plaintext)));
    // As in `crate::decrypt`: Sequoia 2.4.2 may panic on truncated SEIPDv1 packets.
    let read = std::panic::catch_unwind(AssertUnwindSafe(
        || -> openpgp::Result<DecryptHelper<'_, '_>> {
            let mut decryptor = DecryptorBuilder::from_bytes(ciphertext)?
                .buffer_size(256 * 1024)
                .with_policy(&POLICY, Some(req.now), helper)?;
            let limit = u64::try_from(req.max_plaintext)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            (&mut decryptor).take(limit).read_to_end(&mut buffer)?;
            if buffer.len() > req.max_plaintext {
                return Err(
                    openpgp::Error::InvalidOperation("plaintext over the limit".into()).into(),
                );
            }
            Ok(decryptor.into_helper())
        },
    ));
    let helper = match read {
        Ok(Ok(helper)) => helper,
        Ok(Err(e)) => {
            if let Some(Protected(fpr)) = e.chain().find_map(|c| c.downcast_ref::<Protected>()) {
                return Err(SopError::KeyIsProtected(fpr.clone()));
            }
            if buffer.len() > req.max_plaintext {
                return Err(SopError::CannotDecrypt(DecryptFailure::TooLarge {
                    limit: req.max_plaintext,
                }));
            }
            return Err(SopError::CannotDecrypt(classify(&e, req.max_plaintext)));
        }
        Err(_) => {
            return Err(SopError::BadData(
                "the OpenPGP parser failed on this input (truncated?)".into(),
            ));
        }
    };
    if !helper.layers_ok {
        return Err(SopError::BadData(DecryptFailure::NotEncrypted.to_string()));
    }
    Ok(SopDecrypted {
        plaintext: buffer,
        session_key: helper.session_key,
        verifications: helper.found,
    })
}

/// Marker error: the only keys a message is addressed to are locked.
#[derive(Debug)]
struct Protected(String);

impl std::fmt::Display for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {} is locked", self.0)
    }
}

impl std::error::Error for Protected {}

struct DecryptHelper<'r, 'a> {
    req: &'r DecryptRequest<'a>,
    found: Vec<Verification>,
    session_key: Option<SessionKeyText>,
    /// One encryption layer, at the top.
    layers_ok: bool,
    /// A locked key the message was addressed to.
    protected: Option<String>,
}

impl DecryptHelper<'_, '_> {
    fn record(&mut self, algo: Option<SymmetricAlgorithm>, key: &SessionKey) {
        self.session_key = Some(SessionKeyText {
            algo,
            key: key.clone(),
        });
    }
}

impl VerificationHelper for DecryptHelper<'_, '_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(matching_certs(self.req.verify_with, ids))
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut encryption_layers = 0usize;
        let mut top_is_encryption = false;
        for (i, layer) in structure.into_iter().enumerate() {
            match layer {
                MessageLayer::Encryption { .. } => {
                    top_is_encryption |= i == 0;
                    encryption_layers += 1;
                }
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    let window = self.req.window;
                    self.found.extend(
                        results
                            .iter()
                            .filter_map(|r| r.as_ref().ok())
                            .filter_map(|good| verification(good, &window)),
                    );
                }
            }
        }
        self.layers_ok = top_is_encryption && encryption_layers == 1;
        Ok(())
    }
}

impl DecryptionHelper for DecryptHelper<'_, '_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for sk in self.req.session_keys {
            let algo = sk.algo.or(sym_algo);
            if decrypt(algo, &sk.key) {
                self.record(algo, &sk.key);
                return Ok(None);
            }
        }
        for password in password_variants(self.req.passwords) {
            for skesk in skesks {
                if let Ok((algo, key)) = skesk.decrypt(&password)
                    && decrypt(algo, &key)
                {
                    self.record(algo.or(sym_algo), &key);
                    return Ok(None);
                }
            }
        }
        for tsk in self.req.keys {
            let Ok(vc) = tsk.with_policy(&POLICY, self.req.now) else {
                continue;
            };
            for ka in vc.keys().secret().supported().key_flags(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
            ) {
                let handle = ka.key().key_handle();
                let addressed: Vec<&PKESK> = pkesks
                    .iter()
                    .filter(|p| p.recipient().is_none_or(|r| r.aliases(&handle)))
                    .collect();
                if addressed.is_empty() {
                    continue;
                }
                if !ka.key().has_unencrypted_secret() {
                    self.protected = Some(tsk.fingerprint().to_hex());
                    continue;
                }
                let Ok(mut keypair) = ka.key().clone().into_keypair() else {
                    continue;
                };
                for pkesk in addressed {
                    if let Some((algo, key)) = pkesk.decrypt(&mut keypair, sym_algo)
                        && decrypt(algo, &key)
                    {
                        self.record(algo.or(sym_algo), &key);
                        return Ok(None);
                    }
                }
            }
        }
        if let Some(fpr) = self.protected.take() {
            return Err(Protected(fpr).into());
        }
        Err(crate::message::NoKey.into())
    }
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
