//! What the UI is shown: an opened message, keys, recipients — in words where the UI
//! shows words, so every screen says the same thing the same way.

use std::time::UNIX_EPOCH;

use sealpost_pgp::{BadSignature, EncryptionStatus, KeyPair, OpenedMail, SignatureStatus};
use serde::Serialize;

use crate::mailbox::{MessageState, MessageSummary, ReadMessage};
use crate::render;
use crate::vault::Unlocked;
use crate::{Clock, CoreError, keys, sync};

/// The vault secret that allows remote content in mail from an address.
fn remote_content_secret(address: &str) -> String {
    format!("prefs/remote-content/{}", address.trim().to_lowercase())
}

/// An attachment of an opened message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// Its position, for saving it.
    pub index: usize,
    /// The file name the sender gave, or a neutral one.
    pub name: String,
    /// The MIME type.
    pub mime_type: String,
    /// Size in bytes.
    pub size: usize,
}

/// A signature in words, for the app's own chrome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureView {
    /// `none`, `confirmed`, `unconfirmed`, `bad` or `unknownKey`.
    pub state: &'static str,
    /// e.g. "Signed by alice@example.org — key confirmed".
    pub text: String,
}

/// An opened message, as the reader shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Its list row.
    pub summary: MessageSummary,
    /// The sender.
    pub from: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Unix seconds; 0 when unknown.
    pub date: i64,
    /// The subject (the protected one when the mail was encrypted).
    pub subject: String,
    /// The text; for HTML-only mail, the cleaned HTML's text.
    pub text: String,
    /// The cleaned HTML, or `None`.
    pub html: Option<String>,
    /// Remote content was removed from the HTML.
    pub remote_content_blocked: bool,
    /// Remote content from this sender is allowed (the frame's policy must allow it).
    pub remote_content_allowed: bool,
    /// `none`, `decrypted` or `failed`.
    pub encryption: &'static str,
    /// The encryption in words.
    pub encryption_text: String,
    /// The signature in words.
    pub signature: SignatureView,
    /// The attachments.
    pub attachments: Vec<AttachmentInfo>,
    /// The Message-ID, for a reply.
    pub message_id: Option<String>,
    /// The links in the message, for the chrome to list.
    pub links: Vec<String>,
}

/// Builds the reader's view of `read`.
pub(super) fn message_view(u: &Unlocked, read: &ReadMessage) -> Result<MessageView, CoreError> {
    let summary = read.summary.clone();
    let Some(m) = read.opened.as_ref() else {
        let why = if summary.state == MessageState::Unreadable {
            "This message could not be read: it is not valid mail. It is kept as it arrived."
        } else {
            "This message could not be opened. It is kept as it arrived."
        };
        return Ok(MessageView {
            from: summary.from.clone(),
            subject: summary.subject.clone(),
            date: summary.date,
            to: Vec::new(),
            cc: Vec::new(),
            text: why.to_owned(),
            html: None,
            remote_content_blocked: false,
            remote_content_allowed: false,
            encryption: if summary.encrypted { "failed" } else { "none" },
            encryption_text: String::new(),
            signature: SignatureView {
                state: "none",
                text: "Not signed".into(),
            },
            attachments: Vec::new(),
            message_id: None,
            links: Vec::new(),
            summary,
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
    Ok(MessageView {
        from,
        to: m.to.iter().map(|t| t.address.clone()).collect(),
        cc: m.cc.iter().map(|t| t.address.clone()).collect(),
        date: m.date.unwrap_or(summary.date),
        subject: m.subject.clone().unwrap_or_default(),
        text,
        html,
        remote_content_blocked: blocked,
        remote_content_allowed: allowed,
        encryption,
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
    })
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
    match &m.signature {
        SignatureStatus::Verified { .. } => SignatureView {
            state: "confirmed",
            text: format!("Signed by {sender} — key confirmed"),
        },
        SignatureStatus::ValidUnconfirmed { .. } => SignatureView {
            state: "unconfirmed",
            text: format!("Signed by {sender} — key not yet confirmed"),
        },
        SignatureStatus::Bad {
            reason: BadSignature::UnknownKey,
            ..
        } => SignatureView {
            state: "unknownKey",
            text: "Signed, but by a key Sealpost does not know: the signature cannot be checked"
                .into(),
        },
        SignatureStatus::Bad { reason, .. } => SignatureView {
            state: "bad",
            text: format!("Bad signature — {}", bad_reason(reason)),
        },
        SignatureStatus::Unsigned => SignatureView {
            state: "none",
            text: "Not signed".into(),
        },
        _ => SignatureView {
            state: "bad",
            text: "Bad signature".into(),
        },
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

/// Allows remote content in mail from the sender of `read`.
pub(super) fn allow_remote_content(
    u: &Unlocked,
    read: &ReadMessage,
    clock: &dyn Clock,
) -> Result<(), CoreError> {
    let from = read
        .opened
        .as_ref()
        .and_then(|m| m.from.as_ref())
        .map(|f| f.address.clone())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CoreError::BadAddress("the message has no sender".into()))?;
    u.put_secret(&remote_content_secret(&from), b"1", clock)
}

/// Whether a recipient's key is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientKey {
    /// The address as given.
    pub address: String,
    /// A key is known.
    pub has_key: bool,
    /// The key was confirmed (by the key directory's proof, or by the user).
    pub confirmed: bool,
}

/// Known keys for `addresses`; unknown ones are asked of the key directory first.
pub(super) fn recipient_keys(
    u: &Unlocked,
    addresses: &[String],
    clock: &dyn Clock,
) -> Result<Vec<RecipientKey>, CoreError> {
    let own = keys::own_key(u, clock)?;
    let own_addresses = own
        .as_ref()
        .map(|k| k.addresses(keys::system_time(clock)))
        .unwrap_or_default();
    let mut out = Vec::new();
    for address in addresses {
        let address = address.trim();
        if own_addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(address))
        {
            out.push(RecipientKey {
                address: address.to_owned(),
                has_key: true,
                confirmed: true,
            });
            continue;
        }
        let mut contact = keys::contact(u, address)?;
        if contact.is_none() && sync::account(u)?.is_some() {
            // Offline or not published: the answer is simply "no key".
            let _ = sync::lookup_directory(u, address, clock);
            contact = keys::contact(u, address)?;
        }
        out.push(RecipientKey {
            address: address.to_owned(),
            has_key: contact.is_some(),
            confirmed: contact.is_some_and(|c| c.confirmed),
        });
    }
    Ok(out)
}

/// The own key, as the settings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyKey {
    /// The fingerprint (hex, upper case).
    pub fingerprint: String,
    /// The addresses bound to it.
    pub addresses: Vec<String>,
    /// When it expires (Unix seconds), `None` for never.
    pub expires: Option<i64>,
}

pub(super) fn my_key(key: &KeyPair, clock: &dyn Clock) -> Result<MyKey, CoreError> {
    let now = keys::system_time(clock);
    let expires = key
        .expiration(now)?
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    Ok(MyKey {
        fingerprint: key.fingerprint().to_hex(),
        addresses: key.addresses(now),
        expires,
    })
}
