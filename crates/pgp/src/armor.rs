//! ASCII armor for messages, done here rather than by Sequoia's armor reader and writer,
//! which were more than half of the time to encrypt or decrypt a 10 MiB message
//! (`benches/pgp.rs`; a profile showed Sequoia's `base64_filter` and its copy-on-write
//! buffers at 55 % of a decryption). The format is RFC 9580 §6.2: a `BEGIN` line,
//! optional `Key: Value` headers and a blank line, base64 in lines of 64 characters,
//! a CRC-24 line and an `END` line. The CRC line is written although RFC 9580 §6.1 makes it
//! optional: GnuPG 2.2 misreads armor without one when the data is a multiple of 48 bytes
//! (the last line is full, and gpg takes the `END` line for base64: "invalid radix64
//! character 2D"), which the tests check. It is computed eight bytes at a time (slicing
//! tables), so it costs little. When reading, the CRC line is skipped: integrity comes
//! from the encrypted container's MDC or AEAD tag, never from the armor.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END: &[u8] = b"-----END PGP MESSAGE-----";
/// Input bytes per armored line (64 base64 characters).
const LINE_INPUT: usize = 48;

/// `binary` as an armored `PGP MESSAGE`.
pub(crate) fn armor_message(binary: &[u8]) -> Vec<u8> {
    let lines = binary.len().div_ceil(LINE_INPUT);
    let mut out = Vec::with_capacity(BEGIN.len() + END.len() + 4 + lines * 65);
    out.extend_from_slice(BEGIN);
    out.extend_from_slice(b"\n\n");
    let mut line = [0u8; 64];
    for chunk in binary.chunks(LINE_INPUT) {
        // 48 bytes or fewer always fit 64 characters.
        let n = STANDARD.encode_slice(chunk, &mut line).unwrap_or(0);
        out.extend_from_slice(line.get(..n).unwrap_or_default());
        out.push(b'\n');
    }
    let crc = crc24(binary).to_be_bytes();
    out.push(b'=');
    out.extend_from_slice(STANDARD.encode(crc.get(1..).unwrap_or_default()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(END);
    out.push(b'\n');
    out
}

/// CRC-24 tables for eight bytes at a time. The register keeps the 24-bit CRC in its top
/// three bytes, which makes CRC-24 a 32-bit non-reflected CRC with polynomial
/// `0x864CFB00`, so the usual slicing method applies.
const CRC_TABLES: [[u32; 256]; 8] = crc_tables();

// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const fn crc_tables() -> [[u32; 256]; 8] {
    const POLY: u32 = 0x864C_FB00;
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ POLY
            } else {
                c << 1
            };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 24) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

fn table(k: usize, index: u32) -> u32 {
    CRC_TABLES
        .get(k)
        .and_then(|t| t.get((index & 0xFF) as usize))
        .copied()
        .unwrap_or(0)
}

/// The armor checksum of RFC 9580 §6.1.1 (initial value `0xB704CE`).
pub(crate) fn crc24(data: &[u8]) -> u32 {
    let mut c: u32 = 0xB7_04CE << 8;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let hi = u32::from_be_bytes([w[0], w[1], w[2], w[3]]) ^ c;
        let lo = u32::from_be_bytes([w[4], w[5], w[6], w[7]]);
        c = table(7, hi >> 24)
            ^ table(6, hi >> 16)
            ^ table(5, hi >> 8)
            ^ table(4, hi)
            ^ table(3, lo >> 24)
            ^ table(2, lo >> 16)
            ^ table(1, lo >> 8)
            ^ table(0, lo);
    }
    for &b in chunks.remainder() {
        c = (c << 8) ^ table(0, (c >> 24) ^ u32::from(b));
    }
    c >> 8
}

/// The binary message inside an armored `PGP MESSAGE` (leading whitespace allowed), or
/// `None` if `input` is not one. `Err` when it claims to be armored but is broken.
pub(crate) fn dearmor_message(input: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let start = input.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = input.get(start..)?;
    if !rest.starts_with(BEGIN) {
        return None;
    }
    Some(decode_body(rest.get(BEGIN.len()..).unwrap_or_default()))
}

fn decode_body(after_begin: &[u8]) -> Result<Vec<u8>, String> {
    let mut lines = after_begin.split(|&b| b == b'\n');
    // The rest of the BEGIN line must be blank.
    if lines
        .next()
        .is_some_and(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        return Err("garbage after the armor's BEGIN line".into());
    }
    let mut base64 = Vec::with_capacity(after_begin.len());
    let mut in_headers = true;
    let mut ended = false;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(END) {
            ended = true;
            break;
        }
        if in_headers {
            if line.iter().all(u8::is_ascii_whitespace) {
                in_headers = false;
                continue;
            }
            // A `Key: Value` header; a line without ": " is data (some writers leave out
            // the blank line when there are no headers).
            if line.windows(2).any(|w| w == b": ") {
                continue;
            }
            in_headers = false;
        }
        if line.first() == Some(&b'=') && line.len() == 5 {
            // The optional CRC-24 line: the data ends here.
            continue;
        }
        let line = line.trim_ascii_end();
        if line.iter().any(u8::is_ascii_whitespace) {
            base64.extend(line.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        } else {
            base64.extend_from_slice(line);
        }
    }
    if !ended {
        return Err("the armor has no END line".into());
    }
    STANDARD
        .decode(&base64)
        .map_err(|e| format!("the armor's base64 is broken: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// CRC-24 bit by bit, as RFC 9580 §6.1.1 writes it.
    fn crc24_reference(data: &[u8]) -> u32 {
        let mut crc: u32 = 0xB7_04CE;
        for &b in data {
            crc ^= u32::from(b) << 16;
            for _ in 0..8 {
                crc <<= 1;
                if crc & 0x100_0000 != 0 {
                    crc ^= 0x186_4CFB;
                }
            }
        }
        crc & 0xFF_FFFF
    }

    #[test]
    fn the_fast_crc_is_the_rfc_crc() {
        for n in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 131 + 17) as u8).collect();
            assert_eq!(crc24(&data), crc24_reference(&data), "{n} bytes");
        }
        // `printf hello | gpg --enarmor` ends with "=R/WK".
        assert_eq!(STANDARD.encode(&crc24(b"hello").to_be_bytes()[1..]), "R/WK");
    }

    /// GnuPG 2.2 reads what we write, also when the last line is full (the case that
    /// needs the CRC line).
    #[test]
    fn gnupg_dearmors_every_line_length() {
        let home = tempfile::tempdir().unwrap();
        for n in [47usize, 48, 49, 96, 1008, 4800] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 + 5) as u8).collect();
            let mut child = std::process::Command::new("gpg")
                .args(["--batch", "--no-tty", "--homedir"])
                .arg(home.path())
                .arg("--dearmor")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&armor_message(&data))
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, data, "{n} bytes");
        }
    }

    #[test]
    fn armor_round_trips_and_reads_other_writers() {
        for n in [0usize, 1, 47, 48, 49, 1000, 100_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let armored = armor_message(&data);
            assert!(armored.iter().all(u8::is_ascii));
            assert!(
                armored
                    .split(|&b| b == b'\n')
                    .all(|l| l.len() <= 64 || l.starts_with(b"-----"))
            );
            assert_eq!(dearmor_message(&armored).unwrap().unwrap(), data);
        }
        // Headers, CRLF line ends, a CRC line, leading whitespace: as gpg writes them.
        let text = b"\r\n-----BEGIN PGP MESSAGE-----\r\nVersion: GnuPG v2\r\nComment: x\r\n\r\naGVs\r\nbG8=\r\n=R/WK\r\n-----END PGP MESSAGE-----\r\n";
        assert_eq!(dearmor_message(text).unwrap().unwrap(), b"hello");
        // Not armored at all; armored but broken.
        assert!(dearmor_message(b"\x85\x01binary").is_none());
        assert!(
            dearmor_message(b"-----BEGIN PGP MESSAGE-----\n\naGVs")
                .unwrap()
                .is_err()
        );
        assert!(
            dearmor_message(b"-----BEGIN PGP MESSAGE-----\n\na!Vs\n-----END PGP MESSAGE-----\n")
                .unwrap()
                .is_err()
        );
    }
}
