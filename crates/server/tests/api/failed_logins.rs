//! The failed-login counter: charged at login start, reset only by a successful finish,
//! an unlock from a signed-in device, or the recovery code; kept across a password
//! change; at the limit the account is locked.

use reqwest::Method;
use sealpost_crypto::RecoveryCode;
use sealpost_crypto::opaque::{self, OpaqueError};

use crate::harness::{KE3_LEN, LIMIT, PW, PW2, Server, device, pw, random, send};

#[test]
fn abandoned_starts_are_charged_and_lock_the_account_until_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let bob = s.register("bob", PW);

    for i in 1..=LIMIT {
        s.abandon("bob");
        assert_eq!(s.failed_logins("bob"), i, "charged at start");
    }
    // The eleventh start, with the right password, looks normal but cannot complete.
    let started = s.login_start("bob", PW, &device(1));
    let id = started.id.clone();
    assert_eq!(
        started.client_finish("bob", PW).err(),
        Some(OpaqueError::InvalidLogin)
    );
    s.login_finish(&id, &random::<KE3_LEN>())
        .expect(401, "login_failed");
    assert_eq!(
        s.failed_logins("bob"),
        LIMIT,
        "nothing charged past the limit"
    );

    // A wrong recovery code changes nothing; the right one sets a new password and
    // unlocks.
    let (_, request) = opaque::client_registration_start(&pw(PW2)).unwrap();
    s.recovery_start_raw(
        "bob",
        RecoveryCode::generate()
            .unwrap()
            .auth_key()
            .expose()
            .to_vec(),
        request,
    )
    .expect(401, "recovery_failed");
    assert_eq!(s.failed_logins("bob"), LIMIT);
    let recovery = s.recovery_start(&bob, PW2);
    assert_eq!(s.failed_logins("bob"), LIMIT, "only the finish unlocks");
    s.post("/v1/recovery/finish", &recovery.finish).no_content();
    assert_eq!(s.failed_logins("bob"), 0);
    let session = s.login(&bob, PW2, &device(1));
    assert_eq!(session.finished.failed_attempts, 0);
}

#[test]
fn a_password_change_keeps_the_failed_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let a = s.login(&alice, PW, &device(1));
    for _ in 0..3 {
        s.abandon("alice");
    }
    s.change_password(&alice, &a.token, PW2);
    assert_eq!(s.failed_logins("alice"), 3);
    let session = s.login(&alice, PW2, &device(1));
    assert_eq!(session.finished.failed_attempts, 3);
    assert_eq!(s.failed_logins("alice"), 0);
}

#[test]
fn a_signed_in_device_unlocks_a_locked_account() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let a = s.login(&alice, PW, &device(1));
    for _ in 0..LIMIT + 2 {
        s.abandon("alice");
    }
    assert_eq!(s.failed_logins("alice"), LIMIT);

    // Not without a session.
    send(s.request(Method::POST, "/v1/account/unlock")).expect(401, "bad_session");
    s.call(Method::POST, "/v1/account/unlock", &random::<32>(), None)
        .expect(401, "bad_session");
    assert_eq!(s.failed_logins("alice"), LIMIT);

    s.call(Method::POST, "/v1/account/unlock", &a.token, None)
        .no_content();
    assert_eq!(s.failed_logins("alice"), 0);
    let session = s.login(&alice, PW, &device(2));
    assert_eq!(session.finished.failed_attempts, 0);
}
