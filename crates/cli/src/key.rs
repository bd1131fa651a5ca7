//! `sealpost key …`: the profile's own OpenPGP key and the keys of its contacts.
//!
//! The own key is made on this device and kept in the vault (it reaches the account's
//! other devices through the encrypted settings); export writes it protected by a
//! passphrase generated for the file and shown once — never the account password.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use sealpost_core::keys::{self, ContactKey, KeySource, Observation};
use sealpost_core::{SystemClock, sync, vault};
use sealpost_pgp::{KeyPair, Passphrase};
use serde_json::json;

use crate::PasswordSource;
use crate::input::Input;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Make the profile's key (v4, Curve25519) unless it has one; renew it when due.
    Generate {
        /// The name on the key's User IDs.
        #[arg(long)]
        name: String,
        /// An e-mail address of the key (repeat for several).
        #[arg(long = "address", required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Show the profile's key: fingerprint, addresses, expiry.
    Show {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Write the public key, armored, to standard output.
    ExportPublic {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Write the key pair to FILE, protected by a passphrase generated now and printed
    /// once. Refuses to overwrite a file.
    ExportSecret {
        /// Where to write it.
        file: PathBuf,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Make an existing secret key (a GnuPG export, say) the profile's key. A protected
    /// key's passphrase is read after the password.
    Import {
        /// The key file (armored or binary).
        file: PathBuf,
        /// The key is protected by a passphrase: read it.
        #[arg(long)]
        protected: bool,
        /// Replace the profile's key if it has one.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Ask the sync server's key directory to publish the key for ADDRESS: it mails a
    /// token to the address (`key confirm` spends it).
    Publish {
        /// One of the key's addresses.
        address: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Spend the token from the directory's proof mail: a saved message with
    /// `--mail FILE.eml`, or the token itself.
    Confirm {
        /// The token (64 hex digits).
        #[arg(required_unless_present = "mail")]
        token: Option<String>,
        /// The proof mail, as a saved RFC 5322 file.
        #[arg(long, conflicts_with = "token")]
        mail: Option<PathBuf>,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Look ADDRESS up in the key directory and remember what is found.
    Lookup {
        /// The address.
        address: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Look ADDRESS up in its domain's Web Key Directory and remember what is found.
    Wkd {
        /// The address.
        address: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Remember FILE as the key of ADDRESS (a changed key waits for `key accept`).
    AddContact {
        /// The address.
        address: String,
        /// The public key file (armored or binary).
        file: PathBuf,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// List the contacts' keys.
    Contacts {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Use the pending (changed) key of ADDRESS from now on.
    Accept {
        /// The address.
        address: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Mark the key of ADDRESS confirmed after comparing its fingerprint.
    Verify {
        /// The address.
        address: String,
        /// The fingerprint as compared (spaces allowed).
        fingerprint: String,
        #[command(flatten)]
        source: PasswordSource,
    },
}

fn unlock(
    dir: &Path,
    input: &mut Input,
) -> anyhow::Result<(vault::Unlocked, sealpost_crypto::Password)> {
    let locked = vault::open(dir)?;
    let pw = input.password("Password: ")?;
    Ok((locked.unlock(&pw)?, pw))
}

fn key_json(key: &KeyPair) -> anyhow::Result<serde_json::Value> {
    let now = std::time::SystemTime::now();
    let expires = key
        .expiration(now)?
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    Ok(json!({
        "fingerprint": key.fingerprint().to_hex(),
        "addresses": key.addresses(now),
        "expiresAt": expires,
    }))
}

fn contact_json(c: &ContactKey) -> serde_json::Value {
    json!({
        "address": c.address,
        "fingerprint": c.current.fingerprint,
        "source": c.current.source,
        "firstSeen": c.current.first_seen,
        "lastSeen": c.current.last_seen,
        "confirmed": c.confirmed,
        "pendingFingerprint": c.pending.as_ref().map(|p| p.fingerprint.clone()),
    })
}

pub(crate) fn observation_json(o: &Observation) -> serde_json::Value {
    match o {
        Observation::New => json!({ "observation": "new" }),
        Observation::Known => json!({ "observation": "known" }),
        Observation::Changed { current, offered } => json!({
            "observation": "changed",
            "current": current,
            "offered": offered,
        }),
    }
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

pub fn run(cmd: KeyCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    let clock = SystemClock;
    match cmd {
        KeyCmd::Generate {
            name,
            addresses,
            source,
        } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
            let key = keys::ensure_own_key(&u, &name, &addresses, &clock)?;
            out.value(&key_json(&key)?, &format!("key {}", key.fingerprint()));
        }
        KeyCmd::Show { source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let key = keys::own_key(&u, &clock)?.ok_or(sealpost_core::CoreError::NoOwnKey)?;
            let v = key_json(&key)?;
            out.value(&v, &format!("key {}\n{}", key.fingerprint(), v));
        }
        KeyCmd::ExportPublic { source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let key = keys::own_key(&u, &clock)?.ok_or(sealpost_core::CoreError::NoOwnKey)?;
            out.raw(key.public_armored()?.as_bytes())?;
        }
        KeyCmd::ExportSecret { file, source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let (armored, passphrase) = keys::export_own_key(&u, &clock)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", file.display()))?;
            f.write_all(armored.as_bytes())?;
            f.sync_all()?;
            out.value(
                &json!({ "file": file, "passphrase": passphrase.expose() }),
                &format!(
                    "wrote {}; its passphrase (shown once, keep it apart from the file):\n{}",
                    file.display(),
                    passphrase.expose()
                ),
            );
        }
        KeyCmd::Import {
            file,
            protected,
            replace,
            source,
        } => {
            let data = read_file(&file)?;
            let mut input = Input::new(source.password_stdin);
            let (u, _) = unlock(dir, &mut input)?;
            let passphrase = if protected {
                let p = input.password("Key passphrase: ")?;
                Some(Passphrase::new(p.expose().to_owned()))
            } else {
                None
            };
            let key = keys::import_own_key(&u, &data, passphrase.as_ref(), replace, &clock)?;
            out.value(
                &key_json(&key)?,
                &format!("imported key {}", key.fingerprint()),
            );
        }
        KeyCmd::Publish { address, source } => {
            let (u, pw) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let claimed = sync::publish_key(&u, &pw, &address, &clock)?;
            out.value(
                &json!({ "address": address, "expiresAt": claimed.expires_at }),
                &format!(
                    "a proof mail is on its way to {address}; Sealpost confirms it when it \
                     reads that mailbox (or run `sealpost key confirm --mail FILE`)"
                ),
            );
        }
        KeyCmd::Confirm {
            token,
            mail,
            source,
        } => {
            let token = match (token, mail) {
                (Some(t), _) => t,
                (None, Some(path)) => sync::directory_token(&read_file(&path)?)
                    .ok_or_else(|| anyhow::anyhow!("{} is not a proof mail", path.display()))?,
                (None, None) => anyhow::bail!("give the token or --mail FILE"),
            };
            let (u, pw) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let entry = sync::confirm_published_key(&u, &pw, &token, &clock)?;
            out.value(
                &json!({ "address": entry.address, "publishedAt": entry.published_at }),
                &format!("published the key for {}", entry.address),
            );
        }
        KeyCmd::Lookup { address, source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            match sync::lookup_directory(&u, &address, &clock)? {
                Some(o) => {
                    let c = keys::contact(&u, &address)?;
                    let mut v = observation_json(&o);
                    if let (Some(map), Some(c)) = (v.as_object_mut(), c) {
                        map.insert("contact".into(), contact_json(&c));
                    }
                    out.value(&v, &v.to_string());
                }
                None => anyhow::bail!("no key is published for {address}"),
            }
        }
        KeyCmd::Wkd { address, source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let client = sealpost_core::wkd::WkdClient::new()?;
            match sealpost_core::wkd::lookup(&u, &client, &address, &clock)? {
                Some(o) => {
                    let v = observation_json(&o);
                    out.value(&v, &v.to_string());
                }
                None => anyhow::bail!("{address}'s domain publishes no key for it"),
            }
        }
        KeyCmd::AddContact {
            address,
            file,
            source,
        } => {
            let data = read_file(&file)?;
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let o = keys::observe_key(&u, &address, &data, KeySource::Manual, &clock)?;
            let v = observation_json(&o);
            out.value(&v, &v.to_string());
        }
        KeyCmd::Contacts { source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let all: Vec<serde_json::Value> =
                keys::contacts(&u)?.iter().map(contact_json).collect();
            let text = all
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!(all), &text);
        }
        KeyCmd::Accept { address, source } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let c = keys::accept_changed_key(&u, &address, &clock)?;
            out.value(
                &contact_json(&c),
                &format!("{address} now uses {}", c.current.fingerprint),
            );
        }
        KeyCmd::Verify {
            address,
            fingerprint,
            source,
        } => {
            let (u, _) = unlock(dir, &mut Input::new(source.password_stdin))?;
            let c = keys::confirm_contact_key(&u, &address, &fingerprint, &clock)?;
            out.value(
                &contact_json(&c),
                &format!("confirmed {} for {address}", c.current.fingerprint),
            );
        }
    }
    Ok(())
}
