//! What the app tells its windows without being asked: the core's events under the names
//! of `event_names.rs`, each with a payload type the UI's bindings name.

use sealpost_core::CoreEvent;
use sealpost_core::api::{MailEvent, OutboxStepEvent, Phase};
use serde::Serialize;
use tauri::{Emitter, Runtime};

/// Every event name, in the order of `event_names.rs` (which `build.rs` reads too).
pub const EVENTS: [&str; 5] = include!("event_names.rs");
/// A mail account's background work moved on.
pub const MAIL_PROGRESS: &str = EVENTS[0];
/// Messages arrived in, left or changed in some folders.
pub const MAIL_CHANGED: &str = EVENTS[1];
/// An outgoing message moved on.
pub const OUTBOX: &str = EVENTS[2];
/// The profile was locked.
pub const LOCKED: &str = EVENTS[3];
/// An opened message reads differently now (its sender's key arrived).
pub const MESSAGE_CHANGED: &str = EVENTS[4];

/// `mail-progress`: what an account's worker is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct MailProgress {
    /// The account.
    pub account_id: String,
    /// What it is doing.
    pub phase: Phase,
    /// The folder being synced.
    pub folder: Option<String>,
    /// New messages of that folder stored so far.
    pub done: Option<u32>,
    /// New messages of that folder to fetch.
    pub total: Option<u32>,
    /// What went wrong, in words (offline).
    pub message: Option<String>,
    /// Seconds until the next attempt (offline).
    pub retry_in_secs: Option<u32>,
}

/// `mail-changed`: lists showing these folders should be read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct MailChanged {
    /// The account.
    pub account_id: String,
    /// The folders, by IMAP name.
    pub folders: Vec<String>,
}

/// `outbox`: an outgoing message moved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEvent {
    /// The account.
    pub account_id: String,
    /// Its Message-ID.
    pub message_id: String,
    /// Where it stands.
    pub step: OutboxStepEvent,
    /// Why it failed, in words.
    pub message: Option<String>,
}

/// `message-changed`: open this message again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "camelCase")]
pub struct MessageChanged {
    /// The message.
    pub id: i64,
}

fn small(n: Option<usize>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Sends a core event to every window.
pub fn emit<R: Runtime>(app: &tauri::AppHandle<R>, event: CoreEvent) {
    let sent = match event {
        CoreEvent::Mail(MailEvent::Progress {
            account_id,
            phase,
            folder,
            done,
            total,
            message,
            retry_in_secs,
        }) => app.emit(
            MAIL_PROGRESS,
            MailProgress {
                account_id,
                phase,
                folder,
                done: small(done),
                total: small(total),
                message,
                retry_in_secs: retry_in_secs.map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
            },
        ),
        CoreEvent::Mail(MailEvent::Changed {
            account_id,
            folders,
        }) => app.emit(
            MAIL_CHANGED,
            MailChanged {
                account_id,
                folders,
            },
        ),
        CoreEvent::Mail(MailEvent::Outbox {
            account_id,
            message_id,
            step,
            message,
        }) => app.emit(
            OUTBOX,
            OutboxEvent {
                account_id,
                message_id,
                step,
                message,
            },
        ),
        // One-time credentials: the core spends them; they never reach a window.
        CoreEvent::Mail(MailEvent::DirectoryTokens(_)) => Ok(()),
        CoreEvent::MessageChanged { id } => app.emit(MESSAGE_CHANGED, MessageChanged { id }),
        CoreEvent::Locked => app.emit(LOCKED, ()),
    };
    if let Err(e) = sent {
        eprintln!("sealpost: an event did not reach the window: {e}");
    }
}
