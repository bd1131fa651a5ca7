//! The profile on this device: unlock and lock, the password and the recovery code, the
//! recovery kit, and the vault's secrets (for the command line).

use std::sync::Arc;

use sealpost_crypto::{Password, RecoveryCode};
use zeroize::Zeroizing;

use super::views::{Created, PasswordCheck, ProfileFacts, SessionInfo};
use super::{Core, CoreEvent, State};
use crate::task::blocking;
use crate::{CoreError, vault};

/// The password gate's verdict on `password`, with `words` (the user name, the address)
/// counted as the first guesses: with the user name alone, what account creation and a
/// password change will say.
pub fn check_password(password: &Password, words: &[&str]) -> PasswordCheck {
    let v = sealpost_crypto::password::gate(password, words);
    PasswordCheck {
        accepted: v.accepted,
        score: v.score,
        guesses_log10: v.guesses_log10,
        crack_seconds: v.crack_seconds,
        crack_time: v.crack_time,
        warning: v.warning,
        suggestions: v.suggestions,
    }
}

/// See [`Core::profile`].
#[derive(Debug, Clone, Copy)]
pub struct ProfileApi<'a> {
    pub(super) core: &'a Core,
}

impl ProfileApi<'_> {
    /// The profile's public facts, without unlocking it.
    pub async fn facts(&self) -> Result<ProfileFacts, CoreError> {
        self.core.reload_if_absent();
        match &*self.core.state() {
            State::Absent => Err(CoreError::ProfileNotFound(
                self.core.config().profile_dir.clone(),
            )),
            State::Locked(l) => Ok(facts(l.info())),
            State::Open(o) => Ok(facts(o.u.info())),
        }
    }

    /// Makes a profile on this device only, with no sync server (scripts, and people who
    /// keep their keys on one machine). The recovery code is returned to be shown once.
    pub async fn create_local(
        &self,
        user: String,
        password: Password,
    ) -> Result<Created, CoreError> {
        let core = self.core.clone();
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        let dir = self.core.config().profile_dir.clone();
        let clock = self.core.clock();
        let pw = password.clone();
        let (u, code) = self
            .core
            .spawn(blocking(move || vault::create(&dir, &user, &pw, &*clock)))
            .await?;
        let created = Created {
            user: u.info().user_name.clone(),
            recovery_code: code.display(),
        };
        core.open_with(u, password, None).await?;
        Ok(created)
    }

    /// Unlocks the profile with its password; the settings are synced in the background
    /// (changes other devices made while this one was locked).
    pub async fn unlock(&self, password: Password) -> Result<SessionInfo, CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        self.core.reload_if_absent();
        let locked = match &*self.core.state() {
            State::Absent => {
                return Err(CoreError::ProfileNotFound(
                    self.core.config().profile_dir.clone(),
                ));
            }
            State::Open(o) => {
                return Ok(SessionInfo {
                    user: o.u.info().user_name.clone(),
                    failed_attempts: 0,
                });
            }
            State::Locked(l) => l.clone(),
        };
        let pw = password.clone();
        let u = self
            .core
            .spawn(blocking(move || locked.unlock(&pw)))
            .await?;
        let info = SessionInfo {
            user: u.info().user_name.clone(),
            failed_attempts: 0,
        };
        let open = self.core.open_with(u, password, None).await?;
        if open.background {
            open.sync_settings_later();
        }
        Ok(info)
    }

    /// Checks the recovery code against this profile's local recovery wrap (no password
    /// is set and nothing changes; the profile stays locked).
    pub async fn check_recovery_code(&self, code: RecoveryCode) -> Result<ProfileFacts, CoreError> {
        let locked = self.locked()?;
        let u = self
            .core
            .spawn(blocking(move || locked.unlock_with_recovery_code(&code)))
            .await?;
        Ok(facts(u.info()))
    }

    /// Locks: every job stops, the mail workers stop, the keys are wiped.
    pub async fn lock(&self) -> Result<(), CoreError> {
        self.core.close().await;
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        self.core.emit(CoreEvent::Locked);
        Ok(())
    }

    /// Succeeds only while the profile is unlocked: for a shell to check before it opens
    /// a dialog whose answer would be of no use locked.
    pub async fn require_unlocked(&self) -> Result<(), CoreError> {
        self.core.open().map(drop)
    }

    /// Changes the password: on the sync server and here when the profile has an
    /// account there, else here only. The current password must be given.
    pub async fn change_password(
        &self,
        current: Password,
        next: Password,
    ) -> Result<(), CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        let user = self.core.open()?.u.info().user_name.clone();
        vault::check_gate(&next, &user)?;
        // The job holds the unlocked profile, nothing else here does: a lock waits for
        // it (the server and this device change together) and then wipes the keys.
        self.core
            .committing_job(move |open| async move {
                if crate::sync::account(&open.u)?.is_some() {
                    let remote = crate::sync::Remote::new(
                        Arc::clone(&open.u),
                        current,
                        Arc::clone(&open.clock),
                    )?;
                    remote.change_password(next.clone()).await?;
                } else {
                    let (o, next) = (Arc::clone(&open), next.clone());
                    blocking(move || o.u.change_password(&current, &next, &*o.clock)).await?;
                }
                // Later sign-ins to the server use the new password.
                open.set_password(next);
                Ok(())
            })
            .await
    }

    /// A forgotten password on a profile that keeps a local recovery wrap and has no
    /// sync account: unlocks with the recovery code and sets `new_password` (which must
    /// pass the gate). A profile with a sync account recovers through the server
    /// ([`super::AccountApi::recover`]), which keeps every device in step.
    pub async fn recover_local(
        &self,
        code: RecoveryCode,
        new_password: Password,
    ) -> Result<SessionInfo, CoreError> {
        let _lifecycle = self.core.inner.lifecycle.lock().await;
        let locked = self.locked()?;
        let clock = self.core.clock();
        let pw = new_password.clone();
        let u = self
            .core
            .spawn(blocking(move || {
                let u = locked.unlock_with_recovery_code(&code)?;
                if crate::sync::account(&u)?.is_some() {
                    return Err(CoreError::Internal(
                        "this profile has an account on a sync server: recover it there \
                         (`sealpost account recover`), so every device learns the new password"
                            .into(),
                    ));
                }
                drop(u);
                locked.recover(&code, &pw, &*clock)
            }))
            .await?;
        let info = SessionInfo {
            user: u.info().user_name.clone(),
            failed_attempts: 0,
        };
        self.core.open_with(u, new_password, None).await?;
        Ok(info)
    }

    /// Makes a new recovery code (the old one lost, or seen by someone): the password is
    /// checked (by a fresh sign-in when the profile has a sync account, whose server
    /// replaces the code together with this device), and from then on only the new code
    /// recovers. It is kept for [`ProfileApi::recovery_kit`] until the user says it is
    /// saved, and returned to be shown once.
    pub async fn new_recovery_code(
        &self,
        password: Password,
    ) -> Result<Zeroizing<String>, CoreError> {
        self.core
            .committing_job(move |open| async move {
                let code = if crate::sync::account(&open.u)?.is_some() {
                    open.remote()?.new_recovery_code(&password).await?
                } else {
                    let o = Arc::clone(&open);
                    blocking(move || {
                        o.u.check_password(&password)?;
                        o.u.replace_recovery_code(&*o.clock)
                    })
                    .await?
                };
                let shown = code.display();
                *open.recovery_code_mut() = Some(code);
                Ok(shown)
            })
            .await
    }

    /// The recovery kit as text (the code, the user name, the server, what to do with
    /// it), while the code of an account made (or a code replaced) in this session is
    /// still held.
    pub async fn recovery_kit(&self) -> Result<Zeroizing<String>, CoreError> {
        let open = self.core.open()?;
        let server = self.core.server_url();
        let code = open.recovery_code_mut();
        let code = code.as_ref().ok_or_else(|| {
            CoreError::Internal(
                "the recovery code is shown only once, when it is made; make a new one in \
                 Settings"
                    .into(),
            )
        })?;
        Ok(recovery_kit_text(
            &open.u.info().user_name,
            &server,
            &code.display(),
        ))
    }

    /// Drops the recovery code from memory (the user confirmed it is saved).
    pub async fn forget_recovery_code(&self) -> Result<(), CoreError> {
        *self.core.open()?.recovery_code_mut() = None;
        Ok(())
    }

    // ---------------------------------------------------------------- secrets

    /// Stores a secret in the vault under `name`.
    pub async fn put_secret(
        &self,
        name: String,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<(), CoreError> {
        self.core
            .with_open(move |o| o.u.put_secret(&name, &value, &*o.clock))
            .await
    }

    /// The secret stored under `name`, if any.
    pub async fn secret(&self, name: String) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
        self.core
            .with_open(move |o| {
                Ok(o.u
                    .secret(&name)?
                    .map(|v| Zeroizing::new(v.expose().to_vec())))
            })
            .await
    }

    /// Deletes the secret under `name`; whether there was one.
    pub async fn delete_secret(&self, name: String) -> Result<bool, CoreError> {
        self.core.with_open(move |o| o.u.delete_secret(&name)).await
    }

    /// The names of the stored secrets, sorted.
    pub async fn secret_names(&self) -> Result<Vec<String>, CoreError> {
        self.core.with_open(|o| o.u.secret_names()).await
    }

    fn locked(&self) -> Result<vault::Locked, CoreError> {
        self.core.reload_if_absent();
        match &*self.core.state() {
            State::Locked(l) => Ok(l.clone()),
            State::Open(o) => vault::open(&o.u.info().dir),
            State::Absent => Err(CoreError::ProfileNotFound(
                self.core.config().profile_dir.clone(),
            )),
        }
    }
}

fn facts(info: &vault::ProfileInfo) -> ProfileFacts {
    ProfileFacts {
        dir: info.dir.display().to_string(),
        user: info.user_name.clone(),
        created_at: info.created_at,
    }
}

pub(super) fn recovery_kit_text(user: &str, server: &str, code: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "Sealpost recovery kit\n\
         =====================\n\n\
         User name:      {user}\n\
         Sync server:    {server}\n\
         Recovery code:  {code}\n\n\
         This code unlocks your account if you forget your password, or after too many\n\
         wrong guesses locked it. Anyone with this code and your user name can take over\n\
         the account: keep it offline (printed, in a safe place), never in your mail.\n\n\
         To use it: in Sealpost choose \"Forgot password?\", or on the command line run\n\
         `sealpost account recover --user {user}`, enter the code, then a new password.\n"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_kit_names_user_server_and_code() {
        let kit = recovery_kit_text("alice", "https://sync.example", "ABCD-EFGH");
        assert!(kit.contains("alice") && kit.contains("https://sync.example"));
        assert!(kit.contains("ABCD-EFGH"));
    }
}
