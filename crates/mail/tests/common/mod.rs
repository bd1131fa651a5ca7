//! Real Dovecot and Postfix on loopback, with a test CA, for the integration tests.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use sealpost_mail::{Credentials, ImapConfig, Server, SmtpConfig, TlsPolicy};
use sealpost_testkit::dovecot::{Dovecot, TestUser};
use sealpost_testkit::mailtls::TestCa;
use sealpost_testkit::postfix::Postfix;

pub const ALICE: &str = "alice@sealpost.test";
pub const BOB: &str = "bob@sealpost.test";
pub const ALICE_PW: &str = "alice-password-1";
pub const BOB_PW: &str = "bob-password-2";

pub struct Mail {
    pub ca: TestCa,
    pub dovecot: Dovecot,
    pub postfix: Option<Postfix>,
}

impl Mail {
    /// Dovecot only.
    pub fn imap_only() -> Self {
        let ca = TestCa::new("Sealpost test CA").unwrap();
        let dovecot = Dovecot::start(&ca, &users()).unwrap();
        Self {
            ca,
            dovecot,
            postfix: None,
        }
    }

    /// Dovecot and Postfix.
    pub fn with_smtp() -> Self {
        let mut mail = Self::imap_only();
        mail.postfix = Some(Postfix::start(&mail.ca, &mail.dovecot).unwrap());
        mail
    }

    pub fn tls(&self) -> TlsPolicy {
        TlsPolicy::new().with_extra_root(self.ca.cert_der())
    }

    pub fn imaps(&self) -> ImapConfig {
        let mut c = ImapConfig::new(Server::tls("localhost", self.dovecot.imaps_port()));
        c.tls = self.tls();
        c.timeout = Duration::from_secs(20);
        c
    }

    pub fn imap_starttls(&self) -> ImapConfig {
        let mut c = ImapConfig::new(Server::starttls("localhost", self.dovecot.imap_port()));
        c.tls = self.tls();
        c.timeout = Duration::from_secs(20);
        c
    }

    pub fn smtps(&self) -> SmtpConfig {
        let port = self.postfix.as_ref().unwrap().submissions_port();
        let mut c = SmtpConfig::new(Server::tls("localhost", port));
        c.tls = self.tls();
        c.timeout = Duration::from_secs(20);
        c
    }

    pub fn smtp_starttls(&self) -> SmtpConfig {
        let port = self.postfix.as_ref().unwrap().submission_port();
        let mut c = SmtpConfig::new(Server::starttls("localhost", port));
        c.tls = self.tls();
        c.timeout = Duration::from_secs(20);
        c
    }
}

pub fn users() -> Vec<TestUser> {
    vec![TestUser::new(ALICE, ALICE_PW), TestUser::new(BOB, BOB_PW)]
}

pub fn alice() -> Credentials {
    Credentials::password(ALICE, ALICE_PW)
}

pub fn bob() -> Credentials {
    Credentials::password(BOB, BOB_PW)
}

/// A small message.
pub fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    let mail = sealpost_pgp::OutgoingMail {
        from: sealpost_pgp::Mailbox::address(from),
        to: vec![sealpost_pgp::Mailbox::address(to)],
        subject: subject.into(),
        text: body.into(),
        message_id: format!("{}@sealpost.test", subject.replace(' ', "-")),
        date: 1_700_000_000,
        ..Default::default()
    };
    sealpost_pgp::plain_mail(&mail, None, std::time::SystemTime::now()).unwrap()
}

/// A received message, read with the one message model (no keys: plain mail).
pub fn read(raw: &[u8]) -> sealpost_pgp::OpenedMail {
    let ctx = sealpost_pgp::OpenContext::new(&[], &[], std::time::SystemTime::now());
    sealpost_pgp::open_mail(raw, &ctx).unwrap()
}
