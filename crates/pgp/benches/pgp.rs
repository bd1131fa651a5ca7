#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::panic
)]
//! Sealpost's OpenPGP core against GnuPG, Sequoia's `sq`/`sqop` and rPGP's `rsop`, side
//! by side in one run, on the same keys and the same data, plus a bulk run against a
//! floor measured with `openssl speed`.
//!
//! Run: `cargo build --release -p sealpost-cli && cargo bench -p sealpost-pgp --bench
//! pgp`. Needs `gpg`, `sq`, `sqop` and `openssl` on the PATH (scripts/install-deps.sh);
//! `rsop` (scripts/interop-deps.sh) and the `sealpost` binary (found through
//! `SEALPOST_BIN`, else `$CARGO_TARGET_DIR/release/sealpost`, else
//! `target/release/sealpost`) are used when present. Prints its tables.
//!
//! 1. **Same file, every reader** (issue 15): a 10 MiB binary message, signed and
//!    encrypted, made once by gpg (SEIPDv1), once by sqop (SEIPDv1) and once by Sealpost
//!    to a Sealpost key (SEIPDv2, ML-KEM-768+X25519), each file decrypted and verified
//!    by every tool that can read it: Sealpost in-process (the mail reader's
//!    `decrypt` + signature status: no process, no file), `sealpost sop decrypt`,
//!    `sqop decrypt`, `gpg --decrypt` and `rsop decrypt` as whole processes (start-up,
//!    reading the key files and the ciphertext from disk included; output to
//!    /dev/null). gpg and sqop 0.27 cannot read SEIPDv2 or ML-KEM; that row says so.
//! 2. **Post-quantum encrypt+sign of 1 KiB** in-process (sender and recipient with
//!    ML-KEM-768+X25519 keys: two encapsulations, one Ed25519 signature, SEIPDv2).
//! 3. encrypt+sign and decrypt+verify at 1 KiB, 100 KiB and 10 MiB against
//!    `gpg --sign --encrypt -z 0` and `sq encrypt --compression none` (armored, to the
//!    recipient and the sender, classical keys so that all three read each other: the
//!    decrypt row runs the *same* Sealpost-made SEIPDv1 ciphertext through all three).
//!
//! Each cell gives the median wall time and the mean CPU time per run (for the tools:
//! the child's user+sys time from `/proc/self/stat`); ratios use CPU time, since the
//! machine may be shared and wall time then depends on the neighbours. gpg's CPU figure
//! leaves out its `gpg-agent`, which is not a child and does gpg's secret-key
//! operations (one X25519 to decrypt, one Ed25519 signature to sign): gpg's real cost
//! is a little higher than shown. 4. bulk: 10,000 messages of 4 KiB decrypted and
//! verified one after another on one core, against a floor of one X25519, one Ed25519
//! verification, and AES-256-CFB, SHA-1 (MDC) and SHA-512 (signature) over the bytes,
//! at `openssl speed` rates.
//!
//! Nothing is compressed (STACK.md §1.1: compression costs far more than it saves on
//! attachments, which are mostly compressed already).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use cpu_time::ProcessTime;
use rand::RngCore;
use sealpost_pgp::{KeyPair, OpenContext, SignatureStatus, decrypt, encrypt, sop_support};
use sealpost_testkit::gnupg::GnupgHome;
use sequoia_openpgp::cert::prelude::*;
use sequoia_openpgp::serialize::Serialize;
use sequoia_openpgp::types::{Features, KeyFlags};

const SIZES: [(usize, &str); 3] = [
    (1 << 10, "1 KiB"),
    (100 << 10, "100 KiB"),
    (10 << 20, "10 MiB"),
];
const BULK_MESSAGES: usize = 10_000;
const BULK_SIZE: usize = 4 << 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time used so far by this process's finished children (`cutime + cstime` from
/// `/proc/self/stat`), in seconds.
fn children_cpu(ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 16 and 17 of proc(5), counted from `state` (field 3).
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    ticks / ticks_per_second
}

/// A measurement: median wall time per run, and mean CPU time per run (ours, or the
/// children's for the command-line tools). The CPU figure is what the ratios use: the
/// machine is shared, and wall time there depends on the neighbours.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

fn time_n(n: usize, children: bool, ticks: f64, mut f: impl FnMut()) -> Timing {
    f(); // warm-up
    let (cpu0, child0) = (ProcessTime::now(), children_cpu(ticks));
    let wall = median(
        (0..n)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed()
            })
            .collect(),
    );
    let cpu = if children {
        Duration::from_secs_f64((children_cpu(ticks) - child0) / n as f64)
    } else {
        cpu0.elapsed() / n as u32
    };
    Timing { wall, cpu }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn version(program: &str) -> String {
    let out = Command::new(program).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `openssl speed` figures: (X25519 ops/s, Ed25519 verify/s, bytes/s for AES-256-CFB,
/// SHA-1, SHA-512 on 4 KiB blocks).
fn openssl_floor() -> (f64, f64, f64, f64, f64) {
    let speed = |args: &[&str]| {
        let out = Command::new("openssl")
            .arg("speed")
            .args(["-seconds", "2"])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let last_number = |text: &str, needle: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {text}"));
        line.split_whitespace()
            .last()
            .unwrap()
            .trim_end_matches('k')
            .parse::<f64>()
            .unwrap()
    };
    let asym = speed(&["ecdhx25519", "ed25519"]);
    let x25519 = last_number(&asym, "X25519");
    let ed25519_verify = last_number(&asym, "Ed25519");
    let rate = |alg: &str, label: &str| {
        last_number(&speed(&["-bytes", "4096", "-evp", alg]), label) * 1000.0
    };
    (
        x25519,
        ed25519_verify,
        rate("aes-256-cfb", "AES-256-CFB"),
        rate("sha1", "sha1"),
        rate("sha512", "sha512"),
    )
}

/// A classical v4 key pair (Ed25519 signing, X25519 encryption, SEIPDv1 only), as
/// GnuPG 2.2, sq 0.27 and sqop 0.27 read them.
fn classical(uid: &str, t: SystemTime) -> KeyPair {
    let (cert, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(t)
        .set_features(Features::empty().set_seipdv1())
        .unwrap()
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .add_userid(uid)
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .unwrap();
    let mut bytes = Vec::new();
    cert.as_tsk().serialize(&mut bytes).unwrap();
    KeyPair::from_secret_bytes(&bytes, SystemTime::now()).unwrap()
}

/// The `sealpost` binary, if built (see the module docs).
fn sealpost_bin() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("SEALPOST_BIN").map(Into::into),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| Path::new(&d).join("release/sealpost")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/sealpost")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// A program on the PATH, if there.
fn which(program: &str) -> Option<String> {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// How a SOP or gpg reader is run on a file: the program, its arguments, and whether it
/// is a SOP implementation (verifications written to a file) or gpg.
struct Reader {
    name: &'static str,
    program: String,
    args: Vec<String>,
    sop: bool,
}

impl Reader {
    fn command(&self, ct: &Path, verifications: &Path) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if self.sop {
            c.arg("--verifications-out").arg(verifications);
        }
        c.stdin(std::fs::File::open(ct).unwrap());
        c
    }

    /// The command line, for the table's notes.
    fn shown(&self) -> String {
        let mut s = format!("{} {}", self.program, self.args.join(" "));
        if self.sop {
            s.push_str(" --verifications-out FILE");
        }
        s.push_str(" < CIPHERTEXT > /dev/null");
        s
    }
}

/// Issue 15's measurements: the same 10 MiB files through every reader, and
/// post-quantum encrypt+sign of 1 KiB.
fn issue15(t: SystemTime, ticks: f64) {
    const SIZE: usize = 10 << 20;
    let now = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let mut data = vec![0u8; SIZE];
    rand::thread_rng().fill_bytes(&mut data);
    let plain = file("plain.bin", &data);

    // Classical keys for the SEIPDv1 files (gpg and sqop 0.27 read nothing else), and
    // Sealpost's own keys (ML-KEM-768+X25519, SEIPDv2) for the SEIPDv2 file.
    let alice_c = classical("Alice <alice@example.org>", t);
    let bob_c = classical("Bob <bob@example.org>", t);
    let alice = KeyPair::generate("Alice", &["alice@example.org"], t).unwrap();
    let bob = KeyPair::generate("Bob", &["bob@example.org"], t).unwrap();
    let home = GnupgHome::new().unwrap();
    for k in [&alice_c, &bob_c] {
        home.import(k.to_secret_bytes().unwrap().expose()).unwrap();
    }
    let secret = |name: &str, k: &KeyPair| file(name, k.to_secret_bytes().unwrap().expose());
    let public = |name: &str, k: &KeyPair| file(name, &k.public_bytes().unwrap());
    let (alice_c_key, bob_c_key, bob_key) = (
        secret("alice_c.key", &alice_c),
        secret("bob_c.key", &bob_c),
        secret("bob.key", &bob),
    );
    let (alice_c_cert, bob_c_cert, alice_cert) = (
        public("alice_c.cert", &alice_c),
        public("bob_c.cert", &bob_c),
        public("alice.cert", &alice),
    );

    let out = |cmd: &mut Command| {
        let o = cmd.stderr(Stdio::piped()).output().unwrap();
        assert!(
            o.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let by_gpg = out(home
        .command()
        .args(["--trust-model", "always", "-z", "0", "--sign", "--encrypt"])
        .args(["--local-user", &alice_c.fingerprint().to_hex()])
        .args([
            "--recipient",
            &bob_c.fingerprint().to_hex(),
            "--output",
            "-",
        ])
        .arg(&plain));
    let by_sqop = out(Command::new("sqop")
        .args(["encrypt", "--no-armor", "--sign-with"])
        .arg(&alice_c_key)
        .arg(&bob_c_cert)
        .stdin(std::fs::File::open(&plain).unwrap()));
    let by_sealpost =
        sop_support::dearmor(&encrypt(&data, &alice, &[bob.cert()], now).unwrap()).unwrap();
    let files = [
        ("SEIPDv1 by gpg", file("gpg.pgp", &by_gpg), false),
        ("SEIPDv1 by sqop", file("sqop.pgp", &by_sqop), false),
        (
            "SEIPDv2+ML-KEM by Sealpost",
            file("sealpost.pgp", &by_sealpost),
            true,
        ),
    ];

    let sop_reader = |name, program: String, key: &Path, cert: &Path| Reader {
        name,
        program,
        args: vec![
            "decrypt".into(),
            "--verify-with".into(),
            cert.display().to_string(),
            key.display().to_string(),
        ],
        sop: true,
    };
    let readers = |v2: bool| -> Vec<Reader> {
        let (key, cert) = if v2 {
            (&bob_key, &alice_cert)
        } else {
            (&bob_c_key, &alice_c_cert)
        };
        let mut r = Vec::new();
        if let Some(bin) = sealpost_bin() {
            let mut s = sop_reader("sealpost sop", bin.display().to_string(), key, cert);
            s.args.insert(0, "sop".into());
            r.push(s);
        }
        if !v2 {
            r.push(sop_reader("sqop", "sqop".into(), key, cert));
            r.push(Reader {
                name: "gpg",
                program: "gpg".into(),
                args: ["--homedir", &home.path().display().to_string()]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(["--batch", "--trust-model", "always", "--decrypt"].map(String::from))
                    .collect(),
                sop: false,
            });
        }
        if let Some(rsop) = which("rsop") {
            r.push(sop_reader("rsop", rsop, key, cert));
        }
        r
    };

    println!("Issue 15: decrypt+verify of the same 10 MiB binary file by every reader that can");
    println!(
        "read it (wall = median of 5 runs; CPU = mean per run; CLI rows are whole processes)."
    );
    println!();
    println!("| file                        | reader               | wall      | CPU       |");
    println!("|-----------------------------|----------------------|-----------|-----------|");
    let runs = std::cell::Cell::new(0u32);
    let mut notes = Vec::new();
    let mut cpu_of = std::collections::BTreeMap::new();
    for (label, ct_file, v2) in &files {
        let ct = std::fs::read(ct_file).unwrap();
        let (own, known) = if *v2 {
            ([bob.clone()], [alice.cert()])
        } else {
            ([bob_c.clone()], [alice_c.cert()])
        };
        // Read now: gpg and sqop signed after `now` was taken.
        let ctx = OpenContext::new(&own, &known, SystemTime::now());
        let from = vec!["alice@example.org".to_owned()];
        let d = decrypt(&ct, &ctx).unwrap();
        assert_eq!(d.plaintext, data);
        let status = d.signature_status(&from, &ctx);
        assert!(
            matches!(status, SignatureStatus::ValidUnconfirmed { .. }),
            "{label}: {status:?}"
        );
        drop(d);
        let ours = time_n(5, false, ticks, || {
            let d = decrypt(&ct, &ctx).unwrap();
            std::hint::black_box(d.signature_status(&from, &ctx));
        });
        println!(
            "| {label:<27} | {:<20} | {:>9} | {:>9} |",
            "Sealpost in-process",
            fmt(ours.wall),
            fmt(ours.cpu)
        );
        cpu_of.insert((label.to_string(), "in-process"), ours.cpu);
        for reader in readers(*v2) {
            let verifications = || {
                runs.set(runs.get() + 1);
                dir.path().join(format!("verifications-{}", runs.get()))
            };
            // Once with the output kept: it really decrypts and verifies.
            let v = verifications();
            let o = reader
                .command(ct_file, &v)
                .args(if reader.sop {
                    vec![]
                } else {
                    vec!["--status-fd", "2"]
                })
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{}: {stderr}", reader.name);
            assert!(o.stdout == data, "{}: wrong plaintext", reader.name);
            if reader.sop {
                assert!(
                    !std::fs::read(&v).unwrap().is_empty(),
                    "{}: no verification",
                    reader.name
                );
            } else {
                assert!(stderr.contains("GOODSIG"), "{stderr}");
            }
            let theirs = time_n(5, true, ticks, || {
                let v = verifications();
                run(&mut reader.command(ct_file, &v));
            });
            println!(
                "| {label:<27} | {:<20} | {:>9} | {:>9} |",
                reader.name,
                fmt(theirs.wall),
                fmt(theirs.cpu)
            );
            cpu_of.insert((label.to_string(), reader.name), theirs.cpu);
            let shown = reader.shown();
            if !notes.contains(&shown) {
                notes.push(shown);
            }
        }
        if *v2 {
            println!(
                "| {label:<27} | {:<20} | {:>9} | {:>9} |",
                "gpg 2.2, sqop 0.27", "cannot", "read it"
            );
        }
    }
    println!();
    println!("How each reader runs (the key and certificate are binary files):");
    for n in &notes {
        println!("  {n}");
    }
    if sealpost_bin().is_none() {
        println!("  (no sealpost binary: `cargo build --release -p sealpost-cli` for its rows)");
    }

    // Post-quantum encrypt+sign, 1 KiB, in-process.
    let mut small = vec![0u8; 1 << 10];
    rand::thread_rng().fill_bytes(&mut small);
    let pq = time_n(300, false, ticks, || {
        std::hint::black_box(encrypt(&small, &alice, &[bob.cert()], now).unwrap());
    });
    let classic = time_n(300, false, ticks, || {
        std::hint::black_box(encrypt(&small, &alice_c, &[bob_c.cert()], now).unwrap());
    });
    println!();
    println!(
        "encrypt+sign 1 KiB in-process: post-quantum (ML-KEM-768+X25519 ×2, SEIPDv2) {} wall / {} CPU; classical (X25519 ×2, SEIPDv1) {} / {}",
        fmt(pq.wall),
        fmt(pq.cpu),
        fmt(classic.wall),
        fmt(classic.cpu)
    );

    // The targets.
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let v2 = cpu_of[&("SEIPDv2+ML-KEM by Sealpost".to_owned(), "in-process")];
    println!();
    println!(
        "target SEIPDv2 decrypt+verify 10 MiB in-process ≤ 35 ms: {} CPU → {}",
        fmt(v2),
        verdict(v2 <= Duration::from_millis(35))
    );
    for label in ["SEIPDv1 by gpg", "SEIPDv1 by sqop"] {
        let ours = cpu_of.get(&(label.to_owned(), "sealpost sop"));
        let sqop = cpu_of.get(&(label.to_owned(), "sqop"));
        if let (Some(ours), Some(sqop)) = (ours, sqop) {
            println!(
                "target {label}, whole process, sealpost sop ≤ sqop: {} vs {} CPU → {}",
                fmt(*ours),
                fmt(*sqop),
                verdict(ours <= sqop)
            );
        }
    }
    println!(
        "target post-quantum encrypt+sign 1 KiB in-process ≤ 1 ms: {} CPU → {}",
        fmt(pq.cpu),
        verdict(pq.cpu <= Duration::from_millis(1))
    );
    println!();
}

fn main() {
    let t = SystemTime::now() - Duration::from_secs(3600);
    let now = SystemTime::now();
    let ticks: f64 = String::from_utf8_lossy(
        &Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    issue15(t, ticks);
    // Classical keys below: gpg and sq 0.27 read neither ML-KEM nor SEIPDv2.
    let alice = classical("Alice <alice@example.org>", t);
    let bob = classical("Bob <bob@example.org>", t);
    let alice_fpr = alice.fingerprint().to_hex();
    let bob_fpr = bob.fingerprint().to_hex();
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, now);
    let from = vec!["alice@example.org".to_owned()];

    // The same keys in gpg and for sq (unprotected secret keys: no S2K cost anywhere).
    let home = GnupgHome::new().unwrap();
    home.import(alice.to_secret_bytes().unwrap().expose())
        .unwrap();
    home.import(bob.to_secret_bytes().unwrap().expose())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let alice_tsk = file("alice.tsk", alice.to_secret_bytes().unwrap().expose());
    let bob_tsk = file("bob.tsk", bob.to_secret_bytes().unwrap().expose());
    let alice_cert = file("alice.cert", alice.public_armored().unwrap().as_bytes());
    let bob_cert = file("bob.cert", bob.public_armored().unwrap().as_bytes());

    let gpg = |args: &[&str], input: &Path| {
        let mut c = home.command();
        c.args(["--trust-model", "always"]).args(args).arg(input);
        c
    };
    let gpg_encrypt = |input: &Path| {
        run(&mut gpg(
            &[
                "-z",
                "0",
                "--armor",
                "--local-user",
                &alice_fpr,
                "--recipient",
                &bob_fpr,
                "--recipient",
                &alice_fpr,
                "--sign",
                "--encrypt",
                "--output",
                "-",
            ],
            input,
        ))
    };
    let gpg_decrypt = |input: &Path| run(&mut gpg(&["--decrypt", "--output", "-"], input));
    let sq_encrypt = |input: &Path| {
        run(Command::new("sq")
            .arg("encrypt")
            .arg("--recipient-cert")
            .arg(&bob_cert)
            .arg("--recipient-cert")
            .arg(&alice_cert)
            .arg("--signer-key")
            .arg(&alice_tsk)
            .args(["--compression", "none"])
            .arg(input))
    };
    let sq_decrypt = |input: &Path| {
        run(Command::new("sq")
            .arg("decrypt")
            .arg("--recipient-key")
            .arg(&bob_tsk)
            .arg("--signer-cert")
            .arg(&alice_cert)
            .arg(input))
    };

    println!(
        "Sealpost OpenPGP core (sequoia-openpgp 2.4, crypto-rust, release) vs {} vs {}",
        version("gpg"),
        version("sq")
    );
    println!("v4 Ed25519/Cv25519 keys (classical), AES-256, SEIPDv1, no compression, armored.");
    println!();
    let startup_gpg = time_n(
        20,
        true,
        ticks,
        || run(Command::new("gpg").arg("--version")),
    );
    let startup_sq = time_n(20, true, ticks, || run(Command::new("sq").arg("--version")));
    println!(
        "process start-up alone (--version): gpg {} wall / {} CPU, sq {} wall / {} CPU",
        fmt(startup_gpg.wall),
        fmt(startup_gpg.cpu),
        fmt(startup_sq.wall),
        fmt(startup_sq.cpu)
    );
    println!(
        "wall = median per run; CPU = mean per run (gpg, sq: the child's user+sys; gpg-agent's"
    );
    println!("secret-key operations are not counted for gpg); ratios use CPU.");
    println!();
    println!(
        "| operation      | size    | Sealpost wall / CPU   | gpg wall / CPU        | sq wall / CPU         | gpg/Sealpost | sq/Sealpost |"
    );
    println!(
        "|----------------|---------|-----------------------|-----------------------|-----------------------|--------------|-------------|"
    );
    for (size, label) in SIZES {
        let mut data = vec![0u8; size];
        rand::thread_rng().fill_bytes(&mut data);
        let plain = file("plain.bin", &data);
        let (n_in, n_cli) = match size {
            s if s <= 1 << 10 => (300, 20),
            s if s <= 100 << 10 => (100, 20),
            _ => (7, 5),
        };

        let ours = time_n(n_in, false, ticks, || {
            std::hint::black_box(encrypt(&data, &alice, &[bob.cert()], now).unwrap());
        });
        let theirs_gpg = time_n(n_cli, true, ticks, || gpg_encrypt(&plain));
        let theirs_sq = time_n(n_cli, true, ticks, || sq_encrypt(&plain));
        row("encrypt+sign", label, ours, theirs_gpg, theirs_sq);

        let ct = encrypt(&data, &alice, &[bob.cert()], now).unwrap();
        let ct_file = file("ct.asc", &ct);
        // Check once that every tool really decrypts and verifies this ciphertext.
        let d = decrypt(&ct, &ctx).unwrap();
        assert_eq!(d.plaintext, data);
        assert!(matches!(
            d.signature_status(&from, &ctx),
            SignatureStatus::ValidUnconfirmed { .. }
        ));
        let status = home
            .command()
            .args([
                "--trust-model",
                "always",
                "--status-fd",
                "2",
                "--decrypt",
                "--output",
                "-",
            ])
            .arg(&ct_file)
            .output()
            .unwrap();
        let gpg_status = String::from_utf8_lossy(&status.stderr);
        assert!(gpg_status.contains("GOODSIG"), "{gpg_status}");
        assert_eq!(status.stdout, data);

        let ours = time_n(n_in, false, ticks, || {
            let d = decrypt(&ct, &ctx).unwrap();
            std::hint::black_box(d.signature_status(&from, &ctx));
        });
        let theirs_gpg = time_n(n_cli, true, ticks, || gpg_decrypt(&ct_file));
        let theirs_sq = time_n(n_cli, true, ticks, || sq_decrypt(&ct_file));
        row("decrypt+verify", label, ours, theirs_gpg, theirs_sq);
    }

    // Bulk: 10,000 distinct small messages, one core, against the openssl floor.
    let messages: Vec<Vec<u8>> = (0..BULK_MESSAGES)
        .map(|_| {
            let mut data = vec![0u8; BULK_SIZE];
            rand::thread_rng().fill_bytes(&mut data);
            encrypt(&data, &alice, &[bob.cert()], now).unwrap()
        })
        .collect();
    let (cpu, wall) = (ProcessTime::now(), Instant::now());
    for m in &messages {
        let d = decrypt(m, &ctx).unwrap();
        assert!(matches!(
            d.signature_status(&from, &ctx),
            SignatureStatus::ValidUnconfirmed { .. }
        ));
    }
    let (cpu, wall) = (cpu.elapsed().as_secs_f64(), wall.elapsed().as_secs_f64());
    let (x25519, ed_verify, aes, sha1, sha512) = openssl_floor();
    let ct_bytes =
        messages.iter().map(Vec::len).sum::<usize>() as f64 / BULK_MESSAGES as f64 * 3.0 / 4.0;
    let floor_one = 1.0 / x25519
        + 1.0 / ed_verify
        + ct_bytes / aes
        + ct_bytes / sha1
        + BULK_SIZE as f64 / sha512;
    let floor = floor_one * BULK_MESSAGES as f64;
    println!();
    println!(
        "bulk: {BULK_MESSAGES} × {} KiB decrypt+verify, one core: {wall:.2} s wall, {cpu:.2} s CPU ({:.0} µs/message)",
        BULK_SIZE >> 10,
        cpu / BULK_MESSAGES as f64 * 1e6
    );
    println!(
        "openssl speed floor: X25519 {x25519:.0}/s, Ed25519 verify {ed_verify:.0}/s, AES-256-CFB {:.0} MB/s, SHA-1 {:.0} MB/s, SHA-512 {:.0} MB/s",
        aes / 1e6,
        sha1 / 1e6,
        sha512 / 1e6
    );
    println!(
        "floor per message {:.0} µs → {floor:.2} s for {BULK_MESSAGES}; Sealpost/floor = {:.2}×",
        floor_one * 1e6,
        cpu / floor
    );
}

fn row(op: &str, size: &str, ours: Timing, gpg: Timing, sq: Timing) {
    let both = |t: Timing| format!("{} / {}", fmt(t.wall), fmt(t.cpu));
    let r = |t: Timing| t.cpu.as_secs_f64() / ours.cpu.as_secs_f64();
    println!(
        "| {op:<14} | {size:<7} | {:>21} | {:>21} | {:>21} | {:>11.1}× | {:>10.1}× |",
        both(ours),
        both(gpg),
        both(sq),
        r(gpg),
        r(sq)
    );
}
