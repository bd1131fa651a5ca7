//! PGP/MIME mail (RFC 3156) with protected headers: building an encrypted message
//! ([`encrypt_mail`]) or a signed-only one ([`sign_mail`]), and opening any message under
//! the EFAIL rules. MIME is parsed by `mail-parser` and written
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
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::HashAlgorithm;
use sequoia_openpgp::{Cert, Packet, PacketPile};

use crate::autocrypt::{self, AutocryptKey, PreferEncrypt};
use crate::message::{self, OpenContext, SigCheck, SignatureStatus};
use crate::{DecryptFailure, KeyPair, PgpError, transfer};

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

/// A message to send, encrypted ([`encrypt_mail`]) or signed only ([`sign_mail`]).
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// The sender.
    pub from: Mailbox,
    /// Primary recipients.
    pub to: Vec<Mailbox>,
    /// Copy recipients.
    pub cc: Vec<Mailbox>,
    /// The real subject: inside the encrypted part only, when encrypted (outside it is
    /// [`PLACEHOLDER_SUBJECT`]); both outside and inside the signed part when signed.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An optional HTML alternative.
    pub html: Option<String>,
    /// Attachments; they travel inside the encrypted or signed part.
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
    check_from(mail, sender, now)?;
    let inner = inner_entity(mail, Leaves::Auto);
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
    envelope(mail, PLACEHOLDER_SUBJECT, sender, now)?
        .body(body)
        .write_to_vec()
        .map_err(|e| PgpError::Mime(e.to_string()))
}

/// Builds a complete RFC 5322 message signed but not encrypted (RFC 3156 §5):
/// From/To/Cc/Date/Message-ID/In-Reply-To/Subject/Autocrypt outside, and a
/// `multipart/signed; micalg=...; protocol="application/pgp-signature"` body. Its first
/// part is the signed entity, the same `multipart/mixed; protected-headers="v1"` entity
/// that [`encrypt_mail`] encrypts (real headers, text, HTML, attachments); its second
/// part is the detached, armored signature by `sender`'s signing key over exactly the
/// bytes of the first part, headers included, with CRLF line endings. `micalg` names the
/// hash the signature really uses.
///
/// Everything in the signed entity is 7-bit with CRLF line endings and short lines:
/// text is quoted-printable (trailing white space, `From ` and a leading `.` encoded),
/// attachments base64, so no transport changes a signed byte. The CRLF in front of the
/// closing boundary is the boundary's, not the entity's (RFC 2046 §5.1.1), so every
/// reader agrees on what was signed.
///
/// Refuses a From address that is not bound to `sender` ([`PgpError::FromNotBound`]):
/// its recipients would see a bad signature.
///
/// ```
/// use std::time::SystemTime;
/// use sealpost_pgp::{EncryptionStatus, KeyPair, Mailbox, OpenContext, OutgoingMail,
///     SignatureStatus, open_mail, sign_mail};
///
/// let now = SystemTime::now();
/// let alice = KeyPair::generate("Alice", &["alice@example.org"], now)?;
/// let mail = OutgoingMail {
///     from: Mailbox::new("Alice", "alice@example.org"),
///     to: vec![Mailbox::new("Bob", "bob@example.org")],
///     cc: vec![],
///     subject: "Minutes".into(),
///     text: "Signed, not sealed.".into(),
///     html: None,
///     attachments: vec![],
///     date: 1_700_000_000,
///     message_id: "2@example.org".into(),
///     in_reply_to: None,
///     autocrypt: None,
/// };
/// let raw = sign_mail(&mail, &alice, now)?;
/// assert!(String::from_utf8_lossy(&raw).contains("Subject: Minutes"));
///
/// let known = [alice.cert()];
/// let opened = open_mail(&raw, &OpenContext::new(&[], &known, now))?;
/// assert_eq!(opened.encryption, EncryptionStatus::NotEncrypted);
/// assert_eq!(opened.signature, SignatureStatus::ValidUnconfirmed { signer: alice.fingerprint() });
/// # Ok::<(), sealpost_pgp::PgpError>(())
/// ```
pub fn sign_mail(
    mail: &OutgoingMail,
    sender: &KeyPair,
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    check_from(mail, sender, now)?;
    let mut entity: Vec<u8> = Vec::new();
    inner_entity(mail, Leaves::TransportSafe).write_part(&mut entity);
    let signed = match entity.strip_suffix(b"\r\n") {
        Some(without_crlf) => without_crlf.to_vec(),
        None => entity,
    };
    // Checked, not assumed: mail-builder writes the headers.
    if !transfer::transport_safe(&signed) {
        return Err(PgpError::Mime(
            "the signed entity would not survive transport unchanged".into(),
        ));
    }
    let signature = message::sign_detached(&signed, sender, now)?;
    let micalg = micalg(&signature)?;

    let body = MimePart::new(
        BuilderContentType::new("multipart/signed")
            .attribute("micalg", micalg)
            .attribute("protocol", "application/pgp-signature"),
        vec![
            MimePart::raw(signed),
            MimePart::new(
                BuilderContentType::new("application/pgp-signature")
                    .attribute("name", "signature.asc"),
                crlf(&signature).into_owned(),
            )
            .transfer_encoding("7bit")
            .header("Content-Description", Raw::new("OpenPGP digital signature"))
            .attachment("signature.asc"),
        ],
    );
    envelope(mail, &mail.subject, sender, now)?
        .body(body)
        .write_to_vec()
        .map_err(|e| PgpError::Mime(e.to_string()))
}

/// Refuses a From address that is not a User ID of `sender`'s key at `now`.
fn check_from(mail: &OutgoingMail, sender: &KeyPair, now: SystemTime) -> Result<(), PgpError> {
    let from = mail.from.address.trim();
    if sender
        .addresses(now)
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from))
    {
        Ok(())
    } else {
        Err(PgpError::FromNotBound(mail.from.address.clone()))
    }
}

/// The outer headers: From, Subject `subject`, Date, Message-ID, To, Cc, In-Reply-To and
/// References, and the Autocrypt header when asked for.
fn envelope<'a>(
    mail: &'a OutgoingMail,
    subject: &'a str,
    sender: &KeyPair,
    now: SystemTime,
) -> Result<MessageBuilder<'a>, PgpError> {
    let mut builder = MessageBuilder::new()
        .from(address(&mail.from))
        .subject(subject)
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
    Ok(builder)
}

/// The RFC 3156 `micalg` value for the hash an armored signature used (the OpenPGP text
/// names of RFC 9580 §9.5, lower case, prefixed `pgp-`).
fn micalg(armored_signature: &[u8]) -> Result<&'static str, PgpError> {
    let pile = PacketPile::from_bytes(armored_signature).map_err(PgpError::openpgp)?;
    let hash = pile
        .descendants()
        .find_map(|p| match p {
            Packet::Signature(sig) => Some(sig.hash_algo()),
            _ => None,
        })
        .ok_or_else(|| PgpError::OpenPgp("no signature was made".into()))?;
    match hash {
        HashAlgorithm::SHA256 => Ok("pgp-sha256"),
        HashAlgorithm::SHA384 => Ok("pgp-sha384"),
        HashAlgorithm::SHA512 => Ok("pgp-sha512"),
        HashAlgorithm::SHA224 => Ok("pgp-sha224"),
        HashAlgorithm::SHA3_256 => Ok("pgp-sha3-256"),
        HashAlgorithm::SHA3_512 => Ok("pgp-sha3-512"),
        HashAlgorithm::SHA1 => Ok("pgp-sha1"),
        HashAlgorithm::RipeMD => Ok("pgp-ripemd160"),
        other => Err(PgpError::OpenPgp(format!(
            "no micalg name for the hash {other}"
        ))),
    }
}

/// How the leaves of an entity are transfer-encoded.
#[derive(Debug, Clone, Copy)]
enum Leaves {
    /// As mail-builder chooses (`7bit`, quoted-printable or base64): inside encryption,
    /// no transport can change them.
    Auto,
    /// Text quoted-printable, everything else base64 (`transfer.rs`): a signed entity
    /// travels in the clear and must arrive byte for byte.
    TransportSafe,
}

/// A text leaf (`text/plain`, `text/html`) in UTF-8.
fn text_leaf<'a>(media: &'a str, text: &'a str, leaves: Leaves) -> MimePart<'a> {
    match leaves {
        Leaves::Auto => MimePart::new(media, text),
        Leaves::TransportSafe => MimePart::new(
            BuilderContentType::new(media).attribute("charset", "utf-8"),
            transfer::quoted_printable(text.as_bytes()),
        )
        .transfer_encoding("quoted-printable"),
    }
}

/// A leaf of bytes (an attachment).
fn data_leaf<'a>(
    content_type: BuilderContentType<'a>,
    data: &'a [u8],
    leaves: Leaves,
) -> MimePart<'a> {
    match leaves {
        Leaves::Auto => MimePart::new(content_type, data),
        Leaves::TransportSafe => {
            MimePart::new(content_type, transfer::base64_lines(data)).transfer_encoding("base64")
        }
    }
}

/// The entity that gets encrypted or signed: protected headers on a `multipart/mixed`
/// root.
fn inner_entity(mail: &OutgoingMail, leaves: Leaves) -> MimePart<'_> {
    let text = text_leaf("text/plain", mail.text.as_str(), leaves);
    let content = match &mail.html {
        Some(html) => MimePart::new(
            "multipart/alternative",
            vec![text, text_leaf("text/html", html.as_str(), leaves)],
        ),
        None => text,
    };
    let mut parts = vec![content];
    for a in &mail.attachments {
        let part = data_leaf(
            BuilderContentType::new(media_type(&a.content_type)),
            a.data.as_slice(),
            leaves,
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
