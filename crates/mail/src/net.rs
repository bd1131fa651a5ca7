//! Server addresses and TCP connections.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// How a connection is secured. There is no plain-text option.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465). The default.
    #[default]
    Tls,
    /// Plain text until STARTTLS, which must succeed; capabilities are asked again after
    /// it and nothing the server sent before it is kept.
    StartTls,
}

/// A server: host, port and how the connection is secured.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Server {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
}

impl Server {
    /// A server with implicit TLS.
    pub fn tls(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            security: Security::Tls,
        }
    }

    /// A server that needs STARTTLS.
    pub fn starttls(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            security: Security::StartTls,
        }
    }
}

/// Resolves `host` and connects to the first address that answers within `timeout`.
pub(crate) async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let addrs: Vec<_> = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::Timeout {
            what: format!("looking up {host}"),
        })?
        .map_err(|_| Error::HostNotFound {
            host: host.to_owned(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::HostNotFound {
            host: host.to_owned(),
        });
    }
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection timed out",
                ))
            }
        }
    }
    Err(Error::Connect {
        host: host.to_owned(),
        port,
        source: last.unwrap_or_else(|| std::io::Error::other("no address")),
    })
}

/// Runs `fut` with a time bound.
pub(crate) async fn timed<T>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
        })?
}
