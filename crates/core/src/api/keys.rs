//! OpenPGP keys: the own key (made, imported, exported, published in the key directory)
//! and the keys of the people the user writes to.

use std::time::UNIX_EPOCH;

use sealpost_pgp::{KeyPair, Passphrase};
use zeroize::Zeroizing;

use super::Core;
use super::views::{
    ContactView, ExportedKey, FoundKey, MyKey, ObservationView, PublishPending, Published,
};
use crate::keys::{self, ContactKey, KeySource, Observation};
use crate::{Clock, CoreError};

/// See [`Core::keys`].
#[derive(Debug, Clone, Copy)]
pub struct KeysApi<'a> {
    pub(super) core: &'a Core,
}

impl KeysApi<'_> {
    /// The own OpenPGP key, if there is one.
    pub async fn mine(&self) -> Result<Option<MyKey>, CoreError> {
        self.core
            .with_open(|o| {
                keys::own_key(&o.u, &*o.clock)?
                    .map(|k| my_key(&k, &*o.clock))
                    .transpose()
            })
            .await
    }

    /// The own key: made now (v4, signing and encryption subkeys) for `name` and
    /// `addresses` unless the profile has one; renewed when due. It reaches the other
    /// devices with the settings.
    pub async fn generate(&self, name: String, addresses: Vec<String>) -> Result<MyKey, CoreError> {
        let key = self
            .core
            .with_open(move |o| {
                let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
                let key = keys::ensure_own_key(&o.u, &name, &addresses, &*o.clock)?;
                my_key(&key, &*o.clock)
            })
            .await?;
        self.core.open()?.sync_settings_later();
        Ok(key)
    }

    /// Makes `data` (an OpenPGP secret key, e.g. a GnuPG export; armored or binary,
    /// protected by `passphrase` or not) the own key; one already there is replaced only
    /// when `replace` says so.
    pub async fn import(
        &self,
        data: Zeroizing<Vec<u8>>,
        passphrase: Option<Passphrase>,
        replace: bool,
    ) -> Result<MyKey, CoreError> {
        let key = self
            .core
            .with_open(move |o| {
                let key =
                    keys::import_own_key(&o.u, &data, passphrase.as_ref(), replace, &*o.clock)?;
                my_key(&key, &*o.clock)
            })
            .await?;
        self.core.open()?.sync_settings_later();
        Ok(key)
    }

    /// The own public key, armored.
    pub async fn export_public(&self) -> Result<String, CoreError> {
        self.core
            .with_open(|o| {
                let key = keys::own_key(&o.u, &*o.clock)?.ok_or(CoreError::NoOwnKey)?;
                Ok(key.public_armored()?)
            })
            .await
    }

    /// The own key pair armored and protected by a passphrase generated now (shown once,
    /// never the account password).
    pub async fn export_secret(&self) -> Result<ExportedKey, CoreError> {
        self.core
            .with_open(|o| {
                let (armored, passphrase) = keys::export_own_key(&o.u, &*o.clock)?;
                Ok(ExportedKey {
                    armored,
                    passphrase,
                })
            })
            .await
    }

    /// Asks the key directory to publish the own key for `address`: the server mails a
    /// proof to the address, which the mail worker (or [`super::MailApi::sync_once`])
    /// spends when it arrives.
    pub async fn publish(&self, address: String) -> Result<PublishPending, CoreError> {
        self.core
            .job(move |open| async move {
                let claimed = open.remote()?.publish_key(&address).await?;
                // The proof mail is on its way: look for it soon.
                open.wake_workers();
                Ok(PublishPending {
                    address,
                    expires_at: claimed.expires_at,
                })
            })
            .await
    }

    /// Spends the token of a proof mail (its raw bytes, or the token itself): the key is
    /// published.
    pub async fn confirm(&self, token: String) -> Result<Published, CoreError> {
        self.core
            .job(move |open| async move {
                let entry = open.remote()?.confirm_published_key(&token).await?;
                Ok(Published {
                    address: entry.address.to_string(),
                    published_at: entry.published_at,
                })
            })
            .await
    }

    /// Looks `address` up in the key directory and remembers what is found; `None` when
    /// nothing is published.
    pub async fn lookup(&self, address: String) -> Result<Option<FoundKey>, CoreError> {
        self.core
            .job(move |open| async move {
                let found = crate::sync::lookup_directory(&open.u, &address, &open.clock).await?;
                found
                    .map(|o| found_key(&open.u, &address, Ok(o)))
                    .transpose()
            })
            .await
    }

    /// Looks `address` up in its domain's Web Key Directory and remembers what is found;
    /// `None` when the domain publishes nothing for it.
    pub async fn wkd(&self, address: String) -> Result<Option<FoundKey>, CoreError> {
        let client = self.core.inner.wkd.clone();
        self.core
            .job(move |open| async move {
                let found = crate::wkd::lookup(&open.u, &client, &address, &open.clock).await?;
                found
                    .map(|o| found_key(&open.u, &address, Ok(o)))
                    .transpose()
            })
            .await
    }

    /// Remembers `cert` (a public key, armored or binary) as the key of `address`; a key
    /// different from the one in use waits for [`KeysApi::accept`].
    pub async fn add_contact(
        &self,
        address: String,
        cert: Vec<u8>,
    ) -> Result<ObservationView, CoreError> {
        self.core
            .with_open(move |o| {
                keys::observe_key(&o.u, &address, &cert, KeySource::Manual, &*o.clock).map(observed)
            })
            .await
    }

    /// The contacts' keys.
    pub async fn contacts(&self) -> Result<Vec<ContactView>, CoreError> {
        self.core
            .with_open(|o| Ok(keys::contacts(&o.u)?.iter().map(contact_view).collect()))
            .await
    }

    /// Uses the pending (changed) key of `address` from now on.
    pub async fn accept(&self, address: String) -> Result<ContactView, CoreError> {
        self.core
            .with_open(move |o| {
                Ok(contact_view(&keys::accept_changed_key(
                    &o.u, &address, &*o.clock,
                )?))
            })
            .await
    }

    /// Marks the key of `address` confirmed after the user compared its fingerprint.
    pub async fn verify(
        &self,
        address: String,
        fingerprint: String,
    ) -> Result<ContactView, CoreError> {
        self.core
            .with_open(move |o| {
                Ok(contact_view(&keys::confirm_contact_key(
                    &o.u,
                    &address,
                    &fingerprint,
                    &*o.clock,
                )?))
            })
            .await
    }
}

fn found_key(
    u: &crate::vault::Unlocked,
    address: &str,
    seen: Result<Observation, CoreError>,
) -> Result<FoundKey, CoreError> {
    Ok(FoundKey {
        observation: observation_view(seen),
        contact: keys::contact(u, address)?.as_ref().map(contact_view),
    })
}

/// What learning a key did, in the API's words.
pub(super) fn observation_view(seen: Result<Observation, CoreError>) -> ObservationView {
    match seen {
        Ok(o) => observed(o),
        Err(e) => ObservationView::Refused {
            reason: e.to_string(),
        },
    }
}

fn observed(o: Observation) -> ObservationView {
    match o {
        Observation::New => ObservationView::New,
        Observation::Known => ObservationView::Known,
        Observation::Changed { current, offered } => ObservationView::Changed { current, offered },
    }
}

fn contact_view(c: &ContactKey) -> ContactView {
    ContactView {
        address: c.address.clone(),
        fingerprint: c.current.fingerprint.clone(),
        source: match c.current.source {
            KeySource::Directory => "directory",
            KeySource::Wkd => "wkd",
            KeySource::Autocrypt => "autocrypt",
            KeySource::Manual => "manual",
        }
        .into(),
        first_seen: c.current.first_seen,
        last_seen: c.current.last_seen,
        confirmed: c.confirmed,
        pending_fingerprint: c.pending.as_ref().map(|p| p.fingerprint.clone()),
    }
}

fn my_key(key: &KeyPair, clock: &dyn Clock) -> Result<MyKey, CoreError> {
    let now = keys::system_time(clock);
    let unix = |t: std::time::SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
    };
    Ok(MyKey {
        fingerprint: key.fingerprint().to_hex(),
        addresses: key.addresses(now),
        created: unix(key.creation_time()).unwrap_or(0),
        expires: key.expiration(now)?.and_then(unix),
    })
}
