//! What a person sees of mail HTML: [`visible_text`] for the reader's text (which a reply
//! quotes) and [`visible_html`] for the frame, both without the elements that CSS or HTML
//! hides. Covert-content attacks hide text (`display:none`, `visibility:hidden`,
//! `opacity:0`, a zero size, a position off-screen) so that a user quotes, forwards or
//! signs text they never saw; both functions drop it by the same rules, so what is quoted
//! is what was shown.
//!
//! This is not a CSS engine, and it errs on the side of dropping: a stylesheet rule that
//! hides is applied to every element matching its *last* compound selector (type, class
//! and ID only; attribute selectors, pseudo-classes, combinators and `@media` conditions
//! are ignored, which can only match more elements, never fewer). Rules on
//! pseudo-elements (`::before`) hide no element text and are skipped. Removing
//! what might be visible costs a reply some quoted text; keeping what is hidden would
//! let a sender put words in the user's mouth.
//!
//! Parsing is html5ever's (the HTML5 parser of Servo, the one the app's HTML cleaning
//! uses through ammonia), into its reference DOM (`markup5ever_rcdom`).

use std::rc::Rc;

use html5ever::serialize::{SerializeOpts, TraversalScope};
use html5ever::tendril::TendrilSink;
use html5ever::{ParseOpts, parse_document};
use markup5ever_rcdom::{Handle, NodeData, RcDom, SerializableHandle};

/// Elements whose content is never shown as text.
const NEVER_SHOWN: &[&str] = &[
    "head", "script", "style", "template", "title", "meta", "link", "object", "embed", "svg",
    "math", "audio", "video", "canvas", "select", "datalist",
];

/// Elements that start a new line of text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
];

/// The text a person sees of `html`: hidden elements left out, white space collapsed as
/// a browser does (except in `pre`), a new line per block element and `br`.
pub fn visible_text(html: &str) -> String {
    let dom = parse(html);
    let sheet = Sheet::of(&dom.document);
    let mut out = String::new();
    text_of(&dom.document, &sheet, false, &mut out);
    tidy(&out)
}

/// `html` without the elements a person does not see (serialized again), for the frame
/// to show exactly what [`visible_text`] returns. Stylesheets stay for the layout.
pub fn visible_html(html: &str) -> String {
    let dom = parse(html);
    let sheet = Sheet::of(&dom.document);
    prune(&dom.document, &sheet);
    let mut out = Vec::new();
    let opts = SerializeOpts {
        traversal_scope: TraversalScope::ChildrenOnly(None),
        ..SerializeOpts::default()
    };
    let document = SerializableHandle::from(Rc::clone(&dom.document));
    match html5ever::serialize(&mut out, &document, opts) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        // Writing to a Vec does not fail; if it did, show nothing rather than too much.
        Err(_) => String::new(),
    }
}

fn parse(html: &str) -> RcDom {
    parse_document(RcDom::default(), ParseOpts::default()).one(html)
}

/// Removes every hidden element below `node`.
fn prune(node: &Handle, sheet: &Sheet) {
    node.children
        .borrow_mut()
        .retain(|child| !is_hidden(child, sheet) || name(child) == Some("style"));
    let children: Vec<Handle> = node.children.borrow().iter().map(Rc::clone).collect();
    for child in &children {
        prune(child, sheet);
    }
}

fn text_of(node: &Handle, sheet: &Sheet, pre: bool, out: &mut String) {
    match &node.data {
        NodeData::Text { contents } => {
            let text = contents.borrow();
            if pre {
                out.push_str(&text);
            } else {
                push_collapsed(&text, out);
            }
        }
        NodeData::Element { .. } => {
            let tag = name(node).unwrap_or_default();
            if is_hidden(node, sheet) || NEVER_SHOWN.contains(&tag) {
                return;
            }
            let block = BLOCKS.contains(&tag);
            if tag == "br" || block {
                out.push('\n');
            }
            if matches!(tag, "td" | "th") {
                out.push(' ');
            }
            let pre = pre || matches!(tag, "pre" | "textarea");
            for child in node.children.borrow().iter() {
                text_of(child, sheet, pre, out);
            }
            if block {
                out.push('\n');
            }
        }
        NodeData::Document => {
            for child in node.children.borrow().iter() {
                text_of(child, sheet, pre, out);
            }
        }
        _ => {}
    }
}

/// Appends `text` with runs of white space made one space.
fn push_collapsed(text: &str, out: &mut String) {
    for (i, word) in text.split_ascii_whitespace().enumerate() {
        let starts_with_space = text.starts_with(|c: char| c.is_ascii_whitespace());
        if (i > 0 || starts_with_space) && !out.ends_with([' ', '\n']) && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if text.ends_with(|c: char| c.is_ascii_whitespace()) && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}

/// Trims every line and keeps at most one empty line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut empty = 0;
    for line in text.lines() {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() {
            empty += 1;
            if empty > 1 || out.is_empty() {
                continue;
            }
        } else {
            empty = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

fn name(node: &Handle) -> Option<&str> {
    match &node.data {
        NodeData::Element { name, .. } => Some(&name.local),
        _ => None,
    }
}

fn attribute(node: &Handle, wanted: &str) -> Option<String> {
    let NodeData::Element { attrs, .. } = &node.data else {
        return None;
    };
    attrs
        .borrow()
        .iter()
        .find(|a| str::eq_ignore_ascii_case(&a.name.local, wanted))
        .map(|a| a.value.to_string())
}

/// Whether the element itself is hidden: the `hidden` attribute, a hiding inline style,
/// or a hiding stylesheet rule that matches it.
fn is_hidden(node: &Handle, sheet: &Sheet) -> bool {
    let Some(tag) = name(node) else {
        return false;
    };
    if attribute(node, "hidden").is_some() {
        return true;
    }
    if tag == "input" && attribute(node, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden")) {
        return true;
    }
    if attribute(node, "style").is_some_and(|s| hides(&s)) {
        return true;
    }
    let id = attribute(node, "id");
    let classes = attribute(node, "class").unwrap_or_default();
    let classes: Vec<&str> = classes.split_ascii_whitespace().collect();
    sheet
        .hiding
        .iter()
        .any(|s| s.matches(tag, id.as_deref(), &classes))
}

/// The hiding rules of a document's stylesheets.
struct Sheet {
    hiding: Vec<Compound>,
}

impl Sheet {
    fn of(document: &Handle) -> Self {
        let mut css = String::new();
        collect_styles(document, &mut css);
        let mut hiding = Vec::new();
        for (selectors, declarations) in rules(&strip_comments(&css)) {
            if !hides(&declarations) {
                continue;
            }
            hiding.extend(selectors.split(',').filter_map(Compound::last_of));
        }
        Self { hiding }
    }
}

fn collect_styles(node: &Handle, css: &mut String) {
    if name(node) == Some("style") {
        for child in node.children.borrow().iter() {
            if let NodeData::Text { contents } = &child.data {
                css.push_str(&contents.borrow());
                css.push('\n');
            }
        }
        return;
    }
    for child in node.children.borrow().iter() {
        collect_styles(child, css);
    }
}

fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(rest.get(..start).unwrap_or_default());
        rest = match rest.get(start + 2..).and_then(|r| r.find("*/")) {
            Some(end) => rest.get(start + 2 + end + 2..).unwrap_or_default(),
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `(selectors, declarations)` of every style rule, at any depth of nesting (`@media`
/// blocks are entered, their conditions ignored; other at-rules' bodies are skipped
/// only when they hold declarations, like `@font-face`, which never hide text anyway).
fn rules(css: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut prelude = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut body = String::new();
    let mut depth_in_rule = 0usize;
    for c in css.chars() {
        match c {
            '{' if depth_in_rule == 0 => {
                let head = prelude.trim().to_owned();
                prelude.clear();
                if head.starts_with('@') {
                    // A block of rules (@media, @supports) or of declarations: its
                    // contents are read as rules either way.
                    stack.push(head);
                } else {
                    stack.push(head);
                    depth_in_rule = 1;
                }
            }
            '{' => {
                depth_in_rule += 1;
                body.push(c);
            }
            '}' if depth_in_rule == 1 => {
                depth_in_rule = 0;
                let selectors = stack.pop().unwrap_or_default();
                out.push((selectors, std::mem::take(&mut body)));
            }
            '}' if depth_in_rule > 1 => {
                depth_in_rule -= 1;
                body.push(c);
            }
            '}' => {
                stack.pop();
                prelude.clear();
            }
            ';' if depth_in_rule == 0 => prelude.clear(),
            _ if depth_in_rule > 0 => body.push(c),
            _ => prelude.push(c),
        }
    }
    out
}

/// A compound selector: the last one of a complex selector, without its attribute
/// selectors and pseudo-classes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Compound {
    tag: Option<String>,
    id: Option<String>,
    classes: Vec<String>,
}

impl Compound {
    /// The last compound of a complex selector; `None` for a pseudo-element selector or
    /// one that names nothing we can match.
    fn last_of(complex: &str) -> Option<Self> {
        let complex = complex.trim();
        let lower = complex.to_ascii_lowercase();
        if lower.contains("::") || lower.contains(":before") || lower.contains(":after") {
            return None;
        }
        let last = complex
            .rsplit(|c: char| c.is_whitespace() || matches!(c, '>' | '+' | '~'))
            .find(|s| !s.is_empty())?;
        let mut compound = Self {
            tag: None,
            id: None,
            classes: Vec::new(),
        };
        // Split into pieces that start with '.', '#', '[' or ':'.
        let mut piece = String::new();
        let mut kind = 't';
        let mut bracket = 0usize;
        for c in last.chars().chain(std::iter::once('\0')) {
            let starts = bracket == 0 && matches!(c, '.' | '#' | '[' | ':' | '\0');
            if starts {
                match kind {
                    't' if !piece.is_empty() && piece != "*" => {
                        compound.tag = Some(piece.to_ascii_lowercase());
                    }
                    '.' if !piece.is_empty() => compound.classes.push(piece.clone()),
                    '#' if !piece.is_empty() => compound.id = Some(piece.clone()),
                    _ => {}
                }
                piece.clear();
                kind = c;
                if c == '[' {
                    bracket = 1;
                }
                continue;
            }
            match c {
                '[' => bracket += 1,
                ']' => bracket = bracket.saturating_sub(1),
                '(' if kind == ':' => bracket += 1,
                ')' if kind == ':' => bracket = bracket.saturating_sub(1),
                _ => {}
            }
            piece.push(c);
        }
        Some(compound)
    }

    fn matches(&self, tag: &str, id: Option<&str>, classes: &[&str]) -> bool {
        self.tag.as_deref().is_none_or(|t| t == tag)
            && self.id.as_deref().is_none_or(|i| id == Some(i))
            && self.classes.iter().all(|c| classes.contains(&c.as_str()))
    }
}

/// Whether a declaration block hides its element (see the module docs).
fn hides(declarations: &str) -> bool {
    let mut props: Vec<(String, String)> = Vec::new();
    for declaration in declarations.split(';') {
        let Some((prop, value)) = declaration.split_once(':') else {
            continue;
        };
        let value = value.to_ascii_lowercase().replace("!important", "");
        props.push((prop.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let get = |p: &str| {
        props
            .iter()
            .rev()
            .find(|(k, _)| k == p)
            .map(|(_, v)| v.as_str())
    };
    let overflow_hidden = ["overflow", "overflow-x", "overflow-y"]
        .iter()
        .any(|p| get(p).is_some_and(|v| matches!(v, "hidden" | "clip")));
    let positioned = get("position").is_some_and(|v| matches!(v, "absolute" | "fixed"));
    let zero = |p: &str| get(p).and_then(length).is_some_and(|(n, _)| n <= 0.0);
    let far_off = |p: &str| get(p).and_then(length).is_some_and(|(n, _)| n <= -500.0);

    get("display") == Some("none")
        || get("visibility").is_some_and(|v| matches!(v, "hidden" | "collapse"))
        || get("mso-hide") == Some("all")
        || get("opacity").is_some_and(|v| opacity(v) <= 0.05)
        || get("color").is_some_and(|v| v == "transparent")
        || get("font-size").and_then(length).is_some_and(tiny_font)
        || (overflow_hidden
            && ["width", "height", "max-width", "max-height"]
                .iter()
                .any(|p| zero(p)))
        || ((positioned || get("position") == Some("relative"))
            && ["left", "top", "right", "bottom"]
                .iter()
                .any(|p| far_off(p)))
        || ["text-indent", "margin-left", "margin-top"]
            .iter()
            .any(|p| far_off(p))
        || get("transform").is_some_and(|v| {
            v.replace(' ', "").contains("scale(0)") || v.replace(' ', "").contains("scale(0,")
        })
        || get("clip").is_some_and(|v| v.replace(' ', "").starts_with("rect(0") && !v.contains('1'))
        || get("clip-path").is_some_and(|v| {
            let v = v.replace(' ', "");
            v.starts_with("inset(50%") || v.starts_with("inset(100%") || v == "circle(0)"
        })
}

/// A CSS length's number and unit (`0`, `-9999px`, `0.5em`).
fn length(value: &str) -> Option<(f64, String)> {
    let value = value.split_ascii_whitespace().next()?;
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
        .unwrap_or(value.len());
    let number: f64 = value.get(..end)?.parse().ok()?;
    Some((number, value.get(end..).unwrap_or_default().to_owned()))
}

/// A font too small to read: at most 1px or 1pt, or a tenth of the parent's size.
fn tiny_font((size, unit): (f64, String)) -> bool {
    match unit.as_str() {
        "" | "px" | "pt" => size <= 1.0,
        "em" | "rem" | "ex" | "ch" => size <= 0.1,
        "%" => size <= 10.0,
        _ => size <= 0.0,
    }
}

/// An opacity value as a number (`0.5`, `50%`); unreadable values count as visible.
fn opacity(value: &str) -> f64 {
    let value = value.trim();
    match value.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_or(1.0, |p| p / 100.0),
        None => value.parse::<f64>().unwrap_or(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_hidden_text_is_not_visible() {
        let html = r#"<html><head><style>
            .pre { display: none }
            @media screen { #gone { visibility: hidden } }
            div.tiny { font-size: 0px }
            p::before { display: none }
            </style></head><body>
            <p>Hello Bob,</p>
            <span class="pre">HIDDEN-CLASS</span>
            <span id="gone">HIDDEN-ID</span>
            <div class="tiny x">HIDDEN-SIZE</div>
            <div style="display:none">HIDDEN-DISPLAY</div>
            <div style="visibility: hidden">HIDDEN-VISIBILITY</div>
            <div style="opacity:0">HIDDEN-OPACITY</div>
            <div style="opacity: 0%">HIDDEN-OPACITY-PERCENT</div>
            <div style="height:0; overflow:hidden">HIDDEN-ZERO</div>
            <div style="max-height:0px;overflow:hidden;mso-hide:all">HIDDEN-PREHEADER</div>
            <div style="position:absolute; left:-9999px">HIDDEN-OFFSCREEN</div>
            <div style="text-indent:-10000px">HIDDEN-INDENT</div>
            <div style="transform: scale(0)">HIDDEN-SCALE</div>
            <div hidden>HIDDEN-ATTRIBUTE</div>
            <div style="DISPLAY: NONE !important">HIDDEN-UPPER</div>
            <div style="opacity:0.6; font-size:12px">seen too</div>
            <p>See you.</p>
            </body></html>"#;
        let text = visible_text(html);
        assert!(!text.contains("HIDDEN"), "{text}");
        assert!(text.contains("Hello Bob,"));
        assert!(text.contains("seen too"));
        assert!(text.contains("See you."));
        let shown = visible_html(html);
        assert!(!shown.contains("HIDDEN"), "{shown}");
        assert!(shown.contains("<style>"), "stylesheets stay: {shown}");
        assert!(shown.contains("See you."));
    }

    #[test]
    fn text_keeps_lines_and_collapses_space() {
        let text = visible_text("<p>one   two</p><p>three<br>four</p><pre>a  b\n c</pre>");
        assert_eq!(text, "one two\n\nthree\nfour\n\na  b\nc");
        assert_eq!(visible_text("<b>bold</b> and <i>it</i>"), "bold and it");
        assert_eq!(
            visible_text("<script>x()</script><title>t</title>body"),
            "body"
        );
    }

    #[test]
    fn selectors_match_by_their_last_compound() {
        let c = Compound::last_of("div > p.a.b:hover").unwrap_or_else(|| unreachable!());
        assert_eq!(c.tag.as_deref(), Some("p"));
        assert_eq!(c.classes, ["a", "b"]);
        assert!(c.matches("p", None, &["b", "a", "c"]));
        assert!(!c.matches("p", None, &["a"]));
        assert!(Compound::last_of("p::after").is_none());
        let id = Compound::last_of("#x[data-y=\"1\"]").unwrap_or_else(|| unreachable!());
        assert!(id.matches("span", Some("x"), &[]));
        assert!(!id.matches("span", Some("y"), &[]));
    }
}
