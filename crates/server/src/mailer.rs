//! Mail the server sends: the token that proves an address for the key directory.
//!
//! The server submits through an SMTP relay it is configured with (`[directory.smtp]`),
//! with the same SMTP client and TLS rules as the app (`sealpost-mail`: implicit TLS or
//! required STARTTLS, certificates verified). Without a relay the directory answers
//! claims with `503 directory_unavailable`: a server that cannot mail the proof must not
//! pretend to have sent it.

use std::path::PathBuf;

use async_trait::async_trait;
use sealpost_mail::net::Server;
use sealpost_mail::secret::{Credentials, Secret};
use sealpost_mail::smtp::{self, Envelope, SmtpConfig};
use sealpost_mail::tls::TlsPolicy;
use sealpost_proto::EmailAddress;
use sealpost_proto::directory::TOKEN_HEADER;
use serde::Deserialize;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// Sends a finished message.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// The envelope and `From:` address.
    fn sender(&self) -> &str;

    /// Submits `message` (RFC 5322 bytes) for `to`. The error is for the log and may
    /// name the relay, never a credential.
    async fn send(&self, to: &EmailAddress, message: &[u8]) -> Result<(), String>;
}

/// How to reach the relay, as the configuration file says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpRelayConfig {
    /// Host name (checked against its certificate).
    pub host: String,
    /// Port: 465 for implicit TLS, 587 for STARTTLS.
    pub port: u16,
    /// `"tls"` (implicit, the default) or `"starttls"` (then required).
    #[serde(default = "default_security")]
    pub security: String,
    /// Login name at the relay.
    pub username: String,
    /// The environment variable holding the relay password.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// The sender address of the proof mails.
    pub from: String,
    /// An extra CA certificate (PEM or DER file) to trust for the relay, beside the
    /// public roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_security() -> String {
    "tls".to_owned()
}

fn default_password_env() -> String {
    "SEALPOST_SMTP_PASSWORD".to_owned()
}

/// SMTP submission through a relay.
pub struct SmtpMailer {
    config: SmtpConfig,
    credentials: Credentials,
    from: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.config.server)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `relay` that logs in with `password`. Fails on an unknown security
    /// mode, a sender that is not an address, or an unreadable CA file.
    pub fn new(relay: &SmtpRelayConfig, password: Secret) -> anyhow::Result<Self> {
        let server = match relay.security.as_str() {
            "tls" => Server::tls(relay.host.clone(), relay.port),
            "starttls" => Server::starttls(relay.host.clone(), relay.port),
            other => anyhow::bail!("unknown SMTP security {other:?}: use \"tls\" or \"starttls\""),
        };
        let from = EmailAddress::parse(&relay.from)
            .map_err(|e| anyhow::anyhow!("the directory's from address: {e}"))?;
        let mut tls = TlsPolicy::new();
        if let Some(path) = &relay.ca_file {
            let bytes = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            for der in certificates(&bytes) {
                tls = tls.with_extra_root(&der);
            }
        }
        let mut config = SmtpConfig::new(server);
        config.tls = tls;
        Ok(Self {
            config,
            credentials: Credentials::Password {
                user: relay.username.clone(),
                password,
            },
            from: from.as_str().to_owned(),
        })
    }
}

/// The DER certificates in a PEM file, or the file itself if it is not PEM.
fn certificates(bytes: &[u8]) -> Vec<Vec<u8>> {
    let pems: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(bytes)
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect();
    if pems.is_empty() {
        vec![bytes.to_vec()]
    } else {
        pems
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn sender(&self) -> &str {
        &self.from
    }

    async fn send(&self, to: &EmailAddress, message: &[u8]) -> Result<(), String> {
        let envelope = Envelope::new(&self.from, &[to.as_str()]).map_err(|e| e.to_string())?;
        smtp::send(&self.config, &self.credentials, &envelope, message)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The proof mail: the token in a header for the app, and in words for a person.
pub fn proof_message(
    from: &str,
    to: &EmailAddress,
    token: &str,
    server_id: &str,
    expires_at: i64,
) -> Result<Vec<u8>, std::io::Error> {
    let body = format!(
        "Someone signed in to the Sealpost account server {server_id} asked to publish an \
         OpenPGP key for {to}.\r\n\r\nIf that was you, Sealpost confirms it by itself when it \
         next reads this mailbox; nothing to do. If it was not you, ignore this message: \
         nothing is published without the token below, and it stops working at {expires_at} \
         (Unix time).\r\n\r\nToken: {token}\r\n"
    );
    mail_builder::MessageBuilder::new()
        .from(("Sealpost key directory", from))
        .to(to.as_str())
        .subject(format!("Confirm your key for {to}"))
        .header(
            TOKEN_HEADER,
            mail_builder::headers::raw::Raw::new(token.to_owned()),
        )
        .text_body(body)
        .write_to_vec()
}
