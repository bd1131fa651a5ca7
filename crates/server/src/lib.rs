//! The Sealpost sync server: OPAQUE sign-in, HSM-sealed wrapped keys, settings,
//! devices, and the key directory.
//!
//! - [`service`]: what each endpoint does; [`routes`] maps HTTP onto it.
//! - [`hsm`]: the second layer. Everything the server stores that a client wrapped (and
//!   the OPAQUE server key pair) is sealed under a key inside an HSM before it touches the
//!   store; the OPRF seed never leaves the HSM.
//! - [`store`]: one trait over the server's state, with SQLite (the embedded default) and
//!   PostgreSQL (several server processes on one database) behind it, and one
//!   conformance suite run against both.
//! - [`service::log`]: the key directory's transparency log (signed heads, proofs; the
//!   math is `sealpost-transparency`'s), and [`service::activity`], each account's
//!   security activity.
//! - [`mailer`]: the proof mails of the key directory, through an SMTP relay.
//! - [`metrics`]: Prometheus metrics (no user data in labels); [`routes::ops_router`]
//!   serves them with the `/healthz` and `/readyz` probes.
//! - [`tls`]: serving HTTP or HTTPS, the certificate reloaded on `SIGHUP`, graceful
//!   shutdown that lets requests in flight finish.
//! - [`config`], [`embedded`], [`clock`], [`limit`], [`error`]: configuration, the
//!   in-process embedded server, time, per-source rate limits, errors as the API shows
//!   them.

pub mod clock;
pub mod config;
pub mod embedded;
pub mod error;
pub mod hsm;
pub mod limit;
pub mod mailer;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod store;
pub mod tls;

#[doc = include_str!("threat_model.md")]
pub mod threat_model {}
