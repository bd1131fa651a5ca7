//! Login and registration ids are single-use and bound to their flow: a replayed login
//! finish cannot reset the failed-login counter, a login id of another user or past its
//! expiry does not finish, and ids offered to the wrong endpoint or before any start are
//! refused and consume nothing.

use sealpost_proto as proto;

use crate::harness::{KE3_LEN, PENDING_TTL, PW, PW2, Server, device, hex, random};

#[test]
fn login_finish_is_single_use_and_a_replay_cannot_reset_the_counter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);

    let started = s.login_start("alice", PW, &device(1));
    let login_id = started.id.clone();
    let fin = started.client_finish("alice", PW).unwrap();
    let first: proto::LoginFinished = s.login_finish(&login_id, &fin.finalization).json();
    assert_eq!(first.failed_attempts, 0);
    s.login_finish(&login_id, &fin.finalization)
        .expect(401, "login_failed");

    // Failures after the success are not wiped out by replaying it.
    s.abandon("alice");
    s.abandon("alice");
    assert_eq!(s.failed_logins("alice"), 2);
    let before = s.snapshot();
    s.login_finish(&login_id, &fin.finalization)
        .expect(401, "login_failed");
    assert_eq!(s.snapshot(), before);

    // A finish that does not verify consumes the login and refunds nothing.
    let started = s.login_start("alice", PW, &device(1));
    let second_id = started.id.clone();
    assert_eq!(s.failed_logins("alice"), 3);
    s.login_finish(&second_id, &random::<KE3_LEN>())
        .expect(401, "login_failed");
    assert_eq!(s.failed_logins("alice"), 3);
    // Not even the right KE3 finishes it now.
    let fin = started.client_finish("alice", PW).unwrap();
    s.login_finish(&second_id, &fin.finalization)
        .expect(401, "login_failed");

    let session = s.login(&alice, PW, &device(1));
    assert_eq!(session.finished.failed_attempts, 3);
    assert_eq!(s.failed_logins("alice"), 0);
}

#[test]
fn a_login_id_of_another_user_or_past_its_expiry_does_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    s.register("bob", PW2);

    // Alice's KE3 under Bob's login id: refused, Bob's attempt stays charged, and
    // Alice's own login is untouched.
    let a = s.login_start("alice", PW, &device(1));
    let b = s.login_start("bob", PW2, &device(2));
    let a_id = a.id.clone();
    let fin = a.client_finish("alice", PW).unwrap();
    s.login_finish(&b.id, &fin.finalization)
        .expect(401, "login_failed");
    assert_eq!(s.failed_logins("bob"), 1);
    let finished: proto::LoginFinished = s.login_finish(&a_id, &fin.finalization).json();
    assert_eq!(finished.failed_attempts, 0);
    assert_eq!(s.failed_logins("bob"), 1);

    // A login finished after its pending state expired fails and stays charged.
    let started = s.login_start("alice", PW, &device(1));
    let id = started.id.clone();
    let fin = started.client_finish("alice", PW).unwrap();
    s.clock().advance(PENDING_TTL + 1);
    s.login_finish(&id, &fin.finalization)
        .expect(401, "login_failed");
    assert_eq!(s.failed_logins("alice"), 1);
    let session = s.login(&alice, PW, &device(1));
    assert_eq!(session.finished.failed_attempts, 1);
}

#[test]
fn out_of_order_calls_are_refused_and_consume_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);

    // A finish before any start.
    let before = s.snapshot();
    for id in [
        "0".repeat(32),
        hex(&random::<16>()),
        String::new(),
        "zz".into(),
        "a".repeat(1000),
        "login:0000".into(),
    ] {
        s.login_finish(&id, &random::<KE3_LEN>())
            .expect(401, "login_failed");
    }
    assert_eq!(s.snapshot(), before);

    // A pending login and a pending registration, each offered to the other's finish.
    let login = s.login_start("alice", PW, &device(1));
    let login_id = login.id.clone();
    let ke3 = login.client_finish("alice", PW).unwrap().finalization;
    let registration = s.register_start("bob", PW2);
    let reg_id = registration.id.clone();
    let bob = registration.finish("bob", PW2);
    let before = s.snapshot();

    let mut wrong = bob.request.clone();
    wrong.registration_id = login_id.clone();
    s.post("/v1/register/finish", &wrong)
        .expect(401, "registration_expired");
    s.login_finish(&reg_id, &ke3).expect(401, "login_failed");
    s.post(
        "/v1/recovery/finish",
        &proto::RecoveryFinish {
            registration_id: reg_id.clone(),
            registration_upload: bob.request.registration_upload.clone(),
            cloud_wrap: bob.request.cloud_wrap.clone(),
        },
    )
    .expect(401, "registration_expired");
    s.post(
        "/v1/recovery/finish",
        &proto::RecoveryFinish {
            registration_id: login_id.clone(),
            registration_upload: bob.request.registration_upload.clone(),
            cloud_wrap: bob.request.cloud_wrap.clone(),
        },
    )
    .expect(401, "registration_expired");
    assert_eq!(s.snapshot(), before);

    // Both still finish, each at its own endpoint.
    let finished: proto::LoginFinished = s.login_finish(&login_id, &ke3).json();
    assert_eq!(finished.failed_attempts, 0);
    s.post("/v1/register/finish", &bob.request).no_content();
    // A registration id is not a password change either.
    let token = s.login(&alice, PW, &device(1)).token;
    let reg2 = s.register_start("carol", PW);
    s.post_auth(
        "/v1/password/finish",
        &token,
        &proto::PasswordFinish {
            registration_id: reg2.id.clone(),
            registration_upload: bob.request.registration_upload.clone(),
            cloud_wrap: bob.request.cloud_wrap.clone(),
        },
    )
    .expect(401, "registration_expired");
    assert_eq!(s.failed_logins("alice"), 0);
}
