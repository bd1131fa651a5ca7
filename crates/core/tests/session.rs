//! The session the desktop app runs on, end to end against real servers (the demo
//! world: Dovecot, Postfix, a sync server with its key directory): two people make
//! accounts, add their mail accounts, publish their keys, and Alice sends Bob an
//! encrypted mail that Bob opens, decrypted, with a confirmed signature. Then locking,
//! unlocking and a second device.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealpost_core::CoreError;
use sealpost_core::mailbox::Compose;
use sealpost_core::session::{
    ComposeRequest, EventSink, MailEvent, OutboxStepEvent, ProfileState, Session, SessionConfig,
    SessionEvent,
};
use sealpost_crypto::Password;
use sealpost_demo::Stack;
use sealpost_mail::{Secret, Server};
use sealpost_testkit::watchdog::deadline;

const PW_A: &str = "tundra mosaic gravel whimsy plank";
const PW_B: &str = "orbit velvet cashew lantern quarry";

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

struct Person {
    session: Session,
    events: Arc<Mutex<Vec<SessionEvent>>>,
}

fn person(stack: &Stack, dir: &Path) -> Person {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let events = Arc::clone(&events);
        Arc::new(move |e| events.lock().unwrap().push(e))
    };
    let session = Session::start(
        SessionConfig {
            profile_dir: dir.to_path_buf(),
            server_url: stack.sync_url(),
            device_name: "test device".into(),
            mail_extra_roots_pem: std::fs::read_to_string(stack.ca_file()).unwrap(),
        },
        sink,
    )
    .unwrap();
    Person { session, events }
}

/// Polls `check` until it gives `Some`, or fails after `secs` seconds naming `what`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
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

async fn add_mail(p: &Person, stack: &Stack, address: &str, password: &str) -> String {
    p.session
        .add_mail_account(
            address.into(),
            address.into(),
            Server::tls("localhost", stack.imaps_port()),
            Server::tls("localhost", stack.submissions_port()),
            Secret::new(password),
        )
        .await
        .unwrap()
        .id
}

#[test]
fn two_people_exchange_an_encrypted_signed_mail_through_the_session() {
    let _deadline = deadline(Duration::from_secs(240), "the session round trip");
    // The servers run their own runtimes: start (and stop) them outside the test's.
    let stack = Stack::start(&["alice", "bob"], "127.0.0.1:0".parse().unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(round_trip(&stack));
}

async fn round_trip(stack: &Stack) {
    let (alice_mail, bob_mail) = (stack.users()[0].clone(), stack.users()[1].clone());
    let tmp = tempfile::tempdir().unwrap();
    let alice = person(stack, &tmp.path().join("alice"));
    let bob = person(stack, &tmp.path().join("bob"));

    // Onboarding: no profile, then an account; the recovery code is shown once.
    assert_eq!(
        alice.session.status().await.unwrap().state,
        ProfileState::None
    );
    let weak = alice
        .session
        .create_account("alice".into(), pw("Summer2024!"))
        .await;
    assert!(matches!(weak, Err(CoreError::WeakPassword(_))), "{weak:?}");
    assert_eq!(
        alice.session.status().await.unwrap().state,
        ProfileState::None
    );
    let created = alice
        .session
        .create_account("alice".into(), pw(PW_A))
        .await
        .unwrap();
    assert_eq!(created.user, "alice");
    let kit = alice.session.recovery_kit().await.unwrap();
    assert!(kit.contains(created.recovery_code.as_str()));
    alice.session.forget_recovery_code().await.unwrap();
    assert!(
        alice.session.recovery_kit().await.is_err(),
        "the code is gone after confirmation"
    );
    assert_eq!(
        alice.session.status().await.unwrap().state,
        ProfileState::Unlocked
    );
    bob.session
        .create_account("bob".into(), pw(PW_B))
        .await
        .unwrap();

    // A wrong mail password is refused in words, and nothing is stored.
    let wrong = alice
        .session
        .add_mail_account(
            alice_mail.address.clone(),
            alice_mail.address.clone(),
            Server::tls("localhost", stack.imaps_port()),
            Server::tls("localhost", stack.submissions_port()),
            Secret::new("not the password"),
        )
        .await;
    assert!(matches!(wrong, Err(CoreError::MailCheck(_))), "{wrong:?}");
    assert!(alice.session.mail_accounts().await.unwrap().is_empty());
    let alice_acc = add_mail(&alice, stack, &alice_mail.address, &alice_mail.password).await;
    let bob_acc = add_mail(&bob, stack, &bob_mail.address, &bob_mail.password).await;
    // Adding an account made the own key for its address.
    let key = alice.session.my_key().await.unwrap().expect("an own key");
    assert_eq!(key.addresses, std::slice::from_ref(&alice_mail.address));

    // Both publish their keys; their mail workers spend the proof mails by themselves.
    alice
        .session
        .publish_key(alice_mail.address.clone())
        .await
        .unwrap();
    bob.session
        .publish_key(bob_mail.address.clone())
        .await
        .unwrap();
    for (p, other) in [(&bob, &alice_mail.address), (&alice, &bob_mail.address)] {
        eventually(60, "the other's key in the directory", || async {
            // The other's worker fetches the proof mail and confirms the claim.
            alice.session.sync_now().await.unwrap();
            bob.session.sync_now().await.unwrap();
            let keys = p.session.recipient_keys(vec![other.clone()]).await.unwrap();
            (keys[0].has_key && keys[0].confirmed).then_some(())
        })
        .await;
    }

    // Alice sends Bob an encrypted mail through the outbox.
    let compose = Compose {
        to: vec![bob_mail.address.clone()],
        subject: "Quarterly numbers".into(),
        text: "The numbers are in the attachment-free body: 42.".into(),
        encrypt: true,
        sign: true,
        ..Compose::default()
    };
    let draft = alice
        .session
        .save_draft(ComposeRequest {
            account_id: alice_acc.clone(),
            compose: compose.clone(),
            attachments: Vec::new(),
            draft_id: None,
        })
        .await
        .unwrap();
    let message_id = alice
        .session
        .send(ComposeRequest {
            account_id: alice_acc.clone(),
            compose,
            attachments: Vec::new(),
            draft_id: Some(draft),
        })
        .await
        .unwrap();
    eventually(60, "the outbox to report it sent", || async {
        let events = alice.events.lock().unwrap();
        events
            .iter()
            .any(|e| {
                matches!(e, SessionEvent::Mail(MailEvent::Outbox { message_id: m, step: OutboxStepEvent::Sent, .. })
                    if *m == message_id)
            })
            .then_some(())
    })
    .await;

    // Bob's worker brings it in; opened, it is decrypted and signed by a confirmed key.
    let id = eventually(60, "the mail in Bob's inbox", || async {
        bob.session.sync_now().await.unwrap();
        let (_, rows) = bob
            .session
            .messages(bob_acc.clone(), "INBOX".into(), 0, 50)
            .await
            .unwrap();
        rows.iter()
            .find(|m| m.encrypted && m.subject == "Quarterly numbers")
            .map(|m| m.id)
    })
    .await;
    let view = bob.session.open_message(id).await.unwrap();
    assert_eq!(view.encryption, "decrypted");
    assert_eq!(view.signature.state, "confirmed", "{:?}", view.signature);
    assert_eq!(
        view.signature.text,
        format!("Signed by {} — key confirmed", alice_mail.address)
    );
    assert!(view.text.contains("42"));
    assert_eq!(view.subject, "Quarterly numbers");
    // Opening marked it seen, here at once.
    let (_, rows) = bob
        .session
        .messages(bob_acc.clone(), "INBOX".into(), 0, 50)
        .await
        .unwrap();
    let row = rows.iter().find(|m| m.id == id).unwrap();
    assert!(row.flags.iter().any(|f| f == "\\Seen"), "{:?}", row.flags);
    // Search finds the decrypted text.
    let (hits, found) = bob
        .session
        .search(bob_acc.clone(), "numbers".into(), 20)
        .await
        .unwrap();
    assert_eq!(hits, 1);
    assert_eq!(found[0].id, id);

    // Lock: the UI hears it, and nothing can be read until the password is given again.
    bob.session.lock().await.unwrap();
    assert!(
        bob.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, SessionEvent::Locked))
    );
    assert_eq!(
        bob.session.status().await.unwrap().state,
        ProfileState::Locked
    );
    assert!(matches!(
        bob.session.open_message(id).await,
        Err(CoreError::Locked)
    ));
    assert!(matches!(
        bob.session.unlock(pw(PW_A)).await,
        Err(CoreError::WrongPassword)
    ));
    bob.session.unlock(pw(PW_B)).await.unwrap();
    assert_eq!(
        bob.session.open_message(id).await.unwrap().encryption,
        "decrypted"
    );

    // A second device of Alice's: same name and password, the same key.
    let phone = person(stack, &tmp.path().join("alice-2"));
    let signed = phone
        .session
        .sign_in("alice".into(), pw(PW_A))
        .await
        .unwrap();
    assert_eq!(signed.user, "alice");
    let key2 = phone
        .session
        .my_key()
        .await
        .unwrap()
        .expect("the key came along");
    assert_eq!(key2.fingerprint, key.fingerprint);
    let devices = alice.session.devices().await.unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    // Her mail account came along (its settings and its password), and its worker syncs
    // there: the copy of the mail to Bob is in Sent on the phone too.
    let on_phone = phone.session.mail_accounts().await.unwrap();
    assert_eq!(on_phone.len(), 1, "{on_phone:?}");
    assert_eq!(on_phone[0].id, alice_acc);
    assert_eq!(on_phone[0].address, alice_mail.address);
    eventually(60, "the phone to sync Alice's Sent folder", || async {
        let (total, _) = phone
            .session
            .messages(alice_acc.clone(), "Sent".into(), 0, 10)
            .await
            .ok()?;
        (total > 0).then_some(())
    })
    .await;

    // A draft with an attachment, reopened later: its text and its attachment come back,
    // and saving it again updates it rather than making a second one.
    let file = tmp.path().join("plan.txt");
    std::fs::write(&file, b"step one, step two").unwrap();
    let picked = alice.session.pick_files(vec![file.clone()]).await.unwrap();
    let draft_id = alice
        .session
        .save_draft(ComposeRequest {
            account_id: alice_acc.clone(),
            compose: Compose {
                to: vec![bob_mail.address.clone()],
                subject: "unfinished".into(),
                text: "Dear Bob, about the plan".into(),
                ..Compose::default()
            },
            attachments: vec![picked[0].token.clone()],
            draft_id: None,
        })
        .await
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let listed = alice.session.drafts(alice_acc.clone()).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].id, listed[0].subject.as_str()),
        (draft_id, "unfinished")
    );
    assert_eq!(listed[0].to, std::slice::from_ref(&bob_mail.address));
    let reopened = alice
        .session
        .open_draft(alice_acc.clone(), draft_id)
        .await
        .unwrap();
    assert_eq!(reopened.compose.text, "Dear Bob, about the plan");
    assert!(
        reopened.compose.attachments.is_empty(),
        "bytes stay in the session"
    );
    assert_eq!(reopened.attachments.len(), 1);
    assert_eq!(reopened.attachments[0].name, "plan.txt");
    assert_eq!(reopened.attachments[0].size, 18);
    let again = alice
        .session
        .save_draft(ComposeRequest {
            account_id: alice_acc.clone(),
            compose: Compose {
                text: "Dear Bob, about the plan: agreed".into(),
                ..reopened.compose.clone()
            },
            attachments: vec![reopened.attachments[0].token.clone()],
            draft_id: Some(draft_id),
        })
        .await
        .unwrap();
    assert_eq!(again, draft_id);
    let reopened = alice
        .session
        .open_draft(alice_acc.clone(), draft_id)
        .await
        .unwrap();
    assert_eq!(reopened.compose.text, "Dear Bob, about the plan: agreed");
    assert_eq!(
        reopened.attachments.len(),
        1,
        "the attachment survives a save though its file is gone"
    );
    assert!(matches!(
        alice
            .session
            .open_draft(alice_acc.clone(), draft_id + 1000)
            .await,
        Err(CoreError::NotInMailStore(_))
    ));

    // An account holding a draft is not removed (the draft exists nowhere else); once
    // the draft is gone, it is, with its password.
    assert!(matches!(
        alice.session.remove_mail_account(alice_acc.clone()).await,
        Err(CoreError::AccountBusy(_))
    ));
    assert_eq!(alice.session.mail_accounts().await.unwrap().len(), 1);
    assert!(alice.session.delete_draft(draft_id).await.unwrap());
    assert!(
        alice
            .session
            .drafts(alice_acc.clone())
            .await
            .unwrap()
            .is_empty()
    );
    alice
        .session
        .remove_mail_account(alice_acc.clone())
        .await
        .unwrap();
    // The removal reaches the phone with the settings (at its next unlock here).
    eventually(60, "the removal to reach the phone", || async {
        phone.session.lock().await.unwrap();
        phone.session.unlock(pw(PW_A)).await.unwrap();
        phone
            .session
            .mail_accounts()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    bob.session
        .remove_mail_account(bob_acc.clone())
        .await
        .unwrap();
    assert!(bob.session.mail_accounts().await.unwrap().is_empty());
}
