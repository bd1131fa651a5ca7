//! Signed tree heads, what a client keeps, and how two heads are compared.
//!
//! A head says "the log had `size` entries with root `root` at `time`", signed with the
//! log's Ed25519 key (kept in the server's HSM). The signed bytes:
//!
//! ```text
//! "sealpost-log-head-v1\0" (21) ‖ size (8, big-endian) ‖ time (8, Unix seconds, big-endian) ‖ root (32)
//! ```
//!
//! [`SignedHead::verify`] is the only way to a [`VerifiedHead`]; everything that trusts a
//! head takes a `VerifiedHead`, so an unchecked signature cannot be used by mistake.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::LogError;
use crate::proof::verify_consistency;
use crate::tree::Hash;

const MAGIC: &[u8; 21] = b"sealpost-log-head-v1\0";

/// A tree head as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedHead {
    /// Entries in the log.
    pub size: u64,
    /// When the head was signed, Unix seconds.
    pub time: u64,
    /// The Merkle root of the first `size` entries.
    pub root: Hash,
    /// Ed25519 over [`SignedHead::signed_bytes`].
    pub signature: [u8; 64],
}

/// A head whose signature was checked against the log's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifiedHead(SignedHead);

/// The log's public key (Ed25519), as clients pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey(VerifyingKey);

impl LogKey {
    /// From the 32 bytes the server publishes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, LogError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| LogError::BadKey)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl SignedHead {
    /// The bytes that are signed.
    pub fn signed_bytes(size: u64, time: u64, root: &Hash) -> Vec<u8> {
        let mut m = Vec::with_capacity(MAGIC.len() + 48);
        m.extend_from_slice(MAGIC);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&time.to_be_bytes());
        m.extend_from_slice(root);
        m
    }

    /// Checks the signature (strictly: no malleable or small-order signatures).
    pub fn verify(&self, key: &LogKey) -> Result<VerifiedHead, LogError> {
        let message = Self::signed_bytes(self.size, self.time, &self.root);
        key.0
            .verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| LogError::BadSignature { size: self.size })?;
        Ok(VerifiedHead(self.clone()))
    }
}

impl VerifiedHead {
    /// The head.
    pub fn head(&self) -> &SignedHead {
        &self.0
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// The root.
    pub fn root(&self) -> &Hash {
        &self.0.root
    }

    /// Checks that `later` extends this head, with a consistency proof from this size to
    /// its size. A smaller later head is [`LogError::RolledBack`]; one that cannot be an
    /// extension (same size and another root, or a proof that fails) is
    /// [`LogError::Fork`], with both heads as evidence: the log signed two histories.
    pub fn check_extended_by(&self, later: &VerifiedHead, proof: &[Hash]) -> Result<(), LogError> {
        if later.size() < self.size() {
            return Err(LogError::RolledBack {
                known: self.size(),
                offered: later.size(),
            });
        }
        match verify_consistency(self.size(), self.root(), later.size(), later.root(), proof) {
            Ok(()) => Ok(()),
            Err(LogError::ProofLength {
                what,
                expected,
                got,
            }) => Err(LogError::ProofLength {
                what,
                expected,
                got,
            }),
            Err(_) => Err(LogError::Fork(Box::new(Fork {
                a: self.0.clone(),
                b: later.0.clone(),
            }))),
        }
    }
}

/// Two signed heads that cannot both be true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// One head.
    pub a: SignedHead,
    /// The other.
    pub b: SignedHead,
}

/// Compares two verified heads, from two devices or from a correspondent's mail
/// (gossip). `proof` is a consistency proof from the smaller to the larger, from the
/// server; none is needed for equal sizes. A fork is [`LogError::Fork`].
pub fn compare_heads(a: &VerifiedHead, b: &VerifiedHead, proof: &[Hash]) -> Result<(), LogError> {
    let (small, large) = if a.size() <= b.size() { (a, b) } else { (b, a) };
    small.check_extended_by(large, proof)
}

/// What a client keeps of the log: the last head it verified. Constant size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    head: VerifiedHead,
}

/// What [`LogState::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The head is the one already kept.
    Unchanged,
    /// The newer head is now kept.
    Moved {
        /// The size before.
        from: u64,
        /// The size now.
        to: u64,
    },
}

impl LogState {
    /// The first head a client sees (trust on first use, like the log key).
    pub fn first(head: VerifiedHead) -> Self {
        Self { head }
    }

    /// The head kept.
    pub fn head(&self) -> &VerifiedHead {
        &self.head
    }

    /// Moves to `new` if the consistency proof shows it extends the kept head; a rolled
    /// back or forked head is refused and nothing changes.
    pub fn advance(&mut self, new: VerifiedHead, proof: &[Hash]) -> Result<Advanced, LogError> {
        self.head.check_extended_by(&new, proof)?;
        if new.size() == self.head.size() {
            return Ok(Advanced::Unchanged);
        }
        let from = self.head.size();
        let to = new.size();
        self.head = new;
        Ok(Advanced::Moved { from, to })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::tree::tests::{leaves, mth, subproof};

    pub(crate) fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    pub(crate) fn sign(key: &SigningKey, size: u64, root: Hash) -> SignedHead {
        let signature = key
            .sign(&SignedHead::signed_bytes(size, 1000 + size, &root))
            .to_bytes();
        SignedHead {
            size,
            time: 1000 + size,
            root,
            signature,
        }
    }

    #[test]
    fn heads_verify_only_with_their_key_and_bytes() {
        let k = key();
        let public = LogKey::from_bytes(&k.verifying_key().to_bytes()).unwrap();
        let head = sign(&k, 3, [1; 32]);
        head.verify(&public).unwrap();
        let other =
            LogKey::from_bytes(&SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes())
                .unwrap();
        assert!(matches!(
            head.verify(&other),
            Err(LogError::BadSignature { size: 3 })
        ));
        for change in [
            SignedHead {
                size: 4,
                ..head.clone()
            },
            SignedHead {
                time: 1,
                ..head.clone()
            },
            SignedHead {
                root: [2; 32],
                ..head.clone()
            },
        ] {
            assert!(change.verify(&public).is_err());
        }
        let mut bad = head.clone();
        bad.signature[10] ^= 1;
        assert!(bad.verify(&public).is_err());
    }

    #[test]
    fn a_client_moves_forward_only_and_sees_forks() {
        let k = key();
        let public = LogKey::from_bytes(&k.verifying_key().to_bytes()).unwrap();
        let all = leaves(20);
        let head = |n: usize| sign(&k, n as u64, mth(&all[..n])).verify(&public).unwrap();
        let mut state = LogState::first(head(5));
        assert_eq!(state.advance(head(5), &[]).unwrap(), Advanced::Unchanged);
        assert_eq!(
            state
                .advance(head(12), &subproof(5, &all[..12], true))
                .unwrap(),
            Advanced::Moved { from: 5, to: 12 }
        );
        // An older head, genuinely signed: a rollback.
        assert!(matches!(
            state.advance(head(5), &[]),
            Err(LogError::RolledBack {
                known: 12,
                offered: 5
            })
        ));
        // Another history of the same size, signed by the same key: a fork.
        let mut other = all[..12].to_vec();
        other[3] = [0xEE; 32];
        let forked = sign(&k, 12, mth(&other)).verify(&public).unwrap();
        assert!(matches!(
            state.advance(forked.clone(), &[]),
            Err(LogError::Fork(_))
        ));
        assert!(matches!(
            compare_heads(&head(12), &forked, &[]),
            Err(LogError::Fork(_))
        ));
        // A longer forked history: no proof can join them.
        let mut longer = other.clone();
        longer.extend_from_slice(&all[12..16]);
        let forked16 = sign(&k, 16, mth(&longer)).verify(&public).unwrap();
        let proof = subproof(12, &longer, true);
        assert!(matches!(
            compare_heads(&head(12), &forked16, &proof),
            Err(LogError::Fork(_))
        ));
        assert!(matches!(
            state.advance(forked16, &proof),
            Err(LogError::Fork(_))
        ));
        assert_eq!(state.head().size(), 12, "nothing changed");
        compare_heads(&head(16), &head(12), &subproof(12, &all[..16], true)).unwrap();
    }
}
