//! Writing messages: whom to encrypt to and how, for mail ([`encrypt`]) and `sealpost
//! sop` alike (`seal`).
//!
//! The choices, made here once:
//! - **Post-quantum first.** A recipient certificate with a valid ML-KEM-768+X25519
//!   encryption key (RFC 9980) is encrypted to that key only, never to its classical
//!   keys: a message must not be weaker than its strongest reader allows.
//! - **SEIPDv2 (AEAD, OCB) when every recipient advertises it**, SEIPDv1 otherwise
//!   (Sequoia decides from the recipients' Features; own keys advertise both).
//! - **The cipher is the strongest AES every recipient accepts** ([`symmetric_algo`]):
//!   AES-256 only if all list it, else AES-192, else AES-128, which RFC 9580 makes
//!   mandatory, so never anything below it.
//! - Never compressed: compression makes incompressible attachments ~10× slower to read
//!   in gpg (STACK.md §1.1) and leaks length information mixed with attacker content.

use std::io::Write;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::Preferences;
use openpgp::crypto::Password;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{
    DataFormat, HashAlgorithm, PublicKeyAlgorithm, RevocationStatus, SignatureType,
    SymmetricAlgorithm,
};
use openpgp::{Cert, crypto::mpi};

use crate::{KeyPair, POLICY, Passphrase, PgpError};

/// The hash of every signature Sealpost makes: SHA-256, which every OpenPGP
/// implementation must support (RFC 9580 §9.5) and which processors hash in hardware
/// (SHA-NI): 1.5 GB/s against 0.7 GB/s for SHA-512 here (`openssl speed`), the largest
/// single cost of verifying a 10 MiB SEIPDv2 message (`benches/pgp.rs`).
pub const HASH_ALGO: HashAlgorithm = HashAlgorithm::SHA256;

/// Why a recipient certificate cannot be encrypted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Revoked.
    Revoked,
    /// Expired.
    Expired,
    /// Not valid under the policy, or no usable encryption key.
    NoKey,
}

/// The keys of `cert` that a message is encrypted to at `now` (see the module docs), and
/// whether they are post-quantum.
pub(crate) fn recipient_keys(
    cert: &Cert,
    now: SystemTime,
) -> Result<(bool, Vec<Recipient<'_>>), Unusable> {
    let vc = cert
        .with_policy(&POLICY, now)
        .map_err(|_| Unusable::NoKey)?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(Unusable::Revoked);
    }
    if vc.alive().is_err() {
        return Err(Unusable::Expired);
    }
    let usable: Vec<_> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .filter(|ka| ecdh_parameters_usable(ka.key().mpis()))
        .collect();
    let post_quantum = usable.iter().any(is_post_quantum);
    let chosen: Vec<Recipient<'_>> = usable
        .into_iter()
        .filter(|ka| !post_quantum || is_post_quantum(ka))
        .map(Recipient::from)
        .collect();
    if chosen.is_empty() {
        return Err(Unusable::NoKey);
    }
    Ok((post_quantum, chosen))
}

/// Puts the session-key packets for classical keys first: GnuPG 2.2 gives up on a
/// message when the first packet it looks up names a key of an algorithm it does not
/// know (an ML-KEM subkey in its keyring), before it reaches the one for its user.
pub(crate) fn classical_first<'a>(per_cert: Vec<(bool, Vec<Recipient<'a>>)>) -> Vec<Recipient<'a>> {
    let (pq, classical): (Vec<_>, Vec<_>) = per_cert.into_iter().partition(|(pq, _)| *pq);
    classical
        .into_iter()
        .chain(pq)
        .flat_map(|(_, keys)| keys)
        .collect()
}

fn is_post_quantum<P: openpgp::packet::key::KeyParts>(
    ka: &openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation<'_, P>,
) -> bool {
    matches!(
        ka.key().pk_algo(),
        PublicKeyAlgorithm::MLKEM768_X25519 | PublicKeyAlgorithm::MLKEM1024_X448
    )
}

/// An ECDH key whose KDF hash is shorter than its key-wrap key cannot be encrypted to
/// (RFC 9580 §13.5); other keys have no such parameters.
fn ecdh_parameters_usable(mpis: &mpi::PublicKey) -> bool {
    match mpis {
        mpi::PublicKey::ECDH { hash, sym, .. } => match (hash.digest_size(), sym.key_size()) {
            (Ok(digest), Ok(key)) => digest >= key,
            _ => false,
        },
        _ => true,
    }
}

/// The strongest AES that every certificate in `recipients` accepts at `now`: AES-256 or
/// AES-192 when all of them list it (as a symmetric or an AEAD preference), else AES-128.
/// With no recipient (passwords only), AES-256.
pub fn symmetric_algo(recipients: &[&Cert], now: SystemTime) -> SymmetricAlgorithm {
    let accepts = |cert: &Cert, algo: SymmetricAlgorithm| {
        let Ok(vc) = cert.with_policy(&POLICY, now) else {
            return false;
        };
        let symmetric = vc
            .preferred_symmetric_algorithms()
            .is_some_and(|list| list.contains(&algo));
        let aead = vc
            .preferred_aead_ciphersuites()
            .is_some_and(|list| list.iter().any(|(s, _)| *s == algo));
        symmetric || aead
    };
    [SymmetricAlgorithm::AES256, SymmetricAlgorithm::AES192]
        .into_iter()
        .find(|algo| recipients.iter().all(|c| accepts(c, *algo)))
        .unwrap_or(SymmetricAlgorithm::AES128)
}

/// What [`seal`] writes: recipients' keys, passwords, signers, the literal format.
pub(crate) struct Seal<'a> {
    /// Chosen with [`recipient_keys`].
    pub keys: Vec<Recipient<'a>>,
    /// The certificates behind `keys`, for the cipher choice and intended recipients.
    pub certs: Vec<&'a Cert>,
    /// Password-encrypted session keys.
    pub passwords: &'a [Passphrase],
    /// Signing keys, already unlocked.
    pub signers: Vec<openpgp::crypto::KeyPair>,
    /// Text (UTF-8 literal, text signatures) or binary.
    pub text: bool,
    /// Armored output (Sequoia's armor writer; mail armors with `armor.rs`).
    pub armored: bool,
    /// Signature time and preference time.
    pub now: SystemTime,
}

/// Encrypts (and signs) `plaintext` as [`Seal`] says; binary unless `armored`.
pub(crate) fn seal(plaintext: &[u8], spec: Seal<'_>) -> openpgp::Result<Vec<u8>> {
    let algo = symmetric_algo(&spec.certs, spec.now);
    let passwords: Vec<Password> = spec
        .passwords
        .iter()
        .map(|p| Password::from(p.expose()))
        .collect();
    let mut sink = Vec::with_capacity(plaintext.len() + 4096);
    let mut message = Message::new(&mut sink);
    if spec.armored {
        message = Armorer::new(message).build()?;
    }
    let mut message = Encryptor::for_recipients(message, spec.keys)
        .add_passwords(passwords)
        .symmetric_algo(algo)
        .build()?;
    if !spec.signers.is_empty() {
        let mut signing = signer_stack(message, spec.signers, spec.text, spec.now)?;
        for cert in &spec.certs {
            signing = signing.add_intended_recipient(cert);
        }
        message = signing.build()?;
    }
    let mut literal = LiteralWriter::new(message)
        .format(if spec.text {
            DataFormat::Unicode
        } else {
            DataFormat::Binary
        })
        .build()?;
    literal.write_all(plaintext)?;
    literal.finalize()?;
    Ok(sink)
}

/// A [`Signer`] over `message` with every key of `pairs` (binary or text signatures).
pub(crate) fn signer_stack<'a>(
    message: Message<'a>,
    pairs: Vec<openpgp::crypto::KeyPair>,
    text: bool,
    now: SystemTime,
) -> openpgp::Result<Signer<'a>> {
    let mut pairs = pairs.into_iter();
    let first = pairs
        .next()
        .ok_or_else(|| openpgp::Error::InvalidOperation("no signing key given".into()))?;
    let template = SignatureBuilder::new(if text {
        SignatureType::Text
    } else {
        SignatureType::Binary
    });
    let mut signer = Signer::with_template(message, first, template)?
        .hash_algo(HASH_ALGO)?
        .creation_time(now);
    for pair in pairs {
        signer = signer.add_signer(pair)?;
    }
    Ok(signer)
}

/// Encrypts `plaintext` to every certificate in `recipients` and to `sender` itself, and
/// signs it with `sender`'s signing key, at `now`, as the module docs say. Output is
/// ASCII-armored.
///
/// Fails if a recipient is revoked, expired or has no encryption key valid at `now`.
pub fn encrypt(
    plaintext: &[u8],
    sender: &KeyPair,
    recipients: &[Cert],
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    let own = sender.cert();
    let certs: Vec<&Cert> = recipients.iter().chain(std::iter::once(&own)).collect();
    let mut keys = Vec::new();
    for cert in &certs {
        let fingerprint = cert.fingerprint().to_hex();
        keys.push(recipient_keys(cert, now).map_err(|e| match e {
            Unusable::Revoked => PgpError::Revoked { fingerprint },
            Unusable::Expired => PgpError::Expired { fingerprint },
            Unusable::NoKey => PgpError::NoEncryptionKey { fingerprint },
        })?);
    }
    let spec = Seal {
        keys: classical_first(keys),
        certs,
        passwords: &[],
        signers: vec![signing_keypair(sender, now)?],
        text: false,
        armored: false,
        now,
    };
    let binary = seal(plaintext, spec).map_err(PgpError::openpgp)?;
    Ok(crate::armor::armor_message(&binary))
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
    let mut signing = signer_stack(message, vec![signer], false, now)
        .and_then(|s| s.detached().build())
        .map_err(PgpError::openpgp)?;
    signing.write_all(data).map_err(PgpError::openpgp)?;
    signing.finalize().map_err(PgpError::openpgp)?;
    Ok(sink)
}

/// The signing key of `sender` valid at `now`, as a Sequoia signer.
pub(crate) fn signing_keypair(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use openpgp::cert::prelude::*;

    fn cert_preferring(algos: Vec<SymmetricAlgorithm>) -> Cert {
        let now = SystemTime::now();
        let (cert, _) = CertBuilder::general_purpose(Some("x@example.org"))
            .set_creation_time(now - std::time::Duration::from_secs(60))
            .generate()
            .unwrap();
        // Re-sign the User ID with the wanted preferences (newer binding wins).
        let mut signer = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let ua = cert.userids().next().unwrap();
        let sig = SignatureBuilder::from(ua.self_signatures().next().unwrap().clone())
            .set_signature_creation_time(now)
            .unwrap()
            .set_preferred_symmetric_algorithms(algos)
            .unwrap()
            .set_preferred_aead_ciphersuites(vec![])
            .unwrap()
            .sign_userid_binding(&mut signer, cert.primary_key().key(), ua.userid())
            .unwrap();
        cert.insert_packets(Some(sig)).unwrap().0
    }

    #[test]
    fn ecdh_keys_whose_kdf_hash_is_shorter_than_the_wrapping_key_are_not_used() {
        // Such a key cannot be encrypted to (RFC 9580 §13.5): skipping it turns
        // Sequoia's late error (sop exit 1) into "cannot encrypt" (sop exit 17).
        use openpgp::crypto::mpi::MPI;
        use openpgp::types::Curve;
        let ecdh = |hash| mpi::PublicKey::ECDH {
            curve: Curve::Cv25519,
            q: MPI::new(&[0x40; 33]),
            hash,
            sym: SymmetricAlgorithm::AES256,
        };
        assert!(!ecdh_parameters_usable(&ecdh(HashAlgorithm::SHA1)));
        assert!(ecdh_parameters_usable(&ecdh(HashAlgorithm::SHA256)));
        assert!(ecdh_parameters_usable(&ecdh(HashAlgorithm::SHA512)));
    }

    #[test]
    fn the_strongest_aes_every_recipient_accepts_is_chosen() {
        use SymmetricAlgorithm::*;
        let now = SystemTime::now();
        let all = cert_preferring(vec![AES256, AES192, AES128]);
        let only128 = cert_preferring(vec![AES128]);
        let only192 = cert_preferring(vec![AES192]);
        let twofish = cert_preferring(vec![Twofish]);
        assert_eq!(symmetric_algo(&[&all], now), AES256);
        assert_eq!(symmetric_algo(&[&all, &only128], now), AES128);
        assert_eq!(symmetric_algo(&[&only192], now), AES192);
        assert_eq!(symmetric_algo(&[&all, &only192], now), AES192);
        // Never below AES-128, whatever a certificate asks for.
        assert_eq!(symmetric_algo(&[&twofish], now), AES128);
        assert_eq!(symmetric_algo(&[], now), AES256);
    }
}
