//! One mail account's background work on the session thread: the account's loop from
//! [`crate::mailbox::scheduler`] (sync, outbox, IDLE, back-off), its events passed on to
//! the UI as [`SessionEvent::Mail`] as they happen (progress, changed folders, and each
//! outbox entry's steps: connecting, sending, saving to Sent, sent, failed with the
//! reason, in doubt), and the key directory's proof tokens spent as blocking jobs.

use std::rc::Rc;

use tokio::sync::{Notify, mpsc};

use super::{EventSink, Job, LocalFuture, SessionEvent};
use crate::mailbox::MailAccount;
use crate::mailbox::scheduler::{self, MailEvent, Phase};
use crate::vault::Unlocked;
use crate::{SystemClock, sync};

/// The handle the session keeps; dropping it stops the work.
pub(super) struct Worker {
    wake: Rc<Notify>,
    stop: Rc<Notify>,
}

impl Worker {
    /// A worker for `account` and the future that does its work (to be spawned on the
    /// session thread's LocalSet).
    pub(super) fn new(
        u: Rc<Unlocked>,
        account: MailAccount,
        events: EventSink,
        jobs: mpsc::WeakUnboundedSender<Job>,
    ) -> (Self, LocalFuture) {
        let wake = Rc::new(Notify::new());
        let stop = Rc::new(Notify::new());
        let task = {
            let wake = Rc::clone(&wake);
            let stop = Rc::clone(&stop);
            Box::pin(async move {
                let account_id = account.id.clone();
                let pass_on = |event: MailEvent| match event {
                    MailEvent::DirectoryTokens(tokens) => confirm_directory_tokens(&jobs, tokens),
                    other => events(SessionEvent::Mail(other)),
                };
                tokio::select! {
                    () = stop.notified() => {}
                    fatal = scheduler::run_account(&u, account, &SystemClock, &pass_on, &wake) => {
                        // Only what waiting cannot fix ends the loop: say so, in words.
                        events(SessionEvent::Mail(MailEvent::Progress {
                            account_id,
                            phase: Phase::Offline,
                            folder: None,
                            done: None,
                            total: None,
                            message: Some(fatal.to_string()),
                            retry_in_secs: None,
                        }));
                    }
                }
            }) as LocalFuture
        };
        (Self { wake, stop }, task)
    }

    /// Asks for a cycle now (cuts an IDLE or a back-off short).
    pub(super) fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// Proof mails of the key directory arrived: spend their tokens (the sync server's client
/// is blocking, so this runs as a blocking job on the session thread).
fn confirm_directory_tokens(jobs: &mpsc::WeakUnboundedSender<Job>, tokens: Vec<String>) {
    let Some(tx) = jobs.upgrade() else {
        return;
    };
    let _ = tx.send(Job::Blocking(Box::new(move |ctx| {
        let Ok((u, password)) = ctx.unlocked_with_password() else {
            return;
        };
        for token in &tokens {
            // A token of someone else's claim does nothing; a failure is retried when
            // the user publishes again.
            let _ = sync::confirm_published_key(&u, &password, token, &ctx.clock);
        }
    })));
}
