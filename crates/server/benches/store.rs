//! The stores' figures: operations per second with 50 concurrent tasks, for
//!
//! - a login's store work as the service does it: `account` (a read),
//!   `charge_login_and_stage` (a durable commit), `login_state` (a read) and
//!   `complete_login` (a commit), each task on its own account;
//! - an authenticated request's store work: `session` (one read);
//!
//! on SQLite (one store, then two stores on one file standing for two processes) and on
//! PostgreSQL (durable: `fsync=on`, `synchronous_commit=on`; and the tests' `fsync=off`).
//! Then the cost of SQLite's `synchronous=FULL`: commits per second of one counter
//! update on a bare connection under FULL, NORMAL and OFF.
//!
//! Beside each rate, this process's CPU per operation: what the store costs the server
//! (for PostgreSQL, the client side only).
//!
//! Run: `cargo bench -p sealpost-server --bench store` (`SEALPOST_BENCH_SECS` sets the
//! seconds per figure, default 3).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealpost_server::store::{
    Charge, LoginState, NewAccount, PostgresStore, Session, SqliteStore, Store,
};
use sealpost_testkit::postgres::PostgresCluster;

const TASKS: usize = 50;
const NOW: i64 = 1_800_000_000;

fn main() {
    let secs = std::env::var("SEALPOST_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let run_for = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{TASKS} concurrent tasks, {secs} s per figure, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.sqlite3");
        let one: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let stores = [one.clone()];
        measure("SQLite (synchronous=FULL), one store", &stores, run_for).await;
        let two: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let stores = [one, two];
        measure_logins("SQLite, two stores on one file", &stores, run_for, "x").await;

        for (label, durable) in [
            ("PostgreSQL 15, fsync=on", true),
            ("PostgreSQL 15, fsync=off", false),
        ] {
            let cluster = if durable {
                PostgresCluster::start_durable()
            } else {
                PostgresCluster::start()
            }
            .unwrap();
            let url = cluster.create_database("bench").unwrap();
            let one: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
            measure(
                &format!("{label}, one pool of 16"),
                std::slice::from_ref(&one),
                run_for,
            )
            .await;
            let two: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
            measure_logins(
                &format!("{label}, two pools of 16"),
                &[one, two],
                run_for,
                "x",
            )
            .await;
        }
    });

    let dir = tempfile::tempdir().unwrap();
    for mode in ["FULL", "NORMAL", "OFF"] {
        let (rate, cpu_us) =
            bare_sqlite_commits(&dir.path().join(format!("{mode}.sqlite3")), mode, run_for);
        println!(
            "bare SQLite WAL, synchronous={mode:<6}: {rate:>9.0} commits/s (one connection), \
             {cpu_us:>5.1} µs CPU each"
        );
    }
}

/// Both figures on `stores` (tasks alternate between them).
async fn measure(label: &str, stores: &[Arc<dyn Store>], run_for: Duration) {
    measure_logins(label, stores, run_for, "").await;
    let first = stores.first().unwrap();
    for t in 0..TASKS {
        // The sessions the logins above made are in the way of nothing: these are others.
        login(first, &format!("user{t}"), &session_token(t)).await;
    }
    let (ops, cpu_us) = run(stores, run_for, |t, s| async move {
        assert!(s.session(&session_token(t), NOW).await.unwrap().is_some());
    })
    .await;
    println!("{label}: session lookup            {ops:>9.0} ops/s     {cpu_us:>6.1} µs CPU each");
}

async fn measure_logins(label: &str, stores: &[Arc<dyn Store>], run_for: Duration, prefix: &str) {
    let first = stores.first().unwrap();
    for t in 0..TASKS {
        first
            .create_account(NewAccount {
                user: format!("{prefix}user{t}"),
                record: vec![1; 192],
                cloud_wrap: vec![2; 120],
                recovery_wrap: vec![3; 120],
                recovery_verifier: vec![4; 32],
                settings: vec![5; 1024],
                created_at: NOW,
            })
            .await
            .unwrap();
    }
    let prefix = Arc::new(prefix.to_owned());
    let (ops, cpu_us) = run(stores, run_for, move |t, s| {
        let user = format!("{prefix}user{t}");
        async move {
            login(&s, &user, &random_token()).await;
        }
    })
    .await;
    println!("{label}: a login's store work      {ops:>9.0} logins/s  {cpu_us:>6.1} µs CPU each");
}

/// The store calls of one successful login, in the service's order.
async fn login(s: &Arc<dyn Store>, user: &str, token: &[u8]) {
    assert!(s.account(user).await.unwrap().is_some());
    let id = random_token();
    let state = LoginState {
        user: user.to_owned(),
        device_id: "dev".into(),
        device_name: "Bench".into(),
        state: vec![6; 250],
        expires_at: NOW + 120,
    };
    let charged = s
        .charge_login_and_stage(i64::MAX, &id, state)
        .await
        .unwrap();
    assert!(matches!(charged, Charge::Charged { .. }));
    let staged = s.login_state(&id, NOW).await.unwrap().unwrap();
    let session = Session {
        token_hash: token.to_vec(),
        user: staged.user,
        device_id: staged.device_id,
        created_at: NOW,
        expires_at: NOW + 3600,
    };
    assert!(
        s.complete_login(&id, &staged.device_name, session)
            .await
            .unwrap()
            .is_some()
    );
}

/// A distinct 32-byte token (or id) for each call.
fn random_token() -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 32);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut token = vec![0; 32];
    token[..8].copy_from_slice(&n.to_be_bytes());
    token
}

fn session_token(t: usize) -> Vec<u8> {
    let mut token = vec![0; 32];
    token[..8].copy_from_slice(&(t as u64).to_be_bytes());
    token
}

/// Runs `op` in a loop on each of [`TASKS`] tasks for `run_for`; operations per second,
/// and this process's CPU time (user + system, every thread: the runtime's workers, the
/// SQLite writer) per operation in µs. PostgreSQL's own processes are not in it.
async fn run<F, Fut>(stores: &[Arc<dyn Store>], run_for: Duration, op: F) -> (f64, f64)
where
    F: Fn(usize, Arc<dyn Store>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let cpu = cpu_time::ProcessTime::now();
    let start = Instant::now();
    let deadline = start + run_for;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = stores[t % stores.len()].clone();
        let op = op.clone();
        tasks.spawn(async move {
            let mut n = 0_u64;
            while Instant::now() < deadline {
                op(t, store.clone()).await;
                n += 1;
            }
            n
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap();
    }
    let cpu_s = cpu.elapsed().as_secs_f64();
    (
        total as f64 / start.elapsed().as_secs_f64(),
        cpu_s / total.max(1) as f64 * 1e6,
    )
}

/// Commits per second of `UPDATE … RETURNING` in `BEGIN IMMEDIATE` on one connection,
/// and CPU µs (user + system) per commit.
fn bare_sqlite_commits(path: &Path, synchronous: &str, run_for: Duration) -> (f64, f64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE c (k TEXT NOT NULL PRIMARY KEY, n INTEGER NOT NULL) STRICT;
         INSERT INTO c VALUES ('alice', 0);",
    )
    .unwrap();
    let cpu = cpu_time::ThreadTime::now();
    let start = Instant::now();
    let mut n = 0_u64;
    while start.elapsed() < run_for {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let _: i64 = tx
            .query_row(
                "UPDATE c SET n = n + 1 WHERE k = 'alice' RETURNING n",
                [],
                |r| r.get(0),
            )
            .unwrap();
        tx.commit().unwrap();
        n += 1;
    }
    (
        n as f64 / start.elapsed().as_secs_f64(),
        cpu.elapsed().as_secs_f64() / n.max(1) as f64 * 1e6,
    )
}
