//! The one decrypt pipeline: [`decrypt_with`] opens every OpenPGP message Sealpost reads,
//! for the mail reader ([`decrypt`], through [`crate::open_mail`]) and for `sealpost sop`
//! ([`crate::sop_support::decrypt`]) alike, with one set of rules, one size cap and one
//! panic guard. Also here: what a signature check found (`SigCheck`) and the mail rules
//! that turn it into the [`SignatureStatus`] a UI shows.
//!
//! # Why decryption buffers
//!
//! Sequoia's streaming decryptor releases plaintext once its internal buffer (25 MiB by
//! default; we set 256 KiB) is full, before it has seen the integrity check (MDC or AEAD
//! tag) and the signatures at the end. [`decrypt_with`] therefore reads *everything* into
//! a buffer of at most [`OpenContext::max_plaintext`] bytes and returns it only after end
//! of data, when every check has passed. On any failure the buffer is wiped and dropped:
//! the caller gets a [`DecryptFailure`] and not one byte of plaintext. The limit also
//! stops decompression bombs: decompressed output counts against it.
//!
//! # Packets it does not know
//!
//! RFC 9580 §5.1 and §5.3: session-key packets of a version we do not know are skipped,
//! so a message that also carries a v6 or post-quantum recipient (or a future SKESK) still
//! opens with the packet meant for us. Signatures of an unknown version inside a message
//! are skipped the same way; a known version that does not parse is a bad signature.

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::crypto::{Password, SessionKey};
use openpgp::packet::{PKESK, Packet, SKESK, Tag};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::types::{RevocationStatus, SignatureType, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};

use crate::{DecryptFailure, KeyPair, POLICY, Passphrase, WipedBytes};

/// The default for [`OpenContext::max_plaintext`]: 64 MiB of plaintext per message. The
/// mail reader and `sealpost sop` both use it.
pub const DEFAULT_MAX_PLAINTEXT: usize = 64 * 1024 * 1024;

/// How much Sequoia itself holds back before streaming. [`decrypt_with`] buffers the
/// whole plaintext anyway, so a second large buffer inside Sequoia would only cost memory.
const SEQUOIA_BUFFER: usize = 256 * 1024;

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

/// What else may open a message, beyond [`OpenContext::own`]: any secret keys (locked
/// ones are skipped and reported), passwords for SKESK packets (each also tried without
/// trailing white space, as SOP asks) and session keys. The mail reader passes none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Secrets<'a> {
    /// Secret keys (certificates with secret material), of any algorithm.
    pub keys: &'a [Cert],
    /// Passwords for password-encrypted session keys.
    pub passwords: &'a [Passphrase],
    /// Session keys to try first.
    pub session_keys: &'a [SessionKeyText],
}

/// A session key as SOP writes it: `ALGONUM:HEX`, such as `9:FCA4...` for AES-256.
/// (SEIPDv2 keeps its algorithm in the encrypted packet; if none is known, the field
/// before the colon is empty.) Wiped on drop and never printed by `Debug`.
pub struct SessionKeyText {
    algo: Option<SymmetricAlgorithm>,
    key: SessionKey,
}

impl SessionKeyText {
    /// Parses `ALGONUM:HEX` (surrounding whitespace ignored); `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (algo, hex) = text.trim().split_once(':')?;
        let algo = if algo.is_empty() {
            None
        } else {
            Some(SymmetricAlgorithm::from(algo.parse::<u8>().ok()?))
        };
        let bytes = Zeroizing::new(hex_decode(hex)?);
        Some(Self {
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
    /// The message has no single From address to check against (no From header, one
    /// without an address, several From headers or several addresses in one).
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

/// One signature's raw result, before the sender and time rules are applied. Both the
/// mail rules ([`signature_status`]) and SOP's (every good one in a time window) start
/// from these.
#[derive(Debug, Clone)]
pub(crate) enum SigCheck {
    /// The checksum is good; `key` on `cert` made it, at `created`.
    Good {
        cert: Box<Cert>,
        key: Fingerprint,
        created: Option<SystemTime>,
        text: bool,
    },
    /// The checksum may be fine, but Sequoia found the key unusable at signing time
    /// (revoked, expired, not signing-capable): never valid, the reason is refined.
    BadKey { cert: Box<Cert>, key: Fingerprint },
    /// The signing key is not among the certificates we know.
    MissingKey,
    /// Anything else: bad checksum, bad key at signing time, malformed.
    Bad,
}

impl SigCheck {
    /// Turns one of Sequoia's verification results into a check; `None` for a signature
    /// of a version this implementation does not know, which is skipped (RFC 9580 §5.2).
    pub(crate) fn from_result(
        result: &Result<openpgp::parse::stream::GoodChecksum<'_>, VerificationError<'_>>,
    ) -> Option<Self> {
        Some(match result {
            Ok(good) => SigCheck::Good {
                cert: Box::new(good.ka.cert().clone()),
                key: good.ka.key().fingerprint(),
                created: good.sig.signature_creation_time(),
                text: good.sig.typ() == SignatureType::Text,
            },
            Err(VerificationError::MissingKey { .. }) => SigCheck::MissingKey,
            Err(VerificationError::BadKey { ka, .. }) => SigCheck::BadKey {
                cert: Box::new(ka.cert().clone()),
                key: ka.key().fingerprint(),
            },
            Err(VerificationError::UnknownSignature { sig })
                if !matches!(sig.body().first(), Some(3 | 4 | 6)) =>
            {
                return None;
            }
            Err(_) => SigCheck::Bad,
        })
    }
}

/// A decrypted message: its plaintext and its signatures, checked cryptographically.
/// Apply the sender rules with [`Decrypted::signature_status`].
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext: the whole literal data, returned only after every check passed;
    /// wiped when dropped.
    pub plaintext: WipedBytes,
    checks: Vec<SigCheck>,
    session_key: Option<SessionKeyText>,
}

impl Decrypted {
    /// The signature status for a message whose shown sender addresses are `from` (the
    /// outer From, and the protected inner From when there is one: the signer must be
    /// bound to each).
    pub fn signature_status(&self, from: &[String], ctx: &OpenContext<'_>) -> SignatureStatus {
        signature_status(&self.checks, from, ctx)
    }

    /// The session key that opened the message.
    pub fn session_key(&self) -> Option<&SessionKeyText> {
        self.session_key.as_ref()
    }

    pub(crate) fn checks(&self) -> &[SigCheck] {
        &self.checks
    }

    pub(crate) fn take_session_key(&mut self) -> Option<SessionKeyText> {
        self.session_key.take()
    }
}

/// How many times [`decrypt_with`] ran in this process: every decryption of a message
/// goes through it, so callers that promise to decrypt once (the mail reader's
/// opened-message cache) can be held to it by a test.
static DECRYPTIONS: AtomicU64 = AtomicU64::new(0);

/// The number of decryptions ([`decrypt_with`] runs) in this process so far.
pub fn decryptions() -> u64 {
    DECRYPTIONS.load(Ordering::Relaxed)
}

/// Decrypts an OpenPGP message (armored or binary) with our own keys and checks its
/// signatures against the known certificates: [`decrypt_with`] with no other secrets.
pub fn decrypt(ciphertext: &[u8], ctx: &OpenContext<'_>) -> Result<Decrypted, DecryptFailure> {
    decrypt_with(ciphertext, ctx, &Secrets::default())
}

/// The decrypt pipeline. All or nothing: the plaintext is returned only when the whole
/// message was read, is integrity-protected (SEIPD with MDC, or AEAD) and passed the
/// check, has exactly one encryption layer at the top, and fits
/// [`OpenContext::max_plaintext`]. Session keys are tried first, then passwords, then
/// the keys of `ctx.own` and `secrets.keys`.
pub fn decrypt_with(
    ciphertext: &[u8],
    ctx: &OpenContext<'_>,
    secrets: &Secrets<'_>,
) -> Result<Decrypted, DecryptFailure> {
    DECRYPTIONS.fetch_add(1, Ordering::Relaxed);
    let dearmored = match crate::armor::dearmor_message(ciphertext) {
        Some(Ok(binary)) => Some(binary),
        Some(Err(e)) => return Err(DecryptFailure::Malformed(e)),
        None => None,
    };
    let ciphertext = dearmored.as_deref().unwrap_or(ciphertext);
    prescan(ciphertext)?;
    let helper = Helper {
        ctx,
        secrets,
        checks: Vec::new(),
        layers_ok: false,
        session_key: None,
        locked: None,
    };
    // Uncompressed plaintext is smaller than its ciphertext: one allocation, usually.
    let mut buffer = WipedBytes::with_capacity(ciphertext.len().min(ctx.max_plaintext));
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
        plaintext: std::mem::take(&mut *buffer).into(),
        checks: helper.checks,
        session_key: helper.session_key,
    })
}

/// Applies the mail rules to raw signature results: exactly one signature; good
/// checksum; a key known, valid, alive and not revoked *now*, signing-capable; a
/// certificate with a valid User ID for every address in `from`.
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
        SigCheck::Good { cert, key, .. } => (cert, key, true),
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

/// Looks at the packets in front of the encrypted container without decrypting: only
/// session-key packets (of any version: unknown ones are skipped later), markers and
/// padding may precede it, and it must be a SEIPD (v1 with MDC, or v2 AEAD). A SED
/// packet (tag 9, no integrity protection) is refused here, before any key is used.
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
            Packet::Unknown(u) if u.tag() == Tag::PKESK || u.tag() == Tag::SKESK => {}
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

/// Marker error: no secret key opened a session key.
#[derive(Debug)]
struct NoKey;

impl std::fmt::Display for NoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no secret key for this message")
    }
}

impl std::error::Error for NoKey {}

/// Marker error: the only keys the message is addressed to are locked.
#[derive(Debug)]
struct Locked(String);

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {} is locked", self.0)
    }
}

impl std::error::Error for Locked {}

/// Turns Sequoia's error into a [`DecryptFailure`].
fn classify(e: &openpgp::anyhow::Error, limit: usize) -> DecryptFailure {
    for cause in e.chain() {
        if cause.downcast_ref::<TooLarge>().is_some() {
            return DecryptFailure::TooLarge { limit };
        }
        if cause.downcast_ref::<NoKey>().is_some() {
            return DecryptFailure::NoMatchingKey;
        }
        if let Some(Locked(fingerprint)) = cause.downcast_ref::<Locked>() {
            return DecryptFailure::KeyLocked {
                fingerprint: fingerprint.clone(),
            };
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

/// Each password as given, and again without trailing whitespace when that differs.
pub(crate) fn password_variants(passwords: &[Passphrase]) -> Vec<Password> {
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

/// The certificates a signature may be checked with: the known ones and our own.
pub(crate) fn known_certs<'c>(ctx: &OpenContext<'c>) -> std::borrow::Cow<'c, [Cert]> {
    if ctx.own.is_empty() {
        return std::borrow::Cow::Borrowed(ctx.certs);
    }
    let mut all = ctx.certs.to_vec();
    all.extend(ctx.own.iter().map(KeyPair::cert));
    std::borrow::Cow::Owned(all)
}

/// Certificates among `certs` with a key matching one of `ids`.
pub(crate) fn matching_certs<'c>(
    certs: impl Iterator<Item = &'c Cert>,
    ids: &[KeyHandle],
) -> Vec<Cert> {
    certs
        .filter(|c| {
            c.keys()
                .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
        })
        .cloned()
        .collect()
}

/// Feeds Sequoia our keys and records what it found.
struct Helper<'a> {
    ctx: &'a OpenContext<'a>,
    secrets: &'a Secrets<'a>,
    checks: Vec<SigCheck>,
    /// Set by `check` when the structure is: one encryption layer at the top, then
    /// optionally compression, then optionally signatures.
    layers_ok: bool,
    session_key: Option<SessionKeyText>,
    /// A locked key the message was addressed to.
    locked: Option<String>,
}

impl Helper<'_> {
    fn record(&mut self, algo: Option<SymmetricAlgorithm>, key: &SessionKey) {
        self.session_key = Some(SessionKeyText {
            algo,
            key: key.clone(),
        });
    }

    /// Tries every encryption-capable secret key of `tsk` on the PKESKs addressed to it.
    fn try_key(
        &mut self,
        tsk: &Cert,
        pkesks: &[PKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> bool {
        for ka in tsk
            .keys()
            .secret()
            .with_policy(&POLICY, self.ctx.now)
            .supported()
            .for_transport_encryption()
            .for_storage_encryption()
        {
            let handle = ka.key().key_handle();
            let mut addressed = pkesks
                .iter()
                .filter(|p| p.recipient().is_none_or(|r| r.aliases(&handle)))
                .peekable();
            if addressed.peek().is_none() {
                continue;
            }
            if !ka.key().has_unencrypted_secret() {
                self.locked = Some(tsk.fingerprint().to_hex());
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
                    return true;
                }
            }
        }
        false
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let mut found = matching_certs(self.ctx.certs.iter(), ids);
        found.extend(
            self.ctx
                .own
                .iter()
                .filter(|k| !matching_certs(std::iter::once(k.tsk()), ids).is_empty())
                .map(KeyPair::cert),
        );
        Ok(found)
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
                    self.checks
                        .extend(results.iter().filter_map(SigCheck::from_result));
                }
            }
        }
        self.layers_ok = top_is_encryption && encryption_layers == 1;
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for sk in self.secrets.session_keys {
            let algo = sk.algo.or(sym_algo);
            if decrypt(algo, &sk.key) {
                self.record(algo, &sk.key);
                return Ok(None);
            }
        }
        for password in password_variants(self.secrets.passwords) {
            for skesk in skesks {
                if let Ok((algo, key)) = skesk.decrypt(&password)
                    && decrypt(algo, &key)
                {
                    self.record(algo.or(sym_algo), &key);
                    return Ok(None);
                }
            }
        }
        let ctx = self.ctx;
        let secrets = self.secrets;
        for tsk in ctx.own.iter().map(KeyPair::tsk).chain(secrets.keys) {
            if self.try_key(tsk, pkesks, sym_algo, decrypt) {
                // Which certificate decrypted is not needed by the caller.
                return Ok(None);
            }
        }
        if let Some(fingerprint) = self.locked.take() {
            return Err(Locked(fingerprint).into());
        }
        Err(NoKey.into())
    }
}
