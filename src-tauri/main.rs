//! The `sealpost-desktop` binary: everything lives in the [`sealpost_app`] library, so that
//! tests can build the same app on Tauri's mock runtime.

// Release builds on Windows must not open a console window next to the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    sealpost_app::run();
}
