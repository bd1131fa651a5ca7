//! Content-Transfer-Encodings for signed MIME (RFC 3156 §3): a signed entity must reach
//! the reader byte for byte, so everything in it is written 7-bit, in lines of at most 76
//! characters, with CRLF line endings, no trailing white space, and no line that a
//! transport might rewrite (`From ` at the start of a line becomes `>From ` in mbox
//! files; a lone `.` ends an SMTP DATA section in a careless relay). Text goes as
//! quoted-printable (RFC 2045 §6.7), everything else as base64 (§6.8).
//!
//! `mail-builder` chooses `7bit` for text that looks safe and does not guard against
//! `From `, so the signed entity's leaves are encoded here and handed to it as they are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The longest encoded line, without its CRLF (RFC 2045 §6.7 rule 5, §6.8).
const MAX_LINE: usize = 76;

/// Input bytes per base64 line: 57 bytes make 76 characters.
const BASE64_LINE_INPUT: usize = 57;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `text` as quoted-printable, every line break (`\n` or `\r\n`) a CRLF. Trailing white
/// space, a leading `.` and a leading `From ` are encoded; a lone CR is kept as `=0D`.
/// The result is ASCII and has no line longer than 76 characters.
pub(crate) fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8 + 8);
    let mut lines = text.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last = lines.peek().is_none();
        // "\r\n" is one line break; the CR goes with it.
        let line = match line.split_last() {
            Some((b'\r', rest)) if !is_last => rest,
            _ => line,
        };
        encode_line(line, &mut out);
        if !is_last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// One hard line of quoted-printable, with soft line breaks as needed.
fn encode_line(line: &[u8], out: &mut Vec<u8>) {
    let mut width = 0usize;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let at_line_start = width == 0;
        let rest = line.get(i..).unwrap_or_default();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !last,
            b'.' => !at_line_start,
            b'F' => !(at_line_start && rest.starts_with(b"From ")),
            33..=126 => true,
            _ => false,
        };
        let token_len = if literal { 1 } else { 3 };
        // Room is left for the `=` of a soft break unless this is the line's last token.
        let limit = if last { MAX_LINE } else { MAX_LINE - 1 };
        if width + token_len > limit {
            out.extend_from_slice(b"=\r\n");
            width = 0;
            // The token now starts a line: `.` and `From ` must be encoded there too.
            if b == b'.' || (b == b'F' && rest.starts_with(b"From ")) {
                push_escaped(b, out);
                width = 3;
                continue;
            }
        }
        if literal {
            out.push(b);
        } else {
            push_escaped(b, out);
        }
        width += token_len;
    }
}

fn push_escaped(b: u8, out: &mut Vec<u8>) {
    out.push(b'=');
    out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
    out.push(HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0'));
}

/// `data` as base64 in CRLF-terminated lines of 76 characters.
pub(crate) fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(BASE64_LINE_INPUT) * (MAX_LINE + 2));
    for chunk in data.chunks(BASE64_LINE_INPUT) {
        out.extend_from_slice(STANDARD.encode(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Whether `data` could pass any transport unchanged: 7-bit, no NUL or lone CR/LF, CRLF
/// line endings, lines of at most 998 characters (RFC 5322 §2.1.1) with no trailing white
/// space, and no line starting with `From ` or consisting of a lone `.`.
pub(crate) fn transport_safe(data: &[u8]) -> bool {
    let body = data.strip_suffix(b"\r\n").unwrap_or(data);
    body.split(|b| *b == b'\n').all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() <= 998
            && line.iter().all(|b| matches!(b, b'\t' | b' '..=b'~'))
            && !matches!(line.last(), Some(b' ' | b'\t'))
            && !line.starts_with(b"From ")
            && line != b"."
    }) && !has_bare_line_break(data)
}

fn has_bare_line_break(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, b)| match b {
        b'\n' => i == 0 || data.get(i - 1) != Some(&b'\r'),
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A small quoted-printable decoder for the round trips (RFC 2045 §6.7).
    fn decode(qp: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < qp.len() {
            match qp[i] {
                b'=' if qp[i + 1..].starts_with(b"\r\n") => i += 3,
                b'=' => {
                    let hex = std::str::from_utf8(&qp[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    fn max_line(data: &[u8]) -> usize {
        data.split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn quoted_printable_guards_what_transports_rewrite() {
        let text = "From here on\n.\ntrailing space \ntab\t\r\nF\n=sign\nünïcödé\rlone CR";
        let qp = quoted_printable(text.as_bytes());
        let qp_text = std::str::from_utf8(&qp).unwrap();
        assert!(transport_safe(&qp), "{qp_text}");
        assert!(qp_text.starts_with("=46rom here on\r\n=2E\r\ntrailing space=20\r\n"));
        assert!(qp_text.contains("tab=09\r\nF\r\n=3Dsign\r\n"));
        assert!(qp_text.contains("=0Dlone CR"));
        let canonical = text.replace("\r\n", "\n").replace('\n', "\r\n");
        assert_eq!(decode(&qp), canonical.as_bytes());
    }

    #[test]
    fn quoted_printable_wraps_at_76_and_encodes_at_every_line_start() {
        for len in 70..160 {
            for filler in ["x", "é", " ", "."] {
                let mut text = filler.repeat(len);
                text.push_str("From me\n");
                text.push_str(&"a".repeat(len));
                text.push(' ');
                let qp = quoted_printable(text.as_bytes());
                assert!(
                    max_line(&qp) <= MAX_LINE,
                    "{}",
                    String::from_utf8_lossy(&qp)
                );
                assert!(transport_safe(&qp), "{}", String::from_utf8_lossy(&qp));
                let canonical = text.replace('\n', "\r\n");
                assert_eq!(decode(&qp), canonical.as_bytes());
            }
        }
        // A soft break right before "From " moves it to a line start: encoded there.
        let text = format!("{}From x", "a".repeat(73));
        let qp = quoted_printable(text.as_bytes());
        assert!(transport_safe(&qp), "{}", String::from_utf8_lossy(&qp));
        assert_eq!(decode(&qp), text.as_bytes());
    }

    #[test]
    fn base64_lines_are_76_characters_with_crlf() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = base64_lines(&data);
        assert!(transport_safe(&encoded));
        assert_eq!(max_line(&encoded), MAX_LINE);
        let joined: Vec<u8> = encoded
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        assert_eq!(STANDARD.decode(joined).unwrap(), data);
        assert!(base64_lines(b"").is_empty());
    }

    #[test]
    fn transport_safety_is_strict() {
        assert!(transport_safe(b"a\r\nb\r\n"));
        assert!(!transport_safe(b"a\nb"));
        assert!(!transport_safe(b"a\rb"));
        assert!(!transport_safe(b"a \r\nb"));
        assert!(!transport_safe(b"x\r\nFrom me\r\n"));
        assert!(!transport_safe(b"x\r\n.\r\ny"));
        assert!(!transport_safe("é".as_bytes()));
        assert!(!transport_safe(b"\0"));
    }
}
