//! The PostgreSQL store's transparency log and security events: schema 3 and the
//! statements. An append takes the log's size row `FOR UPDATE`, so appends from any
//! number of processes wait for each other and form one sequence.

use deadpool_postgres::GenericClient;
use sealpost_transparency::tree::{Hash, NodeId, append_plan, appended_nodes};
use sealpost_transparency::{LogEntry, SignedHead};
use tokio_postgres::Row;

use super::pg;
use crate::store::{EventRow, NewEvent, StoreError};

/// Schema 3: the log (its size, entries, complete subtrees and signed heads), each
/// directory key's entry, and security events.
pub(super) const MIGRATION: &str = r#"
     CREATE TABLE log_size (
         id                SMALLINT NOT NULL PRIMARY KEY CHECK (id = 0),
         size              BIGINT   NOT NULL CHECK (size >= 0)
     );
     INSERT INTO log_size (id, size) VALUES (0, 0);
     CREATE TABLE log_entries (
         idx               BIGINT   NOT NULL PRIMARY KEY,
         entry             BYTEA    NOT NULL
     );
     CREATE TABLE log_nodes (
         level             SMALLINT NOT NULL,
         idx               BIGINT   NOT NULL,
         hash              BYTEA    NOT NULL,
         PRIMARY KEY (level, idx)
     );
     CREATE TABLE log_heads (
         size              BIGINT   NOT NULL PRIMARY KEY,
         time              BIGINT   NOT NULL,
         root              BYTEA    NOT NULL,
         signature         BYTEA    NOT NULL
     );
     ALTER TABLE directory_keys ADD COLUMN log_index BIGINT NOT NULL DEFAULT -1;
     CREATE TABLE security_events (
         id                BIGSERIAL NOT NULL PRIMARY KEY,
         user_name         TEXT COLLATE "C" NOT NULL REFERENCES accounts (user_name),
         at                BIGINT   NOT NULL,
         kind              TEXT     NOT NULL,
         device_id         TEXT COLLATE "C" NOT NULL,
         details           BYTEA    NOT NULL
     );
     CREATE INDEX security_events_by_user ON security_events (user_name, id);
     CREATE INDEX security_events_by_time ON security_events (at);"#;

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend(format!("negative log value {v}")))
}

pub(super) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("log value {v} too large")))
}

fn hash_of(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored log hash is not 32 bytes".into()))
}

/// Appends `entry` inside the caller's transaction (which then holds the log's lock until
/// it ends); its index.
pub(super) async fn append(c: &impl GenericClient, entry: &LogEntry) -> Result<u64, StoreError> {
    let lock = c
        .prepare_cached("SELECT size FROM log_size WHERE id = 0 FOR UPDATE")
        .await
        .map_err(pg)?;
    let size = to_u64(
        c.query_one(&lock, &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?,
    )?;
    let siblings = nodes(c, &append_plan(size)).await?;
    let new = appended_nodes(size, entry.leaf_hash(), &siblings)
        .ok_or_else(|| StoreError::Backend("the log's subtrees are incomplete".into()))?;
    let at = to_i64(size)?;
    let bytes = entry.encode().to_vec();
    let insert = c
        .prepare_cached("INSERT INTO log_entries (idx, entry) VALUES ($1, $2)")
        .await
        .map_err(pg)?;
    c.execute(&insert, &[&at, &bytes]).await.map_err(pg)?;
    let mut levels = Vec::with_capacity(new.len());
    let mut indices = Vec::with_capacity(new.len());
    let mut hashes = Vec::with_capacity(new.len());
    for (id, hash) in new {
        levels.push(i16::from(id.level));
        indices.push(to_i64(id.index)?);
        hashes.push(hash.to_vec());
    }
    let insert = c
        .prepare_cached(
            "INSERT INTO log_nodes (level, idx, hash)
             SELECT * FROM unnest($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[])",
        )
        .await
        .map_err(pg)?;
    c.execute(&insert, &[&levels, &indices, &hashes])
        .await
        .map_err(pg)?;
    let bump = c
        .prepare_cached("UPDATE log_size SET size = size + 1 WHERE id = 0")
        .await
        .map_err(pg)?;
    c.execute(&bump, &[]).await.map_err(pg)?;
    Ok(size)
}

/// Appends a publication for every directory key that has no entry yet (keys published
/// before schema 3), in address order.
pub(super) async fn backfill(c: &impl GenericClient, now: i64) -> Result<(), StoreError> {
    let rows = c
        .query(
            "SELECT address, cert FROM directory_keys WHERE log_index < 0 ORDER BY address",
            &[],
        )
        .await
        .map_err(pg)?;
    let time = u64::try_from(now).unwrap_or(0);
    for row in rows {
        let address: String = row.try_get(0).map_err(pg)?;
        let cert: Vec<u8> = row.try_get(1).map_err(pg)?;
        let index = to_i64(append(c, &LogEntry::publish(&address, &cert, time)).await?)?;
        c.execute(
            "UPDATE directory_keys SET log_index = $2 WHERE address = $1",
            &[&address, &index],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

pub(super) async fn size(c: &impl GenericClient) -> Result<u64, StoreError> {
    let stmt = c
        .prepare_cached("SELECT size FROM log_size WHERE id = 0")
        .await
        .map_err(pg)?;
    to_u64(
        c.query_one(&stmt, &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?,
    )
}

pub(super) async fn nodes(c: &impl GenericClient, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let indices: Vec<i64> = ids
        .iter()
        .map(|id| to_i64(id.index))
        .collect::<Result<_, _>>()?;
    let stmt = c
        .prepare_cached(
            "SELECT n.hash FROM unnest($1::SMALLINT[], $2::BIGINT[]) WITH ORDINALITY
                 AS w(level, idx, ord)
             JOIN log_nodes n ON n.level = w.level AND n.idx = w.idx
             ORDER BY w.ord",
        )
        .await
        .map_err(pg)?;
    let rows = c.query(&stmt, &[&levels, &indices]).await.map_err(pg)?;
    if rows.len() != ids.len() {
        return Err(StoreError::Backend(format!(
            "the log has {} of the {} subtrees asked for",
            rows.len(),
            ids.len()
        )));
    }
    rows.iter()
        .map(|r| hash_of(r.try_get(0).map_err(pg)?))
        .collect()
}

pub(super) async fn entries(
    c: &impl GenericClient,
    start: u64,
    end: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let stmt = c
        .prepare_cached("SELECT entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx")
        .await
        .map_err(pg)?;
    let rows = c
        .query(&stmt, &[&to_i64(start)?, &to_i64(end)?])
        .await
        .map_err(pg)?;
    rows.iter().map(|r| r.try_get(0).map_err(pg)).collect()
}

fn head_of(r: &Row) -> Result<SignedHead, StoreError> {
    let size: i64 = r.try_get(0).map_err(pg)?;
    let time: i64 = r.try_get(1).map_err(pg)?;
    let signature: Vec<u8> = r.try_get(3).map_err(pg)?;
    Ok(SignedHead {
        size: to_u64(size)?,
        time: to_u64(time)?,
        root: hash_of(r.try_get(2).map_err(pg)?)?,
        signature: signature
            .try_into()
            .map_err(|_| StoreError::Backend("a stored head signature is not 64 bytes".into()))?,
    })
}

pub(super) async fn put_head(
    c: &impl GenericClient,
    head: &SignedHead,
) -> Result<SignedHead, StoreError> {
    let size = to_i64(head.size)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO log_heads (size, time, root, signature) VALUES ($1, $2, $3, $4)
             ON CONFLICT (size) DO NOTHING",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &stmt,
        &[
            &size,
            &to_i64(head.time)?,
            &head.root.as_slice(),
            &head.signature.as_slice(),
        ],
    )
    .await
    .map_err(pg)?;
    let read = c
        .prepare_cached("SELECT size, time, root, signature FROM log_heads WHERE size = $1")
        .await
        .map_err(pg)?;
    head_of(&c.query_one(&read, &[&size]).await.map_err(pg)?)
}

pub(super) async fn latest_head(c: &impl GenericClient) -> Result<Option<SignedHead>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT size, time, root, signature FROM log_heads ORDER BY size DESC LIMIT 1",
        )
        .await
        .map_err(pg)?;
    c.query_opt(&stmt, &[])
        .await
        .map_err(pg)?
        .as_ref()
        .map(head_of)
        .transpose()
}

pub(super) async fn heads(
    c: &impl GenericClient,
    after: u64,
    limit: u64,
) -> Result<Vec<SignedHead>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT size, time, root, signature FROM log_heads WHERE size > $1
             ORDER BY size LIMIT $2",
        )
        .await
        .map_err(pg)?;
    c.query(&stmt, &[&to_i64(after)?, &to_i64(limit)?])
        .await
        .map_err(pg)?
        .iter()
        .map(head_of)
        .collect()
}

pub(super) async fn add_event(
    c: &impl GenericClient,
    e: &NewEvent,
    keep: i64,
) -> Result<(), StoreError> {
    let insert = c
        .prepare_cached(
            "INSERT INTO security_events (user_name, at, kind, device_id, details)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &insert,
        &[&e.user, &e.at, &e.kind, &e.device_id, &e.details],
    )
    .await
    .map_err(pg)?;
    let trim = c
        .prepare_cached(
            "DELETE FROM security_events WHERE user_name = $1 AND id <= (
                 SELECT id FROM security_events WHERE user_name = $1
                 ORDER BY id DESC OFFSET $2 LIMIT 1)",
        )
        .await
        .map_err(pg)?;
    c.execute(&trim, &[&e.user, &keep.max(1)])
        .await
        .map_err(pg)?;
    Ok(())
}

pub(super) async fn events(
    c: &impl GenericClient,
    user: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT id, at, kind, device_id, details FROM security_events
             WHERE user_name = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .await
        .map_err(pg)?;
    c.query(&stmt, &[&user, &after, &limit])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok(EventRow {
                id: r.try_get(0).map_err(pg)?,
                at: r.try_get(1).map_err(pg)?,
                kind: r.try_get(2).map_err(pg)?,
                device_id: r.try_get(3).map_err(pg)?,
                details: r.try_get(4).map_err(pg)?,
            })
        })
        .collect()
}
