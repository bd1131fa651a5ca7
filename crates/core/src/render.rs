//! Mail HTML made safe to show, before it leaves Rust.
//!
//! The UI shows mail HTML only in an iframe sandboxed without scripts and without
//! same-origin, under `default-src 'none'`; this module is the layer before that: the
//! HTML is cleaned by ammonia (an allow-list HTML5 sanitiser built on html5ever, the
//! parser of Servo), so what reaches the web side has no scripts, event handlers, forms,
//! frames, `<base>`, `<meta>` or `<link>`, and no URL that the frame could load from the
//! network unless the user allowed remote content from the sender.
//!
//! Remote content (an image, a CSS background from `http(s)://`) is how a sender learns
//! that, when and where a mail was read. It is removed unless allowed, and the caller is
//! told that something was removed, so the reader can offer "Allow from this sender".
//! `cid:` images are dropped (they would need the message's parts to be served, which
//! the frame cannot reach); `data:` images stay.
//!
//! Links cannot be followed inside the frame (no scripts, no popups, no top navigation);
//! they are collected here, and the app's own chrome lists them and opens one in the
//! system browser only after the user confirms.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Mail HTML after cleaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanHtml {
    /// The cleaned HTML (a body fragment).
    pub html: String,
    /// Remote content was removed.
    pub remote_blocked: bool,
    /// The `http(s)` and `mailto` links, in order of appearance, without repeats.
    pub links: Vec<String>,
}

/// Tags a mail's layout uses, beyond ammonia's defaults (which already exclude
/// `script`, `style`, `iframe`, `object`, `form`, `input`, `base`, `meta`, `link`).
const EXTRA_TAGS: &[&str] = &["center", "font"];

/// Attributes allowed on every tag, beyond ammonia's (`lang`, `title`).
const GENERIC_ATTRIBUTES: &[&str] = &[
    "style",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "color",
    "dir",
    "border",
    "cellpadding",
    "cellspacing",
    "colspan",
    "rowspan",
    "face",
    "size",
    "class",
];

/// Cleans `html`. With `allow_remote`, `http(s)` images and CSS URLs stay (the frame's
/// policy must then allow them too); without, they are removed.
pub fn clean_html(html: &str, allow_remote: bool) -> CleanHtml {
    let blocked = Arc::new(AtomicBool::new(false));
    let links = Arc::new(Mutex::new(Vec::<String>::new()));
    let cleaned = {
        let (b, l) = (Arc::clone(&blocked), Arc::clone(&links));
        let mut builder = ammonia::Builder::default();
        builder
            .add_tags(EXTRA_TAGS)
            .add_generic_attributes(GENERIC_ATTRIBUTES)
            .add_tag_attributes("img", &["src", "alt", "width", "height"])
            .url_schemes(HashSet::from(["http", "https", "mailto", "data"]))
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer nofollow"))
            .strip_comments(true)
            .attribute_filter(move |element, attribute, value| {
                filter_attribute(element, attribute, value, allow_remote, &b, &l)
            });
        builder.clean(html).to_string()
    };
    CleanHtml {
        html: cleaned,
        remote_blocked: blocked.load(Ordering::Relaxed),
        links: dedup(links.lock().map(|l| l.clone()).unwrap_or_default()),
    }
}

fn filter_attribute<'a>(
    element: &str,
    attribute: &str,
    value: &'a str,
    allow_remote: bool,
    blocked: &AtomicBool,
    links: &Mutex<Vec<String>>,
) -> Option<Cow<'a, str>> {
    let lower = value.trim().to_ascii_lowercase();
    match (element, attribute) {
        ("a", "href") => {
            if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
            {
                if let Ok(mut l) = links.lock() {
                    l.push(value.trim().to_owned());
                }
                Some(Cow::Borrowed(value))
            } else {
                // `data:` and anything else is no link to follow.
                None
            }
        }
        (_, "src") | (_, "background") => {
            if lower.starts_with("data:image/") && !lower.starts_with("data:image/svg") {
                Some(Cow::Borrowed(value))
            } else if lower.starts_with("http://") || lower.starts_with("https://") {
                if allow_remote {
                    Some(Cow::Borrowed(value))
                } else {
                    blocked.store(true, Ordering::Relaxed);
                    None
                }
            } else {
                None
            }
        }
        (_, "style") => {
            let plain =
                !lower.contains("url(") && !lower.contains("expression(") && !lower.contains('\\');
            if plain || (allow_remote && !lower.contains("expression(")) {
                Some(Cow::Borrowed(value))
            } else {
                if lower.contains("http") {
                    blocked.store(true, Ordering::Relaxed);
                }
                // A style with a URL is dropped whole: CSS escapes make partial
                // rewriting easy to get wrong.
                None
            }
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// The `http(s)` links in plain text, in order, without repeats.
pub fn text_links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')) {
        let lower = word.to_ascii_lowercase();
        let Some(start) = lower.find("https://").or_else(|| lower.find("http://")) else {
            continue;
        };
        let Some(tail) = word.get(start..) else {
            continue;
        };
        let link = tail.trim_end_matches(['.', ',', ')', ';', ':', '!', '?', '\'']);
        if link.len() > "https://".len() {
            found.push(link.to_owned());
        }
    }
    dedup(found)
}

fn dedup(links: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    links
        .into_iter()
        .filter(|l| seen.insert(l.clone()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_forms_and_frames_are_removed() {
        let out = clean_html(
            r#"<p onclick="steal()">Hi<script>alert(1)</script></p>
               <iframe src="https://evil.example/"></iframe>
               <form action="https://evil.example/"><input name=p></form>
               <a href="javascript:alert(1)">x</a><base href="https://evil.example/">
               <meta http-equiv="refresh" content="0;url=https://evil.example/">
               <style>body{background:url(https://evil.example/t.png)}</style>"#,
            false,
        );
        for bad in [
            "script",
            "onclick",
            "iframe",
            "form",
            "input",
            "javascript",
            "base",
            "meta",
            "evil",
        ] {
            assert!(!out.html.contains(bad), "{bad} survived: {}", out.html);
        }
        assert!(out.html.contains("Hi"));
    }

    #[test]
    fn remote_images_are_blocked_unless_allowed() {
        let html = r#"<img src="https://tracker.example/p.gif" alt="pixel"><img src="data:image/png;base64,iVBORw0KGgo=">"#;
        let blocked = clean_html(html, false);
        assert!(blocked.remote_blocked);
        assert!(!blocked.html.contains("tracker.example"));
        assert!(blocked.html.contains("data:image/png"));

        let allowed = clean_html(html, true);
        assert!(!allowed.remote_blocked);
        assert!(allowed.html.contains("https://tracker.example/p.gif"));
    }

    #[test]
    fn css_urls_count_as_remote_content() {
        // (A `<td>` outside a table would be dropped by the HTML parser before any filter.)
        let html =
            r#"<div style="background-image: url('https://tracker.example/bg.png')">x</div>"#;
        let out = clean_html(html, false);
        assert!(out.remote_blocked);
        assert!(!out.html.contains("tracker"));
        // Plain styles stay.
        let plain = clean_html(r#"<p style="color: red">x</p>"#, false);
        assert!(plain.html.contains("color: red"));
        assert!(!plain.remote_blocked);
    }

    #[test]
    fn svg_and_cid_images_are_dropped_without_counting_as_remote() {
        let out = clean_html(
            r#"<img src="cid:part1@x"><img src="data:image/svg+xml;base64,PHN2Zz4=">"#,
            false,
        );
        assert!(!out.html.contains("cid:"));
        assert!(!out.html.contains("svg"));
        assert!(!out.remote_blocked);
    }

    #[test]
    fn links_are_collected_once_and_marked_noopener() {
        let out = clean_html(
            r#"<a href="https://example.org/a">a</a> <a href="https://example.org/a">again</a>
               <a href="mailto:bob@example.org?subject=x">mail</a> <a href="ftp://x">ftp</a>"#,
            false,
        );
        assert_eq!(
            out.links,
            ["https://example.org/a", "mailto:bob@example.org?subject=x"]
        );
        assert!(out.html.contains("noopener"));
        assert!(!out.html.contains("ftp://"));
    }

    #[test]
    fn links_in_text_are_found_without_trailing_punctuation() {
        assert_eq!(
            text_links("See https://example.org/x. Or (http://a.example/b), <https://c.example>"),
            [
                "https://example.org/x",
                "http://a.example/b",
                "https://c.example"
            ]
        );
        assert!(text_links("no links, just https:// alone").is_empty());
    }
}
