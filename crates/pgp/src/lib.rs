//! Sealpost's OpenPGP core: the user's key pair, PGP/MIME encrypt-and-sign and
//! decrypt-and-verify with protected headers, Autocrypt, key export and import.
//! Pure and synchronous: no I/O, no clock (every function takes `now`), nothing stored.
//!
//! What it is not: it does not fetch keys, keep a keyring, or decide whom the user
//! trusts. The caller passes the certificates it knows and says which are confirmed.
//!
//! # Reading order
//!
//! - [`key`]: [`KeyPair`], one v4 certificate per user (GnuPG 2.2 and Thunderbird read
//!   v4, not v6: STACK.md §1.3), made by `key::new_cert` for the app and `sop` alike: a
//!   certification-only Ed25519 primary key, an Ed25519 signing subkey, and two
//!   encryption subkeys, X25519 and ML-KEM-768+X25519 (RFC 9980); it advertises SEIPDv1
//!   and SEIPDv2. [`KeyPair::upgrade`] brings an older key to that profile;
//!   [`KeyPair::renew_if_needed`] extends the expiry ([`key::KEY_VALIDITY`]) inside
//!   [`key::RENEW_WINDOW`]. Secrets stay unencrypted inside the certificate and leave it
//!   only as a wiping [`sealpost_crypto::SecretVec`] ([`KeyPair::to_secret_bytes`]) for
//!   the vault, or encrypted under a generated [`Passphrase`]
//!   ([`KeyPair::export_protected`]).
//! - [`encrypt`](mod@encrypt): writing, for mail and `sop`: post-quantum keys only for a recipient
//!   that has one, SEIPDv2 when every recipient advertises it, the strongest AES all
//!   recipients accept, never compressed; [`encrypt()`] and [`sign_detached`].
//! - [`message`]: **the one decrypt pipeline**, [`decrypt_with`] ([`decrypt`] for the
//!   mail reader's keys), used by the mail reader and `sop` alike and counted by
//!   [`decryptions`]; what a signature check found, and the mail rules that make a
//!   [`SignatureStatus`].
//! - [`verify`]: signatures outside encryption, detached ([`verify_detached`]) and
//!   inline (cleartext-signed), with the same engine for mail and `sop`. `repair.rs`
//!   reads signature packets and certificates as RFC 9580 asks (unknown versions
//!   skipped, malformed unhashed issuer hints dropped).
//! - [`mime`]: **the one message model** ([`OutgoingMail`], [`OpenedMail`]) and every
//!   message Sealpost sends: [`encrypt_mail`] (RFC 3156 PGP/MIME, protected headers,
//!   Subject `...` outside), [`sign_mail`] (RFC 3156 `multipart/signed`, the signed
//!   entity 7-bit and CRLF so it arrives byte for byte, `transfer.rs`), [`plain_mail`].
//!   `open.rs` reads any message: [`open_mail`].
//! - [`html`]: what a person sees of mail HTML; the reader's text and the frame both
//!   leave out what CSS hides.
//! - [`autocrypt`]: the `Autocrypt:` header out and in.
//! - [`quote`]: plain-text reply and forward quotes of the text a person saw; an
//!   encrypted original cannot get a plain reply.
//! - [`sop_support`]: what `sealpost sop` (the Stateless OpenPGP CLI) needs beyond mail:
//!   any key, passwords, session keys, text and cleartext signatures, armor, SOP's
//!   verdicts. No engine of its own: it calls the modules above.
//!
//! # Safety rules (EFAIL, signature spoofing, covert content)
//!
//! - No plaintext without integrity protection: SED packets (no MDC) are refused before
//!   any key is used; a failed MDC/AEAD check fails the whole message; nothing is
//!   returned before end of data; plaintext is capped at [`OpenContext::max_plaintext`]
//!   (decompressed bytes count, so a compression bomb stops there). One pipeline holds
//!   these rules for mail and `sop`.
//! - Unknown is skipped, as RFC 9580 says, never trusted: session-key packets and
//!   signatures of unknown versions are passed over, so a message that also carries a
//!   v6 or post-quantum recipient still opens; a known version that does not parse is
//!   a bad signature.
//! - Only the top of a message is decrypted or verified: the root MIME part, or the
//!   single body of an old inline message (encrypted, or cleartext-signed with nothing
//!   around it). Encrypted or signed parts elsewhere are shown as they are, never
//!   stitched with plain parts.
//! - A signature counts only if it is the only one, covers the whole shown content, is
//!   by a key valid and not revoked *now*, whose certificate binds the one From address
//!   shown (outer and protected); several From headers, several addresses or none are
//!   named in [`OpenedMail::sender_problem`] and never validly signed.
//!   [`SignatureStatus::Verified`] also needs the caller to have confirmed the
//!   certificate. File names and other metadata never change a status.
//! - What is quoted is what was shown: with HTML, [`OpenedMail::text`] is the visible
//!   text of the HTML ([`html::visible_text`]), so hidden text cannot be made to be
//!   replied to, forwarded or signed.
//! - No panic on hostile input. Sequoia 2.4.2 itself panics on some truncated SEIPDv1
//!   packets (an `unwrap` of a short read in its parser); [`decrypt_with`] catches that
//!   and reports [`DecryptFailure::Malformed`]. This relies on panics unwinding, which
//!   is the workspace's setting: do not build Sealpost with `panic = "abort"` until the
//!   upstream bug is fixed. `fuzz/` runs both entry points (`scripts/fuzz.sh`).
//!
//! # Crypto backend
//!
//! Sequoia's `crypto-rust` backend (with `allow-experimental-crypto` and
//! `allow-variable-time-crypto`), chosen once in the workspace manifest, because:
//! - it builds the same on Windows, macOS and Linux with no system library (nettle
//!   needs bindgen/libclang and has no OCB on Debian 12; OpenSSL and CNG differ per OS);
//! - it was the fastest backend for encrypt+sign in STACK.md §1.1 (149 µs per 1 KiB
//!   against 237 µs for OpenSSL and 767 µs for nettle, which reseeds its RNG per call),
//!   and decrypts 10 MiB about as fast as the others (the SHA-1 with collision
//!   detection of the MDC dominates there, not the backend);
//! - its known weakness is RSA secret-key operations (RUSTSEC-2023-0071); Sealpost
//!   generates only Curve25519 keys. An imported RSA key works but is then used by the
//!   variable-time `rsa` crate on the user's own machine.
//!
//! `benches/pgp.rs` measures it again, in one run, against GnuPG 2.2.40, `sq`/`sqop`
//! 0.27 (Sequoia 1.12 on nettle) and `rsop` 0.12 (rPGP) on the same keys and data. On
//! 2026-12-07, on the 2-core reference machine with other builds running (CPU time per
//! operation; the CLI figures are whole processes, start-up included):
//!
//! Issue 15, the same 10 MiB binary file through every reader (decrypt+verify):
//!
//! | file                      | Sealpost in-process | `sealpost sop` | sqop   | gpg   | rsop  |
//! |---------------------------|---------------------|----------------|--------|-------|-------|
//! | SEIPDv1 made by gpg       | 61 ms               | 90 ms          | 96 ms  | 38 ms | 60 ms |
//! | SEIPDv1 made by sqop      | 74 ms               | 90 ms          | 92 ms  | 38 ms | 76 ms |
//! | SEIPDv2 + ML-KEM, Sealpost | 28 ms              | 48 ms          | –      | –     | 68 ms |
//!
//! Targets: SEIPDv2 in-process ≤ 35 ms (28 ms: met; it was 48 ms while signatures
//! hashed with SHA-512, which runs at half SHA-256's hardware speed here); SEIPDv1 whole
//! process ≤ sqop (met, by 2 to 6 ms, which is within this machine's noise: an earlier
//! run before `WipedBytes` had 118 against 114); post-quantum encrypt+sign of 1 KiB
//! ≤ 1 ms (0.57 ms, against 0.42 ms classical). gpg 2.2 and sqop 0.27 read neither
//! SEIPDv2 nor ML-KEM. gpg stays fastest on SEIPDv1: Sequoia's SHA-1 with collision
//! detection for the MDC is the cost (STACK.md §1.1), which SEIPDv2 does not have.
//!
//! Classical keys, Sealpost-made armored SEIPDv1 (the decrypt row runs one ciphertext
//! through all three):
//!
//! | operation      | size    | Sealpost  | gpg      | sq        |
//! |----------------|---------|-----------|----------|-----------|
//! | encrypt+sign   | 1 KiB   | 0.31 ms   | 8.0 ms   | 11.0 ms   |
//! | decrypt+verify | 1 KiB   | 0.19 ms   | 10.0 ms  | 9.5 ms    |
//! | encrypt+sign   | 100 KiB | 1.06 ms   | 9.0 ms   | 14.5 ms   |
//! | decrypt+verify | 100 KiB | 0.90 ms   | 11.0 ms  | 12.5 ms   |
//! | encrypt+sign   | 10 MiB  | 70 ms     | 120 ms   | 274 ms    |
//! | decrypt+verify | 10 MiB  | 70 ms     | 118 ms   | 276 ms    |
//!
//! The 10 MiB rows were 122 and 129 ms before the armor moved out of Sequoia
//! (`armor.rs`: its base64 filter was over half of a decryption). Bulk decrypt+verify of
//! 10,000 × 4 KiB messages: 317 µs per message, 1.69× a floor of one X25519, one Ed25519
//! verification and the AES/SHA work at `openssl speed` rates (196 µs and 1.31× on a
//! quieter machine on 2026-11-23).
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use sealpost_pgp::{EncryptionStatus, KeyPair, Mailbox, OpenContext, OutgoingMail,
//!     SignatureStatus, encrypt_mail, open_mail};
//!
//! let now = SystemTime::now();
//! let alice = KeyPair::generate("Alice", &["alice@example.org"], now)?;
//! let bob = KeyPair::generate("Bob", &["bob@example.org"], now)?;
//! let mail = OutgoingMail {
//!     from: Mailbox::new("Alice", "alice@example.org"),
//!     to: vec![Mailbox::new("Bob", "bob@example.org")],
//!     cc: vec![],
//!     subject: "Secret plans".into(),
//!     text: "Meet at noon.".into(),
//!     html: None,
//!     attachments: vec![],
//!     date: 1_700_000_000,
//!     message_id: "1@example.org".into(),
//!     in_reply_to: None,
//!     autocrypt: None,
//! };
//! let raw = encrypt_mail(&mail, &alice, &[bob.cert()], now)?;
//! assert!(!String::from_utf8_lossy(&raw).contains("Secret plans"));
//!
//! let known = [alice.cert()];
//! let own = [bob];
//! let opened = open_mail(&raw, &OpenContext::new(&own, &known, now))?;
//! assert_eq!(opened.subject.as_deref(), Some("Secret plans"));
//! assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
//! assert!(matches!(opened.signature, SignatureStatus::ValidUnconfirmed { .. }));
//! # Ok::<(), sealpost_pgp::PgpError>(())
//! ```

mod armor;
pub mod autocrypt;
pub mod contact;
pub mod encrypt;
pub mod error;
pub mod html;
pub mod key;
pub mod message;
pub mod mime;
mod open;
pub mod passphrase;
pub mod quote;
mod repair;
pub mod sop_support;
mod transfer;
pub mod verify;
mod wiped;

pub use autocrypt::{AutocryptKey, PreferEncrypt};
pub use contact::contact_cert;
pub use encrypt::{encrypt, sign_detached};
pub use error::{DecryptFailure, PgpError};
pub use key::KeyPair;
pub use message::{
    BadSignature, Decrypted, OpenContext, Secrets, SessionKeyText, SignatureStatus, decrypt,
    decrypt_with, decryptions,
};
pub use mime::{
    Attachment, EncryptionStatus, Mailbox, OpenedMail, OutgoingMail, PLACEHOLDER_SUBJECT,
    SenderProblem, encrypt_mail, plain_mail, sign_mail,
};
pub use open::open_mail;
pub use passphrase::Passphrase;
pub use quote::{Protection, check_reply_protection, forward_quote, reply_quote, reply_quote_html};
/// Re-exported so callers name the same certificate and fingerprint types.
pub use sequoia_openpgp::{Cert, Fingerprint};
pub use verify::verify_detached;
pub use wiped::WipedBytes;

use sequoia_openpgp::policy::StandardPolicy;

/// The one OpenPGP policy used everywhere in this crate: Sequoia's standard policy
/// (rejects SHA-1 data signatures, MD5, weak keys, ...). SED packets are refused by
/// [`message::decrypt`] itself, before the policy is consulted.
pub(crate) static POLICY: StandardPolicy<'static> = StandardPolicy::new();
