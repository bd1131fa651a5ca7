//! The shared store: PostgreSQL, for several server processes on one database.
//!
//! Every invariant holds with any number of server processes, because each is one
//! statement or one transaction in the database, never a read in Rust followed by a
//! write: the failed-login counter is charged by `UPDATE … WHERE failed_logins < $limit
//! RETURNING`, a login state is taken by `DELETE … RETURNING`, a server secret is put by
//! `INSERT … ON CONFLICT DO NOTHING` and then read back, settings are swapped by
//! `UPDATE … WHERE version = $expected RETURNING version`, and multi-row changes (a
//! device with its sessions, an account with its settings) are transactions. Default
//! isolation (READ COMMITTED) suffices: a conflicting `UPDATE` or `DELETE` waits for the
//! other transaction and re-checks its `WHERE` on the row as committed.
//!
//! Migrations are numbered and forward-only, recorded in a `schema_version` table, and
//! applied in one transaction under `pg_advisory_xact_lock`, so two processes starting at
//! once do not race; a database newer than this code is refused.
//!
//! Durability: commits wait for the WAL flush (`synchronous_commit` as the server has
//! it, `on` by default), except two kinds of write that are lazy on purpose, as in the
//! SQLite store: completing a login and discarding a failed one commit on connections
//! with `synchronous_commit = off`, so they reach the disk with the next flushed commit
//! (PostgreSQL's WAL is one sequence: a later flushed commit flushes them too) or within
//! the WAL writer's delay. A crash can lose only things that are safe to lose: the new
//! session (the device signs in again), the counter's reset (it stays higher, the safe
//! direction), and the deletion of a pending login that only its client could finish.
//! The charge of a login attempt is never lazy: it is flushed before KE2 is answered.
//!
//! Connections come from a deadpool-postgres pool **without TLS**: connect over
//! loopback or a unix socket (`host=/run/postgresql`). TLS to PostgreSQL is out of scope
//! for now, and a URL that asks for it (`sslmode=require`) is refused rather than
//! silently downgraded. Error messages name what failed, never the URL or its password.
//!
//! Expiry: a session or login state is alive while `now <= expires_at`; text columns
//! use the "C" collation so ordering (devices by id) is byte order, as in SQLite.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, Row};

use sealpost_transparency::tree::{Hash, NodeId};
use sealpost_transparency::{LogEntry, SignedHead};

use super::{
    Account, Charge, ClaimOutcome, CompletedLogin, Credentials, Device, DirectoryClaimRow,
    DirectoryKey, EventRow, LoginState, NewAccount, NewEvent, Session, Store, StoreError,
};

mod log;

/// Connections per store (per server process) unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long to wait for a free pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening one connection may take (also the connect timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long checking a returned connection may take.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Key of the advisory lock that serialises migrations (ASCII "sealpost" as an i64).
const MIGRATION_LOCK: i64 = 0x7365_616c_706f_7374;

/// The migrations. Index + 1 is the schema version each produces.
const MIGRATIONS: &[&str] = &[
    // 1: secrets, accounts with their settings, pending logins, devices and sessions.
    r#"CREATE TABLE server_secrets (
         name              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
         value             BYTEA  NOT NULL
     );
     CREATE TABLE accounts (
         user_name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
         record            BYTEA  NOT NULL,
         cloud_wrap        BYTEA  NOT NULL,
         recovery_wrap     BYTEA  NOT NULL,
         recovery_verifier BYTEA  NOT NULL,
         failed_logins     BIGINT NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
         created_at        BIGINT NOT NULL
     );
     CREATE TABLE settings (
         user_name         TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES accounts (user_name),
         version           BIGINT NOT NULL CHECK (version >= 1),
         blob              BYTEA  NOT NULL
     );
     CREATE TABLE login_states (
         id                BYTEA  NOT NULL PRIMARY KEY,
         user_name         TEXT COLLATE "C" NOT NULL,
         device_id         TEXT COLLATE "C" NOT NULL,
         device_name       TEXT   NOT NULL,
         state             BYTEA  NOT NULL,
         expires_at        BIGINT NOT NULL
     );
     CREATE INDEX login_states_by_expiry ON login_states (expires_at);
     CREATE TABLE devices (
         user_name         TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_name),
         device_id         TEXT COLLATE "C" NOT NULL,
         name              TEXT   NOT NULL,
         created_at        BIGINT NOT NULL,
         last_seen_at      BIGINT NOT NULL,
         PRIMARY KEY (user_name, device_id)
     );
     CREATE TABLE sessions (
         token_hash        BYTEA  NOT NULL PRIMARY KEY,
         user_name         TEXT COLLATE "C" NOT NULL,
         device_id         TEXT COLLATE "C" NOT NULL,
         created_at        BIGINT NOT NULL,
         expires_at        BIGINT NOT NULL,
         FOREIGN KEY (user_name, device_id)
             REFERENCES devices (user_name, device_id) ON DELETE CASCADE
     );
     CREATE INDEX sessions_by_device ON sessions (user_name, device_id);
     CREATE INDEX sessions_by_expiry ON sessions (expires_at);"#,
    // 2: the key directory: claims waiting for their mailed token, and published keys.
    r#"CREATE TABLE directory_claims (
         token_hash        BYTEA  NOT NULL PRIMARY KEY,
         user_name         TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_name),
         address           TEXT COLLATE "C" NOT NULL,
         cert              BYTEA  NOT NULL,
         expires_at        BIGINT NOT NULL
     );
     CREATE INDEX directory_claims_by_user ON directory_claims (user_name);
     CREATE INDEX directory_claims_by_address ON directory_claims (address);
     CREATE TABLE directory_keys (
         address           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
         user_name         TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_name),
         cert              BYTEA  NOT NULL,
         published_at      BIGINT NOT NULL
     );"#,
    // 3: the key directory's transparency log, and security events.
    log::MIGRATION,
];

/// The server's state in a PostgreSQL database shared by any number of server processes.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Connections whose commits do not wait for the WAL flush (`synchronous_commit =
    /// off`), for the writes that may be lost in a crash (see the module's doc).
    lazy: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool: its configuration holds the password.
        f.debug_struct("PostgresStore")
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db` or `host=… dbname=…`) with a
    /// pool of [`DEFAULT_POOL_SIZE`] connections and brings the schema up to date.
    ///
    /// Fails with [`StoreError::Backend`] if the URL is malformed or asks for TLS, the
    /// database cannot be reached, or its schema is newer than this server knows.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// As [`PostgresStore::connect`], with at most `pool_size` connections.
    pub async fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        // The parse error is not shown: it could quote part of the URL.
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL is malformed".into()))?;
        if matches!(config.get_ssl_mode(), SslMode::Require) {
            return Err(StoreError::Backend(
                "TLS to PostgreSQL is not supported yet: connect over loopback or a unix \
                 socket without sslmode=require"
                    .into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("sealpost-server");
        }
        let mut lazy_config = config.clone();
        let options = match config.get_options() {
            Some(o) => format!("{o} -c synchronous_commit=off"),
            None => "-c synchronous_commit=off".to_owned(),
        };
        lazy_config.options(&options);
        let store = Self {
            pool: pool(config, pool_size)?,
            lazy: pool(lazy_config, pool_size)?,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// A connection whose commits return before the WAL is flushed.
    async fn lazy_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.lazy.get().await.map_err(pool_error)
    }

    /// Applies the missing migrations in one transaction holding the migration lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version    BIGINT      NOT NULL PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM schema_version",
                &[],
            )
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        if current > known {
            return Err(StoreError::Backend(format!(
                "the database has schema version {current}, newer than this server knows \
                 ({known}); refusing to use it"
            )));
        }
        for (version, sql) in (1_i64..).zip(MIGRATIONS.iter()) {
            if version <= current {
                continue;
            }
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg)?;
        }
        if current < 3 {
            // Keys published before the log existed get their entries now, stamped with
            // the time of the migration.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            log::backfill(&tx, now).await?;
        }
        tx.commit().await.map_err(pg)
    }
}

/// A database error as the store reports it: the SQLSTATE and PostgreSQL's message, not
/// its DETAIL (which can quote row values); other errors with their causes (an I/O error,
/// an authentication failure), never the connection string.
/// A pool of at most `size` connections (opened when needed) with `config`.
fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(RECYCLE_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Backend(format!("cannot build the PostgreSQL pool: {e}")))
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL: {} ({})", db.message(), db.code().code());
    }
    let mut message = format!("PostgreSQL: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => StoreError::Backend(describe(&e)),
        PoolError::Timeout(what) => StoreError::Backend(format!(
            "PostgreSQL: timed out getting a connection ({what:?})"
        )),
        other => StoreError::Backend(format!("PostgreSQL pool: {other}")),
    }
}

fn account_from(r: &Row) -> Result<Account, tokio_postgres::Error> {
    Ok(Account {
        user: r.try_get(0)?,
        record: r.try_get(1)?,
        cloud_wrap: r.try_get(2)?,
        recovery_wrap: r.try_get(3)?,
        recovery_verifier: r.try_get(4)?,
        failed_logins: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

fn login_state_from(r: &Row) -> Result<LoginState, tokio_postgres::Error> {
    Ok(LoginState {
        user: r.try_get(0)?,
        device_id: r.try_get(1)?,
        device_name: r.try_get(2)?,
        state: r.try_get(3)?,
        expires_at: r.try_get(4)?,
    })
}

fn session_from(r: &Row) -> Result<Session, tokio_postgres::Error> {
    Ok(Session {
        token_hash: r.try_get(0)?,
        user: r.try_get(1)?,
        device_id: r.try_get(2)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT value FROM server_secrets WHERE name = $1")
            .await
            .map_err(pg)?;
        let row = client.query_opt(&stmt, &[&name]).await.map_err(pg)?;
        row.map(|r| r.try_get(0)).transpose().map_err(pg)
    }

    async fn put_server_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        // Two statements, not one transaction: the INSERT waits for a concurrent inserter
        // to commit, and the SELECT (a new snapshot under READ COMMITTED) then sees its row.
        let insert = client
            .prepare_cached(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .await
            .map_err(pg)?;
        client
            .execute(&insert, &[&name, &value])
            .await
            .map_err(pg)?;
        let select = client
            .prepare_cached("SELECT value FROM server_secrets WHERE name = $1")
            .await
            .map_err(pg)?;
        client
            .query_one(&select, &[&name])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)
    }

    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO accounts (user_name, record, cloud_wrap, recovery_wrap,
                                       recovery_verifier, failed_logins, created_at)
                 VALUES ($1, $2, $3, $4, $5, 0, $6)
                 ON CONFLICT (user_name) DO NOTHING",
            )
            .await
            .map_err(pg)?;
        let inserted = tx
            .execute(
                &insert,
                &[
                    &account.user,
                    &account.record,
                    &account.cloud_wrap,
                    &account.recovery_wrap,
                    &account.recovery_verifier,
                    &account.created_at,
                ],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(StoreError::AccountExists);
        }
        let settings = tx
            .prepare_cached("INSERT INTO settings (user_name, version, blob) VALUES ($1, 1, $2)")
            .await
            .map_err(pg)?;
        tx.execute(&settings, &[&account.user, &account.settings])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_name, record, cloud_wrap, recovery_wrap, recovery_verifier,
                        failed_logins, created_at
                 FROM accounts WHERE user_name = $1",
            )
            .await
            .map_err(pg)?;
        let row = client.query_opt(&stmt, &[&user]).await.map_err(pg)?;
        row.as_ref().map(account_from).transpose().map_err(pg)
    }

    async fn reset_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE accounts SET failed_logins = 0 WHERE user_name = $1")
            .await
            .map_err(pg)?;
        match client.execute(&stmt, &[&user]).await.map_err(pg)? {
            0 => Err(StoreError::NoAccount),
            _ => Ok(()),
        }
    }

    async fn replace_credentials(
        &self,
        user: &str,
        credentials: Credentials,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        // One statement, so one transaction; the counter is not touched.
        let stmt = client
            .prepare_cached("UPDATE accounts SET record = $2, cloud_wrap = $3 WHERE user_name = $1")
            .await
            .map_err(pg)?;
        let changed = client
            .execute(
                &stmt,
                &[&user, &credentials.record, &credentials.cloud_wrap],
            )
            .await
            .map_err(pg)?;
        match changed {
            0 => Err(StoreError::NoAccount),
            _ => Ok(()),
        }
    }

    async fn replace_recovery(
        &self,
        user: &str,
        recovery_wrap: &[u8],
        recovery_verifier: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        // One statement: the wrap and the verifier of one code change together.
        let stmt = client
            .prepare_cached(
                "UPDATE accounts SET recovery_wrap = $2, recovery_verifier = $3
                 WHERE user_name = $1",
            )
            .await
            .map_err(pg)?;
        let changed = client
            .execute(&stmt, &[&user, &recovery_wrap, &recovery_verifier])
            .await
            .map_err(pg)?;
        match changed {
            0 => Err(StoreError::NoAccount),
            _ => Ok(()),
        }
    }

    async fn charge_login_and_stage(
        &self,
        limit: i64,
        id: &[u8],
        state: LoginState,
    ) -> Result<Charge, StoreError> {
        let client = self.client().await?;
        // One statement, one round trip: the charge, and the state only if it was charged.
        let stmt = client
            .prepare_cached(
                "WITH charged AS (
                     UPDATE accounts SET failed_logins = failed_logins + 1
                     WHERE user_name = $1 AND failed_logins < $2
                     RETURNING failed_logins
                 ), staged AS (
                     INSERT INTO login_states
                         (id, user_name, device_id, device_name, state, expires_at)
                     SELECT $3, $1, $4, $5, $6, $7 FROM charged
                 )
                 SELECT (SELECT failed_logins FROM charged),
                        EXISTS (SELECT 1 FROM accounts WHERE user_name = $1)",
            )
            .await
            .map_err(pg)?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &state.user,
                    &limit,
                    &id,
                    &state.device_id,
                    &state.device_name,
                    &state.state,
                    &state.expires_at,
                ],
            )
            .await
            .map_err(pg)?;
        let charged: Option<i64> = row.try_get(0).map_err(pg)?;
        let exists: bool = row.try_get(1).map_err(pg)?;
        Ok(match (charged, exists) {
            (Some(attempts), _) => Charge::Charged { attempts },
            (None, true) => Charge::Locked,
            (None, false) => Charge::NoAccount,
        })
    }

    async fn login_state(&self, id: &[u8], now: i64) -> Result<Option<LoginState>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_name, device_id, device_name, state, expires_at
                 FROM login_states WHERE id = $1 AND expires_at >= $2",
            )
            .await
            .map_err(pg)?;
        let row = client.query_opt(&stmt, &[&id, &now]).await.map_err(pg)?;
        row.as_ref().map(login_state_from).transpose().map_err(pg)
    }

    async fn discard_login_state(&self, id: &[u8]) -> Result<bool, StoreError> {
        let client = self.lazy_client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM login_states WHERE id = $1")
            .await
            .map_err(pg)?;
        Ok(client.execute(&stmt, &[&id]).await.map_err(pg)? > 0)
    }

    async fn complete_login(
        &self,
        id: &[u8],
        device_name: &str,
        session: Session,
    ) -> Result<Option<CompletedLogin>, StoreError> {
        let client = self.lazy_client().await?;
        // One statement, one round trip. A concurrent DELETE of the same pending login
        // waits for ours and then finds nothing, so its whole statement does nothing.
        // The session's foreign key to the device is checked at the end of the statement,
        // after the device row is in.
        let stmt = client
            .prepare_cached(
                "WITH taken AS (
                     DELETE FROM login_states
                     WHERE id = $1 AND expires_at >= $2 AND user_name = $3 AND device_id = $4
                     RETURNING user_name
                 ), before AS (
                     SELECT a.failed_logins FROM accounts a JOIN taken t USING (user_name)
                 ), reset AS (
                     UPDATE accounts a SET failed_logins = 0 FROM taken t
                     WHERE a.user_name = t.user_name
                     RETURNING a.cloud_wrap
                 ), device AS (
                     INSERT INTO devices (user_name, device_id, name, created_at, last_seen_at)
                     SELECT user_name, $4, $5, $2, $2 FROM taken
                     ON CONFLICT (user_name, device_id)
                     DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at
                     RETURNING (xmax = 0) AS created
                 ), session AS (
                     INSERT INTO sessions (token_hash, user_name, device_id, created_at, expires_at)
                     SELECT $6, user_name, $4, $2, $7 FROM taken
                 )
                 SELECT b.failed_logins, r.cloud_wrap, s.version, s.blob, d.created
                 FROM before b, reset r, settings s, device d
                 WHERE s.user_name = $3",
            )
            .await
            .map_err(pg)?;
        let Some(row) = client
            .query_opt(
                &stmt,
                &[
                    &id,
                    &session.created_at,
                    &session.user,
                    &session.device_id,
                    &device_name,
                    &session.token_hash,
                    &session.expires_at,
                ],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let before: i64 = row.try_get(0).map_err(pg)?;
        Ok(Some(CompletedLogin {
            failed_attempts: before.saturating_sub(1).max(0),
            cloud_wrap: row.try_get(1).map_err(pg)?,
            settings_version: row.try_get(2).map_err(pg)?,
            settings: row.try_get(3).map_err(pg)?,
            new_device: row.try_get(4).map_err(pg)?,
        }))
    }

    async fn put_login_state(&self, id: &[u8], state: LoginState) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO login_states (id, user_name, device_id, device_name, state, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(pg)?;
        client
            .execute(
                &stmt,
                &[
                    &id,
                    &state.user,
                    &state.device_id,
                    &state.device_name,
                    &state.state,
                    &state.expires_at,
                ],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn take_login_state(
        &self,
        id: &[u8],
        now: i64,
    ) -> Result<Option<LoginState>, StoreError> {
        let client = self.client().await?;
        // A concurrent DELETE of the same row waits for ours and then finds nothing.
        let stmt = client
            .prepare_cached(
                "DELETE FROM login_states WHERE id = $1
                 RETURNING user_name, device_id, device_name, state, expires_at",
            )
            .await
            .map_err(pg)?;
        let Some(row) = client.query_opt(&stmt, &[&id]).await.map_err(pg)? else {
            return Ok(None);
        };
        let state = login_state_from(&row).map_err(pg)?;
        Ok(Some(state).filter(|s| now <= s.expires_at))
    }

    async fn devices(&self, user: &str) -> Result<Vec<Device>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                r#"SELECT device_id, name, created_at, last_seen_at FROM devices
                   WHERE user_name = $1 ORDER BY device_id COLLATE "C""#,
            )
            .await
            .map_err(pg)?;
        let rows = client.query(&stmt, &[&user]).await.map_err(pg)?;
        rows.iter()
            .map(|r| {
                Ok(Device {
                    device_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    last_seen_at: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(pg)
    }

    async fn revoke_device(&self, user: &str, device_id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Explicit, not only through the foreign key's cascade. A session inserted
        // concurrently holds a lock on the device row, so the device DELETE waits for it
        // and its cascade then removes it too.
        let sessions = tx
            .prepare_cached("DELETE FROM sessions WHERE user_name = $1 AND device_id = $2")
            .await
            .map_err(pg)?;
        tx.execute(&sessions, &[&user, &device_id])
            .await
            .map_err(pg)?;
        let device = tx
            .prepare_cached("DELETE FROM devices WHERE user_name = $1 AND device_id = $2")
            .await
            .map_err(pg)?;
        let removed = tx
            .execute(&device, &[&user, &device_id])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(removed > 0)
    }

    async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT s.token_hash, s.user_name, s.device_id, s.created_at, s.expires_at
                 FROM sessions s
                 JOIN devices d ON d.user_name = s.user_name AND d.device_id = s.device_id
                 WHERE s.token_hash = $1 AND s.expires_at >= $2",
            )
            .await
            .map_err(pg)?;
        let row = client
            .query_opt(&stmt, &[&token_hash, &now])
            .await
            .map_err(pg)?;
        row.as_ref().map(session_from).transpose().map_err(pg)
    }

    async fn delete_sessions_except(
        &self,
        user: &str,
        keep_device: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM sessions WHERE user_name = $1 AND device_id <> $2")
            .await
            .map_err(pg)?;
        client
            .execute(&stmt, &[&user, &keep_device])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn settings(&self, user: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT version, blob FROM settings WHERE user_name = $1")
            .await
            .map_err(pg)?;
        let row = client.query_opt(&stmt, &[&user]).await.map_err(pg)?;
        row.map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(pg)
    }

    async fn put_settings(
        &self,
        user: &str,
        expected: i64,
        blob: &[u8],
    ) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let swap = client
            .prepare_cached(
                "UPDATE settings SET version = version + 1, blob = $3
                 WHERE user_name = $1 AND version = $2
                 RETURNING version",
            )
            .await
            .map_err(pg)?;
        if let Some(row) = client
            .query_opt(&swap, &[&user, &expected, &blob])
            .await
            .map_err(pg)?
        {
            return row.try_get(0).map_err(pg);
        }
        let current = client
            .prepare_cached("SELECT version FROM settings WHERE user_name = $1")
            .await
            .map_err(pg)?;
        match client.query_opt(&current, &[&user]).await.map_err(pg)? {
            Some(row) => Err(StoreError::VersionConflict {
                current: row.try_get(0).map_err(pg)?,
            }),
            None => Err(StoreError::NoAccount),
        }
    }

    async fn put_directory_claim(
        &self,
        claim: DirectoryClaimRow,
        now: i64,
        per_user: i64,
        per_address: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Counting and inserting must not interleave with another claim by the same user
        // or for the same address: the account row and a lock keyed by the address
        // serialise them (released at commit).
        let account = tx
            .prepare_cached("SELECT 1 FROM accounts WHERE user_name = $1 FOR UPDATE")
            .await
            .map_err(pg)?;
        if tx
            .query_opt(&account, &[&claim.user])
            .await
            .map_err(pg)?
            .is_none()
        {
            return Err(StoreError::NoAccount);
        }
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&claim.address],
        )
        .await
        .map_err(pg)?;
        let count = tx
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE user_name = $1),
                        count(*) FILTER (WHERE address = $2)
                 FROM directory_claims
                 WHERE (user_name = $1 OR address = $2) AND expires_at >= $3",
            )
            .await
            .map_err(pg)?;
        let row = tx
            .query_one(&count, &[&claim.user, &claim.address, &now])
            .await
            .map_err(pg)?;
        let (by_user, by_address): (i64, i64) =
            (row.try_get(0).map_err(pg)?, row.try_get(1).map_err(pg)?);
        if by_user >= per_user {
            return Ok(ClaimOutcome::TooManyForUser);
        }
        if by_address >= per_address {
            return Ok(ClaimOutcome::TooManyForAddress);
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO directory_claims (token_hash, user_name, address, cert, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(pg)?;
        tx.execute(
            &insert,
            &[
                &claim.token_hash,
                &claim.user,
                &claim.address,
                &claim.cert,
                &claim.expires_at,
            ],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(ClaimOutcome::Stored)
    }

    async fn delete_directory_claim(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM directory_claims WHERE token_hash = $1")
            .await
            .map_err(pg)?;
        client.execute(&stmt, &[&token_hash]).await.map_err(pg)?;
        Ok(())
    }

    async fn confirm_directory_claim(
        &self,
        token_hash: &[u8],
        user: &str,
        now: i64,
    ) -> Result<Option<DirectoryKey>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let take = tx
            .prepare_cached(
                "DELETE FROM directory_claims
                 WHERE token_hash = $1 AND user_name = $2 AND expires_at >= $3
                 RETURNING address, cert",
            )
            .await
            .map_err(pg)?;
        let Some(row) = tx
            .query_opt(&take, &[&token_hash, &user, &now])
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let (address, cert): (String, Vec<u8>) =
            (row.try_get(0).map_err(pg)?, row.try_get(1).map_err(pg)?);
        let time = u64::try_from(now).unwrap_or(0);
        let log_index = log::append(&tx, &LogEntry::publish(&address, &cert, time)).await?;
        let publish = tx
            .prepare_cached(
                "INSERT INTO directory_keys (address, user_name, cert, published_at, log_index)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (address) DO UPDATE SET user_name = excluded.user_name,
                     cert = excluded.cert, published_at = excluded.published_at,
                     log_index = excluded.log_index",
            )
            .await
            .map_err(pg)?;
        tx.execute(
            &publish,
            &[&address, &user, &cert, &now, &log::to_i64(log_index)?],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(DirectoryKey {
            address,
            user: user.to_owned(),
            cert,
            published_at: now,
            log_index,
        }))
    }

    async fn directory_key(&self, address: &str) -> Result<Option<DirectoryKey>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT address, user_name, cert, published_at, log_index FROM directory_keys
                 WHERE address = $1 AND log_index >= 0",
            )
            .await
            .map_err(pg)?;
        let Some(row) = client.query_opt(&stmt, &[&address]).await.map_err(pg)? else {
            return Ok(None);
        };
        Ok(Some(DirectoryKey {
            address: row.try_get(0).map_err(pg)?,
            user: row.try_get(1).map_err(pg)?,
            cert: row.try_get(2).map_err(pg)?,
            published_at: row.try_get(3).map_err(pg)?,
            log_index: u64::try_from(row.try_get::<_, i64>(4).map_err(pg)?).unwrap_or(0),
        }))
    }

    async fn delete_directory_key(
        &self,
        user: &str,
        address: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let stmt = tx
            .prepare_cached("DELETE FROM directory_keys WHERE address = $1 AND user_name = $2")
            .await
            .map_err(pg)?;
        let deleted = tx.execute(&stmt, &[&address, &user]).await.map_err(pg)? > 0;
        if deleted {
            let time = u64::try_from(now).unwrap_or(0);
            log::append(&tx, &LogEntry::unpublish(address, time)).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(deleted)
    }

    async fn prune(&self, now: i64, events_before: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        let events = client
            .prepare_cached("DELETE FROM security_events WHERE at < $1")
            .await
            .map_err(pg)?;
        client
            .execute(&events, &[&events_before])
            .await
            .map_err(pg)?;
        let sessions = client
            .prepare_cached("DELETE FROM sessions WHERE expires_at < $1")
            .await
            .map_err(pg)?;
        client.execute(&sessions, &[&now]).await.map_err(pg)?;
        let states = client
            .prepare_cached("DELETE FROM login_states WHERE expires_at < $1")
            .await
            .map_err(pg)?;
        client.execute(&states, &[&now]).await.map_err(pg)?;
        let claims = client
            .prepare_cached("DELETE FROM directory_claims WHERE expires_at < $1")
            .await
            .map_err(pg)?;
        client.execute(&claims, &[&now]).await.map_err(pg)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg)?;
        Ok(())
    }

    async fn count_sessions(&self, now: i64) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM sessions WHERE expires_at >= $1")
            .await
            .map_err(pg)?;
        client
            .query_one(&stmt, &[&now])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)
    }

    async fn log_size(&self) -> Result<u64, StoreError> {
        log::size(&self.client().await?).await
    }

    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        log::nodes(&self.client().await?, ids).await
    }

    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        log::entries(&self.client().await?, start, end).await
    }

    async fn put_log_head(&self, head: SignedHead) -> Result<SignedHead, StoreError> {
        log::put_head(&self.client().await?, &head).await
    }

    async fn latest_log_head(&self) -> Result<Option<SignedHead>, StoreError> {
        log::latest_head(&self.client().await?).await
    }

    async fn log_heads(&self, after: u64, limit: u64) -> Result<Vec<SignedHead>, StoreError> {
        log::heads(&self.client().await?, after, limit).await
    }

    async fn add_event(&self, event: NewEvent, keep: i64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        log::add_event(&tx, &event, keep).await?;
        tx.commit().await.map_err(pg)
    }

    async fn events(
        &self,
        user: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        log::events(&self.client().await?, user, after, limit).await
    }
}
