//! Sync with the IMAP server, opening and indexing stored messages, flags and moves.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};
use sealpost_mail::{Flag, ImapSession, MessageInfo, SyncState};
use sealpost_pgp::{BadSignature, EncryptionStatus, OpenedMail, SignatureStatus};

use super::{MailAccount, Mailbox, MessageState, SealedSummary, damaged, flags_text, index};
use crate::keys::{self, KeySource, Keyring};
use crate::{Clock, CoreError};

/// How many whole messages one `UID FETCH` asks for.
const FETCH_BATCH: usize = 20;

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
    /// Folders whose UIDVALIDITY changed.
    pub resets: usize,
    /// Messages opened and indexed.
    pub opened: usize,
    /// Of which do not parse as mail.
    pub unreadable: usize,
    /// Tokens of key-directory proof mails among the new messages, for the caller to
    /// spend with `sync::confirm_published_key` (a token of someone else's claim does
    /// nothing there). Not serialised: it is a one-time credential.
    #[serde(skip)]
    pub directory_tokens: Vec<String>,
}

impl Mailbox<'_> {
    /// Logs in to the account's IMAP server.
    pub async fn connect(&self, account: &MailAccount) -> Result<ImapSession, CoreError> {
        Ok(ImapSession::connect(&account.imap_config()?, &self.credentials(account)?).await?)
    }

    /// Syncs every selectable folder of the account, then opens and indexes what was
    /// fetched (see the module docs).
    pub async fn sync(
        &self,
        account: &MailAccount,
        clock: &dyn Clock,
    ) -> Result<SyncReport, CoreError> {
        // A key in use never lapses: renewed here when due (a no-op otherwise).
        keys::renew_own_key_if_due(self.u, clock)?;
        let mut imap = self.connect(account).await?;
        let mut report = SyncReport::default();
        let folders = imap.folders().await?;
        let names: BTreeSet<&str> = folders
            .iter()
            .filter(|f| f.selectable)
            .map(|f| f.name.as_str())
            .collect();
        // Folders gone from the server go locally too (their messages with them).
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
            self.sync_folder(&mut imap, account, &f.name, &mut report)
                .await?;
        }
        let _ = imap.logout().await;
        self.open_pending(account, clock, &mut report)?;
        Ok(report)
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
    pub(crate) async fn sync_folder(
        &self,
        imap: &mut ImapSession,
        account: &MailAccount,
        name: &str,
        report: &mut SyncReport,
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
            let tx = self.conn.unchecked_transaction()?;
            if changes.reset {
                if previous.is_some() {
                    report.resets += 1;
                }
                report.removed += tx.execute(
                    "DELETE FROM message WHERE folder_id = ?1 AND uid_validity != ?2",
                    params![folder_id, now_validity],
                )?;
            } else if let Some(prev) = previous {
                let local: Vec<i64> = tx
                    .prepare(
                        "SELECT uid FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                         AND uid < ?3",
                    )?
                    .query_map(
                        params![folder_id, now_validity, i64::from(prev.uid_next)],
                        |r| r.get(0),
                    )?
                    .collect::<Result<_, _>>()?;
                for uid in local {
                    let present = u32::try_from(uid).is_ok_and(|u| changes.present.contains(&u));
                    if !present {
                        report.removed += tx.execute(
                            "DELETE FROM message WHERE folder_id = ?1 AND uid_validity = ?2
                             AND uid = ?3",
                            params![folder_id, now_validity, uid],
                        )?;
                    }
                }
            }
            for m in &changes.flags_changed {
                report.flags_changed += tx.execute(
                    "UPDATE message SET flags = ?1
                     WHERE folder_id = ?2 AND uid_validity = ?3 AND uid = ?4 AND flags != ?1",
                    params![
                        flags_text(&m.flags),
                        folder_id,
                        now_validity,
                        i64::from(m.uid)
                    ],
                )?;
            }
            tx.commit()?;
        }

        let stored: BTreeSet<i64> = self
            .conn
            .prepare("SELECT uid FROM message WHERE folder_id = ?1 AND uid_validity = ?2")?
            .query_map(params![folder_id, now_validity], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let todo: Vec<&MessageInfo> = changes
            .new
            .iter()
            .filter(|m| !stored.contains(&i64::from(m.uid)))
            .collect();
        for batch in todo.chunks(FETCH_BATCH) {
            let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
            let fetched = imap.fetch_messages(&uids).await?;
            let tx = self.conn.unchecked_transaction()?;
            for (uid, raw) in fetched {
                let flags = batch
                    .iter()
                    .find(|m| m.uid == uid)
                    .map(|m| flags_text(&m.flags))
                    .unwrap_or_default();
                tx.execute(
                    "INSERT INTO message (folder_id, uid, uid_validity, flags, state, date, size,
                         encrypted, signed, message_id_hash, summary)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, 0, 0, '', x'')",
                    params![
                        folder_id,
                        i64::from(uid),
                        now_validity,
                        flags,
                        i64::try_from(raw.len()).unwrap_or(i64::MAX)
                    ],
                )?;
                let id = tx.last_insert_rowid();
                let sealed = self.u.seal_blob(&format!("mail/raw/{id}"), &raw)?;
                tx.execute(
                    "INSERT INTO body (message_id, raw) VALUES (?1, ?2)",
                    params![id, sealed],
                )?;
                report.new += 1;
            }
            tx.commit()?;
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
        let mut ring = Keyring::load(self.u, clock)?;
        for id in pending {
            // A stored body that no longer opens (damaged on disk) must not stop every
            // later sync: it is listed as unreadable like mail that does not parse.
            let state = match self.raw(id) {
                Ok(raw) => {
                    if let Some(token) = crate::sync::directory_token(raw.expose()) {
                        report.directory_tokens.push(token);
                    }
                    self.open_one(id, raw.expose(), account, &mut ring, clock)?
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
        Ok(())
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
                    keys::observe_key(self.u, &ac.addr, &bytes, KeySource::Autocrypt, clock).is_ok()
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
                *ring = Keyring::load(self.u, clock)?;
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
        let tokens: Vec<String> = index::words(&index_text(&opened))
            .iter()
            .map(|w| index::token(&self.search_key, w))
            .collect();
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
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM search WHERE rowid = ?1", [id])?;
        tx.execute(
            "INSERT INTO search (rowid, words) VALUES (?1, ?2)",
            params![id, tokens.join(" ")],
        )?;
        tx.execute(
            "UPDATE message SET state = 'ready', date = ?1, encrypted = ?2, signed = ?3,
                 message_id_hash = ?4, summary = ?5 WHERE id = ?6",
            params![opened.date.unwrap_or(0), encrypted, signed, mid, sealed, id],
        )?;
        tx.commit()?;
        Ok(MessageState::Ready)
    }

    /// Adds and removes flags on the server, then stores what the server reports.
    pub async fn set_flags(
        &self,
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
    pub async fn move_message(
        &self,
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
    async fn select_checked(
        &self,
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
