//! What the `mail_*` tests share: real Dovecot (and Postfix) on loopback with a test CA,
//! profiles, accounts, a direct IMAP session to act behind the app's back, and
//! messages made in bulk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sealpost_core::SystemClock;
use sealpost_core::mailbox::{MailAccount, Mailbox, NewAccount};
use sealpost_core::vault::{self, Unlocked};
use sealpost_crypto::Password;
use sealpost_mail::{Credentials, ImapConfig, ImapSession, Secret, Server, TlsPolicy};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;

pub const ALICE: &str = "alice@sealpost.test";
pub const BOB: &str = "bob@sealpost.test";
pub const ALICE_MAIL_PW: &str = "alice-mail-password";
pub const BOB_MAIL_PW: &str = "bob-mail-password";
pub const PROFILE_PW: &str = "tundra mosaic gravel whimsy plank";

pub struct Servers {
    pub ca: TestCa,
    pub dovecot: Dovecot,
    pub postfix: Option<Postfix>,
}

impl Servers {
    pub fn start(smtp: bool) -> Self {
        let ca = TestCa::new("mail test CA").unwrap();
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

    /// An account on `address`, its IMAP server reached at `imap_port` (Dovecot's, or a
    /// proxy's in front of it).
    pub fn account_via(&self, address: &str, imap_port: u16) -> NewAccount {
        NewAccount {
            address: address.into(),
            login: address.into(),
            imap: Server::tls("localhost", imap_port),
            smtp: Server::tls(
                "localhost",
                self.postfix.as_ref().map_or(9, Postfix::submissions_port),
            ),
            extra_roots_pem: self.ca.cert_pem().to_owned(),
        }
    }

    pub fn account(&self, address: &str) -> NewAccount {
        self.account_via(address, self.dovecot.imaps_port())
    }

    /// A direct IMAP session, to change things on the server behind the app's back.
    pub async fn imap(&self, user: &str, password: &str) -> ImapSession {
        let mut config = ImapConfig::new(Server::tls("localhost", self.dovecot.imaps_port()));
        config.tls = TlsPolicy::new().with_extra_root(self.ca.cert_der());
        config.timeout = std::time::Duration::from_secs(120);
        ImapSession::connect(&config, &Credentials::password(user, Secret::new(password)))
            .await
            .unwrap()
    }

    /// Dovecot's implicit-TLS address.
    pub fn imaps_addr(&self) -> std::net::SocketAddr {
        (std::net::Ipv4Addr::LOCALHOST, self.dovecot.imaps_port()).into()
    }
}

pub fn profile(dir: &Path, name: &str) -> Arc<Unlocked> {
    let (u, _code) =
        vault::create(dir, name, &Password::new(PROFILE_PW).unwrap(), &SystemClock).unwrap();
    Arc::new(u)
}

pub fn add(mb: &Mailbox, new: &NewAccount, pw: &str) -> MailAccount {
    mb.add_account(new, &Secret::new(pw), &SystemClock).unwrap()
}

/// A plain message of about `text_len` bytes of text, with a Message-ID and subject
/// made from `tag`.
pub fn message(tag: &str, text_len: usize) -> Vec<u8> {
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    let text: String = words.repeat(text_len / words.len() + 1);
    sealpost_pgp::plain_mail(
        &sealpost_pgp::OutgoingMail {
            from: sealpost_pgp::Mailbox::new("Bulk Sender", BOB),
            to: vec![sealpost_pgp::Mailbox::address(ALICE)],
            subject: format!("bulk {tag}"),
            text: format!("{tag}\r\n{}\r\n", text.get(..text_len).unwrap_or(&text)),
            message_id: format!("{tag}@bulk.sealpost.test"),
            date: 1_700_000_000,
            ..Default::default()
        },
        None,
        std::time::SystemTime::now(),
    )
    .unwrap()
}

/// The server's view of a folder: UID → flags, through a fresh session.
pub async fn server_folder(
    servers: &Servers,
    user: &str,
    pw: &str,
    folder: &str,
) -> BTreeMap<u32, Vec<String>> {
    let mut imap = servers.imap(user, pw).await;
    let changes = imap.sync(folder, None).await.unwrap();
    imap.logout().await.unwrap();
    changes
        .new
        .into_iter()
        .map(|m| {
            (
                m.uid,
                m.flags
                    .iter()
                    .map(sealpost_core::mailbox::flag_name)
                    .collect(),
            )
        })
        .collect()
}

/// The store's view of a folder: UID → flags (sorted as the server's are).
pub fn store_folder(
    mb: &Mailbox,
    account: &MailAccount,
    folder: &str,
) -> BTreeMap<u32, Vec<String>> {
    let list = mb.list(account, folder).unwrap();
    let map: BTreeMap<u32, Vec<String>> = list.iter().map(|m| (m.uid, m.flags.clone())).collect();
    assert_eq!(map.len(), list.len(), "a UID is stored twice");
    map
}
