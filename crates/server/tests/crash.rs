//! A server killed during a password change: the old or the new password works after
//! the restart, never neither, and the identity key is never lost.
//!
//! A real `sealpost-server` process (the embedded default: SQLite and a software key in
//! a data directory) sits behind a small TCP proxy. Profile A changes its password with
//! the real client (`sealpost_core::sync::Remote::change_password`, Argon2id and all); the proxy
//! watches for the request that commits the change (`POST /v1/password/finish`) and
//! SIGKILLs the server at a chosen moment: before the request reaches it, or 0–3 ms after
//! (the server opens the pending registration, seals the record and the wrap in the HSM,
//! and commits with an fsync in that window). The server restarts on the same directory
//! and a new device signs in with each password in turn.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use common::Process;
use sealpost_core::Clock;
use sealpost_core::CoreError;
use sealpost_core::clock::SystemClock;
use sealpost_core::sync::{self, Remote, SignedIn};
use sealpost_core::vault::{self, Unlocked};
use sealpost_crypto::Password;

// The client's sync layer is async; these run one step of it to the end.
static RT: std::sync::LazyLock<tokio::runtime::Runtime> =
    std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn create(dir: &Path, url: &str, pw: &Password) -> Unlocked {
    RT.block_on(sync::create_account(
        dir.to_path_buf(),
        url,
        "alice",
        pw.clone(),
        "laptop",
        clock(),
    ))
    .unwrap()
    .0
}

fn sign_in(dir: &Path, url: &str, pw: &Password, device: &str) -> Result<SignedIn, CoreError> {
    RT.block_on(sync::sign_in(
        dir.to_path_buf(),
        url,
        "alice",
        pw.clone(),
        device,
        clock(),
    ))
}

/// The client's password change on the profile in `dir`, as the app makes it.
fn change_password(dir: &Path, old: &Password, new: &Password) -> Result<(), CoreError> {
    let u = Arc::new(vault::open(dir)?.unlock(old)?);
    RT.block_on(Remote::new(u, old.clone(), clock())?.change_password(new.clone()))
}

/// The request that commits a password change.
const TRAP: &[u8] = b"POST /v1/password/finish";

/// Passwords the gate accepts: the first is the account's, each round moves to the next.
const PASSWORDS: [&str; 8] = [
    "tundra mosaic gravel whimsy plank",
    "orbit velvet cashew lantern quarry",
    "saddle prism walnut thimble ozone",
    "glacier fennel rotunda biscuit ember",
    "harbor quiver pylon mustard cobalt",
    "nimbus ledger tapioca sprocket dune",
    "lilac gantry zephyr pretzel monsoon",
    "copper sonnet falcon drizzle paddock",
];

/// When the server dies, one round each.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// When the finish request arrives at the proxy, before the server sees it.
    Before,
    /// This long after the request was passed on.
    After(Duration),
    /// Not at all (the change completes).
    Never,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server process, which the proxy may kill.
type Server = Arc<Mutex<Option<Process>>>;

fn start_server(data: &Path) -> Process {
    Process::start(&[std::ffi::OsStr::new("--data"), data.as_os_str()], &[])
}

/// Forwards connections to the current server and springs the armed trap.
struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    /// The armed kill and whether it went off.
    trap: Arc<Mutex<(Option<Kill>, bool)>>,
}

impl Proxy {
    fn start(server: Server, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream: Arc::new(Mutex::new(upstream)),
            trap: Arc::new(Mutex::new((None, false))),
        };
        let (upstream, trap) = (Arc::clone(&proxy.upstream), Arc::clone(&proxy.trap));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(up) = TcpStream::connect(*lock(&upstream)) else {
                    continue;
                };
                let (server, trap) = (Arc::clone(&server), Arc::clone(&trap));
                let (c2, u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                thread::spawn(move || pump_requests(client, up, &server, &trap));
                thread::spawn(move || pump(u2, c2));
            }
        });
        proxy
    }

    fn arm(&self, kill: Kill) {
        *lock(&self.trap) = (Some(kill), false);
    }

    /// Disarms; whether the trap went off.
    fn disarm(&self) -> bool {
        std::mem::take(&mut *lock(&self.trap)).1
    }
}

/// Server to client, as is.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Client to server, watching for the trap's request.
fn pump_requests(
    mut from: TcpStream,
    mut to: TcpStream,
    server: &Server,
    trap: &Mutex<(Option<Kill>, bool)>,
) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let sprung = chunk.windows(TRAP.len()).any(|w| w == TRAP);
        let kill = if sprung {
            let mut t = lock(trap);
            let kill = t.0.take();
            t.1 |= kill.is_some();
            kill
        } else {
            None
        };
        let kill_server = || {
            if let Some(p) = lock(server).as_mut() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        };
        match kill {
            Some(Kill::Before) => {
                kill_server();
                break;
            }
            Some(Kill::After(delay)) => {
                if to.write_all(chunk).is_err() {
                    break;
                }
                thread::sleep(delay);
                kill_server();
            }
            Some(Kill::Never) | None => {
                if to.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[test]
fn a_server_killed_during_a_password_change_leaves_the_old_or_the_new_password_working() {
    let rounds = [
        Kill::Before,
        Kill::After(Duration::ZERO),
        Kill::After(Duration::from_millis(1)),
        Kill::After(Duration::from_millis(3)),
        Kill::Never,
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let first = start_server(&data);
    let first_addr = first.addr;
    let server: Server = Arc::new(Mutex::new(Some(first)));
    let proxy = Proxy::start(Arc::clone(&server), first_addr);
    let url = format!("http://{}", proxy.addr);
    let pw: Vec<Password> = PASSWORDS
        .iter()
        .map(|p| Password::new(p).unwrap())
        .collect();
    let profile_a = dir.path().join("a");

    let a = create(&profile_a, &url, &pw[0]);
    let identity = *a.identity().dangerous_expose_for_leak_tests();
    drop(a);

    // The password the server holds, and the one A's own vault opens with.
    let (mut current, mut local) = (0, 0);
    let (mut kept_old, mut took_new) = (0, 0);
    for (round, kill) in rounds.into_iter().enumerate() {
        let next = round + 1;
        proxy.arm(kill);
        let changed = change_password(&profile_a, &pw[local], &pw[next]);
        let sprung = proxy.disarm();
        if let Kill::Never = kill {
            assert!(changed.is_ok(), "{changed:?}");
        } else {
            // (The answer may still have got out before the kill.)
            assert!(sprung, "round {round}: the finish request never came");
        }
        if let Kill::Before = kill {
            assert!(changed.is_err(), "answered by a dead server");
        }
        if changed.is_ok() {
            local = next;
        }

        // Restart on the same directory if it died.
        {
            let mut slot = lock(&server);
            let dead = slot
                .as_mut()
                .is_none_or(|p| p.child.try_wait().unwrap().is_some());
            if dead {
                let restarted = start_server(&data);
                *lock(&proxy.upstream) = restarted.addr;
                *slot = Some(restarted);
            }
        }

        // Exactly one of the two passwords signs a new device in, with the same key.
        let probe = |i: usize, which: &str| {
            sign_in(
                &dir.path().join(format!("probe-{round}-{which}")),
                &url,
                &pw[i],
                "probe",
            )
        };
        let with_new = probe(next, "new");
        let with_old = probe(current, "old");
        eprintln!(
            "round {round} ({kill:?}): change answered {}, new password {}, old password {}",
            changed.is_ok(),
            with_new.is_ok(),
            with_old.is_ok()
        );
        match (&with_new, &with_old) {
            (Ok(signed_in), Err(_)) => {
                assert_eq!(
                    signed_in
                        .unlocked
                        .identity()
                        .dangerous_expose_for_leak_tests(),
                    &identity
                );
                current = next;
                took_new += 1;
            }
            (Err(_), Ok(signed_in)) => {
                assert_eq!(
                    signed_in
                        .unlocked
                        .identity()
                        .dangerous_expose_for_leak_tests(),
                    &identity
                );
                assert!(
                    changed.is_err(),
                    "round {round}: a confirmed change was lost"
                );
                kept_old += 1;
            }
            _ => panic!(
                "round {round} ({kill:?}): new password {:?}, old password {:?}",
                with_new.as_ref().err(),
                with_old.as_ref().err()
            ),
        }

        // A's own profile catches up with whatever the server holds.
        if local != current {
            let caught_up = sign_in(&profile_a, &url, &pw[current], "laptop").unwrap();
            assert_eq!(
                caught_up
                    .unlocked
                    .identity()
                    .dangerous_expose_for_leak_tests(),
                &identity
            );
            local = current;
        }
    }
    // Both sides of the commit were hit.
    assert!(
        kept_old >= 1 && took_new >= 1,
        "old {kept_old}, new {took_new}"
    );
}
