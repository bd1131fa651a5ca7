//! Send through a real Postfix, receive through a real Dovecot; flags, moves, deletes,
//! appends, IDLE and UIDVALIDITY against the real server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use common::*;
use sealpost_mail::smtp::{self, Envelope};
use sealpost_mail::{Error, Flag, IdleEvent, ImapSession, SpecialUse};

#[tokio::test]
async fn mail_sent_through_postfix_arrives_in_dovecot_and_round_trips() {
    let mail = Mail::with_smtp();
    let mut imap = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();
    assert!(imap.has_capability("IDLE") && imap.has_capability("CONDSTORE"));

    let folders = imap.folders().await.unwrap();
    let special = |u| {
        folders
            .iter()
            .find(|f| f.special_use == Some(u))
            .map(|f| f.name.clone())
    };
    assert_eq!(special(SpecialUse::Sent).as_deref(), Some("Sent"));
    assert_eq!(special(SpecialUse::Archive).as_deref(), Some("Archive"));
    assert!(folders.iter().any(|f| f.name == "INBOX"));

    let first = imap.sync("INBOX", None).await.unwrap();
    assert!(first.reset && first.new.is_empty());

    // IDLE until the message arrives: push, not polling.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let idler = tokio::spawn(async move {
        imap.idle(Duration::from_secs(20), async {
            let _ = rx.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let raw = message(ALICE, ALICE, "hello self", "Sent through Postfix.\r\n");
    smtp::send(
        &mail.smtps(),
        &alice(),
        &Envelope::new(ALICE, &[ALICE]).unwrap(),
        &raw,
    )
    .await
    .unwrap();
    let (mut imap, event) = idler.await.unwrap().unwrap();
    drop(tx);
    assert_eq!(event, IdleEvent::NewData);

    let changes = imap.sync("INBOX", Some(&first.state)).await.unwrap();
    assert!(!changes.reset);
    assert_eq!(changes.new.len(), 1, "{changes:?}");
    let uid = changes.new[0].uid;
    assert!(changes.new[0].flags.is_empty());
    let body = imap.fetch_message(uid).await.unwrap().unwrap();
    let parsed = read(&body);
    assert_eq!(parsed.subject.as_deref(), Some("hello self"));
    assert!(parsed.text.unwrap().contains("Sent through Postfix."));
    // BODY.PEEK does not mark it read.
    assert!(imap.fetch_flags(&[uid]).await.unwrap()[0].flags.is_empty());

    // Flags: set, seen by CONDSTORE sync, removed.
    let forwarded = Flag::keyword("$Forwarded").unwrap();
    imap.add_flags(&[uid], &[Flag::Seen, Flag::Flagged, forwarded.clone()])
        .await
        .unwrap();
    let after_flags = imap.sync("INBOX", Some(&changes.state)).await.unwrap();
    assert!(after_flags.new.is_empty());
    assert_eq!(after_flags.flags_changed.len(), 1);
    let flags = &after_flags.flags_changed[0].flags;
    assert!(
        flags.contains(&Flag::Seen) && flags.contains(&Flag::Flagged) && flags.contains(&forwarded)
    );
    assert!(after_flags.state.highest_modseq > changes.state.highest_modseq);
    // Nothing changed since: CHANGEDSINCE reports nothing.
    let quiet = imap.sync("INBOX", Some(&after_flags.state)).await.unwrap();
    assert!(quiet.flags_changed.is_empty() && quiet.new.is_empty());
    assert_eq!(quiet.present.iter().copied().collect::<Vec<_>>(), [uid]);
    imap.remove_flags(&[uid], &[Flag::Flagged]).await.unwrap();
    let flags = &imap.fetch_flags(&[uid]).await.unwrap()[0].flags;
    assert!(flags.contains(&Flag::Seen) && !flags.contains(&Flag::Flagged));

    // Move to Archive: gone from INBOX, there in Archive with its flags.
    let archive_before = imap.sync("Archive", None).await.unwrap();
    imap.select("INBOX").await.unwrap();
    imap.move_messages(&[uid], "Archive").await.unwrap();
    let inbox = imap.sync("INBOX", Some(&quiet.state)).await.unwrap();
    assert!(inbox.present.is_empty() && inbox.new.is_empty());
    let archive = imap
        .sync("Archive", Some(&archive_before.state))
        .await
        .unwrap();
    assert_eq!(archive.new.len(), 1);
    assert!(archive.new[0].flags.contains(&Flag::Seen));
    let archived = archive.new[0].uid;
    let moved = imap.fetch_message(archived).await.unwrap().unwrap();
    assert_eq!(moved, body);

    // Delete (expunge) it.
    imap.delete_messages(&[archived]).await.unwrap();
    let archive_after = imap.sync("Archive", Some(&archive.state)).await.unwrap();
    assert!(archive_after.present.is_empty());
    assert_eq!(imap.fetch_message(archived).await.unwrap(), None);

    // Several at once, in UID order; unknown UIDs are left out.
    imap.append("Archive", &[], &message(ALICE, ALICE, "a", "a\r\n"))
        .await
        .unwrap();
    imap.append("Archive", &[], &message(ALICE, ALICE, "b", "b\r\n"))
        .await
        .unwrap();
    let two = imap
        .sync("Archive", Some(&archive_after.state))
        .await
        .unwrap();
    let uids: Vec<u32> = two.new.iter().map(|m| m.uid).collect();
    assert_eq!(uids.len(), 2);
    let bodies = imap
        .fetch_messages(&[uids[1], 999_999, uids[0]])
        .await
        .unwrap();
    assert_eq!(bodies.iter().map(|(u, _)| *u).collect::<Vec<_>>(), uids);
    let subject = |raw: &[u8]| read(raw).subject.unwrap();
    assert_eq!(subject(&bodies[0].1), "a");
    assert_eq!(subject(&bodies[1].1), "b");

    // Append a sent copy.
    let sent_before = imap.sync("Sent", None).await.unwrap();
    imap.append("Sent", &[Flag::Seen], &raw).await.unwrap();
    let sent = imap.sync("Sent", Some(&sent_before.state)).await.unwrap();
    assert_eq!(sent.new.len(), 1);
    assert!(sent.new[0].flags.contains(&Flag::Seen));
    assert_eq!(sent.new[0].size, Some(raw.len() as u32));
    imap.logout().await.unwrap();
}

#[tokio::test]
async fn starttls_submission_and_imap_work_and_deliver_to_another_user() {
    let mail = Mail::with_smtp();
    let raw = message(ALICE, BOB, "via starttls", "Hi Bob.\r\n");
    let mut smtp = smtp::SmtpSession::connect(&mail.smtp_starttls(), &alice())
        .await
        .unwrap();
    smtp.send(&Envelope::new(ALICE, &[BOB]).unwrap(), &raw)
        .await
        .unwrap();
    smtp.quit().await.unwrap();

    let mut imap = ImapSession::connect(&mail.imap_starttls(), &bob())
        .await
        .unwrap();
    // Capabilities were read after TLS and login: the full post-login list.
    assert!(imap.has_capability("MOVE"));
    assert!(!imap.has_capability("STARTTLS"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let changes = imap.sync("INBOX", None).await.unwrap();
        if let Some(m) = changes.new.first() {
            let body = imap.fetch_message(m.uid).await.unwrap().unwrap();
            let parsed = read(&body);
            assert_eq!(parsed.subject.as_deref(), Some("via starttls"));
            assert_eq!(parsed.from.map(|m| m.address).as_deref(), Some(ALICE));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_recreated_folder_changes_uidvalidity_and_the_sync_resets() {
    let mail = Mail::imap_only();
    let mut imap = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();
    // Non-ASCII names travel as modified UTF-7 and come back readable.
    let drafts = sealpost_mail::imap::encode_folder_name("Entwürfe & Co");
    imap.create_folder(&drafts).await.unwrap();
    let listed = imap.folders().await.unwrap();
    let folder = listed.iter().find(|f| f.name == drafts).unwrap();
    assert_eq!(folder.display_name, "Entwürfe & Co");
    imap.create_folder("Work").await.unwrap();
    imap.append("Work", &[], &message(ALICE, ALICE, "one", "1\r\n"))
        .await
        .unwrap();
    let first = imap.sync("Work", None).await.unwrap();
    assert_eq!(first.new.len(), 1);
    let same = imap.sync("Work", Some(&first.state)).await.unwrap();
    assert!(!same.reset && same.new.is_empty());

    imap.select("INBOX").await.unwrap();
    imap.delete_folder("Work").await.unwrap();
    imap.create_folder("Work").await.unwrap();
    imap.append("Work", &[], &message(ALICE, ALICE, "two", "2\r\n"))
        .await
        .unwrap();
    let again = imap.sync("Work", Some(&first.state)).await.unwrap();
    assert_ne!(again.state.uid_validity, first.state.uid_validity);
    assert!(again.reset, "a UIDVALIDITY change must reset the folder");
    assert_eq!(again.new.len(), 1);
    assert!(again.present.is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_such_by_imap_and_smtp() {
    let mail = Mail::with_smtp();
    let wrong = sealpost_mail::Credentials::password(ALICE, "not-the-password");
    let e = ImapSession::connect(&mail.imaps(), &wrong)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AuthFailed(_)), "{e:?}");
    let e = smtp::SmtpSession::connect(&mail.smtps(), &wrong)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AuthFailed(_)), "{e:?}");
    assert!(e.to_string().contains("wrong user name, password or token"));
}

#[tokio::test]
async fn idle_can_be_interrupted_by_the_caller() {
    let mail = Mail::imap_only();
    let mut imap = ImapSession::connect(&mail.imaps(), &alice()).await.unwrap();
    imap.select("INBOX").await.unwrap();
    let started = std::time::Instant::now();
    let (mut imap, event) = imap
        .idle(
            Duration::from_secs(60),
            tokio::time::sleep(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!(event, IdleEvent::Interrupted);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The session is usable afterwards.
    imap.noop().await.unwrap();
    imap.logout().await.unwrap();
}
