//! The mail store's SQLite file: the same settings as the vault (WAL, `synchronous=FULL`,
//! `secure_delete`, foreign keys) and its own numbered, forward-only migrations.
//! Sealed columns are `BLOB`s; see the module docs of [`super`] for what is sealed.

use std::path::Path;

use rusqlite::Connection;

use crate::CoreError;

/// The mail store's migrations. Index + 1 is the schema version it produces.
pub const MAIL_MIGRATIONS: &[&str] = &[
    // 1: accounts, folders, messages with their bodies out of line, the search index,
    // the outbox and drafts.
    "CREATE TABLE account (
         id               TEXT    PRIMARY KEY,
         address          TEXT    NOT NULL,
         login            TEXT    NOT NULL,
         imap_host        TEXT    NOT NULL,
         imap_port        INTEGER NOT NULL,
         imap_security    TEXT    NOT NULL CHECK (imap_security IN ('tls', 'starttls')),
         smtp_host        TEXT    NOT NULL,
         smtp_port        INTEGER NOT NULL,
         smtp_security    TEXT    NOT NULL CHECK (smtp_security IN ('tls', 'starttls')),
         extra_roots_pem  TEXT    NOT NULL,
         created_at       INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE folder (
         id              INTEGER PRIMARY KEY,
         account_id      TEXT    NOT NULL REFERENCES account (id) ON DELETE CASCADE,
         name            TEXT    NOT NULL,
         special_use     TEXT    NOT NULL,
         uid_validity    INTEGER NOT NULL,
         uid_next        INTEGER NOT NULL,
         highest_modseq  INTEGER NOT NULL,
         UNIQUE (account_id, name)
     ) STRICT;
     CREATE TABLE message (
         id               INTEGER PRIMARY KEY,
         folder_id        INTEGER NOT NULL REFERENCES folder (id) ON DELETE CASCADE,
         uid              INTEGER NOT NULL,
         uid_validity     INTEGER NOT NULL,
         flags            TEXT    NOT NULL,
         state            TEXT    NOT NULL CHECK (state IN ('pending', 'ready', 'unreadable')),
         date             INTEGER NOT NULL,
         size             INTEGER NOT NULL,
         encrypted        INTEGER NOT NULL,
         signed           INTEGER NOT NULL,
         message_id_hash  TEXT    NOT NULL,
         summary          BLOB    NOT NULL,
         UNIQUE (folder_id, uid_validity, uid)
     ) STRICT;
     CREATE INDEX message_by_date ON message (folder_id, date);
     CREATE INDEX message_by_state ON message (state);
     CREATE INDEX message_by_message_id ON message (message_id_hash);
     CREATE TABLE body (
         message_id  INTEGER PRIMARY KEY REFERENCES message (id) ON DELETE CASCADE,
         raw         BLOB    NOT NULL
     ) STRICT;
     CREATE VIRTUAL TABLE search USING fts5 (words, content = '', contentless_delete = 1);
     CREATE TRIGGER message_unindex AFTER DELETE ON message BEGIN
         DELETE FROM search WHERE rowid = old.id;
     END;
     CREATE TABLE outbox (
         id               INTEGER PRIMARY KEY,
         account_id       TEXT    NOT NULL REFERENCES account (id) ON DELETE CASCADE,
         state            TEXT    NOT NULL CHECK (state IN ('queued', 'sent')),
         message_id_hash  TEXT    NOT NULL,
         envelope         BLOB    NOT NULL,
         raw              BLOB    NOT NULL,
         attempts         INTEGER NOT NULL,
         last_error       TEXT    NOT NULL,
         created_at       INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE draft (
         id          INTEGER PRIMARY KEY,
         account_id  TEXT    NOT NULL REFERENCES account (id) ON DELETE CASCADE,
         body        BLOB    NOT NULL,
         updated_at  INTEGER NOT NULL
     ) STRICT;",
    // 2: the copy of each draft on the server (its Message-ID, to replace it).
    "CREATE TABLE draft_copy (
         draft_id    INTEGER NOT NULL PRIMARY KEY REFERENCES draft (id) ON DELETE CASCADE,
         message_id  TEXT    NOT NULL
     ) STRICT;",
    // 3: flags the user changed in the app and the server has not been told yet, one
    // row per message and flag (the last wish wins); pushed first by the next sync.
    "CREATE TABLE flag_change (
         message_id  INTEGER NOT NULL REFERENCES message (id) ON DELETE CASCADE,
         flag        TEXT    NOT NULL,
         value       INTEGER NOT NULL CHECK (value IN (0, 1)),
         PRIMARY KEY (message_id, flag)
     ) STRICT;",
    // 4: messages newest first across folders, for search results of common words.
    "CREATE INDEX message_by_time ON message (date, id);",
];

/// Opens (creating if needed) the mail store at `path` and brings its schema up to date,
/// with the same settings and migration rules as the vault (`crate::store`).
pub fn open(path: &Path) -> Result<Connection, CoreError> {
    crate::store::open_with_migrations(path, true, MAIL_MIGRATIONS)
}
