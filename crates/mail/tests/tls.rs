//! Certificates are verified, STARTTLS is never silently dropped, and errors say why.

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
use sealpost_mail::smtp::SmtpSession;
use sealpost_mail::{Error, ImapConfig, ImapSession, Server, SmtpConfig, TlsPolicy};
use sealpost_testkit::mailtls::TestCa;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn untrusting(mail: &Mail) -> TlsPolicy {
    // Trusts a CA, but not the one that issued the servers' certificates.
    let other = TestCa::new("Some other CA").unwrap();
    let _ = mail;
    TlsPolicy::new().with_extra_root(other.cert_der())
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused_unless_the_user_pins_it() {
    let mail = Mail::with_smtp();
    let mut config = mail.imaps();
    config.tls = untrusting(&mail);
    let e = ImapSession::connect(&config, &alice()).await.unwrap_err();
    let Error::Certificate {
        reason,
        fingerprint: Some(fingerprint),
    } = &e
    else {
        panic!("expected a certificate error, got {e:?}");
    };
    assert!(
        reason.contains("not issued by a trusted authority"),
        "{reason}"
    );
    assert!(e.to_string().contains("certificate is not trusted"));

    // The same over STARTTLS, and for SMTP (both flavours).
    let mut starttls = mail.imap_starttls();
    starttls.tls = untrusting(&mail);
    let e = ImapSession::connect(&starttls, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    for mut smtp in [mail.smtps(), mail.smtp_starttls()] {
        smtp.tls = untrusting(&mail);
        let e = SmtpSession::connect(&smtp, &alice()).await.unwrap_err();
        assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    }

    // A pin for another certificate does not help.
    config.tls =
        TlsPolicy::new().dangerous_pin_certificate(sealpost_mail::CertFingerprint([7; 32]));
    let e = ImapSession::connect(&config, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");

    // The user approves exactly this certificate for this account: it connects.
    config.tls = TlsPolicy::new().dangerous_pin_certificate(*fingerprint);
    let mut imap = ImapSession::connect(&config, &alice()).await.unwrap();
    imap.select("INBOX").await.unwrap();
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn unknown_hosts_and_closed_ports_are_explained() {
    let config = ImapConfig::new(Server::tls("no-such-host.invalid", 993));
    let e = ImapSession::connect(&config, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::HostNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("was not found"));

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = SmtpSession::connect(&SmtpConfig::new(Server::tls("127.0.0.1", closed)), &alice())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}

/// What a proxy saw the client send.
type Seen = Arc<Mutex<Vec<u8>>>;

/// A man in the middle that removes STARTTLS from what the server announces, passing
/// everything else through line by line. Returns its port and the client's bytes.
async fn stripping_proxy(upstream: u16) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut lines = BufReader::new(server_read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = line
                        .replace(" STARTTLS", "")
                        .replace(" LOGINDISABLED", "")
                        .replace("250-STARTTLS", "250-XNOTHING")
                        .replace("250 STARTTLS", "250 XNOTHING");
                    if client_write
                        .write_all(format!("{line}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn stripping_starttls_is_an_error_and_nothing_secret_goes_out_in_plain_text() {
    let mail = Mail::with_smtp();

    let (port, seen) = stripping_proxy(mail.dovecot.imap_port()).await;
    let mut config = ImapConfig::new(Server::starttls("localhost", port));
    config.tls = mail.tls();
    config.timeout = Duration::from_secs(10);
    let e = ImapSession::connect(&config, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::StartTlsRefused(_)), "{e:?}");
    assert!(e.to_string().contains("refuses TLS"));
    let sent = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(sent.contains("CAPABILITY"), "the proxy saw {sent:?}");
    assert!(
        !sent.contains(ALICE_PW) && !sent.to_uppercase().contains("LOGIN"),
        "{sent:?}"
    );

    let port = mail.postfix.as_ref().unwrap().submission_port();
    let (port, seen) = stripping_proxy(port).await;
    let mut config = SmtpConfig::new(Server::starttls("localhost", port));
    config.tls = mail.tls();
    config.timeout = Duration::from_secs(10);
    let e = SmtpSession::connect(&config, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::StartTlsRefused(_)), "{e:?}");
    let sent = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(sent.starts_with("EHLO"), "the proxy saw {sent:?}");
    assert!(
        !sent.contains("AUTH") && !sent.contains("MAIL FROM"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn implicit_tls_against_a_plain_text_port_fails_cleanly() {
    let mail = Mail::imap_only();
    // The STARTTLS port speaks plain text first: a TLS client must not accept that.
    let mut config = ImapConfig::new(Server::tls("localhost", mail.dovecot.imap_port()));
    config.tls = mail.tls();
    config.timeout = Duration::from_secs(10);
    let e = ImapSession::connect(&config, &alice()).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
}
