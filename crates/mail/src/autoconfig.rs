//! Account setup from the address alone, and a connection test that explains failures.
//!
//! [`discover`] tries, in order:
//!
//! 1. the autoconfig documents of the domain (Thunderbird's ISP database format,
//!    `config-v1.1.xml`), from `https://autoconfig.<domain>/mail/config-v1.1.xml` and
//!    `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml` (HTTPS only, the
//!    certificate verified; the URL list is injectable for tests);
//! 2. well-known guesses, each probed with a TLS handshake: `imap.<domain>:993`, then
//!    `smtp.<domain>:465` or `smtp.<domain>:587` with STARTTLS;
//! 3. nothing: [`Error::Setup`], and the user enters the servers by hand.
//!
//! Servers that the document offers only in plain text are ignored.
//!
//! [`check_account`] logs in to IMAP and SMTP with the settings and credentials and
//! reports the first failure with the server it concerns and, in words, what went wrong
//! (wrong password, certificate problem, host not found, server refuses TLS, ...).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::imap::{ImapConfig, ImapSession};
use crate::net::{Security, Server, connect_tcp, timed};
use crate::secret::Credentials;
use crate::smtp::{SmtpConfig, SmtpSession};
use crate::tls::TlsPolicy;

/// Largest autoconfig document accepted.
const MAX_DOCUMENT: usize = 256 * 1024;

/// How a provider wants users to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthMethod {
    /// A password (sent inside TLS).
    Password,
    /// OAuth2 (XOAUTH2 / OAUTHBEARER).
    OAuth2,
}

/// Where the settings came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// An autoconfig document at this URL.
    Autoconfig(String),
    /// Well-known host names that answered with TLS.
    Guess,
}

/// The servers and login names for an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountSettings {
    /// Incoming mail.
    pub imap: Server,
    /// The IMAP login name.
    pub imap_username: String,
    /// Outgoing mail.
    pub smtp: Server,
    /// The SMTP login name.
    pub smtp_username: String,
    /// How to log in.
    pub auth: AuthMethod,
    /// Where this came from.
    pub source: Source,
}

/// A server guess: a host template (`{domain}` is replaced), a port, the security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guess {
    /// Host template, e.g. `imap.{domain}`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
}

/// What [`discover`] tries; [`Discovery::default`] is what the app uses.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Autoconfig URL templates; `{domain}` and `{email}` are replaced (the address is
    /// URL-encoded). Only `https://` URLs are fetched.
    pub autoconfig_urls: Vec<String>,
    /// IMAP guesses, in order.
    pub imap_guesses: Vec<Guess>,
    /// SMTP guesses, in order.
    pub smtp_guesses: Vec<Guess>,
    /// The HTTP client for autoconfig documents.
    pub http: reqwest::Client,
    /// Which certificates guesses are probed with.
    pub tls: TlsPolicy,
    /// Bound on each fetch and probe.
    pub timeout: Duration,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            autoconfig_urls: vec![
                "https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}".into(),
                "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={email}"
                    .into(),
            ],
            imap_guesses: vec![Guess {
                host: "imap.{domain}".into(),
                port: 993,
                security: Security::Tls,
            }],
            smtp_guesses: vec![
                Guess {
                    host: "smtp.{domain}".into(),
                    port: 465,
                    security: Security::Tls,
                },
                Guess {
                    host: "smtp.{domain}".into(),
                    port: 587,
                    security: Security::StartTls,
                },
            ],
            http: reqwest::Client::new(),
            tls: TlsPolicy::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Discovery {
    /// Also trusts the CA certificates in `pem` (as a user gives them for an account
    /// with a private CA), for the autoconfig documents and for the probes.
    pub fn with_extra_roots_pem(mut self, pem: &str) -> Result<Self> {
        let ders = pem_certificates(pem)?;
        if ders.is_empty() {
            return Ok(self);
        }
        let mut builder = reqwest::Client::builder();
        for der in &ders {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| Error::Setup(format!("a CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
            self.tls = self.tls.with_extra_root(der);
        }
        self.http = builder
            .build()
            .map_err(|e| Error::Setup(format!("the HTTP client: {e}")))?;
        Ok(self)
    }
}

/// The DER certificates in a PEM text (anything else in it is ignored).
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = current.take() {
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| Error::Invalid {
                            what: "CA certificate (PEM)",
                            value: e.to_string(),
                        })?,
                );
            }
        } else if let Some(b64) = current.as_mut() {
            b64.push_str(line);
        }
    }
    Ok(out)
}

/// Finds the servers for `address`: autoconfig, then guesses (see the module docs).
pub async fn discover(discovery: &Discovery, address: &str) -> Result<AccountSettings> {
    let (local, domain) = split_address(address)?;
    for template in &discovery.autoconfig_urls {
        let url = template
            .replace("{domain}", domain)
            .replace("{email}", &url_encode(address));
        if !url.starts_with("https://") {
            continue;
        }
        match fetch(discovery, &url).await {
            Ok(xml) => match parse_config(&xml, address, local, domain) {
                Ok(Some((imap, smtp))) => {
                    return Ok(AccountSettings {
                        auth: imap.auth,
                        imap: imap.server,
                        imap_username: imap.username,
                        smtp: smtp.server,
                        smtp_username: smtp.username,
                        source: Source::Autoconfig(url),
                    });
                }
                Ok(None) => tracing::info!("{url}: no IMAP/SMTP server with TLS"),
                Err(e) => tracing::info!("{url}: {e}"),
            },
            Err(e) => tracing::info!("{url}: {e}"),
        }
    }
    let imap = first_answering(discovery, &discovery.imap_guesses, domain).await;
    let smtp = first_answering(discovery, &discovery.smtp_guesses, domain).await;
    match (imap, smtp) {
        (Some(imap), Some(smtp)) => Ok(AccountSettings {
            imap,
            imap_username: address.to_owned(),
            smtp,
            smtp_username: address.to_owned(),
            auth: AuthMethod::Password,
            source: Source::Guess,
        }),
        _ => Err(Error::Setup(format!(
            "no settings found for {domain}: enter the servers by hand"
        ))),
    }
}

async fn fetch(discovery: &Discovery, url: &str) -> Result<String> {
    let mut response = timed(discovery.timeout, "fetching autoconfig", async {
        discovery
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Error::Setup(e.to_string()))
    })
    .await?;
    let mut body = Vec::new();
    while let Some(chunk) = timed(discovery.timeout, "reading autoconfig", async {
        response
            .chunk()
            .await
            .map_err(|e| Error::Setup(e.to_string()))
    })
    .await?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT {
            return Err(Error::Setup(format!("{url}: the document is too large")));
        }
    }
    String::from_utf8(body).map_err(|_| Error::Setup(format!("{url}: not UTF-8")))
}

async fn first_answering(discovery: &Discovery, guesses: &[Guess], domain: &str) -> Option<Server> {
    for guess in guesses {
        let server = Server {
            host: guess.host.replace("{domain}", domain),
            port: guess.port,
            security: guess.security,
        };
        match probe(&server, &discovery.tls, discovery.timeout).await {
            Ok(()) => return Some(server),
            Err(e) => tracing::info!("guess {}:{}: {e}", server.host, server.port),
        }
    }
    None
}

/// Checks that `server` answers with TLS (implicit: a handshake; STARTTLS: TCP only, the
/// protocol is checked by the login later).
pub async fn probe(server: &Server, tls: &TlsPolicy, timeout: Duration) -> Result<()> {
    let tcp = connect_tcp(&server.host, server.port, timeout).await?;
    if server.security == Security::Tls {
        let stream = timed(
            timeout,
            "TLS handshake",
            tls.handshake(tcp, &server.host, None),
        )
        .await?;
        drop(stream);
    }
    Ok(())
}

struct Found {
    server: Server,
    username: String,
    auth: AuthMethod,
}

/// Parses a `config-v1.1.xml` document: the first IMAP and SMTP servers with TLS.
fn parse_config(
    xml: &str,
    address: &str,
    local: &str,
    domain: &str,
) -> Result<Option<(Found, Found)>> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 10_000,
    };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| Error::Setup(format!("invalid autoconfig XML: {e}")))?;
    let provider = doc
        .descendants()
        .find(|n| n.has_tag_name("emailProvider"))
        .ok_or_else(|| Error::Setup("no emailProvider in the autoconfig document".into()))?;
    let find = |tag: &str, kind: &str| -> Option<Found> {
        let mut candidates: Vec<Found> = provider
            .children()
            .filter(|n| n.has_tag_name(tag) && n.attribute("type") == Some(kind))
            .filter_map(|n| {
                let text = |name: &str| {
                    n.children()
                        .find(|c| c.has_tag_name(name))
                        .and_then(|c| c.text())
                        .map(str::trim)
                };
                let security = match text("socketType")? {
                    "SSL" => Security::Tls,
                    "STARTTLS" => Security::StartTls,
                    _ => return None, // never plain text
                };
                let host = text("hostname")?.replace("%EMAILDOMAIN%", domain);
                let port = text("port")?.parse().ok()?;
                let username = text("username")
                    .unwrap_or("%EMAILADDRESS%")
                    .replace("%EMAILADDRESS%", address)
                    .replace("%EMAILLOCALPART%", local)
                    .replace("%EMAILDOMAIN%", domain);
                let auth = if n
                    .children()
                    .filter(|c| c.has_tag_name("authentication"))
                    .any(|c| c.text().map(str::trim) == Some("OAuth2"))
                {
                    AuthMethod::OAuth2
                } else {
                    AuthMethod::Password
                };
                Some(Found {
                    server: Server {
                        host,
                        port,
                        security,
                    },
                    username,
                    auth,
                })
            })
            .collect();
        // Implicit TLS first (RFC 8314), document order otherwise.
        candidates.sort_by_key(|f| f.server.security != Security::Tls);
        candidates.into_iter().next()
    };
    Ok(find("incomingServer", "imap").zip(find("outgoingServer", "smtp")))
}

fn split_address(address: &str) -> Result<(&str, &str)> {
    match address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') =>
        {
            Ok((local, domain))
        }
        _ => Err(Error::Invalid {
            what: "e-mail address",
            value: address.to_owned(),
        }),
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Which server a failed check concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Incoming mail.
    Imap,
    /// Outgoing mail.
    Smtp,
}

/// Why an account does not work, in words.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The server name does not resolve.
    #[error("{side}: the server {host} was not found. Check the server name.")]
    HostNotFound {
        /// Which server.
        side: Side,
        /// The host name.
        host: String,
    },
    /// The server is unreachable (refused, timed out).
    #[error("{side}: the server could not be reached: {detail}")]
    Unreachable {
        /// Which server.
        side: Side,
        /// Details.
        detail: String,
    },
    /// The certificate is not trusted; the user may approve this fingerprint.
    #[error("{side}: the server's certificate is not trusted ({reason}). Its fingerprint is {}.", .fingerprint.map(|f| f.to_string()).unwrap_or_else(|| "unknown".into()))]
    Certificate {
        /// Which server.
        side: Side,
        /// Why.
        reason: String,
        /// The presented certificate's SHA-256.
        fingerprint: Option<crate::tls::CertFingerprint>,
    },
    /// TLS could not be set up: STARTTLS missing or refused, or no TLS on the port.
    #[error(
        "{side}: the server refuses a secure connection ({detail}). Sealpost never sends mail or passwords unencrypted."
    )]
    RefusesTls {
        /// Which server.
        side: Side,
        /// Details.
        detail: String,
    },
    /// Wrong user name, password or token.
    #[error("{side}: the server refused the login: wrong user name or password ({detail}).")]
    WrongPassword {
        /// Which server.
        side: Side,
        /// The server's words.
        detail: String,
    },
    /// Anything else.
    #[error("{side}: {error}")]
    Other {
        /// Which server.
        side: Side,
        /// The error.
        error: Error,
    },
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Imap => "Incoming mail (IMAP)",
            Self::Smtp => "Outgoing mail (SMTP)",
        })
    }
}

impl CheckError {
    fn new(side: Side, error: Error) -> Self {
        match error {
            Error::HostNotFound { host } => Self::HostNotFound { side, host },
            Error::Connect { source, .. } => Self::Unreachable {
                side,
                detail: source.to_string(),
            },
            Error::Timeout { what } => Self::Unreachable { side, detail: what },
            Error::Certificate {
                reason,
                fingerprint,
            } => Self::Certificate {
                side,
                reason,
                fingerprint,
            },
            Error::StartTlsRefused(detail) | Error::Tls(detail) => {
                Self::RefusesTls { side, detail }
            }
            Error::AuthFailed(detail) => Self::WrongPassword { side, detail },
            error => Self::Other { side, error },
        }
    }

    /// Which server the failure concerns.
    pub fn side(&self) -> Side {
        match self {
            Self::HostNotFound { side, .. }
            | Self::Unreachable { side, .. }
            | Self::Certificate { side, .. }
            | Self::RefusesTls { side, .. }
            | Self::WrongPassword { side, .. }
            | Self::Other { side, .. } => *side,
        }
    }
}

/// Logs in to IMAP (and lists the folders) and to SMTP (without sending).
pub async fn check_account(
    imap: &ImapConfig,
    imap_credentials: &Credentials,
    smtp: &SmtpConfig,
    smtp_credentials: &Credentials,
) -> std::result::Result<(), CheckError> {
    let mut session = ImapSession::connect(imap, imap_credentials)
        .await
        .map_err(|e| CheckError::new(Side::Imap, e))?;
    session
        .folders()
        .await
        .map_err(|e| CheckError::new(Side::Imap, e))?;
    let _ = session.logout().await;
    let session = SmtpSession::connect(smtp, smtp_credentials)
        .await
        .map_err(|e| CheckError::new(Side::Smtp, e))?;
    let _ = session.quit().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THUNDERBIRD_STYLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.org">
    <domain>example.org</domain>
    <incomingServer type="pop3">
      <hostname>pop.example.org</hostname><port>995</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>plain.example.org</hostname><port>143</port><socketType>plain</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname><port>143</port><socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imaps.example.org</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILLOCALPART%</username><authentication>OAuth2</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.org</hostname><port>587</port><socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

    #[test]
    fn the_isp_format_is_read_preferring_implicit_tls_and_never_plain_text() {
        let (imap, smtp) = parse_config(THUNDERBIRD_STYLE, "jo@example.org", "jo", "example.org")
            .unwrap()
            .unwrap();
        assert_eq!(imap.server, Server::tls("imaps.example.org", 993));
        assert_eq!(imap.username, "jo");
        assert_eq!(imap.auth, AuthMethod::OAuth2);
        assert_eq!(smtp.server, Server::starttls("smtp.example.org", 587));
        assert_eq!(smtp.username, "jo@example.org");
    }

    #[test]
    fn documents_without_tls_servers_or_with_a_dtd_give_nothing() {
        let plain = THUNDERBIRD_STYLE
            .replace(
                "<socketType>SSL</socketType>",
                "<socketType>plain</socketType>",
            )
            .replace(
                "<socketType>STARTTLS</socketType>",
                "<socketType>plain</socketType>",
            );
        assert!(parse_config(&plain, "a@b.c", "a", "b.c").unwrap().is_none());
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><clientConfig/>";
        assert!(parse_config(dtd, "a@b.c", "a", "b.c").is_err());
        assert!(parse_config("not xml", "a@b.c", "a", "b.c").is_err());
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(split_address("a@b.example").unwrap(), ("a", "b.example"));
        for bad in ["", "a", "@b", "a@", "a@b/c", "a@b c"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }
}
