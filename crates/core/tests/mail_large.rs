//! A 10,000-message folder syncs fully; a second sync after 100 changes on the server
//! (40 flag changes, 30 deletions, 30 new messages) moves only those, and the store
//! then matches the server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod mail_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_common::*;
use sealpost_core::SystemClock;
use sealpost_core::mailbox::Mailbox;
use sealpost_mail::Flag;
use sealpost_testkit::watchdog::deadline;

const MESSAGES: usize = 10_000;

#[tokio::test]
async fn ten_thousand_messages_sync_fully_and_a_second_sync_moves_only_the_100_changes() {
    let _deadline = deadline(Duration::from_secs(300), "the 10,000-message sync test");
    let servers = Servers::start(false);
    let started = Instant::now();
    let all: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| message(&format!("m{i}"), 1500))
        .collect();
    servers.dovecot.write_maildir(ALICE, "INBOX", &all).unwrap();
    println!(
        "filled INBOX with {MESSAGES} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);

    let t = Instant::now();
    let first = mb.sync(&acc, &SystemClock).await.unwrap();
    println!("first sync: {:.1} s, {first:?}", t.elapsed().as_secs_f64());
    assert_eq!(
        (first.new, first.opened, first.unreadable),
        (MESSAGES, MESSAGES, 0)
    );
    let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    assert_eq!(server.len(), MESSAGES);
    assert_eq!(store_folder(&mb, &acc, "INBOX"), server);

    // 100 changes behind the app's back.
    let uids: Vec<u32> = server.keys().copied().collect();
    let flagged: Vec<u32> = uids.iter().step_by(100).take(40).copied().collect();
    let deleted: Vec<u32> = uids
        .iter()
        .skip(50)
        .step_by(100)
        .take(30)
        .copied()
        .collect();
    assert!(flagged.iter().all(|u| !deleted.contains(u)));
    assert_eq!((flagged.len(), deleted.len()), (40, 30));
    let mut direct = servers.imap(ALICE, ALICE_MAIL_PW).await;
    direct.select("INBOX").await.unwrap();
    direct.add_flags(&flagged, &[Flag::Flagged]).await.unwrap();
    direct.delete_messages(&deleted).await.unwrap();
    for i in 0..30 {
        direct
            .append("INBOX", &[], &message(&format!("new{i}"), 800))
            .await
            .unwrap();
    }
    direct.logout().await.unwrap();

    let t = Instant::now();
    let second = mb.sync(&acc, &SystemClock).await.unwrap();
    println!(
        "second sync: {:.2} s, {second:?}",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        (
            second.new,
            second.removed,
            second.flags_changed,
            second.opened
        ),
        (30, 30, 40, 30),
        "{second:?}"
    );
    assert_eq!(second.changed_folders, ["INBOX"]);
    let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    assert_eq!(server.len(), MESSAGES);
    assert_eq!(store_folder(&mb, &acc, "INBOX"), server);
    for uid in &flagged {
        assert_eq!(server[uid], ["\\Flagged"]);
    }
    assert_eq!(mb.search("new17").unwrap().len(), 1);
    println!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}
