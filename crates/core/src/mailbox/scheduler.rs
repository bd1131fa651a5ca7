//! The background loop of one mail account, and the events it reports to a UI.
//!
//! [`run_account`] loops until its future is dropped:
//!
//! 1. connect (and log in) to the IMAP server;
//! 2. sync on that session: flag changes made in the app are told to the server first,
//!    then every folder is synced ([`Mailbox::sync_with_progress`]'s work), with
//!    [`MailEvent::Progress`] per folder and batch and [`MailEvent::Changed`] for the
//!    folders in which something arrived, left or changed flags;
//! 3. flush the outbox, with a [`MailEvent::Outbox`] per entry and step as it happens
//!    (connecting, sending, saving to Sent, sent; failed or in doubt);
//! 4. IDLE on INBOX. New mail there: sync INBOX and report it, then IDLE again. The
//!    `wake` signal (after a send or a flag change), or 25 minutes without a wake-up,
//!    end the IDLE with a whole cycle (2–4). A server without IDLE is asked every
//!    [`POLL_INTERVAL`].
//!
//! Any failure (the network, the server, a timeout) ends the session: the loop reports
//! [`Phase::Offline`] with the reason in words and the wait before the next attempt,
//! waits (1 s, 2 s, 4 s … at most [`BACKOFF_MAX`], each ±20 % at random so that many
//! clients do not come back at once; a whole successful cycle starts the series again),
//! and connects again. `wake` cuts a wait short. Only an error that waiting cannot heal
//! (the account or its password is gone from the store, the store is damaged or newer
//! than this code) ends the loop; its future then returns that error.
//!
//! What it does not do: nothing here makes a blocking HTTP request (a runtime's thread
//! must not block). The proof tokens of the key directory found in new mail are handed
//! out as [`MailEvent::DirectoryTokens`] for the caller to spend
//! (`sync::confirm_published_key` is blocking HTTP and needs the password).
//!
//! The loop owns its [`Mailbox`] (its own SQLite connection, the store's writer for this
//! account); its future is `Send` and runs as a task on the core's runtime. Wake it with
//! [`Notify::notify_one`], which is remembered when the loop is busy, so a wake-up that
//! comes during a sync starts another cycle right after it.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealpost_mail::ImapSession;
use serde::Serialize;
use tokio::sync::Notify;

use super::{MailAccount, Mailbox, OutboxStep, SyncProgress, SyncReport};
use crate::{Clock, CoreError};

/// The folder the loop waits on in IDLE.
pub const IDLE_FOLDER: &str = "INBOX";
/// How long one IDLE lasts at most before a whole cycle (servers drop clients that
/// stay idle for 30 minutes, RFC 2177).
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// How often a server without IDLE is asked for news.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// The first wait after a failure.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait after failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the loop is doing.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Connecting and logging in.
    Connecting,
    /// Syncing folders (with `folder`, `done` and `total`).
    Syncing,
    /// Connected and waiting for news (IDLE).
    Idle,
    /// Not connected: the last attempt failed (`message`); the next one follows in
    /// `retry_in_secs`.
    Offline,
}

/// Where an outgoing message stands, step by step: `queued` → `connecting` →
/// `sending` → `savingToSent` → `sent`, or `failed` (tried again later) or `inDoubt`.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutboxStepEvent {
    /// Waiting in the outbox (not sent yet, or a failure to retry later).
    Queued,
    /// Connecting and logging in to the SMTP server.
    Connecting,
    /// Being sent now (the SMTP transaction has started).
    Sending,
    /// Accepted by the server; the copy is being put in Sent.
    SavingToSent,
    /// Accepted by the server and copied to Sent; gone from the outbox.
    Sent,
    /// This attempt failed (`message` says why) before the server could have taken
    /// it, or while copying it to Sent after it was sent; it stays in the outbox and is
    /// tried again by itself.
    Failed,
    /// It may have been sent (the connection ended before the server's answer, or the
    /// app stopped then) and is not on the server where it could be checked: it stays
    /// in the outbox, not sent again until the user sends it again or discards it.
    InDoubt,
}

impl OutboxStepEvent {
    /// The event a UI gets for a step of a flush, if any (the steps in between are not
    /// shown).
    pub fn of(step: OutboxStep) -> Option<Self> {
        match step {
            OutboxStep::Connecting => Some(Self::Connecting),
            OutboxStep::Started => Some(Self::Sending),
            OutboxStep::SavingToSent => Some(Self::SavingToSent),
            OutboxStep::Cleared => Some(Self::Sent),
            OutboxStep::Failed => Some(Self::Failed),
            OutboxStep::InDoubt => Some(Self::InDoubt),
            OutboxStep::Recorded
            | OutboxStep::Submitted
            | OutboxStep::Accepted
            | OutboxStep::Appended => None,
        }
    }
}

/// What the loop reports. Serialised for a UI as `{ "kind": "progress", … }`, fields in
/// camelCase; [`MailEvent::DirectoryTokens`] is never serialised.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum MailEvent {
    /// The loop's phase, with details.
    Progress {
        /// The account.
        account_id: String,
        /// What it is doing.
        phase: Phase,
        /// The folder being synced.
        folder: Option<String>,
        /// New messages of that folder stored so far.
        done: Option<usize>,
        /// New messages of that folder to fetch.
        total: Option<usize>,
        /// What went wrong, in words (offline).
        message: Option<String>,
        /// Seconds until the next attempt (offline).
        retry_in_secs: Option<u64>,
    },
    /// Messages arrived in, left or changed flags in these folders: lists showing them
    /// should be read again.
    Changed {
        /// The account.
        account_id: String,
        /// The folders, by IMAP name.
        folders: Vec<String>,
    },
    /// An outgoing message moved on.
    Outbox {
        /// The account.
        account_id: String,
        /// Its Message-ID.
        message_id: String,
        /// Where it stands.
        step: OutboxStepEvent,
        /// Why it failed, in words.
        message: Option<String>,
    },
    /// Proof tokens of the key directory found in new mail: one-time credentials for
    /// `sync::confirm_published_key` (blocking HTTP, so not called here). Never sent to
    /// a UI, never logged.
    #[serde(skip)]
    DirectoryTokens(Vec<String>),
}

impl std::fmt::Debug for MailEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DirectoryTokens(t) => f
                .debug_tuple("DirectoryTokens")
                .field(&format_args!("<{} redacted>", t.len()))
                .finish(),
            Self::Progress {
                account_id,
                phase,
                folder,
                done,
                total,
                message,
                retry_in_secs,
            } => f
                .debug_struct("Progress")
                .field("account_id", account_id)
                .field("phase", phase)
                .field("folder", folder)
                .field("done", done)
                .field("total", total)
                .field("message", message)
                .field("retry_in_secs", retry_in_secs)
                .finish(),
            Self::Changed {
                account_id,
                folders,
            } => f
                .debug_struct("Changed")
                .field("account_id", account_id)
                .field("folders", folders)
                .finish(),
            Self::Outbox {
                account_id,
                message_id,
                step,
                message,
            } => f
                .debug_struct("Outbox")
                .field("account_id", account_id)
                .field("message_id", message_id)
                .field("step", step)
                .field("message", message)
                .finish(),
        }
    }
}

/// Keeps `account` in sync until the future is dropped (see the module docs); returns
/// only an error that waiting cannot heal.
pub async fn run_account(
    mut mb: Mailbox,
    account: MailAccount,
    clock: &dyn Clock,
    events: &(dyn Fn(MailEvent) + Sync),
    wake: &Notify,
) -> CoreError {
    let mut backoff = Backoff::default();
    loop {
        let err = match session(&mut mb, &account, clock, events, wake, &mut backoff).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if gives_up(&err) {
            return err;
        }
        let delay = backoff.next_delay();
        events(MailEvent::Progress {
            account_id: account.id.clone(),
            phase: Phase::Offline,
            folder: None,
            done: None,
            total: None,
            message: Some(err.to_string()),
            retry_in_secs: Some(delay.as_secs_f64().ceil() as u64),
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = wake.notified() => {}
        }
    }
}

/// Errors that waiting and connecting again cannot heal.
fn gives_up(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::NoMailAccount(_)
            | CoreError::OAuthSignInRequired(_)
            | CoreError::SchemaTooNew { .. }
            | CoreError::VaultDamaged { .. }
    )
}

/// One connection's life: cycles until something fails.
async fn session(
    mb: &mut Mailbox,
    account: &MailAccount,
    clock: &dyn Clock,
    events: &(dyn Fn(MailEvent) + Sync),
    wake: &Notify,
    backoff: &mut Backoff,
) -> Result<Infallible, CoreError> {
    let phase = |phase: Phase| {
        events(MailEvent::Progress {
            account_id: account.id.clone(),
            phase,
            folder: None,
            done: None,
            total: None,
            message: None,
            retry_in_secs: None,
        });
    };
    let progress = |p: SyncProgress| {
        events(MailEvent::Progress {
            account_id: account.id.clone(),
            phase: Phase::Syncing,
            folder: Some(p.folder),
            done: Some(p.done),
            total: Some(p.total),
            message: None,
            retry_in_secs: None,
        });
    };
    phase(Phase::Connecting);
    let mut imap = mb.connect(account).await?;
    let mut whole = true;
    loop {
        let only = (!whole).then_some(IDLE_FOLDER);
        phase(Phase::Syncing);
        let report = mb
            .sync_session(&mut imap, account, clock, only, &progress)
            .await?;
        report_sync(account, report, events);
        if whole {
            flush(mb, &mut imap, account, clock, events, &progress).await?;
        }
        backoff.reset();

        imap.select(IDLE_FOLDER).await?;
        phase(Phase::Idle);
        if imap.has_capability("IDLE") {
            let woken = AtomicBool::new(false);
            let interrupt = async {
                tokio::select! {
                    () = wake.notified() => woken.store(true, Ordering::Relaxed),
                    () = tokio::time::sleep(IDLE_RENEW) => {}
                }
            };
            // The server's own keep-alives restart async-imap's timer, so the renewal
            // is the interrupt above; this bound only catches a server gone silent.
            let (again, event) = imap.idle(IDLE_RENEW * 2, interrupt).await?;
            imap = again;
            whole = event != sealpost_mail::IdleEvent::NewData || woken.load(Ordering::Relaxed);
        } else {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            imap.noop().await?;
            whole = true;
        }
    }
}

fn report_sync(account: &MailAccount, report: SyncReport, events: &(dyn Fn(MailEvent) + Sync)) {
    if !report.changed_folders.is_empty() {
        events(MailEvent::Changed {
            account_id: account.id.clone(),
            folders: report.changed_folders,
        });
    }
    if !report.directory_tokens.is_empty() {
        events(MailEvent::DirectoryTokens(report.directory_tokens));
    }
}

/// Flushes the outbox, reporting each entry's steps as they happen
/// ([`OutboxStepEvent::of`]). When copies went to Sent, that folder is synced on `imap`
/// so the store lists them, and reported changed.
async fn flush(
    mb: &mut Mailbox,
    imap: &mut ImapSession,
    account: &MailAccount,
    clock: &dyn Clock,
    events: &(dyn Fn(MailEvent) + Sync),
    progress: &(dyn Fn(SyncProgress) + Sync),
) -> Result<(), CoreError> {
    if mb.outbox(account)?.is_empty() {
        return Ok(());
    }
    let report = mb
        .flush_outbox_steps(account, clock, &mut |update| {
            if let Some(step) = OutboxStepEvent::of(update.step) {
                events(MailEvent::Outbox {
                    account_id: account.id.clone(),
                    message_id: update.message_id.clone(),
                    step,
                    message: update.error.clone(),
                });
            }
            Ok(())
        })
        .await?;
    if report.appended > 0 {
        let sent = mb
            .folders(account)?
            .into_iter()
            .find(|f| f.special_use.as_deref() == Some("Sent"));
        if let Some(sent) = sent {
            let synced = mb
                .sync_session(imap, account, clock, Some(&sent.name), progress)
                .await?;
            report_sync(account, synced, events);
        }
    }
    Ok(())
}

/// Exponential backoff with jitter.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait before the next attempt: 1 s, 2 s, 4 s … at most [`BACKOFF_MAX`],
    /// each ±20 %.
    fn next_delay(&mut self) -> Duration {
        let base = BACKOFF_FIRST
            .saturating_mul(1u32 << self.failures.min(16))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        let jitter = 0.8 + 0.4 * random_unit();
        base.mul_f64(jitter).min(BACKOFF_MAX)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random number in [0, 1) (0.5 if the system has no randomness to give).
fn random_unit() -> f64 {
    sealpost_crypto::SecretBytes::<8>::random()
        .map(|b| (u64::from_le_bytes(*b.expose()) >> 11) as f64 / (1u64 << 53) as f64)
        .unwrap_or(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::default();
        let secs: Vec<f64> = (0..12).map(|_| b.next_delay().as_secs_f64()).collect();
        for (i, s) in secs.iter().enumerate() {
            let base = (1u64 << i).min(300) as f64;
            assert!(
                *s >= base * 0.8 - 1e-9 && *s <= (base * 1.2).min(300.0) + 1e-9,
                "{i}: {s}"
            );
        }
        assert!(secs[11] <= 300.0);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }

    #[test]
    fn events_serialise_for_the_ui_and_tokens_never() {
        let e = MailEvent::Progress {
            account_id: "a".into(),
            phase: Phase::Offline,
            folder: None,
            done: None,
            total: None,
            message: Some("down".into()),
            retry_in_secs: Some(4),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "progress");
        assert_eq!(v["phase"], "offline");
        assert_eq!(v["accountId"], "a");
        assert_eq!(v["retryInSecs"], 4);
        let o = MailEvent::Outbox {
            account_id: "a".into(),
            message_id: "m@x".into(),
            step: OutboxStepEvent::Sent,
            message: None,
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["step"].as_str()),
            (Some("outbox"), Some("sent"))
        );
        assert_eq!(v["messageId"], "m@x");
        for (step, name) in [
            (OutboxStep::Connecting, "connecting"),
            (OutboxStep::Started, "sending"),
            (OutboxStep::SavingToSent, "savingToSent"),
            (OutboxStep::Cleared, "sent"),
            (OutboxStep::Failed, "failed"),
            (OutboxStep::InDoubt, "inDoubt"),
        ] {
            let event = OutboxStepEvent::of(step).unwrap();
            assert_eq!(serde_json::to_value(event).unwrap(), name);
        }
        for step in [
            OutboxStep::Recorded,
            OutboxStep::Submitted,
            OutboxStep::Accepted,
            OutboxStep::Appended,
        ] {
            assert_eq!(OutboxStepEvent::of(step), None);
        }
        let t = MailEvent::DirectoryTokens(vec!["secret-token".into()]);
        assert!(serde_json::to_value(&t).is_err());
        assert!(!format!("{t:?}").contains("secret-token"));
    }
}
