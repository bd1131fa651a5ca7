//! A complete local mail world on loopback, for trying Sealpost on one machine and for
//! the end-to-end tests: a test CA, Dovecot (IMAP with TLS) holding a few demo
//! mailboxes, Postfix (submission with TLS, delivering to Dovecot over LMTP), and a sync
//! server whose key directory sends its proof mails through that Postfix.
//!
//! Everything lives in one temporary directory and stops when the [`Stack`] is dropped.
//! The servers are the real daemons, started by `sealpost-testkit`; nothing is mocked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sealpost_mail::Secret;
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::mailer::{SmtpMailer, SmtpRelayConfig};
use sealpost_server::service::ServiceConfig;
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;

/// The mail domain of the demo mailboxes.
pub const DOMAIN: &str = "sealpost.test";
/// The key directory's own mailbox (it sends the proof mails from there).
const DIRECTORY: &str = "directory@sealpost.test";

/// A demo mailbox: its address and mail password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The address (also the IMAP/SMTP login).
    pub address: String,
    /// The mail password.
    pub password: String,
}

/// The running world.
pub struct Stack {
    /// The sync server (SQLite, software key), with the key directory.
    pub sync: EmbeddedServer,
    postfix: Postfix,
    dovecot: Dovecot,
    ca_file: PathBuf,
    users: Vec<DemoUser>,
    // Dropped last: every server's files live here.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("sync", &self.sync.url())
            .field("imaps_port", &self.dovecot.imaps_port())
            .field("submissions_port", &self.postfix.submissions_port())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the world with one mailbox per local part (`alice` → `alice@sealpost.test`,
    /// mail password `<local>-demo-mail`), the sync server on `sync_listen` (port 0: any).
    pub fn start(local_parts: &[&str], sync_listen: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sealpost-demo-")
            .tempdir()
            .context("making the demo directory")?;
        let ca = TestCa::new("Sealpost demo CA").context("making the demo CA")?;
        let ca_file = dir.path().join("demo-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).context("writing the demo CA")?;
        let users: Vec<DemoUser> = local_parts
            .iter()
            .map(|l| DemoUser {
                address: format!("{l}@{DOMAIN}"),
                password: format!("{l}-demo-mail"),
            })
            .collect();
        let relay_password = "the key directory's relay password";
        let mut test_users: Vec<TestUser> = users
            .iter()
            .map(|u| TestUser::new(&u.address, &u.password))
            .collect();
        test_users.push(TestUser::new(DIRECTORY, relay_password));
        let dovecot = Dovecot::start(&ca, &test_users).context("starting Dovecot")?;
        let postfix = Postfix::start(&ca, &dovecot).context("starting Postfix")?;
        let relay = SmtpRelayConfig {
            host: "localhost".into(),
            port: postfix.submissions_port(),
            security: "tls".into(),
            username: DIRECTORY.into(),
            password_env: "UNUSED".into(),
            from: DIRECTORY.into(),
            ca_file: Some(ca_file.clone()),
        };
        let mailer = Arc::new(
            SmtpMailer::new(&relay, Secret::new(relay_password))
                .context("setting up the key directory's mail relay")?,
        );
        let sync = EmbeddedServer::start_with_mailer(
            &dir.path().join("sync"),
            sync_listen,
            ServiceConfig::default(),
            Some(mailer),
        )
        .context("starting the sync server")?;
        Ok(Self {
            sync,
            postfix,
            dovecot,
            ca_file,
            users,
            dir,
        })
    }

    /// The demo mailboxes.
    pub fn users(&self) -> &[DemoUser] {
        &self.users
    }

    /// The CA certificate (PEM file) that signed the mail servers' certificates: what
    /// the app trusts through `SEALPOST_MAIL_CA_FILE`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// IMAP with implicit TLS, on `localhost`.
    pub fn imaps_port(&self) -> u16 {
        self.dovecot.imaps_port()
    }

    /// SMTP submission with implicit TLS, on `localhost`.
    pub fn submissions_port(&self) -> u16 {
        self.postfix.submissions_port()
    }

    /// Puts `raw` in `address`'s inbox as a delivery agent would (for mail the app
    /// cannot write itself, such as HTML from another client).
    pub fn deliver(&self, address: &str, raw: &[u8]) -> anyhow::Result<()> {
        self.dovecot
            .write_maildir(address, "INBOX", &[raw.to_vec()])
            .context("delivering into the demo mailbox")
    }

    /// The sync server's URL.
    pub fn sync_url(&self) -> String {
        self.sync.url()
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything a client needs, as JSON (what `sealpost-demo` prints).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "syncServer": self.sync_url(),
            "caFile": self.ca_file,
            "imap": { "host": "localhost", "port": self.imaps_port(), "security": "tls" },
            "smtp": { "host": "localhost", "port": self.submissions_port(), "security": "tls" },
            "users": self.users.iter().map(|u| serde_json::json!({
                "address": u.address, "password": u.password
            })).collect::<Vec<_>>(),
        })
    }
}
