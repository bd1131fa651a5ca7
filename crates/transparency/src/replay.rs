//! Replaying entries against signed heads: the full audit (from entry 0) and a client's
//! check of what was appended since its last head (its own addresses among them).
//!
//! A [`Replay`] keeps only the hashes of the complete subtrees of the entries seen so far
//! (at most 64), so an audit of any size runs in constant memory. It starts either empty
//! ([`Replay::new`]) or at a verified head, from the server's subtree hashes of that
//! head's tree ([`Replay::resume`]), which are checked against the head's root first.

use crate::LogError;
use crate::entry::LogEntry;
use crate::head::{LogState, VerifiedHead};
use crate::tree::{Hash, fold, node_hash, root_nodes};

/// Entries replayed so far, as complete-subtree hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    size: u64,
    /// Complete subtrees, largest (leftmost) first.
    frontier: Vec<(u8, Hash)>,
}

impl Replay {
    /// Before the first entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// At `head`, given the hashes of its tree's complete subtrees
    /// ([`crate::tree::root_nodes`] of its size, in that order): refused unless they fold
    /// to the head's root.
    pub fn resume(head: &VerifiedHead, frontier: &[Hash]) -> Result<Self, LogError> {
        let nodes = root_nodes(head.size());
        if nodes.len() != frontier.len() {
            return Err(LogError::ProofLength {
                what: "frontier",
                expected: nodes.len(),
                got: frontier.len(),
            });
        }
        if head.size() > 0 && fold(frontier) != Some(*head.root()) {
            return Err(LogError::FrontierMismatch { size: head.size() });
        }
        Ok(Self {
            size: head.size(),
            frontier: nodes
                .iter()
                .map(|n| n.level)
                .zip(frontier.iter().copied())
                .collect(),
        })
    }

    /// Entries replayed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next entry.
    pub fn push(&mut self, entry: &LogEntry) {
        self.push_leaf(entry.leaf_hash());
    }

    /// Adds the next leaf hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut level = 0u8;
        let mut hash = leaf;
        while let Some((top, left)) = self.frontier.last().copied() {
            if top != level {
                break;
            }
            self.frontier.pop();
            hash = node_hash(&left, &hash);
            level += 1;
        }
        self.frontier.push((level, hash));
        self.size += 1;
    }

    /// The root of the entries replayed.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.frontier.iter().map(|(_, h)| *h).collect();
        fold(&hashes).unwrap_or_else(crate::tree::empty_root)
    }

    /// Checks `head` against the entries replayed: same size and root.
    pub fn check(&self, head: &VerifiedHead) -> Result<(), LogError> {
        if head.size() != self.size {
            return Err(LogError::SizeMismatch {
                replayed: self.size,
                head: head.size(),
            });
        }
        if self.root() != *head.root() {
            return Err(LogError::ReplayMismatch { size: self.size });
        }
        Ok(())
    }

    /// [`Replay::check`], then the state a client keeps from now on: `head`. A replay
    /// resumed at the client's kept head and checked against a newer one proves that the
    /// newer one extends it, as a consistency proof would.
    pub fn finish(&self, head: &VerifiedHead) -> Result<LogState, LogError> {
        self.check(head)?;
        Ok(LogState::first(head.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::LogKey;
    use crate::head::tests::{key, sign};
    use crate::tree::tests::{appended, mth};

    #[test]
    fn a_replay_reaches_every_signed_root_and_resumes_from_a_frontier() {
        let k = key();
        let public = LogKey::from_bytes(&k.verifying_key().to_bytes()).unwrap();
        let entries: Vec<LogEntry> = (0..40)
            .map(|i| LogEntry::publish(&format!("user{i}@example.org"), b"cert", i))
            .collect();
        let leaves: Vec<Hash> = entries.iter().map(LogEntry::leaf_hash).collect();
        let nodes = appended(&leaves);
        let mut replay = Replay::new();
        assert_eq!(replay.root(), crate::tree::empty_root());
        for (i, e) in entries.iter().enumerate() {
            replay.push(e);
            let head = sign(&k, i as u64 + 1, mth(&leaves[..=i]))
                .verify(&public)
                .unwrap();
            replay.check(&head).unwrap();
        }
        // A head that does not match what was replayed.
        let wrong = sign(&k, 40, [3; 32]).verify(&public).unwrap();
        assert!(matches!(
            replay.check(&wrong),
            Err(LogError::ReplayMismatch { .. })
        ));
        let short = sign(&k, 39, mth(&leaves[..39])).verify(&public).unwrap();
        assert!(matches!(
            replay.check(&short),
            Err(LogError::SizeMismatch { .. })
        ));

        // Resume at 23 with the server's subtree hashes, then check 40.
        let at = sign(&k, 23, mth(&leaves[..23])).verify(&public).unwrap();
        let frontier: Vec<Hash> = root_nodes(23).iter().map(|n| nodes[n]).collect();
        let mut resumed = Replay::resume(&at, &frontier).unwrap();
        for e in &entries[23..] {
            resumed.push(e);
        }
        resumed
            .check(&sign(&k, 40, mth(&leaves)).verify(&public).unwrap())
            .unwrap();
        // A frontier that lies, or is cut short, is refused.
        let mut lie = frontier.clone();
        lie[0][0] ^= 1;
        assert!(matches!(
            Replay::resume(&at, &lie),
            Err(LogError::FrontierMismatch { .. })
        ));
        assert!(matches!(
            Replay::resume(&at, &frontier[1..]),
            Err(LogError::ProofLength { .. })
        ));
    }
}
