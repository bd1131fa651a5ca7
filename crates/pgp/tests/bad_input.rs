//! Truncated, corrupted, oversized and hostile OpenPGP and MIME input: a clear error or
//! "cannot decrypt", never a panic, never partial plaintext.
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use sealpost_pgp::{
    DecryptFailure, EncryptionStatus, KeyPair, OpenContext, Passphrase, autocrypt, decrypt,
    encrypt, encrypt_mail, open_mail,
};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Fixture {
    t: std::time::SystemTime,
    alice: KeyPair,
    bob: KeyPair,
    plaintext: Vec<u8>,
    armored: Vec<u8>,
}

fn fixture() -> Fixture {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let plaintext: Vec<u8> = b"secret payload line\n"
        .iter()
        .copied()
        .cycle()
        .take(3000)
        .collect();
    let armored = encrypt(&plaintext, &alice, &[bob.cert()], t).unwrap();
    Fixture {
        t,
        alice,
        bob,
        plaintext,
        armored,
    }
}

#[test]
fn truncation_at_any_offset_fails_cleanly() {
    let f = fixture();
    let own = [f.bob.clone()];
    let known = [f.alice.cert()];
    let ctx = OpenContext::new(&own, &known, f.t);
    let binary = dearmor(&f.armored);
    for cut in (0..binary.len())
        .step_by(7)
        .chain(binary.len() - 40..binary.len())
    {
        assert!(
            decrypt(&binary[..cut], &ctx).is_err(),
            "binary cut at {cut}"
        );
    }
    for cut in (0..f.armored.len()).step_by(31) {
        match decrypt(&f.armored[..cut], &ctx) {
            Err(_) => {}
            // Only the armor trailer (checksum line, END line) may be cut without loss.
            Ok(d) => assert_eq!(d.plaintext, f.plaintext, "armored cut at {cut}"),
        }
    }
    // Whole mails cut anywhere: never partial content.
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &f.alice,
        &[f.bob.cert()],
        f.t,
    )
    .unwrap();
    for cut in (0..raw.len()).step_by(17) {
        if let Ok(opened) = open_mail(&raw[..cut], &ctx) {
            if opened.encryption == EncryptionStatus::Encrypted {
                assert_eq!(
                    opened
                        .text
                        .as_deref()
                        .map(|s| s.replace("\r\n", "\n"))
                        .as_deref(),
                    Some(SECRET_TEXT)
                );
                assert_eq!(opened.subject.as_deref(), Some(SECRET_SUBJECT));
            } else {
                assert!(
                    opened
                        .text
                        .as_deref()
                        .is_none_or(|s| !s.contains("Tuesday"))
                );
            }
        }
    }
}

#[test]
fn random_corruption_never_panics_or_leaks() {
    let f = fixture();
    let own = [f.bob.clone()];
    let known = [f.alice.cert()];
    let ctx = OpenContext::new(&own, &known, f.t);
    let binary = dearmor(&f.armored);
    let mut rng = Rng(0x5EA1_9057);
    for _ in 0..400 {
        let mut data = binary.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(data.len());
            data[at] = rng.next() as u8;
        }
        if let Ok(d) = decrypt(&data, &ctx) {
            assert_eq!(
                d.plaintext, f.plaintext,
                "a corrupted message decrypted to something else"
            );
        }
        // The same bytes fed to every other parser.
        let _ = KeyPair::from_secret_bytes(&data, f.t);
        let _ = KeyPair::import_secret(&data, Some(&Passphrase::new("x".into())), f.t);
        let _ = open_mail(&data, &ctx);
    }
    // Corrupted keys.
    let key = f.alice.to_secret_bytes().unwrap();
    for _ in 0..200 {
        let mut data = key.expose().to_vec();
        let at = rng.below(data.len());
        data[at] ^= 1 << rng.below(8);
        let _ = KeyPair::from_secret_bytes(&data, f.t);
        let _ = autocrypt::parse_header(
            &format!(
                "addr=a@b.example; keydata={}",
                String::from_utf8_lossy(&data)
            ),
            "a@b.example",
            f.t,
        );
    }
}

#[test]
fn huge_declared_lengths_fail_fast() {
    let f = fixture();
    let own = [f.bob.clone()];
    let known = [f.alice.cert()];
    let ctx = OpenContext::new(&own, &known, f.t);
    let packets = split_packets(&dearmor(&f.armored));
    let esks: Vec<u8> = packets
        .iter()
        .filter(|(tag, _)| *tag == 1)
        .flat_map(|(tag, body)| packet(*tag, body))
        .collect();
    let seip = &packets.iter().find(|(tag, _)| *tag == 18).unwrap().1;
    let huge = |tag: u8, body: &[u8]| {
        let mut v = vec![0xC0 | tag, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        v.extend_from_slice(body);
        v
    };
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("PKESK claiming 4 GiB", huge(1, &packets[0].1)),
        (
            "SEIP claiming 4 GiB",
            [esks.clone(), huge(18, seip)].concat(),
        ),
        ("literal claiming 4 GiB", huge(11, b"b\0\0\0\0\0hello")),
        ("compressed claiming 4 GiB", huge(8, &[1, 0x78, 0x9c])),
    ];
    // A chain of 1 GiB partial body chunks with a few bytes behind them.
    let mut partial = esks.clone();
    partial.extend_from_slice(&[0xC0 | 18, 0xFE]);
    partial.extend_from_slice(&seip[..seip.len().min(100)]);
    cases.push(("SEIP with 1 GiB partial chunk", partial));
    for (what, data) in cases {
        let start = std::time::Instant::now();
        let result = decrypt(&data, &ctx);
        assert!(result.is_err(), "{what}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{what} took {:?}",
            start.elapsed()
        );
        let raw = wrap_pgp_mime("alice@example.org", "bob@example.org", &armor(&data));
        let opened = open_mail(&raw, &ctx).unwrap();
        assert!(
            matches!(opened.encryption, EncryptionStatus::CannotDecrypt(_)),
            "{what}"
        );
        assert!(opened.text.is_none());
    }
}

#[test]
fn hostile_mime_structures_do_not_panic() {
    let f = fixture();
    let own = [f.bob.clone()];
    let known = [f.alice.cert()];
    let ctx = OpenContext::new(&own, &known, f.t);
    // Deep nesting.
    let depth = 3000;
    let mut raw = String::from("From: a@b.example\r\nSubject: deep\r\nMIME-Version: 1.0\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    let _ = open_mail(raw.as_bytes(), &ctx);
    // Very many parts.
    let mut raw =
        String::from("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n");
    for _ in 0..20_000 {
        raw.push_str("--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n");
    }
    raw.push_str("--x--\r\n");
    let _ = open_mail(raw.as_bytes(), &ctx);
    // multipart/encrypted with the wrong shape, or missing pieces.
    for body in [
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=z\r\n\r\n--z\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n--z--\r\n",
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=z\r\n\r\n",
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=z\r\n\r\n--z\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--z\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\n!!!!\r\n-----END PGP MESSAGE-----\r\n--z--\r\n",
        "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=z\r\n\r\n--z\r\n\r\n",
        "Content-Type: text/plain\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n-----END PGP MESSAGE-----\r\n",
    ] {
        let raw = format!("From: a@b.example\r\nSubject: s\r\n{body}");
        let opened = open_mail(raw.as_bytes(), &ctx).unwrap();
        assert_ne!(opened.encryption, EncryptionStatus::Encrypted);
        assert!(!matches!(
            opened.signature,
            sealpost_pgp::SignatureStatus::Verified { .. }
                | sealpost_pgp::SignatureStatus::ValidUnconfirmed { .. }
        ));
    }
    // Not a message at all.
    let _ = open_mail(b"", &ctx);
    let _ = open_mail(&[0xff; 1000], &ctx);
}

#[test]
fn a_small_limit_is_honoured() {
    let f = fixture();
    let own = [f.bob.clone()];
    let known = [f.alice.cert()];
    let ctx = OpenContext {
        max_plaintext: 1000,
        ..OpenContext::new(&own, &known, f.t)
    };
    assert_eq!(
        decrypt(&f.armored, &ctx).unwrap_err(),
        DecryptFailure::TooLarge { limit: 1000 }
    );
    let ctx = OpenContext {
        max_plaintext: f.plaintext.len(),
        ..ctx
    };
    assert_eq!(decrypt(&f.armored, &ctx).unwrap().plaintext, f.plaintext);
}
