//! Types for secret bytes: wiped on drop, redacted when printed, compared in constant time.
//!
//! Nothing here can print its contents. Code that needs the bytes calls `expose()`, which
//! makes each use of a secret visible in review.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-size secret, such as a key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Takes ownership of `bytes`. The caller's copy, if any, is its own to wipe.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Fresh bytes from the operating system's RNG.
    pub fn random() -> Result<Self, crate::CryptoError> {
        let mut s = Self([0u8; N]);
        crate::os_random(&mut s.0)?;
        Ok(s)
    }

    /// Copies `bytes` if it has exactly `N` bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut s = Self([0u8; N]);
        if bytes.len() != N {
            return None;
        }
        s.0.copy_from_slice(bytes);
        Some(s)
    }

    /// The secret bytes. Every call site is a place a secret is used.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// Mutable access for filling in place (by a KDF, say) without a stack copy.
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>([redacted])")
    }
}

impl<const N: usize> PartialEq for SecretBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for SecretBytes<N> {}

/// A secret of any length, such as a stored mail password or an unwrapped blob.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretVec(Vec<u8>);

impl SecretVec {
    /// Takes ownership of `bytes`; they are wiped when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretVec {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SecretVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretVec([redacted; {} bytes])", self.0.len())
    }
}

impl PartialEq for SecretVec {
    fn eq(&self, other: &Self) -> bool {
        // Length is not secret; `ct_eq` on slices of different length is false anyway.
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretVec {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = SecretBytes::new([0xAB; 4]);
        let v = SecretVec::new(b"hunter2".to_vec());
        let printed = format!("{s:?} {v:?}");
        assert!(!printed.contains("171") && !printed.contains("ab") && !printed.contains("AB"));
        assert!(!printed.contains("hunter2") && !printed.contains("104"));
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(SecretBytes::new([1u8; 8]), SecretBytes::new([1u8; 8]));
        assert_ne!(SecretBytes::new([1u8; 8]), SecretBytes::new([2u8; 8]));
        assert_eq!(SecretVec::new(vec![1, 2]), SecretVec::new(vec![1, 2]));
        assert_ne!(SecretVec::new(vec![1, 2]), SecretVec::new(vec![1, 2, 3]));
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(SecretBytes::<4>::from_slice(&[1, 2, 3]).is_none());
        assert!(SecretBytes::<4>::from_slice(&[1, 2, 3, 4]).is_some());
    }

    #[test]
    fn random_is_not_constant() {
        let a = SecretBytes::<32>::random().unwrap();
        let b = SecretBytes::<32>::random().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn zeroize_wipes() {
        let mut s = SecretBytes::new([7u8; 16]);
        s.zeroize();
        assert_eq!(s.expose(), &[0u8; 16]);
    }
}
