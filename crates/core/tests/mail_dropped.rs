//! The connection dropped in the middle of a sync: a TCP proxy in front of Dovecot cuts
//! it after a given number of bytes from the server, in the middle of fetching many
//! messages. The sync fails with an error (no panic, nothing half-stored); the next
//! sync through a healthy connection ends with exactly the server's messages: none
//! twice, none missing, every one opened.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod mail_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mail_common::*;
use sealpost_core::SystemClock;
use sealpost_core::mailbox::{Mailbox, MessageState};
use sealpost_testkit::proxy::{Chunk, Direction, TcpProxy, Verdict};
use sealpost_testkit::watchdog::deadline;

const MESSAGES: usize = 1000;
/// About 30 KB each: 30 MB in all, more than one fetch batch.
const TEXT: usize = 30_000;

#[tokio::test]
async fn a_sync_cut_mid_fetch_fails_cleanly_and_the_next_one_ends_exactly_like_the_server() {
    let _deadline = deadline(Duration::from_secs(240), "the dropped-connection test");
    let servers = Servers::start(false);
    let all: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| message(&format!("m{i}"), TEXT))
        .collect();
    servers.dovecot.write_maildir(ALICE, "INBOX", &all).unwrap();
    let proxy = TcpProxy::start(servers.imaps_addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let u = profile(dir.path(), "alice");
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let acc = add(
        &mb,
        &servers.account_via(ALICE, proxy.port()),
        ALICE_MAIL_PW,
    );

    // Cut at several points: in the first batch, then well into a later one.
    let mut stored_before = 0;
    for cut_at in [2_000_000u64, 20_000_000] {
        proxy.set_hook(Some(Box::new(move |c: &Chunk<'_>| {
            if c.direction == Direction::ToClient && c.to_client + c.bytes.len() as u64 > cut_at {
                Verdict::Cut
            } else {
                Verdict::Forward
            }
        })));
        let result = mb.sync(&acc, &SystemClock).await;
        let err = result.expect_err("the cut sync must fail");
        println!("cut after {cut_at} bytes: {err}");
        let inbox = store_folder(&mb, &acc, "INBOX");
        assert!(inbox.len() < MESSAGES, "{}", inbox.len());
        assert!(inbox.len() >= stored_before, "nothing stored is lost");
        stored_before = inbox.len();
    }
    assert!(stored_before > 0, "the later cut left whole batches stored");

    proxy.set_hook(None);
    let report = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(report.new, MESSAGES - stored_before, "{report:?}");
    assert_eq!(
        report.opened, MESSAGES,
        "the stored ones were opened too: {report:?}"
    );
    let server = server_folder(&servers, ALICE, ALICE_MAIL_PW, "INBOX").await;
    assert_eq!(server.len(), MESSAGES);
    assert_eq!(store_folder(&mb, &acc, "INBOX"), server);
    // Every message exactly once, by what it says (its subject names its Message-ID).
    let list = mb.list(&acc, "INBOX").unwrap();
    assert!(list.iter().all(|m| m.state == MessageState::Ready));
    let subjects: BTreeSet<String> = list.iter().map(|m| m.subject.clone()).collect();
    let expected: BTreeSet<String> = (0..MESSAGES).map(|i| format!("bulk m{i}")).collect();
    assert_eq!(subjects, expected);
    assert_eq!(list.len(), MESSAGES);
    // And nothing more to do.
    let again = mb.sync(&acc, &SystemClock).await.unwrap();
    assert_eq!(
        (again.new, again.removed, again.flags_changed),
        (0, 0, 0),
        "{again:?}"
    );
}
