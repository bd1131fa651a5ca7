//! The transparency log at 1,000,000 entries (generated): proof sizes, the client's
//! verification time for inclusion and consistency proofs and head signatures, a full
//! replay audit, and the client's state. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p sealpost-transparency --bench log`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use sealpost_transparency::tree::{
    self, Hash, NodeId, append_plan, appended_nodes, consistency_ranges, hash_ranges,
    inclusion_ranges, root_nodes,
};
use sealpost_transparency::{
    LogEntry, LogKey, LogState, Replay, SignedHead, verify_consistency, verify_inclusion,
};

const N: u64 = 1_000_000;
const SAMPLES: u64 = 10_000;

/// Complete-subtree hashes per level, as a server stores them.
struct Nodes(Vec<Vec<Hash>>);

impl Nodes {
    fn get(&self, id: &NodeId) -> Option<Hash> {
        self.0
            .get(usize::from(id.level))?
            .get(usize::try_from(id.index).ok()?)
            .copied()
    }
    fn put(&mut self, id: NodeId, h: Hash) {
        let level = usize::from(id.level);
        while self.0.len() <= level {
            self.0.push(Vec::new());
        }
        assert_eq!(self.0[level].len() as u64, id.index);
        self.0[level].push(h);
    }
}

fn entry(i: u64) -> LogEntry {
    LogEntry::publish(
        &format!("user{i}@example.org"),
        format!("cert {i}").as_bytes(),
        1_800_000_000 + i,
    )
}

/// A cheap deterministic sequence of indices.
fn pick(i: u64, below: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % below
}

fn main() {
    let started = Instant::now();
    let mut nodes = Nodes(Vec::new());
    let mut leaves = Vec::with_capacity(N as usize);
    for i in 0..N {
        let leaf = entry(i).leaf_hash();
        leaves.push(leaf);
        let siblings: Vec<Hash> = append_plan(i)
            .iter()
            .map(|id| nodes.get(id).unwrap())
            .collect();
        for (id, h) in appended_nodes(i, leaf, &siblings).unwrap() {
            nodes.put(id, h);
        }
    }
    let build = started.elapsed();
    let root_of = |size: u64| {
        let hs: Vec<Hash> = root_nodes(size)
            .iter()
            .map(|id| nodes.get(id).unwrap())
            .collect();
        tree::fold(&hs).unwrap()
    };
    let root = root_of(N);
    println!(
        "built a log of {N} entries by appends in {:.2} s ({:.2} µs per append, in memory)",
        build.as_secs_f64(),
        build.as_secs_f64() * 1e6 / N as f64
    );

    // Inclusion proofs at N.
    let mut proofs = Vec::new();
    let mut bytes = 0usize;
    let mut max_len = 0usize;
    for s in 0..SAMPLES {
        let m = pick(s, N);
        let p = hash_ranges(&inclusion_ranges(m, N), |id| nodes.get(id)).unwrap();
        bytes += p.len() * 32;
        max_len = max_len.max(p.len());
        proofs.push((m, p));
    }
    let t = Instant::now();
    for (m, p) in &proofs {
        verify_inclusion(&leaves[*m as usize], *m, N, p, &root).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / SAMPLES as f64;
    println!(
        "inclusion proof at {N}: {} hashes at most, {:.0} bytes on average; verified in {:.2} µs each ({SAMPLES} samples)",
        max_len,
        bytes as f64 / SAMPLES as f64,
        per * 1e6
    );

    // Consistency proofs between random sizes up to N.
    let mut cons = Vec::new();
    let mut bytes = 0usize;
    let mut max_len = 0usize;
    for s in 0..SAMPLES {
        let old = 1 + pick(s, N - 1);
        let p = hash_ranges(&consistency_ranges(old, N), |id| nodes.get(id)).unwrap();
        bytes += p.len() * 32;
        max_len = max_len.max(p.len());
        cons.push((old, root_of(old), p));
    }
    let t = Instant::now();
    for (old, old_root, p) in &cons {
        verify_consistency(*old, old_root, N, &root, p).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / SAMPLES as f64;
    println!(
        "consistency proof to {N}: {} hashes at most, {:.0} bytes on average; verified in {:.2} µs each",
        max_len,
        bytes as f64 / SAMPLES as f64,
        per * 1e6
    );

    // Head signatures.
    let key = SigningKey::from_bytes(&[42; 32]);
    let public = LogKey::from_bytes(&key.verifying_key().to_bytes()).unwrap();
    let head = SignedHead {
        size: N,
        time: 1_800_000_000,
        root,
        signature: key
            .sign(&SignedHead::signed_bytes(N, 1_800_000_000, &root))
            .to_bytes(),
    };
    let t = Instant::now();
    for _ in 0..1000 {
        head.verify(&public).unwrap();
    }
    println!(
        "head signature (Ed25519, strict) verified in {:.1} µs",
        t.elapsed().as_secs_f64() * 1e3
    );

    // A full audit: replay every entry, check the head.
    let t = Instant::now();
    let mut replay = Replay::new();
    for i in 0..N {
        replay.push(&entry(i));
    }
    replay.check(&head.verify(&public).unwrap()).unwrap();
    println!(
        "full replay audit of {N} entries: {:.2} s ({} entry bytes = {:.0} MB to download)",
        t.elapsed().as_secs_f64(),
        sealpost_transparency::entry::ENTRY_LEN,
        N as f64 * sealpost_transparency::entry::ENTRY_LEN as f64 / 1e6
    );

    // The client's state: one head, whatever the size of the log.
    let state = LogState::first(head.verify(&public).unwrap());
    println!(
        "client state: {} bytes in memory (one head: size 8 + time 8 + root 32 + signature 64 = 112 bytes to store), the same at 1 entry and at {N}",
        std::mem::size_of_val(&state)
    );
}
