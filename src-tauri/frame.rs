//! The mail frame's own URI scheme, `sealpost-mail:` (`sealpost-mail://localhost/<id>`;
//! `http://sealpost-mail.localhost/<id>` on Windows).
//!
//! Mail HTML (cleaned in Rust by the core before it leaves it) is served from here with a
//! Content-Security-Policy of its own, so the mail's inline styles apply while nothing
//! else does: a `srcdoc` frame would inherit the app's policy, which (rightly) allows no
//! inline style. The policy also sandboxes the document whatever frame loads it: no
//! scripts, no forms, no same-origin, no navigation of the app. Remote images and CSS
//! load only when the user allowed them for the sender.

use sealpost_core::Core;
use tauri::http::{Request, Response, StatusCode};

/// The scheme's name.
pub const SCHEME: &str = "sealpost-mail";

/// The mail frame's policy; `remote` adds web images (allowed per sender).
pub fn policy(remote: bool) -> String {
    let img = if remote {
        "data: https: http:"
    } else {
        "data:"
    };
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src {img}; font-src data:; \
         base-uri 'none'; form-action 'none'; sandbox"
    )
}

/// Answers one request of the scheme: the message whose id is the path.
pub async fn respond(core: &Core, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
    let id = request
        .uri()
        .path()
        .trim_start_matches('/')
        .parse::<i64>()
        .ok();
    let found = match id {
        Some(id) => core.mail().frame(id).await.ok().flatten(),
        None => None,
    };
    let (status, body, remote) = match found {
        Some(frame) => (
            StatusCode::OK,
            format!("<!doctype html><meta charset=\"utf-8\">{}", frame.html),
            frame.remote_allowed,
        ),
        None => (StatusCode::NOT_FOUND, String::new(), false),
    };
    Response::builder()
        .status(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Content-Security-Policy", policy(remote))
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("Cache-Control", "no-store")
        .body(body.into_bytes())
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_policy_allows_inline_style_and_nothing_active() {
        let p = policy(false);
        assert!(p.contains("default-src 'none'") && p.contains("style-src 'unsafe-inline'"));
        assert!(p.ends_with("sandbox"), "{p}");
        assert!(!p.contains("script") && !p.contains("https:"));
        assert!(policy(true).contains("img-src data: https: http:"));
    }
}
