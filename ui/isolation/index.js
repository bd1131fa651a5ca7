// The isolation application of Tauri's isolation pattern.
//
// Tauri loads this page in a sandboxed iframe of its own origin; every IPC message of the
// app's window passes through the hook below before Tauri encrypts it (AES-GCM, with a
// key made at each start) for the Rust side, which accepts no message that did not pass
// here. So even script that got into the app's window (a bug in a dependency, say)
// reaches only the commands this list names, and only the app's own events.
//
// What passes is the app's own commands and events (allowed.js, generated from
// src-tauri/commands/list.rs and src-tauri/event_names.rs).
"use strict";

/* global APP_COMMANDS, APP_EVENTS */

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
