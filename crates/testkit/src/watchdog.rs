//! A guard for servers the tests start: a small `sh` child that signals the server once
//! its standard input closes, which happens when the test process ends, however it ends
//! (a panic, an abort, a `SIGKILL`). Disarmed (killed before its stdin closes) when the
//! server is stopped normally, so it cannot signal a pid that has since been reused.

use std::process::{Child, ChildStdin, Command, Stdio};

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
