//! The background loop of an account ([`run_account`]) against real Postfix and
//! Dovecot, run as the app runs it: `spawn_local` on a current-thread runtime.
//!
//! - IDLE brings a message sent through SMTP into the store within seconds, with a
//!   `Changed` event; a wake-up after queueing a message sends it (outbox events), and
//!   after a local flag change tells the server.
//! - The server going away: `offline` events with a growing wait, then, once it is back,
//!   the same loop syncs again by itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod mail_common;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_common::*;
use sealpost_core::SystemClock;
use sealpost_core::mailbox::scheduler::{MailEvent, OutboxStepEvent, Phase, run_account};
use sealpost_core::mailbox::{Compose, MailAccount, Mailbox};
use sealpost_mail::smtp::{self, Envelope};
use sealpost_mail::{Credentials, Flag, Secret, Server, SmtpConfig, TlsPolicy};
use sealpost_testkit::proxy::TcpProxy;
use sealpost_testkit::watchdog::deadline;
use tokio::sync::Notify;

type Events = Arc<Mutex<Vec<MailEvent>>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (yielding to the loop) until `pred` holds for some event at index `from` or
/// later; returns its index. Fails after `limit`.
async fn wait_event(
    events: &Events,
    from: usize,
    limit: Duration,
    what: &str,
    pred: impl Fn(&MailEvent) -> bool,
) -> usize {
    let started = Instant::now();
    loop {
        if let Some(i) = events
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, e)| pred(e))
            .map(|(i, _)| i)
        {
            return i;
        }
        assert!(
            started.elapsed() < limit,
            "no {what} within {limit:?}; events: {:#?}",
            events.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_phase(e: &MailEvent, p: Phase) -> bool {
    matches!(e, MailEvent::Progress { phase, .. } if *phase == p)
}

fn changed(e: &MailEvent, folder: &str) -> bool {
    matches!(e, MailEvent::Changed { folders, .. } if folders.iter().any(|f| f == folder))
}

/// Bob submits a plain message to Alice through Postfix, outside Sealpost.
async fn bob_sends(servers: &Servers, subject: &str) {
    let postfix = servers.postfix.as_ref().unwrap();
    let mut config = SmtpConfig::new(Server::tls("localhost", postfix.submissions_port()));
    config.tls = TlsPolicy::new().with_extra_root(servers.ca.cert_der());
    let raw = sealpost_pgp::plain_mail(
        &sealpost_pgp::OutgoingMail {
            from: sealpost_pgp::Mailbox::address(BOB),
            to: vec![sealpost_pgp::Mailbox::address(ALICE)],
            subject: subject.into(),
            text: "fresh\r\n".into(),
            message_id: format!("{}@bob.sealpost.test", subject.replace(' ', "-")),
            date: 1_700_000_000,
            ..Default::default()
        },
        None,
        std::time::SystemTime::now(),
    )
    .unwrap();
    smtp::send(
        &config,
        &Credentials::password(BOB, Secret::new(BOB_MAIL_PW)),
        &Envelope::new(BOB, &[ALICE]).unwrap(),
        &raw,
    )
    .await
    .unwrap();
}

fn in_store(mb: &Mailbox, acc: &MailAccount, folder: &str, subject: &str) -> bool {
    mb.list(acc, folder)
        .unwrap()
        .iter()
        .any(|m| m.subject == subject)
}

#[test]
fn idle_brings_new_mail_within_seconds_and_a_wake_up_sends_and_pushes_flags() {
    let _deadline = deadline(Duration::from_secs(150), "the IDLE scheduler test");
    let servers = Servers::start(true);
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let acc = {
        let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
        add(&mb, &servers.account(ALICE), ALICE_MAIL_PW)
    };
    let events: Events = Arc::default();
    let wake = Arc::new(Notify::new());
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime(), async {
        let task = tokio::task::spawn_local({
            let (u, events, wake, acc) = (Arc::clone(&u), Arc::clone(&events), Arc::clone(&wake), acc.clone());
            async move {
                let sink = |e: MailEvent| events.lock().unwrap().push(e);
                run_account(Mailbox::open(&u, Arc::new(SystemClock)).unwrap(), acc, &SystemClock, &sink, &wake).await
            }
        });
        let limit = Duration::from_secs(30);
        let first = wait_event(&events, 0, limit, "first IDLE", |e| is_phase(e, Phase::Idle)).await;
        assert!(is_phase(&events.lock().unwrap()[0], Phase::Connecting));
        assert!(
            events.lock().unwrap()[..first].iter().any(|e| matches!(
                e,
                MailEvent::Progress { phase: Phase::Syncing, folder: Some(f), total: Some(0), .. } if f == "INBOX"
            )),
            "per-folder progress: {:#?}",
            events.lock().unwrap()
        );
        // Let the loop get into IDLE on the server.
        tokio::time::sleep(Duration::from_millis(300)).await;

        // New mail through SMTP: in the store, with an event, within seconds.
        let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
        let mark = events.lock().unwrap().len();
        let sent = Instant::now();
        bob_sends(&servers, "idle news").await;
        let accepted = sent.elapsed();
        let i = wait_event(&events, mark, Duration::from_secs(15), "Changed INBOX", |e| {
            changed(e, "INBOX")
        })
        .await;
        let latency = sent.elapsed();
        assert!(in_store(&mb, &acc, "INBOX", "idle news"), "{:#?}", events.lock().unwrap()[mark..].to_vec());
        println!(
            "IDLE latency: SMTP accepted after {:.0} ms, in the store with a Changed event after {:.0} ms",
            accepted.as_secs_f64() * 1000.0,
            latency.as_secs_f64() * 1000.0
        );
        assert!(latency < Duration::from_secs(15));
        // And back into IDLE.
        wait_event(&events, i, limit, "IDLE again", |e| is_phase(e, Phase::Idle)).await;

        // The app queues a message and wakes the loop: sent at once, with events.
        let mark = events.lock().unwrap().len();
        let entry = mb
            .queue(
                &acc,
                &Compose {
                    to: vec![BOB.into()],
                    subject: "woken send".into(),
                    text: "right away".into(),
                    ..Compose::default()
                },
                &SystemClock,
            )
            .unwrap();
        wake.notify_one();
        let mid = entry.message_id.clone();
        let step_of = move |e: &MailEvent, s: OutboxStepEvent| {
            matches!(e, MailEvent::Outbox { message_id, step, .. } if *message_id == mid && *step == s)
        };
        let sending = wait_event(&events, mark, limit, "outbox sending", |e| {
            step_of(e, OutboxStepEvent::Sending)
        })
        .await;
        let sent = wait_event(&events, sending, limit, "outbox sent", |e| {
            step_of(e, OutboxStepEvent::Sent)
        })
        .await;
        assert!(mb.outbox(&acc).unwrap().is_empty());
        // The copy in Sent is in the store, and the Sent list was told to refresh.
        wait_event(&events, sent, limit, "Changed Sent", |e| changed(e, "Sent")).await;
        assert!(in_store(&mb, &acc, "Sent", "woken send"));

        // A flag changed in the app, then a wake-up: the server has it.
        let news = mb
            .list(&acc, "INBOX")
            .unwrap()
            .into_iter()
            .find(|m| m.subject == "idle news")
            .unwrap();
        wait_event(&events, sending, limit, "IDLE after the send", |e| is_phase(e, Phase::Idle)).await;
        let mark = events.lock().unwrap().len();
        mb.set_flag_local(news.id, Flag::Flagged, true).unwrap();
        wake.notify_one();
        wait_event(&events, mark, limit, "IDLE after the flag", |e| is_phase(e, Phase::Idle)).await;
        let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
        assert_eq!(server[&news.uid], ["\\Flagged"], "{server:?}");
        assert_eq!(mb.pending_flag_changes(&acc).unwrap(), 0);

        assert!(!task.is_finished(), "the loop ended: {:#?}", events.lock().unwrap());
        assert!(
            !events.lock().unwrap().iter().any(|e| is_phase(e, Phase::Offline)),
            "{:#?}",
            events.lock().unwrap()
        );
        task.abort();
    });
}

#[test]
fn the_loop_goes_offline_with_backoff_and_comes_back_by_itself() {
    let _deadline = deadline(Duration::from_secs(150), "the reconnection test");
    let servers = Servers::start(false);
    let proxy = TcpProxy::start(servers.imaps_addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let acc = {
        let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
        add(
            &mb,
            &servers.account_via(ALICE, proxy.port()),
            ALICE_MAIL_PW,
        )
    };
    let events: Events = Arc::default();
    let wake = Arc::new(Notify::new());
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime(), async {
        let task = tokio::task::spawn_local({
            let (u, events, wake, acc) = (
                Arc::clone(&u),
                Arc::clone(&events),
                Arc::clone(&wake),
                acc.clone(),
            );
            async move {
                let sink = |e: MailEvent| events.lock().unwrap().push(e);
                run_account(
                    Mailbox::open(&u, Arc::new(SystemClock)).unwrap(),
                    acc,
                    &SystemClock,
                    &sink,
                    &wake,
                )
                .await
            }
        });
        let limit = Duration::from_secs(30);
        wait_event(&events, 0, limit, "first IDLE", |e| {
            is_phase(e, Phase::Idle)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // The server goes away: the IDLE connection is cut and new ones fail.
        let mark = events.lock().unwrap().len();
        let down = Instant::now();
        proxy.set_down(true);
        let first = wait_event(&events, mark, limit, "offline", |e| {
            is_phase(e, Phase::Offline)
        })
        .await;
        let detected = down.elapsed();
        let second = wait_event(&events, first + 1, limit, "a second offline", |e| {
            is_phase(e, Phase::Offline)
        })
        .await;
        let third = wait_event(&events, second + 1, limit, "a third offline", |e| {
            is_phase(e, Phase::Offline)
        })
        .await;
        let waits: Vec<u64> = [first, second, third]
            .iter()
            .map(|&i| match &events.lock().unwrap()[i] {
                MailEvent::Progress {
                    retry_in_secs: Some(s),
                    message: Some(m),
                    ..
                } => {
                    assert!(!m.is_empty());
                    *s
                }
                other => panic!("{other:?}"),
            })
            .collect();
        println!(
            "offline {:.0} ms after the cut; waits {waits:?} s",
            detected.as_secs_f64() * 1000.0
        );
        assert!(
            waits[0] <= 2 && waits[1] >= 2 && waits[2] >= 4 && waits[2] <= 5,
            "{waits:?}"
        );
        if let MailEvent::Progress {
            message: Some(m), ..
        } = &events.lock().unwrap()[first]
        {
            println!("offline message: {m}");
            assert!(!m.contains(ALICE_MAIL_PW));
        }

        // Mail arrives meanwhile; the server comes back; the same loop finds it.
        servers
            .dovecot
            .write_maildir(ALICE, "INBOX", &[message("while-away", 100)])
            .unwrap();
        let mark = events.lock().unwrap().len();
        proxy.set_down(false);
        let up = Instant::now();
        wait_event(
            &events,
            mark,
            Duration::from_secs(20),
            "Changed after the return",
            |e| changed(e, "INBOX"),
        )
        .await;
        println!(
            "back in sync {:.1} s after the server returned",
            up.elapsed().as_secs_f64()
        );
        let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
        assert!(in_store(&mb, &acc, "INBOX", "bulk while-away"));
        wait_event(&events, mark, limit, "IDLE again", |e| {
            is_phase(e, Phase::Idle)
        })
        .await;
        assert!(!task.is_finished());

        // A wake-up cuts a wait short: down again, then up and woken at once.
        proxy.set_down(true);
        let mark = events.lock().unwrap().len();
        let mut last = wait_event(&events, mark, limit, "offline again", |e| {
            is_phase(e, Phase::Offline)
        })
        .await;
        for _ in 0..3 {
            last = wait_event(&events, last + 1, limit, "more offline", |e| {
                is_phase(e, Phase::Offline)
            })
            .await;
        }
        proxy.set_down(false);
        let woke = Instant::now();
        wake.notify_one();
        wait_event(
            &events,
            last,
            Duration::from_secs(3),
            "IDLE right after the wake-up",
            |e| is_phase(e, Phase::Idle),
        )
        .await;
        println!(
            "woken out of the backoff: IDLE after {:.0} ms",
            woke.elapsed().as_secs_f64() * 1000.0
        );
        task.abort();
    });
}
