//! Guards for tests.
//!
//! - [`Watchdog`] (internal): a small `sh` child that signals a server the tests started
//!   once its standard input closes, which happens when the test process ends, however
//!   it ends (a panic, an abort, a `SIGKILL`). Disarmed (killed before its stdin closes)
//!   when the server is stopped normally, so it cannot signal a pid that has since been
//!   reused.
//! - [`deadline`]: a bound on a whole test. A test that hangs (a server that never
//!   answers, a lost wake-up) aborts the test process after the bound, with a message,
//!   instead of blocking CI; the servers' watchdogs then stop the servers.

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// An armed [`deadline`]; dropping it (the test ended in time) disarms it.
#[derive(Debug)]
pub struct Deadline {
    _disarm: mpsc::Sender<()>,
}

/// Aborts the process, naming `what`, unless the returned guard is dropped within
/// `limit`. Hold it for the whole test: `let _deadline = deadline(…);`.
pub fn deadline(limit: Duration, what: &str) -> Deadline {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_owned();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!(
                "DEADLINE: {what} did not finish within {} s; aborting the test process",
                limit.as_secs()
            );
            std::process::abort();
        }
    });
    Deadline { _disarm: tx }
}

/// An armed watchdog.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: ChildStdin,
}

impl Watchdog {
    /// Arms a watchdog that sends `pid` the signal `signal` (`TERM`, `QUIT`, ...).
    pub(crate) fn spawn(pid: u32, signal: &str) -> std::io::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read -r _; kill -{signal} \"$1\" 2>/dev/null"))
            .arg("sh")
            .arg(pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        match child.stdin.take() {
            Some(stdin) => Ok(Self { child, stdin }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::io::Error::other("the watchdog has no stdin pipe"))
            }
        }
    }

    /// Stops the watchdog without letting it fire.
    pub(crate) fn disarm(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.stdin);
    }
}
