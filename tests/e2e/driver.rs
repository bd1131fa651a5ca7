//! The machinery of the end-to-end tests: a private X server (Xvfb), `tauri-driver` in
//! front of WebKitWebDriver, and a small W3C WebDriver client over HTTP — enough to type,
//! click, read and take screenshots in the real app window. Shared with `benches/app.rs`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a step may wait for the UI (a sync, a send) before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private X server for the windows of one test.
pub struct Display {
    pub name: String,
    _xvfb: Proc,
}

impl Display {
    pub fn start() -> Display {
        for n in 90..140u32 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([
                    format!(":{n}").as_str(),
                    "-screen",
                    "0",
                    "1280x900x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb is installed (scripts/install-deps.sh)");
            let xvfb = Proc(child);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if socket.exists() {
                    return Display {
                        name: format!(":{n}"),
                        _xvfb: xvfb,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("no X display could be started");
    }
}

/// `tauri-driver`, from PATH or Cargo's bin directory (scripts/e2e-deps.sh installs it).
fn tauri_driver() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin/tauri-driver"));
    if let Some(p) = cargo_bin.filter(|p| p.exists()) {
        return p;
    }
    PathBuf::from("tauri-driver")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running app, driven over WebDriver.
pub struct App {
    http: reqwest::blocking::Client,
    base: String,
    session: String,
    shots: PathBuf,
    display: String,
    pub name: String,
    _driver: Proc,
}

impl App {
    /// Starts the app binary under `display` with `env`, through a tauri-driver of its own.
    pub fn start(name: &str, display: &Display, env: &[(&str, String)], shots: &Path) -> App {
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new(tauri_driver());
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("DISPLAY", &display.name)
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .env_remove("SEALPOST_SERVER");
        // The driver's and the app's output, for when a step fails.
        std::fs::create_dir_all(shots).unwrap();
        let log = std::fs::File::create(shots.join(format!("{name}.log"))).unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let driver = Proc(cmd.spawn().expect(
            "tauri-driver is installed (scripts/e2e-deps.sh: cargo install tauri-driver --locked)",
        ));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(Instant::now() < end, "tauri-driver did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "wry",
            "tauri:options": { "application": env!("CARGO_BIN_EXE_sealpost-desktop") }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        std::fs::create_dir_all(shots).unwrap();
        App {
            http,
            base,
            session,
            shots: shots.to_path_buf(),
            display: display.name.clone(),
            name: name.to_owned(),
            _driver: driver,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().unwrap().json().unwrap();
        if let Some(err) = v["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    fn try_find(&self, css: &str) -> Vec<String> {
        // `xpath:` selects by XPath (text of buttons); anything else is a CSS selector.
        let (using, value) = match css.strip_prefix("xpath:") {
            Some(x) => ("xpath", x),
            None => ("css selector", css),
        };
        let v = self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({ "using": using, "value": value })),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `css` matches a displayed element; returns its id.
    pub fn wait(&self, css: &str) -> String {
        self.wait_for(css, PATIENCE)
    }

    pub fn wait_for(&self, css: &str, patience: Duration) -> String {
        let end = Instant::now() + patience;
        loop {
            for id in self.try_find(css) {
                let shown = self.call(
                    reqwest::Method::GET,
                    &format!("/element/{id}/displayed"),
                    None,
                );
                if shown == json!(true) {
                    return id;
                }
            }
            if Instant::now() > end {
                self.screenshot(&format!(
                    "timeout-{}",
                    css.replace(|c: char| !c.is_alphanumeric(), "_")
                ));
                panic!("{}: nothing shown matches {css}", self.name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether `css` matches a displayed element now.
    pub fn shows(&self, css: &str) -> bool {
        self.try_find(css).iter().any(|id| {
            self.call(
                reqwest::Method::GET,
                &format!("/element/{id}/displayed"),
                None,
            ) == json!(true)
        })
    }

    pub fn click(&self, css: &str) {
        let id = self.wait(css);
        let end = Instant::now() + PATIENCE;
        while !self.enabled_id(&id) {
            assert!(Instant::now() < end, "{}: {css} stays disabled", self.name);
            std::thread::sleep(Duration::from_millis(200));
        }
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.wait(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        );
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.wait(css);
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let end = Instant::now() + PATIENCE;
        loop {
            if self.shows(css) {
                let t = self.text(css);
                if t.contains(needle) {
                    return t;
                }
                if Instant::now() > end {
                    self.screenshot("timeout-text");
                    panic!("{}: {css} says {t:?}, not {needle:?}", self.name);
                }
            } else if Instant::now() > end {
                self.screenshot("timeout-text");
                panic!("{}: {css} is not shown", self.name);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn enabled_id(&self, id: &str) -> bool {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/enabled"),
            None,
        ) == json!(true)
    }

    pub fn enabled(&self, css: &str) -> bool {
        let id = self.wait(css);
        self.enabled_id(&id)
    }

    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let id = self.wait(css);
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/attribute/{name}"),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    pub fn property(&self, css: &str, name: &str) -> Value {
        let id = self.wait(css);
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/property/{name}"),
            None,
        )
    }

    /// Runs a script in the app window (reads only: the tests act as a user would).
    pub fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `f` inside the frame `css`, then returns to the page.
    pub fn in_frame<T>(&self, css: &str, f: impl FnOnce(&App) -> T) -> T {
        let id = self.wait(css);
        self.call(
            reqwest::Method::POST,
            "/frame",
            Some(json!({ "id": { "element-6066-11e4-a52e-4f735466cecf": id } })),
        );
        let out = f(self);
        self.call(reqwest::Method::POST, "/frame/parent", Some(json!({})));
        out
    }

    /// Runs an asynchronous script (it calls `arguments[0]` with its result) and waits
    /// up to `limit` for it.
    pub fn script_async(&self, script: &str, limit: Duration) -> Value {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.call(
            reqwest::Method::POST,
            "/timeouts",
            Some(json!({ "script": ms })),
        );
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Saves a screenshot of the app's display as `<shots>/<app>-<name>.png`: the X
    /// server's own pixels (`xwd`), so it shows what a user would see, and it works
    /// where WebKitWebDriver's screenshot command hangs (WebKitGTK 2.50 under Xvfb).
    pub fn screenshot(&self, name: &str) {
        let path = self.shots.join(format!("{}-{name}.png", self.name));
        let shell = format!(
            "xwd -root -silent -display {} | xwdtopnm 2>/dev/null | pnmtopng > '{}'",
            self.display,
            path.display()
        );
        let ok = Command::new("sh")
            .args(["-c", &shell])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{}: the screenshot {name} failed", self.name);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
    }
}
