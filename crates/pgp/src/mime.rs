//! The one message model (issue 14): a mail to send ([`OutgoingMail`]) and a mail as read
//! ([`OpenedMail`], made by [`crate::open_mail`] in `open.rs`), and the builders of every
//! message Sealpost sends: encrypted ([`encrypt_mail`], RFC 3156 PGP/MIME with protected
//! headers), signed only ([`sign_mail`], RFC 3156 `multipart/signed`) and plain
//! ([`plain_mail`]). MIME is written by `mail-builder`; nothing here writes MIME by hand.
//! `sealpost-mail` moves these bytes and knows no message model.

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
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::HashAlgorithm;
use sequoia_openpgp::{Cert, Packet, PacketPile};

use crate::autocrypt::{self, AutocryptKey, PreferEncrypt};
use crate::message::SignatureStatus;
use crate::{DecryptFailure, KeyPair, PgpError, transfer};

/// The Subject outside an encrypted message; the real one travels inside.
pub const PLACEHOLDER_SUBJECT: &str = "...";

/// A name and an address, as in a From or To header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any.
    pub name: Option<String>,
    /// The e-mail address.
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a display name.
    pub fn address(address: impl Into<String>) -> Self {
        Self {
            name: None,
            address: address.into(),
        }
    }

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

/// A message to send: encrypted ([`encrypt_mail`]), signed only ([`sign_mail`]) or plain
/// ([`plain_mail`]).
#[derive(Debug, Clone, Default)]
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
    /// The sender (the protected one when present; the first address of the first From
    /// header when there is more than one: see [`OpenedMail::sender_problem`]).
    pub from: Option<Mailbox>,
    /// Why the sender is not one clear address, if it is not. A message with a problem
    /// here is never shown as validly signed ([`crate::BadSignature::NoSender`]).
    pub sender_problem: Option<SenderProblem>,
    /// The To recipients (outer headers).
    pub to: Vec<Mailbox>,
    /// The Cc recipients (outer headers).
    pub cc: Vec<Mailbox>,
    /// The Date header, seconds since the Unix epoch.
    pub date: Option<i64>,
    /// The Message-ID.
    pub message_id: Option<String>,
    /// The text a person sees: of the HTML body when there is one (CSS-hidden text left
    /// out, `html.rs`), else all inline text parts, joined. Replies quote this.
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

/// Why a message's sender is not one clear address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderProblem {
    /// No From header.
    Missing,
    /// A From header without an address in it.
    NoAddress,
    /// Two or more From headers (a reader could show either).
    SeveralFromHeaders,
    /// One From header naming several mailboxes.
    SeveralAddresses,
}

/// Builds a complete RFC 5322 message that is neither encrypted nor signed: the same
/// headers and the same body shape as [`sign_mail`]'s signed entity (text, optional HTML
/// alternative, attachments). With `sender`, and `mail.autocrypt` set, it carries the
/// sender's Autocrypt header, when the key binds the From address (else none rather than
/// a wrong one). `Bcc` is never written: such addresses go in the SMTP envelope only.
pub fn plain_mail(
    mail: &OutgoingMail,
    sender: Option<&KeyPair>,
    now: SystemTime,
) -> Result<Vec<u8>, PgpError> {
    let mut builder = MessageBuilder::new()
        .from(address(&mail.from))
        .subject(mail.subject.as_str())
        .date(BuilderDate::new(mail.date))
        .message_id(mail.message_id.as_str());
    builder = threading(builder, mail);
    if let (Some(prefer), Some(key)) = (mail.autocrypt, sender)
        && let Ok(value) = autocrypt::header_value(key, &mail.from.address, prefer, now)
    {
        builder = builder.header("Autocrypt", Raw::new(value));
    }
    builder
        .body(body_part(mail, Leaves::Auto, false))
        .write_to_vec()
        .map_err(|e| PgpError::Mime(e.to_string()))
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
    let armored = crate::encrypt::encrypt(&plaintext, sender, recipients, now)?;
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
    let signature = crate::encrypt::sign_detached(&signed, sender, now)?;
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
    let builder = MessageBuilder::new()
        .from(address(&mail.from))
        .subject(subject)
        .date(BuilderDate::new(mail.date))
        .message_id(mail.message_id.as_str());
    let mut builder = threading(builder, mail);
    if let Some(prefer) = mail.autocrypt {
        let value = autocrypt::header_value(sender, &mail.from.address, prefer, now)?;
        builder = builder.header("Autocrypt", Raw::new(value));
    }
    Ok(builder)
}

/// To, Cc, In-Reply-To and References.
fn threading<'a>(mut builder: MessageBuilder<'a>, mail: &'a OutgoingMail) -> MessageBuilder<'a> {
    if !mail.to.is_empty() {
        builder = builder.to(address_list(&mail.to));
    }
    if !mail.cc.is_empty() {
        builder = builder.cc(address_list(&mail.cc));
    }
    if let Some(id) = &mail.in_reply_to {
        builder = builder.in_reply_to(id.as_str()).references(id.as_str());
    }
    builder
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
    let mut inner = body_part(mail, leaves, true)
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

/// The body: the text (or a `multipart/alternative` of text and HTML) and the
/// attachments, in a `multipart/mixed` root that is marked `protected-headers="v1"` when
/// `protected` (it then always exists, to carry the headers); a plain message without
/// attachments is the text alone.
fn body_part(mail: &OutgoingMail, leaves: Leaves, protected: bool) -> MimePart<'_> {
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
    if !protected
        && parts.len() == 1
        && let Some(only) = parts.pop()
    {
        return only;
    }
    let mixed = BuilderContentType::new("multipart/mixed");
    MimePart::new(
        if protected {
            mixed.attribute("protected-headers", "v1")
        } else {
            mixed
        },
        parts,
    )
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

/// MIME content is signed in canonical form: every line ending CRLF.
pub(crate) fn crlf(data: &[u8]) -> Cow<'_, [u8]> {
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
