//! The process killed during a send: a real `sealpost mail send` process, SIGKILLed at
//! chosen moments by TCP proxies in front of Postfix and Dovecot, then a fresh
//! `sealpost mail sync`. Counted at the recipient by Message-ID over IMAP.
//!
//! The proxies see only TLS, so they find the moments by the shape of the traffic: the
//! message is far bigger than anything else the client sends, so bytes past its size
//! going to the server are its body, and the first answer after the whole body is the
//! server's reply to it (`250` after DATA, `OK` after APPEND).
//!
//! - mid-DATA (killed while the body goes out) and the server's `250` after DATA
//!   (killed before the client reads it): the SMTP transaction had started, so the
//!   client cannot know whether the server took the message (in the second case it did).
//!   The next sync does not send it again by itself (`crates/core/src/mailbox/mod.rs`,
//!   "The outbox"): it looks for it in Sent, does not find it, and leaves it in the
//!   outbox "in doubt": nothing at Bob in the first case, exactly one copy in the second.
//!   Then the user answers: `mail outbox resend` sends the first (exactly once),
//!   `mail outbox discard` drops the second (still one copy).
//! - the server's `OK` after the APPEND to Sent (killed before the entry is cleared):
//!   the next sync finds the copy by its Message-ID, appends nothing and sends nothing:
//!   exactly once at the recipient and in Sent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{ok, sealpost};
use sealpost_mail::{Credentials, ImapConfig, ImapSession, Secret, Server, TlsPolicy};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use sealpost_testkit::proxy::{Chunk, Direction, TcpProxy, Verdict};
use sealpost_testkit::watchdog::deadline;

const PW: &str = "tundra mosaic gravel whimsy plank";
const ALICE: &str = "alice@sealpost.test";
const BOB: &str = "bob@sealpost.test";
const ALICE_MAIL_PW: &str = "alice-mail-password";
const BOB_MAIL_PW: &str = "bob-mail-password";
const NO_SERVER: &str = "http://127.0.0.1:9";
/// The message text: far more than any other traffic from the client.
const BODY_LEN: usize = 300_000;
/// Bytes to the server past which the body is surely on its way.
const IN_BODY: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    MidData,
    SmtpAccepted,
    AppendedToSent,
}

type Victim = Arc<Mutex<Option<Child>>>;

fn kill(victim: &Victim, fired: &AtomicBool) {
    let mut guard = victim.lock().unwrap_or_else(PoisonError::into_inner);
    fired.store(true, Ordering::SeqCst);
    if let Some(child) = guard.as_mut() {
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
}

/// A hook that kills the victim at `moment` (on its proxy) and cuts the connection.
fn trap(moment: Moment, victim: Victim, fired: Arc<AtomicBool>) -> sealpost_testkit::proxy::Hook {
    Box::new(move |c: &Chunk<'_>| {
        if fired.load(Ordering::SeqCst) {
            return Verdict::Cut;
        }
        let hit = match moment {
            Moment::MidData => {
                c.direction == Direction::ToServer && c.to_server + c.bytes.len() as u64 > IN_BODY
            }
            Moment::SmtpAccepted | Moment::AppendedToSent => {
                c.direction == Direction::ToClient && c.to_server > BODY_LEN as u64
            }
        };
        if hit {
            kill(&victim, &fired);
            Verdict::Cut
        } else {
            Verdict::Forward
        }
    })
}

fn run(profile: &Path, args: &[&str], stdin: &str) -> String {
    ok(&sealpost(profile, NO_SERVER, args, stdin))
}

/// Bob's INBOX (or Alice's Sent): the Message-IDs of the messages with `subject`.
async fn message_ids(
    ca: &TestCa,
    dovecot: &Dovecot,
    user: &str,
    pw: &str,
    folder: &str,
    subject: &str,
) -> Vec<String> {
    let mut config = ImapConfig::new(Server::tls("localhost", dovecot.imaps_port()));
    config.tls = TlsPolicy::new().with_extra_root(ca.cert_der());
    let mut imap = ImapSession::connect(&config, &Credentials::password(user, Secret::new(pw)))
        .await
        .unwrap();
    let changes = imap.sync(folder, None).await.unwrap();
    let uids: Vec<u32> = changes.new.iter().map(|m| m.uid).collect();
    let mut ids = Vec::new();
    for chunk in uids.chunks(50) {
        for (_, raw) in imap.fetch_messages(chunk).await.unwrap() {
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or(raw.len());
            let head = String::from_utf8_lossy(&raw[..end]).replace("\r\n ", " ");
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default()
            };
            if header("Subject") == subject {
                ids.push(header("Message-ID"));
            }
        }
    }
    imap.logout().await.unwrap();
    ids
}

#[test]
fn a_send_killed_at_any_moment_arrives_once_or_waits_and_the_next_sync_finishes_it() {
    let _deadline = deadline(Duration::from_secs(400), "the killed-send test");
    let ca = TestCa::new("cli kill test CA").unwrap();
    let users = [
        TestUser::new(ALICE, ALICE_MAIL_PW),
        TestUser::new(BOB, BOB_MAIL_PW),
    ];
    let dovecot = Dovecot::start(&ca, &users).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let smtp_proxy = TcpProxy::start(([127, 0, 0, 1], postfix.submissions_port()).into()).unwrap();
    let imap_proxy = TcpProxy::start(([127, 0, 0, 1], dovecot.imaps_port()).into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let a = dir.path().join("alice");
    run(
        &a,
        &["profile", "create", "--user", "alice", "--password-stdin"],
        &format!("{PW}\n"),
    );
    run(
        &a,
        &[
            "mail",
            "account",
            "add",
            "--address",
            ALICE,
            "--imap",
            &format!("localhost:{}", imap_proxy.port()),
            "--smtp",
            &format!("localhost:{}", smtp_proxy.port()),
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{PW}\n{ALICE_MAIL_PW}\n"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = "zebra quartz ".repeat(BODY_LEN / 13 + 1);

    for moment in [
        Moment::MidData,
        Moment::SmtpAccepted,
        Moment::AppendedToSent,
    ] {
        let subject = format!("killed at {moment:?}");
        let victim: Victim = Arc::default();
        let fired = Arc::new(AtomicBool::new(false));
        let proxy = if moment == Moment::AppendedToSent {
            &imap_proxy
        } else {
            &smtp_proxy
        };
        proxy.set_hook(Some(trap(moment, Arc::clone(&victim), Arc::clone(&fired))));
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .arg("--profile")
            .arg(&a)
            .args([
                "mail",
                "send",
                "--to",
                BOB,
                "--subject",
                &subject,
                "--password-stdin",
            ])
            .env("SEALPOST_SERVER", NO_SERVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = format!("{PW}\n{text}\n");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        *victim.lock().unwrap() = Some(child);
        let started = Instant::now();
        while !fired.load(Ordering::SeqCst) {
            let exited = victim
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|c| c.try_wait().unwrap().is_some());
            assert!(
                !exited || fired.load(Ordering::SeqCst),
                "{moment:?}: the send finished before the trap fired"
            );
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{moment:?}: no trap"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = writer.join();
        proxy.set_hook(None);
        let status = victim.lock().unwrap().as_mut().unwrap().wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{moment:?}: SIGKILLed"
        );

        // A fresh process finishes what was left.
        let synced = run(
            &a,
            &["--json", "mail", "sync", "--password-stdin"],
            &format!("{PW}\n"),
        );
        let synced: serde_json::Value = serde_json::from_str(synced.trim()).unwrap();
        assert!(
            synced["outbox"]["failed"].as_array().unwrap().is_empty(),
            "{synced}"
        );
        let in_doubt = moment != Moment::AppendedToSent;
        assert_eq!(
            synced["outbox"]["inDoubt"].as_array().unwrap().len(),
            usize::from(in_doubt),
            "{moment:?}: {synced}"
        );

        let count = |expect_some: bool| {
            // Wait for delivery, then a moment for a duplicate.
            let deadline = Instant::now() + Duration::from_secs(if expect_some { 20 } else { 5 });
            let mut ids = Vec::new();
            while ids.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(300));
                ids = rt.block_on(message_ids(
                    &ca,
                    &dovecot,
                    BOB,
                    BOB_MAIL_PW,
                    "INBOX",
                    &subject,
                ));
            }
            std::thread::sleep(Duration::from_secs(2));
            let ids = rt.block_on(message_ids(
                &ca,
                &dovecot,
                BOB,
                BOB_MAIL_PW,
                "INBOX",
                &subject,
            ));
            let sent = rt.block_on(message_ids(
                &ca,
                &dovecot,
                ALICE,
                ALICE_MAIL_PW,
                "Sent",
                &subject,
            ));
            println!(
                "{moment:?}: {} cop(y/ies) at Bob, {} in Alice's Sent",
                ids.len(),
                sent.len()
            );
            (ids, sent)
        };
        let list_outbox = || -> serde_json::Value {
            let listed = run(
                &a,
                &["--json", "mail", "outbox", "list", "--password-stdin"],
                &format!("{PW}\n"),
            );
            serde_json::from_str(listed.trim()).unwrap()
        };

        if in_doubt {
            let (ids, sent) = count(moment == Moment::SmtpAccepted);
            assert!(sent.is_empty(), "{moment:?}: {sent:?}");
            let listed = list_outbox();
            let entries = listed.as_array().unwrap();
            assert_eq!(entries.len(), 1, "{listed}");
            assert_eq!(entries[0]["state"], "inDoubt", "{listed}");
            assert_eq!(entries[0]["subject"], subject.as_str(), "{listed}");
            let id = entries[0]["id"].as_i64().unwrap().to_string();
            if moment == Moment::MidData {
                // The server never took it: nothing arrived, and it was not sent again.
                assert!(ids.is_empty(), "{moment:?}: sent again by itself: {ids:?}");
                run(
                    &a,
                    &["mail", "outbox", "resend", &id, "--password-stdin"],
                    &format!("{PW}\n"),
                );
                let synced = run(
                    &a,
                    &["--json", "mail", "sync", "--password-stdin"],
                    &format!("{PW}\n"),
                );
                let synced: serde_json::Value = serde_json::from_str(synced.trim()).unwrap();
                assert_eq!(synced["outbox"]["cleared"], 1, "{synced}");
            } else {
                // The server took it before the kill: one copy, and not a second one.
                assert_eq!(ids.len(), 1, "{moment:?}: {ids:?}");
                run(
                    &a,
                    &["mail", "outbox", "discard", &id, "--password-stdin"],
                    &format!("{PW}\n"),
                );
            }
        }
        let (ids, sent) = count(true);
        assert_eq!(ids.len(), 1, "{moment:?}: exactly once at Bob: {ids:?}");
        if moment == Moment::SmtpAccepted {
            assert!(sent.is_empty(), "discarded: no copy made in Sent");
        } else {
            assert_eq!(sent, [ids[0].clone()], "{moment:?}: one copy in Sent");
        }
        assert_eq!(
            list_outbox(),
            serde_json::json!([]),
            "{moment:?}: the outbox is empty"
        );

        // Nothing waits any more: another sync sends nothing.
        let again = run(
            &a,
            &["--json", "mail", "sync", "--password-stdin"],
            &format!("{PW}\n"),
        );
        let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
        assert_eq!(again["outbox"]["sent"], 0, "{again}");
    }
}
