//! Correspondents' public certificates, as they arrive from anywhere (the key directory,
//! WKD, an Autocrypt header, a file): checked before anything is kept or used.

use std::time::SystemTime;

use sequoia_openpgp::Cert;
use sequoia_openpgp::cert::CertParser;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::RevocationStatus;

use crate::POLICY;
use crate::error::PgpError;
use crate::key::bound_addresses;

/// Largest certificate taken from outside, in bytes (keys with many signatures exist;
/// flooded ones are refused).
pub const MAX_CONTACT_CERT_BYTES: usize = 256 * 1024;

/// Parses `bytes` (binary or armored) as the public certificate of `address` and checks,
/// at `now`: exactly one certificate; not revoked, not expired; a User ID with this
/// address (compared normalised); an encryption key that is alive. Secret parts, if
/// any, are dropped.
pub fn contact_cert(bytes: &[u8], address: &str, now: SystemTime) -> Result<Cert, PgpError> {
    if bytes.len() > MAX_CONTACT_CERT_BYTES {
        return Err(PgpError::OpenPgp(format!(
            "the certificate is larger than {MAX_CONTACT_CERT_BYTES} bytes"
        )));
    }
    let certs: Vec<Cert> = CertParser::from_bytes(bytes)
        .map_err(PgpError::openpgp)?
        .collect::<Result<_, _>>()
        .map_err(PgpError::openpgp)?;
    let cert = match <[Cert; 1]>::try_from(certs) {
        Ok([cert]) => cert.strip_secret_key_material(),
        Err(certs) => return Err(PgpError::CertificateCount(certs.len())),
    };
    let fingerprint = cert.fingerprint().to_hex();
    let valid = cert.with_policy(&POLICY, now).map_err(PgpError::openpgp)?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(PgpError::Revoked { fingerprint });
    }
    if valid.alive().is_err() {
        return Err(PgpError::Expired { fingerprint });
    }
    let wanted = address.trim().to_ascii_lowercase();
    if !bound_addresses(&cert, now).contains(&wanted) {
        return Err(PgpError::InvalidAddress(format!(
            "{address} is not a User ID of certificate {fingerprint}"
        )));
    }
    if valid
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .next()
        .is_none()
    {
        return Err(PgpError::NoEncryptionKey { fingerprint });
    }
    Ok(cert)
}

/// A certificate's public parts, binary (how contacts' keys are stored).
pub fn public_bytes(cert: &Cert) -> Result<Vec<u8>, PgpError> {
    use sequoia_openpgp::serialize::SerializeInto;
    cert.clone()
        .strip_secret_key_material()
        .to_vec()
        .map_err(PgpError::openpgp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::KeyPair;

    #[test]
    fn a_contact_cert_must_name_the_address_and_be_usable_now() {
        let now = SystemTime::now();
        let key = KeyPair::generate("Bob", &["bob@example.org"], now).unwrap();
        let bytes = key.public_bytes().unwrap();
        let armored = key.public_armored().unwrap();
        for input in [&bytes[..], armored.as_bytes()] {
            let cert = contact_cert(input, "Bob@Example.org", now).unwrap();
            assert_eq!(cert.fingerprint(), key.fingerprint());
            assert!(!cert.is_tsk());
        }
        // Secret parts are dropped, never kept.
        let secret = key.to_secret_bytes().unwrap();
        assert!(
            !contact_cert(secret.expose(), "bob@example.org", now)
                .unwrap()
                .is_tsk()
        );
        assert!(matches!(
            contact_cert(&bytes, "alice@example.org", now),
            Err(PgpError::InvalidAddress(_))
        ));
        let later = now + Duration::from_secs(3 * 365 * 24 * 3600);
        assert!(matches!(
            contact_cert(&bytes, "bob@example.org", later),
            Err(PgpError::Expired { .. })
        ));
        let two = [
            bytes.clone(),
            KeyPair::generate("Eve", &["eve@example.org"], now)
                .unwrap()
                .public_bytes()
                .unwrap(),
        ]
        .concat();
        assert!(matches!(
            contact_cert(&two, "bob@example.org", now),
            Err(PgpError::CertificateCount(2))
        ));
        assert!(contact_cert(b"garbage", "bob@example.org", now).is_err());
        assert!(contact_cert(&[], "bob@example.org", now).is_err());
        let huge = vec![0u8; MAX_CONTACT_CERT_BYTES + 1];
        assert!(contact_cert(&huge, "bob@example.org", now).is_err());
    }
}
