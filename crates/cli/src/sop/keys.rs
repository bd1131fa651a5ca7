//! The key subcommands: `generate-key`, `extract-cert`, `change-key-password`,
//! `revoke-key`.

use std::time::SystemTime;

use sealpost_pgp::Cert;
use sealpost_pgp::sop_support;

use super::io::{self, Failure, code, read_stdin, write_stdout};
use super::{PROFILE, passwords};

/// `generate-key`: a secret key, made like the app's.
#[derive(clap::Args, Debug)]
pub struct GenerateKey {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// Protect the secrets with this password (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Option<String>,
    /// The profile (`rfc4880`, also `default`).
    #[arg(long)]
    profile: Option<String>,
    /// No encryption subkey.
    #[arg(long)]
    signing_only: bool,
    /// User IDs (the first is primary).
    userids: Vec<String>,
}

impl GenerateKey {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        if let Some(p) = self.profile.as_deref()
            && p != PROFILE
            && p != "default"
        {
            return Err(Failure::new(
                code::UNSUPPORTED_PROFILE,
                format!("unknown profile {p:?} (see list-profiles generate-key)"),
            ));
        }
        let password = self
            .with_key_password
            .as_deref()
            .map(io::new_password)
            .transpose()?;
        let key =
            sop_support::generate_key(&self.userids, password.as_ref(), self.signing_only, now)?;
        write_stdout(&sop_support::serialize_certs(&[key], true, !self.no_armor)?)
    }
}

/// `extract-cert`: the certificate of a secret key (stdin to stdout).
#[derive(clap::Args, Debug)]
pub struct ExtractCert {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
}

impl ExtractCert {
    pub fn run(self) -> Result<(), Failure> {
        let keys = sop_support::parse_keys(&read_stdin()?)?;
        let certs = sop_support::extract_certs(keys);
        write_stdout(&sop_support::serialize_certs(
            &certs,
            false,
            !self.no_armor,
        )?)
    }
}

/// `change-key-password`: change or remove the password of secret keys.
#[derive(clap::Args, Debug)]
pub struct ChangeKeyPassword {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// The new password (indirect); without it the secrets are left unprotected.
    #[arg(long, value_name = "PASSWORD")]
    new_key_password: Option<String>,
    /// Passwords that unlock the keys now (indirect).
    #[arg(long, value_name = "PASSWORD")]
    old_key_password: Vec<String>,
}

impl ChangeKeyPassword {
    pub fn run(self) -> Result<(), Failure> {
        let new = self
            .new_key_password
            .as_deref()
            .map(io::new_password)
            .transpose()?;
        let old = passwords(&self.old_key_password)?;
        let keys = sop_support::parse_keys(&read_stdin()?)?;
        let keys = sop_support::change_key_password(keys, &old, new.as_ref())?;
        write_stdout(&sop_support::serialize_certs(&keys, true, !self.no_armor)?)
    }
}

/// `revoke-key`: revocation certificates for secret keys.
#[derive(clap::Args, Debug)]
pub struct RevokeKey {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// Passwords for locked keys (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Vec<String>,
}

impl RevokeKey {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        let passwords = passwords(&self.with_key_password)?;
        let keys: Vec<Cert> = sop_support::parse_keys(&read_stdin()?)?
            .into_iter()
            .map(|k| sop_support::unlock(k, &passwords))
            .collect();
        let revoked = sop_support::revoke_keys(&keys, now)?;
        write_stdout(&sop_support::serialize_certs(
            &revoked,
            false,
            !self.no_armor,
        )?)
    }
}
