//! Sync with the IMAP server, opening and indexing stored messages, flags and moves.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, params};
use sealpost_mail::{Flag, ImapSession, MessageInfo, SyncState};
use sealpost_pgp::{BadSignature, EncryptionStatus, OpenedMail, SignatureStatus};

use super::{
    MailAccount, Mailbox, MessageState, SealedSummary, damaged, flag_name, flags_text, index,
    parse_flag,
};
use crate::keys::{self, KeySource, Keyring};
use crate::{Clock, CoreError};

/// Most whole messages one `UID FETCH` asks for.
const FETCH_BATCH: usize = 500;
/// Most bytes (by `RFC822.SIZE`) one `UID FETCH` asks for; a single larger message is
/// fetched alone. Well under the response bound of [`sealpost_mail::Limits`].
const FETCH_BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Messages opened and indexed per transaction (one fsync per batch, not per message).
const OPEN_BATCH: usize = 256;
/// Most UIDs in one `UID STORE` when pushing local flag changes.
const STORE_BATCH: usize = 500;

// Copies of a message that the store already lists in the same folder (the same
// Message-ID, as a resent outbox entry can make), kept out of the list: the first copy
// opened is listed, the others are remembered here by UID, so they are not fetched
// again and come back when the listed copy leaves the server.
// The table is `message_duplicate` (schema migration 6).

/// Where a running sync stands: sent at the start of each folder (`done` 0) and after
/// each batch of messages stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncProgress {
    /// The folder being synced (its IMAP name).
    pub folder: String,
    /// New messages of this folder stored so far.
    pub done: usize,
    /// New messages of this folder to fetch.
    pub total: usize,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Folders synced.
    pub folders: usize,
    /// Messages fetched and stored.
    pub new: usize,
    /// Messages deleted because they left the server (or the folder was reset).
    pub removed: usize,
    /// Messages whose flags were refreshed.
    pub flags_changed: usize,
    /// IMAP commands this sync sent, each a round trip (a folder that did not change
    /// costs one `SELECT` with QRESYNC).
    pub commands: u64,
    /// Copies of a message already listed in the same folder (same Message-ID), kept
    /// out of the list.
    pub duplicates: usize,
    /// Folders whose UIDVALIDITY changed.
    pub resets: usize,
    /// Messages opened and indexed.
    pub opened: usize,
    /// Of which do not parse as mail.
    pub unreadable: usize,
    /// Flag changes made in the app ([`Mailbox::set_flag_local`]) told to the server.
    pub flags_pushed: usize,
    /// The folders in which messages arrived, left or changed flags, by name.
    pub changed_folders: Vec<String>,
    /// Tokens of key-directory proof mails among the new messages, for the caller to
    /// spend with `sync::confirm_published_key` (a token of someone else's claim does
    /// nothing there). Not serialised: it is a one-time credential.
    #[serde(skip)]
    pub directory_tokens: Vec<String>,
}

impl Mailbox {
    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`): the
    /// app's other connection to the store (a UI marking a message read while the
    /// background loop syncs) then waits for it (busy timeout) instead of failing it
    /// with `SQLITE_BUSY`, as a deferred transaction that read first would be when the
    /// other one wrote in between.
    fn write_tx(&self) -> Result<rusqlite::Transaction<'_>, CoreError> {
        Ok(rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?)
    }

    /// Logs in to the account's IMAP server.
    pub async fn connect(&mut self, account: &MailAccount) -> Result<ImapSession, CoreError> {
        Ok(
            ImapSession::connect(&account.imap_config()?, &self.credentials(account).await?)
                .await?,
        )
    }

    /// Syncs every selectable folder of the account, then opens and indexes what was
    /// fetched (see the module docs). Flag changes made in the app are pushed first.
    pub async fn sync(&mut self,
        account: &MailAccount,
        clock: &dyn Clock,
    ) -> Result<SyncReport, CoreError> {
        self.sync_with_progress(account, clock, &|_| {}).await
    }

    /// [`Mailbox::sync`], telling `progress` where it stands: at the start of each
    /// folder and after each batch of messages stored.
    pub async fn sync_with_progress(&mut self,
        account: &MailAccount,
        clock: &dyn Clock,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, CoreError> {
        let mut imap = self.connect(account).await?;
        let report = self
            .sync_session(&mut imap, account, clock, None, progress)
            .await?;
        let _ = imap.logout().await;
        Ok(report)
    }

    /// The work of a sync on an open session: pushes local flag changes, then syncs
    /// `only` that folder, or every selectable folder (dropping those gone from the
    /// server), then opens what was fetched. The session stays usable (the scheduler
    /// goes on to IDLE with it).
    pub(crate) async fn sync_session(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
        clock: &dyn Clock,
        only: Option<&str>,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<SyncReport, CoreError> {
        // A key in use never lapses: renewed here when due (a no-op otherwise).
        keys::renew_own_key_if_due(&self.u, clock)?;
        let commands_before = imap.commands_sent();
        // Before any SELECT (ENABLE is refused after one; a no-op once on).
        imap.enable_qresync().await?;
        let mut report = SyncReport {
            flags_pushed: self.push_flag_changes(imap, account).await?,
            ..SyncReport::default()
        };
        let names: Vec<String> = match only {
            Some(name) => {
                self.conn.execute(
                    "INSERT INTO folder (account_id, name, special_use, uid_validity, uid_next,
                         highest_modseq) VALUES (?1, ?2, '', 0, 0, 0)
                     ON CONFLICT (account_id, name) DO NOTHING",
                    params![account.id, name],
                )?;
                vec![name.to_owned()]
            }
            None => self.refresh_folders(imap, account).await?,
        };
        for name in &names {
            self.sync_folder_with(imap, account, name, &mut report, progress)
                .await?;
        }
        report.commands = imap.commands_sent().saturating_sub(commands_before);
        self.open_pending(account, clock, &mut report)?;
        Ok(report)
    }

    /// Lists the server's folders, forgets those gone from it (their messages with
    /// them) and records the others; returns the selectable ones, by name.
    async fn refresh_folders(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
    ) -> Result<Vec<String>, CoreError> {
        let folders = imap.folders().await?;
        let names: BTreeSet<&str> = folders
            .iter()
            .filter(|f| f.selectable)
            .map(|f| f.name.as_str())
            .collect();
        let known: Vec<(i64, String)> = self
            .conn
            .prepare("SELECT id, name FROM folder WHERE account_id = ?1")?
            .query_map([&account.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, name) in known {
            if !names.contains(name.as_str()) {
                self.conn
                    .execute("DELETE FROM folder WHERE id = ?1", [id])?;
            }
        }
        for f in folders.iter().filter(|f| f.selectable) {
            let special = f.special_use.map(|s| format!("{s:?}")).unwrap_or_default();
            self.conn.execute(
                "INSERT INTO folder (account_id, name, special_use, uid_validity, uid_next,
                     highest_modseq) VALUES (?1, ?2, ?3, 0, 0, 0)
                 ON CONFLICT (account_id, name) DO UPDATE SET special_use = excluded.special_use",
                params![account.id, f.name, special],
            )?;
        }
        Ok(names.into_iter().map(str::to_owned).collect())
    }

    /// Sets or clears a flag in the store at once and remembers the change; the next
    /// sync tells the server (before it reads the server's flags, so the user's change
    /// is not overwritten by the old state). Works offline.
    pub fn set_flag_local(&self, id: i64, flag: Flag, on: bool) -> Result<(), CoreError> {
        let name = flag_name(&flag);
        let tx = self.write_tx()?;
        let stored: String = tx
            .query_row("SELECT flags FROM message WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("message {id}")))?;
        let mut flags: BTreeSet<Flag> = stored
            .split_whitespace()
            .filter_map(|f| parse_flag(f).ok())
            .collect();
        if on {
            flags.insert(flag);
        } else {
            flags.remove(&flag);
        }
        tx.execute(
            "UPDATE message SET flags = ?1 WHERE id = ?2",
            params![flags_text(&flags), id],
        )?;
        tx.execute(
            "INSERT INTO flag_change (message_id, flag, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (message_id, flag) DO UPDATE SET value = excluded.value",
            params![id, name, on],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a message read: [`Mailbox::set_flag_local`] with `\Seen`.
    #[cfg(any(test, feature = "testing"))]
    pub fn mark_seen(&self, id: i64) -> Result<(), CoreError> {
        self.set_flag_local(id, Flag::Seen, true)
    }

    /// How many flag changes of the account wait for the next sync.
    #[cfg(any(test, feature = "testing"))]
    pub fn pending_flag_changes(&self, account: &MailAccount) -> Result<usize, CoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM flag_change c JOIN message m ON m.id = c.message_id
             JOIN folder f ON f.id = m.folder_id WHERE f.account_id = ?1",
            [&account.id],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Tells the server the flag changes made in the app (`UID STORE +FLAGS/-FLAGS`),
    /// and forgets each once told. A change made again while this runs stays for the
    /// next sync; a change to a folder whose UIDVALIDITY changed is dropped (its UIDs
    /// mean other messages now, and the folder is fetched again). Returns how many
    /// changes were told.
    pub(crate) async fn push_flag_changes(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
    ) -> Result<usize, CoreError> {
        type Row = (i64, String, i64, i64, String, bool);
        let rows: Vec<Row> = self
            .conn
            .prepare(
                "SELECT c.message_id, f.name, m.uid, m.uid_validity, c.flag, c.value
                 FROM flag_change c JOIN message m ON m.id = c.message_id
                 JOIN folder f ON f.id = m.folder_id
                 WHERE f.account_id = ?1 ORDER BY f.name, m.uid",
            )?
            .query_map([&account.id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut by_folder: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for row in rows {
            by_folder.entry(row.1.clone()).or_default().push(row);
        }
        let mut pushed = 0;
        for (folder, rows) in by_folder {
            let status = imap.select(&folder).await?;
            let mut stores: BTreeMap<(String, bool), Vec<u32>> = BTreeMap::new();
            let mut told: Vec<(i64, String, bool)> = Vec::new();
            for (id, _, uid, validity, flag, value) in rows {
                let uid = u32::try_from(uid).ok();
                match uid {
                    Some(uid) if validity == i64::from(status.uid_validity) => {
                        stores.entry((flag.clone(), value)).or_default().push(uid);
                        told.push((id, flag, value));
                    }
                    _ => {
                        self.forget_flag_change(id, &flag, value)?;
                    }
                }
            }
            for ((flag, value), uids) in &stores {
                let Ok(parsed) = parse_flag(flag) else {
                    continue;
                };
                for chunk in uids.chunks(STORE_BATCH) {
                    if *value {
                        imap.add_flags(chunk, std::slice::from_ref(&parsed)).await?;
                    } else {
                        imap.remove_flags(chunk, std::slice::from_ref(&parsed))
                            .await?;
                    }
                }
            }
            let tx = self.write_tx()?;
            for (id, flag, value) in told {
                pushed += self.forget_flag_change(id, &flag, value)?;
            }
            tx.commit()?;
        }
        Ok(pushed)
    }

    /// Forgets a flag change made in the app: told to the server, or moot.
    fn forget_flag_change(&self, id: i64, flag: &str, value: bool) -> rusqlite::Result<usize> {
        self.conn.execute(
            "DELETE FROM flag_change WHERE message_id = ?1 AND flag = ?2 AND value = ?3",
            params![id, flag, value],
        )
    }

    fn folder_id(&self, account: &MailAccount, name: &str) -> Result<i64, CoreError> {
        self.conn
            .query_row(
                "SELECT id FROM folder WHERE account_id = ?1 AND name = ?2",
                params![account.id, name],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("folder {name}")))
    }

    /// Syncs one folder that the store knows: stores new messages raw and sealed,
    /// applies flag changes and expunges, then saves the new state.
    pub(crate) async fn sync_folder(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
        name: &str,
        report: &mut SyncReport,
    ) -> Result<(), CoreError> {
        self.sync_folder_with(imap, account, name, report, &|_| {})
            .await
    }

    /// [`Mailbox::sync_folder`] with progress.
    async fn sync_folder_with(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
        name: &str,
        report: &mut SyncReport,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<(), CoreError> {
        let before = (report.new, report.removed, report.flags_changed);
        self.sync_folder_inner(imap, account, name, report, progress)
            .await?;
        if (report.new, report.removed, report.flags_changed) != before
            && !report.changed_folders.iter().any(|f| f == name)
        {
            report.changed_folders.push(name.to_owned());
        }
        Ok(())
    }

    async fn sync_folder_inner(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
        name: &str,
        report: &mut SyncReport,
        progress: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<(), CoreError> {
        let folder_id = self.folder_id(account, name)?;
        let (validity, uid_next, modseq): (i64, i64, i64) = self.conn.query_row(
            "SELECT uid_validity, uid_next, highest_modseq FROM folder WHERE id = ?1",
            [folder_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let previous = (validity != 0).then(|| SyncState {
            uid_validity: u32::try_from(validity).unwrap_or(0),
            uid_next: u32::try_from(uid_next).unwrap_or(0),
            highest_modseq: u64::try_from(modseq).ok().filter(|m| *m != 0),
        });
        let changes = imap.sync(name, previous.as_ref()).await?;
        let now_validity = i64::from(changes.state.uid_validity);
        report.folders += 1;

        {
            let tx = self.write_tx()?;
            if changes.reset {
                if previous.is_some() {
                    report.resets += 1;
                }
                report.removed += tx.execute(
                    "DELETE FROM message WHERE folder_id = ?1 AND uid_validity != ?2",
                    params![folder_id, now_validity],
                )?;
                tx.execute(
                    "DELETE FROM message_duplicate WHERE folder_id = ?1 AND uid_validity != ?2",
                    params![folder_id, now_validity],
                )?;
            } else if let Some(vanished) = &changes.vanished {
                // QRESYNC: the server named what left.
                for r in vanished {
                    let (first, last) = (i64::from(*r.start()), i64::from(*r.end()));
                    report.removed += tx
                        .prepare_cached(
                            "DELETE FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                             AND uid BETWEEN ?3 AND ?4",
                        )?
                        .execute(params![folder_id, now_validity, first, last])?;
                    tx.prepare_cached(
                        "DELETE FROM message_duplicate WHERE folder_id = ?1 AND uid_validity = ?2
                         AND uid BETWEEN ?3 AND ?4",
                    )?
                    .execute(params![folder_id, now_validity, first, last])?;
                }
            } else if let Some(prev) = previous {
                let local: Vec<i64> = tx
                    .prepare(
                        "SELECT uid FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                         AND uid < ?3
                         UNION ALL
                         SELECT uid FROM message_duplicate WHERE folder_id = ?1
                         AND uid_validity = ?2 AND uid < ?3",
                    )?
                    .query_map(
                        params![folder_id, now_validity, i64::from(prev.uid_next)],
                        |r| r.get(0),
                    )?
                    .collect::<Result<_, _>>()?;
                for uid in local {
                    let present = u32::try_from(uid).is_ok_and(|u| changes.present.contains(&u));
                    if !present {
                        report.removed += tx
                            .prepare_cached(
                                "DELETE FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                                 AND uid = ?3",
                            )?
                            .execute(params![folder_id, now_validity, uid])?;
                        tx.prepare_cached(
                            "DELETE FROM message_duplicate WHERE folder_id = ?1
                             AND uid_validity = ?2 AND uid = ?3",
                        )?
                        .execute(params![folder_id, now_validity, uid])?;
                    }
                }
            }
            for m in &changes.flags_changed {
                // A change made in the app and not yet told wins over the server's
                // (older) state; it is pushed by the next sync.
                report.flags_changed += tx
                    .prepare_cached(
                        "UPDATE message SET flags = ?1
                         WHERE folder_id = ?2 AND uid_validity = ?3 AND uid = ?4 AND flags != ?1
                         AND NOT EXISTS (SELECT 1 FROM flag_change c
                                         WHERE c.message_id = message.id)",
                    )?
                    .execute(params![
                        flags_text(&m.flags),
                        folder_id,
                        now_validity,
                        i64::from(m.uid)
                    ])?;
            }
            tx.commit()?;
        }

        // Copies kept out of the list whose listed copy has left: listed again.
        let revived = self
            .revive_duplicates(imap, folder_id, now_validity)
            .await?;
        let stored: BTreeSet<i64> = self
            .conn
            .prepare(
                "SELECT uid FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                 UNION SELECT uid FROM message_duplicate WHERE folder_id = ?1
                 AND uid_validity = ?2",
            )?
            .query_map(params![folder_id, now_validity], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut seen = BTreeSet::new();
        let todo: Vec<&MessageInfo> = changes
            .new
            .iter()
            .chain(&revived)
            .filter(|m| !stored.contains(&i64::from(m.uid)) && seen.insert(m.uid))
            .collect();
        let total = todo.len();
        let mut done = 0;
        progress(SyncProgress {
            folder: name.to_owned(),
            done,
            total,
        });
        for batch in fetch_batches(&todo) {
            let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
            let flags: BTreeMap<u32, String> = batch
                .iter()
                .map(|m| (m.uid, flags_text(&m.flags)))
                .collect();
            let fetched = imap.fetch_messages(&uids).await?;
            let tx = self.write_tx()?;
            for (uid, raw) in fetched {
                let flags = flags.get(&uid).map_or("", String::as_str);
                self.store_raw(folder_id, uid, now_validity, flags, &raw)?;
                report.new += 1;
            }
            tx.commit()?;
            done += batch.len();
            progress(SyncProgress {
                folder: name.to_owned(),
                done,
                total,
            });
        }

        self.conn.execute(
            "UPDATE folder SET uid_validity = ?1, uid_next = ?2, highest_modseq = ?3 WHERE id = ?4",
            params![
                now_validity,
                i64::from(changes.state.uid_next),
                changes
                    .state
                    .highest_modseq
                    .and_then(|m| i64::try_from(m).ok())
                    .unwrap_or(0),
                folder_id
            ],
        )?;
        Ok(())
    }

    /// The copies kept out of `folder_id`'s list (the `message_duplicate` table) whose listed copy
    /// is gone: forgotten as copies, with their current flags, to be fetched again.
    async fn revive_duplicates(&mut self,
        imap: &mut ImapSession,
        folder_id: i64,
        validity: i64,
    ) -> Result<Vec<MessageInfo>, CoreError> {
        let orphans: Vec<i64> = self
            .conn
            .prepare(
                "SELECT d.uid FROM message_duplicate d
                 WHERE d.folder_id = ?1 AND d.uid_validity = ?2
                 AND NOT EXISTS (SELECT 1 FROM message m WHERE m.folder_id = d.folder_id
                                 AND m.message_id_hash = d.message_id_hash)
                 ORDER BY d.uid",
            )?
            .query_map(params![folder_id, validity], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if orphans.is_empty() {
            return Ok(Vec::new());
        }
        let uids: Vec<u32> = orphans
            .iter()
            .filter_map(|u| u32::try_from(*u).ok())
            .collect();
        let infos = imap.fetch_flags(&uids).await?;
        self.conn.execute(
            "DELETE FROM message_duplicate WHERE folder_id = ?1 AND uid_validity = ?2
             AND NOT EXISTS (SELECT 1 FROM message m WHERE m.folder_id = message_duplicate.folder_id
                             AND m.message_id_hash = message_duplicate.message_id_hash)",
            params![folder_id, validity],
        )?;
        Ok(infos)
    }

    /// Stores one fetched message raw and sealed, state `pending` (opened later by
    /// [`Mailbox::open_pending`]); returns its id. Runs inside the caller's transaction.
    fn store_raw(
        &self,
        folder_id: i64,
        uid: u32,
        validity: i64,
        flags: &str,
        raw: &[u8],
    ) -> Result<i64, CoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO message (folder_id, uid, uid_validity, flags, state, date, size,
                     encrypted, signed, message_id_hash, summary)
                 VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, 0, 0, '', x'')",
            )?
            .execute(params![
                folder_id,
                i64::from(uid),
                validity,
                flags,
                i64::try_from(raw.len()).unwrap_or(i64::MAX)
            ])?;
        let id = self.conn.last_insert_rowid();
        let sealed = self.u.seal_blob(&format!("mail/raw/{id}"), raw)?;
        self.conn
            .prepare_cached("INSERT INTO body (message_id, raw) VALUES (?1, ?2)")?
            .execute(params![id, sealed])?;
        Ok(id)
    }

    /// Stores already-fetched messages into `folder` (made if the store does not know
    /// it) exactly as a sync stores what it fetches (sealed, then opened and indexed),
    /// with UIDs after the folder's highest. For benchmarks and tests that need a big
    /// store without a server; a real sync of that folder resets it (its UIDVALIDITY
    /// is 0 here).
    #[doc(hidden)]
    #[cfg(any(test, feature = "testing"))]
    pub fn import_fetched(
        &self,
        account: &MailAccount,
        folder: &str,
        messages: &[Vec<u8>],
        clock: &dyn Clock,
    ) -> Result<SyncReport, CoreError> {
        self.conn.execute(
            "INSERT INTO folder (account_id, name, special_use, uid_validity, uid_next,
                 highest_modseq) VALUES (?1, ?2, '', 0, 0, 0)
             ON CONFLICT (account_id, name) DO NOTHING",
            params![account.id, folder],
        )?;
        let folder_id = self.folder_id(account, folder)?;
        let last: i64 = self.conn.query_row(
            "SELECT coalesce(max(uid), 0) FROM message WHERE folder_id = ?1",
            [folder_id],
            |r| r.get(0),
        )?;
        let mut uid = u32::try_from(last).unwrap_or(u32::MAX);
        let mut report = SyncReport::default();
        for chunk in messages.chunks(FETCH_BATCH) {
            let tx = self.write_tx()?;
            for raw in chunk {
                uid = uid.saturating_add(1);
                self.store_raw(folder_id, uid, 0, "", raw)?;
                report.new += 1;
            }
            tx.commit()?;
        }
        self.open_pending(account, clock, &mut report)?;
        Ok(report)
    }

    /// Opens every pending message of the account: parse, decrypt, verify, index.
    pub(crate) fn open_pending(
        &self,
        account: &MailAccount,
        clock: &dyn Clock,
        report: &mut SyncReport,
    ) -> Result<(), CoreError> {
        let pending: Vec<i64> = self
            .conn
            .prepare(
                "SELECT m.id FROM message m JOIN folder f ON f.id = m.folder_id
                 WHERE f.account_id = ?1 AND m.state = 'pending' ORDER BY m.id",
            )?
            .query_map([&account.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut ring = Keyring::load(&self.u, clock)?;
        for chunk in pending.chunks(OPEN_BATCH) {
            // One transaction per batch: each message's writes are all or nothing
            // either way, and a kill loses at most a batch of work, redone next time.
            let tx = self.write_tx()?;
            for &id in chunk {
                // A stored body that no longer opens (damaged on disk) must not stop
                // every later sync: it is listed as unreadable like mail that does not
                // parse.
                let state = match self.raw(id) {
                    Ok(raw) => {
                        if let Some(token) = crate::sync::directory_token(raw.expose()) {
                            report.directory_tokens.push(token);
                        }
                        let state = self.open_one(id, raw.expose(), account, &mut ring, clock)?;
                        if state == MessageState::Ready && self.set_aside_if_duplicate(id)? {
                            report.duplicates += 1;
                        }
                        state
                    }
                    Err(_) => {
                        self.conn.execute(
                            "UPDATE message SET state = 'unreadable' WHERE id = ?1",
                            [id],
                        )?;
                        MessageState::Unreadable
                    }
                };
                report.opened += 1;
                if state == MessageState::Unreadable {
                    report.unreadable += 1;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// When the folder of the just-opened message `id` already lists another opened
    /// message with its Message-ID, takes `id` out of the list and remembers its UID as
    /// a copy (the `message_duplicate` table); returns whether it did. Runs inside the caller's
    /// transaction.
    fn set_aside_if_duplicate(&self, id: i64) -> Result<bool, CoreError> {
        let copy: Option<(i64, i64, i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT m.folder_id, m.uid_validity, m.uid, m.message_id_hash FROM message m
                 WHERE m.id = ?1 AND m.message_id_hash != ''
                 AND EXISTS (SELECT 1 FROM message o WHERE o.folder_id = m.folder_id
                             AND o.message_id_hash = m.message_id_hash AND o.id != m.id
                             AND o.state = 'ready')",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((folder_id, validity, uid, hash)) = copy else {
            return Ok(false);
        };
        self.conn
            .prepare_cached(
                "INSERT INTO message_duplicate (folder_id, uid_validity, uid, message_id_hash)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![folder_id, validity, uid, hash])?;
        self.conn
            .prepare_cached("DELETE FROM message WHERE id = ?1")?
            .execute([id])?;
        Ok(true)
    }

    fn open_one(
        &self,
        id: i64,
        raw: &[u8],
        account: &MailAccount,
        ring: &mut Keyring,
        clock: &dyn Clock,
    ) -> Result<MessageState, CoreError> {
        let now = keys::system_time(clock);
        let opened = sealpost_pgp::open_mail(raw, &ring.context(now))
            .ok()
            .filter(looks_like_mail);
        let Some(mut opened) = opened else {
            self.conn.execute(
                "UPDATE message SET state = 'unreadable' WHERE id = ?1",
                [id],
            )?;
            return Ok(MessageState::Unreadable);
        };
        // A new correspondent's Autocrypt key: remember it, and check the signature
        // again now that its key is known.
        if let Some(ac) = &opened.autocrypt
            && !ac.addr.eq_ignore_ascii_case(&account.address)
        {
            // A key that cannot be kept (checks fail) is ignored: the message still opens.
            let observed = sealpost_pgp::contact::public_bytes(&ac.cert)
                .ok()
                .is_some_and(|bytes| {
                    keys::observe_key(&self.u, &ac.addr, &bytes, KeySource::Autocrypt, clock).is_ok()
                });
            if observed
                && matches!(
                    opened.signature,
                    SignatureStatus::Bad {
                        reason: BadSignature::UnknownKey,
                        ..
                    }
                )
            {
                *ring = Keyring::load(&self.u, clock)?;
                if let Ok(again) = sealpost_pgp::open_mail(raw, &ring.context(now)) {
                    opened = again;
                }
            }
        }
        let summary = SealedSummary {
            from: opened
                .from
                .as_ref()
                .map(|f| f.address.clone())
                .unwrap_or_default(),
            subject: opened.subject.clone().unwrap_or_default(),
            to: opened
                .to
                .iter()
                .chain(&opened.cc)
                .map(|m| m.address.clone())
                .collect(),
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&summary).map_err(|e| damaged("a list entry", e))?,
        );
        let sealed = self.u.seal_blob(&format!("mail/summary/{id}"), &json)?;
        let tokens = index::tokens(&self.search_key, &index::words(&index_text(&opened)));
        let encrypted = !matches!(opened.encryption, EncryptionStatus::NotEncrypted);
        let signed = matches!(
            opened.signature,
            SignatureStatus::Verified { .. } | SignatureStatus::ValidUnconfirmed { .. }
        );
        let mid = opened
            .message_id
            .as_deref()
            .map(|m| index::message_id_hash(&self.search_key, m))
            .unwrap_or_default();
        // Runs inside the caller's transaction ([`Mailbox::open_pending`]).
        self.conn
            .prepare_cached("DELETE FROM search WHERE rowid = ?1")?
            .execute([id])?;
        self.conn
            .prepare_cached("INSERT INTO search (rowid, words) VALUES (?1, ?2)")?
            .execute(params![id, tokens.join(" ")])?;
        self.conn
            .prepare_cached(
                "UPDATE message SET state = 'ready', date = ?1, encrypted = ?2, signed = ?3,
                     message_id_hash = ?4, summary = ?5 WHERE id = ?6",
            )?
            .execute(params![
                opened.date.unwrap_or(0),
                encrypted,
                signed,
                mid,
                sealed,
                id
            ])?;
        Ok(MessageState::Ready)
    }

    /// Adds and removes flags on the server, then stores what the server reports.
    #[cfg(any(test, feature = "testing"))]
    pub async fn set_flags(&mut self,
        account: &MailAccount,
        id: i64,
        add: &[Flag],
        remove: &[Flag],
    ) -> Result<(), CoreError> {
        let (folder, uid) = self.located(account, id)?;
        let mut imap = self.connect(account).await?;
        self.select_checked(&mut imap, id, &folder).await?;
        imap.add_flags(&[uid], add).await?;
        imap.remove_flags(&[uid], remove).await?;
        let now = imap.fetch_flags(&[uid]).await?;
        let _ = imap.logout().await;
        if let Some(info) = now.first() {
            self.conn.execute(
                "UPDATE message SET flags = ?1 WHERE id = ?2",
                params![flags_text(&info.flags), id],
            )?;
        }
        Ok(())
    }

    /// Moves a message to another folder on the server. It leaves the local folder now
    /// and is fetched into the destination by the next sync.
    pub async fn move_message(&mut self,
        account: &MailAccount,
        id: i64,
        destination: &str,
    ) -> Result<(), CoreError> {
        let (folder, uid) = self.located(account, id)?;
        let mut imap = self.connect(account).await?;
        self.select_checked(&mut imap, id, &folder).await?;
        imap.move_messages(&[uid], destination).await?;
        let _ = imap.logout().await;
        self.conn
            .execute("DELETE FROM message WHERE id = ?1", [id])?;
        Ok(())
    }

    fn located(&self, account: &MailAccount, id: i64) -> Result<(String, u32), CoreError> {
        let (folder, uid): (String, i64) = self
            .conn
            .query_row(
                "SELECT f.name, m.uid FROM message m JOIN folder f ON f.id = m.folder_id
                 WHERE m.id = ?1 AND f.account_id = ?2",
                params![id, account.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("message {id}")))?;
        Ok((folder, u32::try_from(uid).unwrap_or(0)))
    }

    /// Selects the message's folder and checks that its UIDs still mean what the store
    /// thinks (same UIDVALIDITY), so a flag never lands on another message.
    async fn select_checked(&mut self,
        imap: &mut ImapSession,
        id: i64,
        folder: &str,
    ) -> Result<(), CoreError> {
        let status = imap.select(folder).await?;
        let validity: i64 = self.conn.query_row(
            "SELECT uid_validity FROM message WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if validity != i64::from(status.uid_validity) {
            return Err(CoreError::NotInMailStore(format!(
                "message {id}: the folder {folder} changed on the server; sync first"
            )));
        }
        Ok(())
    }
}

/// The new messages in `UID FETCH` batches: at most [`FETCH_BATCH`] messages and about
/// [`FETCH_BATCH_BYTES`] each (a bigger message goes alone).
fn fetch_batches<'a>(todo: &'a [&'a MessageInfo]) -> Vec<&'a [&'a MessageInfo]> {
    let mut out = Vec::new();
    let mut rest = todo;
    while !rest.is_empty() {
        let mut bytes = 0u64;
        let mut n = 0;
        for m in rest.iter().take(FETCH_BATCH) {
            let size = u64::from(m.size.unwrap_or(0));
            if n > 0 && bytes + size > FETCH_BATCH_BYTES {
                break;
            }
            bytes += size;
            n += 1;
        }
        let (batch, tail) = rest.split_at(n.max(1).min(rest.len()));
        out.push(batch);
        rest = tail;
    }
    out
}

/// Whether an opened message is mail at all: a parser takes any bytes, but text
/// without any of From, Date or Message-ID is not a message.
fn looks_like_mail(m: &OpenedMail) -> bool {
    m.from.is_some() || m.date.is_some() || m.message_id.is_some()
}

/// Everything searchable in a message, decrypted.
fn index_text(m: &OpenedMail) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(m.subject.clone());
    for mb in m.from.iter().chain(&m.to).chain(&m.cc) {
        parts.extend(mb.name.clone());
        parts.push(mb.address.clone());
    }
    match (&m.text, &m.html) {
        (Some(t), _) => parts.push(t.clone()),
        (None, Some(h)) => parts.push(index::strip_tags(h)),
        (None, None) => {}
    }
    parts.extend(m.attachments.iter().filter_map(|a| a.name.clone()));
    parts.join("\n")
}
