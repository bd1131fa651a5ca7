//! What several integration tests share: a real `sealpost-server` process.
//!
//! The process is the binary this package builds. The address it bound is read from its
//! JSON log line `"listening"` on standard error; every line is kept for the test to
//! search. A guard kills the process when the test ends, passes or panics; every wait is
//! bounded.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// How long a process may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `sealpost-server`; killed and reaped on drop.
pub struct Process {
    pub child: Child,
    /// `http://ADDR` it listens on.
    pub base: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts the server with `args` (plus `--listen 127.0.0.1:0 --rate-per-second 0`)
    /// and `envs`, and waits (bounded) for its "listening" line.
    #[allow(dead_code, reason = "the package test spawns its own command line")]
    pub fn start<A: AsRef<OsStr>>(args: &[A], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealpost-server"));
        command
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--rate-per-second", "0"])
            .envs(envs.iter().copied());
        Self::spawn(command)
    }

    /// Starts `command` (a `sealpost-server` command line, perhaps wrapped) with standard
    /// error captured, and waits (bounded) for its "listening" line.
    pub fn spawn(mut command: Command) -> Self {
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Guarded from here on: a panic below kills it.
        let mut process = Self {
            child,
            base: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let stderr = process.child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = Arc::clone(&process.log);
        // Reads standard error to its end (so the server never blocks on a full pipe).
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening(&line) {
                    let _ = tx.send(addr);
                }
                log.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                process.addr = addr;
                process.base = format!("http://{addr}");
            }
            Err(_) => {
                let status = process.child.try_wait().unwrap();
                panic!(
                    "sealpost-server did not start listening ({status:?}):\n{}",
                    process.log.lock().unwrap().join("\n")
                );
            }
        }
        process
    }

    #[allow(dead_code, reason = "not every test target searches the log")]
    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// The last `n` log lines.
    #[allow(dead_code, reason = "not every test target prints the log")]
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log.iter()
            .rev()
            .take(n)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The value of the field `field` in the first log line that has it.
    #[allow(dead_code, reason = "not every test target reads log fields")]
    pub fn log_field(&self, field: &str) -> Option<String> {
        self.log.lock().unwrap().iter().find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            Some(v.get("fields")?.get(field)?.as_str()?.to_owned())
        })
    }
}

/// The bound address from a JSON log line `{"fields":{"message":"listening","listen":..}}`.
fn listening(line: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    fields.get("listen")?.as_str()?.parse().ok()
}
