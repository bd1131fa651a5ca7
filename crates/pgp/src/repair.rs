//! Reading signature packets and certificates the way RFC 9580 asks: what is unknown is
//! skipped, and a signature whose *unhashed* area carries a subpacket Sequoia 2.4.2
//! cannot parse is still read.
//!
//! The unhashed area is not covered by the signature: it only holds hints (issuer key
//! ID, issuer fingerprint). Sequoia refuses a whole signature packet when such a hint is
//! malformed, for example an issuer fingerprint subpacket that claims version 6 but has
//! the wrong length (the OpenPGP interoperability suite sends these, as may a future
//! implementation). [`repair_signature`] drops exactly those malformed hints and parses
//! the packet again; nothing in the hashed area is touched, so no signature is made
//! valid that was not. Signature packets of an unknown version are skipped.

use sequoia_openpgp as openpgp;

use openpgp::cert::CertParser;
use openpgp::packet::{Signature, Tag, Unknown};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::{Cert, Packet};

/// Subpacket tags: issuer key ID and issuer fingerprint (RFC 9580 §5.2.3.7).
const ISSUER: u8 = 16;
const ISSUER_FINGERPRINT: u8 = 33;

/// A signature packet that did not parse, parsed again without its malformed unhashed
/// issuer hints. `None` when it still does not parse or is of an unknown version.
pub(crate) fn repair_signature(unknown: &Unknown) -> Option<Signature> {
    if unknown.tag() != Tag::Signature {
        return None;
    }
    let body = unknown.body();
    let version = *body.first()?;
    // Where the hashed area's length sits, and how wide the lengths are.
    let width = match version {
        4 => 2,
        6 => 4,
        _ => return None,
    };
    let hashed_len = be(body.get(4..4 + width)?)?;
    let unhashed_at = 4 + width + hashed_len;
    let unhashed_len = be(body.get(unhashed_at..unhashed_at + width)?)?;
    let unhashed_start = unhashed_at + width;
    let unhashed = body.get(unhashed_start..unhashed_start + unhashed_len)?;
    let kept = keep_wellformed_hints(unhashed)?;
    let mut fixed = Vec::with_capacity(body.len());
    fixed.extend_from_slice(body.get(..unhashed_at)?);
    let kept_len = kept.len().to_be_bytes();
    fixed.extend_from_slice(kept_len.get(kept_len.len() - width..)?);
    fixed.extend_from_slice(&kept);
    fixed.extend_from_slice(body.get(unhashed_start + unhashed_len..)?);
    match Packet::from_bytes(&with_header(&fixed)) {
        Ok(Packet::Signature(sig)) => Some(sig),
        _ => None,
    }
}

/// The unhashed subpackets, without issuer hints whose length does not fit their kind.
fn keep_wellformed_hints(area: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(area.len());
    let mut at = 0;
    while at < area.len() {
        let first = *area.get(at)?;
        let (len, header) = match first {
            0..=191 => (usize::from(first), 1),
            192..=254 => {
                let second = *area.get(at + 1)?;
                (
                    (usize::from(first) - 192) * 256 + usize::from(second) + 192,
                    2,
                )
            }
            255 => (be(area.get(at + 1..at + 5)?)?, 5),
        };
        let whole = area.get(at..at + header + len)?;
        let content = whole.get(header..)?;
        let tag = content.first()? & 0x7f;
        let value = content.get(1..)?;
        let malformed = match tag {
            ISSUER => value.len() != 8,
            ISSUER_FINGERPRINT => match value.first() {
                Some(4) => value.len() != 21,
                Some(6) => value.len() != 33,
                _ => false,
            },
            _ => false,
        };
        if !malformed {
            out.extend_from_slice(whole);
        }
        at += header + len;
    }
    Some(out)
}

/// A big-endian length of two or four bytes.
fn be(bytes: &[u8]) -> Option<usize> {
    let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    usize::try_from(value).ok()
}

/// A new-format packet header for a signature body of this length.
fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0xC0 | 2);
    let len = body.len();
    if len < 192 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else if len < 8384 {
        let rest = len - 192;
        out.push(u8::try_from(rest / 256 + 192).unwrap_or(0));
        out.push(u8::try_from(rest % 256).unwrap_or(0));
    } else {
        out.push(0xFF);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// The top-level packets of `data` (armored or binary), with signature packets repaired
/// where [`repair_signature`] can; any that cannot stay as they are.
pub(crate) fn packets(data: &[u8]) -> openpgp::Result<Vec<Packet>> {
    let mut out = Vec::new();
    let mut ppr = PacketParser::from_bytes(data)?;
    while let PacketParserResult::Some(mut pp) = ppr {
        if let Packet::Unknown(_) = pp.packet {
            // The parser does not keep an unknown packet's body unless asked.
            pp.buffer_unread_content()?;
        }
        let (packet, next) = pp.next()?;
        out.push(match packet {
            Packet::Unknown(u) => match repair_signature(&u) {
                Some(sig) => Packet::Signature(sig),
                None => Packet::Unknown(u),
            },
            other => other,
        });
        ppr = next;
    }
    Ok(out)
}

/// Parses one or more certificates (armored or binary), repairing binding signatures as
/// [`repair_signature`] does. Secret parts are kept if present.
pub(crate) fn certs(data: &[u8]) -> openpgp::Result<Vec<Cert>> {
    CertParser::from_iter(packets(data)?).collect()
}

/// The signature packets of a detached signature (armored or binary), repaired where
/// needed; signatures of an unknown version are skipped. Anything but signatures (and
/// marker or padding packets) is refused.
pub(crate) fn signatures(data: &[u8]) -> Result<Vec<Signature>, String> {
    let mut sigs = Vec::new();
    for packet in packets(data).map_err(|e| e.to_string())? {
        match packet {
            Packet::Signature(sig) => sigs.push(sig),
            Packet::Marker(_) | Packet::Padding(_) => {}
            Packet::Unknown(u) if u.tag() == Tag::Signature => {}
            other => {
                return Err(format!(
                    "expected signatures, found a {} packet",
                    other.tag()
                ));
            }
        }
    }
    Ok(sigs)
}
