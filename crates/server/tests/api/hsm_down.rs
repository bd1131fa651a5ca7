//! With the HSM unavailable every endpoint that needs it answers 503 and writes nothing,
//! what needs no key still works, and flows left half-done finish once it is back.

use reqwest::Method;
use sealpost_crypto::opaque;
use sealpost_proto as proto;
use sealpost_proto::Bytes;

use crate::harness::{
    Answer, PW, PW2, Server, cloud_ctx, device, ids, login_start, pw, send, settings_blob,
};

#[test]
fn with_the_hsm_unavailable_every_endpoint_that_needs_it_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let a = s.login(&alice, PW, &device(1));

    // Flows left half-done while the HSM still works.
    let login = s.login_start("alice", PW, &device(2));
    let login_id = login.id.clone();
    let ke3 = login.client_finish("alice", PW).unwrap().finalization;
    let bob = s.register_start("bob", PW2).finish("bob", PW2);
    let (pw_state, pw_request) = opaque::client_registration_start(&pw(PW2)).unwrap();
    let pw_started: proto::RegisterStarted =
        s.password_start_raw(&a.token, pw_request.clone()).json();
    let pw_fin = opaque::client_registration_finish(
        pw_state,
        &pw(PW2),
        pw_started.registration_response.as_slice(),
        ids("alice"),
    )
    .unwrap();
    let pw_finish = proto::PasswordFinish {
        registration_id: pw_started.registration_id,
        registration_upload: Bytes(pw_fin.upload),
        cloud_wrap: Bytes(
            alice
                .identity
                .wrap_with_key(&opaque::cloud_kek(&pw_fin.export_key), &cloud_ctx("alice"))
                .unwrap(),
        ),
    };
    let recovery = s.recovery_start(&alice, PW);
    assert_eq!(s.failed_logins("alice"), 1);

    s.hsm().set_down(true);
    let before = s.snapshot();
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let recovery_start = proto::RecoveryStart {
        user: "alice".into(),
        recovery_auth: Bytes(alice.code.auth_key().expose().to_vec()),
        registration_request: Bytes(pw_request.clone()),
    };
    type Call<'a> = (&'static str, Box<dyn Fn() -> Answer + 'a>);
    let calls: Vec<Call<'_>> = vec![
        (
            "register/start",
            Box::new(|| s.register_start_raw("carol", pw_request.clone())),
        ),
        (
            "register/finish",
            Box::new(|| s.post("/v1/register/finish", &bob.request)),
        ),
        (
            "login/start",
            Box::new(|| {
                s.post(
                    "/v1/login/start",
                    &login_start("alice", ke1.clone(), &device(3)),
                )
            }),
        ),
        (
            "login/start of an unknown user",
            Box::new(|| {
                s.post(
                    "/v1/login/start",
                    &login_start("nobody", ke1.clone(), &device(3)),
                )
            }),
        ),
        ("login/finish", Box::new(|| s.login_finish(&login_id, &ke3))),
        ("GET settings", Box::new(|| s.get("/v1/settings", &a.token))),
        (
            "PUT settings",
            Box::new(|| s.put_settings(&a.token, 1, settings_blob("alice", 2))),
        ),
        (
            "password/start",
            Box::new(|| s.password_start_raw(&a.token, pw_request.clone())),
        ),
        (
            "password/finish",
            Box::new(|| s.post_auth("/v1/password/finish", &a.token, &pw_finish)),
        ),
        (
            "recovery/start",
            Box::new(|| s.post("/v1/recovery/start", &recovery_start)),
        ),
        (
            "recovery/finish",
            Box::new(|| s.post("/v1/recovery/finish", &recovery.finish)),
        ),
    ];
    for (what, call) in &calls {
        let refused = s.hsm().refused();
        let answer = call();
        assert_eq!(answer.status, 503, "{what}: {}", answer.text());
        assert_eq!(answer.api_error().code, "unavailable", "{what}");
        assert!(s.hsm().refused() > refused, "{what} did not ask the HSM");
        assert_eq!(s.snapshot(), before, "{what} wrote to the store");
    }
    // What needs no key still works.
    send(s.request(Method::GET, "/v1/health")).json::<proto::Health>();
    let devices: proto::Devices = s.get("/v1/devices", &a.token).json();
    assert_eq!(devices.devices.len(), 1);
    assert_eq!(s.snapshot(), before);

    // Back up: every flow left waiting finishes, and the refused login start was not
    // charged.
    s.hsm().set_down(false);
    let finished: proto::LoginFinished = s.login_finish(&login_id, &ke3).json();
    assert_eq!(finished.failed_attempts, 0);
    s.post("/v1/register/finish", &bob.request).no_content();
    s.post_auth("/v1/password/finish", &a.token, &pw_finish)
        .no_content();
    s.post("/v1/recovery/finish", &recovery.finish).no_content();
    let session = s.login(&alice, PW, &device(1));
    assert_eq!(session.finished.failed_attempts, 0);
}
