//! The use-case API: what a Sealpost shell (the desktop app, the command line) asks of
//! one profile, and nothing else.
//!
//! [`Core`] is a cheap, `Send + Sync` handle to one profile directory. Its services
//! group the use cases:
//!
//! | service | what |
//! |---|---|
//! | [`Core::profile`] | unlock, lock, local password and recovery code, the recovery kit, secrets |
//! | [`Core::account`] | the account on the sync server: create, sign in, recover, devices, settings sync |
//! | [`Core::mail`] | mail accounts, folders, the list, search, the reader, flags, sync |
//! | [`Core::compose`] | recipients' keys, attachments, drafts, sending, the outbox |
//! | [`Core::keys`] | the own OpenPGP key, contacts' keys, the key directory, WKD |
//!
//! Every method is `async` and may be called from any runtime or thread; what it gives
//! back is plain data ([`views`]). What happens without being asked (mail arriving,
//! outbox steps, the profile locked) reaches the shell as [`CoreEvent`]s.
//!
//! # Concurrency
//!
//! The core runs on a runtime of its own (two worker threads and a blocking pool), so
//! it behaves the same under the app's runtime, the command line's and a test's:
//!
//! - **Store reads** (the list, a folder page, a search, a message) run on the blocking
//!   pool, each on a pooled connection of its own. The store is SQLite in WAL mode, so a
//!   read sees the last commit and never waits for a writer.
//! - **Argon2id** (unlock, sign-in, OPAQUE) and **OpenPGP** (decrypting a message) run on
//!   the blocking pool; the async task that waits for them holds no thread.
//! - **Network** clients are async with timeouts: the sync server's (30 s a request), IMAP
//!   and SMTP (30 s a step). A server that accepts and never answers costs the call that
//!   waits for it, and nothing else.
//! - **Mail workers** (one per account: sync, outbox, IDLE) are tasks with a
//!   `Mailbox` (and so a store connection) of their own.
//! - **Locking** cancels every job of the unlocked profile at its next await, waits for
//!   the steps that cannot be cut (a SQLite transaction, an Argon2id run, a change of
//!   the password or the recovery code, which the server and this device must both
//!   make) to end, and only then returns: by then the keys are wiped (the last
//!   reference to the unlocked vault is gone) and the store holds whole transactions
//!   only.
//!
//! # Opening a message
//!
//! A message is decrypted once per opening: [`MailApi::open_message`] decrypts it on the
//! blocking pool and keeps the result in a cache of the unlocked profile (bounded, wiped
//! when evicted and on lock) that the mail frame ([`MailApi::frame`]) and attachment
//! saving read from. Nothing waits for the network on that path: when the signature's
//! key is not yet known or confirmed, the key directory is asked in the background and a
//! [`CoreEvent::MessageChanged`] follows if it knew the key.

mod account;
mod compose;
mod keys;
mod mail;
mod mail_accounts;
mod opened;
mod profile;
mod reading;
pub mod views;
mod workers;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::account::{AccountApi, default_device_name};
pub use self::compose::ComposeApi;
pub use self::keys::KeysApi;
pub use self::mail::{MAX_PAGE, MailApi, safe_file_name};
pub use self::mail_accounts::{OAuthSignIn, OpenUrl};
use self::opened::OpenedCache;
pub use self::profile::{ProfileApi, check_password};
pub use self::views::*;
use self::workers::Worker;
pub use crate::mailbox::oauth::{OAuthChoice, SIGN_IN_TIMEOUT};
pub use crate::mailbox::parse_flag;
use crate::mailbox::{ComposeAttachment, MailAccount, Mailbox};
pub use crate::sync::directory_token;
use crate::vault::{self, Locked, Unlocked};
use crate::{Clock, CoreError, SystemClock};
pub use sealpost_crypto::{Password, RecoveryCode};
pub use sealpost_mail::Flag;
pub use sealpost_pgp::Passphrase;

/// What the core tells the shell without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreEvent {
    /// A mail account's background work: progress, changed folders, outbox steps
    /// (never [`MailEvent::DirectoryTokens`]: the core spends those itself).
    Mail(MailEvent),
    /// An opened message reads differently now (its sender's key arrived): open it again.
    MessageChanged {
        /// The message.
        id: i64,
    },
    /// The profile was locked.
    Locked,
}

/// Where events go (the app turns them into UI events).
pub type EventSink = Arc<dyn Fn(CoreEvent) + Send + Sync>;

/// How a [`Core`] is set up.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The profile directory.
    pub profile_dir: PathBuf,
    /// The sync server's base URL, for a new account or a sign-in.
    pub server_url: String,
    /// This device's name, as other devices list it.
    pub device_name: String,
    /// Extra CA certificates (PEM) trusted for mail accounts added here, for local test
    /// servers (`--demo`); empty in normal use.
    pub mail_extra_roots_pem: String,
    /// Work in the background while unlocked: the mail workers (sync, outbox, IDLE) and
    /// a settings sync after each unlock. The app does; the command line syncs when told
    /// to (what a change starts, a settings sync after a new account say, runs either way).
    pub background: bool,
    /// One autoconfig URL template (`{domain}`, `{email}`) to ask instead of the usual
    /// places, with no guessing: for tests that serve the document on loopback.
    pub autoconfig_url: Option<String>,
}

/// A handle to one profile and everything the shells do with it. Clone it freely; the
/// core's runtime stops (and the profile is locked) when the last handle is dropped.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("profile_dir", &self.inner.config.profile_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: CoreConfig,
    /// The Web Key Directory's HTTPS client.
    wkd: crate::wkd::WkdClient,
    clock: Arc<dyn Clock>,
    events: EventSink,
    runtime: Runtime,
    state: Mutex<State>,
    /// Serialises what changes the profile's state (create, sign in, unlock, lock, a new
    /// password): two of them never interleave. Reads never take it.
    lifecycle: tokio::sync::Mutex<()>,
}

/// The core's runtime, shut down without blocking when the last handle goes (which may
/// happen inside another runtime).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

enum State {
    Absent,
    Locked(Locked),
    Open(Arc<Open>),
}

/// An unlocked profile and what lives only while it is. Jobs hold it (never the
/// [`Core`], whose last handle must be able to stop the runtime they run on).
struct Open {
    u: Arc<Unlocked>,
    clock: Arc<dyn Clock>,
    events: EventSink,
    /// The core's runtime, for jobs this profile starts by itself.
    rt: tokio::runtime::Handle,
    /// Whether mail workers run ([`CoreConfig::background`]).
    background: bool,
    /// For the sync server when the saved session token has expired; wiped on lock.
    password: Mutex<Password>,
    /// The code of an account made in this session, until the user confirms it is saved.
    recovery_code: Mutex<Option<RecoveryCode>>,
    /// Files picked for composes, and the attachments of reopened drafts, by token.
    picked: Mutex<HashMap<String, Picked>>,
    /// The mail workers, by account id.
    workers: Mutex<HashMap<String, Worker>>,
    /// Store connections for the API's calls.
    pool: Mutex<Vec<Mailbox>>,
    /// Opened messages, for the reader, the frame and attachments.
    opened: OpenedCache,
    /// The keys for reading mail, kept while the vault does not change.
    keyring: Mutex<Option<(u64, Arc<crate::keys::Keyring>)>>,
    /// Cancelled on lock: every job of this profile ends at its next await.
    cancel: CancellationToken,
    /// Every job of this profile (the mail workers too), waited for on lock.
    jobs: TaskTracker,
    /// The background jobs among them (settings syncs, key look-ups), which
    /// [`Core::settle`] waits for.
    pending: TaskTracker,
}

/// What a compose's attachment token stands for.
enum Picked {
    /// A file the user picked; read when the compose is saved or sent.
    File(PathBuf),
    /// An attachment of a reopened draft, kept as it was saved.
    Kept(ComposeAttachment),
}

impl Core {
    /// Starts the core for the profile in `config.profile_dir` (which need not exist).
    pub fn start(config: CoreConfig, events: EventSink) -> Result<Self, CoreError> {
        Self::start_with_clock(config, events, Arc::new(SystemClock))
    }

    /// [`Core::start`] with another clock (tests).
    pub fn start_with_clock(
        config: CoreConfig,
        events: EventSink,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sealpost-core")
            .enable_all()
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot start the core's runtime: {e}")))?;
        let core = Self {
            inner: Arc::new(Inner {
                wkd: crate::wkd::WkdClient::new()?,
                config,
                clock,
                events,
                runtime: Runtime(Some(runtime)),
                state: Mutex::new(State::Absent),
                lifecycle: tokio::sync::Mutex::new(()),
            }),
        };
        core.reload();
        Ok(core)
    }

    /// The profile's use cases that need no sync server.
    pub fn profile(&self) -> ProfileApi<'_> {
        ProfileApi { core: self }
    }

    /// The account on the sync server.
    pub fn account(&self) -> AccountApi<'_> {
        AccountApi { core: self }
    }

    /// Mail accounts and reading mail.
    pub fn mail(&self) -> MailApi<'_> {
        MailApi { core: self }
    }

    /// Writing and sending mail.
    pub fn compose(&self) -> ComposeApi<'_> {
        ComposeApi { core: self }
    }

    /// OpenPGP keys: the own key and contacts'.
    pub fn keys(&self) -> KeysApi<'_> {
        KeysApi { core: self }
    }

    /// The sync server this profile uses (its account's, else the configured one).
    pub fn server_url(&self) -> String {
        if let Ok(open) = self.open()
            && let Ok(Some(account)) = crate::sync::account(&open.u)
        {
            return account.server_url;
        }
        self.inner.config.server_url.clone()
    }

    /// Which screen to show at start.
    pub async fn status(&self) -> Result<Status, CoreError> {
        self.reload_if_absent();
        let (state, user) = match &*self.state() {
            State::Absent => (ProfileState::None, None),
            State::Locked(l) => (ProfileState::Locked, Some(l.info().user_name.clone())),
            State::Open(o) => (ProfileState::Unlocked, Some(o.u.info().user_name.clone())),
        };
        Ok(Status {
            state,
            user,
            sync_server: self.server_url(),
        })
    }

    /// Waits until the background work started so far (a settings sync after a change,
    /// a key directory confirmation) has ended: the command line calls it before it
    /// exits, so a command does everything the app's would.
    pub async fn settle(&self) {
        let Ok(open) = self.open() else {
            return;
        };
        let pending = open.pending.clone();
        drop(open);
        let _ = self
            .spawn(async move {
                pending.close();
                pending.wait().await;
                pending.reopen();
                Ok(())
            })
            .await;
    }

    /// A weak reference to the unlocked vault, for tests that check it is gone (its keys
    /// wiped) after a lock.
    #[doc(hidden)]
    pub fn unlocked_for_tests(&self) -> Option<Weak<impl Send + Sync>> {
        self.open().ok().map(|o| Arc::downgrade(&o.u))
    }

    // ---------------------------------------------------------------- internals

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    fn emit(&self, event: CoreEvent) {
        (self.inner.events)(event);
    }

    /// Runs `fut` on the core's runtime and waits for it, from whatever runtime the
    /// caller is on.
    async fn spawn<T, F>(&self, fut: F) -> Result<T, CoreError>
    where
        F: Future<Output = Result<T, CoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let handle = match &self.inner.runtime.0 {
            Some(rt) => rt.spawn(fut),
            None => return Err(ended()),
        };
        match handle.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(CoreError::Internal("a step failed unexpectedly".into())),
            Err(_) => Err(CoreError::Locked),
        }
    }

    /// Runs `f` with the unlocked profile on the core's blocking pool, as a job that a
    /// lock waits for; [`CoreError::Locked`] when the profile is not unlocked.
    async fn with_open<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        F: FnOnce(&Open) -> Result<T, CoreError> + Send + 'static,
        T: Send + 'static,
    {
        let open = self.open()?;
        let rt = self.inner.runtime.0.as_ref().ok_or_else(ended)?;
        let token = open.jobs.token();
        let handle = rt.spawn_blocking(move || {
            let _job = token;
            f(&open)
        });
        match handle.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(CoreError::Internal("a step failed unexpectedly".into())),
            Err(_) => Err(CoreError::Locked),
        }
    }

    /// [`Core::with_open`] with a store connection from the pool.
    async fn with_store<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        F: FnOnce(&Open, &mut Mailbox) -> Result<T, CoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.with_open(move |open| {
            let mut mb = open.mailbox()?;
            let result = f(open, &mut mb);
            open.give_back(mb);
            result
        })
        .await
    }

    /// Runs the future `make` builds with the unlocked profile as a job on the core's
    /// runtime: a lock cancels it at its next await and waits for it to end.
    async fn job<T, F, Fut>(&self, make: F) -> Result<T, CoreError>
    where
        F: FnOnce(Arc<Open>) -> Fut,
        Fut: Future<Output = Result<T, CoreError>> + Send + 'static,
        T: Send + 'static,
    {
        self.committing_job(move |open| {
            let cancel = open.cancel.clone();
            let fut = make(open);
            async move {
                cancel
                    .run_until_cancelled(fut)
                    .await
                    .unwrap_or(Err(CoreError::Locked))
            }
        })
        .await
    }

    /// [`Core::job`] for a change of what the sync server holds that this device must
    /// mirror (a new password, a new recovery code): a lock waits for it but does not
    /// cut it, so the change ends whole on both sides and its result (a code to show)
    /// reaches the caller. Network timeouts bound the wait.
    async fn committing_job<T, F, Fut>(&self, make: F) -> Result<T, CoreError>
    where
        F: FnOnce(Arc<Open>) -> Fut,
        Fut: Future<Output = Result<T, CoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let open = self.open()?;
        let jobs = open.jobs.clone();
        let fut = make(open);
        self.spawn(jobs.track_future(fut)).await
    }

    /// The unlocked profile, or [`CoreError::Locked`].
    fn open(&self) -> Result<Arc<Open>, CoreError> {
        match &*self.state() {
            State::Open(o) => Ok(Arc::clone(o)),
            _ => Err(CoreError::Locked),
        }
    }

    /// Reads the profile directory again: absent or locked.
    fn reload(&self) {
        let dir = &self.inner.config.profile_dir;
        let state = if dir.join(vault::VAULT_FILE).exists() {
            match vault::open(dir) {
                Ok(l) => State::Locked(l),
                Err(_) => State::Absent,
            }
        } else {
            State::Absent
        };
        *self.state() = state;
    }

    fn reload_if_absent(&self) {
        if matches!(&*self.state(), State::Absent) {
            self.reload();
        }
    }

    /// Makes `u` the unlocked profile: the store opened, accounts another device added
    /// or removed adopted, the mail workers started (when this core runs them).
    async fn open_with(
        &self,
        u: Unlocked,
        password: Password,
        recovery_code: Option<RecoveryCode>,
    ) -> Result<Arc<Open>, CoreError> {
        let u = Arc::new(u);
        let clock = self.clock();
        let first = {
            let (u, clock) = (Arc::clone(&u), Arc::clone(&clock));
            crate::task::blocking(move || {
                let mb = Mailbox::open(&u, clock)?;
                // Accounts set up (or removed) on another device, whose settings came along.
                mb.adopt_synced_accounts()?;
                let accounts = mb.accounts()?;
                Ok((mb, accounts))
            })
        };
        let (mb, accounts) = match &self.inner.runtime.0 {
            Some(rt) => rt.spawn(first).await.map_err(|_| ended())??,
            None => return Err(ended()),
        };
        let rt = self
            .inner
            .runtime
            .0
            .as_ref()
            .ok_or_else(ended)?
            .handle()
            .clone();
        let open = Arc::new(Open {
            u,
            clock,
            events: Arc::clone(&self.inner.events),
            rt,
            background: self.inner.config.background,
            password: Mutex::new(password),
            recovery_code: Mutex::new(recovery_code),
            picked: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            pool: Mutex::new(vec![mb]),
            opened: OpenedCache::default(),
            keyring: Mutex::new(None),
            cancel: CancellationToken::new(),
            jobs: TaskTracker::new(),
            pending: TaskTracker::new(),
        });
        *self.state() = State::Open(Arc::clone(&open));
        for account in accounts {
            open.start_worker(account);
        }
        Ok(open)
    }

    /// Locks: every job of the unlocked profile is cancelled and waited for, the mail
    /// workers stop, and the keys are wiped with the last reference to them.
    async fn close(&self) {
        let was = std::mem::replace(&mut *self.state(), State::Absent);
        self.reload();
        let State::Open(open) = was else {
            return;
        };
        open.cancel.cancel();
        open.jobs.close();
        let jobs = open.jobs.clone();
        drop(open);
        // The tracker counts the blocking steps too (each holds a token): when it is
        // empty, nothing holds the unlocked vault any more.
        let _ = self
            .spawn(async move {
                jobs.wait().await;
                Ok(())
            })
            .await;
    }
}

impl Open {
    fn emit(&self, event: CoreEvent) {
        (self.events)(event);
    }

    /// Starts `fut` in the background as a job of this profile, not waited for (a lock
    /// cancels it; the command line's [`Core::settle`] waits for it).
    fn background<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        let fut = self.pending.track_future(async move {
            cancel.run_until_cancelled(fut).await;
        });
        self.rt.spawn(self.jobs.track_future(fut));
    }

    /// Starts (or restarts) the mail worker of `account`, if this core runs workers.
    fn start_worker(self: &Arc<Self>, account: MailAccount) {
        if !self.background {
            return;
        }
        let id = account.id.clone();
        let worker = Worker::start(self, account);
        self.workers_mut().insert(id, worker);
    }

    /// Wakes every mail worker (a local change waits to be pushed, or mail is expected).
    fn wake_workers(&self) {
        self.workers_mut().values().for_each(Worker::wake);
    }

    /// Brings the synced secrets of this device and the server together in the
    /// background (offline, it waits for the next occasion: nothing is lost, the
    /// secrets stay in the vault), then adopts the accounts another device added or
    /// removed.
    fn sync_settings_later(self: &Arc<Self>) {
        let open = Arc::clone(self);
        self.background(async move {
            let Ok(remote) = open.remote() else {
                return;
            };
            if remote.sync_settings().await.is_ok() {
                let _ = open.adopt_accounts().await;
            }
        });
    }

    /// After the settings were synced: adopts the accounts another device added or
    /// removed, starting or stopping their workers.
    async fn adopt_accounts(self: &Arc<Self>) -> Result<(), CoreError> {
        let o = Arc::clone(self);
        let (added, removed) = crate::task::blocking(move || {
            let mb = o.mailbox()?;
            let adopted = mb.adopt_synced_accounts();
            let added = adopted.and_then(|adopted| {
                let added = adopted
                    .added
                    .iter()
                    .map(|id| mb.account(id))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((added, adopted.removed))
            });
            o.give_back(mb);
            added
        })
        .await?;
        {
            let mut workers = self.workers_mut();
            for id in &removed {
                workers.remove(id);
            }
        }
        for account in added {
            self.start_worker(account);
        }
        Ok(())
    }

    /// A store connection from the pool (a new one when all are in use).
    fn mailbox(&self) -> Result<Mailbox, CoreError> {
        let pooled = lock(&self.pool).pop();
        match pooled {
            Some(mb) => Ok(mb),
            None => Mailbox::open(&self.u, Arc::clone(&self.clock)),
        }
    }

    /// Returns a connection to the pool (a few are kept; more are closed).
    fn give_back(&self, mb: Mailbox) {
        let mut pool = lock(&self.pool);
        if pool.len() < POOL_SIZE {
            pool.push(mb);
        }
    }

    fn workers_mut(&self) -> MutexGuard<'_, HashMap<String, Worker>> {
        lock(&self.workers)
    }

    fn picked_mut(&self) -> MutexGuard<'_, HashMap<String, Picked>> {
        lock(&self.picked)
    }

    /// The account's sync server, with this profile's session.
    fn remote(&self) -> Result<crate::sync::Remote, CoreError> {
        crate::sync::Remote::new(
            Arc::clone(&self.u),
            self.password(),
            Arc::clone(&self.clock),
        )
    }

    fn password(&self) -> Password {
        lock(&self.password).clone()
    }

    /// The password changed: later sign-ins to the server use the new one.
    fn set_password(&self, password: Password) {
        *lock(&self.password) = password;
    }

    fn recovery_code_mut(&self) -> MutexGuard<'_, Option<RecoveryCode>> {
        lock(&self.recovery_code)
    }

    /// The keys for reading mail: loaded once and kept until the vault changes.
    fn keyring(&self) -> Result<Arc<crate::keys::Keyring>, CoreError> {
        let version = self.u.version();
        let mut cached = lock(&self.keyring);
        if let Some((v, ring)) = &*cached
            && *v == version
        {
            return Ok(Arc::clone(ring));
        }
        let ring = Arc::new(crate::keys::Keyring::load(&self.u, &*self.clock)?);
        *cached = Some((version, Arc::clone(&ring)));
        Ok(ring)
    }
}

/// Store connections kept for the API's calls.
const POOL_SIZE: usize = 4;

/// Locks `m`; a panic while it was held (a bug) leaves data that is still whole here,
/// so the lock is taken anyway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ended() -> CoreError {
    CoreError::Internal("the core has stopped".into())
}
