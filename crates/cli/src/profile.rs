//! `sealpost password …`, `sealpost profile …`, `sealpost secret …`: the password gate,
//! the local profile, and the vault's secrets.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use sealpost_core::api::check_password;
use zeroize::Zeroizing;

use crate::input::Input;
use crate::output::Out;
use crate::shell::Shell;
use crate::{PasswordSource, exit};

#[derive(Subcommand, Debug)]
pub enum PasswordCmd {
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
pub enum ProfileCmd {
    /// Create a profile on this device only (no sync server): the password must pass
    /// the gate; prints the recovery code once.
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
    /// Change the password (reads the old one, then the new one); on the sync server too
    /// when the profile has an account there.
    ChangePassword {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Forgotten password on a profile without a sync account: reads the recovery code,
    /// then a new password (`account recover` for one with an account).
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
pub enum SecretCmd {
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

pub fn password(cmd: PasswordCmd, out: &Out) -> anyhow::Result<ExitCode> {
    let PasswordCmd::Check {
        source,
        user,
        email,
    } = cmd;
    let pw = Input::new(source.password_stdin).password("Password to check: ")?;
    let verdict = check_password(&pw, &[user.as_str(), email.as_str()]);
    out.verdict(&verdict);
    Ok(if verdict.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::REFUSED)
    })
}

pub fn run(cmd: ProfileCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    let shell = Shell::start(dir, None, None)?;
    let profile = shell.core.profile();
    match cmd {
        ProfileCmd::Create { source, user } => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.new_password("New password: ", "Repeat the password: ")?;
            let created = shell.run(profile.create_local(user, pw))?;
            out.created(&created, &shell.run(profile.facts())?)?;
        }
        ProfileCmd::Unlock {
            source,
            recovery_code,
        } => {
            let mut input = Input::new(source.password_stdin);
            if recovery_code {
                let code = input.recovery_code("Recovery code: ")?;
                out.facts("unlocked", &shell.run(profile.check_recovery_code(code))?);
            } else {
                shell.run(profile.unlock(input.password("Password: ")?))?;
                out.facts("unlocked", &shell.run(profile.facts())?);
            }
        }
        ProfileCmd::ChangePassword { source } => {
            let mut input = Input::new(source.password_stdin);
            let old = input.password("Current password: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            shell.run(profile.unlock(old.clone()))?;
            shell.run(profile.change_password(old, new))?;
            out.facts("password changed", &shell.run(profile.facts())?);
        }
        ProfileCmd::Recover { source } => {
            let mut input = Input::new(source.password_stdin);
            let code = input.recovery_code("Recovery code: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            shell.run(profile.recover_local(code, new))?;
            out.facts(
                "password reset with the recovery code",
                &shell.run(profile.facts())?,
            );
        }
        ProfileCmd::NewRecoveryCode { source } => {
            let pw = Input::new(source.password_stdin).password("Password: ")?;
            shell.run(profile.unlock(pw.clone()))?;
            let code = shell.run(profile.new_recovery_code(pw))?;
            shell.run(profile.forget_recovery_code())?;
            out.new_code(&code, &shell.run(profile.facts())?)?;
        }
        ProfileCmd::Info => out.facts("", &shell.run(profile.facts())?),
    }
    shell.finish();
    Ok(())
}

pub fn secret(cmd: SecretCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        SecretCmd::Put { name, source } => {
            let mut input = Input::new(source.password_stdin);
            let (shell, _) = Shell::unlocked(dir, &mut input)?;
            let value = input.rest("Value (end with Ctrl-D): ")?;
            let value = Zeroizing::new(value.expose().to_vec());
            shell.run(shell.core.profile().put_secret(name.clone(), value))?;
            out.message(&format!("stored {name:?}"));
            shell.finish();
        }
        SecretCmd::Get { name, source } => {
            let shell = Shell::open(dir, &source)?;
            let value = shell
                .run(shell.core.profile().secret(name.clone()))?
                .ok_or_else(|| anyhow::anyhow!("no secret named {name:?}"))?;
            out.secret_value(&value)?;
        }
        SecretCmd::Delete { name, source } => {
            let shell = Shell::open(dir, &source)?;
            if !shell.run(shell.core.profile().delete_secret(name.clone()))? {
                anyhow::bail!("no secret named {name:?}");
            }
            out.message(&format!("deleted {name:?}"));
            shell.finish();
        }
        SecretCmd::List { source } => {
            let shell = Shell::open(dir, &source)?;
            out.names(&shell.run(shell.core.profile().secret_names())?);
        }
    }
    Ok(())
}
