//! A throwaway PostgreSQL cluster for tests.
//!
//! [`PostgresCluster::start`] runs Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`):
//! `initdb` into a temporary directory, then `postgres` listening on 127.0.0.1 on a free
//! port, its unix socket inside the same directory, trust authentication, `fsync=off`.
//! It returns once the server accepts connections. [`PostgresCluster::create_database`]
//! makes a fresh database per test and returns its URL.
//!
//! `initdb` refuses to run as root, so when the tests run as root the directory is
//! handed to the `postgres` system user and every server program runs as that user
//! through `setpriv` (which `exec`s, so the child we hold *is* the postmaster).
//!
//! Nothing outlives the cluster: dropping it stops the server (`pg_ctl stop -m
//! immediate`, then `SIGKILL` if it lingers) and deletes the directory. A watchdog child
//! (`sh`, reading a pipe only this process holds) sends the postmaster `SIGQUIT` if the
//! test process dies without dropping the cluster. Every wait is bounded.

use crate::watchdog::Watchdog;
use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian's `postgresql-15` package puts the server programs.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client program (`psql`, `pg_isready`) may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long stopping may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when another process takes the one we picked.
const PORT_ATTEMPTS: usize = 5;
/// The superuser `initdb` creates.
const SUPERUSER: &str = "postgres";
/// Enough for several pools of several stores in parallel tests.
const MAX_CONNECTIONS: u32 = 300;

/// What can go wrong starting or using the cluster.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// A PostgreSQL program is missing.
    #[error("PostgreSQL 15 is not installed: {0} is missing (scripts/install-deps.sh installs it)")]
    NotInstalled(PathBuf),
    /// Running as root, but there is no `postgres` system user to run the server as.
    #[error("running as root, but there is no `postgres` user to run PostgreSQL as: {0}")]
    NoPostgresUser(String),
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("{what} failed ({status}): {output}")]
    Command {
        /// What was being done.
        what: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its output (or the server log).
        output: String,
    },
    /// A program or the server did not finish in time.
    #[error("{what} did not finish within {} s", .timeout.as_secs())]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound.
        timeout: Duration,
    },
    /// A database name outside `[A-Za-z0-9_]{1,63}` (names are put into SQL).
    #[error("invalid database name {0:?}: use 1 to 63 ASCII letters, digits or '_'")]
    InvalidName(String),
}

/// A running PostgreSQL cluster in a temporary directory; stopped and deleted on drop.
#[derive(Debug)]
pub struct PostgresCluster {
    server: Child,
    watchdog: Option<Watchdog>,
    port: u16,
    data_dir: PathBuf,
    run_as: Option<RunAs>,
    // Declared last so it is removed after the server has stopped.
    dir: TempDir,
}

impl PostgresCluster {
    /// Starts a cluster with `fsync=off` (fast; a crash of the machine loses it, which
    /// does not matter for tests).
    pub fn start() -> Result<Self, PostgresError> {
        Self::start_with_fsync(false)
    }

    /// Starts a cluster that flushes commits to disk like a production server
    /// (`fsync=on`, `synchronous_commit=on`), for measurements.
    pub fn start_durable() -> Result<Self, PostgresError> {
        Self::start_with_fsync(true)
    }

    fn start_with_fsync(fsync: bool) -> Result<Self, PostgresError> {
        for program in ["initdb", "postgres", "pg_ctl", "pg_isready", "psql"] {
            let path = bin(program);
            if !path.is_file() {
                return Err(PostgresError::NotInstalled(path));
            }
        }
        let run_as = RunAs::needed()?;
        let dir = tempfile::Builder::new()
            .prefix("sealpost-pg-")
            .tempdir()
            .map_err(io("creating the cluster directory"))?;
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))
                .map_err(io("handing the cluster directory to `postgres`"))?;
        }
        let data_dir = dir.path().join("data");

        let log = log_file(dir.path(), "initdb.log")?;
        let mut initdb = command(run_as.as_ref(), &bin("initdb"), dir.path());
        initdb
            .arg("--pgdata")
            .arg(&data_dir)
            .args(["--username", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"])
            .stdout(clone_file(&log)?)
            .stderr(log);
        let status = run_bounded(initdb, INITDB_TIMEOUT, "initdb")?.status;
        if !status.success() {
            return Err(PostgresError::Command {
                what: "initdb".into(),
                status,
                output: read_log(&dir.path().join("initdb.log")),
            });
        }

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut server = spawn_server(run_as.as_ref(), dir.path(), &data_dir, port, fsync)?;
            // Armed before the wait, so a test killed during start-up leaves nothing running.
            let mut watchdog = Watchdog::spawn(server.id(), "QUIT").ok();
            match wait_ready(&mut server, port, dir.path()) {
                Ok(()) => {
                    return Ok(Self {
                        server,
                        watchdog,
                        port,
                        data_dir,
                        run_as,
                        dir,
                    });
                }
                Err(Ready::PortTaken(e)) => {
                    // Someone took the port between our probe and the server's bind.
                    if let Some(w) = watchdog.take() {
                        w.disarm();
                    }
                    let _ = server.wait();
                    last_error = Some(e);
                }
                Err(Ready::Failed(e)) => {
                    if let Some(w) = watchdog.take() {
                        w.disarm();
                    }
                    stop_child(&mut server, run_as.as_ref(), &data_dir);
                    return Err(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| PostgresError::Timeout {
            what: "finding a free port".into(),
            timeout: START_TIMEOUT,
        }))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of the `postgres` database as the superuser, over TCP on loopback.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` as the superuser (whether or not it exists).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` (`[A-Za-z0-9_]{1,63}`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, PostgresError> {
        let valid = (1..=63).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(PostgresError::InvalidName(name.to_owned()));
        }
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.database_url(name))
    }

    /// Runs SQL through `psql` as the superuser in database `database`; returns its
    /// standard output (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, PostgresError> {
        let mut psql = Command::new(bin("psql"));
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", SUPERUSER])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = run_bounded(psql, CLIENT_TIMEOUT, "psql")?;
        if !output.status.success() {
            return Err(PostgresError::Command {
                what: format!("psql {sql:?}"),
                status: output.status,
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
        stop_child(&mut self.server, self.run_as.as_ref(), &self.data_dir);
        // `dir` (a TempDir) is removed when the fields drop, after this.
    }
}

/// The system user the server programs run as when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `Some` when running as root (initdb and postgres refuse root).
    fn needed() -> Result<Option<Self>, PostgresError> {
        if id(&["-u"])? != 0 {
            return Ok(None);
        }
        let uid =
            id(&["-u", SUPERUSER]).map_err(|e| PostgresError::NoPostgresUser(e.to_string()))?;
        let gid =
            id(&["-g", SUPERUSER]).map_err(|e| PostgresError::NoPostgresUser(e.to_string()))?;
        Ok(Some(Self { uid, gid }))
    }
}

/// Runs `id ARGS` and parses the number it prints.
fn id(args: &[&str]) -> Result<u32, PostgresError> {
    let mut cmd = Command::new("id");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = run_bounded(cmd, CLIENT_TIMEOUT, "id")?;
    let text = String::from_utf8_lossy(&output.stdout);
    match (output.status.success(), text.trim().parse()) {
        (true, Ok(n)) => Ok(n),
        _ => Err(PostgresError::Command {
            what: format!("id {}", args.join(" ")),
            status: output.status,
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        }),
    }
}

fn bin(program: &str) -> PathBuf {
    Path::new(BIN_DIR).join(program)
}

/// A command for a server program, as the `postgres` user when `run_as` says so.
fn command(run_as: Option<&RunAs>, program: &Path, cwd: &Path) -> Command {
    let mut cmd = match run_as {
        Some(user) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .args(["--init-groups", "--"])
                .arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

fn spawn_server(
    run_as: Option<&RunAs>,
    dir: &Path,
    data_dir: &Path,
    port: u16,
    fsync: bool,
) -> Result<Child, PostgresError> {
    let log = log_file(dir, "postgres.log")?;
    let durability = if fsync { "on" } else { "off" };
    let mut cmd = command(run_as, &bin("postgres"), dir);
    cmd.arg("-D")
        .arg(data_dir)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("max_connections={MAX_CONNECTIONS}"))
        .arg("-c")
        .arg(format!("fsync={durability}"))
        .arg("-c")
        .arg(format!("synchronous_commit={durability}"))
        .arg("-c")
        .arg(format!("full_page_writes={durability}"))
        .stdout(clone_file(&log)?)
        .stderr(log);
    cmd.spawn().map_err(io("starting postgres"))
}

enum Ready {
    /// The server could not bind its port: try another.
    PortTaken(PostgresError),
    /// Anything else.
    Failed(PostgresError),
}

/// Waits until the server answers on `port`, or exits, or [`START_TIMEOUT`] passes.
fn wait_ready(server: &mut Child, port: u16, dir: &Path) -> Result<(), Ready> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = server
            .try_wait()
            .map_err(|e| Ready::Failed(io("waiting for postgres")(e)))?
        {
            let log = read_log(&dir.join("postgres.log"));
            let e = PostgresError::Command {
                what: format!("postgres on port {port}"),
                status,
                output: log.clone(),
            };
            return Err(
                if log.contains("could not bind") || log.contains("already in use") {
                    Ready::PortTaken(e)
                } else {
                    Ready::Failed(e)
                },
            );
        }
        let mut probe = Command::new(bin("pg_isready"));
        probe
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-t",
                "2",
            ])
            .arg("-p")
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Ok(output) = run_bounded(probe, Duration::from_secs(5), "pg_isready")
            && output.status.success()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Ready::Failed(PostgresError::Timeout {
                what: format!(
                    "postgres accepting connections (log: {})",
                    read_log(&dir.join("postgres.log"))
                ),
                timeout: START_TIMEOUT,
            }));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the postmaster: `pg_ctl stop -m immediate`, then `SIGKILL` if it is still
/// there after [`STOP_TIMEOUT`]. Errors are ignored: this runs in `Drop`.
fn stop_child(server: &mut Child, run_as: Option<&RunAs>, data_dir: &Path) {
    if let Ok(None) = server.try_wait() {
        let mut pg_ctl = command(
            run_as,
            &bin("pg_ctl"),
            data_dir.parent().unwrap_or(data_dir),
        );
        pg_ctl
            .arg("stop")
            .arg("-D")
            .arg(data_dir)
            .args(["-m", "immediate", "-w", "-t"])
            .arg(STOP_TIMEOUT.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = run_bounded(pg_ctl, STOP_TIMEOUT + Duration::from_secs(5), "pg_ctl stop");
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match server.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => {
                let _ = server.kill();
                let _ = server.wait();
                return;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Runs `cmd` to completion, killing it after `timeout`. Piped output is read on helper
/// threads, so a chatty program cannot block on a full pipe.
fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Result<Output, PostgresError> {
    let mut child = cmd.spawn().map_err(io(what))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io(what))? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PostgresError::Timeout {
                what: what.to_owned(),
                timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
    };
    // The program has exited; its pipes close unless it left a grandchild holding them.
    let collect =
        |rx: mpsc::Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

/// A port on 127.0.0.1 that was free a moment ago (the server may still lose a race for
/// it; [`PostgresCluster::start`] then tries another).
fn free_port() -> Result<u16, PostgresError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

fn log_file(dir: &Path, name: &str) -> Result<File, PostgresError> {
    File::options()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .map_err(io("creating a log file"))
}

fn clone_file(file: &File) -> Result<File, PostgresError> {
    file.try_clone()
        .map_err(io("duplicating a log file handle"))
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> PostgresError + '_ {
    move |source| PostgresError::Io {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_serves_and_leaves_nothing_behind() {
        let cluster = PostgresCluster::start().unwrap();
        assert!(cluster.url().starts_with("postgres://postgres@127.0.0.1:"));
        assert_eq!(
            cluster.psql("postgres", "SELECT 40 + 2").unwrap().trim(),
            "42"
        );

        let url = cluster.create_database("conformance_1").unwrap();
        assert!(url.ends_with(&format!(":{}/conformance_1", cluster.port())));
        assert_eq!(
            cluster
                .psql("conformance_1", "SELECT current_database()")
                .unwrap()
                .trim(),
            "conformance_1"
        );
        // A second database of the same name is refused by the server.
        assert!(matches!(
            cluster.create_database("conformance_1"),
            Err(PostgresError::Command { .. })
        ));
        assert!(
            cluster
                .socket_dir()
                .join(format!(".s.PGSQL.{}", cluster.port()))
                .exists()
        );

        let pid = cluster.server.id();
        let dir = cluster.dir.path().to_owned();
        drop(cluster);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "postmaster {pid} still runs"
        );
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    #[test]
    fn two_clusters_run_side_by_side() {
        let a = PostgresCluster::start().unwrap();
        let b = PostgresCluster::start().unwrap();
        assert_ne!(a.port(), b.port());
        a.create_database("only_in_a").unwrap();
        let in_b = b
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'",
            )
            .unwrap();
        assert_eq!(in_b.trim(), "0");
    }

    #[test]
    fn database_names_are_checked_before_they_reach_sql() {
        let cluster = PostgresCluster::start().unwrap();
        for bad in [
            "",
            "x\"; DROP DATABASE postgres; --",
            "a-b",
            &"n".repeat(64),
        ] {
            assert!(matches!(
                cluster.create_database(bad),
                Err(PostgresError::InvalidName(_))
            ));
        }
    }

    /// Set in the child process of the watchdog test.
    const OWNER_ENV: &str = "SEALPOST_TESTKIT_PG_OWNER";

    /// The child's half of the next test: starts a cluster, says where, and waits to be
    /// killed. Does nothing in a normal run.
    #[test]
    fn owner_that_gets_killed() {
        if std::env::var_os(OWNER_ENV).is_none() {
            return;
        }
        let cluster = PostgresCluster::start().unwrap();
        println!(
            "CLUSTER {} {}",
            cluster.server.id(),
            cluster.dir.path().display()
        );
        thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn a_killed_test_process_leaves_no_server_running() {
        use std::io::{BufRead, BufReader};

        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "postgres::tests::owner_that_gets_killed",
                "--nocapture",
            ])
            .env(OWNER_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(owner.stdout.take().unwrap()).lines();
        let line = lines
            .find_map(|l| l.ok().filter(|l| l.starts_with("CLUSTER ")))
            .expect("the child started no cluster");
        let mut words = line.split(' ').skip(1);
        let pid: u32 = words.next().unwrap().parse().unwrap();
        let dir = PathBuf::from(words.next().unwrap());
        assert!(Path::new(&format!("/proc/{pid}")).exists());

        owner.kill().unwrap(); // SIGKILL: no destructor runs
        owner.wait().unwrap();
        // Gone, or a zombie waiting for a reaper that is not ours (pid 1 adopted it).
        let gone = || match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z')),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !gone() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = fs::remove_dir_all(&dir);
        assert!(gone(), "postmaster {pid} survived its owner");
    }
}
