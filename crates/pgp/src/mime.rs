//! PGP/MIME mail (RFC 3156) with protected headers: building an encrypted message, and
//! opening any message under the EFAIL rules. MIME is parsed by `mail-parser` and written
//! by `mail-builder`; nothing here splits MIME by hand.
//!
//! # What is decrypted automatically
//!
//! Only an encrypted layer at the *top*: the root part being `multipart/encrypted;
//! protocol="application/pgp-encrypted"`, or, for old inline mail, a single `text/plain`
//! body that is nothing but one `-----BEGIN PGP MESSAGE-----` block. An encrypted part
//! anywhere else (beside plain parts, inside HTML, in an attachment) is shown as it is,
//! ciphertext, and never stitched with the plain parts around it. Likewise only a
//! `multipart/signed` root (or one directly inside the encrypted layer) is verified: a
//! signed part inside an unsigned message does not make the message signed.

use std::borrow::Cow;
use std::time::SystemTime;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as BuilderAddress;
use mail_builder::headers::content_type::ContentType as BuilderContentType;
use mail_builder::headers::date::Date as BuilderDate;
use mail_builder::headers::message_id::MessageId as BuilderMessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text as BuilderText;
use mail_builder::mime::MimePart;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use sequoia_openpgp::Cert;

use crate::autocrypt::{self, AutocryptKey, PreferEncrypt};
use crate::message::{self, OpenContext, SigCheck, SignatureStatus};
use crate::{DecryptFailure, KeyPair, PgpError};

/// The Subject outside an encrypted message; the real one travels inside.
pub const PLACEHOLDER_SUBJECT: &str = "...";

/// The most MIME parts `open_mail` accepts before treating a message as malformed.
const MAX_MIME_PARTS: usize = 10_000;

/// A name and an address, as in a From or To header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any.
    pub name: Option<String>,
    /// The e-mail address.
    pub address: String,
}

impl Mailbox {
    /// A mailbox with a display name.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            address: address.into(),
        }
    }
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the sender gave (untrusted: never influences any status).
    pub name: Option<String>,
    /// The MIME type, such as `application/pdf` (anything that is not a plain
    /// `type/subtype` is sent as `application/octet-stream`).
    pub content_type: String,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// A message to encrypt and send.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The sender.
    pub from: Mailbox,
    /// Primary recipients.
    pub to: Vec<Mailbox>,
    /// Copy recipients.
    pub cc: Vec<Mailbox>,
    /// The real subject: it appears only inside the encrypted part.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An optional HTML alternative.
    pub html: Option<String>,
    /// Attachments; they travel inside the encrypted part.
    pub attachments: Vec<Attachment>,
    /// The Date header, in seconds since the Unix epoch.
    pub date: i64,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The Message-ID this replies to, if any.
    pub in_reply_to: Option<String>,
    /// Whether to send an Autocrypt header, and with which preference.
    pub autocrypt: Option<PreferEncrypt>,
}

/// Whether and how a message was encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncryptionStatus {
    /// Encrypted, integrity-protected, decrypted and checked.
    Encrypted,
    /// Not encrypted (or the encrypted part is not at the top, so not decrypted).
    NotEncrypted,
    /// Encrypted, but it could not be decrypted; nothing of its content is shown.
    CannotDecrypt(DecryptFailure),
}

/// A message as a UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedMail {
    /// The subject: the protected one from inside the encryption when present.
    pub subject: Option<String>,
    /// Whether [`OpenedMail::subject`] came from inside the encryption.
    pub subject_protected: bool,
    /// The sender (the protected one when present).
    pub from: Option<Mailbox>,
    /// The To recipients (outer headers).
    pub to: Vec<Mailbox>,
    /// The Cc recipients (outer headers).
    pub cc: Vec<Mailbox>,
    /// The Date header, seconds since the Unix epoch.
    pub date: Option<i64>,
    /// The Message-ID.
    pub message_id: Option<String>,
    /// The plain-text body (all inline text parts, joined).
    pub text: Option<String>,
    /// The HTML body, if any (to be sanitised before display).
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Encryption status.
    pub encryption: EncryptionStatus,
    /// Signature status.
    pub signature: SignatureStatus,
    /// A valid Autocrypt header of the sender, if the message had one.
    pub autocrypt: Option<AutocryptKey>,
}

/// Builds a complete RFC 5322 message: From/To/Cc/Date/Message-ID/Autocrypt outside, the
/// Subject `...`, and a PGP/MIME body whose encrypted part holds a `multipart/mixed;
/// protected-headers="v1"` entity with the real headers, the text (and HTML) and the
/// attachments, signed by `sender` and encrypted to `recipients` and the sender.
///
/// Refuses a From address that is not bound to `sender` ([`PgpError::FromNotBound`]):
/// its recipients would see a bad signature.
pub fn encrypt_mail(
    mail: &OutgoingMail,
    sender: &KeyPair,
    recipients: &[Cert],
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    let from = mail.from.address.trim();
    if !sender
        .addresses(now)
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from))
    {
        return Err(PgpError::FromNotBound(mail.from.address.clone()));
    }
    let inner = inner_entity(mail);
    let mut plaintext: Vec<u8> = Vec::new();
    inner.write_part(&mut plaintext);
    let armored = message::encrypt(&plaintext, sender, recipients, now)?;
    let armored = String::from_utf8(armored).map_err(PgpError::openpgp)?;

    let body = MimePart::new(
        BuilderContentType::new("multipart/encrypted")
            .attribute("protocol", "application/pgp-encrypted"),
        vec![
            MimePart::new("application/pgp-encrypted", "Version: 1\r\n").header(
                "Content-Description",
                Raw::new("PGP/MIME version identification"),
            ),
            MimePart::new(
                BuilderContentType::new("application/octet-stream")
                    .attribute("name", "encrypted.asc"),
                armored,
            )
            .header("Content-Description", Raw::new("OpenPGP encrypted message"))
            .inline(),
        ],
    );
    let mut builder = MessageBuilder::new()
        .from(address(&mail.from))
        .subject(PLACEHOLDER_SUBJECT)
        .date(BuilderDate::new(mail.date))
        .message_id(mail.message_id.as_str());
    if !mail.to.is_empty() {
        builder = builder.to(address_list(&mail.to));
    }
    if !mail.cc.is_empty() {
        builder = builder.cc(address_list(&mail.cc));
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.in_reply_to(id.as_str()).references(id.as_str());
    }
    if let Some(prefer) = mail.autocrypt {
        let value = autocrypt::header_value(sender, &mail.from.address, prefer, now)?;
        builder = builder.header("Autocrypt", Raw::new(value));
    }
    builder
        .body(body)
        .write_to_vec()
        .map_err(|e| PgpError::Mime(e.to_string()))
}

/// The entity that gets encrypted: protected headers on a `multipart/mixed` root.
fn inner_entity(mail: &OutgoingMail) -> MimePart<'_> {
    let text = MimePart::new("text/plain", mail.text.as_str());
    let content = match &mail.html {
        Some(html) => MimePart::new(
            "multipart/alternative",
            vec![text, MimePart::new("text/html", html.as_str())],
        ),
        None => text,
    };
    let mut parts = vec![content];
    for a in &mail.attachments {
        let part = MimePart::new(
            BuilderContentType::new(media_type(&a.content_type)),
            a.data.as_slice(),
        );
        parts.push(match &a.name {
            Some(name) => part.attachment(name.as_str()),
            None => part.header("Content-Disposition", Raw::new("attachment")),
        });
    }
    let mut inner = MimePart::new(
        BuilderContentType::new("multipart/mixed").attribute("protected-headers", "v1"),
        parts,
    )
    .header("From", address(&mail.from))
    .header("Subject", BuilderText::new(mail.subject.as_str()))
    .header("Date", BuilderDate::new(mail.date))
    .header(
        "Message-ID",
        BuilderMessageId::new(mail.message_id.as_str()),
    );
    if !mail.to.is_empty() {
        inner = inner.header("To", address_list(&mail.to));
    }
    if !mail.cc.is_empty() {
        inner = inner.header("Cc", address_list(&mail.cc));
    }
    inner
}

/// `type/subtype` if `given` is one (RFC 2045 token characters only, so nothing can be
/// smuggled into the header), else `application/octet-stream`.
fn media_type(given: &str) -> &str {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
    };
    match given.trim().split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => given.trim(),
        _ => "application/octet-stream",
    }
}

fn address(m: &Mailbox) -> BuilderAddress<'_> {
    BuilderAddress::new_address(m.name.as_deref(), m.address.as_str())
}

fn address_list(list: &[Mailbox]) -> BuilderAddress<'_> {
    BuilderAddress::new_list(list.iter().map(address).collect())
}

/// Opens a received message: decrypts a top-level encrypted layer, verifies a top-level
/// signature, applies the sender rules, and collects the sender's Autocrypt header.
///
/// Fails only when `raw` is not a message at all; bad ciphertext becomes
/// [`EncryptionStatus::CannotDecrypt`] with no content.
pub fn open_mail(raw: &[u8], ctx: &OpenContext<'_>) -> Result<OpenedMail, PgpError> {
    let outer = parse(raw).ok_or_else(|| PgpError::Mime("not an e-mail message".into()))?;
    let root = outer
        .parts
        .first()
        .ok_or_else(|| PgpError::Mime("message without parts".into()))?;
    let outer_from = mailboxes(outer.from());
    let mut opened = OpenedMail {
        subject: outer.subject().map(str::to_owned),
        subject_protected: false,
        from: outer_from.first().cloned(),
        to: mailboxes(outer.to()),
        cc: mailboxes(outer.cc()),
        date: outer.date().map(|d| d.to_timestamp()),
        message_id: outer.message_id().map(str::to_owned),
        text: None,
        html: None,
        attachments: Vec::new(),
        encryption: EncryptionStatus::NotEncrypted,
        signature: SignatureStatus::Unsigned,
        autocrypt: autocrypt::from_message(&outer, ctx.now),
    };
    let mut from_addresses: Vec<String> = outer_from.iter().map(|m| m.address.clone()).collect();

    match top_layer(&outer, root) {
        Top::PgpMime(ciphertext) => {
            let decrypted = match message::decrypt(ciphertext, ctx) {
                Ok(d) => d,
                Err(failure) => {
                    opened.encryption = EncryptionStatus::CannotDecrypt(failure);
                    return Ok(opened);
                }
            };
            let Some(inner) = parse(&decrypted.plaintext) else {
                opened.encryption = EncryptionStatus::CannotDecrypt(DecryptFailure::BadMime);
                return Ok(opened);
            };
            opened.encryption = EncryptionStatus::Encrypted;
            if let Some(subject) = inner.subject() {
                opened.subject = Some(subject.to_owned());
                opened.subject_protected = true;
            }
            let inner_from = mailboxes(inner.from());
            if let Some(first) = inner_from.first() {
                opened.from = Some(first.clone());
                from_addresses.extend(inner_from.iter().map(|m| m.address.clone()));
            }
            opened.signature = decrypted.signature_status(&from_addresses, ctx);
            let inner_root = inner.parts.first();
            match inner_root.map(|r| top_layer(&inner, r)) {
                // Sign-then-encrypt as two MIME layers (RFC 3156 §6.1): only when the
                // OpenPGP layer carried no signature of its own.
                Some(Top::Signed { content, signature })
                    if opened.signature == SignatureStatus::Unsigned =>
                {
                    let checks = message::detached_checks(&crlf(content), signature, ctx);
                    opened.signature = message::signature_status(&checks, &from_addresses, ctx);
                    match parse(content) {
                        Some(signed) => fill_body(&mut opened, &signed),
                        None => fill_body(&mut opened, &inner),
                    }
                }
                _ => fill_body(&mut opened, &inner),
            }
        }
        Top::Inline(armored) => match message::decrypt(armored.as_bytes(), ctx) {
            Ok(decrypted) => {
                opened.encryption = EncryptionStatus::Encrypted;
                opened.signature = decrypted.signature_status(&from_addresses, ctx);
                opened.text = Some(String::from_utf8_lossy(&decrypted.plaintext).into_owned());
            }
            Err(failure) => opened.encryption = EncryptionStatus::CannotDecrypt(failure),
        },
        Top::Signed { content, signature } => {
            let checks: Vec<SigCheck> = message::detached_checks(&crlf(content), signature, ctx);
            opened.signature = message::signature_status(&checks, &from_addresses, ctx);
            match parse(content) {
                Some(signed) => fill_body(&mut opened, &signed),
                None => fill_body(&mut opened, &outer),
            }
        }
        Top::MalformedPgpMime => {
            opened.encryption = EncryptionStatus::CannotDecrypt(DecryptFailure::Malformed(
                "multipart/encrypted without the two RFC 3156 parts".into(),
            ));
        }
        Top::Plain => fill_body(&mut opened, &outer),
    }
    Ok(opened)
}

/// What the top of a message is.
enum Top<'m> {
    /// RFC 3156 encrypted: the ciphertext of the second part.
    PgpMime(&'m [u8]),
    /// `multipart/encrypted` that does not have the RFC 3156 shape.
    MalformedPgpMime,
    /// A single text/plain body that is one armored PGP MESSAGE and nothing else.
    Inline(&'m str),
    /// RFC 3156 signed: the raw bytes of the signed entity, and the signature.
    Signed {
        content: &'m [u8],
        signature: &'m [u8],
    },
    /// Anything else.
    Plain,
}

fn top_layer<'m>(msg: &'m Message<'m>, root: &'m MessagePart<'m>) -> Top<'m> {
    let Some(ct) = root.content_type() else {
        return inline_or_plain(msg, root);
    };
    let subtype = ct.subtype().unwrap_or_default();
    let protocol = ct.attribute("protocol").unwrap_or_default();
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if is(ct.ctype(), "multipart") && is(subtype, "encrypted") {
        if !is(protocol, "application/pgp-encrypted") {
            return Top::Plain;
        }
        let parts = child_parts(msg, root);
        return match parts.as_slice() {
            [version, data]
                if version.is_content_type("application", "pgp-encrypted")
                    && data.is_content_type("application", "octet-stream") =>
            {
                Top::PgpMime(data.contents())
            }
            _ => Top::MalformedPgpMime,
        };
    }
    if is(ct.ctype(), "multipart") && is(subtype, "signed") {
        if !is(protocol, "application/pgp-signature") {
            return Top::Plain;
        }
        let parts = child_parts(msg, root);
        if let [content, signature] = parts.as_slice()
            && signature.is_content_type("application", "pgp-signature")
        {
            let start = usize::try_from(content.offset_header).unwrap_or(usize::MAX);
            let end = usize::try_from(content.offset_end).unwrap_or(0);
            if let Some(bytes) = msg.raw_message.get(start..end) {
                return Top::Signed {
                    content: bytes,
                    signature: signature.contents(),
                };
            }
        }
        return Top::Plain;
    }
    if is(ct.ctype(), "text") && is(subtype, "plain") {
        return inline_or_plain(msg, root);
    }
    Top::Plain
}

/// Old inline PGP: the root is a single text body consisting of exactly one armored
/// message, with nothing (but whitespace) before or after it.
fn inline_or_plain<'m>(msg: &'m Message<'m>, root: &'m MessagePart<'m>) -> Top<'m> {
    const BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
    const END: &str = "-----END PGP MESSAGE-----";
    if msg.parts.len() != 1 {
        return Top::Plain;
    }
    let PartType::Text(text) = &root.body else {
        return Top::Plain;
    };
    let trimmed = text.trim();
    let single_block = trimmed.starts_with(BEGIN)
        && trimmed.ends_with(END)
        && trimmed.matches(BEGIN).count() == 1
        && trimmed.matches(END).count() == 1;
    if single_block {
        Top::Inline(trimmed)
    } else {
        Top::Plain
    }
}

fn child_parts<'m>(msg: &'m Message<'m>, part: &'m MessagePart<'m>) -> Vec<&'m MessagePart<'m>> {
    part.sub_parts()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| msg.parts.get(usize::try_from(*id).unwrap_or(usize::MAX)))
        .collect()
}

/// Copies the displayable content of `msg` into `opened`: every inline text part (HTML
/// only converted to text when there is no plain text), the first HTML part, and the
/// attachments.
fn fill_body(opened: &mut OpenedMail, msg: &Message<'_>) {
    let part = |id: &u32| msg.parts.get(usize::try_from(*id).unwrap_or(usize::MAX));
    let texts: Vec<&str> = msg
        .text_body
        .iter()
        .filter_map(part)
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    let html = msg
        .html_body
        .iter()
        .filter_map(part)
        .find_map(|p| match &p.body {
            PartType::Html(h) => Some(h.to_string()),
            _ => None,
        });
    opened.text = if texts.is_empty() {
        html.as_deref()
            .map(mail_parser::decoders::html::html_to_text)
    } else {
        Some(texts.join("\n"))
    };
    opened.html = html;
    opened.attachments = msg
        .attachments
        .iter()
        .filter_map(part)
        .map(|p| Attachment {
            name: p.attachment_name().map(str::to_owned),
            content_type: p
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            data: p.contents().to_vec(),
        })
        .collect();
}

/// Parses a message, refusing absurd part counts.
fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default()
        .parse(raw)
        .filter(|m| !m.parts.is_empty() && m.parts.len() <= MAX_MIME_PARTS)
}

fn mailboxes(address: Option<&mail_parser::Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| {
                    Some(Mailbox {
                        name: addr.name.as_ref().map(|n| n.to_string()),
                        address: addr.address.as_ref()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// MIME content is signed in canonical form: every line ending CRLF.
fn crlf(data: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = data
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || data.get(i - 1) != Some(&b'\r')));
    if !bare_lf {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut previous = 0u8;
    for &b in data {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_cannot_inject_headers() {
        assert_eq!(media_type("application/pdf"), "application/pdf");
        assert_eq!(media_type("image/svg+xml"), "image/svg+xml");
        assert_eq!(
            media_type("text/plain\r\nX-Evil: 1"),
            "application/octet-stream"
        );
        assert_eq!(media_type("text/plain; a=b"), "application/octet-stream");
        assert_eq!(media_type("nonsense"), "application/octet-stream");
        assert_eq!(media_type("/"), "application/octet-stream");
    }

    #[test]
    fn crlf_canonicalises_bare_line_feeds_only() {
        assert_eq!(crlf(b"a\r\nb").as_ref(), b"a\r\nb");
        assert!(matches!(crlf(b"a\r\nb"), Cow::Borrowed(_)));
        assert_eq!(crlf(b"a\nb\r\nc\n").as_ref(), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(b"\n").as_ref(), b"\r\n");
    }
}
