//! `sealpost account …` as scripts use it, against the embedded sync server on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{ok, sealpost};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;

const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";
const PW3: &str = "saffron glacier mitten oyster banjo";

#[test]
fn two_devices_through_the_cli() {
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

    let created = ok(&sealpost(
        &a,
        &url,
        &[
            "--json",
            "account",
            "create",
            "--user",
            "dana",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    ));
    let v: serde_json::Value = serde_json::from_str(&created).unwrap();
    let code = v["recoveryCode"].as_str().unwrap().to_owned();

    ok(&sealpost(
        &a,
        &url,
        &["secret", "put", "imap/dana/password", "--password-stdin"],
        &format!("{PW}\nimap-Dana-42"),
    ));
    ok(&sealpost(
        &a,
        &url,
        &["account", "sync", "--password-stdin"],
        &format!("{PW}\n"),
    ));

    // Device B: same name and password, same secret.
    let signed = ok(&sealpost(
        &b,
        &url,
        &[
            "--json",
            "account",
            "login",
            "--user",
            "dana",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&signed).unwrap()["failedAttempts"],
        0
    );
    let got = sealpost(
        &b,
        &url,
        &["secret", "get", "imap/dana/password", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert_eq!(got.stdout, b"imap-Dana-42");

    let devices = ok(&sealpost(
        &a,
        &url,
        &["--json", "account", "devices", "--password-stdin"],
        &format!("{PW}\n"),
    ));
    let devices: Vec<serde_json::Value> = serde_json::from_str(&devices).unwrap();
    assert_eq!(devices.len(), 2);
    let b_id = devices.iter().find(|d| d["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A changes the password; B's old one is refused (exit 4), the new one signs B in.
    ok(&sealpost(
        &a,
        &url,
        &["account", "change-password", "--password-stdin"],
        &format!("{PW}\n{PW2}\n"),
    ));
    let refused = sealpost(
        &b,
        &url,
        &["account", "devices", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert_eq!(
        refused.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(&sealpost(
        &b,
        &url,
        &["account", "login", "--user", "dana", "--password-stdin"],
        &format!("{PW2}\n"),
    ));
    ok(&sealpost(
        &b,
        &url,
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW2}\n"),
    ));

    // A revokes B.
    ok(&sealpost(
        &a,
        &url,
        &["account", "revoke", &b_id, "--password-stdin"],
        &format!("{PW2}\n"),
    ));
    let devices = ok(&sealpost(
        &a,
        &url,
        &["--json", "account", "devices", "--password-stdin"],
        &format!("{PW2}\n"),
    ));
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&devices)
            .unwrap()
            .len(),
        1
    );

    // Forgotten password: the recovery code sets a new one, here on a third device.
    let c = tmp.path().join("c");
    let wrong = sealpost(
        &c,
        &url,
        &["account", "recover", "--user", "dana", "--password-stdin"],
        &format!("{}\n{PW3}\n", "0000-0000-0000-0000-0000-0000-0000"),
    );
    assert_ne!(wrong.status.code(), Some(0));
    ok(&sealpost(
        &c,
        &url,
        &["account", "recover", "--user", "dana", "--password-stdin"],
        &format!("{code}\n{PW3}\n"),
    ));
    let got = sealpost(
        &c,
        &url,
        &["secret", "get", "imap/dana/password", "--password-stdin"],
        &format!("{PW3}\n"),
    );
    assert_eq!(got.stdout, b"imap-Dana-42");
    let old = sealpost(
        &a,
        &url,
        &["account", "devices", "--password-stdin"],
        &format!("{PW2}\n"),
    );
    assert_eq!(
        old.status.code(),
        Some(4),
        "A's session ended with the recovery and PW2 is gone"
    );
}
