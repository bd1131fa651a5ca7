//! `sealpost sop`: the Stateless OpenPGP Command-Line Interface
//! (draft-dkg-openpgp-stateless-cli-14), so interoperability suites can drive Sealpost.
//!
//! Stateless: it never opens the profile or the vault. Keys, certificates and passwords
//! come from files or indirect parameters (`@ENV:NAME`, `@FD:N`), data from standard
//! input, results to standard output. Exit codes are the spec's ([`io::code`]); options
//! Sealpost does not implement are refused with `UNSUPPORTED_OPTION` (37), subcommands
//! with `UNSUPPORTED_SUBCOMMAND` (69).
//!
//! Implemented: `version` (`--backend`, `--extended`, `--sop-spec`, `--sopv`),
//! `list-profiles`, `generate-key` (`--signing-only`, one profile), `extract-cert`,
//! `change-key-password`, `revoke-key`, `sign`, `verify`, `encrypt`, `decrypt`, `armor`,
//! `dearmor`, `inline-detach`, `inline-sign`, `inline-verify`. Not implemented (69):
//! `update-key`, `merge-certs`, `certify-userid`, `validate-userid`. Not implemented
//! options (37): `encrypt --profile`, `encrypt --session-key-out`, `armor --label`.
//!
//! The OpenPGP work is `sealpost_pgp::sop_support`, which keeps Sealpost's rules:
//! `decrypt` prints no plaintext of a message without integrity protection or whose
//! check fails; `generate-key` makes v4 Cv25519 keys like the app's.

mod io;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};
use sealpost_pgp::sop_support::{
    self, DecryptRequest, EncryptRequest, InlineMode, SessionKeyText, SigMode, TimeWindow,
    Verification,
};
use sealpost_pgp::{Cert, Passphrase};

use self::io::{Failure, Output, code, read_input, read_stdin, write_stdout};

/// The raw arguments after `sealpost sop`; this module parses them itself so that bad
/// usage gets the spec's exit codes instead of clap's.
#[derive(clap::Args, Debug)]
pub struct SopArgs {
    /// The SOP subcommand and its arguments (see `sealpost sop help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// The one profile of `generate-key`.
const PROFILE: &str = "rfc4880";
/// The specification version implemented.
const SPEC: &str = "draft-dkg-openpgp-stateless-cli-14";
/// The sopv subset version (`version`, `verify`, `inline-verify` are implemented).
const SOPV: &str = "1.0";
/// The largest plaintext `decrypt` accepts.
const MAX_PLAINTEXT: usize = 256 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(name = "sealpost sop", about = "Stateless OpenPGP command line")]
struct Sop {
    #[command(subcommand)]
    command: SopCmd,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum As {
    Binary,
    Text,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InlineAs {
    Binary,
    Text,
    Clearsigned,
}

#[derive(Subcommand, Debug)]
enum SopCmd {
    /// Version information.
    Version {
        /// The OpenPGP library and crypto backend.
        #[arg(long, group = "what")]
        backend: bool,
        /// Several lines of detail.
        #[arg(long, group = "what")]
        extended: bool,
        /// The version of the SOP specification implemented.
        #[arg(long, group = "what")]
        sop_spec: bool,
        /// The sopv subset version.
        #[arg(long, group = "what")]
        sopv: bool,
    },
    /// The profiles of a subcommand.
    ListProfiles {
        /// The subcommand.
        subcommand: String,
    },
    /// Generate a secret key.
    GenerateKey {
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
    },
    /// The certificate of a secret key (stdin to stdout).
    ExtractCert {
        /// Binary output.
        #[arg(long)]
        no_armor: bool,
    },
    /// Change or remove the password of secret keys (stdin to stdout).
    ChangeKeyPassword {
        /// Binary output.
        #[arg(long)]
        no_armor: bool,
        /// The new password (indirect); without it the secrets are left unprotected.
        #[arg(long, value_name = "PASSWORD")]
        new_key_password: Option<String>,
        /// Passwords that unlock the keys now (indirect).
        #[arg(long, value_name = "PASSWORD")]
        old_key_password: Vec<String>,
    },
    /// Revocation certificates for secret keys (stdin to stdout).
    RevokeKey {
        /// Binary output.
        #[arg(long)]
        no_armor: bool,
        /// Passwords for locked keys (indirect).
        #[arg(long, value_name = "PASSWORD")]
        with_key_password: Vec<String>,
    },
    /// Detached signatures over stdin.
    Sign {
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
    },
    /// Verify detached signatures over stdin.
    Verify {
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
    },
    /// Encrypt stdin.
    Encrypt {
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
    },
    /// Decrypt stdin.
    Decrypt {
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
    },
    /// Add ASCII armor.
    Armor,
    /// Remove ASCII armor.
    Dearmor,
    /// Split an inline-signed message into data (stdout) and signatures.
    InlineDetach {
        /// Binary signatures.
        #[arg(long)]
        no_armor: bool,
        /// Where the signatures go.
        #[arg(long, value_name = "SIGNATURES", required = true)]
        signatures_out: String,
    },
    /// An inline-signed message (or cleartext-signed text) of stdin.
    InlineSign {
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
    },
    /// Verify an inline-signed message; its data goes to stdout.
    InlineVerify {
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
    },
}

/// Runs `sealpost sop ARGS` and returns its exit code.
pub fn run(args: SopArgs) -> ExitCode {
    let argv = std::iter::once(OsString::from("sealpost sop")).chain(args.args);
    let sop = match Sop::try_parse_from(argv) {
        Ok(sop) => sop,
        Err(e) => return usage_error(&e),
    };
    match dispatch(sop.command, SystemTime::now()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sealpost sop: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Maps clap's verdict on the arguments to the spec's exit codes.
fn usage_error(e: &clap::Error) -> ExitCode {
    let code = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = write_stdout(e.render().to_string().as_bytes());
            return ExitCode::SUCCESS;
        }
        ErrorKind::InvalidSubcommand => code::UNSUPPORTED_SUBCOMMAND,
        ErrorKind::MissingRequiredArgument
        | ErrorKind::MissingSubcommand
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::WrongNumberOfValues
        | ErrorKind::TooFewValues => code::MISSING_ARG,
        ErrorKind::ArgumentConflict => code::INCOMPATIBLE_OPTIONS,
        _ => code::UNSUPPORTED_OPTION,
    };
    eprint!("{}", e.render());
    ExitCode::from(code)
}

fn dispatch(cmd: SopCmd, now: SystemTime) -> Result<(), Failure> {
    match cmd {
        SopCmd::Version {
            backend,
            extended,
            sop_spec,
            sopv,
        } => version(backend, extended, sop_spec, sopv),
        SopCmd::ListProfiles { subcommand } => list_profiles(&subcommand),
        SopCmd::GenerateKey {
            no_armor,
            with_key_password,
            profile,
            signing_only,
            userids,
        } => {
            if let Some(p) = profile.as_deref()
                && p != PROFILE
                && p != "default"
            {
                return Err(Failure::new(
                    code::UNSUPPORTED_PROFILE,
                    format!("unknown profile {p:?} (see list-profiles generate-key)"),
                ));
            }
            let password = with_key_password
                .as_deref()
                .map(io::new_password)
                .transpose()?;
            let key = sop_support::generate_key(&userids, password.as_ref(), signing_only, now)?;
            write_stdout(&sop_support::serialize_certs(&[key], true, !no_armor)?)
        }
        SopCmd::ExtractCert { no_armor } => {
            let keys = sop_support::parse_keys(&read_stdin()?)?;
            let certs = sop_support::extract_certs(keys);
            write_stdout(&sop_support::serialize_certs(&certs, false, !no_armor)?)
        }
        SopCmd::ChangeKeyPassword {
            no_armor,
            new_key_password,
            old_key_password,
        } => {
            let new = new_key_password
                .as_deref()
                .map(io::new_password)
                .transpose()?;
            let old = old_key_password
                .iter()
                .map(|p| io::password(p))
                .collect::<Result<Vec<_>, _>>()?;
            let keys = sop_support::parse_keys(&read_stdin()?)?;
            let keys = sop_support::change_key_password(keys, &old, new.as_ref())?;
            write_stdout(&sop_support::serialize_certs(&keys, true, !no_armor)?)
        }
        SopCmd::RevokeKey {
            no_armor,
            with_key_password,
        } => {
            let passwords = with_key_password
                .iter()
                .map(|p| io::password(p))
                .collect::<Result<Vec<_>, _>>()?;
            let keys: Vec<Cert> = sop_support::parse_keys(&read_stdin()?)?
                .into_iter()
                .map(|k| sop_support::unlock(k, &passwords))
                .collect();
            let revoked = sop_support::revoke_keys(&keys, now)?;
            write_stdout(&sop_support::serialize_certs(&revoked, false, !no_armor)?)
        }
        SopCmd::Sign {
            no_armor,
            as_,
            micalg_out,
            with_key_password,
            keys,
        } => {
            let micalg = micalg_out.as_deref().map(Output::prepare).transpose()?;
            let keys = load_keys(&keys, &with_key_password)?;
            let data = read_stdin()?;
            let sigs = sop_support::sign(&data, &keys, sig_mode(as_), !no_armor, now)?;
            if let Some(out) = micalg {
                out.write(sop_support::MICALG.as_bytes())?;
            }
            write_stdout(&sigs)
        }
        SopCmd::Verify {
            not_before,
            not_after,
            signatures,
            certs,
        } => {
            let window = window(not_before.as_deref(), not_after.as_deref(), now)?;
            let sigs = read_input(&signatures)?;
            let certs = load_certs(&certs)?;
            let data = read_stdin()?;
            let found = sop_support::verify(&data, &sigs, &certs, window, now)?;
            write_stdout(verifications(&found).as_bytes())
        }
        SopCmd::Encrypt {
            no_armor,
            as_,
            with_password,
            sign_with,
            with_key_password,
            certs,
        } => {
            if certs.is_empty() && with_password.is_empty() {
                return Err(Failure::new(
                    code::MISSING_ARG,
                    "give at least one certificate or --with-password",
                ));
            }
            let passwords = with_password
                .iter()
                .map(|p| io::new_password(p))
                .collect::<Result<Vec<_>, _>>()?;
            let signers = load_keys(&sign_with, &with_key_password)?;
            let recipients = load_certs(&certs)?;
            let data = read_stdin()?;
            let req = EncryptRequest {
                recipients: &recipients,
                passwords: &passwords,
                signers: &signers,
                mode: sig_mode(as_),
                armored: !no_armor,
                now,
            };
            write_stdout(&sop_support::encrypt(&data, &req)?)
        }
        SopCmd::Decrypt {
            session_key_out,
            with_session_key,
            with_password,
            verifications_out,
            verify_with,
            verify_not_before,
            verify_not_after,
            with_key_password,
            keys,
        } => {
            if keys.is_empty() && with_password.is_empty() && with_session_key.is_empty() {
                return Err(Failure::new(
                    code::MISSING_ARG,
                    "give a key, --with-password or --with-session-key",
                ));
            }
            if verifications_out.is_some() && verify_with.is_empty() {
                return Err(Failure::new(
                    code::INCOMPLETE_VERIFICATION,
                    "--verifications-out needs --verify-with",
                ));
            }
            let window = window(
                verify_not_before.as_deref(),
                verify_not_after.as_deref(),
                now,
            )?;
            let session_out = session_key_out
                .as_deref()
                .map(Output::prepare)
                .transpose()?;
            let verify_out = verifications_out
                .as_deref()
                .map(Output::prepare)
                .transpose()?;
            let session_keys = with_session_key
                .iter()
                .map(|s| {
                    let text = read_input(s)?;
                    let text = std::str::from_utf8(&text)
                        .map_err(|_| Failure::new(code::BAD_DATA, "a session key is not text"))?;
                    Ok(SessionKeyText::parse(text)?)
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let passwords = with_password
                .iter()
                .map(|p| io::password(p))
                .collect::<Result<Vec<_>, _>>()?;
            let keys = load_keys(&keys, &with_key_password)?;
            let verify_with = load_certs(&verify_with)?;
            let data = read_stdin()?;
            let req = DecryptRequest {
                keys: &keys,
                passwords: &passwords,
                session_keys: &session_keys,
                verify_with: &verify_with,
                window,
                now,
                max_plaintext: MAX_PLAINTEXT,
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
        SopCmd::Armor => write_stdout(&sop_support::armor(&read_stdin()?)?),
        SopCmd::Dearmor => write_stdout(&sop_support::dearmor(&read_stdin()?)?),
        SopCmd::InlineDetach {
            no_armor,
            signatures_out,
        } => {
            let out = Output::prepare(&signatures_out)?;
            let (content, sigs) = sop_support::inline_detach(&read_stdin()?, !no_armor)?;
            out.write(&sigs)?;
            write_stdout(&content)
        }
        SopCmd::InlineSign {
            no_armor,
            as_,
            with_key_password,
            keys,
        } => {
            let mode = match as_ {
                InlineAs::Binary => InlineMode::Binary,
                InlineAs::Text => InlineMode::Text,
                InlineAs::Clearsigned => InlineMode::Cleartext,
            };
            if mode == InlineMode::Cleartext && no_armor {
                return Err(Failure::new(
                    code::INCOMPATIBLE_OPTIONS,
                    "--as=clearsigned cannot be used with --no-armor",
                ));
            }
            let keys = load_keys(&keys, &with_key_password)?;
            let data = read_stdin()?;
            write_stdout(&sop_support::inline_sign(
                &data, &keys, mode, !no_armor, now,
            )?)
        }
        SopCmd::InlineVerify {
            not_before,
            not_after,
            verifications_out,
            certs,
        } => {
            let window = window(not_before.as_deref(), not_after.as_deref(), now)?;
            let out = verifications_out
                .as_deref()
                .map(Output::prepare)
                .transpose()?;
            let certs = load_certs(&certs)?;
            let (content, found) = sop_support::inline_verify(&read_stdin()?, &certs, window, now)?;
            if let Some(out) = out {
                out.write(verifications(&found).as_bytes())?;
            }
            write_stdout(&content)
        }
    }
}

fn version(backend: bool, extended: bool, sop_spec: bool, sopv: bool) -> Result<(), Failure> {
    let name = format!("sealpost {}", env!("CARGO_PKG_VERSION"));
    let text = if backend {
        sop_support::backend()
    } else if extended {
        format!(
            "{name}\n{}\nsopv {SOPV}\nspec {SPEC}\nv4 Cv25519 keys; SEIPDv1 written, SEIPDv2 read; \
             no plaintext without integrity protection",
            sop_support::backend()
        )
    } else if sop_spec {
        SPEC.to_owned()
    } else if sopv {
        SOPV.to_owned()
    } else {
        name
    };
    write_stdout(format!("{text}\n").as_bytes())
}

fn list_profiles(subcommand: &str) -> Result<(), Failure> {
    match subcommand {
        "generate-key" => write_stdout(
            format!("{PROFILE}: v4 Curve25519 key (Ed25519 signing, X25519 encryption), as Sealpost makes\n")
                .as_bytes(),
        ),
        "version" | "list-profiles" | "extract-cert" | "change-key-password" | "revoke-key"
        | "sign" | "verify" | "encrypt"
        | "decrypt" | "armor" | "dearmor" | "inline-detach" | "inline-sign"
        | "inline-verify" => Err(Failure::new(
            code::UNSUPPORTED_PROFILE,
            format!("{subcommand} has no profiles"),
        )),
        other => Err(Failure::new(
            code::UNSUPPORTED_SUBCOMMAND,
            format!("unknown subcommand {other:?}"),
        )),
    }
}

fn sig_mode(as_: As) -> SigMode {
    match as_ {
        As::Binary => SigMode::Binary,
        As::Text => SigMode::Text,
    }
}

fn window(
    not_before: Option<&str>,
    not_after: Option<&str>,
    now: SystemTime,
) -> Result<TimeWindow, Failure> {
    Ok(TimeWindow {
        not_before: not_before
            .map(|d| io::parse_date(d, now))
            .transpose()?
            .flatten(),
        not_after: match not_after {
            None => Some(now),
            Some(d) => io::parse_date(d, now)?,
        },
    })
}

/// Reads every `KEYS` input and unlocks what the key passwords open.
fn load_keys(names: &[String], key_passwords: &[String]) -> Result<Vec<Cert>, Failure> {
    let passwords: Vec<Passphrase> = key_passwords
        .iter()
        .map(|p| io::password(p))
        .collect::<Result<_, _>>()?;
    let mut keys = Vec::new();
    for name in names {
        for key in sop_support::parse_keys(&read_input(name)?)? {
            keys.push(sop_support::unlock(key, &passwords));
        }
    }
    Ok(keys)
}

/// Reads every `CERTS` input.
fn load_certs(names: &[String]) -> Result<Vec<Cert>, Failure> {
    let mut certs = Vec::new();
    for name in names {
        certs.extend(sop_support::parse_certs(&read_input(name)?)?);
    }
    Ok(certs)
}

/// `VERIFICATIONS` lines: `DATE SIGNING-FPR PRIMARY-FPR mode:MODE`.
fn verifications(found: &[Verification]) -> String {
    found
        .iter()
        .map(|v| {
            format!(
                "{} {} {} mode:{}\n",
                io::format_date(v.created),
                v.signing_key.to_hex(),
                v.primary.to_hex(),
                match v.mode {
                    SigMode::Binary => "binary",
                    SigMode::Text => "text",
                }
            )
        })
        .collect()
}
