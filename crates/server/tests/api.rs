//! The sync server's HTTP API against real parts: the real router and service on a
//! loopback port, a SQLite store in a temporary directory, a software key file or a
//! SoftHSMv2 token as the HSM, and the client half of OPAQUE from `sealpost-crypto`, so
//! every message can be crafted, cut short or replayed.
//!
//! What is checked, top-down:
//!
//! - bad input (version header, bodies, OPAQUE messages, ids, bearer tokens) gets a 4xx
//!   `ApiError` with a clear code and changes nothing: every table of the SQLite file is
//!   compared row by row before and after ([`snapshot`]), and the refused flows still
//!   finish afterwards with the same ids;
//! - unknown and locked accounts answer like real ones;
//! - the failed-login counter: charged at login start, reset only by a successful finish,
//!   an unlock from a signed-in device, or the recovery code;
//! - with the HSM unavailable every endpoint that needs it answers 503 and writes nothing;
//! - a stolen database (and the server's configuration) without the HSM gives nothing to
//!   guess against; with the HSM's keys (or a copied software key file) it does, at the
//!   cost of one Argon2id per guess: the limit of the design, shown by a test too;
//! - the whole account lifecycle through a PKCS#11 token.
//!
//! Tests that use SoftHSMv2 run their body in a child process
//! (`sealpost_testkit::softhsm::in_child_process`); the name passed to it is the test's.
//! Each full login or registration runs the client's Argon2id (256 MiB, t=3) once, so the
//! tests keep them few.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sealpost_crypto::opaque::{self, ClientLoginState, Ids, OpaqueError, ServerKeys};
use sealpost_crypto::{IdentityKey, Password, Purpose, RecoveryCode, SecretBytes, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::{ApiError, Bytes};
use sealpost_server::clock::Clock;
use sealpost_server::config::{self, Config};
use sealpost_server::hsm::{Hsm, HsmError, Pkcs11Config, Pkcs11Hsm, SoftwareHsm};
use sealpost_server::service::{Service, ServiceConfig};
use sealpost_server::store::SqliteStore;
use sealpost_testkit::softhsm::{SoftHsmToken, in_child_process};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";
const WRONG: &str = "quartz meadow lantern fiddle spoke";
const SERVER_ID: &str = "sync.api-test.example";
/// The test clock's start, Unix seconds.
const T0: i64 = 1_800_000_000;
/// Failed logins before an account locks (the shipped default).
const LIMIT: i64 = 10;
/// Lifetime of a pending login (the shipped default).
const PENDING_TTL: i64 = 120;
/// Lifetime of a session: 12 h (the shipped default).
const SESSION_TTL: i64 = 12 * 3600;
/// KE3 of this suite is one HMAC-SHA512 tag.
const KE3_LEN: usize = 64;

// ---------------------------------------------------------------- the server under test

/// Time the test moves by hand.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// An HSM that works like the one it wraps until the test switches it off; then every
/// call fails with [`HsmError::Unavailable`], and is counted.
struct SwitchHsm {
    inner: Arc<dyn Hsm>,
    down: AtomicBool,
    refused: AtomicUsize,
}

impl SwitchHsm {
    fn check(&self) -> Result<(), HsmError> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(HsmError::Unavailable("switched off by the test".into()));
        }
        Ok(())
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Hsm for SwitchHsm {
    fn describe(&self) -> String {
        format!("switchable {}", self.inner.describe())
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        self.check()?;
        self.inner.seal(aad, plaintext)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.check()?;
        self.inner.open(aad, sealed)
    }

    fn oprf_hmac(&self, message: &[u8]) -> Result<Zeroizing<[u8; 64]>, HsmError> {
        self.check()?;
        self.inner.oprf_hmac(message)
    }
}

/// The real router on a loopback port, over a SQLite file.
struct Server {
    url: String,
    http: Client,
    db: PathBuf,
    /// Present when the test built the service itself (not through `config::app`).
    clock: Option<Arc<TestClock>>,
    hsm: Option<Arc<SwitchHsm>>,
    _rt: tokio::runtime::Runtime,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Serves `router` on 127.0.0.1 and returns the base URL.
fn serve(rt: &tokio::runtime::Runtime, router: axum::Router) -> String {
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        addr
    });
    format!("http://{addr}")
}

fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Server {
    /// A server on a fresh SQLite file in `dir` with a software key file beside it.
    fn start(dir: &Path) -> Self {
        let hsm = SoftwareHsm::open_or_create(&dir.join("hsm.key")).unwrap();
        Self::try_start(&dir.join("server.sqlite3"), Arc::new(hsm)).unwrap()
    }

    /// A server on the SQLite file `db` with `hsm`; the service's start-up error if the
    /// HSM cannot open what the store holds.
    fn try_start(db: &Path, hsm: Arc<dyn Hsm>) -> Result<Self, String> {
        let rt = runtime();
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let switch = Arc::new(SwitchHsm {
            inner: hsm,
            down: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
        });
        let store = Arc::new(SqliteStore::open(db).unwrap());
        let config = ServiceConfig {
            server_id: SERVER_ID.into(),
            max_failed_logins: LIMIT,
            pending_ttl: PENDING_TTL,
            session_ttl: SESSION_TTL,
            rate_per_second: 0.0,
            ..ServiceConfig::default()
        };
        let service = rt
            .block_on(Service::new(
                config,
                store,
                Arc::clone(&switch) as Arc<dyn Hsm>,
                Arc::clone(&clock) as Arc<dyn Clock>,
            ))
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        let url = serve(&rt, sealpost_server::routes::router(Arc::new(service)));
        Ok(Self {
            url,
            http: http_client(),
            db: db.to_owned(),
            clock: Some(clock),
            hsm: Some(switch),
            _rt: rt,
        })
    }

    /// A server exactly as `sealpost-server --config FILE` builds it.
    fn from_config(config: &Config, db: &Path) -> Result<Self, String> {
        let rt = runtime();
        let router = rt
            .block_on(config::app(config))
            .map_err(|e| format!("{e:#}"))?;
        let url = serve(&rt, router);
        Ok(Self {
            url,
            http: http_client(),
            db: db.to_owned(),
            clock: None,
            hsm: None,
            _rt: rt,
        })
    }

    fn clock(&self) -> &TestClock {
        self.clock.as_deref().unwrap()
    }

    fn hsm(&self) -> &SwitchHsm {
        self.hsm.as_deref().unwrap()
    }

    // ------------------------------------------------------------ HTTP

    /// A request with the API version header.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
    }

    fn post(&self, path: &str, body: &impl Serialize) -> Answer {
        send(self.request(Method::POST, path).json(body))
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        token: &[u8],
        body: Option<&dyn erased::Body>,
    ) -> Answer {
        let mut rb = self
            .request(method, path)
            .header("authorization", bearer(token));
        if let Some(b) = body {
            rb = rb.json(&b.to_value());
        }
        send(rb)
    }

    fn get(&self, path: &str, token: &[u8]) -> Answer {
        self.call(Method::GET, path, token, None)
    }

    fn put(&self, path: &str, token: &[u8], body: &impl Serialize) -> Answer {
        send(
            self.request(Method::PUT, path)
                .header("authorization", bearer(token))
                .json(body),
        )
    }

    fn post_auth(&self, path: &str, token: &[u8], body: &impl Serialize) -> Answer {
        send(
            self.request(Method::POST, path)
                .header("authorization", bearer(token))
                .json(body),
        )
    }

    fn register_start_raw(&self, user: &str, request: Vec<u8>) -> Answer {
        let body = proto::RegisterStart {
            user: user.into(),
            registration_request: Bytes(request),
        };
        self.post("/v1/register/start", &body)
    }

    fn password_start_raw(&self, token: &[u8], request: Vec<u8>) -> Answer {
        let body = proto::PasswordStart {
            registration_request: Bytes(request),
        };
        self.post_auth("/v1/password/start", token, &body)
    }

    fn recovery_start_raw(&self, user: &str, auth: Vec<u8>, request: Vec<u8>) -> Answer {
        let body = proto::RecoveryStart {
            user: user.into(),
            recovery_auth: Bytes(auth),
            registration_request: Bytes(request),
        };
        self.post("/v1/recovery/start", &body)
    }

    fn put_settings(&self, token: &[u8], expected_version: i64, blob: Vec<u8>) -> Answer {
        let body = proto::PutSettings {
            expected_version,
            blob: Bytes(blob),
        };
        self.put("/v1/settings", token, &body)
    }

    fn delete_device(&self, token: &[u8], id: &str) -> Answer {
        self.call(Method::DELETE, &format!("/v1/devices/{id}"), token, None)
    }

    // ------------------------------------------------------------ the client's side

    /// Registers `user` with real wraps of a fresh identity key.
    fn register(&self, user: &str, password: &str) -> Registered {
        let started = self.register_start(user, password);
        let finish = started.finish(user, password);
        self.post("/v1/register/finish", &finish.request)
            .no_content();
        Registered {
            user: user.to_owned(),
            identity: finish.identity,
            code: finish.code,
            server_public_key: finish.server_public_key,
        }
    }

    fn register_start(&self, user: &str, password: &str) -> RegistrationStarted {
        let (state, request) = opaque::client_registration_start(&pw(password)).unwrap();
        let started: proto::RegisterStarted = self.register_start_raw(user, request).json();
        RegistrationStarted {
            state: Some(state),
            id: started.registration_id,
            response: started.registration_response.0,
        }
    }

    /// Login, first message, with a KE1 from `password`.
    fn login_start(&self, user: &str, password: &str, device: &str) -> LoginStarted {
        let (state, ke1) = opaque::client_login_start(&pw(password)).unwrap();
        let started: proto::LoginStarted = self
            .post("/v1/login/start", &login_start(user, ke1, device))
            .json();
        LoginStarted {
            state,
            id: started.login_id,
            ke2: started.credential_response.0,
        }
    }

    /// A login start whose finish never comes.
    fn abandon(&self, user: &str) {
        self.login_start(user, WRONG, &device(99));
    }

    fn login_finish(&self, login_id: &str, ke3: &[u8]) -> Answer {
        self.post(
            "/v1/login/finish",
            &proto::LoginFinish {
                login_id: login_id.into(),
                credential_finalization: Bytes(ke3.to_vec()),
            },
        )
    }

    /// A whole login; checks that the cloud wrap it releases opens to `account`'s
    /// identity key under the export key.
    fn login(&self, account: &Registered, password: &str, device: &str) -> Session {
        let started = self.login_start(&account.user, password, device);
        let id = started.id.clone();
        let fin = started.client_finish(&account.user, password).unwrap();
        assert_eq!(fin.server_public_key, account.server_public_key);
        let finished: proto::LoginFinished = self.login_finish(&id, &fin.finalization).json();
        let identity = IdentityKey::unwrap_with_key(
            &opaque::cloud_kek(&fin.export_key),
            &cloud_ctx(&account.user),
            finished.cloud_wrap.as_slice(),
        )
        .unwrap();
        assert_eq!(identity, account.identity);
        Session {
            token: opaque::session_token(&fin.session_key).expose().to_vec(),
            finished,
        }
    }

    /// A whole password change from a signed-in device.
    fn change_password(&self, account: &Registered, token: &[u8], new: &str) {
        let (state, request) = opaque::client_registration_start(&pw(new)).unwrap();
        let started: proto::RegisterStarted = self.password_start_raw(token, request).json();
        let fin = opaque::client_registration_finish(
            state,
            &pw(new),
            started.registration_response.as_slice(),
            ids(&account.user),
        )
        .unwrap();
        assert_eq!(fin.server_public_key, account.server_public_key);
        let cloud_wrap = account
            .identity
            .wrap_with_key(
                &opaque::cloud_kek(&fin.export_key),
                &cloud_ctx(&account.user),
            )
            .unwrap();
        self.post_auth(
            "/v1/password/finish",
            token,
            &proto::PasswordFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
            },
        )
        .no_content();
    }

    /// Recovery, first message, with the recovery code; checks the recovery wrap.
    fn recovery_start(&self, account: &Registered, new: &str) -> RecoveryStarted {
        let (state, request) = opaque::client_registration_start(&pw(new)).unwrap();
        let started: proto::RecoveryStarted = self
            .recovery_start_raw(
                &account.user,
                account.code.auth_key().expose().to_vec(),
                request,
            )
            .json();
        let identity = IdentityKey::unwrap_with_recovery_code(
            &account.code,
            &recovery_ctx(&account.user),
            started.recovery_wrap.as_slice(),
        )
        .unwrap();
        assert_eq!(identity, account.identity);
        let fin = opaque::client_registration_finish(
            state,
            &pw(new),
            started.registration_response.as_slice(),
            ids(&account.user),
        )
        .unwrap();
        let cloud_wrap = identity
            .wrap_with_key(
                &opaque::cloud_kek(&fin.export_key),
                &cloud_ctx(&account.user),
            )
            .unwrap();
        RecoveryStarted {
            finish: proto::RecoveryFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
            },
        }
    }

    // ------------------------------------------------------------ the store, read directly

    /// The account's failed-login counter, read from the SQLite file.
    fn failed_logins(&self, user: &str) -> i64 {
        db(&self.db)
            .query_row(
                "SELECT failed_logins FROM accounts WHERE user_name = ?1",
                [user],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(&self.db)
    }
}

/// Client-side results the tests pass around.
struct Registered {
    user: String,
    identity: IdentityKey,
    code: RecoveryCode,
    server_public_key: [u8; 32],
}

struct RegistrationStarted {
    state: Option<opaque::ClientRegistrationState>,
    id: String,
    response: Vec<u8>,
}

struct RegistrationFinish {
    request: proto::RegisterFinish,
    identity: IdentityKey,
    code: RecoveryCode,
    server_public_key: [u8; 32],
}

impl RegistrationStarted {
    /// Runs the client's half (Argon2id) and builds the finish request with real wraps.
    fn finish(mut self, user: &str, password: &str) -> RegistrationFinish {
        let fin = opaque::client_registration_finish(
            self.state.take().unwrap(),
            &pw(password),
            &self.response,
            ids(user),
        )
        .unwrap();
        let identity = IdentityKey::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let cloud_wrap = identity
            .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx(user))
            .unwrap();
        let recovery_wrap = identity
            .wrap_with_recovery_code(&code, &recovery_ctx(user))
            .unwrap();
        RegistrationFinish {
            request: proto::RegisterFinish {
                registration_id: self.id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
                recovery_wrap: Bytes(recovery_wrap),
                recovery_verifier: Bytes(code.auth_verifier().to_vec()),
                settings: Bytes(settings_blob(user, 1)),
            },
            identity,
            code,
            server_public_key: fin.server_public_key,
        }
    }
}

struct LoginStarted {
    state: ClientLoginState,
    id: String,
    ke2: Vec<u8>,
}

impl LoginStarted {
    /// The client's half (Argon2id): KE3, or why the KE2 did not verify.
    fn client_finish(self, user: &str, password: &str) -> Result<opaque::LoginFinish, OpaqueError> {
        opaque::client_login_finish(self.state, &pw(password), &self.ke2, ids(user))
    }
}

struct Session {
    token: Vec<u8>,
    finished: proto::LoginFinished,
}

struct RecoveryStarted {
    finish: proto::RecoveryFinish,
}

/// An answer: status, content type and body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn send(rb: RequestBuilder) -> Answer {
    let resp = rb.send().unwrap();
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: resp.bytes().unwrap().to_vec(),
    }
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn json<R: DeserializeOwned>(&self) -> R {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    #[track_caller]
    fn no_content(&self) {
        assert_eq!(self.status, 204, "{}", self.text());
    }

    /// The body as an `ApiError`: JSON with exactly `code` and a non-empty `message`.
    #[track_caller]
    fn api_error(&self) -> ApiError {
        assert!(self.status >= 400, "{} {}", self.status, self.text());
        assert!(
            self.content_type.starts_with("application/json"),
            "{} answered with {:?}: {}",
            self.status,
            self.content_type,
            self.text()
        );
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["code", "message"]), "{v}");
        let e: ApiError = serde_json::from_value(v).unwrap();
        assert!(!e.message.is_empty());
        e
    }

    #[track_caller]
    fn expect(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.api_error().code, code, "{}", self.text());
    }
}

/// JSON bodies of different types behind one reference, for tables of calls.
mod erased {
    pub trait Body {
        fn to_value(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Body for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

// ---------------------------------------------------------------- small helpers

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

fn ids(user: &str) -> Ids<'_> {
    Ids {
        user: user.as_bytes(),
        server: SERVER_ID.as_bytes(),
    }
}

fn cloud_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByCloud, user.as_bytes())
}

fn recovery_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByRecovery, user.as_bytes())
}

fn settings_blob(user: &str, n: u32) -> Vec<u8> {
    format!("client-sealed settings of {user}, edition {n}").into_bytes()
}

/// Device id number `n`: 32 hex characters.
fn device(n: u8) -> String {
    format!("{n:032x}")
}

fn login_start(user: &str, ke1: Vec<u8>, device: &str) -> proto::LoginStart {
    proto::LoginStart {
        user: user.into(),
        credential_request: Bytes(ke1),
        device_id: device.into(),
        device_name: "test device".into(),
    }
}

fn bearer(token: &[u8]) -> String {
    format!("Bearer {}", URL_SAFE_NO_PAD.encode(token))
}

fn random<const N: usize>() -> Vec<u8> {
    SecretBytes::<N>::random().unwrap().expose().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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

fn db(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Every row of every table of the SQLite file, as text, sorted: two equal snapshots
/// mean nothing was written in between.
type Snapshot = BTreeMap<String, Vec<Vec<String>>>;

fn snapshot(path: &Path) -> Snapshot {
    let conn = db(path);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    let mut snap = Snapshot::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<Vec<String>> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => "NULL".to_owned(),
                            ValueRef::Integer(v) => v.to_string(),
                            ValueRef::Real(v) => v.to_string(),
                            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                            ValueRef::Blob(b) => format!("x'{}'", hex(b)),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        snap.insert(table, rows);
    }
    snap
}

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

// ---------------------------------------------------------------- bad input

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
    assert_eq!(s.failed_logins("alice"), 3);
    s.login_finish(&started.id, &random::<KE3_LEN>())
        .expect(401, "login_failed");
    assert_eq!(s.failed_logins("alice"), 3);
    let fin = started.client_finish("alice", PW).unwrap();
    s.login_finish(&login_id, &fin.finalization)
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

// ---------------------------------------------------------------- no account enumeration

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

// ---------------------------------------------------------------- the failed-login counter

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

// ---------------------------------------------------------------- the HSM fails

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

// ---------------------------------------------------------------- a stolen database

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
        "a_stolen_database_is_useless_with_another_pkcs11_token",
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

// ---------------------------------------------------------------- through PKCS#11

fn pkcs11(token: &SoftHsmToken) -> Arc<dyn Hsm> {
    let config = Pkcs11Config::new(
        token.module_path(),
        token.label(),
        Zeroizing::new(token.user_pin().to_owned()),
    );
    Pkcs11Hsm::provision(&config).unwrap();
    Arc::new(Pkcs11Hsm::connect(&config).unwrap())
}

#[test]
fn the_account_lifecycle_works_through_a_pkcs11_hsm() {
    in_child_process(
        "the_account_lifecycle_works_through_a_pkcs11_hsm",
        |token| {
            let dir = tempfile::tempdir().unwrap();
            let s = Server::try_start(&dir.path().join("server.sqlite3"), pkcs11(token)).unwrap();
            assert!(
                s.hsm().describe().contains(token.label()),
                "{}",
                s.hsm().describe()
            );

            let alice = s.register("alice", PW);
            let a = s.login(&alice, PW, &device(1));
            assert_eq!(a.finished.settings.version, 1);
            assert_eq!(a.finished.settings.blob.0, settings_blob("alice", 1));

            // Settings: compare-and-swap.
            let v: proto::SettingsVersion = s
                .put_settings(&a.token, 1, settings_blob("alice", 2))
                .json();
            assert_eq!(v.version, 2);
            let stale = s.put_settings(&a.token, 1, settings_blob("alice", 99));
            stale.expect(409, "version_conflict");
            assert!(stale.api_error().message.contains("version 2"));
            let settings: proto::Settings = s.get("/v1/settings", &a.token).json();
            assert_eq!(settings.version, 2);
            assert_eq!(settings.blob.0, settings_blob("alice", 2));

            // A second device; then a password change on the first signs it out.
            let b = s.login(&alice, PW, &device(2));
            s.change_password(&alice, &a.token, PW2);
            s.get("/v1/settings", &b.token).expect(401, "bad_session");
            s.get("/v1/settings", &a.token).json::<proto::Settings>();
            let started = s.login_start("alice", PW, &device(2));
            assert_eq!(
                started.client_finish("alice", PW).err(),
                Some(OpaqueError::InvalidLogin)
            );
            let b = s.login(&alice, PW2, &device(2));
            assert_eq!(b.finished.failed_attempts, 1);
            assert_eq!(b.finished.settings.version, 2);

            // Recovery: the recovery wrap opens with the code, a new password is set, every
            // session ends.
            let recovery = s.recovery_start(&alice, PW);
            s.post("/v1/recovery/finish", &recovery.finish).no_content();
            for t in [&a.token, &b.token] {
                s.get("/v1/devices", t).expect(401, "bad_session");
            }
            let c = s.login(&alice, PW, &device(3));
            assert_eq!(c.finished.failed_attempts, 0);
            let devices: proto::Devices = s.get("/v1/devices", &c.token).json();
            assert_eq!(devices.devices.len(), 3);
        },
    );
}
