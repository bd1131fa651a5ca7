//! The server's state, behind one trait with one conformance suite.
//!
//! Every method is one atomic step, so the invariants hold with several server processes
//! on one database and across restarts: the failed-login counter is charged and read in
//! one statement, the settings blob is replaced only if its version is the one expected
//! (compare-and-swap), a login state is taken (read and deleted) at most once.
//!
//! The store holds only what the HSM has sealed (records, wraps, settings, login states,
//! the server key pair, the details of security events) plus public facts (names,
//! counters, device names, hashes of session tokens and recovery verifiers, the
//! transparency log). It never sees a password, an export key or an identity key.
//!
//! The key directory's transparency log lives beside the directory: publishing or
//! removing a key appends its entry in the same transaction, so the log and the directory
//! never disagree. The log is one sequence for all processes: an append locks the log's
//! size (one row), writes the entry and the complete subtrees it finishes (insert-only:
//! `sealpost_transparency::tree`), and bumps the size. Signed heads are stored once per
//! size (the first signature stored wins).

use async_trait::async_trait;
use sealpost_transparency::SignedHead;
use sealpost_transparency::tree::{Hash, NodeId};

/// What can go wrong in a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An account with this name exists already.
    #[error("the account exists already")]
    AccountExists,
    /// No account with this name.
    #[error("no such account")]
    NoAccount,
    /// The settings blob was changed by someone else first.
    #[error("the settings were changed elsewhere (now at version {current})")]
    VersionConflict {
        /// The version the store has now.
        current: i64,
    },
    /// The database failed or cannot be reached.
    #[error("the store failed: {0}")]
    Backend(String),
}

/// A new account, as registration stores it. Blobs are HSM-sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Normalised user name: the OPAQUE credential identifier.
    pub user: String,
    /// The OPAQUE registration record (sealed).
    pub record: Vec<u8>,
    /// The identity key wrapped under the cloud KEK by the client (sealed).
    pub cloud_wrap: Vec<u8>,
    /// The identity key wrapped under the recovery code by the client (sealed).
    pub recovery_wrap: Vec<u8>,
    /// SHA-256 of the recovery code's authentication key (public: the code has 130 bits).
    pub recovery_verifier: Vec<u8>,
    /// The first settings blob (sealed); version 1.
    pub settings: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Normalised user name.
    pub user: String,
    /// The OPAQUE registration record (sealed).
    pub record: Vec<u8>,
    /// Cloud-wrapped identity key (sealed).
    pub cloud_wrap: Vec<u8>,
    /// Recovery-wrapped identity key (sealed).
    pub recovery_wrap: Vec<u8>,
    /// SHA-256 of the recovery authentication key.
    pub recovery_verifier: Vec<u8>,
    /// Failed login attempts since the last successful one (charged at login start).
    pub failed_logins: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// The answer to charging a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// The attempt is charged; the counter is now `attempts` (this one included).
    Charged {
        /// Counter after charging.
        attempts: i64,
    },
    /// The counter had reached the limit: nothing was charged, the account is locked.
    Locked,
    /// No such account: nothing was charged.
    NoAccount,
}

/// New credentials after a password change or a recovery. Sealed blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The new OPAQUE record.
    pub record: Vec<u8>,
    /// The identity key wrapped under the new cloud KEK.
    pub cloud_wrap: Vec<u8>,
}

/// A pending OPAQUE login between its two messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// Normalised user name.
    pub user: String,
    /// The device that is signing in.
    pub device_id: String,
    /// The device's display name.
    pub device_name: String,
    /// The OPAQUE server state (sealed).
    pub state: Vec<u8>,
    /// Unix seconds after which the state is useless.
    pub expires_at: i64,
}

/// What a completed login returns, read in the transaction that completed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedLogin {
    /// Failed attempts since the last successful login (this one's own charge excluded).
    pub failed_attempts: i64,
    /// The cloud-wrapped identity key (sealed).
    pub cloud_wrap: Vec<u8>,
    /// The settings blob's version.
    pub settings_version: i64,
    /// The settings blob (sealed).
    pub settings: Vec<u8>,
    /// The device signed in for the first time.
    pub new_device: bool,
}

/// A claim on an address for the key directory, waiting for its mailed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryClaimRow {
    /// SHA-256 of the token mailed to the address.
    pub token_hash: Vec<u8>,
    /// Who claims the address.
    pub user: String,
    /// The normalised address.
    pub address: String,
    /// The certificate to publish (public).
    pub cert: Vec<u8>,
    /// Unix seconds after which the token no longer works.
    pub expires_at: i64,
}

/// A published directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryKey {
    /// The proven, normalised address.
    pub address: String,
    /// Who proved it.
    pub user: String,
    /// The certificate.
    pub cert: Vec<u8>,
    /// When the address was proven, Unix seconds.
    pub published_at: i64,
    /// Its entry in the transparency log.
    pub log_index: u64,
}

/// A security event to record. `details` is sealed by the HSM (device name, coarse
/// source, address); kind, time and device id are public facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Whose.
    pub user: String,
    /// Unix seconds.
    pub at: i64,
    /// The kind's wire name (`sign_in`, ...).
    pub kind: String,
    /// The device it concerns, or empty.
    pub device_id: String,
    /// Sealed details.
    pub details: Vec<u8>,
}

/// A recorded security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Increasing per store.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The kind's wire name.
    pub kind: String,
    /// The device it concerns, or empty.
    pub device_id: String,
    /// Sealed details.
    pub details: Vec<u8>,
}

/// The answer to a directory claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Stored: the token may be mailed.
    Stored,
    /// The user has this many live claims already.
    TooManyForUser,
    /// The address has this many live claims already (nobody may flood a mailbox).
    TooManyForAddress,
}

/// A signed-in device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Client-chosen random id.
    pub device_id: String,
    /// Display name ("Alice's laptop").
    pub name: String,
    /// First sign-in, Unix seconds.
    pub created_at: i64,
    /// Last sign-in, Unix seconds.
    pub last_seen_at: i64,
}

/// A session: the hash of its token, whose it is, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the bearer token.
    pub token_hash: Vec<u8>,
    /// Normalised user name.
    pub user: String,
    /// The device it is bound to.
    pub device_id: String,
    /// When the OPAQUE login that made it finished, Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The server's state. Every method is atomic on its own.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A server-wide secret (such as the sealed OPAQUE key pair) by name.
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` under `name` unless a value is there already; returns the value
    /// that is stored afterwards (so concurrent first starts agree on one key pair).
    async fn put_server_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError>;

    /// Creates an account with settings version 1. [`StoreError::AccountExists`] if taken.
    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError>;

    /// The account, if any.
    async fn account(&self, user: &str) -> Result<Option<Account>, StoreError>;

    /// Resets the counter (recovery code used, or a signed-in device unlocked the account).
    async fn reset_failed_logins(&self, user: &str) -> Result<(), StoreError>;

    /// Replaces the record and the cloud wrap in one statement; the recovery code and
    /// the counter are left alone.
    async fn replace_credentials(
        &self,
        user: &str,
        credentials: Credentials,
    ) -> Result<(), StoreError>;

    /// Replaces the recovery wrap (sealed) and the recovery verifier together, in one
    /// statement; everything else is left alone. [`StoreError::NoAccount`] if none.
    async fn replace_recovery(
        &self,
        user: &str,
        recovery_wrap: &[u8],
        recovery_verifier: &[u8],
    ) -> Result<(), StoreError>;

    /// Charges one login attempt against `state.user` and, only if it was charged,
    /// stores the pending login under `id`, in one transaction: a login start costs one
    /// commit. The check against `limit` and the increment are one atomic step: if the
    /// counter is below `limit` it is incremented and [`Charge::Charged`] returned with
    /// the new count; otherwise nothing changes and the answer is [`Charge::Locked`] (or
    /// [`Charge::NoAccount`]).
    async fn charge_login_and_stage(
        &self,
        limit: i64,
        id: &[u8],
        state: LoginState,
    ) -> Result<Charge, StoreError>;

    /// The pending login under `id`, if it is there and has not expired at `now`; it
    /// stays there (a finish whose message is malformed changes nothing).
    async fn login_state(&self, id: &[u8], now: i64) -> Result<Option<LoginState>, StoreError>;

    /// Deletes the pending login under `id` (a finish that failed); whether it was there.
    async fn discard_login_state(&self, id: &[u8]) -> Result<bool, StoreError>;

    /// Completes a login in one transaction: deletes the pending login under `id` (it
    /// must be there, alive at `session.created_at`, and for the session's user and
    /// device, else nothing changes and the answer is `None`: at most one finish wins),
    /// resets the account's counter, records
    /// the device's sign-in under `device_name`, stores the session and returns what the
    /// client gets.
    async fn complete_login(
        &self,
        id: &[u8],
        device_name: &str,
        session: Session,
    ) -> Result<Option<CompletedLogin>, StoreError>;

    /// Stores a pending login under `id`.
    async fn put_login_state(&self, id: &[u8], state: LoginState) -> Result<(), StoreError>;

    /// Takes (reads and deletes, atomically) the pending login under `id` if it has not
    /// expired at `now`. A second take of the same id finds nothing.
    async fn take_login_state(&self, id: &[u8], now: i64)
    -> Result<Option<LoginState>, StoreError>;

    /// The account's devices, ordered by device id.
    async fn devices(&self, user: &str) -> Result<Vec<Device>, StoreError>;

    /// Removes a device and every session bound to it, atomically; whether it existed.
    async fn revoke_device(&self, user: &str, device_id: &str) -> Result<bool, StoreError>;

    /// The session with this token hash, if it exists, has not expired at `now`, and its
    /// device has not been revoked.
    async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError>;

    /// Deletes every session of `user` except those of `keep_device` (after a password
    /// change the other devices must sign in again).
    async fn delete_sessions_except(&self, user: &str, keep_device: &str)
    -> Result<(), StoreError>;

    /// The settings blob and its version.
    async fn settings(&self, user: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError>;

    /// Replaces the settings blob if its version is still `expected`; returns the new
    /// version (`expected + 1`), or [`StoreError::VersionConflict`] with the current one.
    async fn put_settings(&self, user: &str, expected: i64, blob: &[u8])
    -> Result<i64, StoreError>;

    /// Stores a directory claim unless, counting live claims at `now`, its user has
    /// `per_user` or its address has `per_address` already; one transaction.
    async fn put_directory_claim(
        &self,
        claim: DirectoryClaimRow,
        now: i64,
        per_user: i64,
        per_address: i64,
    ) -> Result<ClaimOutcome, StoreError>;

    /// Deletes a claim (its mail could not be sent).
    async fn delete_directory_claim(&self, token_hash: &[u8]) -> Result<(), StoreError>;

    /// Confirms a claim in one transaction: takes the claim with this token hash if it
    /// is `user`'s and alive at `now`, publishes its certificate for its address
    /// (replacing whatever was there: proving the address again wins) and appends the
    /// publication to the transparency log. `None`, and nothing changed, if there is no
    /// such claim.
    async fn confirm_directory_claim(
        &self,
        token_hash: &[u8],
        user: &str,
        now: i64,
    ) -> Result<Option<DirectoryKey>, StoreError>;

    /// The entry for a normalised address.
    async fn directory_key(&self, address: &str) -> Result<Option<DirectoryKey>, StoreError>;

    /// Removes `user`'s entry for `address` and appends the removal to the transparency
    /// log, at `now`, in one transaction; whether there was one.
    async fn delete_directory_key(
        &self,
        user: &str,
        address: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes expired sessions, login states and directory claims, and security events
    /// older than `events_before`.
    async fn prune(&self, now: i64, events_before: i64) -> Result<(), StoreError>;

    // ------------------------------------------------------------ operations

    /// Answers if the database does (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Sessions alive at `now` (a gauge).
    async fn count_sessions(&self, now: i64) -> Result<i64, StoreError>;

    // ------------------------------------------------------------ transparency log

    /// Entries in the log.
    async fn log_size(&self) -> Result<u64, StoreError>;

    /// The hashes of these complete subtrees, in the same order; an error if one is not
    /// there (the log is smaller than asked).
    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError>;

    /// The bytes of entries `start..end` (fewer if the log is shorter), in order.
    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Stores a signed head unless one of its size is stored; the stored one.
    async fn put_log_head(&self, head: SignedHead) -> Result<SignedHead, StoreError>;

    /// The head of the largest size stored.
    async fn latest_log_head(&self) -> Result<Option<SignedHead>, StoreError>;

    /// Stored heads with sizes above `after`, in increasing size, at most `limit`.
    async fn log_heads(&self, after: u64, limit: u64) -> Result<Vec<SignedHead>, StoreError>;

    // ------------------------------------------------------------ security activity

    /// Records an event and keeps only the account's `keep` newest ones.
    async fn add_event(&self, event: NewEvent, keep: i64) -> Result<(), StoreError>;

    /// The account's events with ids above `after`, oldest first, at most `limit`.
    async fn events(&self, user: &str, after: i64, limit: i64)
    -> Result<Vec<EventRow>, StoreError>;
}

/// A store whose calls are timed into the metrics (`sealpost_store_call_seconds{op}`,
/// `sealpost_store_errors_total{op}`); the service wraps whatever store it is given.
pub mod metered;

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
