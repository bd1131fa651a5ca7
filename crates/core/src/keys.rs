//! OpenPGP keys in the profile: the user's own key pair, and the keys of the people the
//! user writes to.
//!
//! - The own key pair lives in the vault as the secret [`OWN_KEY`] (the unencrypted
//!   transferable secret key, sealed under the vault key like every secret), so it never
//!   touches the disk in the clear and travels to the user's other devices inside the
//!   encrypted settings blob. It is made on the device, and renewed before it expires.
//! - A contact's key lives as the vault secret `contact/<address>`: a sealed JSON record
//!   of the key in use, where it came from, when it was first and last seen, whether
//!   the user confirmed it, and a *pending* key when a different one turned up. (The
//!   address is the record's name, readable in the local vault file like every secret's
//!   name; on the sync server it is inside the encrypted settings blob.) A changed key is flagged and kept aside, never swapped in
//!   silently: the user accepts it ([`accept_changed_key`]) or it stays pending.
//!
//! Every certificate is checked before it is kept ([`sealpost_pgp::contact_cert`]): it
//! must carry the address as a User ID, be valid now and able to encrypt.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealpost_crypto::SecretVec;
use sealpost_pgp::{Cert, Fingerprint, KeyPair, OpenContext, Passphrase};
use sealpost_proto::{Bytes, EmailAddress};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::CoreError;
use crate::vault::Unlocked;

/// The vault secret that holds the user's own key pair.
pub const OWN_KEY: &str = "openpgp/own-key";

/// Prefix of the vault secrets that hold contacts' keys.
const CONTACT_PREFIX: &str = "contact/";

/// `now` as the OpenPGP code wants it.
pub fn system_time(clock: &dyn Clock) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(clock.now_unix()).unwrap_or(0))
}

/// The user's key pair, if the profile has one.
pub fn own_key(u: &Unlocked, clock: &dyn Clock) -> Result<Option<KeyPair>, CoreError> {
    let Some(bytes) = u.secret(OWN_KEY)? else {
        return Ok(None);
    };
    Ok(Some(KeyPair::from_secret_bytes(
        bytes.expose(),
        system_time(clock),
    )?))
}

fn store_own_key(u: &Unlocked, key: &KeyPair, clock: &dyn Clock) -> Result<(), CoreError> {
    let bytes: SecretVec = key.to_secret_bytes()?;
    u.put_secret(OWN_KEY, bytes.expose(), clock)
}

/// The user's key pair: made now (v4, Cv25519, signing and encryption subkeys) if the
/// profile has none, renewed and stored again if it is close to expiring.
pub fn ensure_own_key(
    u: &Unlocked,
    name: &str,
    addresses: &[&str],
    clock: &dyn Clock,
) -> Result<KeyPair, CoreError> {
    if renew_own_key_if_due(u, clock)? || u.secret(OWN_KEY)?.is_some() {
        return own_key(u, clock)?.ok_or(CoreError::NoOwnKey);
    }
    let key = KeyPair::generate(name, addresses, system_time(clock))?;
    store_own_key(u, &key, clock)?;
    Ok(key)
}

/// Renews the user's key if it is close to expiring (or expired), and stores it; whether
/// it did. The mail engine calls this on every sync and encrypted send, so a key in use
/// never lapses; without a key it does nothing.
pub fn renew_own_key_if_due(u: &Unlocked, clock: &dyn Clock) -> Result<bool, CoreError> {
    let Some(mut key) = own_key(u, clock)? else {
        return Ok(false);
    };
    if key.renew_if_needed(system_time(clock))? {
        store_own_key(u, &key, clock)?;
        return Ok(true);
    }
    Ok(false)
}

/// Makes an existing OpenPGP secret key (a GnuPG export, say) the user's key. Refused if
/// the profile has a key already, unless `replace`.
pub fn import_own_key(
    u: &Unlocked,
    data: &[u8],
    passphrase: Option<&Passphrase>,
    replace: bool,
    clock: &dyn Clock,
) -> Result<KeyPair, CoreError> {
    if !replace && u.secret(OWN_KEY)?.is_some() {
        return Err(CoreError::OwnKeyExists);
    }
    let key = KeyPair::import_secret(data, passphrase, system_time(clock))?;
    store_own_key(u, &key, clock)?;
    Ok(key)
}

/// The user's key pair as an armored file protected by a passphrase generated now and
/// shown once (never the account password).
pub fn export_own_key(u: &Unlocked, clock: &dyn Clock) -> Result<(String, Passphrase), CoreError> {
    let key = own_key(u, clock)?.ok_or(CoreError::NoOwnKey)?;
    Ok(key.export_protected()?)
}

/// Where a contact's key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeySource {
    /// The Sealpost key directory (the address was proven by mail).
    Directory,
    /// Web Key Directory of the address's domain.
    Wkd,
    /// An Autocrypt header in mail from the address.
    Autocrypt,
    /// Imported by the user.
    Manual,
}

/// One key as seen for an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeenKey {
    /// The public certificate (binary), as last seen.
    pub cert: Bytes,
    /// Its fingerprint (hex).
    pub fingerprint: String,
    /// Where it was first found.
    pub source: KeySource,
    /// When it was first seen, Unix seconds.
    pub first_seen: i64,
    /// When it was last seen, Unix seconds.
    pub last_seen: i64,
}

/// What the profile knows about one correspondent's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactKey {
    /// The normalised address.
    pub address: String,
    /// The key in use.
    pub current: SeenKey,
    /// Whether the user (or the proven directory entry it came from) confirmed it.
    pub confirmed: bool,
    /// A different key that turned up for the address, waiting for the user.
    pub pending: Option<SeenKey>,
}

/// What observing a key changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The address had no key: this one is now in use.
    New,
    /// The key in use, seen again (its certificate refreshed).
    Known,
    /// A different key than the one in use: kept aside, the user must decide.
    Changed {
        /// The fingerprint in use.
        current: String,
        /// The fingerprint offered.
        offered: String,
    },
}

fn contact_name(address: &EmailAddress) -> String {
    format!("{CONTACT_PREFIX}{address}")
}

fn address(raw: &str) -> Result<EmailAddress, CoreError> {
    EmailAddress::parse(raw).map_err(|e| CoreError::BadAddress(e.to_string()))
}

/// The record for `address`, if any.
pub fn contact(u: &Unlocked, raw_address: &str) -> Result<Option<ContactKey>, CoreError> {
    let address = address(raw_address)?;
    let Some(raw) = u.secret(&contact_name(&address))? else {
        return Ok(None);
    };
    serde_json::from_slice(raw.expose())
        .map(Some)
        .map_err(|e| CoreError::VaultDamaged {
            what: format!("the contact record {}", contact_name(&address)),
            reason: e.to_string(),
        })
}

/// Every contact record, by address.
pub fn contacts(u: &Unlocked) -> Result<Vec<ContactKey>, CoreError> {
    let mut all = Vec::new();
    for name in u.secret_names()? {
        if let Some(address) = name.strip_prefix(CONTACT_PREFIX)
            && let Some(c) = contact(u, address)?
        {
            all.push(c);
        }
    }
    Ok(all)
}

fn save_contact(u: &Unlocked, c: &ContactKey, clock: &dyn Clock) -> Result<(), CoreError> {
    let json = Zeroizing::new(serde_json::to_vec(c).map_err(|e| CoreError::VaultDamaged {
        what: format!("the contact record for {}", c.address),
        reason: e.to_string(),
    })?);
    u.put_secret(&format!("{CONTACT_PREFIX}{}", c.address), &json, clock)
}

/// Records that `cert` was offered for `raw_address` by `source`, after checking it
/// (User ID with the address, valid now, can encrypt). A new address takes it; the key
/// in use is refreshed; a different key waits as pending and is reported.
pub fn observe_key(
    u: &Unlocked,
    raw_address: &str,
    cert: &[u8],
    source: KeySource,
    clock: &dyn Clock,
) -> Result<Observation, CoreError> {
    let address = address(raw_address)?;
    let now = clock.now_unix();
    let checked = sealpost_pgp::contact_cert(cert, address.as_str(), system_time(clock))?;
    let fingerprint = checked.fingerprint().to_hex();
    let bytes = Bytes(cert_bytes(&checked)?);
    let seen = SeenKey {
        cert: bytes,
        fingerprint: fingerprint.clone(),
        source,
        first_seen: now,
        last_seen: now,
    };
    let (record, observation) = match contact(u, address.as_str())? {
        None => (
            ContactKey {
                address: address.as_str().to_owned(),
                current: seen,
                // A proven directory entry counts as confirmed, the first time.
                confirmed: source == KeySource::Directory,
                pending: None,
            },
            Observation::New,
        ),
        Some(mut c) if c.current.fingerprint == fingerprint => {
            c.current.cert = seen.cert;
            c.current.last_seen = now;
            // The directory proved that the address's owner published this very key
            // (seen first through Autocrypt, say): that confirms it as a first sighting
            // there would have.
            if source == KeySource::Directory {
                c.confirmed = true;
            }
            (c, Observation::Known)
        }
        Some(mut c) => {
            let offered = fingerprint.clone();
            c.pending = Some(match c.pending.take() {
                Some(mut p) if p.fingerprint == fingerprint => {
                    p.cert = seen.cert;
                    p.last_seen = now;
                    p
                }
                _ => seen,
            });
            let current = c.current.fingerprint.clone();
            (c, Observation::Changed { current, offered })
        }
    };
    save_contact(u, &record, clock)?;
    Ok(observation)
}

/// The user accepts the pending key for `raw_address`: it is used from now on,
/// unconfirmed.
pub fn accept_changed_key(
    u: &Unlocked,
    raw_address: &str,
    clock: &dyn Clock,
) -> Result<ContactKey, CoreError> {
    let mut c = contact(u, raw_address)?.ok_or_else(|| CoreError::NoContact(raw_address.into()))?;
    let pending = c
        .pending
        .take()
        .ok_or_else(|| CoreError::NoContact(format!("{raw_address} has no pending key")))?;
    c.current = pending;
    c.confirmed = false;
    save_contact(u, &c, clock)?;
    Ok(c)
}

/// The user compared fingerprints: the key in use for `raw_address` is confirmed if its
/// fingerprint is `fingerprint` (hex, spaces and case ignored).
pub fn confirm_contact_key(
    u: &Unlocked,
    raw_address: &str,
    fingerprint: &str,
    clock: &dyn Clock,
) -> Result<ContactKey, CoreError> {
    let mut c = contact(u, raw_address)?.ok_or_else(|| CoreError::NoContact(raw_address.into()))?;
    let given: String = fingerprint
        .chars()
        .filter(|ch| !ch.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if given != c.current.fingerprint.to_ascii_uppercase() {
        return Err(CoreError::FingerprintMismatch);
    }
    c.confirmed = true;
    save_contact(u, &c, clock)?;
    Ok(c)
}

fn cert_bytes(cert: &Cert) -> Result<Vec<u8>, CoreError> {
    Ok(sealpost_pgp::contact::public_bytes(cert)?)
}

/// Everything reading mail needs: the own key pair and the contacts' keys in use.
#[derive(Debug, Default)]
pub struct Keyring {
    /// The user's key pair (none before one is made or imported).
    pub own: Vec<KeyPair>,
    /// Contacts' certificates in use.
    pub certs: Vec<Cert>,
    /// The confirmed ones among them.
    pub confirmed: Vec<Fingerprint>,
}

impl Keyring {
    /// Loads the keyring of an unlocked profile. A damaged contact record is skipped
    /// (and reported by [`contacts`]), so one bad record does not stop mail from opening.
    pub fn load(u: &Unlocked, clock: &dyn Clock) -> Result<Self, CoreError> {
        let mut ring = Self {
            own: own_key(u, clock)?.into_iter().collect(),
            ..Self::default()
        };
        for name in u.secret_names()? {
            let Some(address) = name.strip_prefix(CONTACT_PREFIX) else {
                continue;
            };
            let Ok(Some(c)) = contact(u, address) else {
                continue;
            };
            if let Ok(cert) =
                sealpost_pgp::contact_cert(&c.current.cert.0, address, system_time(clock))
            {
                if c.confirmed {
                    ring.confirmed.push(cert.fingerprint());
                }
                ring.certs.push(cert);
            }
        }
        Ok(ring)
    }

    /// The context to open mail with at `now`.
    pub fn context(&self, now: SystemTime) -> OpenContext<'_> {
        OpenContext {
            confirmed: &self.confirmed,
            ..OpenContext::new(&self.own, &self.certs, now)
        }
    }
}
