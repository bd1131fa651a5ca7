//! `sealpost mail account add` without `--imap`/`--smtp`: the servers come from the
//! domain's autoconfig document, fetched over HTTPS (here from a loopback server with a
//! test CA, named by `SEALPOST_AUTOCONFIG_URL`), and they work.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // `common::sealpost` cannot set the autoconfig variable; a local one does.
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::ok;
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::https::StaticHttps;
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use sealpost_testkit::watchdog::deadline;
use serde_json::Value;

const PW: &str = "tundra mosaic gravel whimsy plank";
const ALICE: &str = "alice@sealpost.test";
const ALICE_MAIL_PW: &str = "alice-mail-password";
const NO_SERVER: &str = "http://127.0.0.1:9";

fn sealpost(profile: &Path, autoconfig: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("SEALPOST_SERVER", NO_SERVER)
        .env("SEALPOST_AUTOCONFIG_URL", autoconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn account_add_takes_the_servers_from_the_domains_autoconfig_document() {
    let _deadline = deadline(Duration::from_secs(120), "the autoconfig test");
    let ca = TestCa::new("cli autoconfig test CA").unwrap();
    let dovecot = Dovecot::start(&ca, &[TestUser::new(ALICE, ALICE_MAIL_PW)]).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="sealpost.test">
    <domain>sealpost.test</domain>
    <incomingServer type="imap">
      <hostname>localhost</hostname><port>{imaps}</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>localhost</hostname><port>{smtps}</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#,
        imaps = dovecot.imaps_port(),
        smtps = postfix.submissions_port(),
    );
    let https = StaticHttps::start(
        &ca,
        vec![("/sealpost.test/config-v1.1.xml".into(), document)],
    )
    .unwrap();
    let url = format!(
        "https://localhost:{}/{{domain}}/config-v1.1.xml?emailaddress={{email}}",
        https.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let profile = dir.path().join("alice");
    ok(&sealpost(
        &profile,
        &url,
        &["profile", "create", "--user", "alice", "--password-stdin"],
        &format!("{PW}\n"),
    ));

    // Without the CA the document's server is not trusted: nothing is added.
    let refused = sealpost(
        &profile,
        &url,
        &[
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--password-stdin",
        ],
        &format!("{PW}\n{ALICE_MAIL_PW}\n"),
    );
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no settings found"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let added = ok(&sealpost(
        &profile,
        &url,
        &[
            "--json",
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW}\n{ALICE_MAIL_PW}\n"),
    ));
    let added: Value = serde_json::from_str(added.trim()).unwrap();
    assert_eq!(added["imap"]["port"], dovecot.imaps_port());
    assert_eq!(added["imap"]["security"], "tls");
    assert_eq!(added["smtp"]["port"], postfix.submissions_port());
    assert_eq!(added["login"], ALICE);
    assert!(
        https
            .seen()
            .iter()
            .any(|t| t
                .starts_with("/sealpost.test/config-v1.1.xml?emailaddress=alice%40sealpost.test")),
        "{:?}",
        https.seen()
    );
    // And they work.
    ok(&sealpost(
        &profile,
        &url,
        &["mail", "account", "test", "--password-stdin"],
        &format!("{PW}\n"),
    ));
}
