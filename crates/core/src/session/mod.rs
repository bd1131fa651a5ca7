//! One profile, served to a UI from a thread of its own.
//!
//! A desktop app needs an object it can share between threads and call from async
//! commands; the profile needs the opposite: an [`Unlocked`] vault and the mail store hold
//! SQLite connections (usable from one thread at a time) and the mail engine's futures are
//! not `Send`. A [`Session`] bridges the two. It is a cheap, `Send + Sync` handle to a
//! thread that owns the profile's state and runs:
//!
//! - *blocking jobs* (anything that uses the sync server, whose client is blocking, or
//!   Argon2id) one after the other, outside any async runtime;
//! - *async jobs* and the per-account mail workers (sync, outbox, IDLE) as tasks on a
//!   current-thread runtime with a [`tokio::task::LocalSet`], which run whenever the
//!   thread waits for the next job.
//!
//! So the UI never blocks on the profile, every call sees one consistent state, and
//! nothing that holds a key ever crosses a thread. Locking drops the [`Unlocked`] value
//! (its keys are wiped) and aborts the mail workers; the account password kept for the
//! sync server's re-authentication is a [`Password`] and is wiped with it.
//!
//! What the UI gets back is plain data (`camelCase` when serialised). Nothing secret
//! crosses, with one deliberate exception: [`Created::recovery_code`], which the user
//! must see once.

pub mod oauth;
mod view;
mod worker;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use sealpost_crypto::{Password, RecoveryCode};
use sealpost_mail::{Secret, Server};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::mailbox::{
    Compose, ComposeAttachment, FolderInfo, MailAccount, Mailbox, MessageSummary, NewAccount,
    OutboxEntry,
};
use crate::vault::{self, Locked, Unlocked};
use crate::{CoreError, SystemClock, keys, sync};

pub use crate::mailbox::scheduler::{MailEvent, OutboxStepEvent, Phase};
pub use view::{MessageView, MyKey, RecipientKey, SignatureView};

/// What the session tells the UI without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A mail account's background work: progress, changed folders, outbox steps
    /// (never [`MailEvent::DirectoryTokens`]: the session spends those itself).
    Mail(MailEvent),
    /// The profile was locked.
    Locked,
}

/// Where session events go (the app turns them into UI events).
pub type EventSink = Arc<dyn Fn(SessionEvent) + Send + Sync>;

/// How a session is set up.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The profile directory.
    pub profile_dir: PathBuf,
    /// The sync server's base URL, for a new account or a sign-in.
    pub server_url: String,
    /// This device's name, as other devices list it.
    pub device_name: String,
    /// Extra CA certificates (PEM) trusted for mail accounts added in this session, for
    /// local test servers (`--demo`); empty in normal use.
    pub mail_extra_roots_pem: String,
}

/// Where the profile on this device stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProfileState {
    /// No profile yet: create an account or sign in.
    None,
    /// A profile, locked.
    Locked,
    /// Unlocked.
    Unlocked,
}

/// What [`Session::status`] tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Where the profile stands.
    pub state: ProfileState,
    /// The account's user name, when there is a profile.
    pub user: Option<String>,
    /// The sync server's URL.
    pub sync_server: String,
}

/// A new account: the user name, and the recovery code to show once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// The normalised user name.
    pub user: String,
    /// The recovery code, formatted for reading (groups of four).
    pub recovery_code: Zeroizing<String>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// After a sign-in or an unlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The user name.
    pub user: String,
    /// Failed sign-in attempts on the account since the previous successful one (0
    /// after a local unlock, which asks nobody).
    pub failed_attempts: i64,
}

/// A file the user picked for a compose; its path stays in the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedFile {
    /// Names the file in later calls.
    pub token: String,
    /// The file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a compose's attachment token stands for.
enum Picked {
    /// A file the user picked; read when the compose is saved or sent.
    File(PathBuf),
    /// An attachment of a reopened draft, kept as it was saved.
    Kept(ComposeAttachment),
}

/// A saved draft in a list: enough to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftSummary {
    /// Its id.
    pub id: i64,
    /// Its `To` addresses.
    pub to: Vec<String>,
    /// Its subject.
    pub subject: String,
    /// The start of its text.
    pub snippet: String,
    /// When it was last saved (Unix seconds).
    pub updated_at: i64,
}

/// A draft reopened for editing: its attachments are tokens, like picked files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftView {
    /// Its id (pass it back as `draft_id` so saves update this draft).
    pub id: i64,
    /// The sending account.
    pub account_id: String,
    /// What it says, without attachments.
    pub compose: Compose,
    /// Its attachments.
    pub attachments: Vec<PickedFile>,
}

/// A compose as the UI sends it: attachments are tokens from [`Session::pick_files`] or
/// [`Session::open_draft`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeRequest {
    /// The sending account.
    pub account_id: String,
    /// What to send, without attachments.
    pub compose: Compose,
    /// Tokens of picked files.
    pub attachments: Vec<String>,
    /// The draft this compose updates, if saved before.
    pub draft_id: Option<i64>,
}

/// Largest attachment accepted (mail servers refuse far smaller messages anyway).
pub const MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;

// ------------------------------------------------------------------ the thread

type BlockingJob = Box<dyn FnOnce(&Ctx) + Send>;
type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type AsyncJob = Box<dyn FnOnce(Rc<Ctx>) -> LocalFuture + Send>;

enum Job {
    Blocking(BlockingJob),
    Async(AsyncJob),
}

/// A handle to the session thread. Clone it freely; the thread ends (and the profile is
/// locked) when the last handle is dropped.
#[derive(Clone)]
pub struct Session {
    jobs: mpsc::UnboundedSender<Job>,
    server_url: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

/// What the session thread owns.
struct Ctx {
    config: SessionConfig,
    clock: SystemClock,
    events: EventSink,
    jobs: mpsc::WeakUnboundedSender<Job>,
    state: RefCell<State>,
    /// Futures blocking jobs want spawned; the loop spawns them on its LocalSet.
    spawns: RefCell<Vec<LocalFuture>>,
}

enum State {
    Absent,
    Locked(Locked),
    Open(Box<Open>),
}

/// An unlocked profile and what lives only while it is.
struct Open {
    u: Rc<Unlocked>,
    /// For the sync server when the saved session token has expired; wiped on lock.
    password: Password,
    /// The code of an account made in this session, until the user confirms it is saved.
    recovery_code: Option<RecoveryCode>,
    /// Files picked for composes, and the attachments of reopened drafts, by token.
    picked: HashMap<String, Picked>,
    /// The mail workers, by account id.
    workers: HashMap<String, worker::Worker>,
}

impl Session {
    /// Starts the session thread for the profile in `config.profile_dir`.
    pub fn start(config: SessionConfig, events: EventSink) -> Result<Self, CoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let server_url = config.server_url.clone();
        let weak = tx.downgrade();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot start the session runtime: {e}")))?;
        std::thread::Builder::new()
            .name("sealpost-session".into())
            .spawn(move || {
                let ctx = Rc::new(Ctx {
                    state: RefCell::new(State::Absent),
                    spawns: RefCell::new(Vec::new()),
                    config,
                    clock: SystemClock,
                    events,
                    jobs: weak,
                });
                ctx.reload();
                serve(&runtime, &ctx, rx);
                // Drop the workers first, inside the runtime, then the state.
                ctx.close();
            })
            .map_err(|e| CoreError::Internal(format!("cannot start the session thread: {e}")))?;
        Ok(Self {
            jobs: tx,
            server_url,
        })
    }

    /// The sync server this session uses.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// Runs `f` on the session thread, outside the runtime, after the jobs before it.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ctx) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        let job: BlockingJob = Box::new(move |ctx| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx)))
                .unwrap_or_else(|_| Err(CoreError::Internal("a session step failed".into())));
            // The caller may have gone away; then nobody needs the answer.
            let _ = tx.send(result);
        });
        self.jobs.send(Job::Blocking(job)).map_err(|_| ended())?;
        rx.await.map_err(|_| ended())?
    }

    /// Runs the future `f` makes as a task on the session thread.
    async fn local<T, F, Fut>(&self, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Ctx>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, CoreError>> + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: AsyncJob = Box::new(move |ctx| {
            Box::pin(async move {
                let _ = tx.send(f(ctx).await);
            })
        });
        self.jobs.send(Job::Async(job)).map_err(|_| ended())?;
        rx.await.map_err(|_| ended())?
    }

    // -------------------------------------------------------------- the profile

    /// Which screen to show at start.
    pub async fn status(&self) -> Result<Status, CoreError> {
        self.blocking(|ctx| {
            ctx.reload_if_absent();
            let (state, user) = match &*ctx.state.borrow() {
                State::Absent => (ProfileState::None, None),
                State::Locked(l) => (ProfileState::Locked, Some(l.info().user_name.clone())),
                State::Open(o) => (ProfileState::Unlocked, Some(o.u.info().user_name.clone())),
            };
            Ok(Status {
                state,
                user,
                sync_server: ctx.server_url(),
            })
        })
        .await
    }

    /// Creates the account on the sync server and the profile here; keeps the recovery
    /// code until [`Session::forget_recovery_code`] so a kit can be saved.
    pub async fn create_account(
        &self,
        user: String,
        password: Password,
    ) -> Result<Created, CoreError> {
        self.blocking(move |ctx| {
            if !matches!(&*ctx.state.borrow(), State::Absent) {
                return Err(CoreError::ProfileExists(ctx.config.profile_dir.clone()));
            }
            let (u, code) = sync::create_account(
                &ctx.config.profile_dir,
                &ctx.config.server_url,
                &user,
                &password,
                &ctx.config.device_name,
                &ctx.clock,
            )?;
            let created = Created {
                user: u.info().user_name.clone(),
                recovery_code: code.display(),
            };
            ctx.open(u, password, Some(code));
            Ok(created)
        })
        .await
    }

    /// Succeeds only while the profile is unlocked: for the shell to check before it
    /// opens a dialog whose answer would be of no use locked.
    pub async fn require_unlocked(&self) -> Result<(), CoreError> {
        self.blocking(|ctx| ctx.unlocked().map(drop)).await
    }

    /// The recovery kit as text (the code, the user name, the server, what to do with
    /// it), while the code of an account made in this session is still held.
    pub async fn recovery_kit(&self) -> Result<Zeroizing<String>, CoreError> {
        self.blocking(|ctx| {
            let server = ctx.server_url();
            ctx.with_open(|o| {
                let code = o.recovery_code.as_ref().ok_or_else(|| {
                    CoreError::Internal(
                        "the recovery code is shown only once, when it is made; make a new one in \
                         Settings"
                            .into(),
                    )
                })?;
                Ok(recovery_kit_text(
                    &o.u.info().user_name,
                    &server,
                    &code.display(),
                ))
            })
        })
        .await
    }

    /// Makes a new recovery code (asked from Settings, when the old one is lost or was
    /// seen by someone): the password is checked by a fresh sign-in, the server and the
    /// vault replace the old code together, and from then on only the new one recovers
    /// the account. The code is kept in memory for [`Session::recovery_kit`] until the
    /// user says it is saved.
    pub async fn new_recovery_code(
        &self,
        password: Password,
    ) -> Result<Zeroizing<String>, CoreError> {
        self.blocking(move |ctx| {
            ctx.unlocked()?;
            // Its own handle on the vault: the change needs one nobody else holds.
            let mut u = vault::open(&ctx.config.profile_dir)?.unlock(&password)?;
            let code = sync::new_recovery_code(&mut u, &password, &ctx.clock)?;
            let shown = code.display();
            ctx.with_open(|o| {
                o.recovery_code = Some(code);
                Ok(())
            })?;
            Ok(shown)
        })
        .await
    }

    /// Drops the recovery code from memory (the user confirmed it is saved).
    pub async fn forget_recovery_code(&self) -> Result<(), CoreError> {
        self.blocking(|ctx| {
            ctx.with_open(|o| {
                o.recovery_code = None;
                Ok(())
            })
        })
        .await
    }

    /// Signs in with the account's name and password: on a new device this makes the
    /// profile from the server.
    pub async fn sign_in(
        &self,
        user: String,
        password: Password,
    ) -> Result<SessionInfo, CoreError> {
        self.blocking(move |ctx| {
            ctx.drop_open();
            let signed = sync::sign_in(
                &ctx.config.profile_dir,
                &ctx.config.server_url,
                &user,
                &password,
                &ctx.config.device_name,
                &ctx.clock,
            )?;
            let info = SessionInfo {
                user: signed.unlocked.info().user_name.clone(),
                failed_attempts: signed.failed_attempts,
            };
            ctx.open(signed.unlocked, password, None);
            Ok(info)
        })
        .await
    }

    /// Unlocks the profile on this device with its password.
    pub async fn unlock(&self, password: Password) -> Result<SessionInfo, CoreError> {
        self.blocking(move |ctx| {
            ctx.reload_if_absent();
            let u = match &*ctx.state.borrow() {
                State::Absent => {
                    return Err(CoreError::ProfileNotFound(ctx.config.profile_dir.clone()));
                }
                State::Open(o) => {
                    return Ok(SessionInfo {
                        user: o.u.info().user_name.clone(),
                        failed_attempts: 0,
                    });
                }
                State::Locked(l) => l.unlock(&password)?,
            };
            let info = SessionInfo {
                user: u.info().user_name.clone(),
                failed_attempts: 0,
            };
            ctx.open(u, password, None);
            // Changes other devices made while this one was locked.
            ctx.sync_settings_later();
            Ok(info)
        })
        .await
    }

    /// Locks: the keys are wiped and the mail workers stop.
    pub async fn lock(&self) -> Result<(), CoreError> {
        self.blocking(|ctx| {
            ctx.drop_open();
            ctx.reload();
            (ctx.events)(SessionEvent::Locked);
            Ok(())
        })
        .await
    }

    /// Changes the password on the server and here.
    pub async fn change_password(
        &self,
        current: Password,
        next: Password,
    ) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            ctx.unlocked()?;
            // The change opens its own handle on the vault; ours goes first.
            ctx.drop_open();
            let result =
                sync::change_password(&ctx.config.profile_dir, &current, &next, &ctx.clock);
            match result {
                Ok(u) => {
                    ctx.open(u, next, None);
                    Ok(())
                }
                Err(e) => {
                    // Unchanged: open again with the password that still holds.
                    ctx.reload();
                    if let State::Locked(l) = &*ctx.state.borrow()
                        && let Ok(u) = l.unlock(&current)
                    {
                        drop(std::mem::replace(
                            &mut *ctx.state.borrow_mut(),
                            State::Absent,
                        ));
                        ctx.open(u, current, None);
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    // -------------------------------------------------------------- mail accounts

    /// Finds the servers of an address (autoconfig, then well-known names).
    pub async fn discover_account(
        &self,
        address: String,
    ) -> Result<sealpost_mail::autoconfig::AccountSettings, CoreError> {
        self.local(move |ctx| async move {
            // The same trust as the account will have (extra roots only for `--demo`).
            let discovery = sealpost_mail::autoconfig::Discovery::default()
                .with_extra_roots_pem(&ctx.config.mail_extra_roots_pem)?;
            Ok(sealpost_mail::autoconfig::discover(&discovery, &address).await?)
        })
        .await
    }

    /// Checks the account against its servers, then stores it (the password in the
    /// vault), makes the own key for its address if there is none, and starts its worker.
    pub async fn add_mail_account(
        &self,
        address: String,
        login: String,
        imap: Server,
        smtp: Server,
        password: Secret,
    ) -> Result<MailAccount, CoreError> {
        self.local(move |ctx| async move {
            let u = ctx.unlocked()?;
            let new = NewAccount {
                address: address.trim().to_owned(),
                login,
                imap,
                smtp,
                extra_roots_pem: ctx.config.mail_extra_roots_pem.clone(),
            };
            // Checked before anything is stored: a wrong password leaves nothing behind.
            let probe = MailAccount {
                address: new.address.clone(),
                login: new.login.clone(),
                imap: new.imap.clone(),
                smtp: new.smtp.clone(),
                ..ctx.probe_account(new.imap.clone())
            };
            probe
                .check(&sealpost_mail::Credentials::password(
                    new.login.clone(),
                    password.clone(),
                ))
                .await?;
            let account =
                Mailbox::open(&u, &ctx.clock)?.add_account(&new, &password, &ctx.clock)?;
            ctx.account_added(&u, &account)?;
            Ok(account)
        })
        .await
    }

    /// The mail accounts.
    pub async fn mail_accounts(&self) -> Result<Vec<MailAccount>, CoreError> {
        self.blocking(|ctx| {
            let u = ctx.unlocked()?;
            Mailbox::open(&u, &ctx.clock)?.accounts()
        })
        .await
    }

    /// Removes a mail account from this device (its worker stops first); refused while
    /// it holds unsent mail or drafts.
    pub async fn remove_mail_account(&self, account_id: String) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            let worker = ctx.with_open(|o| Ok(o.workers.remove(&account.id)))?;
            match mb.remove_account(&account.id) {
                Ok(()) => {
                    drop(worker);
                    // The removal reaches the other devices.
                    ctx.sync_settings_later();
                    Ok(())
                }
                Err(e) => {
                    // Still there: its worker goes on.
                    drop(worker);
                    drop(mb);
                    ctx.start_worker(&u, account);
                    Err(e)
                }
            }
        })
        .await
    }

    /// Asks every mail worker for a cycle now (sync, outbox, back to IDLE).
    pub async fn sync_now(&self) -> Result<(), CoreError> {
        self.blocking(|ctx| {
            ctx.with_open(|o| {
                for w in o.workers.values() {
                    w.wake();
                }
                Ok(())
            })
        })
        .await
    }

    // -------------------------------------------------------------- reading

    /// The folders of an account.
    pub async fn folders(&self, account_id: String) -> Result<Vec<FolderInfo>, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.folders(&account)
        })
        .await
    }

    /// A window of a folder, newest first, and the folder's size.
    pub async fn messages(
        &self,
        account_id: String,
        folder: String,
        offset: u32,
        limit: u32,
    ) -> Result<(i64, Vec<MessageSummary>), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.list_page(&account, &folder, offset, limit.min(500))
        })
        .await
    }

    /// Messages of an account containing every word of `query`.
    pub async fn search(
        &self,
        account_id: String,
        query: String,
        limit: u32,
    ) -> Result<(i64, Vec<MessageSummary>), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.search_page(&account, &query, limit.min(500))
        })
        .await
    }

    /// Opens a message: decrypted and verified now, HTML cleaned, marked seen.
    pub async fn open_message(&self, id: i64) -> Result<MessageView, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let mut read = mb.read(id, &ctx.clock)?;
            let mut view = view::message_view(&u, &read)?;
            // Signed by a key not (yet) confirmed, or not known: the key directory may
            // hold the sender's proven key. Asked once per opening; offline, the view
            // stays as it is.
            if matches!(view.signature.state, "unconfirmed" | "unknownKey")
                && !view.from.is_empty()
                && sync::account(&u)?.is_some()
                && let Ok(Some(_)) = sync::lookup_directory(&u, &view.from, &ctx.clock)
            {
                read = mb.read(id, &ctx.clock)?;
                view = view::message_view(&u, &read)?;
            }
            if !read.summary.flags.iter().any(|f| f == "\\Seen") {
                mb.set_flag_local(id, sealpost_mail::Flag::Seen, true)?;
                ctx.wake_workers();
            }
            Ok(view)
        })
        .await
    }

    /// The cleaned HTML of message `id` for the mail frame, and whether remote content
    /// from its sender is allowed; `None` when it has no HTML.
    pub async fn message_frame(&self, id: i64) -> Result<Option<(String, bool)>, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let read = mb.read(id, &ctx.clock)?;
            let view = view::message_view(&u, &read)?;
            Ok(view.html.map(|h| (h, view.remote_content_allowed)))
        })
        .await
    }

    /// Allows remote content from the sender of message `id` from now on, and opens it
    /// again.
    pub async fn allow_remote_content(&self, id: i64) -> Result<MessageView, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let read = mb.read(id, &ctx.clock)?;
            view::allow_remote_content(&u, &read, &ctx.clock)?;
            view::message_view(&u, &read)
        })
        .await
    }

    /// Sets or clears `\Seen` or `\Flagged` here at once, and on the server with the
    /// account's next cycle (started now).
    pub async fn set_flag(
        &self,
        id: i64,
        flag: sealpost_mail::Flag,
        on: bool,
    ) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            mb.set_flag_local(id, flag, on)?;
            ctx.wake_workers();
            Ok(())
        })
        .await
    }

    /// Writes attachment `index` of message `id` to `path` (chosen by the user): a
    /// temporary file beside it, renamed into place, so a crash leaves no half file.
    pub async fn save_attachment(
        &self,
        id: i64,
        index: usize,
        path: PathBuf,
    ) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let read = mb.read(id, &ctx.clock)?;
            let attachment = read
                .opened
                .as_ref()
                .and_then(|o| o.attachments.get(index))
                .ok_or_else(|| CoreError::NotInMailStore(format!("attachment {index} of {id}")))?;
            write_atomically(&path, &attachment.data)
        })
        .await
    }

    // -------------------------------------------------------------- compose

    /// Whether each address has a known key; unknown ones are looked up in the key
    /// directory first (found keys are remembered as confirmed contacts).
    pub async fn recipient_keys(
        &self,
        addresses: Vec<String>,
    ) -> Result<Vec<RecipientKey>, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            view::recipient_keys(&u, &addresses, &ctx.clock)
        })
        .await
    }

    /// Remembers files the user picked (through the app's own dialog), by token.
    pub async fn pick_files(&self, paths: Vec<PathBuf>) -> Result<Vec<PickedFile>, CoreError> {
        self.blocking(move |ctx| {
            ctx.with_open(|o| {
                let mut picked = Vec::new();
                for path in paths {
                    let meta = std::fs::metadata(&path).map_err(|e| CoreError::Io {
                        what: "reading a picked file",
                        path: path.clone(),
                        source: e,
                    })?;
                    if !meta.is_file() {
                        return Err(CoreError::BadAddress(format!(
                            "{} is not a file",
                            path.display()
                        )));
                    }
                    if meta.len() > MAX_ATTACHMENT_BYTES {
                        return Err(CoreError::Internal(format!(
                            "{} is larger than {} MB",
                            path.display(),
                            MAX_ATTACHMENT_BYTES / 1024 / 1024
                        )));
                    }
                    let token = crate::mailbox::random_id()?;
                    let name = file_name(&path);
                    o.picked.insert(token.clone(), Picked::File(path));
                    picked.push(PickedFile {
                        token,
                        name,
                        size: meta.len(),
                    });
                }
                Ok(picked)
            })
        })
        .await
    }

    /// Saves a draft (sealed); returns its id.
    pub async fn save_draft(&self, request: ComposeRequest) -> Result<i64, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let compose = ctx.with_attachments(request.compose, &request.attachments)?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&request.account_id)?;
            mb.save_draft(&account, request.draft_id, &compose, &ctx.clock)
        })
        .await
    }

    /// The account's drafts, most recently saved first.
    pub async fn drafts(&self, account_id: String) -> Result<Vec<DraftSummary>, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            Ok(mb
                .drafts(&account)?
                .into_iter()
                .map(|d| DraftSummary {
                    id: d.id,
                    to: d.compose.to.clone(),
                    subject: d.compose.subject.clone(),
                    snippet: d.compose.text.chars().take(120).collect(),
                    updated_at: d.updated_at,
                })
                .collect())
        })
        .await
    }

    /// Reopens a draft: its text, and its attachments as tokens that later saves and the
    /// send take like picked files.
    pub async fn open_draft(&self, account_id: String, id: i64) -> Result<DraftView, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            let mut draft = mb
                .drafts(&account)?
                .into_iter()
                .find(|d| d.id == id)
                .ok_or_else(|| CoreError::NotInMailStore(format!("draft {id}")))?;
            let kept = std::mem::take(&mut draft.compose.attachments);
            let attachments = ctx.with_open(|o| {
                kept.into_iter()
                    .map(|a| {
                        let token = crate::mailbox::random_id()?;
                        let file = PickedFile {
                            token: token.clone(),
                            name: a.name.clone(),
                            size: a.data.len() as u64,
                        };
                        o.picked.insert(token, Picked::Kept(a));
                        Ok(file)
                    })
                    .collect::<Result<Vec<_>, CoreError>>()
            })?;
            Ok(DraftView {
                id: draft.id,
                account_id: account.id,
                compose: draft.compose,
                attachments,
            })
        })
        .await
    }

    /// Deletes a draft; `false` if there was none with that id.
    pub async fn delete_draft(&self, id: i64) -> Result<bool, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            Mailbox::open(&u, &ctx.clock)?.delete_draft(id)
        })
        .await
    }

    /// The account's outbox: what waits to be sent, is being sent, or may have been
    /// sent and waits for the user's word (`inDoubt`).
    pub async fn outbox(&self, account_id: String) -> Result<Vec<OutboxEntry>, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.outbox(&account)
        })
        .await
    }

    /// The user's answer to an entry in doubt: send it again (the account's worker is
    /// woken to do it now).
    pub async fn resend_outbox_entry(&self, account_id: String, id: i64) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.resend_outbox_entry(&account, id)?;
            ctx.with_open(|o| {
                if let Some(w) = o.workers.get(&account.id) {
                    w.wake();
                }
                Ok(())
            })
        })
        .await
    }

    /// The user's answer to an entry in doubt (or one not yet sent): do not send it.
    pub async fn discard_outbox_entry(&self, account_id: String, id: i64) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&account_id)?;
            mb.discard_outbox_entry(&account, id)
        })
        .await
    }

    /// Puts the message in the outbox (encrypted and signed as asked) and starts the
    /// account's worker, which sends it; the draft goes once the message is queued.
    pub async fn send(&self, request: ComposeRequest) -> Result<String, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let compose = ctx.with_attachments(request.compose, &request.attachments)?;
            let mb = Mailbox::open(&u, &ctx.clock)?;
            let account = mb.account(&request.account_id)?;
            let entry = mb.queue(&account, &compose, &ctx.clock)?;
            if let Some(draft) = request.draft_id {
                mb.delete_draft(draft)?;
            }
            (ctx.events)(SessionEvent::Mail(MailEvent::Outbox {
                account_id: account.id.clone(),
                message_id: entry.message_id.clone(),
                step: OutboxStepEvent::Queued,
                message: None,
            }));
            ctx.with_open(|o| {
                if let Some(w) = o.workers.get(&account.id) {
                    w.wake();
                }
                Ok(())
            })?;
            Ok(entry.message_id)
        })
        .await
    }

    // -------------------------------------------------------------- account, keys

    /// The account's devices.
    pub async fn devices(&self) -> Result<Vec<sealpost_proto::DeviceInfo>, CoreError> {
        self.blocking(|ctx| {
            let (u, password) = ctx.unlocked_with_password()?;
            sync::devices(&u, &password, &ctx.clock)
        })
        .await
    }

    /// Revokes a device.
    pub async fn revoke_device(&self, id: String) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let (u, password) = ctx.unlocked_with_password()?;
            sync::revoke_device(&u, &password, &id, &ctx.clock)
        })
        .await
    }

    /// The own OpenPGP key, if there is one.
    pub async fn my_key(&self) -> Result<Option<MyKey>, CoreError> {
        self.blocking(|ctx| {
            let u = ctx.unlocked()?;
            keys::own_key(&u, &ctx.clock)?
                .map(|k| view::my_key(&k, &ctx.clock))
                .transpose()
        })
        .await
    }

    /// The own public key, armored.
    pub async fn export_public_key(&self) -> Result<String, CoreError> {
        self.blocking(|ctx| {
            let u = ctx.unlocked()?;
            let key = keys::own_key(&u, &ctx.clock)?.ok_or(CoreError::NoOwnKey)?;
            Ok(key.public_armored()?)
        })
        .await
    }

    /// Makes the key in `path` (an OpenPGP secret key, e.g. a GnuPG export) the own key,
    /// replacing the current one.
    pub async fn import_key(
        &self,
        path: PathBuf,
        passphrase: Option<sealpost_pgp::Passphrase>,
    ) -> Result<MyKey, CoreError> {
        self.blocking(move |ctx| {
            let u = ctx.unlocked()?;
            let data = Zeroizing::new(std::fs::read(&path).map_err(|e| CoreError::Io {
                what: "reading the key file",
                path: path.clone(),
                source: e,
            })?);
            let key = keys::import_own_key(&u, &data, passphrase.as_ref(), true, &ctx.clock)?;
            ctx.sync_settings_later();
            view::my_key(&key, &ctx.clock)
        })
        .await
    }

    /// Asks the key directory to publish the own key for `address`; the server mails a
    /// proof to the address, which the mail worker spends when it arrives.
    pub async fn publish_key(&self, address: String) -> Result<(), CoreError> {
        self.blocking(move |ctx| {
            let (u, password) = ctx.unlocked_with_password()?;
            sync::publish_key(&u, &password, &address, &ctx.clock)?;
            // The proof mail is on its way: look for it soon.
            ctx.wake_workers();
            Ok(())
        })
        .await
    }
}

fn ended() -> CoreError {
    CoreError::Internal("the session has ended".into())
}

/// The session thread's loop: wait for a job while the tasks run; run it.
fn serve(runtime: &tokio::runtime::Runtime, ctx: &Rc<Ctx>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let local = tokio::task::LocalSet::new();
    loop {
        let next = runtime.block_on(local.run_until(rx.recv()));
        match next {
            None => break,
            Some(Job::Blocking(job)) => job(ctx),
            Some(Job::Async(job)) => {
                let future = job(Rc::clone(ctx));
                local.spawn_local(future);
            }
        }
        // Tasks spawned by a blocking job (the mail workers) start on the LocalSet.
        for task in ctx.take_spawns() {
            local.spawn_local(task);
        }
    }
    drop(local);
}

impl Ctx {
    fn server_url(&self) -> String {
        let own = RefCell::borrow(&self.state);
        if let State::Open(o) = &*own
            && let Ok(Some(account)) = sync::account(&o.u)
        {
            return account.server_url;
        }
        self.config.server_url.clone()
    }

    /// Reads the profile directory again: absent or locked.
    fn reload(&self) {
        let state = if self.config.profile_dir.join(vault::VAULT_FILE).exists() {
            match vault::open(&self.config.profile_dir) {
                Ok(l) => State::Locked(l),
                Err(_) => State::Absent,
            }
        } else {
            State::Absent
        };
        *self.state.borrow_mut() = state;
    }

    fn reload_if_absent(&self) {
        if matches!(&*self.state.borrow(), State::Absent) {
            self.reload();
        }
    }

    fn close(&self) {
        self.drop_open();
        *self.state.borrow_mut() = State::Absent;
    }

    /// Locks: drops the unlocked state (the workers are aborted with it).
    fn drop_open(&self) {
        let was = std::mem::replace(&mut *self.state.borrow_mut(), State::Absent);
        drop(was);
        self.reload();
    }

    fn open(&self, u: Unlocked, password: Password, recovery_code: Option<RecoveryCode>) {
        let u = Rc::new(u);
        *self.state.borrow_mut() = State::Open(Box::new(Open {
            u: Rc::clone(&u),
            password,
            recovery_code,
            picked: HashMap::new(),
            workers: HashMap::new(),
        }));
        // Accounts set up (or removed) on another device, whose settings came along.
        let accounts = Mailbox::open(&u, &self.clock).and_then(|mb| {
            mb.adopt_synced_accounts()?;
            mb.accounts()
        });
        if let Ok(accounts) = accounts {
            for account in accounts {
                self.start_worker(&u, account);
            }
        }
    }

    /// After the settings were synced: adopts the accounts another device added or
    /// removed, starting or stopping their workers.
    fn adopt_accounts(&self, u: &Rc<Unlocked>) -> Result<(), CoreError> {
        let mb = Mailbox::open(u, &self.clock)?;
        let adopted = mb.adopt_synced_accounts()?;
        let added = adopted
            .added
            .iter()
            .map(|id| mb.account(id))
            .collect::<Result<Vec<_>, _>>()?;
        drop(mb);
        self.with_open(|o| {
            for id in &adopted.removed {
                o.workers.remove(id);
            }
            Ok(())
        })?;
        for account in added {
            self.start_worker(u, account);
        }
        Ok(())
    }

    fn unlocked(&self) -> Result<Rc<Unlocked>, CoreError> {
        match &*self.state.borrow() {
            State::Open(o) => Ok(Rc::clone(&o.u)),
            _ => Err(CoreError::Locked),
        }
    }

    fn unlocked_with_password(&self) -> Result<(Rc<Unlocked>, Password), CoreError> {
        match &*self.state.borrow() {
            State::Open(o) => Ok((
                Rc::clone(&o.u),
                Password::new(o.password.expose())
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
            )),
            _ => Err(CoreError::Locked),
        }
    }

    fn with_open<T>(
        &self,
        f: impl FnOnce(&mut Open) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        match &mut *self.state.borrow_mut() {
            State::Open(o) => f(o),
            _ => Err(CoreError::Locked),
        }
    }

    /// What follows a new mail account once it is stored: the own key for its address
    /// (made if there is none), its worker, and a settings sync so the key, the account
    /// and its password or tokens reach the other devices.
    fn account_added(&self, u: &Rc<Unlocked>, account: &MailAccount) -> Result<(), CoreError> {
        keys::ensure_own_key(u, &u.info().user_name, &[&account.address], &self.clock)?;
        self.start_worker(u, account.clone());
        self.sync_settings_later();
        Ok(())
    }

    /// Starts (or restarts) the mail worker of `account`.
    fn start_worker(&self, u: &Rc<Unlocked>, account: MailAccount) {
        let id = account.id.clone();
        let (worker, task) = worker::Worker::new(
            Rc::clone(u),
            account,
            self.events.clone(),
            self.jobs.clone(),
        );
        let _ = self.with_open(|o| {
            o.workers.insert(id, worker);
            Ok(())
        });
        self.spawn(task);
    }

    fn spawn(&self, task: LocalFuture) {
        // Inside an async job the runtime is running: spawn at once; inside a blocking
        // job the loop spawns it right after the job.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_local(task);
        } else {
            self.spawns.borrow_mut().push(task);
        }
    }

    fn take_spawns(&self) -> Vec<LocalFuture> {
        std::mem::take(&mut *self.spawns.borrow_mut())
    }

    /// Brings the synced secrets of this device and the server together, as a job after
    /// the current one (offline, it waits for the next occasion: nothing is lost, the
    /// secrets stay in the vault).
    fn sync_settings_later(&self) {
        let Some(tx) = self.jobs.upgrade() else {
            return;
        };
        let _ = tx.send(Job::Blocking(Box::new(|ctx| {
            if let Ok((u, password)) = ctx.unlocked_with_password()
                && sync::account(&u).ok().flatten().is_some()
            {
                let _ = sync::sync_settings(&u, &password, &ctx.clock);
                let _ = ctx.adopt_accounts(&u);
            }
        })));
    }

    /// Wakes the mail workers (a local change waits to be pushed).
    fn wake_workers(&self) {
        let _ = self.with_open(|o| {
            o.workers.values().for_each(worker::Worker::wake);
            Ok(())
        });
    }

    /// An account that exists only to build connection settings with this session's
    /// trust (for a check before an account is stored, or for discovery).
    fn probe_account(&self, imap: Server) -> MailAccount {
        MailAccount {
            id: String::new(),
            address: String::new(),
            login: String::new(),
            smtp: imap.clone(),
            imap,
            extra_roots_pem: self.config.mail_extra_roots_pem.clone(),
        }
    }

    /// The compose with the picked files read in.
    fn with_attachments(
        &self,
        mut compose: Compose,
        tokens: &[String],
    ) -> Result<Compose, CoreError> {
        // Files are read outside the borrow of the open state.
        let picked: Vec<Result<PathBuf, ComposeAttachment>> = self.with_open(|o| {
            tokens
                .iter()
                .map(|t| match o.picked.get(t) {
                    Some(Picked::File(path)) => Ok(Ok(path.clone())),
                    Some(Picked::Kept(a)) => Ok(Err(a.clone())),
                    None => Err(CoreError::Internal(
                        "that attachment is gone; pick it again".into(),
                    )),
                })
                .collect()
        })?;
        for item in picked {
            let attachment = match item {
                Ok(path) => ComposeAttachment {
                    data: std::fs::read(&path).map_err(|e| CoreError::Io {
                        what: "reading an attachment",
                        path: path.clone(),
                        source: e,
                    })?,
                    name: file_name(&path),
                    content_type: content_type(&path).to_owned(),
                },
                Err(kept) => kept,
            };
            compose.attachments.push(attachment);
        }
        Ok(compose)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into())
}

/// The MIME type of a file, by its extension; `application/octet-stream` otherwise.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "asc" => "application/pgp-keys",
        "odt" => "application/vnd.oasis.opendocument.text",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<(), CoreError> {
    let io = |e: std::io::Error| CoreError::Io {
        what: "saving an attachment",
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.sealpost-partial", file_name(path)));
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

fn recovery_kit_text(user: &str, server: &str, code: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "Sealpost recovery kit\n\
         =====================\n\n\
         User name:      {user}\n\
         Sync server:    {server}\n\
         Recovery code:  {code}\n\n\
         This code unlocks your account if you forget your password, or after too many\n\
         wrong guesses locked it. Anyone with this code and your user name can take over\n\
         the account: keep it offline (printed, in a safe place), never in your mail.\n\n\
         To use it: in Sealpost choose \"Forgot password\", or on the command line run\n\
         `sealpost account recover --user {user}`, enter the code, then a new password.\n"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("/x/Report.PDF")), "application/pdf");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn attachments_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomically(&path, b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/a.bin");
        assert!(write_atomically(&missing, b"x").is_err());
    }

    #[test]
    fn the_kit_names_user_server_and_code() {
        let kit = recovery_kit_text("alice", "https://sync.example", "ABCD-EFGH");
        assert!(kit.contains("alice") && kit.contains("https://sync.example"));
        assert!(kit.contains("ABCD-EFGH"));
    }
}
