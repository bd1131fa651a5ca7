//! The key directory's transparency log on the wire. `sealpost-transparency` checks
//! these (its `wire` module); hashes are 32 bytes, signatures 64, entries 95, all as
//! [`Bytes`].

use serde::{Deserialize, Serialize};

use crate::Bytes;

/// Most entries one `GET /v1/directory/log/entries` returns.
pub const MAX_ENTRIES_PER_PAGE: u64 = 1000;
/// Most heads one `GET /v1/directory/log/heads` returns.
pub const MAX_HEADS_PER_PAGE: u64 = 1000;

/// A signed tree head: "the log had `size` entries with root `root` at `time`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    /// Entries in the log.
    pub size: u64,
    /// When it was signed, Unix seconds.
    pub time: u64,
    /// The Merkle root (32 bytes).
    pub root: Bytes,
    /// Ed25519 by the log's key (64 bytes).
    pub signature: Bytes,
}

/// `GET /v1/directory/log`: the log's public key and its current head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogInfo {
    /// `"ed25519"`.
    pub algorithm: String,
    /// The log's public key (32 bytes); clients pin it the first time.
    pub public_key: Bytes,
    /// The current head.
    pub head: SignedTreeHead,
}

/// A consistency proof between two sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof's hashes (RFC 9162 §2.1.4).
    pub proof: Vec<Bytes>,
}

/// What proves a directory answer: its log entry, the inclusion proof against a signed
/// head, and (when the client sent `?known=N`) the consistency proof from size `N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyProof {
    /// The entry's index in the log.
    pub index: u64,
    /// The entry's bytes (95).
    pub entry: Bytes,
    /// The head the proof is against.
    pub head: SignedTreeHead,
    /// The inclusion proof's hashes (RFC 9162 §2.1.3).
    pub inclusion: Vec<Bytes>,
    /// From the size the client knows to `head`, if it said which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// `GET /v1/directory/log/entries?start=N`: entries from `start` on (at most
/// [`MAX_ENTRIES_PER_PAGE`]), the hashes of the complete subtrees of the first `start`
/// entries (to resume a replay at a head of that size), and the current head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntries {
    /// The index of the first entry.
    pub start: u64,
    /// The complete-subtree hashes of entries `0..start`, largest first.
    pub frontier: Vec<Bytes>,
    /// The entries' bytes, in order.
    pub entries: Vec<Bytes>,
    /// The current head.
    pub head: SignedTreeHead,
}

/// `GET /v1/directory/log/heads?after=N`: the signed heads of sizes above `N`, in order
/// (at most [`MAX_HEADS_PER_PAGE`]), for auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogHeads {
    /// In increasing size.
    pub heads: Vec<SignedTreeHead>,
}
