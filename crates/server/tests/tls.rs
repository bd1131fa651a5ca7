//! HTTPS end to end: a private CA and a server certificate made here with rcgen, the
//! real server (SQLite, software HSM) behind the TLS listener, and real clients: reqwest
//! with rustls, and core's `SyncClient`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sealpost_core::sync::SyncClient;
use sealpost_proto as proto;
use sealpost_server::config::{self, Config, TlsConfig};
use sealpost_server::tls::{self, TlsError};

/// A private CA and a certificate for `localhost` and 127.0.0.1 that it signed.
struct Pki {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Sealpost test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert,
        key,
        _dir: dir,
    }
}

/// The real server (or `router`, if given) on a loopback port, on a runtime of its own.
struct Server {
    addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start(tls: Option<&Pki>, router: Option<Router>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = Config::embedded(dir.path(), "127.0.0.1:0".parse().unwrap());
    cfg.limits.rate_per_second = 0.0;
    cfg.tls = tls.map(|p| TlsConfig {
        cert: p.cert.clone(),
        key: p.key.clone(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = rt.block_on(async move {
        let tls = cfg.tls.as_ref().map(|t| t.load().unwrap());
        let router = match router {
            Some(r) => r,
            None => config::app(&cfg).await.unwrap(),
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(tls::serve(listener, tls, router, async {
            let _ = rx.await;
        }));
        addr
    });
    Server {
        addr,
        _shutdown: tx,
        _rt: rt,
        _dir: dir,
    }
}

fn https_client(p: &Pki, addr: SocketAddr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(p.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn health(client: &reqwest::blocking::Client, url: &str) -> reqwest::Result<proto::Health> {
    client
        .get(format!("{url}/v1/health"))
        .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
        .send()?
        .error_for_status()?
        .json()
}

#[test]
fn https_with_a_trusted_ca_works_and_plain_http_to_the_tls_port_fails() {
    let pki = pki();
    let server = start(Some(&pki), None);
    let url = format!("https://localhost:{}", server.addr.port());
    let client = https_client(&pki, server.addr);

    let h = health(&client, &url).unwrap();
    assert_eq!(h.status, "ok");
    assert_eq!(h.api_version, proto::API_VERSION);
    // The router's version check is behind TLS too.
    let resp = client.get(format!("{url}/v1/health")).send().unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    // By IP address too (the certificate names 127.0.0.1).
    health(&client, &format!("https://{}", server.addr)).unwrap();

    // Plain HTTP to the TLS port: no answer, only a dropped connection.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = health(&plain, &format!("http://{}", server.addr)).unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    // A client that does not trust the CA refuses the server.
    let untrusting = reqwest::blocking::Client::builder()
        .resolve("localhost", server.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = health(&untrusting, &url).unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // The failed handshakes did not stop the listener.
    assert_eq!(health(&client, &url).unwrap().status, "ok");
}

#[test]
fn a_stalled_handshake_does_not_hold_up_other_connections() {
    let pki = pki();
    let server = start(Some(&pki), None);
    let url = format!("https://localhost:{}", server.addr.port());
    // Connections that open and then say nothing, or half a ClientHello.
    let mut stalled = Vec::new();
    for i in 0..8 {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        if i % 2 == 1 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        }
        stalled.push(s);
    }
    let client = https_client(&pki, server.addr);
    let t = Instant::now();
    for _ in 0..3 {
        // A new connection each time.
        let fresh = https_client(&pki, server.addr);
        assert_eq!(health(&fresh, &url).unwrap().status, "ok");
    }
    assert_eq!(health(&client, &url).unwrap().status, "ok");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "served in {:?} beside stalled handshakes",
        t.elapsed()
    );
    drop(stalled);
}

#[test]
fn handlers_see_the_peer_address_over_https_and_plain_http() {
    let router = || {
        Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
    };
    let pki = pki();
    let server = start(Some(&pki), Some(router()));
    let body = https_client(&pki, server.addr)
        .get(format!("https://localhost:{}/peer", server.addr.port()))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "127.0.0.1");

    let server = start(None, Some(router()));
    let body = reqwest::blocking::get(format!("http://{}/peer", server.addr))
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(body, "127.0.0.1");
}

#[test]
fn the_sync_client_connects_over_https_when_the_ca_is_trusted() {
    let pki = pki();
    let server = start(Some(&pki), None);
    let url = format!("https://127.0.0.1:{}", server.addr.port());

    // The client is async: its calls run to the end on a runtime of the test's.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = SyncClient::with_root_certificate(&url, pki.ca_pem.as_bytes()).unwrap();
    let h = rt.block_on(client.health()).unwrap();
    assert_eq!(h.ksf, sealpost_crypto::opaque::KSF_ID);
    // A POST with a JSON body through the per-source rate limit (ConnectInfo): an unknown
    // user still gets an answer that looks real.
    let (_, ke1) = sealpost_crypto::opaque::client_login_start(
        &sealpost_crypto::Password::new("tundra mosaic gravel whimsy plank").unwrap(),
    )
    .unwrap();
    let started = rt
        .block_on(client.login_start(&proto::LoginStart {
            user: "nobody".into(),
            credential_request: proto::Bytes(ke1),
            device_id: "0".repeat(32),
            device_name: "test".into(),
        }))
        .unwrap();
    assert_eq!(started.credential_response.0.len(), 320);

    // Only the public roots: the private CA is not trusted.
    let err = rt
        .block_on(SyncClient::new(&url).unwrap().health())
        .unwrap_err();
    assert!(
        matches!(err, sealpost_core::sync::SyncError::Unreachable { .. }),
        "{err}"
    );
}

#[test]
fn bad_certificate_or_key_files_are_refused_without_quoting_the_key() {
    let (pki, other) = (pki(), pki());
    // A key that is not the certificate's.
    let err = tls::server_config(&pki.cert, &other.key).unwrap_err();
    assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    // Not a key at all (the certificate file given as the key).
    let err = tls::server_config(&pki.cert, &pki.cert).unwrap_err();
    assert!(matches!(err, TlsError::Key { .. }), "{err}");
    // A damaged key: the message does not quote it.
    let key = std::fs::read_to_string(&pki.key).unwrap();
    let damaged = key.replacen("MI", "M!", 1);
    let path = pki.key.with_file_name("damaged.pem");
    std::fs::write(&path, &damaged).unwrap();
    let err = tls::server_config(&pki.cert, &path)
        .unwrap_err()
        .to_string();
    for line in damaged.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!err.contains(line), "{err}");
    }
    // No certificate in the certificate file.
    let err = tls::server_config(&pki.key, &pki.key).unwrap_err();
    assert!(matches!(err, TlsError::Certificate { .. }), "{err}");
    // A missing file names itself.
    let err = tls::server_config(&pki.cert.with_file_name("none.pem"), &pki.key).unwrap_err();
    assert!(err.to_string().contains("none.pem"), "{err}");
}
