//! A hostile IMAP server cannot take the client down: small TLS servers written here
//! send deeply nested lists, a 99-gigabyte literal, endless untagged data and endless
//! lines; the client drops the connection with an error and its memory stays bounded.
//! A hostile STARTTLS server that injects plain text after "OK Begin TLS" gets it
//! ignored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_mail::{
    Credentials, Error, ImapConfig, ImapSession, LimitExceeded, Limits, Server, TlsPolicy,
};
use sealpost_testkit::mailtls::TestCa;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the server answers to `UID FETCH`.
#[derive(Clone)]
enum Payload {
    /// Bytes sent once.
    Once(Vec<u8>),
    /// A line repeated until the client goes away (at most `n` times).
    Repeat(Vec<u8>, u64),
}

struct Hostile {
    port: u16,
    ca: TestCa,
    /// Bytes of payload written before the client hung up.
    written: Arc<AtomicU64>,
}

async fn hostile(payload: Payload) -> Hostile {
    let ca = TestCa::new("Hostile test CA").unwrap();
    let cert = ca.issue_localhost().unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let (read, mut write) = tokio::io::split(tls);
        let mut lines = BufReader::new(read).lines();
        write
            .write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE] hostile\r\n")
            .await
            .unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut words = line.split(' ');
            let tag = words.next().unwrap_or("*").to_owned();
            let command = words.next().unwrap_or("").to_ascii_uppercase();
            let reply: Vec<u8> = match command.as_str() {
                "LOGIN" => format!("{tag} OK logged in\r\n").into_bytes(),
                "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK\r\n").into_bytes(),
                "SELECT" => format!(
                    "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n{tag} OK [READ-WRITE] ok\r\n"
                )
                .into_bytes(),
                "UID" => {
                    match &payload {
                        Payload::Once(bytes) => {
                            if write.write_all(bytes).await.is_err() {
                                return;
                            }
                            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            format!("{tag} OK done\r\n").into_bytes()
                        }
                        Payload::Repeat(line, n) => {
                            for _ in 0..*n {
                                if write.write_all(line).await.is_err() {
                                    return;
                                }
                                counter.fetch_add(line.len() as u64, Ordering::Relaxed);
                            }
                            format!("{tag} OK done\r\n").into_bytes()
                        }
                    }
                }
                "LOGOUT" => format!("* BYE\r\n{tag} OK bye\r\n").into_bytes(),
                _ => format!("{tag} BAD what\r\n").into_bytes(),
            };
            if write.write_all(&reply).await.is_err() {
                return;
            }
        }
    });
    Hostile { port, ca, written }
}

async fn fetch_from(server: &Hostile, limits: Limits) -> Result<Option<Vec<u8>>, Error> {
    let mut config = ImapConfig::new(Server::tls("localhost", server.port));
    config.tls = TlsPolicy::new().with_extra_root(server.ca.cert_der());
    config.limits = limits;
    config.timeout = Duration::from_secs(60);
    let mut imap = ImapSession::connect(&config, &Credentials::password("u", "p")).await?;
    imap.select("INBOX").await?;
    imap.fetch_message(1).await
}

/// A multipart BODYSTRUCTURE nested `levels` deep (plus the FETCH list and a part).
fn nested(levels: usize) -> String {
    format!(
        "{}(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1){}",
        "(".repeat(levels),
        " \"MIXED\")".repeat(levels)
    )
}

#[tokio::test]
async fn an_ordinary_answer_from_the_test_server_is_read() {
    // The harness itself works: a legitimate, moderately nested answer parses.
    let body = format!(
        "* 1 FETCH (UID 1 BODYSTRUCTURE {} BODY[] {{5}}\r\nhello)\r\n",
        nested(40)
    );
    let server = hostile(Payload::Once(body.into_bytes())).await;
    let got = fetch_from(&server, Limits::default()).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
}

#[tokio::test]
async fn a_deeply_nested_bodystructure_drops_the_connection() {
    let body = format!("* 1 FETCH (UID 1 BODYSTRUCTURE {})\r\n", nested(100_000));
    let server = hostile(Payload::Once(body.into_bytes())).await;
    let e = fetch_from(&server, Limits::default()).await.unwrap_err();
    assert!(
        matches!(e, Error::LimitExceeded(LimitExceeded::Depth { limit: 48 })),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_99_gigabyte_literal_is_refused_when_announced() {
    let mut body = b"* 1 FETCH (UID 1 BODY[] {99000000000}\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let server = hostile(Payload::Once(body)).await;
    let e = fetch_from(&server, Limits::default()).await.unwrap_err();
    assert!(
        matches!(e, Error::LimitExceeded(LimitExceeded::Literal { size: _, limit }) if limit == 64 * 1024 * 1024),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_endless_stream_of_untagged_lines_is_cut_off() {
    let limits = Limits {
        max_response: 1024 * 1024,
        ..Limits::default()
    };
    // 10 GB if nobody stopped it.
    let line = b"* OK still going, and going, and going, and going, and going\r\n".to_vec();
    let n = 10_000_000_000 / line.len() as u64;
    let server = hostile(Payload::Repeat(line, n)).await;
    let e = fetch_from(&server, limits).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded(LimitExceeded::Response { limit: 1048576 })
        ),
        "{e:?}"
    );
    // The client hung up soon after the bound: the server could not push much more
    // than the bound plus what sits in socket and TLS buffers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = server.written.load(Ordering::Relaxed);
    assert!(
        written < 64 * 1024 * 1024,
        "the server wrote {written} bytes"
    );
}

#[tokio::test]
async fn an_endless_line_is_cut_off() {
    let limits = Limits {
        max_line: 256 * 1024,
        ..Limits::default()
    };
    let mut first = b"* 1 FETCH (UID 1 X-JUNK \"".to_vec();
    first.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    let server = hostile(Payload::Repeat(first, 1000)).await;
    let e = fetch_from(&server, limits).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded(LimitExceeded::Line { limit: 262144 })
        ),
        "{e:?}"
    );
}

/// A STARTTLS server that injects plain-text lines right after "OK Begin TLS" (the
/// CVE-2011-0411 pattern) and announces a capability before TLS that it does not have
/// after. The client must drop the injected bytes, start TLS cleanly and read the
/// capabilities again inside TLS.
#[tokio::test]
async fn bytes_sent_before_tls_are_discarded_and_capabilities_are_asked_again() {
    let ca = TestCa::new("STARTTLS test CA").unwrap();
    let cert = ca.issue_localhost().unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS X-BEFORE-TLS] hi\r\n")
            .await
            .unwrap();
        // Plain-text phase, read line by line without reading ahead.
        let mut commands = Vec::new();
        loop {
            let line = read_plain_line(&mut tcp).await;
            let tag = line.split(' ').next().unwrap().to_owned();
            commands.push(line.clone());
            if line.to_ascii_uppercase().contains("STARTTLS") {
                tcp.write_all(
                    format!(
                        "{tag} OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 X-INJECTED] injected\r\na1 OK [CAPABILITY IMAP4rev1 X-INJECTED] injected\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
                break;
            }
            tcp.write_all(
                format!("* CAPABILITY IMAP4rev1 STARTTLS X-BEFORE-TLS\r\n{tag} OK\r\n").as_bytes(),
            )
            .await
            .unwrap();
        }
        let tls = acceptor.accept(tcp).await.unwrap();
        let (read, mut write) = tokio::io::split(tls);
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            commands.push(line.clone());
            let mut words = line.split(' ');
            let tag = words.next().unwrap_or("*").to_owned();
            let reply = match words.next().unwrap_or("").to_ascii_uppercase().as_str() {
                "LOGIN" => format!("{tag} OK logged in\r\n"),
                "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 IDLE X-AFTER-TLS\r\n{tag} OK\r\n"),
                "LOGOUT" => {
                    let _ = write
                        .write_all(format!("* BYE\r\n{tag} OK\r\n").as_bytes())
                        .await;
                    break;
                }
                _ => format!("{tag} BAD what\r\n"),
            };
            write.write_all(reply.as_bytes()).await.unwrap();
        }
        commands
    });

    let mut config = ImapConfig::new(Server::starttls("localhost", port));
    config.tls = TlsPolicy::new().with_extra_root(ca.cert_der());
    config.timeout = Duration::from_secs(10);
    let imap = ImapSession::connect(&config, &Credentials::password("u", "secret-pw"))
        .await
        .unwrap();
    assert!(imap.has_capability("X-AFTER-TLS"));
    assert!(!imap.has_capability("X-BEFORE-TLS") && !imap.has_capability("X-INJECTED"));
    imap.logout().await.unwrap();

    let commands = server.await.unwrap();
    let plain: Vec<&String> = commands
        .iter()
        .take_while(|c| !c.contains("STARTTLS"))
        .collect();
    assert!(
        plain.iter().all(|c| !c.contains("secret-pw")),
        "{commands:?}"
    );
    assert!(commands.iter().any(|c| c.contains("LOGIN")), "{commands:?}");
}

async fn read_plain_line(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    loop {
        let b = tcp.read_u8().await.unwrap();
        line.push(b);
        if b == b'\n' {
            return String::from_utf8(line).unwrap().trim_end().to_owned();
        }
    }
}
