//! The message subcommands: `sign`, `verify`, `encrypt`, `decrypt`, `inline-detach`,
//! `inline-sign`, `inline-verify`.

use std::time::SystemTime;

use sealpost_pgp::message::DEFAULT_MAX_PLAINTEXT;
use sealpost_pgp::sop_support::{self, DecryptRequest, EncryptRequest, InlineMode, SessionKeyText};

use super::io::{self, Failure, Output, code, read_input, read_stdin, write_stdout};
use super::{As, InlineAs, load_certs, load_keys, passwords, verifications, window};

/// `sign`: detached signatures over stdin.
#[derive(clap::Args, Debug)]
pub struct Sign {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// Binary or text signature.
    #[arg(long = "as", value_enum, default_value = "binary")]
    as_: As,
    /// Write the PGP/MIME micalg here.
    #[arg(long, value_name = "MICALG")]
    micalg_out: Option<String>,
    /// Passwords for locked keys (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Vec<String>,
    /// Secret keys.
    #[arg(required = true)]
    keys: Vec<String>,
}

impl Sign {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        let micalg = self
            .micalg_out
            .as_deref()
            .map(Output::prepare)
            .transpose()?;
        let keys = load_keys(&self.keys, &self.with_key_password)?;
        let data = read_stdin()?;
        let sigs = sop_support::sign(&data, &keys, self.as_.into(), !self.no_armor, now)?;
        if let Some(out) = micalg {
            out.write(sop_support::MICALG.as_bytes())?;
        }
        write_stdout(&sigs)
    }
}

/// `verify`: detached signatures over stdin.
#[derive(clap::Args, Debug)]
pub struct Verify {
    /// Ignore signatures made before this.
    #[arg(long, value_name = "DATE")]
    not_before: Option<String>,
    /// Ignore signatures made after this (default: now).
    #[arg(long, value_name = "DATE")]
    not_after: Option<String>,
    /// The signatures.
    signatures: String,
    /// Certificates of the signers.
    #[arg(required = true)]
    certs: Vec<String>,
}

impl Verify {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        let window = window(self.not_before.as_deref(), self.not_after.as_deref(), now)?;
        let sigs = read_input(&self.signatures)?;
        let certs = load_certs(&self.certs)?;
        let data = read_stdin()?;
        let found = sop_support::verify(&data, &sigs, &certs, window, now)?;
        write_stdout(verifications(&found).as_bytes())
    }
}

/// `encrypt`: stdin to certificates and passwords, optionally signed.
#[derive(clap::Args, Debug)]
pub struct Encrypt {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// Literal data as binary or text.
    #[arg(long = "as", value_enum, default_value = "binary")]
    as_: As,
    /// Encrypt to these passwords too (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_password: Vec<String>,
    /// Sign with these secret keys.
    #[arg(long, value_name = "KEYS")]
    sign_with: Vec<String>,
    /// Passwords for locked keys (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Vec<String>,
    /// Recipients' certificates.
    certs: Vec<String>,
}

impl Encrypt {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        if self.certs.is_empty() && self.with_password.is_empty() {
            return Err(Failure::new(
                code::MISSING_ARG,
                "give at least one certificate or --with-password",
            ));
        }
        let passwords = self
            .with_password
            .iter()
            .map(|p| io::new_password(p))
            .collect::<Result<Vec<_>, _>>()?;
        let signers = load_keys(&self.sign_with, &self.with_key_password)?;
        let recipients = load_certs(&self.certs)?;
        let data = read_stdin()?;
        let req = EncryptRequest {
            recipients: &recipients,
            passwords: &passwords,
            signers: &signers,
            mode: self.as_.into(),
            armored: !self.no_armor,
            now,
        };
        write_stdout(&sop_support::encrypt(&data, &req)?)
    }
}

/// `decrypt`: stdin with keys, passwords or session keys.
#[derive(clap::Args, Debug)]
pub struct Decrypt {
    /// Write the session key here.
    #[arg(long, value_name = "SESSIONKEY")]
    session_key_out: Option<String>,
    /// Try these session keys (indirect).
    #[arg(long, value_name = "SESSIONKEY")]
    with_session_key: Vec<String>,
    /// Try these passwords (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_password: Vec<String>,
    /// Write the valid signatures here.
    #[arg(long, alias = "verify-out", value_name = "VERIFICATIONS")]
    verifications_out: Option<String>,
    /// Check signatures against these certificates.
    #[arg(long, value_name = "CERTS")]
    verify_with: Vec<String>,
    /// Ignore signatures made before this.
    #[arg(long, value_name = "DATE")]
    verify_not_before: Option<String>,
    /// Ignore signatures made after this (default: now).
    #[arg(long, value_name = "DATE")]
    verify_not_after: Option<String>,
    /// Passwords for locked keys (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Vec<String>,
    /// Secret keys.
    keys: Vec<String>,
}

impl Decrypt {
    /// Checks the arguments before reading anything; then decrypts through the pgp
    /// crate's one pipeline (the mail reader's size cap, rules and panic guard).
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        if self.keys.is_empty() && self.with_password.is_empty() && self.with_session_key.is_empty()
        {
            return Err(Failure::new(
                code::MISSING_ARG,
                "give a key, --with-password or --with-session-key",
            ));
        }
        if self.verifications_out.is_some() && self.verify_with.is_empty() {
            return Err(Failure::new(
                code::INCOMPLETE_VERIFICATION,
                "--verifications-out needs --verify-with",
            ));
        }
        let window = window(
            self.verify_not_before.as_deref(),
            self.verify_not_after.as_deref(),
            now,
        )?;
        let prepare = |o: &Option<String>| o.as_deref().map(Output::prepare).transpose();
        let session_out = prepare(&self.session_key_out)?;
        let verify_out = prepare(&self.verifications_out)?;
        let session_keys = session_keys(&self.with_session_key)?;
        let passwords = passwords(&self.with_password)?;
        let keys = load_keys(&self.keys, &self.with_key_password)?;
        let verify_with = load_certs(&self.verify_with)?;
        let data = read_stdin()?;
        let req = DecryptRequest {
            keys: &keys,
            passwords: &passwords,
            session_keys: &session_keys,
            verify_with: &verify_with,
            window,
            now,
            max_plaintext: DEFAULT_MAX_PLAINTEXT,
        };
        let opened = sop_support::decrypt(&data, &req)?;
        if let (Some(out), Some(sk)) = (&session_out, &opened.session_key) {
            let mut text = sk.to_text();
            text.push('\n');
            out.write(text.as_bytes())?;
        }
        if let Some(out) = &verify_out {
            out.write(verifications(&opened.verifications).as_bytes())?;
        }
        write_stdout(&opened.plaintext)
    }
}

/// Reads every `--with-session-key` input.
fn session_keys(names: &[String]) -> Result<Vec<SessionKeyText>, Failure> {
    names
        .iter()
        .map(|s| {
            let text = read_input(s)?;
            let text = std::str::from_utf8(&text)
                .map_err(|_| Failure::new(code::BAD_DATA, "a session key is not text"))?;
            Ok(sop_support::parse_session_key(text)?)
        })
        .collect()
}

/// `inline-detach`: an inline-signed message's data (stdout) and signatures.
#[derive(clap::Args, Debug)]
pub struct InlineDetach {
    /// Binary signatures.
    #[arg(long)]
    no_armor: bool,
    /// Where the signatures go.
    #[arg(long, value_name = "SIGNATURES", required = true)]
    signatures_out: String,
}

impl InlineDetach {
    pub fn run(self) -> Result<(), Failure> {
        let out = Output::prepare(&self.signatures_out)?;
        let (content, sigs) = sop_support::inline_detach(&read_stdin()?, !self.no_armor)?;
        out.write(&sigs)?;
        write_stdout(&content)
    }
}

/// `inline-sign`: an inline-signed message (or cleartext-signed text) of stdin.
#[derive(clap::Args, Debug)]
pub struct InlineSign {
    /// Binary output.
    #[arg(long)]
    no_armor: bool,
    /// Binary, text, or cleartext signature framework.
    #[arg(long = "as", value_enum, default_value = "binary")]
    as_: InlineAs,
    /// Passwords for locked keys (indirect).
    #[arg(long, value_name = "PASSWORD")]
    with_key_password: Vec<String>,
    /// Secret keys.
    #[arg(required = true)]
    keys: Vec<String>,
}

impl InlineSign {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        let mode = match self.as_ {
            InlineAs::Binary => InlineMode::Binary,
            InlineAs::Text => InlineMode::Text,
            InlineAs::Clearsigned => InlineMode::Cleartext,
        };
        if mode == InlineMode::Cleartext && self.no_armor {
            return Err(Failure::new(
                code::INCOMPATIBLE_OPTIONS,
                "--as=clearsigned cannot be used with --no-armor",
            ));
        }
        let keys = load_keys(&self.keys, &self.with_key_password)?;
        let data = read_stdin()?;
        let signed = sop_support::inline_sign(&data, &keys, mode, !self.no_armor, now)?;
        write_stdout(&signed)
    }
}

/// `inline-verify`: an inline-signed message; its data goes to stdout.
#[derive(clap::Args, Debug)]
pub struct InlineVerify {
    /// Ignore signatures made before this.
    #[arg(long, value_name = "DATE")]
    not_before: Option<String>,
    /// Ignore signatures made after this (default: now).
    #[arg(long, value_name = "DATE")]
    not_after: Option<String>,
    /// Write the valid signatures here.
    #[arg(long, value_name = "VERIFICATIONS")]
    verifications_out: Option<String>,
    /// Certificates of the signers.
    #[arg(required = true)]
    certs: Vec<String>,
}

impl InlineVerify {
    pub fn run(self, now: SystemTime) -> Result<(), Failure> {
        let window = window(self.not_before.as_deref(), self.not_after.as_deref(), now)?;
        let out = self
            .verifications_out
            .as_deref()
            .map(Output::prepare)
            .transpose()?;
        let certs = load_certs(&self.certs)?;
        let (content, found) = sop_support::inline_verify(&read_stdin()?, &certs, window, now)?;
        if let Some(out) = out {
            out.write(verifications(&found).as_bytes())?;
        }
        write_stdout(&content)
    }
}
