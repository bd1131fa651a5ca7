//! The account on the sync server, from this device's side.
//!
//! - [`create_account`]: gate → local profile (identity key, recovery code) → OPAQUE
//!   registration → upload of the cloud wrap, the recovery wrap and the first settings
//!   blob → first sign-in. The password and the export key never leave the device.
//! - [`sign_in`]: a second device (or this one after a password change elsewhere):
//!   OPAQUE login → the cloud wrap → the identity key → a local profile whose synced
//!   secrets match the other devices'.
//! - [`change_password`], [`recover`]: a new OPAQUE registration and new wraps; other
//!   devices lose their sessions and ask for the new password at their next sign-in.
//! - [`new_recovery_code`]: a signed-in device replaces the recovery code; the old one
//!   stops working on the server and in this profile.
//! - [`devices`], [`revoke_device`], [`sync_settings`]: with a session, signing in again
//!   with the password when it has expired or been revoked.
//!
//! The server's identity (its OPAQUE public key and id) is pinned at registration and
//! checked at every sign-in.

pub mod client;
pub mod settings;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{OptionalExtension, params};
use sealpost_crypto::opaque::{self, Ids, OpaqueError};
use sealpost_crypto::{IdentityKey, Password, Purpose, RecoveryCode, SecretBytes, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::{Bytes, UserName};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use self::client::{SyncClient, SyncError};
use self::settings::SettingsDoc;
use crate::vault::{self, Unlocked};
use crate::{Clock, CoreError};

/// The sealed secret holding this device's session token.
const SESSION_SECRET: &str = "device/sync-session";
/// How many times a settings change is retried after another device's change.
const SETTINGS_RETRIES: usize = 8;

/// This device's account on a sync server (public facts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAccount {
    /// The server's URL.
    pub server_url: String,
    /// The normalised user name.
    pub user: String,
    /// The server's OPAQUE identity.
    pub server_id: String,
    /// The server's OPAQUE public key, pinned.
    pub server_public_key: [u8; 32],
    /// This device's id.
    pub device_id: String,
    /// This device's name.
    pub device_name: String,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    token: Zeroizing<String>,
    expires_at: i64,
}

/// What a sign-in tells the user.
#[derive(Debug)]
pub struct SignedIn {
    /// The unlocked local profile.
    pub unlocked: Unlocked,
    /// Failed sign-in attempts on the account since the previous successful one.
    pub failed_attempts: i64,
}

fn cloud_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByCloud, user.as_bytes())
}

fn server_recovery_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByRecovery, user.as_bytes())
}

fn opaque_err(e: OpaqueError) -> CoreError {
    match e {
        OpaqueError::InvalidLogin => CoreError::LoginFailed,
        other => CoreError::Opaque(other),
    }
}

fn check_gate(password: &Password, user: &UserName) -> Result<(), CoreError> {
    vault::check_gate(password, user.as_str()).map(drop)
}

fn new_device_id() -> Result<String, CoreError> {
    Ok(SecretBytes::<16>::random()?
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Asks the server who it is; refuses a server with another key-stretching function.
fn server_identity(client: &SyncClient) -> Result<String, CoreError> {
    let health = client.health()?;
    if health.api_version != proto::API_VERSION || health.ksf != opaque::KSF_ID {
        return Err(CoreError::ServerMismatch(format!(
            "it speaks API {} with KSF {}, this app API {} with {}",
            health.api_version,
            health.ksf,
            proto::API_VERSION,
            opaque::KSF_ID
        )));
    }
    Ok(health.server_id)
}

/// The sync account of an unlocked profile, if it has one.
pub fn account(u: &Unlocked) -> Result<Option<SyncAccount>, CoreError> {
    read_account(u.conn())
}

fn read_account(conn: &rusqlite::Connection) -> Result<Option<SyncAccount>, CoreError> {
    let row = conn
        .query_row(
            "SELECT server_url, user_name, server_id, server_public_key, device_id, device_name
             FROM sync_account WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((server_url, user, server_id, pk, device_id, device_name)) = row else {
        return Ok(None);
    };
    let server_public_key = pk.try_into().map_err(|_| CoreError::VaultDamaged {
        what: "the sync account row".into(),
        reason: "the pinned server key has the wrong length".into(),
    })?;
    Ok(Some(SyncAccount {
        server_url,
        user,
        server_id,
        server_public_key,
        device_id,
        device_name,
    }))
}

fn save_account(u: &Unlocked, a: &SyncAccount) -> Result<(), CoreError> {
    u.conn().execute(
        "INSERT INTO sync_account (id, server_url, user_name, server_id, server_public_key, device_id, device_name)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url, user_name = excluded.user_name,
           server_id = excluded.server_id, server_public_key = excluded.server_public_key,
           device_id = excluded.device_id, device_name = excluded.device_name",
        params![a.server_url, a.user, a.server_id, &a.server_public_key[..], a.device_id, a.device_name],
    )?;
    Ok(())
}

fn save_session(
    u: &Unlocked,
    token: &SecretBytes<32>,
    expires_at: i64,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    let record = SessionRecord {
        token: Zeroizing::new(URL_SAFE_NO_PAD.encode(token.expose())),
        expires_at,
    };
    let json =
        Zeroizing::new(
            serde_json::to_vec(&record).map_err(|e| CoreError::VaultDamaged {
                what: "the session record".into(),
                reason: e.to_string(),
            })?,
        );
    u.put_secret(SESSION_SECRET, &json, clock)
}

fn load_session(u: &Unlocked, now: i64) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
    let Some(raw) = u.secret(SESSION_SECRET)? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<SessionRecord>(raw.expose()) else {
        return Ok(None);
    };
    if record.expires_at <= now + 30 {
        return Ok(None);
    }
    Ok(URL_SAFE_NO_PAD
        .decode(record.token.as_bytes())
        .ok()
        .map(Zeroizing::new))
}

/// The result of an OPAQUE login.
struct Login {
    export_key: SecretBytes<64>,
    token: SecretBytes<32>,
    finished: proto::LoginFinished,
    server_public_key: [u8; 32],
}

fn opaque_login(
    client: &SyncClient,
    user: &UserName,
    server_id: &str,
    password: &Password,
    device_id: &str,
    device_name: &str,
) -> Result<Login, CoreError> {
    let ids = Ids {
        user: user.as_str().as_bytes(),
        server: server_id.as_bytes(),
    };
    let (state, ke1) = opaque::client_login_start(password).map_err(opaque_err)?;
    let started = client.login_start(&proto::LoginStart {
        user: user.as_str().to_owned(),
        credential_request: Bytes(ke1),
        device_id: device_id.to_owned(),
        device_name: device_name.to_owned(),
    })?;
    let fin =
        opaque::client_login_finish(state, password, started.credential_response.as_slice(), ids)
            .map_err(opaque_err)?;
    let finished = client
        .login_finish(&proto::LoginFinish {
            login_id: started.login_id,
            credential_finalization: Bytes(fin.finalization),
        })
        .map_err(|e| {
            if e.api_code() == Some("login_failed") {
                CoreError::LoginFailed
            } else {
                e.into()
            }
        })?;
    Ok(Login {
        token: opaque::session_token(&fin.session_key),
        export_key: fin.export_key,
        finished,
        server_public_key: fin.server_public_key,
    })
}

/// Signs in as this device's stored account and checks the server's pinned key.
fn account_login(
    client: &SyncClient,
    account: &SyncAccount,
    password: &Password,
) -> Result<Login, CoreError> {
    let user = UserName::parse(&account.user)?;
    let login = opaque_login(
        client,
        &user,
        &account.server_id,
        password,
        &account.device_id,
        &account.device_name,
    )?;
    if login.server_public_key != account.server_public_key {
        return Err(CoreError::ServerMismatch("its public key changed".into()));
    }
    Ok(login)
}

/// Creates an account: a local profile in `dir` and its twin on the server. Returns the
/// unlocked profile and the recovery code (show it once). If the server refuses, the
/// local profile is removed again, so nothing half-made remains.
pub fn create_account(
    dir: &Path,
    server_url: &str,
    user: &str,
    password: &Password,
    device_name: &str,
    clock: &dyn Clock,
) -> Result<(Unlocked, RecoveryCode), CoreError> {
    let user = UserName::parse(user)?;
    check_gate(password, &user)?;
    let client = SyncClient::new(server_url)?;
    let server_id = server_identity(&client)?;
    let (unlocked, code) = vault::create(dir, user.as_str(), password, clock)?;
    match register(
        &client,
        &server_id,
        &user,
        password,
        &unlocked,
        &code,
        device_name,
        clock,
    ) {
        Ok(()) => Ok((unlocked, code)),
        Err(e) => {
            drop(unlocked);
            for f in [vault::VAULT_FILE, "vault.sqlite3-wal", "vault.sqlite3-shm"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn register(
    client: &SyncClient,
    server_id: &str,
    user: &UserName,
    password: &Password,
    unlocked: &Unlocked,
    code: &RecoveryCode,
    device_name: &str,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    let ids = Ids {
        user: user.as_str().as_bytes(),
        server: server_id.as_bytes(),
    };
    let (state, request) = opaque::client_registration_start(password).map_err(opaque_err)?;
    let started = client.register_start(&proto::RegisterStart {
        user: user.as_str().to_owned(),
        registration_request: Bytes(request),
    })?;
    let fin = opaque::client_registration_finish(
        state,
        password,
        started.registration_response.as_slice(),
        ids,
    )
    .map_err(opaque_err)?;
    let identity = unlocked.identity();
    let cloud_wrap = identity.wrap_with_key(
        &opaque::cloud_kek(&fin.export_key),
        &cloud_ctx(user.as_str()),
    )?;
    let recovery_wrap =
        identity.wrap_with_recovery_code(code, &server_recovery_ctx(user.as_str()))?;
    let settings = SettingsDoc::from_vault(unlocked)?.seal(identity, user.as_str())?;
    client.register_finish(&proto::RegisterFinish {
        registration_id: started.registration_id,
        registration_upload: Bytes(fin.upload),
        cloud_wrap: Bytes(cloud_wrap),
        recovery_wrap: Bytes(recovery_wrap),
        recovery_verifier: Bytes(code.auth_verifier().to_vec()),
        settings: Bytes(settings),
    })?;
    let account = SyncAccount {
        server_url: client.base_url().to_owned(),
        user: user.as_str().to_owned(),
        server_id: server_id.to_owned(),
        server_public_key: fin.server_public_key,
        device_id: new_device_id()?,
        device_name: device_name.to_owned(),
    };
    let login = opaque_login(
        client,
        user,
        server_id,
        password,
        &account.device_id,
        device_name,
    )?;
    if login.server_public_key != account.server_public_key {
        return Err(CoreError::ServerMismatch(
            "its key changed between registration and sign-in".into(),
        ));
    }
    save_account(unlocked, &account)?;
    save_session(unlocked, &login.token, login.finished.expires_at, clock)
}

/// Signs in: on a new device this makes the local profile in `dir` from what the server
/// holds; on a device that has the profile (whose password may have been changed on
/// another device) it brings the local password and the synced secrets up to date.
pub fn sign_in(
    dir: &Path,
    server_url: &str,
    user: &str,
    password: &Password,
    device_name: &str,
    clock: &dyn Clock,
) -> Result<SignedIn, CoreError> {
    let user = UserName::parse(user)?;
    let client = SyncClient::new(server_url)?;
    let server_id = server_identity(&client)?;
    let existing = match vault::open(dir) {
        Ok(locked) => Some(locked),
        Err(CoreError::ProfileNotFound(_)) => None,
        Err(e) => return Err(e),
    };
    // What this device knows of its account without unlocking (public facts).
    let known = match &existing {
        Some(_) => read_account(&crate::store::open_vault(
            &dir.join(vault::VAULT_FILE),
            false,
        )?)?,
        None => None,
    };
    if let Some(k) = &known {
        if k.user != user.as_str() {
            return Err(CoreError::ServerMismatch(format!(
                "this profile belongs to {}",
                k.user
            )));
        }
        if k.server_id != server_id {
            return Err(CoreError::ServerMismatch(format!(
                "expected server {}, found {server_id}",
                k.server_id
            )));
        }
    }
    let device_id = match &known {
        Some(k) => k.device_id.clone(),
        None => new_device_id()?,
    };
    let login = opaque_login(
        &client,
        &user,
        &server_id,
        password,
        &device_id,
        device_name,
    )?;
    if let Some(k) = &known
        && k.server_public_key != login.server_public_key
    {
        return Err(CoreError::ServerMismatch("its public key changed".into()));
    }
    let kek = opaque::cloud_kek(&login.export_key);
    let identity = IdentityKey::unwrap_with_key(
        &kek,
        &cloud_ctx(user.as_str()),
        login.finished.cloud_wrap.as_slice(),
    )
    .map_err(|e| CoreError::VaultDamaged {
        what: "the identity key from the server".into(),
        reason: e.to_string(),
    })?;
    let unlocked = match existing {
        None => vault::create_with_identity(dir, user.as_str(), password, identity, clock)?,
        Some(locked) => match locked.unlock(password) {
            Ok(u) if u.identity() == &identity => u,
            Ok(_) => {
                return Err(CoreError::ServerMismatch(
                    "the server's identity key is not this profile's".into(),
                ));
            }
            // The password was changed on another device: adopt it here too.
            Err(CoreError::WrongPassword) => {
                locked.rewrap_with_identity(identity, password, clock)?
            }
            Err(e) => return Err(e),
        },
    };
    let account = SyncAccount {
        server_url: client.base_url().to_owned(),
        user: user.as_str().to_owned(),
        server_id,
        server_public_key: login.server_public_key,
        device_id,
        device_name: device_name.to_owned(),
    };
    save_account(&unlocked, &account)?;
    save_session(&unlocked, &login.token, login.finished.expires_at, clock)?;
    let remote = SettingsDoc::open(
        unlocked.identity(),
        user.as_str(),
        login.finished.settings.blob.as_slice(),
    )?;
    let mut local = SettingsDoc::from_vault(&unlocked)?;
    let taken = local.merge(&remote);
    local.apply(&unlocked, &taken)?;
    Ok(SignedIn {
        unlocked,
        failed_attempts: login.finished.failed_attempts,
    })
}

/// Runs `call` with a valid session token, signing in again with `password` when there
/// is none or the server no longer accepts it.
fn with_session<T>(
    u: &Unlocked,
    password: &Password,
    clock: &dyn Clock,
    call: impl Fn(&SyncClient, &[u8]) -> Result<T, SyncError>,
) -> Result<T, CoreError> {
    let account = account(u)?.ok_or(CoreError::NoSyncAccount)?;
    let client = SyncClient::new(&account.server_url)?;
    if let Some(token) = load_session(u, clock.now_unix())? {
        match call(&client, &token) {
            Err(e) if e.api_code() == Some("bad_session") => {}
            other => return Ok(other?),
        }
    }
    let login = account_login(&client, &account, password)?;
    save_session(u, &login.token, login.finished.expires_at, clock)?;
    Ok(call(&client, login.token.expose())?)
}

/// The account's devices.
pub fn devices(
    u: &Unlocked,
    password: &Password,
    clock: &dyn Clock,
) -> Result<Vec<proto::DeviceInfo>, CoreError> {
    with_session(u, password, clock, |c, t| c.devices(t)).map(|d| d.devices)
}

/// Revokes a device: its session stops working at once.
pub fn revoke_device(
    u: &Unlocked,
    password: &Password,
    device_id: &str,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    with_session(u, password, clock, |c, t| c.revoke_device(t, device_id))
}

/// Unlocks the account after too many failed sign-ins elsewhere.
pub fn unlock_account(
    u: &Unlocked,
    password: &Password,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    with_session(u, password, clock, |c, t| c.unlock_account(t))
}

/// What a settings sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Secrets taken from the server into this device.
    pub pulled: Vec<String>,
    /// Whether this device's changes were uploaded.
    pub pushed: bool,
    /// The settings version on the server afterwards.
    pub version: i64,
}

/// Brings the synced secrets of this device and the server together: newer entries win
/// either way; the upload is a compare-and-swap, retried when another device was faster.
pub fn sync_settings(
    u: &Unlocked,
    password: &Password,
    clock: &dyn Clock,
) -> Result<SyncReport, CoreError> {
    let account = account(u)?.ok_or(CoreError::NoSyncAccount)?;
    let mut pulled = Vec::new();
    for _ in 0..SETTINGS_RETRIES {
        let remote = with_session(u, password, clock, |c, t| c.settings(t))?;
        let remote_doc = SettingsDoc::open(u.identity(), &account.user, remote.blob.as_slice())?;
        let mut merged = SettingsDoc::from_vault(u)?;
        let taken = merged.merge(&remote_doc);
        merged.apply(u, &taken)?;
        pulled.extend(taken);
        if merged == remote_doc {
            return Ok(SyncReport {
                pulled,
                pushed: false,
                version: remote.version,
            });
        }
        let blob = merged.seal(u.identity(), &account.user)?;
        let put = proto::PutSettings {
            expected_version: remote.version,
            blob: Bytes(blob),
        };
        match with_session(u, password, clock, |c, t| c.put_settings(t, &put)) {
            Ok(v) => {
                return Ok(SyncReport {
                    pulled,
                    pushed: true,
                    version: v.version,
                });
            }
            Err(CoreError::Sync(e)) if e.api_code() == Some("version_conflict") => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CoreError::Sync(SyncError::BadResponse(
        "the settings kept changing on the server; try again".into(),
    )))
}

/// Changes the password, on the server first (new OPAQUE registration, the identity key
/// under the new cloud KEK, other devices signed out) and then locally.
pub fn change_password(
    dir: &Path,
    old: &Password,
    new: &Password,
    clock: &dyn Clock,
) -> Result<Unlocked, CoreError> {
    let locked = vault::open(dir)?;
    let mut u = locked.unlock(old)?;
    let account = account(&u)?.ok_or(CoreError::NoSyncAccount)?;
    let user = UserName::parse(&account.user)?;
    check_gate(new, &user)?;
    let client = SyncClient::new(&account.server_url)?;
    // A fresh login proves the old password to the server and gives a session.
    let login = account_login(&client, &account, old)?;
    let token = login.token;
    let ids = Ids {
        user: user.as_str().as_bytes(),
        server: account.server_id.as_bytes(),
    };
    let (state, request) = opaque::client_registration_start(new).map_err(opaque_err)?;
    let started = client.password_start(
        token.expose(),
        &proto::PasswordStart {
            registration_request: Bytes(request),
        },
    )?;
    let fin = opaque::client_registration_finish(
        state,
        new,
        started.registration_response.as_slice(),
        ids,
    )
    .map_err(opaque_err)?;
    if fin.server_public_key != account.server_public_key {
        return Err(CoreError::ServerMismatch("its public key changed".into()));
    }
    let cloud_wrap = u.identity().wrap_with_key(
        &opaque::cloud_kek(&fin.export_key),
        &cloud_ctx(user.as_str()),
    )?;
    client.password_finish(
        token.expose(),
        &proto::PasswordFinish {
            registration_id: started.registration_id,
            registration_upload: Bytes(fin.upload),
            cloud_wrap: Bytes(cloud_wrap),
        },
    )?;
    save_session(&u, &token, login.finished.expires_at, clock)?;
    u.replace_password_locally(new, clock)?;
    Ok(u)
}

/// A forgotten password (or a locked account): proves the recovery code to the server,
/// sets `new_password` there, unlocks the account, and signs this device in with it.
pub fn recover(
    dir: &Path,
    server_url: &str,
    user: &str,
    code: &RecoveryCode,
    new_password: &Password,
    device_name: &str,
    clock: &dyn Clock,
) -> Result<SignedIn, CoreError> {
    let user_name = UserName::parse(user)?;
    check_gate(new_password, &user_name)?;
    let client = SyncClient::new(server_url)?;
    let server_id = server_identity(&client)?;
    let ids = Ids {
        user: user_name.as_str().as_bytes(),
        server: server_id.as_bytes(),
    };
    let (state, request) = opaque::client_registration_start(new_password).map_err(opaque_err)?;
    let started = client
        .recovery_start(&proto::RecoveryStart {
            user: user_name.as_str().to_owned(),
            recovery_auth: Bytes(code.auth_key().expose().to_vec()),
            registration_request: Bytes(request),
        })
        .map_err(|e| {
            if e.api_code() == Some("recovery_failed") {
                CoreError::WrongRecoveryCode
            } else {
                e.into()
            }
        })?;
    let identity = IdentityKey::unwrap_with_recovery_code(
        code,
        &server_recovery_ctx(user_name.as_str()),
        started.recovery_wrap.as_slice(),
    )
    .map_err(|_| CoreError::WrongRecoveryCode)?;
    let fin = opaque::client_registration_finish(
        state,
        new_password,
        started.registration_response.as_slice(),
        ids,
    )
    .map_err(opaque_err)?;
    let cloud_wrap = identity.wrap_with_key(
        &opaque::cloud_kek(&fin.export_key),
        &cloud_ctx(user_name.as_str()),
    )?;
    client.recovery_finish(&proto::RecoveryFinish {
        registration_id: started.registration_id,
        registration_upload: Bytes(fin.upload),
        cloud_wrap: Bytes(cloud_wrap),
    })?;
    sign_in(
        dir,
        server_url,
        user_name.as_str(),
        new_password,
        device_name,
        clock,
    )
}

/// Replaces the recovery code (Settings → Recovery kit) and returns the new one, to be
/// shown once. The server gets the identity key wrapped under the new code and the new
/// code's verifier, which replace the old ones together; this profile's own recovery
/// wrap is replaced too (a profile set up by signing in gets one). Afterwards the old
/// code neither recovers the account nor unlocks this profile.
///
/// The server wants a fresh proof of the password for this, so it starts with a login
/// (as [`change_password`] does). The local change is then made in a vault transaction
/// that commits only after the server has accepted the new code, so a failure on the
/// way (wrong password, server unreachable) leaves the old code working everywhere.
pub fn new_recovery_code(
    u: &mut Unlocked,
    password: &Password,
    clock: &dyn Clock,
) -> Result<RecoveryCode, CoreError> {
    let account = account(u)?.ok_or(CoreError::NoSyncAccount)?;
    let client = SyncClient::new(&account.server_url)?;
    // Before the transaction: the login's Argon2id must not hold the vault's write lock.
    let login = account_login(&client, &account, password)?;
    u.conn().execute_batch("BEGIN IMMEDIATE")?;
    let replaced = replace_recovery_code(u, &client, &account, &login, clock);
    match replaced {
        Ok(code) => {
            u.conn().execute_batch("COMMIT")?;
            Ok(code)
        }
        Err(e) => {
            // ROLLBACK fails only when SQLite has rolled the transaction back already
            // (after an I/O error); either way nothing of it stays.
            let _ = u.conn().execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// [`new_recovery_code`] inside its vault transaction, with the session of a fresh login.
fn replace_recovery_code(
    u: &mut Unlocked,
    client: &SyncClient,
    account: &SyncAccount,
    login: &Login,
    clock: &dyn Clock,
) -> Result<RecoveryCode, CoreError> {
    let code = u.replace_recovery_code(clock)?;
    let recovery_wrap = u
        .identity()
        .wrap_with_recovery_code(&code, &server_recovery_ctx(&account.user))?;
    let req = proto::NewRecoveryCode {
        recovery_wrap: Bytes(recovery_wrap),
        recovery_verifier: Bytes(code.auth_verifier().to_vec()),
    };
    client.new_recovery_code(login.token.expose(), &req)?;
    save_session(u, &login.token, login.finished.expires_at, clock)?;
    Ok(code)
}

// ---------------------------------------------------------------- key directory

/// Asks the account's server to publish the user's key for `raw_address`: the server
/// mails a token to the address, which [`confirm_published_key`] then spends. The key
/// must carry the address.
pub fn publish_key(
    u: &Unlocked,
    password: &Password,
    raw_address: &str,
    clock: &dyn Clock,
) -> Result<proto::DirectoryClaimed, CoreError> {
    let address = proto::EmailAddress::parse(raw_address)
        .map_err(|e| CoreError::BadAddress(e.to_string()))?;
    let key = crate::keys::own_key(u, clock)?.ok_or(CoreError::NoOwnKey)?;
    if !key
        .addresses(crate::keys::system_time(clock))
        .iter()
        .any(|a| a == address.as_str())
    {
        return Err(CoreError::BadAddress(format!(
            "{address} is not an address of this profile's key"
        )));
    }
    let claim = proto::DirectoryClaim {
        address,
        cert: Bytes(key.public_bytes()?),
    };
    with_session(u, password, clock, |c, t| c.claim_key(t, &claim))
}

/// Spends a proof token (from [`directory_token`]): the key is published.
pub fn confirm_published_key(
    u: &Unlocked,
    password: &Password,
    token: &str,
    clock: &dyn Clock,
) -> Result<proto::DirectoryEntry, CoreError> {
    let req = proto::DirectoryConfirm {
        token: token.to_owned(),
    };
    with_session(u, password, clock, |c, t| c.confirm_key(t, &req))
}

/// The directory's proof token in a raw message, if it is a proof mail: the value of
/// its `Sealpost-Directory-Token` header (64 hex digits), read from the header block only.
pub fn directory_token(raw: &[u8]) -> Option<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))?;
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let prefix = proto::directory::TOKEN_HEADER.to_ascii_lowercase();
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim().to_ascii_lowercase() != prefix {
            return None;
        }
        let value = value.trim();
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| value.to_ascii_lowercase())
    })
}

/// Looks `raw_address` up in the account server's key directory and records what it
/// finds as a contact key (source: directory). `None` if nothing is published.
pub fn lookup_directory(
    u: &Unlocked,
    raw_address: &str,
    clock: &dyn Clock,
) -> Result<Option<crate::keys::Observation>, CoreError> {
    let address = proto::EmailAddress::parse(raw_address)
        .map_err(|e| CoreError::BadAddress(e.to_string()))?;
    let account = account(u)?.ok_or(CoreError::NoSyncAccount)?;
    let client = SyncClient::new(&account.server_url)?;
    let Some(entry) = client.lookup_key(&address)? else {
        return Ok(None);
    };
    crate::keys::observe_key(
        u,
        address.as_str(),
        &entry.cert.0,
        crate::keys::KeySource::Directory,
        clock,
    )
    .map(Some)
}
