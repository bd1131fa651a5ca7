//! Sealpost's mail transport. It knows bytes, not keys: messages arrive and leave as
//! RFC 5322 bytes; encryption happens elsewhere (`sealpost-crypto`, `sealpost-core`),
//! and the one message model (building and reading mail) is `sealpost-pgp`'s.
//!
//! What it is not: no storage (the caller keeps [`SyncState`], messages and tokens,
//! encrypted), no OpenPGP, no HTML sanitising, no retry policy. Every call takes its
//! configuration and credentials explicitly, and every wait is bounded.
//!
//! # Modules, in reading order
//!
//! - [`net`]: a [`Server`] (host, port, implicit TLS or STARTTLS; never plain text).
//! - [`tls`]: rustls with ring; Mozilla roots plus extra roots; a per-account pinned
//!   certificate as the only, user-approved, exception.
//! - [`bounded`]: limits on what an IMAP server may send, enforced on the byte stream
//!   before async-imap buffers or parses anything.
//! - [`imap`]: sessions over async-imap: folders, UID-based incremental sync with
//!   UIDVALIDITY and CONDSTORE, flags, move, delete, append, IDLE.
//! - [`smtp`]: submission over lettre: raw bytes with an explicit envelope; PLAIN, LOGIN,
//!   XOAUTH2, OAUTHBEARER.
//! - [`oauth`]: OAuth2 authorization code + PKCE with a loopback redirect, refresh,
//!   presets (Gmail, Microsoft 365) and OpenID discovery.
//! - [`autoconfig`]: account setup from the address (ISP database format, then
//!   well-known guesses) and a connection test that explains failures in words.
//! - [`secret`]: passwords and tokens that wipe themselves and never print.
//! - [`error`]: one error enum whose cases say what went wrong in words (host not found,
//!   certificate problem, server refuses TLS, wrong password, ...).
//!
//! # Tests
//!
//! Scripted bytes where the protocol logic is pure (`bounded`, `autoconfig` parsing),
//! and real servers on loopback for the rest (`tests/`): Dovecot and Postfix
//! from `sealpost-testkit`, an OpenID provider (npm `oidc-provider`), small hostile
//! TLS servers written in the tests, a STARTTLS-stripping proxy, an HTTPS autoconfig
//! server. `benches/sync_vs_mbsync.rs` compares a folder sync with isync's `mbsync`.
//!
//! # Example
//!
//! ```no_run
//! use sealpost_mail::{Credentials, ImapConfig, ImapSession, Server};
//!
//! # async fn demo() -> sealpost_mail::Result<()> {
//! let config = ImapConfig::new(Server::tls("imap.example.org", 993));
//! let creds = Credentials::password("alice@example.org", "secret");
//! let mut imap = ImapSession::connect(&config, &creds).await?;
//! let changes = imap.sync("INBOX", None).await?;
//! for message in &changes.new {
//!     let _bytes = imap.fetch_message(message.uid).await?;
//! }
//! imap.logout().await
//! # }
//! ```

pub mod autoconfig;
pub mod bounded;
pub mod error;
mod fingerprint;
pub mod imap;
pub mod net;
pub mod oauth;
pub mod secret;
pub mod smtp;
pub mod tls;

pub use bounded::{LimitExceeded, Limits};
pub use error::{Error, Result};
pub use imap::{
    Flag, Folder, FolderStatus, IdleEvent, ImapConfig, ImapSession, MessageInfo, SpecialUse,
    SyncChanges, SyncState,
};
pub use net::{Security, Server};
pub use secret::{Credentials, Secret};
pub use smtp::{Envelope, SmtpConfig, SmtpSession};
pub use tls::{CertFingerprint, TlsPolicy};
