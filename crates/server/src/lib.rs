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
//! - [`mailer`]: the proof mails of the key directory, through an SMTP relay.

pub mod clock;
pub mod config;
pub mod embedded;
pub mod error;
pub mod hsm;
pub mod limit;
pub mod mailer;
pub mod routes;
pub mod service;
pub mod store;
pub mod tls;

#[doc = include_str!("threat_model.md")]
pub mod threat_model {}
