//! `sealpost key …` and `sealpost mail open` as scripts use them: keys made in a profile,
//! exported to and imported from GnuPG, contacts remembered and confirmed, and stored
//! messages opened with the status the reader would show.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::{ok, sealpost};
use sealpost_pgp::{KeyPair, Mailbox, OutgoingMail, Passphrase, PreferEncrypt};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::gnupg::GnupgHome;
use serde_json::Value;

const PW_A: &str = "tundra mosaic gravel whimsy plank";
const PW_B: &str = "orbit velvet cashew lantern quarry";
const ALICE: &str = "alice@sealpost.test";
const BOB: &str = "bob@sealpost.test";

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn create(profile: &Path, url: &str, user: &str, pw: &str) {
    ok(&sealpost(
        profile,
        url,
        &["account", "create", "--user", user, "--password-stdin"],
        &format!("{pw}\n"),
    ));
}

fn mail(from: &KeyPair, to: &[sealpost_pgp::Cert], subject: &str) -> Vec<u8> {
    let m = OutgoingMail {
        from: Mailbox::new("Alice", ALICE),
        to: vec![Mailbox::new("Bob", BOB)],
        cc: vec![],
        subject: subject.into(),
        text: "The plan is in the attachment.".into(),
        html: None,
        attachments: vec![],
        date: 1_790_000_000,
        message_id: format!("{subject}@sealpost.test").replace(' ', "-"),
        in_reply_to: None,
        autocrypt: Some(PreferEncrypt::Mutual),
    };
    sealpost_pgp::encrypt_mail(&m, from, to, SystemTime::now()).unwrap()
}

#[test]
fn keys_go_to_gnupg_and_back_and_mail_opens_with_the_right_status() {
    let tmp = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let server = EmbeddedServer::start(
        &tmp.path().join("server"),
        "127.0.0.1:0".parse().unwrap(),
        config,
    )
    .unwrap();
    let url = server.url();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let pa = format!("{PW_A}\n");
    let pb = format!("{PW_B}\n");

    // Alice: an account and a key made in her profile.
    create(&a, &url, "alice", PW_A);
    let made = json(&ok(&sealpost(
        &a,
        &url,
        &[
            "--json",
            "key",
            "generate",
            "--name",
            "Alice",
            "--address",
            ALICE,
            "--password-stdin",
        ],
        &pa,
    )));
    let fpr = made["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(made["addresses"], serde_json::json!([ALICE]));
    let shown = json(&ok(&sealpost(
        &a,
        &url,
        &["--json", "key", "show", "--password-stdin"],
        &pa,
    )));
    assert_eq!(shown["fingerprint"], fpr.as_str());

    // Exported with a passphrase made for the file; GnuPG imports it with that passphrase.
    let file = tmp.path().join("alice.asc");
    let exported = json(&ok(&sealpost(
        &a,
        &url,
        &[
            "--json",
            "key",
            "export-secret",
            file.to_str().unwrap(),
            "--password-stdin",
        ],
        &pa,
    )));
    let passphrase = exported["passphrase"].as_str().unwrap().to_owned();
    assert!(!passphrase.contains(PW_A) && passphrase.len() >= 20);
    let armored = std::fs::read(&file).unwrap();
    assert!(armored.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    // It refuses to overwrite the file.
    let again = sealpost(
        &a,
        &url,
        &[
            "key",
            "export-secret",
            file.to_str().unwrap(),
            "--password-stdin",
        ],
        &pa,
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read(&file).unwrap(), armored);
    let gpg = GnupgHome::new().unwrap();
    gpg.run_ok(&["--passphrase", &passphrase, "--import"], &armored)
        .unwrap();
    let listed = String::from_utf8(
        gpg.run_ok(&["--with-colons", "--list-secret-keys"], b"")
            .unwrap(),
    )
    .unwrap();
    assert!(listed.contains(&fpr), "{listed}");
    // The key as the test's "Alice's mail program" uses it.
    let alice = KeyPair::import_secret(
        &armored,
        Some(&Passphrase::new(passphrase)),
        SystemTime::now(),
    )
    .unwrap();

    // Bob: a profile with a key; Alice's public key added by hand.
    create(&b, &url, "bob", PW_B);
    ok(&sealpost(
        &b,
        &url,
        &[
            "key",
            "generate",
            "--name",
            "Bob",
            "--address",
            BOB,
            "--password-stdin",
        ],
        &pb,
    ));
    let bob_pub = tmp.path().join("bob.asc");
    std::fs::write(
        &bob_pub,
        ok(&sealpost(
            &b,
            &url,
            &["key", "export-public", "--password-stdin"],
            &pb,
        )),
    )
    .unwrap();
    let bob_cert =
        sealpost_pgp::contact_cert(&std::fs::read(&bob_pub).unwrap(), BOB, SystemTime::now())
            .unwrap();
    let alice_pub = tmp.path().join("alice-public.asc");
    std::fs::write(&alice_pub, alice.public_armored().unwrap()).unwrap();
    let added = json(&ok(&sealpost(
        &b,
        &url,
        &[
            "--json",
            "key",
            "add-contact",
            ALICE,
            alice_pub.to_str().unwrap(),
            "--password-stdin",
        ],
        &pb,
    )));
    assert_eq!(added["observation"], "new");

    // An encrypted, signed mail: valid but unconfirmed, then verified once confirmed.
    let eml = tmp.path().join("lunch.eml");
    std::fs::write(&eml, mail(&alice, &[bob_cert], "Lunch on Thursday")).unwrap();
    let open = |path: &Path| {
        json(&ok(&sealpost(
            &b,
            &url,
            &[
                "--json",
                "mail",
                "open",
                path.to_str().unwrap(),
                "--password-stdin",
            ],
            &pb,
        )))
    };
    let opened = open(&eml);
    assert_eq!(opened["subject"], "Lunch on Thursday");
    assert_eq!(opened["subjectProtected"], true);
    assert_eq!(opened["encryption"], "decrypted");
    assert_eq!(opened["signature"]["state"], "unconfirmed");
    assert_eq!(opened["signature"]["signer"], fpr.as_str());
    assert_eq!(opened["text"], "The plan is in the attachment.");
    assert_eq!(opened["autocrypt"]["observation"], "known");
    // A wrong fingerprint does not confirm; the right one (any spacing) does.
    let wrong = sealpost(
        &b,
        &url,
        &["key", "verify", ALICE, "ABCD", "--password-stdin"],
        &pb,
    );
    assert_eq!(wrong.status.code(), Some(1));
    ok(&sealpost(
        &b,
        &url,
        &[
            "key",
            "verify",
            ALICE,
            &fpr.to_lowercase(),
            "--password-stdin",
        ],
        &pb,
    ));
    assert_eq!(open(&eml)["signature"]["state"], "confirmed");

    // The same mail with one byte of its ciphertext changed: nothing of it is shown.
    let mut tampered = std::fs::read(&eml).unwrap();
    let at = tampered.len() - 300;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let bad = tmp.path().join("tampered.eml");
    std::fs::write(&bad, &tampered).unwrap();
    let opened = open(&bad);
    assert_eq!(opened["encryption"], "failed");
    assert_eq!(opened["text"], "");
    assert_ne!(opened["subject"], "Lunch on Thursday");
    assert_ne!(opened["signature"]["state"], "confirmed");

    // GnuPG's own key (passphrase-protected) becomes a new profile's key.
    let c = tmp.path().join("c");
    create(&c, &url, "carol", PW_A);
    let gpg_fpr = gpg
        .quick_gen_key(
            "Carol <carol@sealpost.test>",
            Some("carol's gpg passphrase"),
        )
        .unwrap();
    let exported = gpg
        .export_secret(&gpg_fpr, Some("carol's gpg passphrase"))
        .unwrap();
    let carol_file = tmp.path().join("carol.asc");
    std::fs::write(&carol_file, &exported).unwrap();
    let no_passphrase = sealpost(
        &c,
        &url,
        &[
            "key",
            "import",
            carol_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &pa,
    );
    assert_eq!(no_passphrase.status.code(), Some(1));
    let imported = json(&ok(&sealpost(
        &c,
        &url,
        &[
            "--json",
            "key",
            "import",
            "--protected",
            carol_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW_A}\ncarol's gpg passphrase\n"),
    )));
    assert_eq!(imported["fingerprint"].as_str().unwrap(), gpg_fpr);
    // A second import does not silently replace it.
    let twice = sealpost(
        &c,
        &url,
        &[
            "key",
            "import",
            "--protected",
            carol_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW_A}\ncarol's gpg passphrase\n"),
    );
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("has an OpenPGP key already"));
}
