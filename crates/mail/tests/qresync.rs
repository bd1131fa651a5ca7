//! QRESYNC (RFC 7162) against the real Dovecot, and against small scripted servers that
//! answer a QRESYNC `SELECT` with more than a client should keep.
//!
//! - Another client deletes and flags messages: a session with QRESYNC learns all of it
//!   from one `SELECT` (counted: one command), the same as a session without it learns
//!   the long way (CONDSTORE `CHANGEDSINCE` and `UID SEARCH`, four commands); the time
//!   of both is printed, on loopback and through a proxy that adds a round-trip time. New mail costs one `UID FETCH` more; IDLE still wakes up on an
//!   expunge (now a `VANISHED`).
//! - A scripted server floods the `SELECT` with changed messages or `VANISHED` ranges:
//!   the client keeps none of it and goes the long way on the same folder; a range up
//!   to the last UID is not expanded; a malformed `VANISHED` ends the session with an
//!   error, not a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sealpost_mail::{
    Credentials, Flag, IdleEvent, ImapConfig, ImapSession, Server, SyncChanges, SyncState,
    TlsPolicy,
};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::proxy::{Chunk, Direction, TcpProxy, Verdict};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const MESSAGES: usize = 10_000;
const RUNS: usize = 5;
/// The round-trip time of the emulated distant server.
const RTT: Duration = Duration::from_millis(30);

fn uids_of(ranges: &[std::ops::RangeInclusive<u32>]) -> BTreeSet<u32> {
    ranges.iter().flat_map(|r| r.clone()).collect()
}

/// Syncs `folder` from `state` and returns the changes, the commands it cost and the time.
async fn timed_sync(imap: &mut ImapSession, state: &SyncState) -> (SyncChanges, u64, Duration) {
    let before = imap.commands_sent();
    let started = Instant::now();
    let changes = imap.sync("INBOX", Some(state)).await.unwrap();
    (changes, imap.commands_sent() - before, started.elapsed())
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

#[tokio::test]
async fn another_clients_expunges_and_flags_arrive_in_one_select_with_qresync() {
    let mail = Mail::imap_only();
    let all: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| message(BOB, ALICE, &format!("m{i}"), &format!("message {i}\r\n")))
        .collect();
    mail.dovecot.write_maildir(ALICE, "INBOX", &all).unwrap();

    let mut quick = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();
    assert!(quick.has_capability("QRESYNC"), "Dovecot offers QRESYNC");
    assert!(quick.enable_qresync().await.unwrap());
    assert!(quick.qresync_enabled());
    let mut long = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();
    let mut other = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();

    let first = quick.sync("INBOX", None).await.unwrap();
    assert!(first.reset);
    assert_eq!(first.new.len(), MESSAGES);
    assert!(first.vanished.is_none());
    let uids: Vec<u32> = first.new.iter().map(|m| m.uid).collect();

    // Another client: 50 deleted, 50 others flagged (100 changes).
    let deleted: Vec<u32> = uids.iter().copied().step_by(200).collect();
    let flagged: Vec<u32> = uids.iter().copied().skip(100).step_by(200).collect();
    assert_eq!((deleted.len(), flagged.len()), (50, 50));
    other.select("INBOX").await.unwrap();
    other.delete_messages(&deleted).await.unwrap();
    other
        .add_flags(&flagged, &[Flag::Seen, Flag::Flagged])
        .await
        .unwrap();

    // The same saved state, synced again and again: the server does not change, so
    // every run sees the same 100 changes.
    let (mut quick_times, mut long_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (q, q_commands, q_time) = timed_sync(&mut quick, &first.state).await;
        assert_eq!(q_commands, 1, "QRESYNC: one SELECT");
        assert!(!q.reset && q.new.is_empty() && q.present.is_empty());
        let vanished = q.vanished.as_deref().expect("QRESYNC reports VANISHED");
        assert_eq!(
            uids_of(vanished),
            deleted.iter().copied().collect::<BTreeSet<_>>()
        );
        let changed: BTreeSet<u32> = q.flags_changed.iter().map(|m| m.uid).collect();
        assert_eq!(changed, flagged.iter().copied().collect::<BTreeSet<_>>());
        assert!(
            q.flags_changed
                .iter()
                .all(|m| m.flags.contains(&Flag::Seen) && m.flags.contains(&Flag::Flagged))
        );
        assert!(q.state.highest_modseq > first.state.highest_modseq);

        let (l, l_commands, l_time) = timed_sync(&mut long, &first.state).await;
        assert_eq!(
            l_commands, 4,
            "without QRESYNC: SELECT, UID FETCH new, UID FETCH CHANGEDSINCE, UID SEARCH"
        );
        assert!(l.vanished.is_none());
        let left: BTreeSet<u32> = uids
            .iter()
            .copied()
            .filter(|u| !deleted.contains(u))
            .collect();
        assert_eq!(l.present, left);
        let changed_long: BTreeSet<u32> = l.flags_changed.iter().map(|m| m.uid).collect();
        assert_eq!(changed_long, changed, "both ways see the same flag changes");
        assert_eq!(l.state, q.state);
        quick_times.push(q_time);
        long_times.push(l_time);
    }
    let (q, l) = (median(quick_times), median(long_times));
    println!(
        "second sync of {MESSAGES} messages after 100 changes (50 expunged, 50 flagged), \
         median of {RUNS}: QRESYNC {:.1} ms (1 command), CONDSTORE + UID SEARCH {:.1} ms \
         (4 commands)",
        q.as_secs_f64() * 1000.0,
        l.as_secs_f64() * 1000.0
    );

    // The same over a link with a round-trip time: a proxy holds each first answer of
    // the server after the client spoke for RTT.
    let proxy =
        TcpProxy::start((std::net::Ipv4Addr::LOCALHOST, mail.dovecot.imaps_port()).into()).unwrap();
    let mut far = mail.imaps();
    far.server = Server::tls("localhost", proxy.port());
    let mut quick_far = ImapSession::connect(&far, &alice()).await.unwrap();
    assert!(quick_far.enable_qresync().await.unwrap());
    let mut long_far = ImapSession::connect(&far, &alice()).await.unwrap();
    let spoke: Arc<Mutex<Option<u64>>> = Arc::default();
    proxy.set_hook(Some(Box::new(move |c: &Chunk<'_>| {
        let mut spoke = spoke.lock().unwrap();
        match c.direction {
            Direction::ToServer => *spoke = Some(c.connection),
            Direction::ToClient if *spoke == Some(c.connection) => {
                *spoke = None;
                std::thread::sleep(RTT);
            }
            Direction::ToClient => {}
        }
        Verdict::Forward
    })));
    let (mut quick_times, mut long_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (_, q_commands, q_time) = timed_sync(&mut quick_far, &first.state).await;
        let (_, l_commands, l_time) = timed_sync(&mut long_far, &first.state).await;
        assert_eq!((q_commands, l_commands), (1, 4));
        quick_times.push(q_time);
        long_times.push(l_time);
    }
    proxy.set_hook(None);
    let (q, l) = (median(quick_times), median(long_times));
    println!(
        "the same with {} ms round trips: QRESYNC {:.1} ms, CONDSTORE + UID SEARCH {:.1} ms",
        RTT.as_millis(),
        q.as_secs_f64() * 1000.0,
        l.as_secs_f64() * 1000.0
    );
    assert!(
        q + RTT * 2 < l,
        "three round trips fewer: {q:?} against {l:?}"
    );
    quick_far.logout().await.unwrap();
    long_far.logout().await.unwrap();

    // New mail: one UID FETCH more.
    let after = quick.sync("INBOX", Some(&first.state)).await.unwrap();
    other
        .append("INBOX", &[], &message(BOB, ALICE, "late", "late\r\n"))
        .await
        .unwrap();
    let (newer, commands, _) = timed_sync(&mut quick, &after.state).await;
    assert_eq!(commands, 2, "SELECT and UID FETCH of the new one");
    assert_eq!(newer.new.len(), 1);
    assert_eq!(newer.vanished.as_deref(), Some(&[][..]));
    assert!(newer.flags_changed.is_empty());

    // IDLE with QRESYNC on: an expunge elsewhere (a VANISHED) wakes it.
    quick.select("INBOX").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let idler = tokio::spawn(async move {
        quick
            .idle(Duration::from_secs(20), async {
                let _ = rx.await;
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.delete_messages(&[newer.new[0].uid]).await.unwrap();
    let (mut quick, event) = idler.await.unwrap().unwrap();
    drop(tx);
    assert_eq!(event, IdleEvent::NewData);
    let gone = quick.sync("INBOX", Some(&newer.state)).await.unwrap();
    assert_eq!(
        uids_of(gone.vanished.as_deref().unwrap()),
        [newer.new[0].uid].into()
    );

    // A new UIDVALIDITY: the saved state is void, everything comes again.
    other.create_folder("Work").await.unwrap();
    other
        .append("Work", &[], &message(BOB, ALICE, "w1", "w1\r\n"))
        .await
        .unwrap();
    let work = quick.sync("Work", None).await.unwrap();
    other.select("INBOX").await.unwrap();
    other.delete_folder("Work").await.unwrap();
    other.create_folder("Work").await.unwrap();
    other
        .append("Work", &[], &message(BOB, ALICE, "w2", "w2\r\n"))
        .await
        .unwrap();
    let again = quick.sync("Work", Some(&work.state)).await.unwrap();
    assert!(again.reset && again.vanished.is_none());
    assert_eq!(again.new.len(), 1);
    for s in [quick, long, other] {
        s.logout().await.unwrap();
    }
}

// ------------------------------------------------------------------ scripted servers

/// A TLS server on loopback that answers each command by `answer(tag, command line)`
/// and records the command lines.
struct Scripted {
    port: u16,
    ca: TestCa,
    commands: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn config(&self) -> ImapConfig {
        let mut c = ImapConfig::new(Server::tls("localhost", self.port));
        c.tls = TlsPolicy::new().with_extra_root(self.ca.cert_der());
        c.timeout = Duration::from_secs(30);
        c
    }
}

async fn scripted(answer: fn(&str, &str) -> Vec<u8>) -> Scripted {
    let ca = TestCa::new("Scripted QRESYNC CA").unwrap();
    let cert = ca.issue_localhost().unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
    )
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&commands);
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let (read, mut write) = tokio::io::split(tls);
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"* OK scripted\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let (tag, command) = line.split_once(' ').unwrap_or(("*", ""));
            seen.lock().unwrap().push(command.to_owned());
            let reply = match command
                .split(' ')
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
                .as_str()
            {
                "LOGIN" => format!("{tag} OK logged in\r\n").into_bytes(),
                "CAPABILITY" => {
                    format!("* CAPABILITY IMAP4rev1 CONDSTORE QRESYNC\r\n{tag} OK\r\n").into_bytes()
                }
                "ENABLE" => format!("* ENABLED QRESYNC\r\n{tag} OK\r\n").into_bytes(),
                "LOGOUT" => format!("* BYE\r\n{tag} OK\r\n").into_bytes(),
                _ => answer(tag, command),
            };
            if write.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    Scripted { port, ca, commands }
}

const SELECT_HEAD: &str = "* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 10] n\r\n\
                           * OK [HIGHESTMODSEQ 20] m\r\n";

/// The long way's answers, after a QRESYNC answer was set aside.
fn long_way(tag: &str, command: &str) -> Option<Vec<u8>> {
    let upper = command.to_ascii_uppercase();
    if upper.starts_with("UID FETCH 10:*") {
        Some(format!("{tag} OK\r\n").into_bytes())
    } else if upper.starts_with("UID FETCH 1:9 (UID FLAGS) (CHANGEDSINCE 15)") {
        Some(format!("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (18))\r\n{tag} OK\r\n").into_bytes())
    } else if upper.starts_with("UID SEARCH") {
        Some(format!("* SEARCH 1 4\r\n{tag} OK\r\n").into_bytes())
    } else {
        None
    }
}

fn saved() -> SyncState {
    SyncState {
        uid_validity: 7,
        uid_next: 10,
        highest_modseq: Some(15),
    }
}

async fn qresync_session(server: &Scripted) -> ImapSession {
    let mut imap = ImapSession::connect(&server.config(), &Credentials::password("u", "p"))
        .await
        .unwrap();
    assert!(imap.enable_qresync().await.unwrap());
    imap
}

#[tokio::test]
async fn a_qresync_select_is_read_here_and_a_range_to_the_last_uid_is_not_expanded() {
    let server = scripted(|tag, _| {
        format!(
            "{SELECT_HEAD}* VANISHED (EARLIER) 2:3,5,1:4294967295\r\n\
             * 1 FETCH (UID 1 FLAGS (\\Seen $Work) MODSEQ (18))\r\n\
             * 3 FETCH (UID 12 FLAGS () MODSEQ (19))\r\n{tag} OK [READ-WRITE] done\r\n"
        )
        .into_bytes()
    })
    .await;
    let mut imap = qresync_session(&server).await;
    let before = imap.commands_sent();
    let changes = imap.sync("INBOX", Some(&saved())).await.unwrap();
    assert_eq!(imap.commands_sent() - before, 1);
    // Cut to the known UIDs (below the saved UIDNEXT) and merged: nothing expanded.
    assert_eq!(changes.vanished, Some(vec![1..=9]));
    assert_eq!(
        changes.flags_changed.len(),
        1,
        "UID 12 is not a known message"
    );
    assert_eq!(changes.flags_changed[0].uid, 1);
    assert!(changes.flags_changed[0].flags.contains(&Flag::Seen));
    assert!(
        changes.new.is_empty(),
        "UIDNEXT did not move: nothing fetched"
    );
    assert_eq!(changes.state.highest_modseq, Some(20));
    imap.logout().await.unwrap();
    let commands = server.commands.lock().unwrap().clone();
    assert!(
        commands.contains(&"SELECT \"INBOX\" (QRESYNC (7 15 1:9))".to_owned()),
        "{commands:?}"
    );
}

#[tokio::test]
async fn a_flood_of_changed_messages_is_set_aside_for_the_long_way() {
    let server = scripted(|tag, command| {
        if let Some(a) = long_way(tag, command) {
            return a;
        }
        // Far more changed messages than the folder holds.
        let mut out = SELECT_HEAD.as_bytes().to_vec();
        for uid in 1..=20_000u32 {
            out.extend_from_slice(
                format!("* 1 FETCH (UID {uid} FLAGS (\\Seen) MODSEQ (19))\r\n").as_bytes(),
            );
        }
        out.extend_from_slice(format!("{tag} OK [READ-WRITE] done\r\n").as_bytes());
        out
    })
    .await;
    let mut imap = qresync_session(&server).await;
    let changes = imap.sync("INBOX", Some(&saved())).await.unwrap();
    assert_eq!(changes.vanished, None, "the long way ran");
    assert_eq!(changes.present, [1, 4].into());
    assert_eq!(changes.flags_changed.len(), 1);
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_vanished_ranges_is_set_aside_for_the_long_way() {
    let server = scripted(|tag, command| {
        if let Some(a) = long_way(tag, command) {
            return a;
        }
        // 1.1 million one-UID ranges, over eleven lines.
        let mut out = SELECT_HEAD.as_bytes().to_vec();
        for line in 0..11u32 {
            let uids: Vec<String> = (0..100_000u32)
                .map(|i| ((line * 100_000 + i) * 2 + 1).to_string())
                .collect();
            out.extend_from_slice(
                format!("* VANISHED (EARLIER) {}\r\n", uids.join(",")).as_bytes(),
            );
        }
        out.extend_from_slice(format!("{tag} OK [READ-WRITE] done\r\n").as_bytes());
        out
    })
    .await;
    let mut imap = qresync_session(&server).await;
    let changes = imap.sync("INBOX", Some(&saved())).await.unwrap();
    assert_eq!(changes.vanished, None, "the long way ran");
    assert_eq!(changes.present, [1, 4].into());
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn a_malformed_vanished_ends_the_session_with_an_error() {
    let server = scripted(|tag, _| {
        format!("{SELECT_HEAD}* VANISHED (EARLIER) x:y\r\n{tag} OK done\r\n").into_bytes()
    })
    .await;
    let mut imap = qresync_session(&server).await;
    let result = imap.sync("INBOX", Some(&saved())).await;
    assert!(result.is_err(), "{result:?}");
}
