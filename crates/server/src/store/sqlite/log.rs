//! The SQLite store's transparency log and security events: schema 4 and the statements.
//! An append runs inside the writer's `BEGIN IMMEDIATE` transaction, which already holds
//! the file's write lock, so appends from several processes form one sequence.

use rusqlite::{Connection, OptionalExtension, params};
use sealpost_transparency::tree::{Hash, NodeId, append_plan, appended_nodes};
use sealpost_transparency::{LogEntry, SignedHead};

use super::Db;
use crate::store::{EventRow, NewEvent, StoreError};

/// Schema 4: the log (its size, entries, complete subtrees and signed heads), each
/// directory key's entry, and security events.
pub(super) const MIGRATION: &str = "
     CREATE TABLE log_size (
         id                INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
         size              INTEGER NOT NULL CHECK (size >= 0)
     ) STRICT;
     INSERT INTO log_size (id, size) VALUES (0, 0);
     CREATE TABLE log_entries (
         idx               INTEGER NOT NULL PRIMARY KEY,
         entry             BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE log_nodes (
         level             INTEGER NOT NULL,
         idx               INTEGER NOT NULL,
         hash              BLOB    NOT NULL,
         PRIMARY KEY (level, idx)
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE log_heads (
         size              INTEGER NOT NULL PRIMARY KEY,
         time              INTEGER NOT NULL,
         root              BLOB    NOT NULL,
         signature         BLOB    NOT NULL
     ) STRICT;
     ALTER TABLE directory_keys ADD COLUMN log_index INTEGER NOT NULL DEFAULT -1;
     CREATE TABLE security_events (
         id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
         user_name         TEXT    NOT NULL REFERENCES accounts (user_name),
         at                INTEGER NOT NULL,
         kind              TEXT    NOT NULL,
         device_id         TEXT    NOT NULL,
         details           BLOB    NOT NULL
     ) STRICT;
     CREATE INDEX security_events_by_user ON security_events (user_name, id);
     CREATE INDEX security_events_by_time ON security_events (at);";

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend(format!("negative log value {v}")))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("log value {v} too large")))
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored log hash is not 32 bytes".into()))
}

/// Appends `entry` inside the caller's write transaction; its index.
pub(super) fn append(c: &Connection, entry: &LogEntry) -> Result<u64, StoreError> {
    let size = size(c)?;
    let siblings = nodes(c, &append_plan(size))?;
    let new = appended_nodes(size, entry.leaf_hash(), &siblings)
        .ok_or_else(|| StoreError::Backend("the log's subtrees are incomplete".into()))?;
    let at = to_i64(size)?;
    c.prepare_cached("INSERT INTO log_entries (idx, entry) VALUES (?1, ?2)")
        .db()?
        .execute(params![at, entry.encode().as_slice()])
        .db()?;
    let mut insert = c
        .prepare_cached("INSERT INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
        .db()?;
    for (id, hash) in new {
        insert
            .execute(params![id.level, to_i64(id.index)?, hash.as_slice()])
            .db()?;
    }
    c.prepare_cached("UPDATE log_size SET size = size + 1 WHERE id = 0")
        .db()?
        .execute([])
        .db()?;
    Ok(size)
}

/// Appends a publication for every directory key that has no entry yet (keys published
/// before schema 4), in address order.
pub(super) fn backfill(c: &Connection, now: i64) -> Result<(), StoreError> {
    let unlogged: Vec<(String, Vec<u8>)> = c
        .prepare("SELECT address, cert FROM directory_keys WHERE log_index < 0 ORDER BY address")
        .db()?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    let time = u64::try_from(now).unwrap_or(0);
    for (address, cert) in unlogged {
        let index = append(c, &LogEntry::publish(&address, &cert, time))?;
        c.execute(
            "UPDATE directory_keys SET log_index = ?2 WHERE address = ?1",
            params![address, to_i64(index)?],
        )
        .db()?;
    }
    Ok(())
}

pub(super) fn size(c: &Connection) -> Result<u64, StoreError> {
    let size: i64 = c
        .prepare_cached("SELECT size FROM log_size WHERE id = 0")
        .db()?
        .query_row([], |r| r.get(0))
        .db()?;
    to_u64(size)
}

pub(super) fn nodes(c: &Connection, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
    let mut stmt = c
        .prepare_cached("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")
        .db()?;
    ids.iter()
        .map(|id| {
            let found: Option<Vec<u8>> = stmt
                .query_row(params![id.level, to_i64(id.index)?], |r| r.get(0))
                .optional()
                .db()?;
            hash_of(
                found
                    .ok_or_else(|| StoreError::Backend(format!("the log has no subtree {id:?}")))?,
            )
        })
        .collect()
}

pub(super) fn entries(c: &Connection, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    c.prepare_cached("SELECT entry FROM log_entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
        .db()?
        .query_map(params![to_i64(start)?, to_i64(end)?], |r| r.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()
}

fn head_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, Vec<u8>, Vec<u8>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn head_of(
    (size, time, root, signature): (i64, i64, Vec<u8>, Vec<u8>),
) -> Result<SignedHead, StoreError> {
    Ok(SignedHead {
        size: to_u64(size)?,
        time: to_u64(time)?,
        root: hash_of(root)?,
        signature: signature
            .try_into()
            .map_err(|_| StoreError::Backend("a stored head signature is not 64 bytes".into()))?,
    })
}

pub(super) fn put_head(c: &Connection, head: &SignedHead) -> Result<SignedHead, StoreError> {
    c.prepare_cached(
        "INSERT INTO log_heads (size, time, root, signature) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (size) DO NOTHING",
    )
    .db()?
    .execute(params![
        to_i64(head.size)?,
        to_i64(head.time)?,
        head.root.as_slice(),
        head.signature.as_slice()
    ])
    .db()?;
    let row = c
        .prepare_cached("SELECT size, time, root, signature FROM log_heads WHERE size = ?1")
        .db()?
        .query_row(params![to_i64(head.size)?], head_from)
        .db()?;
    head_of(row)
}

pub(super) fn latest_head(c: &Connection) -> Result<Option<SignedHead>, StoreError> {
    c.prepare_cached("SELECT size, time, root, signature FROM log_heads ORDER BY size DESC LIMIT 1")
        .db()?
        .query_row([], head_from)
        .optional()
        .db()?
        .map(head_of)
        .transpose()
}

pub(super) fn heads(c: &Connection, after: u64, limit: u64) -> Result<Vec<SignedHead>, StoreError> {
    let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = c
        .prepare_cached(
            "SELECT size, time, root, signature FROM log_heads WHERE size > ?1
             ORDER BY size LIMIT ?2",
        )
        .db()?
        .query_map(params![to_i64(after)?, to_i64(limit)?], head_from)
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    rows.into_iter().map(head_of).collect()
}

pub(super) fn add_event(c: &Connection, e: &NewEvent, keep: i64) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO security_events (user_name, at, kind, device_id, details)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db()?
    .execute(params![e.user, e.at, e.kind, e.device_id, e.details])
    .db()?;
    c.prepare_cached(
        "DELETE FROM security_events WHERE user_name = ?1 AND id <= (
             SELECT id FROM security_events WHERE user_name = ?1
             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .db()?
    .execute(params![e.user, keep.max(1)])
    .db()?;
    Ok(())
}

pub(super) fn events(
    c: &Connection,
    user: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    c.prepare_cached(
        "SELECT id, at, kind, device_id, details FROM security_events
         WHERE user_name = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )
    .db()?
    .query_map(params![user, after, limit], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            device_id: r.get(3)?,
            details: r.get(4)?,
        })
    })
    .db()?
    .collect::<rusqlite::Result<_>>()
    .db()
}
