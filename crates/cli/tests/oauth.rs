//! `sealpost mail account add --oauth ISSUER` as a script runs it, against a real OpenID
//! provider (oidc-provider under Node), Dovecot checking its tokens and Postfix: the
//! command prints the address to open, the test plays the browser, the account is
//! stored and then syncs and sends with the token. A missing client id is refused
//! before any browser opens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ok, sealpost};
use sealpost_testkit::dovecot::{Dovecot, DovecotOptions, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::oidc::{self, OidcProvider};
use sealpost_testkit::postfix::Postfix;
use serde_json::Value;

const PW: &str = "tundra mosaic gravel whimsy plank";
const ALICE: &str = "alice@sealpost.test";
/// No sync server is used; the variable just has to be set.
const NO_SERVER: &str = "http://127.0.0.1:9";

fn run(profile: &Path, args: &[&str], stdin: &str) -> String {
    ok(&sealpost(profile, NO_SERVER, args, stdin))
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
fn an_oauth_account_is_added_from_the_command_line_and_used() {
    let ca = TestCa::new("cli oauth test CA").unwrap();
    let provider = OidcProvider::start(&[ALICE], Duration::from_secs(300)).unwrap();
    let dovecot = Dovecot::start_with(
        &ca,
        DovecotOptions {
            users: vec![TestUser::new(ALICE, "unused-mail-password")],
            oauth2_introspection: Some(provider.introspection_url()),
        },
    )
    .unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let imap = format!("localhost:{}", dovecot.imaps_port());
    let smtp = format!("localhost:{}", postfix.submissions_port());
    let profile = dir.path().join("alice");
    let pw = format!("{PW}\n");
    run(
        &profile,
        &["profile", "create", "--user", "alice", "--password-stdin"],
        &pw,
    );
    let issuer = provider.issuer();
    let add = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--json",
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--oauth",
            &issuer,
            "--imap",
            &imap,
            "--smtp",
            &smtp,
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--no-browser",
            "--password-stdin",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    // A generic provider needs the app's client id: refused in words, nothing stored.
    let args = add(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = sealpost(&profile, NO_SERVER, &args, &pw);
    assert_ne!(refused.status.code(), Some(0));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("client id"), "{err}");
    let listed: Value = serde_json::from_str(
        run(
            &profile,
            &["--json", "mail", "account", "list", "--password-stdin"],
            &pw,
        )
        .trim(),
    )
    .unwrap();
    assert_eq!(listed, serde_json::json!([]));

    // With it: the command prints the address to open and waits; the test is the
    // browser.
    let args = add(&["--client-id", provider.client_id()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .arg("--profile")
        .arg(&profile)
        .args(&args)
        .env("SEALPOST_SERVER", NO_SERVER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pw.as_bytes())
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no sign-in address printed: {seen}"
        );
        seen.push_str(&line);
        let line = line.trim();
        if line.starts_with(&issuer) {
            break line.to_owned();
        }
    };
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let (status, landed) = oidc::browse(&url).unwrap();
    assert_eq!(status, 200, "{landed}");
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}{seen}\n{}",
        dovecot.log()
    );
    let added: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(added["address"], ALICE);
    assert_eq!(added["signedInAt"], issuer.as_str());

    // The account works with the token: test, send to herself, sync until it is there.
    run(
        &profile,
        &["mail", "account", "test", "--password-stdin"],
        &pw,
    );
    run(
        &profile,
        &[
            "mail",
            "send",
            "--to",
            ALICE,
            "--subject",
            "sent by token",
            "--password-stdin",
        ],
        &format!("{PW}\nhello through OAuth2\n"),
    );
    let mut found = false;
    for _ in 0..40 {
        run(&profile, &["mail", "sync", "--password-stdin"], &pw);
        let list: Value = serde_json::from_str(
            run(
                &profile,
                &["--json", "mail", "list", "--password-stdin"],
                &pw,
            )
            .trim(),
        )
        .unwrap();
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"] == "sent by token")
        {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(found, "the mail sent with the token never arrived");

    // `account list` says how the account signs in; the sign-in's code in the URL is
    // nowhere in the profile (and neither is any token: checked in the core's tests).
    let listed = run(
        &profile,
        &["mail", "account", "list", "--password-stdin"],
        &pw,
    );
    assert!(listed.contains("signed in at"), "{listed}");
    let state = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap();
    assert!(files_contain(&profile, state.as_bytes()).is_empty());
}
