//! `sealpost`: the command line on the same core API as the desktop app
//! ([`sealpost_core::api`]), for scripts and headless use. Every command is a few calls
//! on that API, so a command does what the app does for the same action (adding a mail
//! account makes the own key and syncs the settings, here too); the command line only
//! reads its inputs and prints the answers. `sop` is the Stateless OpenPGP interface on
//! `sealpost-pgp`, which opens no profile.
//!
//! Passwords and recovery codes are read from the terminal (without echo) or, with
//! `--password-stdin`, from standard input, one per line: never from the argument list,
//! where other users of the machine could read them. Exit codes are a contract:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (the message says what) |
//! | 2 | bad usage |
//! | 3 | the password gate refused the password |
//! | 4 | wrong password or recovery code |
//!
//! Modules: `profile` (profile, secret and password commands), `account` (the sync
//! server), `key`, `mail`, `sop`; `shell` starts the core for a command and waits for
//! its background work before the process ends; `input` and `output` read and print.

mod account;
mod input;
mod key;
mod mail;
mod mail_account;
mod output;
mod profile;
mod shell;
mod sop;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sealpost_core::CoreError;

use crate::output::Out;

/// Sealpost: end-to-end encrypted mail on any account.
#[derive(Parser, Debug)]
#[command(name = "sealpost", version, about)]
struct Cli {
    /// The profile directory (default: the OS's data directory for Sealpost).
    #[arg(long, global = true, env = "SEALPOST_PROFILE", value_name = "DIR")]
    profile: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Judge a password with the gate every Sealpost password must pass.
    #[command(subcommand)]
    Password(profile::PasswordCmd),
    /// Create, unlock and maintain the local profile.
    #[command(subcommand)]
    Profile(profile::ProfileCmd),
    /// Store, read and delete secrets in the unlocked vault.
    #[command(subcommand)]
    Secret(profile::SecretCmd),
    /// The account on the sync server: create, sign in, devices, password, recovery.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// The profile's OpenPGP key and its contacts' keys; the key directory.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Mail: accounts, sync, the list, reading, sending, search.
    #[command(subcommand)]
    Mail(mail::MailCmd),
    /// The Stateless OpenPGP command line (SOP); stateless: no profile is opened.
    #[command(disable_help_flag = true)]
    Sop(sop::SopArgs),
}

#[derive(Args, Debug)]
pub(crate) struct PasswordSource {
    /// Read passwords (and codes) from standard input, one per line, instead of the terminal.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

/// Exit codes of the contract above.
mod exit {
    pub const FAILURE: u8 = 1;
    pub const REFUSED: u8 = 3;
    pub const WRONG_SECRET: u8 = 4;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json);
    match run(cli, &out) {
        Ok(code) => code,
        Err(err) => {
            out.error(&err);
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<CoreError>()
        .map_or(exit::FAILURE, |e| match e {
            CoreError::WeakPassword(_) => exit::REFUSED,
            CoreError::WrongPassword | CoreError::WrongRecoveryCode | CoreError::LoginFailed => {
                exit::WRONG_SECRET
            }
            _ => exit::FAILURE,
        })
}

fn run(cli: Cli, out: &Out) -> anyhow::Result<ExitCode> {
    let dir = || shell::profile_dir(cli.profile.clone());
    match cli.command {
        Command::Password(cmd) => profile::password(cmd, out),
        Command::Profile(cmd) => profile::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Secret(cmd) => profile::secret(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Account(cmd) => account::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Key(cmd) => key::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Mail(cmd) => mail::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Sop(args) => Ok(sop::run(args)),
    }
}
