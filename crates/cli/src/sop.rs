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
//! The OpenPGP work is `sealpost_pgp::sop_support`, which adds no engine of its own:
//! `decrypt` is the mail reader's pipeline (no plaintext of a message without integrity
//! protection or whose check fails, the same size cap and panic guard); `encrypt` makes
//! the mail's choices (post-quantum keys first, the recipients' strongest common AES,
//! SEIPDv2 when all read it); `generate-key` makes keys like the app's (v4, Ed25519,
//! X25519 and ML-KEM-768+X25519).
//!
//! Here: this module parses the arguments and dispatches; one small handler per
//! subcommand lives in [`keys`] or [`messages`]; [`io`] holds the edges (exit codes,
//! indirect inputs and outputs, passwords, dates).

mod io;
mod keys;
mod messages;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};
use sealpost_pgp::sop_support::{self, SigMode, TimeWindow, Verification};
use sealpost_pgp::{Cert, Passphrase};

use self::io::{Failure, code, read_input, write_stdout};

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

impl From<As> for SigMode {
    fn from(as_: As) -> Self {
        match as_ {
            As::Binary => SigMode::Binary,
            As::Text => SigMode::Text,
        }
    }
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
    GenerateKey(keys::GenerateKey),
    /// The certificate of a secret key (stdin to stdout).
    ExtractCert(keys::ExtractCert),
    /// Change or remove the password of secret keys (stdin to stdout).
    ChangeKeyPassword(keys::ChangeKeyPassword),
    /// Revocation certificates for secret keys (stdin to stdout).
    RevokeKey(keys::RevokeKey),
    /// Detached signatures over stdin.
    Sign(messages::Sign),
    /// Verify detached signatures over stdin.
    Verify(messages::Verify),
    /// Encrypt stdin.
    Encrypt(messages::Encrypt),
    /// Decrypt stdin.
    Decrypt(messages::Decrypt),
    /// Add ASCII armor.
    Armor,
    /// Remove ASCII armor.
    Dearmor,
    /// Split an inline-signed message into data (stdout) and signatures.
    InlineDetach(messages::InlineDetach),
    /// An inline-signed message (or cleartext-signed text) of stdin.
    InlineSign(messages::InlineSign),
    /// Verify an inline-signed message; its data goes to stdout.
    InlineVerify(messages::InlineVerify),
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
        SopCmd::GenerateKey(args) => args.run(now),
        SopCmd::ExtractCert(args) => args.run(),
        SopCmd::ChangeKeyPassword(args) => args.run(),
        SopCmd::RevokeKey(args) => args.run(now),
        SopCmd::Sign(args) => args.run(now),
        SopCmd::Verify(args) => args.run(now),
        SopCmd::Encrypt(args) => args.run(now),
        SopCmd::Decrypt(args) => args.run(now),
        SopCmd::Armor => write_stdout(&sop_support::armor(&io::read_stdin()?)?),
        SopCmd::Dearmor => write_stdout(&sop_support::dearmor(&io::read_stdin()?)?),
        SopCmd::InlineDetach(args) => args.run(),
        SopCmd::InlineSign(args) => args.run(now),
        SopCmd::InlineVerify(args) => args.run(now),
    }
}

fn version(backend: bool, extended: bool, sop_spec: bool, sopv: bool) -> Result<(), Failure> {
    let name = format!("sealpost {}", env!("CARGO_PKG_VERSION"));
    let text = if backend {
        sop_support::backend()
    } else if extended {
        format!(
            "{name}\n{}\nsopv {SOPV}\nspec {SPEC}\nv4 keys: Ed25519, X25519 and ML-KEM-768+X25519; \
             SEIPDv2 when every recipient reads it, else SEIPDv1; \
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
            format!(
                "{PROFILE}: v4 key (Ed25519 signing, X25519 and ML-KEM-768+X25519 encryption), \
                 as Sealpost makes\n"
            )
            .as_bytes(),
        ),
        "version"
        | "list-profiles"
        | "extract-cert"
        | "change-key-password"
        | "revoke-key"
        | "sign"
        | "verify"
        | "encrypt"
        | "decrypt"
        | "armor"
        | "dearmor"
        | "inline-detach"
        | "inline-sign"
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

/// Reads every password input, each as given.
fn passwords(names: &[String]) -> Result<Vec<Passphrase>, Failure> {
    names.iter().map(|p| io::password(p)).collect()
}

/// Reads every `KEYS` input and unlocks what the key passwords open.
fn load_keys(names: &[String], key_passwords: &[String]) -> Result<Vec<Cert>, Failure> {
    let passwords = passwords(key_passwords)?;
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
