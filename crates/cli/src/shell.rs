//! One command's core: started on the profile directory, driven to the end of each call,
//! and waited for (its background work, such as a settings sync after a change) before
//! the process exits, so a command leaves the profile as the app would.

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sealpost_core::api::default_device_name;
use sealpost_core::{Core, CoreConfig};
use sealpost_crypto::Password;

use crate::PasswordSource;
use crate::input::Input;

/// The sync server used when neither `--server` nor `SEALPOST_SERVER` says otherwise: the
/// local one `scripts/run.sh` starts.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8443";

/// An autoconfig URL template (`{domain}`, `{email}`) to ask instead of the usual places
/// (tests serve the document on loopback).
const AUTOCONFIG_URL_ENV: &str = "SEALPOST_AUTOCONFIG_URL";

/// The profile directory: the one given, else the OS's data directory.
pub fn profile_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    directories::ProjectDirs::from("org", "Sealpost", "sealpost")
        .map(|d| d.data_dir().join("profile"))
        .context("cannot find the OS's data directory; pass --profile DIR")
}

/// This device's name in the account's device list, unless `--device-name` says.
pub fn device_name() -> String {
    default_device_name("Sealpost command line")
}

/// A core for one command, and a runtime to wait on its calls with.
pub struct Shell {
    pub core: Core,
    rt: tokio::runtime::Runtime,
}

impl Shell {
    /// A core on `dir`; `server` is the sync server for a new account or a sign-in
    /// (default: `SEALPOST_SERVER`, then the local one).
    pub fn start(dir: &Path, server: Option<&str>, device: Option<&str>) -> anyhow::Result<Self> {
        let server_url = server
            .map(str::to_owned)
            .or_else(|| std::env::var("SEALPOST_SERVER").ok())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let core = Core::start(
            CoreConfig {
                profile_dir: dir.to_path_buf(),
                server_url,
                device_name: device.map_or_else(device_name, str::to_owned),
                mail_extra_roots_pem: String::new(),
                // A command syncs when told to (`mail sync`), never in the background.
                background: false,
                autoconfig_url: std::env::var(AUTOCONFIG_URL_ENV)
                    .ok()
                    .filter(|u| !u.is_empty()),
            },
            std::sync::Arc::new(|_| {}),
        )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Self { core, rt })
    }

    /// A core on `dir`, unlocked with the password read from `input`; the password is
    /// returned too (some commands need it again).
    pub fn unlocked(dir: &Path, input: &mut Input) -> anyhow::Result<(Self, Password)> {
        let shell = Self::start(dir, None, None)?;
        let password = input.password("Password: ")?;
        shell.run(shell.core.profile().unlock(password.clone()))?;
        Ok((shell, password))
    }

    /// [`Shell::unlocked`] reading from `source`.
    pub fn open(dir: &Path, source: &PasswordSource) -> anyhow::Result<Self> {
        Ok(Self::unlocked(dir, &mut Input::new(source.password_stdin))?.0)
    }

    /// Runs one call of the core to its end.
    pub fn run<T, E: Into<anyhow::Error>>(
        &self,
        call: impl Future<Output = Result<T, E>>,
    ) -> anyhow::Result<T> {
        self.rt.block_on(call).map_err(Into::into)
    }

    /// Waits for the background work the command started, then stops the core.
    pub fn finish(self) {
        self.rt.block_on(self.core.settle());
    }
}
