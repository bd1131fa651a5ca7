//! The use-case API the app and the command line stand on, end to end against real
//! servers (the demo world: Dovecot, Postfix, a sync server with its key directory):
//! two people make accounts, add their mail accounts, publish their keys, and Alice sends
//! Bob an encrypted mail that Bob opens, decrypted, with a confirmed signature. Then
//! locking, unlocking and a second device.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod api_common;

use std::time::Duration;

use api_common::*;
use sealpost_core::CoreError;
use sealpost_core::CoreEvent;
use sealpost_core::api::{ComposeRequest, MailEvent, OutboxStepEvent, ProfileState};
use sealpost_demo::Stack;
use sealpost_testkit::watchdog::deadline;

#[test]
fn two_people_exchange_an_encrypted_signed_mail_through_the_api() {
    let _deadline = deadline(Duration::from_secs(240), "the API round trip");
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
    assert_eq!(alice.core.status().await.unwrap().state, ProfileState::None);
    let weak = alice
        .core
        .account()
        .create("alice".into(), pw("Summer2024!"))
        .await;
    assert!(matches!(weak, Err(CoreError::WeakPassword(_))), "{weak:?}");
    assert_eq!(alice.core.status().await.unwrap().state, ProfileState::None);
    let created = alice
        .core
        .account()
        .create("alice".into(), pw(PW_A))
        .await
        .unwrap();
    assert_eq!(created.user, "alice");
    let kit = alice.core.profile().recovery_kit().await.unwrap();
    assert!(kit.contains(created.recovery_code.as_str()));
    alice.core.profile().forget_recovery_code().await.unwrap();
    assert!(
        alice.core.profile().recovery_kit().await.is_err(),
        "the code is gone after confirmation"
    );
    assert_eq!(
        alice.core.status().await.unwrap().state,
        ProfileState::Unlocked
    );
    bob.core
        .account()
        .create("bob".into(), pw(PW_B))
        .await
        .unwrap();

    // A wrong mail password is refused in words, and nothing is stored.
    let wrong = alice
        .core
        .mail()
        .add_account(mail_account(stack, &alice_mail.address, "not the password"))
        .await;
    assert!(matches!(wrong, Err(CoreError::MailCheck(_))), "{wrong:?}");
    assert!(alice.core.mail().accounts().await.unwrap().is_empty());
    let alice_acc = add_mail(&alice, stack, &alice_mail.address, &alice_mail.password).await;
    let bob_acc = add_mail(&bob, stack, &bob_mail.address, &bob_mail.password).await;
    // Adding an account made the own key for its address.
    let key = alice.core.keys().mine().await.unwrap().expect("an own key");
    assert_eq!(key.addresses, std::slice::from_ref(&alice_mail.address));

    // Both publish their keys; their mail workers spend the proof mails by themselves.
    alice
        .core
        .keys()
        .publish(alice_mail.address.clone())
        .await
        .unwrap();
    bob.core
        .keys()
        .publish(bob_mail.address.clone())
        .await
        .unwrap();
    for (p, other) in [(&bob, &alice_mail.address), (&alice, &bob_mail.address)] {
        eventually(60, "the other's key in the directory", || async {
            // The other's worker fetches the proof mail and confirms the claim.
            alice.core.mail().sync_now().await.unwrap();
            bob.core.mail().sync_now().await.unwrap();
            let keys = p
                .core
                .compose()
                .recipient_keys(vec![other.clone()])
                .await
                .unwrap();
            (keys[0].has_key && keys[0].confirmed).then_some(())
        })
        .await;
    }

    // Alice sends Bob an encrypted mail through the outbox.
    let compose = ComposeRequest {
        account_id: alice_acc.clone(),
        to: vec![bob_mail.address.clone()],
        subject: "Quarterly numbers".into(),
        body: "The numbers are in the attachment-free body: 42.".into(),
        encrypt: true,
        sign: true,
        ..ComposeRequest::default()
    };
    let draft = alice
        .core
        .compose()
        .save_draft(compose.clone())
        .await
        .unwrap()
        .expect("a draft with content");
    let message_id = alice
        .core
        .compose()
        .send(ComposeRequest {
            draft_id: Some(draft),
            ..compose
        })
        .await
        .unwrap();
    // The draft went with the send.
    assert!(
        alice
            .core
            .compose()
            .drafts(alice_acc.clone())
            .await
            .unwrap()
            .is_empty()
    );
    eventually(60, "the outbox to report it sent", || async {
        let events = alice.events.lock().unwrap();
        events
            .iter()
            .any(|e| {
                matches!(e, CoreEvent::Mail(MailEvent::Outbox { message_id: m, step: OutboxStepEvent::Sent, .. })
                    if *m == message_id)
            })
            .then_some(())
    })
    .await;

    // Bob's worker brings it in; opened, it is decrypted and signed by a confirmed key.
    let id = eventually(60, "the mail in Bob's inbox", || async {
        bob.core.mail().sync_now().await.unwrap();
        let page = bob
            .core
            .mail()
            .messages(bob_acc.clone(), "INBOX".into(), 0, 50)
            .await
            .unwrap();
        page.items
            .iter()
            .find(|m| m.encrypted && m.subject == "Quarterly numbers")
            .map(|m| m.id)
    })
    .await;
    let view = bob.core.mail().open_message(id).await.unwrap();
    assert_eq!(view.encryption, "decrypted");
    assert_eq!(view.signature.state, "confirmed", "{:?}", view.signature);
    assert_eq!(
        view.signature.text,
        format!("Signed by {} — key confirmed", alice_mail.address)
    );
    assert!(view.text.contains("42"));
    assert_eq!(view.subject, "Quarterly numbers");
    // Opening marked it seen, here at once.
    let page = bob
        .core
        .mail()
        .messages(bob_acc.clone(), "INBOX".into(), 0, 50)
        .await
        .unwrap();
    let row = page.items.iter().find(|m| m.id == id).unwrap();
    assert!(row.flags.iter().any(|f| f == "\\Seen"), "{:?}", row.flags);
    // Search finds the decrypted text.
    let found = bob
        .core
        .mail()
        .search(bob_acc.clone(), "numbers".into(), 20)
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].id, id);

    // Lock: the UI hears it, and nothing can be read until the password is given again.
    bob.core.profile().lock().await.unwrap();
    assert!(
        bob.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, CoreEvent::Locked))
    );
    assert_eq!(bob.core.status().await.unwrap().state, ProfileState::Locked);
    assert!(matches!(
        bob.core.mail().open_message(id).await,
        Err(CoreError::Locked)
    ));
    assert!(matches!(
        bob.core.profile().unlock(pw(PW_A)).await,
        Err(CoreError::WrongPassword)
    ));
    bob.core.profile().unlock(pw(PW_B)).await.unwrap();
    assert_eq!(
        bob.core.mail().open_message(id).await.unwrap().encryption,
        "decrypted"
    );

    // A second device of Alice's: same name and password, the same key.
    let phone = person(stack, &tmp.path().join("alice-2"));
    let signed = phone
        .core
        .account()
        .sign_in("alice".into(), pw(PW_A))
        .await
        .unwrap();
    assert_eq!(signed.user, "alice");
    let key2 = phone
        .core
        .keys()
        .mine()
        .await
        .unwrap()
        .expect("the key came along");
    assert_eq!(key2.fingerprint, key.fingerprint);
    let devices = alice.core.account().devices().await.unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    // Her mail account came along (its settings and its password), and its worker syncs
    // there: the copy of the mail to Bob is in Sent on the phone too.
    let on_phone = phone.core.mail().accounts().await.unwrap();
    assert_eq!(on_phone.len(), 1, "{on_phone:?}");
    assert_eq!(on_phone[0].id, alice_acc);
    assert_eq!(on_phone[0].address, alice_mail.address);
    eventually(60, "the phone to sync Alice's Sent folder", || async {
        let page = phone
            .core
            .mail()
            .messages(alice_acc.clone(), "Sent".into(), 0, 10)
            .await
            .ok()?;
        (page.total > 0).then_some(())
    })
    .await;

    // A draft with an attachment, reopened later: its text and its attachment come back,
    // and saving it again updates it rather than making a second one.
    let file = tmp.path().join("plan.txt");
    std::fs::write(&file, b"step one, step two").unwrap();
    let picked = alice
        .core
        .compose()
        .pick_files(vec![file.clone()])
        .await
        .unwrap();
    let draft_id = alice
        .core
        .compose()
        .save_draft(ComposeRequest {
            account_id: alice_acc.clone(),
            to: vec![bob_mail.address.clone()],
            subject: "unfinished".into(),
            body: "Dear Bob, about the plan".into(),
            attachments: vec![picked[0].token.clone()],
            ..ComposeRequest::default()
        })
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let listed = alice
        .core
        .compose()
        .drafts(alice_acc.clone())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].id, listed[0].subject.as_str()),
        (draft_id, "unfinished")
    );
    assert_eq!(listed[0].to, std::slice::from_ref(&bob_mail.address));
    let reopened = alice
        .core
        .compose()
        .open_draft(alice_acc.clone(), draft_id)
        .await
        .unwrap();
    assert_eq!(reopened.text, "Dear Bob, about the plan");
    assert_eq!(reopened.attachments.len(), 1);
    assert_eq!(reopened.attachments[0].name, "plan.txt");
    assert_eq!(reopened.attachments[0].size, 18);
    let again = alice
        .core
        .compose()
        .save_draft(ComposeRequest {
            account_id: alice_acc.clone(),
            to: reopened.to.clone(),
            subject: reopened.subject.clone(),
            body: "Dear Bob, about the plan: agreed".into(),
            attachments: vec![reopened.attachments[0].token.clone()],
            draft_id: Some(draft_id),
            ..ComposeRequest::default()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, draft_id);
    let reopened = alice
        .core
        .compose()
        .open_draft(alice_acc.clone(), draft_id)
        .await
        .unwrap();
    assert_eq!(reopened.text, "Dear Bob, about the plan: agreed");
    assert_eq!(
        reopened.attachments.len(),
        1,
        "the attachment survives a save though its file is gone"
    );
    assert!(matches!(
        alice
            .core
            .compose()
            .open_draft(alice_acc.clone(), draft_id + 1000)
            .await,
        Err(CoreError::NotInMailStore(_))
    ));

    // An account holding a draft is not removed (the draft exists nowhere else); once
    // the draft is gone, it is, with its password.
    assert!(matches!(
        alice.core.mail().remove_account(alice_acc.clone()).await,
        Err(CoreError::AccountBusy(_))
    ));
    assert_eq!(alice.core.mail().accounts().await.unwrap().len(), 1);
    assert!(alice.core.compose().delete_draft(draft_id).await.unwrap());
    assert!(
        alice
            .core
            .compose()
            .drafts(alice_acc.clone())
            .await
            .unwrap()
            .is_empty()
    );
    alice
        .core
        .mail()
        .remove_account(alice_acc.clone())
        .await
        .unwrap();
    // The removal reaches the phone with the settings (at its next unlock here).
    eventually(60, "the removal to reach the phone", || async {
        phone.core.profile().lock().await.unwrap();
        phone.core.profile().unlock(pw(PW_A)).await.unwrap();
        phone
            .core
            .mail()
            .accounts()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    bob.core
        .mail()
        .remove_account(bob_acc.clone())
        .await
        .unwrap();
    assert!(bob.core.mail().accounts().await.unwrap().is_empty());
}
