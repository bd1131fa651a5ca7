//! `sealpost sop` as interoperability suites drive it: the examples of the SOP spec
//! (draft-dkg-openpgp-stateless-cli-14), its exit codes, and interop with Sequoia's
//! `sqop` and with GnuPG.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sealpost_testkit::gnupg::GnupgHome;
use tempfile::TempDir;

const SQOP: &str = "/usr/bin/sqop";

/// A scratch directory for key, certificate and output files.
struct Dir(TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `data` to `name` and returns its path as an argument.
    fn put(&self, name: &str, data: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

/// Runs `program args` with `stdin` and extra environment variables.
fn exec(program: &str, args: &[&str], stdin: &[u8], env: &[(&str, &[u8])]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("SEALPOST_PROFILE")
        // Stateless: a profile that does not exist must not matter.
        .env("HOME", "/nonexistent-sealpost-home")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        use std::os::unix::ffi::OsStrExt;
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // The command may exit before reading (a usage error): a broken pipe is expected.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// `sealpost sop ARGS`.
fn sop(args: &[&str], stdin: &[u8]) -> Output {
    sop_env(args, stdin, &[])
}

fn sop_env(args: &[&str], stdin: &[u8], env: &[(&str, &[u8])]) -> Output {
    let mut all = vec!["sop"];
    all.extend_from_slice(args);
    exec(env!("CARGO_BIN_EXE_sealpost"), &all, stdin, env)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The standard output of a command that must succeed.
fn ok(o: Output) -> Vec<u8> {
    assert_eq!(code(&o), 0, "failed: {}", err(&o));
    o.stdout
}

/// Asserts the exit code and that nothing went to standard output.
fn fails(o: &Output, expected: i32) {
    assert_eq!(code(o), expected, "stderr: {}", err(o));
    assert!(o.stdout.is_empty(), "output on failure: {:?}", o.stdout);
}

/// A key and its certificate, made by `sealpost sop`, stored in `dir`.
fn sealpost_key(dir: &Dir, name: &str, uid: &str) -> (String, String) {
    let key = ok(sop(&["generate-key", uid], b""));
    let cert = ok(sop(&["extract-cert"], &key));
    (
        dir.put(&format!("{name}.key"), &key),
        dir.put(&format!("{name}.cert"), &cert),
    )
}

/// Checks one `VERIFICATIONS` line: `DATE SIGNING-FPR PRIMARY-FPR mode:MODE`.
fn check_verification_line(line: &str, primary: &str, mode: &str) {
    let fields: Vec<&str> = line.split(' ').collect();
    assert!(fields.len() >= 4, "{line:?}");
    let date = fields[0];
    assert_eq!(date.len(), 20, "{line:?}");
    assert!(
        date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{line:?}"
    );
    assert_eq!(fields[1].len(), 40, "{line:?}");
    assert!(fields[1].chars().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    assert_eq!(fields[2], primary, "{line:?}");
    assert_eq!(fields[3], format!("mode:{mode}"), "{line:?}");
}

/// The primary fingerprint of the certificate in file `cert` (whose key is beside it,
/// `.key` for `.cert`), read from a verification line.
fn primary_fpr(cert: &str) -> String {
    let dir = Dir::new();
    let key = cert.replace(".cert", ".key");
    let sig = dir.put("sig", &ok(sop(&["sign", &key], b"x")));
    let line = String::from_utf8(ok(sop(&["verify", &sig, cert], b"x"))).unwrap();
    line.split(' ').nth(2).unwrap().to_owned()
}

/// Equal content; for the Cleartext Signature Framework up to the final line ending,
/// which sqop 0.27 (Sequoia 1.12) and Sequoia 2.4 read differently: the line break
/// before `-----BEGIN PGP SIGNATURE-----` is not part of the signed text (RFC 9580
/// §7.1), and the two disagree on whether a text ending in a newline shows it.
/// Both accept the signature either way.
fn same_text(got: &[u8], want: &[u8], mode: &str) {
    if mode == "clearsigned" {
        assert_eq!(got.trim_ascii_end(), want.trim_ascii_end(), "{mode}");
    } else {
        assert_eq!(got, want, "{mode}");
    }
}

fn have(program: &str) -> bool {
    let found = Path::new(program).exists();
    if !found {
        eprintln!("skipping: {program} is not installed");
    }
    found
}

// ---------------------------------------------------------------- the spec's examples

#[test]
fn version_and_list_profiles() {
    let v = String::from_utf8(ok(sop(&["version"], b""))).unwrap();
    assert!(v.starts_with("sealpost "), "{v}");
    let backend = String::from_utf8(ok(sop(&["version", "--backend"], b""))).unwrap();
    assert!(backend.contains("Sequoia"), "{backend}");
    let extended = String::from_utf8(ok(sop(&["version", "--extended"], b""))).unwrap();
    assert_eq!(extended.lines().next(), v.lines().next());
    assert!(extended.lines().count() > 1);
    let spec = String::from_utf8(ok(sop(&["version", "--sop-spec"], b""))).unwrap();
    assert!(
        spec.starts_with("draft-dkg-openpgp-stateless-cli-"),
        "{spec}"
    );
    fails(&sop(&["version", "--backend", "--extended"], b""), 83);

    let profiles = String::from_utf8(ok(sop(&["list-profiles", "generate-key"], b""))).unwrap();
    assert!(profiles.starts_with("rfc4880: "), "{profiles}");
    fails(&sop(&["list-profiles", "armor"], b""), 89);
    fails(&sop(&["list-profiles", "frobnicate"], b""), 69);
    ok(sop(
        &["generate-key", "--profile=rfc4880", "a@example.org"],
        b"",
    ));
    fails(
        &sop(&["generate-key", "--profile=rfc9580", "a@example.org"], b""),
        89,
    );
}

#[test]
fn generate_extract_sign_verify() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "Alice Lovelace <alice@openpgp.example>");
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(key_text.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
    let cert_text = std::fs::read_to_string(&cert).unwrap();
    assert!(cert_text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(!cert_text.contains("PRIVATE"));
    let primary = primary_fpr(&cert);

    // Binary (no-armor) key and certificate work the same.
    let bin_key = ok(sop(&["generate-key", "--no-armor", "bob@example.org"], b""));
    assert_ne!(bin_key.first(), Some(&b'-'));
    let bin_cert = ok(sop(&["extract-cert", "--no-armor"], &bin_key));
    let bin_key = dir.put("bob.key", &bin_key);
    let bin_cert = dir.put("bob.cert", &bin_cert);

    let data = b"Hello, world!\n";
    let sig = ok(sop(&["sign", &key], data));
    assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let sig = dir.put("data.sig", &sig);
    let out = String::from_utf8(ok(sop(&["verify", &sig, &cert], data))).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    check_verification_line(out.lines().next().unwrap(), &primary, "binary");
    // Several certificates: only the signer's signature shows.
    let out = String::from_utf8(ok(sop(&["verify", &sig, &bin_cert, &cert], data))).unwrap();
    assert_eq!(out.lines().count(), 1);

    // Wrong certificate, or other data: NO_SIGNATURE (3) and nothing on stdout.
    fails(&sop(&["verify", &sig, &bin_cert], data), 3);
    fails(&sop(&["verify", &sig, &cert], b"Hello, world?\n"), 3);
    // A time window that excludes the signature.
    fails(
        &sop(
            &["verify", "--not-after=2001-01-01T00:00:00Z", &sig, &cert],
            data,
        ),
        3,
    );
    ok(sop(
        &[
            "verify",
            "--not-before=2001-01-01",
            "--not-after=now",
            &sig,
            &cert,
        ],
        data,
    ));

    // Text mode, binary output, two signers, micalg.
    let micalg = dir.arg("micalg");
    let sigs = ok(sop(
        &[
            "sign",
            "--as=text",
            "--no-armor",
            &format!("--micalg-out={micalg}"),
            &key,
            &bin_key,
        ],
        b"line one\nline two\n",
    ));
    assert_eq!(dir.read("micalg"), b"pgp-sha256");
    let sigs = dir.put("text.sig", &sigs);
    let out = String::from_utf8(ok(sop(
        &["verify", &sigs, &cert, &bin_cert],
        b"line one\r\nline two\r\n",
    )))
    .unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.ends_with("mode:text")), "{out}");

    // --as=text needs text.
    fails(&sop(&["sign", "--as=text", &key], &[0xff, 0x00, 0xfe]), 53);
}

#[test]
fn verification_dates_and_windows() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "alice@example.org");
    let sig = dir.put("sig", &ok(sop(&["sign", &key], b"x")));
    let line = String::from_utf8(ok(sop(&["verify", &sig, &cert], b"x"))).unwrap();
    let date = line.split(' ').next().unwrap().to_owned();
    // 2026-11-23T16:14:32Z: the same instant in other ISO-8601 spellings.
    let (day, clock) = date.trim_end_matches('Z').split_once('T').unwrap();
    let compact = format!("{}T{}Z", day.replace('-', ""), clock.replace(':', ""));
    let hour: u32 = clock.get(..2).unwrap().parse().unwrap();
    let (day_plus, hour_plus) = if hour == 23 {
        (None, 0)
    } else {
        (Some(day), hour + 1)
    };
    for exact in [date.clone(), compact] {
        let before = format!("--not-before={exact}");
        let after = format!("--not-after={exact}");
        ok(sop(&["verify", &before, &after, &sig, &cert], b"x"));
    }
    if let Some(day) = day_plus {
        let offset = format!("{day}T{hour_plus:02}{}+01:00", clock.get(2..).unwrap());
        ok(sop(
            &["verify", &format!("--not-after={offset}"), &sig, &cert],
            b"x",
        ));
    }
    fails(
        &sop(
            &["verify", "--not-before=2999-01-01T00:00:00Z", &sig, &cert],
            b"x",
        ),
        3,
    );
    fails(
        &sop(&["verify", "--not-after=2001-01-01", &sig, &cert], b"x"),
        3,
    );
    ok(sop(
        &["verify", "--not-before=-", "--not-after=now", &sig, &cert],
        b"x",
    ));
    fails(
        &sop(&["verify", "--not-after=yesterday", &sig, &cert], b"x"),
        37,
    );
}

#[test]
fn encrypt_decrypt_with_keys_passwords_and_session_keys() {
    let dir = Dir::new();
    let (alice_key, alice_cert) = sealpost_key(&dir, "alice", "alice@example.org");
    let (bob_key, bob_cert) = sealpost_key(&dir, "bob", "bob@example.org");
    let plain = b"The magic words are squeamish ossifrage\n";

    let ct = ok(sop(
        &["encrypt", "--sign-with", &alice_key, &bob_cert],
        plain,
    ));
    assert!(ct.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    let verified = dir.arg("verified");
    let session = dir.arg("session");
    let out = ok(sop(
        &[
            "decrypt",
            &format!("--session-key-out={session}"),
            &format!("--verifications-out={verified}"),
            &format!("--verify-with={alice_cert}"),
            &bob_key,
        ],
        &ct,
    ));
    assert_eq!(out, plain);
    let lines = String::from_utf8(dir.read("verified")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    check_verification_line(
        lines.lines().next().unwrap(),
        &primary_fpr(&alice_cert),
        "binary",
    );
    let sk = String::from_utf8(dir.read("session")).unwrap();
    assert!(sk.starts_with("9:"), "{sk}");

    // The session key alone opens it; so would an @ENV: indirection.
    let out = ok(sop_env(
        &["decrypt", "--with-session-key=@ENV:SK"],
        &ct,
        &[("SK", sk.as_bytes())],
    ));
    assert_eq!(out, plain);

    // Signed by someone the caller does not list: decrypted, but no verifications.
    let none = dir.arg("none");
    let out = ok(sop(
        &[
            "decrypt",
            &format!("--verifications-out={none}"),
            &format!("--verify-with={bob_cert}"),
            &bob_key,
        ],
        &ct,
    ));
    assert_eq!(out, plain);
    assert!(dir.read("none").is_empty());

    // The wrong key: CANNOT_DECRYPT, no plaintext.
    fails(&sop(&["decrypt", &alice_key], &ct), 29);

    // Password encryption, binary, with the password from the environment; decrypt
    // tolerates the trailing newline a password file usually has.
    let ct = ok(sop_env(
        &["encrypt", "--no-armor", "--with-password=@ENV:PW"],
        plain,
        &[("PW", b"correct horse battery staple")],
    ));
    let pw_file = dir.put("pw", b"correct horse battery staple\n");
    assert_eq!(
        ok(sop(
            &["decrypt", &format!("--with-password={pw_file}")],
            &ct
        )),
        plain
    );
    let wrong = dir.put("wrong", b"incorrect horse\n");
    fails(
        &sop(&["decrypt", &format!("--with-password={wrong}")], &ct),
        29,
    );
    // A password that is not UTF-8.
    let binary_pw = dir.put("binpw", &[0xff, 0xfe, 0x00]);
    fails(
        &sop(&["encrypt", &format!("--with-password={binary_pw}")], plain),
        31,
    );

    // --as=text: literal data marked as text, input must be text.
    let ct = ok(sop(&["encrypt", "--as=text", &bob_cert], b"text\n"));
    assert_eq!(ok(sop(&["decrypt", &bob_key], &ct)), b"text\n");
    fails(
        &sop(&["encrypt", "--as=text", &bob_cert], &[0xc3, 0x28]),
        53,
    );
}

#[test]
fn tampered_or_unprotected_messages_give_no_plaintext() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "bob", "bob@example.org");
    let plain = vec![b'A'; 5000];
    let mut ct = ok(sop(&["encrypt", "--no-armor", &cert], &plain));
    let n = ct.len();
    ct[n - 100] ^= 0x20;
    let o = sop(&["decrypt", &key], &ct);
    assert!(
        code(&o) == 29 || code(&o) == 41,
        "tampered: {} {}",
        code(&o),
        err(&o)
    );
    assert!(o.stdout.is_empty());

    // Truncated.
    let ct = ok(sop(&["encrypt", "--no-armor", &cert], &plain));
    let o = sop(&["decrypt", &key], &ct[..ct.len() / 2]);
    assert!(code(&o) == 29 || code(&o) == 41, "truncated: {}", code(&o));
    assert!(o.stdout.is_empty());

    // A SED packet (tag 9, no MDC) is refused before any key is used. gpg makes one
    // with --rfc2440 --cipher-algo CAST5 for symmetric encryption.
    if have("/usr/bin/gpg") {
        let home = GnupgHome::new().unwrap();
        let sed = home.run(
            &[
                "--rfc2440",
                "--symmetric",
                "--cipher-algo",
                "CAST5",
                "--passphrase",
                "pw",
                "--pinentry-mode",
                "loopback",
                "--compress-algo",
                "none",
            ],
            b"no integrity",
        );
        if let Ok(sed) = sed
            && sed.status.success()
            && sed
                .stdout
                .first()
                .is_some_and(|b| b & 0x3f == 0x03 || *b == 0x8c)
        {
            let pw = dir.put("sedpw", b"pw");
            let o = sop(&["decrypt", &format!("--with-password={pw}")], &sed.stdout);
            assert!(code(&o) == 29 || code(&o) == 41, "SED: {}", code(&o));
            assert!(o.stdout.is_empty(), "SED plaintext was output");
        }
    }

    // Not an encrypted message at all.
    let sig = ok(sop(&["inline-sign", &key], b"hi"));
    fails(&sop(&["decrypt", &key], &sig), 41);
}

#[test]
fn exit_codes_for_usage_and_input_errors() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "alice@example.org");
    let missing = dir.arg("no-such-file");

    fails(&sop(&["frobnicate"], b""), 69);
    fails(&sop(&["merge-certs"], b""), 69);
    fails(&sop(&["sign", "--frobnicate", &key], b"x"), 37);
    fails(&sop(&["encrypt", "--profile=rfc9580", &cert], b"x"), 37);
    fails(&sop(&["sign"], b"x"), 19);
    fails(&sop(&["verify"], b"x"), 19);
    fails(&sop(&["encrypt"], b"x"), 19);
    fails(&sop(&["decrypt"], b"x"), 19);
    fails(&sop(&["inline-detach"], b"x"), 19);
    fails(&sop(&["sign", &missing], b"x"), 61);
    fails(
        &sop(&["encrypt", "--with-password=@ENV:SOP_UNSET_VAR"], b"x"),
        61,
    );
    fails(&sop(&["sign", "@NOPE:1"], b"x"), 71);

    // A certificate where a key is needed, garbage where a certificate is.
    fails(&sop(&["sign", &cert], b"x"), 41);
    fails(&sop(&["extract-cert"], b"not a key"), 41);
    let garbage = dir.put("garbage", b"this is not OpenPGP");
    fails(&sop(&["encrypt", &garbage], b"x"), 41);
    fails(&sop(&["dearmor"], b"not armored, not OpenPGP"), 41);

    // Outputs are never overwritten.
    let exists = dir.put("exists", b"keep me");
    let ct = ok(sop(&["encrypt", &cert], b"x"));
    fails(
        &sop(
            &["decrypt", &format!("--session-key-out={exists}"), &key],
            &ct,
        ),
        59,
    );
    assert_eq!(dir.read("exists"), b"keep me");
    fails(
        &sop(&["sign", &format!("--micalg-out={exists}"), &key], b"x"),
        59,
    );

    // --verifications-out needs --verify-with.
    let v = dir.arg("v");
    fails(
        &sop(&["decrypt", &format!("--verifications-out={v}"), &key], &ct),
        23,
    );

    // A signing-only key cannot be encrypted to.
    let signing_only = ok(sop(
        &["generate-key", "--signing-only", "s@example.org"],
        b"",
    ));
    let so_cert = dir.put("so.cert", &ok(sop(&["extract-cert"], &signing_only)));
    fails(&sop(&["encrypt", &so_cert], b"x"), 17);
}

#[test]
fn indirect_parameters() {
    let dir = Dir::new();
    // @FD:N: a key password on standard input (generate-key reads no data), and the
    // micalg written to standard error.
    let key = ok(sop(
        &[
            "generate-key",
            "--with-key-password=@FD:0",
            "fd@example.org",
        ],
        b"from a file descriptor",
    ));
    let key = dir.put("fd.key", &key);
    let env: &[(&str, &[u8])] = &[("PW", b"from a file descriptor")];
    let o = sop_env(
        &[
            "sign",
            "--micalg-out=@FD:2",
            "--with-key-password=@ENV:PW",
            &key,
        ],
        b"x",
        env,
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(err(&o).contains("pgp-sha256"));
    fails(&sop(&["sign", &key], b"x"), 67);

    // An @ designator that is also the name of an existing file is ambiguous.
    std::fs::write(dir.path("@ENV:PW"), b"a file").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(["sop", "sign", "--with-key-password=@ENV:PW", &key])
        .current_dir(dir.0.path())
        .env("PW", "from a file descriptor")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    fails(&o, 73);
    // @ENV: is not an output.
    fails(&sop(&["sign", "--micalg-out=@ENV:PW", &key], b"x"), 71);
}

#[test]
fn password_protected_keys() {
    let dir = Dir::new();
    let env: &[(&str, &[u8])] = &[("KEYPW", b"tundra mosaic gravel")];
    let key = ok(sop_env(
        &[
            "generate-key",
            "--with-key-password=@ENV:KEYPW",
            "carol@example.org",
        ],
        b"",
        env,
    ));
    let cert = dir.put("carol.cert", &ok(sop(&["extract-cert"], &key)));
    let key = dir.put("carol.key", &key);

    fails(&sop(&["sign", &key], b"x"), 67);
    let wrong = dir.put("wrongpw", b"not it");
    fails(
        &sop(
            &["sign", &format!("--with-key-password={wrong}"), &key],
            b"x",
        ),
        67,
    );
    let sig = ok(sop_env(
        &["sign", "--with-key-password=@ENV:KEYPW", &key],
        b"x",
        env,
    ));
    let sig = dir.put("x.sig", &sig);
    ok(sop(&["verify", &sig, &cert], b"x"));

    let ct = ok(sop(&["encrypt", &cert], b"for carol"));
    fails(&sop(&["decrypt", &key], &ct), 67);
    // Key passwords from a file with a trailing newline work too.
    let pw_file = dir.put("keypw", b"tundra mosaic gravel\n");
    assert_eq!(
        ok(sop(
            &["decrypt", &format!("--with-key-password={pw_file}"), &key],
            &ct
        )),
        b"for carol"
    );
}

#[test]
fn change_key_password_and_revoke_key() {
    let dir = Dir::new();
    let env: &[(&str, &[u8])] = &[("OLD", b"old words here"), ("NEW", b"new words here")];
    let key = ok(sop_env(
        &[
            "generate-key",
            "--with-key-password=@ENV:OLD",
            "erin@example.org",
        ],
        b"",
        env,
    ));
    fails(&sop(&["change-key-password"], &key), 67);
    let rekeyed = ok(sop_env(
        &[
            "change-key-password",
            "--old-key-password=@ENV:OLD",
            "--new-key-password=@ENV:NEW",
        ],
        &key,
        env,
    ));
    let rekeyed = dir.put("rekeyed.key", &rekeyed);
    fails(
        &sop_env(
            &["sign", "--with-key-password=@ENV:OLD", &rekeyed],
            b"x",
            env,
        ),
        67,
    );
    ok(sop_env(
        &["sign", "--with-key-password=@ENV:NEW", &rekeyed],
        b"x",
        env,
    ));
    let open = ok(sop_env(
        &["change-key-password", "--old-key-password=@ENV:NEW"],
        &std::fs::read(&rekeyed).unwrap(),
        env,
    ));
    let open_file = dir.put("open.key", &open);
    ok(sop(&["sign", &open_file], b"x"));

    // revoke-key: a certificate that can no longer be encrypted to.
    fails(&sop(&["revoke-key"], &key), 67);
    let revoked = ok(sop(&["revoke-key"], &open));
    assert!(revoked.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    let revoked = dir.put("revoked.cert", &revoked);
    fails(&sop(&["encrypt", &revoked], b"x"), 17);
    // GnuPG sees the revocation too. (sqop 0.27 does not check revocations when it
    // encrypts, so it is no judge here.)
    if have("/usr/bin/gpg") {
        let home = GnupgHome::new().unwrap();
        home.import(&std::fs::read(&revoked).unwrap()).unwrap();
        let listing = home
            .run_ok(&["--with-colons", "--list-keys", "erin@example.org"], b"")
            .unwrap();
        let listing = String::from_utf8(listing).unwrap();
        assert!(
            listing.lines().any(|l| l.starts_with("pub:r:")),
            "{listing}"
        );
    }
}

#[test]
fn armor_dearmor_round_trips() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "alice@example.org");
    for (file, label) in [(&key, "PRIVATE KEY BLOCK"), (&cert, "PUBLIC KEY BLOCK")] {
        let armored = std::fs::read(file).unwrap();
        let binary = ok(sop(&["dearmor"], &armored));
        assert_ne!(binary.first(), Some(&b'-'));
        let again = ok(sop(&["armor"], &binary));
        assert!(
            String::from_utf8_lossy(&again).starts_with(&format!("-----BEGIN PGP {label}-----")),
            "{label}"
        );
        // Idempotent both ways.
        assert_eq!(ok(sop(&["armor"], &again)), again);
        assert_eq!(ok(sop(&["dearmor"], &binary)), binary);
        assert_eq!(ok(sop(&["dearmor"], &again)), binary);
    }
    let sig = ok(sop(&["sign", "--no-armor", &key], b"x"));
    assert!(ok(sop(&["armor"], &sig)).starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    let msg = ok(sop(&["encrypt", "--no-armor", &cert], b"x"));
    let armored = ok(sop(&["armor"], &msg));
    assert!(armored.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    assert_eq!(ok(sop(&["decrypt", &key], &armored)), b"x");
}

#[test]
fn inline_sign_verify_detach() {
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "alice@example.org");
    let (_, other) = sealpost_key(&dir, "eve", "eve@example.org");
    let text = b"Dear Bob,\n\n- it is signed.\nAlice\n";
    for mode in ["binary", "text", "clearsigned"] {
        let signed = ok(sop(&["inline-sign", &format!("--as={mode}"), &key], text));
        if mode == "clearsigned" {
            assert!(signed.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----"));
        } else {
            assert!(signed.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        }
        let verified = dir.arg(&format!("{mode}.verified"));
        let out = ok(sop(
            &[
                "inline-verify",
                &format!("--verifications-out={verified}"),
                &cert,
            ],
            &signed,
        ));
        assert_eq!(out, text, "{mode}");
        let lines = String::from_utf8(dir.read(&format!("{mode}.verified"))).unwrap();
        let expect = if mode == "binary" { "binary" } else { "text" };
        check_verification_line(lines.lines().next().unwrap(), &primary_fpr(&cert), expect);
        fails(&sop(&["inline-verify", &other], &signed), 3);

        let sigs = dir.arg(&format!("{mode}.sigs"));
        let body = ok(sop(
            &["inline-detach", &format!("--signatures-out={sigs}")],
            &signed,
        ));
        ok(sop(&["verify", &sigs, &cert], &body));
    }
    fails(
        &sop(
            &["inline-sign", "--as=clearsigned", "--no-armor", &key],
            text,
        ),
        83,
    );
    let binary = ok(sop(&["inline-sign", "--no-armor", &key], b"\x00\x01"));
    assert_eq!(ok(sop(&["inline-verify", &cert], &binary)), b"\x00\x01");
}

// ---------------------------------------------------------------- interop

#[test]
fn interop_with_sqop() {
    if !have(SQOP) {
        return;
    }
    let sqop = |args: &[&str], stdin: &[u8]| exec(SQOP, args, stdin, &[]);
    let dir = Dir::new();
    let (ours_key, ours_cert) = sealpost_key(&dir, "sealpost", "Sealpost <s@example.org>");
    let theirs_key = ok(sqop(&["generate-key", "Sqop <q@example.org>"], b""));
    let theirs_cert = dir.put("sqop.cert", &ok(sqop(&["extract-cert"], &theirs_key)));
    let theirs_key = dir.put("sqop.key", &theirs_key);
    let plain = b"interop works\n";

    // sqop encrypts (and signs) to a sealpost key; sealpost decrypts and verifies.
    let ct = ok(sqop(
        &["encrypt", "--sign-with", &theirs_key, &ours_cert],
        plain,
    ));
    let verified = dir.arg("v1");
    let out = ok(sop(
        &[
            "decrypt",
            &format!("--verifications-out={verified}"),
            &format!("--verify-with={theirs_cert}"),
            &ours_key,
        ],
        &ct,
    ));
    assert_eq!(out, plain);
    assert_eq!(
        String::from_utf8(dir.read("v1")).unwrap().lines().count(),
        1
    );

    // sealpost encrypts and signs to sqop's key; sqop decrypts and verifies.
    let ct = ok(sop(
        &["encrypt", "--sign-with", &ours_key, &theirs_cert],
        plain,
    ));
    let verified = dir.arg("v2");
    let out = ok(sqop(
        &[
            "decrypt",
            &format!("--verify-out={verified}"),
            &format!("--verify-with={ours_cert}"),
            &theirs_key,
        ],
        &ct,
    ));
    assert_eq!(out, plain);
    assert_eq!(
        String::from_utf8(dir.read("v2")).unwrap().lines().count(),
        1
    );

    // Passwords both ways.
    let pw = dir.put("pw", b"shared secret words");
    let ct = ok(sqop(&["encrypt", &format!("--with-password={pw}")], plain));
    assert_eq!(
        ok(sop(&["decrypt", &format!("--with-password={pw}")], &ct)),
        plain
    );
    let ct = ok(sop(&["encrypt", &format!("--with-password={pw}")], plain));
    assert_eq!(
        ok(sqop(&["decrypt", &format!("--with-password={pw}")], &ct)),
        plain
    );

    // Detached signatures both ways, binary and text.
    for mode in ["binary", "text"] {
        let sig = dir.put(
            &format!("ours.{mode}.sig"),
            &ok(sop(&["sign", &format!("--as={mode}"), &ours_key], plain)),
        );
        ok(sqop(&["verify", &sig, &ours_cert], plain));
        let sig = dir.put(
            &format!("theirs.{mode}.sig"),
            &ok(sqop(&["sign", &format!("--as={mode}"), &theirs_key], plain)),
        );
        let line = String::from_utf8(ok(sop(&["verify", &sig, &theirs_cert], plain))).unwrap();
        assert!(line.trim_end().ends_with(&format!("mode:{mode}")), "{line}");
    }

    // Inline signatures both ways (clearsigned included).
    for mode in ["binary", "text", "clearsigned"] {
        let signed = ok(sop(
            &["inline-sign", &format!("--as={mode}"), &ours_key],
            plain,
        ));
        let out = ok(sqop(&["inline-verify", &ours_cert], &signed));
        same_text(&out, plain, mode);
        let signed = ok(sqop(
            &["inline-sign", &format!("--as={mode}"), &theirs_key],
            plain,
        ));
        let out = ok(sop(&["inline-verify", &theirs_cert], &signed));
        same_text(&out, plain, mode);
    }

    // Session keys: sealpost's output opens sqop's message in sqop, and the reverse.
    let ct = ok(sqop(&["encrypt", &ours_cert], plain));
    let sk = dir.arg("sk");
    ok(sop(
        &["decrypt", &format!("--session-key-out={sk}"), &ours_key],
        &ct,
    ));
    assert_eq!(
        ok(sqop(&["decrypt", &format!("--with-session-key={sk}")], &ct)),
        plain
    );

    // Armor from one, dearmor by the other.
    let armored = std::fs::read(&theirs_cert).unwrap();
    let binary = ok(sop(&["dearmor"], &armored));
    assert_eq!(ok(sqop(&["dearmor"], &armored)), binary);
}

#[test]
fn interop_with_gnupg() {
    if !have("/usr/bin/gpg") {
        return;
    }
    // GnuPG 2.2 reads neither ML-KEM keys nor SEIPDv2, so it takes part with a key of
    // its own (as its users do): sealpost encrypts to that classical key with SEIPDv1.
    let dir = Dir::new();
    let (key, cert) = sealpost_key(&dir, "alice", "Alice <alice@example.org>");
    let home = GnupgHome::new().unwrap();
    let gpg_fpr = home
        .quick_gen_key("Greta <greta@gnu.example>", None)
        .unwrap();
    let gpg_cert = dir.put("greta.cert", &home.export_public(&gpg_fpr).unwrap());
    let gpg_key = dir.put("greta.key", &home.export_secret(&gpg_fpr, None).unwrap());
    home.import(&std::fs::read(&cert).unwrap()).unwrap();

    // gpg encrypts to its own key, sealpost decrypts with it.
    let ct = home
        .run_ok(
            &[
                "--armor",
                "--trust-model",
                "always",
                "--encrypt",
                "--recipient",
                &gpg_fpr,
            ],
            b"from gpg",
        )
        .unwrap();
    assert_eq!(ok(sop(&["decrypt", &gpg_key], &ct)), b"from gpg");

    // sealpost encrypts to gpg's key and signs with its own; gpg decrypts and sees a
    // good signature (the signer's certificate, with its ML-KEM subkey, in its keyring).
    let ct = ok(sop(&["encrypt", "--sign-with", &key, &gpg_cert], b"to gpg"));
    let out = home.run(&["--status-fd", "2", "--decrypt"], &ct).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"to gpg");
    assert!(String::from_utf8_lossy(&out.stderr).contains("GOODSIG"));

    // gpg's detached signature verifies in sealpost.
    let sig = home
        .run_ok(
            &["--armor", "--detach-sign", "--local-user", &gpg_fpr],
            b"signed by gpg",
        )
        .unwrap();
    let sig = dir.put("gpg.sig", &sig);
    ok(sop(&["verify", &sig, &gpg_cert], b"signed by gpg"));
}
