//! The log over `sealpost-proto`'s wire types: parsing, and the checks a client makes
//! on a directory answer.

use sealpost_proto as proto;
use sealpost_proto::Bytes;

use crate::entry::LogEntry;
use crate::head::{LogKey, LogState, SignedHead, VerifiedHead};
use crate::proof::verify_inclusion;
use crate::tree::Hash;
use crate::{LogError, Replay};

/// The log's key from `GET /v1/directory/log`.
pub fn log_key(info: &proto::LogInfo) -> Result<LogKey, LogError> {
    if info.algorithm != "ed25519" {
        return Err(LogError::BadKey);
    }
    let bytes: [u8; 32] = info
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| LogError::BadKey)?;
    LogKey::from_bytes(&bytes)
}

/// A wire head, parsed (not yet verified).
pub fn head(wire: &proto::SignedTreeHead) -> Result<SignedHead, LogError> {
    Ok(SignedHead {
        size: wire.size,
        time: wire.time,
        root: hash(&wire.root, "root")?,
        signature: wire
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| LogError::BadSignature { size: wire.size })?,
    })
}

/// A wire head, parsed and verified with `key`.
pub fn verified_head(wire: &proto::SignedTreeHead, key: &LogKey) -> Result<VerifiedHead, LogError> {
    head(wire)?.verify(key)
}

/// A head for the wire.
pub fn head_to_wire(head: &SignedHead) -> proto::SignedTreeHead {
    proto::SignedTreeHead {
        size: head.size,
        time: head.time,
        root: Bytes(head.root.to_vec()),
        signature: Bytes(head.signature.to_vec()),
    }
}

/// Hashes for the wire.
pub fn hashes_to_wire(hashes: &[Hash]) -> Vec<Bytes> {
    hashes.iter().map(|h| Bytes(h.to_vec())).collect()
}

fn hash(b: &Bytes, what: &'static str) -> Result<Hash, LogError> {
    b.as_slice().try_into().map_err(|_| {
        LogError::MalformedEntry(match what {
            "root" => "a root is 32 bytes",
            _ => "a proof hash is 32 bytes",
        })
    })
}

/// Wire hashes, each 32 bytes.
pub fn hashes(list: &[Bytes]) -> Result<Vec<Hash>, LogError> {
    list.iter().map(|b| hash(b, "proof")).collect()
}

/// A directory answer whose key is proven to be in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLookup {
    /// The entry that publishes the key.
    pub entry: LogEntry,
    /// Its index.
    pub index: u64,
    /// What the client keeps from now on (replacing its old state): the answer's head.
    pub state: LogState,
}

/// Checks a directory answer (`GET /v1/directory/keys/{address}?known=N`, or the answer
/// to a confirmation): the head is signed by `key`, the entry publishes exactly this
/// certificate for this address, the inclusion proof leads to the head's root, and — if
/// the client has a `state` (it sent `known=state.head().size()`) — the head extends the
/// one it kept (else [`LogError::RolledBack`] or [`LogError::Fork`]). On success, store
/// [`VerifiedLookup::state`]; on any error, store nothing and refuse the key.
pub fn verify_lookup(
    answer: &proto::DirectoryEntry,
    key: &LogKey,
    state: Option<&LogState>,
) -> Result<VerifiedLookup, LogError> {
    let proof = &answer.proof;
    let head = verified_head(&proof.head, key)?;
    let entry = LogEntry::decode(proof.entry.as_slice())?;
    if !entry.publishes(answer.address.as_str(), answer.cert.as_slice()) {
        return Err(LogError::EntryMismatch);
    }
    verify_inclusion(
        &entry.leaf_hash(),
        proof.index,
        head.size(),
        &hashes(&proof.inclusion)?,
        head.root(),
    )?;
    let next = match state {
        None => LogState::first(head),
        Some(known) => {
            let mut next = known.clone();
            let consistency = match &proof.consistency {
                Some(c) if c.from == known.head().size() && c.to == head.size() => {
                    hashes(&c.proof)?
                }
                _ => Vec::new(),
            };
            next.advance(head, &consistency)?;
            next
        }
    };
    Ok(VerifiedLookup {
        entry,
        index: proof.index,
        state: next,
    })
}

/// Starts a replay from a `GET /v1/directory/log/entries?start=N` answer: at the client's
/// kept head (`N` = its size; the frontier is checked against it), or from the start for
/// a full audit (`N` = 0, `state` none). Then push each page's entries
/// ([`push_entries`]) and check the last page's head ([`Replay::check`]).
pub fn resume_replay(
    page: &proto::LogEntries,
    state: Option<&LogState>,
) -> Result<Replay, LogError> {
    match state {
        Some(known) if page.start == known.head().size() => {
            Replay::resume(known.head(), &hashes(&page.frontier)?)
        }
        None if page.start == 0 => Ok(Replay::new()),
        _ => Err(LogError::SizeMismatch {
            replayed: state.map_or(0, |s| s.head().size()),
            head: page.start,
        }),
    }
}

/// Pushes a page's entries onto a replay; the entries, parsed, for the caller to look at
/// (its own addresses). A page that does not start where the replay is is refused.
pub fn push_entries(
    replay: &mut Replay,
    page: &proto::LogEntries,
) -> Result<Vec<LogEntry>, LogError> {
    if page.start != replay.size() {
        return Err(LogError::SizeMismatch {
            replayed: replay.size(),
            head: page.start,
        });
    }
    let mut out = Vec::with_capacity(page.entries.len());
    for bytes in &page.entries {
        let entry = LogEntry::decode(bytes.as_slice())?;
        replay.push(&entry);
        out.push(entry);
    }
    Ok(out)
}
