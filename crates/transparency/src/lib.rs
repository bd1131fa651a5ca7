//! The key directory's transparency log, without I/O: what the sync server uses to build
//! its Merkle tree and proofs, and what a client (or anyone auditing the server) uses to
//! check them.
//!
//! Every publication and removal of a key in the directory is an entry ([`LogEntry`]) in
//! one append-only log, a Merkle tree in the style of Certificate Transparency (RFC 9162
//! §2.1: SHA-256, `0x00`/`0x01` domain separation). The server signs tree heads
//! ([`SignedHead`]) with an Ed25519 key held in its HSM. A look-up answer carries the
//! entry, its inclusion proof and a signed head, and — when the client says which head it
//! knows — a consistency proof from that head. So a client can check that the key it was
//! given is the one the log says, and that the log only grew since it last looked;
//! comparing heads with its other devices and its correspondents ([`compare_heads`])
//! shows a server that keeps two histories (a fork), which is how a key shown to one user
//! only would be caught.
//!
//! # Modules, in reading order
//!
//! - [`tree`]: hashing, complete subtrees, which hashes each proof needs, appends.
//! - [`proof`]: checking inclusion and consistency proofs (RFC 9162 §2.1.3.2, §2.1.4.2).
//! - [`entry`]: the bytes of an entry (addresses and certificates by hash).
//! - [`head`]: signed heads, [`VerifiedHead`] (only from a checked signature), what a
//!   client keeps ([`LogState`]: one head), rollback and fork detection.
//! - [`replay`]: replaying entries against heads: the full audit and a client's check of
//!   its own addresses in what was appended since its last head.
//! - [`wire`]: the same over `sealpost-proto`'s wire types, and [`wire::verify_lookup`],
//!   the one call a client makes for a directory answer.
//!
//! # What it does not prove
//!
//! An inclusion proof shows that an entry is in the log, not that it is the latest for
//! its address: a server could hand out a genuine but replaced key. The owner's
//! monitoring (replaying the entries since its last head) and the client's own rule — a
//! key that differs from the one it saw first is flagged, never swapped silently — are
//! what catch that. Address hashes are not keyed: someone who guesses an address can find
//! its entries.
//!
//! ```
//! use sealpost_transparency::{LogEntry, Replay, tree};
//!
//! let mut replay = Replay::new();
//! let entry = LogEntry::publish("bob@example.org", b"bob's certificate", 1_800_000_000);
//! replay.push(&entry);
//! assert_eq!(replay.root(), tree::leaf_hash(&entry.encode()));
//! ```

pub mod entry;
pub mod head;
pub mod proof;
pub mod replay;
pub mod tree;
pub mod wire;

pub use entry::{EntryKind, LogEntry, address_hash, cert_hash};
pub use head::{Advanced, Fork, LogKey, LogState, SignedHead, VerifiedHead, compare_heads};
pub use proof::{verify_consistency, verify_inclusion};
pub use replay::Replay;
pub use tree::Hash;

/// Why a proof, head or entry is refused. Every message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A proof has the wrong number of hashes (cut short or padded).
    #[error("the {what} proof has {got} hashes where {expected} are needed")]
    ProofLength {
        /// Which proof.
        what: &'static str,
        /// How many it should have.
        expected: usize,
        /// How many it has.
        got: usize,
    },
    /// An inclusion proof does not lead from the entry to the signed root.
    #[error(
        "the inclusion proof of entry {index} does not lead to the root of the signed {size}-entry head (wrong entry or altered proof)"
    )]
    InclusionMismatch {
        /// The entry's index.
        index: u64,
        /// The head's size.
        size: u64,
    },
    /// The entry index is not in the tree.
    #[error("entry {index} is not in a log of {size} entries")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The size.
        size: u64,
    },
    /// A consistency proof does not join the two roots.
    #[error("the consistency proof from {old} to {new} entries does not join the two roots")]
    ConsistencyMismatch {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// A head older than the one already seen.
    #[error("the log was rolled back: a head of {offered} entries after one of {known}")]
    RolledBack {
        /// The size seen before.
        known: u64,
        /// The size offered now.
        offered: u64,
    },
    /// Two signed heads that cannot both be true: the server keeps two histories.
    #[error("the directory's log forked: heads of {} and {} entries cannot both be true", .0.a.size, .0.b.size)]
    Fork(Box<head::Fork>),
    /// A head's signature does not verify with the log's key.
    #[error("the signature on the {size}-entry tree head is not the log's")]
    BadSignature {
        /// The head's size.
        size: u64,
    },
    /// The log's public key is not a valid Ed25519 key.
    #[error("the log's public key is not a valid Ed25519 key")]
    BadKey,
    /// The subtree hashes given for a head do not fold to its root.
    #[error("the subtree hashes given for the {size}-entry head do not make its root")]
    FrontierMismatch {
        /// The head's size.
        size: u64,
    },
    /// A replay reached another number of entries than the head has.
    #[error("replayed {replayed} entries, but the head has {head}")]
    SizeMismatch {
        /// Entries replayed.
        replayed: u64,
        /// The head's size.
        head: u64,
    },
    /// The replayed entries do not make the head's root.
    #[error("the {size} entries replayed do not make the signed root: the log was altered")]
    ReplayMismatch {
        /// The size.
        size: u64,
    },
    /// An entry's bytes or fields are malformed.
    #[error("malformed log entry: {0}")]
    MalformedEntry(&'static str),
    /// The entry does not publish the certificate that came with it for the address.
    #[error("the log entry does not publish this certificate for this address")]
    EntryMismatch,
}
