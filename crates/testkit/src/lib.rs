//! Real components for tests, started in temporary directories and stopped when dropped.
//!
//! Nothing here is a mock: each helper runs the real Debian package (`scripts/install-deps.sh`
//! installs them) and waits until it answers.
//!
//! - [`softhsm`]: a SoftHSMv2 token in a private directory with its own config file.
//! - [`postgres`]: a PostgreSQL cluster made with `initdb`, listening on loopback.
//! - [`gnupg`]: a private GnuPG home in which the real `gpg` runs, for interop tests.
//! - [`mailtls`]: a test certificate authority (rcgen) for the mail servers.
//! - [`dovecot`]: Dovecot (IMAP over TLS and STARTTLS, LMTP, SASL auth, optional OAuth2).
//! - [`postfix`]: Postfix submission (implicit TLS and STARTTLS) delivering to Dovecot.
//! - [`oidc`]: an OpenID Connect / OAuth2 provider (npm `oidc-provider` under Node).
//! - [`daemon`]: what these mail servers share (stop on drop, free ports, waiting).
//! - [`https`]: a tiny HTTPS server of fixed documents (autoconfig files).
//! - [`proxy`]: a TCP proxy that tests put between a client and a server to cut
//!   connections, take the server down and up, or act when given traffic passes.
//! - [`watchdog`]: [`watchdog::deadline`], a bound on a whole test.

pub mod daemon;
pub mod dovecot;
pub mod gnupg;
pub mod https;
pub mod mailtls;
pub mod oidc;
pub mod postfix;
pub mod postgres;
pub mod proxy;
pub mod softhsm;
pub mod watchdog;
