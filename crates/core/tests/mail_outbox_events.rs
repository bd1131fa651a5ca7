//! Per-message outbox events as the app gets them: through the API and its mail
//! worker, for a real send through Postfix (the demo world: Dovecot, Postfix, a sync
//! server). The events of one message arrive in order: queued, connecting, sending,
//! saving to Sent, sent; nothing else for it, and each once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod api_common;

use std::time::{Duration, Instant};

use api_common::*;
use sealpost_core::CoreEvent;
use sealpost_core::api::{ComposeRequest, MailEvent, OutboxStepEvent};
use sealpost_demo::Stack;
use sealpost_testkit::watchdog::deadline;

#[test]
fn a_sent_message_reports_each_step_in_order_through_the_worker() {
    let _deadline = deadline(Duration::from_secs(180), "the outbox events test");
    let stack = Stack::start(&["alice"], "127.0.0.1:0".parse().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let user = stack.users()[0].clone();
        let tmp = tempfile::tempdir().unwrap();
        let alice = person(&stack, &tmp.path().join("alice"));
        alice
            .core
            .account()
            .create("alice".into(), pw(PW_A))
            .await
            .unwrap();
        let account_id = add_mail(&alice, &stack, &user.address, &user.password).await;
        let message_id = alice
            .core
            .compose()
            .send(ComposeRequest {
                account_id,
                to: vec![user.address.clone()],
                subject: "step by step".into(),
                body: "Each step is an event.".into(),
                ..ComposeRequest::default()
            })
            .await
            .unwrap();
        let events = &alice.events;

        let steps = || -> Vec<OutboxStepEvent> {
            events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    CoreEvent::Mail(MailEvent::Outbox {
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
        drop(alice);
    });
}
