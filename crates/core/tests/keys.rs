//! OpenPGP keys in the profile, end to end: the own key reaches a second device through
//! the sync server; contacts' keys are checked, remembered and a changed one is flagged;
//! the key directory proves an address with a mail that really travels through Postfix
//! and Dovecot and is fetched back over IMAP, as the app does; and a mail signed by a
//! key found there shows as verified.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sealpost_core::keys::{self, KeySource, Keyring, Observation};
use sealpost_core::sync::{self, Remote};
use sealpost_core::vault::Unlocked;
use sealpost_core::{Clock, CoreError, SystemClock};
use sealpost_crypto::Password;
use sealpost_mail::imap::{ImapConfig, ImapSession};
use sealpost_mail::{Credentials, Secret, Server as MailServer, TlsPolicy};
use sealpost_pgp::{KeyPair, OutgoingMail, SignatureStatus};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::mailer::{SmtpMailer, SmtpRelayConfig};
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;

const PW_A: &str = "tundra mosaic gravel whimsy plank";
const PW_B: &str = "orbit velvet cashew lantern quarry";
const ALICE: &str = "alice@sealpost.test";
const BOB: &str = "bob@sealpost.test";

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

fn config() -> ServiceConfig {
    ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    }
}

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

// The sync layer is async; these run one step of it to the end.
static RT: std::sync::LazyLock<tokio::runtime::Runtime> =
    std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn create(dir: &Path, url: &str, user: &str, p: &str, device: &str) -> Arc<Unlocked> {
    let (u, _code) = RT
        .block_on(sync::create_account(
            dir.to_path_buf(),
            url,
            user,
            pw(p),
            device,
            clock(),
        ))
        .unwrap();
    Arc::new(u)
}

fn remote(u: &Arc<Unlocked>, p: &str) -> Remote {
    Remote::new(Arc::clone(u), pw(p), clock()).unwrap()
}

#[test]
fn the_own_key_reaches_a_second_device_and_changed_contact_keys_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let server = EmbeddedServer::start(&dir.path().join("server"), local(), config()).unwrap();
    let sys = SystemClock;
    let a = create(
        &dir.path().join("a"),
        &server.url(),
        "alice",
        PW_A,
        "laptop",
    );
    let key = keys::ensure_own_key(&a, "Alice", &[ALICE], &sys).unwrap();
    // Asking again gives the same key, not a new one.
    assert_eq!(
        keys::ensure_own_key(&a, "Alice", &[ALICE], &sys)
            .unwrap()
            .fingerprint(),
        key.fingerprint()
    );
    RT.block_on(remote(&a, PW_A).sync_settings()).unwrap();

    // The second device signs in and has the same secret key: it decrypts mail to Alice.
    let b = Arc::new(
        RT.block_on(sync::sign_in(
            dir.path().join("b"),
            &server.url(),
            "alice",
            pw(PW_A),
            "phone",
            clock(),
        ))
        .unwrap()
        .unlocked,
    );
    RT.block_on(remote(&b, PW_A).sync_settings()).unwrap();
    let on_b = keys::own_key(&b, &sys).unwrap().expect("the key synced");
    assert_eq!(on_b.fingerprint(), key.fingerprint());
    let now = SystemTime::now();
    let ciphertext = sealpost_pgp::encrypt(b"hello", &key, &[key.cert()], now).unwrap();
    let ring = Keyring::load(&b, &sys).unwrap();
    assert_eq!(
        sealpost_pgp::decrypt(&ciphertext, &ring.context(now))
            .unwrap()
            .plaintext,
        b"hello"
    );
    // The secret key is nowhere in the profile's files in the clear.
    let secret = key.to_secret_bytes().unwrap();
    assert_not_in_dir(&dir.path().join("a"), secret.expose());
    assert_not_in_dir(&dir.path().join("b"), secret.expose());

    // Contacts: new, seen again, changed (kept aside), accepted, confirmed.
    let bob1 = KeyPair::generate("Bob", &[BOB], now).unwrap();
    let bob2 = KeyPair::generate("Bob", &[BOB], now).unwrap();
    let cert1 = bob1.public_bytes().unwrap();
    let cert2 = bob2.public_bytes().unwrap();
    assert_eq!(
        keys::observe_key(&a, BOB, &cert1, KeySource::Autocrypt, &sys).unwrap(),
        Observation::New
    );
    assert_eq!(
        keys::observe_key(&a, "BOB@sealpost.test", &cert1, KeySource::Wkd, &sys).unwrap(),
        Observation::Known
    );
    assert!(
        !keys::contact(&a, BOB).unwrap().unwrap().confirmed,
        "WKD confirms nothing"
    );
    let changed = keys::observe_key(&a, BOB, &cert2, KeySource::Autocrypt, &sys).unwrap();
    assert_eq!(
        changed,
        Observation::Changed {
            current: bob1.fingerprint().to_hex(),
            offered: bob2.fingerprint().to_hex()
        }
    );
    let record = keys::contact(&a, BOB).unwrap().unwrap();
    assert_eq!(record.current.fingerprint, bob1.fingerprint().to_hex());
    assert_eq!(record.current.source, KeySource::Autocrypt);
    assert_eq!(
        record.pending.as_ref().unwrap().fingerprint,
        bob2.fingerprint().to_hex()
    );
    assert!(!record.confirmed);
    // Mail is still encrypted to the key in use, never the newcomer.
    let ring = Keyring::load(&a, &sys).unwrap();
    let fprs: Vec<_> = ring.certs.iter().map(|c| c.fingerprint()).collect();
    assert_eq!(fprs, vec![bob1.fingerprint()]);
    // A key that does not carry the address is refused and nothing changes.
    let eve = KeyPair::generate("Eve", &["eve@sealpost.test"], now).unwrap();
    assert!(matches!(
        keys::observe_key(
            &a,
            BOB,
            &eve.public_bytes().unwrap(),
            KeySource::Manual,
            &sys
        ),
        Err(CoreError::Pgp(_))
    ));
    assert_eq!(keys::contact(&a, BOB).unwrap().unwrap(), record);
    // The user accepts the new key, then confirms it by fingerprint.
    let accepted = keys::accept_changed_key(&a, BOB, &sys).unwrap();
    assert_eq!(accepted.current.fingerprint, bob2.fingerprint().to_hex());
    assert!(accepted.pending.is_none());
    assert!(matches!(
        keys::confirm_contact_key(&a, BOB, &bob1.fingerprint().to_hex(), &sys),
        Err(CoreError::FingerprintMismatch)
    ));
    let spaced: String = bob2
        .fingerprint()
        .to_hex()
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        keys::confirm_contact_key(&a, BOB, &spaced, &sys)
            .unwrap()
            .confirmed
    );
    // Contacts travel with the settings too.
    RT.block_on(remote(&a, PW_A).sync_settings()).unwrap();
    RT.block_on(remote(&b, PW_A).sync_settings()).unwrap();
    assert_eq!(
        keys::contact(&b, BOB).unwrap(),
        keys::contact(&a, BOB).unwrap()
    );

    // A key first seen through Autocrypt, then found in the (proven) key directory: the
    // directory's proof confirms it.
    let carol = KeyPair::generate("Carol", &["carol@sealpost.test"], now).unwrap();
    let carol_cert = carol.public_bytes().unwrap();
    keys::observe_key(
        &a,
        "carol@sealpost.test",
        &carol_cert,
        KeySource::Autocrypt,
        &sys,
    )
    .unwrap();
    assert!(
        !keys::contact(&a, "carol@sealpost.test")
            .unwrap()
            .unwrap()
            .confirmed
    );
    assert_eq!(
        keys::observe_key(
            &a,
            "carol@sealpost.test",
            &carol_cert,
            KeySource::Directory,
            &sys
        )
        .unwrap(),
        Observation::Known
    );
    assert!(
        keys::contact(&a, "carol@sealpost.test")
            .unwrap()
            .unwrap()
            .confirmed
    );
}

fn assert_not_in_dir(dir: &Path, needle: &[u8]) {
    let window = &needle[..32.min(needle.len())];
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(window.len()).any(|w| w == window),
            "{} holds secret key bytes",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Fetches Alice's inbox over IMAP (TLS, the test CA) and returns every message.
fn inbox(dovecot: &Dovecot, ca: &TestCa, user: &str, password: &str) -> Vec<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ImapConfig::new(MailServer::tls("localhost", dovecot.imaps_port()));
        config.tls = TlsPolicy::new().with_extra_root(ca.cert_der());
        let creds = Credentials::Password {
            user: user.into(),
            password: Secret::new(password),
        };
        let mut session = ImapSession::connect(&config, &creds).await.unwrap();
        let changes = session.sync("INBOX", None).await.unwrap();
        let uids: Vec<u32> = changes.new.iter().map(|m| m.uid).collect();
        let mails = session.fetch_messages(&uids).await.unwrap();
        session.logout().await.unwrap();
        mails.into_iter().map(|(_, raw)| raw).collect()
    })
}

#[test]
fn a_key_proven_through_real_mail_is_found_by_others_and_its_signatures_verify() {
    let ca = TestCa::new("keys test CA").unwrap();
    let relay_password = "directory relay password";
    let users = [
        TestUser::new(ALICE, "alice mail password"),
        TestUser::new("directory@sealpost.test", relay_password),
    ];
    let dovecot = Dovecot::start(&ca, &users).unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let relay = SmtpRelayConfig {
        host: "localhost".into(),
        port: postfix.submissions_port(),
        security: "tls".into(),
        username: "directory@sealpost.test".into(),
        password_env: "UNUSED".into(),
        from: "directory@sealpost.test".into(),
        ca_file: Some(ca_file),
    };
    let mailer = Arc::new(SmtpMailer::new(&relay, Secret::new(relay_password)).unwrap());
    let server = EmbeddedServer::start_with_mailer(
        &dir.path().join("server"),
        local(),
        config(),
        Some(mailer),
    )
    .unwrap();
    let sys = SystemClock;

    // Alice publishes her key; the proof arrives in her mailbox and her app spends it.
    let alice = create(
        &dir.path().join("alice"),
        &server.url(),
        "alice",
        PW_A,
        "laptop",
    );
    let alice_key = keys::ensure_own_key(&alice, "Alice", &[ALICE], &sys).unwrap();
    assert!(matches!(
        RT.block_on(remote(&alice, PW_A).publish_key(BOB)),
        Err(CoreError::BadAddress(_))
    ));
    RT.block_on(remote(&alice, PW_A).publish_key(ALICE))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let token = loop {
        let found = inbox(&dovecot, &ca, ALICE, "alice mail password")
            .iter()
            .find_map(|raw| sync::directory_token(raw));
        if let Some(t) = found {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no proof mail; postfix:\n{}",
            postfix.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let entry = RT
        .block_on(remote(&alice, PW_A).confirm_published_key(&token))
        .unwrap();
    assert_eq!(entry.address.as_str(), ALICE);

    // Bob, another account on the server, finds it; it counts as confirmed.
    let bob = create(&dir.path().join("bob"), &server.url(), "bob", PW_B, "desk");
    let bob_key = keys::ensure_own_key(&bob, "Bob", &[BOB], &sys).unwrap();
    assert_eq!(
        RT.block_on(sync::lookup_directory(&bob, ALICE, &clock()))
            .unwrap(),
        Some(Observation::New)
    );
    assert!(keys::contact(&bob, ALICE).unwrap().unwrap().confirmed);
    assert_eq!(
        RT.block_on(sync::lookup_directory(
            &bob,
            "nobody@sealpost.test",
            &clock()
        ))
        .unwrap(),
        None
    );

    // Alice writes to Bob (his key imported by hand): he sees it verified.
    keys::observe_key(
        &alice,
        BOB,
        &bob_key.public_bytes().unwrap(),
        KeySource::Manual,
        &sys,
    )
    .unwrap();
    let now = SystemTime::now();
    let mail = OutgoingMail {
        from: sealpost_pgp::Mailbox::new("Alice", ALICE),
        to: vec![sealpost_pgp::Mailbox::new("Bob", BOB)],
        cc: vec![],
        subject: "Lunch?".into(),
        text: "Thursday at noon.".into(),
        html: None,
        attachments: vec![],
        date: 1_790_000_000,
        message_id: "lunch-1@sealpost.test".into(),
        in_reply_to: None,
        autocrypt: Some(sealpost_pgp::PreferEncrypt::Mutual),
    };
    let raw = sealpost_pgp::encrypt_mail(&mail, &alice_key, &[bob_key.cert()], now).unwrap();
    let ring = Keyring::load(&bob, &sys).unwrap();
    let opened = sealpost_pgp::open_mail(&raw, &ring.context(now)).unwrap();
    assert_eq!(opened.subject.as_deref(), Some("Lunch?"));
    assert!(
        matches!(opened.signature, SignatureStatus::Verified { .. }),
        "{:?}",
        opened.signature
    );
}

/// The own key renews itself before it lapses: near its expiry (or after it) the next
/// renewal check extends it and stores the result; far from it nothing changes.
#[test]
fn the_own_key_renews_itself_when_due() {
    use sealpost_core::clock::FixedClock;
    const DAY: i64 = 24 * 3600;
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_790_000_000;
    let (u, _code) =
        sealpost_core::vault::create(dir.path(), "alice", &pw(PW_A), &FixedClock(t0)).unwrap();
    let key = keys::ensure_own_key(&u, "Alice", &[ALICE], &FixedClock(t0)).unwrap();
    let expiry = |k: &KeyPair, at: i64| {
        k.expiration(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at as u64))
            .unwrap()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let first = expiry(&key, t0);
    assert!(first > t0 + 365 * DAY, "made for years, not days");
    // A month later: not due, nothing stored again.
    assert!(!keys::renew_own_key_if_due(&u, &FixedClock(t0 + 30 * DAY)).unwrap());
    // A week before it lapses: renewed, stored, same key.
    let late = first - 7 * DAY;
    assert!(keys::renew_own_key_if_due(&u, &FixedClock(late)).unwrap());
    let renewed = keys::own_key(&u, &FixedClock(late)).unwrap().unwrap();
    assert_eq!(renewed.fingerprint(), key.fingerprint());
    assert!(expiry(&renewed, late) > late + 365 * DAY);
    // And it still decrypts what was encrypted to it before.
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t0 as u64 + 60);
    let ct = sealpost_pgp::encrypt(b"old mail", &key, &[key.cert()], then).unwrap();
    let ring = Keyring::load(&u, &FixedClock(late)).unwrap();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(late as u64);
    assert_eq!(
        sealpost_pgp::decrypt(&ct, &ring.context(now))
            .unwrap()
            .plaintext,
        b"old mail"
    );
}
