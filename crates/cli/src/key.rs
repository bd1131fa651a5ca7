//! `sealpost key …`: the profile's own OpenPGP key and the keys of its contacts.
//!
//! The own key is made on this device and kept in the vault (it reaches the account's
//! other devices through the encrypted settings); export writes it protected by a
//! passphrase generated for the file and shown once — never the account password.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use sealpost_pgp::Passphrase;
use serde_json::json;
use zeroize::Zeroizing;

use crate::PasswordSource;
use crate::input::Input;
use crate::output::Out;
use crate::shell::Shell;

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

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn run(cmd: KeyCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Generate { .. }
        | KeyCmd::Show { .. }
        | KeyCmd::ExportPublic { .. }
        | KeyCmd::ExportSecret { .. }
        | KeyCmd::Import { .. } => own(cmd, dir, out),
        KeyCmd::Publish { .. }
        | KeyCmd::Confirm { .. }
        | KeyCmd::Lookup { .. }
        | KeyCmd::Wkd { .. } => directory(cmd, dir, out),
        KeyCmd::AddContact { .. }
        | KeyCmd::Contacts { .. }
        | KeyCmd::Accept { .. }
        | KeyCmd::Verify { .. } => contacts(cmd, dir, out),
    }
}

/// The own key: made, shown, exported, imported.
fn own(cmd: KeyCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Generate {
            name,
            addresses,
            source,
        } => {
            let shell = Shell::open(dir, &source)?;
            let key = shell.run(shell.core.keys().generate(name, addresses))?;
            out.value(&json!(key), &format!("key {}", key.fingerprint));
            shell.finish();
        }
        KeyCmd::Show { source } => {
            let shell = Shell::open(dir, &source)?;
            let key = shell
                .run(shell.core.keys().mine())?
                .ok_or(sealpost_core::CoreError::NoOwnKey)?;
            let v = json!(key);
            out.value(&v, &format!("key {}\n{v}", key.fingerprint));
        }
        KeyCmd::ExportPublic { source } => {
            let shell = Shell::open(dir, &source)?;
            out.raw(shell.run(shell.core.keys().export_public())?.as_bytes())?;
        }
        KeyCmd::ExportSecret { file, source } => {
            let shell = Shell::open(dir, &source)?;
            let exported = shell.run(shell.core.keys().export_secret())?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            f.write_all(exported.armored.as_bytes())?;
            f.sync_all()?;
            let passphrase = exported.passphrase.expose();
            out.value(
                &json!({ "file": file, "passphrase": passphrase }),
                &format!(
                    "wrote {}; its passphrase (shown once, keep it apart from the file):\n{passphrase}",
                    file.display(),
                ),
            );
        }
        KeyCmd::Import {
            file,
            protected,
            replace,
            source,
        } => {
            let data = Zeroizing::new(read_file(&file)?);
            let mut input = Input::new(source.password_stdin);
            let (shell, _) = Shell::unlocked(dir, &mut input)?;
            let passphrase = if protected {
                let p = input.password("Key passphrase: ")?;
                Some(Passphrase::new(p.expose().to_owned()))
            } else {
                None
            };
            let key = shell.run(shell.core.keys().import(data, passphrase, replace))?;
            out.value(&json!(key), &format!("imported key {}", key.fingerprint));
            shell.finish();
        }
        other => anyhow::bail!("internal error: {other:?} reached the wrong handler"),
    }
    Ok(())
}

/// The key directory and WKD.
fn directory(cmd: KeyCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::Publish { address, source } => {
            let shell = Shell::open(dir, &source)?;
            let pending = shell.run(shell.core.keys().publish(address))?;
            out.value(
                &json!(pending),
                &format!(
                    "a proof mail is on its way to {}; Sealpost confirms it when it reads that \
                     mailbox (`sealpost mail sync`), or run `sealpost key confirm --mail FILE`",
                    pending.address
                ),
            );
            shell.finish();
        }
        KeyCmd::Confirm {
            token,
            mail,
            source,
        } => {
            let token = match (token, mail) {
                (Some(t), _) => t,
                (None, Some(path)) => sealpost_core::api::directory_token(&read_file(&path)?)
                    .with_context(|| format!("{} is not a proof mail", path.display()))?,
                (None, None) => anyhow::bail!("give the token or --mail FILE"),
            };
            let shell = Shell::open(dir, &source)?;
            let published = shell.run(shell.core.keys().confirm(token))?;
            out.value(
                &json!(published),
                &format!("published the key for {}", published.address),
            );
            shell.finish();
        }
        KeyCmd::Lookup { address, source } => {
            let shell = Shell::open(dir, &source)?;
            let found = shell
                .run(shell.core.keys().lookup(address.clone()))?
                .with_context(|| format!("no key is published for {address}"))?;
            let v = json!(found);
            out.value(&v, &v.to_string());
            shell.finish();
        }
        KeyCmd::Wkd { address, source } => {
            let shell = Shell::open(dir, &source)?;
            let found = shell
                .run(shell.core.keys().wkd(address.clone()))?
                .with_context(|| format!("{address}'s domain publishes no key for it"))?;
            let v = json!(found);
            out.value(&v, &v.to_string());
            shell.finish();
        }
        other => anyhow::bail!("internal error: {other:?} reached the wrong handler"),
    }
    Ok(())
}

/// Contacts' keys.
fn contacts(cmd: KeyCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        KeyCmd::AddContact {
            address,
            file,
            source,
        } => {
            let data = read_file(&file)?;
            let shell = Shell::open(dir, &source)?;
            let seen = shell.run(shell.core.keys().add_contact(address, data))?;
            let v = json!(seen);
            out.value(&v, &v.to_string());
            shell.finish();
        }
        KeyCmd::Contacts { source } => {
            let shell = Shell::open(dir, &source)?;
            let all = shell.run(shell.core.keys().contacts())?;
            let text = all
                .iter()
                .map(|c| json!(c).to_string())
                .collect::<Vec<_>>()
                .join("\n");
            out.value(&json!(all), &text);
        }
        KeyCmd::Accept { address, source } => {
            let shell = Shell::open(dir, &source)?;
            let c = shell.run(shell.core.keys().accept(address.clone()))?;
            out.value(&json!(c), &format!("{address} now uses {}", c.fingerprint));
            shell.finish();
        }
        KeyCmd::Verify {
            address,
            fingerprint,
            source,
        } => {
            let shell = Shell::open(dir, &source)?;
            let c = shell.run(shell.core.keys().verify(address.clone(), fingerprint))?;
            out.value(
                &json!(c),
                &format!("confirmed {} for {address}", c.fingerprint),
            );
            shell.finish();
        }
        other => anyhow::bail!("internal error: {other:?} reached the wrong handler"),
    }
    Ok(())
}
