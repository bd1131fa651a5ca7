//! Build script of the desktop app: reads `tauri.conf.json` and `capabilities/`, embeds the
//! ACL, and declares the app's own commands in an app manifest. With that manifest Tauri
//! refuses any app command that no capability grants to the calling window; without it,
//! every command would be callable from every local window.

// Cargo reads a build script's instructions from its stdout.
#![allow(clippy::print_stdout)]

use tauri_build::{AppManifest, Attributes};

/// Every `#[tauri::command]` of the app. Each gets `allow-<name>` / `deny-<name>`
/// permissions (kebab-case) that `capabilities/*.json` grant per window.
const COMMANDS: &[&str] = &[
    "app_info",
    "status",
    "check_password",
    "create_account",
    "save_recovery_kit",
    "forget_recovery_code",
    "sign_in",
    "unlock",
    "lock",
    "change_password",
    "new_recovery_code",
    "devices",
    "revoke_device",
    "discover_account",
    "add_mail_account",
    "mail_accounts",
    "remove_mail_account",
    "sync_now",
    "folders",
    "messages",
    "search",
    "open_message",
    "allow_remote_content",
    "set_flag",
    "save_attachment",
    "open_link",
    "recipient_keys",
    "pick_attachments",
    "save_draft",
    "drafts",
    "open_draft",
    "delete_draft",
    "outbox",
    "resend_outbox_entry",
    "discard_outbox_entry",
    "add_oauth_account",
    "sign_in_mail_account_again",
    "send",
    "my_key",
    "export_public_key",
    "import_key",
    "publish_key",
];

/// The built UI that `tauri.conf.json` (`build.frontendDist`) embeds; relative to the
/// package root, which is a build script's working directory.
const FRONTEND_ENTRY: &str = "ui/dist/index.html";

fn main() {
    // Rerun when the UI is rebuilt or removed, so the check below sees it.
    println!("cargo::rerun-if-changed={FRONTEND_ENTRY}");
    // `generate_context!` would fail later with a bare panic; say what to run instead.
    if !std::path::Path::new(FRONTEND_ENTRY).is_file() {
        eprintln!(
            "{FRONTEND_ENTRY} is missing: build the UI before the app \
             (cd ui && npm ci && npm run build)"
        );
        std::process::exit(1);
    }
    let attributes = Attributes::new().app_manifest(AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        eprintln!("tauri-build failed: {err:#}");
        std::process::exit(1);
    }
}
