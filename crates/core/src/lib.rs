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

/// Declares the modules below the API: `pub(crate)`, and `pub` with the `testing`
/// feature, so the crate's own tests, its benches and other crates' tests can reach the
/// layer they test while no shell can.
macro_rules! internal {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "testing")]
        pub mod $name;
        #[cfg(not(feature = "testing"))]
        pub(crate) mod $name;
    )*};
}

pub mod api;
pub mod clock;
pub mod error;
internal!(keys, mailbox, render, store, sync, vault, wkd);
mod task;

pub use api::{Core, CoreConfig, CoreEvent, EventSink};
pub use clock::{Clock, SystemClock};
pub use error::CoreError;
