//! Flags changed in the app at once, told to the server by the next sync, before the
//! server's (older) flags are read: against a real Dovecot.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod mail_common;

use std::sync::Arc;
use std::time::Duration;

use mail_common::*;
use sealpost_core::SystemClock;
use sealpost_core::mailbox::Mailbox;
use sealpost_mail::Flag;
use sealpost_testkit::watchdog::deadline;

#[tokio::test]
async fn flags_set_offline_reach_the_server_with_the_next_sync_and_win_over_its_old_state() {
    let _deadline = deadline(Duration::from_secs(120), "the local flags test");
    let servers = Servers::start(false);
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);
    servers
        .dovecot
        .write_maildir(
            ALICE,
            "INBOX",
            &[
                message("one", 200),
                message("two", 200),
                message("three", 200),
            ],
        )
        .unwrap();
    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(report.new, 3, "{report:?}");
    assert_eq!(report.changed_folders, ["INBOX"]);
    let inbox = mb.list(&acc, "INBOX").unwrap();
    let by_subject = |s: &str| inbox.iter().find(|m| m.subject == s).unwrap().clone();
    let (one, two, three) = (
        by_subject("bulk one"),
        by_subject("bulk two"),
        by_subject("bulk three"),
    );

    // Offline: the store changes at once; nothing is told yet.
    mb.mark_seen(one.id).unwrap();
    mb.set_flag_local(two.id, Flag::Flagged, true).unwrap();
    mb.set_flag_local(two.id, Flag::Flagged, false).unwrap();
    mb.set_flag_local(three.id, Flag::Flagged, true).unwrap();
    mb.set_flag_local(three.id, Flag::keyword("$Forwarded").unwrap(), true)
        .unwrap();
    assert_eq!(mb.summary(one.id).unwrap().flags, ["\\Seen"]);
    assert!(mb.summary(two.id).unwrap().flags.is_empty());
    assert_eq!(
        mb.summary(three.id).unwrap().flags,
        ["\\Flagged", "$Forwarded"]
    );
    assert_eq!(mb.pending_flag_changes(&acc).unwrap(), 4);
    let before = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    assert!(before.values().all(Vec::is_empty), "{before:?}");
    let unread = |mb: &Mailbox| {
        mb.folders(&acc)
            .unwrap()
            .into_iter()
            .find(|f| f.name == "INBOX")
            .unwrap()
            .unread
    };
    assert_eq!(unread(&mb), 2, "INBOX counts the local \\Seen");

    // Meanwhile another client flags "two" on the server: the user's later "unflagged"
    // in the app must win, so the sync tells the server before it reads it.
    let mut other = servers.imap(ALICE, ALICE_MAIL_PW).await;
    other.select("INBOX").await.unwrap();
    other.add_flags(&[two.uid], &[Flag::Flagged]).await.unwrap();
    other.logout().await.unwrap();

    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(report.flags_pushed, 4, "{report:?}");
    assert_eq!(report.flags_changed, 0, "the server agrees now: {report:?}");
    assert_eq!(mb.pending_flag_changes(&acc).unwrap(), 0);

    // A fresh session sees what the user did.
    let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    assert_eq!(server[&one.uid], ["\\Seen"]);
    assert!(server[&two.uid].is_empty(), "{server:?}");
    assert_eq!(server[&three.uid], ["\\Flagged", "$Forwarded"]);
    assert_eq!(store_folder(&mb, &acc, "INBOX"), server);

    // A message that left the server takes its pending change with it, and the sync
    // does not fail on it.
    mb.set_flag_local(one.id, Flag::Seen, false).unwrap();
    let mut other = servers.imap(ALICE, ALICE_MAIL_PW).await;
    other.select("INBOX").await.unwrap();
    other.delete_messages(&[one.uid]).await.unwrap();
    other.logout().await.unwrap();
    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!((report.removed, report.flags_pushed), (1, 1), "{report:?}");
    assert_eq!(mb.pending_flag_changes(&acc).unwrap(), 0);
    assert_eq!(
        store_folder(&mb, &acc, "INBOX"),
        server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await
    );
}

/// The app's UI marks messages read on its own connection to the store while the
/// background loop syncs on another: the sync neither fails (`SQLITE_BUSY`) nor loses
/// the UI's changes.
#[tokio::test]
async fn flag_changes_from_another_connection_during_a_sync_neither_fail_it_nor_get_lost() {
    let _deadline = deadline(Duration::from_secs(240), "the concurrent flags test");
    let servers = Servers::start(false);
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let acc = add(&mb, &servers.account(ALICE), ALICE_MAIL_PW);
    let first: Vec<Vec<u8>> = (0..100).map(|i| message(&format!("a{i}"), 300)).collect();
    servers
        .dovecot
        .write_maildir(ALICE, "INBOX", &first)
        .unwrap();
    mb.sync(&acc, &SystemClock).await.unwrap();
    let ids: Vec<i64> = mb
        .list(&acc, "INBOX")
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    let more: Vec<Vec<u8>> = (0..3000).map(|i| message(&format!("b{i}"), 300)).collect();
    servers
        .dovecot
        .write_maildir(ALICE, "INBOX", &more)
        .unwrap();

    // The "UI": another thread, its own unlock and connection, flipping \Seen on the
    // first 100 messages for as long as the sync runs (a hundred a second); it ends on
    // "seen".
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let ui = {
        let (dir, ids, stop) = (dir.path().to_owned(), ids.clone(), stop.clone());
        std::thread::spawn(move || {
            let u = Arc::new(
                sealpost_core::vault::open(&dir)
                    .unwrap()
                    .unlock(&sealpost_crypto::Password::new(PROFILE_PW).unwrap())
                    .unwrap(),
            );
            let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
            ready_tx.send(()).unwrap();
            let mut flips = 0u64;
            for (round, id) in (0u64..).zip(ids.iter().cycle()) {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let on = (round / ids.len() as u64).is_multiple_of(2);
                mb.set_flag_local(*id, Flag::Seen, on).unwrap();
                flips += 1;
                // A busy user: a hundred clicks a second.
                std::thread::sleep(Duration::from_millis(10));
            }
            for id in &ids {
                mb.mark_seen(*id).unwrap();
            }
            flips
        })
    };
    ready.recv().unwrap();
    let report = mb.sync(&acc, &SystemClock).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let flips = ui.join().unwrap();
    let report = report.unwrap();
    assert_eq!(report.new, 3000, "{report:?}");
    assert!(
        flips >= 5,
        "the UI thread ran during the sync: {flips} changes"
    );
    println!("{flips} flag changes by the other connection during the sync");
    // The UI's last word reaches the server with the next sync.
    mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(mb.pending_flag_changes(&acc).unwrap(), 0);
    let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    let store = store_folder(&mb, &acc, "INBOX");
    assert_eq!(store, server);
    let seen = server
        .values()
        .filter(|f| f.iter().any(|f| f == "\\Seen"))
        .count();
    assert_eq!(seen, 100, "exactly the UI's messages are seen");
}
