//! Composing, the outbox and drafts (see the module docs of [`super`]).

use rusqlite::{OptionalExtension, params};
use sealpost_mail::smtp::{self, Envelope};
use sealpost_mail::{Flag, SpecialUse};
use sealpost_pgp::{Mailbox as PgpMailbox, OutgoingMail, PreferEncrypt};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::sync::SyncReport;
use super::{MailAccount, Mailbox, damaged, index, random_id};
use crate::keys;
use crate::{Clock, CoreError};

/// A message as the user writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compose {
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// `Bcc` addresses: in the SMTP envelope only, never in a header. An encrypted
    /// message is encrypted to them too, so its recipients could see that there were
    /// more (OpenPGP names every recipient key in the message).
    #[serde(default)]
    pub bcc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text.
    pub text: String,
    /// Encrypt and sign (PGP/MIME, protected headers).
    pub encrypt: bool,
    /// Sign without encrypting (RFC 3156 `multipart/signed`). An encrypted message is
    /// always signed, whatever this says.
    #[serde(default)]
    pub sign: bool,
    /// Attached files; with an encrypted message they travel inside the encryption.
    #[serde(default)]
    pub attachments: Vec<ComposeAttachment>,
    /// The Message-ID this answers, if any.
    pub in_reply_to: Option<String>,
}

/// A file attached to a [`Compose`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComposeAttachment {
    /// The file name the recipient sees.
    pub name: String,
    /// The MIME type (`application/pdf`).
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ComposeAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposeAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("len", &self.data.len())
            .finish()
    }
}

impl ComposeAttachment {
    fn for_mail(&self) -> sealpost_mail::mime::Attachment {
        sealpost_mail::mime::Attachment {
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            data: self.data.clone(),
        }
    }

    fn for_pgp(&self) -> sealpost_pgp::Attachment {
        sealpost_pgp::Attachment {
            name: Some(self.name.clone()),
            content_type: self.content_type.clone(),
            data: self.data.clone(),
        }
    }
}

/// A saved draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Draft {
    /// Its id.
    pub id: i64,
    /// What it says.
    pub compose: Compose,
    /// When it was last saved.
    pub updated_at: i64,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Its id.
    pub id: i64,
    /// The Message-ID.
    pub message_id: String,
    /// `queued` (not yet accepted by the SMTP server) or `sent` (accepted; the copy in
    /// Sent is not yet made).
    pub state: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last failure, in words.
    pub last_error: String,
}

/// The steps of a flush, named so a test can stop one there, as a kill would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStep {
    /// The entry is recorded; nothing sent yet.
    Recorded,
    /// The SMTP server accepted it and `sent` is committed; no copy in Sent yet.
    Accepted,
    /// The copy is appended to Sent; the entry is not yet cleared.
    Appended,
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    /// Entries accepted by the SMTP server in this flush.
    pub sent: usize,
    /// Copies appended to Sent.
    pub appended: usize,
    /// Entries finished and cleared.
    pub cleared: usize,
    /// Entries that failed and stay queued, with why.
    pub failed: Vec<(i64, String)>,
}

#[derive(Serialize, Deserialize)]
struct SealedEnvelope {
    from: String,
    recipients: Vec<String>,
    message_id: String,
}

/// A message as it goes out unencrypted.
fn plain(
    account: &MailAccount,
    compose: &Compose,
    message_id: &str,
    date: i64,
    autocrypt: Option<String>,
) -> Result<Vec<u8>, CoreError> {
    Ok(sealpost_mail::mime::build(&sealpost_mail::mime::Draft {
        from: (String::new(), account.address.clone()),
        to: compose.to.clone(),
        cc: compose.cc.clone(),
        subject: compose.subject.clone(),
        text: compose.text.clone(),
        attachments: compose
            .attachments
            .iter()
            .map(ComposeAttachment::for_mail)
            .collect(),
        message_id: message_id.to_owned(),
        in_reply_to: compose.in_reply_to.clone(),
        date,
        autocrypt,
        ..Default::default()
    })?)
}

/// A message as the OpenPGP layer builds it.
fn outgoing(
    account: &MailAccount,
    compose: &Compose,
    message_id: &str,
    clock: &dyn Clock,
) -> OutgoingMail {
    let mailbox = |address: &String| PgpMailbox {
        name: None,
        address: address.clone(),
    };
    OutgoingMail {
        from: mailbox(&account.address),
        to: compose.to.iter().map(mailbox).collect(),
        cc: compose.cc.iter().map(mailbox).collect(),
        subject: compose.subject.clone(),
        text: compose.text.clone(),
        html: None,
        attachments: compose
            .attachments
            .iter()
            .map(ComposeAttachment::for_pgp)
            .collect(),
        date: clock.now_unix(),
        message_id: message_id.to_owned(),
        in_reply_to: compose.in_reply_to.clone(),
        autocrypt: Some(PreferEncrypt::Mutual),
    }
}

fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("localhost", |(_, d)| d)
}

impl Mailbox<'_> {
    /// Builds the message (encrypted and signed when asked) and records it, sealed, in
    /// the outbox. Nothing is sent yet: [`Mailbox::flush_outbox`] does that. Returns the
    /// entry. An encrypted message to a recipient without a known key is refused,
    /// naming every such recipient.
    pub fn queue(
        &self,
        account: &MailAccount,
        compose: &Compose,
        clock: &dyn Clock,
    ) -> Result<OutboxEntry, CoreError> {
        if compose.to.is_empty() && compose.cc.is_empty() && compose.bcc.is_empty() {
            return Err(CoreError::BadAddress("a message needs a recipient".into()));
        }
        let recipients: Vec<String> = compose
            .to
            .iter()
            .chain(&compose.cc)
            .chain(&compose.bcc)
            .cloned()
            .collect();
        // A reply to encrypted mail stays encrypted, or is not sent.
        if !compose.encrypt
            && let Some(original) = &compose.in_reply_to
        {
            let encrypted: bool = self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM message WHERE message_id_hash = ?1 AND encrypted = 1)",
                [index::message_id_hash(&self.search_key, original)],
                |r| r.get(0),
            )?;
            if encrypted {
                return Err(sealpost_pgp::PgpError::ReplyMustBeEncrypted.into());
            }
        }
        let message_id = format!("{}@{}", random_id()?, domain(&account.address));
        let date = clock.now_unix();
        let raw = Zeroizing::new(if compose.encrypt {
            self.encrypted(account, compose, &recipients, &message_id, clock)?
        } else if compose.sign {
            self.signed(account, compose, &message_id, clock)?
        } else {
            plain(
                account,
                compose,
                &message_id,
                date,
                self.autocrypt(account, clock)?,
            )?
        });
        let envelope = SealedEnvelope {
            from: account.address.clone(),
            recipients,
            message_id: message_id.clone(),
        };
        let env_json = serde_json::to_vec(&envelope).map_err(|e| damaged("an envelope", e))?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO outbox (account_id, state, message_id_hash, envelope, raw, attempts,
                 last_error, created_at) VALUES (?1, 'queued', ?2, x'', x'', 0, '', ?3)",
            params![
                account.id,
                index::message_id_hash(&self.search_key, &message_id),
                date
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE outbox SET envelope = ?1, raw = ?2 WHERE id = ?3",
            params![
                self.u
                    .seal_blob(&format!("mail/outbox-envelope/{id}"), &env_json)?,
                self.u.seal_blob(&format!("mail/outbox-raw/{id}"), &raw)?,
                id
            ],
        )?;
        tx.commit()?;
        Ok(OutboxEntry {
            id,
            message_id,
            state: "queued".into(),
            attempts: 0,
            last_error: String::new(),
        })
    }

    /// The value of the sender's Autocrypt header, when the profile has a key bound to
    /// the account's address (Autocrypt Level 1: every mail carries the sender's key).
    fn autocrypt(
        &self,
        account: &MailAccount,
        clock: &dyn Clock,
    ) -> Result<Option<String>, CoreError> {
        let Some(own) = keys::own_key(self.u, clock)? else {
            return Ok(None);
        };
        // A key that does not carry this address gets no header rather than a wrong one.
        Ok(sealpost_pgp::autocrypt::header_value(
            &own,
            &account.address,
            PreferEncrypt::Mutual,
            keys::system_time(clock),
        )
        .ok())
    }

    fn encrypted(
        &self,
        account: &MailAccount,
        compose: &Compose,
        recipients: &[String],
        message_id: &str,
        clock: &dyn Clock,
    ) -> Result<Vec<u8>, CoreError> {
        let now = keys::system_time(clock);
        keys::renew_own_key_if_due(self.u, clock)?;
        let own = keys::own_key(self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
        let mut certs = Vec::new();
        let mut missing = Vec::new();
        for r in recipients {
            let cert = keys::contact(self.u, r)?
                .and_then(|c| sealpost_pgp::contact_cert(&c.current.cert.0, r, now).ok());
            match cert {
                Some(c) => certs.push(c),
                None if r.eq_ignore_ascii_case(&account.address) => {}
                None => missing.push(r.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(CoreError::NoRecipientKey(missing));
        }
        let mail = outgoing(account, compose, message_id, clock);
        Ok(sealpost_pgp::encrypt_mail(&mail, &own, &certs, now)?)
    }

    /// Signed, not encrypted (RFC 3156 `multipart/signed`), with the Autocrypt header.
    fn signed(
        &self,
        account: &MailAccount,
        compose: &Compose,
        message_id: &str,
        clock: &dyn Clock,
    ) -> Result<Vec<u8>, CoreError> {
        keys::renew_own_key_if_due(self.u, clock)?;
        let own = keys::own_key(self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
        let mail = outgoing(account, compose, message_id, clock);
        Ok(sealpost_pgp::sign_mail(
            &mail,
            &own,
            keys::system_time(clock),
        )?)
    }

    /// The account's outbox, oldest first.
    pub fn outbox(&self, account: &MailAccount) -> Result<Vec<OutboxEntry>, CoreError> {
        let rows: Vec<(i64, String, i64, String, Vec<u8>)> = self
            .conn
            .prepare(
                "SELECT id, state, attempts, last_error, envelope FROM outbox
                 WHERE account_id = ?1 ORDER BY id",
            )?
            .query_map([&account.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, state, attempts, last_error, env)| {
                Ok(OutboxEntry {
                    id,
                    message_id: self.envelope(id, &env)?.message_id,
                    state,
                    attempts,
                    last_error,
                })
            })
            .collect()
    }

    fn envelope(&self, id: i64, sealed: &[u8]) -> Result<SealedEnvelope, CoreError> {
        let plain = self
            .u
            .open_blob(&format!("mail/outbox-envelope/{id}"), sealed)?;
        serde_json::from_slice(plain.expose()).map_err(|e| damaged("an outbox envelope", e))
    }

    /// Sends everything in the account's outbox (see the module docs for the steps and
    /// what an interruption does). An entry that fails stays queued with its error; the
    /// others go on.
    pub async fn flush_outbox(
        &self,
        account: &MailAccount,
        clock: &dyn Clock,
    ) -> Result<FlushReport, CoreError> {
        self.flush_outbox_steps(account, clock, &mut |_| Ok(()))
            .await
    }

    /// [`Mailbox::flush_outbox`], calling `fault` after each step: an error there stops
    /// the flush as a kill at that point would. For tests.
    #[doc(hidden)]
    pub async fn flush_outbox_steps(
        &self,
        account: &MailAccount,
        clock: &dyn Clock,
        fault: &mut dyn FnMut(OutboxStep) -> Result<(), CoreError>,
    ) -> Result<FlushReport, CoreError> {
        let mut report = FlushReport::default();
        let ids: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM outbox WHERE account_id = ?1 ORDER BY id")?
            .query_map([&account.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in ids {
            fault(OutboxStep::Recorded)?;
            if let Err(e) = self.flush_one(account, id, clock, fault, &mut report).await {
                if matches!(e, CoreError::Injected(_)) {
                    return Err(e);
                }
                self.conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?1 WHERE id = ?2",
                    params![e.to_string(), id],
                )?;
                report.failed.push((id, e.to_string()));
            }
        }
        Ok(report)
    }

    async fn flush_one(
        &self,
        account: &MailAccount,
        id: i64,
        clock: &dyn Clock,
        fault: &mut dyn FnMut(OutboxStep) -> Result<(), CoreError>,
        report: &mut FlushReport,
    ) -> Result<(), CoreError> {
        let (state, mid_hash, env, raw): (String, String, Vec<u8>, Vec<u8>) = self
            .conn
            .query_row(
                "SELECT state, message_id_hash, envelope, raw FROM outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("outbox entry {id}")))?;
        let envelope = self.envelope(id, &env)?;
        let raw = self.u.open_blob(&format!("mail/outbox-raw/{id}"), &raw)?;
        let creds = self.credentials(account)?;
        if state == "queued" {
            let env = Envelope::new(&envelope.from, &envelope.recipients)?;
            smtp::send(&account.smtp_config()?, &creds, &env, raw.expose()).await?;
            self.conn
                .execute("UPDATE outbox SET state = 'sent' WHERE id = ?1", [id])?;
            report.sent += 1;
            fault(OutboxStep::Accepted)?;
        }
        // A copy in Sent, unless one is there already (appended before a kill).
        let mut imap = self.connect(account).await?;
        let sent = self.sent_folder(&mut imap, account).await?;
        let mut sync = SyncReport::default();
        self.sync_folder(&mut imap, account, &sent, &mut sync)
            .await?;
        self.open_pending(account, clock, &mut sync)?;
        let present: i64 = self.conn.query_row(
            "SELECT count(*) FROM message m JOIN folder f ON f.id = m.folder_id
             WHERE f.account_id = ?1 AND f.name = ?2 AND m.message_id_hash = ?3",
            params![account.id, sent, mid_hash],
            |r| r.get(0),
        )?;
        if present == 0 {
            imap.append(&sent, &[Flag::Seen], raw.expose()).await?;
            report.appended += 1;
            fault(OutboxStep::Appended)?;
        }
        let _ = imap.logout().await;
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        report.cleared += 1;
        Ok(())
    }

    /// The account's Sent folder (see [`Mailbox::special_folder`]).
    async fn sent_folder(
        &self,
        imap: &mut sealpost_mail::ImapSession,
        account: &MailAccount,
    ) -> Result<String, CoreError> {
        self.special_folder(imap, account, SpecialUse::Sent, "Sent")
            .await
    }

    /// The folder the server marks with `use_`, else one called `name`, made if
    /// missing. The store learns of it too.
    async fn special_folder(
        &self,
        imap: &mut sealpost_mail::ImapSession,
        account: &MailAccount,
        use_: SpecialUse,
        name: &str,
    ) -> Result<String, CoreError> {
        let folders = imap.folders().await?;
        let found = match folders
            .iter()
            .find(|f| f.special_use == Some(use_))
            .or_else(|| folders.iter().find(|f| f.name.eq_ignore_ascii_case(name)))
        {
            Some(f) => f.name.clone(),
            None => {
                imap.create_folder(name).await?;
                name.to_owned()
            }
        };
        self.conn.execute(
            "INSERT INTO folder (account_id, name, special_use, uid_validity, uid_next,
                 highest_modseq) VALUES (?1, ?2, ?3, 0, 0, 0)
             ON CONFLICT (account_id, name) DO NOTHING",
            params![account.id, found, name],
        )?;
        Ok(found)
    }

    // ------------------------------------------------------------------ drafts

    /// Saves a draft, sealed: a new one (`id` `None`) or over an existing one. The app
    /// calls this on every change; returns the draft's id.
    pub fn save_draft(
        &self,
        account: &MailAccount,
        id: Option<i64>,
        compose: &Compose,
        clock: &dyn Clock,
    ) -> Result<i64, CoreError> {
        let json = Zeroizing::new(serde_json::to_vec(compose).map_err(|e| damaged("a draft", e))?);
        let now = clock.now_unix();
        let tx = self.conn.unchecked_transaction()?;
        let id = match id {
            Some(id) => {
                let n = tx.execute(
                    "UPDATE draft SET updated_at = ?1 WHERE id = ?2 AND account_id = ?3",
                    params![now, id, account.id],
                )?;
                if n != 1 {
                    return Err(CoreError::NotInMailStore(format!("draft {id}")));
                }
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO draft (account_id, body, updated_at) VALUES (?1, x'', ?2)",
                    params![account.id, now],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.execute(
            "UPDATE draft SET body = ?1 WHERE id = ?2",
            params![self.u.seal_blob(&format!("mail/draft/{id}"), &json)?, id],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The account's drafts, most recently saved first.
    pub fn drafts(&self, account: &MailAccount) -> Result<Vec<Draft>, CoreError> {
        let rows: Vec<(i64, Vec<u8>, i64)> = self
            .conn
            .prepare(
                "SELECT id, body, updated_at FROM draft WHERE account_id = ?1
                 ORDER BY updated_at DESC, id DESC",
            )?
            .query_map([&account.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, body, updated_at)| {
                let plain = self.u.open_blob(&format!("mail/draft/{id}"), &body)?;
                let compose =
                    serde_json::from_slice(plain.expose()).map_err(|e| damaged("a draft", e))?;
                Ok(Draft {
                    id,
                    compose,
                    updated_at,
                })
            })
            .collect()
    }

    /// Puts the draft `id` on the server, in the Drafts folder, replacing the copy put
    /// there before, so the user's other mail programs and devices see it. A draft of an
    /// encrypted message is encrypted to the user's own key only (and signed), with the
    /// subject inside; a plain draft is plain, as it will be sent. The new copy is
    /// appended before the old one is deleted, so the server always has one; a crash in
    /// between leaves both, never neither.
    pub async fn upload_draft(
        &self,
        account: &MailAccount,
        id: i64,
        clock: &dyn Clock,
    ) -> Result<(), CoreError> {
        let draft = self
            .drafts(account)?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| CoreError::NotInMailStore(format!("draft {id}")))?;
        let message_id = format!("draft-{}@{}", random_id()?, domain(&account.address));
        let raw = Zeroizing::new(if draft.compose.encrypt {
            let own = keys::own_key(self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
            let mail = outgoing(account, &draft.compose, &message_id, clock);
            // No recipients: encrypt_mail always encrypts to the sender too.
            sealpost_pgp::encrypt_mail(&mail, &own, &[], keys::system_time(clock))?
        } else {
            plain(account, &draft.compose, &message_id, clock.now_unix(), None)?
        });
        let previous: Option<String> = self
            .conn
            .query_row(
                "SELECT message_id FROM draft_copy WHERE draft_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let mut imap = self.connect(account).await?;
        let folder = self
            .special_folder(&mut imap, account, SpecialUse::Drafts, "Drafts")
            .await?;
        imap.append(&folder, &[Flag::Draft, Flag::Seen], &raw)
            .await?;
        self.conn.execute(
            "INSERT INTO draft_copy (draft_id, message_id) VALUES (?1, ?2)
             ON CONFLICT (draft_id) DO UPDATE SET message_id = excluded.message_id",
            params![id, message_id],
        )?;
        if let Some(old) = previous {
            imap.select(&folder).await?;
            let uids = imap.search_message_id(&old).await?;
            if !uids.is_empty() {
                imap.delete_messages(&uids).await?;
            }
        }
        imap.logout().await?;
        Ok(())
    }

    /// Deletes a draft (sent or discarded); whether there was one.
    pub fn delete_draft(&self, id: i64) -> Result<bool, CoreError> {
        Ok(self.conn.execute("DELETE FROM draft WHERE id = ?1", [id])? == 1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_domain_of_an_address() {
        assert_eq!(super::domain("a@b.example"), "b.example");
        assert_eq!(super::domain("nobody"), "localhost");
    }
    #[test]
    fn hex_is_lower_case() {
        assert_eq!(super::super::hex(&[0xab, 1]), "ab01");
    }
}
