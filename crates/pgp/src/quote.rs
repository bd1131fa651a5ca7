//! Reply and forward quotes, and the rule that a reply to or forward of an encrypted
//! message must itself be encrypted. Every quote is built from [`OpenedMail::text`], the
//! text a person saw (for HTML mail, its visible text: `html.rs`), never from the
//! original HTML: hidden text cannot ride along. [`reply_quote_html`] is the same quote
//! as HTML, escaped, for an HTML reply.

use crate::{EncryptionStatus, OpenedMail, PgpError};

/// How the reply or forward being composed will be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Encrypted (PGP/MIME).
    Encrypted,
    /// Not encrypted.
    Plain,
}

/// Refuses a plain reply to an original that was encrypted (including one we could not
/// decrypt): its content, or the fact of the conversation, must not leak in clear.
pub fn check_reply_protection(original: &OpenedMail, reply: Protection) -> Result<(), PgpError> {
    let was_encrypted = !matches!(original.encryption, EncryptionStatus::NotEncrypted);
    if was_encrypted && reply == Protection::Plain {
        return Err(PgpError::ReplyMustBeEncrypted);
    }
    Ok(())
}

/// The body of a reply: an attribution line and the original text quoted with `> `.
/// Only the plain-text body is quoted (HTML was already converted to text when the
/// message was opened); attachments are not carried. Fails under
/// [`check_reply_protection`].
pub fn reply_quote(original: &OpenedMail, reply: Protection) -> Result<String, PgpError> {
    check_reply_protection(original, reply)?;
    let who = sender_line(original);
    let mut out = format!("\n\n{who} wrote:\n");
    for line in original.text.as_deref().unwrap_or_default().lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The body of a forward: a header block (From, Subject) and the original text, as
/// plain text. Fails under [`check_reply_protection`].
pub fn forward_quote(original: &OpenedMail, forward: Protection) -> Result<String, PgpError> {
    check_reply_protection(original, forward)?;
    let mut out = String::from("\n\n---------- Forwarded message ----------\n");
    out.push_str(&format!("From: {}\n", sender_line(original)));
    if let Some(subject) = &original.subject {
        out.push_str(&format!("Subject: {}\n", one_line(subject)));
    }
    out.push('\n');
    out.push_str(original.text.as_deref().unwrap_or_default());
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The quote of [`reply_quote`] as HTML: the attribution line and a `<blockquote>` of
/// the same visible text, every character escaped, line breaks as `<br>`. Fails under
/// [`check_reply_protection`].
pub fn reply_quote_html(original: &OpenedMail, reply: Protection) -> Result<String, PgpError> {
    check_reply_protection(original, reply)?;
    let lines: Vec<String> = original
        .text
        .as_deref()
        .unwrap_or_default()
        .lines()
        .map(escape_html)
        .collect();
    Ok(format!(
        "<p>{} wrote:</p>\n<blockquote>{}</blockquote>\n",
        escape_html(&sender_line(original)),
        lines.join("<br>\n")
    ))
}

/// Text made safe to put between HTML tags or in a quoted attribute.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn sender_line(original: &OpenedMail) -> String {
    match &original.from {
        Some(m) => match &m.name {
            Some(name) if !name.trim().is_empty() => {
                format!("{} <{}>", one_line(name), one_line(&m.address))
            }
            _ => one_line(&m.address),
        },
        None => "Unknown sender".to_owned(),
    }
}

/// Header values from a message are untrusted: no line breaks in the quote's header.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
