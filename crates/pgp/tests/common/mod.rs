//! Fixtures shared by the integration tests: clocks, key pairs, mails, and helpers to
//! take OpenPGP and MIME data apart the way an attacker would.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use sealpost_pgp::{Attachment, KeyPair, Mailbox, OutgoingMail, PreferEncrypt};
use sequoia_openpgp as openpgp;

pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// Real time, in whole seconds, minus one hour: keys made at `t0()` are usable by gpg.
pub fn t0() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs - 3600)
}

pub fn keypair(name: &str, addr: &str, at: SystemTime) -> KeyPair {
    KeyPair::generate(name, &[addr], at).unwrap()
}

pub fn mailbox(k: &str) -> Mailbox {
    let name = k.split('@').next().unwrap();
    Mailbox::new(name, k)
}

pub const SECRET_SUBJECT: &str = "Quarterly numbers: do not leak";
pub const SECRET_TEXT: &str = "The launch is on Tuesday.\nBring the red folder.";

pub fn outgoing(from: &str, to: &[&str]) -> OutgoingMail {
    OutgoingMail {
        from: mailbox(from),
        to: to.iter().map(|a| mailbox(a)).collect(),
        cc: vec![],
        subject: SECRET_SUBJECT.into(),
        text: SECRET_TEXT.into(),
        html: None,
        attachments: vec![],
        date: 1_790_000_000,
        message_id: "m1@sealpost.test".into(),
        in_reply_to: None,
        autocrypt: Some(PreferEncrypt::Mutual),
    }
}

pub fn attachments() -> Vec<Attachment> {
    vec![
        Attachment {
            name: Some("report-q3.pdf".into()),
            content_type: "application/pdf".into(),
            data: (0..=255u8).cycle().take(70_000).collect(),
        },
        Attachment {
            name: Some("notes.txt".into()),
            content_type: "text/plain".into(),
            data: b"line one\r\nline two\r\n".to_vec(),
        },
    ]
}

/// The raw ciphertext (armored) of the second part of a PGP/MIME message.
pub fn pgp_mime_payload(raw: &[u8]) -> Vec<u8> {
    let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
    let root = &msg.parts[0];
    let ids = root.sub_parts().unwrap();
    msg.parts[ids[1] as usize].contents().to_vec()
}

/// Wraps an armored OpenPGP message in a PGP/MIME envelope (RFC 3156), as any client
/// would, with mail-builder.
pub fn wrap_pgp_mime(from: &str, to: &str, armored: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .from(from)
        .to(to)
        .subject("...")
        .date(1_790_000_000i64)
        .message_id("wrapped@sealpost.test")
        .body(pgp_mime_body(armored))
        .write_to_vec()
        .unwrap()
}

pub fn pgp_mime_body(armored: &[u8]) -> MimePart<'static> {
    MimePart::new(
        ContentType::new("multipart/encrypted").attribute("protocol", "application/pgp-encrypted"),
        vec![
            MimePart::new("application/pgp-encrypted", "Version: 1\r\n"),
            MimePart::new(
                "application/octet-stream",
                String::from_utf8(armored.to_vec()).unwrap(),
            )
            .inline(),
        ],
    )
}

/// A plain message with a text body.
pub fn plain_mail(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(subject.to_owned())
        .date(1_790_000_000i64)
        .message_id("plain@sealpost.test")
        .text_body(body.to_owned())
        .write_to_vec()
        .unwrap()
}

/// Binary form of an armored OpenPGP message.
pub fn dearmor(armored: &[u8]) -> Vec<u8> {
    let mut reader =
        openpgp::armor::Reader::from_bytes(armored, openpgp::armor::ReaderMode::Tolerant(None));
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// Armors binary OpenPGP data as a MESSAGE.
pub fn armor(binary: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).unwrap();
    w.write_all(binary).unwrap();
    w.finalize().unwrap()
}

/// A new-format OpenPGP packet with a definite length.
pub fn packet(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xC0 | tag];
    let len = body.len();
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let l = len - 192;
        out.push(((l >> 8) + 192) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push(0xff);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// Splits binary OpenPGP data into (tag, body) for new-format packets; partial body
/// lengths are joined. Panics on anything else (the tests make their own input).
pub fn split_packets(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let ctb = data[i];
        assert!(ctb & 0xC0 == 0xC0, "new-format packets only");
        let tag = ctb & 0x3f;
        i += 1;
        let mut body = Vec::new();
        loop {
            let first = data[i] as usize;
            let (len, hdr, partial) = if first < 192 {
                (first, 1, false)
            } else if first < 224 {
                (((first - 192) << 8) + data[i + 1] as usize + 192, 2, false)
            } else if first == 255 {
                (
                    u32::from_be_bytes(data[i + 1..i + 5].try_into().unwrap()) as usize,
                    5,
                    false,
                )
            } else {
                (1usize << (first & 0x1f), 1, true)
            };
            body.extend_from_slice(&data[i + hdr..i + hdr + len]);
            i += hdr + len;
            if !partial {
                break;
            }
        }
        out.push((tag, body));
    }
    out
}

/// Joins packets again, each with a definite length.
pub fn join_packets(packets: &[(u8, Vec<u8>)]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|(tag, body)| packet(*tag, body))
        .collect()
}

/// The signing or encryption secret of a key pair, as a Sequoia key pair, for tests that
/// build hostile messages by hand.
pub fn sequoia_signer(k: &KeyPair, at: SystemTime) -> openpgp::crypto::KeyPair {
    use openpgp::parse::Parse;
    let tsk = openpgp::Cert::from_bytes(k.to_secret_bytes().unwrap().expose()).unwrap();
    let p = openpgp::policy::StandardPolicy::new();
    tsk.keys()
        .unencrypted_secret()
        .with_policy(&p, at)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap()
}
