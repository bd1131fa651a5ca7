//! What the user waits for never waits behind slow work (issue 14), through the API the
//! app calls, with a real sync server (in-process) and a real stalled one (a listener
//! that accepts and never answers):
//!
//! - message-list reads, folder switches and openings complete while an OPAQUE login
//!   (Argon2id) runs, and while the sync server stalls two jobs, which then end with a
//!   clear timeout;
//! - a message is decrypted once per opening, whatever the reader, the frame and an
//!   attachment save ask of it, and again only after a lock wiped the cache;
//! - a lock while jobs run: they end (a cut one as "locked", a password or recovery
//!   code change whole), the keys are wiped, and the profile opens as it should after.
//!
//! No assertion here is about time: "while" means "before the slow job had finished".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealpost_core::api::{Core, CoreConfig};
use sealpost_core::mailbox::{Mailbox, NewAccount};
use sealpost_core::vault;
use sealpost_core::{Clock, CoreError, SystemClock};
use sealpost_crypto::{Password, RecoveryCode};
use sealpost_mail::{Secret, Server};
use sealpost_pgp::{Attachment, KeyPair, OutgoingMail};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::watchdog::deadline;
use tokio::task::JoinHandle;

const PW: &str = "tundra mosaic gravel whimsy plank";
const ADDRESS: &str = "reader@sealpost.test";

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

/// A profile with a sync account on a real server and a mail store filled directly: an
/// inbox of 300 plain mails, an archive of 30, an encrypted mail with an attachment and a
/// mail signed by a stranger (whose key a reader would look for in the directory).
struct World {
    dir: tempfile::TempDir,
    _server: EmbeddedServer,
    core: Core,
    account: String,
    encrypted: i64,
    stranger: i64,
    recovery_code: String,
    rt: tokio::runtime::Runtime,
}

const ATTACHMENT: &[u8] = b"the plans, in a file of their own";

fn world() -> World {
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
    let profile = dir.path().join("profile");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let core = Core::start(
        CoreConfig {
            profile_dir: profile.clone(),
            server_url: server.url(),
            device_name: "test device".into(),
            mail_extra_roots_pem: String::new(),
            // No mail workers: the mail servers below do not exist, and a worker's
            // decryptions would blur the count.
            background: false,
            autoconfig_url: None,
        },
        Arc::new(|_| {}),
    )
    .unwrap();
    let recovery_code = rt.block_on(async {
        let created = core
            .account()
            .create("reader".into(), pw(PW))
            .await
            .unwrap();
        core.profile().lock().await.unwrap();
        created.recovery_code.to_string()
    });
    let (account, encrypted, stranger) = fill(&profile);
    rt.block_on(core.profile().unlock(pw(PW))).unwrap();
    World {
        dir,
        _server: server,
        core,
        account,
        encrypted,
        stranger,
        recovery_code,
        rt,
    }
}

fn mail(i: usize, subject: &str) -> OutgoingMail {
    OutgoingMail {
        from: sealpost_pgp::Mailbox::new("Sender", format!("sender{}@example.org", i % 30)),
        to: vec![sealpost_pgp::Mailbox::address(ADDRESS)],
        subject: subject.into(),
        text: format!("Body of message {i}."),
        message_id: format!("responsive-{i}@sealpost.test"),
        date: 1_600_000_000 + (i as i64) * 60,
        ..Default::default()
    }
}

fn fill(profile: &Path) -> (String, i64, i64) {
    let u = Arc::new(vault::open(profile).unwrap().unlock(&pw(PW)).unwrap());
    let own = sealpost_core::keys::ensure_own_key(&u, "Reader", &[ADDRESS], &SystemClock).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mb = Mailbox::open(&u, clock).unwrap();
    let nowhere = Server::tls("127.0.0.1", 9);
    let account = mb
        .add_account(
            &NewAccount {
                address: ADDRESS.into(),
                login: ADDRESS.into(),
                imap: nowhere.clone(),
                smtp: nowhere,
                extra_roots_pem: String::new(),
            },
            &Secret::new("unused"),
            &SystemClock,
        )
        .unwrap();
    let now = SystemTime::now();
    let plain = |range: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        range
            .map(|i| sealpost_pgp::plain_mail(&mail(i, &format!("Note {i}")), None, now).unwrap())
            .collect()
    };
    mb.import_fetched(&account, "INBOX", &plain(0..300), &SystemClock)
        .unwrap();
    mb.import_fetched(&account, "Archive", &plain(300..330), &SystemClock)
        .unwrap();
    let sealed = OutgoingMail {
        from: sealpost_pgp::Mailbox::new("Reader", ADDRESS),
        subject: "Sealed plans".into(),
        attachments: vec![Attachment {
            name: Some("plans.txt".into()),
            content_type: "text/plain".into(),
            data: ATTACHMENT.to_vec(),
        }],
        ..mail(1000, "")
    };
    let sealed = sealpost_pgp::encrypt_mail(&sealed, &own, &[], now).unwrap();
    let stranger_key = KeyPair::generate("Stranger", &["stranger@example.org"], now).unwrap();
    let signed = OutgoingMail {
        from: sealpost_pgp::Mailbox::new("Stranger", "stranger@example.org"),
        ..mail(1001, "Signed by someone unknown")
    };
    let signed = sealpost_pgp::plain_mail(&signed, Some(&stranger_key), now).unwrap();
    mb.import_fetched(&account, "Mixed", &[sealed, signed], &SystemClock)
        .unwrap();
    let mut ids: Vec<i64> = mb
        .list(&account, "Mixed")
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    ids.sort_unstable();
    (account.id, ids[0], ids[1])
}

/// A "sync server" that accepts connections and never answers.
fn stalled_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    addr
}

/// Points the profile's sync account at `url` (as if the server moved or hung).
fn move_server(profile: &Path, url: &str) {
    let conn = rusqlite::Connection::open(profile.join("vault.sqlite3")).unwrap();
    conn.execute("UPDATE sync_account SET server_url = ?1", [url])
        .unwrap();
}

/// What the user does while waiting: a page of the inbox, the folder list, a switch to
/// the archive, and an opening. Returns how many such rounds ended while every handle
/// in `slow` was still running (and so did not wait for it).
async fn rounds_while(w: &World, slow: &[&JoinHandle<bool>], open: i64) -> usize {
    let mail = w.core.mail();
    let mut rounds = 0;
    loop {
        let inbox = mail
            .messages(
                w.account.clone(),
                "INBOX".into(),
                (rounds * 7 % 250) as u32,
                50,
            )
            .await
            .unwrap();
        assert_eq!(inbox.total, 300);
        let folders = mail.folders(w.account.clone()).await.unwrap();
        assert!(folders.iter().any(|f| f.name == "Archive"), "{folders:?}");
        let archive = mail
            .messages(w.account.clone(), "Archive".into(), 0, 50)
            .await
            .unwrap();
        assert_eq!(archive.total, 30);
        let view = mail.open_message(open).await.unwrap();
        assert!(!view.subject.is_empty());
        if slow.iter().any(|h| h.is_finished()) {
            return rounds;
        }
        rounds += 1;
        if rounds == 20 {
            return rounds;
        }
    }
}

#[test]
fn reads_complete_while_a_login_runs_and_while_the_sync_server_stalls() {
    let _deadline = deadline(Duration::from_secs(180), "reads beside slow jobs");
    let w = world();
    w.rt.block_on(async {
        // (a) An OPAQUE login (Argon2id) against the real server: a new recovery code.
        let login = {
            let core = w.core.clone();
            tokio::spawn(async move {
                core.profile().new_recovery_code(pw(PW)).await.unwrap();
                true
            })
        };
        let rounds = rounds_while(&w, &[&login], w.stranger).await;
        assert!(login.await.unwrap());
        assert!(
            rounds >= 3,
            "only {rounds} rounds of reads ended while the login ran"
        );

        // (b) The server stalls: a device list and a login (a recovery code asked
        // for) wait for it; the signed mail's key look-up too, in the background.
        move_server(
            &w.dir.path().join("profile"),
            &format!("http://{}", stalled_server()),
        );
        let devices = {
            let core = w.core.clone();
            tokio::spawn(async move {
                let err = core.account().devices().await.unwrap_err();
                assert!(matches!(err, CoreError::Sync(_)), "{err:?}");
                assert!(err.to_string().contains("no answer within 30 s"), "{err}");
                true
            })
        };
        let login = {
            let core = w.core.clone();
            tokio::spawn(async move {
                let err = core.profile().new_recovery_code(pw(PW)).await.unwrap_err();
                assert!(err.to_string().contains("no answer within 30 s"), "{err}");
                true
            })
        };
        let rounds = rounds_while(&w, &[&devices, &login], w.stranger).await;
        assert_eq!(rounds, 20, "reads waited for the stalled server");
        // The jobs end by themselves, with the reason in words.
        assert!(devices.await.unwrap());
        assert!(login.await.unwrap());
    });
}

#[test]
fn an_opening_decrypts_once_for_the_reader_the_frame_and_an_attachment() {
    let _deadline = deadline(Duration::from_secs(120), "one decryption per opening");
    let w = world();
    let saved = w.dir.path().join("plans.txt");
    w.rt.block_on(async {
        let mail = w.core.mail();
        let before = sealpost_pgp::decryptions();
        let view = mail.open_message(w.encrypted).await.unwrap();
        assert_eq!(view.encryption, "decrypted");
        assert!(view.text.contains("Body of message 1000"), "{}", view.text);
        assert_eq!(view.attachments.len(), 1);
        mail.frame(w.encrypted).await.unwrap();
        mail.save_attachment(w.encrypted, 0, saved.clone())
            .await
            .unwrap();
        mail.open_message(w.encrypted).await.unwrap();
        assert_eq!(
            sealpost_pgp::decryptions() - before,
            1,
            "decrypted more than once"
        );
        assert_eq!(std::fs::read(&saved).unwrap(), ATTACHMENT);
        // A lock wipes the cache: the next opening decrypts again, once.
        w.core.profile().lock().await.unwrap();
        w.core.profile().unlock(pw(PW)).await.unwrap();
        mail.open_message(w.encrypted).await.unwrap();
        mail.frame(w.encrypted).await.unwrap();
        assert_eq!(sealpost_pgp::decryptions() - before, 2);
    });
}

#[test]
fn a_lock_ends_running_jobs_wipes_the_keys_and_leaves_the_profile_whole() {
    let _deadline = deadline(Duration::from_secs(180), "a lock beside jobs");
    let w = world();
    let profile = w.dir.path().join("profile");
    w.rt.block_on(async {
        let keys = w.core.unlocked_for_tests().expect("unlocked");
        // A job the lock cuts: a device list asked of a server that stalls...
        let stall = format!("http://{}", stalled_server());
        let real = {
            let conn = rusqlite::Connection::open(profile.join("vault.sqlite3")).unwrap();
            conn.query_row("SELECT server_url FROM sync_account", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
        };
        move_server(&profile, &stall);
        let cut = {
            let core = w.core.clone();
            tokio::spawn(async move { core.account().devices().await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        w.core.profile().lock().await.unwrap();
        assert!(
            matches!(cut.await.unwrap(), Err(CoreError::Locked)),
            "the stalled job ended with the lock"
        );
        assert!(
            keys.upgrade().is_none(),
            "the unlocked vault outlived the lock"
        );

        // ...and one it waits for: a new recovery code, which the server and this
        // device must both take. Locked in the middle, it ends whole.
        move_server(&profile, &real);
        w.core.profile().unlock(pw(PW)).await.unwrap();
        let keys = w.core.unlocked_for_tests().expect("unlocked");
        let renew = {
            let core = w.core.clone();
            tokio::spawn(async move { core.profile().new_recovery_code(pw(PW)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        w.core.profile().lock().await.unwrap();
        assert!(
            keys.upgrade().is_none(),
            "the unlocked vault outlived the lock"
        );
        let renewed = renew.await.unwrap();
        // The code that works is the one the caller was given: the new one if the
        // change ended (it cannot be cut once started), else the old one.
        let works = |code: &str| {
            let code = RecoveryCode::parse(code).unwrap();
            let core = w.core.clone();
            async move { core.profile().check_recovery_code(code).await.is_ok() }
        };
        match &renewed {
            Ok(new) => {
                assert!(works(new).await, "the new code does not open the profile");
                assert!(!works(&w.recovery_code).await, "the old code still works");
            }
            Err(e) => {
                assert!(matches!(e, CoreError::Locked), "{e:?}");
                assert!(
                    works(&w.recovery_code).await,
                    "the old code stopped working"
                );
            }
        }
        // The store is whole: the profile opens, the mail is there.
        w.core.profile().unlock(pw(PW)).await.unwrap();
        let page = w
            .core
            .mail()
            .messages(w.account.clone(), "INBOX".into(), 0, 10)
            .await
            .unwrap();
        assert_eq!(page.total, 300);
    });
}
