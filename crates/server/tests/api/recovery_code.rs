//! A signed-in device replaces the recovery code: the new wrap and verifier replace the
//! old ones together, so the old code stops recovering the account and the new one
//! does; bad input, missing sessions and sessions from an older login change nothing.

use sealpost_crypto::opaque;
use sealpost_crypto::{IdentityKey, RecoveryCode};
use sealpost_proto as proto;
use sealpost_proto::Bytes;

use crate::harness::{PW, Server, device, hex, pw, recovery_ctx};

const PATH: &str = "/v1/recovery/code";

#[test]
fn a_new_recovery_code_retires_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let token = s.login(&alice, PW, &device(1)).token;

    let code = RecoveryCode::generate().unwrap();
    let good = proto::NewRecoveryCode {
        recovery_wrap: Bytes(
            alice
                .identity
                .wrap_with_recovery_code(&code, &recovery_ctx("alice"))
                .unwrap(),
        ),
        recovery_verifier: Bytes(code.auth_verifier().to_vec()),
    };

    // Without a session, with bad blobs, or with unknown fields: refused, nothing changed.
    let before = s.snapshot();
    s.put(PATH, &[7; 32], &good).expect(401, "bad_session");
    let mut bad = good.clone();
    bad.recovery_verifier = Bytes(vec![1; 31]);
    s.put(PATH, &token, &bad).expect(400, "bad_blob");
    let mut bad = good.clone();
    bad.recovery_wrap = Bytes(Vec::new());
    s.put(PATH, &token, &bad).expect(400, "bad_blob");
    let mut bad = good.clone();
    bad.recovery_wrap = Bytes(vec![7; 64 * 1024 + 1]);
    s.put(PATH, &token, &bad).expect(400, "bad_blob");
    let mut extra = serde_json::to_value(&good).unwrap();
    extra["recoveryAuth"] = serde_json::Value::String("AAAA".into());
    s.put(PATH, &token, &extra).expect(422, "bad_json");
    assert_eq!(s.snapshot(), before);
    // A session whose login is older than five minutes may do much, but not this.
    s.clock().advance(301);
    s.put(PATH, &token, &good)
        .expect(403, "fresh_login_required");
    s.get("/v1/devices", &token).json::<proto::Devices>();
    assert_eq!(s.snapshot(), before);
    let token = s.login(&alice, PW, &device(1)).token;

    s.put(PATH, &token, &good).no_content();
    // The wrap is stored sealed, not as sent; the verifier (public) as sent.
    let stored = format!("{:?}", s.snapshot());
    assert!(
        !stored.contains(&hex(&good.recovery_wrap.0)),
        "stored unsealed"
    );
    assert!(stored.contains(&hex(&good.recovery_verifier.0)));

    // The old code no longer recovers the account.
    let (_, request) = opaque::client_registration_start(&pw(PW)).unwrap();
    s.recovery_start_raw("alice", alice.code.auth_key().expose().to_vec(), request)
        .expect(401, "recovery_failed");
    // The new one does, and its wrap opens to the identity key.
    let (_, request) = opaque::client_registration_start(&pw(PW)).unwrap();
    let started: proto::RecoveryStarted = s
        .recovery_start_raw("alice", code.auth_key().expose().to_vec(), request)
        .json();
    let identity = IdentityKey::unwrap_with_recovery_code(
        &code,
        &recovery_ctx("alice"),
        started.recovery_wrap.as_slice(),
    )
    .unwrap();
    assert_eq!(identity, alice.identity);
    // The password and the session are untouched.
    s.get("/v1/devices", &token).json::<proto::Devices>();
    assert_eq!(s.login(&alice, PW, &device(2)).finished.failed_attempts, 0);
}
