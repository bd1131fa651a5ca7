//! What one log entry says, and its bytes.
//!
//! An entry is a publication or a removal of the certificate for an address. It names
//! the address and the certificate by hashes only, so the log can be handed to anyone
//! without listing the directory's addresses (a guess of an address can still be checked
//! against it: the address hash is not keyed). Its leaf bytes are fixed-size:
//!
//! ```text
//! "sealpost-log-entry-v1\0" (22) ‖ kind (1: 1 publish, 2 unpublish) ‖ time (8, Unix seconds, big-endian)
//!   ‖ address hash (32) ‖ certificate hash (32; zeros for unpublish)
//! ```

use sha2::{Digest, Sha256};

use crate::LogError;
use crate::tree::{Hash, leaf_hash};

const MAGIC: &[u8; 22] = b"sealpost-log-entry-v1\0";
const ADDRESS_LABEL: &[u8] = b"sealpost-log-address-v1\0";
/// Length of an entry's leaf bytes.
pub const ENTRY_LEN: usize = 22 + 1 + 8 + 32 + 32;

/// What happened to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A certificate was published (or replaced the previous one).
    Publish,
    /// The address's certificate was removed.
    Unpublish,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// Publication or removal.
    pub kind: EntryKind,
    /// When, Unix seconds.
    pub time: u64,
    /// [`address_hash`] of the normalised address.
    pub address_hash: Hash,
    /// [`cert_hash`] of the certificate published; zeros for a removal.
    pub cert_hash: Hash,
}

/// The hash that names an address in the log: SHA-256 of a label and the normalised
/// (trimmed, lower-case) address.
pub fn address_hash(normalised_address: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(ADDRESS_LABEL);
    h.update(normalised_address.as_bytes());
    h.finalize().into()
}

/// The hash that names a certificate in the log: SHA-256 of its binary bytes.
pub fn cert_hash(cert: &[u8]) -> Hash {
    Sha256::digest(cert).into()
}

impl LogEntry {
    /// A publication of `cert` for `normalised_address` at `time`.
    pub fn publish(normalised_address: &str, cert: &[u8], time: u64) -> Self {
        Self {
            kind: EntryKind::Publish,
            time,
            address_hash: address_hash(normalised_address),
            cert_hash: cert_hash(cert),
        }
    }

    /// A removal of `normalised_address`'s certificate at `time`.
    pub fn unpublish(normalised_address: &str, time: u64) -> Self {
        Self {
            kind: EntryKind::Unpublish,
            time,
            address_hash: address_hash(normalised_address),
            cert_hash: [0; 32],
        }
    }

    /// The leaf bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        let kind = match self.kind {
            EntryKind::Publish => 1u8,
            EntryKind::Unpublish => 2u8,
        };
        let parts: [&[u8]; 5] = [
            MAGIC,
            &[kind],
            &self.time.to_be_bytes(),
            &self.address_hash,
            &self.cert_hash,
        ];
        let mut at = 0;
        for part in parts {
            for (d, s) in out.iter_mut().skip(at).zip(part) {
                *d = *s;
            }
            at += part.len();
        }
        out
    }

    /// Parses leaf bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        let bad = |why: &'static str| LogError::MalformedEntry(why);
        if bytes.len() != ENTRY_LEN {
            return Err(bad("an entry has 95 bytes"));
        }
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(bad("an entry starts with sealpost-log-entry-v1"))?;
        let (kind, rest) = rest.split_first().ok_or(bad("no kind"))?;
        let kind = match kind {
            1 => EntryKind::Publish,
            2 => EntryKind::Unpublish,
            _ => return Err(bad("the kind is 1 (publish) or 2 (unpublish)")),
        };
        let (time, rest) = rest.split_at_checked(8).ok_or(bad("no time"))?;
        let (address, cert) = rest.split_at_checked(32).ok_or(bad("no address hash"))?;
        let entry = Self {
            kind,
            time: u64::from_be_bytes(time.try_into().map_err(|_| bad("no time"))?),
            address_hash: address.try_into().map_err(|_| bad("no address hash"))?,
            cert_hash: cert.try_into().map_err(|_| bad("no certificate hash"))?,
        };
        if entry.kind == EntryKind::Unpublish && entry.cert_hash != [0; 32] {
            return Err(bad("a removal names no certificate"));
        }
        Ok(entry)
    }

    /// Its leaf hash in the tree.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }

    /// Whether this entry publishes exactly `cert` for `normalised_address`.
    pub fn publishes(&self, normalised_address: &str, cert: &[u8]) -> bool {
        self.kind == EntryKind::Publish
            && self.address_hash == address_hash(normalised_address)
            && self.cert_hash == cert_hash(cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_bytes_are_refused() {
        let e = LogEntry::publish("bob@example.org", b"cert", 1_800_000_000);
        let bytes = e.encode();
        assert_eq!(LogEntry::decode(&bytes).unwrap(), e);
        assert!(e.publishes("bob@example.org", b"cert"));
        assert!(!e.publishes("bob@example.org", b"other cert"));
        assert!(!e.publishes("eve@example.org", b"cert"));
        let u = LogEntry::unpublish("bob@example.org", 5);
        assert_eq!(LogEntry::decode(&u.encode()).unwrap(), u);
        assert!(!u.publishes("bob@example.org", b"cert"));
        assert!(LogEntry::decode(&bytes[..94]).is_err());
        let mut bad = bytes;
        bad[22] = 3;
        assert!(LogEntry::decode(&bad).is_err());
        let mut bad = u.encode();
        bad[94] = 1;
        assert!(LogEntry::decode(&bad).is_err());
        let mut bad = bytes;
        bad[0] = b'S';
        assert!(LogEntry::decode(&bad).is_err());
        assert_ne!(e.leaf_hash(), u.leaf_hash());
    }
}
