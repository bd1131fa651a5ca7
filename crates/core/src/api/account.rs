//! The account on the sync server: create it, sign in on a device, recover a forgotten
//! password, devices, and the settings that follow the user.

use sealpost_crypto::{Password, RecoveryCode};

use super::views::{Created, DeviceView, SessionInfo, SettingsSynced};
use super::{Core, State};
use crate::CoreError;

/// See [`Core::account`].
#[derive(Debug, Clone, Copy)]
pub struct AccountApi<'a> {
    pub(super) core: &'a Core,
}

impl AccountApi<'_> {
    /// Creates the account on the sync server and the profile here; keeps the recovery
    /// code until [`super::ProfileApi::forget_recovery_code`] so a kit can be saved.
    pub async fn create(&self, user: String, password: Password) -> Result<Created, CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        self.core.reload_if_absent();
        if !matches!(&*self.core.state(), State::Absent) {
            return Err(CoreError::ProfileExists(
                self.core.config().profile_dir.clone(),
            ));
        }
        let config = self.core.config().clone();
        let clock = self.core.clock();
        let pw = password.clone();
        let (u, code) = self
            .core
            .spawn(async move {
                crate::sync::create_account(
                    config.profile_dir,
                    &config.server_url,
                    &user,
                    pw,
                    &config.device_name,
                    clock,
                )
                .await
            })
            .await?;
        let created = Created {
            user: u.info().user_name.clone(),
            recovery_code: code.display(),
        };
        self.core.open_with(u, password, Some(code)).await?;
        Ok(created)
    }

    /// Signs in with the account's name and password: on a new device this makes the
    /// profile from the server; on this one it adopts a password changed elsewhere.
    pub async fn sign_in(
        &self,
        user: String,
        password: Password,
    ) -> Result<SessionInfo, CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        self.core.close().await;
        let config = self.core.config().clone();
        let clock = self.core.clock();
        let pw = password.clone();
        let signed = self
            .core
            .spawn(async move {
                crate::sync::sign_in(
                    config.profile_dir,
                    &config.server_url,
                    &user,
                    pw,
                    &config.device_name,
                    clock,
                )
                .await
            })
            .await;
        self.core.reload();
        let signed = signed?;
        let info = SessionInfo {
            user: signed.unlocked.info().user_name.clone(),
            failed_attempts: signed.failed_attempts,
        };
        self.core.open_with(signed.unlocked, password, None).await?;
        Ok(info)
    }

    /// A forgotten password or a locked account: the recovery code proves the account to
    /// the server, which takes `new_password` (it must pass the gate); then this device
    /// signs in with it. Works on a new device too.
    pub async fn recover(
        &self,
        user: String,
        code: RecoveryCode,
        new_password: Password,
    ) -> Result<SessionInfo, CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        self.core.close().await;
        let config = self.core.config().clone();
        // A profile here knows which server it belongs to.
        let server_url = self.known_server().unwrap_or(config.server_url);
        let clock = self.core.clock();
        let pw = new_password.clone();
        let signed = self
            .core
            .spawn(async move {
                crate::sync::recover(
                    config.profile_dir,
                    &server_url,
                    &user,
                    &code,
                    pw,
                    &config.device_name,
                    clock,
                )
                .await
            })
            .await;
        self.core.reload();
        let signed = signed?;
        let info = SessionInfo {
            user: signed.unlocked.info().user_name.clone(),
            failed_attempts: signed.failed_attempts,
        };
        self.core
            .open_with(signed.unlocked, new_password, None)
            .await?;
        Ok(info)
    }

    /// The account's devices.
    pub async fn devices(&self) -> Result<Vec<DeviceView>, CoreError> {
        let devices = self
            .core
            .job(|open| async move { open.remote()?.devices().await })
            .await?;
        Ok(devices
            .into_iter()
            .map(|d| DeviceView {
                id: d.id,
                name: d.name,
                current: d.current,
                created_at: d.created_at,
                last_seen: d.last_seen_at,
            })
            .collect())
    }

    /// Revokes a device: its session stops working at once.
    pub async fn revoke_device(&self, id: String) -> Result<(), CoreError> {
        self.core
            .job(|open| async move { open.remote()?.revoke_device(&id).await })
            .await
    }

    /// Unlocks the account on the server after too many failed sign-ins elsewhere.
    pub async fn unlock_account(&self) -> Result<(), CoreError> {
        self.core
            .job(|open| async move { open.remote()?.unlock_account().await })
            .await
    }

    /// Exchanges the synced secrets with the server now (both ways; newer wins), and
    /// adopts the mail accounts another device added or removed.
    pub async fn sync_settings(&self) -> Result<SettingsSynced, CoreError> {
        self.core
            .job(|open| async move {
                let report = open.remote()?.sync_settings().await?;
                open.adopt_accounts().await?;
                Ok(SettingsSynced {
                    version: report.version,
                    pulled: report.pulled.len(),
                    pushed: report.pushed,
                })
            })
            .await
    }

    /// The server of the profile here, if it has an account (read without unlocking).
    fn known_server(&self) -> Option<String> {
        let dir = &self.core.config().profile_dir;
        let conn = crate::store::open_vault(&dir.join(crate::vault::VAULT_FILE), false).ok()?;
        crate::sync::stored_account(&conn)
            .ok()
            .flatten()
            .map(|a| a.server_url)
    }
}

/// What a shell shows of the device it runs on, in the account's device list.
pub fn default_device_name(app: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{app} on {h}"),
        None => app.to_owned(),
    }
}
