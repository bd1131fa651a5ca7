//! Sealpost's core: the local store and the account lifecycle, on top of
//! `sealpost-crypto`'s key hierarchy.
//!
//! What it is: everything a Sealpost client does that is not drawing pixels — so the
//! desktop app and the `sealpost` command line are thin shells over it. What it is not:
//! cryptography (that is `sealpost-crypto`, pure and synchronous) or a UI.
//!
//! # Reading order
//!
//! - [`vault`]: a profile directory and its vault. [`vault::create`] runs the password
//!   gate, makes the identity key and stores it wrapped by the password and by a
//!   recovery code. [`vault::open`] gives a [`vault::Locked`] profile; only its `unlock`
//!   methods make an [`vault::Unlocked`] one, which holds the keys, seals and opens
//!   secrets, and changes the password in one transaction.
//! - [`sync`]: the account on the sync server: create it, sign in on a new device, change
//!   the password, recover with the code, list and revoke devices, and keep the synced
//!   secrets (the settings blob) the same on every device.
//! - [`store`]: the SQLite file under every profile: pragmas, numbered forward-only
//!   migrations, `STRICT` tables.
//! - [`error`]: [`CoreError`], each variant with a stable code a UI or script can match.
//! - [`clock`]: time is injected, never read inside business logic.

pub mod clock;
pub mod error;
pub mod keys;
pub mod mailbox;
pub mod render;
pub mod session;
pub mod store;
pub mod sync;
pub mod vault;
pub mod wkd;

pub use clock::{Clock, SystemClock};
pub use error::CoreError;
