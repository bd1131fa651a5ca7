//! The settings blob: every secret that follows the user from device to device (mail
//! passwords, OAuth tokens, OpenPGP keys — everything in the vault but `device/…` and
//! `vault/…`), sealed under the settings key, which only the identity key gives.
//!
//! It is a last-writer-wins map: each entry keeps its modification time; merging two
//! documents keeps, per name, the newer entry (ties broken by the bytes, so every device
//! merges to the same result). The server keeps versions and accepts a change only on top
//! of the version it was based on, so two devices never overwrite each other blindly.

use std::collections::BTreeMap;

use sealpost_crypto::identity::SubKeyLabel;
use sealpost_crypto::{IdentityKey, Purpose, WrapContext, wrap};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::CoreError;
use crate::vault::Unlocked;

/// One synced secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The value, base64 (wiped when dropped).
    pub value: Zeroizing<String>,
    /// When it was last changed, Unix seconds.
    pub updated_at: i64,
}

/// The document inside the settings blob.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsDoc {
    /// Format version.
    pub v: u32,
    /// Synced secrets by name.
    pub entries: BTreeMap<String, Entry>,
}

/// Whether a vault secret travels in the settings blob.
pub fn is_synced(name: &str) -> bool {
    !name.starts_with("device/") && !name.starts_with("vault/")
}

fn ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::Settings, user.as_bytes())
}

impl SettingsDoc {
    /// The synced secrets of a vault.
    pub fn from_vault(u: &Unlocked) -> Result<Self, CoreError> {
        use base64::Engine;
        let mut entries = BTreeMap::new();
        for (name, updated_at) in u.secret_times()? {
            if !is_synced(&name) {
                continue;
            }
            if let Some(value) = u.secret(&name)? {
                let value = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(value.expose()),
                );
                entries.insert(name, Entry { value, updated_at });
            }
        }
        Ok(Self { v: 1, entries })
    }

    /// Merges `other` into `self`: per name, the newer entry wins. Returns the names whose
    /// entry came from `other`.
    pub fn merge(&mut self, other: &SettingsDoc) -> Vec<String> {
        let mut taken = Vec::new();
        for (name, theirs) in &other.entries {
            let take = match self.entries.get(name) {
                None => true,
                Some(ours) => {
                    (theirs.updated_at, theirs.value.as_str())
                        > (ours.updated_at, ours.value.as_str())
                }
            };
            if take {
                self.entries.insert(name.clone(), theirs.clone());
                taken.push(name.clone());
            }
        }
        taken
    }

    /// Writes the named entries into the vault.
    pub fn apply(&self, u: &Unlocked, names: &[String]) -> Result<(), CoreError> {
        use base64::Engine;
        for name in names {
            let Some(e) = self.entries.get(name) else {
                continue;
            };
            let value = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(e.value.as_bytes())
                    .map_err(|_| CoreError::VaultDamaged {
                        what: format!("the synced setting {name:?}"),
                        reason: "its value is not base64".into(),
                    })?,
            );
            u.put_secret_at(name, &value, e.updated_at)?;
        }
        Ok(())
    }

    /// Seals the document for the server.
    pub fn seal(&self, identity: &IdentityKey, user: &str) -> Result<Vec<u8>, CoreError> {
        let json =
            Zeroizing::new(
                serde_json::to_vec(self).map_err(|e| CoreError::VaultDamaged {
                    what: "the settings document".into(),
                    reason: e.to_string(),
                })?,
            );
        let key = identity.subkey(SubKeyLabel::Settings)?;
        Ok(wrap::seal_with_key(&key, &ctx(user), &json)?)
    }

    /// Opens a sealed document from the server.
    pub fn open(identity: &IdentityKey, user: &str, blob: &[u8]) -> Result<Self, CoreError> {
        let key = identity.subkey(SubKeyLabel::Settings)?;
        let damaged = |reason: String| CoreError::VaultDamaged {
            what: "the settings blob from the server".into(),
            reason,
        };
        let json =
            wrap::open_with_key(&key, &ctx(user), blob).map_err(|e| damaged(e.to_string()))?;
        serde_json::from_slice(json.expose()).map_err(|e| damaged(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &str, t: i64) -> Entry {
        Entry {
            value: Zeroizing::new(v.to_owned()),
            updated_at: t,
        }
    }

    #[test]
    fn newer_wins_and_merge_is_symmetric() {
        let mut a = SettingsDoc::default();
        a.entries.insert("x".into(), entry("AA", 10));
        a.entries.insert("y".into(), entry("BB", 30));
        let mut b = SettingsDoc::default();
        b.entries.insert("x".into(), entry("CC", 20));
        b.entries.insert("y".into(), entry("DD", 5));
        b.entries.insert("z".into(), entry("EE", 1));
        let mut ab = a.clone();
        assert_eq!(ab.merge(&b), ["x", "z"]);
        let mut ba = b.clone();
        ba.merge(&a);
        assert!(ab == ba, "both devices end with the same document");
        assert_eq!(ab.entries["x"].value.as_str(), "CC");
        assert_eq!(ab.entries["y"].value.as_str(), "BB");
    }

    #[test]
    fn device_and_vault_secrets_stay_home() {
        assert!(is_synced("imap/alice@example.org/password"));
        assert!(!is_synced("device/sync-session"));
        assert!(!is_synced("vault/key-check"));
    }
}
