//! Bad input gets a 4xx `ApiError` with a clear code and changes nothing: requests
//! without the API version header, oversized and malformed bodies, unknown endpoints and
//! wrong methods, and broken OPAQUE messages at every step of registration, login,
//! password change and recovery (after which the refused flows still finish).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use sealpost_crypto::opaque;
use sealpost_proto as proto;
use sealpost_proto::Bytes;
use serde_json::{Value, json};

use crate::harness::{
    KE3_LEN, PW, PW2, Registered, RegistrationStarted, SERVER_ID, Server, bearer, cloud_ctx,
    device, ids, login_start, pw, send, settings_blob,
};

/// Variants of a valid message that must all be refused: empty, cut short by one byte,
/// one byte too long, and the right length of 0xff (not a valid encoding).
fn broken(valid: &[u8]) -> Vec<Vec<u8>> {
    let mut longer = valid.to_vec();
    longer.push(0);
    vec![
        Vec::new(),
        valid[..valid.len() - 1].to_vec(),
        longer,
        vec![0xff; valid.len()],
    ]
}

#[test]
fn requests_without_the_api_version_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let body = login_start("alice", ke1, &device(1));
    let before = s.snapshot();

    let url = |p: &str| format!("{}{p}", s.url);
    for version in [
        None,
        Some("2"),
        Some("0"),
        Some("1.0"),
        Some("one"),
        Some(""),
    ] {
        for rb in [
            s.http.get(url("/v1/health")),
            s.http.post(url("/v1/login/start")).json(&body),
            s.http.post(url("/v1/register/start")).json(&json!({
                "user": "mallory", "registrationRequest": "AAAA"
            })),
            s.http.get(url("/v1/no/such/endpoint")),
        ] {
            let rb = match version {
                Some(v) => rb.header(proto::API_VERSION_HEADER, v),
                None => rb,
            };
            let answer = send(rb);
            answer.expect(400, "unsupported_api_version");
            assert!(
                answer
                    .api_error()
                    .message
                    .contains(proto::API_VERSION_HEADER)
            );
        }
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.failed_logins("alice"), 0);

    // The same requests with the header work.
    let health: proto::Health = send(s.request(Method::GET, "/v1/health")).json();
    assert_eq!(health.api_version, proto::API_VERSION);
    assert_eq!(health.server_id, SERVER_ID);
    assert_eq!(health.ksf, opaque::KSF_ID);
    let session = s.login(&alice, PW, &device(1));
    assert_eq!(session.finished.failed_attempts, 0);
}

#[test]
fn oversized_and_malformed_bodies_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let session = s.login(&alice, PW, &device(1));
    let token = session.token.as_slice();
    let before = s.snapshot();

    // A well-formed body that is over the limit only by its padding.
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let mut big = login_start("alice", ke1.clone(), &device(2));
    big.device_name = "x".repeat(proto::MAX_BODY_BYTES);
    let over = serde_json::to_vec(&big).unwrap();
    assert!(over.len() > proto::MAX_BODY_BYTES);
    for (method, path) in [
        (Method::POST, "/v1/login/start"),
        (Method::POST, "/v1/register/start"),
        (Method::POST, "/v1/login/finish"),
        (Method::POST, "/v1/recovery/start"),
        (Method::PUT, "/v1/settings"),
    ] {
        let answer = send(
            s.request(method.clone(), path)
                .header("authorization", bearer(token))
                .header("content-type", "application/json")
                .body(over.clone()),
        );
        answer.expect(413, "body_too_large");
    }

    // Not JSON, broken JSON, unknown or missing fields, wrong types, bad base64.
    let good = serde_json::to_value(login_start("alice", ke1, &device(2))).unwrap();
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let mut unknown = good.clone();
    unknown["admin"] = json!(true);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("deviceId");
    let raw_cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "text/plain",
            serde_json::to_vec(&good).unwrap(),
            415,
            "not_json",
        ),
        ("", serde_json::to_vec(&good).unwrap(), 415, "not_json"),
        (
            "application/json",
            b"{\"user\": \"alice\"".to_vec(),
            400,
            "bad_json",
        ),
        ("application/json", b"".to_vec(), 400, "bad_json"),
        ("application/json", b"\xff\xfe".to_vec(), 400, "bad_json"),
        (
            "application/json",
            [serde_json::to_vec(&good).unwrap(), b"{}".to_vec()].concat(),
            400,
            "bad_json",
        ),
    ];
    for (content_type, body, status, code) in raw_cases {
        let mut rb = s.request(Method::POST, "/v1/login/start").body(body);
        if !content_type.is_empty() {
            rb = rb.header("content-type", content_type);
        }
        send(rb).expect(status, code);
    }
    for body in [
        unknown,
        missing,
        with("user", json!(42)),
        with("credentialRequest", json!("not base64!")),
        with("credentialRequest", json!("AAAA====")),
        json!([]),
        json!(null),
    ] {
        s.post("/v1/login/start", &body).expect(422, "bad_json");
    }
    let mut put = json!({ "expectedVersion": 1, "blob": URL_SAFE_NO_PAD.encode(b"new") });
    put["extra"] = json!(1);
    s.put("/v1/settings", token, &put).expect(422, "bad_json");
    s.put(
        "/v1/settings",
        token,
        &json!({ "expectedVersion": "1", "blob": "AA" }),
    )
    .expect(422, "bad_json");
    // Blobs the server would store are bounded too.
    s.put(
        "/v1/settings",
        token,
        &json!({ "expectedVersion": 1, "blob": "" }),
    )
    .expect(400, "bad_blob");

    // Unknown endpoints and wrong methods answer in the same shape.
    send(s.request(Method::GET, "/v1/nothing")).expect(404, "not_found");
    send(s.request(Method::GET, "/v1/login/start")).expect(405, "method_not_allowed");
    send(
        s.request(Method::DELETE, "/v1/settings")
            .header("authorization", bearer(token)),
    )
    .expect(405, "method_not_allowed");

    assert_eq!(s.snapshot(), before);
    let settings: proto::Settings = s.get("/v1/settings", token).json();
    assert_eq!(settings.version, 1);
    assert_eq!(settings.blob.0, settings_blob("alice", 1));
    assert_eq!(s.login(&alice, PW, &device(1)).finished.failed_attempts, 0);
}

#[test]
fn malformed_opaque_messages_are_refused_at_every_step_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    // Registration: a broken request is refused before anything is stored.
    let (state, request) = opaque::client_registration_start(&pw(PW)).unwrap();
    let before = s.snapshot();
    for bad in broken(&request) {
        s.register_start_raw("alice", bad)
            .expect(400, "bad_opaque_message");
    }
    assert_eq!(s.snapshot(), before);

    // A broken upload (or blob) is refused and the registration can still finish.
    let started: proto::RegisterStarted = s.register_start_raw("alice", request).json();
    let finish = RegistrationStarted {
        state: Some(state),
        id: started.registration_id,
        response: started.registration_response.0,
    }
    .finish("alice", PW);
    let before = s.snapshot();
    for bad in broken(&finish.request.registration_upload.0) {
        let mut req = finish.request.clone();
        req.registration_upload = Bytes(bad);
        s.post("/v1/register/finish", &req)
            .expect(400, "bad_opaque_message");
    }
    for (field, value) in [
        ("cloudWrap", Vec::new()),
        ("recoveryWrap", vec![7; 64 * 1024 + 1]),
        ("settings", Vec::new()),
        ("recoveryVerifier", vec![1; 31]),
    ] {
        let mut req = serde_json::to_value(&finish.request).unwrap();
        req[field] = json!(URL_SAFE_NO_PAD.encode(&value));
        s.post("/v1/register/finish", &req).expect(400, "bad_blob");
    }
    assert_eq!(s.snapshot(), before);
    s.post("/v1/register/finish", &finish.request).no_content();
    let alice = Registered {
        user: "alice".into(),
        identity: finish.identity,
        code: finish.code,
        server_public_key: finish.server_public_key,
    };

    // Login start: a broken KE1 is refused before the attempt is charged.
    let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
    let before = s.snapshot();
    for bad in broken(&ke1) {
        s.post("/v1/login/start", &login_start("alice", bad, &device(1)))
            .expect(400, "bad_opaque_message");
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.failed_logins("alice"), 0);

    // Login finish: a broken KE3 is refused and the same login can still finish.
    let started = s.login_start("alice", PW, &device(1));
    let login_id = started.id.clone();
    let fin = started.client_finish("alice", PW).unwrap();
    assert_eq!(fin.finalization.len(), KE3_LEN);
    let before = s.snapshot();
    for bad in broken(&fin.finalization)[..3].iter() {
        s.login_finish(&login_id, bad)
            .expect(400, "bad_opaque_message");
    }
    assert_eq!(s.snapshot(), before);
    let finished: proto::LoginFinished = s.login_finish(&login_id, &fin.finalization).json();
    assert_eq!(
        finished.failed_attempts, 0,
        "the refused KE1s were not charged"
    );
    let token = opaque::session_token(&fin.session_key).expose().to_vec();

    // Password change: broken request, broken upload, empty cloud wrap.
    let (state, request) = opaque::client_registration_start(&pw(PW2)).unwrap();
    let before = s.snapshot();
    for bad in broken(&request) {
        s.password_start_raw(&token, bad)
            .expect(400, "bad_opaque_message");
    }
    assert_eq!(s.snapshot(), before);
    let started: proto::RegisterStarted = s.password_start_raw(&token, request).json();
    let fin = opaque::client_registration_finish(
        state,
        &pw(PW2),
        started.registration_response.as_slice(),
        ids("alice"),
    )
    .unwrap();
    let good = proto::PasswordFinish {
        registration_id: started.registration_id,
        registration_upload: Bytes(fin.upload.clone()),
        cloud_wrap: Bytes(
            alice
                .identity
                .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx("alice"))
                .unwrap(),
        ),
    };
    let before = s.snapshot();
    for bad in broken(&fin.upload) {
        let mut req = good.clone();
        req.registration_upload = Bytes(bad);
        s.post_auth("/v1/password/finish", &token, &req)
            .expect(400, "bad_opaque_message");
    }
    let mut req = good.clone();
    req.cloud_wrap = Bytes(Vec::new());
    s.post_auth("/v1/password/finish", &token, &req)
        .expect(400, "bad_blob");
    assert_eq!(s.snapshot(), before);
    s.post_auth("/v1/password/finish", &token, &good)
        .no_content();

    // Recovery: broken request (with the right code), broken upload.
    let (_, request) = opaque::client_registration_start(&pw(PW)).unwrap();
    let before = s.snapshot();
    for bad in broken(&request) {
        s.recovery_start_raw("alice", alice.code.auth_key().expose().to_vec(), bad)
            .expect(400, "bad_opaque_message");
    }
    assert_eq!(s.snapshot(), before);
    let recovery = s.recovery_start(&alice, PW);
    let before = s.snapshot();
    for bad in broken(&recovery.finish.registration_upload.0) {
        let mut req = recovery.finish.clone();
        req.registration_upload = Bytes(bad);
        s.post("/v1/recovery/finish", &req)
            .expect(400, "bad_opaque_message");
    }
    let mut req = recovery.finish.clone();
    req.cloud_wrap = Bytes(Vec::new());
    s.post("/v1/recovery/finish", &req).expect(400, "bad_blob");
    assert_eq!(s.snapshot(), before);
    s.post("/v1/recovery/finish", &recovery.finish).no_content();
    assert_eq!(s.login(&alice, PW, &device(1)).finished.failed_attempts, 0);
}
