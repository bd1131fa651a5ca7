//! [`WipedBytes`]: a byte buffer wiped when dropped, at memory speed.
//!
//! `zeroize::Zeroizing<Vec<u8>>` wipes a `Vec` one volatile byte store at a time, which
//! for a 10 MiB plaintext costs milliseconds per buffer (`benches/pgp.rs`, whole-process
//! `sealpost sop decrypt`). A byte *slice* is wiped by zeroize's bulk path (a memset
//! the optimiser may not remove), which is what this type does with its contents and its
//! spare capacity.

use std::fmt;
use std::ops::{Deref, DerefMut};

use zeroize::Zeroize;

/// Bytes that are wiped (contents and spare capacity) when dropped. `Debug` prints only
/// the length.
#[derive(Default)]
pub struct WipedBytes(Vec<u8>);

impl WipedBytes {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }
}

impl From<Vec<u8>> for WipedBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Deref for WipedBytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for WipedBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for WipedBytes {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
    }
}

impl PartialEq for WipedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for WipedBytes {}

impl PartialEq<[u8]> for WipedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for WipedBytes {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Vec<u8>> for WipedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.0 == other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for WipedBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for WipedBytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for WipedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WipedBytes({} bytes, redacted)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wipe_clears_the_contents_and_debug_shows_no_bytes() {
        let mut b = WipedBytes::with_capacity(64);
        b.extend_from_slice(b"secret");
        assert_eq!(b, b"secret");
        assert_eq!(format!("{b:?}"), "WipedBytes(6 bytes, redacted)");
        // What `drop` does, observed while the buffer is still alive.
        b.as_mut_slice().zeroize();
        b.spare_capacity_mut().zeroize();
        assert_eq!(b, [0u8; 6]);
    }
}
