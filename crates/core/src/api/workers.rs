//! One mail account's background work while the profile is unlocked: the account's loop
//! from [`crate::mailbox::scheduler`] (sync, outbox, IDLE, back-off) as a task on the
//! core's runtime with a store connection of its own. Its events reach the shell as
//! [`CoreEvent::Mail`] as they happen; the key directory's proof tokens found in new mail
//! are spent as background jobs.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{CoreEvent, EventSink, Open};
use crate::mailbox::scheduler::{self, MailEvent, Phase};
use crate::mailbox::{MailAccount, Mailbox};

/// The handle the core keeps; dropping it stops the work.
pub(super) struct Worker {
    wake: Arc<Notify>,
    stop: CancellationToken,
}

impl Worker {
    /// Starts the worker of `account` as a job of `open` (a lock stops it). The task
    /// holds the profile only weakly: the worker map inside it holds the task's handle.
    pub(super) fn start(open: &Arc<Open>, account: MailAccount) -> Self {
        let wake = Arc::new(Notify::new());
        let stop = open.cancel.child_token();
        let task = {
            let (wake, stop) = (Arc::clone(&wake), stop.clone());
            let weak = Arc::downgrade(open);
            let sink = Arc::clone(&open.events);
            let (u, clock) = (Arc::clone(&open.u), Arc::clone(&open.clock));
            async move {
                let account_id = account.id.clone();
                let events = {
                    let sink = Arc::clone(&sink);
                    move |event: MailEvent| match event {
                        MailEvent::DirectoryTokens(tokens) => {
                            confirm_directory_tokens(&weak, tokens);
                        }
                        other => sink(CoreEvent::Mail(other)),
                    }
                };
                let mb = match Mailbox::open(&u, Arc::clone(&clock)) {
                    Ok(mb) => mb,
                    Err(e) => return offline(&sink, account_id, &e),
                };
                drop(u);
                tokio::select! {
                    () = stop.cancelled() => {}
                    fatal = scheduler::run_account(mb, account, &*clock, &events, &wake) => {
                        // Only what waiting cannot fix ends the loop: say so, in words.
                        offline(&sink, account_id, &fatal);
                    }
                }
            }
        };
        open.rt.spawn(open.jobs.track_future(task));
        Self { wake, stop }
    }

    /// Asks for a cycle now (cuts an IDLE or a back-off short).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn offline(sink: &EventSink, account_id: String, why: &crate::CoreError) {
    sink(CoreEvent::Mail(MailEvent::Progress {
        account_id,
        phase: Phase::Offline,
        folder: None,
        done: None,
        total: None,
        message: Some(why.to_string()),
        retry_in_secs: None,
    }));
}

/// Proof mails of the key directory arrived: spend their tokens in the background (a
/// token of someone else's claim does nothing; a failure is retried when the user
/// publishes again).
fn confirm_directory_tokens(open: &Weak<Open>, tokens: Vec<String>) {
    let Some(open) = open.upgrade() else {
        return;
    };
    let o = Arc::clone(&open);
    open.background(async move {
        let Ok(remote) = o.remote() else {
            return;
        };
        for token in &tokens {
            let _ = remote.confirm_published_key(token).await;
        }
    });
}
