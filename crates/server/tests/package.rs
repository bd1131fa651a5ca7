//! The server's Debian package, as an operator installs and runs it, and its backup and
//! restore.
//!
//! The package is built by `packaging/server/build-deb.sh` around the binary cargo built
//! for this test (no second build), installed with `dpkg -i`, and then its systemd unit's
//! own `ExecStart` command line runs as the unit's user (`sealpost`, made by the
//! package) against a real PostgreSQL cluster and a real SoftHSMv2 token, provisioned
//! with `--provision-hsm`. A client signs up and in; the operations listener's
//! `/metrics` counts the login; `/readyz` fails while the token is away and recovers
//! when it is back. Then the documented backup (`pg_dump`) is restored into a new
//! database: a server on it with the same token serves the same account, and with
//! another token it does not even start.
//!
//! Needs root (dpkg, a system user); the package is purged at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "common/client.rs"]
mod client;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use client::Api;
use common::Process;
use sealpost_testkit::postgres::{BIN_DIR, PostgresCluster};
use sealpost_testkit::softhsm::{MODULE_PATH, SoftHsmToken};

const SERVER_ID: &str = "sync.package-test.example";
const PW: &str = "tundra mosaic gravel whimsy plank";
const UNIT: &str = "/lib/systemd/system/sealpost-server.service";
const CONFIG: &str = "/etc/sealpost-server/server.toml";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the package when the test ends, passed or failed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "sealpost-server"])
            .output();
    }
}

/// The unit's `ExecStart` command line, split into words.
fn exec_start() -> Vec<String> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    line.split_whitespace().map(str::to_owned).collect()
}

/// The unit's command line (plus `extra`) as the unit's user, with the secrets the
/// unit's environment file would give it.
fn as_unit_user(extra: &[&str], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=sealpost",
        "--regid=sealpost",
        "--init-groups",
        "--",
    ])
    .args(exec_start())
    .args(extra)
    .env_clear()
    .env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn write_config(store_env: &str, token: &SoftHsmToken) {
    std::fs::write(
        CONFIG,
        format!(
            "listen = \"127.0.0.1:0\"\nserver_id = \"{SERVER_ID}\"\n\
             [store]\nkind = \"postgres\"\nurl_env = \"{store_env}\"\n\
             [hsm]\nkind = \"pkcs11\"\nmodule = \"{MODULE_PATH}\"\ntoken_label = \"{}\"\n\
             pin_env = \"SEALPOST_HSM_PIN\"\n\
             [limits]\nrate_per_second = 0.0\n\
             [ops]\nlisten = \"127.0.0.1:0\"\n",
            token.label()
        ),
    )
    .unwrap();
}

fn secrets(url: &str, token: &SoftHsmToken) -> Vec<(&'static str, String)> {
    vec![
        ("SEALPOST_POSTGRES_URL", url.to_owned()),
        ("SEALPOST_HSM_PIN", token.user_pin().to_owned()),
        ("SOFTHSM2_CONF", token.conf_path().display().to_string()),
    ]
}

/// A token the `sealpost` user can use: its directory handed over.
fn token_for_sealpost() -> SoftHsmToken {
    let token = SoftHsmToken::new().unwrap();
    let dir = token.conf_path().parent().unwrap();
    run(Command::new("chown")
        .args(["-R", "sealpost:sealpost"])
        .arg(dir));
    token
}

fn get(url: &str) -> (u16, String) {
    let resp = reqwest::blocking::Client::new().get(url).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn build_deb(out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let started = Instant::now();
    let deb = run(Command::new("bash")
        .arg(root.join("packaging/server/build-deb.sh"))
        .args([
            "--fast",
            "--binary",
            env!("CARGO_BIN_EXE_sealpost-server"),
            "--out",
        ])
        .arg(out));
    let deb = PathBuf::from(deb.trim());
    eprintln!(
        "built {} ({} bytes) in {:.1} s",
        deb.display(),
        std::fs::metadata(&deb).unwrap().len(),
        started.elapsed().as_secs_f64()
    );
    deb
}

#[test]
fn the_installed_package_runs_as_its_user_and_a_restored_dump_serves_the_same_accounts() {
    assert_eq!(
        run(Command::new("id").arg("-u")).trim(),
        "0",
        "this test installs a Debian package: run it as root"
    );
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path());
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let _installed = Installed;

    // What the package installed.
    run(Command::new("id").arg("sealpost"));
    let unit = std::fs::read_to_string(UNIT).unwrap();
    for line in [
        "User=sealpost",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "StateDirectory=sealpost-server",
        "StandardError=journal",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let shipped = std::fs::read_to_string(CONFIG).unwrap();
    assert!(shipped.contains("listen = \"127.0.0.1:8443\""), "{shipped}");
    assert!(shipped.contains("listen = \"127.0.0.1:9464\""), "{shipped}");
    let mode = run(Command::new("stat").args(["-c", "%a %U:%G", CONFIG]));
    assert_eq!(mode.trim(), "640 root:sealpost");
    assert!(Path::new("/var/lib/sealpost-server").is_dir());

    // PostgreSQL and a SoftHSM token for the server; the token provisioned by the
    // installed binary, as its user.
    let cluster = PostgresCluster::start().unwrap();
    let url = cluster.create_database("sealpost").unwrap();
    let token = token_for_sealpost();
    write_config("SEALPOST_POSTGRES_URL", &token);
    let env = secrets(&url, &token);
    run(&mut as_unit_user(&["--provision-hsm"], &env));

    let server = Process::spawn(as_unit_user(&[], &env));
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let sealpost_uid = run(Command::new("id").args(["-u", "sealpost"]));
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:")
                && l.split_whitespace().nth(1) == Some(sealpost_uid.trim())),
        "{status}"
    );
    assert!(server.log_contains("PKCS#11 token"), "runs on the token");
    let ops = format!("http://{}", server.log_field("ops").unwrap());

    // Sign up, sign in; the login is counted.
    let api = Api::new(&server.base, SERVER_ID);
    let identity = api.register("alice", PW);
    let before = get(&format!("{ops}/metrics")).1;
    api.login("alice", PW, &identity, &format!("{:032x}", 1));
    let (status, after) = get(&format!("{ops}/metrics"));
    assert_eq!(status, 200);
    assert_eq!(
        metric(&after, "sealpost_logins_finished_total"),
        metric(&before, "sealpost_logins_finished_total") + 1.0,
        "{after}"
    );
    assert_eq!(metric(&after, "sealpost_logins_finished_total"), 1.0);
    assert_eq!(metric(&after, "sealpost_sessions_open"), 1.0);
    assert!(!after.contains("alice"));
    assert_eq!(get(&format!("{ops}/readyz")).0, 200);

    // The token goes away (its directory moved): not ready, though alive. SoftHSMv2
    // does not notice its token coming back inside a running process (it keeps the
    // emptied object list), so the unit's restart brings the server back, ready.
    let tokens = token.conf_path().with_file_name("tokens");
    let away = token.conf_path().with_file_name("tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    wait_until("/readyz fails without the token", || {
        get(&format!("{ops}/readyz")).0 == 503
    });
    let (_, body) = get(&format!("{ops}/readyz"));
    assert_eq!(body, r#"{"status":"not ready","store":true,"hsm":false}"#);
    assert_eq!(get(&format!("{ops}/healthz")).0, 200, "alive all the same");
    std::fs::rename(&away, &tokens).unwrap();
    drop(server);
    let server = Process::spawn(as_unit_user(&[], &env));
    let ops = format!("http://{}", server.log_field("ops").unwrap());
    assert_eq!(get(&format!("{ops}/readyz")).0, 200);
    drop(server);

    // Backup and restore, as README.md in the package says: a dump of the database,
    // restored into a new one, serves the same account with the same token.
    let dump = work.path().join("sealpost.dump");
    run(Command::new(Path::new(BIN_DIR).join("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-Fc",
            "-d",
            "sealpost",
            "-f",
        ])
        .arg(&dump)
        .arg("-p")
        .arg(cluster.port().to_string()));
    let restored = cluster.create_database("restored").unwrap();
    run(Command::new(Path::new(BIN_DIR).join("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--no-owner",
            "-d",
            "restored",
        ])
        .arg("-p")
        .arg(cluster.port().to_string())
        .arg(&dump));
    let env = secrets(&restored, &token);
    let server = Process::spawn(as_unit_user(&[], &env));
    let api = Api::new(&server.base, SERVER_ID);
    api.login("alice", PW, &identity, &format!("{:032x}", 2));
    drop(server);

    // Without the HSM's keys nothing opens: with another token (same labels, other
    // keys) the server on the restored database refuses to start.
    let other = token_for_sealpost();
    write_config("SEALPOST_POSTGRES_URL", &other);
    let env = secrets(&restored, &other);
    run(&mut as_unit_user(&["--provision-hsm"], &env));
    let out = as_unit_user(&[], &env).output().unwrap();
    assert!(
        !out.status.success(),
        "a server started without its HSM keys"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("sealpost-server stopped"), "{log}");
}
