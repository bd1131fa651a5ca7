//! Round trips through the public API: every status, several recipients, attachments,
//! protected subject, Autocrypt, inline PGP, multipart/signed, renewal, storage bytes,
//! export and import, quotes.
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use sealpost_pgp::autocrypt;
use sealpost_pgp::key::{KEY_VALIDITY, RENEW_WINDOW};
use sealpost_pgp::{
    BadSignature, DecryptFailure, EncryptionStatus, KeyPair, OpenContext, Passphrase, PgpError,
    PreferEncrypt, Protection, SignatureStatus, encrypt, encrypt_mail, open_mail, reply_quote,
};

#[test]
fn encrypted_signed_mail_to_several_recipients_with_attachments_round_trips() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let carol = keypair("Carol", "carol@example.net", t);
    let mut mail = outgoing("alice@example.org", &["bob@example.org"]);
    mail.cc = vec![mailbox("carol@example.net")];
    mail.html = Some("<p>The launch is on <b>Tuesday</b>.</p>".into());
    mail.attachments = attachments();

    let raw = encrypt_mail(&mail, &alice, &[bob.cert(), carol.cert()], t).unwrap();
    let outer = String::from_utf8_lossy(&raw);
    // Nothing secret outside: not the subject, the text, the HTML, nor file names.
    assert!(!outer.contains(SECRET_SUBJECT));
    assert!(!outer.contains("Quarterly"));
    assert!(!outer.contains("Tuesday"));
    assert!(!outer.contains("report-q3.pdf"));
    assert!(!outer.contains("notes.txt"));
    assert!(outer.contains("Subject: ...\r\n"));
    assert!(outer.contains("multipart/encrypted"));
    assert!(outer.contains("application/pgp-encrypted"));
    assert!(outer.contains("Autocrypt: addr=alice@example.org; prefer-encrypt=mutual;"));
    assert!(outer.contains(" keydata="));

    let known = [alice.cert()];
    for reader in [&bob, &carol, &alice] {
        let own = [reader.clone()];
        let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
        assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
        assert_eq!(
            opened.signature,
            SignatureStatus::ValidUnconfirmed {
                signer: alice.fingerprint()
            }
        );
        assert_eq!(opened.subject.as_deref(), Some(SECRET_SUBJECT));
        assert!(opened.subject_protected);
        assert_eq!(opened.from.as_ref().unwrap().address, "alice@example.org");
        // The HTML is what a reader shows, so the text is what a person sees of it (not
        // the text/plain alternative, which the HTML does not show).
        assert_eq!(opened.text.as_deref(), Some("The launch is on Tuesday."));
        assert!(opened.html.as_deref().unwrap().contains("<b>Tuesday</b>"));
        assert_eq!(opened.attachments, attachments());
        assert_eq!(opened.to.len(), 1);
        assert_eq!(opened.cc.len(), 1);
    }

    // Confirmed by the caller: Verified.
    let own = [bob.clone()];
    let confirmed = [alice.fingerprint()];
    let ctx = OpenContext {
        confirmed: &confirmed,
        ..OpenContext::new(&own, &known, t)
    };
    let opened = open_mail(&raw, &ctx).unwrap();
    assert_eq!(
        opened.signature,
        SignatureStatus::Verified {
            signer: alice.fingerprint()
        }
    );
}

#[test]
fn a_stranger_cannot_decrypt_and_sees_nothing() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let dave = keypair("Dave", "dave@example.org", t);
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        t,
    )
    .unwrap();
    let own = [dave];
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert_eq!(
        opened.encryption,
        EncryptionStatus::CannotDecrypt(DecryptFailure::NoMatchingKey)
    );
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
    assert_eq!(opened.subject.as_deref(), Some("..."));
    assert!(opened.text.is_none() && opened.html.is_none() && opened.attachments.is_empty());
}

#[test]
fn unknown_signer_is_bad_not_unsigned() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        t,
    )
    .unwrap();
    let own = [bob];
    let opened = open_mail(&raw, &OpenContext::new(&own, &[], t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(
        opened.signature,
        SignatureStatus::Bad {
            reason: BadSignature::UnknownKey,
            signer: None
        }
    );
    // The Autocrypt key of the same message is collected, for the caller to keep.
    let ac = opened.autocrypt.unwrap();
    assert_eq!(ac.addr, "alice@example.org");
    assert_eq!(ac.prefer_encrypt, PreferEncrypt::Mutual);
    assert_eq!(ac.fingerprint(), alice.fingerprint());
}

#[test]
fn plain_mail_is_not_encrypted_and_unsigned() {
    let t = t0();
    let bob = keypair("Bob", "bob@example.org", t);
    let raw = plain_mail("alice@example.org", "bob@example.org", "Hi", "Just text.");
    let own = [bob];
    let opened = open_mail(&raw, &OpenContext::new(&own, &[], t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
    assert_eq!(opened.subject.as_deref(), Some("Hi"));
    assert!(!opened.subject_protected);
    assert_eq!(opened.text.as_deref(), Some("Just text."));
    assert!(opened.autocrypt.is_none());
}

#[test]
fn inline_pgp_is_read() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let armored = encrypt(SECRET_TEXT.as_bytes(), &alice, &[bob.cert()], t).unwrap();
    let body = format!("\n{}\n", String::from_utf8(armored).unwrap());
    let raw = plain_mail("alice@example.org", "bob@example.org", "old style", &body);
    let own = [bob];
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(opened.text.as_deref(), Some(SECRET_TEXT));
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: alice.fingerprint()
        }
    );
}

/// Builds a multipart/signed message whose first part is `content` and whose signature
/// is `signature`.
pub fn multipart_signed(from: &str, content: &[u8], signature: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .from(from)
        .to("bob@example.org")
        .subject("signed")
        .date(1_790_000_000i64)
        .message_id("signed@sealpost.test")
        .body(MimePart::new(
            ContentType::new("multipart/signed")
                .attribute("micalg", "pgp-sha512")
                .attribute("protocol", "application/pgp-signature"),
            vec![
                MimePart::raw(content.to_vec()),
                MimePart::new(
                    "application/pgp-signature",
                    String::from_utf8(signature.to_vec()).unwrap(),
                ),
            ],
        ))
        .write_to_vec()
        .unwrap()
}

#[test]
fn multipart_signed_is_verified_over_the_exact_part() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let content =
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSigned words.\r\nSecond line.".to_vec();
    let sig = sealpost_pgp::sign_detached(&content, &alice, t).unwrap();
    let raw = multipart_signed("alice@example.org", &content, &sig);
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&[], &known, t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: alice.fingerprint()
        }
    );
    assert_eq!(
        opened
            .text
            .as_deref()
            .map(|s| s.replace("\r\n", "\n"))
            .as_deref(),
        Some("Signed words.\nSecond line.")
    );
}

#[test]
fn renewal_extends_expiry_inside_the_window_only() {
    let t = t0();
    let mut alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let first_expiry = alice.expiration(t).unwrap().unwrap();
    assert_eq!(first_expiry, t + KEY_VALIDITY);

    assert!(!alice.renew_if_needed(t + DAY).unwrap());
    assert!(
        !alice
            .renew_if_needed(first_expiry - RENEW_WINDOW - DAY)
            .unwrap()
    );
    assert_eq!(alice.expiration(t).unwrap(), Some(first_expiry));

    let later = first_expiry - RENEW_WINDOW + DAY;
    assert!(alice.renew_if_needed(later).unwrap());
    assert_eq!(alice.expiration(later).unwrap(), Some(later + KEY_VALIDITY));
    // Renewing again right away does nothing.
    assert!(!alice.renew_if_needed(later).unwrap());

    // After the first expiry, the renewed key still signs and decrypts, and its
    // signatures count.
    let after = first_expiry + 10 * DAY;
    let mut bob = bob;
    assert!(
        bob.renew_if_needed(after).unwrap(),
        "an expired key is renewed too"
    );
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        after,
    )
    .unwrap();
    let own = [bob];
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, after)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert!(matches!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));

    // The renewed key survives storage.
    let restored =
        KeyPair::from_secret_bytes(alice.to_secret_bytes().unwrap().expose(), after).unwrap();
    assert_eq!(
        restored.expiration(after).unwrap(),
        Some(later + KEY_VALIDITY)
    );
}

#[test]
fn storage_bytes_round_trip_and_nothing_secret_is_printed() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let secret = alice.to_secret_bytes().unwrap();
    let again = KeyPair::from_secret_bytes(secret.expose(), t).unwrap();
    assert_eq!(again.fingerprint(), alice.fingerprint());
    assert!(format!("{secret:?}").contains("redacted"));
    assert!(format!("{alice:?}").contains("redacted"));
    // The public side has no secrets and the bytes of a public cert are refused.
    assert!(!alice.cert().is_tsk());
    let public = alice.public_armored().unwrap();
    assert!(public.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(matches!(
        KeyPair::from_secret_bytes(public.as_bytes(), t),
        Err(PgpError::NotASecretKey)
    ));
    // v4, certification-only primary, one signing and two encryption subkeys: X25519,
    // and ML-KEM-768+X25519 (RFC 9980) which senders that know it use instead.
    let cert = alice.cert();
    assert_eq!(cert.primary_key().key().version(), 4);
    let algos: Vec<_> = cert.keys().subkeys().map(|k| k.key().pk_algo()).collect();
    use sequoia_openpgp::types::PublicKeyAlgorithm as A;
    assert_eq!(algos, [A::EdDSA, A::ECDH, A::MLKEM768_X25519]);
    assert!(alice.has_post_quantum(t));
    assert_eq!(alice.addresses(t), vec!["alice@example.org".to_owned()]);
}

#[test]
fn protected_export_imports_with_its_passphrase_only() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let (armored, pass) = alice.export_protected().unwrap();
    let (_, pass2) = alice.export_protected().unwrap();
    assert_ne!(pass.expose(), pass2.expose());
    assert!(armored.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));

    assert!(matches!(
        KeyPair::import_secret(armored.as_bytes(), None, t),
        Err(PgpError::PassphraseNeeded)
    ));
    assert!(matches!(
        KeyPair::import_secret(
            armored.as_bytes(),
            Some(&Passphrase::new("wrong".into())),
            t
        ),
        Err(PgpError::WrongPassphrase)
    ));
    assert!(matches!(
        KeyPair::import_secret(alice.public_armored().unwrap().as_bytes(), None, t),
        Err(PgpError::NotASecretKey)
    ));
    let imported = KeyPair::import_secret(armored.as_bytes(), Some(&pass), t).unwrap();
    assert_eq!(imported.fingerprint(), alice.fingerprint());

    // The imported key decrypts mail to Alice.
    let raw = encrypt_mail(
        &outgoing("bob@example.org", &["alice@example.org"]),
        &bob,
        &[alice.cert()],
        t,
    )
    .unwrap();
    let own = [imported];
    let known = [bob.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(opened.subject.as_deref(), Some(SECRET_SUBJECT));
}

#[test]
fn autocrypt_header_is_minimal_and_validated() {
    let t = t0();
    let alice =
        KeyPair::generate("Alice", &["alice@example.org", "alice@work.example"], t).unwrap();
    let value =
        autocrypt::header_value(&alice, "alice@work.example", PreferEncrypt::NoPreference, t)
            .unwrap();
    assert!(value.starts_with("addr=alice@work.example; keydata="));
    let key = autocrypt::parse_header(&value, "Alice@Work.example", t).unwrap();
    assert_eq!(key.fingerprint(), alice.fingerprint());
    assert_eq!(key.prefer_encrypt, PreferEncrypt::NoPreference);
    assert_eq!(
        key.cert.userids().count(),
        1,
        "only the User ID for that address"
    );
    // Signing, X25519 and ML-KEM-768+X25519: the header announces the post-quantum key.
    assert_eq!(key.cert.keys().subkeys().count(), 3);
    assert!(!key.cert.is_tsk());

    // Wrong From, unknown critical attribute, garbage keydata: ignored.
    assert!(autocrypt::parse_header(&value, "mallory@example.org", t).is_none());
    assert!(
        autocrypt::parse_header(&format!("critical=1; {value}"), "alice@work.example", t).is_none()
    );
    assert!(
        autocrypt::parse_header(&format!("_note=ok; {value}"), "alice@work.example", t).is_some()
    );
    assert!(
        autocrypt::parse_header(
            "addr=alice@work.example; keydata=AAAA",
            "alice@work.example",
            t
        )
        .is_none()
    );
    // An address not bound to the key cannot be announced.
    assert!(
        autocrypt::header_value(&alice, "other@example.org", PreferEncrypt::Mutual, t).is_err()
    );

    // Two Autocrypt headers in one message: neither is used.
    let raw = MessageBuilder::new()
        .from("alice@work.example")
        .to("bob@example.org")
        .subject("x")
        .header(
            "Autocrypt",
            mail_builder::headers::raw::Raw::new(value.clone()),
        )
        .header(
            "Autocrypt",
            mail_builder::headers::raw::Raw::new(value.clone()),
        )
        .text_body("hi")
        .write_to_vec()
        .unwrap();
    let opened = open_mail(&raw, &OpenContext::new(&[], &[], t)).unwrap();
    assert!(opened.autocrypt.is_none());
    let raw = MessageBuilder::new()
        .from("alice@work.example")
        .to("bob@example.org")
        .subject("x")
        .header("Autocrypt", mail_builder::headers::raw::Raw::new(value))
        .text_body("hi")
        .write_to_vec()
        .unwrap();
    let opened = open_mail(&raw, &OpenContext::new(&[], &[], t)).unwrap();
    assert_eq!(opened.autocrypt.unwrap().fingerprint(), alice.fingerprint());
}

#[test]
fn replies_quote_plain_text_and_encrypted_originals_need_encrypted_replies() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        t,
    )
    .unwrap();
    let own = [bob.clone()];
    let known = [alice.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, t)).unwrap();
    assert!(matches!(
        reply_quote(&opened, Protection::Plain),
        Err(PgpError::ReplyMustBeEncrypted)
    ));
    assert!(matches!(
        sealpost_pgp::forward_quote(&opened, Protection::Plain),
        Err(PgpError::ReplyMustBeEncrypted)
    ));
    let quote = reply_quote(&opened, Protection::Encrypted).unwrap();
    assert!(quote.contains("alice <alice@example.org> wrote:"));
    assert!(quote.contains("> The launch is on Tuesday."));
    assert!(quote.contains("> Bring the red folder."));
    let fwd = sealpost_pgp::forward_quote(&opened, Protection::Encrypted).unwrap();
    assert!(fwd.contains(&format!("Subject: {SECRET_SUBJECT}")));

    // An original we could not decrypt is still encrypted: no plain reply either.
    let stranger = [keypair("Dave", "dave@example.org", t)];
    let undecryptable = open_mail(&raw, &OpenContext::new(&stranger, &known, t)).unwrap();
    assert!(reply_quote(&undecryptable, Protection::Plain).is_err());

    // HTML-only plain mail: the quote is text, no tags.
    let html_only = MessageBuilder::new()
        .from("carol@example.org")
        .to("bob@example.org")
        .subject("html")
        .html_body("<p>Hello <b>there</b><script>alert(1)</script></p>")
        .write_to_vec()
        .unwrap();
    let opened = open_mail(&html_only, &OpenContext::new(&own, &[], t)).unwrap();
    let quote = reply_quote(&opened, Protection::Plain).unwrap();
    assert!(quote.contains("> Hello there"), "{quote}");
    assert!(!quote.contains('<'), "{quote}");
}

#[test]
fn import_refuses_expired_revoked_and_capability_less_keys() {
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::Serialize;
    use sequoia_openpgp::types::{KeyFlags, ReasonForRevocation};
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let secret = alice.to_secret_bytes().unwrap();

    // Expired.
    assert!(matches!(
        KeyPair::import_secret(secret.expose(), None, t + KEY_VALIDITY + DAY),
        Err(PgpError::Expired { .. })
    ));

    // Revoked.
    let tsk = sequoia_openpgp::Cert::from_bytes(secret.expose()).unwrap();
    let mut primary = tsk
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap();
    let rev = CertRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeyCompromised, b"")
        .unwrap()
        .set_signature_creation_time(t + DAY)
        .unwrap()
        .build(&mut primary, &tsk, None)
        .unwrap();
    let revoked = tsk.insert_packets(rev).unwrap().0;
    let mut bytes = Vec::new();
    revoked.as_tsk().serialize(&mut bytes).unwrap();
    assert!(matches!(
        KeyPair::import_secret(&bytes, None, t + 2 * DAY),
        Err(PgpError::Revoked { .. })
    ));

    // Signing only: no encryption capability.
    let (sign_only, _) = CertBuilder::new()
        .set_creation_time(t)
        .add_userid("s@example.org")
        .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
        .generate()
        .unwrap();
    let mut bytes = Vec::new();
    sign_only.as_tsk().serialize(&mut bytes).unwrap();
    assert!(matches!(
        KeyPair::import_secret(&bytes, None, t),
        Err(PgpError::NoEncryptionKey { .. })
    ));

    // Two keys in one file.
    let mut two = Vec::new();
    two.extend_from_slice(secret.expose());
    keypair("Bob", "bob@example.org", t)
        .to_secret_bytes()
        .map(|s| two.extend_from_slice(s.expose()))
        .unwrap();
    assert!(matches!(
        KeyPair::import_secret(&two, None, t),
        Err(PgpError::CertificateCount(2))
    ));
}
