//! Checking inclusion and consistency proofs: RFC 9162 §2.1.3.2 and §2.1.4.2, step by
//! step. A proof of the wrong length is refused before any hashing, with the length it
//! should have had.

use crate::LogError;
use crate::tree::{Hash, consistency_ranges, inclusion_ranges, node_hash};

/// Checks that `leaf` is leaf number `index` of the tree of `size` leaves whose root is
/// `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), LogError> {
    if index >= size {
        return Err(LogError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_ranges(index, size).len();
    if proof.len() != expected {
        return Err(LogError::ProofLength {
            what: "inclusion",
            expected,
            got: proof.len(),
        });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(LogError::InclusionMismatch { index, size });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && r == *root {
        Ok(())
    } else {
        Err(LogError::InclusionMismatch { index, size })
    }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree
/// of `new_size` leaves with root `new_root`. Equal sizes need equal roots and an empty
/// proof; an empty old tree is a prefix of anything.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), LogError> {
    if old_size > new_size {
        return Err(LogError::RolledBack {
            known: new_size,
            offered: old_size,
        });
    }
    let expected = consistency_ranges(old_size, new_size).len();
    if proof.len() != expected {
        return Err(LogError::ProofLength {
            what: "consistency",
            expected,
            got: proof.len(),
        });
    }
    let mismatch = || LogError::ConsistencyMismatch {
        old: old_size,
        new: new_size,
    };
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(mismatch())
        };
    }
    if old_size == 0 {
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(mismatch());
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(mismatch());
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if fr == *old_root && sr == *new_root && snode == 0 {
        Ok(())
    } else {
        Err(mismatch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{leaves, mth, path, subproof};

    #[test]
    fn every_proof_of_small_trees_verifies_and_every_change_is_refused() {
        let all = leaves(33);
        for size in 1..=all.len() {
            let tree = &all[..size];
            let root = mth(tree);
            for m in 0..size {
                let p = path(m, tree);
                verify_inclusion(&tree[m], m as u64, size as u64, &p, &root).unwrap();
                // The wrong leaf, index, root, a flipped bit, a cut or padded proof.
                let other = tree[(m + 1) % size];
                if size > 1 {
                    assert!(verify_inclusion(&other, m as u64, size as u64, &p, &root).is_err());
                }
                assert!(verify_inclusion(&tree[m], m as u64, size as u64, &p, &[7; 32]).is_err());
                for i in 0..p.len() {
                    let mut bad = p.clone();
                    bad[i][0] ^= 1;
                    assert!(
                        verify_inclusion(&tree[m], m as u64, size as u64, &bad, &root).is_err()
                    );
                }
                if !p.is_empty() {
                    let cut = &p[..p.len() - 1];
                    assert!(matches!(
                        verify_inclusion(&tree[m], m as u64, size as u64, cut, &root),
                        Err(LogError::ProofLength { .. })
                    ));
                }
                let mut long = p.clone();
                long.push([0; 32]);
                assert!(verify_inclusion(&tree[m], m as u64, size as u64, &long, &root).is_err());
            }
            assert!(matches!(
                verify_inclusion(&tree[0], size as u64, size as u64, &[], &root),
                Err(LogError::IndexOutOfRange { .. })
            ));
            for old in 1..=size {
                let old_root = mth(&all[..old]);
                let p = subproof(old, tree, true);
                verify_consistency(old as u64, &old_root, size as u64, &root, &p).unwrap();
                for i in 0..p.len() {
                    let mut bad = p.clone();
                    bad[i][31] ^= 0x80;
                    assert!(
                        verify_consistency(old as u64, &old_root, size as u64, &root, &bad)
                            .is_err()
                    );
                }
                if old < size {
                    assert!(
                        verify_consistency(old as u64, &[9; 32], size as u64, &root, &p).is_err()
                    );
                    assert!(
                        verify_consistency(old as u64, &old_root, size as u64, &[9; 32], &p)
                            .is_err()
                    );
                    assert!(matches!(
                        verify_consistency(old as u64, &old_root, size as u64, &root, &p[1..]),
                        Err(LogError::ProofLength { .. })
                    ));
                }
            }
        }
        let r = mth(&all[..4]);
        assert!(matches!(
            verify_consistency(5, &r, 4, &r, &[]),
            Err(LogError::RolledBack { .. })
        ));
    }
}
