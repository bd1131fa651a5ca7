//! Mail HTML made safe to show, before it leaves Rust.
//!
//! The UI shows mail HTML only in an iframe sandboxed without scripts and without
//! same-origin, under `default-src 'none'`; this module is the layer before that: the
//! HTML is cleaned by ammonia (an allow-list HTML5 sanitiser built on html5ever, the
//! parser of Servo), so what reaches the web side has no scripts, event handlers, forms,
//! frames, `<base>`, `<meta>` or `<link>`, and no URL that the frame could load from the
//! network unless the user allowed remote content from the sender.
//!
//! Stylesheets (`<style>` elements, which most newsletters lay themselves out with) are
//! kept, but their text is filtered here too: `@import` rules are removed, every `url()`
//! that is not an inline image or allowed remote content becomes `none`, and a sheet
//! with CSS escapes, `expression()`, bindings or image functions that take bare URL
//! strings is dropped whole (escapes make partial rewriting easy to get wrong). The
//! frame's own policy (`style-src 'unsafe-inline'`, `img-src data:`, `font-src data:`)
//! would block those loads anyway; this layer is what tells the reader they were there.
//!
//! Remote content (an image, a CSS background from `http(s)://`) is how a sender learns
//! that, when and where a mail was read. It is removed unless allowed, and the caller is
//! told that something was removed, so the reader can offer "Allow from this sender".
//! `cid:` images are dropped (they would need the message's parts to be served, which
//! the frame cannot reach); `data:` images stay.
//!
//! What CSS hides is not shown at all: the HTML first goes through
//! `sealpost_pgp::html::visible_html`, which drops the elements a person would not see
//! (`display:none`, `visibility:hidden`, `opacity:0`, a zero size, off-screen), by the
//! same rules that make the reader's text (`OpenedMail::text`, which replies quote). So
//! the frame shows what the text says, and hidden text can be neither seen by surprise
//! (selected, copied) nor quoted.
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
/// `script`, `iframe`, `object`, `form`, `input`, `base`, `meta`, `link`). `style` is
/// kept, its text filtered by [`clean_stylesheets`].
const EXTRA_TAGS: &[&str] = &["center", "font", "style"];

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
            .rm_clean_content_tags(&["style"])
            .add_generic_attributes(GENERIC_ATTRIBUTES)
            .add_tag_attributes("img", &["src", "alt", "width", "height"])
            .url_schemes(HashSet::from(["http", "https", "mailto", "data"]))
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer nofollow"))
            .strip_comments(true)
            .attribute_filter(move |element, attribute, value| {
                filter_attribute(element, attribute, value, allow_remote, &b, &l)
            });
        builder
            .clean(&sealpost_pgp::html::visible_html(html))
            .to_string()
    };
    let html = clean_stylesheets(&cleaned, allow_remote, &blocked);
    CleanHtml {
        html,
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
            let plain = !css_may_load(&lower) && !lower.contains('\\');
            if plain || (allow_remote && !css_is_active(&lower)) {
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

/// CSS that can make the frame load something: a URL function, an import, or an image
/// function that takes a bare URL string.
fn css_may_load(lower: &str) -> bool {
    [
        "url(",
        "@import",
        "image-set(",
        "image(",
        "cross-fade(",
        "src(",
    ]
    .iter()
    .any(|f| lower.contains(f))
}

/// CSS that is code or an old engine's hook rather than style.
fn css_is_active(lower: &str) -> bool {
    ["expression(", "-moz-binding", "behavior", "javascript:"]
        .iter()
        .any(|f| lower.contains(f))
}

/// Filters the text of every `<style>` element in ammonia's output.
///
/// The input is ammonia's serialisation, which is regular: attribute values are always
/// double-quoted with `"` escaped, text outside raw-text elements has `<` escaped, and a
/// `<style>` element's text cannot contain `</style` (the parser ended it there). So a
/// scan that skips quoted values finds exactly the `<style>` elements' text.
fn clean_stylesheets(html: &str, allow_remote: bool, blocked: &AtomicBool) -> String {
    if !html.contains("<style") {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let (text, from_tag) = rest.split_at(lt);
        out.push_str(text);
        let Some(end) = tag_end(from_tag) else {
            // Never the case for ammonia's output; keep nothing unexamined.
            return out;
        };
        let (tag, after) = from_tag.split_at(end);
        out.push_str(tag);
        rest = after;
        let lower_tag = tag.to_ascii_lowercase();
        if lower_tag.starts_with("<style")
            && matches!(lower_tag.as_bytes().get(6), Some(b'>' | b' ' | b'/'))
        {
            let close = rest
                .to_ascii_lowercase()
                .find("</style")
                .unwrap_or(rest.len());
            let (sheet, after_sheet) = rest.split_at(close);
            out.push_str(&clean_css(sheet, allow_remote, blocked));
            rest = after_sheet;
        }
    }
    out.push_str(rest);
    out
}

/// The length of the tag at the start of `s` (through its `>`), skipping quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// One stylesheet's text, filtered (see the module docs).
fn clean_css(css: &str, allow_remote: bool, blocked: &AtomicBool) -> String {
    let lower = css.to_ascii_lowercase();
    let bare_urls = ["image-set(", "image(", "cross-fade(", "src("]
        .iter()
        .any(|f| lower.contains(f));
    if lower.contains('\\') || css_is_active(&lower) || bare_urls || lower.contains('<') {
        if !allow_remote && lower.contains("http") {
            blocked.store(true, Ordering::Relaxed);
        }
        return String::new();
    }
    let mut out = String::with_capacity(css.len());
    let mut at = 0;
    while let Some(found) = next_of(&lower, at, &["@import", "url("]) {
        out.push_str(css.get(at..found).unwrap_or_default());
        let tail = lower.get(found..).unwrap_or_default();
        if tail.starts_with("@import") {
            // Through the rule's `;` (or the end of the sheet).
            let end = tail.find(';').map_or(lower.len(), |i| found + i + 1);
            if !allow_remote && lower.get(found..end).is_some_and(|r| r.contains("http")) {
                blocked.store(true, Ordering::Relaxed);
            }
            at = end;
            continue;
        }
        let (end, target) = url_token(css, found);
        let target_lower = target.to_ascii_lowercase();
        let keep = if target_lower.starts_with("data:image/")
            && !target_lower.starts_with("data:image/svg")
        {
            true
        } else if target_lower.starts_with("http://") || target_lower.starts_with("https://") {
            if !allow_remote {
                blocked.store(true, Ordering::Relaxed);
            }
            allow_remote
        } else {
            false
        };
        if keep {
            out.push_str(css.get(found..end).unwrap_or_default());
        } else {
            out.push_str("none");
        }
        at = end;
    }
    out.push_str(css.get(at..).unwrap_or_default());
    out
}

/// The first position at or after `from` where one of `needles` starts.
fn next_of(haystack: &str, from: usize, needles: &[&str]) -> Option<usize> {
    let tail = haystack.get(from..)?;
    needles
        .iter()
        .filter_map(|n| tail.find(n))
        .min()
        .map(|i| from + i)
}

/// The end of the `url(...)` token starting at `start` (after its `)`, or the end of the
/// sheet) and the URL inside it, unquoted and trimmed. There are no escapes here
/// (sheets with a backslash were dropped before).
fn url_token(css: &str, start: usize) -> (usize, &str) {
    let open = start + "url(".len();
    let inner = css.get(open..).unwrap_or_default();
    let trimmed = inner.trim_start();
    let lead = inner.len() - trimmed.len();
    let (value, value_end) = match trimmed.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let body = trimmed.get(1..).unwrap_or_default();
            let len = body.find(q).unwrap_or(body.len());
            (body.get(..len).unwrap_or_default(), lead + 1 + len + 1)
        }
        _ => {
            let len = trimmed.find(')').unwrap_or(trimmed.len());
            (trimmed.get(..len).unwrap_or_default(), lead + len)
        }
    };
    let after = inner.get(value_end.min(inner.len())..).unwrap_or_default();
    let close = after.find(')').map_or(inner.len(), |i| value_end + i + 1);
    (open + close.min(inner.len()), value.trim())
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
    fn css_hidden_text_is_not_in_the_frame() {
        let out = clean_html(
            r#"<style>.x { display: none }</style><p>Lunch?</p>
               <div class="x">I agree to pay.</div>
               <div style="opacity:0">Wire the money.</div>
               <div style="position:absolute;left:-9999px">Off screen.</div>"#,
            false,
        );
        for hidden in ["I agree", "Wire", "Off screen"] {
            assert!(!out.html.contains(hidden), "{hidden}: {}", out.html);
        }
        assert!(out.html.contains("Lunch?"));
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
    fn stylesheets_are_kept_with_their_remote_urls_and_imports_removed() {
        let html = r#"<html><head><style>
            @import url("https://fonts.example/css?f=Roboto");
            .box { color: #333; background: url('https://tracker.example/bg.png') no-repeat }
            .logo { background-image: url(data:image/png;base64,iVBORw0KGgo=) }
            .part { background: url(cid:part1@x) }
            </style></head><body><div class="box">x</div></body></html>"#;
        let out = clean_html(html, false);
        assert!(out.remote_blocked);
        assert!(out.html.contains("<style>"), "{}", out.html);
        assert!(
            out.html
                .contains(".box { color: #333; background: none no-repeat }")
        );
        assert!(out.html.contains("url(data:image/png;base64,iVBORw0KGgo=)"));
        for gone in ["@import", "fonts.example", "tracker.example", "cid:"] {
            assert!(!out.html.contains(gone), "{gone} survived: {}", out.html);
        }

        let allowed = clean_html(html, true);
        assert!(!allowed.remote_blocked);
        assert!(
            allowed
                .html
                .contains("url('https://tracker.example/bg.png')")
        );
        assert!(
            !allowed.html.contains("@import"),
            "imports are never followed"
        );

        let plain = clean_html("<style>p { margin: 0 }</style><p>x</p>", false);
        assert!(plain.html.contains("<style>p { margin: 0 }</style>"));
        assert!(!plain.remote_blocked);
    }

    #[test]
    fn stylesheets_with_escapes_or_active_content_are_dropped_whole() {
        for sheet in [
            r"p { background: u\72l(https://tracker.example/x) }",
            "p { width: expression(alert(1)) }",
            "p { -moz-binding: url(https://evil.example/x.xml#b) }",
            "p { background-image: image-set('https://tracker.example/x.png' 1x) }",
        ] {
            let out = clean_html(&format!("<style>{sheet}</style><p>x</p>"), false);
            assert!(
                out.html.contains("<style></style>"),
                "{sheet}: {}",
                out.html
            );
            assert!(!out.html.contains("example"), "{sheet}: {}", out.html);
            assert!(out.html.contains("<p>x</p>"));
        }
        // The same in a style attribute: dropped, and noticed as remote content.
        let out = clean_html(
            r#"<p style="background-image: image-set('https://tracker.example/x.png' 1x)">x</p>"#,
            false,
        );
        assert!(out.remote_blocked);
        assert!(!out.html.contains("tracker"));
    }

    #[test]
    fn only_real_style_elements_are_treated_as_css() {
        // `<style>` in an attribute value or in text is not a stylesheet, and a sheet
        // cannot end its element early to smuggle markup.
        let out = clean_html(
            r#"<p title="<style>">a { background: url(https://x.example/) }</p>
               <style>b{}</style><script>alert(1)</script>"#,
            false,
        );
        assert!(
            out.html
                .contains("a { background: url(https://x.example/) }")
        );
        assert!(out.html.contains("<style>b{}</style>"));
        assert!(!out.html.contains("script"));
        assert!(!out.remote_blocked, "text is not remote content");
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
