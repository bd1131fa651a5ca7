//! The fuzz targets' inputs, replayed as tests: every seed in `fuzz/corpus/` and every
//! crash kept in `fuzz/regressions/` goes through the same calls as the targets
//! (`fuzz/fuzz_targets/`), with the same keys (`fuzz/keys/`), and must give a result,
//! never a panic (`scripts/fuzz.sh` copies each crash there).
//!
//! `SEALPOST_WRITE_FUZZ_SEEDS=1 cargo nextest run -p sealpost-pgp --test fuzz_corpus`
//! writes the keys (when missing) and the seed corpus again: well-formed mail and
//! messages of every kind Sealpost reads (PGP/MIME SEIPDv2 with ML-KEM, SEIPDv1 to a
//! classical key, signed, inline, cleartext-signed, password-encrypted), and the bad
//! inputs issue 15 names: truncated, oversized, malformed post-quantum key material and
//! ciphertext.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use sealpost_pgp::sop_support::{self, DecryptRequest, TimeWindow};
use sealpost_pgp::{
    EncryptionStatus, KeyPair, OpenContext, Passphrase, encrypt, encrypt_mail, open_mail, sign_mail,
};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

/// The time the targets read at (`fuzz/fuzz_targets/common.rs`).
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Bob (the reader) and Alice (the signer), as the targets load them.
fn keys() -> (KeyPair, KeyPair) {
    let dir = fuzz_dir().join("keys");
    let writing = std::env::var_os("SEALPOST_WRITE_FUZZ_SEEDS").is_some();
    if writing && !dir.join("bob.tsk").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let made = now() - Duration::from_secs(30 * 24 * 3600);
        for (name, addr) in [("bob", "bob@example.org"), ("alice", "alice@example.org")] {
            let k = KeyPair::generate(name, &[addr], made).unwrap();
            std::fs::write(
                dir.join(format!("{name}.tsk")),
                k.to_secret_bytes().unwrap().expose(),
            )
            .unwrap();
        }
    }
    let read = |name: &str| {
        KeyPair::from_secret_bytes(&std::fs::read(dir.join(name)).unwrap(), now()).unwrap()
    };
    (read("bob.tsk"), read("alice.tsk"))
}

/// What `fuzz_targets/open_mail.rs` does.
fn open_mail_target(data: &[u8], bob: &KeyPair, alice: &KeyPair) {
    let own = [bob.clone()];
    let known = [alice.cert()];
    let _ = open_mail(data, &OpenContext::new(&own, &known, now()));
}

/// What `fuzz_targets/sop_decrypt.rs` does.
fn sop_decrypt_target(data: &[u8], bob: &KeyPair, alice: &KeyPair) {
    let keys = [Cert::from_bytes(bob.to_secret_bytes().unwrap().expose()).unwrap()];
    let certs = [alice.cert()];
    let passwords = [Passphrase::new("pw".into())];
    let req = DecryptRequest {
        keys: &keys,
        passwords: &passwords,
        session_keys: &[],
        verify_with: &certs,
        window: TimeWindow::default(),
        now: now(),
        max_plaintext: 1 << 20,
    };
    let _ = sop_support::decrypt(data, &req);
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"));
    out.sort();
    out
}

#[test]
fn every_seed_and_kept_crash_gives_a_result_not_a_panic() {
    if std::env::var_os("SEALPOST_WRITE_FUZZ_SEEDS").is_some() {
        write_seeds();
    }
    let (bob, alice) = keys();
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        for p in files(&fuzz_dir().join(kind).join("open_mail")) {
            open_mail_target(&std::fs::read(&p).unwrap(), &bob, &alice);
            replayed += 1;
        }
        for p in files(&fuzz_dir().join(kind).join("sop_decrypt")) {
            sop_decrypt_target(&std::fs::read(&p).unwrap(), &bob, &alice);
            replayed += 1;
        }
    }
    assert!(
        replayed > 20,
        "the seed corpus is missing ({replayed} files)"
    );
}

#[test]
fn the_seeds_really_reach_decryption() {
    // Guards the corpus: the well-formed seeds open, so fuzzing starts past the parser.
    let (bob, alice) = keys();
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, now());
    let seed =
        std::fs::read(fuzz_dir().join("corpus/open_mail/pgp-mime-seipdv2-ml-kem.eml")).unwrap();
    let opened = open_mail(&seed, &ctx).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
}

/// Writes `fuzz/corpus/` (see the module docs).
fn write_seeds() {
    let (bob, alice) = keys();
    let t = now() - Duration::from_secs(3600);
    let mail_dir = fuzz_dir().join("corpus/open_mail");
    let sop_dir = fuzz_dir().join("corpus/sop_decrypt");
    std::fs::create_dir_all(&mail_dir).unwrap();
    std::fs::create_dir_all(&sop_dir).unwrap();
    let put = |dir: &Path, name: &str, data: &[u8]| std::fs::write(dir.join(name), data).unwrap();

    // Mail of every kind.
    let mut mail = outgoing("alice@example.org", &["bob@example.org"]);
    mail.html = Some("<p>Hi <b>Bob</b></p><div style=\"display:none\">hidden</div>".into());
    mail.attachments = vec![sealpost_pgp::Attachment {
        name: Some("a.txt".into()),
        content_type: "text/plain".into(),
        data: b"attached".to_vec(),
    }];
    let pq = encrypt_mail(&mail, &alice, &[bob.cert()], t).unwrap();
    put(&mail_dir, "pgp-mime-seipdv2-ml-kem.eml", &pq);
    put(
        &mail_dir,
        "signed.eml",
        &sign_mail(&mail, &alice, t).unwrap(),
    );
    let plain = sealpost_pgp::plain_mail(&mail, Some(&alice), t).unwrap();
    put(&mail_dir, "plain-autocrypt.eml", &plain);
    let inline = encrypt(b"inline body", &alice, &[bob.cert()], t).unwrap();
    let inline_mail = [
        &b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: x\r\n\r\n"[..],
        &inline,
    ]
    .concat();
    put(&mail_dir, "inline.eml", &inline_mail);
    let tsk = Cert::from_bytes(alice.to_secret_bytes().unwrap().expose()).unwrap();
    let clear = sop_support::inline_sign(
        b"cleartext body\n",
        &[tsk],
        sop_support::InlineMode::Cleartext,
        true,
        t,
    )
    .unwrap();
    let clear_mail = [
        &b"From: alice@example.org\r\nFrom: eve@example.org\r\nSubject: x\r\n\r\n"[..],
        &clear,
    ]
    .concat();
    put(&mail_dir, "cleartext-two-froms.eml", &clear_mail);
    // Truncated and cut-in-the-ciphertext variants.
    for cut in [pq.len() / 3, pq.len() / 2, pq.len() - 200] {
        put(
            &mail_dir,
            &format!("pgp-mime-truncated-{cut}.eml"),
            &pq[..cut],
        );
    }

    // sop decrypt: the binary and armored messages, passwords, classical keys.
    let binary = sop_support::dearmor(&inline).unwrap();
    put(&sop_dir, "seipdv2-ml-kem.pgp", &binary);
    put(&sop_dir, "seipdv2-ml-kem.asc", &inline);
    let carol = classical_pair(t);
    let v1 = sop_support::encrypt(
        b"to a classical key and a password",
        &sop_support::EncryptRequest {
            recipients: &[carol.cert(), bob.cert()],
            passwords: &[Passphrase::new("pw".into())],
            signers: &[],
            mode: sop_support::SigMode::Binary,
            armored: false,
            now: t,
        },
    )
    .unwrap();
    put(&sop_dir, "seipdv1-and-password.pgp", &v1);
    for cut in [binary.len() / 2, binary.len() - 1, 1200, 40] {
        put(
            &sop_dir,
            &format!("truncated-{cut}.pgp"),
            &binary[..cut.min(binary.len())],
        );
    }
    // Malformed post-quantum ciphertext: bytes flipped inside the ML-KEM ciphertext
    // (the first PKESK) and in the SEIPDv2 header.
    for at in [40usize, 600, 1100] {
        let mut bad = binary.clone();
        if let Some(b) = bad.get_mut(at) {
            *b ^= 0x5a;
        }
        put(&sop_dir, &format!("flipped-{at}.pgp"), &bad);
    }
    // Oversized lengths: a PKESK claiming more than the data holds.
    put(
        &sop_dir,
        "oversized-length.pgp",
        &[0xc1, 0xff, 0x7f, 0xff, 0xff, 0xff, 6],
    );
    // Malformed ML-KEM key material: a certificate whose ML-KEM public key is cut,
    // given where a message is expected, and inside a mail's Autocrypt header.
    let cert = sealpost_pgp::contact::public_bytes(&bob.cert()).unwrap();
    put(&sop_dir, "certificate-not-a-message.pgp", &cert);
    let mut cut_key = cert.clone();
    cut_key.truncate(cert.len() - 700);
    put(&sop_dir, "certificate-ml-kem-cut.pgp", &cut_key);
    use base64::Engine;
    let autocrypt = format!(
        "From: bob@example.org\r\nAutocrypt: addr=bob@example.org; keydata={}\r\n\r\nhi\r\n",
        base64::engine::general_purpose::STANDARD.encode(&cut_key)
    );
    put(&mail_dir, "autocrypt-ml-kem-cut.eml", autocrypt.as_bytes());
}

/// A classical (no ML-KEM, SEIPDv1-only) certificate, as GnuPG users have.
fn classical_pair(t: SystemTime) -> KeyPair {
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::serialize::Serialize;
    let (cert, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(t - Duration::from_secs(3600))
        .set_features(sequoia_openpgp::types::Features::empty().set_seipdv1())
        .unwrap()
        .add_userid("Carol <carol@example.org>")
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .unwrap();
    let mut bytes = Vec::new();
    cert.as_tsk().serialize(&mut bytes).unwrap();
    KeyPair::from_secret_bytes(&bytes, t).unwrap()
}
