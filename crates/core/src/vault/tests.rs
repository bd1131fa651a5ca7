//! Alice's profile through its whole life, and every way its files can be damaged.

use super::*;
use crate::clock::FixedClock;

const CLOCK: FixedClock = FixedClock(1_790_000_000);
const PW: &str = "tundra mosaic gravel whimsy plank";
const PW2: &str = "orbit velvet cashew lantern quarry";

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

fn alice() -> (tempfile::TempDir, Unlocked, RecoveryCode) {
    let dir = tempfile::tempdir().unwrap();
    let (u, code) = create(&dir.path().join("alice"), "alice", &pw(PW), &CLOCK).unwrap();
    (dir, u, code)
}

fn raw_conn(u: &Unlocked) -> Connection {
    Connection::open(u.info().dir.join(VAULT_FILE)).unwrap()
}

#[test]
fn whole_life_of_a_profile() {
    let (_d, u, code) = alice();
    let dir = u.info().dir.clone();
    u.put_secret("imap/password", b"mail-pass-1", &CLOCK)
        .unwrap();
    u.put_secret("smtp/password", b"mail-pass-2", &CLOCK)
        .unwrap();
    drop(u);

    // Unlock with the password.
    let locked = open(&dir).unwrap();
    assert_eq!(locked.info().user_name, "alice");
    let u = locked.unlock(&pw(PW)).unwrap();
    assert_eq!(
        u.secret("imap/password").unwrap().unwrap().expose(),
        b"mail-pass-1"
    );

    // Change the password: the old one stops working, the new one works, secrets survive.
    u.change_password(&pw(PW), &pw(PW2), &CLOCK).unwrap();
    let locked = u.lock();
    assert!(matches!(
        locked.unlock(&pw(PW)),
        Err(CoreError::WrongPassword)
    ));
    let u = locked.unlock(&pw(PW2)).unwrap();
    assert_eq!(
        u.secret("smtp/password").unwrap().unwrap().expose(),
        b"mail-pass-2"
    );
    drop(u);

    // The recovery code opens it too, and can set a new password.
    let locked = open(&dir).unwrap();
    let u = locked.unlock_with_recovery_code(&code).unwrap();
    assert_eq!(
        u.secret("imap/password").unwrap().unwrap().expose(),
        b"mail-pass-1"
    );
    let u = locked.recover(&code, &pw(PW), &CLOCK).unwrap();
    drop(u);
    assert!(matches!(
        locked.unlock(&pw(PW2)),
        Err(CoreError::WrongPassword)
    ));
    let u = locked.unlock(&pw(PW)).unwrap();
    assert_eq!(
        u.secret_names().unwrap(),
        ["imap/password", "smtp/password"]
    );
}

#[test]
fn wrong_password_changes_nothing_and_the_right_one_works_after() {
    let (_d, u, code) = alice();
    let dir = u.info().dir.clone();
    u.put_secret("k", b"v", &CLOCK).unwrap();
    let snapshot = |u: &Unlocked| -> Vec<(String, Vec<u8>)> {
        raw_conn(u)
            .prepare("SELECT kind, blob FROM vault_wrap UNION ALL SELECT name, value FROM secret ORDER BY 1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = snapshot(&u);
    drop(u);
    let locked = open(&dir).unwrap();
    let near_miss = pw("tundra mosaic gravel whimsy plank ");
    assert!(matches!(
        locked.unlock(&near_miss),
        Err(CoreError::WrongPassword)
    ));
    let wrong_code = RecoveryCode::generate().unwrap();
    assert!(matches!(
        locked.unlock_with_recovery_code(&wrong_code),
        Err(CoreError::WrongRecoveryCode)
    ));
    assert!(matches!(
        locked.recover(&wrong_code, &pw(PW2), &CLOCK),
        Err(CoreError::WrongRecoveryCode)
    ));
    // A weak new password is refused before anything is tried.
    assert!(matches!(
        locked.recover(&code, &pw("password1"), &CLOCK),
        Err(CoreError::WeakPassword(_))
    ));
    let u = locked.unlock(&pw(PW)).unwrap();
    assert_eq!(u.secret("k").unwrap().unwrap().expose(), b"v");
    assert_eq!(snapshot(&u), before, "a failed attempt changed the vault");
}

#[test]
fn change_password_with_wrong_old_or_weak_new_changes_nothing() {
    let (_d, u, _code) = alice();
    assert!(matches!(
        u.change_password(&pw(PW2), &pw(PW2), &CLOCK),
        Err(CoreError::WrongPassword)
    ));
    let err = u
        .change_password(&pw(PW), &pw("alice2024!"), &CLOCK)
        .unwrap_err();
    let CoreError::WeakPassword(verdict) = err else {
        panic!("{err:?}")
    };
    assert!(!verdict.suggestions.is_empty());
    let locked = u.lock();
    locked.unlock(&pw(PW)).unwrap();
}

#[test]
fn weak_password_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bob");
    let err = create(&p, "bob", &pw("bob12345"), &CLOCK).unwrap_err();
    assert_eq!(err.code(), "weak_password");
    assert!(!p.exists());
    assert!(matches!(open(&p), Err(CoreError::ProfileNotFound(_))));
}

#[test]
fn a_second_create_in_the_same_place_is_refused() {
    let (_d, u, _) = alice();
    let dir = u.info().dir.clone();
    assert!(matches!(
        create(&dir, "alice", &pw(PW2), &CLOCK),
        Err(CoreError::ProfileExists(_))
    ));
    drop(u);
    open(&dir).unwrap().unlock(&pw(PW)).unwrap();
}

#[test]
fn an_interrupted_password_change_leaves_a_working_vault() {
    for step in [
        ChangeStep::OldVerified,
        ChangeStep::NewWrapped,
        ChangeStep::Written,
    ] {
        let (_d, u, _) = alice();
        u.put_secret("k", b"v", &CLOCK).unwrap();
        let err = u
            .change_password_steps(&pw(PW), &pw(PW2), &CLOCK, &mut |s| {
                if s == step {
                    Err(CoreError::Injected("test"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(matches!(err, CoreError::Injected(_)), "{step:?}: {err:?}");
        let locked = u.lock();
        let u = locked
            .unlock(&pw(PW))
            .unwrap_or_else(|e| panic!("{step:?}: old password lost: {e}"));
        assert_eq!(u.secret("k").unwrap().unwrap().expose(), b"v");
        assert!(matches!(
            locked.unlock(&pw(PW2)),
            Err(CoreError::WrongPassword)
        ));
    }
}

#[test]
fn damaged_password_wrap_is_named() {
    let (_d, u, code) = alice();
    let conn = raw_conn(&u);
    let blob: Vec<u8> = conn
        .query_row(
            "SELECT blob FROM vault_wrap WHERE kind='password'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let locked = u.lock();

    // Truncated.
    conn.execute(
        "UPDATE vault_wrap SET blob = ?1 WHERE kind='password'",
        [&blob[..20]],
    )
    .unwrap();
    let err = locked.unlock(&pw(PW)).unwrap_err();
    assert!(
        matches!(err, CoreError::VaultDamaged { ref what, .. } if what.contains("password wrap")),
        "{err}"
    );

    // Bit-flipped ciphertext: cannot be told from a wrong password, but it never opens.
    let mut flipped = blob.clone();
    *flipped.last_mut().unwrap() ^= 1;
    conn.execute(
        "UPDATE vault_wrap SET blob = ?1 WHERE kind='password'",
        [&flipped],
    )
    .unwrap();
    assert!(matches!(
        locked.unlock(&pw(PW)),
        Err(CoreError::WrongPassword)
    ));

    // Missing.
    conn.execute("DELETE FROM vault_wrap WHERE kind='password'", [])
        .unwrap();
    let err = locked.unlock(&pw(PW)).unwrap_err();
    assert!(matches!(err, CoreError::VaultDamaged { .. }), "{err}");

    // The recovery code is a second way in: restore a password with it.
    conn.execute("INSERT INTO vault_wrap VALUES ('password', ?1, 0)", [&blob])
        .unwrap();
    locked.recover(&code, &pw(PW2), &CLOCK).unwrap();
}

#[test]
fn a_wrap_from_another_profile_is_refused() {
    let (_d, a, _) = alice();
    let dir = tempfile::tempdir().unwrap();
    // Bob has the same password; his wrap must still not open Alice's vault.
    let (b, _) = create(&dir.path().join("bob"), "bob", &pw(PW), &CLOCK).unwrap();
    let bob_wrap: Vec<u8> = raw_conn(&b)
        .query_row(
            "SELECT blob FROM vault_wrap WHERE kind='password'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    raw_conn(&a)
        .execute(
            "UPDATE vault_wrap SET blob = ?1 WHERE kind='password'",
            [&bob_wrap],
        )
        .unwrap();
    assert!(matches!(
        a.lock().unlock(&pw(PW)),
        Err(CoreError::WrongPassword)
    ));
}

#[test]
fn damaged_or_moved_secrets_are_errors_never_garbage() {
    let (_d, u, _) = alice();
    u.put_secret("a", b"value-a", &CLOCK).unwrap();
    u.put_secret("b", b"value-b", &CLOCK).unwrap();
    let conn = raw_conn(&u);
    let get = |n: &str| -> Vec<u8> {
        conn.query_row("SELECT value FROM secret WHERE name=?1", [n], |r| r.get(0))
            .unwrap()
    };
    let (va, vb) = (get("a"), get("b"));

    // Swapped between rows.
    conn.execute("UPDATE secret SET value=?1 WHERE name='a'", [&vb])
        .unwrap();
    let err = u.secret("a").unwrap_err();
    assert!(
        matches!(err, CoreError::SecretDamaged { ref name, .. } if name == "a"),
        "{err}"
    );

    // Bit-flipped.
    let mut flipped = va.clone();
    flipped[40] ^= 0x10;
    conn.execute("UPDATE secret SET value=?1 WHERE name='a'", [&flipped])
        .unwrap();
    assert_eq!(u.secret("a").unwrap_err().code(), "secret_damaged");

    // Truncated.
    conn.execute("UPDATE secret SET value=?1 WHERE name='a'", [&va[..30]])
        .unwrap();
    assert_eq!(u.secret("a").unwrap_err().code(), "secret_damaged");

    // From another profile, same name.
    let dir = tempfile::tempdir().unwrap();
    let (bob, _) = create(&dir.path().join("bob"), "bob", &pw(PW2), &CLOCK).unwrap();
    bob.put_secret("a", b"bobs-value", &CLOCK).unwrap();
    let bobs: Vec<u8> = raw_conn(&bob)
        .query_row("SELECT value FROM secret WHERE name='a'", [], |r| r.get(0))
        .unwrap();
    conn.execute("UPDATE secret SET value=?1 WHERE name='a'", [&bobs])
        .unwrap();
    assert_eq!(u.secret("a").unwrap_err().code(), "secret_damaged");

    // Restored, it reads again; the other one was never affected.
    conn.execute("UPDATE secret SET value=?1 WHERE name='a'", [&va])
        .unwrap();
    assert_eq!(u.secret("a").unwrap().unwrap().expose(), b"value-a");
    assert_eq!(u.secret("b").unwrap().unwrap().expose(), b"value-b");
}

#[test]
fn secret_names_are_checked() {
    let (_d, u, _) = alice();
    for bad in ["", "tab\there", &"x".repeat(MAX_SECRET_NAME_CHARS + 1)] {
        assert_eq!(
            u.put_secret(bad, b"v", &CLOCK).unwrap_err().code(),
            "invalid_secret_name"
        );
    }
    assert!(u.secret("absent").unwrap().is_none());
    assert!(!u.delete_secret("absent").unwrap());
    u.put_secret("x", b"1", &CLOCK).unwrap();
    u.put_secret("x", b"2", &CLOCK).unwrap();
    assert_eq!(u.secret("x").unwrap().unwrap().expose(), b"2");
    assert!(u.delete_secret("x").unwrap());
    assert!(u.secret("x").unwrap().is_none());
}

#[test]
fn replacing_the_recovery_code_retires_the_old_one() {
    let (_d, u, old) = alice();
    let new = u.replace_recovery_code(&CLOCK).unwrap();
    let locked = u.lock();
    assert!(matches!(
        locked.unlock_with_recovery_code(&old),
        Err(CoreError::WrongRecoveryCode)
    ));
    locked.unlock_with_recovery_code(&new).unwrap();
}

#[test]
fn nothing_secret_is_on_disk() {
    let (_d, u, _) = alice();
    let dir = u.info().dir.clone();
    let key = *u.identity().dangerous_expose_for_leak_tests();
    let secrets: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("secret-value-{i:04}-xyzzy").into_bytes())
        .collect();
    u.put_secrets(
        secrets
            .iter()
            .enumerate()
            .map(|(i, v)| (["n", &i.to_string()].concat(), v))
            .collect::<Vec<_>>()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice())),
        &CLOCK,
    )
    .unwrap();
    u.change_password(&pw(PW), &pw(PW2), &CLOCK).unwrap();
    u.delete_secret("n3").unwrap();
    drop(u);

    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        files.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!files.is_empty());
    let needles: Vec<&[u8]> = [PW.as_bytes(), PW2.as_bytes()]
        .into_iter()
        .chain(key.windows(8))
        .chain(secrets.iter().map(|s| s.as_slice()))
        .collect();
    for f in &files {
        for n in &needles {
            assert!(
                !f.windows(n.len()).any(|w| w == *n),
                "found a secret on disk"
            );
        }
    }
}

#[test]
fn the_profile_directory_is_private() {
    let (_d, u, _) = alice();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&u.info().dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
}
