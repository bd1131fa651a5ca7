//! Two real `sealpost-server` processes on one PostgreSQL database, as behind a load
//! balancer: they share one failed-login counter, pending logins and sessions.
//!
//! Each process is the binary this package builds, started with `--config` (PostgreSQL
//! from `sealpost_testkit::postgres::PostgresCluster`, its URL in
//! `SEALPOST_POSTGRES_URL`; one software key file for both), `--listen 127.0.0.1:0` and
//! `--rate-per-second 0` (`common::Process`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::Process;
use reqwest::Method;
use reqwest::blocking::Client;
use sealpost_crypto::opaque::{self, Ids, OpaqueError};
use sealpost_crypto::{IdentityKey, Password, Purpose, RecoveryCode, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::{ApiError, Bytes};
use sealpost_server::store::{PostgresStore, Store};
use sealpost_testkit::postgres::PostgresCluster;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";
const SERVER_ID: &str = "sync.processes-test.example";
const LIMIT: i64 = 10;

// ---------------------------------------------------------------- the processes

fn start(config: &Path, postgres_url: &str) -> Process {
    Process::start(
        &[OsStr::new("--config"), config.as_os_str()],
        &[("SEALPOST_POSTGRES_URL", postgres_url)],
    )
}

fn api(process: &Process) -> Api {
    Api {
        base: process.base.clone(),
        http: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

/// A PostgreSQL cluster with one database, a configuration file and key file for the
/// servers, and the URL.
struct Deployment {
    url: String,
    config: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
    // Dropped after the processes the test holds (they are declared later).
    _dir: tempfile::TempDir,
    _cluster: PostgresCluster,
}

impl Deployment {
    fn new(name: &str) -> Self {
        let cluster = PostgresCluster::start().unwrap();
        let url = cluster.create_database(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                "server_id = \"{SERVER_ID}\"\n\
                 [store]\nkind = \"postgres\"\nurl_env = \"SEALPOST_POSTGRES_URL\"\n\
                 [hsm]\nkind = \"software\"\nkey_file = \"{}\"\n\
                 [limits]\nmax_failed_logins = {LIMIT}\n",
                dir.path().join("hsm.key").display()
            ),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            url,
            config,
            rt,
            _dir: dir,
            _cluster: cluster,
        }
    }

    /// Two processes; the second starts once the first has made the key file and the
    /// server key pair, so both use the same ones.
    fn two_processes(&self) -> (Process, Process) {
        let a = start(&self.config, &self.url);
        assert!(self.config.with_file_name("hsm.key").exists());
        let b = start(&self.config, &self.url);
        assert_ne!(a.base, b.base);
        (a, b)
    }

    /// The account's failed-login counter, through a third connection to the database.
    fn failed_logins(&self, user: &str) -> i64 {
        self.rt.block_on(async {
            let store = PostgresStore::connect_with_pool_size(&self.url, 1)
                .await
                .unwrap();
            store.account(user).await.unwrap().unwrap().failed_logins
        })
    }
}

// ---------------------------------------------------------------- a client

struct Api {
    base: String,
    http: Client,
}

type Refused = (u16, ApiError);

impl Api {
    fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&[u8]>,
        body: Option<Value>,
    ) -> Result<Vec<u8>, Refused> {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string());
        if let Some(t) = token {
            rb = rb.header(
                "authorization",
                format!("Bearer {}", URL_SAFE_NO_PAD.encode(t)),
            );
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().unwrap().to_vec();
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            let e = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{status} without an ApiError body"));
            Err((status, e))
        }
    }

    fn post<R: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&[u8]>,
        body: &impl Serialize,
    ) -> Result<R, Refused> {
        let b = self.send(
            Method::POST,
            path,
            token,
            Some(serde_json::to_value(body).unwrap()),
        )?;
        Ok(serde_json::from_slice(&b).unwrap())
    }

    fn post_empty(
        &self,
        path: &str,
        token: Option<&[u8]>,
        body: &impl Serialize,
    ) -> Result<(), Refused> {
        self.send(
            Method::POST,
            path,
            token,
            Some(serde_json::to_value(body).unwrap()),
        )
        .map(|_| ())
    }

    fn get<R: DeserializeOwned>(&self, path: &str, token: &[u8]) -> Result<R, Refused> {
        let b = self.send(Method::GET, path, Some(token), None)?;
        Ok(serde_json::from_slice(&b).unwrap())
    }

    fn put_settings(
        &self,
        token: &[u8],
        expected_version: i64,
        blob: &[u8],
    ) -> Result<proto::SettingsVersion, Refused> {
        let body = proto::PutSettings {
            expected_version,
            blob: Bytes(blob.to_vec()),
        };
        let b = self.send(
            Method::PUT,
            "/v1/settings",
            Some(token),
            Some(serde_json::to_value(body).unwrap()),
        )?;
        Ok(serde_json::from_slice(&b).unwrap())
    }
}

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

fn device(n: u8) -> String {
    format!("{n:032x}")
}

struct Registered {
    identity: IdentityKey,
    code: RecoveryCode,
}

fn register(api: &Api, user: &str, password: &str) -> Registered {
    let (state, request) = opaque::client_registration_start(&pw(password)).unwrap();
    let started: proto::RegisterStarted = api
        .post(
            "/v1/register/start",
            None,
            &proto::RegisterStart {
                user: user.into(),
                registration_request: Bytes(request),
            },
        )
        .unwrap();
    let fin = opaque::client_registration_finish(
        state,
        &pw(password),
        started.registration_response.as_slice(),
        ids(user),
    )
    .unwrap();
    let identity = IdentityKey::generate().unwrap();
    let code = RecoveryCode::generate().unwrap();
    api.post_empty(
        "/v1/register/finish",
        None,
        &proto::RegisterFinish {
            registration_id: started.registration_id,
            registration_upload: Bytes(fin.upload),
            cloud_wrap: Bytes(
                identity
                    .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx(user))
                    .unwrap(),
            ),
            recovery_wrap: Bytes(
                identity
                    .wrap_with_recovery_code(&code, &recovery_ctx(user))
                    .unwrap(),
            ),
            recovery_verifier: Bytes(code.auth_verifier().to_vec()),
            settings: Bytes(b"settings v1".to_vec()),
            device: None,
        },
    )
    .unwrap();
    Registered { identity, code }
}

fn login_start(
    api: &Api,
    user: &str,
    password: &str,
    device_id: &str,
) -> (opaque::ClientLoginState, proto::LoginStarted) {
    let (state, ke1) = opaque::client_login_start(&pw(password)).unwrap();
    let started = api
        .post(
            "/v1/login/start",
            None,
            &proto::LoginStart {
                user: user.into(),
                credential_request: Bytes(ke1),
                device_id: device_id.into(),
                device_name: "test device".into(),
            },
        )
        .unwrap();
    (state, started)
}

/// A whole login, started on `start` and finished on `finish`; returns the session
/// token and the answer, after checking that the cloud wrap opens to the identity key.
fn login(
    start: &Api,
    finish: &Api,
    user: &str,
    password: &str,
    account: &Registered,
    device_id: &str,
) -> (Vec<u8>, proto::LoginFinished) {
    let (state, started) = login_start(start, user, password, device_id);
    let fin = opaque::client_login_finish(
        state,
        &pw(password),
        started.credential_response.as_slice(),
        ids(user),
    )
    .unwrap();
    let finished: proto::LoginFinished = finish
        .post(
            "/v1/login/finish",
            None,
            &proto::LoginFinish {
                login_id: started.login_id,
                credential_finalization: Bytes(fin.finalization),
            },
        )
        .unwrap();
    let identity = IdentityKey::unwrap_with_key(
        &opaque::cloud_kek(&fin.export_key),
        &cloud_ctx(user),
        finished.cloud_wrap.as_slice(),
    )
    .unwrap();
    assert_eq!(identity, account.identity);
    (
        opaque::session_token(&fin.session_key).expose().to_vec(),
        finished,
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn concurrent_login_starts_on_two_processes_charge_exactly_the_limit() {
    let d = Deployment::new("counter");
    let (a, b) = d.two_processes();
    let (api_a, api_b) = (api(&a), api(&b));
    let alice = register(&api_a, "alice", PW);

    // Thirty starts at once, alternating between the processes, all with the right
    // password, none finished: each is an attempt the account pays for.
    const STARTS: usize = 30;
    let barrier = Arc::new(Barrier::new(STARTS));
    let handles: Vec<_> = (0..STARTS)
        .map(|i| {
            let api = if i % 2 == 0 { api(&a) } else { api(&b) };
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let (state, ke1) = opaque::client_login_start(&pw(PW)).unwrap();
                let body = proto::LoginStart {
                    user: "alice".into(),
                    credential_request: Bytes(ke1),
                    device_id: device(1),
                    device_name: "racer".into(),
                };
                barrier.wait();
                let started: proto::LoginStarted =
                    api.post("/v1/login/start", None, &body).unwrap();
                (state, started.credential_response.0)
            })
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(d.failed_logins("alice"), LIMIT);

    // Exactly LIMIT of the answers were real (the right password verifies against them);
    // the rest were the fake answers of a locked account.
    let answers = Arc::new(Mutex::new(answers));
    let real: usize = (0..2)
        .map(|_| {
            let answers = Arc::clone(&answers);
            thread::spawn(move || {
                let mut real = 0;
                loop {
                    let Some((state, ke2)) = answers.lock().unwrap().pop() else {
                        return real;
                    };
                    match opaque::client_login_finish(state, &pw(PW), &ke2, ids("alice")) {
                        Ok(_) => real += 1,
                        Err(OpaqueError::InvalidLogin) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(real, usize::try_from(LIMIT).unwrap());

    // Locked on both processes: the right password does not get through.
    for api in [&api_a, &api_b] {
        let (state, started) = login_start(api, "alice", PW, &device(2));
        assert_eq!(
            opaque::client_login_finish(
                state,
                &pw(PW),
                started.credential_response.as_slice(),
                ids("alice")
            )
            .err(),
            Some(OpaqueError::InvalidLogin)
        );
    }
    assert_eq!(d.failed_logins("alice"), LIMIT);

    // The recovery code, started on B and finished on A, unlocks for both.
    let (state, request) = opaque::client_registration_start(&pw(PW2)).unwrap();
    let started: proto::RecoveryStarted = api_b
        .post(
            "/v1/recovery/start",
            None,
            &proto::RecoveryStart {
                user: "alice".into(),
                recovery_auth: Bytes(alice.code.auth_key().expose().to_vec()),
                registration_request: Bytes(request),
            },
        )
        .unwrap();
    let fin = opaque::client_registration_finish(
        state,
        &pw(PW2),
        started.registration_response.as_slice(),
        ids("alice"),
    )
    .unwrap();
    api_a
        .post_empty(
            "/v1/recovery/finish",
            None,
            &proto::RecoveryFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(
                    alice
                        .identity
                        .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx("alice"))
                        .unwrap(),
                ),
            },
        )
        .unwrap();
    assert_eq!(d.failed_logins("alice"), 0);
    let (_, finished) = login(&api_b, &api_a, "alice", PW2, &alice, &device(2));
    assert_eq!(finished.failed_attempts, 0);
    assert!(
        a.log_contains("login attempt on a locked account")
            || b.log_contains("login attempt on a locked account")
    );
}

#[test]
fn a_login_started_on_one_process_finishes_on_the_other_and_its_session_works_on_both() {
    let d = Deployment::new("shared");
    let (a, b) = d.two_processes();
    let (api_a, api_b) = (api(&a), api(&b));
    let alice = register(&api_b, "alice", PW);

    // Started on A, finished on B.
    let (token, finished) = login(&api_a, &api_b, "alice", PW, &alice, &device(1));
    assert_eq!(finished.failed_attempts, 0);
    assert_eq!(finished.settings.version, 1);

    // The session works on both; settings change as one compare-and-swap.
    let devices: proto::Devices = api_a.get("/v1/devices", &token).unwrap();
    assert_eq!(devices.devices.len(), 1);
    assert!(devices.devices[0].current);
    assert_eq!(
        api_a.put_settings(&token, 1, b"v2 from A").unwrap().version,
        2
    );
    let (status, e) = api_b.put_settings(&token, 1, b"v2 from B").unwrap_err();
    assert_eq!((status, e.code.as_str()), (409, "version_conflict"));
    let settings: proto::Settings = api_b.get("/v1/settings", &token).unwrap();
    assert_eq!(settings.version, 2);
    assert_eq!(settings.blob.0, b"v2 from A");

    // A second device signs in on B and revokes the first on B: A refuses it at once.
    let (token2, _) = login(&api_b, &api_b, "alice", PW, &alice, &device(2));
    api_b
        .send(
            Method::DELETE,
            &format!("/v1/devices/{}", device(1)),
            Some(&token2),
            None,
        )
        .unwrap();
    for api in [&api_a, &api_b] {
        let (status, e) = api
            .get::<proto::Devices>("/v1/devices", &token)
            .unwrap_err();
        assert_eq!((status, e.code.as_str()), (401, "bad_session"));
    }
    let devices: proto::Devices = api_a.get("/v1/devices", &token2).unwrap();
    assert_eq!(devices.devices.len(), 1);
    assert_eq!(devices.devices[0].id, device(2));

    // A login id is single-use across processes too: a finish replayed on the other
    // process fails.
    let (state, started) = login_start(&api_a, "alice", PW, &device(3));
    let fin = opaque::client_login_finish(
        state,
        &pw(PW),
        started.credential_response.as_slice(),
        ids("alice"),
    )
    .unwrap();
    let finish = proto::LoginFinish {
        login_id: started.login_id,
        credential_finalization: Bytes(fin.finalization),
    };
    api_a
        .post::<proto::LoginFinished>("/v1/login/finish", None, &finish)
        .unwrap();
    let (status, e) = api_b
        .post::<proto::LoginFinished>("/v1/login/finish", None, &finish)
        .unwrap_err();
    assert_eq!((status, e.code.as_str()), (401, "login_failed"));
}
