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
    // 5: how an account logs in: a password (every account before this version) or
    // OAuth2, with the provider it signed in at (endpoints, client id, scopes: not
    // secret); the tokens are the vault secret `mail/<id>/oauth`, never here.
    "ALTER TABLE account ADD COLUMN auth TEXT NOT NULL DEFAULT 'password'
         CHECK (auth IN ('password', 'oauth2'));
     ALTER TABLE account ADD COLUMN oauth_provider TEXT NOT NULL DEFAULT '';",
    // 6: an outbox entry whose SMTP transaction started (recorded before `MAIL FROM`,
    // cleared with the server's 250 or a refusal): never resent by itself, first looked
    // for on the server, else left "in doubt" for the user (see `outbox`); and the second
    // copies of a Message-ID in one folder, kept out of the list by UID (see `sync`).
    "CREATE TABLE outbox_attempt (
         outbox_id   INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
         started_at  INTEGER NOT NULL,
         in_doubt    INTEGER NOT NULL CHECK (in_doubt IN (0, 1))
     ) STRICT;
     CREATE TABLE message_duplicate (
         folder_id        INTEGER NOT NULL REFERENCES folder (id) ON DELETE CASCADE,
         uid_validity     INTEGER NOT NULL,
         uid              INTEGER NOT NULL,
         message_id_hash  TEXT    NOT NULL,
         PRIMARY KEY (folder_id, uid_validity, uid)
     ) STRICT;",
    // 7: a folder's messages by Message-ID, for the duplicate check of every opened
    // message; without it SQLite walked the folder by date for each one (quadratic in
    // the folder's size: a 100,000-message folder took minutes).
    "CREATE INDEX message_by_folder_message_id ON message (folder_id, message_id_hash);",
];

/// Opens (creating if needed) the mail store at `path` and brings its schema up to date,
/// with the same settings and migration rules as the vault (`crate::store`).
pub fn open(path: &Path) -> Result<Connection, CoreError> {
    crate::store::open_with_migrations(path, true, MAIL_MIGRATIONS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_password_accounts_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.sqlite3");
        // A store as the version before OAuth2 left it, with an account in it.
        let old = crate::store::open_with_migrations(&path, true, &MAIL_MIGRATIONS[..4]).unwrap();
        old.execute(
            "INSERT INTO account (id, address, login, imap_host, imap_port, imap_security,
                 smtp_host, smtp_port, smtp_security, extra_roots_pem, created_at)
             VALUES ('a1', 'a@example.org', 'a', 'imap.example.org', 993, 'tls',
                     'smtp.example.org', 465, 'tls', '', 1)",
            [],
        )
        .unwrap();
        drop(old);
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MAIL_MIGRATIONS.len()).unwrap());
        let (auth, provider): (String, String) = conn
            .query_row(
                "SELECT auth, oauth_provider FROM account WHERE id = 'a1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((auth.as_str(), provider.as_str()), ("password", ""));
        // Only the two kinds are accepted.
        let bad = conn.execute("UPDATE account SET auth = 'kerberos' WHERE id = 'a1'", []);
        assert!(bad.is_err());
    }
}
