//! No account enumeration: unknown and locked accounts answer login and recovery like
//! real ones, field for field and byte for byte, and nothing is stored for them.

use std::collections::BTreeSet;

use sealpost_crypto::opaque;
use sealpost_proto as proto;
use serde_json::Value;

use crate::harness::{KE3_LEN, LIMIT, PW, PW2, Server, db, device, login_start, pw, random};

#[test]
fn login_answers_do_not_reveal_whether_an_account_exists() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.register("real", PW);
    s.register("locked", PW);
    for _ in 0..LIMIT {
        s.abandon("locked");
    }
    assert_eq!(s.failed_logins("locked"), LIMIT);

    // Start: the same status, the same fields, the same sizes.
    let mut starts = Vec::new();
    for user in ["real", "locked", "nobody"] {
        let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
        let answer = s.post("/v1/login/start", &login_start(user, ke1, &device(1)));
        assert_eq!(answer.status, 200, "{}", answer.text());
        let v: Value = serde_json::from_slice(&answer.body).unwrap();
        let keys: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
        let started: proto::LoginStarted = answer.json();
        assert_eq!(started.login_id.len(), 32);
        assert!(started.login_id.bytes().all(|b| b.is_ascii_hexdigit()));
        starts.push((keys, started.credential_response.0.len(), started.login_id));
    }
    assert_eq!(starts[0].0, starts[1].0);
    assert_eq!(starts[0].0, starts[2].0);
    assert_eq!(starts[0].1, starts[1].1);
    assert_eq!(starts[0].1, starts[2].1);

    // Finish with a malformed KE3, then a well-formed wrong one: answers alike, byte for
    // byte.
    let mut malformed = Vec::new();
    let mut wrong = Vec::new();
    for (_, _, id) in &starts {
        let a = s.login_finish(id, &[0; KE3_LEN - 1]);
        malformed.push((a.status, a.body));
        let a = s.login_finish(id, &random::<KE3_LEN>());
        wrong.push((a.status, a.body));
    }
    assert_eq!(malformed[0].0, 400);
    assert_eq!(malformed[0], malformed[1]);
    assert_eq!(malformed[0], malformed[2]);
    assert_eq!(wrong[0].0, 401);
    assert_eq!(wrong[0], wrong[1]);
    assert_eq!(wrong[0], wrong[2]);

    // Nothing is made for the unknown name; the locked account is not charged further.
    let conn = db(&s.db);
    let accounts: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(accounts, 2);
    assert_eq!(s.failed_logins("locked"), LIMIT);
    assert_eq!(s.failed_logins("real"), 1);
}

#[test]
fn recovery_answers_alike_for_unknown_users_and_wrong_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.register("real", PW);
    let before = s.snapshot();
    let (_, request) = opaque::client_registration_start(&pw(PW2)).unwrap();

    let mut answers = Vec::new();
    for (user, auth, request) in [
        ("real", random::<32>(), request.clone()),
        ("nobody", random::<32>(), request.clone()),
        ("real", random::<32>(), vec![0xff; 3]),
        ("nobody", random::<32>(), vec![0xff; 3]),
        ("real", Vec::new(), request.clone()),
        ("nobody", Vec::new(), request),
    ] {
        let a = s.recovery_start_raw(user, auth, request);
        a.expect(401, "recovery_failed");
        answers.push((a.status, a.body));
    }
    assert!(answers.iter().all(|a| *a == answers[0]));
    assert_eq!(s.snapshot(), before);
}
