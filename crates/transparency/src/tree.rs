//! The Merkle tree of RFC 9162 §2.1 and what a server needs to build proofs from
//! stored subtree hashes.
//!
//! Hashes: a leaf is `SHA-256(0x00 ‖ leaf)`, an interior node `SHA-256(0x01 ‖ left ‖
//! right)`, the empty tree `SHA-256()`. A tree of `n` leaves splits at `k`, the largest
//! power of two below `n`.
//!
//! A server keeps only **complete subtrees** ([`NodeId`]: `2^level` leaves starting at
//! `index · 2^level`), which never change once their last leaf is in: an append writes
//! the leaf's node and every subtree it completes ([`append_plan`], [`appended_nodes`]),
//! and is insert-only, which is what lets several processes share one log. Every hash a
//! proof needs is a range of leaves that splits into complete subtrees
//! ([`range_nodes`]); [`inclusion_ranges`] and [`consistency_ranges`] say which ranges.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A complete subtree: the `2^level` leaves from `index · 2^level` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height: 0 is a leaf.
    pub level: u8,
    /// Position among the subtrees of this height.
    pub index: u64,
}

impl NodeId {
    /// The first leaf it covers.
    pub fn start(&self) -> u64 {
        self.index
            .checked_shl(u32::from(self.level))
            .unwrap_or(u64::MAX)
    }

    /// How many leaves it covers.
    pub fn width(&self) -> u64 {
        1u64.checked_shl(u32::from(self.level)).unwrap_or(u64::MAX)
    }
}

/// The complete subtrees that make up the leaves `[start, end)`, left to right: each time
/// the largest one aligned at `start` that fits. For the ranges proofs use (`start`
/// aligned to a power of two at least `end - start`, or `start = 0`) this is exactly
/// RFC 9162's split, so [`fold`] of their hashes is `MTH(D[start:end])`.
pub fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut at = start;
    while at < end {
        let left = end - at;
        // The largest level with at aligned to it and the subtree inside the range.
        let align = if at == 0 { 63 } else { at.trailing_zeros() };
        let fit = 63 - left.leading_zeros();
        let level = align.min(fit);
        let width = 1u64 << level;
        nodes.push(NodeId {
            level: u8::try_from(level).unwrap_or(63),
            index: at >> level,
        });
        at += width;
    }
    nodes
}

/// The hash of a range from the hashes of its [`range_nodes`], folded right to left:
/// `H(a, H(b, c))`. `None` for no nodes.
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The root of a tree of `size` leaves is [`fold`] of these nodes' hashes.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    range_nodes(0, size)
}

/// The largest power of two below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges whose hashes form the inclusion proof of leaf `index` in a tree of
/// `size` leaves, in RFC 9162 order (nearest the leaf first). Empty if `index >= size`
/// or the tree has one leaf.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if index >= size {
        return out;
    }
    // Walk down from the root; the path is read bottom-up, so reverse at the end.
    let (mut lo, mut hi, m) = (0u64, size, index);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The leaf ranges whose hashes form the consistency proof from a tree of `old` leaves
/// to one of `new` leaves (RFC 9162 §2.1.4.1, in its order). Empty if `old == 0`,
/// `old >= new`.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if old == 0 || old >= new {
        return out;
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: each level adds one hash after the deeper
    // ones, so collect top-down and reverse.
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    out
}

/// The subtree hashes a server must read before it appends leaf number `size` (the
/// left siblings of the subtrees the new leaf completes), bottom-up.
pub fn append_plan(size: u64) -> Vec<NodeId> {
    let mut needed = Vec::new();
    let mut index = size;
    let mut level = 0u8;
    while index & 1 == 1 {
        needed.push(NodeId {
            level,
            index: index - 1,
        });
        index >>= 1;
        level += 1;
    }
    needed
}

/// The subtree hashes to store when leaf number `size` with hash `leaf` is appended,
/// given the hashes of [`append_plan`]`(size)` in its order: the leaf's node and every
/// subtree it completes. `None` if `siblings` has the wrong length.
pub fn appended_nodes(size: u64, leaf: Hash, siblings: &[Hash]) -> Option<Vec<(NodeId, Hash)>> {
    let plan = append_plan(size);
    if plan.len() != siblings.len() {
        return None;
    }
    let mut out = Vec::with_capacity(plan.len() + 1);
    let mut node = NodeId {
        level: 0,
        index: size,
    };
    let mut hash = leaf;
    out.push((node, hash));
    for left in siblings {
        hash = node_hash(left, &hash);
        node = NodeId {
            level: node.level + 1,
            index: node.index >> 1,
        };
        out.push((node, hash));
    }
    Some(out)
}

/// Every subtree node a set of ranges needs, deduplicated and sorted (one query).
pub fn nodes_for(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = ranges
        .iter()
        .flat_map(|&(a, b)| range_nodes(a, b))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The hashes of `ranges` from a lookup of node hashes; `None` if one is missing.
pub fn hash_ranges(
    ranges: &[(u64, u64)],
    node: impl Fn(&NodeId) -> Option<Hash>,
) -> Option<Vec<Hash>> {
    ranges
        .iter()
        .map(|&(a, b)| {
            let hashes: Option<Vec<Hash>> = range_nodes(a, b).iter().map(&node).collect();
            fold(&hashes?)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// MTH of RFC 9162, recursively over leaf hashes.
    pub(crate) fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// PATH of RFC 9162 §2.1.3.1, literally.
    pub(crate) fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split(n as u64) as usize;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// SUBPROOF of RFC 9162 §2.1.4.1, literally.
    pub(crate) fn subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole { vec![] } else { vec![mth(leaves)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = subproof(m, &leaves[..k], whole);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    pub(crate) fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    /// Every complete subtree hash of a tree, built only by appends.
    pub(crate) fn appended(leaves: &[Hash]) -> std::collections::HashMap<NodeId, Hash> {
        let mut nodes = std::collections::HashMap::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let plan = append_plan(i as u64);
            let siblings: Vec<Hash> = plan.iter().map(|id| nodes[id]).collect();
            for (id, h) in appended_nodes(i as u64, *leaf, &siblings).unwrap() {
                assert!(nodes.insert(id, h).is_none(), "{id:?} written twice");
            }
        }
        nodes
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The eight leaves of the RFC 6962 test data used by Certificate Transparency's
    /// implementations, and their roots for every size.
    #[test]
    fn roots_match_the_certificate_transparency_test_vectors() {
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let nodes = appended(&leaves);
        for (n, root) in roots.iter().enumerate() {
            let size = n as u64 + 1;
            assert_eq!(hex(&mth(&leaves[..=n])), *root, "MTH of {size}");
            let from_nodes: Vec<Hash> = root_nodes(size).iter().map(|id| nodes[id]).collect();
            assert_eq!(
                hex(&fold(&from_nodes).unwrap()),
                *root,
                "stored, size {size}"
            );
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn proofs_from_stored_subtrees_equal_the_rfc_definitions() {
        let all = leaves(70);
        let nodes = appended(&all);
        let lookup = |id: &NodeId| nodes.get(id).copied();
        for size in 1..=all.len() {
            let tree = &all[..size];
            for m in 0..size {
                let ranges = inclusion_ranges(m as u64, size as u64);
                assert_eq!(
                    hash_ranges(&ranges, lookup).unwrap(),
                    path(m, tree),
                    "inclusion of {m} in {size}"
                );
            }
            for old in 1..size {
                let ranges = consistency_ranges(old as u64, size as u64);
                assert_eq!(
                    hash_ranges(&ranges, lookup).unwrap(),
                    subproof(old, tree, true),
                    "consistency {old} -> {size}"
                );
            }
        }
        assert!(inclusion_ranges(3, 3).is_empty());
        assert!(consistency_ranges(0, 5).is_empty());
        assert!(consistency_ranges(5, 5).is_empty());
    }

    #[test]
    fn appends_need_only_existing_complete_subtrees() {
        assert!(append_plan(0).is_empty());
        assert_eq!(
            append_plan(7),
            vec![
                NodeId { level: 0, index: 6 },
                NodeId { level: 1, index: 2 },
                NodeId { level: 2, index: 0 }
            ]
        );
        assert!(appended_nodes(7, [0; 32], &[[0; 32]]).is_none());
        let id = NodeId { level: 3, index: 5 };
        assert_eq!((id.start(), id.width()), (40, 8));
    }
}
