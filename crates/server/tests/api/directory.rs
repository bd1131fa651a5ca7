//! The key directory against real mail servers: the server mails the proof token through
//! Postfix (submission over TLS, authenticated), Postfix delivers it to Dovecot, and the
//! test reads it from the recipient's mailbox, as the app will over IMAP. Nothing is
//! published before the token comes back from the account that claimed the address.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use sealpost_mail::Secret;
use sealpost_pgp::KeyPair;
use sealpost_proto as proto;
use sealpost_proto::Bytes;
use sealpost_proto::directory::TOKEN_HEADER;
use sealpost_server::mailer::{Mailer, SmtpMailer, SmtpRelayConfig};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;
use sealpost_transparency::wire;

use crate::harness::{Answer, PW, PW2, Server, device};

const ALICE: &str = "alice@sealpost.test";
const RELAY_USER: &str = "directory@sealpost.test";
const RELAY_PASSWORD: &str = "relay password for the directory";

/// Dovecot and Postfix with Alice's mailbox and the directory's relay account.
struct Mail {
    ca_file: tempfile::NamedTempFile,
    dovecot: Dovecot,
    postfix: Postfix,
}

impl Mail {
    fn start() -> Self {
        let ca = TestCa::new("directory test CA").unwrap();
        let users = [
            TestUser::new(ALICE, "alice's mail password"),
            TestUser::new(RELAY_USER, RELAY_PASSWORD),
        ];
        let dovecot = Dovecot::start(&ca, &users).unwrap();
        let postfix = Postfix::start(&ca, &dovecot).unwrap();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca.cert_pem()).unwrap();
        Self {
            ca_file,
            dovecot,
            postfix,
        }
    }

    fn relay(&self, port: u16) -> SmtpRelayConfig {
        SmtpRelayConfig {
            host: "localhost".into(),
            port,
            security: "tls".into(),
            username: RELAY_USER.into(),
            password_env: "UNUSED".into(),
            from: RELAY_USER.into(),
            ca_file: Some(self.ca_file.path().to_owned()),
        }
    }

    fn mailer(&self) -> Arc<dyn Mailer> {
        let relay = self.relay(self.postfix.submissions_port());
        Arc::new(SmtpMailer::new(&relay, Secret::new(RELAY_PASSWORD)).unwrap())
    }

    /// The messages in `user`'s inbox (new and seen), waiting up to 30 s for `n`.
    fn wait_for_mail(&self, user: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = read_maildir(&self.dovecot.maildir(user));
            if mails.len() >= n || Instant::now() > deadline {
                assert!(
                    mails.len() >= n,
                    "{} of {n} mails arrived; postfix log:\n{}",
                    mails.len(),
                    self.postfix.log()
                );
                return mails;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_maildir(maildir: &Path) -> Vec<String> {
    let mut mails = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            mails.push(String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned());
        }
    }
    mails
}

/// The token header's value in a raw message.
fn token_of(mail: &str) -> String {
    let prefix = format!("{TOKEN_HEADER}: ");
    mail.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no token header in:\n{mail}"))
        .trim()
        .to_owned()
}

fn public_cert(address: &str) -> Vec<u8> {
    KeyPair::generate("Alice", &[address], SystemTime::now())
        .unwrap()
        .public_bytes()
        .unwrap()
}

fn claim(server: &Server, token: &[u8], address: &str, cert: &[u8]) -> Answer {
    let body = serde_json::json!({ "address": address, "cert": Bytes(cert.to_vec()) });
    server.call(Method::POST, "/v1/directory/claims", token, Some(&body))
}

fn confirm(server: &Server, token: &[u8], proof: &str) -> Answer {
    let body = proto::DirectoryConfirm {
        token: proof.to_owned(),
    };
    server.call(Method::POST, "/v1/directory/confirm", token, Some(&body))
}

fn lookup(server: &Server, address: &str) -> Answer {
    crate::harness::send(server.request(Method::GET, &format!("/v1/directory/keys/{address}")))
}

#[test]
fn a_key_is_published_only_when_its_mailed_token_comes_back_from_the_claimant() {
    let mail = Mail::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mailer(dir.path(), mail.mailer());
    let alice = server.register("alice", PW);
    let alice = server.login(&alice, PW, &device(1)).token;
    let bob = server.register("bob", PW2);
    let bob = server.login(&bob, PW2, &device(2)).token;
    let cert = public_cert(ALICE);

    let answer = claim(&server, &alice, "Alice@Sealpost.test", &cert);
    assert_eq!(answer.status, 202, "{}", answer.text());
    let claimed: proto::DirectoryClaimed = answer.json();
    assert!(claimed.expires_at > 0);

    // The proof arrives in Alice's mailbox, through Postfix and Dovecot.
    let mails = mail.wait_for_mail(ALICE, 1);
    let proof = token_of(&mails[0]);
    assert!(mails[0].contains(&format!("To: <{ALICE}>")) || mails[0].contains(ALICE));
    assert!(mails[0].contains("Subject: Confirm your key for alice@sealpost.test"));

    // Not published yet; Bob holding Alice's token gets nothing and spends nothing.
    lookup(&server, ALICE).expect(404, "no_key");
    confirm(&server, &bob, &proof).expect(404, "unknown_token");
    lookup(&server, ALICE).expect(404, "no_key");

    let published: proto::DirectoryEntry = {
        let answer = confirm(&server, &alice, &proof);
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    };
    assert_eq!(published.address.as_str(), ALICE);
    assert_eq!(published.cert.0, cert);
    // The answer proves the key is in the transparency log, under the log's key.
    let info: proto::LogInfo =
        crate::harness::send(server.request(Method::GET, "/v1/directory/log")).json();
    let log_key = wire::log_key(&info).unwrap();
    let verified = wire::verify_lookup(&published, &log_key, None).unwrap();
    assert!(verified.entry.publishes(ALICE, &cert));
    // Anyone can look it up, by any spelling of the address.
    for spelling in [ALICE, "ALICE@sealpost.TEST"] {
        let found: proto::DirectoryEntry = lookup(&server, spelling).json();
        assert_eq!(found, published);
    }
    // The token is spent.
    confirm(&server, &alice, &proof).expect(404, "unknown_token");
    // Only the publisher removes it.
    server
        .call(
            Method::DELETE,
            &format!("/v1/directory/keys/{ALICE}"),
            &bob,
            None,
        )
        .expect(404, "no_key");
    let removed = server.call(
        Method::DELETE,
        &format!("/v1/directory/keys/{ALICE}"),
        &alice,
        None,
    );
    assert_eq!(removed.status, 204, "{}", removed.text());
    lookup(&server, ALICE).expect(404, "no_key");
    // The removal is in the log: replayed from the head Alice's client kept, the new
    // entries end with the removal of her address, and make the new signed head.
    let page: proto::LogEntries = crate::harness::send(server.request(
        Method::GET,
        &format!(
            "/v1/directory/log/entries?start={}",
            verified.state.head().size()
        ),
    ))
    .json();
    let mut replay = wire::resume_replay(&page, Some(&verified.state)).unwrap();
    let entries = wire::push_entries(&mut replay, &page).unwrap();
    replay
        .check(&wire::verified_head(&page.head, &log_key).unwrap())
        .unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.kind, sealpost_transparency::EntryKind::Unpublish);
    assert_eq!(
        last.address_hash,
        sealpost_transparency::address_hash(ALICE)
    );
    // Alice's security activity shows both, with the address (sealed in the store).
    let activity: proto::SecurityEvents = server.get("/v1/account/activity", &alice).json();
    let kinds: Vec<_> = activity.events.iter().map(|e| e.kind).collect();
    assert!(
        kinds.ends_with(&[
            proto::SecurityEventKind::KeyPublished,
            proto::SecurityEventKind::KeyUnpublished
        ]),
        "{kinds:?}"
    );
    assert_eq!(
        activity.events.last().unwrap().detail.as_deref(),
        Some(ALICE)
    );
}

#[test]
fn bad_claims_are_refused_and_nobody_floods_a_mailbox() {
    let mail = Mail::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_mailer(dir.path(), mail.mailer());
    let alice = server.register("alice", PW);
    let alice = server.login(&alice, PW, &device(1)).token;
    let cert = public_cert(ALICE);

    // A secret key, garbage, nothing, too much, bad addresses, no session.
    let secret = KeyPair::generate("Alice", &[ALICE], SystemTime::now())
        .unwrap()
        .to_secret_bytes()
        .unwrap();
    claim(&server, &alice, ALICE, secret.expose()).expect(400, "bad_cert");
    claim(
        &server,
        &alice,
        ALICE,
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----",
    )
    .expect(400, "bad_cert");
    claim(&server, &alice, ALICE, &[]).expect(400, "bad_cert");
    claim(&server, &alice, ALICE, &vec![0x99; 70 * 1024]).expect(400, "bad_cert");
    claim(&server, &alice, "alice@localhost", &cert).expect(422, "bad_json");
    claim(&server, &alice, "alice@sealpost.test\r\nBcc: x@y.z", &cert).expect(422, "bad_json");
    claim(&server, b"not a session", ALICE, &cert).expect(401, "bad_session");
    lookup(&server, "not-an-address").expect(400, "bad_address");

    // Three proofs on their way to one address at most.
    for _ in 0..3 {
        assert_eq!(claim(&server, &alice, ALICE, &cert).status, 202);
    }
    claim(&server, &alice, ALICE, &cert).expect(429, "too_many_claims");
    // Exactly the three were mailed, none for the refused claims.
    assert_eq!(mail.wait_for_mail(ALICE, 3).len(), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read_maildir(&mail.dovecot.maildir(ALICE)).len(), 3);
}

#[test]
fn without_a_working_relay_claims_fail_cleanly() {
    let mail = Mail::start();
    let dir = tempfile::tempdir().unwrap();
    // No relay at all.
    std::fs::create_dir_all(dir.path().join("plain")).unwrap();
    let plain = Server::start(&dir.path().join("plain"));
    let account = plain.register("alice", PW);
    let token = plain.login(&account, PW, &device(1)).token;
    claim(&plain, &token, ALICE, &public_cert(ALICE)).expect(503, "directory_unavailable");

    // A relay that refuses the login: the claim is withdrawn, so it does not count.
    let wrong = SmtpMailer::new(
        &mail.relay(mail.postfix.submissions_port()),
        Secret::new("not the relay password"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("wrong")).unwrap();
    let server = Server::start_with_mailer(&dir.path().join("wrong"), Arc::new(wrong));
    let account = server.register("alice", PW);
    let token = server.login(&account, PW, &device(1)).token;
    for _ in 0..6 {
        claim(&server, &token, ALICE, &public_cert(ALICE)).expect(502, "mail_not_sent");
    }
    assert!(read_maildir(&mail.dovecot.maildir(ALICE)).is_empty());
}
