//! Mail accounts that sign in with OAuth2, against the real parts: an OpenID provider
//! (oidc-provider under Node) whose login the test drives over HTTP as the browser,
//! Dovecot checking the tokens by introspection, Postfix accepting them through
//! Dovecot's SASL. Through the mail store: sign in, sync and send with the token, a
//! refresh before expiry stored in the vault (and used by another mailbox on the same
//! store), a revoked grant refused in words, no token in the clear on disk. Through the
//! API: the app's sign-in, with the account's worker sending with the token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use sealpost_core::api::{
    ComposeRequest, MailEvent, OAuthSignIn, OpenUrl, OutboxStepEvent, ServerSettings,
};
use sealpost_core::clock::FixedClock;
use sealpost_core::mailbox::oauth::{
    self as mail_oauth, AccountAuth, OAuthApp, OAuthChoice, OAuthGrant,
};
use sealpost_core::mailbox::{Compose, MailAccount, Mailbox, NewAccount, oauth_secret};
use sealpost_core::vault::{self, Unlocked};
use sealpost_core::{Clock as _, CoreError, SystemClock};
use sealpost_core::{Core, CoreConfig, CoreEvent, EventSink};
use sealpost_crypto::Password;
use sealpost_mail::{Credentials, Server};
use sealpost_testkit::dovecot::{Dovecot, DovecotOptions, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::oidc::{self, OidcProvider};
use sealpost_testkit::postfix::Postfix;

const ALICE: &str = "alice@sealpost.test";
const ALICE_MAIL_PW: &str = "alice-mail-password-not-used";
const PROFILE_PW: &str = "tundra mosaic gravel whimsy plank";
/// How long the provider's access tokens live.
const TTL: u64 = 300;

struct World {
    ca: TestCa,
    oidc: OidcProvider,
    dovecot: Dovecot,
    postfix: Postfix,
}

fn world() -> World {
    let ca = TestCa::new("oauth test CA").unwrap();
    let oidc = OidcProvider::start(&[ALICE], Duration::from_secs(TTL)).unwrap();
    let dovecot = Dovecot::start_with(
        &ca,
        DovecotOptions {
            users: vec![TestUser::new(ALICE, ALICE_MAIL_PW)],
            oauth2_introspection: Some(oidc.introspection_url()),
        },
    )
    .unwrap();
    let postfix = Postfix::start(&ca, &dovecot).unwrap();
    World {
        ca,
        oidc,
        dovecot,
        postfix,
    }
}

impl World {
    fn imap(&self) -> Server {
        Server::tls("localhost", self.dovecot.imaps_port())
    }

    fn smtp(&self) -> Server {
        Server::tls("localhost", self.postfix.submissions_port())
    }

    fn choice(&self) -> OAuthChoice {
        OAuthChoice::Issuer(self.oidc.issuer())
    }

    fn app(&self) -> OAuthApp {
        OAuthApp::for_choice(&self.choice(), Some(self.oidc.client_id().to_owned())).unwrap()
    }
}

fn now() -> i64 {
    SystemClock.now_unix()
}

/// The system browser, played over HTTP on another thread: the provider's login and
/// consent (finished for the `login_hint`), then the app's loopback redirect. What it
/// saw arrives on the channel.
fn browser() -> (OpenUrl, mpsc::Receiver<(u16, String)>) {
    let (tx, rx) = mpsc::channel();
    let open: OpenUrl = Box::new(move |url: &str| {
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        let url = url.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(oidc::browse(&url).unwrap());
        });
        Ok(())
    });
    (open, rx)
}

fn landed_on_the_app(rx: &mpsc::Receiver<(u16, String)>) {
    let (status, url) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(status, 200, "{url}");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
}

fn profile(dir: &Path) -> Arc<Unlocked> {
    let (u, _code) = vault::create(
        dir,
        "alice",
        &Password::new(PROFILE_PW).unwrap(),
        &SystemClock,
    )
    .unwrap();
    Arc::new(u)
}

/// Every file under `dir` (database, WAL, anything) that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

/// The tokens in the vault: (access, refresh, expires_at).
fn stored_tokens(u: &Unlocked, account: &MailAccount) -> (String, String, i64) {
    let plain = u.secret(&oauth_secret(&account.id)).unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(plain.expose()).unwrap();
    (
        v["tokens"]["access_token"].as_str().unwrap().to_owned(),
        v["tokens"]["refresh_token"].as_str().unwrap().to_owned(),
        v["tokens"]["expires_at"].as_i64().unwrap(),
    )
}

fn token_of(c: &Credentials) -> String {
    match c {
        Credentials::OAuthBearer { token, .. } | Credentials::XOAuth2 { token, .. } => {
            token.expose().to_owned()
        }
        other => panic!("not an OAuth2 login: {other:?}"),
    }
}

async fn sync_until(mb: &mut Mailbox, account: &MailAccount, n: usize) {
    for _ in 0..60 {
        mb.sync(account, &SystemClock).await.unwrap();
        if mb.list(account, "INBOX").unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("INBOX never reached {n} messages");
}

fn compose(subject: &str) -> Compose {
    Compose {
        to: vec![ALICE.into()],
        subject: subject.into(),
        text: "sent with a token\r\n".into(),
        ..Compose::default()
    }
}

#[tokio::test]
async fn an_oauth_account_syncs_sends_refreshes_and_keeps_its_tokens_sealed() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let alice = profile(dir.path());
    let clock = SystemClock;

    // Sign in; the servers are checked with the token before anything is stored.
    let (open, seen) = browser();
    let grant: OAuthGrant = mail_oauth::sign_in(
        &w.choice(),
        w.app(),
        ALICE,
        open,
        Duration::from_secs(30),
        &clock,
    )
    .await
    .unwrap();
    landed_on_the_app(&seen);
    let new: NewAccount = mail_oauth::checked_account(
        &grant,
        ALICE,
        None,
        (Some(w.imap()), Some(w.smtp())),
        w.ca.cert_pem(),
        &sealpost_mail::autoconfig::Discovery::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", w.dovecot.log()));
    let mut mb = Mailbox::open(&alice, Arc::new(clock)).unwrap();
    let account = mb.add_oauth_account(&new, &grant, &clock).unwrap();
    assert_eq!(account.login, ALICE);
    match mb.auth(&account).unwrap() {
        AccountAuth::OAuth2(p) => {
            assert_eq!(p.issuer.as_deref(), Some(w.oidc.issuer().as_str()));
            assert_eq!(p.client_id, w.oidc.client_id());
        }
        other => panic!("{other:?}"),
    }

    // Send to herself over SMTP and sync the inbox over IMAP, both with the token.
    mb.queue(&account, &compose("first token mail"), &clock)
        .unwrap();
    let flushed = mb
        .flush_outbox(&account, &clock)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", w.postfix.log()));
    assert_eq!(flushed.sent, 1);
    sync_until(&mut mb, &account, 1).await;
    assert_eq!(
        mb.list(&account, "INBOX").unwrap()[0].subject,
        "first token mail"
    );

    // Not due: the same access token, nothing refreshed.
    let (access, refresh, expires_at) = stored_tokens(&alice, &account);
    assert!(expires_at > now() && expires_at <= now() + i64::try_from(TTL).unwrap() + 5);
    assert_eq!(token_of(&mb.credentials(&account).await.unwrap()), access);
    assert_eq!(stored_tokens(&alice, &account).0, access);

    // The tokens travel to the user's other devices in the settings blob, like a mail
    // password (sealed there under the settings key).
    let doc = sealpost_core::sync::settings::SettingsDoc::from_vault(&alice).unwrap();
    assert!(doc.entries.contains_key(&oauth_secret(&account.id)));

    // The tokens are nowhere on disk in the clear.
    for secret in [&access, &refresh] {
        assert!(
            files_containing(dir.path(), secret.as_bytes()).is_empty(),
            "a token in the clear"
        );
    }

    // Four minutes later (the mailbox's clock) the access token is due: refreshed,
    // stored, and the new one used.
    let later = FixedClock(now() + 240);
    let refreshed = {
        let mut mb_later = Mailbox::open(&alice, Arc::new(later)).unwrap();
        let creds = mb_later.credentials(&account).await.unwrap();
        token_of(&creds)
    };
    assert_ne!(refreshed, access);
    let (stored_access, stored_refresh, stored_expiry) = stored_tokens(&alice, &account);
    assert_eq!(stored_access, refreshed);
    assert_eq!(stored_expiry, later.0 + i64::try_from(TTL).unwrap());
    // The provider rotates refresh tokens of public clients: the new one is kept.
    assert_ne!(stored_refresh, refresh);
    assert!(files_containing(dir.path(), refreshed.as_bytes()).is_empty());

    // Another mailbox on the same store (here: the profile unlocked again, as another
    // process would) uses the stored tokens without a refresh, and the servers take
    // them.
    {
        let again = Arc::new(
            vault::open(dir.path())
                .unwrap()
                .unlock(&Password::new(PROFILE_PW).unwrap())
                .unwrap(),
        );
        let mut mb2 = Mailbox::open(&again, Arc::new(clock)).unwrap();
        let account2 = mb2.account(ALICE).unwrap();
        assert_eq!(
            token_of(&mb2.credentials(&account2).await.unwrap()),
            refreshed
        );
        mb2.queue(&account2, &compose("second token mail"), &clock)
            .unwrap();
        assert_eq!(mb2.flush_outbox(&account2, &clock).await.unwrap().sent, 1);
        sync_until(&mut mb2, &account2, 2).await;
        assert_eq!(stored_tokens(&again, &account2).0, refreshed);
    }

    // The user withdraws the app's access: the refresh token is revoked. The next
    // refresh is refused in words, and the stored tokens stay as they were.
    w.oidc.revoke(&stored_refresh).unwrap();
    let before = alice.secret(&oauth_secret(&account.id)).unwrap().unwrap();
    let much_later = FixedClock(now() + 3 * 3600);
    let mut mb_late = Mailbox::open(&alice, Arc::new(much_later)).unwrap();
    let e = mb_late.credentials(&account).await.unwrap_err();
    assert!(matches!(e, CoreError::OAuthSignInRequired(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("sign in to the account again"), "{text}");
    assert!(text.contains(ALICE), "{text}");
    assert!(!text.contains(&stored_refresh), "{text}");
    let e = mb_late.sync(&account, &much_later).await.unwrap_err();
    assert!(
        e.to_string().contains("sign in to the account again"),
        "{e}"
    );
    let after = alice.secret(&oauth_secret(&account.id)).unwrap().unwrap();
    assert_eq!(before.expose(), after.expose());

    // Removing the account removes its tokens.
    drop(mb_late);
    mb.remove_account(&account.id).unwrap();
    assert!(alice.secret(&oauth_secret(&account.id)).unwrap().is_none());
}

#[test]
fn the_api_signs_in_with_oauth_and_the_worker_sends_with_the_token() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    drop(profile(dir.path()));
    let events = Arc::new(std::sync::Mutex::new(Vec::<CoreEvent>::new()));
    let sink: EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events.lock().unwrap().push(e))
    };
    let core = Core::start(
        CoreConfig {
            profile_dir: dir.path().to_path_buf(),
            // No sync server: the profile was made on this device only.
            server_url: "http://127.0.0.1:9".into(),
            device_name: "test device".into(),
            mail_extra_roots_pem: w.ca.cert_pem().to_owned(),
            background: true,
            autoconfig_url: None,
        },
        sink,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        core.profile()
            .unlock(Password::new(PROFILE_PW).unwrap())
            .await
            .unwrap();
        let request = OAuthSignIn {
            imap: Some(ServerSettings::of(&w.imap())),
            smtp: Some(ServerSettings::of(&w.smtp())),
            timeout: Duration::from_secs(30),
            ..OAuthSignIn::new(w.choice(), ALICE)
        };

        // A generic provider without a client id: refused in words, nothing stored,
        // the browser never opened.
        let (open, seen) = browser();
        let e = core
            .mail()
            .add_oauth_account(request.clone(), open)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("client id"), "{e}");
        assert!(seen.try_recv().is_err());
        assert!(core.mail().accounts().await.unwrap().is_empty());

        let (open, seen) = browser();
        let account = core
            .mail()
            .add_oauth_account(
                OAuthSignIn {
                    client_id: Some(w.oidc.client_id().to_owned()),
                    ..request
                },
                open,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", w.dovecot.log(), w.oidc.log()));
        landed_on_the_app(&seen);
        assert_eq!(account.address, ALICE);
        assert_eq!(core.mail().accounts().await.unwrap(), vec![account.clone()]);
        assert!(account.signed_in_at.is_some(), "{account:?}");
        // The own key was made for the address.
        assert!(core.keys().mine().await.unwrap().is_some());

        // The account's worker sends through the outbox with the token, then syncs.
        let message_id = core
            .compose()
            .send(ComposeRequest {
                account_id: account.id.clone(),
                to: vec![ALICE.into()],
                subject: "through the API".into(),
                body: "sent with a token\r\n".into(),
                ..ComposeRequest::default()
            })
            .await
            .unwrap();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let sent = events.lock().unwrap().iter().any(|e| {
                matches!(e, CoreEvent::Mail(MailEvent::Outbox { message_id: m, step: OutboxStepEvent::Sent, .. }) if *m == message_id)
            });
            let page = core
                .mail()
                .messages(account.id.clone(), "INBOX".into(), 0, 10)
                .await
                .unwrap();
            if sent && page.total >= 1 {
                break;
            }
            assert!(
                Instant::now() < end,
                "not sent and received: {:?}\n{}",
                events.lock().unwrap(),
                w.postfix.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            let _ = core.mail().sync_now().await;
        }
        core.profile().lock().await.unwrap();
    });
    // No token in the clear in the profile.
    let u = Arc::new(
        vault::open(dir.path())
            .unwrap()
            .unlock(&Password::new(PROFILE_PW).unwrap())
            .unwrap(),
    );
    let mb = Mailbox::open(&u, Arc::new(SystemClock)).unwrap();
    let account = mb.account(ALICE).unwrap();
    let (access, refresh, _) = stored_tokens(&u, &account);
    drop(mb);
    drop(u);
    for secret in [access, refresh] {
        assert!(files_containing(dir.path(), secret.as_bytes()).is_empty());
    }
}
