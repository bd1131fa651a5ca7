//! Keys and certificates for `sealpost sop`: parsing (with the repairs of
//! [`crate::repair`]), unlocking, making, serializing, changing passwords, revoking.

use std::io::Write;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::{Packet, UserID};
use openpgp::serialize::Serialize;
use openpgp::types::ReasonForRevocation;

use super::SopError;
use crate::Passphrase;
use crate::message::password_variants;

/// Parses one or more certificates (armored or binary). Secret parts are kept if present.
pub fn parse_certs(data: &[u8]) -> Result<Vec<Cert>, SopError> {
    let certs = crate::repair::certs(data).map_err(SopError::bad)?;
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

/// Makes a new key with `userids` (the first is primary; none is allowed) at `now`, the
/// way the app makes its keys (`crate::key::new_cert`: v4, Ed25519 signing, X25519 and
/// ML-KEM-768+X25519 encryption, SEIPDv2 advertised). With `signing_only` it has no
/// encryption subkey. With `password` every secret is encrypted under it.
pub fn generate_key(
    userids: &[String],
    password: Option<&Passphrase>,
    signing_only: bool,
    now: SystemTime,
) -> Result<Cert, SopError> {
    let userids = userids.iter().map(|u| UserID::from(u.as_str())).collect();
    let password = password.map(|p| Password::from(p.expose()));
    crate::key::new_cert(userids, password, !signing_only, now).map_err(SopError::failed)
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
