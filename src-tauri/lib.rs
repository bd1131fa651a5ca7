//! # Sealpost desktop shell
//!
//! The Tauri 2 process that hosts the web UI (`ui/`, embedded from `ui/dist` at compile
//! time) and answers its calls. The shell is deliberately thin: it owns the window, the
//! IPC boundary and its security (CSP in `tauri.conf.json`, per-window grants, the
//! isolation page), and nothing else. What Sealpost does is the core's API
//! ([`sealpost_core::api`]): a command converts its arguments, makes one call on the
//! [`Core`] and returns the answer or an [`AppError`].
//!
//! ## Reading order
//!
//! - [`run`] starts the real app; [`builder`] registers state and commands on any Tauri
//!   runtime, so tests run the same app on `tauri::test::mock_builder()`.
//! - `commands/list.rs`: the one list of commands. It becomes the invoke handler and the
//!   UI's TypeScript bindings here ([`bindings`]), and the ACL, the window's capability
//!   and the isolation allow-list in `build.rs`.
//! - [`commands`]: one small function per command.
//! - [`events`]: what the app tells the windows unasked, by name and payload.
//! - [`error`]: [`AppError`], the single `{ code, message }` shape the UI receives.
//! - [`frame`]: the mail frame's own URI scheme, serving an opened message's HTML.
//! - [`sync_server`]: the sync server, remote or the embedded one as a child process.
//!
//! The UI reaches this crate only through `ui/src/backend.ts`, on the generated
//! `ui/src/bindings.ts`.

pub mod commands;
pub mod error;
pub mod events;
pub mod frame;
pub mod sync_server;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sealpost_core::api::default_device_name;
use sealpost_core::{Core, CoreConfig, CoreEvent};
use tauri::Runtime;

pub use crate::error::AppError;
pub use crate::sync_server::SyncServer;

/// The runtime the app's commands serve: the real window, or in the unit tests Tauri's
/// mock runtime (the same commands, the same ACL, no window).
#[cfg(not(test))]
pub type AppRuntime = tauri::Wry;
/// The runtime the app's commands serve: the real window, or in the unit tests Tauri's
/// mock runtime (the same commands, the same ACL, no window).
#[cfg(test)]
pub type AppRuntime = tauri::test::MockRuntime;

/// The list's entries as a tauri-specta command collection.
macro_rules! app_commands {
    ($($module:ident :: $name:ident),* $(,)?) => {
        tauri_specta::collect_commands![$(crate::commands::$module::$name),*]
    };
}

/// The app's commands with their types: the invoke handler, and what the TypeScript
/// bindings are generated from. The event payloads are named in the bindings too.
pub fn bindings() -> tauri_specta::Builder<AppRuntime> {
    tauri_specta::Builder::<AppRuntime>::new()
        .commands(include!("commands/list.rs"))
        .typ::<AppError>()
        .typ::<events::MailProgress>()
        .typ::<events::MailChanged>()
        .typ::<events::OutboxEvent>()
        .typ::<events::MessageChanged>()
        .constant("EVENTS", events::EVENTS)
        // Ids and Unix times fit a JavaScript number exactly (below 2^53).
        .dangerously_cast_bigints_to_number()
        // One TypeScript type per Rust type (the views go one way each).
        .disable_serde_phases()
}

/// How the bindings are written: TypeScript, saying where they come from.
pub fn bindings_language() -> specta_typescript::Typescript {
    specta_typescript::Typescript::default().header(
        "// Generated from the app's commands (src-tauri/commands/list.rs) and the core's views\n\
         // (sealpost_core::api) by scripts/gen-bindings.sh. Do not edit.\n",
    )
}

/// Registers the app's plugins, state and commands on `builder`.
///
/// Shared by [`run`] and the tests. State goes here with `Builder::manage`, not in a
/// `setup` hook: `setup` runs only once the event loop is ready, which mock apps never
/// reach. Core events reach the windows once the app is set up.
pub fn builder(
    builder: tauri::Builder<AppRuntime>,
    sync: SyncServer,
    profile_dir: PathBuf,
) -> Result<tauri::Builder<AppRuntime>, AppError> {
    let handle: Arc<OnceLock<tauri::AppHandle<AppRuntime>>> = Arc::new(OnceLock::new());
    let sink = {
        let handle = Arc::clone(&handle);
        Arc::new(move |event: CoreEvent| {
            if let Some(app) = handle.get() {
                events::emit(app, event);
            }
        })
    };
    let core = Core::start(
        CoreConfig {
            profile_dir,
            server_url: sync.url.clone(),
            device_name: default_device_name("Sealpost desktop"),
            mail_extra_roots_pem: mail_extra_roots(),
            background: true,
            autoconfig_url: None,
        },
        sink,
    )?;
    let bindings = bindings();
    Ok(builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(sync)
        .register_asynchronous_uri_scheme_protocol(frame::SCHEME, {
            let core = core.clone();
            move |_ctx, request, responder| {
                let core = core.clone();
                tauri::async_runtime::spawn(async move {
                    responder.respond(frame::respond(&core, &request).await);
                });
            }
        })
        .manage(core)
        .setup(move |app| {
            let _ = handle.set(app.handle().clone());
            Ok(())
        })
        .invoke_handler(bindings.invoke_handler()))
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

fn data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Sealpost", "sealpost").map(|d| d.data_dir().to_owned())
}

/// The profile directory: `SEALPOST_PROFILE`, else the OS's data directory (the same
/// one the `sealpost` command line uses).
pub fn profile_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEALPOST_PROFILE") {
        return Some(PathBuf::from(dir));
    }
    data_dir().map(|d| d.join("profile"))
}

/// Starts the desktop app and blocks until it quits.
///
/// If Tauri cannot start (no display, broken WebKit, ...), the cause goes to stderr and
/// the process exits with status 1.
#[cfg(not(test))]
pub fn run() {
    let Some(profile) = profile_dir() else {
        eprintln!("sealpost: no data directory for the profile; set SEALPOST_PROFILE");
        std::process::exit(1);
    };
    let sync = SyncServer::from_env(data_dir().map(|d| d.join("server")));
    let app = builder(tauri::Builder::default(), sync, profile)
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

    /// The names of `commands/list.rs`, as `build.rs` reads them.
    fn listed() -> Vec<&'static str> {
        macro_rules! app_commands {
            ($($module:ident :: $name:ident),* $(,)?) => {
                vec![$(stringify!($name)),*]
            };
        }
        include!("commands/list.rs")
    }

    #[test]
    fn every_listed_command_is_registered_and_granted_to_the_main_window() {
        let (app, _dir) = app();
        let main = window(&app, "main");
        let names = listed();
        assert!(names.len() >= 40, "only {} commands listed", names.len());
        for name in names {
            // Missing arguments give a deserialisation error; an unknown or ungranted
            // command gives "not found" / "not allowed" instead.
            if let Err(e) = invoke(&main, name, json!({})) {
                let text = e.to_string();
                assert!(
                    !text.contains("not allowed") && !text.contains("not found"),
                    "{name}: {text}"
                );
            }
        }
    }

    #[test]
    fn the_generated_grants_and_isolation_lists_are_the_list() {
        let names = listed();
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).unwrap();
        let mut granted: Vec<String> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        let mut expected: Vec<String> = names
            .iter()
            .map(|n| format!("allow-{}", n.replace('_', "-")))
            .chain(["core:event:default".to_owned()])
            .collect();
        granted.sort();
        expected.sort();
        assert_eq!(
            granted, expected,
            "capabilities/default.json is stale: build again"
        );

        let js = include_str!("../ui/isolation/allowed.js");
        let set = |name: &str| -> Vec<&str> {
            let list = js
                .split(&format!("const {name} = new Set(["))
                .nth(1)
                .unwrap()
                .split("])")
                .next()
                .unwrap();
            list.split('"').skip(1).step_by(2).collect()
        };
        let (mut passed, mut commands) = (set("APP_COMMANDS"), names.clone());
        passed.sort_unstable();
        commands.sort_unstable();
        assert_eq!(
            passed, commands,
            "ui/isolation/allowed.js is stale: build again"
        );
        assert_eq!(set("APP_EVENTS"), events::EVENTS.to_vec());
    }

    /// `ui/src/bindings.ts` is what the commands and views generate now. With
    /// `SEALPOST_WRITE_BINDINGS=1` it is written instead (`scripts/gen-bindings.sh`).
    #[test]
    fn the_ui_bindings_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/bindings.ts");
        let fresh = tempfile::NamedTempFile::new().unwrap();
        bindings()
            .export(bindings_language(), fresh.path())
            .unwrap();
        let fresh = std::fs::read_to_string(fresh.path()).unwrap();
        if std::env::var_os("SEALPOST_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/bindings.ts is stale: run scripts/gen-bindings.sh and commit it"
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
