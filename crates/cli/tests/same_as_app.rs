//! The command line and the app stand on one API, so the same steps leave the same
//! profile: an account on the sync server, then a mail account added — once through the
//! `sealpost` binary, once through the API as the app calls it. Either way the own key is
//! made for the address, and the mail account reaches a second device through the
//! synced settings. Real sync server (in-process), Dovecot and Postfix on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{ok, sealpost};
use sealpost_core::api::{NewMailAccount, Security, ServerSettings};
use sealpost_core::{Core, CoreConfig};
use sealpost_crypto::Password;
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use serde_json::Value;

const PW: &str = "tundra mosaic gravel whimsy plank";
const CLI_USER: (&str, &str) = ("carol@sealpost.test", "carol-mail-password");
const APP_USER: (&str, &str) = ("dave@sealpost.test", "dave-mail-password");

/// What the steps left, as a shell would read it back: the own key's fingerprint and
/// addresses here, and the mail accounts and key a second device gets by signing in.
#[derive(Debug, PartialEq)]
struct State {
    key_addresses: Vec<String>,
    second_device_accounts: Vec<String>,
    second_device_has_the_key: bool,
}

struct Servers {
    ca: TestCa,
    _dovecot: Dovecot,
    _postfix: Postfix,
    sync: EmbeddedServer,
    imap: (String, u16),
    smtp: (String, u16),
}

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn through_the_cli(s: &Servers, dir: &Path) -> State {
    let (address, mail_pw) = CLI_USER;
    let url = s.sync.url();
    let (here, there) = (dir.join("cli"), dir.join("cli-2"));
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, s.ca.cert_pem()).unwrap();
    let pw = format!("{PW}\n");
    let cli =
        |profile: &Path, args: &[&str], stdin: &str| ok(&sealpost(profile, &url, args, stdin));
    cli(
        &here,
        &["account", "create", "--user", "carol", "--password-stdin"],
        &pw,
    );
    cli(
        &here,
        &[
            "mail",
            "account",
            "add",
            "--address",
            address,
            "--imap",
            &format!("{}:{}", s.imap.0, s.imap.1),
            "--smtp",
            &format!("{}:{}", s.smtp.0, s.smtp.1),
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW}\n{mail_pw}\n"),
    );
    let key = json(&cli(
        &here,
        &["--json", "key", "show", "--password-stdin"],
        &pw,
    ));
    cli(
        &there,
        &["account", "login", "--user", "carol", "--password-stdin"],
        &pw,
    );
    let accounts = json(&cli(
        &there,
        &["--json", "mail", "account", "list", "--password-stdin"],
        &pw,
    ));
    let key_there = json(&cli(
        &there,
        &["--json", "key", "show", "--password-stdin"],
        &pw,
    ));
    State {
        key_addresses: strings(&key["addresses"]),
        second_device_accounts: accounts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["address"].as_str().unwrap().to_owned())
            .collect(),
        second_device_has_the_key: key_there["fingerprint"] == key["fingerprint"],
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn core(s: &Servers, profile: &Path) -> Core {
    Core::start(
        CoreConfig {
            profile_dir: profile.to_path_buf(),
            server_url: s.sync.url(),
            device_name: "app".into(),
            mail_extra_roots_pem: String::new(),
            background: false,
            autoconfig_url: None,
        },
        Arc::new(|_| {}),
    )
    .unwrap()
}

async fn through_the_api(s: &Servers, dir: &Path) -> State {
    let (address, mail_pw) = APP_USER;
    let pw = || Password::new(PW).unwrap();
    let here = core(s, &dir.join("app"));
    here.account().create("dave".into(), pw()).await.unwrap();
    let server = |(host, port): &(String, u16)| ServerSettings {
        host: host.clone(),
        port: *port,
        security: Security::Tls,
    };
    here.mail()
        .add_account(NewMailAccount {
            address: address.into(),
            login: address.into(),
            imap: server(&s.imap),
            smtp: server(&s.smtp),
            password: zeroize::Zeroizing::new(mail_pw.into()),
            extra_roots_pem: s.ca.cert_pem().to_owned(),
        })
        .await
        .unwrap();
    // As the command line does before it exits: the settings sync that the add started.
    here.settle().await;
    let key = here.keys().mine().await.unwrap().expect("an own key");
    let there = core(s, &dir.join("app-2"));
    there.account().sign_in("dave".into(), pw()).await.unwrap();
    let accounts = there.mail().accounts().await.unwrap();
    let key_there = there.keys().mine().await.unwrap();
    State {
        key_addresses: key.addresses.clone(),
        second_device_accounts: accounts.into_iter().map(|a| a.address).collect(),
        second_device_has_the_key: key_there.is_some_and(|k| k.fingerprint == key.fingerprint),
    }
}

#[test]
fn adding_a_mail_account_leaves_the_same_profile_from_the_cli_and_from_the_api() {
    let ca = TestCa::new("same-as-app test CA").unwrap();
    let users = [
        TestUser::new(CLI_USER.0, CLI_USER.1),
        TestUser::new(APP_USER.0, APP_USER.1),
    ];
    let dovecot = Dovecot::start(&ca, &users).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sync = EmbeddedServer::start(
        &dir.path().join("server"),
        "127.0.0.1:0".parse().unwrap(),
        ServiceConfig {
            rate_per_second: 0.0,
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let servers = Servers {
        imap: ("localhost".into(), dovecot.imaps_port()),
        smtp: ("localhost".into(), postfix.submissions_port()),
        ca,
        _dovecot: dovecot,
        _postfix: postfix,
        sync,
    };

    let cli = through_the_cli(&servers, dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(through_the_api(&servers, dir.path()));

    // The same outcome, each for its own address.
    assert_eq!(
        cli,
        State {
            key_addresses: vec![CLI_USER.0.into()],
            second_device_accounts: vec![CLI_USER.0.into()],
            second_device_has_the_key: true,
        }
    );
    assert_eq!(
        app,
        State {
            key_addresses: vec![APP_USER.0.into()],
            second_device_accounts: vec![APP_USER.0.into()],
            second_device_has_the_key: true,
        }
    );
}
