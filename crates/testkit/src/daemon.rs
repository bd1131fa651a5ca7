//! What the mail servers' helpers share: a server process that is stopped on drop (and
//! by a watchdog if the test process dies), free loopback ports, waiting until a port
//! answers, bounded helper commands, system users.

use crate::watchdog::Watchdog;
use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to answer on its ports.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to stop after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong starting a server.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A program the server needs is not installed.
    #[error(
        "{0} is not installed (scripts/install-deps.sh or scripts/testkit-deps.sh installs it)"
    )]
    NotInstalled(String),
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A program ran and failed, or the server exited.
    #[error("{what} failed ({status}): {output}")]
    Command {
        /// What was being done.
        what: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its output or log.
        output: String,
    },
    /// The server did not answer in time.
    #[error("{what} did not answer within {} s; log: {log}", .timeout.as_secs())]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound.
        timeout: Duration,
        /// The server's log.
        log: String,
    },
    /// A test certificate could not be made.
    #[error(transparent)]
    Cert(#[from] crate::mailtls::CertError),
}

/// Maps an `io::Error` to [`DaemonError::Io`] with a description.
pub(crate) fn io(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        what: what.to_owned(),
        source,
    }
}

/// A running server process: `SIGTERM` on drop, `SIGKILL` if it lingers.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: &'static str,
    child: Child,
    watchdog: Option<Watchdog>,
}

impl Daemon {
    /// Spawns `cmd` and arms a watchdog that sends it `SIGTERM` if this process dies.
    pub(crate) fn spawn(name: &'static str, mut cmd: Command) -> Result<Self, DaemonError> {
        let child = cmd.spawn().map_err(io(name))?;
        let watchdog = Watchdog::spawn(child.id(), "TERM").ok();
        Ok(Self {
            name,
            child,
            watchdog,
        })
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until every port in `ports` accepts a TCP connection on 127.0.0.1.
    pub(crate) fn wait_ports(&mut self, ports: &[u16], log: &Path) -> Result<(), DaemonError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(io(self.name))? {
                return Err(DaemonError::Command {
                    what: self.name.to_owned(),
                    status,
                    output: read_log(log),
                });
            }
            let all = ports.iter().all(|port| {
                TcpStream::connect_timeout(
                    &(Ipv4Addr::LOCALHOST, *port).into(),
                    Duration::from_secs(1),
                )
                .is_ok()
            });
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DaemonError::Timeout {
                    what: self.name.to_owned(),
                    timeout: START_TIMEOUT,
                    log: read_log(log),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// Whether process `pid` has exited (gone, or a zombie left for another reaper).
pub fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z')),
    }
}

/// `n` distinct ports on 127.0.0.1 that were free a moment ago.
///
/// They are chosen below the kernel's ephemeral range (`ip_local_port_range`), never by
/// binding port 0: a port handed out by the kernel is released before the server binds
/// it, and in that gap any outgoing connection of a test running beside us may take it
/// as its local port (a server then fails to start, `Address already in use`). Ports
/// below the range are only ever taken by someone binding them on purpose.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, DaemonError> {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .clamp(FIRST_PORT + 1000, u16::MAX);
    // From a random start, upwards and round: processes beside us start elsewhere.
    let start = FIRST_PORT + random_below(low - FIRST_PORT);
    // All listeners are held until every port is chosen, so the ports differ.
    let listeners: Vec<TcpListener> = (start..low)
        .chain(FIRST_PORT..start)
        .filter_map(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok())
        .take(n)
        .collect();
    if listeners.len() < n {
        return Err(DaemonError::Io {
            what: "finding a free port".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no free port between {FIRST_PORT} and {low}"),
            ),
        });
    }
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(io("finding a free port"))
        })
        .collect()
}

/// The lowest port [`free_ports`] hands out (above the well-known and most registered
/// services' ports).
const FIRST_PORT: u16 = 20000;

/// A number below `n` that differs between processes and calls (no `rand` dependency
/// for this).
fn random_below(n: u16) -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let r = RandomState::new().hash_one((std::process::id(), Instant::now()));
    // Below `n`, so it fits.
    u16::try_from(r % u64::from(n.max(1))).unwrap_or(0)
}

/// A system user's uid and gid (`id -u NAME`, `id -g NAME`), or ours when `name` is `None`.
pub(crate) fn user_ids(name: Option<&str>) -> Result<(u32, u32), DaemonError> {
    let id = |flag: &str| -> Result<u32, DaemonError> {
        let mut cmd = Command::new("id");
        cmd.arg(flag);
        if let Some(name) = name {
            cmd.arg(name);
        }
        let out = cmd.output().map_err(io("running id"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| DaemonError::Command {
                what: format!("id {flag} {}", name.unwrap_or("")),
                status: out.status,
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// The name of the user this process runs as.
pub(crate) fn user_name() -> Result<String, DaemonError> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .map_err(io("running id"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs a helper program to completion (bounded by `timeout`), failing on a non-zero exit.
pub(crate) fn run_checked(
    mut cmd: Command,
    timeout: Duration,
    what: &str,
) -> Result<String, DaemonError> {
    let log = tempfile::NamedTempFile::new().map_err(io(what))?;
    let out = log.reopen().map_err(io(what))?;
    let err = log.reopen().map_err(io(what))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(io(what))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io(what))? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(DaemonError::Timeout {
                what: what.to_owned(),
                timeout,
                log: read_log(log.path()),
            });
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = read_log(log.path());
    if status.success() {
        Ok(output)
    } else {
        Err(DaemonError::Command {
            what: what.to_owned(),
            status,
            output,
        })
    }
}

/// A log file for a server's stdout and stderr.
pub(crate) fn log_file(path: &Path) -> Result<(File, File), DaemonError> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("creating a log file"))?;
    let clone = file.try_clone().map_err(io("duplicating a log file"))?;
    Ok((file, clone))
}

/// The text of a log file (the last 8 KiB), or why it could not be read.
pub fn read_log(path: &Path) -> String {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            let start = buf.len().saturating_sub(8192);
            text.push_str(&String::from_utf8_lossy(
                buf.get(start..).unwrap_or_default(),
            ));
        }
        Err(e) => text.push_str(&format!("(no log at {}: {e})", path.display())),
    }
    text
}

/// Writes `contents` to `path`.
pub(crate) fn write(path: &Path, contents: &str) -> Result<(), DaemonError> {
    fs::write(path, contents).map_err(|source| DaemonError::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

/// Sets `path`'s mode.
pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| DaemonError::Io {
        what: format!("chmod {mode:o} {}", path.display()),
        source,
    })
}

/// Makes `path` (and parents) with `mode`, owned by `owner` when given.
pub(crate) fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), DaemonError> {
    fs::create_dir_all(path).map_err(|source| DaemonError::Io {
        what: format!("mkdir {}", path.display()),
        source,
    })?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| DaemonError::Io {
            what: format!("chown {}", path.display()),
            source,
        })?;
    }
    chmod(path, mode)
}
