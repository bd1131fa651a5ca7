//! A decompression bomb: 1 GiB of zeros, compressed (ZLIB) inside a real encrypted and
//! signed message, must stop at the plaintext limit with bounded memory. Its own test
//! binary, so the process's peak memory is this test's.
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::time::Instant;

use common::*;
use sealpost_pgp::message::DEFAULT_MAX_PLAINTEXT;
use sealpost_pgp::{DecryptFailure, EncryptionStatus, OpenContext, decrypt, open_mail};
use sequoia_openpgp as openpgp;

use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Compressor, Encryptor, LiteralWriter, Message, Signer};
use openpgp::types::CompressionAlgorithm;

const GIB: usize = 1 << 30;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[test]
fn one_gib_of_compressed_zeros_stops_at_the_limit() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let p = StandardPolicy::new();

    let started = Instant::now();
    let mut sink = Vec::new();
    {
        let bob_cert = bob.cert();
        let vc = bob_cert.with_policy(&p, t).unwrap();
        let m = Message::new(&mut sink);
        let m = Armorer::new(m).build().unwrap();
        let m = Encryptor::for_recipients(m, vc.keys().for_transport_encryption())
            .build()
            .unwrap();
        let m = Signer::new(m, sequoia_signer(&alice, t))
            .unwrap()
            .creation_time(t)
            .build()
            .unwrap();
        let m = Compressor::new(m)
            .algo(CompressionAlgorithm::Zlib)
            .build()
            .unwrap();
        let mut w = LiteralWriter::new(m).build().unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..GIB / zeros.len() {
            w.write_all(&zeros).unwrap();
        }
        w.finalize().unwrap();
    }
    let built = started.elapsed();
    assert!(
        sink.len() < 8 << 20,
        "the bomb is small: {} bytes",
        sink.len()
    );
    eprintln!(
        "bomb: {} bytes armored for 1 GiB of zeros, built in {built:?}",
        sink.len()
    );

    let own = [bob];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    let before = Instant::now();
    assert_eq!(
        decrypt(&sink, &ctx).unwrap_err(),
        DecryptFailure::TooLarge {
            limit: DEFAULT_MAX_PLAINTEXT
        }
    );
    let raw = wrap_pgp_mime("alice@example.org", "bob@example.org", &sink);
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(
        opened.encryption,
        EncryptionStatus::CannotDecrypt(DecryptFailure::TooLarge {
            limit: DEFAULT_MAX_PLAINTEXT
        })
    );
    assert!(opened.text.is_none() && opened.attachments.is_empty());
    let decrypting = before.elapsed();
    let peak = peak_rss_mib();
    eprintln!("refused twice in {decrypting:?}; peak RSS {peak} MiB");
    // Limit 64 MiB: the buffer may double while growing, plus Sequoia's own 25 MiB.
    assert!(peak < 400, "peak RSS {peak} MiB");
}
