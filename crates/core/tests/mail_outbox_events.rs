//! Per-message outbox events as the app gets them: through the session and its mail
//! worker, for a real send through Postfix (the demo world: Dovecot, Postfix, a sync
//! server). The events of one message arrive in order: queued, connecting, sending,
//! saving to Sent, sent; nothing else for it, and each once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealpost_core::mailbox::Compose;
use sealpost_core::session::{
    ComposeRequest, EventSink, MailEvent, OutboxStepEvent, Session, SessionConfig, SessionEvent,
};
use sealpost_crypto::Password;
use sealpost_demo::Stack;
use sealpost_mail::{Secret, Server};
use sealpost_testkit::watchdog::deadline;

const PW: &str = "tundra mosaic gravel whimsy plank";

#[test]
fn a_sent_message_reports_each_step_in_order_through_the_worker() {
    let _deadline = deadline(Duration::from_secs(180), "the outbox events test");
    let stack = Stack::start(&["alice"], "127.0.0.1:0".parse().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let user = stack.users()[0].clone();
        let tmp = tempfile::tempdir().unwrap();
        let events: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
        let sink: EventSink = {
            let events = Arc::clone(&events);
            Arc::new(move |e| events.lock().unwrap().push(e))
        };
        let session = Session::start(
            SessionConfig {
                profile_dir: tmp.path().join("alice"),
                server_url: stack.sync_url(),
                device_name: "test device".into(),
                mail_extra_roots_pem: std::fs::read_to_string(stack.ca_file()).unwrap(),
            },
            sink,
        )
        .unwrap();
        session
            .create_account("alice".into(), Password::new(PW).unwrap())
            .await
            .unwrap();
        let account_id = session
            .add_mail_account(
                user.address.clone(),
                user.address.clone(),
                Server::tls("localhost", stack.imaps_port()),
                Server::tls("localhost", stack.submissions_port()),
                Secret::new(user.password.as_str()),
            )
            .await
            .unwrap()
            .id;
        let message_id = session
            .send(ComposeRequest {
                account_id,
                compose: Compose {
                    to: vec![user.address.clone()],
                    subject: "step by step".into(),
                    text: "Each step is an event.".into(),
                    ..Compose::default()
                },
                attachments: Vec::new(),
                draft_id: None,
            })
            .await
            .unwrap();

        let steps = || -> Vec<OutboxStepEvent> {
            events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    SessionEvent::Mail(MailEvent::Outbox {
                        message_id: m,
                        step,
                        message,
                        ..
                    }) if *m == message_id => {
                        assert!(message.is_none(), "no error expected: {message:?}");
                        Some(*step)
                    }
                    _ => None,
                })
                .collect()
        };
        let end = Instant::now() + Duration::from_secs(60);
        while !steps().contains(&OutboxStepEvent::Sent) {
            assert!(Instant::now() < end, "no sent event: {:?}", steps());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A moment for anything that should not come.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            steps(),
            [
                OutboxStepEvent::Queued,
                OutboxStepEvent::Connecting,
                OutboxStepEvent::Sending,
                OutboxStepEvent::SavingToSent,
                OutboxStepEvent::Sent,
            ]
        );
        drop(session);
    });
}
