//! `sealpost mail …` as scripts use it, against a real Postfix and Dovecot on loopback:
//! accounts, sending (plain and encrypted), sync, list, read, search, and nothing of an
//! encrypted message readable in the profile's files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{ok, sealpost};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use serde_json::Value;

const PW: &str = "tundra mosaic gravel whimsy plank";
const ALICE: &str = "alice@sealpost.test";
const BOB: &str = "bob@sealpost.test";
const ALICE_MAIL_PW: &str = "alice-mail-password";
const BOB_MAIL_PW: &str = "bob-mail-password";
/// No sync server is used; the variable just has to be set.
const NO_SERVER: &str = "http://127.0.0.1:9";

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn run(profile: &Path, args: &[&str], stdin: &str) -> String {
    ok(&sealpost(profile, NO_SERVER, args, stdin))
}

fn pw() -> String {
    format!("{PW}\n")
}

/// `mail sync` until `mail list` shows at least `n` messages in INBOX.
fn sync_until(profile: &Path, n: usize) -> Vec<Value> {
    for _ in 0..40 {
        run(profile, &["mail", "sync", "--password-stdin"], &pw());
        let list = json(&run(
            profile,
            &["--json", "mail", "list", "--password-stdin"],
            &pw(),
        ));
        let list = list.as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("INBOX never reached {n} messages");
}

fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_contain(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[test]
fn mail_goes_out_through_postfix_comes_back_through_dovecot_encrypted_and_searchable() {
    let ca = TestCa::new("cli mail test CA").unwrap();
    let users = [
        TestUser::new(ALICE, ALICE_MAIL_PW),
        TestUser::new(BOB, BOB_MAIL_PW),
    ];
    let dovecot = Dovecot::start(&ca, &users).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let imap = format!("localhost:{}", dovecot.imaps_port());
    let smtp = format!("localhost:{}", postfix.submissions_port());
    let (a, b) = (dir.path().join("alice"), dir.path().join("bob"));

    for (profile, user, address, mail_pw, name) in [
        (&a, "alice", ALICE, ALICE_MAIL_PW, "Alice"),
        (&b, "bob", BOB, BOB_MAIL_PW, "Bob"),
    ] {
        run(
            profile,
            &["profile", "create", "--user", user, "--password-stdin"],
            &pw(),
        );
        run(
            profile,
            &[
                "key",
                "generate",
                "--name",
                name,
                "--address",
                address,
                "--password-stdin",
            ],
            &pw(),
        );
        let added = json(&run(
            profile,
            &[
                "--json",
                "mail",
                "account",
                "add",
                "--address",
                address,
                "--imap",
                &imap,
                "--smtp",
                &smtp,
                "--ca-file",
                ca_file.to_str().unwrap(),
                "--password-stdin",
            ],
            &format!("{PW}\n{mail_pw}\n"),
        ));
        assert_eq!(added["address"], address);
        // Kept only sealed in the vault.
        assert!(files_contain(profile, mail_pw.as_bytes()).is_empty());
        run(
            profile,
            &["mail", "account", "test", "--password-stdin"],
            &pw(),
        );
    }

    // A wrong mail password is reported as such, and nothing is stored (the account is
    // checked against its servers first, as in the app).
    let wrong = dir.path().join("wrong");
    run(
        &wrong,
        &["profile", "create", "--user", "w", "--password-stdin"],
        &pw(),
    );
    let failed = sealpost(
        &wrong,
        NO_SERVER,
        &[
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--imap",
            &imap,
            "--smtp",
            &smtp,
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW}\nnot-the-password\n"),
    );
    assert_ne!(failed.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("wrong user name or password"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let none = json(&run(
        &wrong,
        &["--json", "mail", "account", "list", "--password-stdin"],
        &pw(),
    ));
    assert_eq!(none, serde_json::json!([]));
    assert!(files_contain(&wrong, b"not-the-password").is_empty());

    // Plain mail to self.
    run(
        &a,
        &[
            "mail",
            "send",
            "--to",
            ALICE,
            "--subject",
            "hello self",
            "--password-stdin",
        ],
        &format!("{PW}\nThrough Postfix and back.\n"),
    );
    let list = sync_until(&a, 1);
    assert_eq!(list[0]["subject"], "hello self");
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let read = json(&run(
        &a,
        &["--json", "mail", "read", &id, "--password-stdin"],
        &pw(),
    ));
    assert!(
        read["text"]
            .as_str()
            .unwrap()
            .contains("Through Postfix and back.")
    );
    assert_eq!(read["encryption"], "none");
    // Reading marks it seen, as in the app.
    assert_eq!(read["summary"]["flags"], serde_json::json!(["\\Seen"]));

    // Flags and moves reach the server: a fresh sync still sees them.
    let flagged = json(&run(
        &a,
        &[
            "--json",
            "mail",
            "flag",
            &id,
            "--add",
            "seen",
            "--add",
            "$Forwarded",
            "--password-stdin",
        ],
        &pw(),
    ));
    assert_eq!(
        flagged["flags"],
        serde_json::json!(["\\Seen", "$Forwarded"])
    );
    run(
        &a,
        &["mail", "move", &id, "Archive", "--password-stdin"],
        &pw(),
    );
    run(&a, &["mail", "sync", "--password-stdin"], &pw());
    let archive = json(&run(
        &a,
        &[
            "--json",
            "mail",
            "list",
            "--folder",
            "Archive",
            "--password-stdin",
        ],
        &pw(),
    ));
    assert_eq!(archive[0]["subject"], "hello self");
    assert_eq!(
        archive[0]["flags"],
        serde_json::json!(["\\Seen", "$Forwarded"])
    );

    // Encrypting to Bob needs his key: refused, naming him, until Alice has it.
    let refused = sealpost(
        &a,
        NO_SERVER,
        &[
            "mail",
            "send",
            "--to",
            BOB,
            "--subject",
            "x",
            "--encrypt",
            "--password-stdin",
        ],
        &format!("{PW}\ny\n"),
    );
    assert_ne!(refused.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&refused.stderr).contains(BOB));
    let bob_key = run(&b, &["key", "export-public", "--password-stdin"], &pw());
    let key_file = dir.path().join("bob.asc");
    std::fs::write(&key_file, bob_key).unwrap();
    run(
        &a,
        &[
            "key",
            "add-contact",
            BOB,
            key_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &pw(),
    );
    let sent = json(&run(
        &a,
        &[
            "--json",
            "mail",
            "send",
            "--to",
            BOB,
            "--subject",
            "Zebrafinch itinerary",
            "--encrypt",
            "--password-stdin",
        ],
        &format!("{PW}\nBring the quasarblanket to the xylophonist.\n"),
    ));
    assert_eq!(sent["status"], "sent");

    // Bob: listed with the protected subject, read decrypted with a valid signature
    // (Alice's key came with the message, as Autocrypt), found by a word that exists
    // only inside the encryption.
    let list = sync_until(&b, 1);
    assert_eq!(list[0]["subject"], "Zebrafinch itinerary");
    assert_eq!(list[0]["encrypted"], true);
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let read = json(&run(
        &b,
        &["--json", "mail", "read", &id, "--password-stdin"],
        &pw(),
    ));
    assert_eq!(read["encryption"], "decrypted");
    assert_eq!(read["signature"]["state"], "unconfirmed", "{read}");
    assert_eq!(read["subjectProtected"], true);
    let found = json(&run(
        &b,
        &[
            "--json",
            "mail",
            "search",
            "xylophonist",
            "--password-stdin",
        ],
        &pw(),
    ));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"].as_i64().unwrap().to_string(), id);
    let none = json(&run(
        &b,
        &["--json", "mail", "search", "xylophon", "--password-stdin"],
        &pw(),
    ));
    assert!(none.as_array().unwrap().is_empty());

    // Nothing of it readable in either profile directory.
    for word in ["Zebrafinch", "quasarblanket", "xylophonist"] {
        for d in [&a, &b] {
            let hits = files_contain(d, word.as_bytes());
            assert!(hits.is_empty(), "{word} in {hits:?}");
        }
    }
}
