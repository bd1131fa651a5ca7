//! The key directory's transparency log against attacks, through the real server.
//!
//! A compromised server is simulated the way one would be run: whoever controls it
//! writes to its database directly (here through the store, as an operator with
//! database access could) and serves it with the real router and the real log key. The
//! clients' checks are `sealpost_transparency`'s, exactly as the app calls them.
//!
//! - Two histories (a fork): two servers with the same log key and different databases
//!   serve Bob's key differently to Alice and to Bob. Each answer verifies on its own;
//!   comparing heads (gossip) shows the fork, at equal sizes and at different ones.
//! - A rolled-back log (a server restored from an old copy) is refused by a client that
//!   kept a newer head.
//! - A proof for the wrong leaf, a bad head signature, a truncated or padded proof are
//!   refused with a clear error, and the client's state is what it was.
//! - A full replay audit from entry 0 checks every head the server ever signed.

use std::path::Path;
use std::sync::Arc;

use reqwest::Method;
use sealpost_proto as proto;
use sealpost_proto::Bytes;
use sealpost_server::hsm::SoftwareHsm;
use sealpost_server::store::{DirectoryClaimRow, NewAccount, SqliteStore, Store};
use sealpost_transparency::wire::{self, verify_lookup};
use sealpost_transparency::{LogError, LogKey, LogState, compare_heads};

use crate::harness::{Answer, Server, send};

const NOW: i64 = crate::harness::T0;

/// Publishes `cert` for `address` as `user` straight into the database at `db` (the
/// account is made if missing): what an operator with write access can do.
fn publish_directly(db: &Path, user: &str, address: &str, cert: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(db).unwrap();
        if store.account(user).await.unwrap().is_none() {
            store
                .create_account(NewAccount {
                    user: user.into(),
                    record: vec![1],
                    cloud_wrap: vec![2],
                    recovery_wrap: vec![3],
                    recovery_verifier: vec![4; 32],
                    settings: vec![5],
                    created_at: NOW,
                })
                .await
                .unwrap();
        }
        let token: Vec<u8> =
            sealpost_transparency::cert_hash(format!("{user}{address}{}", cert.len()).as_bytes())
                .to_vec();
        let claim = DirectoryClaimRow {
            token_hash: token.clone(),
            user: user.into(),
            address: address.into(),
            cert: cert.to_vec(),
            expires_at: NOW + 3600,
        };
        store
            .put_directory_claim(claim, NOW, 100, 100)
            .await
            .unwrap();
        store
            .confirm_directory_claim(&token, user, NOW)
            .await
            .unwrap()
            .unwrap();
    });
}

/// A certificate-shaped blob (a public-key packet tag, then a label).
fn cert(label: &str) -> Vec<u8> {
    [&[0xC6u8, 0x33][..], label.as_bytes()].concat()
}

fn get(server: &Server, path: &str) -> Answer {
    send(server.request(Method::GET, path))
}

fn lookup(server: &Server, address: &str, known: Option<u64>) -> proto::DirectoryEntry {
    let query = known.map_or_else(String::new, |n| format!("?known={n}"));
    get(server, &format!("/v1/directory/keys/{address}{query}")).json()
}

fn log_key(server: &Server) -> LogKey {
    wire::log_key(&get(server, "/v1/directory/log").json()).unwrap()
}

/// Two servers sharing one log key (one HSM) with their own databases.
struct TwoServers {
    honest: Server,
    evil: Server,
    honest_db: std::path::PathBuf,
    evil_db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn two_servers(prepare: impl FnOnce(&Path, &Path)) -> TwoServers {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hsm.key");
    let hsm = Arc::new(SoftwareHsm::open_or_create(&key).unwrap());
    let (honest_db, evil_db) = (
        dir.path().join("honest.sqlite3"),
        dir.path().join("evil.sqlite3"),
    );
    prepare(&honest_db, &evil_db);
    let honest = Server::try_start(&honest_db, hsm.clone()).unwrap();
    let evil = Server::try_start(&evil_db, hsm).unwrap();
    TwoServers {
        honest,
        evil,
        honest_db,
        evil_db,
        _dir: dir,
    }
}

#[test]
fn a_key_shown_to_one_client_only_is_caught_when_heads_are_compared() {
    let bob = "bob@example.org";
    let s = two_servers(|honest, evil| {
        for db in [honest, evil] {
            publish_directly(db, "carol", "carol@example.org", &cert("carol"));
        }
        publish_directly(honest, "bob", bob, &cert("bob's real key"));
        // The evil history: the same size, but Bob's entry names the attacker's key.
        publish_directly(evil, "bob", bob, &cert("attacker's key"));
    });
    let key = log_key(&s.honest);
    assert_eq!(key, log_key(&s.evil), "one log key, as one HSM");

    // Each client's answer verifies on its own: the lie is in a signed log.
    let for_bob = verify_lookup(&lookup(&s.honest, bob, None), &key, None).unwrap();
    let alices_answer = lookup(&s.evil, bob, None);
    assert_eq!(alices_answer.cert.0, cert("attacker's key"));
    let for_alice = verify_lookup(&alices_answer, &key, None).unwrap();

    // Gossip: Alice's head (from a mail header) meets Bob's. Same size, two roots.
    let err = compare_heads(for_alice.state.head(), for_bob.state.head(), &[]).unwrap_err();
    assert!(matches!(err, LogError::Fork(_)), "{err}");
    assert!(err.to_string().contains("forked"), "{err}");

    // The evil log grows on; Alice's newer head still cannot extend Bob's: whatever
    // consistency proof the evil server gives, it does not join them.
    publish_directly(&s.evil_db, "dave", "dave@example.org", &cert("dave"));
    let later = lookup(&s.evil, bob, Some(for_alice.state.head().size()));
    let alice_now = verify_lookup(&later, &key, Some(&for_alice.state)).unwrap();
    assert_eq!(alice_now.state.head().size(), 3);
    let proof: proto::ConsistencyProof = get(
        &s.evil,
        &format!(
            "/v1/directory/log/consistency?from={}&to=3",
            for_bob.state.head().size()
        ),
    )
    .json();
    let proof = wire::hashes(&proof.proof).unwrap();
    let err = compare_heads(for_bob.state.head(), alice_now.state.head(), &proof).unwrap_err();
    assert!(matches!(err, LogError::Fork(_)), "{err}");
    // And Bob's client, handed Alice's head with that proof, refuses to move to it.
    let mut bobs = for_bob.state.clone();
    assert!(matches!(
        bobs.advance(alice_now.state.head().clone(), &proof),
        Err(LogError::Fork(_))
    ));
    assert_eq!(bobs, for_bob.state);

    // Heads of one honest history compare fine.
    publish_directly(&s.honest_db, "erin", "erin@example.org", &cert("erin"));
    let bob_later =
        verify_lookup(&lookup(&s.honest, bob, Some(2)), &key, Some(&for_bob.state)).unwrap();
    let proof: proto::ConsistencyProof =
        get(&s.honest, "/v1/directory/log/consistency?from=2&to=3").json();
    compare_heads(
        for_bob.state.head(),
        bob_later.state.head(),
        &wire::hashes(&proof.proof).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_rolled_back_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = Arc::new(SoftwareHsm::open_or_create(&dir.path().join("hsm.key")).unwrap());
    let db = dir.path().join("server.sqlite3");
    publish_directly(&db, "bob", "bob@example.org", &cert("bob v1"));
    // An old copy of the database (a backup), taken at one entry.
    let old = dir.path().join("old.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("VACUUM INTO ?1", [old.to_str().unwrap()])
            .unwrap();
    }
    publish_directly(&db, "carol", "carol@example.org", &cert("carol"));
    publish_directly(&db, "bob", "bob@example.org", &cert("bob v2"));

    let server = Server::try_start(&db, hsm.clone()).unwrap();
    let key = log_key(&server);
    let first = verify_lookup(&lookup(&server, "carol@example.org", None), &key, None).unwrap();
    let state = verify_lookup(
        &lookup(&server, "bob@example.org", Some(3)),
        &key,
        Some(&first.state),
    )
    .unwrap()
    .state;
    assert_eq!(state.head().size(), 3);
    drop(server);

    // The server comes back from the old copy, with the same key: its answers are
    // signed, and Bob's old key even has a valid inclusion proof.
    let restored = Server::try_start(&old, hsm).unwrap();
    let answer = lookup(&restored, "bob@example.org", Some(3));
    assert_eq!(answer.cert.0, cert("bob v1"));
    verify_lookup(&answer, &key, None).unwrap();
    let err = verify_lookup(&answer, &key, Some(&state)).unwrap_err();
    assert_eq!(
        err,
        LogError::RolledBack {
            known: 3,
            offered: 1
        }
    );
    assert!(err.to_string().contains("rolled back"), "{err}");
}

#[test]
fn bad_proofs_and_heads_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.sqlite3");
    for i in 0..6 {
        publish_directly(
            &db,
            &format!("user{i}"),
            &format!("u{i}@example.org"),
            &cert(&format!("key {i}")),
        );
    }
    let hsm = Arc::new(SoftwareHsm::open_or_create(&dir.path().join("hsm.key")).unwrap());
    let server = Server::try_start(&db, hsm).unwrap();
    let key = log_key(&server);
    let good = lookup(&server, "u2@example.org", None);
    let state = verify_lookup(&good, &key, None).unwrap().state;
    let before = state.clone();

    let refused = |answer: &proto::DirectoryEntry, known: Option<&LogState>| {
        verify_lookup(answer, &key, known).unwrap_err()
    };
    // The proof of another entry (the wrong leaf) under this key's answer.
    let other = lookup(&server, "u4@example.org", None);
    let mut wrong_leaf = good.clone();
    wrong_leaf.proof.entry = other.proof.entry.clone();
    assert_eq!(refused(&wrong_leaf, None), LogError::EntryMismatch);
    // Entry 3's place for entry 2 (a proof of the same length, for another leaf).
    let mut wrong_index = good.clone();
    wrong_index.proof.index = 3;
    let err = refused(&wrong_index, None);
    assert!(matches!(err, LogError::InclusionMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("does not lead to the root"),
        "{err}"
    );
    // Another certificate for the same entry.
    let mut swapped = good.clone();
    swapped.cert = Bytes(cert("attacker"));
    assert_eq!(refused(&swapped, None), LogError::EntryMismatch);
    // A bad signature on the head, or a head whose size was changed.
    let mut bad_sig = good.clone();
    bad_sig.proof.head.signature.0[5] ^= 1;
    let err = refused(&bad_sig, None);
    assert_eq!(err, LogError::BadSignature { size: 6 });
    assert!(err.to_string().contains("signature"), "{err}");
    let mut grown = good.clone();
    grown.proof.head.size += 1;
    assert!(matches!(
        refused(&grown, None),
        LogError::BadSignature { .. }
    ));
    // A truncated proof, a padded one, an altered hash.
    let mut cut = good.clone();
    cut.proof.inclusion.pop();
    let err = refused(&cut, None);
    assert_eq!(
        err,
        LogError::ProofLength {
            what: "inclusion",
            expected: 3,
            got: 2
        }
    );
    assert!(
        err.to_string().contains("has 2 hashes where 3 are needed"),
        "{err}"
    );
    let mut padded = good.clone();
    padded.proof.inclusion.push(Bytes(vec![0; 32]));
    assert!(matches!(
        refused(&padded, None),
        LogError::ProofLength { .. }
    ));
    let mut altered = good.clone();
    altered.proof.inclusion[1].0[0] ^= 0x40;
    assert!(matches!(
        refused(&altered, None),
        LogError::InclusionMismatch { .. }
    ));
    let mut short_hash = good.clone();
    short_hash.proof.inclusion[0].0.truncate(31);
    assert!(matches!(
        refused(&short_hash, None),
        LogError::MalformedEntry(_)
    ));
    // A consistency proof that was tampered with, from a client at an older head.
    let mut older = good.clone();
    older.proof = lookup(&server, "u2@example.org", Some(6)).proof;
    assert!(verify_lookup(&older, &key, Some(&state)).is_ok());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        let token = vec![0xAB; 32];
        store
            .put_directory_claim(
                DirectoryClaimRow {
                    token_hash: token.clone(),
                    user: "user0".into(),
                    address: "new@example.org".into(),
                    cert: cert("new"),
                    expires_at: NOW + 60,
                },
                NOW,
                100,
                100,
            )
            .await
            .unwrap();
        store
            .confirm_directory_claim(&token, "user0", NOW)
            .await
            .unwrap()
            .unwrap();
    });
    let mut grown_log = lookup(&server, "u2@example.org", Some(6));
    let c = grown_log.proof.consistency.as_mut().unwrap();
    assert_eq!((c.from, c.to), (6, 7));
    verify_lookup(&grown_log, &key, Some(&state)).unwrap();
    grown_log.proof.consistency.as_mut().unwrap().proof[0].0[3] ^= 1;
    assert!(matches!(
        verify_lookup(&grown_log, &key, Some(&state)).unwrap_err(),
        LogError::Fork(_)
    ));
    grown_log.proof.consistency = None;
    assert!(matches!(
        verify_lookup(&grown_log, &key, Some(&state)).unwrap_err(),
        LogError::ProofLength {
            what: "consistency",
            ..
        }
    ));
    // Nothing was stored: the state the client keeps is unchanged by every refusal.
    assert_eq!(state, before);

    // Bad queries are 4xx with a clear code and change nothing.
    let snapshot = server.snapshot();
    get(&server, "/v1/directory/log/consistency?from=5&to=99").expect(400, "bad_log_range");
    get(&server, "/v1/directory/log/consistency?from=5").expect(400, "bad_query");
    get(&server, "/v1/directory/log/entries?start=99").expect(400, "bad_log_range");
    get(&server, "/v1/directory/log/entries?start=-1").expect(400, "bad_query");
    get(&server, "/v1/directory/keys/u2@example.org?known=x").expect(400, "bad_query");
    get(&server, "/v1/directory/keys/u2@example.org?other=1").expect(400, "bad_query");
    assert_eq!(server.snapshot(), snapshot);
}

#[test]
fn a_full_replay_audit_checks_every_signed_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.sqlite3");
    let hsm = Arc::new(SoftwareHsm::open_or_create(&dir.path().join("hsm.key")).unwrap());
    let server = Server::try_start(&db, hsm).unwrap();
    let key = log_key(&server);
    // Heads get signed as clients ask for them, at several sizes.
    for i in 0..5 {
        publish_directly(
            &db,
            &format!("user{i}"),
            &format!("u{i}@example.org"),
            &cert(&format!("k{i}")),
        );
        get(&server, "/v1/directory/log").json::<proto::LogInfo>();
    }
    let heads: proto::LogHeads = get(&server, "/v1/directory/log/heads?after=0").json();
    let sizes: Vec<u64> = heads.heads.iter().map(|h| h.size).collect();
    assert_eq!(sizes, vec![1, 2, 3, 4, 5]);

    // The auditor: every entry from 0, every head checked at its size.
    let page: proto::LogEntries = get(&server, "/v1/directory/log/entries?start=0").json();
    assert!(page.frontier.is_empty());
    let mut replay = wire::resume_replay(&page, None).unwrap();
    let mut heads = heads.heads.iter().peekable();
    for bytes in &page.entries {
        let entry = sealpost_transparency::LogEntry::decode(bytes.as_slice()).unwrap();
        replay.push(&entry);
        while let Some(h) = heads.next_if(|h| h.size == replay.size()) {
            replay
                .check(&wire::verified_head(h, &key).unwrap())
                .unwrap();
        }
    }
    assert!(heads.next().is_none(), "every head was checked");
    // An entry changed in the database breaks the audit at the first head after it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut entry: Vec<u8> = conn
        .query_row("SELECT entry FROM log_entries WHERE idx = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    entry[40] ^= 1;
    conn.execute("UPDATE log_entries SET entry = ?1 WHERE idx = 2", [&entry])
        .unwrap();
    let page: proto::LogEntries = get(&server, "/v1/directory/log/entries?start=0").json();
    let mut replay = wire::resume_replay(&page, None).unwrap();
    wire::push_entries(&mut replay, &page).unwrap();
    let err = replay
        .check(&wire::verified_head(&page.head, &key).unwrap())
        .unwrap_err();
    assert!(matches!(err, LogError::ReplayMismatch { size: 5 }), "{err}");
}
