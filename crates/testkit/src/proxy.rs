//! A TCP proxy on loopback for fault tests: the client connects to [`TcpProxy::port`],
//! the proxy connects to the real server and copies bytes both ways, on plain threads.
//!
//! - [`TcpProxy::set_down`]: cut every open connection and close new ones at once (the
//!   server "goes away"); `set_down(false)` brings it back.
//! - [`TcpProxy::set_hook`]: a function that sees every chunk before it is passed on,
//!   with its direction and how many bytes went each way on that connection before it,
//!   and says whether to pass it on or cut the connection there. It may do anything
//!   else at that moment, such as killing the client process. TLS passes through
//!   untouched, so a hook recognises protocol steps by the shape of the traffic (a big
//!   upload, then the server's first answer after it).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

/// Which way a chunk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// A chunk about to be passed on.
#[derive(Debug)]
pub struct Chunk<'a> {
    /// The connection, numbered from 0 in the order they were accepted.
    pub connection: u64,
    /// Which way it goes.
    pub direction: Direction,
    /// The bytes.
    pub bytes: &'a [u8],
    /// Bytes passed to the server on this connection before this chunk.
    pub to_server: u64,
    /// Bytes passed to the client on this connection before this chunk.
    pub to_client: u64,
}

/// What to do with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on.
    Forward,
    /// Drop it and close the connection both ways.
    Cut,
}

/// What a hook is.
pub type Hook = Box<dyn FnMut(&Chunk<'_>) -> Verdict + Send>;

struct Conn {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    to_server: u64,
    to_client: u64,
    cut: bool,
    pumps_ended: u8,
}

#[derive(Default)]
struct State {
    down: bool,
    hook: Option<Hook>,
    next_id: u64,
    conns: Vec<Conn>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy; it stops accepting when dropped (open connections end with their
/// peers).
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stopped: Arc<AtomicBool>,
}

impl std::fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if stop.load(Ordering::SeqCst) {
                    return; // the proxy was dropped
                }
                let _ = client.set_nodelay(true);
                if lock(&shared).down {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) else {
                    continue;
                };
                let id = {
                    let mut st = lock(&shared);
                    let id = st.next_id;
                    st.next_id += 1;
                    st.conns.push(Conn {
                        id,
                        client: c3,
                        server: s3,
                        to_server: 0,
                        to_client: 0,
                        cut: false,
                        pumps_ended: 0,
                    });
                    id
                };
                let (a, b) = (Arc::clone(&shared), Arc::clone(&shared));
                thread::spawn(move || pump(&a, id, Direction::ToServer, client, server));
                thread::spawn(move || pump(&b, id, Direction::ToClient, s2, c2));
            }
        });
        Ok(Self {
            addr,
            state,
            stopped,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Down: every open connection is cut and new ones are closed at once. Up: new
    /// connections are forwarded again.
    pub fn set_down(&self, down: bool) {
        let mut st = lock(&self.state);
        st.down = down;
        if down {
            for c in &mut st.conns {
                cut(c);
            }
        }
    }

    /// Sets (or with `None` removes) the hook that sees every chunk.
    pub fn set_hook(&self, hook: Option<Hook>) {
        lock(&self.state).hook = hook;
    }

    /// How many connections were accepted and forwarded so far.
    pub fn connections(&self) -> u64 {
        lock(&self.state).next_id
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // Wake the accept loop so that it sees the flag and ends.
        self.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn cut(c: &mut Conn) {
    c.cut = true;
    let _ = c.client.shutdown(Shutdown::Both);
    let _ = c.server.shutdown(Shutdown::Both);
}

fn pump(state: &Mutex<State>, id: u64, dir: Direction, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let bytes = buf.get(..n).unwrap_or_default();
        let forward = {
            let mut st = lock(state);
            let State {
                down, hook, conns, ..
            } = &mut *st;
            let Some(conn) = conns.iter_mut().find(|c| c.id == id) else {
                break;
            };
            if *down || conn.cut {
                cut(conn);
                false
            } else {
                let chunk = Chunk {
                    connection: id,
                    direction: dir,
                    bytes,
                    to_server: conn.to_server,
                    to_client: conn.to_client,
                };
                let verdict = hook.as_mut().map_or(Verdict::Forward, |h| h(&chunk));
                if verdict == Verdict::Cut {
                    cut(conn);
                    false
                } else {
                    match dir {
                        Direction::ToServer => conn.to_server += n as u64,
                        Direction::ToClient => conn.to_client += n as u64,
                    }
                    true
                }
            }
        };
        if !forward || to.write_all(bytes).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    let mut st = lock(state);
    if let Some(c) = st.conns.iter_mut().find(|c| c.id == id) {
        cut(c);
        c.pumps_ended += 1;
    }
    st.conns.retain(|c| c.pumps_ended < 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn echo_server() -> SocketAddr {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(port: u16, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(msg)?;
        let mut out = vec![0u8; msg.len()];
        s.read_exact(&mut out)?;
        Ok(out)
    }

    #[test]
    fn forwards_cuts_on_a_hook_and_goes_down_and_up() {
        let proxy = TcpProxy::start(echo_server()).unwrap();
        assert_eq!(roundtrip(proxy.port(), b"hello").unwrap(), b"hello");
        proxy.set_hook(Some(Box::new(|c: &Chunk<'_>| {
            if c.direction == Direction::ToClient && c.bytes.starts_with(b"cut") {
                Verdict::Cut
            } else {
                Verdict::Forward
            }
        })));
        assert!(roundtrip(proxy.port(), b"cut me").is_err());
        assert_eq!(roundtrip(proxy.port(), b"fine").unwrap(), b"fine");
        proxy.set_hook(None);
        proxy.set_down(true);
        assert!(roundtrip(proxy.port(), b"x").is_err());
        proxy.set_down(false);
        assert_eq!(roundtrip(proxy.port(), b"back").unwrap(), b"back");
        assert!(proxy.connections() >= 4);
    }
}
