//! One error type for the whole crate, whose cases say in words what went wrong.

use crate::bounded::LimitExceeded;
use crate::fingerprint::CertFingerprint;

/// What can go wrong talking to a mail server or setting up an account.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name does not resolve.
    #[error("the server {host} was not found: check the host name")]
    HostNotFound {
        /// The host name.
        host: String,
    },
    /// TCP connection failed (refused, unreachable).
    #[error("could not connect to {host} port {port}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
    /// An operation took too long.
    #[error("the server did not answer in time ({what})")]
    Timeout {
        /// What was being waited for.
        what: String,
    },
    /// The server's certificate is not trusted. `fingerprint` is what the user would
    /// approve as an exception for this account.
    #[error("the server's certificate is not trusted: {reason}")]
    Certificate {
        /// Why, in words.
        reason: String,
        /// The SHA-256 of the certificate the server presented.
        fingerprint: Option<CertFingerprint>,
    },
    /// TLS failed for another reason (protocol versions, a server that does not speak
    /// TLS on an implicit-TLS port).
    #[error("the secure connection failed: {0}")]
    Tls(String),
    /// STARTTLS was required but the server did not offer or refused it. The connection
    /// is closed; nothing is sent in plain text.
    #[error("the server refuses TLS (STARTTLS is not offered or failed): {0}")]
    StartTlsRefused(String),
    /// The server rejected the credentials.
    #[error("the server refused the login (wrong user name, password or token): {0}")]
    AuthFailed(String),
    /// The server crossed a bound on what it may send; the connection was dropped.
    #[error("the server sent too much, the connection was dropped: {0}")]
    LimitExceeded(LimitExceeded),
    /// The server answered an IMAP command with `NO` or `BAD`, or broke the protocol.
    #[error("IMAP: {0}")]
    Imap(String),
    /// The SMTP server refused a command or broke the protocol.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The connection was lost.
    #[error("the connection was lost: {0}")]
    Io(std::io::Error),
    /// An argument the caller gave is not valid (an address, a folder name, a keyword).
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// What kind of value.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// OAuth2 failed.
    #[error("OAuth2: {0}")]
    OAuth(String),
    /// Account discovery found nothing usable.
    #[error("account setup: {0}")]
    Setup(String),
    /// A message could not be parsed or built.
    #[error("MIME: {0}")]
    Mime(String),
}

impl Error {
    /// Classifies an I/O error on an established connection.
    pub(crate) fn from_io(e: std::io::Error) -> Self {
        if let Some(limit) = LimitExceeded::from_io(&e) {
            return Self::LimitExceeded(limit.clone());
        }
        if e.kind() == std::io::ErrorKind::TimedOut {
            return Self::Timeout {
                what: e.to_string(),
            };
        }
        Self::Io(e)
    }

    /// Classifies an async-imap error.
    pub(crate) fn from_imap(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match e {
            E::Io(io) => Self::from_io(io),
            E::ConnectionLost => Self::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            other => Self::Imap(other.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
