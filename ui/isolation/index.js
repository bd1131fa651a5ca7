// The isolation application of Tauri's isolation pattern.
//
// Tauri loads this page in a sandboxed iframe of its own origin; every IPC message of the
// app's window passes through the hook below before Tauri encrypts it (AES-GCM, with a
// key made at each start) for the Rust side, which accepts no message that did not pass
// here. So even script that got into the app's window (a bug in a dependency, say)
// reaches only the commands this list names, and only the app's own events.
//
// The list is the app's commands (src-tauri/build.rs, `COMMANDS`) and the events the UI
// listens to (ui/src/backend.ts); a test in src-tauri/lib.rs keeps the three in step.
"use strict";

const APP_COMMANDS = new Set([
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
]);

const APP_EVENTS = new Set(["mail-progress", "mail-changed", "outbox", "locked"]);

/// A command no one registers: Tauri answers it with an error, so a refused call fails
/// at once in the caller instead of hanging.
const REFUSED = "sealpost_isolation_refused";

function allowed(message) {
  const cmd = message.cmd;
  if (typeof cmd !== "string") return false;
  if (APP_COMMANDS.has(cmd)) return true;
  const args = message.payload;
  if (cmd === "plugin:event|listen") {
    return typeof args === "object" && args !== null && APP_EVENTS.has(args.event);
  }
  return cmd === "plugin:event|unlisten";
}

window.__TAURI_ISOLATION_HOOK__ = (message) => {
  if (allowed(message)) return message;
  return Object.assign(Object.create(null), message, { cmd: REFUSED, payload: {} });
};
