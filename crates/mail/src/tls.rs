//! TLS for IMAP and SMTP: rustls with ring, certificates always verified.
//!
//! The trust anchors are the Mozilla roots (webpki-roots) plus any extra roots a
//! [`TlsPolicy`] adds (tests add their own CA). The only escape is an exception the user
//! approved for one account: [`TlsPolicy::dangerous_pin_certificate`] accepts a server
//! certificate whose SHA-256 matches, whoever issued it. Every handshake records the
//! fingerprint of the certificate the server presented, so an error can show it to the
//! user who is asked whether to approve it ([`crate::Error::Certificate`]).

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::Error;
pub use crate::fingerprint::CertFingerprint;

/// Which certificates a connection accepts.
#[derive(Clone, Debug, Default)]
pub struct TlsPolicy {
    extra_roots: Vec<CertificateDer<'static>>,
    pinned: Option<CertFingerprint>,
}

impl TlsPolicy {
    /// The Mozilla root store only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also trusts this root certificate (DER).
    pub fn with_extra_root(mut self, der: &[u8]) -> Self {
        self.extra_roots.push(CertificateDer::from(der.to_vec()));
        self
    }

    /// Accepts a server certificate with this SHA-256 even if no trusted root issued it
    /// or its name does not match: an exception the user approved for one account,
    /// after seeing the fingerprint in a [`crate::Error::Certificate`].
    pub fn dangerous_pin_certificate(mut self, fingerprint: CertFingerprint) -> Self {
        self.pinned = Some(fingerprint);
        self
    }

    /// Builds a rustls config (ring provider) and the slot where the handshake records
    /// the presented certificate.
    fn client_config(&self, alpn: Option<&[u8]>) -> Result<(Arc<ClientConfig>, Seen), Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in &self.extra_roots {
            roots
                .add(root.clone())
                .map_err(|e| Error::Tls(format!("an extra root certificate is invalid: {e}")))?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let seen = Seen::default();
        let verifier = Verifier {
            inner,
            pinned: self.pinned,
            seen: seen.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        if let Some(alpn) = alpn {
            config.alpn_protocols = vec![alpn.to_vec()];
        }
        Ok((Arc::new(config), seen))
    }

    /// Runs a TLS handshake over `stream` for `host`.
    pub(crate) async fn handshake<S>(
        &self,
        stream: S,
        host: &str,
        alpn: Option<&[u8]>,
    ) -> Result<TlsStream<S>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (config, seen) = self.client_config(alpn)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| Error::Tls(format!("{host:?} is not a valid server name")))?;
        TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| handshake_error(&e, seen.get()))
    }
}

/// Turns a failed handshake into an error that says what went wrong.
fn handshake_error(e: &std::io::Error, fingerprint: Option<CertFingerprint>) -> Error {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(reason)) => Error::Certificate {
            reason: certificate_reason(reason),
            fingerprint,
        },
        Some(other) => Error::Tls(other.to_string()),
        None => Error::Tls(format!("the TLS handshake failed: {e}")),
    }
}

fn certificate_reason(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "it was not issued by a trusted authority".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it was issued for a different server name".into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        C::Revoked => "it has been revoked".into(),
        C::BadSignature => "its signature is invalid".into(),
        other => format!("{other:?}"),
    }
}

/// The fingerprint of the certificate the server presented in the last handshake.
#[derive(Clone, Debug, Default)]
struct Seen(Arc<Mutex<Option<CertFingerprint>>>);

impl Seen {
    fn set(&self, fp: CertFingerprint) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(fp);
        }
    }

    fn get(&self) -> Option<CertFingerprint> {
        self.0.lock().ok().and_then(|slot| *slot)
    }
}

/// WebPKI verification, plus the user-approved pin, plus recording what was presented.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Option<CertFingerprint>,
    seen: Seen,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = CertFingerprint::of(end_entity);
        self.seen.set(fingerprint);
        if self.pinned == Some(fingerprint) {
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_through_hex() {
        let fp = CertFingerprint::of(b"certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert_eq!(CertFingerprint::from_hex(&text), Some(fp));
        assert_eq!(CertFingerprint::from_hex(&text.replace(':', "")), Some(fp));
        assert_eq!(CertFingerprint::from_hex("abcd"), None);
    }
}
