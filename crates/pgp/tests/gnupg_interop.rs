//! Interoperability with the real GnuPG 2.2 (Debian's `gpg`), both ways, in a private
//! GNUPGHOME (`sealpost_testkit::gnupg`).
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
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use sealpost_pgp::key::KEY_VALIDITY;
use sealpost_pgp::{
    EncryptionStatus, KeyPair, OpenContext, Passphrase, PgpError, SignatureStatus, encrypt_mail,
    open_mail,
};
use sealpost_testkit::gnupg::GnupgHome;
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

const GRETA: &str = "Greta Gnu <greta@gnu.example>";
const GRETA_PASS: &str = "greta's long passphrase";

fn greta() -> (GnupgHome, String, Cert) {
    let home = GnupgHome::new().unwrap();
    let fpr = home.quick_gen_key(GRETA, Some(GRETA_PASS)).unwrap();
    let cert = Cert::from_bytes(&home.export_public(&fpr).unwrap()).unwrap();
    (home, fpr, cert)
}

#[test]
fn gpg_decrypts_and_verifies_sealpost_pgp_mime() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let (home, _greta_fpr, greta_cert) = greta();
    let now = SystemTime::now();
    home.import(alice.public_armored().unwrap().as_bytes())
        .unwrap();

    let mut mail = outgoing("alice@example.org", &["greta@gnu.example"]);
    mail.attachments = attachments();
    let raw = encrypt_mail(&mail, &alice, &[greta_cert], now).unwrap();
    let payload = pgp_mime_payload(&raw);

    let out = home
        .run(
            &["--passphrase", GRETA_PASS, "--status-fd", "2", "--decrypt"],
            &payload,
        )
        .unwrap();
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    let primary = alice.fingerprint().to_hex();
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("[GNUPG:] VALIDSIG") && l.trim_end().ends_with(&primary)),
        "signer must be Alice's certificate {primary}: {status}"
    );
    assert!(status.contains("[GNUPG:] DECRYPTION_OKAY"), "{status}");
    assert!(status.contains("[GNUPG:] GOODMDC"), "{status}");
    let plain = String::from_utf8_lossy(&out.stdout);
    assert!(plain.contains("protected-headers=\"v1\""), "{plain}");
    assert!(
        plain.contains(&format!("Subject: {SECRET_SUBJECT}")),
        "{plain}"
    );
    assert!(plain.contains("The launch is on Tuesday."), "{plain}");
    assert!(plain.contains("report-q3.pdf"), "{plain}");
}

#[test]
fn sealpost_decrypts_and_verifies_gpg_sign_encrypt() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let (home, greta_fpr, greta_cert) = greta();
    home.import(alice.public_armored().unwrap().as_bytes())
        .unwrap();

    // The inner entity a PGP/MIME client would encrypt: protected headers, text.
    let mut inner = Vec::new();
    MimePart::new(
        ContentType::new("multipart/mixed").attribute("protected-headers", "v1"),
        vec![MimePart::new("text/plain", "From GnuPG with love.\r\n")],
    )
    .header(
        "Subject",
        mail_builder::headers::text::Text::new("Hidden gpg subject"),
    )
    .header(
        "From",
        mail_builder::headers::address::Address::new_address(
            Some("Greta Gnu"),
            "greta@gnu.example",
        ),
    )
    .write_part(&mut inner);

    // gpg's defaults: sign + encrypt, compressed (zlib), to Alice (not ultimately
    // trusted there, so `--trust-model always`).
    let armored = home
        .run_ok(
            &[
                "--passphrase",
                GRETA_PASS,
                "--trust-model",
                "always",
                "--armor",
                "--local-user",
                &greta_fpr,
                "--recipient",
                &alice.fingerprint().to_hex(),
                "--sign",
                "--encrypt",
            ],
            &inner,
        )
        .unwrap();
    // gpg dates its signature by the wall clock: read ours after it.
    let now = SystemTime::now();
    let raw = wrap_pgp_mime("greta@gnu.example", "alice@example.org", &armored);
    let own = [alice];
    let known = [greta_cert.clone()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, now)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed {
            signer: greta_cert.fingerprint()
        }
    );
    assert_eq!(opened.subject.as_deref(), Some("Hidden gpg subject"));
    assert_eq!(
        opened.text.as_deref().map(str::trim_end),
        Some("From GnuPG with love.")
    );
}

#[test]
fn a_gpg_secret_key_with_passphrase_imports_and_decrypts() {
    let t = t0();
    let bob = keypair("Bob", "bob@example.org", t);
    let (home, greta_fpr, greta_cert) = greta();
    let now = SystemTime::now();
    let exported = home.export_secret(&greta_fpr, Some(GRETA_PASS)).unwrap();
    assert!(String::from_utf8_lossy(&exported).contains("PRIVATE KEY BLOCK"));

    assert!(matches!(
        KeyPair::import_secret(&exported, Some(&Passphrase::new("not it".into())), now),
        Err(PgpError::WrongPassphrase)
    ));
    assert!(matches!(
        KeyPair::import_secret(&home.export_public(&greta_fpr).unwrap(), None, now),
        Err(PgpError::NotASecretKey)
    ));
    let greta =
        KeyPair::import_secret(&exported, Some(&Passphrase::new(GRETA_PASS.into())), now).unwrap();
    assert_eq!(greta.fingerprint(), greta_cert.fingerprint());
    assert_eq!(greta.addresses(now), vec!["greta@gnu.example".to_owned()]);

    let raw = encrypt_mail(
        &outgoing("bob@example.org", &["greta@gnu.example"]),
        &bob,
        &[greta.cert()],
        now,
    )
    .unwrap();
    let own = [greta];
    let known = [bob.cert()];
    let opened = open_mail(&raw, &OpenContext::new(&own, &known, now)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(opened.subject.as_deref(), Some(SECRET_SUBJECT));
    assert!(matches!(
        opened.signature,
        SignatureStatus::ValidUnconfirmed { .. }
    ));

    // Its expiry is renewed like a key Sealpost made, and gpg (with its clock moved to
    // that day) accepts the new self-signatures.
    let mut renewed = own[0].clone();
    let expiry = renewed.expiration(now).unwrap().unwrap();
    assert!(!renewed.renew_if_needed(now).unwrap());
    let later = expiry - 30 * DAY;
    assert!(renewed.renew_if_needed(later).unwrap());
    let new_expiry = later + KEY_VALIDITY;
    assert_eq!(renewed.expiration(later).unwrap(), Some(new_expiry));
    let faked = format!(
        "{}",
        (later + DAY)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    home.run_ok(
        &["--faked-system-time", &faked, "--import"],
        renewed.public_armored().unwrap().as_bytes(),
    )
    .unwrap();
    let listing = home
        .run_ok(
            &[
                "--faked-system-time",
                &faked,
                "--with-colons",
                "--list-keys",
                &greta_fpr,
            ],
            b"",
        )
        .unwrap();
    let listing = String::from_utf8_lossy(&listing);
    let expected = new_expiry
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    for kind in ["pub:", "sub:"] {
        let line = listing.lines().find(|l| l.starts_with(kind)).unwrap();
        assert_eq!(line.split(':').nth(6), Some(expected.as_str()), "{listing}");
    }

    // And it signs as the user: gpg verifies mail it sends.
    let greta = &own[0];
    home.import(bob.public_armored().unwrap().as_bytes())
        .unwrap();
    let raw = encrypt_mail(
        &outgoing("greta@gnu.example", &["bob@example.org"]),
        greta,
        &[bob.cert()],
        now,
    )
    .unwrap();
    let out = home
        .run(
            &["--passphrase", GRETA_PASS, "--status-fd", "2", "--decrypt"],
            &pgp_mime_payload(&raw),
        )
        .unwrap();
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    let _ = t;
}

#[test]
fn gpg_imports_the_protected_export() {
    let t = t0();
    let alice = keypair("Alice", "alice@example.org", t);
    let (armored, pass) = alice.export_protected().unwrap();
    let home = GnupgHome::new().unwrap();
    home.import(armored.as_bytes()).unwrap();
    // A wrong passphrase does not unlock it (tried first: the agent caches a good one).
    let wrong = home
        .run(
            &[
                "--passphrase",
                "wrong",
                "--local-user",
                &alice.fingerprint().to_hex(),
                "--sign",
            ],
            b"hello",
        )
        .unwrap();
    assert!(!wrong.status.success());
    // gpg can use the secret with the generated passphrase: sign something.
    let out = home
        .run(
            &[
                "--passphrase",
                pass.expose(),
                "--status-fd",
                "2",
                "--local-user",
                &alice.fingerprint().to_hex(),
                "--sign",
            ],
            b"hello",
        )
        .unwrap();
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] SIG_CREATED"), "{status}");
}

#[test]
fn mail_between_sealpost_users_is_post_quantum_and_aead_which_gpg_2_2_cannot_read() {
    // Both keys are Sealpost's: they advertise SEIPDv2 and carry ML-KEM-768+X25519, so
    // mail between them is SEIPDv2 (AEAD) to the post-quantum subkeys only (issue 15).
    // The price: a user who moves the key to GnuPG 2.2 cannot read it there; gpg fails
    // cleanly, printing nothing of it.
    let t = t0();
    let now = SystemTime::now();
    let alice = keypair("Alice", "alice@example.org", t);
    let bob = keypair("Bob", "bob@example.org", t);
    let policy = sequoia_openpgp::policy::StandardPolicy::new();
    let cert = bob.cert();
    let vc = cert.with_policy(&policy, now).unwrap();
    let features = {
        use sequoia_openpgp::cert::Preferences;
        vc.primary_userid().unwrap().features().unwrap()
    };
    assert!(features.supports_seipdv1() && features.supports_seipdv2());

    let raw = encrypt_mail(
        &outgoing("alice@example.org", &["bob@example.org"]),
        &alice,
        &[bob.cert()],
        now,
    )
    .unwrap();
    let payload = pgp_mime_payload(&raw);
    let packets = sequoia_openpgp::PacketPile::from_bytes(&payload).unwrap();
    let mut pkesks = 0;
    for p in packets.children() {
        match p {
            sequoia_openpgp::Packet::PKESK(pkesk) => {
                pkesks += 1;
                assert_eq!(pkesk.version(), 6);
                assert_eq!(
                    pkesk.pk_algo(),
                    sequoia_openpgp::types::PublicKeyAlgorithm::MLKEM768_X25519
                );
            }
            sequoia_openpgp::Packet::SEIP(seip) => assert_eq!(seip.version(), 2),
            other => panic!("unexpected packet {other:?}"),
        }
    }
    assert_eq!(pkesks, 2, "Bob and Alice herself");

    let home = GnupgHome::new().unwrap();
    let (export, pass) = bob.export_protected().unwrap();
    home.import(export.as_bytes()).unwrap();
    let out = home
        .run(&["--passphrase", pass.expose(), "--decrypt"], &payload)
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET_SUBJECT));
}

#[test]
fn mail_from_sealpost_to_a_gpg_user_stays_readable_when_gpg_knows_the_sender() {
    // The sender is always a recipient, with its post-quantum subkey. GnuPG 2.2 that has
    // the sender's certificate in its keyring (to check signatures) gives up when the
    // first session-key packet names that unknown-algorithm key, so the classical
    // packets come first (`encrypt.rs`).
    let (home, greta_fpr, greta_cert) = greta();
    let t = t0();
    let now = SystemTime::now();
    let bob = keypair("Bob", "bob@example.org", t);
    home.import(bob.public_armored().unwrap().as_bytes())
        .unwrap();
    let raw = encrypt_mail(
        &outgoing("bob@example.org", &["greta@gnu.example"]),
        &bob,
        &[greta_cert],
        now,
    )
    .unwrap();
    let out = home
        .run(
            &["--passphrase", GRETA_PASS, "--status-fd", "2", "--decrypt"],
            &pgp_mime_payload(&raw),
        )
        .unwrap();
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(SECRET_SUBJECT));
    let _ = greta_fpr;
}
