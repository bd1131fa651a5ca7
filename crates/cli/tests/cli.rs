//! The `sealpost` binary as scripts use it: exit codes, stdin passwords, JSON, and what it
//! leaves on disk and on screen.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;

use std::process::{Command, Output, Stdio};

use sealpost_core::vault;
use sealpost_crypto::Password;

const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";

/// Runs `sealpost ARGS` with `stdin`, keeping everything it printed in `log`.
fn run(args: &[&str], stdin: &str, log: &mut Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .env_remove("SEALPOST_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading its input (a missing profile, say): a broken
    // pipe here is expected, not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    log.extend_from_slice(&out.stdout);
    log.extend_from_slice(&out.stderr);
    out
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn password_check_prints_the_verdict_and_exits_by_it() {
    let mut log = Vec::new();
    let weak = run(
        &["password", "check", "--password-stdin"],
        "password123\n",
        &mut log,
    );
    assert_eq!(code(&weak), 3, "{}", text(&weak));
    assert!(text(&weak).contains("refused"), "{}", text(&weak));
    assert!(text(&weak).contains("suggestion:"));

    let strong = run(
        &["password", "check", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );
    assert_eq!(code(&strong), 0, "{}", text(&strong));
    assert!(text(&strong).contains("accepted"));

    let json = run(
        &[
            "--json",
            "password",
            "check",
            "--password-stdin",
            "--user",
            "alice",
        ],
        "alice1990\n",
        &mut log,
    );
    assert_eq!(code(&json), 3);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["accepted"], false);
    assert!(v["crackSeconds"].as_f64().unwrap() < 100.0 * 365.25 * 86400.0);
    assert!(!v["crackTime"].as_str().unwrap().is_empty());
    assert!(!v["suggestions"].as_array().unwrap().is_empty());

    // A password never comes from the argument list.
    let arg = run(&["password", "check", PW], "", &mut log);
    assert_eq!(code(&arg), 2);
}

#[test]
fn profile_lifecycle_through_the_cli_and_nothing_secret_printed_or_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    let p = dir.to_str().unwrap();
    let mut log = Vec::new();

    // Refused password: exit 3, nothing created.
    let weak = run(
        &[
            "--profile",
            p,
            "profile",
            "create",
            "--user",
            "alice",
            "--password-stdin",
        ],
        "alice2024\n",
        &mut log,
    );
    assert_eq!(code(&weak), 3, "{}", text(&weak));
    assert!(!dir.join(vault::VAULT_FILE).exists());

    let created = run(
        &[
            "--json",
            "--profile",
            p,
            "profile",
            "create",
            "--user",
            "alice",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
        &mut log,
    );
    assert_eq!(code(&created), 0, "{}", text(&created));
    let v: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let recovery = v["recoveryCode"].as_str().unwrap().to_owned();
    assert_eq!(recovery.len(), 34);

    // A second create in the same place fails and changes nothing.
    let again = run(
        &["--profile", p, "profile", "create", "--password-stdin"],
        &format!("{PW2}\n"),
        &mut log,
    );
    assert_eq!(code(&again), 1, "{}", text(&again));

    let ok = |args: &[&str], stdin: &str, log: &mut Vec<u8>| {
        let mut full = vec!["--profile", p];
        full.extend_from_slice(args);
        let o = run(&full, stdin, log);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o));
        o
    };
    let wrong = |args: &[&str], stdin: &str, log: &mut Vec<u8>| {
        let mut full = vec!["--profile", p];
        full.extend_from_slice(args);
        let o = run(&full, stdin, log);
        assert_eq!(code(&o), 4, "{args:?}: {}", text(&o));
    };

    ok(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );
    wrong(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW2}\n"),
        &mut log,
    );
    ok(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );

    // Secrets: put, list, get.
    let secret_value = "imap-password-Zq8!wV";
    ok(
        &["secret", "put", "imap/password", "--password-stdin"],
        &format!("{PW}\n{secret_value}"),
        &mut log,
    );
    let listed = ok(
        &["--json", "secret", "list", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );
    // (Beside the mail store's own key, made at the first unlock.)
    assert_eq!(
        serde_json::from_slice::<Vec<String>>(&listed.stdout).unwrap(),
        ["imap/password", "mail/search-key"]
    );
    let mut get_log = Vec::new(); // the one output that may contain the value
    let got = ok(
        &["secret", "get", "imap/password", "--password-stdin"],
        &format!("{PW}\n"),
        &mut get_log,
    );
    assert_eq!(got.stdout, secret_value.as_bytes());

    // Change the password: old refused, new works.
    ok(
        &["profile", "change-password", "--password-stdin"],
        &format!("{PW}\n{PW2}\n"),
        &mut log,
    );
    wrong(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );
    ok(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW2}\n"),
        &mut log,
    );

    // Recovery code: a typo is caught before anything runs; the right code resets the password.
    let mut typo = recovery.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let t = run(
        &[
            "--profile",
            p,
            "profile",
            "unlock",
            "--recovery-code",
            "--password-stdin",
        ],
        &format!("{typo}\n"),
        &mut log,
    );
    assert_eq!(code(&t), 1);
    assert!(text(&t).contains("typo"), "{}", text(&t));
    ok(
        &["profile", "unlock", "--recovery-code", "--password-stdin"],
        &format!("{}\n", recovery.to_lowercase()),
        &mut log,
    );
    ok(
        &["profile", "recover", "--password-stdin"],
        &format!("{recovery}\n{PW}\n"),
        &mut log,
    );
    ok(
        &["profile", "unlock", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );
    let info = ok(&["--json", "profile", "info"], "", &mut log);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["user"], "alice");

    let got = ok(
        &["secret", "get", "imap/password", "--password-stdin"],
        &format!("{PW}\n"),
        &mut get_log,
    );
    assert_eq!(
        got.stdout,
        secret_value.as_bytes(),
        "secrets survive every step"
    );
    ok(
        &["secret", "delete", "imap/password", "--password-stdin"],
        &format!("{PW}\n"),
        &mut log,
    );

    // The scan: neither the passwords, nor the stored secret, nor any 8-byte piece of the
    // identity key, in anything printed (but `secret get`) or anything on disk.
    let unlocked = vault::open(&dir)
        .unwrap()
        .unlock(&Password::new(PW).unwrap())
        .unwrap();
    let key = *unlocked.identity().dangerous_expose_for_leak_tests();
    drop(unlocked);
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut haystacks = vec![("CLI output".to_owned(), log)];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    let mut needles: Vec<&[u8]> = vec![
        PW.as_bytes(),
        PW2.as_bytes(),
        secret_value.as_bytes(),
        key_hex.as_bytes(),
    ];
    needles.extend(key.windows(8));
    for (name, hay) in &haystacks {
        for n in &needles {
            assert!(
                !hay.windows(n.len()).any(|w| w == *n),
                "a secret was found in {name}"
            );
        }
    }
}

#[test]
fn missing_profile_and_bad_input_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("none");
    let mut log = Vec::new();
    let o = run(
        &[
            "--profile",
            p.to_str().unwrap(),
            "profile",
            "unlock",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
        &mut log,
    );
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("no Sealpost profile"), "{}", text(&o));
    // No password on stdin at all.
    let o = run(&["password", "check", "--password-stdin"], "", &mut log);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("end of input"), "{}", text(&o));
    let o = run(
        &[
            "--json",
            "--profile",
            p.to_str().unwrap(),
            "profile",
            "info",
        ],
        "",
        &mut log,
    );
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["error"]["code"], "profile_not_found");
}

/// Kills `sealpost profile change-password` at moments spread over its whole run (before,
/// during and after each Argon2 and the write) and checks that the old or the new password
/// always opens the vault, never neither, and that the secrets survive.
#[test]
fn a_killed_password_change_leaves_old_or_new_working() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    let clock = sealpost_core::clock::FixedClock(0);
    let (u, _) = vault::create(&dir, "alice", &Password::new(PW).unwrap(), &clock).unwrap();
    u.put_secret("k", b"survives", &clock).unwrap();
    drop(u);

    let change = |from: &str, to: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .args([
                "--profile",
                dir.to_str().unwrap(),
                "profile",
                "change-password",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = format!("{from}\n{to}\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        child
    };
    // How long one uninterrupted change takes on this machine, now: kills are spread over it.
    let started = std::time::Instant::now();
    assert!(change(PW, PW2).wait().unwrap().success());
    let full = started.elapsed();
    let (mut current, mut next) = (PW2, PW);

    let (mut old_kept, mut new_won) = (0, 0);
    const KILLS: u32 = 12;
    for i in 0..KILLS {
        let mut child = change(current, next);
        // Up to 1.5 times the measured run, so some kills land after the commit.
        std::thread::sleep(full * 3 * (i + 1) / (2 * KILLS));
        let _ = child.kill(); // SIGKILL: no destructor, no rollback code runs
        let _ = child.wait();

        let locked = vault::open(&dir).unwrap();
        let with_old = locked.unlock(&Password::new(current).unwrap());
        let with_new = locked.unlock(&Password::new(next).unwrap());
        match (with_old, with_new) {
            (Ok(u), Err(_)) => {
                old_kept += 1;
                assert_eq!(u.secret("k").unwrap().unwrap().expose(), b"survives");
            }
            (Err(_), Ok(u)) => {
                new_won += 1;
                assert_eq!(u.secret("k").unwrap().unwrap().expose(), b"survives");
                std::mem::swap(&mut current, &mut next);
            }
            (Ok(_), Ok(_)) => panic!("both passwords open the vault after kill #{i}"),
            (Err(a), Err(b)) => {
                panic!("neither password opens the vault after kill #{i}: {a}; {b}")
            }
        }
    }
    // The spread of kill times must have hit both sides, or the test proved little.
    assert!(
        old_kept > 0 && new_won > 0,
        "old kept {old_kept}, new won {new_won}"
    );
}
