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
pub mod frame;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sealpost_core::session::{MailEvent, Session, SessionConfig, SessionEvent};
use sealpost_server::embedded::EmbeddedServer;
use sealpost_server::service::ServiceConfig;
use tauri::{Emitter, Runtime};

pub use crate::error::AppError;

/// Registers the app's plugins, state and commands on `builder`.
///
/// Shared by [`run`] and the tests. State goes here with `Builder::manage`, not in a
/// `setup` hook: `setup` runs only once the event loop is ready, which mock apps never
/// reach. Session events reach the windows once the app is set up.
pub fn builder<R: Runtime>(
    builder: tauri::Builder<R>,
    sync: SyncServer,
    profile_dir: PathBuf,
) -> Result<tauri::Builder<R>, AppError> {
    let handle: Arc<OnceLock<tauri::AppHandle<R>>> = Arc::new(OnceLock::new());
    let sink = {
        let handle = Arc::clone(&handle);
        Arc::new(move |event: SessionEvent| {
            if let Some(app) = handle.get() {
                emit(app, &event);
            }
        })
    };
    let session = Session::start(
        SessionConfig {
            profile_dir,
            server_url: sync.url.clone(),
            device_name: device_name(),
            mail_extra_roots_pem: mail_extra_roots(),
        },
        sink,
    )?;
    Ok(builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(sync)
        .register_asynchronous_uri_scheme_protocol(frame::SCHEME, {
            let session = session.clone();
            move |_ctx, request, responder| {
                let session = session.clone();
                tauri::async_runtime::spawn(async move {
                    responder.respond(frame::respond(&session, &request).await);
                });
            }
        })
        .manage(session)
        .setup(move |app| {
            let _ = handle.set(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::account::status,
            commands::account::check_password,
            commands::account::create_account,
            commands::account::save_recovery_kit,
            commands::account::forget_recovery_code,
            commands::account::sign_in,
            commands::account::unlock,
            commands::account::lock,
            commands::account::change_password,
            commands::account::new_recovery_code,
            commands::account::devices,
            commands::account::revoke_device,
            commands::mail::discover_account,
            commands::mail::add_mail_account,
            commands::mail::add_oauth_account,
            commands::mail::sign_in_mail_account_again,
            commands::mail::mail_accounts,
            commands::mail::remove_mail_account,
            commands::mail::sync_now,
            commands::mail::folders,
            commands::mail::messages,
            commands::mail::search,
            commands::mail::open_message,
            commands::mail::allow_remote_content,
            commands::mail::set_flag,
            commands::mail::save_attachment,
            commands::mail::open_link,
            commands::compose::recipient_keys,
            commands::compose::pick_attachments,
            commands::compose::save_draft,
            commands::compose::drafts,
            commands::compose::open_draft,
            commands::compose::delete_draft,
            commands::compose::outbox,
            commands::compose::resend_outbox_entry,
            commands::compose::discard_outbox_entry,
            commands::compose::send,
            commands::keys::my_key,
            commands::keys::export_public_key,
            commands::keys::import_key,
            commands::keys::publish_key,
        ]))
}

/// Sends a session event to every window under the name `ui/src/backend.ts` listens to.
fn emit<R: Runtime>(app: &tauri::AppHandle<R>, event: &SessionEvent) {
    let sent = match event {
        SessionEvent::Mail(m @ MailEvent::Progress { .. }) => app.emit("mail-progress", m),
        SessionEvent::Mail(m @ MailEvent::Changed { .. }) => app.emit("mail-changed", m),
        SessionEvent::Mail(m @ MailEvent::Outbox { .. }) => app.emit("outbox", m),
        // One-time credentials: the session spends them; they never reach a window.
        SessionEvent::Mail(_) => Ok(()),
        SessionEvent::Locked => app.emit("locked", ()),
    };
    if let Err(e) = sent {
        eprintln!("sealpost: an event did not reach the window: {e}");
    }
}

/// This device's name as the account's device list shows it.
fn device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("Sealpost desktop on {h}"),
        None => "Sealpost desktop".to_owned(),
    }
}

/// Extra CA certificates for mail servers, from `SEALPOST_MAIL_CA_FILE`: only for local
/// test servers (`scripts/run.sh --demo`, the end-to-end tests). Unset in normal use.
fn mail_extra_roots() -> String {
    let Ok(path) = std::env::var("SEALPOST_MAIL_CA_FILE") else {
        return String::new();
    };
    match std::fs::read_to_string(&path) {
        Ok(pem) => {
            eprintln!(
                "sealpost: mail servers may also use certificates from {path} (SEALPOST_MAIL_CA_FILE)"
            );
            pem
        }
        Err(e) => {
            eprintln!("sealpost: SEALPOST_MAIL_CA_FILE={path} cannot be read ({e}); ignored");
            String::new()
        }
    }
}

/// The profile directory: `SEALPOST_PROFILE`, else the OS's data directory (the same
/// one the `sealpost` command line uses).
pub fn profile_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEALPOST_PROFILE") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("org", "Sealpost", "sealpost")
        .map(|d| d.data_dir().join("profile"))
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
    let Some(profile) = profile_dir() else {
        eprintln!("sealpost: no data directory for the profile; set SEALPOST_PROFILE");
        std::process::exit(1);
    };
    let app = builder(tauri::Builder::default(), SyncServer::from_env(), profile)
        .map_err(|e| e.to_string())
        .and_then(|b| b.run(context()).map_err(|e| e.to_string()));
    if let Err(err) = app {
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
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]
mod tests {
    use serde_json::json;
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;
    use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

    use super::*;

    /// The real app (real config and ACL) on the mock runtime, with a fresh profile
    /// directory and a sync server nobody runs.
    fn app() -> (App<MockRuntime>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let app = builder(
            mock_builder(),
            SyncServer::remote("http://127.0.0.1:1"),
            dir.path().join("profile"),
        )
        .unwrap()
        .build(context())
        .unwrap();
        (app, dir)
    }

    fn window(app: &App<MockRuntime>, label: &str) -> WebviewWindow<MockRuntime> {
        WebviewWindowBuilder::new(app, label, WebviewUrl::default())
            .build()
            .unwrap()
    }

    fn invoke(
        window: &WebviewWindow<MockRuntime>,
        cmd: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The origin of the embedded assets on Linux and macOS.
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_owned(),
        };
        get_ipc_response(window, request).map(|body| body.deserialize().unwrap())
    }

    #[test]
    fn main_window_gets_app_info_in_camel_case() {
        let (app, _dir) = app();
        let main = window(&app, "main");

        let info = invoke(&main, "app_info", json!({})).unwrap();

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
        let (app, _dir) = app();
        let other = window(&app, "other");

        for cmd in ["app_info", "status", "unlock", "open_message"] {
            let err = invoke(&other, cmd, json!({})).unwrap_err();
            let err = err.as_str().unwrap();
            assert!(
                err.contains("not allowed"),
                "{cmd}: unexpected error: {err}"
            );
        }
    }

    #[test]
    fn every_command_the_ui_names_is_registered_and_granted() {
        // ui/src/backend.ts is the UI's side of the contract: each `call("name")` there
        // must reach a command here, or the screen that uses it would fail at run time.
        let backend = include_str!("../ui/src/backend.ts");
        let (app, _dir) = app();
        let main = window(&app, "main");
        let mut named = 0;
        for (i, _) in backend.match_indices("call(\"") {
            let rest = &backend[i + 6..];
            let name = &rest[..rest.find('"').unwrap()];
            named += 1;
            // Missing arguments give a deserialisation error; an unknown or ungranted
            // command gives "not found" / "not allowed" instead.
            if let Err(e) = invoke(&main, name, json!({})) {
                let text = e.to_string();
                assert!(
                    !text.contains("not allowed") && !text.contains("not found"),
                    "{name}: {text}"
                );
            }
            assert!(
                build_commands().contains(&name),
                "{name} is not declared in src-tauri/build.rs"
            );
        }
        assert!(named >= 30, "only {named} commands found in backend.ts");
    }

    /// The names in one `new Set([...])` of ui/isolation/index.js.
    fn isolation_set(name: &str) -> Vec<&'static str> {
        let js = include_str!("../ui/isolation/index.js");
        let list = js
            .split(&format!("const {name} = new Set(["))
            .nth(1)
            .unwrap()
            .split("])")
            .next()
            .unwrap();
        list.split('"').skip(1).step_by(2).collect()
    }

    #[test]
    fn the_isolation_app_passes_exactly_the_apps_commands_and_events() {
        let mut passed = isolation_set("APP_COMMANDS");
        let mut declared = build_commands();
        passed.sort_unstable();
        declared.sort_unstable();
        assert_eq!(
            passed, declared,
            "ui/isolation/index.js and src-tauri/build.rs differ"
        );

        let backend = include_str!("../ui/src/backend.ts");
        let mut listened: Vec<&str> = backend
            .match_indices("listen<")
            .chain(backend.match_indices("listen(\""))
            .map(|(i, _)| {
                let rest = &backend[i..];
                let start = rest.find('"').unwrap() + 1;
                &rest[start..start + rest[start..].find('"').unwrap()]
            })
            .collect();
        let mut events = isolation_set("APP_EVENTS");
        listened.sort_unstable();
        events.sort_unstable();
        assert_eq!(
            listened, events,
            "the UI listens to events the isolation app refuses"
        );
    }

    #[test]
    fn the_window_runs_under_a_strict_policy_and_the_isolation_pattern() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).unwrap();
        let security = &conf["app"]["security"];
        assert_eq!(security["freezePrototype"], true);
        assert_eq!(security["pattern"]["use"], "isolation");
        let csp = security["csp"].as_str().unwrap();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find_map(|d| d.strip_prefix(name).map(str::trim))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
                .to_owned()
        };
        assert!(
            !csp.contains("unsafe-eval") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(directive("script-src "), "'self'");
        assert_eq!(directive("connect-src "), "ipc: http://ipc.localhost");
        assert_eq!(directive("object-src "), "'none'");
        // Frames fall back to default-src, to which Tauri adds the isolation frame's
        // origin (made anew at each build); mail frames come from the app's own scheme.
        assert!(
            !csp.contains("frame-src") && !csp.contains("child-src"),
            "{csp}"
        );
        assert_eq!(
            directive("default-src "),
            format!("'self' {0}: http://{0}.localhost", frame::SCHEME)
        );
        assert!(
            !csp.contains("https:"),
            "no remote origin in the app's policy: {csp}"
        );
    }

    fn build_commands() -> Vec<&'static str> {
        let build = include_str!("build.rs");
        build
            .split("const COMMANDS")
            .nth(1)
            .unwrap()
            .split("];")
            .next()
            .unwrap()
            .split('"')
            .skip(1)
            .step_by(2)
            .collect()
    }

    #[test]
    fn a_fresh_profile_starts_at_onboarding_and_is_locked() {
        let (app, _dir) = app();
        let main = window(&app, "main");

        let status = invoke(&main, "status", json!({})).unwrap();
        assert_eq!(status["state"], "none");
        assert_eq!(status["user"], serde_json::Value::Null);

        // Anything that needs the unlocked profile says so, with a stable code.
        let err = invoke(&main, "mail_accounts", json!({})).unwrap_err();
        assert_eq!(err["code"], "locked", "{err}");
        let err = invoke(&main, "open_message", json!({ "id": 1 })).unwrap_err();
        assert_eq!(err["code"], "locked", "{err}");
    }

    #[test]
    fn the_strength_meter_gets_the_gates_verdict_in_words() {
        let (app, _dir) = app();
        let main = window(&app, "main");

        let weak = invoke(
            &main,
            "check_password",
            json!({ "password": "Summer2024!", "user": "alice" }),
        )
        .unwrap();
        assert_eq!(weak["accepted"], false);
        assert!(weak["crackTime"].as_str().unwrap().len() > 2);
        assert!(!weak["suggestions"].as_array().unwrap().is_empty());

        let strong = invoke(
            &main,
            "check_password",
            json!({ "password": "tundra mosaic gravel whimsy plank", "user": "alice" }),
        )
        .unwrap();
        assert_eq!(strong["accepted"], true, "{strong}");
    }

    #[test]
    fn a_sync_server_that_does_not_answer_is_said_in_words() {
        let (app, dir) = app();
        let main = window(&app, "main");

        let err = invoke(
            &main,
            "create_account",
            json!({ "user": "alice", "password": "tundra mosaic gravel whimsy plank" }),
        )
        .unwrap_err();
        assert_eq!(err["code"], "sync_unreachable", "{err}");
        // Nothing half-made stays behind: the next start is onboarding again.
        assert!(!dir.path().join("profile").join("vault.sqlite3").exists());
        let status = invoke(&main, "status", json!({})).unwrap();
        assert_eq!(status["state"], "none");
    }

    #[test]
    fn only_web_links_open_in_the_browser() {
        let (app, _dir) = app();
        let main = window(&app, "main");

        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "mailto:a@b.example",
            "not a url",
        ] {
            let err = invoke(&main, "open_link", json!({ "url": bad })).unwrap_err();
            assert_eq!(err["code"], "bad_request", "{bad}: {err}");
        }
    }
}
