//! A tiny HTTPS server on loopback that serves fixed documents (autoconfig files, say),
//! with a certificate for `localhost` from a [`TestCa`]: plain threads and rustls, one
//! request per connection, `404` for any other path. It stops accepting when dropped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::daemon::DaemonError;
use crate::mailtls::TestCa;

/// A running server.
#[derive(Debug)]
pub struct StaticHttps {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl StaticHttps {
    /// Serves `documents` (`(path, body)`, the path without the query) over HTTPS.
    pub fn start(ca: &TestCa, documents: Vec<(String, String)>) -> Result<Self, DaemonError> {
        let cert = ca.issue_localhost()?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth().with_single_cert(
                vec![CertificateDer::from(cert.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
            )
        })
        .map_err(|e| DaemonError::Io {
            what: "configuring TLS".into(),
            source: std::io::Error::other(e),
        })?;
        let config = Arc::new(config);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(crate::daemon::io("binding the HTTPS server"))?;
        let port = listener
            .local_addr()
            .map_err(crate::daemon::io("binding the HTTPS server"))?
            .port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (log, stop) = (Arc::clone(&seen), Arc::clone(&stopped));
        let documents = Arc::new(documents);
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let (config, documents, log) = (
                    Arc::clone(&config),
                    Arc::clone(&documents),
                    Arc::clone(&log),
                );
                thread::spawn(move || {
                    let _ = serve(tcp, config, &documents, &log);
                });
            }
        });
        Ok(Self {
            port,
            seen,
            stopped,
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request targets (path and query) seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for StaticHttps {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    documents: &[(String, String)],
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("").to_owned();
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    let response = match documents.iter().find(|(p, _)| p == path) {
        Some((_, body)) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    tls.write_all(response.as_bytes())?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}
