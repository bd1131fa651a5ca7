//! The signature-spoofing corpus: none of these is ever reported as Verified or
//! ValidUnconfirmed.
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::time::SystemTime;

use common::*;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;
use sealpost_pgp::key::KEY_VALIDITY;
use sealpost_pgp::{
    BadSignature, EncryptionStatus, KeyPair, OpenContext, OpenedMail, SignatureStatus, encrypt,
    encrypt_mail, open_mail, sign_detached,
};
use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::types::ReasonForRevocation;

fn assert_not_valid(opened: &OpenedMail) {
    assert!(
        !matches!(
            opened.signature,
            SignatureStatus::Verified { .. } | SignatureStatus::ValidUnconfirmed { .. }
        ),
        "{:?}",
        opened.signature
    );
}

fn bad(reason: BadSignature, opened: &OpenedMail) {
    match &opened.signature {
        SignatureStatus::Bad { reason: r, .. } => assert_eq!(r, &reason),
        other => panic!("expected Bad({reason:?}), got {other:?}"),
    }
}

fn inner_entity(from: &str, subject: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    MimePart::new(
        ContentType::new("multipart/mixed").attribute("protected-headers", "v1"),
        vec![MimePart::new("text/plain", text.to_owned())],
    )
    .header("From", Address::new_address(None::<&str>, from.to_owned()))
    .header("Subject", Text::new(subject.to_owned()))
    .write_part(&mut out);
    out
}

fn tsk(k: &KeyPair) -> Cert {
    Cert::from_bytes(k.to_secret_bytes().unwrap().expose()).unwrap()
}

fn primary_signer(k: &KeyPair) -> openpgp::crypto::KeyPair {
    tsk(k)
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap()
}

/// Sign (with every signer) and encrypt to `to`, the way a hostile client could.
fn sign_encrypt_multi(
    inner: &[u8],
    signers: Vec<openpgp::crypto::KeyPair>,
    to: &[Cert],
    at: SystemTime,
) -> Vec<u8> {
    let p = StandardPolicy::new();
    let mut sink = Vec::new();
    let m = Message::new(&mut sink);
    let m = Armorer::new(m).build().unwrap();
    let valid: Vec<_> = to.iter().map(|c| c.with_policy(&p, at).unwrap()).collect();
    let recipients = valid
        .iter()
        .flat_map(|vc| vc.keys().for_transport_encryption());
    let m = Encryptor::for_recipients(m, recipients).build().unwrap();
    let mut signers = signers.into_iter();
    let mut s = Signer::new(m, signers.next().unwrap())
        .unwrap()
        .creation_time(at);
    for extra in signers {
        s = s.add_signer(extra).unwrap();
    }
    let m = s.build().unwrap();
    let mut w = LiteralWriter::new(m).build().unwrap();
    w.write_all(inner).unwrap();
    w.finalize().unwrap();
    sink
}

struct World {
    t: SystemTime,
    alice: KeyPair,
    bob: KeyPair,
    mallory: KeyPair,
}

fn world() -> World {
    let t = t0();
    World {
        t,
        alice: keypair("Alice", "alice@example.org", t),
        bob: keypair("Bob", "bob@example.org", t),
        mallory: keypair("Mallory", "mallory@evil.example", t),
    }
}

#[test]
fn signature_by_another_key_than_the_senders() {
    let w = world();
    // Sealpost itself refuses to build such a mail.
    assert!(matches!(
        encrypt_mail(
            &outgoing("alice@example.org", &["bob@example.org"]),
            &w.mallory,
            &[w.bob.cert()],
            w.t
        ),
        Err(sealpost_pgp::PgpError::FromNotBound(_))
    ));
    // Mallory signs a mail whose From (outer and inner) says Alice; even a confirmed
    // Mallory does not help.
    let inner = inner_entity("alice@example.org", "From Alice", "Please pay Mallory.");
    let armored = encrypt(&inner, &w.mallory, &[w.bob.cert()], w.t).unwrap();
    let raw = wrap_pgp_mime("alice@example.org", "bob@example.org", &armored);
    let own = [w.bob.clone()];
    let known = [w.alice.cert(), w.mallory.cert()];
    let confirmed = [w.alice.fingerprint(), w.mallory.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&own, &known, w.t)
    };
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    bad(BadSignature::NotFromSender, &opened);
    assert_not_valid(&opened);
}

#[test]
fn protected_from_that_the_signer_is_not_bound_to() {
    let w = world();
    // Outer From is Mallory (her key, her address); the protected From inside, which is
    // what the reader sees, says Alice.
    let inner = inner_entity(
        "alice@example.org",
        "From Alice, honest",
        "Please pay Mallory.",
    );
    let armored = encrypt(&inner, &w.mallory, &[w.bob.cert()], w.t).unwrap();
    let raw = wrap_pgp_mime("mallory@evil.example", "bob@example.org", &armored);
    let own = [w.bob.clone()];
    let known = [w.alice.cert(), w.mallory.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, w.t)).unwrap();
    assert_eq!(opened.from.as_ref().unwrap().address, "alice@example.org");
    bad(BadSignature::NotFromSender, &opened);
}

#[test]
fn a_signed_part_inside_an_unsigned_message_does_not_sign_the_message() {
    let w = world();
    let content = b"Content-Type: text/plain; charset=utf-8\r\n\r\nI, Alice, agree.".to_vec();
    let sig = sign_detached(&content, &w.alice, w.t).unwrap();
    let signed_part = MimePart::new(
        ContentType::new("multipart/signed")
            .attribute("micalg", "pgp-sha512")
            .attribute("protocol", "application/pgp-signature"),
        vec![
            MimePart::raw(content.clone()),
            MimePart::new("application/pgp-signature", String::from_utf8(sig).unwrap()),
        ],
    );
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("contract")
        .body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/plain", "Alice also agrees to pay Mallory 1000 EUR."),
                signed_part,
            ],
        ))
        .write_to_vec()
        .unwrap();
    let known = [w.alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&[], &known, w.t)).unwrap();
    assert_eq!(opened.signature, SignatureStatus::Unsigned);

    // An encrypted and signed PGP/MIME part beside a plain one: neither decrypted nor
    // counted as signed.
    let full = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &w.alice,
        &[w.bob.cert()],
        w.t,
    )
    .unwrap();
    let payload = pgp_mime_payload(&full);
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("contract")
        .body(MimePart::new(
            "multipart/mixed",
            vec![
                MimePart::new("text/plain", "Forged preface."),
                pgp_mime_body(&payload),
            ],
        ))
        .write_to_vec()
        .unwrap();
    let own = [w.bob.clone()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, w.t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
}

fn multipart_signed(from: &str, content: &[u8], signature: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .from(from)
        .to("bob@example.org")
        .subject("signed")
        .body(MimePart::new(
            ContentType::new("multipart/signed")
                .attribute("micalg", "pgp-sha512")
                .attribute("protocol", "application/pgp-signature"),
            vec![
                MimePart::raw(content.to_vec()),
                MimePart::new(
                    "application/pgp-signature",
                    String::from_utf8_lossy(signature).into_owned(),
                ),
            ],
        ))
        .write_to_vec()
        .unwrap()
}

#[test]
fn a_detached_signature_over_other_bytes_is_bad() {
    let w = world();
    let signed = b"Content-Type: text/plain\r\n\r\nPay Bob 10 EUR.".to_vec();
    let shown = b"Content-Type: text/plain\r\n\r\nPay Mallory 10000 EUR.".to_vec();
    let sig = sign_detached(&signed, &w.alice, w.t).unwrap();
    let known = [w.alice.cert()];
    let ctx = OpenContext::new(&[], &known, w.t);
    let opened = open_mail(&multipart_signed("alice@example.org", &shown, &sig), &ctx).unwrap();
    assert!(opened.text.unwrap().contains("Mallory"));
    bad(
        BadSignature::Invalid,
        &open_mail(&multipart_signed("alice@example.org", &shown, &sig), &ctx).unwrap(),
    );
    // Control: over the right bytes it is valid.
    let ok = open_mail(&multipart_signed("alice@example.org", &signed, &sig), &ctx).unwrap();
    assert!(matches!(
        ok.signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));
    // A "signature" that is not one is bad, not unsigned.
    let garbage = open_mail(
        &multipart_signed("alice@example.org", &signed, b"not a signature"),
        &ctx,
    )
    .unwrap();
    bad(BadSignature::Invalid, &garbage);
}

#[test]
fn an_expired_key_does_not_sign_now() {
    let w = world();
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &w.alice,
        &[w.bob.cert()],
        w.t + DAY,
    )
    .unwrap();
    let later = w.t + KEY_VALIDITY + 10 * DAY;
    let own = [w.bob.clone()];
    let known = [w.alice.cert()];
    let confirmed = [w.alice.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&own, &known, later)
    };
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(
        opened.encryption,
        EncryptionStatus::Encrypted,
        "old mail still decrypts"
    );
    bad(BadSignature::Expired, &opened);
}

#[test]
fn a_revoked_certificate_or_signing_subkey_does_not_sign() {
    let w = world();
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &w.alice,
        &[w.bob.cert()],
        w.t,
    )
    .unwrap();
    let p = StandardPolicy::new();
    let mut signer = primary_signer(&w.alice);

    let cert_rev = CertRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeyCompromised, b"stolen laptop")
        .unwrap()
        .set_signature_creation_time(w.t + DAY)
        .unwrap()
        .build(&mut signer, &w.alice.cert(), None)
        .unwrap();
    let revoked_cert = w.alice.cert().insert_packets(cert_rev).unwrap().0;

    let alice_cert = w.alice.cert();
    let signing = alice_cert
        .keys()
        .subkeys()
        .with_policy(&p, w.t)
        .for_signing()
        .next()
        .unwrap();
    let sub_rev = SubkeyRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeyRetired, b"rotated")
        .unwrap()
        .set_signature_creation_time(w.t + DAY)
        .unwrap()
        .build(&mut signer, &alice_cert, signing.key(), None)
        .unwrap();
    let revoked_sub = w.alice.cert().insert_packets(sub_rev).unwrap().0;

    let own = [w.bob.clone()];
    for (known, what) in [
        (revoked_cert, "certificate"),
        (revoked_sub, "signing subkey"),
    ] {
        let known = [known];
        let confirmed = [w.alice.fingerprint()];
        let ctx = OpenContext {
            confirmed: &confirmed,
            ..OpenContext::new(&own, &known, w.t + 2 * DAY)
        };
        let opened = open_mail(&raw, &ctx).unwrap();
        assert_not_valid(&opened);
        assert!(
            matches!(
                &opened.signature,
                SignatureStatus::Bad {
                    reason: BadSignature::Revoked,
                    ..
                }
            ),
            "{what}: {:?}",
            opened.signature
        );
    }
}

#[test]
fn two_signatures_are_never_merged_into_one_valid() {
    let w = world();
    let inner = inner_entity("alice@example.org", "two sigs", "Signed twice.");
    let own = [w.bob.clone()];
    let known = [w.alice.cert(), w.mallory.cert()];
    let confirmed = [w.alice.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&own, &known, w.t)
    };
    // One good (Alice), one not bound to From (Mallory).
    let armored = sign_encrypt_multi(
        &inner,
        vec![
            sequoia_signer(&w.alice, w.t),
            sequoia_signer(&w.mallory, w.t),
        ],
        &[w.bob.cert()],
        w.t,
    );
    let opened = open_mail(
        &wrap_pgp_mime("alice@example.org", "bob@example.org", &armored),
        &ctx,
    )
    .unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    bad(BadSignature::SeveralSignatures, &opened);

    // One good, one by an unknown key.
    let stranger = keypair("Stranger", "stranger@example.org", w.t);
    let armored = sign_encrypt_multi(
        &inner,
        vec![
            sequoia_signer(&stranger, w.t),
            sequoia_signer(&w.alice, w.t),
        ],
        &[w.bob.cert()],
        w.t,
    );
    let opened = open_mail(
        &wrap_pgp_mime("alice@example.org", "bob@example.org", &armored),
        &ctx,
    )
    .unwrap();
    bad(BadSignature::SeveralSignatures, &opened);
}

#[test]
fn file_names_and_metadata_never_change_a_status() {
    let w = world();
    // A plain mail with a "signature" attachment, a verified-looking name and text.
    let sig = sign_detached(b"Hello", &w.alice, w.t).unwrap();
    let raw = MessageBuilder::new()
        .from("alice@example.org")
        .to("bob@example.org")
        .subject("[Verified] [Encrypted] Hello")
        .text_body("Hello")
        .attachment("application/pgp-signature", "signature.asc", sig)
        .attachment(
            "application/pgp-encrypted",
            "encrypted.asc",
            "Version: 1\r\n",
        )
        .write_to_vec()
        .unwrap();
    let known = [w.alice.cert()];
    let confirmed = [w.alice.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&[], &known, w.t)
    };
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(opened.attachments.len(), 2);

    // A good signature by a key the user did not confirm is only ValidUnconfirmed, even
    // when some other key is confirmed.
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &w.alice,
        &[w.bob.cert()],
        w.t,
    )
    .unwrap();
    let own = [w.bob.clone()];
    let confirmed = [w.bob.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&own, &known, w.t)
    };
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: w.alice.fingerprint()
        }
    );
}
