//! The sync server's HTTP API against real parts: the real router and service on a
//! loopback port, a SQLite store in a temporary directory, a software key file or a
//! SoftHSMv2 token as the HSM, and the client half of OPAQUE from `sealpost-crypto`, so
//! every message can be crafted, cut short or replayed. The shared server, client and
//! helpers are in [`harness`]; each other module is one topic.
//!
//! What is checked, top-down:
//!
//! - bad input (version header, bodies, OPAQUE messages, ids, bearer tokens) gets a 4xx
//!   `ApiError` with a clear code and changes nothing: every table of the SQLite file is
//!   compared row by row before and after ([`harness::snapshot`]), and the refused flows
//!   still finish afterwards with the same ids ([`bad_input`], [`replays`],
//!   [`sessions_and_devices`]);
//! - unknown and locked accounts answer like real ones ([`enumeration`]);
//! - the failed-login counter: charged at login start, reset only by a successful finish,
//!   an unlock from a signed-in device, or the recovery code ([`failed_logins`]);
//! - with the HSM unavailable every endpoint that needs it answers 503 and writes nothing
//!   ([`hsm_down`]);
//! - a stolen database (and the server's configuration) without the HSM gives nothing to
//!   guess against; with the HSM's keys (or a copied software key file) it does, at the
//!   cost of one Argon2id per guess: the limit of the design, shown by a test too
//!   ([`stolen_database`]);
//! - a signed-in device replaces the recovery code, retiring the old one
//!   ([`recovery_code`]);
//! - the whole account lifecycle through a PKCS#11 token ([`pkcs11_lifecycle`]);
//! - the key directory, with its proof mails through real Postfix and Dovecot
//!   ([`directory`]);
//! - the directory's transparency log against a server that shows two histories, one
//!   rolled back, and bad proofs and heads; a full replay audit ([`transparency`]);
//! - each account's security activity, readable only by its sessions, sealed in the
//!   store ([`activity`]);
//! - the probes and metrics of the operations listener ([`ops`]).
//!
//! Tests that use SoftHSMv2 run their body in a child process
//! (`sealpost_testkit::softhsm::in_child_process`); the name passed to it is the test's
//! full name in this binary, module path included (`module::test_name`), since the
//! child is started with `--exact`.
//! Each full login or registration runs the client's Argon2id (256 MiB, t=3) once, so the
//! tests keep them few.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod harness;

mod activity;
mod bad_input;
mod directory;
mod enumeration;
mod failed_logins;
mod hsm_down;
mod ops;
mod pkcs11_lifecycle;
mod recovery_code;
mod replays;
mod sessions_and_devices;
mod stolen_database;
mod transparency;
