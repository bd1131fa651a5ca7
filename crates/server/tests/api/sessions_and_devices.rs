//! Sessions and devices: bad, revoked and expired bearer tokens get `bad_session` and
//! change nothing, the store keeps only a token's hash, a session lives exactly its
//! lifetime, and device ids and names are checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use sealpost_crypto::opaque;
use sealpost_proto as proto;
use sealpost_proto::Bytes;
use sha2::{Digest, Sha256};

use crate::harness::{
    PW, PW2, SESSION_TTL, Server, T0, bearer, db, device, erased, login_start, pw, random, send,
};

#[test]
fn bad_bearer_tokens_get_bad_session_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let a = s.login(&alice, PW, &device(1));
    let b = s.login(&alice, PW, &device(2));
    s.delete_device(&a.token, &device(2)).no_content();

    let put = proto::PutSettings {
        expected_version: 1,
        blob: Bytes(b"x".to_vec()),
    };
    let pw_start = proto::PasswordStart {
        registration_request: Bytes(opaque::client_registration_start(&pw(PW2)).unwrap().1),
    };
    let pw_finish = proto::PasswordFinish {
        registration_id: "0".repeat(32),
        registration_upload: Bytes(vec![1; 192]),
        cloud_wrap: Bytes(vec![1; 8]),
    };
    let endpoints: Vec<(Method, String, Option<&dyn erased::Body>)> = vec![
        (Method::GET, "/v1/settings".into(), None),
        (Method::PUT, "/v1/settings".into(), Some(&put)),
        (Method::GET, "/v1/devices".into(), None),
        (Method::DELETE, format!("/v1/devices/{}", device(1)), None),
        (Method::POST, "/v1/account/unlock".into(), None),
        (Method::POST, "/v1/password/start".into(), Some(&pw_start)),
        (Method::POST, "/v1/password/finish".into(), Some(&pw_finish)),
    ];
    let headers: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Bearer !!!not-base64!!!".into()),
        Some(format!("Basic {}", URL_SAFE_NO_PAD.encode(&a.token))),
        Some(format!("bearer {}", URL_SAFE_NO_PAD.encode(&a.token))),
        Some(format!("Bearer {}=", URL_SAFE_NO_PAD.encode(&a.token))),
        Some(bearer(&a.token[..31])),
        Some(bearer(&[a.token.as_slice(), &[0]].concat())),
        Some(bearer(&random::<32>())),
        Some(bearer(&b.token)), // revoked with its device
    ];
    let mut a_flipped = a.token.clone();
    a_flipped[0] ^= 1;
    let mut headers = headers;
    headers.push(Some(bearer(&a_flipped)));

    let before = s.snapshot();
    let counter_before = s.failed_logins("alice");
    for (method, path, body) in &endpoints {
        for header in &headers {
            let mut rb = s.request(method.clone(), path);
            if let Some(h) = header {
                rb = rb.header("authorization", h.as_str());
            }
            if let Some(b) = body {
                rb = rb.json(&b.to_value());
            }
            send(rb).expect(401, "bad_session");
        }
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.failed_logins("alice"), counter_before);

    // The store keeps only the token's SHA-256, never the token.
    let hashes: Vec<Vec<u8>> = db(&s.db)
        .prepare("SELECT token_hash FROM sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hashes, [Sha256::digest(&a.token).to_vec()]);
    let file = std::fs::read(&s.db).unwrap();
    let wal = std::fs::read(s.db.with_extension("sqlite3-wal")).unwrap_or_default();
    for bytes in [&file, &wal] {
        assert!(!bytes.windows(32).any(|w| w == a.token.as_slice()));
    }

    // The good token still works, and sees only its own device.
    let devices: proto::Devices = s.get("/v1/devices", &a.token).json();
    assert_eq!(devices.devices.len(), 1);
    assert!(devices.devices[0].current);
    assert_eq!(devices.devices[0].id, device(1));

    // A session lives 12 h, to the second.
    assert_eq!(a.finished.expires_at, T0 + SESSION_TTL);
    s.clock().advance(SESSION_TTL);
    s.get("/v1/devices", &a.token).json::<proto::Devices>();
    s.clock().advance(1);
    let before = s.snapshot();
    for (method, path, body) in &endpoints {
        s.call(method.clone(), path, &a.token, *body)
            .expect(401, "bad_session");
    }
    assert_eq!(s.snapshot(), before);
}

#[test]
fn device_ids_must_be_32_hex_characters() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let alice = s.register("alice", PW);
    let a = s.login(&alice, PW, &device(1));
    let before = s.snapshot();

    let bad_ids = [
        String::new(),
        "abc".into(),
        "0".repeat(31),
        "0".repeat(33),
        "g".repeat(32),
        format!("0x{}", "0".repeat(30)),
        format!("{}é", "0".repeat(30)),
        format!("{} ", "0".repeat(31)),
    ];
    for id in &bad_ids {
        let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
        s.post("/v1/login/start", &login_start("alice", ke1, id))
            .expect(400, "bad_device_id");
    }
    for name in [String::new(), "n".repeat(65), "line\nbreak".into()] {
        let (_, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
        let mut req = login_start("alice", ke1, &device(3));
        req.device_name = name;
        s.post("/v1/login/start", &req)
            .expect(400, "bad_device_name");
    }
    for path in [
        "abc".to_owned(),
        "0".repeat(31),
        "0".repeat(33),
        "g".repeat(32),
        "%FF%FE".into(),
        format!("{}%00", "0".repeat(31)),
    ] {
        s.delete_device(&a.token, &path)
            .expect(400, "bad_device_id");
    }
    // A well-formed id that names no device of this account.
    s.delete_device(&a.token, &device(7))
        .expect(404, "no_device");
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.failed_logins("alice"), 0);
    let devices: proto::Devices = s.get("/v1/devices", &a.token).json();
    assert_eq!(
        devices
            .devices
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        [device(1)]
    );
}

/// A registration that names its device gets that device's session at once (no second
/// OPAQUE run on the client); the session works like a login's, the device is listed,
/// and a bad device name is refused before anything is stored.
#[test]
fn a_registration_naming_its_device_opens_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    let bad = s.register_start("carol", PW).finish("carol", PW);
    let mut req = bad.request.clone();
    req.device = Some(proto::NewDevice {
        id: "not hex".into(),
        name: "laptop".into(),
    });
    s.post("/v1/register/finish", &req)
        .expect(400, "bad_device_id");
    // Refused before the registration was taken: it can still finish.
    req.device = Some(proto::NewDevice {
        id: device(7),
        name: "laptop".into(),
    });
    let finished: proto::RegisterFinished = s.post("/v1/register/finish", &req).json();
    let session = finished.session.expect("a session for the named device");
    assert!(session.expires_at > T0);
    assert_eq!(session.token.0.len(), 32);

    let devices: proto::Devices = s.get("/v1/devices", &session.token.0).json();
    assert_eq!(devices.devices.len(), 1);
    assert_eq!(devices.devices[0].id, device(7));
    assert_eq!(devices.devices[0].name, "laptop");
    assert!(devices.devices[0].current);
    // The store keeps the token's hash only.
    let hashes: Vec<Vec<u8>> = db(&s.db)
        .prepare("SELECT token_hash FROM sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hashes, [Sha256::digest(&session.token.0).to_vec()]);
}
