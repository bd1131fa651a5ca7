//! Autocrypt Level 1 headers: building ours, and collecting a sender's from incoming mail.
//!
//! Outgoing: `Autocrypt: addr=a@b.example; [prefer-encrypt=mutual;] keydata=...` with a
//! minimal certificate (primary key, the User ID for that address, the signing and the
//! encryption subkey valid now). Incoming: exactly one Autocrypt header, its `addr`
//! equal to the single From address (case-insensitive), no unknown critical attribute,
//! and `keydata` that parses as one public certificate with an encryption key valid now.
//! Anything else is ignored, as the specification says.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_parser::Message;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::serialize::SerializeInto;
use sequoia_openpgp::types::RevocationStatus;
use sequoia_openpgp::{Cert, Fingerprint};

use crate::{KeyPair, POLICY, PgpError};

/// The largest `keydata` accepted from a header, in bytes after decoding.
pub const MAX_KEYDATA: usize = 64 * 1024;

/// The sender's encryption preference (Autocrypt `prefer-encrypt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferEncrypt {
    /// `prefer-encrypt=mutual`.
    Mutual,
    /// No preference stated.
    NoPreference,
}

/// A key collected from a valid Autocrypt header.
#[derive(Debug, Clone, PartialEq)]
pub struct AutocryptKey {
    /// The address from the header (equal to the From address).
    pub addr: String,
    /// The sender's preference.
    pub prefer_encrypt: PreferEncrypt,
    /// The public certificate.
    pub cert: Cert,
}

impl Eq for AutocryptKey {}

impl AutocryptKey {
    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.cert.fingerprint()
    }
}

/// The value of our Autocrypt header for `addr` (which must be bound to the key).
pub fn header_value(
    key: &KeyPair,
    addr: &str,
    prefer: PreferEncrypt,
    now: SystemTime,
) -> Result<String, PgpError> {
    let cert = minimal_cert(key, addr, now)?;
    let keydata = STANDARD.encode(cert.to_vec().map_err(PgpError::openpgp)?);
    let mut value = format!("addr={addr}; ");
    if prefer == PreferEncrypt::Mutual {
        value.push_str("prefer-encrypt=mutual; ");
    }
    value.push_str("keydata=");
    // Spaces let the header be folded; readers remove all whitespace from keydata.
    let mut first = true;
    for chunk in keydata.as_bytes().chunks(72) {
        if !first {
            value.push(' ');
        }
        first = false;
        value.push_str(&String::from_utf8_lossy(chunk));
    }
    Ok(value)
}

/// The certificate Autocrypt sends: primary key, the User ID for `addr`, and the signing
/// and encryption subkeys valid at `now`. No secrets.
pub fn minimal_cert(key: &KeyPair, addr: &str, now: SystemTime) -> Result<Cert, PgpError> {
    let cert = key.cert();
    let wanted = addr.trim().to_lowercase();
    let vc = cert.with_policy(&POLICY, now).map_err(PgpError::openpgp)?;
    let keep_keys: Vec<Fingerprint> = vc
        .keys()
        .subkeys()
        .alive()
        .revoked(false)
        .filter(|ka| {
            ka.for_signing() || ka.for_transport_encryption() || ka.for_storage_encryption()
        })
        .map(|ka| ka.key().fingerprint())
        .collect();
    let has_uid = cert
        .userids()
        .any(|u| u.userid().email_normalized().ok().flatten().as_deref() == Some(wanted.as_str()));
    if !has_uid {
        return Err(PgpError::InvalidAddress(addr.to_owned()));
    }
    Ok(cert
        .retain_userids(|u| {
            u.userid().email_normalized().ok().flatten().as_deref() == Some(wanted.as_str())
        })
        .retain_user_attributes(|_| false)
        .retain_subkeys(|k| keep_keys.contains(&k.key().fingerprint())))
}

/// Parses an Autocrypt header value against the message's From address.
pub fn parse_header(value: &str, from: &str, now: SystemTime) -> Option<AutocryptKey> {
    let mut addr = None;
    let mut prefer = PreferEncrypt::NoPreference;
    let mut keydata = None;
    for attribute in value.split(';') {
        let attribute = attribute.trim();
        if attribute.is_empty() {
            continue;
        }
        let (name, val) = attribute.split_once('=')?;
        match name.trim() {
            "addr" => addr = Some(val.trim().to_owned()),
            "prefer-encrypt" => {
                if val.trim() == "mutual" {
                    prefer = PreferEncrypt::Mutual;
                }
            }
            "keydata" => keydata = Some(val),
            other if other.starts_with('_') => {}
            // An unknown critical attribute makes the header invalid.
            _ => return None,
        }
    }
    let addr = addr?;
    if !addr.eq_ignore_ascii_case(from.trim()) {
        return None;
    }
    let compact: String = keydata?.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() > MAX_KEYDATA / 3 * 4 + 4 {
        return None;
    }
    let bytes = STANDARD.decode(compact).ok()?;
    let cert = Cert::from_bytes(&bytes).ok()?.strip_secret_key_material();
    let vc = cert.with_policy(&POLICY, now).ok()?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return None;
    }
    vc.alive().ok()?;
    vc.keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .next()?;
    Some(AutocryptKey {
        addr,
        prefer_encrypt: prefer,
        cert,
    })
}

/// The sender's key from a message's headers, if it has exactly one valid Autocrypt
/// header for its single From address.
pub(crate) fn from_message(msg: &Message<'_>, now: SystemTime) -> Option<AutocryptKey> {
    let from = msg.from()?;
    let mut addresses = from.iter();
    let sender = addresses.next()?.address.as_deref()?.to_owned();
    if addresses.next().is_some() {
        return None;
    }
    let root = msg.parts.first()?;
    let mut values = root
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("autocrypt"))
        .filter_map(|h| {
            let start = usize::try_from(h.offset_start).ok()?;
            let end = usize::try_from(h.offset_end).ok()?;
            std::str::from_utf8(msg.raw_message.get(start..end)?).ok()
        });
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_header(value, &sender, now)
}
