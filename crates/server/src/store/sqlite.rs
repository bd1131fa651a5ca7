//! The embedded store: one SQLite file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit that returned is on disk
//! (the failed-login counter and replaced credentials must survive a crash or a power
//! cut; `NORMAL` would only lose the last commits on power loss, but those are exactly
//! the ones an attacker times a crash against). The price is one fsync per commit:
//! `benches/store.rs` measures it against `NORMAL`. One kind of write is lazy on
//! purpose: completing a login (and discarding a failed one) commits with `NORMAL`, so it
//! reaches the disk with the next flushed commit, typically the next login start, instead
//! of paying an fsync of its own. Losing it in a power cut loses only things that are
//! safe to lose: the new session (the device signs in again), the counter's reset (it
//! stays higher, the safe direction), and the deletion of a pending login that only its
//! client, with its KE3, could finish. Foreign keys on, a busy timeout so
//! several processes on one file wait for each other instead of failing.
//!
//! Schema: every table `STRICT`, every column `NOT NULL`. Migrations are numbered and
//! forward-only; `PRAGMA user_version` is the number applied. They run inside one
//! `BEGIN IMMEDIATE` transaction, so two processes opening a new file at once do not
//! race; a file newer than this code is refused, never "repaired".
//!
//! Several processes may share the file on one machine (WAL needs shared memory, so not
//! over a network file system).
//!
//! Concurrency and group commit: every write is a job for one writer thread that owns the
//! writer connection. The thread takes all the jobs that are waiting (up to
//! [`MAX_BATCH`]) into one `BEGIN IMMEDIATE` transaction (the write lock is taken before
//! anything is read, so a read-modify-write cannot be overtaken by another process), runs
//! them one after the other, commits once, and only then answers each job: a write that
//! returned is on disk, and one fsync serves every login that arrived meanwhile. A job
//! that fails is rolled back alone and gets its error: the batch is rolled back and run
//! again with a savepoint around each job (savepoints are not used up front, as their
//! undo logs cost more than most writes; see `run_batch`). Under load the thread first
//! sleeps a moment to let more jobs arrive (`gather`): at 2,000 logins/s that halves the
//! fsyncs and wake-ups per login. This is what makes SQLite keep up
//! (`benches/login.rs`); alone, a write waits for nothing and is one transaction.
//!
//! Plain point reads run on the calling thread, on one of a few `query_only` reader
//! connections, each behind a [`std::sync::Mutex`] held for the one statement: in WAL
//! mode a reader never waits for a writer, and a lookup by primary key takes
//! microseconds, less than handing it to another thread would.
//!
//! Expiry: a session or login state is alive while `now <= expires_at` ("Unix seconds
//! after which the state is useless"), and [`Store::prune`] deletes the others.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};

use sealpost_transparency::tree::{Hash, NodeId};
use sealpost_transparency::{LogEntry, SignedHead};

use super::{
    Account, Charge, ClaimOutcome, CompletedLogin, Credentials, Device, DirectoryClaimRow,
    DirectoryKey, EventRow, LoginState, NewAccount, NewEvent, Session, Store, StoreError,
};

mod log;

/// How long a statement waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reader connections per store, beside the one writer.
const READERS: usize = 4;

/// The most write jobs one transaction takes.
pub const MAX_BATCH: usize = 256;

/// Batches of more jobs than this do not wait for company: when the writer is the
/// bottleneck, the jobs pile up during each commit anyway, and waiting would only idle
/// it.
const GATHER_BELOW: usize = 8;

/// Under load, how long a batch that must be flushed waits for company (see [`gather`]).
const GATHER_DURABLE: Duration = Duration::from_micros(500);

/// Under load, how long a batch of lazy writes waits for a flushed one to join.
const GATHER_LAZY: Duration = Duration::from_millis(1);

/// The migrations. Index + 1 is the schema version each produces.
const MIGRATIONS: &[&str] = &[
    // 1: secrets, accounts with their settings, pending logins, devices and sessions.
    "CREATE TABLE server_secrets (
         name              TEXT    NOT NULL PRIMARY KEY,
         value             BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE accounts (
         user_name         TEXT    NOT NULL PRIMARY KEY,
         record            BLOB    NOT NULL,
         cloud_wrap        BLOB    NOT NULL,
         recovery_wrap     BLOB    NOT NULL,
         recovery_verifier BLOB    NOT NULL,
         failed_logins     INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
         created_at        INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE settings (
         user_name         TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (user_name),
         version           INTEGER NOT NULL CHECK (version >= 1),
         blob              BLOB    NOT NULL
     ) STRICT;
     CREATE TABLE login_states (
         id                BLOB    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL,
         device_id         TEXT    NOT NULL,
         device_name       TEXT    NOT NULL,
         state             BLOB    NOT NULL,
         expires_at        INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX login_states_by_expiry ON login_states (expires_at);
     CREATE TABLE devices (
         user_name         TEXT    NOT NULL REFERENCES accounts (user_name),
         device_id         TEXT    NOT NULL,
         name              TEXT    NOT NULL,
         created_at        INTEGER NOT NULL,
         last_seen_at      INTEGER NOT NULL,
         PRIMARY KEY (user_name, device_id)
     ) STRICT;
     CREATE TABLE sessions (
         token_hash        BLOB    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL,
         device_id         TEXT    NOT NULL,
         created_at        INTEGER NOT NULL,
         expires_at        INTEGER NOT NULL,
         FOREIGN KEY (user_name, device_id)
             REFERENCES devices (user_name, device_id) ON DELETE CASCADE
     ) STRICT;
     CREATE INDEX sessions_by_device ON sessions (user_name, device_id);
     CREATE INDEX sessions_by_expiry ON sessions (expires_at);",
    // 2: pending logins live for minutes, so the table stays small and pruning it can
    // scan; without the index each login writes two fewer pages to the WAL.
    "DROP INDEX login_states_by_expiry;",
    // 3: the key directory: claims waiting for their mailed token, and published keys.
    "CREATE TABLE directory_claims (
         token_hash        BLOB    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL REFERENCES accounts (user_name),
         address           TEXT    NOT NULL,
         cert              BLOB    NOT NULL,
         expires_at        INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX directory_claims_by_user ON directory_claims (user_name);
     CREATE INDEX directory_claims_by_address ON directory_claims (address);
     CREATE TABLE directory_keys (
         address           TEXT    NOT NULL PRIMARY KEY,
         user_name         TEXT    NOT NULL REFERENCES accounts (user_name),
         cert              BLOB    NOT NULL,
         published_at      INTEGER NOT NULL
     ) STRICT;",
    // 4: the key directory's transparency log, and security events.
    log::MIGRATION,
];

/// The server's state in one SQLite file (the embedded, single-machine default).
///
/// Several `SqliteStore`s (or server processes) may open the same file; every
/// [`Store`] invariant holds across them.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where write jobs go; `None` only while dropping.
    jobs: Option<mpsc::Sender<Box<dyn Write>>>,
    /// The writer thread, joined on drop so the file is closed when the store is gone.
    writer: Option<JoinHandle<()>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// One write job, as the writer thread sees it.
trait Write: Send {
    /// Whether its commit must be flushed before the answer (`synchronous=FULL`).
    fn durable(&self) -> bool;

    /// Runs the write inside the batch's transaction and keeps its outcome; `false` if
    /// it failed. It may run again after the transaction was rolled back.
    fn run(&mut self, conn: &Connection) -> bool;

    /// Answers the caller once the batch is over: the kept outcome if the transaction
    /// committed, else the batch's error.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct WriteJob<T, F> {
    durable: bool,
    f: F,
    outcome: Option<Result<T, StoreError>>,
    answer: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Write for WriteJob<T, F>
where
    T: Send,
    F: Fn(&Connection) -> Result<T, StoreError> + Send,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, conn: &Connection) -> bool {
        // A panic becomes the job's error; the writer thread carries on.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (self.f)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a write failed unexpectedly".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(StoreError::Backend("the write did not run".into())),
        };
        // The caller may have gone (its request was dropped); the write stands.
        let _ = self.answer.send(result);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop after the jobs already queued.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the SQLite writer thread panicked");
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("readers", &self.inner.readers.len())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    /// Blocking: call it at start-up, or from `spawn_blocking`.
    ///
    /// Fails with [`StoreError::Backend`] if the file cannot be opened, is not a
    /// database, or has a schema newer than this server knows.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .db_at("opening the file")?;
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .db_at("setting the busy timeout")?;
        enable_wal(&writer)?;
        writer
            .pragma_update(None, "synchronous", "FULL")
            .db_at("setting synchronous")?;
        writer
            .pragma_update(None, "foreign_keys", "ON")
            .db_at("enabling foreign keys")?;
        stable_plans(&writer)?;
        // Undo logs of savepoints (the "sub-journal": see `run_batch`) are otherwise a
        // 64 KiB buffer allocated and freed each time: glibc then hands the memory back
        // to the kernel and faults it in again, with a TLB flush across CPUs each round
        // (it was a third of a login's store CPU in `benches/store.rs`). In memory mode
        // they grow in 1 KiB pieces from the ordinary heap.
        writer
            .pragma_update(None, "temp_store", "MEMORY")
            .db_at("keeping temporary data in memory")?;
        migrate(&mut writer)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .db_at("opening a reader")?;
            reader
                .busy_timeout(BUSY_TIMEOUT)
                .db_at("setting the busy timeout")?;
            reader
                .pragma_update(None, "query_only", "ON")
                .db_at("making a reader query-only")?;
            stable_plans(&reader)?;
            // A reader may be the last connection to close, which checkpoints the WAL.
            reader
                .pragma_update(None, "synchronous", "FULL")
                .db_at("setting synchronous")?;
            readers.push(Mutex::new(reader));
        }
        let (jobs, queue) = mpsc::channel::<Box<dyn Write>>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_batches(writer, &queue))
            .map_err(|e| StoreError::Backend(format!("starting the SQLite writer: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                writer: Some(thread),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` on the writer thread inside a `BEGIN IMMEDIATE` transaction (shared with
    /// the other writes waiting at that moment, under a savepoint of its own) and
    /// returns its value once the transaction has committed. `f` returning an error
    /// rolls back what it did, and only that.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_with(true, f).await
    }

    /// [`SqliteStore::write`] for what may reach the disk with the next flushed commit
    /// (see the module's doc on durability).
    async fn write_lazily<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_with(false, f).await
    }

    async fn write_with<T, F>(&self, durable: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Box::new(WriteJob {
            durable,
            f,
            outcome: None,
            answer,
        });
        self.inner
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    /// Runs the read-only `f` on a reader connection, on this thread (see the module's
    /// doc: a point read in WAL mode does not wait for writers).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let conn = self.inner.reader()?;
        f(&conn)
    }
}

/// The writer thread: one transaction per batch of waiting jobs, until the store is
/// dropped.
fn write_batches(mut conn: Connection, queue: &mpsc::Receiver<Box<dyn Write>>) {
    let mut batch: Vec<Box<dyn Write>> = Vec::with_capacity(MAX_BATCH);
    // The connection was opened with synchronous=FULL.
    let mut flushing = true;
    // Whether the previous batch had company but not a crowd: then more writes are on
    // their way, and they are worth waiting for.
    let mut busy = false;
    while let Ok(first) = queue.recv() {
        batch.push(first);
        gather(queue, &mut batch, busy);
        busy = (2..=GATHER_BELOW).contains(&batch.len());
        let committed = run_batch(&mut conn, &mut flushing, &mut batch);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.len(), "a SQLite write batch failed");
        }
        for job in batch.drain(..) {
            job.answer(committed.clone());
        }
    }
}

/// Takes the jobs waiting behind the first (up to [`MAX_BATCH`]). Under moderate load
/// (`busy`: the previous batch had 2 to [`GATHER_BELOW`] jobs) it first lets more
/// arrive, as PostgreSQL's `commit_delay` does: for [`GATHER_DURABLE`] if the batch must
/// be flushed, so that one fsync serves more writes, or [`GATHER_LAZY`] if it holds only
/// lazy writes, so that they can ride along with a flushed batch instead of costing a
/// commit of their own. It sleeps rather than waking for each arrival, so the writers
/// hand over their jobs without a wake-up. Alone, a write waits for nothing.
fn gather(queue: &mpsc::Receiver<Box<dyn Write>>, batch: &mut Vec<Box<dyn Write>>, busy: bool) {
    drain(queue, batch);
    if busy && batch.len() < MAX_BATCH {
        let durable = batch.iter().any(|job| job.durable());
        std::thread::sleep(if durable { GATHER_DURABLE } else { GATHER_LAZY });
        drain(queue, batch);
    }
}

fn drain(queue: &mpsc::Receiver<Box<dyn Write>>, batch: &mut Vec<Box<dyn Write>>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Runs a batch in one transaction and commits it. The jobs first run one after the
/// other with nothing between them: a savepoint per job would keep an undo log of every
/// page it touches, which costs more than most of the writes themselves. If one fails,
/// the transaction is rolled back and, unless that job was alone, the batch runs again
/// with each job under its own savepoint, so that the failure is undone alone and the
/// others commit. Jobs only read and write the database, so running one again on the
/// state the rollback restored does what its first run did.
fn run_batch(
    conn: &mut Connection,
    flushing: &mut bool,
    batch: &mut [Box<dyn Write>],
) -> Result<(), StoreError> {
    let durable = batch.iter().any(|job| job.durable());
    let tx = begin(conn, flushing, durable)?;
    if batch.iter_mut().all(|job| job.run(&tx)) {
        return tx.commit().db();
    }
    tx.rollback().db()?;
    if batch.len() == 1 {
        // Nothing to commit: the one job's outcome is its error.
        return Ok(());
    }
    let tx = begin(conn, flushing, durable)?;
    for job in batch.iter_mut() {
        in_savepoint(&tx, job.as_mut())?;
    }
    tx.commit().db()
}

/// Begins a batch's transaction, flushed at commit or not (WAL: `NORMAL` commits reach
/// the disk with the next `FULL` one, or at a checkpoint).
fn begin<'c>(
    conn: &'c mut Connection,
    flushing: &mut bool,
    durable: bool,
) -> Result<rusqlite::Transaction<'c>, StoreError> {
    if *flushing != durable {
        let pragma = if durable {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        conn.prepare_cached(pragma).db()?.execute([]).db()?;
        *flushing = durable;
    }
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .db()
}

/// Runs one job under a savepoint: kept if it succeeds, rolled back alone if it fails.
fn in_savepoint(conn: &Connection, job: &mut dyn Write) -> Result<(), StoreError> {
    // Cached statements: a batch runs these once per job.
    conn.prepare_cached("SAVEPOINT job")
        .db()?
        .execute([])
        .db()?;
    if !job.run(conn) {
        conn.prepare_cached("ROLLBACK TO job")
            .db()?
            .execute([])
            .db()?;
    }
    conn.prepare_cached("RELEASE job").db()?.execute([]).db()?;
    Ok(())
}

impl Inner {
    /// A free reader if there is one, else waits for one (round robin).
    fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Some(reader) = self.readers.get(start.wrapping_add(i) % n) {
                match reader.try_lock() {
                    Ok(guard) => return Ok(guard),
                    Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
        }
        self.readers
            .get(start % n.max(1))
            .map(lock)
            .ok_or_else(|| StoreError::Backend("the store has no reader connection".into()))
    }
}

/// Turns on the query planner stability guarantee. Without it, SQLite (built with
/// STAT4, as rusqlite's bundled copy is) marks a statement whose plan might depend on a
/// bound value to be compiled again whenever that value changes, which the session
/// lookup's join did on every call: a cached statement was parsed and planned anew each
/// time (`benches/store.rs`, "session lookup"). Our statements are point lookups whose
/// plans never depend on the values.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .db_at("enabling the query planner stability guarantee")?;
    Ok(())
}

/// Locks a connection. A poisoned lock means a panic inside a closure; rusqlite's
/// `Transaction` rolled back on unwind, so the connection is still sound.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Switches the file to WAL (a persistent setting). On a new file that another process
/// is opening too, SQLite can answer "busy" without consulting the busy handler, so
/// this retries until [`BUSY_TIMEOUT`].
fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::Backend(format!(
                    "SQLite refused WAL mode (journal_mode is {mode})"
                )));
            }
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).db_at("switching to WAL"),
        }
    }
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db_at("locking the schema")?;
    let current: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .db_at("reading the schema version")?;
    let applied = usize::try_from(current).map_err(|_| {
        StoreError::Backend(format!(
            "the database has an invalid schema version {current}"
        ))
    })?;
    if current > known {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this server knows \
             ({known}); refusing to open it"
        )));
    }
    for sql in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(sql).db_at("migrating")?;
    }
    if applied < 4 {
        // Keys published before the log existed get their entries now, stamped with the
        // time of the migration.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        log::backfill(&tx, now)?;
    }
    tx.pragma_update(None, "user_version", known)
        .db_at("migrating")?;
    tx.commit().db_at("migrating")
}

/// `rusqlite::Result` into the store's error, without blob contents (SQLite's messages
/// name tables and constraints, never values).
trait Db<T> {
    fn db(self) -> Result<T, StoreError>;

    /// With the step that failed, for the errors of opening and migrating.
    fn db_at(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(format!("SQLite: {e}")))
    }

    fn db_at(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(format!("SQLite ({what}): {e}")))
    }
}

fn account_from(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user: r.get(0)?,
        record: r.get(1)?,
        cloud_wrap: r.get(2)?,
        recovery_wrap: r.get(3)?,
        recovery_verifier: r.get(4)?,
        failed_logins: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn account_exists(c: &Connection, user: &str) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM accounts WHERE user_name = ?1")
        .db()?
        .exists(params![user])
        .db()
}

fn login_state_from(r: &Row<'_>) -> rusqlite::Result<LoginState> {
    Ok(LoginState {
        user: r.get(0)?,
        device_id: r.get(1)?,
        device_name: r.get(2)?,
        state: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

/// Charges a login attempt: the check against the limit and the increment are one
/// statement, so no other writer can come between them.
fn charge(c: &Connection, user: &str, limit: i64) -> Result<Charge, StoreError> {
    let charged: Option<i64> = c
        .prepare_cached(
            "UPDATE accounts SET failed_logins = failed_logins + 1
             WHERE user_name = ?1 AND failed_logins < ?2
             RETURNING failed_logins",
        )
        .db()?
        .query_row(params![user, limit], |r| r.get(0))
        .optional()
        .db()?;
    Ok(match charged {
        Some(attempts) => Charge::Charged { attempts },
        None if account_exists(c, user)? => Charge::Locked,
        None => Charge::NoAccount,
    })
}

fn insert_login_state(c: &Connection, id: &[u8], state: &LoginState) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO login_states (id, user_name, device_id, device_name, state, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        id,
        state.user,
        state.device_id,
        state.device_name,
        state.state,
        state.expires_at,
    ])
    .db()?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .db()?
                .query_row(params![name], |r| r.get(0))
                .optional()
                .db()
        })
        .await
    }

    async fn put_server_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO server_secrets (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .db()?
            .execute(params![name, value])
            .db()?;
            c.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .db()?
                .query_row(params![name], |r| r.get(0))
                .db()
        })
        .await
    }

    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
        self.write(move |c| {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO accounts (user_name, record, cloud_wrap, recovery_wrap,
                                           recovery_verifier, failed_logins, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
                     ON CONFLICT (user_name) DO NOTHING",
                )
                .db()?
                .execute(params![
                    account.user,
                    account.record,
                    account.cloud_wrap,
                    account.recovery_wrap,
                    account.recovery_verifier,
                    account.created_at,
                ])
                .db()?;
            if inserted == 0 {
                return Err(StoreError::AccountExists);
            }
            c.prepare_cached("INSERT INTO settings (user_name, version, blob) VALUES (?1, 1, ?2)")
                .db()?
                .execute(params![account.user, account.settings])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            c.prepare_cached(concat!(
                "SELECT user_name, record, cloud_wrap, recovery_wrap, recovery_verifier, ",
                "failed_logins, created_at FROM accounts WHERE user_name = ?1"
            ))
            .db()?
            .query_row(params![user], account_from)
            .optional()
            .db()
        })
        .await
    }

    async fn charge_login_and_stage(
        &self,
        limit: i64,
        id: &[u8],
        state: LoginState,
    ) -> Result<Charge, StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            let charged = charge(c, &state.user, limit)?;
            if let Charge::Charged { .. } = charged {
                insert_login_state(c, &id, &state)?;
            }
            Ok(charged)
        })
        .await
    }

    async fn login_state(&self, id: &[u8], now: i64) -> Result<Option<LoginState>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT user_name, device_id, device_name, state, expires_at
                 FROM login_states WHERE id = ?1 AND expires_at >= ?2",
            )
            .db()?
            .query_row(params![id, now], login_state_from)
            .optional()
            .db()
        })
        .await
    }

    async fn discard_login_state(&self, id: &[u8]) -> Result<bool, StoreError> {
        let id = id.to_vec();
        self.write_lazily(move |c| {
            let deleted = c
                .prepare_cached("DELETE FROM login_states WHERE id = ?1")
                .db()?
                .execute(params![id])
                .db()?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn complete_login(
        &self,
        id: &[u8],
        device_name: &str,
        session: Session,
    ) -> Result<Option<CompletedLogin>, StoreError> {
        let (id, device_name) = (id.to_vec(), device_name.to_owned());
        self.write_lazily(move |c| {
            let taken: Option<(String, String)> = c
                .prepare_cached(
                    "DELETE FROM login_states
                     WHERE id = ?1 AND expires_at >= ?2 AND user_name = ?3 AND device_id = ?4
                     RETURNING user_name, device_id",
                )
                .db()?
                .query_row(
                    params![id, session.created_at, session.user, session.device_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .db()?;
            let Some((user, device_id)) = taken else {
                return Ok(None);
            };
            // The writer thread runs one job at a time inside BEGIN IMMEDIATE, so nothing
            // comes between this read and the reset.
            let (failed_before, cloud_wrap): (i64, Vec<u8>) = c
                .prepare_cached(
                    "SELECT failed_logins, cloud_wrap FROM accounts WHERE user_name = ?1",
                )
                .db()?
                .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?
                .ok_or(StoreError::NoAccount)?;
            c.prepare_cached("UPDATE accounts SET failed_logins = 0 WHERE user_name = ?1")
                .db()?
                .execute(params![user])
                .db()?;
            let known_device = c
                .prepare_cached("SELECT 1 FROM devices WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .exists(params![user, device_id])
                .db()?;
            // The account exists (read above) and the device is signed in by this very
            // statement, so the session's foreign key holds without checking.
            c.prepare_cached(
                "INSERT INTO devices (user_name, device_id, name, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (user_name, device_id)
                 DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at",
            )
            .db()?
            .execute(params![user, device_id, device_name, session.created_at])
            .db()?;
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, user_name, device_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .db()?
            .execute(params![
                session.token_hash,
                session.user,
                session.device_id,
                session.created_at,
                session.expires_at,
            ])
            .db()?;
            let failed_attempts = failed_before.saturating_sub(1).max(0);
            let (settings_version, settings) = c
                .prepare_cached("SELECT version, blob FROM settings WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
                .db()?;
            Ok(Some(CompletedLogin {
                failed_attempts,
                cloud_wrap,
                settings_version,
                settings,
                new_device: !known_device,
            }))
        })
        .await
    }

    async fn reset_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        let user = user.to_owned();
        self.write(move |c| {
            let changed = c
                .prepare_cached("UPDATE accounts SET failed_logins = 0 WHERE user_name = ?1")
                .db()?
                .execute(params![user])
                .db()?;
            if changed == 0 {
                return Err(StoreError::NoAccount);
            }
            Ok(())
        })
        .await
    }

    async fn replace_credentials(
        &self,
        user: &str,
        credentials: Credentials,
    ) -> Result<(), StoreError> {
        let user = user.to_owned();
        self.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE accounts SET record = ?2, cloud_wrap = ?3 WHERE user_name = ?1",
                )
                .db()?
                .execute(params![user, credentials.record, credentials.cloud_wrap])
                .db()?;
            if changed == 0 {
                return Err(StoreError::NoAccount);
            }
            Ok(())
        })
        .await
    }

    async fn replace_recovery(
        &self,
        user: &str,
        recovery_wrap: &[u8],
        recovery_verifier: &[u8],
    ) -> Result<(), StoreError> {
        let (user, wrap, verifier) = (
            user.to_owned(),
            recovery_wrap.to_vec(),
            recovery_verifier.to_vec(),
        );
        self.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE accounts SET recovery_wrap = ?2, recovery_verifier = ?3
                     WHERE user_name = ?1",
                )
                .db()?
                .execute(params![user, wrap, verifier])
                .db()?;
            if changed == 0 {
                return Err(StoreError::NoAccount);
            }
            Ok(())
        })
        .await
    }

    async fn put_login_state(&self, id: &[u8], state: LoginState) -> Result<(), StoreError> {
        let id = id.to_vec();
        self.write(move |c| insert_login_state(c, &id, &state))
            .await
    }

    async fn take_login_state(
        &self,
        id: &[u8],
        now: i64,
    ) -> Result<Option<LoginState>, StoreError> {
        let id = id.to_vec();
        self.write(move |c| {
            // Deleted whether or not it has expired: an expired state is useless anyway.
            let taken = c
                .prepare_cached(
                    "DELETE FROM login_states WHERE id = ?1
                     RETURNING user_name, device_id, device_name, state, expires_at",
                )
                .db()?
                .query_row(params![id], login_state_from)
                .optional()
                .db()?;
            Ok(taken.filter(|s| now <= s.expires_at))
        })
        .await
    }

    async fn devices(&self, user: &str) -> Result<Vec<Device>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            // TEXT compares with BINARY collation: byte order, like PostgreSQL's "C".
            c.prepare_cached(
                "SELECT device_id, name, created_at, last_seen_at FROM devices
                 WHERE user_name = ?1 ORDER BY device_id",
            )
            .db()?
            .query_map(params![user], |r| {
                Ok(Device {
                    device_id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                })
            })
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()
        })
        .await
    }

    async fn revoke_device(&self, user: &str, device_id: &str) -> Result<bool, StoreError> {
        let (user, device_id) = (user.to_owned(), device_id.to_owned());
        self.write(move |c| {
            // Explicit, not only through the foreign key's cascade.
            c.prepare_cached("DELETE FROM sessions WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .execute(params![user, device_id])
                .db()?;
            let removed = c
                .prepare_cached("DELETE FROM devices WHERE user_name = ?1 AND device_id = ?2")
                .db()?
                .execute(params![user, device_id])
                .db()?;
            Ok(removed > 0)
        })
        .await
    }

    async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT s.token_hash, s.user_name, s.device_id, s.created_at, s.expires_at
                 FROM sessions s
                 JOIN devices d ON d.user_name = s.user_name AND d.device_id = s.device_id
                 WHERE s.token_hash = ?1 AND s.expires_at >= ?2",
            )
            .db()?
            .query_row(params![token_hash, now], |r| {
                Ok(Session {
                    token_hash: r.get(0)?,
                    user: r.get(1)?,
                    device_id: r.get(2)?,
                    created_at: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            })
            .optional()
            .db()
        })
        .await
    }

    async fn delete_sessions_except(
        &self,
        user: &str,
        keep_device: &str,
    ) -> Result<(), StoreError> {
        let (user, keep_device) = (user.to_owned(), keep_device.to_owned());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE user_name = ?1 AND device_id <> ?2")
                .db()?
                .execute(params![user, keep_device])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn settings(&self, user: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT version, blob FROM settings WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()
        })
        .await
    }

    async fn put_settings(
        &self,
        user: &str,
        expected: i64,
        blob: &[u8],
    ) -> Result<i64, StoreError> {
        let (user, blob) = (user.to_owned(), blob.to_vec());
        self.write(move |c| {
            let new: Option<i64> = c
                .prepare_cached(
                    "UPDATE settings SET version = version + 1, blob = ?3
                     WHERE user_name = ?1 AND version = ?2
                     RETURNING version",
                )
                .db()?
                .query_row(params![user, expected, blob], |r| r.get(0))
                .optional()
                .db()?;
            if let Some(version) = new {
                return Ok(version);
            }
            let current: Option<i64> = c
                .prepare_cached("SELECT version FROM settings WHERE user_name = ?1")
                .db()?
                .query_row(params![user], |r| r.get(0))
                .optional()
                .db()?;
            Err(match current {
                Some(current) => StoreError::VersionConflict { current },
                None => StoreError::NoAccount,
            })
        })
        .await
    }

    async fn put_directory_claim(
        &self,
        claim: DirectoryClaimRow,
        now: i64,
        per_user: i64,
        per_address: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        self.write(move |c| {
            let live = |column: &str, value: &str| -> Result<i64, StoreError> {
                c.prepare_cached(&format!(
                    "SELECT count(*) FROM directory_claims WHERE {column} = ?1 AND expires_at >= ?2"
                ))
                .db()?
                .query_row(params![value, now], |r| r.get(0))
                .db()
            };
            if live("user_name", &claim.user)? >= per_user {
                return Ok(ClaimOutcome::TooManyForUser);
            }
            if live("address", &claim.address)? >= per_address {
                return Ok(ClaimOutcome::TooManyForAddress);
            }
            if !account_exists(c, &claim.user)? {
                return Err(StoreError::NoAccount);
            }
            c.prepare_cached(
                "INSERT INTO directory_claims (token_hash, user_name, address, cert, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .db()?
            .execute(params![
                claim.token_hash,
                claim.user,
                claim.address,
                claim.cert,
                claim.expires_at
            ])
            .db()?;
            Ok(ClaimOutcome::Stored)
        })
        .await
    }

    async fn delete_directory_claim(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let token_hash = token_hash.to_vec();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM directory_claims WHERE token_hash = ?1")
                .db()?
                .execute(params![token_hash])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn confirm_directory_claim(
        &self,
        token_hash: &[u8],
        user: &str,
        now: i64,
    ) -> Result<Option<DirectoryKey>, StoreError> {
        let (token_hash, user) = (token_hash.to_vec(), user.to_owned());
        self.write(move |c| {
            let taken: Option<(String, Vec<u8>)> = c
                .prepare_cached(
                    "DELETE FROM directory_claims
                     WHERE token_hash = ?1 AND user_name = ?2 AND expires_at >= ?3
                     RETURNING address, cert",
                )
                .db()?
                .query_row(params![token_hash, user, now], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .db()?;
            let Some((address, cert)) = taken else {
                return Ok(None);
            };
            let time = u64::try_from(now).unwrap_or(0);
            let log_index = log::append(c, &LogEntry::publish(&address, &cert, time))?;
            c.prepare_cached(
                "INSERT INTO directory_keys (address, user_name, cert, published_at, log_index)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (address) DO UPDATE SET user_name = excluded.user_name,
                     cert = excluded.cert, published_at = excluded.published_at,
                     log_index = excluded.log_index",
            )
            .db()?
            .execute(params![
                address,
                user,
                cert,
                now,
                i64::try_from(log_index).unwrap_or(i64::MAX)
            ])
            .db()?;
            Ok(Some(DirectoryKey {
                address,
                user: user.clone(),
                cert,
                published_at: now,
                log_index,
            }))
        })
        .await
    }

    async fn directory_key(&self, address: &str) -> Result<Option<DirectoryKey>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT address, user_name, cert, published_at, log_index FROM directory_keys
                 WHERE address = ?1 AND log_index >= 0",
            )
            .db()?
            .query_row(params![address], |r| {
                Ok(DirectoryKey {
                    address: r.get(0)?,
                    user: r.get(1)?,
                    cert: r.get(2)?,
                    published_at: r.get(3)?,
                    log_index: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                })
            })
            .optional()
            .db()
        })
        .await
    }

    async fn delete_directory_key(
        &self,
        user: &str,
        address: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (user, address) = (user.to_owned(), address.to_owned());
        self.write(move |c| {
            let deleted = c
                .prepare_cached("DELETE FROM directory_keys WHERE address = ?1 AND user_name = ?2")
                .db()?
                .execute(params![address, user])
                .db()?;
            if deleted > 0 {
                let time = u64::try_from(now).unwrap_or(0);
                log::append(c, &LogEntry::unpublish(&address, time))?;
            }
            Ok(deleted > 0)
        })
        .await
    }

    async fn prune(&self, now: i64, events_before: i64) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM security_events WHERE at < ?1")
                .db()?
                .execute(params![events_before])
                .db()?;
            c.prepare_cached("DELETE FROM sessions WHERE expires_at < ?1")
                .db()?
                .execute(params![now])
                .db()?;
            c.prepare_cached("DELETE FROM login_states WHERE expires_at < ?1")
                .db()?
                .execute(params![now])
                .db()?;
            c.prepare_cached("DELETE FROM directory_claims WHERE expires_at < ?1")
                .db()?
                .execute(params![now])
                .db()?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT 1")
                .db()?
                .query_row([], |r| r.get::<_, i64>(0))
                .db()
                .map(|_| ())
        })
        .await
    }

    async fn count_sessions(&self, now: i64) -> Result<i64, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT count(*) FROM sessions WHERE expires_at >= ?1")
                .db()?
                .query_row(params![now], |r| r.get(0))
                .db()
        })
        .await
    }

    async fn log_size(&self) -> Result<u64, StoreError> {
        self.read(log::size).await
    }

    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.read(|c| log::nodes(c, ids)).await
    }

    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| log::entries(c, start, end)).await
    }

    async fn put_log_head(&self, head: SignedHead) -> Result<SignedHead, StoreError> {
        self.write(move |c| log::put_head(c, &head)).await
    }

    async fn latest_log_head(&self) -> Result<Option<SignedHead>, StoreError> {
        self.read(log::latest_head).await
    }

    async fn log_heads(&self, after: u64, limit: u64) -> Result<Vec<SignedHead>, StoreError> {
        self.read(|c| log::heads(c, after, limit)).await
    }

    async fn add_event(&self, event: NewEvent, keep: i64) -> Result<(), StoreError> {
        self.write(move |c| log::add_event(c, &event, keep)).await
    }

    async fn events(
        &self,
        user: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(|c| log::events(c, user, after, limit)).await
    }
}
