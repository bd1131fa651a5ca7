//! Composing, the outbox and drafts (see the module docs of [`super`]).

use rusqlite::{OptionalExtension, params};
use sealpost_mail::smtp::{Envelope, SmtpSession};
use sealpost_mail::{Flag, ImapSession, SpecialUse};
use sealpost_pgp::{Mailbox as PgpMailbox, OutgoingMail, PreferEncrypt};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::sync::SyncReport;
use super::{MailAccount, Mailbox, damaged, index, random_id};
use crate::keys;
use crate::{Clock, CoreError};

// An SMTP transaction of an outbox entry that was started: the row is committed before
// the first command of the message (`MAIL FROM`) goes out, and removed in the same
// commit that records the server's `250` (or when the server refused the message with
// a 4xx/5xx reply, which proves it did not take it). A row that outlives its flush (the
// process was killed, the connection died before the reply) means the server may
// have the message: the entry is never sent again by itself. The next flush looks for
// its Message-ID on the server (Sent, and INBOX when the account is a recipient); found,
// it counts as sent; not found, `in_doubt` is set and the entry waits for the user
// ([`Mailbox::resend_outbox_entry`], [`Mailbox::discard_outbox_entry`]).
// The table is `outbox_attempt` (schema migration 6).

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
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Its id.
    pub id: i64,
    /// The Message-ID.
    pub message_id: String,
    /// Everyone it goes to (To, Cc and Bcc).
    pub recipients: Vec<String>,
    /// Its subject.
    pub subject: String,
    /// `queued` (not sent yet, or refused and to be tried again), `sending` (an SMTP
    /// transaction started and has not ended: a flush is at it, or the app stopped in
    /// the middle; the next flush checks the server before anything else), `inDoubt`
    /// (it may have been sent: the server may have taken it, and it is not on the
    /// server where it could be checked; the user says `Mailbox::resend_outbox_entry`
    /// or `Mailbox::discard_outbox_entry`) or `sent` (accepted; the copy in Sent is
    /// not yet made).
    pub state: OutboxState,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last failure, in words.
    pub last_error: String,
}

/// Where an outbox entry stands (see [`OutboxEntry::state`]).
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutboxState {
    /// Not sent yet, or refused and to be tried again.
    Queued,
    /// An SMTP transaction started and has not ended.
    Sending,
    /// It may have been sent: the user decides.
    InDoubt,
    /// Accepted; its copy in Sent is not made yet.
    Sent,
}

impl OutboxState {
    fn of(text: &str) -> Self {
        match text {
            "sent" => Self::Sent,
            "inDoubt" => Self::InDoubt,
            "sending" => Self::Sending,
            _ => Self::Queued,
        }
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::InDoubt => "inDoubt",
            Self::Sent => "sent",
        })
    }
}

/// The steps of a flush, per entry, in order (an entry goes through some of them), and
/// its two other ends, [`OutboxStep::Failed`] and [`OutboxStep::InDoubt`]. Each is
/// reported to the callback of [`Mailbox::flush_outbox_steps`]; an error from it stops
/// the flush there, as a kill at that point would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutboxStep {
    /// The entry is about to be handled; nothing of this flush has happened to it.
    Recorded,
    /// Connecting and logging in to the SMTP server; nothing of the message sent yet.
    Connecting,
    /// The SMTP transaction is recorded as started (durably); the message goes out
    /// next. From here on a restart does not send it again by itself.
    Started,
    /// The server answered `250` to the message; `sent` is not yet committed.
    Submitted,
    /// `sent` is committed (or the message was found on the server after an
    /// interrupted attempt); no copy in Sent yet.
    Accepted,
    /// Making sure a copy is in Sent (looking for it, appending it).
    SavingToSent,
    /// The copy is appended to Sent; the entry is not yet cleared.
    Appended,
    /// Done: sent, the copy in Sent, the entry gone from the outbox.
    Cleared,
    /// This attempt failed (the error says why): before the server could have taken
    /// the message, or, for an entry already `sent`, while making its copy in Sent. The
    /// entry waits for the next flush, which tries again by itself.
    Failed,
    /// The server may have the message and it could not be found there: the entry
    /// stays, in doubt, and is not sent again until the user says so.
    InDoubt,
}

/// One step of one entry, as [`Mailbox::flush_outbox_steps`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxUpdate {
    /// The entry.
    pub id: i64,
    /// Its Message-ID.
    pub message_id: String,
    /// The step.
    pub step: OutboxStep,
    /// What went wrong, in words ([`OutboxStep::Failed`], and [`OutboxStep::InDoubt`]
    /// when an error left it so).
    pub error: Option<String>,
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushReport {
    /// Entries accepted by the SMTP server in this flush.
    pub sent: usize,
    /// Entries whose interrupted attempt had reached the server: found there by their
    /// Message-ID and counted as sent, not sent again.
    pub found: usize,
    /// Copies appended to Sent.
    pub appended: usize,
    /// Entries finished and cleared.
    pub cleared: usize,
    /// Entries that failed and stay queued, with why.
    pub failed: Vec<(i64, String)>,
    /// Entries that may have been sent and wait for the user to send them again or
    /// discard them.
    pub in_doubt: Vec<i64>,
}

#[derive(Serialize, Deserialize)]
struct SealedEnvelope {
    from: String,
    recipients: Vec<String>,
    message_id: String,
    /// The subject as the user wrote it (for the outbox list; entries queued before it
    /// was kept have none).
    #[serde(default)]
    subject: String,
}

/// A message as it goes out unencrypted, with the sender's Autocrypt header when the
/// profile has a key bound to the account's address.
fn plain(
    account: &MailAccount,
    compose: &Compose,
    message_id: &str,
    own: Option<&sealpost_pgp::KeyPair>,
    clock: &dyn Clock,
) -> Result<Vec<u8>, CoreError> {
    let mail = outgoing(account, compose, message_id, clock);
    Ok(sealpost_pgp::plain_mail(
        &mail,
        own,
        keys::system_time(clock),
    )?)
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

/// Whether a failed send was the server's refusal (a 4xx or 5xx reply, a refused
/// login) or failed before a command of the message: then the server does not have the
/// message and sending it again later is safe. Anything else (the connection lost, no
/// answer in time) may have come after the server took it.
fn refused(e: &sealpost_mail::Error) -> bool {
    use sealpost_mail::Error as E;
    match e {
        E::AuthFailed(_) | E::Invalid { .. } => true,
        // lettre's words for a negative reply (`transport::smtp::Error`'s Display).
        E::Smtp(words) => {
            words.starts_with("permanent error (") || words.starts_with("transient error (")
        }
        _ => false,
    }
}

fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("localhost", |(_, d)| d)
}

impl Mailbox {
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
            let own = keys::own_key(&self.u, clock)?;
            plain(account, compose, &message_id, own.as_ref(), clock)?
        });
        let envelope = SealedEnvelope {
            from: account.address.clone(),
            recipients,
            message_id: message_id.clone(),
            subject: compose.subject.clone(),
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
            recipients: envelope.recipients,
            subject: envelope.subject,
            state: OutboxState::Queued,
            attempts: 0,
            last_error: String::new(),
        })
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
        keys::renew_own_key_if_due(&self.u, clock)?;
        let own = keys::own_key(&self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
        let mut certs = Vec::new();
        let mut missing = Vec::new();
        for r in recipients {
            let cert = keys::contact(&self.u, r)?
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
        keys::renew_own_key_if_due(&self.u, clock)?;
        let own = keys::own_key(&self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
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
                "SELECT o.id,
                        CASE WHEN o.state = 'sent' THEN 'sent'
                             WHEN a.in_doubt = 1 THEN 'inDoubt'
                             WHEN a.in_doubt = 0 THEN 'sending'
                             ELSE 'queued' END,
                        o.attempts, o.last_error, o.envelope
                 FROM outbox o LEFT JOIN outbox_attempt a ON a.outbox_id = o.id
                 WHERE o.account_id = ?1 ORDER BY o.id",
            )?
            .query_map([&account.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, state, attempts, last_error, env)| {
                let envelope = self.envelope(id, &env)?;
                Ok(OutboxEntry {
                    id,
                    message_id: envelope.message_id,
                    recipients: envelope.recipients,
                    subject: envelope.subject,
                    state: OutboxState::of(&state),
                    attempts,
                    last_error,
                })
            })
            .collect()
    }

    /// The user's answer to an entry that may have been sent ([`OutboxStep::InDoubt`]):
    /// send it again. It goes with the next flush like a new one (same bytes, same
    /// Message-ID, so a receiving client can tell a second copy). Refused for an entry
    /// that is not in doubt.
    pub fn resend_outbox_entry(&self, account: &MailAccount, id: i64) -> Result<(), CoreError> {
        let n = self.conn.execute(
            "DELETE FROM outbox_attempt WHERE outbox_id = ?1 AND in_doubt = 1
             AND outbox_id IN (SELECT id FROM outbox WHERE account_id = ?2 AND state = 'queued')",
            params![id, account.id],
        )?;
        if n != 1 {
            return Err(CoreError::NotInMailStore(format!(
                "outbox entry {id} that may have been sent"
            )));
        }
        Ok(())
    }

    /// The user's answer to an entry that may have been sent, or to one not sent yet:
    /// drop it (from this device; what the server has is not touched). Refused while an
    /// SMTP transaction of it has started and not ended (`sending`), and for an entry
    /// already sent (only its copy to Sent is left to make).
    pub fn discard_outbox_entry(&self, account: &MailAccount, id: i64) -> Result<(), CoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let state: Option<(String, Option<bool>)> = tx
            .query_row(
                "SELECT o.state, a.in_doubt FROM outbox o
                 LEFT JOIN outbox_attempt a ON a.outbox_id = o.id
                 WHERE o.id = ?1 AND o.account_id = ?2",
                params![id, account.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match state {
            None => return Err(CoreError::NotInMailStore(format!("outbox entry {id}"))),
            Some((state, _)) if state == "sent" => {
                return Err(CoreError::AccountBusy(format!(
                    "outbox entry {id} was sent; only its copy to Sent is left to make"
                )));
            }
            Some((_, Some(false))) => {
                return Err(CoreError::AccountBusy(format!(
                    "outbox entry {id} is being sent; wait for the attempt to end"
                )));
            }
            Some(_) => {}
        }
        tx.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
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
    pub async fn flush_outbox(&mut self,
        account: &MailAccount,
        clock: &dyn Clock,
    ) -> Result<FlushReport, CoreError> {
        self.flush_outbox_steps(account, clock, &mut |_| Ok(()))
            .await
    }

    /// [`Mailbox::flush_outbox`], telling `step` each step of each entry as it happens
    /// (what a UI shows per message). An error from `step` stops the flush right there,
    /// as a kill at that point would (the tests' way to kill it at every step).
    ///
    /// Per entry: an entry in the middle of an SMTP transaction that did not end (see
    /// the `outbox_attempt` table) is looked for on the server first and never sent again by
    /// itself; any other queued entry is sent (`Connecting`, `Started`, `Submitted`,
    /// `Accepted`); then the copy in Sent is made (`SavingToSent`, `Appended`) and the
    /// entry cleared (`Cleared`). `Failed` and `InDoubt` end an entry's flush otherwise.
    pub async fn flush_outbox_steps(&mut self,
        account: &MailAccount,
        clock: &dyn Clock,
        step: &mut (dyn FnMut(&OutboxUpdate) -> Result<(), CoreError> + Send),
    ) -> Result<FlushReport, CoreError> {
        let mut report = FlushReport::default();
        let ids: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM outbox WHERE account_id = ?1 ORDER BY id")?
            .query_map([&account.id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in ids {
            let mut message_id = String::new();
            let result = self
                .flush_one(account, id, clock, step, &mut report, &mut message_id)
                .await;
            if let Err(e) = result {
                if matches!(e, CoreError::Injected(_)) {
                    return Err(e);
                }
                self.conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?1 WHERE id = ?2",
                    params![e.to_string(), id],
                )?;
                report.failed.push((id, e.to_string()));
                step(&OutboxUpdate {
                    id,
                    message_id,
                    step: OutboxStep::Failed,
                    error: Some(e.to_string()),
                })?;
            }
        }
        Ok(report)
    }

    async fn flush_one(&mut self,
        account: &MailAccount,
        id: i64,
        clock: &dyn Clock,
        step: &mut (dyn FnMut(&OutboxUpdate) -> Result<(), CoreError> + Send),
        report: &mut FlushReport,
        message_id: &mut String,
    ) -> Result<(), CoreError> {
        type Row = (String, String, Vec<u8>, Vec<u8>, Option<bool>);
        let (state, mid_hash, env, raw, attempt): Row = self
            .conn
            .query_row(
                "SELECT o.state, o.message_id_hash, o.envelope, o.raw, a.in_doubt
                 FROM outbox o LEFT JOIN outbox_attempt a ON a.outbox_id = o.id
                 WHERE o.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?
            .ok_or_else(|| CoreError::NotInMailStore(format!("outbox entry {id}")))?;
        let envelope = self.envelope(id, &env)?;
        message_id.clone_from(&envelope.message_id);
        let mut tell = |s: OutboxStep, error: Option<String>| {
            step(&OutboxUpdate {
                id,
                message_id: envelope.message_id.clone(),
                step: s,
                error,
            })
        };
        tell(OutboxStep::Recorded, None)?;
        let raw = self.u.open_blob(&format!("mail/outbox-raw/{id}"), &raw)?;
        let mut imap: Option<ImapSession> = None;
        if state == "queued" && attempt.is_some() {
            // A transaction that may have reached the server: look, never resend.
            let mut session = self.connect(account).await?;
            session.enable_qresync().await?;
            let found = self.on_server(&mut session, account, &envelope).await?;
            imap = Some(session);
            if !found {
                self.conn.execute(
                    "UPDATE outbox_attempt SET in_doubt = 1 WHERE outbox_id = ?1",
                    [id],
                )?;
                report.in_doubt.push(id);
                if let Some(session) = imap.take() {
                    let _ = session.logout().await;
                }
                return tell(OutboxStep::InDoubt, None);
            }
            self.mark_sent(id)?;
            report.found += 1;
            tell(OutboxStep::Accepted, None)?;
        } else if state == "queued" {
            tell(OutboxStep::Connecting, None)?;
            let env = Envelope::new(&envelope.from, &envelope.recipients)?;
            let creds = self.credentials(account).await?;
            // Failing here, nothing of the message went out: tried again next time.
            let mut smtp = SmtpSession::connect(&account.smtp_config()?, &creds).await?;
            self.conn.execute(
                "INSERT INTO outbox_attempt (outbox_id, started_at, in_doubt) VALUES (?1, ?2, 0)",
                params![id, clock.now_unix()],
            )?;
            tell(OutboxStep::Started, None)?;
            match smtp.send(&env, raw.expose()).await {
                Ok(()) => {
                    tell(OutboxStep::Submitted, None)?;
                    self.mark_sent(id)?;
                    // Accepted: a failing QUIT changes nothing.
                    let _ = smtp.quit().await;
                    report.sent += 1;
                    tell(OutboxStep::Accepted, None)?;
                }
                Err(e) if refused(&e) => {
                    // The server answered no: it does not have the message.
                    self.conn
                        .execute("DELETE FROM outbox_attempt WHERE outbox_id = ?1", [id])?;
                    return Err(e.into());
                }
                Err(e) => {
                    // No answer to the message: the server may have it.
                    let words = CoreError::from(e).to_string();
                    let tx = self.conn.unchecked_transaction()?;
                    tx.execute(
                        "UPDATE outbox_attempt SET in_doubt = 1 WHERE outbox_id = ?1",
                        [id],
                    )?;
                    tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?1 WHERE id = ?2",
                        params![words, id],
                    )?;
                    tx.commit()?;
                    report.in_doubt.push(id);
                    return tell(OutboxStep::InDoubt, Some(words));
                }
            }
        }
        // A copy in Sent, unless one is there already (appended before a kill, or put
        // there by the server).
        tell(OutboxStep::SavingToSent, None)?;
        let mut imap = match imap {
            Some(session) => session,
            None => {
                let mut session = self.connect(account).await?;
                session.enable_qresync().await?;
                session
            }
        };
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
            tell(OutboxStep::Appended, None)?;
        }
        let _ = imap.logout().await;
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])?;
        report.cleared += 1;
        tell(OutboxStep::Cleared, None)
    }

    /// Records that the server has the entry's message: `sent`, and the attempt over,
    /// in one commit.
    fn mark_sent(&self, id: i64) -> Result<(), CoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE outbox SET state = 'sent' WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM outbox_attempt WHERE outbox_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Whether the server has the message: by its Message-ID (`UID SEARCH HEADER`) in
    /// Sent (where some servers keep what they relay, and where a flush puts its copy),
    /// and in INBOX when the account is among the recipients.
    async fn on_server(&mut self,
        imap: &mut ImapSession,
        account: &MailAccount,
        envelope: &SealedEnvelope,
    ) -> Result<bool, CoreError> {
        let mut folders = vec![self.sent_folder(imap, account).await?];
        if envelope
            .recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&account.address))
        {
            folders.push("INBOX".to_owned());
        }
        for folder in folders {
            imap.select(&folder).await?;
            if !imap
                .search_message_id(&envelope.message_id)
                .await?
                .is_empty()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The account's Sent folder (see [`Mailbox::special_folder`]).
    async fn sent_folder(&mut self,
        imap: &mut sealpost_mail::ImapSession,
        account: &MailAccount,
    ) -> Result<String, CoreError> {
        self.special_folder(imap, account, SpecialUse::Sent, "Sent")
            .await
    }

    /// The folder the server marks with `use_`, else one called `name`, made if
    /// missing. The store learns of it too.
    async fn special_folder(&mut self,
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
    #[cfg(any(test, feature = "testing"))]
    pub async fn upload_draft(&mut self,
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
            let own = keys::own_key(&self.u, clock)?.ok_or(CoreError::NoOwnKey)?;
            let mail = outgoing(account, &draft.compose, &message_id, clock);
            // No recipients: encrypt_mail always encrypts to the sender too.
            sealpost_pgp::encrypt_mail(&mail, &own, &[], keys::system_time(clock))?
        } else {
            plain(account, &draft.compose, &message_id, None, clock)?
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
    fn only_a_reply_of_the_server_proves_it_refused_the_message() {
        use sealpost_mail::Error as E;
        assert!(super::refused(&E::Smtp(
            "permanent error (550): no such user".into()
        )));
        assert!(super::refused(&E::Smtp(
            "transient error (451): try later".into()
        )));
        assert!(super::refused(&E::AuthFailed("535".into())));
        assert!(!super::refused(&E::Smtp("network error: reset".into())));
        assert!(!super::refused(&E::Timeout {
            what: "sending the message".into()
        }));
        assert!(!super::refused(&E::Io(std::io::Error::other("eof"))));
    }

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
