//! A stolen database: the database (and the server's configuration) without the HSM
//! gives nothing to guess against, neither with a software key file of its own nor with
//! another PKCS#11 token, and a sealed blob moved to another account does not open. With
//! the HSM's keys (or a copied software key file) guessing does work offline, at the cost
//! of one Argon2id per guess: the limit of the design, shown by a test too.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use sealpost_crypto::opaque::{self, OpaqueError, ServerKeys};
use sealpost_crypto::{IdentityKey, SecretBytes};
use sealpost_proto as proto;
use sealpost_server::config::Config;
use sealpost_server::hsm::{Hsm, HsmError, SoftwareHsm};
use sealpost_testkit::softhsm::in_child_process;

use crate::harness::{
    KE3_LEN, LIMIT, PW, PW2, Registered, SERVER_ID, Server, WRONG, cloud_ctx, db, device, ids,
    login_start, pkcs11, pw, random, recovery_ctx, settings_blob,
};

/// The associated data the service seals each kind of blob under (mirrors
/// `service::aad`; the stolen-database tests check the mirror against the real HSM).
fn seal_aad(kind: &str, owner: &[u8]) -> Vec<u8> {
    [
        b"sealpost-server/v1/".as_slice(),
        kind.as_bytes(),
        &[0],
        owner,
    ]
    .concat()
}

/// What a thief finds in a copy of the SQLite file: every sealed blob, by kind, with the
/// owner it is sealed to.
struct Loot {
    record: Vec<u8>,
    cloud_wrap: Vec<u8>,
    recovery_wrap: Vec<u8>,
    settings: Vec<u8>,
    server_key: Vec<u8>,
    /// (id, sealed state) of pending logins.
    login_states: Vec<(Vec<u8>, Vec<u8>)>,
    file: Vec<u8>,
}

fn loot(copy: &Path, user: &str) -> Loot {
    let conn = db(copy);
    let (record, cloud_wrap, recovery_wrap) = conn
        .query_row(
            "SELECT record, cloud_wrap, recovery_wrap FROM accounts WHERE user_name = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let settings = conn
        .query_row(
            "SELECT blob FROM settings WHERE user_name = ?1",
            [user],
            |r| r.get(0),
        )
        .unwrap();
    let server_key = conn
        .query_row(
            "SELECT value FROM server_secrets WHERE name = 'opaque-ake-private-key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let login_states: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT id, state FROM login_states WHERE id LIKE 'login:%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!login_states.is_empty());
    Loot {
        record,
        cloud_wrap,
        recovery_wrap,
        settings,
        server_key,
        login_states,
        file: std::fs::read(copy).unwrap(),
    }
}

/// Copies the live SQLite database as a thief with file access would (a consistent copy,
/// WAL included).
fn steal(db: &Path, to: &Path) {
    let conn = Connection::open(db).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Checks every sealed blob of `loot` against the `real` HSM (it opens with the aad the
/// service uses) and the thief's (`other`: it does not), and that nothing in the file
/// parses as the OPAQUE data, wraps or keys it stands for. Returns the unsealed record.
fn assert_loot_is_useless(
    loot: &Loot,
    user: &str,
    account: &Registered,
    export_key: &SecretBytes<64>,
    real: &dyn Hsm,
    other: &dyn Hsm,
) -> Vec<u8> {
    let owner = user.as_bytes();
    let mut sealed: Vec<(&str, Vec<u8>, &[u8])> = vec![
        ("record", owner.to_vec(), &loot.record),
        ("cloud-wrap", owner.to_vec(), &loot.cloud_wrap),
        ("recovery-wrap", owner.to_vec(), &loot.recovery_wrap),
        ("settings", owner.to_vec(), &loot.settings),
        (
            "server-key",
            SERVER_ID.as_bytes().to_vec(),
            &loot.server_key,
        ),
    ];
    for (id, state) in &loot.login_states {
        sealed.push(("pending", id.clone(), state));
    }
    let mut plain = BTreeMap::new();
    for (kind, owner, blob) in &sealed {
        let aad = seal_aad(kind, owner);
        let opened = real.open(&aad, blob).unwrap_or_else(|e| {
            panic!("the real HSM cannot open the {kind}: {e} (the test's aad is wrong)")
        });
        match other.open(&aad, blob) {
            Err(HsmError::UnknownKey(_) | HsmError::Integrity) => {}
            other => panic!("another HSM opened the {kind}: {:?}", other.map(|_| ())),
        }
        // No plaintext is in the file, not even in part.
        if opened.len() >= 16 {
            for w in opened.windows(16).step_by(8) {
                assert!(
                    !loot.file.windows(16).any(|f| f == w),
                    "part of the unsealed {kind} is in the database file"
                );
            }
        }
        plain.insert(kind.to_string(), opened.to_vec());
    }

    // As stored, nothing is what it stands for ...
    let thief_keys = ServerKeys::generate().unwrap().0;
    let thief_km = opaque::key_material_from_hmac(
        &other
            .oprf_hmac(&opaque::oprf_hmac_message(user.as_bytes()))
            .unwrap(),
    );
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    assert_eq!(
        opaque::server_login_start(&thief_keys, &thief_km, Some(&loot.record), &ke1, ids(user))
            .err(),
        Some(OpaqueError::Malformed("record"))
    );
    assert!(ServerKeys::from_private_key(&loot.server_key).is_err());
    for (_, state) in &loot.login_states {
        assert_eq!(
            opaque::server_login_finish(state, &random::<KE3_LEN>(), ids(user)).err(),
            Some(OpaqueError::Malformed("login state"))
        );
    }
    let kek = opaque::cloud_kek(export_key);
    assert!(IdentityKey::unwrap_with_key(&kek, &cloud_ctx(user), &loot.cloud_wrap).is_err());
    assert!(
        IdentityKey::unwrap_with_recovery_code(
            &account.code,
            &recovery_ctx(user),
            &loot.recovery_wrap
        )
        .is_err()
    );
    // ... while unsealed it would be (so the failures above are the HSM layer's doing).
    assert!(
        opaque::server_login_start(
            &thief_keys,
            &thief_km,
            Some(&plain["record"]),
            &ke1,
            ids(user)
        )
        .is_ok()
    );
    let keys = ServerKeys::from_private_key(&plain["server-key"]).unwrap();
    assert_eq!(keys.public_key(), account.server_public_key);
    let state = &plain["pending"][1..];
    assert_eq!(
        opaque::server_login_finish(state, &random::<KE3_LEN>(), ids(user)).err(),
        Some(OpaqueError::InvalidLogin)
    );
    assert_eq!(
        IdentityKey::unwrap_with_key(&kek, &cloud_ctx(user), &plain["cloud-wrap"]).unwrap(),
        account.identity
    );
    assert_eq!(
        IdentityKey::unwrap_with_recovery_code(
            &account.code,
            &recovery_ctx(user),
            &plain["recovery-wrap"]
        )
        .unwrap(),
        account.identity
    );
    assert_eq!(plain["settings"], settings_blob(user, 1));
    plain.remove("record").unwrap()
}

/// The export key of `password`, from a full login.
fn export_key_of(s: &Server, user: &str, password: &str) -> SecretBytes<64> {
    let started = s.login_start(user, password, &device(9));
    let id = started.id.clone();
    let fin = started.client_finish(user, password).unwrap();
    s.login_finish(&id, &fin.finalization)
        .json::<proto::LoginFinished>();
    fin.export_key
}

fn write_config(path: &Path, dir: &Path) {
    std::fs::write(
        path,
        format!(
            "server_id = \"{SERVER_ID}\"\n\
             [store]\nkind = \"sqlite\"\npath = \"{}\"\n\
             [hsm]\nkind = \"software\"\nkey_file = \"{}\"\n\
             [limits]\nmax_failed_logins = {LIMIT}\nrate_per_second = 0.0\n",
            dir.join("server.sqlite3").display(),
            dir.join("hsm.key").display()
        ),
    )
    .unwrap();
}

#[test]
fn a_stolen_database_and_config_without_the_key_file_give_nothing_to_guess_against() {
    // The deployment: a configuration file, the database, the key file.
    let prod = tempfile::tempdir().unwrap();
    let prod_config = prod.path().join("server.toml");
    write_config(&prod_config, prod.path());
    let prod_db = prod.path().join("server.sqlite3");
    let s = Server::from_config(&Config::from_file(&prod_config).unwrap(), &prod_db).unwrap();
    let alice = s.register("alice", PW);
    let export_key = export_key_of(&s, "alice", PW);
    s.login_start("alice", PW, &device(2)); // a pending login in the copy

    // The thief copies the database and the configuration, not the key file, and lays
    // them out the same way on another machine.
    let thief = tempfile::tempdir().unwrap();
    let thief_db = thief.path().join("server.sqlite3");
    steal(&prod_db, &thief_db);
    let thief_config = thief.path().join("server.toml");
    std::fs::write(
        &thief_config,
        std::fs::read_to_string(&prod_config).unwrap().replace(
            prod.path().to_str().unwrap(),
            thief.path().to_str().unwrap(),
        ),
    )
    .unwrap();
    assert!(!thief.path().join("hsm.key").exists());

    // (a) A server on the copy, with the key file it makes itself, does not start: it
    // cannot open its own key pair.
    let config = Config::from_file(&thief_config).unwrap();
    let err = Server::from_config(&config, &thief_db).err().unwrap();
    assert!(err.contains("internal"), "{err}");
    let thief_hsm = SoftwareHsm::open_or_create(&thief.path().join("hsm.key")).unwrap();

    // (b) No stored blob opens or parses without the real key file.
    let real_hsm = SoftwareHsm::open_or_create(&prod.path().join("hsm.key")).unwrap();
    let loot = loot(&thief_db, "alice");
    let record = assert_loot_is_useless(&loot, "alice", &alice, &export_key, &real_hsm, &thief_hsm);

    // The correct password cannot be confirmed: a server the thief gets going on the
    // copy (by deleting the sealed key pair, so it makes a new one) refuses the login ...
    Connection::open(&thief_db)
        .unwrap()
        .execute("DELETE FROM server_secrets", [])
        .unwrap();
    let t = Server::from_config(&config, &thief_db).unwrap();
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let answer = t.post("/v1/login/start", &login_start("alice", ke1, &device(1)));
    answer.expect(500, "internal");
    // ... and even the unsealed record would not help without the OPRF key, which only
    // the real HSM holds: the right password does not verify against a KE2 made with
    // another key.
    let thief_km = opaque::key_material_from_hmac(
        &thief_hsm
            .oprf_hmac(&opaque::oprf_hmac_message(b"alice"))
            .unwrap(),
    );
    let keys = ServerKeys::from_private_key(
        &real_hsm
            .open(
                &seal_aad("server-key", SERVER_ID.as_bytes()),
                &loot.server_key,
            )
            .unwrap(),
    )
    .unwrap();
    let (state, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let (_, ke2) =
        opaque::server_login_start(&keys, &thief_km, Some(&record), &ke1, ids("alice")).unwrap();
    assert_eq!(
        opaque::client_login_finish(state, &pw(PW), &ke2, ids("alice")).err(),
        Some(OpaqueError::InvalidLogin)
    );

    // The original server, with its key file, still signs Alice in.
    let session = s.login(&alice, PW, &device(1));
    assert_eq!(session.finished.failed_attempts, 1);
}

#[test]
fn a_stolen_database_is_useless_with_another_pkcs11_token() {
    in_child_process(
        "stolen_database::a_stolen_database_is_useless_with_another_pkcs11_token",
        |token| {
            // The thief's token: the same labels, its own keys. Made before the module
            // is first initialized.
            let other = token.sibling().unwrap();
            let real = pkcs11(token);
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("server.sqlite3");
            let s = Server::try_start(&db, Arc::clone(&real)).unwrap();
            let alice = s.register("alice", PW);
            let export_key = export_key_of(&s, "alice", PW);
            s.login_start("alice", PW, &device(2));

            let thief = tempfile::tempdir().unwrap();
            let thief_db = thief.path().join("server.sqlite3");
            steal(&db, &thief_db);
            let other = pkcs11(&other);
            let err = Server::try_start(&thief_db, Arc::clone(&other))
                .err()
                .unwrap();
            assert!(err.starts_with("internal"), "{err}");
            let software = SoftwareHsm::open_or_create(&thief.path().join("hsm.key")).unwrap();
            let err = Server::try_start(&thief_db, Arc::new(software))
                .err()
                .unwrap();
            assert!(err.starts_with("internal"), "{err}");

            let loot = loot(&thief_db, "alice");
            assert_loot_is_useless(&loot, "alice", &alice, &export_key, &*real, &*other);
            let software = SoftwareHsm::open_or_create(&thief.path().join("hsm.key")).unwrap();
            assert_loot_is_useless(&loot, "alice", &alice, &export_key, &*real, &software);

            let session = s.login(&alice, PW, &device(1));
            assert_eq!(session.finished.failed_attempts, 1);
        },
    );
}

#[test]
fn a_sealed_blob_moved_to_another_account_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.register("alice", PW);
    s.register("bob", PW2);
    // Someone who can write the database gives Alice Bob's record, hoping Bob's password
    // signs in as Alice: the blob is sealed to Bob and does not open as Alice's.
    Connection::open(&s.db)
        .unwrap()
        .execute(
            "UPDATE accounts SET record = (SELECT record FROM accounts WHERE user_name = 'bob')
             WHERE user_name = 'alice'",
            [],
        )
        .unwrap();
    let (_, ke1) = opaque::client_login_start(&pw(PW2)).unwrap();
    s.post("/v1/login/start", &login_start("alice", ke1, &device(1)))
        .expect(500, "internal");
}

#[test]
fn whoever_can_use_the_hsm_keys_can_guess_offline_at_argon2_cost() {
    // The limit of the design, shown rather than claimed: with the database and the
    // software key file (or the right to call the HSM), guessing needs neither the
    // server nor its counter; each guess costs one client-side Argon2id.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    s.abandon("alice");
    let thief = tempfile::tempdir().unwrap();
    let thief_db = thief.path().join("server.sqlite3");
    steal(&s.db, &thief_db);
    std::fs::copy(dir.path().join("hsm.key"), thief.path().join("hsm.key")).unwrap();
    let hsm = SoftwareHsm::open_or_create(&thief.path().join("hsm.key")).unwrap();

    let loot = loot(&thief_db, "alice");
    let record = hsm
        .open(&seal_aad("record", b"alice"), &loot.record)
        .unwrap();
    let keys = ServerKeys::from_private_key(
        &hsm.open(
            &seal_aad("server-key", SERVER_ID.as_bytes()),
            &loot.server_key,
        )
        .unwrap(),
    )
    .unwrap();
    // One HSM call per user; afterwards the per-user OPRF key is in the attacker's memory.
    let km = opaque::key_material_from_hmac(
        &hsm.oprf_hmac(&opaque::oprf_hmac_message(b"alice")).unwrap(),
    );
    let guess = |password: &str| {
        let (state, ke1) = opaque::client_login_start(&pw(password)).unwrap();
        let (_, ke2) =
            opaque::server_login_start(&keys, &km, Some(&record), &ke1, ids("alice")).unwrap();
        opaque::client_login_finish(state, &pw(password), &ke2, ids("alice")).ok()
    };
    assert!(guess(WRONG).is_none());
    let found = guess(PW).unwrap();
    // The password found opens the identity key from the unsealed cloud wrap.
    let cloud_wrap = hsm
        .open(&seal_aad("cloud-wrap", b"alice"), &loot.cloud_wrap)
        .unwrap();
    assert_eq!(
        IdentityKey::unwrap_with_key(
            &opaque::cloud_kek(&found.export_key),
            &cloud_ctx("alice"),
            &cloud_wrap
        )
        .unwrap(),
        alice.identity
    );
    // The server saw none of it.
    assert_eq!(s.failed_logins("alice"), 1);
}
