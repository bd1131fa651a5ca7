//! Full and incremental sync of one folder against a real Dovecot on loopback:
//! sealpost-mail (UIDs, flags and sizes, then the bodies in batches, each written to a
//! file) against isync's `mbsync` (Debian package `isync`) pulling the same folder into
//! a maildir (`FSync no`, as this side does not fsync either). Run with
//! `cargo bench -p sealpost-mail --bench sync_vs_mbsync`; the message count is
//! `SEALPOST_BENCH_MESSAGES` (default 2000). Prints one line per measurement and checks
//! that both got every message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sealpost_mail::{Credentials, ImapConfig, ImapSession, Server, SyncState, TlsPolicy};
use sealpost_pgp::{Mailbox, OutgoingMail, plain_mail};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;

const USER: &str = "bench@sealpost.test";
const PASSWORD: &str = "bench-password";
const BATCH: usize = 200;

fn main() {
    let n: usize = std::env::var("SEALPOST_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    if Command::new("mbsync").arg("--version").output().is_err() {
        println!("mbsync is not installed (apt-get install isync); nothing to compare");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = TestCa::new("bench CA").unwrap();
    let dovecot = Dovecot::start(&ca, &[TestUser::new(USER, PASSWORD)]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut config = ImapConfig::new(Server::tls("localhost", dovecot.imaps_port()));
    config.tls = TlsPolicy::new().with_extra_root(ca.cert_der());
    config.timeout = Duration::from_secs(120);
    let creds = Credentials::password(USER, PASSWORD);

    // Fill INBOX with n messages of about 4 KB.
    let bytes = runtime.block_on(async {
        let mut imap = ImapSession::connect(&config, &creds).await.unwrap();
        let mut total = 0;
        for i in 0..n {
            let mail = OutgoingMail {
                from: Mailbox::new("Bench", USER),
                to: vec![Mailbox::address(USER)],
                subject: format!("message {i}"),
                text: format!("{i}: {}\r\n", "lorem ipsum dolor sit amet ".repeat(150)),
                message_id: format!("bench-{i}@sealpost.test"),
                date: 1_700_000_000 + i as i64,
                ..OutgoingMail::default()
            };
            let raw = plain_mail(&mail, None, std::time::SystemTime::now()).unwrap();
            total += raw.len();
            imap.append("INBOX", &[], &raw).await.unwrap();
        }
        imap.logout().await.unwrap();
        total
    });
    println!(
        "{n} messages, {:.1} MB in INBOX",
        bytes as f64 / 1_000_000.0
    );

    // sealpost-mail: full sync, then incremental with nothing new.
    let ours = work.path().join("ours");
    std::fs::create_dir_all(&ours).unwrap();
    let (full, state) = runtime.block_on(async {
        let started = Instant::now();
        let state = sync_into(&config, &creds, None, &ours).await;
        (started.elapsed(), state)
    });
    assert_eq!(std::fs::read_dir(&ours).unwrap().count(), n);
    let again = runtime.block_on(async {
        let started = Instant::now();
        sync_into(&config, &creds, Some(&state), &ours).await;
        started.elapsed()
    });
    println!(
        "sealpost-mail full sync:        {:>8.3} s",
        full.as_secs_f64()
    );
    println!(
        "sealpost-mail incremental sync: {:>8.3} s",
        again.as_secs_f64()
    );

    // mbsync: the same, into a maildir.
    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let maildir = work.path().join("mbsync");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = work.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "FSync no\n\nIMAPAccount bench\nHost localhost\nPort {port}\nUser {USER}\nPass {PASSWORD}\n\
             SSLType IMAPS\nCertificateFile {ca}\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {dir}/\nInbox {dir}/INBOX\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n\
             Sync Pull\nSyncState *\n",
            port = dovecot.imaps_port(),
            ca = ca_file.display(),
            dir = maildir.display(),
        ),
    )
    .unwrap();
    let mbsync = |label: &str| {
        let started = Instant::now();
        let out = Command::new("mbsync")
            .arg("-c")
            .arg(&rc)
            .args(["-q", "bench"])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "mbsync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("mbsync {label} {:>8.3} s", took.as_secs_f64());
    };
    mbsync("full sync:               ");
    let got = count_files(&maildir.join("INBOX/cur")) + count_files(&maildir.join("INBOX/new"));
    assert_eq!(got, n, "mbsync fetched {got} of {n}");
    mbsync("incremental sync:        ");
}

/// Syncs INBOX and writes every new message to `dir/<uid>.eml`.
async fn sync_into(
    config: &ImapConfig,
    creds: &Credentials,
    previous: Option<&SyncState>,
    dir: &Path,
) -> SyncState {
    let mut imap = ImapSession::connect(config, creds).await.unwrap();
    let changes = imap.sync("INBOX", previous).await.unwrap();
    let uids: Vec<u32> = changes.new.iter().map(|m| m.uid).collect();
    for batch in uids.chunks(BATCH) {
        for (uid, raw) in imap.fetch_messages(batch).await.unwrap() {
            std::fs::write(dir.join(format!("{uid}.eml")), raw).unwrap();
        }
    }
    imap.logout().await.unwrap();
    changes.state
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
