//! Serving: HTTPS with rustls (ring as the crypto provider), or plain HTTP for loopback and
//! for a deployment behind a proxy that terminates TLS.
//!
//! [`server_config`] loads a PEM certificate chain and key into a rustls configuration;
//! [`serve`] runs the router on a TCP listener, through a [`TlsListener`] when given one.
//!
//! **Reload.** The listener takes its configuration from a [`TlsConfigCell`] at each new
//! connection, so replacing the cell's content ([`TlsConfigCell::reload`], which `main`
//! calls on `SIGHUP`) serves the new certificate to every connection from then on, while
//! connections already open keep theirs. A certificate that does not load is refused and
//! the old one stays.
//!
//! **Shutdown.** When `shutdown` completes, the server stops accepting, lets requests in
//! flight finish and closes idle connections (axum's graceful shutdown); `main` bounds
//! the wait.
//!
//! The TLS handshake of each connection runs in a task of its own, so a slow or silent
//! client cannot hold up the accept loop; at most [`MAX_PENDING_HANDSHAKES`] run at once
//! (beyond that, new connections wait in the kernel's backlog), each for at most
//! [`HANDSHAKE_TIMEOUT`]. A failed handshake is logged at debug level and dropped.
//!
//! Handlers see the peer's address as `ConnectInfo<SocketAddr>` (the per-source rate
//! limit needs it) on both paths. axum implements `Connected` for a `SocketAddr` only on
//! its own `TcpListener` and on any listener wrapped in its `TapIo`, and the orphan rule
//! forbids this crate to implement the foreign trait for the foreign `SocketAddr`; so
//! the TLS listener goes to axum wrapped in a no-op tap
//! ([`TlsListener::with_connect_info`]), and the plain one in a tap that sets
//! `TCP_NODELAY`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::{Listener, ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// Most TLS handshakes in progress at once.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Longest a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong loading the certificate and key. The underlying error, where there
/// is one, is the `source` (shown by `{:#}` in the log), not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{what}: {reason}")]
    Certificate {
        /// Which file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The key file holds no usable PEM private key. The reason never quotes the file.
    #[error("{what}: no PEM private key (PKCS#8, PKCS#1 or SEC1) could be read from it")]
    Key {
        /// Which file.
        what: String,
    },
    /// rustls refused the pair (for example, the key does not match the certificate).
    #[error("the TLS certificate and key are refused")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// A rustls server configuration from a PEM certificate chain (leaf first) and a PEM
/// private key, read from files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = zeroize::Zeroizing::new(read(key)?);
    server_config_from_pem(
        &cert_pem,
        &key_pem,
        &cert.display().to_string(),
        &key.display().to_string(),
    )
}

/// [`server_config`] from PEM bytes; `cert_name` and `key_name` name them in errors.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| TlsError::Certificate {
            what: cert_name.to_owned(),
            reason: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            what: cert_name.to_owned(),
            reason: "no PEM certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::Key {
        what: key_name.to_owned(),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // axum serves HTTP/1.1 only (its `http2` feature is off).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS configuration in use, replaceable while the server runs.
#[derive(Clone)]
pub struct TlsConfigCell(Arc<std::sync::RwLock<Arc<ServerConfig>>>);

impl std::fmt::Debug for TlsConfigCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfigCell").finish_non_exhaustive()
    }
}

impl TlsConfigCell {
    /// A cell holding `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(config)))
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Loads `cert` and `key` again and, if they load, serves them from the next
    /// connection on; if not, keeps the old ones and says why.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let config = server_config(cert, key)?;
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }
}

/// Serves `router` on `listener` until `shutdown` completes: HTTPS when `tls` is given,
/// plain HTTP otherwise (with a warning unless the address is a loopback one).
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_reloadable(listener, tls.map(TlsConfigCell::new), router, shutdown).await
}

/// [`serve`] with a TLS configuration that can be replaced while serving.
pub async fn serve_reloadable<F>(
    listener: TcpListener,
    tls: Option<TlsConfigCell>,
    router: Router,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            tracing::info!(listen = %local, "serving HTTPS");
            axum::serve(
                TlsListener::reloadable(listener, config)?.with_connect_info(),
                app,
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        None => {
            if local.ip().is_loopback() {
                tracing::info!(listen = %local, "serving plain HTTP on loopback");
            } else {
                tracing::warn!(
                    listen = %local,
                    "serving plain HTTP on a non-loopback address: passwords are safe \
                     (OPAQUE), but session tokens and blobs are not; configure [tls] or \
                     put a TLS-terminating proxy in front"
                );
            }
            axum::serve(listener.tap_io(set_nodelay), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

fn set_nodelay(tcp: &mut TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::trace!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// A TLS listener wrapped so that axum gives handlers `ConnectInfo<SocketAddr>`.
pub type TlsListenerWithConnectInfo = TapIo<TlsListener, fn(&mut TlsStream<TcpStream>)>;

/// An [`axum::serve::Listener`] that yields connections once their TLS handshake is done.
pub struct TlsListener {
    tcp: TcpListener,
    config: TlsConfigCell,
    local: SocketAddr,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// TLS on top of a bound TCP listener.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        Self::reloadable(tcp, TlsConfigCell::new(config))
    }

    /// TLS whose configuration is read from `config` at each new connection.
    pub fn reloadable(tcp: TcpListener, config: TlsConfigCell) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        Ok(Self {
            tcp,
            config,
            local,
            handshakes: JoinSet::new(),
        })
    }

    /// This listener as `axum::serve` takes it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (see the module's doc).
    pub fn with_connect_info(self) -> TlsListenerWithConnectInfo {
        self.tap_io(no_tap)
    }

    fn spawn_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        let acceptor = TlsAcceptor::from(self.config.current());
        self.handshakes.spawn(async move {
            let mut tcp = tcp;
            set_nodelay(&mut tcp);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, "TLS handshake timed out");
                    None
                }
            }
        });
    }
}

fn no_tap(_: &mut TlsStream<TcpStream>) {}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Both branches are cancel-safe: axum may drop this future at shutdown.
            tokio::select! {
                done = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Some(Ok(Some(connection))) => return connection,
                        Some(Err(e)) => tracing::debug!(error = %e, "TLS handshake task failed"),
                        Some(Ok(None)) | None => {}
                    }
                }
                accepted = self.tcp.accept(), if self.handshakes.len() < MAX_PENDING_HANDSHAKES => {
                    match accepted {
                        Ok((tcp, peer)) => self.spawn_handshake(tcp, peer),
                        Err(e) => accept_error(e).await,
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// As axum does for its own listener: a connection's error is its own; anything else
/// (such as running out of file descriptors) is logged and waited out.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
