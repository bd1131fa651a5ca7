//! Reading mail: [`open_mail`] turns received bytes into the one message model
//! ([`OpenedMail`]) under the EFAIL and spoofing rules. MIME is parsed by `mail-parser`;
//! nothing here splits MIME by hand.
//!
//! # What is decrypted or verified automatically
//!
//! Only the *top* of a message: the root part being `multipart/encrypted;
//! protocol="application/pgp-encrypted"` or `multipart/signed;
//! protocol="application/pgp-signature"`, or, for old inline mail, a single `text/plain`
//! body that is nothing but one `-----BEGIN PGP MESSAGE-----` block (decrypted) or one
//! `-----BEGIN PGP SIGNED MESSAGE-----` block (verified: the same rules as PGP/MIME,
//! whole body only). An encrypted or signed part anywhere else (beside plain parts,
//! inside HTML, in an attachment) is shown as it is and never stitched with the parts
//! around it; a signed part inside an unsigned message does not make the message signed.
//!
//! # The sender
//!
//! A signature counts only for a message with exactly one From header holding exactly
//! one address (outer, and protected inner when there is one). Anything else is named in
//! [`OpenedMail::sender_problem`] and no signature is ever better than
//! [`crate::BadSignature::NoSender`].
//!
//! # What a person sees
//!
//! When a message has HTML, that is what the reader shows, so [`OpenedMail::text`] is the
//! text a person sees of that HTML ([`crate::html::visible_text`]), never a text/plain
//! alternative the HTML does not show nor text hidden by CSS: a reply quotes `text`, and
//! must not make the user sign or send what they never saw.

use mail_parser::{
    HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::message::{self, OpenContext, SignatureStatus, signature_status};
use crate::mime::{Attachment, EncryptionStatus, Mailbox, OpenedMail, SenderProblem, crlf};
use crate::verify::{self, verify_detached};
use crate::{DecryptFailure, PgpError, autocrypt};

/// The most MIME parts `open_mail` accepts before treating a message as malformed.
const MAX_MIME_PARTS: usize = 10_000;

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
    let sender = Sender::of(&outer);
    let mut opened = OpenedMail {
        subject: outer.subject().map(str::to_owned),
        subject_protected: false,
        from: sender.shown.clone(),
        sender_problem: sender.problem,
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
    let mut from = sender.addresses;
    match top_layer(&outer, root) {
        Top::PgpMime(ciphertext) => open_pgp_mime(&mut opened, ciphertext, &mut from, ctx),
        Top::Inline(armored) => match message::decrypt(armored.as_bytes(), ctx) {
            Ok(decrypted) => {
                opened.encryption = EncryptionStatus::Encrypted;
                opened.signature = decrypted.signature_status(&from, ctx);
                opened.text = Some(String::from_utf8_lossy(&decrypted.plaintext).into_owned());
            }
            Err(failure) => opened.encryption = EncryptionStatus::CannotDecrypt(failure),
        },
        Top::Cleartext(text) => {
            let certs = message::known_certs(ctx);
            match verify::inline_checks(text.as_bytes(), &certs, ctx.now, ctx.max_plaintext) {
                Ok((content, checks)) => {
                    opened.signature = signature_status(&checks, &from, ctx);
                    opened.text = Some(String::from_utf8_lossy(&content).into_owned());
                }
                Err(_) => {
                    opened.signature = SignatureStatus::Bad {
                        reason: crate::BadSignature::Invalid,
                        signer: None,
                    };
                    opened.text = Some(text.to_owned());
                }
            }
        }
        Top::Signed { content, signature } => {
            opened.signature = verify_detached(&crlf(content), signature, &from, ctx);
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

/// The RFC 3156 encrypted case: decrypt, read the protected headers, check the one
/// signature (of the OpenPGP layer, or of a `multipart/signed` right inside it).
fn open_pgp_mime(
    opened: &mut OpenedMail,
    ciphertext: &[u8],
    from: &mut Vec<String>,
    ctx: &OpenContext<'_>,
) {
    let decrypted = match message::decrypt(ciphertext, ctx) {
        Ok(d) => d,
        Err(failure) => {
            opened.encryption = EncryptionStatus::CannotDecrypt(failure);
            return;
        }
    };
    let Some(inner) = parse(&decrypted.plaintext) else {
        opened.encryption = EncryptionStatus::CannotDecrypt(DecryptFailure::BadMime);
        return;
    };
    opened.encryption = EncryptionStatus::Encrypted;
    if let Some(subject) = inner.subject() {
        opened.subject = Some(subject.to_owned());
        opened.subject_protected = true;
    }
    let inner_sender = Sender::of(&inner);
    if inner_sender.problem != Some(SenderProblem::Missing) {
        // A protected From replaces the outer one; both must be bound to the signer.
        opened.from = inner_sender.shown;
        if inner_sender.problem.is_some() {
            opened.sender_problem = inner_sender.problem;
            from.clear();
        } else if !from.is_empty() {
            from.extend(inner_sender.addresses);
        }
    }
    opened.signature = decrypted.signature_status(from, ctx);
    match inner.parts.first().map(|r| top_layer(&inner, r)) {
        // Sign-then-encrypt as two MIME layers (RFC 3156 §6.1): only when the OpenPGP
        // layer carried no signature of its own.
        Some(Top::Signed { content, signature })
            if opened.signature == SignatureStatus::Unsigned =>
        {
            opened.signature = verify_detached(&crlf(content), signature, from, ctx);
            match parse(content) {
                Some(signed) => fill_body(opened, &signed),
                None => fill_body(opened, &inner),
            }
        }
        _ => fill_body(opened, &inner),
    }
}

/// Who a message says sent it.
struct Sender {
    /// The mailbox to show: the first address of the first From header.
    shown: Option<Mailbox>,
    /// The addresses the signer must be bound to: the one address, or none when the
    /// sender is not one clear address.
    addresses: Vec<String>,
    problem: Option<SenderProblem>,
}

impl Sender {
    fn of(msg: &Message<'_>) -> Self {
        let values: Vec<&HeaderValue<'_>> = msg.header_values(HeaderName::From).collect();
        let (entries, first) = match values.first() {
            Some(HeaderValue::Address(a)) => (a.iter().count(), mailboxes(Some(a))),
            _ => (0, Vec::new()),
        };
        let problem = match (values.len(), entries, first.len()) {
            (0, _, _) => Some(SenderProblem::Missing),
            (1, 1, 1) => None,
            (1, _, 0) => Some(SenderProblem::NoAddress),
            (1, _, _) => Some(SenderProblem::SeveralAddresses),
            _ => Some(SenderProblem::SeveralFromHeaders),
        };
        let shown = first.into_iter().next();
        let addresses = match (&problem, &shown) {
            (None, Some(m)) => vec![m.address.clone()],
            _ => Vec::new(),
        };
        Self {
            shown,
            addresses,
            problem,
        }
    }
}

/// What the top of a message is.
enum Top<'m> {
    /// RFC 3156 encrypted: the ciphertext of the second part.
    PgpMime(&'m [u8]),
    /// `multipart/encrypted` that does not have the RFC 3156 shape.
    MalformedPgpMime,
    /// A single text/plain body that is one armored PGP MESSAGE and nothing else.
    Inline(&'m str),
    /// A single text/plain body that is one cleartext-signed block and nothing else.
    Cleartext(&'m str),
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
/// message, or one cleartext-signed block, with nothing (but whitespace) around it.
fn inline_or_plain<'m>(msg: &'m Message<'m>, root: &'m MessagePart<'m>) -> Top<'m> {
    if msg.parts.len() != 1 {
        return Top::Plain;
    }
    let PartType::Text(text) = &root.body else {
        return Top::Plain;
    };
    let trimmed = text.trim();
    let single = |begin: &str, end: &str, markers: &[&str]| {
        trimmed.starts_with(begin)
            && trimmed.ends_with(end)
            && markers.iter().all(|m| trimmed.matches(m).count() == 1)
    };
    const MESSAGE: [&str; 2] = ["-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----"];
    const SIGNED: [&str; 3] = [
        "-----BEGIN PGP SIGNED MESSAGE-----",
        "-----BEGIN PGP SIGNATURE-----",
        "-----END PGP SIGNATURE-----",
    ];
    if single(MESSAGE[0], MESSAGE[1], &MESSAGE) {
        Top::Inline(trimmed)
    } else if single(SIGNED[0], SIGNED[2], &SIGNED) {
        Top::Cleartext(trimmed)
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

/// Copies the displayable content of `msg` into `opened`: the first HTML part and the
/// text a person sees of it, or, without HTML, every inline text part; and the
/// attachments.
fn fill_body(opened: &mut OpenedMail, msg: &Message<'_>) {
    let part = |id: &u32| msg.parts.get(usize::try_from(*id).unwrap_or(usize::MAX));
    let html = msg
        .html_body
        .iter()
        .filter_map(part)
        .find_map(|p| match &p.body {
            PartType::Html(h) => Some(h.to_string()),
            _ => None,
        });
    opened.text = match &html {
        Some(html) => Some(crate::html::visible_text(html)),
        None => {
            let texts: Vec<&str> = msg
                .text_body
                .iter()
                .filter_map(part)
                .filter_map(|p| match &p.body {
                    PartType::Text(t) => Some(t.as_ref()),
                    _ => None,
                })
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
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
