//! Words for the search index and their keyed hashes (see the module docs of [`super`]).

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sealpost_crypto::SecretBytes;
use sha2::Sha256;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Longest word indexed, in characters; longer runs are cut (base64 blobs, URLs).
const MAX_WORD_CHARS: usize = 64;
/// Domain separation for the two uses of the search key.
const WORD_LABEL: &[u8] = b"sealpost/v1/search/word\0";
const MESSAGE_ID_LABEL: &[u8] = b"sealpost/v1/search/message-id\0";

/// The distinct words of `text`: NFKC, lower case, runs of letters and digits.
pub(crate) fn words(text: &str) -> BTreeSet<String> {
    // NFKC leaves ASCII, and text already in NFKC, as it is; checking costs far less
    // than normalising (most of the time spent indexing a message was here).
    let normal: String = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().flat_map(char::to_lowercase).collect()
    } else {
        text.nfkc().flat_map(char::to_lowercase).collect()
    };
    normal
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// `key` set up for `label`: cloned for each value, so the key schedule and the label
/// are hashed once, not once per word.
fn keyed(key: &SecretBytes<32>, label: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length; a 32-byte key cannot fail.
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose()).ok()?;
    m.update(label);
    Some(m)
}

/// The first 128 bits of the MAC of `value`, hex.
fn finish(mut m: Hmac<Sha256>, value: &[u8]) -> String {
    m.update(value);
    let out = m.finalize().into_bytes();
    let mut s = String::with_capacity(32);
    for b in out.iter().take(16) {
        // Both halves are below 16: `from_digit` always has a digit for them.
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    s
}

fn mac(key: &SecretBytes<32>, label: &[u8], value: &[u8]) -> String {
    keyed(key, label).map_or_else(String::new, |m| finish(m, value))
}

/// The index token of one (normalised) word: HMAC-SHA256 truncated to 128 bits, hex.
pub(crate) fn token(key: &SecretBytes<32>, word: &str) -> String {
    mac(key, WORD_LABEL, word.as_bytes())
}

/// [`token`] of each word, the key set up once.
pub(crate) fn tokens<'a>(
    key: &SecretBytes<32>,
    words: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let Some(m) = keyed(key, WORD_LABEL) else {
        return Vec::new();
    };
    words
        .into_iter()
        .map(|w| finish(m.clone(), w.as_bytes()))
        .collect()
}

/// The stored form of a Message-ID: equal ids can be matched, the id cannot be read.
pub(crate) fn message_id_hash(key: &SecretBytes<32>, message_id: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    mac(key, MESSAGE_ID_LABEL, id.as_bytes())
}

/// The text of an HTML body without its tags (for indexing only, never for display).
pub(crate) fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_normalised_and_distinct() {
        let w = words("Meet me at the ＭＥＥＴING point: meet-up, café CAFÉ");
        let v: Vec<&str> = w.iter().map(String::as_str).collect();
        assert_eq!(
            v,
            ["at", "café", "me", "meet", "meeting", "point", "the", "up"]
        );
    }

    #[test]
    fn tokens_depend_on_the_key_and_hide_the_word() {
        let a = SecretBytes::new([1u8; 32]);
        let b = SecretBytes::new([2u8; 32]);
        assert_eq!(token(&a, "secret"), token(&a, "secret"));
        assert_ne!(token(&a, "secret"), token(&b, "secret"));
        assert_ne!(token(&a, "secret"), message_id_hash(&a, "secret"));
        assert_eq!(token(&a, "secret").len(), 32);
        assert!(!token(&a, "secret").contains("secret"));
        assert_eq!(message_id_hash(&a, "<x@y>"), message_id_hash(&a, "x@y"));
    }

    #[test]
    fn the_fast_paths_give_what_normalising_gives() {
        for text in [
            "Plain ASCII Text, with CAPS and digits 42",
            "café Straße ＭＥＥＴＩＮＧ ① ﬁne Ǆ",
            "already nfkc: ελληνικά русский",
        ] {
            let slow: String = text.nfkc().flat_map(char::to_lowercase).collect();
            let slow: BTreeSet<String> = slow
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
                .collect();
            assert_eq!(words(text), slow, "{text}");
        }
        let key = SecretBytes::new([7u8; 32]);
        let w = words("alpha beta gamma");
        let each: Vec<String> = w.iter().map(|x| token(&key, x)).collect();
        assert_eq!(tokens(&key, &w), each);
    }

    #[test]
    fn tags_are_dropped() {
        assert_eq!(words(&strip_tags("<p>Hello <b>world</b></p>")).len(), 2);
    }
}
