//! Signed-only PGP/MIME (RFC 3156 §5, `multipart/signed`): `sign_mail` round trips,
//! tampering, other keys, the canonical form of what is signed, and GnuPG 2.2 both ways
//! (in a private GNUPGHOME, `sealpost_testkit::gnupg`).
// Helpers outside `#[test]` functions: in tests, failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::SystemTime;

use common::*;
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use mail_parser::{MessageParser, MimeHeaders};
use sealpost_pgp::{
    BadSignature, EncryptionStatus, OpenContext, OpenedMail, PgpError, SignatureStatus,
    sign_detached, sign_mail, verify_detached,
};
use sealpost_testkit::gnupg::GnupgHome;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::HashAlgorithm;
use sequoia_openpgp::{Cert, Packet, PacketPile};

/// Text that a careless encoding or transport would change: trailing white space, a
/// line starting with `From `, a lone dot, a long line, non-ASCII, bare LF endings.
const TRICKY_TEXT: &str = "Hello Bob, \nFrom now on we sign.\n.\nTabs\t\n\
    A long line that goes on and on and on well past seventy-six characters, to be wrapped.\n\
    Grüße, naïve café ✓\n=3D is not an escape here\n";

fn open(raw: &[u8], known: &[Cert], confirmed: &[sequoia_openpgp::Fingerprint]) -> OpenedMail {
    let ctx = OpenContext {
        confirmed,
        ..OpenContext::new(&[], known, SystemTime::now())
    };
    sealpost_pgp::open_mail(raw, &ctx).unwrap()
}

fn bad(reason: BadSignature, opened: &OpenedMail) {
    match &opened.signature {
        SignatureStatus::Bad { reason: r, .. } => assert_eq!(r, &reason),
        other => panic!("expected Bad({reason:?}), got {other:?}"),
    }
}

/// The boundary of the root `multipart/signed`, as mail-parser reads the header.
fn boundary(raw: &[u8]) -> String {
    let msg = MessageParser::default().parse(raw).unwrap();
    let ct = msg.parts[0].content_type().unwrap();
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("signed"));
    ct.attribute("boundary").unwrap().to_owned()
}

/// The signed entity and the signature, cut out by hand the way a third-party verifier
/// does (RFC 3156 §5, RFC 2046 §5.1.1: the CRLF before a boundary belongs to it).
fn split_signed(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let b = boundary(raw);
    let open = format!("--{b}\r\n");
    let between = format!("\r\n--{b}");
    let find = |hay: &[u8], needle: &str, from: usize| {
        from + hay[from..]
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap()
    };
    let start = find(raw, &open, 0) + open.len();
    let end = find(raw, &between, start);
    let signed = raw[start..end].to_vec();
    let msg = MessageParser::default().parse(raw).unwrap();
    let ids = msg.parts[0].sub_parts().unwrap();
    let sig_part = &msg.parts[ids[1] as usize];
    assert!(sig_part.is_content_type("application", "pgp-signature"));
    // mail-parser agrees on where the signed entity starts and ends.
    let first = &msg.parts[ids[0] as usize];
    assert_eq!(
        &raw[first.offset_header as usize..first.offset_end as usize],
        &signed[..]
    );
    (signed, sig_part.contents().to_vec())
}

fn micalg(raw: &[u8]) -> String {
    let msg = MessageParser::default().parse(raw).unwrap();
    let ct = msg.parts[0].content_type().unwrap();
    assert_eq!(ct.attribute("protocol"), Some("application/pgp-signature"));
    ct.attribute("micalg").unwrap().to_owned()
}

fn hash_of(signature: &[u8]) -> HashAlgorithm {
    PacketPile::from_bytes(signature)
        .unwrap()
        .descendants()
        .find_map(|p| match p {
            Packet::Signature(s) => Some(s.hash_algo()),
            _ => None,
        })
        .unwrap()
}

/// Replaces the first `from` in `raw` with `to` (same length or not).
fn replace_once(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = raw
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} not in the message"));
    [&raw[..at], to.as_bytes(), &raw[at + from.len()..]].concat()
}

/// A `multipart/signed` around `entity` and `signature`, as any client assembles it.
fn assemble_signed(from: &str, micalg: &str, entity: &[u8], signature: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .from(from)
        .to("alice@example.org")
        .subject("Signed by GnuPG")
        .date(1_790_000_000i64)
        .message_id("gpg-signed@gnu.example")
        .body(MimePart::new(
            ContentType::new("multipart/signed")
                .attribute("micalg", micalg)
                .attribute("protocol", "application/pgp-signature"),
            vec![
                MimePart::raw(entity.to_vec()),
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
fn signed_mail_round_trips_with_html_attachments_and_headers() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let mut mail = outgoing("alice@example.org", &["bob@example.org"]);
    mail.cc = vec![mailbox("carol@example.net")];
    mail.html = Some("<p>The launch is on <b>Tuesday</b>.</p>".into());
    mail.attachments = attachments();
    mail.in_reply_to = Some("earlier@example.org".into());

    let raw = sign_mail(&mail, &alice, t).unwrap();
    let text = String::from_utf8(raw.clone()).unwrap();
    let (headers, _) = text.split_once("\r\n\r\n").unwrap();
    // The subject is not secret here: the real one is outside.
    assert!(
        headers.contains(&format!("Subject: {SECRET_SUBJECT}\r\n")),
        "{headers}"
    );
    assert!(
        headers.contains("From: \"alice\" <alice@example.org>"),
        "{headers}"
    );
    assert!(
        headers.contains("To: \"bob\" <bob@example.org>"),
        "{headers}"
    );
    assert!(
        headers.contains("Cc: \"carol\" <carol@example.net>"),
        "{headers}"
    );
    assert!(
        headers.contains("Message-ID: <m1@sealpost.test>"),
        "{headers}"
    );
    assert!(
        headers.contains("In-Reply-To: <earlier@example.org>"),
        "{headers}"
    );
    assert!(headers.contains("Date: "), "{headers}");
    assert!(headers.contains("Autocrypt: addr=alice@example.org; prefer-encrypt=mutual;"));
    assert!(!text.contains("multipart/encrypted"));

    // micalg names the hash the signature really used.
    let (signed, signature) = split_signed(&raw);
    let expected = match hash_of(&signature) {
        HashAlgorithm::SHA256 => "pgp-sha256",
        HashAlgorithm::SHA384 => "pgp-sha384",
        HashAlgorithm::SHA512 => "pgp-sha512",
        other => panic!("unexpected hash {other}"),
    };
    assert_eq!(micalg(&raw), expected);
    // The signed entity carries the protected headers, like the encrypted one.
    let signed_text = String::from_utf8(signed.clone()).unwrap();
    assert!(
        signed_text.starts_with("Content-Type: multipart/mixed"),
        "{signed_text}"
    );
    assert!(signed_text.contains("protected-headers=\"v1\""));
    assert!(signed_text.contains(&format!("Subject: {SECRET_SUBJECT}\r\n")));

    let known = [alice.cert()];
    let opened = open(&raw, &known, &[]);
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: alice.fingerprint()
        }
    );
    assert_eq!(opened.subject.as_deref(), Some(SECRET_SUBJECT));
    assert!(!opened.subject_protected);
    assert_eq!(opened.from.as_ref().unwrap().address, "alice@example.org");
    assert_eq!(opened.to.len(), 1);
    assert_eq!(opened.cc.len(), 1);
    assert_eq!(opened.message_id.as_deref(), Some("m1@sealpost.test"));
    assert_eq!(opened.date, Some(1_790_000_000));
    // The HTML is what is shown, so the text is what a person sees of it.
    assert_eq!(opened.text.as_deref(), Some("The launch is on Tuesday."));
    assert!(opened.html.as_deref().unwrap().contains("<b>Tuesday</b>"));
    // The signature part is not shown as an attachment; the real ones are, byte exact.
    assert_eq!(opened.attachments, attachments());
    assert_eq!(
        opened.autocrypt.as_ref().map(|a| a.fingerprint()),
        Some(alice.fingerprint())
    );

    // Confirmed by the caller: Verified.
    let confirmed = [alice.fingerprint()];
    assert_eq!(
        open(&raw, &known, &confirmed).signature,
        SignatureStatus::Verified {
            signer: alice.fingerprint()
        }
    );
    // Our own key verifies our own sent mail without being among `certs`.
    let own = [alice.clone()];
    let ctx = OpenContext::new(&own, &[], t);
    assert!(matches!(
        sealpost_pgp::open_mail(&raw, &ctx).unwrap().signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));

    // Without Autocrypt, no header.
    mail.autocrypt = None;
    let raw = sign_mail(&mail, &alice, t).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("Autocrypt:"));
}

#[test]
fn what_is_signed_is_the_crlf_form_byte_for_byte_and_transport_safe() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let mut mail = outgoing("alice@example.org", &["bob@example.org"]);
    mail.text = TRICKY_TEXT.into();
    mail.html = Some("<p>Trailing \n<b>From</b> here</p> \n".into());
    mail.attachments = attachments();
    let raw = sign_mail(&mail, &alice, t).unwrap();

    // The whole message: 7-bit, CRLF only, short lines.
    assert!(raw.is_ascii());
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' {
            assert_eq!(raw[i - 1], b'\r', "bare LF at {i}");
        }
        if *b == b'\r' {
            assert_eq!(raw[i + 1], b'\n', "bare CR at {i}");
        }
    }
    let (signed, signature) = split_signed(&raw);
    // The signed entity: lines of at most 76 characters, no trailing white space, no
    // line a transport rewrites.
    for line in String::from_utf8(signed.clone()).unwrap().split("\r\n") {
        assert!(line.len() <= 78, "{line:?}");
        assert!(!line.ends_with(' ') && !line.ends_with('\t'), "{line:?}");
        assert!(!line.starts_with("From "), "{line:?}");
        assert_ne!(line, ".");
    }
    assert!(
        !signed.ends_with(b"\r\n"),
        "the CRLF before the boundary is not signed"
    );

    // The signature is over exactly these CRLF bytes (Thunderbird/RFC 3156 canonical
    // form), not over an LF form of them.
    let known = [alice.cert()];
    let ctx = OpenContext::new(&[], &known, t);
    let from = ["alice@example.org".to_owned()];
    assert!(matches!(
        verify_detached(&signed, &signature, &from, &ctx),
        SignatureStatus::ValidUnconfirmed { .. }
    ));
    let lf = String::from_utf8(signed.clone())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(matches!(
        verify_detached(lf.as_bytes(), &signature, &from, &ctx),
        SignatureStatus::Bad {
            reason: BadSignature::Invalid,
            ..
        }
    ));

    // Everything comes back exactly, trailing white space and "From " included.
    let opened = open(&raw, &known, &[]);
    assert!(matches!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));
    assert_eq!(opened.text.as_deref(), Some("Trailing From here"));
    let text_part = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert_eq!(text_part.replace("\r\n", "\n"), TRICKY_TEXT);
    assert_eq!(
        opened.html.as_deref().unwrap().replace("\r\n", "\n"),
        "<p>Trailing \n<b>From</b> here</p> \n"
    );
    assert_eq!(opened.attachments, attachments());

    // Stored with LF line endings (a Unix mbox or maildir): still verified, because
    // the reader canonicalises to CRLF as the signer did.
    let stored = String::from_utf8(raw).unwrap().replace("\r\n", "\n");
    assert!(matches!(
        open(stored.as_bytes(), &known, &[]).signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));
}

#[test]
fn one_changed_byte_in_the_signed_part_is_bad() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let raw = sign_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        t,
    )
    .unwrap();
    let known = [alice.cert()];
    let confirmed = [alice.fingerprint()];
    assert!(matches!(
        open(&raw, &known, &confirmed).signature,
        SignatureStatus::Verified { .. }
    ));

    // One byte of the text.
    let tampered = replace_once(&raw, "Tuesday", "Tuesdaz");
    let opened = open(&tampered, &known, &confirmed);
    assert!(opened.text.as_deref().unwrap().contains("Tuesdaz"));
    bad(BadSignature::Invalid, &opened);
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);

    // One byte of a header inside the signed part (the protected Subject).
    let (signed, _) = split_signed(&raw);
    let header_at = signed
        .windows(b"Subject: Q".len())
        .position(|w| w == b"Subject: Q")
        .unwrap();
    let mut flipped = signed.clone();
    flipped[header_at + "Subject: ".len()] = b'q';
    let tampered = replace_once(
        &raw,
        std::str::from_utf8(&signed).unwrap(),
        std::str::from_utf8(&flipped).unwrap(),
    );
    bad(BadSignature::Invalid, &open(&tampered, &known, &confirmed));

    // A line added at the end of the signed part.
    let b = boundary(&raw);
    let tampered = replace_once(
        &raw,
        &format!("\r\n--{b}\r\nContent-Type: application/pgp-signature"),
        &format!("\r\nP.S. and more\r\n--{b}\r\nContent-Type: application/pgp-signature"),
    );
    bad(BadSignature::Invalid, &open(&tampered, &known, &confirmed));
}

#[test]
fn a_signature_by_another_key_is_never_valid() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let mallory = keypair("Mallory", "mallory@evil.example", t);
    let mail = outgoing("alice@example.org", &["bob@example.org"]);

    // sign_mail refuses a From that the key does not carry.
    assert!(matches!(
        sign_mail(&mail, &mallory, t),
        Err(PgpError::FromNotBound(a)) if a == "alice@example.org"
    ));

    // Mallory's signature over Alice's signed part, swapped in.
    let raw = sign_mail(&mail, &alice, t).unwrap();
    let (signed, alice_sig) = split_signed(&raw);
    let mallory_sig = sign_detached(&signed, &mallory, t).unwrap();
    let alice_sig = String::from_utf8(alice_sig).unwrap().replace('\n', "\r\n");
    let alice_sig = alice_sig.replace("\r\r\n", "\r\n");
    let swapped = replace_once(
        &raw,
        alice_sig.trim_end(),
        String::from_utf8(mallory_sig)
            .unwrap()
            .replace('\n', "\r\n")
            .trim_end(),
    );
    let both = [alice.cert(), mallory.cert()];
    let confirmed = [alice.fingerprint(), mallory.fingerprint()];
    let opened = open(&swapped, &both, &confirmed);
    bad(BadSignature::NotFromSender, &opened);
    assert_eq!(
        opened.signature,
        SignatureStatus::Bad {
            reason: BadSignature::NotFromSender,
            signer: Some(mallory.fingerprint())
        }
    );
    // Mallory's key not known: the signature cannot be checked.
    bad(
        BadSignature::UnknownKey,
        &open(&swapped, &[alice.cert()], &[]),
    );

    // Mallory's own mail with the From rewritten to Alice.
    let mut from_mallory = outgoing("mallory@evil.example", &["bob@example.org"]);
    from_mallory.autocrypt = None;
    let raw = sign_mail(&from_mallory, &mallory, t).unwrap();
    let forged = replace_once(
        &raw,
        "From: \"mallory\" <mallory@evil.example>",
        "From: \"alice\" <alice@example.org>",
    );
    bad(
        BadSignature::NotFromSender,
        &open(&forged, &both, &confirmed),
    );

    // Alice's genuine mail, but Alice's key unknown: Bad, not unsigned.
    let raw = sign_mail(&mail, &alice, t).unwrap();
    bad(
        BadSignature::UnknownKey,
        &open(&raw, &[mallory.cert()], &[]),
    );
}

const GRETA: &str = "Greta Gnu <greta@gnu.example>";
const GRETA_PASS: &str = "greta's long passphrase";

#[test]
fn gpg_verifies_what_sign_mail_makes() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let home = GnupgHome::new().unwrap();
    home.import(alice.public_armored().unwrap().as_bytes())
        .unwrap();
    let mut mail = outgoing("alice@example.org", &["greta@gnu.example"]);
    mail.text = TRICKY_TEXT.into();
    mail.attachments = attachments();
    let raw = sign_mail(&mail, &alice, t).unwrap();
    let (signed, signature) = split_signed(&raw);
    let sig_path = home.path().join("signature.asc");
    std::fs::write(&sig_path, &signature).unwrap();
    let sig_path = sig_path.to_str().unwrap();

    let out = home
        .run(&["--status-fd", "2", "--verify", sig_path, "-"], &signed)
        .unwrap();
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    let primary = alice.fingerprint().to_hex();
    let validsig = status
        .lines()
        .find(|l| l.starts_with("[GNUPG:] VALIDSIG"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(validsig.trim_end().ends_with(&primary), "{status}");
    // VALIDSIG field 8 is the hash algorithm's number: the one micalg names.
    let hash_id: u8 = validsig.split(' ').nth(9).unwrap().parse().unwrap();
    let named = match hash_id {
        8 => "pgp-sha256",
        9 => "pgp-sha384",
        10 => "pgp-sha512",
        other => panic!("hash {other}: {status}"),
    };
    assert_eq!(micalg(&raw), named);

    // gpg too says the LF form and a changed byte are not what was signed.
    let lf = String::from_utf8(signed.clone())
        .unwrap()
        .replace("\r\n", "\n");
    let tampered = replace_once(&signed, "seventy", "seventx");
    for other in [lf.into_bytes(), tampered] {
        let out = home
            .run(&["--status-fd", "2", "--verify", sig_path, "-"], &other)
            .unwrap();
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{status}");
        assert!(status.contains("[GNUPG:] BADSIG"), "{status}");
    }
}

#[test]
fn a_multipart_signed_made_with_gpg_is_verified() {
    let home = GnupgHome::new().unwrap();
    let fpr = home.quick_gen_key(GRETA, Some(GRETA_PASS)).unwrap();
    let greta_cert = Cert::from_bytes(&home.export_public(&fpr).unwrap()).unwrap();

    // The entity a PGP/MIME client signs: headers and quoted-printable text, CRLF. (Its
    // last CRLF is the text's; the one before the boundary is added by the assembly.)
    let mut entity = Vec::new();
    MimePart::new(
        "text/plain",
        "Signed by GnuPG, \r\nFrom Greta.\r\nGrüße\r\n",
    )
    .write_part(&mut entity);
    assert!(String::from_utf8_lossy(&entity).contains("quoted-printable"));
    let signature = home
        .run_ok(
            &[
                "--passphrase",
                GRETA_PASS,
                "--local-user",
                &fpr,
                "--digest-algo",
                "SHA256",
                "--armor",
                "--detach-sign",
            ],
            &entity,
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&signature).contains("BEGIN PGP SIGNATURE"));
    let raw = assemble_signed("greta@gnu.example", "pgp-sha256", &entity, &signature);
    // gpg dates its signature by the wall clock: `open` reads the clock after it.
    let known = [greta_cert.clone()];
    let confirmed = [greta_cert.fingerprint()];
    let opened = open(&raw, &known, &confirmed);
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
    assert_eq!(
        opened.signature,
        SignatureStatus::Verified {
            signer: greta_cert.fingerprint()
        }
    );
    assert_eq!(
        opened.text.as_deref().map(|s| s.replace("\r\n", "\n")),
        Some("Signed by GnuPG, \nFrom Greta.\nGrüße\n".to_owned())
    );
    assert!(opened.attachments.is_empty());
    // Not confirmed: valid, unconfirmed.
    assert_eq!(
        open(&raw, &known, &[]).signature,
        SignatureStatus::ValidUnconfirmed {
            signer: greta_cert.fingerprint()
        }
    );
    // Greta's certificate unknown: bad, the key cannot be checked.
    bad(BadSignature::UnknownKey, &open(&raw, &[], &[]));
    // A changed byte in gpg's signed part.
    let tampered = replace_once(&raw, "Greta.", "Greta!");
    bad(BadSignature::Invalid, &open(&tampered, &known, &confirmed));
    // Not bound to the From shown.
    let forged = replace_once(&raw, "greta@gnu.example", "alice@example.org");
    bad(
        BadSignature::NotFromSender,
        &open(&forged, &known, &confirmed),
    );
}
