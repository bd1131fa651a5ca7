//! The SQLite file under a profile: connection settings and migrations.
//!
//! Settings: WAL journal with `synchronous=FULL`, so a committed transaction survives a
//! power cut and a killed process never leaves a half-written one; `secure_delete`, so a
//! deleted sealed value does not linger in free pages; foreign keys on.
//!
//! Migrations are numbered and forward-only. `PRAGMA user_version` is the number applied;
//! each runs in a transaction together with the version bump. A store newer than this
//! code is refused, never "repaired". Every table is `STRICT`, every column `NOT NULL`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::CoreError;

/// The vault's migrations. Index + 1 is the schema version it produces.
const VAULT_MIGRATIONS: &[&str] = &[
    // 1: the profile row, the two wraps of the identity key, and sealed secrets.
    "CREATE TABLE profile (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         profile_id  BLOB    NOT NULL CHECK (length(profile_id) = 16),
         user_name   TEXT    NOT NULL,
         created_at  INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE vault_wrap (
         kind        TEXT    PRIMARY KEY CHECK (kind IN ('password', 'recovery')),
         blob        BLOB    NOT NULL,
         updated_at  INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE secret (
         name        TEXT    PRIMARY KEY,
         value       BLOB    NOT NULL,
         updated_at  INTEGER NOT NULL
     ) STRICT;",
    // 2: the sync account of this device: public facts only (the session token and
    // everything secret live sealed in `secret`).
    "CREATE TABLE sync_account (
         id                 INTEGER PRIMARY KEY CHECK (id = 1),
         server_url         TEXT    NOT NULL,
         user_name          TEXT    NOT NULL,
         server_id          TEXT    NOT NULL,
         server_public_key  BLOB    NOT NULL CHECK (length(server_public_key) = 32),
         device_id          TEXT    NOT NULL,
         device_name        TEXT    NOT NULL
     ) STRICT;",
];

/// Opens (creating if asked) the vault database at `path` and brings its schema up to date.
pub fn open_vault(path: &Path, create: bool) -> Result<Connection, CoreError> {
    open_with_migrations(path, create, VAULT_MIGRATIONS)
}

/// Opens (creating if asked) a database of the profile at `path` with the profile's
/// settings (WAL, `synchronous=FULL`, `secure_delete`, foreign keys) and applies the
/// missing `migrations` (numbered by position, forward only; a file newer than them is
/// refused). The vault and the mail store both open this way.
pub(crate) fn open_with_migrations(
    path: &Path,
    create: bool,
    migrations: &[&str],
) -> Result<Connection, CoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, path, migrations)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), CoreError> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > known {
        return Err(CoreError::SchemaTooNew {
            path: path.to_owned(),
            found: current,
            known,
        });
    }
    for (version, sql) in (1..)
        .zip(migrations.iter())
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_sets_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sqlite3");
        let conn = open_vault(&path, true).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, VAULT_MIGRATIONS.len() as i64);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(conn);
        // Reopening applies nothing twice.
        open_vault(&path, false).unwrap();
    }

    #[test]
    fn tables_are_strict() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_vault(&dir.path().join("v.sqlite3"), true).unwrap();
        let err = conn
            .execute(
                "INSERT INTO secret (name, value, updated_at) VALUES ('n', 'text', 0)",
                [],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot store TEXT value in BLOB column"),
            "{err}"
        );
    }

    #[test]
    fn a_newer_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sqlite3");
        let conn = open_vault(&path, true).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            open_vault(&path, false),
            Err(CoreError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_missing_store_is_not_created_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_vault(&dir.path().join("absent.sqlite3"), false).is_err());
    }
}
