//! The key directory from the command line, with every part real: `sealpost key publish`
//! asks the sync server, which mails the proof through Postfix to Dovecot; `sealpost mail
//! sync` fetches it over IMAP and confirms it by itself; another profile then finds the
//! key with `sealpost key lookup`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ok, sealpost};
use sealpost_mail::Secret;
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::mailer::{SmtpMailer, SmtpRelayConfig};
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use serde_json::Value;

const PW_A: &str = "tundra mosaic gravel whimsy plank";
const PW_B: &str = "orbit velvet cashew lantern quarry";
const ALICE: &str = "alice@sealpost.test";
const ALICE_MAIL_PW: &str = "alice's mail password";
const RELAY: &str = "directory@sealpost.test";
const RELAY_PW: &str = "the directory's relay password";

#[test]
fn mail_sync_confirms_the_directory_proof_by_itself() {
    let ca = TestCa::new("cli directory CA").unwrap();
    let users = [
        TestUser::new(ALICE, ALICE_MAIL_PW),
        TestUser::new(RELAY, RELAY_PW),
    ];
    let dovecot = Dovecot::start(&ca, &users).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let relay = SmtpRelayConfig {
        host: "localhost".into(),
        port: postfix.submissions_port(),
        security: "tls".into(),
        username: RELAY.into(),
        password_env: "UNUSED".into(),
        from: RELAY.into(),
        ca_file: Some(ca_file.clone()),
    };
    let mailer = Arc::new(SmtpMailer::new(&relay, Secret::new(RELAY_PW)).unwrap());
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let server = EmbeddedServer::start_with_mailer(
        &tmp.path().join("server"),
        "127.0.0.1:0".parse().unwrap(),
        config,
        Some(mailer),
    )
    .unwrap();
    let url = server.url();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let pa = format!("{PW_A}\n");

    ok(&sealpost(
        &a,
        &url,
        &["account", "create", "--user", "alice", "--password-stdin"],
        &pa,
    ));
    ok(&sealpost(
        &a,
        &url,
        &[
            "key",
            "generate",
            "--name",
            "Alice",
            "--address",
            ALICE,
            "--password-stdin",
        ],
        &pa,
    ));
    ok(&sealpost(
        &a,
        &url,
        &[
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--imap",
            &format!("localhost:{}", dovecot.imaps_port()),
            "--smtp",
            &format!("localhost:{}", postfix.submissions_port()),
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW_A}\n{ALICE_MAIL_PW}\n"),
    ));
    ok(&sealpost(
        &a,
        &url,
        &["key", "publish", ALICE, "--password-stdin"],
        &pa,
    ));

    // Nobody finds it before the proof comes back.
    ok(&sealpost(
        &b,
        &url,
        &["account", "create", "--user", "bob", "--password-stdin"],
        &format!("{PW_B}\n"),
    ));
    let early = sealpost(
        &b,
        &url,
        &["key", "lookup", ALICE, "--password-stdin"],
        &format!("{PW_B}\n"),
    );
    assert_eq!(early.status.code(), Some(1));

    // `mail sync` fetches the proof mail and confirms it without being asked.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let synced: Value = serde_json::from_str(
            ok(&sealpost(
                &a,
                &url,
                &["--json", "mail", "sync", "--password-stdin"],
                &pa,
            ))
            .trim(),
        )
        .unwrap();
        if synced["publishedKeys"] == serde_json::json!([ALICE]) {
            break;
        }
        assert!(Instant::now() < deadline, "no proof mail arrived: {synced}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let found: Value = serde_json::from_str(
        ok(&sealpost(
            &b,
            &url,
            &["--json", "key", "lookup", ALICE, "--password-stdin"],
            &format!("{PW_B}\n"),
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(found["observation"], "new");
    assert_eq!(found["contact"]["confirmed"], true);
    assert_eq!(found["contact"]["source"], "directory");
}
