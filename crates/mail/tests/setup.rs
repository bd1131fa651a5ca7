//! Account setup from the address: an autoconfig document served over HTTPS on
//! loopback, guesses probed against the real servers, and the connection test's
//! failures in words.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_mail::autoconfig::{
    self, AuthMethod, CheckError, Discovery, Guess, Side, Source, check_account,
};
use sealpost_mail::{Credentials, ImapConfig, Security, Server, SmtpConfig, TlsPolicy};
use sealpost_testkit::mailtls::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A tiny HTTPS server on loopback: `path -> body`, 404 otherwise. Returns its port and
/// the request targets it saw.
async fn https_server(
    ca: &TestCa,
    documents: Vec<(String, String)>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
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
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let documents = documents.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(target.clone());
                let path = target.split('?').next().unwrap_or("");
                let response = match documents.iter().find(|(p, _)| p == path) {
                    Some((_, body)) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

fn isp_document(mail: &Mail) -> String {
    let postfix = mail.postfix.as_ref().unwrap();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="sealpost.test">
    <domain>sealpost.test</domain>
    <displayName>Sealpost test mail</displayName>
    <incomingServer type="imap">
      <hostname>localhost</hostname><port>{starttls}</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>localhost</hostname><port>{imaps}</port><socketType>SSL</socketType>
      <username>%EMAILLOCALPART%@%EMAILDOMAIN%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>localhost</hostname><port>{submission}</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#,
        starttls = mail.dovecot.imap_port(),
        imaps = mail.dovecot.imaps_port(),
        submission = postfix.submission_port(),
    )
}

fn configs(mail: &Mail, imap: &Server, smtp: &Server) -> (ImapConfig, SmtpConfig) {
    let mut i = ImapConfig::new(imap.clone());
    i.tls = mail.tls();
    i.timeout = Duration::from_secs(20);
    let mut s = SmtpConfig::new(smtp.clone());
    s.tls = mail.tls();
    s.timeout = Duration::from_secs(20);
    (i, s)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn settings_come_from_the_autoconfig_document_and_they_work() {
    let mail = Mail::with_smtp();
    let (port, seen) = https_server(
        &mail.ca,
        vec![("/sealpost.test/config-v1.1.xml".into(), isp_document(&mail))],
    )
    .await;
    let discovery = Discovery {
        autoconfig_urls: vec![
            // Plain HTTP is never fetched.
            format!("http://localhost:{port}/{{domain}}/config-v1.1.xml"),
            format!("https://localhost:{port}/missing/{{domain}}.xml"),
            format!("https://localhost:{port}/{{domain}}/config-v1.1.xml?emailaddress={{email}}"),
        ],
        imap_guesses: Vec::new(),
        smtp_guesses: Vec::new(),
        http: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(mail.ca.cert_der()).unwrap())
            .build()
            .unwrap(),
        tls: mail.tls(),
        timeout: Duration::from_secs(10),
    };
    let settings = autoconfig::discover(&discovery, ALICE).await.unwrap();
    assert_eq!(
        settings.imap,
        Server::tls("localhost", mail.dovecot.imaps_port())
    );
    assert_eq!(settings.imap_username, ALICE);
    let submission = mail.postfix.as_ref().unwrap().submission_port();
    assert_eq!(settings.smtp, Server::starttls("localhost", submission));
    assert_eq!(settings.auth, AuthMethod::Password);
    assert!(
        matches!(&settings.source, Source::Autoconfig(url) if url.contains("emailaddress=alice%40sealpost.test"))
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "/missing/sealpost.test.xml".to_owned(),
            "/sealpost.test/config-v1.1.xml?emailaddress=alice%40sealpost.test".to_owned()
        ]
    );

    let (imap, smtp) = configs(&mail, &settings.imap, &settings.smtp);
    let creds = Credentials::password(settings.imap_username.clone(), ALICE_PW);
    check_account(&imap, &creds, &smtp, &creds).await.unwrap();
}

#[tokio::test]
async fn without_a_document_the_well_known_guesses_are_probed() {
    let mail = Mail::with_smtp();
    let postfix = mail.postfix.as_ref().unwrap();
    let mut discovery = Discovery {
        autoconfig_urls: Vec::new(),
        imap_guesses: vec![
            Guess {
                host: "localhost".into(),
                port: closed_port(),
                security: Security::Tls,
            },
            Guess {
                host: "localhost".into(),
                port: mail.dovecot.imaps_port(),
                security: Security::Tls,
            },
        ],
        smtp_guesses: vec![Guess {
            host: "localhost".into(),
            port: postfix.submissions_port(),
            security: Security::Tls,
        }],
        tls: mail.tls(),
        timeout: Duration::from_secs(10),
        ..Discovery::default()
    };
    let settings = autoconfig::discover(&discovery, BOB).await.unwrap();
    assert_eq!(settings.source, Source::Guess);
    assert_eq!(
        settings.imap,
        Server::tls("localhost", mail.dovecot.imaps_port())
    );
    assert_eq!(
        settings.smtp,
        Server::tls("localhost", postfix.submissions_port())
    );
    assert_eq!(settings.imap_username, BOB);

    // A guess whose certificate is not trusted does not count.
    discovery.tls = TlsPolicy::new();
    let e = autoconfig::discover(&discovery, BOB).await.unwrap_err();
    assert!(e.to_string().contains("enter the servers by hand"), "{e}");
    // The defaults name the well-known hosts.
    let defaults = Discovery::default();
    assert_eq!(defaults.imap_guesses[0].host, "imap.{domain}");
    assert_eq!(defaults.imap_guesses[0].port, 993);
    assert_eq!(
        (defaults.smtp_guesses[0].port, defaults.smtp_guesses[1].port),
        (465, 587)
    );
    assert!(
        defaults.autoconfig_urls[0].starts_with("https://autoconfig.{domain}/mail/config-v1.1.xml")
    );
    assert!(
        defaults.autoconfig_urls[1]
            .starts_with("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml")
    );
}

#[tokio::test]
async fn the_connection_test_explains_each_failure_in_words() {
    let mail = Mail::with_smtp();
    let postfix = mail.postfix.as_ref().unwrap();
    let imap_server = Server::tls("localhost", mail.dovecot.imaps_port());
    let smtp_server = Server::starttls("localhost", postfix.submission_port());
    let good = alice();
    let bad = Credentials::password(ALICE, "wrong");

    // Wrong password, on each side.
    let (imap, smtp) = configs(&mail, &imap_server, &smtp_server);
    let e = check_account(&imap, &bad, &smtp, &good).await.unwrap_err();
    assert!(
        matches!(
            e,
            CheckError::WrongPassword {
                side: Side::Imap,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with(
            "Incoming mail (IMAP): the server refused the login: wrong user name or password"
        ),
        "{e}"
    );
    let e = check_account(&imap, &good, &smtp, &bad).await.unwrap_err();
    assert!(
        matches!(
            e,
            CheckError::WrongPassword {
                side: Side::Smtp,
                ..
            }
        ),
        "{e:?}"
    );
    check_account(&imap, &good, &smtp, &good).await.unwrap();

    // Certificate problem: names the fingerprint the user could approve.
    let (mut imap_untrusted, _) = configs(&mail, &imap_server, &smtp_server);
    imap_untrusted.tls = TlsPolicy::new();
    let e = check_account(&imap_untrusted, &good, &smtp, &good)
        .await
        .unwrap_err();
    let CheckError::Certificate {
        fingerprint: Some(fp),
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert!(e.to_string().contains(&fp.to_string()), "{e}");
    assert!(
        e.to_string().contains("not issued by a trusted authority"),
        "{e}"
    );

    // Host not found.
    let (nowhere, _) = configs(
        &mail,
        &Server::tls("imap.no-such-domain.invalid", 993),
        &smtp_server,
    );
    let e = check_account(&nowhere, &good, &smtp, &good)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CheckError::HostNotFound {
                side: Side::Imap,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("was not found"), "{e}");

    // The server refuses TLS: the SMTP port speaks plain text where TLS was expected.
    let (_, plain) = configs(
        &mail,
        &imap_server,
        &Server::tls("localhost", postfix.submission_port()),
    );
    let e = check_account(&imap, &good, &plain, &good)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CheckError::RefusesTls {
                side: Side::Smtp,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("refuses a secure connection"), "{e}");

    // Nothing listening.
    let (closed, _) = configs(
        &mail,
        &Server::tls("127.0.0.1", closed_port()),
        &smtp_server,
    );
    let e = check_account(&closed, &good, &smtp, &good)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CheckError::Unreachable {
                side: Side::Imap,
                ..
            }
        ),
        "{e:?}"
    );
}
