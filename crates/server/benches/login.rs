//! Server-side OPAQUE logins per second per core, three figures side by side:
//!
//! (a) **the floor**: the bare server steps (`server_login_start` + `server_login_finish`,
//!     key material from an HMAC in memory) on one thread, N logins;
//! (b) **the full path**: logins over HTTP on loopback from 200 concurrent clients
//!     against the real service (SQLite + software HSM, then PostgreSQL if installed),
//!     its runtime pinned to one worker thread; server CPU per login and the latency of
//!     each login's two round trips;
//! (b') **the ceiling**: the same clients against a reference server that does only the
//!     bare OPAQUE steps and JSON over the same HTTP stack, keeping everything in memory
//!     (no store, no HSM, no logs): what any server of this API over HTTP must spend;
//! (c) **a sign-in on a new device** end to end (`sealpost_core::sync::sign_in`), and how
//!     much of it is not Argon2id.
//!
//! Run: `cargo bench -p sealpost-server --bench login` (`SEALPOST_BENCH_SECS` sets the
//! seconds per measured phase, default 6; `SEALPOST_BENCH_NO_POSTGRES=1` skips PostgreSQL,
//! `SEALPOST_BENCH_NO_SIGN_IN=1` figure (c);
//! `SEALPOST_BENCH_SQLITE_DIR` puts the SQLite file there, e.g. on tmpfs to see what the
//! fsyncs cost).
//!
//! # Keeping Argon2id out of the server's figures, honestly
//!
//! The KSF (Argon2id, 256 MiB, ~0.6 s) runs **only on the client**: in opaque-ke it is
//! called by `ClientRegistration::finish` and `ClientLogin::finish` and nowhere on the
//! server side. The bytes on the wire (RegistrationUpload, KE1, KE2, KE3) and the server's
//! work on them do not depend on which KSF the client used: the server stores the
//! record, evaluates the OPRF, runs 3DH and checks a MAC. So the bench's clients speak
//! OPAQUE through opaque-ke directly with a suite identical to
//! `sealpost_crypto::opaque::Suite` (Ristretto255, 3DH with SHA-512) except for
//! `Ksf = Identity`, and register and log in with it; the server runs the production code
//! unchanged. A client login then costs a few hundred microseconds instead of 0.6 s, so
//! 200 clients can load one server core; the alternatives were worse: precomputing
//! logins is impossible (each KE3 is bound to a KE2 the server makes live), and running
//! real Argon2id clients would need ~300 CPU-seconds per 500 logins on this 2-core
//! machine. Figure (c) runs the real suite, Argon2id included, against the same server,
//! which also shows that production clients and this server agree.
//!
//! # How server CPU is counted
//!
//! The server runs in this process on a tokio runtime with **one worker thread** (plus
//! tokio's blocking pool, where the store and the HSM calls run: they are server work
//! too). The 200 clients run in a **child process** (this binary, started again with
//! `SEALPOST_LOGIN_BENCH_CLIENT` set), so this process's CPU time (user + system,
//! `cpu_time::ProcessTime`) during a phase is the server's and nothing else's; CPU per
//! login is that over the logins the clients completed in the phase. "Logins per second
//! per core" is its inverse; the summary's figure is the mean of the three phases (closed
//! loop, 50 % and 80 % of capacity), and "full/floor" is floor CPU over full-path CPU.
//! PostgreSQL's own processes are measured apart (from `/proc/<pid>/stat`) and shown
//! beside.
//!
//! To show where the rest goes, the same clients then run bare HTTP at the same three
//! rates: two `GET /v1/health` round trips per "login" through the same router,
//! middleware, runtime and sockets, and no other work. The summary splits a login's
//! server CPU into the floor, that transport, and the remainder (store, HSM, JSON,
//! logs).
//!
//! # Latency
//!
//! By Little's law, 200 clients that log in back to back see a latency of
//! 200 / throughput whatever the server does, so the closed-loop phase gives the
//! throughput and the latencies are measured in **open-loop** phases instead: each of
//! the 200 clients starts logins on its own schedule so that together they offer a fixed
//! share (50 % and 80 %) of the measured capacity; p50 and p99 are of the sum of a
//! login's two round trips (`/v1/login/start` + `/v1/login/finish`) as the client sees
//! them, client-side crypto between them excluded.
//!
//! The machine has 2 cores: the clients' process takes CPU from the server's during the
//! runs, which lowers throughput but not the CPU counted per login.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::{ProcessTime, ThreadTime};
use hmac::{Hmac, Mac};
use opaque_ke::ksf::Identity;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
    Ristretto255, TripleDh,
};
use rand::Rng;
use rand::rngs::OsRng;
use sealpost_crypto::Password;
use sealpost_crypto::kdf::{Argon2Params, derive_kek};
use sealpost_crypto::opaque::{self, Ids, ServerKeys};
use sealpost_proto as proto;
use sealpost_server::clock::SystemClock;
use sealpost_server::hsm::SoftwareHsm;
use sealpost_server::service::{Service, ServiceConfig};
use sealpost_server::store::{PostgresStore, SqliteStore, Store};
use serde::{Deserialize, Serialize};
use sha2::Sha512;

const CLIENTS: usize = 200;
const FLOOR_LOGINS: usize = 3000;
const PW: &[u8] = b"tundra mosaic gravel whimsy plank";
const SERVER_ID: &str = "sealpost";
const CLIENT_ENV: &str = "SEALPOST_LOGIN_BENCH_CLIENT";

/// `sealpost_crypto::opaque::Suite` with the KSF swapped for the identity: the same wire
/// messages and the same server work (see the module's doc).
struct BenchSuite;

impl opaque_ke::CipherSuite for BenchSuite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, Sha512>;
    type Ksf = Identity;
}

fn ids(user: &str) -> Identifiers<'_> {
    Identifiers {
        client: Some(user.as_bytes()),
        server: Some(SERVER_ID.as_bytes()),
    }
}

fn main() {
    if let Ok(url) = std::env::var(CLIENT_ENV) {
        client_main(&url);
        return;
    }
    let secs: f64 = std::env::var("SEALPOST_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6.0);
    let started = Instant::now();
    println!(
        "sealpost-server login bench: {} CPUs, {CLIENTS} clients, {secs} s per measured phase",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let logs = tempfile::tempdir().unwrap();
    install_json_logs(&logs.path().join("server.log"));

    let floor = bare_floor();
    let ceiling = ceiling(secs);

    // SEALPOST_BENCH_SQLITE_DIR=/dev/shm puts the database on tmpfs (fsync is then free):
    // a diagnostic for what durability costs, not a configuration to run.
    let dir = match std::env::var_os("SEALPOST_BENCH_SQLITE_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let server = BenchServer::start(|| async {
        Arc::new(SqliteStore::open(&dir.path().join("server.sqlite3")).unwrap()) as Arc<dyn Store>
    });
    let sqlite = full_path(
        "SQLite (synchronous=FULL) + software HSM",
        &server,
        secs,
        None,
    );
    if std::env::var_os("SEALPOST_BENCH_NO_SIGN_IN").is_none() {
        sign_in_end_to_end(&server);
    }
    drop(server);

    let mut rows = vec![("SQLite + software HSM", sqlite)];
    if std::env::var_os("SEALPOST_BENCH_NO_POSTGRES").is_none() {
        match sealpost_testkit::postgres::PostgresCluster::start_durable() {
            Ok(cluster) => {
                let url = cluster.create_database("bench").unwrap();
                let server = BenchServer::start(|| async move {
                    Arc::new(PostgresStore::connect(&url).await.unwrap()) as Arc<dyn Store>
                });
                let pg = full_path(
                    "PostgreSQL 15 (fsync=on) + software HSM",
                    &server,
                    secs,
                    Some(&cluster),
                );
                rows.push(("PostgreSQL + software HSM", pg));
            }
            Err(e) => println!("\nPostgreSQL skipped: {e}"),
        }
    }

    println!("\n== summary: server CPU per login, one core ==");
    println!(
        "  floor (bare OPAQUE server steps)     {:>7.1} µs/login  {:>6.0} logins/s/core",
        floor,
        1e6 / floor
    );
    println!(
        "  ceiling (floor + HTTP + JSON only)   {:>7.1} µs/login  {:>6.0} logins/s/core  \
         floor/ceiling {:>4.0} %: the most any server of this API over HTTP reaches here",
        ceiling.cpu_us,
        1e6 / ceiling.cpu_us,
        100.0 * floor / ceiling.cpu_us,
    );
    for (label, f) in &rows {
        println!(
            "  {label:<36} {:>7.1} µs/login  {:>6.0} logins/s/core  full/floor {:>4.0} %  \
             p99 at 50 % load {:.1} ms (target: >= 80 %, < 20 ms)",
            f.cpu_us,
            1e6 / f.cpu_us,
            100.0 * floor / f.cpu_us,
            f.p99_ms_at_half,
        );
    }
    println!("  where a login's server CPU goes (means of the same three rates):");
    for (label, f) in &rows {
        println!(
            "  {label:<36} floor {floor:>6.1} µs + bare HTTP (2 round trips) {:>6.1} µs + \
             store, HSM, JSON, logs {:>6.1} µs",
            f.http_us,
            f.cpu_us - floor - f.http_us,
        );
    }
    println!("  beyond the ceiling (store, HSM layer, logs, the rate limit):");
    for (label, f) in &rows {
        println!(
            "  {label:<36} {:>6.1} µs/login; full path at {:>4.0} % of the ceiling's rate",
            f.cpu_us - ceiling.cpu_us,
            100.0 * ceiling.cpu_us / f.cpu_us,
        );
    }
    println!("total bench time {:.0} s", started.elapsed().as_secs_f64());
}

/// Logs as the server binary writes them (JSON lines, info level), to a file.
fn install_json_logs(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::sync::Mutex::new(file))
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
}

// ---------------------------------------------------------------- (a) the floor

/// A user registered against `keys` with key material `km`; returns the record.
fn register_bare(keys: &ServerKeys, km: &sealpost_crypto::SecretBytes<32>, user: &str) -> Vec<u8> {
    let start = ClientRegistration::<BenchSuite>::start(&mut OsRng, PW).unwrap();
    let response = opaque::server_registration_start(keys, km, &start.message.serialize()).unwrap();
    let finish = start
        .state
        .finish(
            &mut OsRng,
            PW,
            RegistrationResponse::deserialize(&response).unwrap(),
            ClientRegistrationFinishParameters::new(ids(user), None),
        )
        .unwrap();
    opaque::server_registration_finish(&finish.message.serialize()).unwrap()
}

/// Figure (a): CPU µs per login of the bare server steps on this thread.
fn bare_floor() -> f64 {
    println!("\n== (a) floor: bare OPAQUE server steps, one thread, {FLOOR_LOGINS} logins ==");
    let (keys, _) = ServerKeys::generate().unwrap();
    let seed = [7u8; 64];
    let key_material = |user: &str| {
        let mut mac = Hmac::<Sha512>::new_from_slice(&seed).unwrap();
        mac.update(&opaque::oprf_hmac_message(user.as_bytes()));
        let out: [u8; 64] = mac.finalize().into_bytes().into();
        opaque::key_material_from_hmac(&out)
    };
    let user = "floor";
    let server_ids = Ids {
        user: user.as_bytes(),
        server: SERVER_ID.as_bytes(),
    };
    let record = register_bare(&keys, &key_material(user), user);

    // Client first messages, untimed (no KSF in them anyway).
    let starts: Vec<_> = (0..FLOOR_LOGINS)
        .map(|_| ClientLogin::<BenchSuite>::start(&mut OsRng, PW).unwrap())
        .collect();
    let ke1s: Vec<Vec<u8>> = starts
        .iter()
        .map(|s| s.message.serialize().to_vec())
        .collect();

    // Timed: HMAC key material + server_login_start (record deserialised each time).
    let (cpu, wall) = (ThreadTime::now(), Instant::now());
    let server_starts: Vec<_> = ke1s
        .iter()
        .map(|ke1| {
            opaque::server_login_start(&keys, &key_material(user), Some(&record), ke1, server_ids)
                .unwrap()
        })
        .collect();
    let start_cpu = cpu.elapsed().as_secs_f64();
    let start_wall = wall.elapsed().as_secs_f64();

    // Client finishes, untimed.
    let finishes: Vec<_> = starts
        .into_iter()
        .zip(&server_starts)
        .map(|(s, (_, ke2))| {
            s.state
                .finish(
                    &mut OsRng,
                    PW,
                    CredentialResponse::deserialize(ke2).unwrap(),
                    ClientLoginFinishParameters::new(None, ids(user), None),
                )
                .unwrap()
        })
        .collect();

    // Timed: server_login_finish.
    let (cpu, wall) = (ThreadTime::now(), Instant::now());
    let keys_out: Vec<_> = server_starts
        .iter()
        .zip(&finishes)
        .map(|((state, _), fin)| {
            opaque::server_login_finish(&state.0, &fin.message.serialize(), server_ids).unwrap()
        })
        .collect();
    let finish_cpu = cpu.elapsed().as_secs_f64();
    let finish_wall = wall.elapsed().as_secs_f64();
    for (k, fin) in keys_out.iter().zip(&finishes) {
        assert_eq!(k.expose().as_slice(), fin.session_key.as_slice());
    }

    // For reference: the fake answer (no record) that unknown and locked accounts get.
    let (cpu, n) = (ThreadTime::now(), FLOOR_LOGINS / 3);
    for ke1 in ke1s.iter().take(n) {
        opaque::server_login_start(&keys, &key_material(user), None, ke1, server_ids).unwrap();
    }
    let fake_us = cpu.elapsed().as_secs_f64() / n as f64 * 1e6;

    let n = FLOOR_LOGINS as f64;
    let per = (start_cpu + finish_cpu) / n * 1e6;
    println!(
        "  server_login_start  {:>7.1} µs CPU ({:.1} µs wall)",
        start_cpu / n * 1e6,
        start_wall / n * 1e6
    );
    println!(
        "  server_login_finish {:>7.1} µs CPU ({:.1} µs wall)",
        finish_cpu / n * 1e6,
        finish_wall / n * 1e6
    );
    println!(
        "  floor: {per:.1} µs CPU per login = {:.0} logins/s/core",
        1e6 / per
    );
    println!("  (a fake KE2 for an unknown or locked account: {fake_us:.1} µs)");
    per
}

// ---------------------------------------------------------------- (b) the full path

/// The real service and router on a one-worker runtime in this process.
struct BenchServer {
    addr: SocketAddr,
    rt: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _hsm_dir: tempfile::TempDir,
}

impl BenchServer {
    fn start<F, Fut>(store: F) -> Self
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Arc<dyn Store>>,
    {
        let hsm_dir = tempfile::tempdir().unwrap();
        let hsm = Arc::new(SoftwareHsm::open_or_create(&hsm_dir.path().join("hsm.key")).unwrap());
        Self::serve(hsm_dir, || async move {
            let store = store().await;
            let config = ServiceConfig {
                server_id: SERVER_ID.into(),
                rate_per_second: 0.0,
                ..ServiceConfig::default()
            };
            let service = Service::new(config, store, hsm, Arc::new(SystemClock))
                .await
                .map_err(|e| e.message)
                .unwrap();
            sealpost_server::routes::router(Arc::new(service))
        })
    }

    /// Serves the router `make` builds (on the runtime) like the server binary does.
    fn serve<F, Fut>(hsm_dir: tempfile::TempDir, make: F) -> Self
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = axum::Router>,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = rt.block_on(async move {
            let router = make().await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(sealpost_server::tls::serve(listener, None, router, async {
                let _ = rx.await;
            }));
            addr
        });
        Self {
            addr,
            rt,
            shutdown: Some(tx),
            _hsm_dir: hsm_dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Let the serve task see the signal before the runtime goes.
        self.rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    }
}

/// What the clients' process reports for one phase.
#[derive(Debug, Serialize, Deserialize)]
struct PhaseReport {
    logins: u64,
    errors: u64,
    first_error: Option<String>,
    wall_s: f64,
    /// Percentiles of a login's two round trips together, ms: p50, p90, p99, max.
    both_ms: [f64; 4],
    /// `/v1/login/start` alone: p50, p99.
    start_ms: [f64; 2],
    /// `/v1/login/finish` alone: p50, p99.
    finish_ms: [f64; 2],
}

/// Figures of one full-path run.
struct FullPath {
    cpu_us: f64,
    p99_ms_at_half: f64,
    /// Server CPU per pair of bare HTTP round trips at the same rates, µs.
    http_us: f64,
}

/// The clients' process, driven line by line.
struct Clients {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Clients {
    fn spawn(url: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CLIENT_ENV, url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut c = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(c.line(), "ready");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "the clients' process stopped");
        l.trim_end().to_owned()
    }

    /// Runs a phase: `rate` logins/s in total (open loop) or back to back (None).
    fn run(&mut self, secs: f64, rate: Option<f64>) -> PhaseReport {
        self.run_kind("run", secs, rate)
    }

    /// Runs a phase of bare HTTP: each "login" is two `GET /v1/health` round trips.
    fn ping(&mut self, secs: f64, rate: Option<f64>) -> PhaseReport {
        self.run_kind("ping", secs, rate)
    }

    fn run_kind(&mut self, kind: &str, secs: f64, rate: Option<f64>) -> PhaseReport {
        writeln!(self.stdin, "{kind} {secs} {}", rate.unwrap_or(0.0)).unwrap();
        self.stdin.flush().unwrap();
        serde_json::from_str(&self.line()).unwrap()
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of the cluster's postmaster (found by its data directory
/// on its command line) and its children, from `/proc` (clock ticks of 10 ms).
fn postgres_cpu_s(cluster: &sealpost_testkit::postgres::PostgresCluster) -> f64 {
    let dir = cluster.socket_dir().to_string_lossy().into_owned();
    let mut procs = Vec::new(); // (pid, ppid, ticks, is the postmaster)
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((comm, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !comm.ends_with("(postgres") {
            continue;
        }
        // After "comm) ": the state is field 3, ppid 4, utime 14 and stime 15.
        let f: Vec<&str> = rest.split(' ').collect();
        let ppid = f[1].parse::<u32>().unwrap_or(0);
        let ticks = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let postmaster = String::from_utf8_lossy(&cmdline).contains(&dir);
        procs.push((pid, ppid, ticks, postmaster));
    }
    let Some(&(master, ..)) = procs.iter().find(|p| p.3) else {
        return 0.0;
    };
    let ticks: u64 = procs
        .iter()
        .filter(|p| p.0 == master || p.1 == master)
        .map(|p| p.2)
        .sum();
    ticks as f64 / 100.0
}

fn full_path(
    label: &str,
    server: &BenchServer,
    secs: f64,
    postgres: Option<&sealpost_testkit::postgres::PostgresCluster>,
) -> FullPath {
    println!("\n== (b) full path over HTTP: {label}, server on 1 worker thread ==");
    logins_over_http(server, secs, postgres, true)
}

/// The three measured phases of logins (closed loop, 50 % and 80 % of capacity) and,
/// with `transport`, the same rates of bare HTTP.
fn logins_over_http(
    server: &BenchServer,
    secs: f64,
    postgres: Option<&sealpost_testkit::postgres::PostgresCluster>,
    transport: bool,
) -> FullPath {
    let t = Instant::now();
    let mut clients = Clients::spawn(&server.url());
    println!(
        "  {CLIENTS} accounts registered in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    clients.run(2.0, None); // warm-up

    let mut measure = |rate: Option<f64>| {
        let pg0 = postgres.map(postgres_cpu_s);
        let cpu = ProcessTime::now();
        let r = clients.run(secs, rate);
        let cpu_s = cpu.elapsed().as_secs_f64();
        let pg_s = postgres.zip(pg0).map(|(c, p0)| postgres_cpu_s(c) - p0);
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        let cpu_us = cpu_s / r.logins as f64 * 1e6;
        let offered = rate.map_or("closed loop".to_owned(), |r| format!("{r:.0}/s offered"));
        println!(
            "  {offered:>15}: {:>6.0} logins/s  server {:>6.1} µs CPU/login ({:>4.0} % of a core){}  \
             2 round trips p50 {:>6.2} ms p90 {:>6.2} p99 {:>6.2} max {:>7.2}  \
             (start p50/p99 {:.2}/{:.2}, finish {:.2}/{:.2})",
            r.logins as f64 / r.wall_s,
            cpu_us,
            100.0 * cpu_s / r.wall_s,
            pg_s.map_or(String::new(), |p| format!(
                " + PostgreSQL {:.1} µs/login",
                p / r.logins as f64 * 1e6
            )),
            r.both_ms[0],
            r.both_ms[1],
            r.both_ms[2],
            r.both_ms[3],
            r.start_ms[0],
            r.start_ms[1],
            r.finish_ms[0],
            r.finish_ms[1],
        );
        (r, cpu_us)
    };
    let (closed, closed_cpu) = measure(None);
    let capacity = closed.logins as f64 / closed.wall_s;
    let (half, half_cpu) = measure(Some(capacity * 0.5));
    let (_, busy_cpu) = measure(Some(capacity * 0.8));

    // The transport alone at the same three rates: two small GETs per "login", through
    // the same router, middleware, runtime and sockets, and no other work. What a login
    // costs beyond this and the floor is the store, the HSM, JSON and the logs.
    let mut http = Vec::new();
    for share in [1.0, 0.5, 0.8].into_iter().filter(|_| transport) {
        let cpu = ProcessTime::now();
        let r = clients.ping(secs, Some(capacity * share));
        let cpu_s = cpu.elapsed().as_secs_f64();
        assert_eq!(r.errors, 0, "{:?}", r.first_error);
        let us = cpu_s / r.logins as f64 * 1e6;
        println!(
            "  {:>15}: bare HTTP, 2 x GET /v1/health: server {us:>6.1} µs CPU per pair  \
             p50 {:.2} ms p99 {:.2}",
            format!("{:.0}/s offered", capacity * share),
            r.both_ms[0],
            r.both_ms[2],
        );
        http.push(us);
    }
    drop(clients);
    let cpu_us = (closed_cpu + half_cpu + busy_cpu) / 3.0;
    FullPath {
        cpu_us,
        p99_ms_at_half: half.both_ms[2],
        http_us: http.iter().sum::<f64>() / http.len().max(1) as f64,
    }
}

// ---------------------------------------------------------------- (b') the ceiling

/// A reference server for the same four calls that does only what no server of this API
/// can skip: the bare OPAQUE steps (as in the floor), JSON in and out, and the same HTTP
/// stack (axum, hyper, `sealpost_server::tls::serve`, one worker thread). Records,
/// pending logins and blobs live in maps in memory: nothing is charged, sealed, logged
/// or stored. Its CPU per login is the best any server speaking this API over HTTP could
/// do on this machine, so `floor / ceiling` is the highest full/floor ratio there is to
/// reach, and `ceiling → full path` is what our store, HSM layer and logs cost.
struct Ceiling {
    keys: ServerKeys,
    accounts: std::sync::Mutex<std::collections::HashMap<String, CeilingAccount>>,
    /// Pending id → (user, state).
    pending: std::sync::Mutex<std::collections::HashMap<String, (String, Vec<u8>)>>,
}

/// What the ceiling keeps of an account.
struct CeilingAccount {
    record: Vec<u8>,
    cloud_wrap: Vec<u8>,
    settings: Vec<u8>,
}

type CeilingState = axum::extract::State<Arc<Ceiling>>;
type CeilingError = (axum::http::StatusCode, String);

fn ceiling_bad(e: impl std::fmt::Display) -> CeilingError {
    (axum::http::StatusCode::BAD_REQUEST, e.to_string())
}

impl Ceiling {
    fn router() -> axum::Router {
        use axum::routing::post;
        let (keys, _) = ServerKeys::generate().unwrap();
        let state = Arc::new(Self {
            keys,
            accounts: Default::default(),
            pending: Default::default(),
        });
        axum::Router::new()
            .route("/v1/register/start", post(Self::register_start))
            .route("/v1/register/finish", post(Self::register_finish))
            .route("/v1/login/start", post(Self::login_start))
            .route("/v1/login/finish", post(Self::login_finish))
            .with_state(state)
    }

    /// The user's OPRF key material: an HMAC under a seed in memory, as in the floor.
    fn key_material(user: &str) -> sealpost_crypto::SecretBytes<32> {
        let mut mac = Hmac::<Sha512>::new_from_slice(&[7u8; 64]).unwrap();
        mac.update(&opaque::oprf_hmac_message(user.as_bytes()));
        let out: [u8; 64] = mac.finalize().into_bytes().into();
        opaque::key_material_from_hmac(&out)
    }

    fn id() -> String {
        format!("{:032x}", OsRng.r#gen::<u128>())
    }

    async fn register_start(
        axum::extract::State(c): CeilingState,
        axum::Json(req): axum::Json<proto::RegisterStart>,
    ) -> Result<axum::Json<proto::RegisterStarted>, CeilingError> {
        let response = opaque::server_registration_start(
            &c.keys,
            &Self::key_material(&req.user),
            req.registration_request.as_slice(),
        )
        .map_err(ceiling_bad)?;
        let id = Self::id();
        c.pending
            .lock()
            .unwrap()
            .insert(id.clone(), (req.user, Vec::new()));
        Ok(axum::Json(proto::RegisterStarted {
            registration_id: id,
            registration_response: proto::Bytes(response),
        }))
    }

    async fn register_finish(
        axum::extract::State(c): CeilingState,
        axum::Json(req): axum::Json<proto::RegisterFinish>,
    ) -> Result<axum::http::StatusCode, CeilingError> {
        let (user, _) = c
            .pending
            .lock()
            .unwrap()
            .remove(&req.registration_id)
            .ok_or_else(|| ceiling_bad("no such registration"))?;
        let record = opaque::server_registration_finish(req.registration_upload.as_slice())
            .map_err(ceiling_bad)?;
        c.accounts.lock().unwrap().insert(
            user,
            CeilingAccount {
                record,
                cloud_wrap: req.cloud_wrap.0,
                settings: req.settings.0,
            },
        );
        Ok(axum::http::StatusCode::NO_CONTENT)
    }

    async fn login_start(
        axum::extract::State(c): CeilingState,
        axum::Json(req): axum::Json<proto::LoginStart>,
    ) -> Result<axum::Json<proto::LoginStarted>, CeilingError> {
        let record = c
            .accounts
            .lock()
            .unwrap()
            .get(&req.user)
            .map(|a| a.record.clone());
        let ids = Ids {
            user: req.user.as_bytes(),
            server: SERVER_ID.as_bytes(),
        };
        let (state, ke2) = opaque::server_login_start(
            &c.keys,
            &Self::key_material(&req.user),
            record.as_deref(),
            req.credential_request.as_slice(),
            ids,
        )
        .map_err(ceiling_bad)?;
        let id = Self::id();
        c.pending
            .lock()
            .unwrap()
            .insert(id.clone(), (req.user, state.0.clone()));
        Ok(axum::Json(proto::LoginStarted {
            login_id: id,
            credential_response: proto::Bytes(ke2),
        }))
    }

    async fn login_finish(
        axum::extract::State(c): CeilingState,
        axum::Json(req): axum::Json<proto::LoginFinish>,
    ) -> Result<axum::Json<proto::LoginFinished>, CeilingError> {
        let (user, state) = c
            .pending
            .lock()
            .unwrap()
            .remove(&req.login_id)
            .ok_or_else(|| ceiling_bad("no such login"))?;
        let ids = Ids {
            user: user.as_bytes(),
            server: SERVER_ID.as_bytes(),
        };
        let session_key =
            opaque::server_login_finish(&state, req.credential_finalization.as_slice(), ids)
                .map_err(ceiling_bad)?;
        std::hint::black_box(opaque::session_token(&session_key));
        let (cloud_wrap, settings) = c
            .accounts
            .lock()
            .unwrap()
            .get(&user)
            .map(|a| (a.cloud_wrap.clone(), a.settings.clone()))
            .ok_or_else(|| ceiling_bad("no such account"))?;
        Ok(axum::Json(proto::LoginFinished {
            expires_at: 0,
            failed_attempts: 0,
            cloud_wrap: proto::Bytes(cloud_wrap),
            settings: proto::Settings {
                version: 1,
                blob: proto::Bytes(settings),
            },
        }))
    }
}

/// Figure (b'): CPU µs per login of the ceiling server, at the same three rates.
fn ceiling(secs: f64) -> FullPath {
    println!(
        "\n== (b') ceiling: the same calls over the same HTTP stack, bare OPAQUE steps and \
         JSON only, nothing stored (1 worker thread) =="
    );
    let server = BenchServer::serve(tempfile::tempdir().unwrap(), || async { Ceiling::router() });
    logins_over_http(&server, secs, None, false)
}

// ---------------------------------------------------------------- the clients' process

fn client_main(url: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url: Arc<str> = url.into();
    let https: Vec<reqwest::Client> = (0..CLIENTS)
        .map(|_| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
        })
        .collect();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, http) in https.iter().enumerate() {
            let (http, url) = (http.clone(), url.clone());
            set.spawn(async move { register(&http, &url, &user(i)).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split(' ');
        match words.next() {
            Some(kind @ ("run" | "ping")) => {
                let secs: f64 = words.next().unwrap().parse().unwrap();
                let rate: f64 = words.next().unwrap().parse().unwrap();
                let report = rt.block_on(phase(&https, &url, secs, rate, kind == "ping"));
                println!("{}", serde_json::to_string(&report).unwrap());
            }
            _ => return,
        }
    }
}

fn user(i: usize) -> String {
    format!("bench{i}")
}

fn device_id(i: usize) -> String {
    format!("{i:032x}")
}

async fn post<B: Serialize, R: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    body: &B,
) -> Result<Option<R>, String> {
    let resp = http
        .post(format!("{url}{path}"))
        .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "{path}: {status} {}",
            resp.text().await.unwrap_or_default()
        ));
    }
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    resp.json().await.map(Some).map_err(|e| e.to_string())
}

async fn register(http: &reqwest::Client, url: &str, user: &str) {
    let start = ClientRegistration::<BenchSuite>::start(&mut OsRng, PW).unwrap();
    let started: proto::RegisterStarted = post(
        http,
        url,
        "/v1/register/start",
        &proto::RegisterStart {
            user: user.to_owned(),
            registration_request: proto::Bytes(start.message.serialize().to_vec()),
        },
    )
    .await
    .unwrap()
    .unwrap();
    let finish = start
        .state
        .finish(
            &mut OsRng,
            PW,
            RegistrationResponse::deserialize(started.registration_response.as_slice()).unwrap(),
            ClientRegistrationFinishParameters::new(ids(user), None),
        )
        .unwrap();
    let random = |n: usize| {
        let mut v = vec![0u8; n];
        OsRng.fill(v.as_mut_slice());
        proto::Bytes(v)
    };
    // Sizes as the app makes them: wraps of a 32-byte key, a small settings document.
    post::<_, ()>(
        http,
        url,
        "/v1/register/finish",
        &proto::RegisterFinish {
            registration_id: started.registration_id,
            registration_upload: proto::Bytes(finish.message.serialize().to_vec()),
            cloud_wrap: random(100),
            recovery_wrap: random(100),
            recovery_verifier: random(32),
            settings: random(2048),
            device: None,
        },
    )
    .await
    .unwrap();
}

/// One login; the two round trips' durations.
async fn login(
    http: &reqwest::Client,
    url: &str,
    i: usize,
) -> Result<(Duration, Duration), String> {
    let user = user(i);
    let start = ClientLogin::<BenchSuite>::start(&mut OsRng, PW).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let started: proto::LoginStarted = post(
        http,
        url,
        "/v1/login/start",
        &proto::LoginStart {
            user: user.clone(),
            credential_request: proto::Bytes(start.message.serialize().to_vec()),
            device_id: device_id(i),
            device_name: "bench".into(),
        },
    )
    .await?
    .ok_or("no body")?;
    let rt1 = t.elapsed();
    let finish = start
        .state
        .finish(
            &mut OsRng,
            PW,
            CredentialResponse::deserialize(started.credential_response.as_slice())
                .map_err(|e| e.to_string())?,
            ClientLoginFinishParameters::new(None, ids(&user), None),
        )
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let finished: proto::LoginFinished = post(
        http,
        url,
        "/v1/login/finish",
        &proto::LoginFinish {
            login_id: started.login_id,
            credential_finalization: proto::Bytes(finish.message.serialize().to_vec()),
        },
    )
    .await?
    .ok_or("no body")?;
    let rt2 = t.elapsed();
    if finished.cloud_wrap.0.is_empty() || finished.settings.blob.0.len() != 2048 {
        return Err("the login did not release the blobs".into());
    }
    Ok((rt1, rt2))
}

/// Two bare round trips (`GET /v1/health`) in place of a login's two.
async fn ping(http: &reqwest::Client, url: &str) -> Result<(Duration, Duration), String> {
    let mut rts = [Duration::ZERO; 2];
    for rt in &mut rts {
        let t = Instant::now();
        let resp = http
            .get(format!("{url}/v1/health"))
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("/v1/health: {}", resp.status()));
        }
        resp.bytes().await.map_err(|e| e.to_string())?;
        *rt = t.elapsed();
    }
    Ok((rts[0], rts[1]))
}

/// One phase: every client logs in (or, with `bare`, pings) until `secs` have passed,
/// back to back (`rate` = 0) or on a schedule that offers `rate` logins/s in total.
async fn phase(
    https: &[reqwest::Client],
    url: &Arc<str>,
    secs: f64,
    rate: f64,
    bare: bool,
) -> PhaseReport {
    let begin = tokio::time::Instant::now();
    let end = begin + Duration::from_secs_f64(secs);
    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(CLIENTS as f64 / rate));
    let mut set = tokio::task::JoinSet::new();
    for (i, http) in https.iter().enumerate() {
        let (http, url) = (http.clone(), url.clone());
        let offset = interval.map(|iv| iv.mul_f64(rand::thread_rng().gen_range(0.0..1.0)));
        set.spawn(async move {
            let mut got = Vec::new();
            let mut errors = (0u64, None);
            let mut k = 0u32;
            loop {
                if let (Some(iv), Some(off)) = (interval, offset) {
                    let at = begin + off + iv * k;
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                    k += 1;
                } else if tokio::time::Instant::now() >= end {
                    break;
                }
                let done = if bare {
                    ping(&http, &url).await
                } else {
                    login(&http, &url, i).await
                };
                match done {
                    Ok(rts) => got.push(rts),
                    Err(e) => {
                        errors.0 += 1;
                        errors.1.get_or_insert(e);
                    }
                }
            }
            (got, errors)
        });
    }
    let (mut both, mut starts, mut finishes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut errors, mut first_error) = (0, None);
    while let Some(r) = set.join_next().await {
        let (got, (e, first)) = r.unwrap();
        errors += e;
        first_error = first_error.or(first);
        for (a, b) in got {
            both.push((a + b).as_secs_f64() * 1e3);
            starts.push(a.as_secs_f64() * 1e3);
            finishes.push(b.as_secs_f64() * 1e3);
        }
    }
    let wall_s = begin.elapsed().as_secs_f64();
    PhaseReport {
        logins: both.len() as u64,
        errors,
        first_error,
        wall_s,
        both_ms: [
            pct(&mut both, 0.5),
            pct(&mut both, 0.9),
            pct(&mut both, 0.99),
            pct(&mut both, 1.0),
        ],
        start_ms: [pct(&mut starts, 0.5), pct(&mut starts, 0.99)],
        finish_ms: [pct(&mut finishes, 0.5), pct(&mut finishes, 0.99)],
    }
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

// ---------------------------------------------------------------- (c) sign-in end to end

fn sign_in_end_to_end(server: &BenchServer) {
    use sealpost_core::clock::FixedClock;
    use sealpost_core::sync;

    println!("\n== (c) sign-in on a new device, end to end (real suite, Argon2id at SHIPPED) ==");
    let clock: Arc<dyn sealpost_core::Clock> = Arc::new(FixedClock(1_790_000_000));
    let pw = Password::new(std::str::from_utf8(PW).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Instant::now();
    let (a, _code) = rt
        .block_on(sync::create_account(
            dir.path().join("a"),
            &url,
            "alice",
            pw.clone(),
            "laptop",
            Arc::clone(&clock),
        ))
        .unwrap();
    let create = t.elapsed().as_secs_f64();
    drop(a);

    // Sign-ins and Argon2id alone, in pairs back to back so that both halves of a pair see
    // the same machine: what is not Argon2id is a small difference of two big numbers, so
    // the median of the pairs' differences is shown, with their spread.
    let (mut sign_ins, mut ksf, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..6 {
        let t = Instant::now();
        let b = rt
            .block_on(sync::sign_in(
                dir.path().join(format!("b{i}")),
                &url,
                "alice",
                pw.clone(),
                "phone",
                Arc::clone(&clock),
            ))
            .unwrap();
        let s = t.elapsed().as_secs_f64();
        drop(b);
        let t = Instant::now();
        derive_kek(&pw, &[1; 16], Argon2Params::SHIPPED).unwrap();
        let k = t.elapsed().as_secs_f64();
        sign_ins.push(s);
        ksf.push(k);
        rest.push(s - k);
    }
    for v in [&mut sign_ins, &mut ksf, &mut rest] {
        v.sort_by(f64::total_cmp);
    }
    let median = |v: &[f64]| (v[2] + v[3]) / 2.0;
    println!("  create_account (for the sign-ins): {create:.2} s");
    println!(
        "  sign_in: median {:.3} s (best {:.3} s) of 6; Argon2id alone (derive_kek at SHIPPED): \
         median {:.3} s (best {:.3} s), run twice in a sign-in, side by side on two cores \
         (OPAQUE's KSF and the local vault's KEK)",
        median(&sign_ins),
        sign_ins[0],
        median(&ksf),
        ksf[0],
    );
    println!(
        "  not Argon2id (sign-in minus one KSF, pair by pair): median {:.0} ms \
         ({:.1} % of the sign-in), pairs from {:.0} to {:.0} ms",
        median(&rest) * 1e3,
        100.0 * median(&rest) / median(&sign_ins),
        rest[0] * 1e3,
        rest[5] * 1e3,
    );
}
