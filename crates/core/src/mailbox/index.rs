//! Words for the search index and their keyed hashes (see the module docs of [`super`]).

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sealpost_crypto::SecretBytes;
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// Longest word indexed, in characters; longer runs are cut (base64 blobs, URLs).
const MAX_WORD_CHARS: usize = 64;
/// Domain separation for the two uses of the search key.
const WORD_LABEL: &[u8] = b"sealpost/v1/search/word\0";
const MESSAGE_ID_LABEL: &[u8] = b"sealpost/v1/search/message-id\0";

/// The distinct words of `text`: NFKC, lower case, runs of letters and digits.
pub(crate) fn words(text: &str) -> BTreeSet<String> {
    let normal: String = text.nfkc().flat_map(char::to_lowercase).collect();
    normal
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

fn mac(key: &SecretBytes<32>, label: &[u8], value: &[u8]) -> String {
    // HMAC takes keys of any length; a 32-byte key cannot fail.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key.expose()) else {
        return String::new();
    };
    m.update(label);
    m.update(value);
    let out = m.finalize().into_bytes();
    out.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The index token of one (normalised) word: HMAC-SHA256 truncated to 128 bits, hex.
pub(crate) fn token(key: &SecretBytes<32>, word: &str) -> String {
    mac(key, WORD_LABEL, word.as_bytes())
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
    fn tags_are_dropped() {
        assert_eq!(words(&strip_tags("<p>Hello <b>world</b></p>")).len(), 2);
    }
}
