//! What the user waits for while the core is busy, through the API the app calls:
//!
//! - **list reads** (a page of 50 rows of a 10,000-message inbox, the app's scroll)
//!   when idle, (a) while OPAQUE logins run back to back (Argon2id: a new recovery
//!   code, as Settings makes one), and (b) while the sync server accepts and never
//!   answers (a device list asked of it): p50, p99 and the worst;
//! - **opening an encrypted message** of 4 KiB and of 10 MiB (an attachment): the
//!   reader's `open_message` plus the mail frame's `frame`, cold (the first opening)
//!   and warm (the same message again: what the frame and an attachment save cost).
//!
//! The store is filled directly (as `benches/app.rs` does); the sync server is the real
//! one, in-process; the stalled one is a TCP listener that never answers. Run:
//! `cargo bench -p sealpost-core --bench responsiveness`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sealpost_core::api::{Core, CoreConfig};
use sealpost_core::mailbox::{Mailbox, NewAccount};
use sealpost_core::vault;
use sealpost_core::{Clock, SystemClock};
use sealpost_crypto::Password;
use sealpost_mail::{Secret, Server};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;

const PW: &str = "tundra mosaic gravel whimsy plank";
const N: usize = 10_000;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let server = EmbeddedServer::start(
        &dir.path().join("server"),
        "127.0.0.1:0".parse().unwrap(),
        ServiceConfig {
            rate_per_second: 0.0,
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    // A "sync server" that accepts and never answers.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_addr = stall.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in stall.incoming() {
            held.push(s);
        }
    });
    let profile = dir.path().join("profile");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let core = Core::start(
        CoreConfig {
            profile_dir: profile.clone(),
            server_url: server.url(),
            device_name: "bench".into(),
            mail_extra_roots_pem: String::new(),
            // The app's setting: the workers run (offline here: nobody answers on 9).
            background: true,
            autoconfig_url: None,
        },
        Arc::new(|_| {}),
    )
    .unwrap();
    rt.block_on(async {
        core.account()
            .create("bench".into(), Password::new(PW).unwrap())
            .await
            .unwrap();
        core.profile().lock().await.unwrap();
    });
    // Fill the store directly (as benches/app.rs does), plus encrypted mails to open.
    let (account_id, small, big) = {
        let u = Arc::new(
            vault::open(&profile)
                .unwrap()
                .unlock(&Password::new(PW).unwrap())
                .unwrap(),
        );
        let key = sealpost_core::keys::ensure_own_key(
            &u,
            "Bench",
            &["bench@sealpost.test"],
            &SystemClock,
        )
        .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mb = Mailbox::open(&u, clock).unwrap();
        let account = mb
            .add_account(
                &NewAccount {
                    address: "bench@sealpost.test".into(),
                    login: "bench@sealpost.test".into(),
                    imap: Server::tls("127.0.0.1", 9),
                    smtp: Server::tls("127.0.0.1", 9),
                    extra_roots_pem: String::new(),
                },
                &Secret::new("unused"),
                &SystemClock,
            )
            .unwrap();
        let mut batch = Vec::new();
        for i in 0..N {
            batch.push(
                sealpost_pgp::plain_mail(
                    &sealpost_pgp::OutgoingMail {
                        from: sealpost_pgp::Mailbox::new(
                            "Sender",
                            format!("sender{}@example.org", i % 300),
                        ),
                        to: vec![sealpost_pgp::Mailbox::address("bench@sealpost.test")],
                        subject: format!("Message number {i} about the quarterly plans"),
                        text: format!("Body of message {i}. Nothing else to see here."),
                        message_id: format!("resp-bench-{i}@sealpost.test"),
                        date: 1_600_000_000 + (i as i64) * 60,
                        ..Default::default()
                    },
                    None,
                    std::time::SystemTime::now(),
                )
                .unwrap(),
            );
            if batch.len() == 1000 {
                mb.import_fetched(&account, "INBOX", &batch, &SystemClock)
                    .unwrap();
                batch.clear();
            }
        }
        let now = std::time::SystemTime::now();
        let mk = |text: String, att: Vec<u8>, id: &str| {
            let mail = sealpost_pgp::OutgoingMail {
                from: sealpost_pgp::Mailbox::new("Bench", "bench@sealpost.test"),
                to: vec![sealpost_pgp::Mailbox::new("Bench", "bench@sealpost.test")],
                subject: "Encrypted".into(),
                text,
                attachments: if att.is_empty() {
                    vec![]
                } else {
                    vec![sealpost_pgp::Attachment {
                        name: Some("big.bin".into()),
                        content_type: "application/octet-stream".into(),
                        data: att,
                    }]
                },
                date: 1_700_000_000,
                message_id: id.into(),
                ..Default::default()
            };
            sealpost_pgp::encrypt_mail(&mail, &key, &[], now).unwrap()
        };
        let small = mk("x".repeat(4096), vec![], "small@bench");
        let mut big_data = vec![0u8; 10 * 1024 * 1024];
        for (i, b) in big_data.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2654435761) >> 13) as u8;
        }
        let big = mk("big one".into(), big_data, "big@bench");
        mb.import_fetched(&account, "Encrypted", &[small, big], &SystemClock)
            .unwrap();
        let mut ids: Vec<i64> = mb
            .list(&account, "Encrypted")
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        // Stored in order: the small one first.
        ids.sort_unstable();
        (account.id, ids[0], ids[1])
    };
    rt.block_on(async {
        core.profile()
            .unlock(Password::new(PW).unwrap())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let read = |core: Core, account_id: String, secs: f64| async move {
            let mut lat = Vec::new();
            let start = Instant::now();
            let mut i = 0u32;
            while start.elapsed().as_secs_f64() < secs {
                let off = (i * 7919) % (N as u32 - 50);
                let t = Instant::now();
                core.mail()
                    .messages(account_id.clone(), "INBOX".into(), off, 50)
                    .await
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lat
        };
        let mut idle = read(core.clone(), account_id.clone(), 5.0).await;
        println!(
            "list read (50 rows of 10,000), idle: n={} p50 {:.2} ms p99 {:.2} ms",
            idle.len(),
            pct(&mut idle, 0.5),
            pct(&mut idle, 0.99)
        );
        // (a) OPAQUE logins (Argon2id) back to back.
        let bg = {
            let c = core.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let mut n = 0;
                while t.elapsed() < Duration::from_secs(10) {
                    c.profile()
                        .new_recovery_code(Password::new(PW).unwrap())
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        };
        let mut a = read(core.clone(), account_id.clone(), 10.0).await;
        let n = bg.await.unwrap();
        println!(
            "list read while Argon2id runs ({n} OPAQUE logins): n={} p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            a.len(),
            pct(&mut a, 0.5),
            pct(&mut a, 0.99),
            pct(&mut a, 1.0)
        );
        // (b) the sync server stalls.
        let conn = rusqlite::Connection::open(profile.join("vault.sqlite3")).unwrap();
        conn.execute(
            "UPDATE sync_account SET server_url = ?1",
            [format!("http://{stall_addr}")],
        )
        .unwrap();
        drop(conn);
        let bg = {
            let c = core.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let r = c.account().devices().await;
                (t.elapsed(), r.is_err())
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut b = read(core.clone(), account_id.clone(), 10.0).await;
        let (took, failed) = bg.await.unwrap();
        println!(
            "list read while the sync server stalls (devices call took {:.1} s, failed {failed}): n={} p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            took.as_secs_f64(),
            b.len(),
            pct(&mut b, 0.5),
            pct(&mut b, 0.99),
            pct(&mut b, 1.0)
        );
        for (name, id) in [("4 KiB", small), ("10 MiB", big)] {
            // Cold: the first opening (as a lock empties the cache, lock and unlock
            // before each run); warm: the same message opened again.
            let (mut cold, mut warm) = (Vec::new(), Vec::new());
            for _ in 0..5 {
                core.profile().lock().await.unwrap();
                core.profile()
                    .unlock(Password::new(PW).unwrap())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                let before = sealpost_pgp::decryptions();
                let s = Instant::now();
                let v = core.mail().open_message(id).await.unwrap();
                assert_eq!(v.encryption, "decrypted");
                let _frame = core.mail().frame(id).await.unwrap();
                cold.push(s.elapsed().as_secs_f64() * 1000.0);
                let s = Instant::now();
                core.mail().open_message(id).await.unwrap();
                core.mail().frame(id).await.unwrap();
                warm.push(s.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(sealpost_pgp::decryptions() - before, 1, "one decryption");
            }
            println!(
                "open {name} encrypted (open_message + frame): first opening median {:.1} ms \
                 (runs {:?}); again median {:.2} ms",
                pct(&mut cold, 0.5),
                cold.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>(),
                pct(&mut warm, 0.5)
            );
        }
    });
    drop(core);
    drop(server);
}
