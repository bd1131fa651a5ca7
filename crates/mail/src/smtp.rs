//! SMTP submission with lettre: raw message bytes, an explicit envelope.
//!
//! The message is built elsewhere (possibly encrypted); this module only carries bytes.
//! The envelope decides who receives it, so a `Bcc:` header must not be in the bytes.
//!
//! TLS is done here, not by lettre, so IMAP and SMTP share one [`TlsPolicy`] (extra
//! roots, the user-approved pin) and one error vocabulary; lettre then speaks SMTP over
//! the established stream ([`AsyncSmtpConnection::connect_with_transport`]). For
//! STARTTLS the plain-text phase (greeting, `EHLO`, `STARTTLS`) is done here with
//! bounded lines, the server's pre-TLS buffer is discarded, and lettre starts on the
//! TLS stream with a fresh `EHLO`: capabilities are only ever read from inside TLS.
//! Because lettre expects a greeting and a server sends none after STARTTLS, the
//! stream replays a fixed local `220` line to it first.
//!
//! Authentication: PLAIN/LOGIN through lettre; XOAUTH2 and OAUTHBEARER as `AUTH`
//! commands with an initial response, answering an error challenge as the mechanisms
//! require, so a rejected token is reported as [`Error::AuthFailed`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use base64::Engine;
use lettre::transport::smtp::authentication::{Credentials as LettreCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::imap::SessionStream;
use crate::net::{Security, Server, connect_tcp, timed};
use crate::secret::{Credentials, Secret, oauthbearer_response, xoauth2_response};
use crate::tls::TlsPolicy;

/// Longest SMTP line accepted from the server.
const MAX_LINE: usize = 64 * 1024;
/// Most lines accepted in the plain-text phase before STARTTLS.
const MAX_PRE_TLS_LINES: usize = 64;
/// What lettre reads first on a connection that went through STARTTLS.
const REPLAYED_GREETING: &[u8] = b"220 STARTTLS done\r\n";

/// How to reach an SMTP submission server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The server (465 with implicit TLS, or 587 with STARTTLS).
    pub server: Server,
    /// Which certificates are accepted.
    pub tls: TlsPolicy,
    /// Bound on connecting and on each command.
    pub timeout: Duration,
}

impl SmtpConfig {
    /// Default policy and a 60 s timeout.
    pub fn new(server: Server) -> Self {
        Self {
            server,
            tls: TlsPolicy::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Who sends and who receives, independent of the message's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    from: lettre::Address,
    to: Vec<lettre::Address>,
}

impl Envelope {
    /// An envelope; addresses are checked.
    pub fn new<S: AsRef<str>>(from: &str, to: &[S]) -> Result<Self> {
        let parse = |a: &str| {
            a.parse::<lettre::Address>().map_err(|_| Error::Invalid {
                what: "e-mail address",
                value: a.to_owned(),
            })
        };
        if to.is_empty() {
            return Err(Error::Invalid {
                what: "recipient list",
                value: String::new(),
            });
        }
        Ok(Self {
            from: parse(from)?,
            to: to
                .iter()
                .map(|a| parse(a.as_ref()))
                .collect::<Result<_>>()?,
        })
    }
}

/// An authenticated SMTP connection.
pub struct SmtpSession {
    conn: AsyncSmtpConnection,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSession").finish_non_exhaustive()
    }
}

impl SmtpSession {
    /// Connects, secures the connection and authenticates.
    pub async fn connect(config: &SmtpConfig, credentials: &Credentials) -> Result<Self> {
        let mut conn = timed(
            config.timeout,
            "connecting to the SMTP server",
            connect(config),
        )
        .await?;
        timed(
            config.timeout,
            "authenticating",
            authenticate(&mut conn, credentials, &config.server),
        )
        .await?;
        Ok(Self {
            conn,
            timeout: config.timeout,
        })
    }

    /// Sends `message` (complete RFC 5322 bytes) to the envelope's recipients.
    pub async fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<()> {
        let envelope =
            lettre::address::Envelope::new(Some(envelope.from.clone()), envelope.to.clone())
                .map_err(|e| Error::Smtp(e.to_string()))?;
        timed(self.timeout, "sending the message", async {
            self.conn
                .send(&envelope, message)
                .await
                .map(|_| ())
                .map_err(smtp_error)
        })
        .await
    }

    /// Says goodbye.
    pub async fn quit(mut self) -> Result<()> {
        timed(self.timeout, "QUIT", async {
            self.conn.quit().await.map(|_| ()).map_err(smtp_error)
        })
        .await
    }
}

/// Connects, authenticates, sends one message and quits.
pub async fn send(
    config: &SmtpConfig,
    credentials: &Credentials,
    envelope: &Envelope,
    message: &[u8],
) -> Result<()> {
    let mut session = SmtpSession::connect(config, credentials).await?;
    session.send(envelope, message).await?;
    session.quit().await
}

fn hello() -> ClientId {
    // An address literal: does not reveal the machine's name.
    ClientId::Ipv4(Ipv4Addr::LOCALHOST)
}

async fn connect(config: &SmtpConfig) -> Result<AsyncSmtpConnection> {
    let host = &config.server.host;
    let tcp = connect_tcp(host, config.server.port, config.timeout).await?;
    let peer = tcp.peer_addr().map_err(Error::from_io)?;
    let (tcp, replay) = match config.server.security {
        Security::Tls => (tcp, false),
        Security::StartTls => (starttls(tcp).await?, true),
    };
    let tls = config.tls.handshake(tcp, host, None).await?;
    let stream = SmtpStream {
        inner: Box::new(tls),
        peer,
        replay: if replay { REPLAYED_GREETING } else { b"" },
        line: 0,
    };
    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello())
        .await
        .map_err(smtp_error)
}

/// The plain-text phase: greeting, `EHLO` (must list STARTTLS), `STARTTLS` (must be 220).
async fn starttls(tcp: TcpStream) -> Result<TcpStream> {
    let mut reader = BufReader::new(tcp);
    let mut lines = 0;
    let greeting = read_reply(&mut reader, &mut lines).await?;
    if !greeting.first().is_some_and(|l| l.starts_with("220")) {
        return Err(Error::StartTlsRefused(format!(
            "unexpected greeting {greeting:?}"
        )));
    }
    reader
        .get_mut()
        .write_all(b"EHLO [127.0.0.1]\r\n")
        .await
        .map_err(Error::from_io)?;
    let ehlo = read_reply(&mut reader, &mut lines).await?;
    let offered = ehlo.iter().all(|l| l.starts_with("250"))
        && ehlo.iter().any(|l| {
            l.get(4..)
                .is_some_and(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS"))
        });
    if !offered {
        return Err(Error::StartTlsRefused(
            "the server does not offer STARTTLS".into(),
        ));
    }
    reader
        .get_mut()
        .write_all(b"STARTTLS\r\n")
        .await
        .map_err(Error::from_io)?;
    let reply = read_reply(&mut reader, &mut lines).await?;
    if !reply.first().is_some_and(|l| l.starts_with("220")) {
        return Err(Error::StartTlsRefused(format!("{reply:?}")));
    }
    // Anything still buffered came before TLS: dropped with the reader.
    Ok(reader.into_inner())
}

/// One SMTP reply (all its lines), bounded.
async fn read_reply(reader: &mut BufReader<TcpStream>, lines: &mut usize) -> Result<Vec<String>> {
    let mut reply = Vec::new();
    loop {
        *lines += 1;
        if *lines > MAX_PRE_TLS_LINES {
            return Err(Error::StartTlsRefused("too many lines before TLS".into()));
        }
        let mut line = Vec::new();
        let n = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(Error::from_io)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Err(Error::StartTlsRefused(
                "the server closed the connection or sent a line too long".into(),
            ));
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let last = line.as_bytes().get(3) != Some(&b'-');
        reply.push(line);
        if last {
            return Ok(reply);
        }
    }
}

/// A base64 SASL line or `AUTH` command for lettre's `command`.
struct Line(String);

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

async fn authenticate(
    conn: &mut AsyncSmtpConnection,
    credentials: &Credentials,
    server: &Server,
) -> Result<()> {
    let (mechanism, response, abort) = match credentials {
        Credentials::Password { user, password } => {
            let creds = LettreCredentials::new(user.clone(), password.expose().to_owned());
            return conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map(|_| ())
                .map_err(smtp_error);
        }
        Credentials::XOAuth2 { user, token } => ("XOAUTH2", xoauth2_response(user, token), ""),
        Credentials::OAuthBearer { user, token } => (
            "OAUTHBEARER",
            oauthbearer_response(user, &server.host, server.port, token),
            "AQ==",
        ),
    };
    let encoded = Secret::new(base64::engine::general_purpose::STANDARD.encode(response.expose()));
    let reply = conn
        .command(Line(format!("AUTH {mechanism} {}", encoded.expose())))
        .await
        .map_err(smtp_error)?;
    if reply.has_code(334) {
        // An error challenge (JSON status); acknowledge it and get the final failure.
        let detail: Vec<String> = reply.message().map(str::to_owned).collect();
        let _ = conn.command(Line(abort.to_owned())).await;
        return Err(Error::AuthFailed(format!(
            "the server rejected the token: {}",
            detail.join(" ")
        )));
    }
    if reply.has_code(235) {
        Ok(())
    } else {
        Err(Error::AuthFailed(format!(
            "unexpected reply {}",
            reply.code()
        )))
    }
}

fn smtp_error(e: lettre::transport::smtp::Error) -> Error {
    if let Some(code) = e.status() {
        let code = code.to_string();
        if matches!(code.as_str(), "535" | "534" | "530") {
            return Error::AuthFailed(e.to_string());
        }
    }
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>()
            && let Some(limit) = crate::bounded::LimitExceeded::from_io(io)
        {
            return Error::LimitExceeded(limit.clone());
        }
        source = s.source();
    }
    Error::Smtp(e.to_string())
}

/// The TLS stream lettre talks over: replays the local greeting after STARTTLS and
/// refuses over-long lines.
struct SmtpStream {
    inner: Box<dyn SessionStream>,
    peer: SocketAddr,
    replay: &'static [u8],
    line: usize,
}

impl std::fmt::Debug for SmtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsyncTokioStream for SmtpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

impl AsyncRead for SmtpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            let (now, later) = this.replay.split_at(n);
            buf.put_slice(now);
            this.replay = later;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        for &b in buf.filled().get(before..).unwrap_or_default() {
            this.line = if b == b'\n' { 0 } else { this.line + 1 };
            if this.line > MAX_LINE {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the SMTP server sent an over-long line",
                )));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SmtpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
