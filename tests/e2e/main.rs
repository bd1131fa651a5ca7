//! End to end: the real desktop app, in a real window (Xvfb, WebKitGTK), driven through
//! tauri-driver and WebKitWebDriver as a user would, against real servers — the demo
//! world of `sealpost-demo`: Dovecot, Postfix, and a sync server with its key directory.
//!
//! Alice and Bob each make an account (a weak password is refused, a strong one
//! accepted), add their mailbox and publish their key; Alice sends Bob an encrypted mail,
//! which Bob opens decrypted, signed by a confirmed key; Alice locks and unlocks; a second
//! device of Alice's signs in. A screenshot of every screen goes to
//! `test-artifacts/e2e/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::panic,
    missing_docs
)]

mod driver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use driver::{App, Display};
use sealpost_demo::Stack;

const WEAK: &str = "Summer2024!";

fn shots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/e2e")
}

fn start_app(name: &str, display: &Display, stack: &Stack, profile: &Path) -> App {
    App::start(
        name,
        display,
        &[
            ("SEALPOST_SERVER", stack.sync_url()),
            ("SEALPOST_PROFILE", profile.display().to_string()),
            (
                "SEALPOST_MAIL_CA_FILE",
                stack.ca_file().display().to_string(),
            ),
        ],
        &shots(),
    )
}

/// The start screen to a created account, through the password gate and the recovery
/// code.
fn create_account(app: &App, user: &str, password: &str) {
    app.wait("[data-testid=start-create]");
    app.screenshot("01-start");
    app.click("[data-testid=start-create]");
    app.type_into("[data-testid=user-name]", user);
    app.type_into("[data-testid=password]", WEAK);
    app.type_into("[data-testid=password-confirm]", WEAK);
    // The meter judges it (debounced); Create stays off.
    app.wait_text("[data-testid=strength]", "not accepted");
    std::thread::sleep(Duration::from_millis(600));
    app.screenshot("02-weak-password");
    assert!(
        !app.enabled("[data-testid=create-account]"),
        "{}: Create is on for {WEAK:?}",
        app.name
    );
    app.type_into("[data-testid=password]", password);
    app.type_into("[data-testid=password-confirm]", password);
    app.screenshot("03-strong-password");
    app.click("[data-testid=create-account]");

    let code = app.text("[data-testid=recovery-code]");
    assert!(
        code.len() >= 20 && code.contains('-'),
        "{}: recovery code {code:?}",
        app.name
    );
    app.screenshot("04-recovery-code");
    assert!(
        !app.enabled("[data-testid=continue]"),
        "Continue before the code is saved"
    );
    app.click("[data-testid=recovery-saved]");
    app.click("[data-testid=continue]");
}

/// Adds the demo mailbox `address` (no autoconfig for the demo domain: the servers are
/// entered by hand), and waits for the first sync.
fn add_mailbox(app: &App, stack: &Stack, address: &str, password: &str) {
    app.type_into("[data-testid=mail-address]", address);
    app.click("[data-testid=mail-discover]");
    app.type_into("#imap-host", "localhost");
    app.type_into("#imap-port", &stack.imaps_port().to_string());
    app.type_into("#smtp-host", "localhost");
    app.type_into("#smtp-port", &stack.submissions_port().to_string());
    app.type_into("[data-testid=mail-password]", password);
    app.screenshot("05-add-account");
    app.click("[data-testid=mail-add]");
    app.wait("[data-testid=first-sync]");
    app.screenshot("06-first-sync");
    app.click("[data-testid=mail-done]");
    app.wait("[data-testid=folder-INBOX]");
    app.screenshot("07-mailbox");
}

fn publish_key(app: &App, address: &str) {
    app.click("[data-testid=settings]");
    app.wait("[data-testid=key-fingerprint]");
    app.click(&format!(
        "xpath://button[@aria-label='Publish key for {address}']"
    ));
    app.wait_text("[data-testid=settings-panel]", "Check your mail");
    app.screenshot("08-settings");
}

#[test]
fn two_people_one_encrypted_mail_in_the_real_window() {
    let stack = Stack::start(&["alice", "bob"], "127.0.0.1:0".parse().unwrap()).unwrap();
    let (alice_mail, bob_mail) = (stack.users()[0].clone(), stack.users()[1].clone());
    let tmp = tempfile::tempdir().unwrap();
    // One X server per window: no window manager stacks them, and each screenshot shows
    // one app.
    let (d_alice, d_bob, d_laptop) = (Display::start(), Display::start(), Display::start());

    let alice = start_app("alice", &d_alice, &stack, &tmp.path().join("alice"));
    create_account(&alice, "alice", "tundra mosaic gravel whimsy plank");
    add_mailbox(&alice, &stack, &alice_mail.address, &alice_mail.password);
    publish_key(&alice, &alice_mail.address);

    let bob = start_app("bob", &d_bob, &stack, &tmp.path().join("bob"));
    create_account(&bob, "bob", "orbit velvet cashew lantern quarry");
    add_mailbox(&bob, &stack, &bob_mail.address, &bob_mail.password);
    publish_key(&bob, &bob_mail.address);

    // Alice writes to Bob. Once the directory has Bob's key, Encrypt turns itself on.
    alice.click("[data-testid=compose]");
    alice.type_into(
        "[data-testid=compose-to]",
        &format!("{},", bob_mail.address),
    );
    alice.type_into("[data-testid=compose-subject]", "Lunch on Friday");
    alice.type_into(
        "[data-testid=compose-body]",
        "Noon at the usual place. Bring the plans.",
    );
    // The draft is saved as she types; leaving compose and coming back, a fresh form
    // lists it, and it reopens with what she wrote.
    alice.wait_text("[data-testid=compose-draft-status]", "Draft saved");
    alice.click("[data-testid=mailbox]");
    alice.click("[data-testid=compose]");
    alice.click("xpath://*[@data-testid='compose-drafts']/summary");
    alice.screenshot("09-drafts");
    alice.click(
        "xpath://*[@data-testid='compose-drafts']//li[contains(., 'Lunch on Friday')]\
         //button[starts-with(@data-testid, 'draft-open-')]",
    );
    alice.wait_text("[data-testid=compose-draft-status]", "Draft reopened");
    assert_eq!(
        alice.property("[data-testid=compose-body]", "value"),
        serde_json::json!("Noon at the usual place. Bring the plans.")
    );
    let mut tries = 0;
    while alice.property("[data-testid=compose-encrypt]", "checked") != serde_json::json!(true) {
        tries += 1;
        assert!(
            tries < 120,
            "Encrypt never turned on: Bob's key was not found"
        );
        std::thread::sleep(Duration::from_millis(500));
        if tries % 10 == 0 {
            // Ask again: retype the recipient, as a user would.
            alice.type_into(
                "[data-testid=compose-to]",
                &format!("{},", bob_mail.address),
            );
        }
    }
    alice.screenshot("09-compose");
    alice.click("[data-testid=compose-send]");
    alice.wait_text("[data-testid=compose-status]", "Sent");
    alice.screenshot("10-sent");
    assert!(
        !alice.shows("[data-testid=compose-drafts]"),
        "the draft went with the send"
    );

    // Bob's mailbox gets it; opened, it is decrypted and signed by a confirmed key.
    bob.click("[data-testid=mailbox]");
    bob.click("[data-testid=folder-INBOX]");
    bob.click("xpath://*[@data-testid='message-row'][contains(., 'Lunch on Friday')]");
    let encryption = bob.wait_text("[data-testid=reader-encryption]", "Encrypted");
    assert!(!encryption.contains("cannot"), "{encryption}");
    bob.wait_text(
        "[data-testid=reader-signature]",
        &format!("Signed by {} — key confirmed", alice_mail.address),
    );
    bob.wait_text("[data-testid=reader-subject]", "Lunch on Friday");
    assert_eq!(
        bob.attribute("[data-testid=reader-body]", "sandbox")
            .unwrap_or_default(),
        "",
        "the mail frame has no sandbox exceptions"
    );
    bob.screenshot("11-reader");

    // HTML mail from another client: its inline styles apply inside the frame (served from
    // the app's sealpost-mail: scheme with a policy of its own), its script does not run,
    // its tracking pixel is blocked, and the frame never reaches the app.
    let html = sealpost_pgp::plain_mail(
        &sealpost_pgp::OutgoingMail {
        from: sealpost_pgp::Mailbox::new("Carol", "carol@example.org"),
        to: vec![sealpost_pgp::Mailbox::address(bob_mail.address.clone())],
        subject: "Styled newsletter".into(),
        text: "The plain part.".into(),
        html: Some(
            "<style>.lead { font-size: 31px } .bg { background: url(https://tracker.example/bg.png) }</style>\
             <p class=\"lead bg\" style=\"color: rgb(200, 10, 20)\">Styled words</p>\
             <script>document.title = 'ran'; parent.document.body.remove();</script>\
             <img src=\"https://tracker.example/pixel.gif\">"
                .into(),
        ),
        message_id: "styled-1@example.org".into(),
        date: 1_700_000_000,
        ..Default::default()
    },
        None,
        std::time::SystemTime::now(),
    )
    .unwrap();
    stack.deliver(&bob_mail.address, &html).unwrap();
    bob.click("[data-testid=mailbox]");
    bob.click("xpath://*[@data-testid='message-row'][contains(., 'Styled newsletter')]");
    bob.wait_text("[data-testid=reader-subject]", "Styled newsletter");
    let src = bob
        .attribute("[data-testid=reader-body]", "src")
        .unwrap_or_default();
    assert!(src.starts_with("sealpost-mail:"), "the frame loads {src:?}");
    assert!(bob.shows("xpath://*[contains(., 'Remote content blocked')]"));
    let (color, size, title) = bob.in_frame("[data-testid=reader-body]", |f| {
        f.wait("p");
        (
            f.script("return getComputedStyle(document.querySelector('p')).color"),
            f.script("return getComputedStyle(document.querySelector('p')).fontSize"),
            f.script("return document.title"),
        )
    });
    assert_eq!(
        color,
        serde_json::json!("rgb(200, 10, 20)"),
        "the mail's style applies"
    );
    assert_eq!(
        size,
        serde_json::json!("31px"),
        "the mail's stylesheet applies"
    );
    assert_ne!(title, serde_json::json!("ran"), "the mail's script ran");
    assert!(
        bob.shows("[data-testid=reader-subject]"),
        "the app page survived"
    );
    bob.screenshot("12-html-mail");

    // The isolation pattern: every IPC message passes the isolation app, which lets
    // through the app's own commands only; a plugin command nobody granted to the UI is
    // refused there (and by the ACL behind it), while the app's commands still work.
    assert_eq!(
        bob.script("return document.getElementById('__tauri_isolation__') !== null"),
        serde_json::json!(true),
        "the isolation frame is loaded"
    );
    let refused = bob.script_async(
        "const done = arguments[0];\
         window.__TAURI_INTERNALS__.invoke('plugin:opener|open_url', { url: 'https://example.org/' })\
           .then(() => done('allowed'), (e) => done(String(e)));",
        Duration::from_secs(20),
    );
    let refused = refused.as_str().unwrap_or_default().to_owned();
    assert!(
        refused.contains("sealpost_isolation_refused"),
        "a plugin command got through: {refused}"
    );
    let allowed = bob.script_async(
        "const done = arguments[0];\
         window.__TAURI_INTERNALS__.invoke('app_info').then((i) => done(i.version), (e) => done('refused: ' + e));",
        Duration::from_secs(20),
    );
    assert!(
        !allowed.as_str().unwrap_or("refused").starts_with("refused"),
        "an app command was refused: {allowed}"
    );

    // Lock and unlock: a wrong password is refused in words.
    alice.click("[data-testid=lock]");
    alice.wait("[data-testid=unlock-password]");
    alice.screenshot("13-unlock");
    alice.type_into(
        "[data-testid=unlock-password]",
        "orbit velvet cashew lantern quarry",
    );
    alice.click("[data-testid=unlock]");
    alice.wait_text(".start", "That password is not right");
    alice.type_into(
        "[data-testid=unlock-password]",
        "tundra mosaic gravel whimsy plank",
    );
    alice.click("[data-testid=unlock]");
    alice.wait("[data-testid=folder-INBOX]");
    drop(bob);

    // A new recovery code from Settings: the password first, the code shown once.
    alice.click("[data-testid=settings]");
    alice.type_into(
        "[data-testid=recovery-password]",
        "tundra mosaic gravel whimsy plank",
    );
    alice.click("[data-testid=new-recovery-code-button]");
    let code = alice.wait_text("[data-testid=new-recovery-code]", "-");
    assert!(code.trim().len() >= 20, "new recovery code {code:?}");
    alice.screenshot("14-new-recovery-code");
    alice.click("[data-testid=recovery-code-saved]");
    alice.wait("[data-testid=recovery-password]");

    // A second device: the same name and password bring the account, keys included.
    let laptop = start_app(
        "alice-laptop",
        &d_laptop,
        &stack,
        &tmp.path().join("alice-2"),
    );
    laptop.click("[data-testid=start-sign-in]");
    laptop.type_into("[data-testid=user-name]", "alice");
    laptop.type_into(
        "[data-testid=password]",
        "tundra mosaic gravel whimsy plank",
    );
    laptop.click("[data-testid=sign-in]");
    laptop.click("[data-testid=settings]");
    let fingerprint = laptop.text("[data-testid=key-fingerprint]");
    alice.click("[data-testid=settings]");
    assert_eq!(fingerprint, alice.text("[data-testid=key-fingerprint]"));
    let mut tries = 0;
    while laptop.script("return document.querySelectorAll('[data-testid=device]').length")
        != serde_json::json!(2)
    {
        tries += 1;
        assert!(tries < 60, "the laptop does not list two devices");
        std::thread::sleep(Duration::from_millis(500));
    }
    laptop.screenshot("15-second-device");
}
