//! The outbox never sends a message twice by itself, against real Postfix and Dovecot.
//!
//! - A flush stopped at every step (as a kill there would stop it), then a fresh store
//!   handle flushing again: a message is at Bob exactly once, or waits in the outbox
//!   "in doubt" when the server may have it (stopped after the SMTP transaction began:
//!   before the message went out, or after the server's `250`). It is never sent again
//!   by itself; the user sends it again or discards it.
//! - An interrupted send that did reach the server is found there by its Message-ID
//!   (in Sent, where some providers keep what they relay; in INBOX, sent to oneself)
//!   and counts as sent.
//! - The connection cut in the middle of the message: in doubt, with the reason; the
//!   server unreachable before any command of the message: failed, and sent by the next
//!   flush by itself.
//! - Two copies with one Message-ID in one folder are listed once; the other comes back
//!   when the listed one leaves the server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod mail_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_common::*;
use sealpost_core::mailbox::{Compose, MailAccount, Mailbox, OutboxStep};
use sealpost_core::{CoreError, SystemClock};
use sealpost_mail::Server;
use sealpost_testkit::proxy::{Chunk, Direction, TcpProxy, Verdict};
use sealpost_testkit::watchdog::deadline;

fn to(who: &str, subject: &str, text: &str) -> Compose {
    Compose {
        to: vec![who.into()],
        subject: subject.into(),
        text: text.into(),
        ..Compose::default()
    }
}

/// Subject → Message-IDs of the messages in `folder` of `user`, read over a fresh
/// session behind the app's back.
async fn copies(
    servers: &Servers,
    user: &str,
    pw: &str,
    folder: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut imap = servers.imap(user, pw).await;
    let changes = imap.sync(folder, None).await.unwrap();
    let uids: Vec<u32> = changes.new.iter().map(|m| m.uid).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in uids.chunks(50) {
        for (_, raw) in imap.fetch_messages(chunk).await.unwrap() {
            let ctx = sealpost_pgp::OpenContext::new(&[], &[], std::time::SystemTime::now());
            let parsed = sealpost_pgp::open_mail(&raw, &ctx).unwrap();
            out.entry(parsed.subject.unwrap_or_default())
                .or_default()
                .push(parsed.message_id.unwrap_or_default());
        }
    }
    imap.logout().await.unwrap();
    out
}

/// Waits until `user`'s INBOX holds at least `n` messages (at most 30 s), then two
/// seconds more for a late duplicate, and returns its copies.
async fn delivered(
    servers: &Servers,
    user: &str,
    pw: &str,
    n: usize,
) -> BTreeMap<String, Vec<String>> {
    let started = Instant::now();
    loop {
        let seen = copies(servers, user, pw, "INBOX").await;
        if seen.values().map(Vec::len).sum::<usize>() >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {seen:?} arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    copies(servers, user, pw, "INBOX").await
}

fn count(map: &BTreeMap<String, Vec<String>>, subject: &str) -> usize {
    map.get(subject).map_or(0, Vec::len)
}

fn state_of(mb: &Mailbox, acc: &MailAccount, id: i64) -> String {
    mb.outbox(acc)
        .unwrap()
        .into_iter()
        .find(|e| e.id == id)
        .map_or_else(|| "gone".to_owned(), |e| e.state.to_string())
}

/// Queues `compose` and flushes, stopped at `step` as a kill there would stop it;
/// returns the entry's id and the steps it went through.
async fn killed_at(
    mb: &mut Mailbox,
    acc: &MailAccount,
    compose: &Compose,
    step: OutboxStep,
) -> (i64, Vec<OutboxStep>) {
    let entry = mb.queue(acc, compose, &SystemClock).unwrap();
    let mut seen = Vec::new();
    let err = mb
        .flush_outbox_steps(acc, &SystemClock, &mut |u| {
            // Entries left in doubt before are looked at again, and stay so.
            if u.id != entry.id {
                assert!(
                    matches!(u.step, OutboxStep::Recorded | OutboxStep::InDoubt),
                    "{u:?}"
                );
                return Ok(());
            }
            assert_eq!(u.message_id, entry.message_id);
            seen.push(u.step);
            if u.step == step {
                Err(CoreError::Injected("test"))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::Injected(_)), "{err}");
    (entry.id, seen)
}

#[tokio::test]
async fn a_flush_killed_at_every_step_sends_exactly_once_or_waits_for_the_user() {
    let _deadline = deadline(Duration::from_secs(300), "the outbox kill test");
    let servers = Servers::start(true);
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path(), "alice");
    let clock = SystemClock;
    let acc = {
        let mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
        add(&mb, &servers.account(ALICE), ALICE_MAIL_PW)
    };
    use OutboxStep as S;
    let steps = [
        S::Recorded,
        S::Connecting,
        S::Started,
        S::Submitted,
        S::Accepted,
        S::SavingToSent,
        S::Appended,
    ];
    let mut in_doubt: Vec<(OutboxStep, i64)> = Vec::new();
    for step in steps {
        let subject = format!("killed at {step:?}");
        let (id, seen) = {
            let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
            let (id, seen) =
                killed_at(&mut mb, &acc, &to(BOB, &subject, "exactly once"), step).await;
            let expected = match step {
                S::Recorded | S::Connecting => "queued",
                S::Started | S::Submitted => "sending",
                _ => "sent",
            };
            assert_eq!(state_of(&mb, &acc, id), expected, "{step:?}");
            (id, seen)
        };
        let all = [
            S::Recorded,
            S::Connecting,
            S::Started,
            S::Submitted,
            S::Accepted,
            S::SavingToSent,
            S::Appended,
        ];
        assert_eq!(
            seen[..],
            all[..=all.iter().position(|s| *s == step).unwrap()]
        );

        // "Restart": a new store handle, and the flush finishes the job, or leaves it
        // to the user.
        let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
        let report = mb.flush_outbox(&acc, &clock).await.unwrap();
        assert!(report.failed.is_empty(), "{step:?}: {report:?}");
        match step {
            S::Recorded | S::Connecting => {
                assert_eq!((report.sent, report.appended, report.cleared), (1, 1, 1));
            }
            S::Started | S::Submitted => {
                assert!(report.in_doubt.contains(&id), "{step:?}: {report:?}");
                assert_eq!((report.sent, report.cleared), (0, 0));
                assert_eq!(state_of(&mb, &acc, id), "inDoubt");
                // Never again by itself, however often it is flushed.
                let again = mb.flush_outbox(&acc, &clock).await.unwrap();
                assert_eq!(again.sent, 0);
                assert!(again.in_doubt.contains(&id));
                in_doubt.push((step, id));
            }
            S::Accepted | S::SavingToSent => {
                assert_eq!((report.sent, report.appended, report.cleared), (0, 1, 1));
            }
            _ => assert_eq!((report.sent, report.appended, report.cleared), (0, 0, 1)),
        }
    }

    // At Bob: once each, except the one stopped before the message went out.
    let bob = delivered(&servers, BOB, BOB_MAIL_PW, steps.len() - 1).await;
    for step in steps {
        let expected = usize::from(step != S::Started);
        assert_eq!(
            count(&bob, &format!("killed at {step:?}")),
            expected,
            "{step:?}: {bob:?}"
        );
    }

    // The user decides: the first in doubt goes again, the second is dropped.
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let waiting = |step| in_doubt.iter().find(|(s, _)| *s == step).unwrap().1;
    let (started, submitted) = (waiting(S::Started), waiting(S::Submitted));
    assert!(
        mb.resend_outbox_entry(&acc, 999_999).is_err(),
        "only an entry in doubt can be sent again"
    );
    mb.resend_outbox_entry(&acc, started).unwrap();
    assert_eq!(state_of(&mb, &acc, started), "queued");
    assert!(mb.resend_outbox_entry(&acc, started).is_err());
    mb.discard_outbox_entry(&acc, submitted).unwrap();
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!((report.sent, report.cleared), (1, 1), "{report:?}");
    assert!(mb.outbox(&acc).unwrap().is_empty());

    let bob = delivered(&servers, BOB, BOB_MAIL_PW, steps.len()).await;
    let sent = copies(&servers, ALICE, ALICE_MAIL_PW, "Sent").await;
    for step in steps {
        let subject = format!("killed at {step:?}");
        assert_eq!(count(&bob, &subject), 1, "{subject}: {bob:?}");
        assert_eq!(
            count(&sent, &subject),
            usize::from(step != S::Submitted),
            "{subject} in Sent (the discarded one has no copy): {sent:?}"
        );
    }
}

#[tokio::test]
async fn an_interrupted_send_that_reached_the_server_is_found_there_and_not_sent_again() {
    let _deadline = deadline(Duration::from_secs(200), "the found-on-the-server test");
    let servers = Servers::start(true);
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path(), "alice");
    let clock = SystemClock;
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);

    // A provider that keeps in Sent what it relays: the copy is there.
    let (id, _) = killed_at(
        &mut mb,
        &acc,
        &to(BOB, "kept by the server", "one"),
        OutboxStep::Submitted,
    )
    .await;
    let bob = delivered(&servers, BOB, BOB_MAIL_PW, 1).await;
    assert_eq!(count(&bob, "kept by the server"), 1);
    let mut bob_imap = servers.imap(BOB, BOB_MAIL_PW).await;
    let inbox = bob_imap.sync("INBOX", None).await.unwrap();
    let (_, raw) = bob_imap
        .fetch_messages(&[inbox.new[0].uid])
        .await
        .unwrap()
        .remove(0);
    bob_imap.logout().await.unwrap();
    let mut alice_imap = servers.imap(ALICE, ALICE_MAIL_PW).await;
    alice_imap.append("Sent", &[], &raw).await.unwrap();
    alice_imap.logout().await.unwrap();
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!(
        (report.found, report.sent, report.appended, report.cleared),
        (1, 0, 0, 1),
        "{report:?}"
    );
    assert_eq!(state_of(&mb, &acc, id), "gone");
    assert_eq!(
        count(
            &copies(&servers, ALICE, ALICE_MAIL_PW, "Sent").await,
            "kept by the server"
        ),
        1
    );

    // To oneself: once delivered, it is found in INBOX; the copy in Sent is made.
    let (id, _) = killed_at(
        &mut mb,
        &acc,
        &to(ALICE, "to myself", "two"),
        OutboxStep::Submitted,
    )
    .await;
    delivered(&servers, ALICE, ALICE_MAIL_PW, 1).await;
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!(
        (report.found, report.sent, report.appended, report.cleared),
        (1, 0, 1, 1),
        "{report:?}"
    );
    assert_eq!(state_of(&mb, &acc, id), "gone");
    let inbox = delivered(&servers, ALICE, ALICE_MAIL_PW, 1).await;
    assert_eq!(count(&inbox, "to myself"), 1);
    assert_eq!(
        count(
            &copies(&servers, ALICE, ALICE_MAIL_PW, "Sent").await,
            "to myself"
        ),
        1
    );
}

#[tokio::test]
async fn a_cut_in_the_message_leaves_it_in_doubt_and_no_server_leaves_it_queued() {
    let _deadline = deadline(Duration::from_secs(200), "the cut-send test");
    let servers = Servers::start(true);
    let postfix = servers.postfix.as_ref().unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], postfix.submissions_port()).into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path(), "alice");
    let clock = SystemClock;
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let mut new = servers.account(ALICE);
    new.smtp = Server::tls("localhost", proxy.port());
    let acc = add(&mb, &new, ALICE_MAIL_PW);

    // The server unreachable: nothing of the message went out; failed, still queued,
    // and the next flush sends it by itself.
    proxy.set_down(true);
    let entry = mb
        .queue(&acc, &to(BOB, "while down", "later"), &clock)
        .unwrap();
    let mut steps = Vec::new();
    let report = mb
        .flush_outbox_steps(&acc, &clock, &mut |u| {
            steps.push((u.step, u.error.clone()));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.in_doubt.is_empty());
    assert_eq!(state_of(&mb, &acc, entry.id), "queued");
    assert_eq!(
        steps.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [
            OutboxStep::Recorded,
            OutboxStep::Connecting,
            OutboxStep::Failed
        ]
    );
    assert!(steps[2].1.as_deref().is_some_and(|e| !e.is_empty()));
    proxy.set_down(false);
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!((report.sent, report.cleared), (1, 1), "{report:?}");

    // Cut while the body goes out (a 300 kB text): the server never answered, so it
    // may have the message; in doubt, with the reason in words.
    let text = "zebra quartz ".repeat(300_000 / 13);
    let entry = mb
        .queue(&acc, &to(BOB, "cut in the middle", &text), &clock)
        .unwrap();
    proxy.set_hook(Some(Box::new(|c: &Chunk<'_>| {
        if c.direction == Direction::ToServer && c.to_server + c.bytes.len() as u64 > 100_000 {
            Verdict::Cut
        } else {
            Verdict::Forward
        }
    })));
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    proxy.set_hook(None);
    assert_eq!(report.in_doubt, [entry.id], "{report:?}");
    assert!(report.failed.is_empty());
    let waiting = mb.outbox(&acc).unwrap();
    assert_eq!(waiting[0].state.to_string(), "inDoubt");
    assert!(!waiting[0].last_error.is_empty());
    println!("in doubt because: {}", waiting[0].last_error);
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!((report.sent, report.in_doubt.clone()), (0, vec![entry.id]));
    mb.resend_outbox_entry(&acc, entry.id).unwrap();
    let report = mb.flush_outbox(&acc, &clock).await.unwrap();
    assert_eq!((report.sent, report.cleared), (1, 1), "{report:?}");
    let bob = delivered(&servers, BOB, BOB_MAIL_PW, 2).await;
    assert_eq!(count(&bob, "while down"), 1);
    assert_eq!(count(&bob, "cut in the middle"), 1);
}

#[tokio::test]
async fn two_copies_with_one_message_id_are_listed_once() {
    let servers = Servers::start(false);
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&alice, Arc::new(SystemClock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);
    let twice = message("twice", 200);
    let mut imap = servers.imap(ALICE, ALICE_MAIL_PW).await;
    imap.append("INBOX", &[], &twice).await.unwrap();
    imap.append("INBOX", &[], &twice).await.unwrap();
    imap.append("INBOX", &[], &message("once", 200))
        .await
        .unwrap();

    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(report.duplicates, 1, "{report:?}");
    let listed = mb.list(&acc, "INBOX").unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first = listed.iter().find(|m| m.subject == "bulk twice").unwrap();
    // Synced again: still once (the copy is not fetched again).
    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!((report.new, report.duplicates), (0, 0));
    assert_eq!(mb.list(&acc, "INBOX").unwrap().len(), 2);

    // The listed copy leaves the server: the other one is listed now.
    imap.select("INBOX").await.unwrap();
    imap.delete_messages(&[first.uid]).await.unwrap();
    mb.sync(&acc, &SystemClock).await.unwrap();
    let listed = mb.list(&acc, "INBOX").unwrap();
    let again: Vec<_> = listed
        .iter()
        .filter(|m| m.subject == "bulk twice")
        .collect();
    assert_eq!(again.len(), 1, "{listed:?}");
    assert_ne!(again[0].uid, first.uid);
    // And when it leaves too, none.
    imap.delete_messages(&[again[0].uid]).await.unwrap();
    mb.sync(&acc, &SystemClock).await.unwrap();
    let listed = mb.list(&acc, "INBOX").unwrap();
    assert!(
        listed.iter().all(|m| m.subject != "bulk twice"),
        "{listed:?}"
    );
    assert_eq!(store_folder(&mb, &acc, "INBOX").len(), 1);
    imap.logout().await.unwrap();
}
