//! # Sealpost desktop shell
//!
//! The Tauri 2 process that hosts the web UI (`ui/`, embedded from `ui/dist` at compile
//! time) and answers its calls. The shell is deliberately thin: it owns the window, the
//! IPC boundary and its security (CSP in `tauri.conf.json`, per-window grants in
//! `capabilities/`), and nothing else. Mail, keys and storage belong to the plain Rust
//! crates under `crates/`, which build and test without WebKit; a command here converts a
//! DTO, makes one call into them and maps the error.
//!
//! ## Reading order
//!
//! - [`run`] starts the real app; [`builder`] registers state and commands on any Tauri
//!   runtime, so tests run the same app on `tauri::test::mock_builder()`.
//! - [`commands`]: the IPC surface, one small function per command, `camelCase` DTOs.
//! - [`error`]: [`AppError`], the single `{ code, message }` shape the UI receives.
//! - `build.rs` declares the app commands in an ACL manifest, so a window may only call
//!   what a capability grants it.
//!
//! The UI reaches this crate only through `ui/src/backend.ts`.

pub mod commands;
pub mod error;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use tauri::Runtime;

pub use crate::error::{AppError, ErrorCode};

/// Registers the app's state and commands on `builder`.
///
/// Shared by [`run`] and the tests. State goes here with `Builder::manage`, not in a
/// `setup` hook: `setup` runs only once the event loop is ready, which mock apps never
/// reach.
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, sync: SyncServer) -> tauri::Builder<R> {
    builder
        .manage(sync)
        .invoke_handler(tauri::generate_handler![commands::app_info])
}

/// Where the app's sync server is: `SEALPOST_SERVER` if set, else an embedded one on
/// [`EMBEDDED_LISTEN`], whose state lives in the OS's data directory.
pub struct SyncServer {
    /// The server's base URL.
    pub url: String,
    /// The embedded server, kept running as long as the app.
    _embedded: Option<EmbeddedServer>,
}

/// Where the embedded sync server listens: loopback only.
pub const EMBEDDED_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));

impl SyncServer {
    /// A server reached at `url`, run by someone else.
    pub fn remote(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            _embedded: None,
        }
    }

    /// The configured server: `SEALPOST_SERVER`, or the embedded default.
    pub fn from_env() -> Self {
        if let Ok(url) = std::env::var("SEALPOST_SERVER") {
            return Self::remote(url);
        }
        let listen = EMBEDDED_LISTEN;
        let url = format!("http://{listen}");
        let Some(dirs) = directories::ProjectDirs::from("org", "Sealpost", "sealpost") else {
            eprintln!("sealpost: no data directory; set SEALPOST_SERVER to use a sync server");
            return Self::remote(url);
        };
        let data = dirs.data_dir().join("server");
        match EmbeddedServer::start(&data, listen, ServiceConfig::default()) {
            Ok(server) => {
                eprintln!(
                    "sealpost: embedded sync server on {} (SQLite and a software key file in {}: \
                     fine for one machine, not an HSM)",
                    server.url(),
                    data.display()
                );
                Self {
                    url: server.url(),
                    _embedded: Some(server),
                }
            }
            Err(e) => {
                // Most often another Sealpost already runs it on this port: use that one.
                eprintln!("sealpost: embedded sync server not started ({e:#}); using {url}");
                Self::remote(url)
            }
        }
    }
}

/// Starts the desktop app and blocks until it quits.
///
/// If Tauri cannot start (no display, broken WebKit, ...), the cause goes to stderr and
/// the process exits with status 1.
pub fn run() {
    if let Err(err) = builder(tauri::Builder::default(), SyncServer::from_env()).run(context()) {
        eprintln!("sealpost: cannot start the desktop app: {err}");
        std::process::exit(1);
    }
}

/// The compiled-in app context: `tauri.conf.json`, the embedded `ui/dist`, icons and the
/// resolved ACL. `ui/dist` must exist when this crate compiles (`npm run build` in `ui/`).
fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;
    use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

    use super::*;

    /// The real app (real config and ACL) on the mock runtime.
    fn app() -> App<MockRuntime> {
        builder(mock_builder(), SyncServer::remote("http://127.0.0.1:1"))
            .build(context())
            .unwrap()
    }

    fn window(app: &App<MockRuntime>, label: &str) -> WebviewWindow<MockRuntime> {
        WebviewWindowBuilder::new(app, label, WebviewUrl::default())
            .build()
            .unwrap()
    }

    fn invoke(
        window: &WebviewWindow<MockRuntime>,
        cmd: &str,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The origin of the embedded assets on Linux and macOS.
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(json!({})),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_owned(),
        };
        get_ipc_response(window, request).map(|body| body.deserialize().unwrap())
    }

    #[test]
    fn main_window_gets_app_info_in_camel_case() {
        let app = app();
        let main = window(&app, "main");

        let info = invoke(&main, "app_info").unwrap();

        assert_eq!(
            info,
            json!({
                "name": "Sealpost",
                "version": env!("CARGO_PKG_VERSION"),
                "syncServer": "http://127.0.0.1:1"
            })
        );
    }

    #[test]
    fn window_without_a_capability_is_refused() {
        let app = app();
        let other = window(&app, "other");

        let err = invoke(&other, "app_info").unwrap_err();

        let err = err.as_str().unwrap();
        assert!(err.contains("not allowed"), "unexpected error: {err}");
        assert!(err.contains("allow-app-info"), "unexpected error: {err}");
    }
}
