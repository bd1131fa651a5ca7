//! `sealpost account …`: the account on the sync server.

use std::path::Path;

use clap::{Args, Subcommand};
use sealpost_core::{SystemClock, sync, vault};

use crate::PasswordSource;
use crate::input::Input;
use crate::output::Out;

/// The sync server used when neither `--server` nor `SEALPOST_SERVER` says otherwise: the
/// local one `scripts/run.sh` starts.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8443";

#[derive(Args, Debug)]
pub struct Remote {
    /// The sync server's URL.
    #[arg(long, env = "SEALPOST_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// The user name on the server.
    #[arg(long)]
    user: String,
    /// This device's name, as the device list shows it.
    #[arg(long, default_value_t = default_device_name())]
    device_name: String,
}

fn default_device_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this device".to_owned())
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
    let clock = SystemClock;
    match cmd {
        AccountCmd::Create { remote, source } => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.new_password("New password: ", "Repeat the password: ")?;
            let (u, code) = sync::create_account(
                dir,
                &remote.server,
                &remote.user,
                &pw,
                &remote.device_name,
                &clock,
            )?;
            out.created(u.info(), &code)?;
        }
        AccountCmd::Login { remote, source } => {
            let mut input = Input::new(source.password_stdin);
            let pw = input.password("Password: ")?;
            let signed = sync::sign_in(
                dir,
                &remote.server,
                &remote.user,
                &pw,
                &remote.device_name,
                &clock,
            )?;
            out.signed_in(signed.unlocked.info(), signed.failed_attempts);
        }
        AccountCmd::Devices { source } => {
            let (u, pw) = unlock(dir, &source)?;
            out.devices(&sync::devices(&u, &pw, &clock)?);
        }
        AccountCmd::Revoke { device_id, source } => {
            let (u, pw) = unlock(dir, &source)?;
            sync::revoke_device(&u, &pw, &device_id, &clock)?;
            out.message(&format!("revoked device {device_id}"));
        }
        AccountCmd::ChangePassword { source } => {
            let mut input = Input::new(source.password_stdin);
            let old = input.password("Current password: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            let u = sync::change_password(dir, &old, &new, &clock)?;
            out.ok(
                "password changed on the server and on this device",
                u.info(),
            );
        }
        AccountCmd::Recover { remote, source } => {
            let mut input = Input::new(source.password_stdin);
            let code = input.recovery_code("Recovery code: ")?;
            let new = input.new_password("New password: ", "Repeat the new password: ")?;
            let signed = sync::recover(
                dir,
                &remote.server,
                &remote.user,
                &code,
                &new,
                &remote.device_name,
                &clock,
            )?;
            out.signed_in(signed.unlocked.info(), signed.failed_attempts);
        }
        AccountCmd::Sync { source } => {
            let (u, pw) = unlock(dir, &source)?;
            let report = sync::sync_settings(&u, &pw, &clock)?;
            out.message(&format!(
                "settings at version {}: {} pulled, {}",
                report.version,
                report.pulled.len(),
                if report.pushed {
                    "changes pushed"
                } else {
                    "nothing to push"
                }
            ));
        }
        AccountCmd::Unlock { source } => {
            let (u, pw) = unlock(dir, &source)?;
            sync::unlock_account(&u, &pw, &clock)?;
            out.message("the account is unlocked");
        }
    }
    Ok(())
}

/// Unlocks the local profile; keeps the password, which signs in again when the session
/// has expired.
fn unlock(
    dir: &Path,
    source: &PasswordSource,
) -> anyhow::Result<(vault::Unlocked, sealpost_crypto::Password)> {
    let locked = vault::open(dir)?;
    let pw = Input::new(source.password_stdin).password("Password: ")?;
    Ok((locked.unlock(&pw)?, pw))
}
