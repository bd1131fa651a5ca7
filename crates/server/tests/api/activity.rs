//! Each account's security activity: what is recorded, that only the account's sessions
//! read it, and that the store keeps the details sealed.

use reqwest::Method;
use sealpost_proto as proto;
use sealpost_proto::SecurityEventKind as Kind;

use crate::harness::{PW, PW2, Server, WRONG, device};

fn activity(server: &Server, token: &[u8], after: i64) -> proto::SecurityEvents {
    server
        .get(&format!("/v1/account/activity?after={after}"), token)
        .json()
}

#[test]
fn sign_ins_failures_devices_and_password_changes_are_recorded_for_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let alice = server.register("alice", PW);
    server.login(&alice, PW, &device(1));
    // A wrong password, then the second device.
    let started = server.login_start("alice", WRONG, &device(2));
    let id = started.id.clone();
    let ke3 = started
        .client_finish("alice", WRONG)
        .map(|f| f.finalization)
        .unwrap_or_else(|_| vec![0; 64]);
    server.login_finish(&id, &ke3).expect(401, "login_failed");
    let second = server.login(&alice, PW, &device(2)).token;
    server.delete_device(&second, &device(1)).no_content();
    server.change_password(&alice, &second, PW2);

    let seen = activity(&server, &second, 0);
    let kinds: Vec<Kind> = seen.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            Kind::NewDevice,
            Kind::SignIn,
            Kind::SignInFailed,
            Kind::NewDevice,
            Kind::SignIn,
            Kind::DeviceRevoked,
            Kind::PasswordChanged,
        ]
    );
    assert_eq!(seen.retention_days, 180);
    let sign_in = &seen.events[1];
    assert_eq!(sign_in.device_id.as_deref(), Some(device(1).as_str()));
    assert_eq!(sign_in.device_name.as_deref(), Some("test device"));
    // The source, cut to its network.
    assert_eq!(sign_in.source.as_deref(), Some("127.0.0.0/24"));
    assert_eq!(seen.events[2].source.as_deref(), Some("127.0.0.0/24"));
    assert_eq!(
        seen.events[5].device_id.as_deref(),
        Some(device(1).as_str())
    );
    assert_eq!(
        seen.events[5].by_device.as_deref(),
        Some(device(2).as_str())
    );
    assert_eq!(
        seen.events[6].by_device.as_deref(),
        Some(device(2).as_str())
    );
    // Only newer ones after an id.
    let newer = activity(&server, &second, seen.events[4].id);
    assert_eq!(newer.events.len(), 2);

    // Another account sees only its own; no session sees nothing.
    let bob = server.register("bob", PW);
    let bob = server.login(&bob, PW, &device(3)).token;
    let bobs = activity(&server, &bob, 0);
    assert_eq!(
        bobs.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![Kind::NewDevice, Kind::SignIn]
    );
    server
        .call(Method::GET, "/v1/account/activity", b"not a session", None)
        .expect(401, "bad_session");
    server
        .get("/v1/account/activity?after=x", &bob)
        .expect(400, "bad_query");

    // In the store the details are sealed: no device name, source or device that acted
    // appears in the database file.
    let raw = std::fs::read(&server.db).unwrap();
    let wal = std::fs::read(server.db.with_extension("sqlite3-wal")).unwrap_or_default();
    for needle in ["127.0.0.0/24", "byDevice", "deviceName"] {
        let n = needle.as_bytes();
        assert!(
            !raw.windows(n.len()).any(|w| w == n) && !wal.windows(n.len()).any(|w| w == n),
            "{needle} is in the database in the clear"
        );
    }
}

#[test]
fn a_lock_and_a_recovery_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let alice = server.register("alice", PW);
    for _ in 0..crate::harness::LIMIT {
        server.abandon("alice");
    }
    // Locked now: one more start is refused with a fake answer and records nothing new.
    server.abandon("alice");
    let started = server.recovery_start(&alice, PW2);
    server
        .post("/v1/recovery/finish", &started.finish)
        .no_content();
    let token = server.login(&alice, PW2, &device(1)).token;
    let kinds: Vec<Kind> = activity(&server, &token, 0)
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            Kind::Locked,
            Kind::RecoveryUsed,
            Kind::NewDevice,
            Kind::SignIn
        ]
    );
}
