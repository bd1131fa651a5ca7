//! Building and reading messages, with mail-builder and mail-parser (no hand-written
//! MIME).

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as BuilderAddress;
use mail_parser::{MessageParser, MimeHeaders};

use crate::error::{Error, Result};

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name.
    pub name: String,
    /// The MIME type (`application/pdf`).
    pub content_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A plain message to build: who, what, and the threading headers.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Sender: display name (may be empty) and address.
    pub from: (String, String),
    /// Recipients (`To`).
    pub to: Vec<String>,
    /// Recipients (`Cc`).
    pub cc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// An HTML alternative.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// `Message-ID` without angle brackets (`random@example.org`).
    pub message_id: String,
    /// `In-Reply-To` (a reply), without angle brackets.
    pub in_reply_to: Option<String>,
    /// `Date` as Unix seconds (the caller's clock).
    pub date: i64,
    /// The value of an `Autocrypt` header (the sender's key), if one goes out. This
    /// crate knows no keys: the caller makes the value.
    pub autocrypt: Option<String>,
}

/// Builds the RFC 5322 bytes of `draft`. `Bcc` is never written: put those addresses
/// in the SMTP envelope only.
pub fn build(draft: &Draft) -> Result<Vec<u8>> {
    fn addresses(list: &[String]) -> BuilderAddress<'_> {
        BuilderAddress::new_list(
            list.iter()
                .map(|a| BuilderAddress::new_address(None::<&str>, a.as_str()))
                .collect(),
        )
    }
    let (name, addr) = &draft.from;
    let mut builder = MessageBuilder::new()
        .from(BuilderAddress::new_address(
            (!name.is_empty()).then_some(name.as_str()),
            addr.as_str(),
        ))
        .subject(draft.subject.as_str())
        .message_id(draft.message_id.as_str())
        .date(draft.date)
        .text_body(draft.text.as_str());
    if !draft.to.is_empty() {
        builder = builder.to(addresses(&draft.to));
    }
    if !draft.cc.is_empty() {
        builder = builder.cc(addresses(&draft.cc));
    }
    if let Some(html) = &draft.html {
        builder = builder.html_body(html.as_str());
    }
    if let Some(parent) = &draft.in_reply_to {
        builder = builder
            .in_reply_to(parent.as_str())
            .references(parent.as_str());
    }
    for a in &draft.attachments {
        builder = builder.attachment(a.content_type.as_str(), a.name.as_str(), a.data.as_slice());
    }
    if let Some(value) = &draft.autocrypt {
        builder = builder.header(
            "Autocrypt",
            mail_builder::headers::raw::Raw::new(value.as_str()),
        );
    }
    builder
        .write_to_vec()
        .map_err(|e| Error::Mime(e.to_string()))
}

/// What a client shows of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Sender address.
    pub from: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Date` as Unix seconds.
    pub date: Option<i64>,
    /// The first text body (decoded).
    pub text: Option<String>,
    /// The first HTML body (decoded; sanitise before showing).
    pub html: Option<String>,
    /// Attachments (name, type, decoded bytes).
    pub attachments: Vec<Attachment>,
    /// The MIME type of the top part (`multipart/encrypted` for PGP/MIME).
    pub content_type: String,
}

/// Parses RFC 5322 bytes.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| Error::Mime("not a message".into()))?;
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
    };
    let content_type = message
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "text/plain".into())
        .to_ascii_lowercase();
    Ok(ParsedMessage {
        message_id: message.message_id().map(str::to_owned),
        subject: message.subject().map(str::to_owned),
        from: addresses(message.from()).into_iter().next(),
        to: addresses(message.to()),
        date: message.date().map(|d| d.to_timestamp()),
        text: message.body_text(0).map(Cow::into_owned),
        html: message.body_html(0).map(Cow::into_owned),
        attachments: message
            .attachments()
            .map(|part| Attachment {
                name: part.attachment_name().unwrap_or("attachment").to_owned(),
                content_type: part
                    .content_type()
                    .map(|ct| match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_owned(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into()),
                data: part.contents().to_vec(),
            })
            .collect(),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_message_parses_back() {
        let draft = Draft {
            from: ("Alice".into(), "alice@example.org".into()),
            to: vec!["bob@example.org".into(), "carol@example.org".into()],
            subject: "Grüße".into(),
            text: "Hallo Bob,\r\nwie geht's?\r\n".into(),
            html: Some("<p>Hallo</p>".into()),
            attachments: vec![Attachment {
                name: "data.bin".into(),
                content_type: "application/octet-stream".into(),
                data: vec![0, 1, 2, 255],
            }],
            message_id: "m1@example.org".into(),
            in_reply_to: Some("m0@example.org".into()),
            date: 1_700_000_000,
            ..Draft::default()
        };
        let raw = build(&draft).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.to_ascii_lowercase().contains("\nbcc:"));
        let parsed = parse(&raw).unwrap();
        assert_eq!(parsed.subject.as_deref(), Some("Grüße"));
        assert_eq!(parsed.from.as_deref(), Some("alice@example.org"));
        assert_eq!(parsed.to, ["bob@example.org", "carol@example.org"]);
        assert_eq!(parsed.message_id.as_deref(), Some("m1@example.org"));
        assert_eq!(parsed.date, Some(1_700_000_000));
        assert!(parsed.text.unwrap().contains("wie geht's?"));
        assert_eq!(parsed.html.as_deref().map(str::trim), Some("<p>Hallo</p>"));
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].data, [0, 1, 2, 255]);
        assert_eq!(parsed.attachments[0].name, "data.bin");
        assert_eq!(parsed.content_type, "multipart/mixed");
    }

    #[test]
    fn garbage_is_an_error_or_an_empty_message_never_a_panic() {
        for raw in [
            &b""[..],
            b"\xff\xfe",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        ] {
            let _ = parse(raw);
        }
    }
}
