//! Alice's account across devices, against the real sync server on loopback (SQLite
//! store, software HSM), with every byte between them recorded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sealpost_core::clock::FixedClock;
use sealpost_core::sync::{self, Remote, SignedIn, SyncClient, SyncReport};
use sealpost_core::vault::{self, Unlocked};
use sealpost_core::{Clock, CoreError};
use sealpost_crypto::opaque::{self, Ids};
use sealpost_crypto::{Password, RecoveryCode};
use sealpost_proto as proto;
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";
const CLOCK: FixedClock = FixedClock(1_790_000_000);

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

/// A real server on a loopback port, and a recording proxy in front of it.
struct Server {
    url: String,
    wire: Arc<Mutex<Vec<u8>>>,
    _rt: tokio::runtime::Runtime,
    _server: EmbeddedServer,
    _dir: tempfile::TempDir,
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let server = EmbeddedServer::start(dir.path(), "127.0.0.1:0".parse().unwrap(), config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let wire = Arc::new(Mutex::new(Vec::new()));
    let addr = rt.block_on(proxy(server.addr(), Arc::clone(&wire)));
    Server {
        url: format!("http://{addr}"),
        wire,
        _rt: rt,
        _server: server,
        _dir: dir,
    }
}

/// Forwards TCP to `to`, appending every byte in either direction to `wire`.
async fn proxy(to: SocketAddr, wire: Arc<Mutex<Vec<u8>>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(to).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            for (mut from, mut to_, wire) in [
                (
                    Box::new(cr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                    Arc::clone(&wire),
                ),
                (Box::new(sr), Box::new(cw), Arc::clone(&wire)),
            ] {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        wire.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to_.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_.shutdown().await;
                });
            }
        }
    });
    addr
}

fn profile(root: &Path, name: &str) -> std::path::PathBuf {
    root.join(name)
}

// The sync layer is async; these run one step of it to the end, as a shell's call would.
static RT: std::sync::LazyLock<tokio::runtime::Runtime> =
    std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());

fn clock(c: FixedClock) -> Arc<dyn Clock> {
    Arc::new(c)
}

fn create(dir: &Path, url: &str, user: &str, p: &str) -> (Arc<Unlocked>, RecoveryCode) {
    let (u, code) = RT
        .block_on(sync::create_account(
            dir.to_path_buf(),
            url,
            user,
            pw(p),
            "laptop",
            clock(CLOCK),
        ))
        .unwrap();
    (Arc::new(u), code)
}

fn sign_in(
    dir: &Path,
    url: &str,
    user: &str,
    p: &str,
    device: &str,
) -> Result<SignedIn, CoreError> {
    RT.block_on(sync::sign_in(
        dir.to_path_buf(),
        url,
        user,
        pw(p),
        device,
        clock(CLOCK),
    ))
}

fn recover(
    dir: &Path,
    url: &str,
    user: &str,
    code: &RecoveryCode,
    p: &str,
) -> Result<SignedIn, CoreError> {
    RT.block_on(sync::recover(
        dir.to_path_buf(),
        url,
        user,
        code,
        pw(p),
        "x",
        clock(CLOCK),
    ))
}

fn remote(u: &Arc<Unlocked>, p: &str) -> Remote {
    Remote::new(Arc::clone(u), pw(p), clock(CLOCK)).unwrap()
}

fn sync_settings(u: &Arc<Unlocked>, p: &str) -> Result<SyncReport, CoreError> {
    RT.block_on(remote(u, p).sync_settings())
}

fn devices(u: &Arc<Unlocked>, p: &str) -> Result<Vec<proto::DeviceInfo>, CoreError> {
    RT.block_on(remote(u, p).devices())
}

/// Changes the password of the profile in `dir` from `old` to `new`, as the app does.
fn change_password(dir: &Path, old: &str, new: &str) -> Arc<Unlocked> {
    let u = Arc::new(vault::open(dir).unwrap().unlock(&pw(old)).unwrap());
    RT.block_on(remote(&u, old).change_password(pw(new)))
        .unwrap();
    u
}

fn unlock(dir: &Path, p: &str) -> Arc<Unlocked> {
    Arc::new(vault::open(dir).unwrap().unlock(&pw(p)).unwrap())
}

#[test]
fn two_devices_share_secrets_follow_a_password_change_and_revocation() {
    let server = start_server();
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (profile(tmp.path(), "a"), profile(tmp.path(), "b"));

    // Device A creates the account and stores a mail password; it syncs.
    let (a, code) = create(&a_dir, &server.url, "Alice", PW);
    a.put_secret("imap/alice@example.org/password", b"imap-secret-A1", &CLOCK)
        .unwrap();
    let report = sync_settings(&a, PW).unwrap();
    assert!(report.pushed);

    // Device B signs in with name and password and has the same secret.
    let b = sign_in(&b_dir, &server.url, "alice", PW, "phone").unwrap();
    assert_eq!(b.failed_attempts, 0);
    let b = b.unlocked;
    assert_eq!(b.identity(), a.identity());
    assert_eq!(
        b.secret("imap/alice@example.org/password")
            .unwrap()
            .unwrap()
            .expose(),
        b"imap-secret-A1"
    );
    // B's local vault opens with the password alone, offline.
    drop(b);
    let b = unlock(&b_dir, PW);

    // A change on B reaches A.
    b.put_secret(
        "smtp/alice@example.org/password",
        b"smtp-secret-B1",
        &CLOCK_LATER,
    )
    .unwrap();
    sync_settings(&b, PW).unwrap();
    let report = sync_settings(&a, PW).unwrap();
    assert_eq!(report.pulled, ["smtp/alice@example.org/password"]);
    assert_eq!(
        a.secret("smtp/alice@example.org/password")
            .unwrap()
            .unwrap()
            .expose(),
        b"smtp-secret-B1"
    );

    // Both devices are listed.
    let listed = devices(&a, PW).unwrap();
    assert_eq!(listed.len(), 2);
    let b_id = listed.iter().find(|d| !d.current).unwrap().id.clone();

    // A changes the password: A's vault takes the new one; B's session is gone and B's
    // old password no longer signs in; B must use the new one, which then works locally.
    drop(a);
    let a = change_password(&a_dir, PW, PW2);
    assert!(matches!(
        vault::open(&a_dir).unwrap().unlock(&pw(PW)),
        Err(CoreError::WrongPassword)
    ));
    let err = devices(&b, PW).unwrap_err();
    assert!(matches!(err, CoreError::LoginFailed), "{err}");
    drop(b);
    let b = sign_in(&b_dir, &server.url, "alice", PW2, "phone")
        .unwrap()
        .unlocked;
    assert_eq!(
        b.secret("imap/alice@example.org/password")
            .unwrap()
            .unwrap()
            .expose(),
        b"imap-secret-A1"
    );
    drop(b);
    let b = unlock(&b_dir, PW2);

    // A revokes B: B's token stops working at once.
    let b_token = session_token_of(&b);
    let client = SyncClient::new(&server.url).unwrap();
    RT.block_on(client.devices(&b_token)).unwrap();
    RT.block_on(remote(&a, PW2).revoke_device(&b_id)).unwrap();
    let err = RT.block_on(client.devices(&b_token)).unwrap_err();
    assert_eq!(err.api_code(), Some("bad_session"));
    assert_eq!(devices(&a, PW2).unwrap().len(), 1);

    // The recovery code from the start still works (checked in its own test); keep it used.
    drop(code);
}

const CLOCK_LATER: FixedClock = FixedClock(1_790_000_100);

fn session_token_of(u: &vault::Unlocked) -> Vec<u8> {
    use base64::Engine;
    let raw = u.secret("device/sync-session").unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(raw.expose()).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v["token"].as_str().unwrap())
        .unwrap()
}

#[test]
fn wrong_passwords_lock_the_account_and_the_recovery_code_unlocks_it() {
    let server = start_server();
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (profile(tmp.path(), "a"), profile(tmp.path(), "b"));
    let (_a, code) = create(&a_dir, &server.url, "bob", PW);

    // Wrong password on B: refused, nothing created locally.
    for _ in 0..3 {
        let err = sign_in(&b_dir, &server.url, "bob", PW2, "phone").unwrap_err();
        assert!(matches!(err, CoreError::LoginFailed), "{err}");
    }
    assert!(!b_dir.join(vault::VAULT_FILE).exists());
    // The next success reports the failures since the last success.
    let b = sign_in(&b_dir, &server.url, "bob", PW, "phone").unwrap();
    assert_eq!(b.failed_attempts, 3);
    drop(b);
    let c_dir = profile(tmp.path(), "c");
    assert_eq!(
        sign_in(&c_dir, &server.url, "bob", PW, "tablet")
            .unwrap()
            .failed_attempts,
        0
    );

    // Ten wrong ones lock the account: the eleventh is refused even with the right password.
    let d_dir = profile(tmp.path(), "d");
    for _ in 0..10 {
        assert!(sign_in(&d_dir, &server.url, "bob", PW2, "x").is_err());
    }
    let err = sign_in(&d_dir, &server.url, "bob", PW, "x").unwrap_err();
    assert!(matches!(err, CoreError::LoginFailed), "{err}");

    // A wrong recovery code is refused; the right one sets a new password and unlocks.
    let wrong = RecoveryCode::generate().unwrap();
    let err = recover(&d_dir, &server.url, "bob", &wrong, PW2).unwrap_err();
    assert!(matches!(err, CoreError::WrongRecoveryCode), "{err}");
    let d = recover(&d_dir, &server.url, "bob", &code, PW2).unwrap();
    assert_eq!(d.unlocked.identity(), _a.identity());
    drop(d);
    assert!(sign_in(&d_dir, &server.url, "bob", PW2, "x").is_ok());
    // The old password is gone everywhere on the server.
    assert!(matches!(
        sign_in(&profile(tmp.path(), "e"), &server.url, "bob", PW, "y"),
        Err(CoreError::LoginFailed)
    ));
}

#[test]
fn nothing_secret_crosses_the_wire() {
    let server = start_server();
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (profile(tmp.path(), "a"), profile(tmp.path(), "b"));
    let (a, _code) = create(&a_dir, &server.url, "carol", PW);
    a.put_secret("imap/carol/password", b"imap-secret-C1-xyzzy", &CLOCK)
        .unwrap();
    sync_settings(&a, PW).unwrap();
    let b = sign_in(&b_dir, &server.url, "carol", PW, "phone")
        .unwrap()
        .unlocked;
    drop(b);
    drop(a);
    let a = change_password(&a_dir, PW, PW2);

    // The export keys of both passwords, by logging in once more (they are the same at
    // every login with the same password).
    let client = SyncClient::new(&server.url).unwrap();
    let health = RT.block_on(client.health()).unwrap();
    let export = |p: &str| {
        let ids = Ids {
            user: b"carol",
            server: health.server_id.as_bytes(),
        };
        let (state, ke1) = opaque::client_login_start(&pw(p)).unwrap();
        let started = RT
            .block_on(client.login_start(&proto::LoginStart {
                user: "carol".into(),
                credential_request: proto::Bytes(ke1),
                device_id: "0".repeat(32),
                device_name: "probe".into(),
            }))
            .unwrap();
        opaque::client_login_finish(state, &pw(p), started.credential_response.as_slice(), ids)
            .unwrap()
            .export_key
    };
    let export_new = export(PW2);

    let wire = server.wire.lock().unwrap().clone();
    // A registration, a sync, a sign-in and a password change: several KiB.
    assert!(
        wire.len() > 5_000,
        "the proxy saw the traffic: {} bytes",
        wire.len()
    );
    let identity = a.identity().dangerous_expose_for_leak_tests();
    let kek = opaque::cloud_kek(&export_new);
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let mut needles: Vec<Vec<u8>> = vec![
        PW.as_bytes().to_vec(),
        PW2.as_bytes().to_vec(),
        b"imap-secret-C1-xyzzy".to_vec(),
        export_new.expose().to_vec(),
        kek.expose().to_vec(),
        identity.to_vec(),
    ];
    for n in needles.clone() {
        needles.push(b64(&n).into_bytes());
    }
    needles.extend(identity.windows(8).map(<[u8]>::to_vec));
    for n in &needles {
        assert!(
            !wire.windows(n.len()).any(|w| w == n.as_slice()),
            "a secret crossed the wire"
        );
    }
}

#[test]
fn a_new_recovery_code_replaces_the_old_one_on_the_server_and_in_the_profile() {
    let server = start_server();
    let tmp = tempfile::tempdir().unwrap();
    let a_dir = profile(tmp.path(), "a");
    let (a, old) = create(&a_dir, &server.url, "carol", PW);

    let new = RT
        .block_on(remote(&a, PW).new_recovery_code(&pw(PW)))
        .unwrap();
    assert!(new != old);
    let identity = a.identity().clone();
    drop(a);

    // This profile: the old code no longer opens it, the new one does.
    let locked = vault::open(&a_dir).unwrap();
    assert!(matches!(
        locked.unlock_with_recovery_code(&old),
        Err(CoreError::WrongRecoveryCode)
    ));
    assert_eq!(
        locked.unlock_with_recovery_code(&new).unwrap().identity(),
        &identity
    );

    // The server: the old code no longer recovers the account, the new one does.
    let b_dir = profile(tmp.path(), "b");
    let err = recover(&b_dir, &server.url, "carol", &old, PW2).unwrap_err();
    assert!(matches!(err, CoreError::WrongRecoveryCode), "{err}");
    let b = recover(&b_dir, &server.url, "carol", &new, PW2).unwrap();
    assert_eq!(b.unlocked.identity(), &identity);
    drop(b);

    // A device set up by signing in gets a local recovery wrap of its own code too, and
    // a failure on the way (the server unreachable) leaves the codes as they were.
    let c = Arc::new(
        sign_in(
            &profile(tmp.path(), "c"),
            &server.url,
            "carol",
            PW2,
            "tablet",
        )
        .unwrap()
        .unlocked,
    );
    let newest = RT
        .block_on(remote(&c, PW2).new_recovery_code(&pw(PW2)))
        .unwrap();
    drop(server);
    assert!(matches!(
        RT.block_on(remote(&c, PW2).new_recovery_code(&pw(PW2))),
        Err(CoreError::Sync(_))
    ));
    drop(c);
    let locked = vault::open(&profile(tmp.path(), "c")).unwrap();
    assert_eq!(
        locked
            .unlock_with_recovery_code(&newest)
            .unwrap()
            .identity(),
        &identity
    );
}
