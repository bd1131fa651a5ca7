//! The initial sync of a 10,000-message folder from a local Dovecot into the Sealpost
//! store — the real [`Mailbox::sync`]: fetch, seal, open, index — side by side with
//! isync's `mbsync` pulling the same folder into a maildir. Both start cold (a new
//! store, a new maildir and state), each runs 3 times, alternating; printed are the
//! medians of wall time and messages/s and the peak memory (max RSS) of each.
//!
//! Each sync runs in its own child process. Sealpost's child is this bench binary run
//! again with [`CHILD_ENV`] set: it unlocks the profile (Argon2id, 256 MiB, not part of
//! the sync), resets its peak-RSS mark (`/proc/self/clear_refs`), syncs, and reports
//! its wall time and `VmHWM`. `mbsync` runs under GNU `time`, which reports its max RSS
//! from `wait4`. `mbsync` is measured twice: with its default `FSync yes` and with
//! `FSync no`; the Sealpost store always commits durably (SQLite WAL,
//! `synchronous=FULL`, one commit per fetched batch and per 256 opened messages).
//!
//! Run: `cargo bench -p sealpost-core --bench mail_sync`
//! (`SEALPOST_BENCH_MESSAGES` changes the count, default 10,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealpost_core::SystemClock;
use sealpost_core::mailbox::{Mailbox, NewAccount, SyncProgress};
use sealpost_core::vault;
use sealpost_crypto::Password;
use sealpost_mail::{Credentials, ImapConfig, ImapSession, Secret, Server, TlsPolicy};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;

const USER: &str = "bench@sealpost.test";
const PASSWORD: &str = "bench-password";
const PROFILE_PW: &str = "tundra mosaic gravel whimsy plank";
/// Set in the child: the profile directory to sync.
const CHILD_ENV: &str = "SEALPOST_BENCH_SYNC_CHILD";
const RUNS: usize = 3;

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let n: usize = std::env::var("SEALPOST_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if Command::new("mbsync").arg("--version").output().is_err() {
        println!("mbsync is not installed (apt-get install isync); nothing to compare");
        return;
    }
    let ca = TestCa::new("bench CA").unwrap();
    let dovecot = Dovecot::start(&ca, &[TestUser::new(USER, PASSWORD)]).unwrap();
    let work = tempfile::tempdir().unwrap();

    // n messages of about 4 KB, straight into the maildir; Dovecot indexes them once
    // (a first SELECT) so that neither side pays for it.
    let mut bytes = 0;
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let raw = sealpost_pgp::plain_mail(
                &sealpost_pgp::OutgoingMail {
                    from: sealpost_pgp::Mailbox::new("Bench", USER),
                    to: vec![sealpost_pgp::Mailbox::address(USER)],
                    subject: format!("message {i}"),
                    text: format!("{i}: {}\r\n", "lorem ipsum dolor sit amet ".repeat(150)),
                    message_id: format!("bench-{i}@sealpost.test"),
                    date: 1_700_000_000 + i as i64,
                    ..Default::default()
                },
                None,
                std::time::SystemTime::now(),
            )
            .unwrap();
            bytes += raw.len();
            raw
        })
        .collect();
    dovecot.write_maildir(USER, "INBOX", &messages).unwrap();
    drop(messages);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ImapConfig::new(Server::tls("localhost", dovecot.imaps_port()));
        config.tls = TlsPolicy::new().with_extra_root(ca.cert_der());
        config.timeout = Duration::from_secs(300);
        let mut imap = ImapSession::connect(&config, &Credentials::password(USER, PASSWORD))
            .await
            .unwrap();
        let status = imap.select("INBOX").await.unwrap();
        assert_eq!(status.exists as usize, n);
        imap.logout().await.unwrap();
    });
    println!(
        "{n} messages, {:.1} MB in INBOX; {RUNS} cold runs each, alternating",
        bytes as f64 / 1e6
    );

    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let mut ours = Vec::new();
    let mut mb_fsync = Vec::new();
    let mut mb_nofsync = Vec::new();
    for run in 0..RUNS {
        ours.push(sealpost_run(
            &work.path().join(format!("s{run}")),
            &dovecot,
            &ca,
            n,
        ));
        mb_fsync.push(mbsync_run(
            &work.path().join(format!("m{run}")),
            &dovecot,
            &ca_file,
            true,
            n,
        ));
        mb_nofsync.push(mbsync_run(
            &work.path().join(format!("n{run}")),
            &dovecot,
            &ca_file,
            false,
            n,
        ));
    }
    println!();
    println!("                         median wall   messages/s   peak RSS (median)   runs (s)");
    for (name, runs) in [
        ("Sealpost Mailbox::sync", &ours),
        ("mbsync (FSync yes)", &mb_fsync),
        ("mbsync (FSync no)", &mb_nofsync),
    ] {
        let mut secs: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let mut rss: Vec<u64> = runs.iter().map(|r| r.1).collect();
        let all = secs
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        secs.sort_by(f64::total_cmp);
        rss.sort_unstable();
        let median = secs[secs.len() / 2];
        println!(
            "{name:<24} {median:>9.2} s {:>12.0} {:>16.1} MB   {all}",
            n as f64 / median,
            rss[rss.len() / 2] as f64 / 1024.0
        );
    }
}

/// One cold Sealpost sync in a child process: (seconds, peak RSS in KiB).
fn sealpost_run(dir: &Path, dovecot: &Dovecot, ca: &TestCa, n: usize) -> (f64, u64) {
    let pw = Password::new(PROFILE_PW).unwrap();
    let (u, _code) = vault::create(dir, "bench", &pw, &SystemClock).unwrap();
    let u = Arc::new(u);
    {
        let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
        mb.add_account(
            &NewAccount {
                address: USER.into(),
                login: USER.into(),
                imap: Server::tls("localhost", dovecot.imaps_port()),
                smtp: Server::tls("localhost", 9),
                extra_roots_pem: ca.cert_pem().to_owned(),
            },
            &Secret::new(PASSWORD),
            &SystemClock,
        )
        .unwrap();
    }
    drop(u);
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the sync child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result: {text}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let (secs, rss, new, fetched, at_start): (f64, u64, usize, f64, u64) = (
        f[0].parse().unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    );
    assert_eq!(new, n, "Sealpost stored {new} of {n}");
    let size: u64 = ["mail.sqlite3", "mail.sqlite3-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "Sealpost:           {secs:>7.2} s, peak RSS {:>6.1} MB ({:.1} MB before the sync), \
         store {:.1} MB (fetched and stored sealed after {fetched:.2} s, then opened and indexed)",
        rss as f64 / 1024.0,
        at_start as f64 / 1024.0,
        size as f64 / 1e6
    );
    (secs, rss)
}

/// The child: unlock, reset the peak-RSS mark, sync, report.
fn child(dir: &Path) {
    let u = Arc::new(
        vault::open(dir)
            .unwrap()
            .unlock(&Password::new(PROFILE_PW).unwrap())
            .unwrap(),
    );
    // The unlock's Argon2id (256 MiB) is not part of the sync: start the peak here.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let at_start = vm_hwm_kib();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = mb.accounts().unwrap().remove(0);
    let started = Instant::now();
    // The last progress event of INBOX marks the end of fetching and storing; what
    // follows is opening and indexing.
    let fetched = std::sync::Mutex::new(None);
    let progress = |p: SyncProgress| {
        if p.folder == "INBOX" && p.done == p.total {
            *fetched.lock().unwrap() = Some(started.elapsed().as_secs_f64());
        }
    };
    let report = rt
        .block_on(mb.sync_with_progress(&account, &SystemClock, &progress))
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "RESULT {secs} {} {} {} {at_start}",
        vm_hwm_kib(),
        report.new,
        fetched.lock().unwrap().unwrap_or(0.0)
    );
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One cold mbsync run under GNU time: (seconds, max RSS in KiB).
fn mbsync_run(dir: &Path, dovecot: &Dovecot, ca_file: &Path, fsync: bool, n: usize) -> (f64, u64) {
    let maildir: PathBuf = dir.join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = dir.join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "FSync {fsync}\n\nIMAPAccount bench\nHost localhost\nPort {port}\nUser {USER}\nPass {PASSWORD}\n\
             SSLType IMAPS\nCertificateFile {ca}\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {dir}/\nInbox {dir}/INBOX\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n\
             Sync Pull\nSyncState *\n",
            fsync = if fsync { "yes" } else { "no" },
            port = dovecot.imaps_port(),
            ca = ca_file.display(),
            dir = maildir.display(),
        ),
    )
    .unwrap();
    let rss_file = dir.join("rss");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg("mbsync")
        .arg("-c")
        .arg(&rc)
        .args(["-q", "bench"])
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "mbsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |d: &str| {
        std::fs::read_dir(maildir.join("INBOX").join(d))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(count("cur") + count("new"), n, "mbsync fetched too few");
    let rss: u64 = std::fs::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    println!(
        "mbsync (FSync {}): {secs:>7.2} s, peak RSS {:>6.1} MB",
        if fsync { "yes" } else { "no " },
        rss as f64 / 1024.0
    );
    (secs, rss)
}
