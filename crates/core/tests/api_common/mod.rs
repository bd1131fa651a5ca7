//! What the tests of the use-case API share: a person is a [`Core`] on a profile
//! directory of their own, with the events it sent, against the demo world's servers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealpost_core::api::{NewMailAccount, Security, ServerSettings};
use sealpost_core::{Core, CoreConfig, CoreEvent, EventSink};
use sealpost_crypto::Password;
use sealpost_demo::Stack;

pub const PW_A: &str = "tundra mosaic gravel whimsy plank";
pub const PW_B: &str = "orbit velvet cashew lantern quarry";

pub fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

pub struct Person {
    pub core: Core,
    pub events: Arc<Mutex<Vec<CoreEvent>>>,
}

/// A person whose core runs mail workers (as the app does).
pub fn person(stack: &Stack, dir: &Path) -> Person {
    person_with(stack, dir, true)
}

pub fn person_with(stack: &Stack, dir: &Path, background: bool) -> Person {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events.lock().unwrap().push(e))
    };
    let core = Core::start(
        CoreConfig {
            profile_dir: dir.to_path_buf(),
            server_url: stack.sync_url(),
            device_name: "test device".into(),
            mail_extra_roots_pem: std::fs::read_to_string(stack.ca_file()).unwrap(),
            background,
            autoconfig_url: None,
        },
        sink,
    )
    .unwrap();
    Person { core, events }
}

impl Person {
    pub fn saw(&self, pred: impl Fn(&CoreEvent) -> bool) -> bool {
        self.events.lock().unwrap().iter().any(pred)
    }
}

/// Polls `check` until it gives `Some`, or fails after `secs` seconds naming `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The demo world's mail account of `address`, as a user types it in.
pub fn mail_account(stack: &Stack, address: &str, password: &str) -> NewMailAccount {
    let server = |port| ServerSettings {
        host: "localhost".into(),
        port,
        security: Security::Tls,
    };
    NewMailAccount {
        address: address.into(),
        login: address.into(),
        imap: server(stack.imaps_port()),
        smtp: server(stack.submissions_port()),
        password: zeroize::Zeroizing::new(password.into()),
        extra_roots_pem: String::new(),
    }
}

pub async fn add_mail(p: &Person, stack: &Stack, address: &str, password: &str) -> String {
    p.core
        .mail()
        .add_account(mail_account(stack, address, password))
        .await
        .unwrap()
        .id
}
