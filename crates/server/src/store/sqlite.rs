//! The embedded store: one SQLite file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit that returned is on disk
//! (the failed-login counter and replaced credentials must survive a crash or a power
//! cut; `NORMAL` would only lose the last commits on power loss, but those are exactly
//! the ones an attacker times a crash against). The price is one fsync per commit:
//! `benches/store.rs` measures it against `NORMAL`. Foreign keys on, a busy timeout so
//! several processes on one file wait for each other instead of failing.
//!
//! Schema: every table `STRICT`, every column `NOT NULL`. Migrations are numbered and
//! forward-only; `PRAGMA user_version` is the number applied. They run inside one
//! `BEGIN IMMEDIATE` transaction, so two processes opening a new file at once do not
//! race; a file newer than this code is refused, never "repaired".
//!
//! Several processes may share the file on one machine (WAL needs shared memory, so not
//! over a network file system).
//!
//! Concurrency: rusqlite is synchronous, so every call runs in
//! [`tokio::task::spawn_blocking`] on one of a few connections, each behind a
//! [`std::sync::Mutex`] that is taken inside the blocking task (never across an
//! `.await`). Writes go to the one writer connection, in `BEGIN IMMEDIATE` transactions
//! (the write lock is taken before anything is read, so a read-modify-write cannot be
//! overtaken by another process); plain reads go to reader connections that are
//! `query_only`. Every write is an explicit transaction whose commit error is reported.
//!
//! Expiry: a session or login state is alive while `now <= expires_at` ("Unix seconds
//! after which the state is useless"), and [`Store::prune`] deletes the others.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};

use super::{
    Account, Charge, Credentials, Device, LoginState, NewAccount, Session, Store, StoreError,
};

/// How long a statement waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reader connections per store, beside the one writer.
const READERS: usize = 4;

/// The migrations. Index + 1 is the schema version each produces.
const MIGRATIONS: &[&str] = &[
    // 1: secrets, accounts with their settings, pending logins, devices and sessions.
    "CREATE TABLE server_secrets (
         name              TEXT    NOT NULL PRIMARY KEY,
         value             BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE accounts (
         user_name         TEXT    NOT NULL PRIMARY KEY,
         record            BLOB    NOT NULL,
         cloud_wrap        BLOB    NOT NULL,
         recovery_wrap     BLOB    NOT NULL,
         recovery_verifier BLOB    NOT NULL,
         failed_logins     INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
         created_at        INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE settings (
         user_name         TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (user_name),
         version           INTEGER NOT NULL CHECK (version >= 1),
         blob              BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE login_states (
         id                BLOB    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL,
         device_id         TEXT    NOT NULL,
         device_name       TEXT    NOT NULL,
         state             BLOB    NOT NULL,
         expires_at        INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX login_states_by_expiry ON login_states (expires_at);
     CREATE TABLE devices (
         user_name         TEXT    NOT NULL REFERENCES accounts (user_name),
         device_id         TEXT    NOT NULL,
         name              TEXT    NOT NULL,
         created_at        INTEGER NOT NULL,
         last_seen_at      INTEGER NOT NULL,
         PRIMARY KEY (user_name, device_id)
     ) STRICT;
     CREATE TABLE sessions (
         token_hash        BLOB    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL,
         device_id         TEXT    NOT NULL,
         created_at        INTEGER NOT NULL,
         expires_at        INTEGER NOT NULL,
         FOREIGN KEY (user_name, device_id)
             REFERENCES devices (user_name, device_id) ON DELETE CASCADE
     ) STRICT;
     CREATE INDEX sessions_by_device ON sessions (user_name, device_id);
     CREATE INDEX sessions_by_expiry ON sessions (expires_at);",
];

/// The server's state in one SQLite file (the embedded, single-machine default).
///
/// Several `SqliteStore`s (or server processes) may open the same file; every
/// [`Store`] invariant holds across them.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.inner.readers.len())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    ///
    /// Fails with [`StoreError::Backend`] if the file cannot be opened, is not a
    /// database, or has a schema newer than this server knows.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .db_at("opening the file")?;
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .db_at("setting the busy timeout")?;
        enable_wal(&writer)?;
        writer
            .pragma_update(None, "synchronous", "FULL")
            .db_at("setting synchronous")?;
        writer
            .pragma_update(None, "foreign_keys", "ON")
            .db_at("enabling foreign keys")?;
        migrate(&mut writer)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .db_at("opening a reader")?;
            reader
                .busy_timeout(BUSY_TIMEOUT)
                .db_at("setting the busy timeout")?;
            reader
                .pragma_update(None, "query_only", "ON")
                .db_at("making a reader query-only")?;
            // A reader may be the last connection to close, which checkpoints the WAL.
            reader
                .pragma_update(None, "synchronous", "FULL")
                .db_at("setting synchronous")?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection, on a
    /// blocking thread. `f` returning an error rolls the transaction back.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let value = f(&tx)?;
            tx.commit().db()?;
            Ok(value)
        })
        .await
    }

    /// Runs the read-only `f` on a reader connection, on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let conn = inner.reader();
            f(&conn)
        })
        .await
    }
}

impl Inner {
    /// A free reader if there is one, else waits for one (round robin); the writer if
    /// there are no readers.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Some(reader) = self.readers.get(start.wrapping_add(i) % n) {
                match reader.try_lock() {
                    Ok(guard) => return guard,
                    Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
        }
        match self.readers.get(start % n.max(1)) {
            Some(reader) => lock(reader),
            None => lock(&self.writer),
        }
    }
}

/// Locks a connection. A poisoned lock means a panic inside a closure; rusqlite's
/// `Transaction` rolled back on unwind, so the connection is still sound.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run_blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("a SQLite task failed: {e}")))?
}

/// Switches the file to WAL (a persistent setting). On a new file that another process
/// is opening too, SQLite can answer "busy" without consulting the busy handler, so
/// this retries until [`BUSY_TIMEOUT`].
fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::Backend(format!(
                    "SQLite refused WAL mode (journal_mode is {mode})"
                )));
            }
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).db_at("switching to WAL"),
        }
    }
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db_at("locking the schema")?;
    let current: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .db_at("reading the schema version")?;
    let applied = usize::try_from(current).map_err(|_| {
        StoreError::Backend(format!(
            "the database has an invalid schema version {current}"
        ))
    })?;
    if current > known {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this server knows \
             ({known}); refusing to open it"
        )));
    }
    for sql in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(sql).db_at("migrating")?;
    }
    tx.pragma_update(None, "user_version", known)
        .db_at("migrating")?;
    tx.commit().db_at("migrating")
}

/// `rusqlite::Result` into the store's error, without blob contents (SQLite's messages
/// name tables and constraints, never values).
trait Db<T> {
    fn db(self) -> Result<T, StoreError>;

    /// With the step that failed, for the errors of opening and migrating.
    fn db_at(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(format!("SQLite: {e}")))
    }

    fn db_at(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(format!("SQLite ({what}): {e}")))
    }
}

const ACCOUNT_COLUMNS: &str = "user_name, record, cloud_wrap, recovery_wrap, recovery_verifier, \
                               failed_logins, created_at";

fn account_from(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user: r.get(0)?,
        record: r.get(1)?,
        cloud_wrap: r.get(2)?,
        recovery_wrap: r.get(3)?,
        recovery_verifier: r.get(4)?,
        failed_logins: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn account_exists(c: &Connection, user: &str) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM accounts WHERE user_name = ?1")
        .db()?
        .exists(params![user])
        .db()
}

#[async_trait]
impl Store for SqliteStore {
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .db()?
                .query_row(params![name], |r| r.get(0))
                .optional()
                .db()
        })
        .await
    }

    async fn put_server_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO server_secrets (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .db()?
            .execute(params![name, value])
            .db()?;
            tx.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .db()?
                .query_row(params![name], |r| r.get(0))
                .db()
        })
        .await
    }

    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
        self.write(move |tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO accounts (user_name, record, cloud_wrap, recovery_wrap,
                                           recovery_verifier, failed_logins, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
                     ON CONFLICT (user_name) DO NOTHING",
                )
                .db()?
                .execute(params![
                    account.user,
                    account.record,
                    account.cloud_wrap,
                    account.recovery_wrap,
                    account.recovery_verifier,
                    account.created_at,
                ])
                .db()?;
            if inserted == 0 {
                return Err(StoreError::AccountExists);
            }
            tx.prepare_cached("INSERT INTO settings (user_name, version, blob) VALUES (?1, 1, ?2)")
                .db()?
                .execute(params![account.user, account.settings])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_name = ?1"
            ))
            .db()?
            .query_row(params![user], account_from)
            .optional()
            .db()
        })
        .await
    }

    async fn charge_login(&self, user: &str, limit: i64) -> Result<Charge, StoreError> {
        let user = user.to_owned();
        self.write(move |tx| {
            // One statement: the check against the limit and the increment cannot be
            // separated by another writer.
            let charged: Option<i64> = tx
                .prepare_cached(
                    "UPDATE accounts SET failed_logins = failed_logins + 1
                     WHERE user_name = ?1 AND failed_logins < ?2
                     RETURNING failed_logins",
                )
                .db()?
                .query_row(params![user, limit], |r| r.get(0))
                .optional()
                .db()?;
            Ok(match charged {
                Some(attempts) => Charge::Charged { attempts },
                None if account_exists(tx, &user)? => Charge::Locked,
                None => Charge::NoAccount,
            })
        })
        .await
    }

    async fn login_succeeded(&self, user: &str) -> Result<i64, StoreError> {
        let user = user.to_owned();
        self.write(move |tx| {
            let before: i64 = tx
                .prepare_cached("SELECT failed_logins FROM accounts WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| r.get(0))
                .optional()
                .db()?
                .ok_or(StoreError::NoAccount)?;
            tx.prepare_cached("UPDATE accounts SET failed_logins = 0 WHERE user_name = ?1")
                .db()?
                .execute(params![user])
                .db()?;
            Ok(before.saturating_sub(1).max(0))
        })
        .await
    }

    async fn reset_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let user = user.to_owned();
        self.write(move |tx| {
            let changed = tx
                .prepare_cached("UPDATE accounts SET failed_logins = 0 WHERE user_name = ?1")
                .db()?
                .execute(params![user])
                .db()?;
            if changed == 0 {
                return Err(StoreError::NoAccount);
            }
            Ok(())
        })
        .await
    }

    async fn replace_credentials(
        &self,
        user: &str,
        credentials: Credentials,
    ) -> Result<(), StoreError> {
        let user = user.to_owned();
        self.write(move |tx| {
            let (recovery_wrap, recovery_verifier) = credentials.recovery.unzip();
            let changed = tx
                .prepare_cached(
                    "UPDATE accounts SET record = ?2, cloud_wrap = ?3,
                         recovery_wrap = coalesce(?4, recovery_wrap),
                         recovery_verifier = coalesce(?5, recovery_verifier)
                     WHERE user_name = ?1",
                )
                .db()?
                .execute(params![
                    user,
                    credentials.record,
                    credentials.cloud_wrap,
                    recovery_wrap,
                    recovery_verifier,
                ])
                .db()?;
            if changed == 0 {
                return Err(StoreError::NoAccount);
            }
            Ok(())
        })
        .await
    }

    async fn put_login_state(&self, id: &[u8], state: LoginState) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO login_states (id, user_name, device_id, device_name, state, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .db()?
            .execute(params![
                id,
                state.user,
                state.device_id,
                state.device_name,
                state.state,
                state.expires_at,
            ])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn take_login_state(
        &self,
        id: &[u8],
        now: i64,
    ) -> Result<Option<LoginState>, StoreError> {
        let id = id.to_vec();
        self.write(move |tx| {
            // Deleted whether or not it has expired: an expired state is useless anyway.
            let taken = tx
                .prepare_cached(
                    "DELETE FROM login_states WHERE id = ?1
                     RETURNING user_name, device_id, device_name, state, expires_at",
                )
                .db()?
                .query_row(params![id], |r| {
                    Ok(LoginState {
                        user: r.get(0)?,
                        device_id: r.get(1)?,
                        device_name: r.get(2)?,
                        state: r.get(3)?,
                        expires_at: r.get(4)?,
                    })
                })
                .optional()
                .db()?;
            Ok(taken.filter(|s| now <= s.expires_at))
        })
        .await
    }

    async fn upsert_device(
        &self,
        user: &str,
        device_id: &str,
        name: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (user, device_id, name) = (user.to_owned(), device_id.to_owned(), name.to_owned());
        self.write(move |tx| {
            if !account_exists(tx, &user)? {
                return Err(StoreError::NoAccount);
            }
            tx.prepare_cached(
                "INSERT INTO devices (user_name, device_id, name, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (user_name, device_id)
                 DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at",
            )
            .db()?
            .execute(params![user, device_id, name, now])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn devices(&self, user: &str) -> Result<Vec<Device>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            // TEXT compares with BINARY collation: byte order, like PostgreSQL's "C".
            c.prepare_cached(
                "SELECT device_id, name, created_at, last_seen_at FROM devices
                 WHERE user_name = ?1 ORDER BY device_id",
            )
            .db()?
            .query_map(params![user], |r| {
                Ok(Device {
                    device_id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                })
            })
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()
        })
        .await
    }

    async fn revoke_device(&self, user: &str, device_id: &str) -> Result<bool, StoreError> {
        let (user, device_id) = (user.to_owned(), device_id.to_owned());
        self.write(move |tx| {
            // Explicit, not only through the foreign key's cascade.
            tx.prepare_cached("DELETE FROM sessions WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .execute(params![user, device_id])
                .db()?;
            let removed = tx
                .prepare_cached("DELETE FROM devices WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .execute(params![user, device_id])
                .db()?;
            Ok(removed > 0)
        })
        .await
    }

    /// Fails with [`StoreError::Backend`] if the device is not signed in (never was, or
    /// was revoked meanwhile): a session must not outlive its device.
    async fn create_session(&self, session: Session) -> Result<(), StoreError> {
        self.write(move |tx| {
            let device_exists = tx
                .prepare_cached("SELECT 1 FROM devices WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .exists(params![session.user, session.device_id])
                .db()?;
            if !device_exists {
                return Err(StoreError::Backend(
                    "the session's device is not signed in (revoked meanwhile?)".into(),
                ));
            }
            tx.prepare_cached(
                "INSERT INTO sessions (token_hash, user_name, device_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .db()?
            .execute(params![
                session.token_hash,
                session.user,
                session.device_id,
                session.created_at,
                session.expires_at,
            ])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT s.token_hash, s.user_name, s.device_id, s.created_at, s.expires_at
                 FROM sessions s
                 JOIN devices d ON d.user_name = s.user_name AND d.device_id = s.device_id
                 WHERE s.token_hash = ?1 AND s.expires_at >= ?2",
            )
            .db()?
            .query_row(params![token_hash, now], |r| {
                Ok(Session {
                    token_hash: r.get(0)?,
                    user: r.get(1)?,
                    device_id: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            })
            .optional()
            .db()
        })
        .await
    }

    async fn delete_sessions_except(
        &self,
        user: &str,
        keep_device: &str,
    ) -> Result<(), StoreError> {
        let (user, keep_device) = (user.to_owned(), keep_device.to_owned());
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM sessions WHERE user_name = ?1 AND device_id <> ?2")
                .db()?
                .execute(params![user, keep_device])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn settings(&self, user: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT version, blob FROM settings WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()
        })
        .await
    }

    async fn put_settings(
        &self,
        user: &str,
        expected: i64,
        blob: &[u8],
    ) -> Result<i64, StoreError> {
        let (user, blob) = (user.to_owned(), blob.to_vec());
        self.write(move |tx| {
            let new: Option<i64> = tx
                .prepare_cached(
                    "UPDATE settings SET version = version + 1, blob = ?3
                     WHERE user_name = ?1 AND version = ?2
                     RETURNING version",
                )
                .db()?
                .query_row(params![user, expected, blob], |r| r.get(0))
                .optional()
                .db()?;
            if let Some(version) = new {
                return Ok(version);
            }
            let current: Option<i64> = tx
                .prepare_cached("SELECT version FROM settings WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| r.get(0))
                .optional()
                .db()?;
            Err(match current {
                Some(current) => StoreError::VersionConflict { current },
                None => StoreError::NoAccount,
            })
        })
        .await
    }

    async fn prune(&self, now: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")
                .db()?
                .execute(params![now])
                .db()?;
            tx.prepare_cached("DELETE FROM login_states WHERE expires_at < ?1")
                .db()?
                .execute(params![now])
                .db()?;
            Ok(())
        })
        .await
    }
}
