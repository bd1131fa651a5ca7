//! Reading a message: one decryption, and the reader's view of it in words — the same
//! words on every screen and in the command line's output.

use std::sync::Arc;

use sealpost_pgp::{BadSignature, EncryptionStatus, OpenedMail, SignatureStatus};

use super::Open;
use super::opened::Opened;
use super::views::{AttachmentInfo, MessageView, SignatureView};
use crate::mailbox::{Mailbox, MessageState, MessageSummary};
use crate::vault::Unlocked;
use crate::{Clock, CoreError, render};

/// The vault secret that allows remote content in mail from an address.
fn remote_content_secret(address: &str) -> String {
    format!("prefs/remote-content/{}", address.trim().to_lowercase())
}

/// Opens message `id` of the store: its raw bytes decrypted and verified once with the
/// profile's keys (on the calling thread: a blocking one), and its view.
pub(super) fn open_stored(open: &Open, mb: &Mailbox, id: i64) -> Result<Opened, CoreError> {
    let summary = mb.summary(id)?;
    let mail = if summary.state == MessageState::Unreadable {
        None
    } else {
        let raw = mb.raw(id)?;
        decrypt(open, raw.expose()).ok()
    };
    build(&open.u, summary, mail)
}

/// Decrypts and verifies `raw` with the profile's keys.
pub(super) fn decrypt(open: &Open, raw: &[u8]) -> Result<OpenedMail, CoreError> {
    let ring = open.keyring()?;
    let now = crate::keys::system_time(&*open.clock);
    Ok(sealpost_pgp::open_mail(raw, &ring.context(now))?)
}

/// The view and the frame's HTML of an opened message, with the sender's
/// remote-content choice as it stands now.
pub(super) fn build(
    u: &Unlocked,
    summary: MessageSummary,
    mail: Option<OpenedMail>,
) -> Result<Opened, CoreError> {
    let Some(m) = mail.as_ref() else {
        let view = unreadable_view(summary);
        return Ok(Opened {
            mail,
            view,
            html: None,
        });
    };
    let from = m
        .from
        .as_ref()
        .map(|f| f.address.clone())
        .unwrap_or_default();
    let allowed = !from.is_empty() && u.secret(&remote_content_secret(&from))?.is_some();
    let text = m.text.clone().unwrap_or_default();
    let (html, blocked, mut links) = match &m.html {
        Some(h) => {
            let clean = render::clean_html(h, allowed);
            (Some(clean.html), clean.remote_blocked, clean.links)
        }
        None => (None, false, Vec::new()),
    };
    for l in render::text_links(&text) {
        if !links.contains(&l) {
            links.push(l);
        }
    }
    let (encryption, encryption_text) = encryption_words(m);
    let view = MessageView {
        from,
        to: m.to.iter().map(|t| t.address.clone()).collect(),
        cc: m.cc.iter().map(|t| t.address.clone()).collect(),
        date: m.date.unwrap_or(summary.date),
        subject: m.subject.clone().unwrap_or_default(),
        subject_protected: m.subject_protected,
        text,
        has_html: html.is_some(),
        remote_content_blocked: blocked,
        remote_content_allowed: allowed,
        encryption: encryption.into(),
        encryption_text,
        signature: signature_words(m),
        attachments: m
            .attachments
            .iter()
            .enumerate()
            .map(|(index, a)| AttachmentInfo {
                index,
                name: a
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| format!("attachment-{}", index + 1)),
                mime_type: a.content_type.clone(),
                size: a.data.len(),
            })
            .collect(),
        message_id: m.message_id.clone(),
        links,
        summary,
    };
    Ok(Opened { mail, view, html })
}

/// The same opening with the view rebuilt (the remote-content choice changed): nothing
/// is decrypted again.
pub(super) fn rebuild(u: &Unlocked, opened: &Opened) -> Result<Opened, CoreError> {
    build(u, opened.view.summary.clone(), opened.mail.clone())
}

fn unreadable_view(summary: MessageSummary) -> MessageView {
    let why = if summary.state == MessageState::Unreadable {
        "This message could not be read: it is not valid mail. It is kept as it arrived."
    } else {
        "This message could not be opened. It is kept as it arrived."
    };
    MessageView {
        from: summary.from.clone(),
        subject: summary.subject.clone(),
        subject_protected: false,
        date: summary.date,
        to: Vec::new(),
        cc: Vec::new(),
        text: why.to_owned(),
        has_html: false,
        remote_content_blocked: false,
        remote_content_allowed: false,
        encryption: if summary.encrypted { "failed" } else { "none" }.into(),
        encryption_text: String::new(),
        signature: SignatureView {
            state: "none".into(),
            text: "Not signed".into(),
            signer: None,
        },
        attachments: Vec::new(),
        message_id: None,
        links: Vec::new(),
        summary,
    }
}

fn encryption_words(m: &OpenedMail) -> (&'static str, String) {
    match &m.encryption {
        EncryptionStatus::Encrypted => (
            "decrypted",
            "Encrypted — only you and the recipients could read it on the way".into(),
        ),
        EncryptionStatus::CannotDecrypt(why) => (
            "failed",
            format!("Encrypted, but it cannot be opened here: {why}"),
        ),
        EncryptionStatus::NotEncrypted => (
            "none",
            "Not encrypted — the mail servers on the way could read it".into(),
        ),
    }
}

fn signature_words(m: &OpenedMail) -> SignatureView {
    let sender = m
        .from
        .as_ref()
        .map_or_else(|| "the sender".to_owned(), |f| f.address.clone());
    let (state, text, signer) = match &m.signature {
        SignatureStatus::Verified { signer } => (
            "confirmed",
            format!("Signed by {sender} — key confirmed"),
            Some(signer.to_hex()),
        ),
        SignatureStatus::ValidUnconfirmed { signer } => (
            "unconfirmed",
            format!("Signed by {sender} — key not yet confirmed"),
            Some(signer.to_hex()),
        ),
        SignatureStatus::Bad {
            reason: BadSignature::UnknownKey,
            signer,
        } => (
            "unknownKey",
            "Signed, but by a key Sealpost does not know: the signature cannot be checked".into(),
            signer.as_ref().map(|f| f.to_hex()),
        ),
        SignatureStatus::Bad { reason, signer } => (
            "bad",
            format!("Bad signature — {}", bad_reason(reason)),
            signer.as_ref().map(|f| f.to_hex()),
        ),
        SignatureStatus::Unsigned => ("none", "Not signed".into(), None),
        // A status this build does not know is never shown as good.
        _ => ("bad", "Bad signature".into(), None),
    };
    SignatureView {
        state: state.into(),
        text,
        signer,
    }
}

fn bad_reason(reason: &BadSignature) -> &'static str {
    match reason {
        BadSignature::Invalid => {
            "the message was changed after it was signed, or the signature is broken"
        }
        BadSignature::UnknownKey => "the signing key is unknown",
        BadSignature::NotFromSender => "the key does not belong to the sender's address",
        BadSignature::NoSender => "the message has no single sender to check against",
        BadSignature::Expired => "the signing key has expired",
        BadSignature::Revoked => "the signing key was revoked",
        BadSignature::InvalidKey => "the signing key may not sign",
        BadSignature::SeveralSignatures => "it carries several signatures",
        _ => "it does not count",
    }
}

/// Allows remote content in mail from `from`.
pub(super) fn allow_remote_content(
    u: &Unlocked,
    from: &str,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    if from.trim().is_empty() {
        return Err(CoreError::BadAddress("the message has no sender".into()));
    }
    u.put_secret(&remote_content_secret(from), b"1", clock)
}

/// Whether a signature status means the key directory might help: signed by a key
/// not (yet) confirmed, or not known at all.
pub(super) fn worth_a_lookup(view: &MessageView) -> bool {
    matches!(view.signature.state.as_str(), "unconfirmed" | "unknownKey") && !view.from.is_empty()
}

/// The opened message `id` as the frame, the reader and attachment saving share it:
/// from the cache, or opened now.
pub(super) fn cached_or_open(open: &Open, mb: &Mailbox, id: i64) -> Result<Arc<Opened>, CoreError> {
    if let Some(found) = open.opened.get(id) {
        return Ok(found);
    }
    let opened = Arc::new(open_stored(open, mb, id)?);
    open.opened.put(id, Arc::clone(&opened));
    Ok(opened)
}
