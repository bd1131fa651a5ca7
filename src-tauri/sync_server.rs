//! Which sync server the app uses: `SEALPOST_SERVER` when set, else the embedded default,
//! which runs as a process of its own (`sealpost-server`, shipped beside the app's
//! binary): the desktop app is a client and links no server code (axum, the HSM layer,
//! PostgreSQL) at all.
//!
//! The child gets a pipe on its standard input and stops when that closes, so it ends
//! with the app however the app ends (a crash included). When the port is taken (most
//! often by another Sealpost window's server) the child exits at once and the app uses
//! the server already listening there.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where the embedded sync server listens: loopback only.
pub const EMBEDDED_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));

/// The server binary's file name.
const SERVER_BIN: &str = if cfg!(windows) {
    "sealpost-server.exe"
} else {
    "sealpost-server"
};

/// The app's sync server: its URL, and the embedded one's process while the app runs.
pub struct SyncServer {
    /// The server's base URL.
    pub url: String,
    child: Option<Child>,
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing its standard input stops it; kill it in case it hangs.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SyncServer {
    /// A server reached at `url`, run by someone else.
    pub fn remote(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            child: None,
        }
    }

    /// The configured server: `SEALPOST_SERVER`, or the embedded default started now
    /// with its state in `data` (the OS's data directory).
    pub fn from_env(data: Option<PathBuf>) -> Self {
        if let Ok(url) = std::env::var("SEALPOST_SERVER") {
            return Self::remote(url);
        }
        let url = format!("http://{EMBEDDED_LISTEN}");
        let Some(data) = data else {
            eprintln!("sealpost: no data directory; set SEALPOST_SERVER to use a sync server");
            return Self::remote(url);
        };
        let Some(binary) = server_binary() else {
            eprintln!(
                "sealpost: {SERVER_BIN} is not beside the app (nor set in SEALPOST_SERVER_BIN); \
                 using {url}"
            );
            return Self::remote(url);
        };
        match start(&binary, &data) {
            Ok(child) => {
                eprintln!(
                    "sealpost: embedded sync server {} on {url} (SQLite and a software key file \
                     in {}: fine for one machine, not an HSM)",
                    binary.display(),
                    data.display()
                );
                Self {
                    url,
                    child: Some(child),
                }
            }
            Err(e) => {
                eprintln!("sealpost: embedded sync server not started ({e}); using {url}");
                Self::remote(url)
            }
        }
    }
}

/// The server binary: `SEALPOST_SERVER_BIN`, else the one beside this executable.
fn server_binary() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("SEALPOST_SERVER_BIN") {
        return Some(PathBuf::from(given));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join(SERVER_BIN);
    beside.is_file().then_some(beside)
}

fn start(binary: &Path, data: &Path) -> std::io::Result<Child> {
    Command::new(binary)
        .arg("--data")
        .arg(data)
        .arg("--listen")
        .arg(EMBEDDED_LISTEN.to_string())
        .arg("--stop-when-stdin-closes")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
}
