//! Issue 15 at the OpenPGP layer: unknown packet versions skipped (RFC 9580), malformed
//! unhashed issuer hints tolerated, post-quantum and SEIPDv2 by default, the recipients'
//! cipher preferences, inline cleartext-signed mail, ambiguous senders, one pipeline.
//! The vectors are made here the way the OpenPGP interoperability test suite makes them.
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
use sealpost_pgp::sop_support::{self, DecryptRequest, TimeWindow};
use sealpost_pgp::{
    BadSignature, EncryptionStatus, KeyPair, OpenContext, SenderProblem, SignatureStatus, decrypt,
    decryptions, encrypt, open_mail,
};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::prelude::*;
use openpgp::packet::signature::subpacket::{Subpacket, SubpacketTag, SubpacketValue};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::{PublicKeyAlgorithm, SignatureType, SymmetricAlgorithm};
use openpgp::{Cert, PacketPile};

const P: &StandardPolicy<'static> = &StandardPolicy::new();

/// A classical general-purpose certificate as another implementation makes it: no
/// post-quantum subkey, SEIPDv1 only.
fn classical(uid: &str) -> Cert {
    CertBuilder::general_purpose(Some(uid))
        .set_creation_time(t0())
        .set_features(openpgp::types::Features::empty().set_seipdv1())
        .unwrap()
        .generate()
        .unwrap()
        .0
}

fn packets(data: &[u8]) -> Vec<Packet> {
    PacketPile::from_bytes(data)
        .unwrap()
        .into_children()
        .collect()
}

/// Binary OpenPGP of the given packets, armored as a message.
fn armored(packets: &[&Packet]) -> Vec<u8> {
    let mut w = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).unwrap();
    for p in packets {
        p.serialize(&mut w).unwrap();
    }
    w.finalize().unwrap()
}

fn sop_request<'a>(keys: &'a [Cert], verify_with: &'a [Cert]) -> DecryptRequest<'a> {
    DecryptRequest {
        keys,
        passwords: &[],
        session_keys: &[],
        verify_with,
        window: TimeWindow::default(),
        now: SystemTime::now(),
        max_plaintext: sealpost_pgp::message::DEFAULT_MAX_PLAINTEXT,
    }
}

#[test]
fn unknown_pkesk_and_skesk_versions_are_skipped_by_mail_and_sop() {
    let bob = keypair("Bob", "bob@example.org", t0());
    let bob_tsk = Cert::from_bytes(bob.to_secret_bytes().unwrap().expose()).unwrap();
    let alice = keypair("Alice", "alice@example.org", t0());
    let ct = encrypt(b"Encrypted using SEIP + MDC.", &alice, &[bob.cert()], t0()).unwrap();
    let all = packets(&ct);
    let (pkesks, seip): (Vec<&Packet>, Vec<&Packet>) =
        all.iter().partition(|p| p.tag() == Tag::PKESK);
    let seip = seip[0];

    let mut pkesk23 = Unknown::new(
        Tag::PKESK,
        openpgp::Error::MalformedPacket("".into()).into(),
    );
    let mut body = vec![23u8];
    body.extend([0x41; 8]);
    body.push(SymmetricAlgorithm::AES256.into());
    body.extend([0x61; 64]);
    pkesk23.set_body(body);
    let pkesk23 = Packet::from(pkesk23);
    let mut skesk23 = Unknown::new(
        Tag::SKESK,
        openpgp::Error::MalformedPacket("".into()).into(),
    );
    let mut body = vec![23u8, SymmetricAlgorithm::AES256.into()];
    body.extend(openpgp::serialize::MarshalInto::to_vec(&openpgp::crypto::S2K::default()).unwrap());
    body.extend([0x61; 64]);
    skesk23.set_body(body);
    let skesk23 = Packet::from(skesk23);

    let ctx_own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&ctx_own, &known, SystemTime::now());
    for unknown in [&pkesk23, &skesk23] {
        for before in [true, false] {
            let mut list: Vec<&Packet> = pkesks.clone();
            if before {
                list.insert(0, unknown);
            } else {
                list.push(unknown);
            }
            list.push(seip);
            let message = armored(&list);
            let d = decrypt(&message, &ctx).unwrap();
            assert_eq!(d.plaintext, b"Encrypted using SEIP + MDC.");
            let keys = [bob_tsk.clone()];
            let s = sop_support::decrypt(&message, &sop_request(&keys, &known)).unwrap();
            assert_eq!(&s.plaintext[..], b"Encrypted using SEIP + MDC.");
            assert_eq!(s.verifications.len(), 1);
        }
    }
}

#[test]
fn a_signature_of_unknown_version_inside_a_message_is_skipped() {
    // PKESK3 SEIP [OPS23 Literal Sig23]: decrypts; the signature neither counts nor
    // turns the message into a bad one.
    let bob = classical("Bob <bob@example.org>");
    let signer = bob.primary_key().key().clone().parts_into_secret().unwrap();
    let mut signed = Vec::new();
    {
        let m = Message::new(&mut signed);
        let m = Signer::new(m, signer.into_keypair().unwrap())
            .unwrap()
            .build()
            .unwrap();
        let mut m = LiteralWriter::new(m).build().unwrap();
        m.write_all(b"Encrypted, signed message.").unwrap();
        m.finalize().unwrap();
    }
    let parts = packets(&signed);
    let recipient = Recipient::from(
        bob.keys()
            .with_policy(P, None)
            .for_transport_encryption()
            .next()
            .unwrap(),
    );
    let mut ct = Vec::new();
    {
        let m = Message::new(&mut ct);
        let mut m = Encryptor::for_recipients(m, vec![recipient])
            .build()
            .unwrap();
        let mut ops = parts[0].to_vec().unwrap();
        set_version(&mut ops, 23);
        m.write_all(&ops).unwrap();
        parts[1].serialize(&mut m).unwrap();
        let mut sig = parts[2].to_vec().unwrap();
        set_version(&mut sig, 23);
        m.write_all(&sig).unwrap();
        m.finalize().unwrap();
    }
    let keys = [bob.clone()];
    let certs = [bob.clone().strip_secret_key_material()];
    let out = sop_support::decrypt(&ct, &sop_request(&keys, &certs)).unwrap();
    assert_eq!(&out.plaintext[..], b"Encrypted, signed message.");
    assert!(out.verifications.is_empty());
}

/// Makes a serialized (new-format) packet claim `version`: the byte after its header.
fn set_version(packet: &mut [u8], version: u8) {
    let at = match packet[1] {
        0..=191 => 2,
        192..=223 => 3,
        _ => 6,
    };
    packet[at] = version;
}

fn signing_key(cert: &Cert) -> Key<key::SecretParts, key::UnspecifiedRole> {
    cert.keys()
        .with_policy(P, None)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
}

/// A detached signature by `cert`'s signing key over `data`, with the given unhashed
/// subpackets (issuer hints) and nothing else there.
fn detached(cert: &Cert, data: &[u8], unhashed: Vec<Subpacket>) -> Signature {
    let mut signer = signing_key(cert).into_keypair().unwrap();
    let mut builder = SignatureBuilder::new(SignatureType::Binary);
    builder.hashed_area_mut().clear();
    builder
        .hashed_area_mut()
        .add(
            Subpacket::new(
                SubpacketValue::SignatureCreationTime(t0().try_into().unwrap()),
                false,
            )
            .unwrap(),
        )
        .unwrap();
    for sp in unhashed {
        builder.unhashed_area_mut().add(sp).unwrap();
    }
    let mut hash = openpgp::types::HashAlgorithm::SHA256
        .context()
        .unwrap()
        .for_signature(4);
    hash.update(data);
    builder.sign_hash(&mut signer, hash).unwrap()
}

fn v6_issuer_fingerprint_34_bytes() -> Subpacket {
    let mut body = vec![6u8];
    body.extend([0xAA; 34]);
    Subpacket::new(
        SubpacketValue::Unknown {
            tag: SubpacketTag::IssuerFingerprint,
            body,
        },
        false,
    )
    .unwrap()
}

#[test]
fn detached_signatures_with_unknown_versions_or_bad_issuer_hints_verify() {
    let bob = classical("Bob <bob@example.org>");
    let certs = [bob.clone().strip_secret_key_material()];
    let data = b"Hello World :)";
    let issuer = Subpacket::new(SubpacketValue::Issuer(signing_key(&bob).keyid()), false).unwrap();
    let fake = Subpacket::new(
        SubpacketValue::Issuer("AAAA BBBB CCCC DDDD".parse().unwrap()),
        false,
    )
    .unwrap();
    let good = Packet::from(detached(&bob, data, vec![issuer.clone()]));
    let mut sig23 = good.to_vec().unwrap();
    set_version(&mut sig23, 23);
    let sig23 = Packet::from_bytes(&sig23).unwrap();
    assert_eq!(sig23.kind(), None);
    let odd = Packet::from(detached(
        &bob,
        data,
        vec![
            issuer.clone(),
            fake.clone(),
            v6_issuer_fingerprint_34_bytes(),
        ],
    ));
    let odd2 = Packet::from(detached(
        &bob,
        data,
        vec![fake, issuer, v6_issuer_fingerprint_34_bytes()],
    ));
    let cases: [Vec<&Packet>; 5] = [
        vec![&good, &good],
        vec![&good, &sig23],
        vec![&sig23, &good],
        vec![&odd],
        vec![&odd2],
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut w =
            openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Signature).unwrap();
        for p in case {
            p.serialize(&mut w).unwrap();
        }
        let sigs = w.finalize().unwrap();
        let found = sop_support::verify(
            data,
            &sigs,
            &certs,
            TimeWindow::default(),
            SystemTime::now(),
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(!found.is_empty(), "case {i}");
        // And never for other data.
        assert!(
            sop_support::verify(
                b"other",
                &sigs,
                &certs,
                TimeWindow::default(),
                SystemTime::now()
            )
            .is_err()
        );
    }
}

#[test]
fn a_subkey_binding_with_a_v6_issuer_fingerprint_still_binds() {
    let base = classical("Bob <bob@example.org>");
    let mut primary = base
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .unwrap()
        .into_keypair()
        .unwrap();
    let subkey: Key<_, key::SubordinateRole> =
        Key4::generate_ecc(true, openpgp::types::Curve::Ed25519)
            .unwrap()
            .into();
    let mut subkey = subkey;
    subkey.set_creation_time(t0()).unwrap();
    let mut subkey_signer = subkey.clone().into_keypair().unwrap();
    let backsig = SignatureBuilder::new(SignatureType::PrimaryKeyBinding)
        .set_signature_creation_time(t0())
        .unwrap()
        .sign_primary_key_binding(&mut subkey_signer, base.primary_key().key(), &subkey)
        .unwrap();
    let binding = SignatureBuilder::new(SignatureType::SubkeyBinding)
        .set_signature_creation_time(t0())
        .unwrap()
        .set_key_flags(openpgp::types::KeyFlags::empty().set_signing())
        .unwrap()
        .set_embedded_signature(backsig)
        .unwrap()
        .modify_unhashed_area(|mut a| {
            a.add(Subpacket::new(SubpacketValue::Issuer(base.keyid()), false)?)?;
            a.add(v6_issuer_fingerprint_34_bytes())?;
            Ok(a)
        })
        .unwrap()
        .sign_subkey_binding(&mut primary, base.primary_key().key(), &subkey)
        .unwrap();
    let mut bytes = base.clone().strip_secret_key_material().to_vec().unwrap();
    Packet::from(subkey.clone().take_secret().0)
        .serialize(&mut bytes)
        .unwrap();
    Packet::from(binding).serialize(&mut bytes).unwrap();

    // A signature by that subkey verifies with the certificate parsed by sop.
    let data = b"Hello World :)";
    let mut sig = Vec::new();
    {
        let m = Message::new(&mut sig);
        let mut s = Signer::new(m, subkey.clone().into_keypair().unwrap())
            .unwrap()
            .detached()
            .build()
            .unwrap();
        s.write_all(data).unwrap();
        s.finalize().unwrap();
    }
    let certs = sop_support::parse_certs(&bytes).unwrap();
    assert_eq!(certs[0].keys().subkeys().count(), 3);
    let found =
        sop_support::verify(data, &sig, &certs, TimeWindow::default(), SystemTime::now()).unwrap();
    assert_eq!(found[0].signing_key, subkey.fingerprint());
}

#[test]
fn post_quantum_recipients_get_only_their_post_quantum_key_and_seipdv2() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let ct = encrypt(b"hi", &alice, &[bob.cert()], t).unwrap();
    let all = packets(&ct);
    for p in &all {
        match p {
            Packet::PKESK(pkesk) => {
                assert_eq!(pkesk.pk_algo(), PublicKeyAlgorithm::MLKEM768_X25519);
                assert_eq!(pkesk.version(), 6);
            }
            Packet::SEIP(seip) => assert_eq!(seip.version(), 2),
            other => panic!("{other:?}"),
        }
    }
    // A classical recipient among them: SEIPDv1 for all, X25519 for that one, still
    // ML-KEM for the Sealpost users, classical packets first.
    let carol = classical("Carol <carol@example.org>");
    let ct = encrypt(b"hi", &alice, &[carol.clone(), bob.cert()], t).unwrap();
    let algos: Vec<PublicKeyAlgorithm> = packets(&ct)
        .iter()
        .filter_map(|p| match p {
            Packet::PKESK(k) => Some(k.pk_algo()),
            Packet::SEIP(s) => {
                assert_eq!(s.version(), 1);
                None
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        algos,
        [
            PublicKeyAlgorithm::ECDH,
            PublicKeyAlgorithm::MLKEM768_X25519,
            PublicKeyAlgorithm::MLKEM768_X25519
        ]
    );
    // Every reader opens it.
    let known = [alice.cert()];
    for reader in [&bob, &alice] {
        let own = [reader.clone()];
        let ctx = OpenContext::new(&own, &known, SystemTime::now());
        assert_eq!(decrypt(&ct, &ctx).unwrap().plaintext, b"hi");
    }
    let keys = [carol];
    let s = sop_support::decrypt(&ct, &sop_request(&keys, &known)).unwrap();
    assert_eq!(&s.plaintext[..], b"hi");
}

#[test]
fn an_old_key_is_upgraded_to_post_quantum_and_seipdv2_keeping_its_expiry() {
    let t = t0();
    let old = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(t)
        .set_validity_period(Some(sealpost_pgp::key::KEY_VALIDITY))
        .set_features(openpgp::types::Features::empty().set_seipdv1())
        .unwrap()
        .set_primary_key_flags(openpgp::types::KeyFlags::empty().set_certification())
        .add_userid("Olga <olga@example.org>")
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .unwrap()
        .0;
    let mut bytes = Vec::new();
    old.as_tsk().serialize(&mut bytes).unwrap();
    let now = SystemTime::now();
    let mut olga = KeyPair::from_secret_bytes(&bytes, now).unwrap();
    assert!(!olga.has_post_quantum(now));
    let expiry = olga.expiration(now).unwrap();
    assert!(olga.upgrade(now).unwrap());
    assert!(olga.has_post_quantum(now));
    assert_eq!(olga.expiration(now).unwrap(), expiry);
    assert!(!olga.upgrade(now).unwrap(), "once is enough");
    // Renewal keeps what the upgrade added.
    let later = expiry.unwrap() - 10 * DAY;
    assert!(olga.renew_if_needed(later).unwrap());
    assert!(olga.has_post_quantum(later));
    // Senders now use its post-quantum key and SEIPDv2.
    let alice = keypair("Alice", "alice@example.org", t);
    let ct = encrypt(b"hi", &alice, &[olga.cert()], now).unwrap();
    assert!(
        packets(&ct)
            .iter()
            .any(|p| matches!(p, Packet::SEIP(s) if s.version() == 2))
    );
    let own = [olga];
    let known = [alice.cert()];
    assert_eq!(
        decrypt(&ct, &OpenContext::new(&own, &known, now))
            .unwrap()
            .plaintext,
        b"hi"
    );
}

#[test]
fn mail_and_sop_share_one_pipeline_and_its_counter() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let tsk = Cert::from_bytes(alice.to_secret_bytes().unwrap().expose()).unwrap();
    let ct = encrypt(b"count me", &alice, &[], t).unwrap();
    let own = [alice.clone()];
    let ctx = OpenContext::new(&own, &[], SystemTime::now());
    // Other tests run in their own processes (nextest), but count relative anyway.
    let before = decryptions();
    decrypt(&ct, &ctx).unwrap();
    let keys = [tsk];
    sop_support::decrypt(&ct, &sop_request(&keys, &[])).unwrap();
    let raw =
        sealpost_pgp::encrypt_mail(&outgoing("alice@example.org", &[]), &alice, &[], t).unwrap();
    open_mail(&raw, &ctx).unwrap();
    assert_eq!(decryptions() - before, 3);
}

fn signed_inline(alice: &KeyPair, body: &str) -> Vec<u8> {
    let tsk = Cert::from_bytes(alice.to_secret_bytes().unwrap().expose()).unwrap();
    let signed = sop_support::inline_sign(
        body.as_bytes(),
        &[tsk],
        sop_support::InlineMode::Cleartext,
        true,
        SystemTime::now(),
    )
    .unwrap();
    String::from_utf8(signed).unwrap().into_bytes()
}

fn mail(from_lines: &str, body: &str) -> Vec<u8> {
    format!(
        "{from_lines}To: bob@example.org\r\nSubject: hi\r\nMessage-ID: <x@example.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn inline_cleartext_signed_mail_is_verified_whole_body_only() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let known = [alice.cert()];
    let ctx = OpenContext::new(&[], &known, SystemTime::now());
    let block = String::from_utf8(signed_inline(&alice, "Meet at noon.\n")).unwrap();

    let opened = open_mail(&mail("From: alice@example.org\r\n", &block), &ctx).unwrap();
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: alice.fingerprint()
        }
    );
    assert_eq!(opened.text.as_deref().map(str::trim), Some("Meet at noon."));

    // Text around the block: not the whole body, so not signed, and shown as it is.
    let partial = format!("Forged preamble.\n\n{block}");
    let opened = open_mail(&mail("From: alice@example.org\r\n", &partial), &ctx).unwrap();
    assert_eq!(opened.signature, SignatureStatus::Unsigned);
    assert!(opened.text.unwrap().contains("Forged preamble."));

    // A changed word: bad, and never valid.
    let changed = block.replace("noon", "dawn");
    let opened = open_mail(&mail("From: alice@example.org\r\n", &changed), &ctx).unwrap();
    assert!(matches!(
        opened.signature,
        SignatureStatus::Bad {
            reason: BadSignature::Invalid,
            ..
        }
    ));
    // Another sender's address: the signer is not the sender.
    let opened = open_mail(&mail("From: mallory@example.org\r\n", &block), &ctx).unwrap();
    assert!(matches!(
        opened.signature,
        SignatureStatus::Bad {
            reason: BadSignature::NotFromSender,
            ..
        }
    ));
}

#[test]
fn two_from_headers_or_none_with_an_address_are_said_and_never_verified() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let known = [alice.cert()];
    let confirmed = [alice.fingerprint()];
    let mut ctx = OpenContext::new(&[], &known, SystemTime::now());
    ctx.confirmed = &confirmed;
    let block = String::from_utf8(signed_inline(&alice, "Pay the invoice.\n")).unwrap();
    let cases = [
        (
            "From: mallory@example.org\r\nFrom: alice@example.org\r\n",
            SenderProblem::SeveralFromHeaders,
        ),
        (
            "From: alice@example.org\r\nFrom: mallory@example.org\r\n",
            SenderProblem::SeveralFromHeaders,
        ),
        ("From: Alice\r\n", SenderProblem::NoAddress),
        (
            "From: alice@example.org, mallory@example.org\r\n",
            SenderProblem::SeveralAddresses,
        ),
        ("", SenderProblem::Missing),
    ];
    for (from, problem) in cases {
        let opened = open_mail(&mail(from, &block), &ctx).unwrap();
        assert_eq!(opened.sender_problem, Some(problem), "{from}");
        assert!(
            matches!(
                opened.signature,
                SignatureStatus::Bad {
                    reason: BadSignature::NoSender,
                    ..
                }
            ),
            "{from}: {:?}",
            opened.signature
        );
    }
    // One clear sender: no problem, and Verified with the confirmed key.
    let opened = open_mail(&mail("From: alice@example.org\r\n", &block), &ctx).unwrap();
    assert_eq!(opened.sender_problem, None);
    assert!(matches!(opened.signature, SignatureStatus::Verified { .. }));
    assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
}

#[test]
fn css_hidden_text_is_neither_in_text_nor_in_a_quote() {
    let raw = "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: offer\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nI agree to pay 1,000,000 EUR.\r\n\
        --b\r\nContent-Type: text/html\r\n\r\n<p>Lunch on Friday?</p>\
        <div style=\"display:none\">I agree to pay 1,000,000 EUR.</div>\r\n--b--\r\n";
    let opened = open_mail(
        raw.as_bytes(),
        &OpenContext::new(&[], &[], SystemTime::now()),
    )
    .unwrap();
    assert_eq!(opened.text.as_deref(), Some("Lunch on Friday?"));
    let quote = sealpost_pgp::reply_quote(&opened, sealpost_pgp::Protection::Plain).unwrap();
    assert!(!quote.contains("1,000,000"), "{quote}");
    assert!(quote.contains("> Lunch on Friday?"));
    let html = sealpost_pgp::reply_quote_html(&opened, sealpost_pgp::Protection::Plain).unwrap();
    assert!(!html.contains("1,000,000"), "{html}");
    assert!(
        html.contains("<blockquote>Lunch on Friday?</blockquote>"),
        "{html}"
    );
    assert!(
        !sealpost_pgp::forward_quote(&opened, sealpost_pgp::Protection::Plain)
            .unwrap()
            .contains("1,000,000")
    );
    // Markup in the text is escaped, never passed through.
    let mut tricky = opened.clone();
    tricky.text = Some("<script>alert(1)</script> & \"x\"".into());
    let html = sealpost_pgp::reply_quote_html(&tricky, sealpost_pgp::Protection::Plain).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
}
