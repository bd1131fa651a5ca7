//! The store's sync with QRESYNC on Dovecot: after another client deletes 50 messages
//! and flags 50 others in a folder of 2,000, the next sync costs one `SELECT` per folder
//! (plus `ENABLE` and `LIST`), and the store ends exactly like the server. The time of
//! that second sync is printed.

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

const MESSAGES: usize = 2_000;

#[tokio::test]
async fn a_second_sync_after_100_changes_is_one_select_per_folder() {
    let _deadline = deadline(Duration::from_secs(300), "the QRESYNC store test");
    let servers = Servers::start(false);
    let all: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| message(&format!("q{i}"), 500))
        .collect();
    servers.dovecot.write_maildir(ALICE, "INBOX", &all).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);

    let first = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(first.new, MESSAGES);
    // Nothing changed: one SELECT per folder, after ENABLE and LIST.
    let quiet = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(quiet.commands, 2 + quiet.folders as u64, "{quiet:?}");
    assert_eq!((quiet.new, quiet.removed, quiet.flags_changed), (0, 0, 0));

    // Another client: 50 deleted, 50 flagged.
    let uids: Vec<u32> = store_folder(&mb, &acc, "INBOX").into_keys().collect();
    let deleted: Vec<u32> = uids.iter().copied().step_by(40).collect();
    let flagged: Vec<u32> = uids.iter().copied().skip(20).step_by(40).collect();
    assert_eq!((deleted.len(), flagged.len()), (50, 50));
    let mut other = servers.imap(ALICE, ALICE_MAIL_PW).await;
    other.select("INBOX").await.unwrap();
    other.delete_messages(&deleted).await.unwrap();
    other
        .add_flags(&flagged, &[Flag::Seen, Flag::Flagged])
        .await
        .unwrap();
    other.logout().await.unwrap();

    let started = Instant::now();
    let second = mb.sync(&acc, &SystemClock).await.unwrap();
    let took = started.elapsed();
    println!(
        "store sync after 100 changes in {MESSAGES} messages ({} folders): {:.1} ms, {} commands",
        second.folders,
        took.as_secs_f64() * 1000.0,
        second.commands
    );
    assert_eq!(second.commands, 2 + second.folders as u64, "{second:?}");
    assert_eq!(
        (second.removed, second.flags_changed),
        (50, 50),
        "{second:?}"
    );
    assert_eq!(second.changed_folders, ["INBOX"]);
    assert_eq!(
        store_folder(&mb, &acc, "INBOX"),
        server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await
    );
}
