//! The user's key pair: generation, renewal, storage bytes, export and import.
//!
//! A [`KeyPair`] holds one OpenPGP certificate (v4, Cv25519) with its secret key material
//! *unencrypted*: the vault of `sealpost-core` encrypts the bytes from
//! [`KeyPair::to_secret_bytes`], which come out only as a wiping [`SecretVec`]. This crate
//! never writes them anywhere.

use std::fmt;
use std::time::{Duration, SystemTime};

use sealpost_crypto::SecretVec;
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::SubpacketTag;
use openpgp::packet::{Packet, UserID};
use openpgp::parse::Parse;
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::{
    Features, KeyFlags, PublicKeyAlgorithm, PublicKeyAlgorithmSpecification, RevocationStatus,
    SignatureType,
};
use openpgp::{Cert, Fingerprint, Profile};

use crate::{POLICY, Passphrase, PgpError};

/// How long a new or renewed key is valid: two years.
pub const KEY_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// [`KeyPair::renew_if_needed`] extends the expiry once it is this close: 60 days.
pub const RENEW_WINDOW: Duration = Duration::from_secs(60 * 24 * 3600);

/// The user's OpenPGP key pair: a certification-only primary key, a signing subkey and
/// encryption subkeys (X25519, and ML-KEM-768+X25519 on keys made or renewed since
/// post-quantum encryption came), all secret parts held unencrypted in memory (Sequoia
/// keeps them in its own wiping, encrypted-in-memory type).
#[derive(Clone)]
pub struct KeyPair {
    /// Invariant: a TSK whose signing and encryption keys have unencrypted secrets.
    tsk: Cert,
}

impl KeyPair {
    /// Makes a new key for `name` and `addresses` (the first becomes the primary User
    /// ID), created at `now`, valid for [`KEY_VALIDITY`], as `new_cert` makes keys.
    pub fn generate(name: &str, addresses: &[&str], now: SystemTime) -> Result<Self, PgpError> {
        if addresses.is_empty() {
            return Err(PgpError::NoAddress);
        }
        let mut userids = Vec::with_capacity(addresses.len());
        for address in addresses {
            let name = if name.trim().is_empty() {
                None
            } else {
                Some(name.trim())
            };
            let uid = UserID::from_address(name, None, *address)
                .map_err(|_| PgpError::InvalidAddress((*address).to_owned()))?;
            // The address must survive normalisation, or it could never match a From.
            if uid.email_normalized().ok().flatten().is_none() {
                return Err(PgpError::InvalidAddress((*address).to_owned()));
            }
            userids.push(uid);
        }
        let tsk = new_cert(userids, None, true, now).map_err(PgpError::openpgp)?;
        Self::checked(tsk, now)
    }

    /// Restores a key pair from the bytes [`KeyPair::to_secret_bytes`] produced (as the
    /// vault returns them). Checks that signing and encryption secrets are present.
    pub fn from_secret_bytes(bytes: &[u8], now: SystemTime) -> Result<Self, PgpError> {
        let tsk = Cert::from_bytes(bytes).map_err(PgpError::openpgp)?;
        Self::checked(tsk, now)
    }

    /// The whole key pair, secrets included and unencrypted, as binary OpenPGP, for the
    /// vault to encrypt. Handled only as a wiping [`SecretVec`].
    pub fn to_secret_bytes(&self) -> Result<SecretVec, PgpError> {
        let mut out = Vec::new();
        let written = self.tsk.as_tsk().serialize(&mut out);
        let out = SecretVec::new(out);
        written.map_err(PgpError::openpgp)?;
        Ok(out)
    }

    /// The public certificate (no secret material).
    pub fn cert(&self) -> Cert {
        self.tsk.clone().strip_secret_key_material()
    }

    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.tsk.fingerprint()
    }

    /// The public certificate, ASCII-armored (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).
    pub fn public_armored(&self) -> Result<String, PgpError> {
        let bytes = self.cert().armored().to_vec().map_err(PgpError::openpgp)?;
        String::from_utf8(bytes).map_err(PgpError::openpgp)
    }

    /// The public certificate, binary (what the key directory stores).
    pub fn public_bytes(&self) -> Result<Vec<u8>, PgpError> {
        self.cert().to_vec().map_err(PgpError::openpgp)
    }

    /// The e-mail addresses bound to the key at `now` (normalised, lower case).
    pub fn addresses(&self, now: SystemTime) -> Vec<String> {
        bound_addresses(&self.tsk, now)
    }

    /// When the primary key was made.
    pub fn creation_time(&self) -> SystemTime {
        self.tsk.primary_key().key().creation_time()
    }

    /// When the primary key expires, as of `now` (`None`: never).
    pub fn expiration(&self, now: SystemTime) -> Result<Option<SystemTime>, PgpError> {
        let vc = self
            .tsk
            .with_policy(&POLICY, now)
            .map_err(PgpError::openpgp)?;
        Ok(vc.primary_key().key_expiration_time())
    }

    /// Extends the expiry of the primary key and of every non-revoked subkey to
    /// `now + KEY_VALIDITY` when any of them expires within [`RENEW_WINDOW`] of `now`
    /// (or already has). Returns whether it renewed. New self-signatures are dated `now`.
    ///
    /// The updated certificate must be stored again ([`KeyPair::to_secret_bytes`]) and
    /// published so correspondents see the new expiry.
    pub fn renew_if_needed(&mut self, now: SystemTime) -> Result<bool, PgpError> {
        let vc = self
            .tsk
            .with_policy(&POLICY, now)
            .map_err(PgpError::openpgp)?;
        let horizon = now + RENEW_WINDOW;
        let due = vc
            .keys()
            .revoked(false)
            .any(|ka| ka.key_expiration_time().is_some_and(|t| t <= horizon));
        if !due {
            return Ok(false);
        }
        self.resign(now, now + KEY_VALIDITY, None)?;
        Ok(true)
    }

    /// Brings a key made before post-quantum encryption to the profile of new keys
    /// (`new_cert`): an ML-KEM-768+X25519 encryption subkey beside the X25519 one, and
    /// SEIPDv2 advertised, keeping the key's expiry. Returns whether it changed anything.
    /// Meant for the user's own Sealpost key, at its renewal; the updated certificate
    /// must be stored and published (the directory, Autocrypt) like a renewed one.
    ///
    /// Not for a key its owner also uses in GnuPG 2.2: GnuPG 2.2 cannot decrypt with a
    /// key whose certificate carries an ML-KEM subkey (its key lookup fails on the
    /// unknown algorithm), nor read SEIPDv2 (`tests/gnupg_interop.rs`).
    pub fn upgrade(&mut self, now: SystemTime) -> Result<bool, PgpError> {
        let advertises_v2 = {
            use openpgp::cert::Preferences;
            let vc = self
                .tsk
                .with_policy(&POLICY, now)
                .map_err(PgpError::openpgp)?;
            vc.primary_userid()
                .ok()
                .and_then(|u| u.features())
                .is_some_and(|f| f.supports_seipdv2())
        };
        if advertises_v2 && self.has_post_quantum(now) {
            return Ok(false);
        }
        let expiry = self.expiration(now)?.unwrap_or(now + KEY_VALIDITY);
        if !advertises_v2 {
            self.resign(now, expiry, Some(features()))?;
        }
        self.add_post_quantum_subkey(now, expiry)?;
        Ok(true)
    }

    /// New self-signatures dated `now` for the primary key, every User ID and every
    /// subkey, all valid until `new_expiry`, advertising `features` when given.
    fn resign(
        &mut self,
        now: SystemTime,
        new_expiry: SystemTime,
        features: Option<Features>,
    ) -> Result<(), PgpError> {
        let vc = self
            .tsk
            .with_policy(&POLICY, now)
            .map_err(PgpError::openpgp)?;
        let with_features = |b: SignatureBuilder| match &features {
            Some(f) => b.set_features(f.clone()),
            None => Ok(b),
        };
        let mut primary_signer = vc
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .map_err(|_| PgpError::PrimaryKeyUnavailable)?
            .into_keypair()
            .map_err(|_| PgpError::PrimaryKeyUnavailable)?;
        let primary = vc.primary_key();
        let period = |created: SystemTime| new_expiry.duration_since(created).ok();
        let mut sigs: Vec<Packet> = Vec::new();

        // The primary key: a new direct-key signature and a new binding for every User ID
        // (the primary User ID's binding is what readers consult first).
        let template = direct_key_template(&primary);
        let direct = with_features(template.set_type(SignatureType::DirectKey))
            .and_then(|b| b.set_signature_creation_time(now))
            .and_then(|b| b.set_key_validity_period(period(primary.key().creation_time())))
            .and_then(|b| b.sign_direct_key(&mut primary_signer, None))
            .map_err(PgpError::openpgp)?;
        sigs.push(direct.into());
        let primary_uid = vc.primary_userid().ok().map(|u| u.userid().clone());
        for ua in vc.userids().revoked(false) {
            let is_primary = primary_uid.as_ref() == Some(ua.userid());
            let sig = with_features(SignatureBuilder::from(ua.binding_signature().clone()))
                .and_then(|b| b.set_signature_creation_time(now))
                .and_then(|b| b.set_key_validity_period(period(primary.key().creation_time())))
                .and_then(|b| b.set_primary_userid(is_primary))
                .and_then(|b| {
                    b.sign_userid_binding(&mut primary_signer, primary.key(), ua.userid())
                })
                .map_err(PgpError::openpgp)?;
            sigs.push(sig.into());
        }

        sigs.extend(subkey_bindings(&vc, &mut primary_signer, now, new_expiry)?);

        let (renewed, _) = self
            .tsk
            .clone()
            .insert_packets(sigs)
            .map_err(PgpError::openpgp)?;
        self.tsk = Self::checked(renewed, now)?.tsk;
        Ok(())
    }

    /// Whether the key has an ML-KEM-768+X25519 encryption subkey valid at `now`.
    pub fn has_post_quantum(&self, now: SystemTime) -> bool {
        self.tsk.with_policy(&POLICY, now).is_ok_and(|vc| {
            vc.keys()
                .subkeys()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .any(|ka| ka.key().pk_algo() == PublicKeyAlgorithm::MLKEM768_X25519)
        })
    }

    /// Adds an ML-KEM-768+X25519 encryption subkey (RFC 9980; a v4 key may carry one,
    /// so GnuPG users keep reading our signatures), bound at `now` and valid until
    /// `until`, unless the key already has one. Returns whether it added one. Senders
    /// then encrypt to it and never to the classical subkey (`encrypt.rs`).
    fn add_post_quantum_subkey(
        &mut self,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<bool, PgpError> {
        if self.has_post_quantum(now) {
            return Ok(false);
        }
        let vc = self
            .tsk
            .with_policy(&POLICY, now)
            .map_err(PgpError::openpgp)?;
        let primary = vc.primary_key().key();
        let mut signer = primary
            .clone()
            .parts_into_secret()
            .and_then(|k| k.into_keypair())
            .map_err(|_| PgpError::PrimaryKeyUnavailable)?;
        let mut subkey = PublicKeyAlgorithmSpecification::mlkem768_x25519()
            .generate_key(Profile::RFC4880)
            .map_err(PgpError::openpgp)?
            .role_into_subordinate();
        subkey.set_creation_time(now).map_err(PgpError::openpgp)?;
        let binding = SignatureBuilder::new(SignatureType::SubkeyBinding)
            .set_signature_creation_time(now)
            .and_then(|b| b.set_key_flags(encryption_flags()))
            .and_then(|b| b.set_key_validity_period(until.duration_since(now).ok()))
            .and_then(|b| b.sign_subkey_binding(&mut signer, primary, &subkey))
            .map_err(PgpError::openpgp)?;
        let (with_pq, _) = self
            .tsk
            .clone()
            .insert_packets([Packet::from(subkey), Packet::from(binding)])
            .map_err(PgpError::openpgp)?;
        self.tsk = Self::checked(with_pq, now)?.tsk;
        Ok(true)
    }

    /// Exports the key pair as an armored secret key (`-----BEGIN PGP PRIVATE KEY
    /// BLOCK-----`) whose every secret is encrypted with a freshly generated
    /// [`Passphrase`] (never the account password). Show the passphrase once.
    pub fn export_protected(&self) -> Result<(String, Passphrase), PgpError> {
        let passphrase = Passphrase::generate()?;
        let password = passphrase.to_openpgp();
        let mut locked: Vec<Packet> = Vec::new();
        for ka in self.tsk.keys().secret() {
            let key = ka
                .key()
                .clone()
                .encrypt_secret(&password)
                .map_err(PgpError::openpgp)?;
            locked.push(if ka.primary() {
                Packet::from(key.role_into_primary())
            } else {
                Packet::from(key.role_into_subordinate())
            });
        }
        let (protected, _) = self
            .tsk
            .clone()
            .insert_packets(locked)
            .map_err(PgpError::openpgp)?;
        let bytes = protected
            .as_tsk()
            .armored()
            .to_vec()
            .map_err(PgpError::openpgp)?;
        let armored = String::from_utf8(bytes).map_err(PgpError::openpgp)?;
        Ok((armored, passphrase))
    }

    /// Imports an existing OpenPGP secret key (armored or binary, such as
    /// `gpg --export-secret-keys`) as the user's key. Protected secrets are unlocked with
    /// `passphrase`. Refuses public keys, revoked or expired certificates, and keys
    /// without a usable signing and encryption key with secret material.
    pub fn import_secret(
        data: &[u8],
        passphrase: Option<&Passphrase>,
        now: SystemTime,
    ) -> Result<Self, PgpError> {
        let certs: Vec<Cert> = openpgp::cert::CertParser::from_bytes(data)
            .map_err(PgpError::openpgp)?
            .collect::<openpgp::Result<Vec<Cert>>>()
            .map_err(PgpError::openpgp)?;
        let count = certs.len();
        let Some(cert) = certs.into_iter().next().filter(|_| count == 1) else {
            return Err(PgpError::CertificateCount(count));
        };
        if !cert.is_tsk() {
            return Err(PgpError::NotASecretKey);
        }
        let mut unlocked: Vec<Packet> = Vec::new();
        for ka in cert.keys().secret() {
            if ka.key().has_unencrypted_secret() {
                continue;
            }
            let password = passphrase.ok_or(PgpError::PassphraseNeeded)?.to_openpgp();
            let key = ka
                .key()
                .clone()
                .decrypt_secret(&password)
                .map_err(|_| PgpError::WrongPassphrase)?;
            unlocked.push(if ka.primary() {
                Packet::from(key.role_into_primary())
            } else {
                Packet::from(key.role_into_subordinate())
            });
        }
        let (cert, _) = cert.insert_packets(unlocked).map_err(PgpError::openpgp)?;
        Self::checked(cert, now)
    }

    /// The full certificate with secrets, for signing and decrypting in this crate.
    pub(crate) fn tsk(&self) -> &Cert {
        &self.tsk
    }

    /// Checks the invariant: valid under the policy at `now`, alive, not revoked, with
    /// a signing and an encryption key whose secrets are present and unencrypted.
    fn checked(tsk: Cert, now: SystemTime) -> Result<Self, PgpError> {
        if !tsk.is_tsk() {
            return Err(PgpError::NotASecretKey);
        }
        let fingerprint = tsk.fingerprint().to_hex();
        let vc = tsk.with_policy(&POLICY, now).map_err(PgpError::openpgp)?;
        if let RevocationStatus::Revoked(_) = vc.revocation_status() {
            return Err(PgpError::Revoked { fingerprint });
        }
        if vc.alive().is_err() {
            return Err(PgpError::Expired { fingerprint });
        }
        let usable = || {
            vc.keys()
                .unencrypted_secret()
                .supported()
                .alive()
                .revoked(false)
        };
        if usable().for_signing().next().is_none() {
            return Err(PgpError::NoSigningKey { fingerprint });
        }
        if usable()
            .for_transport_encryption()
            .for_storage_encryption()
            .next()
            .is_none()
        {
            return Err(PgpError::NoEncryptionKey { fingerprint });
        }
        Ok(Self { tsk })
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({}, [secrets redacted])", self.tsk.fingerprint())
    }
}

/// The template of a new direct-key signature, as Sequoia makes one: the current
/// direct-key signature, or else the primary User ID's binding (GnuPG makes no
/// direct-key signature), minus what only belongs on a User ID binding.
fn direct_key_template(
    primary: &ValidPrimaryKeyAmalgamation<'_, openpgp::packet::key::PublicParts>,
) -> SignatureBuilder {
    if let Ok(sig) = primary.direct_key_signature() {
        return SignatureBuilder::from(sig.clone());
    }
    let mut template = SignatureBuilder::from(primary.binding_signature().clone());
    let area = template.hashed_area_mut();
    for tag in [
        SubpacketTag::ExportableCertification,
        SubpacketTag::Revocable,
        SubpacketTag::TrustSignature,
        SubpacketTag::RegularExpression,
        SubpacketTag::PrimaryUserID,
        SubpacketTag::SignersUserID,
        SubpacketTag::ReasonForRevocation,
        SubpacketTag::SignatureTarget,
        SubpacketTag::EmbeddedSignature,
    ] {
        area.remove_all(tag);
    }
    template
}

/// New bindings dated `now` for every non-revoked subkey, valid until `new_expiry`.
/// Signing-capable subkeys need a fresh back-signature made by the subkey; one without
/// its secret cannot be re-bound and will expire.
fn subkey_bindings(
    vc: &ValidCert<'_>,
    primary_signer: &mut openpgp::crypto::KeyPair,
    now: SystemTime,
    new_expiry: SystemTime,
) -> Result<Vec<Packet>, PgpError> {
    let primary = vc.primary_key();
    let mut sigs = Vec::new();
    for ka in vc.keys().subkeys().revoked(false) {
        let period = new_expiry.duration_since(ka.key().creation_time()).ok();
        let mut builder = SignatureBuilder::from(ka.binding_signature().clone())
            .set_signature_creation_time(now)
            .and_then(|b| b.set_key_validity_period(period))
            .map_err(PgpError::openpgp)?;
        if ka.for_signing() || ka.for_certification() || ka.for_authentication() {
            let Ok(mut subkey_signer) = ka
                .key()
                .clone()
                .parts_into_secret()
                .and_then(|k| k.into_keypair())
            else {
                continue;
            };
            let backsig = SignatureBuilder::new(SignatureType::PrimaryKeyBinding)
                .set_signature_creation_time(now)
                .and_then(|b| {
                    b.sign_primary_key_binding(&mut subkey_signer, primary.key(), ka.key())
                })
                .map_err(PgpError::openpgp)?;
            builder = builder
                .set_embedded_signature(backsig)
                .map_err(PgpError::openpgp)?;
        }
        let sig = builder
            .sign_subkey_binding(primary_signer, primary.key(), ka.key())
            .map_err(PgpError::openpgp)?;
        sigs.push(sig.into());
    }
    Ok(sigs)
}

/// How every new key is made, for the app ([`KeyPair::generate`]) and `sop
/// generate-key` alike: v4 (GnuPG 2.2 and Thunderbird read v4, not v6: STACK.md §1.3),
/// a certification-only Ed25519 primary key, an Ed25519 signing subkey and, unless
/// `encryption` is false, two encryption subkeys: X25519 for readers without
/// post-quantum support and ML-KEM-768+X25519 (RFC 9980), which senders that know it
/// use instead. It advertises SEIPDv1 and SEIPDv2, so senders whose recipients all read
/// SEIPDv2 use AEAD. Created at `now`, valid for [`KEY_VALIDITY`]; with `password`
/// every secret is encrypted under it.
pub(crate) fn new_cert(
    userids: Vec<UserID>,
    password: Option<Password>,
    encryption: bool,
    now: SystemTime,
) -> openpgp::Result<Cert> {
    let mut builder = CertBuilder::new()
        .set_profile(Profile::RFC4880)?
        .set_cipher_suite(CipherSuite::Cv25519)
        // Encryption subkeys without a cipher suite of their own get ML-KEM.
        .set_encryption_algorithm(PublicKeyAlgorithmSpecification::mlkem768_x25519())
        .set_creation_time(now)
        .set_validity_period(Some(KEY_VALIDITY))
        .set_features(features())?
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .add_signing_subkey()
        .set_password(password);
    if encryption {
        builder = builder
            .add_subkey(encryption_flags(), None, CipherSuite::Cv25519)
            .add_subkey(encryption_flags(), None, None);
    }
    for uid in userids {
        builder = builder.add_userid(uid);
    }
    // The revocation certificate is not kept: the primary secret is, so the app can make
    // one whenever the user asks.
    let (cert, _revocation) = builder.generate()?;
    Ok(cert)
}

/// SEIPDv1 (with MDC) and SEIPDv2 (AEAD).
fn features() -> Features {
    Features::empty().set_seipdv1().set_seipdv2()
}

/// An encryption subkey's flags: for data in transit and at rest.
fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_transport_encryption()
        .set_storage_encryption()
}

/// The normalised e-mail addresses of `cert`'s User IDs that are valid and not revoked
/// at `now`.
pub(crate) fn bound_addresses(cert: &Cert, now: SystemTime) -> Vec<String> {
    let Ok(vc) = cert.with_policy(&POLICY, now) else {
        return Vec::new();
    };
    vc.userids()
        .revoked(false)
        .filter_map(|ua| ua.userid().email_normalized().ok().flatten())
        .collect()
}
