//! A profile directory and its vault: the identity key, wrapped twice, and sealed secrets.
//!
//! ```text
//! <profile dir>/vault.sqlite3
//!   profile     one row: a random 16-byte profile id (the owner in every wrap's AAD), user name
//!   vault_wrap  'password': identity key under Argon2id(password)
//!               'recovery': identity key under HKDF(recovery code)
//!   secret      name → value sealed under the vault key, bound to (profile id, name)
//! ```
//!
//! The type states: [`open`] gives a [`Locked`] profile, which knows only public facts;
//! [`Locked::unlock`] (or [`Locked::unlock_with_recovery_code`], [`Locked::recover`], or
//! [`create`]) is the only way to an [`Unlocked`] one, which holds the identity key and
//! the vault key and wipes them when dropped or [`Unlocked::lock`]ed.
//!
//! A password change verifies the old password, runs the gate on the new one, derives the
//! new KEK, and then replaces the one wrap row in one transaction: killed at any moment,
//! the vault opens with the old password or the new one, never neither.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use sealpost_crypto::identity::SubKeyLabel;
use sealpost_crypto::kdf::Argon2Params;
use sealpost_crypto::password::{self, Verdict};
use sealpost_crypto::{
    CryptoError, IdentityKey, Password, Purpose, RecoveryCode, SecretBytes, SecretVec, SubKey,
    WrapContext, wrap,
};

use crate::{Clock, CoreError, store};

/// The vault's file name inside a profile directory.
pub const VAULT_FILE: &str = "vault.sqlite3";
/// Length of a profile id.
pub const PROFILE_ID_LEN: usize = 16;
/// Longest secret name, in characters.
pub const MAX_SECRET_NAME_CHARS: usize = 256;
/// A reserved secret whose value is known: it lets a candidate identity key (from the
/// sync server, say) be checked against this vault without the old password.
pub const KEY_CHECK_SECRET: &str = "vault/key-check";
const KEY_CHECK_VALUE: &[u8] = b"sealpost vault key check v1";

/// The public facts about a profile, readable without unlocking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    /// Where the profile lives.
    pub dir: PathBuf,
    /// Random id, bound into every wrap so blobs cannot move between profiles.
    pub profile_id: [u8; PROFILE_ID_LEN],
    /// The user's name.
    pub user_name: String,
    /// When the profile was created (Unix seconds).
    pub created_at: i64,
}

/// A profile that is opened but locked: it can tell who it belongs to, and be unlocked.
#[derive(Debug, Clone)]
pub struct Locked {
    info: ProfileInfo,
}

/// An unlocked profile. Holds the identity key and the vault key; both are wiped when
/// this value is dropped. It is `Send + Sync`: the core shares one behind an `Arc`
/// between its tasks, and the vault's connection is used by one of them at a time.
pub struct Unlocked {
    conn: Mutex<Connection>,
    /// Counts the changes made to secrets through this value (every writer in the
    /// process shares it), so a cache of what they hold knows when it is stale.
    version: AtomicU64,
    info: ProfileInfo,
    identity: IdentityKey,
    vault_key: SubKey,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The steps of a password change, named so a test can make any one of them fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeStep {
    /// The old password has been verified against the stored wrap.
    OldVerified,
    /// The new wrap has been computed (Argon2 done).
    NewWrapped,
    /// The new wrap is written inside the open transaction, not yet committed.
    Written,
}

fn vault_path(dir: &Path) -> PathBuf {
    dir.join(VAULT_FILE)
}

fn password_ctx(profile_id: &[u8]) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByPassword, profile_id)
}

fn recovery_ctx(profile_id: &[u8]) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByRecovery, profile_id)
}

/// A key-encryption key freshly derived from a password (Argon2id at the shipped
/// parameters, with a new salt): what sets a profile's password. It is derived on its
/// own so that a caller can run the derivation beside other work (an OPAQUE run on the
/// other core) and never while it holds a lock. Wiped on drop.
pub(crate) struct PasswordKek {
    kek: SecretBytes<32>,
    header: wrap::KdfHeader,
}

impl PasswordKek {
    /// Runs Argon2id: hundreds of milliseconds, on a blocking thread.
    pub(crate) fn derive(password: &Password) -> Result<Self, CoreError> {
        let (kek, header) = wrap::password_kek(password, Argon2Params::SHIPPED)?;
        Ok(Self { kek, header })
    }

    fn wrap(&self, identity: &IdentityKey, profile_id: &[u8]) -> Result<Vec<u8>, CoreError> {
        Ok(identity.wrap_with_derived_kek(&self.kek, self.header, &password_ctx(profile_id))?)
    }
}

/// Creates a profile in `dir`: runs the gate, makes the identity key, stores it wrapped
/// by the password and by a new recovery code. Returns the unlocked profile and the
/// recovery code, which the caller shows to the user once.
pub fn create(
    dir: &Path,
    user_name: &str,
    password: &Password,
    clock: &dyn Clock,
) -> Result<(Unlocked, RecoveryCode), CoreError> {
    check_gate(password, user_name)?;
    let identity = IdentityKey::generate()?;
    let code = RecoveryCode::generate()?;
    let kek = PasswordKek::derive(password)?;
    let unlocked = create_with(dir, user_name, &kek, identity, Some(&code), clock)?;
    Ok((unlocked, code))
}

/// Creates a profile in `dir` around `identity`, its password wrap made with `kek` (the
/// caller ran the gate when the password was chosen, and derived the KEK). With `code`
/// the profile gets a local recovery wrap too; a device that signed in does not know
/// the code and recovers through the sync server.
pub(crate) fn create_with(
    dir: &Path,
    user_name: &str,
    kek: &PasswordKek,
    identity: IdentityKey,
    code: Option<&RecoveryCode>,
    clock: &dyn Clock,
) -> Result<Unlocked, CoreError> {
    ensure_new(dir)?;
    let path = vault_path(dir);
    let mut profile_id = [0u8; PROFILE_ID_LEN];
    profile_id.copy_from_slice(SecretBytes::<PROFILE_ID_LEN>::random()?.expose());
    let pw_blob = kek.wrap(&identity, &profile_id)?;
    let rc_blob = code
        .map(|c| identity.wrap_with_recovery_code(c, &recovery_ctx(&profile_id)))
        .transpose()?;

    let mut conn = store::open_vault(&path, true)?;
    let now = clock.now_unix();
    let tx = conn.transaction()?;
    let existing: i64 = tx.query_row("SELECT count(*) FROM profile", [], |r| r.get(0))?;
    if existing != 0 {
        return Err(CoreError::ProfileExists(dir.to_owned()));
    }
    tx.execute(
        "INSERT INTO profile (id, profile_id, user_name, created_at) VALUES (1, ?1, ?2, ?3)",
        params![&profile_id[..], user_name, now],
    )?;
    tx.execute(
        "INSERT INTO vault_wrap (kind, blob, updated_at) VALUES ('password', ?1, ?2)",
        params![pw_blob, now],
    )?;
    if let Some(rc_blob) = rc_blob {
        tx.execute(
            "INSERT INTO vault_wrap (kind, blob, updated_at) VALUES ('recovery', ?1, ?2)",
            params![rc_blob, now],
        )?;
    }
    tx.commit()?;

    let info = ProfileInfo {
        dir: dir.to_owned(),
        profile_id,
        user_name: user_name.to_owned(),
        created_at: now,
    };
    let unlocked = Unlocked::new(conn, info, identity)?;
    unlocked.put_secret(KEY_CHECK_SECRET, KEY_CHECK_VALUE, clock)?;
    Ok(unlocked)
}

/// Makes `dir` (private to the user) unless it holds a profile already: what every
/// creation checks before it does anything costly.
pub(crate) fn ensure_new(dir: &Path) -> Result<(), CoreError> {
    create_private_dir(dir)?;
    if vault_path(dir).exists() {
        return Err(CoreError::ProfileExists(dir.to_owned()));
    }
    Ok(())
}

/// Opens the profile in `dir`, locked.
pub fn open(dir: &Path) -> Result<Locked, CoreError> {
    let conn = open_existing(dir)?;
    let info = read_info(&conn, dir)?;
    Ok(Locked { info })
}

fn open_existing(dir: &Path) -> Result<Connection, CoreError> {
    let path = vault_path(dir);
    if !path.is_file() {
        return Err(CoreError::ProfileNotFound(dir.to_owned()));
    }
    store::open_vault(&path, false)
}

fn read_info(conn: &Connection, dir: &Path) -> Result<ProfileInfo, CoreError> {
    let row: Option<(Vec<u8>, String, i64)> = conn
        .query_row(
            "SELECT profile_id, user_name, created_at FROM profile WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    // A vault file without its profile row is a creation that never committed.
    let (id, user_name, created_at) =
        row.ok_or_else(|| CoreError::ProfileNotFound(dir.to_owned()))?;
    let profile_id: [u8; PROFILE_ID_LEN] = id.try_into().map_err(|_| CoreError::VaultDamaged {
        what: "the profile row".to_owned(),
        reason: "the profile id has the wrong length".to_owned(),
    })?;
    Ok(ProfileInfo {
        dir: dir.to_owned(),
        profile_id,
        user_name,
        created_at,
    })
}

fn read_wrap(conn: &Connection, kind: &str) -> Result<Vec<u8>, CoreError> {
    conn.query_row("SELECT blob FROM vault_wrap WHERE kind = ?1", [kind], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| CoreError::VaultDamaged {
        what: format!("the {kind} wrap of the identity key"),
        reason: "it is missing".to_owned(),
    })
}

/// Maps an unwrap failure: a failed tag is a wrong secret; anything else is damage.
fn unwrap_error(kind: &str, wrong: CoreError, err: CryptoError) -> CoreError {
    match err {
        CryptoError::Authentication => wrong,
        other => CoreError::VaultDamaged {
            what: format!("the {kind} wrap of the identity key"),
            reason: other.to_string(),
        },
    }
}

/// The gate's verdict on `password` for `user_name`, with the same guessable words every
/// check here uses: what a strength meter should show, so it never promises what the
/// account creation then refuses.
pub fn judge_password(password: &Password, user_name: &str) -> Verdict {
    password::gate(password, &[user_name])
}

/// [`judge_password`], as an error when the gate refuses.
pub(crate) fn check_gate(password: &Password, user_name: &str) -> Result<Verdict, CoreError> {
    let verdict = judge_password(password, user_name);
    if verdict.accepted {
        Ok(verdict)
    } else {
        Err(CoreError::WeakPassword(Box::new(verdict)))
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CoreError> {
    let io = |what| {
        move |source| CoreError::Io {
            what,
            path: dir.to_owned(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("cannot create the profile directory"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("cannot restrict the profile directory"))?;
    }
    Ok(())
}

impl Locked {
    /// The profile's public facts.
    pub fn info(&self) -> &ProfileInfo {
        &self.info
    }

    /// Unlocks with the password. A wrong one changes nothing.
    pub fn unlock(&self, password: &Password) -> Result<Unlocked, CoreError> {
        let conn = open_existing(&self.info.dir)?;
        let blob = read_wrap(&conn, "password")?;
        let identity = IdentityKey::unwrap_with_password(
            password,
            &password_ctx(&self.info.profile_id),
            &blob,
        )
        .map_err(|e| unwrap_error("password", CoreError::WrongPassword, e))?;
        Unlocked::new(conn, self.info.clone(), identity)
    }

    /// Unlocks with the recovery code. A wrong one changes nothing.
    pub fn unlock_with_recovery_code(&self, code: &RecoveryCode) -> Result<Unlocked, CoreError> {
        let conn = open_existing(&self.info.dir)?;
        let has_recovery: i64 = conn.query_row(
            "SELECT count(*) FROM vault_wrap WHERE kind = 'recovery'",
            [],
            |r| r.get(0),
        )?;
        if has_recovery == 0 {
            return Err(CoreError::NoLocalRecovery);
        }
        let blob = read_wrap(&conn, "recovery")?;
        let identity = IdentityKey::unwrap_with_recovery_code(
            code,
            &recovery_ctx(&self.info.profile_id),
            &blob,
        )
        .map_err(|e| unwrap_error("recovery", CoreError::WrongRecoveryCode, e))?;
        Unlocked::new(conn, self.info.clone(), identity)
    }

    /// A forgotten password: unlocks with the recovery code and sets `new_password`
    /// (which must pass the gate). The recovery code stays valid.
    pub fn recover(
        &self,
        code: &RecoveryCode,
        new_password: &Password,
        clock: &dyn Clock,
    ) -> Result<Unlocked, CoreError> {
        check_gate(new_password, &self.info.user_name)?;
        let unlocked = self.unlock_with_recovery_code(code)?;
        let kek = PasswordKek::derive(new_password)?;
        unlocked.replace_password_wrap(&kek, clock, &mut |_| Ok(()))?;
        Ok(unlocked)
    }

    /// Opens the vault with an identity key obtained elsewhere (from the sync server after
    /// a sign-in with a password changed on another device) and makes that password,
    /// whose KEK is `kek`, the local one. The identity is checked against the vault
    /// first: a wrong one changes nothing.
    pub(crate) fn rewrap_with_identity(
        &self,
        identity: IdentityKey,
        kek: &PasswordKek,
        clock: &dyn Clock,
    ) -> Result<Unlocked, CoreError> {
        let conn = open_existing(&self.info.dir)?;
        let unlocked = Unlocked::new(conn, self.info.clone(), identity)?;
        match unlocked.secret(KEY_CHECK_SECRET) {
            Ok(Some(v)) if v.expose() == KEY_CHECK_VALUE => {}
            _ => {
                return Err(CoreError::VaultDamaged {
                    what: "the identity key from the server".to_owned(),
                    reason: "it does not open this profile's vault (another account?)".to_owned(),
                });
            }
        }
        unlocked.replace_password_wrap(kek, clock, &mut |_| Ok(()))?;
        Ok(unlocked)
    }

    /// Unlocks with `old` and changes the password to `new` (which must pass the gate),
    /// deriving from the old password once.
    #[cfg(any(test, feature = "testing"))]
    pub fn change_password(
        &self,
        old: &Password,
        new: &Password,
        clock: &dyn Clock,
    ) -> Result<Unlocked, CoreError> {
        check_gate(new, &self.info.user_name)?;
        let unlocked = self.unlock(old)?;
        let kek = PasswordKek::derive(new)?;
        unlocked.replace_password_wrap(&kek, clock, &mut |_| Ok(()))?;
        Ok(unlocked)
    }
}

impl Unlocked {
    fn new(conn: Connection, info: ProfileInfo, identity: IdentityKey) -> Result<Self, CoreError> {
        let vault_key = identity.subkey(SubKeyLabel::Vault)?;
        Ok(Self {
            conn: Mutex::new(conn),
            version: AtomicU64::new(0),
            info,
            identity,
            vault_key,
        })
    }

    /// The profile's public facts.
    pub fn info(&self) -> &ProfileInfo {
        &self.info
    }

    /// The identity key, for the layers that wrap it for the server.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// Locks: the keys are wiped; what remains knows only public facts.
    #[cfg(any(test, feature = "testing"))]
    pub fn lock(self) -> Locked {
        Locked {
            info: self.info.clone(),
        }
    }

    /// Changes the password. The old one must be given (so an unattended unlocked app
    /// cannot have its password changed), the new one must pass the gate.
    pub fn change_password(
        &self,
        old: &Password,
        new: &Password,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        self.change_password_steps(old, new, clock, &mut |_| Ok(()))
    }

    /// [`Unlocked::change_password`], with `fault` called after each step so a test can
    /// stop it anywhere.
    pub(crate) fn change_password_steps(
        &self,
        old: &Password,
        new: &Password,
        clock: &dyn Clock,
        fault: &mut dyn FnMut(ChangeStep) -> Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        self.check_password(old)?;
        fault(ChangeStep::OldVerified)?;
        check_gate(new, &self.info.user_name)?;
        let kek = PasswordKek::derive(new)?;
        self.replace_password_wrap(&kek, clock, fault)
    }

    /// Checks that `password` is this profile's (Argon2id): for a change that must not
    /// be made by whoever finds the profile unlocked.
    pub fn check_password(&self, password: &Password) -> Result<(), CoreError> {
        let stored = read_wrap(&self.conn(), "password")?;
        let found =
            IdentityKey::unwrap_with_password(password, &password_ctx(&self.info.profile_id), &stored)
                .map_err(|e| unwrap_error("password", CoreError::WrongPassword, e))?;
        if found != self.identity {
            return Err(CoreError::VaultDamaged {
                what: "the password wrap of the identity key".to_owned(),
                reason: "it holds a different identity key than the one unlocked".to_owned(),
            });
        }
        Ok(())
    }

    /// Makes the password whose KEK is `kek` the local one without asking for the old
    /// one: for callers that have just proven the old password another way (the sync
    /// server's change) and ran the gate on the new one.
    pub(crate) fn replace_password_locally(
        &self,
        kek: &PasswordKek,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        self.replace_password_wrap(kek, clock, &mut |_| Ok(()))
    }

    /// Replaces the password wrap with one under `kek`, in one transaction.
    fn replace_password_wrap(
        &self,
        kek: &PasswordKek,
        clock: &dyn Clock,
        fault: &mut dyn FnMut(ChangeStep) -> Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        let blob = kek.wrap(&self.identity, &self.info.profile_id)?;
        fault(ChangeStep::NewWrapped)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE vault_wrap SET blob = ?1, updated_at = ?2 WHERE kind = 'password'",
            params![blob, clock.now_unix()],
        )?;
        if n != 1 {
            return Err(CoreError::VaultDamaged {
                what: "the password wrap of the identity key".to_owned(),
                reason: "it is missing".to_owned(),
            });
        }
        fault(ChangeStep::Written)?; // dropping `tx` here rolls back
        tx.commit()?;
        Ok(())
    }

    /// Replaces the recovery code: the old one stops working, the new one is returned to
    /// be shown once.
    pub fn replace_recovery_code(&self, clock: &dyn Clock) -> Result<RecoveryCode, CoreError> {
        let code = RecoveryCode::generate()?;
        self.set_recovery_code(&code, clock)?;
        Ok(code)
    }

    /// Makes `code` the one that unlocks this profile (the sync server was given it
    /// first); the old one stops working.
    pub(crate) fn set_recovery_code(
        &self,
        code: &RecoveryCode,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        let blob = self
            .identity
            .wrap_with_recovery_code(code, &recovery_ctx(&self.info.profile_id))?;
        // A device set up by signing in has no recovery wrap yet: this gives it one.
        self.conn().execute(
            "INSERT INTO vault_wrap (kind, blob, updated_at) VALUES ('recovery', ?1, ?2)
             ON CONFLICT (kind) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
            params![blob, clock.now_unix()],
        )?;
        Ok(())
    }

    /// Stores `value` under `name`, sealed under the vault key and bound to this profile
    /// and this name. Replaces any previous value.
    pub fn put_secret(&self, name: &str, value: &[u8], clock: &dyn Clock) -> Result<(), CoreError> {
        self.put_secret_at(name, value, clock.now_unix())
    }

    /// Stores `value` under `name` with a given modification time (a value synced from
    /// another device keeps its own time).
    pub fn put_secret_at(
        &self,
        name: &str,
        value: &[u8],
        updated_at: i64,
    ) -> Result<(), CoreError> {
        check_secret_name(name)?;
        let ctx = WrapContext::new(Purpose::VaultSecret, &self.info.profile_id)
            .with_item(name.as_bytes());
        let sealed = wrap::seal_with_key(&self.vault_key, &ctx, value)?;
        self.conn().execute(
            "INSERT INTO secret (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![name, sealed, updated_at],
        )?;
        self.changed();
        Ok(())
    }

    /// When each secret was last changed, by name (the key check left out).
    pub fn secret_times(&self) -> Result<Vec<(String, i64)>, CoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, updated_at FROM secret WHERE name != ?1 ORDER BY name")?;
        let rows = stmt
            .query_map([KEY_CHECK_SECRET], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, i64)>, _>>()?;
        Ok(rows)
    }

    /// How many times secrets were changed through this value: equal numbers mean
    /// nothing changed in between.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The connection, for the other modules of this crate that keep rows in the vault.
    /// Held only for a statement or a transaction, never across an `.await`.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while it was held leaves no half transaction (a rusqlite transaction
        // rolls back when it is dropped during the unwind): the connection stays usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores many secrets in one transaction.
    #[cfg(any(test, feature = "testing"))]
    pub fn put_secrets<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        let now = clock.now_unix();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO secret (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )?;
            for (name, value) in items {
                check_secret_name(name)?;
                let ctx = WrapContext::new(Purpose::VaultSecret, &self.info.profile_id)
                    .with_item(name.as_bytes());
                let sealed = wrap::seal_with_key(&self.vault_key, &ctx, value)?;
                stmt.execute(params![name, sealed, now])?;
            }
        }
        tx.commit()?;
        self.changed();
        Ok(())
    }

    /// The secret stored under `name`, if any. A value that does not authenticate (damaged,
    /// or copied from another row or profile) is an error, never returned.
    pub fn secret(&self, name: &str) -> Result<Option<SecretVec>, CoreError> {
        check_secret_name(name)?;
        let sealed: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT value FROM secret WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let ctx = WrapContext::new(Purpose::VaultSecret, &self.info.profile_id)
            .with_item(name.as_bytes());
        wrap::open_with_key(&self.vault_key, &ctx, &sealed)
            .map(Some)
            .map_err(|reason| CoreError::SecretDamaged {
                name: name.to_owned(),
                reason,
            })
    }

    /// Seals `plaintext` under the vault key for storage outside the vault (the mail
    /// store's bodies, drafts, outbox), bound to this profile and to `purpose` (say
    /// `mail/raw/17`): [`Unlocked::open_blob`] with another purpose or profile fails.
    /// Same AEAD and key as [`Unlocked::put_secret`]; the purpose goes into the
    /// associated data after a NUL byte, which no secret name can hold, so a blob can
    /// never pass for a secret or the other way round.
    pub fn seal_blob(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        let item = blob_item(purpose);
        let ctx = WrapContext::new(Purpose::VaultSecret, &self.info.profile_id).with_item(&item);
        Ok(wrap::seal_with_key(&self.vault_key, &ctx, plaintext)?)
    }

    /// Opens a blob made by [`Unlocked::seal_blob`] with the same `purpose`. A blob that
    /// does not authenticate (damaged, moved to another row or profile) is an error.
    pub fn open_blob(&self, purpose: &str, sealed: &[u8]) -> Result<SecretVec, CoreError> {
        let item = blob_item(purpose);
        let ctx = WrapContext::new(Purpose::VaultSecret, &self.info.profile_id).with_item(&item);
        wrap::open_with_key(&self.vault_key, &ctx, sealed).map_err(|reason| {
            CoreError::SecretDamaged {
                name: purpose.to_owned(),
                reason,
            }
        })
    }

    /// Deletes the secret under `name`; whether there was one.
    pub fn delete_secret(&self, name: &str) -> Result<bool, CoreError> {
        check_secret_name(name)?;
        let deleted = self
            .conn()
            .execute("DELETE FROM secret WHERE name = ?1", [name])?
            == 1;
        self.changed();
        Ok(deleted)
    }

    /// The names of all stored secrets, sorted; the vault's own key check is left out.
    pub fn secret_names(&self) -> Result<Vec<String>, CoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name FROM secret WHERE name != ?1 ORDER BY name")?;
        let names = stmt
            .query_map([KEY_CHECK_SECRET], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }
}

/// The associated-data item of a sealed blob: a NUL byte (never in a secret name), a
/// label, the purpose.
fn blob_item(purpose: &str) -> Vec<u8> {
    let mut item = b"\0blob/".to_vec();
    item.extend_from_slice(purpose.as_bytes());
    item
}

fn check_secret_name(name: &str) -> Result<(), CoreError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_SECRET_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(CoreError::InvalidSecretName(
            name.chars().take(40).collect(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
