//! `sealpost`: the command line on the same core as the desktop app, for scripts and
//! headless use.
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

mod account;
mod input;
mod key;
mod mail;
mod output;
mod sop;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sealpost_core::{CoreError, SystemClock, vault};
use sealpost_crypto::{Password, password};

use crate::input::Input;
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
    Password(PasswordCmd),
    /// Create, unlock and maintain the local profile.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Store, read and delete secrets in the unlocked vault.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// The account on the sync server: create, sign in, devices, password, recovery.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// The profile's OpenPGP key and its contacts' keys; the key directory.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Mail on this profile: open a stored message as the reader would.
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

#[derive(Subcommand, Debug)]
enum PasswordCmd {
    /// Print the gate's verdict; exit 3 when the password is refused.
    Check {
        #[command(flatten)]
        source: PasswordSource,
        /// The user name, which an attacker tries first.
        #[arg(long, default_value = "")]
        user: String,
        /// The e-mail address, which an attacker tries first.
        #[arg(long, default_value = "")]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileCmd {
    /// Create a profile: the password must pass the gate; prints the recovery code once.
    Create {
        #[command(flatten)]
        source: PasswordSource,
        /// The user's name.
        #[arg(long, default_value_t = default_user())]
        user: String,
    },
    /// Check that the password (or, with --recovery-code, the recovery code) unlocks the profile.
    Unlock {
        #[command(flatten)]
        source: PasswordSource,
        /// Unlock with the recovery code instead of the password.
        #[arg(long)]
        recovery_code: bool,
    },
    /// Change the password (reads the old one, then the new one).
    ChangePassword {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Forgotten password: reads the recovery code, then a new password.
    Recover {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Replace the recovery code (reads the password); prints the new code once.
    NewRecoveryCode {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Show the profile's public facts (no password needed).
    Info,
}

#[derive(Subcommand, Debug)]
enum SecretCmd {
    /// Store a secret: the password first, then the value (the rest of standard input).
    Put {
        /// The secret's name.
        name: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Write a secret's value to standard output.
    Get {
        /// The secret's name.
        name: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Delete a secret.
    Delete {
        /// The secret's name.
        name: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// List the names of stored secrets.
    List {
        #[command(flatten)]
        source: PasswordSource,
    },
}

fn default_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "me".to_owned())
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
            let code = err
                .downcast_ref::<CoreError>()
                .map_or(exit::FAILURE, |e| match e {
                    CoreError::WeakPassword(_) => exit::REFUSED,
                    CoreError::WrongPassword
                    | CoreError::WrongRecoveryCode
                    | CoreError::LoginFailed => exit::WRONG_SECRET,
                    _ => exit::FAILURE,
                });
            out.error(&err);
            ExitCode::from(code)
        }
    }
}

fn profile_dir(cli_profile: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = cli_profile {
        return Ok(p);
    }
    directories::ProjectDirs::from("org", "Sealpost", "sealpost")
        .map(|d| d.data_dir().join("profile"))
        .context("cannot find the OS's data directory; pass --profile DIR")
}

fn run(cli: Cli, out: &Out) -> anyhow::Result<ExitCode> {
    let clock = SystemClock;
    let dir = || profile_dir(cli.profile.clone());
    match cli.command {
        Command::Password(PasswordCmd::Check {
            source,
            user,
            email,
        }) => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.password("Password to check: ")?;
            let verdict = password::gate(&pw, &[&user, &email]);
            out.verdict(&verdict);
            Ok(if verdict.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::REFUSED)
            })
        }
        Command::Profile(cmd) => profile(cmd, &dir()?, out, &clock),
        Command::Secret(cmd) => secret(cmd, &dir()?, out, &clock),
        Command::Account(cmd) => account::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Key(cmd) => key::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Mail(cmd) => mail::run(cmd, &dir()?, out).map(|()| ExitCode::SUCCESS),
        Command::Sop(args) => Ok(sop::run(args)),
    }
}

fn profile(
    cmd: ProfileCmd,
    dir: &std::path::Path,
    out: &Out,
    clock: &SystemClock,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCmd::Create { source, user } => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.new_password("New password: ", "Repeat the password: ")?;
            let (unlocked, code) = vault::create(dir, &user, &pw, clock)?;
            out.created(unlocked.info(), &code)?;
        }
        ProfileCmd::Unlock {
            source,
            recovery_code,
        } => {
            let locked = vault::open(dir)?;
            let mut input = Input::new(source.password_stdin);
            let unlocked = if recovery_code {
                let code = input.recovery_code("Recovery code: ")?;
                locked.unlock_with_recovery_code(&code)?
            } else {
                locked.unlock(&input.password("Password: ")?)?
            };
            out.ok("unlocked", unlocked.info());
        }
        ProfileCmd::ChangePassword { source } => {
            let locked = vault::open(dir)?;
            let mut input = Input::new(source.password_stdin);
            let old = input.password("Current password: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            let unlocked = locked.change_password(&old, &new, clock)?;
            out.ok("password changed", unlocked.info());
        }
        ProfileCmd::Recover { source } => {
            let locked = vault::open(dir)?;
            let mut input = Input::new(source.password_stdin);
            let code = input.recovery_code("Recovery code: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            let unlocked = locked.recover(&code, &new, clock)?;
            out.ok("password reset with the recovery code", unlocked.info());
        }
        ProfileCmd::NewRecoveryCode { source } => {
            let locked = vault::open(dir)?;
            let mut input = Input::new(source.password_stdin);
            let mut unlocked = locked.unlock(&input.password("Password: ")?)?;
            let code = unlocked.replace_recovery_code(clock)?;
            out.created(unlocked.info(), &code)?;
        }
        ProfileCmd::Info => out.info(vault::open(dir)?.info()),
    }
    Ok(ExitCode::SUCCESS)
}

fn unlock(
    dir: &std::path::Path,
    source: &PasswordSource,
) -> anyhow::Result<(vault::Unlocked, Input)> {
    let locked = vault::open(dir)?;
    let mut input = Input::new(source.password_stdin);
    let pw: Password = input.password("Password: ")?;
    Ok((locked.unlock(&pw)?, input))
}

fn secret(
    cmd: SecretCmd,
    dir: &std::path::Path,
    out: &Out,
    clock: &SystemClock,
) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCmd::Put { name, source } => {
            let (unlocked, mut input) = unlock(dir, &source)?;
            let value = input.rest("Value (end with Ctrl-D): ")?;
            unlocked.put_secret(&name, value.expose(), clock)?;
            out.message(&format!("stored {name:?}"));
        }
        SecretCmd::Get { name, source } => {
            let (unlocked, _) = unlock(dir, &source)?;
            let value = unlocked
                .secret(&name)?
                .with_context(|| format!("no secret named {name:?}"))?;
            out.secret_value(value.expose())?;
        }
        SecretCmd::Delete { name, source } => {
            let (unlocked, _) = unlock(dir, &source)?;
            if !unlocked.delete_secret(&name)? {
                anyhow::bail!("no secret named {name:?}");
            }
            out.message(&format!("deleted {name:?}"));
        }
        SecretCmd::List { source } => {
            let (unlocked, _) = unlock(dir, &source)?;
            out.names(&unlocked.secret_names()?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
