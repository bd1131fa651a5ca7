//! `sealpost account …`: the account on the sync server.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::PasswordSource;
use crate::input::Input;
use crate::output::Out;
use crate::shell::{DEFAULT_SERVER, Shell, device_name};

#[derive(Args, Debug)]
pub struct Remote {
    /// The sync server's URL.
    #[arg(long, env = "SEALPOST_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// The user name on the server.
    #[arg(long)]
    user: String,
    /// This device's name, as the device list shows it.
    #[arg(long, default_value_t = device_name())]
    device_name: String,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Create an account: a local profile and its twin on the sync server. Prints the
    /// recovery code once.
    Create {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Sign in with name and password: on a new device this makes the local profile; on
    /// this one it adopts a password changed elsewhere and pulls synced secrets.
    Login {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// List the account's devices.
    Devices {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Revoke a device: its session stops working at once.
    Revoke {
        /// The device's id (from `account devices`).
        device_id: String,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Change the password on the server and here (reads the old, then the new one).
    ChangePassword {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Forgotten password or locked account: reads the recovery code, then a new password.
    Recover {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Exchange synced secrets with the server (both ways; newer wins).
    Sync {
        #[command(flatten)]
        source: PasswordSource,
    },
    /// Unlock the account after too many failed sign-ins elsewhere.
    Unlock {
        #[command(flatten)]
        source: PasswordSource,
    },
}

pub fn run(cmd: AccountCmd, dir: &Path, out: &Out) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Create { remote, source } => {
            let shell = remote_shell(dir, &remote)?;
            let mut input = Input::new(source.password_stdin);
            let pw = input.new_password("New password: ", "Repeat the password: ")?;
            let created = shell.run(shell.core.account().create(remote.user, pw))?;
            shell.run(shell.core.profile().forget_recovery_code())?;
            out.created(&created, &shell.run(shell.core.profile().facts())?)?;
            shell.finish();
        }
        AccountCmd::Login { remote, source } => {
            let shell = remote_shell(dir, &remote)?;
            let pw = Input::new(source.password_stdin).password("Password: ")?;
            let signed = shell.run(shell.core.account().sign_in(remote.user, pw))?;
            out.signed_in(&signed, &shell.run(shell.core.profile().facts())?);
            shell.finish();
        }
        AccountCmd::Recover { remote, source } => {
            let shell = remote_shell(dir, &remote)?;
            let mut input = Input::new(source.password_stdin);
            let code = input.recovery_code("Recovery code: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            let signed = shell.run(shell.core.account().recover(remote.user, code, new))?;
            out.signed_in(&signed, &shell.run(shell.core.profile().facts())?);
            shell.finish();
        }
        AccountCmd::Devices { source } => {
            let shell = Shell::open(dir, &source)?;
            out.devices(&shell.run(shell.core.account().devices())?);
            shell.finish();
        }
        AccountCmd::Revoke { device_id, source } => {
            let shell = Shell::open(dir, &source)?;
            shell.run(shell.core.account().revoke_device(device_id.clone()))?;
            out.message(&format!("revoked device {device_id}"));
            shell.finish();
        }
        AccountCmd::ChangePassword { source } => {
            let mut input = Input::new(source.password_stdin);
            let (shell, old) = Shell::unlocked(dir, &mut input)?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            shell.run(shell.core.profile().change_password(old, new))?;
            out.facts(
                "password changed on the server and on this device",
                &shell.run(shell.core.profile().facts())?,
            );
            shell.finish();
        }
        AccountCmd::Sync { source } => {
            let shell = Shell::open(dir, &source)?;
            let synced = shell.run(shell.core.account().sync_settings())?;
            out.value(
                &serde_json::json!(synced),
                &format!(
                    "settings at version {}: {} pulled, {}",
                    synced.version,
                    synced.pulled,
                    if synced.pushed {
                        "changes pushed"
                    } else {
                        "nothing to push"
                    }
                ),
            );
            shell.finish();
        }
        AccountCmd::Unlock { source } => {
            let shell = Shell::open(dir, &source)?;
            shell.run(shell.core.account().unlock_account())?;
            out.message("the account is unlocked");
            shell.finish();
        }
    }
    Ok(())
}

fn remote_shell(dir: &Path, remote: &Remote) -> anyhow::Result<Shell> {
    Shell::start(dir, Some(&remote.server), Some(&remote.device_name))
}
