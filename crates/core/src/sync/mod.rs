//! The account on the sync server, from this device's side.
//!
//! - [`create_account`]: gate → OPAQUE registration (its Argon2id on one core) beside the
//!   local password KEK (Argon2id on the other) → upload of the cloud wrap, the recovery
//!   wrap and the first settings blob, naming this device so the server opens its session
//!   at once → the local profile. The password and the export key never leave the device.
//! - [`sign_in`]: a second device (or this one after a password change elsewhere): the
//!   OPAQUE login beside the local KEK → the cloud wrap → the identity key → a local
//!   profile whose synced secrets match the other devices'.
//! - [`recover`]: a forgotten password, with the recovery code, then a sign-in.
//! - [`Remote`]: what an unlocked profile asks its server, with its session: devices,
//!   the settings blob ([`Remote::sync_settings`]), a new password or recovery code,
//!   the key directory. It signs in again with the password when the session expired.
//!
//! Everything here is async: network steps await the [`SyncClient`] (a timeout on every
//! request) and Argon2id and SQLite run on the blocking pool ([`crate::task::blocking`]),
//! so a slow or stalled server holds up only the caller that waits for it.
//!
//! The server's identity (its OPAQUE public key and id) is pinned at registration and
//! checked at every sign-in.

pub mod client;
pub mod settings;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{OptionalExtension, params};
use sealpost_crypto::opaque::{self, OpaqueError};
use sealpost_crypto::{IdentityKey, Password, Purpose, RecoveryCode, SecretBytes, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::{Bytes, UserName};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use self::client::SyncClient;
use self::settings::SettingsDoc;
pub use crate::error::SyncError;
use crate::task::blocking;
use crate::vault::{self, PasswordKek, Unlocked};
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

/// What a sign-in gives.
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

fn new_device_id() -> Result<String, CoreError> {
    Ok(SecretBytes::<16>::random()?
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The user name and the server's id as OPAQUE binds them, owned (they cross into the
/// blocking pool with the key stretching).
#[derive(Clone)]
struct Who {
    user: UserName,
    server_id: String,
}

impl Who {
    fn ids(&self) -> opaque::Ids<'_> {
        opaque::Ids {
            user: self.user.as_str().as_bytes(),
            server: self.server_id.as_bytes(),
        }
    }
}

/// Asks the server who it is; refuses a server with another key-stretching function.
async fn server_identity(client: &SyncClient) -> Result<String, CoreError> {
    let health = client.health().await?;
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
    stored_account(&u.conn())
}

/// The sync account recorded in a vault's database (public facts: readable locked).
pub(crate) fn stored_account(conn: &rusqlite::Connection) -> Result<Option<SyncAccount>, CoreError> {
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

/// A session token and its end, as the server granted it.
struct Grant {
    token: Zeroizing<Vec<u8>>,
    expires_at: i64,
}

fn save_session(u: &Unlocked, grant: &Grant, clock: &dyn Clock) -> Result<(), CoreError> {
    let record = SessionRecord {
        token: Zeroizing::new(URL_SAFE_NO_PAD.encode(&grant.token)),
        expires_at: grant.expires_at,
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
    grant: Grant,
    finished: proto::LoginFinished,
    server_public_key: [u8; 32],
}

/// One OPAQUE login; the key stretching (Argon2id) runs on the blocking pool.
async fn opaque_login(
    client: &SyncClient,
    who: &Who,
    password: &Password,
    device_id: &str,
    device_name: &str,
) -> Result<Login, CoreError> {
    let (state, ke1) = opaque::client_login_start(password).map_err(opaque_err)?;
    let started = client
        .login_start(&proto::LoginStart {
            user: who.user.as_str().to_owned(),
            credential_request: Bytes(ke1),
            device_id: device_id.to_owned(),
            device_name: device_name.to_owned(),
        })
        .await?;
    let fin = {
        let (who, password) = (who.clone(), password.clone());
        blocking(move || {
            opaque::client_login_finish(
                state,
                &password,
                started.credential_response.as_slice(),
                who.ids(),
            )
            .map_err(opaque_err)
        })
        .await?
    };
    let finished = client
        .login_finish(&proto::LoginFinish {
            login_id: started.login_id,
            credential_finalization: Bytes(fin.finalization),
        })
        .await
        .map_err(|e| {
            if e.api_code() == Some("login_failed") {
                CoreError::LoginFailed
            } else {
                e.into()
            }
        })?;
    Ok(Login {
        grant: Grant {
            token: Zeroizing::new(opaque::session_token(&fin.session_key).expose().to_vec()),
            expires_at: finished.expires_at,
        },
        export_key: fin.export_key,
        finished,
        server_public_key: fin.server_public_key,
    })
}

/// Runs `f` (Argon2id) on the blocking pool beside the future `g`: on two cores the two
/// key stretchings of a sign-in cost the time of one. `f`'s result is awaited even when
/// `g` fails, so nothing runs on after the call returns.
async fn beside<A, B, F, G>(f: F, g: G) -> (Result<A, CoreError>, Result<B, CoreError>)
where
    F: FnOnce() -> Result<A, CoreError> + Send + 'static,
    A: Send + 'static,
    G: Future<Output = Result<B, CoreError>>,
{
    tokio::join!(blocking(f), g)
}

// ---------------------------------------------------------------- account creation

/// Creates an account: its twin on the server and a local profile in `dir`. Returns the
/// unlocked profile and the recovery code (show it once). The local profile is written
/// only after the server took the account; a server that refuses leaves nothing here.
pub async fn create_account(
    dir: PathBuf,
    server_url: &str,
    user: &str,
    password: Password,
    device_name: &str,
    clock: Arc<dyn Clock>,
) -> Result<(Unlocked, RecoveryCode), CoreError> {
    let user = UserName::parse(user)?;
    vault::check_gate(&password, user.as_str())?;
    vault::ensure_new(&dir)?;
    let client = SyncClient::new(server_url)?;
    let who = Who {
        server_id: server_identity(&client).await?,
        user,
    };
    let identity = IdentityKey::generate()?;
    let code = RecoveryCode::generate()?;
    let device_id = new_device_id()?;
    let kek_password = password.clone();
    let (kek, registered) = beside(
        move || PasswordKek::derive(&kek_password),
        register(&client, &who, &password, &identity, &code, &device_id, device_name),
    )
    .await;
    let (kek, (server_public_key, grant)) = (kek?, registered?);
    // The session from the registration, or (from a server that grants none) a login.
    let grant = match grant {
        Some(grant) => grant,
        None => {
            let login = opaque_login(&client, &who, &password, &device_id, device_name).await?;
            if login.server_public_key != server_public_key {
                return Err(CoreError::ServerMismatch(
                    "its key changed between registration and sign-in".into(),
                ));
            }
            login.grant
        }
    };
    let account = SyncAccount {
        server_url: client.base_url().to_owned(),
        user: who.user.as_str().to_owned(),
        server_id: who.server_id,
        server_public_key,
        device_id,
        device_name: device_name.to_owned(),
    };
    blocking(move || {
        let u = vault::create_with(&dir, &account.user, &kek, identity, Some(&code), &*clock)
            .map_err(|e| {
                CoreError::Internal(format!(
                    "the account was made on the server, but this device could not keep it \
                     ({e}); sign in with the same name and password"
                ))
            })?;
        save_account(&u, &account)?;
        save_session(&u, &grant, &*clock)?;
        Ok((u, code))
    })
    .await
}

/// The OPAQUE registration and the upload; the server's public key and, when it grants
/// one, this device's session.
async fn register(
    client: &SyncClient,
    who: &Who,
    password: &Password,
    identity: &IdentityKey,
    code: &RecoveryCode,
    device_id: &str,
    device_name: &str,
) -> Result<([u8; 32], Option<Grant>), CoreError> {
    let (state, request) = opaque::client_registration_start(password).map_err(opaque_err)?;
    let started = client
        .register_start(&proto::RegisterStart {
            user: who.user.as_str().to_owned(),
            registration_request: Bytes(request),
        })
        .await?;
    let fin = {
        let (who, password) = (who.clone(), password.clone());
        blocking(move || {
            opaque::client_registration_finish(
                state,
                &password,
                started.registration_response.as_slice(),
                who.ids(),
            )
            .map_err(opaque_err)
        })
        .await?
    };
    let user = who.user.as_str();
    let cloud_wrap = identity.wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx(user))?;
    let recovery_wrap = identity.wrap_with_recovery_code(code, &server_recovery_ctx(user))?;
    // A new profile has nothing to sync yet.
    let settings = SettingsDoc::default().seal(identity, user)?;
    let finished = client
        .register_finish(&proto::RegisterFinish {
            registration_id: started.registration_id,
            registration_upload: Bytes(fin.upload),
            cloud_wrap: Bytes(cloud_wrap),
            recovery_wrap: Bytes(recovery_wrap),
            recovery_verifier: Bytes(code.auth_verifier().to_vec()),
            settings: Bytes(settings),
            device: Some(proto::NewDevice {
                id: device_id.to_owned(),
                name: device_name.to_owned(),
            }),
        })
        .await?;
    let grant = finished.and_then(|f| f.session).map(|s| Grant {
        token: Zeroizing::new(s.token.0),
        expires_at: s.expires_at,
    });
    Ok((fin.server_public_key, grant))
}

// ---------------------------------------------------------------- sign-in

/// What this device knows of a profile in `dir` before it is unlocked.
struct Known {
    locked: vault::Locked,
    account: Option<SyncAccount>,
}

fn known(dir: &Path) -> Result<Option<Known>, CoreError> {
    let locked = match vault::open(dir) {
        Ok(locked) => locked,
        Err(CoreError::ProfileNotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let conn = crate::store::open_vault(&dir.join(vault::VAULT_FILE), false)?;
    Ok(Some(Known {
        locked,
        account: stored_account(&conn)?,
    }))
}

/// How the local vault is opened after a sign-in: the key stretching that runs beside the
/// OPAQUE login.
enum LocalSide {
    /// A new device: a fresh KEK for the new vault.
    New(PasswordKek),
    /// This device: the vault opened with the password, or (the password was changed on
    /// another device) a fresh KEK to adopt it.
    Unlocked(Box<Unlocked>),
    Changed(PasswordKek),
}

/// Signs in: on a new device this makes the local profile in `dir` from what the server
/// holds; on a device that has the profile (whose password may have been changed on
/// another device) it brings the local password and the synced secrets up to date.
pub async fn sign_in(
    dir: PathBuf,
    server_url: &str,
    user: &str,
    password: Password,
    device_name: &str,
    clock: Arc<dyn Clock>,
) -> Result<SignedIn, CoreError> {
    let user = UserName::parse(user)?;
    let client = SyncClient::new(server_url)?;
    let server_id = server_identity(&client).await?;
    let known = {
        let dir = dir.clone();
        blocking(move || known(&dir)).await?
    };
    let known_account = known.as_ref().and_then(|k| k.account.clone());
    if let Some(k) = &known_account {
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
    let device_id = match &known_account {
        Some(k) => k.device_id.clone(),
        None => new_device_id()?,
    };
    let who = Who { user, server_id };
    let local_password = password.clone();
    let local = move || -> Result<LocalSide, CoreError> {
        Ok(match known {
            None => LocalSide::New(PasswordKek::derive(&local_password)?),
            Some(k) => match k.locked.unlock(&local_password) {
                Ok(u) => LocalSide::Unlocked(Box::new(u)),
                Err(CoreError::WrongPassword) => {
                    LocalSide::Changed(PasswordKek::derive(&local_password)?)
                }
                Err(e) => return Err(e),
            },
        })
    };
    let (local, login) = beside(
        local,
        opaque_login(&client, &who, &password, &device_id, device_name),
    )
    .await;
    let login = login?;
    let local = local?;
    if let Some(k) = &known_account
        && k.server_public_key != login.server_public_key
    {
        return Err(CoreError::ServerMismatch("its public key changed".into()));
    }
    let account = SyncAccount {
        server_url: client.base_url().to_owned(),
        user: who.user.as_str().to_owned(),
        server_id: who.server_id,
        server_public_key: login.server_public_key,
        device_id,
        device_name: device_name.to_owned(),
    };
    blocking(move || adopt_sign_in(&dir, local, login, &account, &*clock)).await
}

/// The local half of a sign-in, after the login: the identity key from the cloud wrap,
/// the vault made, opened or re-wrapped with it, the session and the synced secrets.
fn adopt_sign_in(
    dir: &Path,
    local: LocalSide,
    login: Login,
    account: &SyncAccount,
    clock: &dyn Clock,
) -> Result<SignedIn, CoreError> {
    let user = account.user.as_str();
    let identity = IdentityKey::unwrap_with_key(
        &opaque::cloud_kek(&login.export_key),
        &cloud_ctx(user),
        login.finished.cloud_wrap.as_slice(),
    )
    .map_err(|e| CoreError::VaultDamaged {
        what: "the identity key from the server".into(),
        reason: e.to_string(),
    })?;
    let unlocked = match local {
        LocalSide::New(kek) => vault::create_with(dir, user, &kek, identity, None, clock)?,
        LocalSide::Unlocked(u) if u.identity() == &identity => *u,
        LocalSide::Unlocked(_) => {
            return Err(CoreError::ServerMismatch(
                "the server's identity key is not this profile's".into(),
            ));
        }
        // The password was changed on another device: adopt it here too.
        LocalSide::Changed(kek) => vault::open(dir)?.rewrap_with_identity(identity, &kek, clock)?,
    };
    save_account(&unlocked, account)?;
    save_session(&unlocked, &login.grant, clock)?;
    let remote = SettingsDoc::open(
        unlocked.identity(),
        user,
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

/// A forgotten password (or a locked account): proves the recovery code to the server,
/// sets `new_password` there, unlocks the account, and signs this device in with it.
pub async fn recover(
    dir: PathBuf,
    server_url: &str,
    user: &str,
    code: &RecoveryCode,
    new_password: Password,
    device_name: &str,
    clock: Arc<dyn Clock>,
) -> Result<SignedIn, CoreError> {
    let user_name = UserName::parse(user)?;
    vault::check_gate(&new_password, user_name.as_str())?;
    let client = SyncClient::new(server_url)?;
    let who = Who {
        server_id: server_identity(&client).await?,
        user: user_name,
    };
    let (state, request) = opaque::client_registration_start(&new_password).map_err(opaque_err)?;
    let started = client
        .recovery_start(&proto::RecoveryStart {
            user: who.user.as_str().to_owned(),
            recovery_auth: Bytes(code.auth_key().expose().to_vec()),
            registration_request: Bytes(request),
        })
        .await
        .map_err(|e| {
            if e.api_code() == Some("recovery_failed") {
                CoreError::WrongRecoveryCode
            } else {
                e.into()
            }
        })?;
    let identity = IdentityKey::unwrap_with_recovery_code(
        code,
        &server_recovery_ctx(who.user.as_str()),
        started.recovery_wrap.as_slice(),
    )
    .map_err(|_| CoreError::WrongRecoveryCode)?;
    let fin = {
        let (who, password) = (who.clone(), new_password.clone());
        let response = started.registration_response;
        blocking(move || {
            opaque::client_registration_finish(state, &password, response.as_slice(), who.ids())
                .map_err(opaque_err)
        })
        .await?
    };
    let cloud_wrap = identity.wrap_with_key(
        &opaque::cloud_kek(&fin.export_key),
        &cloud_ctx(who.user.as_str()),
    )?;
    client
        .recovery_finish(&proto::RecoveryFinish {
            registration_id: started.registration_id,
            registration_upload: Bytes(fin.upload),
            cloud_wrap: Bytes(cloud_wrap),
        })
        .await?;
    sign_in(
        dir,
        server_url,
        who.user.as_str(),
        new_password,
        device_name,
        clock,
    )
    .await
}

// ---------------------------------------------------------------- with a session

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

/// This device's account on its sync server, ready to call: the unlocked profile (where
/// the session is kept), the password (to sign in again when the session has expired
/// or was revoked), and a client.
pub struct Remote {
    u: Arc<Unlocked>,
    password: Password,
    clock: Arc<dyn Clock>,
    account: SyncAccount,
    client: SyncClient,
}

impl Remote {
    /// The remote side of `u`; [`CoreError::NoSyncAccount`] if it has none.
    pub fn new(
        u: Arc<Unlocked>,
        password: Password,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        let account = account(&u)?.ok_or(CoreError::NoSyncAccount)?;
        let client = SyncClient::new(&account.server_url)?;
        Ok(Self {
            u,
            password,
            clock,
            account,
            client,
        })
    }

    /// Signs in as this device's stored account (Argon2id) and checks the pinned key.
    async fn login(&self, password: &Password) -> Result<Login, CoreError> {
        let who = Who {
            user: UserName::parse(&self.account.user)?,
            server_id: self.account.server_id.clone(),
        };
        let login = opaque_login(
            &self.client,
            &who,
            password,
            &self.account.device_id,
            &self.account.device_name,
        )
        .await?;
        if login.server_public_key != self.account.server_public_key {
            return Err(CoreError::ServerMismatch("its public key changed".into()));
        }
        Ok(login)
    }

    /// Keeps `grant` as this device's session.
    async fn keep(&self, grant: Grant) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let (u, clock) = (Arc::clone(&self.u), Arc::clone(&self.clock));
        blocking(move || {
            save_session(&u, &grant, &*clock)?;
            Ok(grant.token)
        })
        .await
    }

    /// Runs `call` with a valid session token, signing in again when there is none or
    /// the server no longer accepts it.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, CoreError>
    where
        F: Fn(SyncClient, Zeroizing<Vec<u8>>) -> Fut,
        Fut: Future<Output = Result<T, SyncError>>,
    {
        if let Some(token) = load_session(&self.u, self.clock.now_unix())? {
            match call(self.client.clone(), token).await {
                Err(e) if e.api_code() == Some("bad_session") => {}
                other => return Ok(other?),
            }
        }
        let login = self.login(&self.password).await?;
        let token = self.keep(login.grant).await?;
        Ok(call(self.client.clone(), token).await?)
    }

    /// The account's devices.
    pub async fn devices(&self) -> Result<Vec<proto::DeviceInfo>, CoreError> {
        self.call(|c, t| async move { c.devices(&t).await })
            .await
            .map(|d| d.devices)
    }

    /// Revokes a device: its session stops working at once.
    pub async fn revoke_device(&self, device_id: &str) -> Result<(), CoreError> {
        self.call(|c, t| async move { c.revoke_device(&t, device_id).await })
            .await
    }

    /// Unlocks the account after too many failed sign-ins elsewhere.
    pub async fn unlock_account(&self) -> Result<(), CoreError> {
        self.call(|c, t| async move { c.unlock_account(&t).await })
            .await
    }

    /// Brings the synced secrets of this device and the server together: newer entries
    /// win either way; the upload is a compare-and-swap, retried when another device was
    /// faster.
    pub async fn sync_settings(&self) -> Result<SyncReport, CoreError> {
        let mut pulled = Vec::new();
        for _ in 0..SETTINGS_RETRIES {
            let remote = self.call(|c, t| async move { c.settings(&t).await }).await?;
            let (u, user) = (Arc::clone(&self.u), self.account.user.clone());
            let blob = remote.blob;
            let (taken, put) = blocking(move || {
                let remote_doc = SettingsDoc::open(u.identity(), &user, blob.as_slice())?;
                let mut merged = SettingsDoc::from_vault(&u)?;
                let taken = merged.merge(&remote_doc);
                merged.apply(&u, &taken)?;
                let put = (merged != remote_doc)
                    .then(|| merged.seal(u.identity(), &user))
                    .transpose()?;
                Ok((taken, put))
            })
            .await?;
            pulled.extend(taken);
            let Some(blob) = put else {
                return Ok(SyncReport {
                    pulled,
                    pushed: false,
                    version: remote.version,
                });
            };
            let put = proto::PutSettings {
                expected_version: remote.version,
                blob: Bytes(blob),
            };
            match self
                .call(|c, t| {
                    let put = &put;
                    async move { c.put_settings(&t, put).await }
                })
                .await
            {
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

    /// Changes the password, on the server first (a fresh login with the current one, a
    /// new OPAQUE registration, the identity key under the new cloud KEK, other devices
    /// signed out) and then locally. `new` has passed the gate.
    pub async fn change_password(&self, new: Password) -> Result<(), CoreError> {
        let kek_password = new.clone();
        // The login's key stretching and the new local KEK's, side by side.
        let (kek, login) = beside(
            move || PasswordKek::derive(&kek_password),
            self.login(&self.password),
        )
        .await;
        let (kek, login) = (kek?, login?);
        let who = Who {
            user: UserName::parse(&self.account.user)?,
            server_id: self.account.server_id.clone(),
        };
        let (state, request) = opaque::client_registration_start(&new).map_err(opaque_err)?;
        let started = self
            .client
            .password_start(
                &login.grant.token,
                &proto::PasswordStart {
                    registration_request: Bytes(request),
                },
            )
            .await?;
        let fin = {
            let (who, new) = (who.clone(), new.clone());
            let response = started.registration_response;
            blocking(move || {
                opaque::client_registration_finish(state, &new, response.as_slice(), who.ids())
                    .map_err(opaque_err)
            })
            .await?
        };
        if fin.server_public_key != self.account.server_public_key {
            return Err(CoreError::ServerMismatch("its public key changed".into()));
        }
        let cloud_wrap = self.u.identity().wrap_with_key(
            &opaque::cloud_kek(&fin.export_key),
            &cloud_ctx(&self.account.user),
        )?;
        self.client
            .password_finish(
                &login.grant.token,
                &proto::PasswordFinish {
                    registration_id: started.registration_id,
                    registration_upload: Bytes(fin.upload),
                    cloud_wrap: Bytes(cloud_wrap),
                },
            )
            .await?;
        let (u, clock, grant) = (Arc::clone(&self.u), Arc::clone(&self.clock), login.grant);
        blocking(move || {
            save_session(&u, &grant, &*clock)?;
            u.replace_password_locally(&kek, &*clock)
        })
        .await
    }

    /// Replaces the recovery code (Settings → Recovery kit) and returns the new one, to
    /// be shown once. The server gets the identity key wrapped under the new code and the
    /// new code's verifier, which replace the old ones together; then this profile's own
    /// recovery wrap is replaced (a profile set up by signing in gets one). Afterwards
    /// the old code neither recovers the account nor unlocks this profile.
    ///
    /// The server wants a fresh proof of the password for this, so it starts with a
    /// login. The local wrap is written only after the server took the new code, so a
    /// failure on the way (wrong password, server unreachable) leaves the old code
    /// working everywhere.
    pub async fn new_recovery_code(
        &self,
        password: &Password,
    ) -> Result<RecoveryCode, CoreError> {
        let login = self.login(password).await?;
        let code = RecoveryCode::generate()?;
        let recovery_wrap = self
            .u
            .identity()
            .wrap_with_recovery_code(&code, &server_recovery_ctx(&self.account.user))?;
        let req = proto::NewRecoveryCode {
            recovery_wrap: Bytes(recovery_wrap),
            recovery_verifier: Bytes(code.auth_verifier().to_vec()),
        };
        self.client
            .new_recovery_code(&login.grant.token, &req)
            .await?;
        let (u, clock, grant) = (Arc::clone(&self.u), Arc::clone(&self.clock), login.grant);
        blocking(move || {
            u.set_recovery_code(&code, &*clock)?;
            save_session(&u, &grant, &*clock)?;
            Ok(code)
        })
        .await
    }

    /// Asks the server to publish the user's key for `raw_address`: it mails a token to
    /// the address, which [`Remote::confirm_published_key`] then spends. The key must
    /// carry the address.
    pub async fn publish_key(
        &self,
        raw_address: &str,
    ) -> Result<proto::DirectoryClaimed, CoreError> {
        let address = proto::EmailAddress::parse(raw_address)
            .map_err(|e| CoreError::BadAddress(e.to_string()))?;
        let key = crate::keys::own_key(&self.u, &*self.clock)?.ok_or(CoreError::NoOwnKey)?;
        if !key
            .addresses(crate::keys::system_time(&*self.clock))
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
        self.call(|c, t| {
            let claim = &claim;
            async move { c.claim_key(&t, claim).await }
        })
        .await
    }

    /// Spends a proof token (from [`directory_token`]): the key is published.
    pub async fn confirm_published_key(
        &self,
        token: &str,
    ) -> Result<proto::DirectoryEntry, CoreError> {
        let req = proto::DirectoryConfirm {
            token: token.to_owned(),
        };
        self.call(|c, t| {
            let req = &req;
            async move { c.confirm_key(&t, req).await }
        })
        .await
    }
}

// ---------------------------------------------------------------- key directory

/// Looks `raw_address` up in the account server's key directory and records what it
/// finds as a contact key (source: directory). `None` if nothing is published.
pub async fn lookup_directory(
    u: &Arc<Unlocked>,
    raw_address: &str,
    clock: &Arc<dyn Clock>,
) -> Result<Option<crate::keys::Observation>, CoreError> {
    let address = proto::EmailAddress::parse(raw_address)
        .map_err(|e| CoreError::BadAddress(e.to_string()))?;
    let account = account(u)?.ok_or(CoreError::NoSyncAccount)?;
    let client = SyncClient::new(&account.server_url)?;
    let Some(entry) = client.lookup_key(&address).await? else {
        return Ok(None);
    };
    let (u, clock) = (Arc::clone(u), Arc::clone(clock));
    blocking(move || {
        crate::keys::observe_key(
            &u,
            address.as_str(),
            &entry.cert.0,
            crate::keys::KeySource::Directory,
            &*clock,
        )
        .map(Some)
    })
    .await
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

