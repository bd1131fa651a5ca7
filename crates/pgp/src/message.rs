//! Low-level OpenPGP messages: encrypt-and-sign, and decrypt-and-verify with the EFAIL
//! rules, plus detached signatures and the signature status a UI may show.
//!
//! # Why decryption buffers
//!
//! Sequoia's streaming decryptor releases plaintext once its internal buffer (25 MiB by
//! default; we set 256 KiB) is full, before it has seen the integrity check (MDC or AEAD
//! tag) and the signatures at the end. [`decrypt`] therefore reads *everything* into a buffer of at
//! most [`OpenContext::max_plaintext`] bytes and returns it only after end of data, when
//! every check has passed. On any failure the buffer is wiped and dropped: the caller
//! gets a [`DecryptFailure`] and not one byte of plaintext. The limit also stops
//! decompression bombs: decompressed output counts against it.

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, Packet, SKESK, Tag};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{RevocationStatus, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};

use crate::{DecryptFailure, KeyPair, POLICY, PgpError};

/// The default for [`OpenContext::max_plaintext`]: 64 MiB of plaintext per message.
pub const DEFAULT_MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

/// How much Sequoia itself holds back before streaming. [`decrypt`] buffers the whole
/// plaintext anyway, so a second large buffer inside Sequoia would only cost memory.
const SEQUOIA_BUFFER: usize = 256 * 1024;

/// The symmetric cipher used for new messages.
pub const SYMMETRIC_ALGO: SymmetricAlgorithm = SymmetricAlgorithm::AES256;

/// Everything reading a message needs: our keys, the certificates we know, which of them
/// the user has confirmed, the time, and the size limit.
#[derive(Debug, Clone, Copy)]
pub struct OpenContext<'a> {
    /// Our own key pairs (secret keys to decrypt with).
    pub own: &'a [KeyPair],
    /// Known public certificates (to verify signatures). Our own are added implicitly.
    pub certs: &'a [Cert],
    /// The certificates the user has confirmed (e.g. compared fingerprints, or found in
    /// the Sealpost key directory with a proven address). Only these give
    /// [`SignatureStatus::Verified`].
    pub confirmed: &'a [Fingerprint],
    /// The time at which signatures and keys must be valid.
    pub now: SystemTime,
    /// The largest plaintext accepted, in bytes ([`DEFAULT_MAX_PLAINTEXT`]).
    pub max_plaintext: usize,
}

impl<'a> OpenContext<'a> {
    /// A context with the default size limit and nothing confirmed.
    pub fn new(own: &'a [KeyPair], certs: &'a [Cert], now: SystemTime) -> Self {
        Self {
            own,
            certs,
            confirmed: &[],
            now,
            max_plaintext: DEFAULT_MAX_PLAINTEXT,
        }
    }
}

/// The signature status of a message, as a UI shows it. Only the verifier in this crate
/// makes one; nothing weaker than a valid signature by a confirmed key bound to the
/// sender's address is ever [`SignatureStatus::Verified`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureStatus {
    /// A valid signature, now, over the whole content, by a key bound to the From
    /// address, on a certificate the user has confirmed.
    Verified {
        /// The signer's certificate.
        signer: Fingerprint,
    },
    /// The same as [`SignatureStatus::Verified`], but the certificate is not confirmed.
    ValidUnconfirmed {
        /// The signer's certificate.
        signer: Fingerprint,
    },
    /// Signed, but the signature does not count. The UI should warn.
    Bad {
        /// Why.
        reason: BadSignature,
        /// The signer's certificate, when known.
        signer: Option<Fingerprint>,
    },
    /// No signature (or none that covers the whole shown message).
    Unsigned,
}

/// Why a signature does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadSignature {
    /// The cryptographic check failed, or the signature is malformed.
    Invalid,
    /// The signing key is not known, so the signature cannot be checked.
    UnknownKey,
    /// The signer's certificate has no valid User ID with the From address.
    NotFromSender,
    /// The message has no single From address to check against.
    NoSender,
    /// The signing key or certificate has expired.
    Expired,
    /// The signing key or certificate is revoked.
    Revoked,
    /// The key is not valid under the policy now (e.g. not signing-capable).
    InvalidKey,
    /// More than one signature: they are never merged into one verdict.
    SeveralSignatures,
}

/// One signature's raw result, before the sender and time rules are applied.
#[derive(Debug, Clone)]
pub(crate) enum SigCheck {
    /// The checksum is good; `key` on `cert` made it.
    Good { cert: Box<Cert>, key: Fingerprint },
    /// The checksum may be fine, but Sequoia found the key unusable at signing time
    /// (revoked, expired, not signing-capable): never valid, the reason is refined.
    BadKey { cert: Box<Cert>, key: Fingerprint },
    /// The signing key is not among the certificates we know.
    MissingKey,
    /// Anything else: bad checksum, bad key at signing time, malformed.
    Bad,
}

/// A decrypted message: its plaintext and its signatures, checked cryptographically.
/// Apply the sender rules with [`Decrypted::signature_status`].
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext: the whole literal data, returned only after every check passed.
    pub plaintext: Vec<u8>,
    checks: Vec<SigCheck>,
}

impl Decrypted {
    /// The signature status for a message whose shown sender addresses are `from` (the
    /// outer From, and the protected inner From when there is one: the signer must be
    /// bound to each).
    pub fn signature_status(&self, from: &[String], ctx: &OpenContext<'_>) -> SignatureStatus {
        signature_status(&self.checks, from, ctx)
    }
}

/// Encrypts `plaintext` to every certificate in `recipients` and to `sender` itself, and
/// signs it with `sender`'s signing key, at `now`. Output is ASCII-armored; it is not
/// compressed (compression makes incompressible attachments ~10× slower to read in gpg,
/// STACK.md §1.1, and leaks length information when mixed with attacker content).
///
/// Fails if a recipient has no encryption key valid at `now`.
pub fn encrypt(
    plaintext: &[u8],
    sender: &KeyPair,
    recipients: &[Cert],
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    let own = sender.cert();
    let mut keys: Vec<Recipient<'_>> = Vec::new();
    for cert in recipients.iter().chain(std::iter::once(&own)) {
        let before = keys.len();
        let fingerprint = cert.fingerprint().to_hex();
        let vc = cert
            .with_policy(&POLICY, now)
            .map_err(|_| PgpError::NoEncryptionKey {
                fingerprint: fingerprint.clone(),
            })?;
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(PgpError::Revoked { fingerprint });
        }
        if vc.alive().is_err() {
            return Err(PgpError::Expired { fingerprint });
        }
        keys.extend(
            vc.keys()
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .for_storage_encryption()
                .map(Recipient::from),
        );
        if keys.len() == before {
            return Err(PgpError::NoEncryptionKey { fingerprint });
        }
    }
    let signer = signing_keypair(sender, now)?;

    let mut sink = Vec::with_capacity(plaintext.len() + 4096);
    let message = Message::new(&mut sink);
    let message = Encryptor::for_recipients(message, keys)
        .symmetric_algo(SYMMETRIC_ALGO)
        .build()
        .map_err(PgpError::openpgp)?;
    let mut signing = Signer::new(message, signer)
        .map_err(PgpError::openpgp)?
        .creation_time(now);
    for cert in recipients.iter().chain(std::iter::once(&own)) {
        signing = signing.add_intended_recipient(cert);
    }
    let message = signing.build().map_err(PgpError::openpgp)?;
    let mut literal = LiteralWriter::new(message)
        .build()
        .map_err(PgpError::openpgp)?;
    literal.write_all(plaintext).map_err(PgpError::openpgp)?;
    literal.finalize().map_err(PgpError::openpgp)?;
    Ok(crate::armor::armor_message(&sink))
}

/// Makes a detached signature (armored) over `data` with `sender`'s signing key.
pub fn sign_detached(data: &[u8], sender: &KeyPair, now: SystemTime) -> Result<Vec<u8>, PgpError> {
    let signer = signing_keypair(sender, now)?;
    let mut sink = Vec::new();
    let message = Message::new(&mut sink);
    let message = Armorer::new(message)
        .kind(openpgp::armor::Kind::Signature)
        .build()
        .map_err(PgpError::openpgp)?;
    let mut signing = Signer::new(message, signer)
        .map_err(PgpError::openpgp)?
        .creation_time(now)
        .detached()
        .build()
        .map_err(PgpError::openpgp)?;
    signing.write_all(data).map_err(PgpError::openpgp)?;
    signing.finalize().map_err(PgpError::openpgp)?;
    Ok(sink)
}

/// How many times [`decrypt`] ran in this process: every decryption of a message goes
/// through it, so callers that promise to decrypt once (the mail reader's opened-message
/// cache) can be held to it by a test.
static DECRYPTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of [`decrypt`] runs in this process so far.
pub fn decryptions() -> u64 {
    DECRYPTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Decrypts an OpenPGP message (armored or binary) with our keys and checks its
/// signatures against the known certificates. All or nothing: the plaintext is returned
/// only when the whole message was read, is integrity-protected (SEIPD with MDC, or
/// AEAD) and passed the check, and fits [`OpenContext::max_plaintext`].
pub fn decrypt(ciphertext: &[u8], ctx: &OpenContext<'_>) -> Result<Decrypted, DecryptFailure> {
    DECRYPTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dearmored = match crate::armor::dearmor_message(ciphertext) {
        Some(Ok(binary)) => Some(binary),
        Some(Err(e)) => return Err(DecryptFailure::Malformed(e)),
        None => None,
    };
    let ciphertext = dearmored.as_deref().unwrap_or(ciphertext);
    prescan(ciphertext)?;
    let helper = Helper {
        own: ctx.own,
        certs: ctx.certs,
        checks: Vec::new(),
        layers_ok: false,
        now: ctx.now,
    };
    // Uncompressed plaintext is smaller than its ciphertext: one allocation, usually.
    let mut buffer: Zeroizing<Vec<u8>> =
        Zeroizing::new(Vec::with_capacity(ciphertext.len().min(ctx.max_plaintext)));
    // Sequoia 2.4.2 panics on some truncated SEIPDv1 packets (`parse.rs`, an `unwrap` of
    // a short read after the session key worked). Hostile input must not crash the app:
    // the panic is caught here (the workspace's profiles unwind) and the half-filled
    // buffer is wiped and dropped like on any other failure.
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| -> openpgp::Result<Helper<'_>> {
        let mut decryptor = DecryptorBuilder::from_bytes(ciphertext)?
            .buffer_size(SEQUOIA_BUFFER)
            .with_policy(&POLICY, Some(ctx.now), helper)?;
        let limit = u64::try_from(ctx.max_plaintext)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        (&mut decryptor).take(limit).read_to_end(&mut buffer)?;
        if buffer.len() > ctx.max_plaintext {
            return Err(TooLarge.into());
        }
        // `take` stopped early only at the decryptor's end of data, where Sequoia has
        // checked the MDC/AEAD tag and called `check`.
        Ok(decryptor.into_helper())
    }));
    let helper = match read {
        Ok(Ok(helper)) => helper,
        Ok(Err(e)) => return Err(classify(&e, ctx.max_plaintext)),
        Err(_) => {
            return Err(DecryptFailure::Malformed(
                "the OpenPGP parser failed on this input (truncated?)".into(),
            ));
        }
    };
    if !helper.layers_ok {
        return Err(DecryptFailure::NotEncrypted);
    }
    Ok(Decrypted {
        plaintext: std::mem::take(&mut *buffer),
        checks: helper.checks,
    })
}

/// Checks a detached signature `signature` (armored or binary) over `data` and applies
/// the sender rules for `from`. Line endings of `data` are the caller's business (MIME
/// content is signed in CRLF form).
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    from: &[String],
    ctx: &OpenContext<'_>,
) -> SignatureStatus {
    signature_status(&detached_checks(data, signature, ctx), from, ctx)
}

/// The raw results of a detached signature check.
pub(crate) fn detached_checks(
    data: &[u8],
    signature: &[u8],
    ctx: &OpenContext<'_>,
) -> Vec<SigCheck> {
    let helper = Helper {
        own: ctx.own,
        certs: ctx.certs,
        checks: Vec::new(),
        layers_ok: false,
        now: ctx.now,
    };
    let run = || -> openpgp::Result<Vec<SigCheck>> {
        let mut verifier = DetachedVerifierBuilder::from_bytes(signature)?.with_policy(
            &POLICY,
            Some(ctx.now),
            helper,
        )?;
        verifier.verify_bytes(data)?;
        Ok(verifier.into_helper().checks)
    };
    match run() {
        Ok(checks) if !checks.is_empty() => checks,
        // A signature part that is not a signature, or fails to parse, still claims
        // to sign: report it as bad, never as unsigned.
        _ => vec![SigCheck::Bad],
    }
}

/// Applies the rules to raw signature results: exactly one signature; good checksum; a
/// key known, valid, alive and not revoked *now*, signing-capable; a certificate with a
/// valid User ID for every address in `from`.
pub(crate) fn signature_status(
    checks: &[SigCheck],
    from: &[String],
    ctx: &OpenContext<'_>,
) -> SignatureStatus {
    let bad = |reason, signer| SignatureStatus::Bad { reason, signer };
    let check = match checks {
        [] => return SignatureStatus::Unsigned,
        [one] => one,
        _ => return bad(BadSignature::SeveralSignatures, None),
    };
    let (cert, key, good) = match check {
        SigCheck::Good { cert, key } => (cert, key, true),
        SigCheck::BadKey { cert, key } => (cert, key, false),
        SigCheck::MissingKey => return bad(BadSignature::UnknownKey, None),
        SigCheck::Bad => return bad(BadSignature::Invalid, None),
    };
    let signer = Some(cert.fingerprint());
    let Ok(vc) = cert.with_policy(&POLICY, ctx.now) else {
        return bad(BadSignature::InvalidKey, signer);
    };
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return bad(BadSignature::Revoked, signer);
    }
    if vc.alive().is_err() {
        return bad(BadSignature::Expired, signer);
    }
    let Some(ka) = vc.keys().key_handle(key.clone()).next() else {
        return bad(BadSignature::InvalidKey, signer);
    };
    if let RevocationStatus::Revoked(_) = ka.revocation_status() {
        return bad(BadSignature::Revoked, signer);
    }
    if ka.alive().is_err() {
        return bad(BadSignature::Expired, signer);
    }
    if !ka.for_signing() {
        return bad(BadSignature::InvalidKey, signer);
    }
    if from.is_empty() {
        return bad(BadSignature::NoSender, signer);
    }
    let bound = crate::key::bound_addresses(cert, ctx.now);
    let all_bound = from
        .iter()
        .all(|addr| bound.iter().any(|b| b.eq_ignore_ascii_case(addr.trim())));
    if !all_bound {
        return bad(BadSignature::NotFromSender, signer);
    }
    if !good {
        return bad(BadSignature::InvalidKey, signer);
    }
    let fingerprint = cert.fingerprint();
    if ctx.confirmed.contains(&fingerprint) {
        SignatureStatus::Verified {
            signer: fingerprint,
        }
    } else {
        SignatureStatus::ValidUnconfirmed {
            signer: fingerprint,
        }
    }
}

/// The signing key of `sender` valid at `now`, as a Sequoia signer.
fn signing_keypair(
    sender: &KeyPair,
    now: SystemTime,
) -> Result<openpgp::crypto::KeyPair, PgpError> {
    let no_key = || PgpError::NoSigningKey {
        fingerprint: sender.fingerprint().to_hex(),
    };
    let ka = sender
        .tsk()
        .keys()
        .unencrypted_secret()
        .with_policy(&POLICY, now)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .ok_or_else(no_key)?;
    ka.key().clone().into_keypair().map_err(|_| no_key())
}

/// Looks at the packets in front of the encrypted container without decrypting: only
/// session-key packets may precede it, and it must be a SEIPD (v1 with MDC, or v2 AEAD).
/// A SED packet (tag 9, no integrity protection) is refused here, before any key is used.
pub(crate) fn prescan(ciphertext: &[u8]) -> Result<(), DecryptFailure> {
    let malformed = |e: openpgp::anyhow::Error| DecryptFailure::Malformed(e.to_string());
    let mut ppr = PacketParser::from_bytes(ciphertext).map_err(malformed)?;
    loop {
        let PacketParserResult::Some(pp) = ppr else {
            return Err(DecryptFailure::NotEncrypted);
        };
        match &pp.packet {
            Packet::PKESK(_) | Packet::SKESK(_) | Packet::Marker(_) | Packet::Padding(_) => {}
            Packet::SEIP(_) => return Ok(()),
            Packet::Unknown(u) if u.tag() == Tag::SED => {
                return Err(DecryptFailure::NoIntegrityProtection);
            }
            Packet::Unknown(u) if u.tag() == Tag::SEIP || u.tag() == Tag::AED => {
                return Err(DecryptFailure::Malformed(format!(
                    "unsupported encrypted container: {}",
                    u.error()
                )));
            }
            _ => return Err(DecryptFailure::NotEncrypted),
        }
        ppr = pp.next().map_err(malformed)?.1;
    }
}

/// Marker error: the plaintext went over the limit.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plaintext over the limit")
    }
}

impl std::error::Error for TooLarge {}

/// Turns Sequoia's error into a [`DecryptFailure`].
pub(crate) fn classify(e: &openpgp::anyhow::Error, limit: usize) -> DecryptFailure {
    for cause in e.chain() {
        if cause.downcast_ref::<TooLarge>().is_some() {
            return DecryptFailure::TooLarge { limit };
        }
        if let Some(NoKey) = cause.downcast_ref::<NoKey>() {
            return DecryptFailure::NoMatchingKey;
        }
        if let Some(openpgp::Error::ManipulatedMessage) = cause.downcast_ref::<openpgp::Error>() {
            return DecryptFailure::IntegrityCheckFailed;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(openpgp::Error::ManipulatedMessage) = inner.downcast_ref::<openpgp::Error>()
        {
            return DecryptFailure::IntegrityCheckFailed;
        }
    }
    let text = format!("{e:#}");
    if text.contains("anipulated") {
        DecryptFailure::IntegrityCheckFailed
    } else {
        DecryptFailure::Malformed(text)
    }
}

/// Marker error: no secret key opened a session key.
#[derive(Debug)]
pub(crate) struct NoKey;

impl std::fmt::Display for NoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no secret key for this message")
    }
}

impl std::error::Error for NoKey {}

/// Feeds Sequoia our keys and records what it found.
struct Helper<'a> {
    /// Our key pairs: secret keys to decrypt with, and our own certificates to verify.
    own: &'a [KeyPair],
    certs: &'a [Cert],
    checks: Vec<SigCheck>,
    /// Set by `check` when the structure is: one encryption layer at the top, then
    /// optionally compression, then optionally signatures.
    layers_ok: bool,
    now: SystemTime,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let matches = |c: &Cert| {
            c.keys()
                .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
        };
        let mut found: Vec<Cert> = self.certs.iter().filter(|c| matches(c)).cloned().collect();
        found.extend(
            self.own
                .iter()
                .filter(|k| matches(k.tsk()))
                .map(KeyPair::cert),
        );
        Ok(found)
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut encryption_layers = 0usize;
        let mut first = true;
        let mut top_is_encryption = false;
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Encryption { .. } => {
                    if first {
                        top_is_encryption = true;
                    }
                    encryption_layers += 1;
                }
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        self.checks.push(match result {
                            Ok(good) => SigCheck::Good {
                                cert: Box::new(good.ka.cert().clone()),
                                key: good.ka.key().fingerprint(),
                            },
                            Err(VerificationError::MissingKey { .. }) => SigCheck::MissingKey,
                            Err(VerificationError::BadKey { ka, .. }) => SigCheck::BadKey {
                                cert: Box::new(ka.cert().clone()),
                                key: ka.key().fingerprint(),
                            },
                            Err(_) => SigCheck::Bad,
                        });
                    }
                }
            }
            first = false;
        }
        self.layers_ok = top_is_encryption && encryption_layers == 1;
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pair in self.own {
            let tsk = pair.tsk();
            for ka in tsk
                .keys()
                .unencrypted_secret()
                .with_policy(&POLICY, self.now)
                .supported()
                .for_transport_encryption()
                .for_storage_encryption()
            {
                let Ok(mut keypair) = ka.key().clone().into_keypair() else {
                    continue;
                };
                let handle = ka.key().key_handle();
                for pkesk in pkesks {
                    let addressed = pkesk.recipient().is_none_or(|r| r.aliases(&handle));
                    if !addressed {
                        continue;
                    }
                    if let Some((algo, sk)) = pkesk.decrypt(&mut keypair, sym_algo)
                        && decrypt(algo, &sk)
                    {
                        // Which certificate decrypted is not needed by the caller.
                        return Ok(None);
                    }
                }
            }
        }
        Err(NoKey.into())
    }
}
