//! The mail engine against real servers: Postfix submits, Dovecot delivers and serves
//! IMAP, both on loopback with a test CA. Alice and Bob are two profiles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sealpost_core::keys::{self, KeySource};
use sealpost_core::mailbox::{Compose, MailAccount, Mailbox, MessageState, NewAccount};
use sealpost_core::vault::{self, Unlocked};
use sealpost_core::{CoreError, SystemClock};
use sealpost_crypto::Password;
use sealpost_mail::{Credentials, Flag, ImapConfig, ImapSession, Secret, Server, TlsPolicy};
use sealpost_pgp::{EncryptionStatus, SignatureStatus};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;

const ALICE: &str = "alice@sealpost.test";
const BOB: &str = "bob@sealpost.test";
const ALICE_MAIL_PW: &str = "alice-mail-password";
const BOB_MAIL_PW: &str = "bob-mail-password";
const PROFILE_PW: &str = "tundra mosaic gravel whimsy plank";

struct Servers {
    ca: TestCa,
    dovecot: Dovecot,
    postfix: Option<Postfix>,
}

impl Servers {
    fn start(smtp: bool) -> Self {
        let ca = TestCa::new("mailbox test CA").unwrap();
        let users = [
            TestUser::new(ALICE, ALICE_MAIL_PW),
            TestUser::new(BOB, BOB_MAIL_PW),
        ];
        let dovecot = Dovecot::start(&ca, &users).unwrap();
        let postfix = smtp.then(|| Postfix::start(&ca, &dovecot).unwrap());
        Self {
            ca,
            dovecot,
            postfix,
        }
    }

    fn account(&self, address: &str) -> NewAccount {
        NewAccount {
            address: address.into(),
            login: address.into(),
            imap: Server::tls("localhost", self.dovecot.imaps_port()),
            // Without Postfix nothing is sent; any port does.
            smtp: Server::tls(
                "localhost",
                self.postfix.as_ref().map_or(9, Postfix::submissions_port),
            ),
            extra_roots_pem: self.ca.cert_pem().to_owned(),
        }
    }

    /// A direct IMAP session, to change things on the server behind the app's back.
    async fn imap(&self, user: &str, password: &str) -> ImapSession {
        let mut config = ImapConfig::new(Server::tls("localhost", self.dovecot.imaps_port()));
        config.tls = TlsPolicy::new().with_extra_root(self.ca.cert_der());
        ImapSession::connect(&config, &Credentials::password(user, Secret::new(password)))
            .await
            .unwrap()
    }
}

fn profile(dir: &Path, name: &str) -> Arc<Unlocked> {
    let (u, _code) =
        vault::create(dir, name, &Password::new(PROFILE_PW).unwrap(), &SystemClock).unwrap();
    Arc::new(u)
}

fn add(mb: &Mailbox, servers: &Servers, address: &str, pw: &str) -> MailAccount {
    mb.add_account(&servers.account(address), &Secret::new(pw), &SystemClock)
        .unwrap()
}

fn compose(to: &str, subject: &str, text: &str, encrypt: bool) -> Compose {
    Compose {
        to: vec![to.into()],
        subject: subject.into(),
        text: text.into(),
        encrypt,
        ..Compose::default()
    }
}

/// Syncs until `folder` holds at least `n` messages (delivery through Postfix takes a
/// moment), then returns the list.
async fn sync_until(
    mb: &mut Mailbox,
    account: &MailAccount,
    folder: &str,
    n: usize,
) -> Vec<sealpost_core::mailbox::MessageSummary> {
    for _ in 0..60 {
        mb.sync(account, &SystemClock).await.unwrap();
        let list = mb.list(account, folder).unwrap();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{folder} never reached {n} messages");
}

/// Every file under `dir`, read whole (database, WAL, anything).
fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_contain(&path, needle));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn encrypted_mail_reaches_bob_decrypted_verified_searchable_and_sealed_at_rest() {
    let servers = Servers::start(true);
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let alice = profile(&a_dir, "alice");
    let bob = profile(&b_dir, "bob");
    let clock = SystemClock;
    let mut mb_a = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let mut mb_b = Mailbox::open(&bob, Arc::new(clock)).unwrap();
    let acc_a = add(&mb_a, &servers, ALICE, ALICE_MAIL_PW);
    let acc_b = add(&mb_b, &servers, BOB, BOB_MAIL_PW);
    assert_eq!(mb_a.accounts().unwrap(), vec![acc_a.clone()]);
    // The mail password is a vault secret, nowhere in the clear.
    assert!(files_contain(&a_dir, ALICE_MAIL_PW.as_bytes()).is_empty());
    mb_a.test_account(&acc_a).await.unwrap();

    // Plain mail to self: Postfix in, Dovecot out, a copy in Sent.
    mb_a.queue(
        &acc_a,
        &compose(ALICE, "hello self", "plain words", false),
        &clock,
    )
    .unwrap();
    let flushed = mb_a.flush_outbox(&acc_a, &clock).await.unwrap();
    assert_eq!((flushed.sent, flushed.appended, flushed.cleared), (1, 1, 1));
    assert!(mb_a.outbox(&acc_a).unwrap().is_empty());
    let inbox = sync_until(&mut mb_a, &acc_a, "INBOX", 1).await;
    assert_eq!(inbox[0].subject, "hello self");
    assert_eq!(inbox[0].from, ALICE);
    assert!(!inbox[0].encrypted);
    assert_eq!(mb_a.list(&acc_a, "Sent").unwrap().len(), 1);
    let read = mb_a.read(inbox[0].id, &clock).unwrap();
    assert!(read.opened.unwrap().text.unwrap().contains("plain words"));

    // Keys: both have one; Alice knows Bob's (he gave it to her).
    keys::ensure_own_key(&alice, "Alice", &[ALICE], &clock).unwrap();
    let bob_key = keys::ensure_own_key(&bob, "Bob", &[BOB], &clock).unwrap();
    keys::observe_key(
        &alice,
        BOB,
        &bob_key.public_bytes().unwrap(),
        KeySource::Manual,
        &clock,
    )
    .unwrap();

    // Encrypting to someone without a key is refused, naming them.
    let carol = Compose {
        cc: vec!["carol@sealpost.test".into()],
        ..compose(BOB, "x", "y", true)
    };
    match mb_a.queue(&acc_a, &carol, &clock) {
        Err(CoreError::NoRecipientKey(who)) => assert_eq!(who, ["carol@sealpost.test"]),
        other => panic!("{other:?}"),
    }

    let subject = "Zebrafinch itinerary";
    let body = "Bring the quasarblanket to the xylophonist.";
    mb_a.queue(&acc_a, &compose(BOB, subject, body, true), &clock)
        .unwrap();
    let draft = mb_a
        .save_draft(&acc_a, None, &compose(BOB, "draft", "a", true), &clock)
        .unwrap();
    let draft2 = mb_a
        .save_draft(
            &acc_a,
            Some(draft),
            &compose(BOB, "draft", "unfinished marmaladeword", true),
            &clock,
        )
        .unwrap();
    assert_eq!(draft, draft2);
    let drafts = mb_a.drafts(&acc_a).unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].compose.text, "unfinished marmaladeword");
    mb_a.flush_outbox(&acc_a, &clock).await.unwrap();

    // Bob: decrypted, the protected subject in the list, the signature valid once his
    // store has collected Alice's Autocrypt key from the message itself.
    let list = sync_until(&mut mb_b, &acc_b, "INBOX", 1).await;
    assert_eq!(list.len(), 1);
    let row = &list[0];
    assert_eq!(row.subject, subject);
    assert!(row.encrypted && row.signed, "{row:?}");
    assert_eq!(row.state, MessageState::Ready);
    let contact = keys::contact(&bob, ALICE).unwrap().unwrap();
    assert_eq!(contact.current.source, KeySource::Autocrypt);
    let opened = mb_b.read(row.id, &clock).unwrap().opened.unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert!(
        matches!(opened.signature, SignatureStatus::ValidUnconfirmed { .. }),
        "{:?}",
        opened.signature
    );
    assert!(opened.subject_protected);
    assert!(opened.text.unwrap().contains("xylophonist"));

    // Search finds words that exist only inside the encryption; whole words, any case.
    let ids = |mb: &Mailbox, q: &str| -> Vec<i64> {
        mb.search(q).unwrap().iter().map(|m| m.id).collect()
    };
    assert_eq!(ids(&mb_b, "xylophonist"), [row.id]);
    assert_eq!(ids(&mb_b, "QUASARBLANKET zebrafinch"), [row.id]);
    assert_eq!(ids(&mb_b, ALICE), [row.id]);
    assert!(ids(&mb_b, "xylophon").is_empty());
    assert!(ids(&mb_b, "xylophonist absentword").is_empty());
    // Alice's store has her Sent copy (encrypted to her too) indexed.
    mb_a.sync(&acc_a, &clock).await.unwrap();
    let sent = mb_a.list(&acc_a, "Sent").unwrap();
    assert!(sent.iter().any(|m| m.subject == subject && m.encrypted));
    assert_eq!(mb_a.search("xylophonist").unwrap().len(), 1);

    // A sync killed after storing, before opening, resumes: state lost, messages
    // pending again; the next sync neither duplicates nor loses anything.
    {
        let conn = rusqlite::Connection::open(b_dir.join("mail.sqlite3")).unwrap();
        conn.execute("UPDATE folder SET uid_next = 1, highest_modseq = 0", [])
            .unwrap();
        conn.execute("UPDATE message SET state = 'pending'", [])
            .unwrap();
    }
    mb_b.sync(&acc_b, &clock).await.unwrap();
    assert_eq!(mb_b.list(&acc_b, "INBOX").unwrap().len(), 1);
    assert_eq!(ids(&mb_b, "xylophonist"), [row.id]);

    // Nothing of the encrypted mail's subject or text, nor of the draft, is readable
    // in either profile's files (database, WAL, vault).
    drop((mb_a, mb_b));
    for word in [
        "Zebrafinch",
        "zebrafinch",
        "quasarblanket",
        "xylophonist",
        "marmaladeword",
    ] {
        for d in [&a_dir, &b_dir] {
            let hits = files_contain(d, word.as_bytes());
            assert!(hits.is_empty(), "{word} found in {hits:?}");
        }
    }
}

#[tokio::test]
async fn flags_moves_expunges_uidvalidity_and_unreadable_mail() {
    let servers = Servers::start(false);
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path(), "alice");
    let clock = SystemClock;
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let acc = add(&mb, &servers, ALICE, ALICE_MAIL_PW);

    let mut direct = servers.imap(ALICE, ALICE_MAIL_PW).await;
    let good = sealpost_pgp::plain_mail(
        &sealpost_pgp::OutgoingMail {
            from: sealpost_pgp::Mailbox::address(BOB),
            to: vec![sealpost_pgp::Mailbox::address(ALICE)],
            subject: "quarterly report".into(),
            text: "numbers\r\n".into(),
            message_id: "report-1@sealpost.test".into(),
            date: 1_700_000_000,
            ..Default::default()
        },
        None,
        std::time::SystemTime::now(),
    )
    .unwrap();
    let garbage = b"this is not mail, there is no header here\r\n\r\n\x01\x02 junk\r\n".to_vec();
    direct.append("INBOX", &[], &good).await.unwrap();
    direct.append("INBOX", &[], &garbage).await.unwrap();

    let report = mb.sync(&acc, &clock).await.unwrap();
    assert_eq!((report.new, report.unreadable), (2, 1), "{report:?}");
    let inbox = mb.list(&acc, "INBOX").unwrap();
    assert_eq!(inbox.len(), 2);
    let bad = inbox
        .iter()
        .find(|m| m.state == MessageState::Unreadable)
        .unwrap();
    assert_eq!(mb.raw(bad.id).unwrap().expose(), &garbage[..]);
    assert!(mb.read(bad.id, &clock).unwrap().opened.is_none());
    let report_row = inbox
        .iter()
        .find(|m| m.subject == "quarterly report")
        .unwrap();
    assert_eq!(report_row.date, 1_700_000_000);
    // A sealed body is bound to its row: copied onto another message, it does not open.
    {
        let conn = rusqlite::Connection::open(dir.path().join("mail.sqlite3")).unwrap();
        conn.execute(
            "UPDATE body SET raw = (SELECT raw FROM body WHERE message_id = ?1)
             WHERE message_id = ?2",
            [bad.id, report_row.id],
        )
        .unwrap();
        assert!(mb.raw(report_row.id).is_err());
        conn.execute(
            "UPDATE body SET raw = ?1 WHERE message_id = ?2",
            rusqlite::params![
                alice
                    .seal_blob(&format!("mail/raw/{}", report_row.id), &good)
                    .unwrap(),
                report_row.id
            ],
        )
        .unwrap();
        assert_eq!(mb.raw(report_row.id).unwrap().expose(), &good[..]);
    }
    let folders = mb.folders(&acc).unwrap();
    let inbox_info = folders.iter().find(|f| f.name == "INBOX").unwrap();
    assert_eq!((inbox_info.total, inbox_info.unread), (2, 2));

    // Flags: set by the app, seen on the server; changed on the server, seen by sync.
    mb.set_flags(&acc, report_row.id, &[Flag::Seen, Flag::Flagged], &[])
        .await
        .unwrap();
    assert_eq!(
        mb.summary(report_row.id).unwrap().flags,
        ["\\Seen", "\\Flagged"]
    );
    direct.select("INBOX").await.unwrap();
    direct
        .remove_flags(&[report_row.uid], &[Flag::Flagged])
        .await
        .unwrap();
    let report = mb.sync(&acc, &clock).await.unwrap();
    assert_eq!(report.flags_changed, 1, "{report:?}");
    assert_eq!(mb.summary(report_row.id).unwrap().flags, ["\\Seen"]);

    // Move to Archive: it leaves INBOX and arrives there with its flags.
    mb.move_message(&acc, report_row.id, "Archive")
        .await
        .unwrap();
    mb.sync(&acc, &clock).await.unwrap();
    assert_eq!(mb.list(&acc, "INBOX").unwrap().len(), 1);
    let archived = mb.list(&acc, "Archive").unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].subject, "quarterly report");
    assert_eq!(archived[0].flags, ["\\Seen"]);
    assert_eq!(mb.search("quarterly").unwrap().len(), 1);

    // An expunge on the server removes it locally, with its search entry.
    direct.select("Archive").await.unwrap();
    direct.delete_messages(&[archived[0].uid]).await.unwrap();
    let report = mb.sync(&acc, &clock).await.unwrap();
    assert_eq!(report.removed, 1, "{report:?}");
    assert!(mb.list(&acc, "Archive").unwrap().is_empty());
    assert!(mb.search("quarterly").unwrap().is_empty());

    // A recreated folder has a new UIDVALIDITY: the folder is reset.
    direct.create_folder("Work").await.unwrap();
    direct.append("Work", &[], &good.clone()).await.unwrap();
    mb.sync(&acc, &clock).await.unwrap();
    assert_eq!(mb.list(&acc, "Work").unwrap().len(), 1);
    direct.select("INBOX").await.unwrap();
    direct.delete_folder("Work").await.unwrap();
    direct.create_folder("Work").await.unwrap();
    let other = sealpost_pgp::plain_mail(
        &sealpost_pgp::OutgoingMail {
            from: sealpost_pgp::Mailbox::address(BOB),
            to: vec![sealpost_pgp::Mailbox::address(ALICE)],
            subject: "second life".into(),
            text: "new\r\n".into(),
            message_id: "second@sealpost.test".into(),
            date: 1_700_000_100,
            ..Default::default()
        },
        None,
        std::time::SystemTime::now(),
    )
    .unwrap();
    direct.append("Work", &[], &other).await.unwrap();
    let report = mb.sync(&acc, &clock).await.unwrap();
    assert_eq!(report.resets, 1, "{report:?}");
    let work = mb.list(&acc, "Work").unwrap();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].subject, "second life");
    direct.logout().await.unwrap();
}

/// A draft of an encrypted message goes to the server's Drafts folder encrypted to the
/// user's own key: the server sees neither its subject nor its text, the user's key
/// opens it, and saving it again replaces the server's copy.
#[tokio::test]
async fn drafts_of_encrypted_mail_are_on_the_server_encrypted_to_self() {
    let servers = Servers::start(false);
    let dir = tempfile::tempdir().unwrap();
    let u = profile(&dir.path().join("alice"), "alice");
    keys::ensure_own_key(&u, "Alice", &[ALICE], &SystemClock).unwrap();
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = add(&mb, &servers, ALICE, ALICE_MAIL_PW);

    let first = compose(BOB, "Surprise party", "Bring the cake at seven.", true);
    let id = mb.save_draft(&account, None, &first, &SystemClock).unwrap();
    mb.upload_draft(&account, id, &SystemClock).await.unwrap();
    let second = compose(BOB, "Surprise party", "Bring the cake at eight.", true);
    mb.save_draft(&account, Some(id), &second, &SystemClock)
        .unwrap();
    mb.upload_draft(&account, id, &SystemClock).await.unwrap();

    // On the server, behind the app's back: one copy, encrypted, flagged \Draft.
    let mut imap = servers.imap(ALICE, ALICE_MAIL_PW).await;
    let changes = imap.sync("Drafts", None).await.unwrap();
    assert_eq!(changes.new.len(), 1, "the old copy was replaced");
    assert!(changes.new[0].flags.contains(&Flag::Draft));
    let uids: Vec<u32> = changes.new.iter().map(|m| m.uid).collect();
    let raw = imap.fetch_messages(&uids).await.unwrap().remove(0).1;
    imap.logout().await.unwrap();
    for secret in [&b"Surprise party"[..], b"Bring the cake", b"eight"] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret));
    }
    // Only Alice's own key opens it, and it is the latest version.
    let ring = keys::Keyring::load(&u, &SystemClock).unwrap();
    let now = keys::system_time(&SystemClock);
    let opened = sealpost_pgp::open_mail(&raw, &ring.context(now)).unwrap();
    assert_eq!(opened.encryption, EncryptionStatus::Encrypted);
    assert_eq!(opened.subject.as_deref(), Some("Surprise party"));
    assert!(opened.text.unwrap().contains("at eight"));
    let stranger = sealpost_pgp::KeyPair::generate("Eve", &["eve@sealpost.test"], now).unwrap();
    let others = [stranger];
    let as_eve =
        sealpost_pgp::open_mail(&raw, &sealpost_pgp::OpenContext::new(&others, &[], now)).unwrap();
    assert!(matches!(
        as_eve.encryption,
        EncryptionStatus::CannotDecrypt(_)
    ));
    assert!(as_eve.text.is_none());
}

/// Every plain mail carries the sender's Autocrypt key, and a reply to encrypted mail
/// is refused unless it is encrypted too.
#[tokio::test]
async fn plain_mail_carries_autocrypt_and_replies_to_encrypted_mail_stay_encrypted() {
    let servers = Servers::start(true);
    let dir = tempfile::tempdir().unwrap();
    let u = profile(&dir.path().join("alice"), "alice");
    let key = keys::ensure_own_key(&u, "Alice", &[ALICE], &SystemClock).unwrap();
    let mut mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = add(&mb, &servers, ALICE, ALICE_MAIL_PW);

    mb.queue(
        &account,
        &compose(ALICE, "Plain note", "Nothing secret.", false),
        &SystemClock,
    )
    .unwrap();
    mb.queue(
        &account,
        &compose(ALICE, "Secret note", "The vault code.", true),
        &SystemClock,
    )
    .unwrap();
    mb.flush_outbox(&account, &SystemClock).await.unwrap();
    let inbox = sync_until(&mut mb, &account, "INBOX", 2).await;

    let plain = inbox.iter().find(|m| !m.encrypted).expect("the plain one");
    let read = mb.read(plain.id, &SystemClock).unwrap();
    let autocrypt = read.opened.unwrap().autocrypt.expect("an Autocrypt header");
    assert_eq!(autocrypt.addr, ALICE);
    assert_eq!(autocrypt.fingerprint(), key.fingerprint());

    // Replies: plain to the plain mail is fine; plain to the encrypted one is refused.
    let message_id = |id: i64| {
        mb.read(id, &SystemClock)
            .unwrap()
            .opened
            .unwrap()
            .message_id
            .expect("a Message-ID")
    };
    let reply = |to: i64, encrypt: bool| Compose {
        in_reply_to: Some(message_id(to)),
        ..compose(ALICE, "Re: note", "> quoted\nAnswer.", encrypt)
    };
    mb.queue(&account, &reply(plain.id, false), &SystemClock)
        .unwrap();
    let secret = inbox
        .iter()
        .find(|m| m.encrypted)
        .expect("the encrypted one");
    let refused = mb.queue(&account, &reply(secret.id, false), &SystemClock);
    assert!(
        matches!(
            refused,
            Err(CoreError::Pgp(sealpost_pgp::PgpError::ReplyMustBeEncrypted))
        ),
        "{refused:?}"
    );
    mb.queue(&account, &reply(secret.id, true), &SystemClock)
        .unwrap();
    assert_eq!(mb.outbox(&account).unwrap().len(), 2);
}
