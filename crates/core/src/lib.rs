//! Sealpost's core: everything a Sealpost client does that is not drawing pixels, so the
//! desktop app and the `sealpost` command line are thin shells over it. What it is not:
//! cryptography (`sealpost-crypto`, pure and synchronous), OpenPGP and the message model
//! (`sealpost-pgp`), the wire of IMAP and SMTP (`sealpost-mail`) or a UI.
//!
//! # Reading order
//!
//! - [`api`]: **the one public surface.** [`Core`] is a handle to one profile directory;
//!   its services (profile, account, mail, compose, keys) are what the shells call, and
//!   [`api::views`] is all they see of the data. Start here; its doc also holds the
//!   **concurrency model** (a runtime of the core's own; store reads, Argon2id and
//!   OpenPGP on the blocking pool; network clients async with timeouts; what a lock
//!   cancels and what it waits for) and the **open-once rule** (one decryption per
//!   opening, served from a cache wiped on lock; no network on that path).
//! - `vault`: a profile directory and its vault. `vault::create` runs the password gate,
//!   makes the identity key and stores it wrapped by the password and by a recovery code;
//!   only `Locked::unlock*` makes an `Unlocked` profile, which holds the keys (zeroized
//!   when its last reference goes), seals and opens secrets, and changes the password in
//!   one transaction.
//! - `sync`: the account on the sync server (OPAQUE, so the password never leaves the
//!   device): create it, sign in on a new device, change the password, recover, devices,
//!   and the synced settings; `sync::client` is the async HTTP client with its timeouts.
//! - `mailbox`: the mail engine — mail accounts (`roster`), the sealed local store of
//!   folders and messages (`schema`), IMAP sync (`sync`), full-text search (`index`), the
//!   outbox and drafts (`outbox`), OAuth sign-in (`oauth`), and `scheduler`, the loop that
//!   keeps one account in sync in the background.
//! - `keys`: the own OpenPGP key pair (made on the device, renewed before it expires, in
//!   the vault) and contacts' keys; `wkd`: Web Key Directory look-ups.
//! - `render`: mail HTML made safe (ammonia) before it leaves Rust for the sandboxed frame.
//! - `store`: the SQLite files under a profile: pragmas, numbered forward-only
//!   migrations, `STRICT` tables. `task`: where slow work runs (`task::blocking`).
//! - [`error`]: [`CoreError`], each variant with a stable code and a sentence a user can
//!   act on; [`clock`]: time is injected, never read inside business logic.
//!
//! Everything but `api`, `error` and `clock` is `pub(crate)`: with the `testing` feature
//! it is `pub`, for the crate's tests and benches and other crates' tests only.

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
