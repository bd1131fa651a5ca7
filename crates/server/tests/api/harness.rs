//! The shared test server and its helpers: a [`Server`] serving the real router on a
//! loopback port over a SQLite file, with a hand-moved [`TestClock`] and an HSM the test
//! can switch off ([`SwitchHsm`]); HTTP calls answered as an [`Answer`]; small builders
//! of ids, contexts and requests; and a row-by-row [`snapshot`] of the SQLite file.
//! The client's half of every flow (registration, login, password change, recovery) is
//! in [`client`] and re-exported here.

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
use sealpost_crypto::opaque::Ids;
use sealpost_crypto::{Password, Purpose, SecretBytes, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::{ApiError, Bytes};
use sealpost_server::clock::Clock;
use sealpost_server::config::{self, Config};
use sealpost_server::hsm::{Hsm, HsmError, Pkcs11Config, Pkcs11Hsm, SoftwareHsm};
use sealpost_server::mailer::Mailer;
use sealpost_server::service::{Service, ServiceConfig};
use sealpost_server::store::SqliteStore;
use sealpost_testkit::softhsm::SoftHsmToken;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

mod client;

pub(crate) use client::{Registered, RegistrationStarted};

pub(crate) const PW: &str = "tundra mosaic gravel whimsy plank";
pub(crate) const PW2: &str = "orbit velvet cashew lantern quarry";
pub(crate) const WRONG: &str = "quartz meadow lantern fiddle spoke";
pub(crate) const SERVER_ID: &str = "sync.api-test.example";
/// The test clock's start, Unix seconds.
pub(crate) const T0: i64 = 1_800_000_000;
/// Failed logins before an account locks (the shipped default).
pub(crate) const LIMIT: i64 = 10;
/// Lifetime of a pending login (the shipped default).
pub(crate) const PENDING_TTL: i64 = 120;
/// Lifetime of a session: 12 h (the shipped default).
pub(crate) const SESSION_TTL: i64 = 12 * 3600;
/// KE3 of this suite is one HMAC-SHA512 tag.
pub(crate) const KE3_LEN: usize = 64;

// ---------------------------------------------------------------- the server under test

/// Time the test moves by hand.
pub(crate) struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub(crate) fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// An HSM that works like the one it wraps until the test switches it off; then every
/// call fails with [`HsmError::Unavailable`], and is counted.
pub(crate) struct SwitchHsm {
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

    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub(crate) fn refused(&self) -> usize {
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

    fn log_sign(&self, message: &[u8]) -> Result<[u8; 64], HsmError> {
        self.check()?;
        self.inner.log_sign(message)
    }

    fn log_public_key(&self) -> Result<[u8; 32], HsmError> {
        self.check()?;
        self.inner.log_public_key()
    }

    fn check(&self) -> Result<(), HsmError> {
        SwitchHsm::check(self)?;
        self.inner.check()
    }
}

/// The real router on a loopback port, over a SQLite file.
pub(crate) struct Server {
    pub(crate) url: String,
    /// The operations listener: `/metrics`, `/healthz`, `/readyz`.
    pub(crate) ops_url: String,
    pub(crate) http: Client,
    pub(crate) db: PathBuf,
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
    pub(crate) fn start(dir: &Path) -> Self {
        let hsm = SoftwareHsm::open_or_create(&dir.join("hsm.key")).unwrap();
        Self::try_start(&dir.join("server.sqlite3"), Arc::new(hsm)).unwrap()
    }

    /// A server on the SQLite file `db` with `hsm`; the service's start-up error if the
    /// HSM cannot open what the store holds.
    pub(crate) fn try_start(db: &Path, hsm: Arc<dyn Hsm>) -> Result<Self, String> {
        Self::try_start_with(db, hsm, None)
    }

    /// [`Server::start`] with a relay for the key directory's proof mails.
    pub(crate) fn start_with_mailer(dir: &Path, mailer: Arc<dyn Mailer>) -> Self {
        let hsm = SoftwareHsm::open_or_create(&dir.join("hsm.key")).unwrap();
        Self::try_start_with(&dir.join("server.sqlite3"), Arc::new(hsm), Some(mailer)).unwrap()
    }

    fn try_start_with(
        db: &Path,
        hsm: Arc<dyn Hsm>,
        mailer: Option<Arc<dyn Mailer>>,
    ) -> Result<Self, String> {
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
        let service = match mailer {
            Some(mailer) => service.with_mailer(mailer),
            None => service,
        };
        let service = Arc::new(service);
        let url = serve(&rt, sealpost_server::routes::router(Arc::clone(&service)));
        let ops_url = serve(&rt, sealpost_server::routes::ops_router(service));
        Ok(Self {
            url,
            ops_url,
            http: http_client(),
            db: db.to_owned(),
            clock: Some(clock),
            hsm: Some(switch),
            _rt: rt,
        })
    }

    /// A server exactly as `sealpost-server --config FILE` builds it.
    pub(crate) fn from_config(config: &Config, db: &Path) -> Result<Self, String> {
        let rt = runtime();
        let service = rt
            .block_on(config::service(config))
            .map_err(|e| format!("{e:#}"))?;
        let url = serve(&rt, sealpost_server::routes::router(Arc::clone(&service)));
        let ops_url = serve(&rt, sealpost_server::routes::ops_router(service));
        Ok(Self {
            url,
            ops_url,
            http: http_client(),
            db: db.to_owned(),
            clock: None,
            hsm: None,
            _rt: rt,
        })
    }

    pub(crate) fn clock(&self) -> &TestClock {
        self.clock.as_deref().unwrap()
    }

    pub(crate) fn hsm(&self) -> &SwitchHsm {
        self.hsm.as_deref().unwrap()
    }

    // ------------------------------------------------------------ HTTP

    /// A request with the API version header.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
    }

    pub(crate) fn post(&self, path: &str, body: &impl Serialize) -> Answer {
        send(self.request(Method::POST, path).json(body))
    }

    pub(crate) fn call(
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

    pub(crate) fn get(&self, path: &str, token: &[u8]) -> Answer {
        self.call(Method::GET, path, token, None)
    }

    pub(crate) fn put(&self, path: &str, token: &[u8], body: &impl Serialize) -> Answer {
        send(
            self.request(Method::PUT, path)
                .header("authorization", bearer(token))
                .json(body),
        )
    }

    pub(crate) fn post_auth(&self, path: &str, token: &[u8], body: &impl Serialize) -> Answer {
        send(
            self.request(Method::POST, path)
                .header("authorization", bearer(token))
                .json(body),
        )
    }

    pub(crate) fn register_start_raw(&self, user: &str, request: Vec<u8>) -> Answer {
        let body = proto::RegisterStart {
            user: user.into(),
            registration_request: Bytes(request),
        };
        self.post("/v1/register/start", &body)
    }

    pub(crate) fn password_start_raw(&self, token: &[u8], request: Vec<u8>) -> Answer {
        let body = proto::PasswordStart {
            registration_request: Bytes(request),
        };
        self.post_auth("/v1/password/start", token, &body)
    }

    pub(crate) fn recovery_start_raw(&self, user: &str, auth: Vec<u8>, request: Vec<u8>) -> Answer {
        let body = proto::RecoveryStart {
            user: user.into(),
            recovery_auth: Bytes(auth),
            registration_request: Bytes(request),
        };
        self.post("/v1/recovery/start", &body)
    }

    pub(crate) fn put_settings(
        &self,
        token: &[u8],
        expected_version: i64,
        blob: Vec<u8>,
    ) -> Answer {
        let body = proto::PutSettings {
            expected_version,
            blob: Bytes(blob),
        };
        self.put("/v1/settings", token, &body)
    }

    pub(crate) fn delete_device(&self, token: &[u8], id: &str) -> Answer {
        self.call(Method::DELETE, &format!("/v1/devices/{id}"), token, None)
    }

    // ------------------------------------------------------------ the store, read directly

    /// The account's failed-login counter, read from the SQLite file.
    pub(crate) fn failed_logins(&self, user: &str) -> i64 {
        db(&self.db)
            .query_row(
                "SELECT failed_logins FROM accounts WHERE user_name = ?1",
                [user],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        snapshot(&self.db)
    }
}

/// An answer: status, content type and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

pub(crate) fn send(rb: RequestBuilder) -> Answer {
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
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub(crate) fn json<R: DeserializeOwned>(&self) -> R {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    #[track_caller]
    pub(crate) fn no_content(&self) {
        assert_eq!(self.status, 204, "{}", self.text());
    }

    /// The body as an `ApiError`: JSON with exactly `code` and a non-empty `message`.
    #[track_caller]
    pub(crate) fn api_error(&self) -> ApiError {
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
    pub(crate) fn expect(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.api_error().code, code, "{}", self.text());
    }
}

/// JSON bodies of different types behind one reference, for tables of calls.
pub(crate) mod erased {
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

pub(crate) fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

pub(crate) fn ids(user: &str) -> Ids<'_> {
    Ids {
        user: user.as_bytes(),
        server: SERVER_ID.as_bytes(),
    }
}

pub(crate) fn cloud_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByCloud, user.as_bytes())
}

pub(crate) fn recovery_ctx(user: &str) -> WrapContext<'_> {
    WrapContext::new(Purpose::IdentityByRecovery, user.as_bytes())
}

pub(crate) fn settings_blob(user: &str, n: u32) -> Vec<u8> {
    format!("client-sealed settings of {user}, edition {n}").into_bytes()
}

/// Device id number `n`: 32 hex characters.
pub(crate) fn device(n: u8) -> String {
    format!("{n:032x}")
}

pub(crate) fn login_start(user: &str, ke1: Vec<u8>, device: &str) -> proto::LoginStart {
    proto::LoginStart {
        user: user.into(),
        credential_request: Bytes(ke1),
        device_id: device.into(),
        device_name: "test device".into(),
    }
}

pub(crate) fn bearer(token: &[u8]) -> String {
    format!("Bearer {}", URL_SAFE_NO_PAD.encode(token))
}

pub(crate) fn random<const N: usize>() -> Vec<u8> {
    SecretBytes::<N>::random().unwrap().expose().to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn db(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Every row of every table of the SQLite file, as text, sorted: two equal snapshots
/// mean nothing was written in between.
pub(crate) type Snapshot = BTreeMap<String, Vec<Vec<String>>>;

pub(crate) fn snapshot(path: &Path) -> Snapshot {
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

// ---------------------------------------------------------------- through PKCS#11

/// A provisioned PKCS#11 HSM on `token`.
pub(crate) fn pkcs11(token: &SoftHsmToken) -> Arc<dyn Hsm> {
    let config = Pkcs11Config::new(
        token.module_path(),
        token.label(),
        Zeroizing::new(token.user_pin().to_owned()),
    );
    Pkcs11Hsm::provision(&config).unwrap();
    Arc::new(Pkcs11Hsm::connect(&config).unwrap())
}
