//! The store conformance suite: one set of cases, written once against `dyn Store`, run
//! against every backend.
//!
//! - SQLite: a fresh file in a temporary directory per test.
//! - PostgreSQL: a real cluster from the testkit, shared by the tests that run at the same
//!   time (it stops when the last one drops it), with a fresh database per test.
//!
//! "Two instances" below means two stores opened separately on one database (two
//! `SqliteStore::open`s of one file, two `PostgresStore` pools on one database): they
//! stand for two server processes. Backend-specific checks (refusing a newer schema,
//! STRICT tables, errors without secrets) are at the bottom.

// Helpers and cases are not `#[test]` functions, so clippy's test allowances miss them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sealpost_server::store::{
    Account, Charge, ClaimOutcome, CompletedLogin, Credentials, Device, DirectoryClaimRow,
    DirectoryKey, LoginState, NewAccount, NewEvent, PostgresStore, Session, SqliteStore, Store,
    StoreError,
};
use sealpost_testkit::postgres::PostgresCluster;
use sealpost_transparency::tree::{self, inclusion_ranges, nodes_for, root_nodes};
use sealpost_transparency::{EntryKind, LogEntry, Replay, SignedHead, verify_inclusion};
use tempfile::TempDir;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// "Now" in every case, Unix seconds.
const NOW: i64 = 1_800_000_000;

// ---------------------------------------------------------------- backends

/// One database, and how to open another store instance on it.
enum Db {
    Sqlite {
        path: PathBuf,
        _dir: TempDir,
    },
    Postgres {
        url: String,
        _cluster: Arc<PostgresCluster>,
    },
}

/// The cluster the PostgreSQL tests running now share; gone when the last one ends.
static CLUSTER: Mutex<Weak<PostgresCluster>> = Mutex::new(Weak::new());
static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl Db {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Db::Sqlite {
            path: dir.path().join("server.sqlite3"),
            _dir: dir,
        }
    }

    fn postgres(case: &str) -> Self {
        let cluster = {
            let mut slot = CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.upgrade() {
                Some(cluster) => cluster,
                None => {
                    let cluster = Arc::new(PostgresCluster::start().expect("start PostgreSQL"));
                    *slot = Arc::downgrade(&cluster);
                    cluster
                }
            }
        };
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name: String = format!("t{n}_{case}").chars().take(63).collect();
        let url = cluster.create_database(&name).unwrap();
        Db::Postgres {
            url,
            _cluster: cluster,
        }
    }

    async fn try_open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Db::Sqlite { path, .. } => {
                let path = path.clone();
                Arc::new(
                    tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                        .await
                        .unwrap()?,
                )
            }
            Db::Postgres { url, .. } => Arc::new(PostgresStore::connect(url).await?),
        })
    }

    async fn open(&self) -> Arc<dyn Store> {
        self.try_open().await.unwrap()
    }
}

/// Generates, for each case, one test per backend.
macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::Db::sqlite()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(&super::Db::postgres(stringify!($case))).await;
                }
            )+
        }
    };
}

conformance!(
    server_secrets_are_put_once,
    accounts_are_created_once,
    charge_login_counts_and_locks,
    charge_login_is_exact_under_concurrency,
    replace_credentials_keeps_the_counter,
    login_states_are_taken_once_until_they_expire,
    take_login_state_has_one_winner_under_concurrency,
    staging_a_login_charges_and_stores_only_when_charged,
    completing_a_login_consumes_it_once_and_resets_the_counter,
    completing_a_login_has_one_winner_under_concurrency,
    a_failing_write_does_not_spoil_the_writes_beside_it,
    a_write_that_fails_halfway_leaves_nothing_behind,
    directory_claims_are_limited_and_confirmed_once_by_their_owner,
    directory_claim_limits_are_exact_under_concurrency,
    devices_are_upserted_and_listed_in_id_order,
    sessions_expire_and_die_with_their_device,
    delete_sessions_except_keeps_one_device,
    settings_are_compare_and_swap,
    settings_swap_has_one_winner_under_concurrency,
    prune_deletes_only_what_expired,
    state_survives_a_restart,
    first_opens_at_once_migrate_once,
    the_log_is_one_sequence_under_concurrent_publishes,
    log_heads_are_stored_once_per_size,
    security_events_are_kept_per_account_and_bounded,
    ping_and_open_sessions,
);

// ---------------------------------------------------------------- helpers

fn new_account(user: &str) -> NewAccount {
    NewAccount {
        user: user.to_owned(),
        record: format!("record of {user}").into_bytes(),
        cloud_wrap: format!("cloud wrap of {user}").into_bytes(),
        recovery_wrap: format!("recovery wrap of {user}").into_bytes(),
        recovery_verifier: format!("verifier of {user}").into_bytes(),
        settings: format!("settings of {user}").into_bytes(),
        created_at: NOW - 1000,
    }
}

fn login_state(user: &str, expires_at: i64) -> LoginState {
    LoginState {
        user: user.to_owned(),
        device_id: "dev-1".to_owned(),
        device_name: "Alice's laptop".to_owned(),
        state: format!("server state for {user}").into_bytes(),
        expires_at,
    }
}

fn session(token: u8, user: &str, device_id: &str, expires_at: i64) -> Session {
    Session {
        token_hash: vec![token; 32],
        user: user.to_owned(),
        device_id: device_id.to_owned(),
        created_at: NOW,
        expires_at,
    }
}

/// A login state for `device` of `user`, alive until `expires_at`.
fn staged(user: &str, device: &str, expires_at: i64) -> LoginState {
    LoginState {
        device_id: device.to_owned(),
        ..login_state(user, expires_at)
    }
}

/// Ids for staged logins, unique within a test run.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn fresh_id() -> Vec<u8> {
    format!("id-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)).into_bytes()
}

/// One login start as the service makes it: charges an attempt against `user` and
/// stages a pending login under a fresh id; the answer and the id.
async fn charge(s: &Arc<dyn Store>, user: &str, limit: i64) -> (Charge, Vec<u8>) {
    let id = fresh_id();
    let charged = s
        .charge_login_and_stage(limit, &id, staged(user, "dev-1", NOW + 60))
        .await
        .unwrap();
    (charged, id)
}

/// A whole successful login of `device`, as the service makes it: charged and staged,
/// then completed at `at` with the session `token` (valid until `expires_at`). What the
/// completion returned.
async fn sign_in(
    s: &Arc<dyn Store>,
    user: &str,
    device: &str,
    name: &str,
    at: i64,
    token: u8,
    expires_at: i64,
) -> Option<CompletedLogin> {
    let id = fresh_id();
    let charged = s
        .charge_login_and_stage(i64::MAX, &id, staged(user, device, at + 60))
        .await
        .unwrap();
    assert!(matches!(charged, Charge::Charged { .. }), "{charged:?}");
    let session = Session {
        created_at: at,
        ..session(token, user, device, expires_at)
    };
    s.complete_login(&id, name, session).await.unwrap()
}

/// Runs `n` calls at once, alternating between the two instances; all start together.
async fn race<T, F, Fut>(a: &Arc<dyn Store>, b: &Arc<dyn Store>, n: usize, f: F) -> Vec<(usize, T)>
where
    F: Fn(usize, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let call = f(i, store);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            (i, call.await)
        });
    }
    let mut answers = Vec::with_capacity(n);
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    answers.sort_by_key(|(i, _)| *i);
    answers
}

// ---------------------------------------------------------------- the cases

async fn server_secrets_are_put_once(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    assert_eq!(a.server_secret("opaque").await.unwrap(), None);
    assert_eq!(
        a.put_server_secret_if_absent("opaque", b"first")
            .await
            .unwrap(),
        b"first"
    );
    // The second writer gets the first value back, and nothing is overwritten.
    assert_eq!(
        b.put_server_secret_if_absent("opaque", b"second")
            .await
            .unwrap(),
        b"first"
    );
    assert_eq!(a.server_secret("opaque").await.unwrap().unwrap(), b"first");
    assert_eq!(b.server_secret("other").await.unwrap(), None);

    // Concurrent first starts of several processes agree on one value.
    let answers = race(&a, &b, 16, |i, s| async move {
        s.put_server_secret_if_absent("race", format!("candidate {i}").as_bytes())
            .await
            .unwrap()
    })
    .await;
    let stored = b.server_secret("race").await.unwrap().unwrap();
    assert!(stored.starts_with(b"candidate "), "{stored:?}");
    for (i, answer) in answers {
        assert_eq!(answer, stored, "caller {i} was told another value");
    }
}

async fn accounts_are_created_once(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    assert_eq!(a.account("alice").await.unwrap(), None);
    a.create_account(new_account("alice")).await.unwrap();
    assert_eq!(
        b.account("alice").await.unwrap(),
        Some(Account {
            user: "alice".into(),
            record: b"record of alice".to_vec(),
            cloud_wrap: b"cloud wrap of alice".to_vec(),
            recovery_wrap: b"recovery wrap of alice".to_vec(),
            recovery_verifier: b"verifier of alice".to_vec(),
            failed_logins: 0,
            created_at: NOW - 1000,
        })
    );
    assert_eq!(
        b.settings("alice").await.unwrap(),
        Some((1, b"settings of alice".to_vec()))
    );

    // A duplicate is refused and changes nothing.
    let mut impostor = new_account("alice");
    impostor.record = b"impostor".to_vec();
    impostor.settings = b"impostor settings".to_vec();
    assert!(matches!(
        b.create_account(impostor).await,
        Err(StoreError::AccountExists)
    ));
    assert_eq!(
        a.account("alice").await.unwrap().unwrap().record,
        b"record of alice"
    );
    assert_eq!(
        a.settings("alice").await.unwrap(),
        Some((1, b"settings of alice".to_vec()))
    );

    // Names are compared exactly (they arrive normalised).
    assert_eq!(a.account("Alice").await.unwrap(), None);
    assert_eq!(a.account("alice ").await.unwrap(), None);
    a.create_account(new_account("Alice")).await.unwrap();
    assert_eq!(
        a.account("Alice").await.unwrap().unwrap().record,
        b"record of Alice"
    );

    // Concurrent registrations of one name: exactly one wins, whole.
    let answers = race(&a, &b, 8, |i, s| async move {
        let mut account = new_account("carol");
        account.record = format!("record {i}").into_bytes();
        account.settings = format!("settings {i}").into_bytes();
        s.create_account(account).await
    })
    .await;
    let winners: Vec<usize> = answers
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (_, answer) in &answers {
        assert!(
            matches!(answer, Ok(()) | Err(StoreError::AccountExists)),
            "{answer:?}"
        );
    }
    let winner = winners[0];
    let carol = a.account("carol").await.unwrap().unwrap();
    assert_eq!(carol.record, format!("record {winner}").into_bytes());
    assert_eq!(
        b.settings("carol").await.unwrap(),
        Some((1, format!("settings {winner}").into_bytes()))
    );
}

async fn charge_login_counts_and_locks(db: &Db) {
    let s = db.open().await;
    assert_eq!(charge(&s, "nobody", 5).await.0, Charge::NoAccount);
    assert_eq!(s.account("nobody").await.unwrap(), None);
    assert!(matches!(
        s.reset_failed_logins("nobody").await,
        Err(StoreError::NoAccount)
    ));

    s.create_account(new_account("alice")).await.unwrap();
    s.create_account(new_account("bob")).await.unwrap();
    for attempts in 1..=3 {
        assert_eq!(charge(&s, "alice", 3).await.0, Charge::Charged { attempts });
    }
    assert_eq!(charge(&s, "alice", 3).await.0, Charge::Locked);
    assert_eq!(charge(&s, "alice", 3).await.0, Charge::Locked);
    // Nothing was charged while locked.
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 3);
    // Other accounts are not affected.
    assert_eq!(
        charge(&s, "bob", 3).await.0,
        Charge::Charged { attempts: 1 }
    );
    // The limit is the caller's policy: a higher one charges again.
    let (charged, id) = charge(&s, "alice", 5).await;
    assert_eq!(charged, Charge::Charged { attempts: 4 });

    // Four charged, the last one is this successful login: three failed before it.
    let done = s
        .complete_login(&id, "Laptop", session(1, "alice", "dev-1", NOW + 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.failed_attempts, 3);
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 0);
    // A first attempt that succeeds had no failure before it.
    let (charged, id) = charge(&s, "alice", 3).await;
    assert_eq!(charged, Charge::Charged { attempts: 1 });
    let done = s
        .complete_login(&id, "Laptop", session(2, "alice", "dev-1", NOW + 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.failed_attempts, 0);

    // The recovery code (or a signed-in device) unlocks a locked account.
    for _ in 0..3 {
        charge(&s, "alice", 3).await;
    }
    assert_eq!(charge(&s, "alice", 3).await.0, Charge::Locked);
    s.reset_failed_logins("alice").await.unwrap();
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 0);
    assert_eq!(
        charge(&s, "alice", 3).await.0,
        Charge::Charged { attempts: 1 }
    );
    assert_eq!(s.account("bob").await.unwrap().unwrap().failed_logins, 1);
}

async fn charge_login_is_exact_under_concurrency(db: &Db) {
    const TASKS: usize = 50;
    const LIMIT: i64 = 10;
    let (a, b) = (db.open().await, db.open().await);
    a.create_account(new_account("alice")).await.unwrap();

    let answers = race(&a, &b, TASKS, |i, s| async move {
        let id = format!("race-{i}").into_bytes();
        s.charge_login_and_stage(LIMIT, &id, staged("alice", "dev-1", NOW + 60))
            .await
            .unwrap()
    })
    .await;
    let mut charged: Vec<i64> = answers
        .iter()
        .filter_map(|(_, c)| match c {
            Charge::Charged { attempts } => Some(*attempts),
            _ => None,
        })
        .collect();
    charged.sort_unstable();
    assert_eq!(charged, (1..=LIMIT).collect::<Vec<_>>(), "{answers:?}");
    let locked = answers.iter().filter(|(_, c)| *c == Charge::Locked).count();
    assert_eq!(locked, TASKS - 10, "{answers:?}");
    // Exactly the charged attempts were staged.
    for (i, c) in &answers {
        let state = b
            .login_state(format!("race-{i}").as_bytes(), NOW)
            .await
            .unwrap();
        assert_eq!(state.is_some(), *c != Charge::Locked, "attempt {i}: {c:?}");
    }

    assert_eq!(
        b.account("alice").await.unwrap().unwrap().failed_logins,
        LIMIT
    );
    assert_eq!(charge(&b, "alice", LIMIT).await.0, Charge::Locked);
    let (winner, _) = answers
        .iter()
        .find(|(_, c)| matches!(c, Charge::Charged { .. }))
        .unwrap();
    let done = a
        .complete_login(
            format!("race-{winner}").as_bytes(),
            "Laptop",
            session(1, "alice", "dev-1", NOW + 60),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.failed_attempts, LIMIT - 1);
    assert_eq!(b.account("alice").await.unwrap().unwrap().failed_logins, 0);
}

async fn replace_credentials_keeps_the_counter(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    charge(&s, "alice", 10).await;
    charge(&s, "alice", 10).await;

    // A password change: new record and cloud wrap, the recovery code stays.
    s.replace_credentials(
        "alice",
        Credentials {
            record: b"record 2".to_vec(),
            cloud_wrap: b"cloud wrap 2".to_vec(),
        },
    )
    .await
    .unwrap();
    let alice = s.account("alice").await.unwrap().unwrap();
    assert_eq!(alice.record, b"record 2");
    assert_eq!(alice.cloud_wrap, b"cloud wrap 2");
    assert_eq!(alice.recovery_wrap, b"recovery wrap of alice");
    assert_eq!(alice.recovery_verifier, b"verifier of alice");
    assert_eq!(alice.failed_logins, 2);
    assert_eq!(alice.created_at, NOW - 1000);

    // A new recovery code: its wrap and verifier together, nothing else.
    s.replace_recovery("alice", b"recovery wrap 3", b"verifier 3")
        .await
        .unwrap();
    let alice = s.account("alice").await.unwrap().unwrap();
    assert_eq!(alice.record, b"record 2");
    assert_eq!(alice.cloud_wrap, b"cloud wrap 2");
    // A recovery: the password's record and cloud wrap; the new code stays.
    s.replace_credentials(
        "alice",
        Credentials {
            record: b"record 3".to_vec(),
            cloud_wrap: b"cloud wrap 3".to_vec(),
        },
    )
    .await
    .unwrap();
    let alice = s.account("alice").await.unwrap().unwrap();
    assert_eq!(
        (
            alice.record.as_slice(),
            alice.cloud_wrap.as_slice(),
            alice.recovery_wrap.as_slice(),
            alice.recovery_verifier.as_slice(),
            alice.failed_logins
        ),
        (
            &b"record 3"[..],
            &b"cloud wrap 3"[..],
            &b"recovery wrap 3"[..],
            &b"verifier 3"[..],
            2
        )
    );
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((1, b"settings of alice".to_vec()))
    );

    assert!(matches!(
        s.replace_credentials(
            "nobody",
            Credentials {
                record: vec![1],
                cloud_wrap: vec![2],
            }
        )
        .await,
        Err(StoreError::NoAccount)
    ));
    assert!(matches!(
        s.replace_recovery("nobody", b"wrap", b"verifier").await,
        Err(StoreError::NoAccount)
    ));
    assert_eq!(s.account("nobody").await.unwrap(), None);
}

async fn login_states_are_taken_once_until_they_expire(db: &Db) {
    let s = db.open().await;
    let state = login_state("alice", NOW + 60);
    s.put_login_state(b"id-1", state.clone()).await.unwrap();
    assert_eq!(s.take_login_state(b"id-1", NOW).await.unwrap(), Some(state));
    assert_eq!(s.take_login_state(b"id-1", NOW).await.unwrap(), None);

    // Alive up to and including expires_at, dead after.
    s.put_login_state(b"id-2", login_state("alice", NOW + 60))
        .await
        .unwrap();
    assert!(
        s.take_login_state(b"id-2", NOW + 60)
            .await
            .unwrap()
            .is_some()
    );
    s.put_login_state(b"id-3", login_state("alice", NOW + 60))
        .await
        .unwrap();
    assert_eq!(s.take_login_state(b"id-3", NOW + 61).await.unwrap(), None);

    // Ids are exact bytes.
    s.put_login_state(b"id-4", login_state("alice", NOW + 60))
        .await
        .unwrap();
    assert_eq!(s.take_login_state(b"id-4\0", NOW).await.unwrap(), None);
    assert_eq!(s.take_login_state(b"ID-4", NOW).await.unwrap(), None);
    assert_eq!(s.take_login_state(b"never", NOW).await.unwrap(), None);
    assert!(s.take_login_state(b"id-4", NOW).await.unwrap().is_some());

    // The server answers unknown users like known ones, so their states are kept too.
    let ghost = login_state("nobody", NOW + 60);
    s.put_login_state(b"id-5", ghost.clone()).await.unwrap();
    assert_eq!(s.take_login_state(b"id-5", NOW).await.unwrap(), Some(ghost));
}

async fn take_login_state_has_one_winner_under_concurrency(db: &Db) {
    const IDS: usize = 10;
    const TAKERS: usize = 6;
    let (a, b) = (db.open().await, db.open().await);
    for id in 0..IDS {
        a.put_login_state(&[id as u8; 16], login_state(&format!("user{id}"), NOW + 60))
            .await
            .unwrap();
    }
    let answers = race(&a, &b, IDS * TAKERS, |i, s| async move {
        s.take_login_state(&[(i / TAKERS) as u8; 16], NOW)
            .await
            .unwrap()
    })
    .await;
    for id in 0..IDS {
        let won: Vec<&LoginState> = answers
            .iter()
            .filter(|(i, _)| i / TAKERS == id)
            .filter_map(|(_, taken)| taken.as_ref())
            .collect();
        assert_eq!(won.len(), 1, "id {id}: {won:?}");
        assert_eq!(won[0].user, format!("user{id}"));
    }
}

async fn staging_a_login_charges_and_stores_only_when_charged(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    let staged = login_state("alice", NOW + 60);
    for (attempts, id) in [(1, b"id-1"), (2, b"id-2")] {
        assert_eq!(
            s.charge_login_and_stage(2, id, staged.clone())
                .await
                .unwrap(),
            Charge::Charged { attempts }
        );
        // Peeking does not take it.
        for _ in 0..2 {
            assert_eq!(s.login_state(id, NOW).await.unwrap(), Some(staged.clone()));
        }
    }
    // At the limit: nothing charged, nothing stored.
    assert_eq!(
        s.charge_login_and_stage(2, b"id-3", staged.clone())
            .await
            .unwrap(),
        Charge::Locked
    );
    assert_eq!(s.login_state(b"id-3", NOW).await.unwrap(), None);
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 2);
    // No account: nothing stored either.
    assert_eq!(
        s.charge_login_and_stage(2, b"id-4", login_state("nobody", NOW + 60))
            .await
            .unwrap(),
        Charge::NoAccount
    );
    assert_eq!(s.login_state(b"id-4", NOW).await.unwrap(), None);
    // Expired states are not shown, and ids are exact.
    assert_eq!(s.login_state(b"id-1", NOW + 61).await.unwrap(), None);
    assert_eq!(s.login_state(b"ID-1", NOW).await.unwrap(), None);
}

async fn completing_a_login_consumes_it_once_and_resets_the_counter(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    for id in [b"id-1", b"id-2", b"id-3"] {
        s.charge_login_and_stage(10, id, login_state("alice", NOW + 60))
            .await
            .unwrap();
    }
    let done = s
        .complete_login(
            b"id-1",
            "Work laptop",
            session(1, "alice", "dev-1", NOW + 3600),
        )
        .await
        .unwrap();
    assert_eq!(
        done,
        Some(CompletedLogin {
            failed_attempts: 2,
            cloud_wrap: b"cloud wrap of alice".to_vec(),
            settings_version: 1,
            settings: b"settings of alice".to_vec(),
            new_device: true,
        })
    );
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 0);
    assert_eq!(
        s.devices("alice").await.unwrap(),
        vec![Device {
            device_id: "dev-1".into(),
            name: "Work laptop".into(),
            created_at: NOW,
            last_seen_at: NOW,
        }]
    );
    assert_eq!(
        s.session(&[1; 32], NOW).await.unwrap(),
        Some(session(1, "alice", "dev-1", NOW + 3600))
    );
    // A second finish of the same login finds nothing and changes nothing.
    assert_eq!(
        s.complete_login(b"id-1", "Other", session(2, "alice", "dev-1", NOW + 3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.session(&[2; 32], NOW).await.unwrap(), None);
    assert_eq!(s.login_state(b"id-1", NOW).await.unwrap(), None);
    // A failed finish discards its state, once; the counter keeps its charge.
    s.charge_login_and_stage(10, b"id-4", login_state("alice", NOW + 60))
        .await
        .unwrap();
    assert!(s.discard_login_state(b"id-2").await.unwrap());
    assert!(!s.discard_login_state(b"id-2").await.unwrap());
    assert_eq!(
        s.complete_login(b"id-2", "Laptop", session(3, "alice", "dev-1", NOW + 3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 1);
    // An expired state cannot be completed (and stays for prune).
    let late = Session {
        created_at: NOW + 61,
        ..session(4, "alice", "dev-1", NOW + 3600)
    };
    assert_eq!(
        s.complete_login(b"id-3", "Laptop", late).await.unwrap(),
        None
    );
    assert_eq!(s.session(&[4; 32], NOW).await.unwrap(), None);
    assert!(s.discard_login_state(b"id-3").await.unwrap());
    // A session for another user or device than the pending login's is refused whole.
    assert_eq!(
        s.complete_login(b"id-4", "Laptop", session(5, "alice", "dev-2", NOW + 3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.login_state(b"id-4", NOW).await.unwrap().map(|l| l.user),
        Some("alice".into())
    );
    assert_eq!(s.devices("alice").await.unwrap().len(), 1);
    assert_eq!(s.account("alice").await.unwrap().unwrap().failed_logins, 1);
}

async fn completing_a_login_has_one_winner_under_concurrency(db: &Db) {
    const IDS: usize = 8;
    const FINISHERS: usize = 6;
    let (a, b) = (db.open().await, db.open().await);
    a.create_account(new_account("alice")).await.unwrap();
    for id in 0..IDS {
        a.charge_login_and_stage(100, &[id as u8; 16], login_state("alice", NOW + 60))
            .await
            .unwrap();
    }
    let answers = race(&a, &b, IDS * FINISHERS, |i, s| async move {
        let token = u8::try_from(i).unwrap();
        s.complete_login(
            &[(i / FINISHERS) as u8; 16],
            "Laptop",
            session(token, "alice", "dev-1", NOW + 3600),
        )
        .await
        .unwrap()
    })
    .await;
    for id in 0..IDS {
        let won = answers
            .iter()
            .filter(|(i, done)| i / FINISHERS == id && done.is_some())
            .count();
        assert_eq!(won, 1, "login {id}");
    }
    // Exactly one session per login exists.
    let mut sessions = 0;
    for (i, _) in &answers {
        let token = u8::try_from(*i).unwrap();
        if a.session(&[token; 32], NOW).await.unwrap().is_some() {
            sessions += 1;
        }
    }
    assert_eq!(sessions, IDS);
}

/// SQLite commits the writes that arrive together in one transaction: one that fails
/// must be rolled back alone, and the others must still land.
async fn a_failing_write_does_not_spoil_the_writes_beside_it(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..40u8 {
        let s = s.clone();
        tasks.spawn(async move {
            if i % 4 == 0 {
                // Fails after its first statement (a taken name).
                let outcome = s.create_account(new_account("alice")).await;
                assert!(
                    matches!(outcome, Err(StoreError::AccountExists)),
                    "{outcome:?}"
                );
            } else {
                s.create_account(new_account(&format!("user{i}")))
                    .await
                    .unwrap();
                s.put_settings(&format!("user{i}"), 1, b"second")
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for i in (0..40u8).filter(|i| i % 4 != 0) {
        assert_eq!(
            s.settings(&format!("user{i}")).await.unwrap(),
            Some((2, b"second".to_vec()))
        );
    }
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((1, b"settings of alice".to_vec()))
    );
}

/// A write that fails after its first statement changed something leaves nothing
/// behind, alone and in the company of writes that succeed: completing a pending login
/// whose account does not exist takes the pending login first, then fails.
async fn a_write_that_fails_halfway_leaves_nothing_behind(db: &Db) {
    let s = db.open().await;
    let ghost_login = |s: Arc<dyn Store>, token: u8| async move {
        let id = fresh_id();
        s.put_login_state(&id, staged("ghost", "dev-1", NOW + 60))
            .await
            .unwrap();
        let outcome = s
            .complete_login(
                &id,
                "Ghost's phone",
                session(token, "ghost", "dev-1", NOW + 60),
            )
            .await;
        assert!(outcome.is_err(), "{outcome:?}");
        let kept = s.login_state(&id, NOW).await.unwrap();
        assert!(
            kept.is_some(),
            "the failed completion took the pending login"
        );
        assert!(s.session(&[token; 32], NOW).await.unwrap().is_none());
    };
    ghost_login(s.clone(), 200).await;

    let mut tasks = JoinSet::new();
    for i in 0..40u8 {
        let s = s.clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                ghost_login(s, i).await;
            } else {
                s.create_account(new_account(&format!("user{i}")))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for i in (0..40u8).filter(|i| i % 2 == 1) {
        assert!(s.account(&format!("user{i}")).await.unwrap().is_some());
    }
    assert!(s.devices("ghost").await.unwrap().is_empty());
}

fn claim(token: u8, user: &str, address: &str, expires_at: i64) -> DirectoryClaimRow {
    DirectoryClaimRow {
        token_hash: vec![token; 32],
        user: user.to_owned(),
        address: address.to_owned(),
        cert: format!("cert of {user} for {address}").into_bytes(),
        expires_at,
    }
}

async fn directory_claims_are_limited_and_confirmed_once_by_their_owner(db: &Db) {
    let s = db.open().await;
    for user in ["alice", "bob"] {
        s.create_account(new_account(user)).await.unwrap();
    }
    let put = |c: DirectoryClaimRow| {
        let s = s.clone();
        async move { s.put_directory_claim(c, NOW, 2, 2).await.unwrap() }
    };
    // An expired claim counts for nothing.
    assert_eq!(
        put(claim(9, "alice", "a@x.org", NOW - 1)).await,
        ClaimOutcome::Stored
    );
    assert_eq!(
        put(claim(1, "alice", "a@x.org", NOW + 60)).await,
        ClaimOutcome::Stored
    );
    assert_eq!(
        put(claim(2, "alice", "b@x.org", NOW + 60)).await,
        ClaimOutcome::Stored
    );
    assert_eq!(
        put(claim(3, "alice", "c@x.org", NOW + 60)).await,
        ClaimOutcome::TooManyForUser
    );
    assert_eq!(
        put(claim(4, "bob", "a@x.org", NOW + 60)).await,
        ClaimOutcome::Stored
    );
    assert_eq!(
        put(claim(5, "bob", "a@x.org", NOW + 60)).await,
        ClaimOutcome::TooManyForAddress
    );
    assert!(matches!(
        s.put_directory_claim(claim(6, "nobody", "n@x.org", NOW + 60), NOW, 2, 2)
            .await,
        Err(StoreError::NoAccount)
    ));

    // Someone else's token does nothing, and leaves the claim for its owner.
    assert_eq!(
        s.confirm_directory_claim(&[1; 32], "bob", NOW)
            .await
            .unwrap(),
        None
    );
    let alice = DirectoryKey {
        address: "a@x.org".into(),
        user: "alice".into(),
        cert: b"cert of alice for a@x.org".to_vec(),
        published_at: NOW,
        log_index: 0,
    };
    assert_eq!(
        s.confirm_directory_claim(&[1; 32], "alice", NOW)
            .await
            .unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        s.confirm_directory_claim(&[1; 32], "alice", NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.directory_key("a@x.org").await.unwrap(), Some(alice));
    assert_eq!(s.directory_key("A@x.org").await.unwrap(), None);
    // An expired token does nothing.
    assert_eq!(
        s.confirm_directory_claim(&[9; 32], "alice", NOW)
            .await
            .unwrap(),
        None
    );
    // Proving the address again wins: bob takes it over.
    s.confirm_directory_claim(&[4; 32], "bob", NOW + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.directory_key("a@x.org").await.unwrap().unwrap().user,
        "bob"
    );
    // Only the publisher removes an entry.
    assert!(
        !s.delete_directory_key("alice", "a@x.org", NOW + 6)
            .await
            .unwrap()
    );
    assert!(
        s.delete_directory_key("bob", "a@x.org", NOW + 6)
            .await
            .unwrap()
    );
    assert_eq!(s.directory_key("a@x.org").await.unwrap(), None);
    // A claim whose mail failed is withdrawn; prune drops the expired ones.
    s.delete_directory_claim(&[2; 32]).await.unwrap();
    assert_eq!(
        s.confirm_directory_claim(&[2; 32], "alice", NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        put(claim(7, "alice", "d@x.org", NOW + 60)).await,
        ClaimOutcome::Stored
    );
    s.prune(NOW, NOW - 100).await.unwrap();
    assert_eq!(
        s.confirm_directory_claim(&[7; 32], "alice", NOW)
            .await
            .unwrap()
            .map(|k| k.address),
        Some("d@x.org".into())
    );
}

async fn directory_claim_limits_are_exact_under_concurrency(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    for user in ["alice", "bob"] {
        a.create_account(new_account(user)).await.unwrap();
    }
    // 20 claims by alice at once (limit 5 per user), 20 by bob for one address (limit 3).
    let answers = race(&a, &b, 40, |i, s| async move {
        let token = u8::try_from(i).unwrap();
        let c = if i < 20 {
            claim(token, "alice", &format!("alice{i}@x.org"), NOW + 60)
        } else {
            claim(token, "bob", "shared@x.org", NOW + 60)
        };
        s.put_directory_claim(c, NOW, 5, 3).await.unwrap()
    })
    .await;
    let stored = |range: std::ops::Range<usize>| {
        answers
            .iter()
            .filter(|(i, o)| range.contains(i) && *o == ClaimOutcome::Stored)
            .count()
    };
    assert_eq!(stored(0..20), 5);
    assert_eq!(stored(20..40), 3);
}

async fn devices_are_upserted_and_listed_in_id_order(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    s.create_account(new_account("bob")).await.unwrap();
    let exp = NOW + 3600;
    sign_in(&s, "alice", "b-phone", "Phone", NOW, 1, exp)
        .await
        .unwrap();
    sign_in(&s, "alice", "B-tablet", "Tablet", NOW + 1, 2, exp)
        .await
        .unwrap();
    sign_in(&s, "alice", "a-laptop", "Laptop", NOW + 2, 3, exp)
        .await
        .unwrap();
    sign_in(&s, "alice", "_desk", "Desk", NOW + 3, 4, exp)
        .await
        .unwrap();
    sign_in(&s, "bob", "bob-1", "Bob's", NOW, 5, exp)
        .await
        .unwrap();

    // Byte order ("B" < "_" < "a" < "b"), not a locale's.
    let device = |id: &str, name: &str, at: i64| Device {
        device_id: id.into(),
        name: name.into(),
        created_at: at,
        last_seen_at: at,
    };
    assert_eq!(
        s.devices("alice").await.unwrap(),
        vec![
            device("B-tablet", "Tablet", NOW + 1),
            device("_desk", "Desk", NOW + 3),
            device("a-laptop", "Laptop", NOW + 2),
            device("b-phone", "Phone", NOW),
        ]
    );

    // Signing in again renames and touches the device, and keeps its first sign-in.
    sign_in(&s, "alice", "b-phone", "Work phone", NOW + 100, 6, exp)
        .await
        .unwrap();
    let phone = s
        .devices("alice")
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.device_id == "b-phone")
        .unwrap();
    assert_eq!(
        phone,
        Device {
            device_id: "b-phone".into(),
            name: "Work phone".into(),
            created_at: NOW,
            last_seen_at: NOW + 100,
        }
    );
    assert_eq!(s.devices("alice").await.unwrap().len(), 4);
    assert_eq!(
        s.devices("bob").await.unwrap(),
        vec![device("bob-1", "Bob's", NOW)]
    );
    assert_eq!(s.devices("nobody").await.unwrap(), vec![]);
    // No account, no login to complete, no device.
    assert_eq!(charge(&s, "nobody", 10).await.0, Charge::NoAccount);
    assert_eq!(s.devices("nobody").await.unwrap(), vec![]);
}

async fn sessions_expire_and_die_with_their_device(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    s.create_account(new_account("bob")).await.unwrap();
    let one = session(1, "alice", "dev-1", NOW + 3600);
    let two = session(2, "alice", "dev-2", NOW + 3600);
    sign_in(&s, "alice", "dev-1", "Laptop", NOW, 1, NOW + 3600)
        .await
        .unwrap();
    sign_in(&s, "alice", "dev-2", "Phone", NOW, 2, NOW + 3600)
        .await
        .unwrap();

    assert_eq!(s.session(&[1; 32], NOW).await.unwrap(), Some(one.clone()));
    assert_eq!(
        s.session(&[1; 32], NOW + 3600).await.unwrap(),
        Some(one.clone())
    );
    assert_eq!(s.session(&[1; 32], NOW + 3601).await.unwrap(), None);
    assert_eq!(s.session(&[3; 32], NOW).await.unwrap(), None);

    // Another user cannot revoke Alice's device.
    assert!(!s.revoke_device("bob", "dev-1").await.unwrap());
    assert_eq!(s.session(&[1; 32], NOW).await.unwrap(), Some(one.clone()));

    assert!(s.revoke_device("alice", "dev-1").await.unwrap());
    assert_eq!(s.session(&[1; 32], NOW).await.unwrap(), None);
    assert_eq!(s.session(&[2; 32], NOW).await.unwrap(), Some(two.clone()));
    assert_eq!(
        s.devices("alice")
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.device_id)
            .collect::<Vec<_>>(),
        vec!["dev-2".to_owned()]
    );
    assert!(!s.revoke_device("alice", "dev-1").await.unwrap());

    // The device signs in again: its old session stays dead (deleted, not hidden), the
    // new one works.
    sign_in(&s, "alice", "dev-1", "Laptop", NOW + 10, 7, NOW + 3600)
        .await
        .unwrap();
    assert_eq!(s.session(&[1; 32], NOW).await.unwrap(), None);
    assert!(s.session(&[7; 32], NOW + 10).await.unwrap().is_some());
}

async fn delete_sessions_except_keeps_one_device(db: &Db) {
    let s = db.open().await;
    for user in ["alice", "bob"] {
        s.create_account(new_account(user)).await.unwrap();
    }
    for (token, device) in [(1, "dev-1"), (2, "dev-2"), (3, "dev-2"), (4, "dev-3")] {
        sign_in(&s, "alice", device, device, NOW, token, NOW + 60)
            .await
            .unwrap();
    }
    // Bob has a device with the same id as Alice's kept one.
    sign_in(&s, "bob", "dev-2", "Bob's", NOW, 5, NOW + 60)
        .await
        .unwrap();

    s.delete_sessions_except("alice", "dev-2").await.unwrap();
    let alive = |t: u8| {
        let s = s.clone();
        async move { s.session(&[t; 32], NOW).await.unwrap().is_some() }
    };
    assert!(!alive(1).await);
    assert!(alive(2).await);
    assert!(alive(3).await);
    assert!(!alive(4).await);
    assert!(alive(5).await, "another user's sessions are untouched");
    // Devices stay; only their sessions went.
    assert_eq!(s.devices("alice").await.unwrap().len(), 3);
}

async fn settings_are_compare_and_swap(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    s.create_account(new_account("bob")).await.unwrap();
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((1, b"settings of alice".to_vec()))
    );
    assert_eq!(s.put_settings("alice", 1, b"v2").await.unwrap(), 2);
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((2, b"v2".to_vec()))
    );

    // A stale or a future version is refused with the current one, and changes nothing.
    for expected in [1, 3, 0] {
        match s.put_settings("alice", expected, b"wrong").await {
            Err(StoreError::VersionConflict { current: 2 }) => {}
            other => panic!("expected a conflict at 2 for {expected}, got {other:?}"),
        }
    }
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((2, b"v2".to_vec()))
    );
    assert_eq!(s.put_settings("alice", 2, b"v3").await.unwrap(), 3);
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((3, b"v3".to_vec()))
    );
    assert_eq!(
        s.settings("bob").await.unwrap(),
        Some((1, b"settings of bob".to_vec()))
    );

    assert!(matches!(
        s.put_settings("nobody", 1, b"x").await,
        Err(StoreError::NoAccount)
    ));
    assert_eq!(s.settings("nobody").await.unwrap(), None);
}

async fn settings_swap_has_one_winner_under_concurrency(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    a.create_account(new_account("alice")).await.unwrap();
    let mut version = 1;
    for (round, writers) in [2, 2, 2, 2, 2, 16, 16].into_iter().enumerate() {
        let answers = race(&a, &b, writers, |i, s| async move {
            let blob = format!("round {round} writer {i}");
            s.put_settings("alice", version, blob.as_bytes()).await
        })
        .await;
        let won: Vec<usize> = answers
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {answers:?}");
        for (i, answer) in &answers {
            match answer {
                Ok(v) => assert_eq!(*v, version + 1),
                Err(StoreError::VersionConflict { current }) => {
                    assert_eq!(*current, version + 1, "writer {i}")
                }
                Err(e) => panic!("writer {i}: {e}"),
            }
        }
        version += 1;
        assert_eq!(
            b.settings("alice").await.unwrap(),
            Some((
                version,
                format!("round {round} writer {}", won[0]).into_bytes()
            ))
        );
    }
}

async fn prune_deletes_only_what_expired(db: &Db) {
    let s = db.open().await;
    s.create_account(new_account("alice")).await.unwrap();
    for (token, expires_at) in [(1, NOW - 10), (2, NOW), (3, NOW + 10)] {
        sign_in(&s, "alice", "dev-1", "Laptop", NOW - 30, token, expires_at)
            .await
            .unwrap();
    }
    s.put_login_state(b"old", login_state("alice", NOW - 10))
        .await
        .unwrap();
    s.put_login_state(b"last", login_state("alice", NOW))
        .await
        .unwrap();
    s.put_login_state(b"new", login_state("alice", NOW + 10))
        .await
        .unwrap();

    s.prune(NOW, NOW - 100).await.unwrap();

    // Asked about an earlier moment, a row that was merely hidden would be alive again.
    let earlier = NOW - 20;
    assert_eq!(s.session(&[1; 32], earlier).await.unwrap(), None);
    assert!(s.session(&[2; 32], earlier).await.unwrap().is_some());
    assert!(s.session(&[3; 32], earlier).await.unwrap().is_some());
    assert_eq!(s.take_login_state(b"old", earlier).await.unwrap(), None);
    assert!(
        s.take_login_state(b"last", earlier)
            .await
            .unwrap()
            .is_some()
    );
    assert!(s.take_login_state(b"new", earlier).await.unwrap().is_some());
    // Devices and accounts are not pruned.
    assert_eq!(s.devices("alice").await.unwrap().len(), 1);
}

async fn state_survives_a_restart(db: &Db) {
    let state = login_state("alice", NOW + 60);
    {
        let s = db.open().await;
        s.put_server_secret_if_absent("opaque", b"key pair")
            .await
            .unwrap();
        s.create_account(new_account("alice")).await.unwrap();
        sign_in(&s, "alice", "dev-1", "Laptop", NOW, 1, NOW + 60)
            .await
            .unwrap();
        for _ in 0..3 {
            charge(&s, "alice", 10).await;
        }
        s.replace_credentials(
            "alice",
            Credentials {
                record: b"record 2".to_vec(),
                cloud_wrap: b"cloud wrap 2".to_vec(),
            },
        )
        .await
        .unwrap();
        s.replace_recovery("alice", b"recovery wrap 2", b"verifier 2")
            .await
            .unwrap();
        assert_eq!(s.put_settings("alice", 1, b"v2").await.unwrap(), 2);
        s.put_login_state(b"pending", state.clone()).await.unwrap();
    }

    let s = db.open().await;
    assert_eq!(
        s.server_secret("opaque").await.unwrap().unwrap(),
        b"key pair"
    );
    let alice = s.account("alice").await.unwrap().unwrap();
    assert_eq!(alice.failed_logins, 3);
    assert_eq!(alice.record, b"record 2");
    assert_eq!(alice.recovery_wrap, b"recovery wrap 2");
    assert_eq!(alice.recovery_verifier, b"verifier 2");
    assert_eq!(
        charge(&s, "alice", 4).await.0,
        Charge::Charged { attempts: 4 }
    );
    assert_eq!(charge(&s, "alice", 4).await.0, Charge::Locked);
    assert_eq!(
        s.settings("alice").await.unwrap(),
        Some((2, b"v2".to_vec()))
    );
    assert_eq!(s.devices("alice").await.unwrap().len(), 1);
    assert!(s.session(&[1; 32], NOW).await.unwrap().is_some());
    assert_eq!(
        s.take_login_state(b"pending", NOW).await.unwrap(),
        Some(state)
    );
}

async fn first_opens_at_once_migrate_once(db: &Db) {
    let (a, b) = tokio::join!(db.try_open(), db.try_open());
    let (a, b) = (a.unwrap(), b.unwrap());
    a.create_account(new_account("alice")).await.unwrap();
    assert!(b.account("alice").await.unwrap().is_some());
    // A later start finds the schema current and applies nothing twice.
    let c = db.open().await;
    assert!(c.account("alice").await.unwrap().is_some());
}

// ---------------------------------------------------------------- backend-specific

mod sqlite_only {
    use super::*;

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let db = Db::sqlite();
        drop(db.open().await);
        let Db::Sqlite { path, .. } = &db else {
            unreachable!()
        };
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = db.try_open().await.err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn the_file_is_wal_strict_and_checked() {
        let db = Db::sqlite();
        drop(db.open().await);
        let Db::Sqlite { path, .. } = &db else {
            unreachable!()
        };
        let conn = rusqlite::Connection::open(path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let err = conn
            .execute(
                "INSERT INTO server_secrets (name, value) VALUES ('n', 'text, not a blob')",
                [],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot store TEXT value in BLOB column"),
            "{err}"
        );
        let err = conn
            .execute(
                "INSERT INTO server_secrets (name, value) VALUES (NULL, x'00')",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
    }
}

mod postgres_only {
    use super::*;

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let db = Db::postgres("newer_schema");
        drop(db.open().await);
        let Db::Postgres { url, .. } = &db else {
            unreachable!()
        };
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .execute("INSERT INTO schema_version (version) VALUES (99)", &[])
            .await
            .unwrap();
        let err = db.try_open().await.err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn errors_do_not_show_the_password() {
        // Nothing listens on port 1.
        let err = PostgresStore::connect("postgres://sealpost:hunter2-secret@127.0.0.1:1/db")
            .await
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Backend(_)));
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("connect"), "{message}");

        let err =
            PostgresStore::connect("postgres://sealpost:hunter2-secret@127.0.0.1:notaport/db")
                .await
                .err()
                .unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");

        // A wrong password against a real server.
        let db = Db::postgres("wrong_password");
        let Db::Postgres { url, .. } = &db else {
            unreachable!()
        };
        let bad = url.replace("postgres@", "no_such_role:hunter2-secret@");
        let err = PostgresStore::connect(&bad).await.err().unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("no_such_role"), "{err}");
    }

    #[tokio::test]
    async fn connects_over_the_unix_socket() {
        let db = Db::postgres("unix_socket");
        let Db::Postgres {
            _cluster: cluster, ..
        } = &db
        else {
            unreachable!()
        };
        let name = format!("t{}_unix", DATABASES.fetch_add(1, Ordering::Relaxed));
        cluster.create_database(&name).unwrap();
        let url = format!(
            "host={} port={} user=postgres dbname={name}",
            cluster.socket_dir().display(),
            cluster.port()
        );
        let store = PostgresStore::connect(&url).await.unwrap();
        store.create_account(new_account("alice")).await.unwrap();
        assert!(store.account("alice").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_url_that_requires_tls_is_refused() {
        let err = PostgresStore::connect("postgres://u@127.0.0.1:5432/db?sslmode=require")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}

// ---------------------------------------------------------------- transparency log, events

/// Many publishes at once, from two instances: the log stays one gapless sequence whose
/// stored subtrees are exactly the tree of its entries, and every key names its entry.
async fn the_log_is_one_sequence_under_concurrent_publishes(db: &Db) {
    const KEYS: usize = 40;
    let (a, b) = (db.open().await, db.open().await);
    assert_eq!(a.log_size().await.unwrap(), 0);
    for user in ["alice", "bob"] {
        a.create_account(new_account(user)).await.unwrap();
    }
    for i in 0..KEYS {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        let c = claim(i as u8, user, &format!("k{i}@x.org"), NOW + 60);
        assert_eq!(
            a.put_directory_claim(c, NOW, 1000, 1000).await.unwrap(),
            ClaimOutcome::Stored
        );
    }
    let answers = race(&a, &b, KEYS, |i, s| async move {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        s.confirm_directory_claim(&[i as u8; 32], user, NOW + i as i64)
            .await
            .unwrap()
            .unwrap()
    })
    .await;
    let mut indices: Vec<u64> = answers.iter().map(|(_, k)| k.log_index).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..KEYS as u64).collect::<Vec<_>>(),
        "one gapless sequence"
    );
    assert_eq!(b.log_size().await.unwrap(), KEYS as u64);

    let entries = b.log_entries(0, 1000).await.unwrap();
    assert_eq!(entries.len(), KEYS);
    let mut replay = Replay::new();
    let mut leaves = Vec::new();
    for bytes in &entries {
        let entry = LogEntry::decode(bytes).unwrap();
        replay.push(&entry);
        leaves.push(entry.leaf_hash());
    }
    for (_, key) in &answers {
        let entry = LogEntry::decode(&entries[key.log_index as usize]).unwrap();
        assert!(entry.publishes(&key.address, &key.cert), "{}", key.address);
        assert_eq!(
            b.directory_key(&key.address)
                .await
                .unwrap()
                .unwrap()
                .log_index,
            key.log_index
        );
    }
    // The stored subtrees make the root of the entries, and prove each of them.
    let ids = root_nodes(KEYS as u64);
    let root = tree::fold(&a.log_nodes(&ids).await.unwrap()).unwrap();
    assert_eq!(root, replay.root());
    for (m, leaf) in leaves.iter().enumerate() {
        let ranges = inclusion_ranges(m as u64, KEYS as u64);
        let ids = nodes_for(&ranges);
        let found = a.log_nodes(&ids).await.unwrap();
        let map: std::collections::HashMap<_, _> = ids.iter().copied().zip(found).collect();
        let proof = tree::hash_ranges(&ranges, |id| map.get(id).copied()).unwrap();
        verify_inclusion(leaf, m as u64, KEYS as u64, &proof, &root).unwrap();
    }
    // Asking for subtrees the log does not have yet is an error, not a guess.
    assert!(a.log_nodes(&root_nodes(KEYS as u64 + 1)).await.is_err());
    assert_eq!(
        a.log_entries(KEYS as u64, KEYS as u64 + 5)
            .await
            .unwrap()
            .len(),
        0
    );

    // A removal is an entry too; a refused removal is not.
    assert!(
        !a.delete_directory_key("bob", "k0@x.org", NOW + 100)
            .await
            .unwrap()
    );
    assert_eq!(a.log_size().await.unwrap(), KEYS as u64);
    assert!(
        a.delete_directory_key("alice", "k0@x.org", NOW + 100)
            .await
            .unwrap()
    );
    let last = b.log_entries(KEYS as u64, KEYS as u64 + 1).await.unwrap();
    let removal = LogEntry::decode(&last[0]).unwrap();
    assert_eq!(removal, LogEntry::unpublish("k0@x.org", (NOW + 100) as u64));
    assert_eq!(removal.kind, EntryKind::Unpublish);
    // A failed publish (a claim that is not there) appends nothing.
    assert_eq!(
        a.confirm_directory_claim(&[0xEE; 32], "alice", NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(b.log_size().await.unwrap(), KEYS as u64 + 1);
}

fn head(size: u64, time: u64, mark: u8) -> SignedHead {
    SignedHead {
        size,
        time,
        root: [mark; 32],
        signature: [mark; 64],
    }
}

async fn log_heads_are_stored_once_per_size(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    assert_eq!(a.latest_log_head().await.unwrap(), None);
    assert_eq!(
        a.put_log_head(head(0, 10, 1)).await.unwrap(),
        head(0, 10, 1)
    );
    // Another process signed the same size: the first one stored wins for everybody.
    assert_eq!(
        b.put_log_head(head(0, 11, 2)).await.unwrap(),
        head(0, 10, 1)
    );
    b.put_log_head(head(5, 20, 3)).await.unwrap();
    a.put_log_head(head(3, 15, 4)).await.unwrap();
    assert_eq!(b.latest_log_head().await.unwrap(), Some(head(5, 20, 3)));
    let sizes: Vec<u64> = a
        .log_heads(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|h| h.size)
        .collect();
    assert_eq!(sizes, vec![3, 5]);
    assert_eq!(a.log_heads(0, 1).await.unwrap(), vec![head(3, 15, 4)]);
    assert!(a.log_heads(5, 10).await.unwrap().is_empty());
}

fn event(user: &str, at: i64, kind: &str) -> NewEvent {
    NewEvent {
        user: user.to_owned(),
        at,
        kind: kind.to_owned(),
        device_id: format!("dev-{at}"),
        details: format!("sealed details {at}").into_bytes(),
    }
}

async fn security_events_are_kept_per_account_and_bounded(db: &Db) {
    let (a, b) = (db.open().await, db.open().await);
    for user in ["alice", "bob"] {
        a.create_account(new_account(user)).await.unwrap();
    }
    for i in 0..5 {
        a.add_event(event("alice", NOW + i, "sign_in"), 3)
            .await
            .unwrap();
    }
    b.add_event(event("bob", NOW, "locked"), 3).await.unwrap();
    // Only the three newest of alice's are kept; bob's are his own.
    let alice = b.events("alice", 0, 100).await.unwrap();
    let times: Vec<i64> = alice.iter().map(|e| e.at).collect();
    assert_eq!(times, vec![NOW + 2, NOW + 3, NOW + 4]);
    assert!(alice.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        alice[0].details,
        format!("sealed details {}", NOW + 2).into_bytes()
    );
    assert_eq!(alice[0].device_id, format!("dev-{}", NOW + 2));
    let bob = a.events("bob", 0, 100).await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].kind, "locked");
    // Newer than a given id, and a page limit.
    let newer = a.events("alice", alice[0].id, 1).await.unwrap();
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0].at, NOW + 3);
    assert!(a.events("nobody", 0, 100).await.unwrap().is_empty());
    // Events of an account that does not exist are refused.
    assert!(
        a.add_event(event("nobody", NOW, "sign_in"), 3)
            .await
            .is_err()
    );
    // Retention: prune drops the events older than the cut.
    a.prune(NOW, NOW + 4).await.unwrap();
    let kept: Vec<i64> = b
        .events("alice", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(kept, vec![NOW + 4]);
    assert!(b.events("bob", 0, 100).await.unwrap().is_empty());
}

async fn ping_and_open_sessions(db: &Db) {
    let s = db.open().await;
    s.ping().await.unwrap();
    s.create_account(new_account("alice")).await.unwrap();
    assert_eq!(s.count_sessions(NOW).await.unwrap(), 0);
    sign_in(&s, "alice", "dev-1", "Laptop", NOW, 1, NOW + 100)
        .await
        .unwrap();
    sign_in(&s, "alice", "dev-2", "Phone", NOW, 2, NOW + 10)
        .await
        .unwrap();
    assert_eq!(s.count_sessions(NOW).await.unwrap(), 2);
    assert_eq!(s.count_sessions(NOW + 50).await.unwrap(), 1);
}
