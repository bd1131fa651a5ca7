//! The real `sealpost-server` process and its signals: `SIGHUP` reloads the TLS
//! certificate (a pair that does not load is refused and the old one kept), and
//! `SIGTERM` lets a request in flight finish before the process exits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Process;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sealpost_proto as proto;

/// A private CA's PEM, after writing a `localhost` certificate it signed to the files.
fn issue(name: &str, cert: &Path, key: &Path) -> String {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    std::fs::write(cert, leaf.pem()).unwrap();
    std::fs::write(key, leaf_key.serialize_pem()).unwrap();
    ca.pem()
}

/// Whether a fresh connection trusting only `ca_pem` gets the health answer.
fn trusted_by(ca_pem: &str, process: &Process) -> bool {
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .resolve("localhost", process.addr)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .get(format!(
            "https://localhost:{}/v1/health",
            process.addr.port()
        ))
        .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn signal(process: &Process, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for_log(process: &Process, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process.log_contains(needle) {
        assert!(Instant::now() < deadline, "no log line {needle:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_the_old_one_if_the_new_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first_ca = issue("first CA", &cert, &key);
    let data = dir.path().join("data");
    let process = Process::start(
        &[
            "--data".as_ref(),
            data.as_os_str(),
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
        &[],
    );
    assert!(trusted_by(&first_ca, &process));

    // New files, signalled: new connections get the new certificate.
    let second_ca = issue("second CA", &cert, &key);
    assert!(
        trusted_by(&first_ca, &process),
        "nothing changes before the signal"
    );
    signal(&process, "HUP");
    wait_for_log(&process, "TLS certificate reloaded");
    assert!(trusted_by(&second_ca, &process));
    assert!(!trusted_by(&first_ca, &process));

    // A broken pair is refused; the server keeps serving the second certificate.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot a key\n").unwrap();
    signal(&process, "HUP");
    wait_for_log(&process, "TLS reload refused");
    assert!(trusted_by(&second_ca, &process));
    assert!(
        !process.log_contains("not a key"),
        "the key file is never quoted"
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&["--data".as_ref(), data.as_os_str()], &[]);

    // A request whose body is only half sent when the signal arrives.
    let body = br#"{"loginId":"00000000000000000000000000000000","credentialFinalization":"AA"}"#;
    let mut stream = TcpStream::connect(process.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /v1/login/finish HTTP/1.1\r\nHost: x\r\n{}: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        proto::API_VERSION_HEADER,
        proto::API_VERSION,
        body.len()
    )
    .unwrap();
    let (head, tail) = body.split_at(20);
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    signal(&process, "TERM");
    wait_for_log(&process, "finishing requests in flight");
    // New connections are no longer taken.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(process.addr).is_err(),
        "the listener still accepts after SIGTERM"
    );
    // The request in flight completes and gets its answer.
    stream.write_all(tail).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("login_failed"), "{answer}");
    // Then the process exits, cleanly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
