//! Servers that run inside a test's namespaces — mostly the outside netns (198.51.100.1), as
//! the "internet" a container talks to — and record what reaches them: the peer address of
//! every TCP connection and UDP datagram, every byte of a stream, every raw IPv4 packet of a
//! protocol. They stop on drop, and their threads also end by themselves after
//! [`SERVER_LIFETIME`], so a forgotten server cannot outlive its test by much.
use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

use crate::{in_netns, packet::Ipv4Seen};

pub const SERVER_LIFETIME: Duration = Duration::from_secs(300);
/// How often a server thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The threads of one server and the flag that stops them.
struct Threads {
    stop: Arc<AtomicBool>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
    deadline: Instant,
}

impl Threads {
    fn new() -> Self {
        Threads {
            stop: Arc::new(AtomicBool::new(false)),
            handles: Arc::default(),
            deadline: Instant::now() + SERVER_LIFETIME,
        }
    }

    fn running(&self) -> impl Fn() -> bool + Clone + Send + 'static {
        let (stop, deadline) = (self.stop.clone(), self.deadline);
        move || !stop.load(Ordering::SeqCst) && Instant::now() < deadline
    }

    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        self.handles.lock().unwrap().push(std::thread::spawn(f));
    }

    /// A spawner that server threads can use for per-connection threads.
    fn spawner(&self) -> impl Fn(Box<dyn FnOnce() + Send>) + Clone + Send + 'static {
        let handles = self.handles.clone();
        move |f| handles.lock().unwrap().push(std::thread::spawn(f))
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Connection threads may be added while we join: drain until none is left.
        loop {
            let Some(handle) = self.handles.lock().unwrap().pop() else {
                break;
            };
            let _ = handle.join();
        }
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Accepts on `listener` (non-blocking) until stopped; each connection goes to `serve` on a
/// thread of its own, in blocking mode with a short read timeout.
fn accept_loop(
    threads: &Threads,
    listener: TcpListener,
    serve: impl Fn(TcpStream, SocketAddr) + Clone + Send + 'static,
) {
    listener.set_nonblocking(true).unwrap();
    let (running, spawn) = (threads.running(), threads.spawner());
    threads.spawn(move || {
        while running() {
            match listener.accept() {
                Ok((conn, peer)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(POLL)).unwrap();
                    conn.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
                    let serve = serve.clone();
                    spawn(Box::new(move || serve(conn, peer)));
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    });
}

/// A TCP server that tells every client the address it sees the connection come from — the
/// line `a.b.c.d:port\n` right after accepting — then sends back everything it receives
/// upper-cased, until the client closes. It records the peer of every connection.
pub struct TcpPeerServer {
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    _threads: Threads,
}

impl TcpPeerServer {
    /// Listens on `addr:port` (`0.0.0.0` for any) inside the netns at `netns`.
    pub fn start(netns: &Path, addr: &str, port: u16) -> Self {
        let bind: SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let listener = in_netns(netns, move || TcpListener::bind(bind))
            .unwrap_or_else(|e| panic!("bind TCP {bind} in {}: {e}", netns.display()));
        let threads = Threads::new();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let running = threads.running();
        let recorded = peers.clone();
        accept_loop(&threads, listener, move |mut conn, peer| {
            recorded.lock().unwrap().push(peer);
            if conn.write_all(format!("{peer}\n").as_bytes()).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            while running() {
                match conn.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if conn.write_all(buf[..n].to_ascii_uppercase().as_slice()).is_err() {
                            return;
                        }
                    }
                    Err(e) if timed_out(&e) => {}
                    Err(_) => return,
                }
            }
        });
        TcpPeerServer { peers, _threads: threads }
    }

    /// The peer of every connection accepted so far, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

/// How a stream into a [`TcpSink`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client closed cleanly after this many bytes.
    Eof(u64),
    /// A read failed (e.g. the connection was reset) after this many bytes.
    Error(u64, String),
}

/// A TCP server that reads and counts everything its clients send and records how each
/// connection ended.
pub struct TcpSink {
    received: Arc<AtomicU64>,
    ends: Arc<Mutex<Vec<StreamEnd>>>,
    _threads: Threads,
}

impl TcpSink {
    pub fn start(netns: &Path, addr: &str, port: u16) -> Self {
        let bind: SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let listener = in_netns(netns, move || TcpListener::bind(bind))
            .unwrap_or_else(|e| panic!("bind TCP {bind} in {}: {e}", netns.display()));
        let threads = Threads::new();
        let (received, ends): (Arc<AtomicU64>, Arc<Mutex<Vec<StreamEnd>>>) = Default::default();
        let running = threads.running();
        let (total, recorded) = (received.clone(), ends.clone());
        accept_loop(&threads, listener, move |mut conn, _| {
            let mut buf = vec![0u8; 64 * 1024];
            let mut mine = 0u64;
            let end = loop {
                if !running() {
                    break StreamEnd::Error(mine, "sink stopped before the stream ended".into());
                }
                match conn.read(&mut buf) {
                    Ok(0) => break StreamEnd::Eof(mine),
                    Ok(n) => {
                        mine += n as u64;
                        total.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Err(e) if timed_out(&e) => {}
                    Err(e) => break StreamEnd::Error(mine, e.to_string()),
                }
            };
            recorded.lock().unwrap().push(end);
        });
        TcpSink { received, ends, _threads: threads }
    }

    /// Bytes received so far over all connections.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// How the connections that ended so far ended.
    pub fn ends(&self) -> Vec<StreamEnd> {
        self.ends.lock().unwrap().clone()
    }
}

/// A UDP server that answers every datagram with the address it came from (`a.b.c.d:port`)
/// and records those peers.
pub struct UdpPeerServer {
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    _threads: Threads,
}

impl UdpPeerServer {
    pub fn start(netns: &Path, addr: &str, port: u16) -> Self {
        let bind: SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let socket = in_netns(netns, move || UdpSocket::bind(bind))
            .unwrap_or_else(|e| panic!("bind UDP {bind} in {}: {e}", netns.display()));
        socket.set_read_timeout(Some(POLL)).unwrap();
        let threads = Threads::new();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let (running, recorded) = (threads.running(), peers.clone());
        threads.spawn(move || {
            let mut buf = [0u8; 2048];
            while running() {
                let Ok((_, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                recorded.lock().unwrap().push(peer);
                let _ = socket.send_to(peer.to_string().as_bytes(), peer);
            }
        });
        UdpPeerServer { peers, _threads: threads }
    }

    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

/// A raw IPv4 socket of one protocol (ICMP, TCP, UDP) inside a netns, recording a copy of
/// every packet of that protocol the netns receives — as it arrived, before the kernel's own
/// handling (which also happens: the kernel still answers pings, the TCP and UDP servers
/// still get their traffic).
pub struct RawRecorder {
    seen: Arc<Mutex<Vec<Ipv4Seen>>>,
    _threads: Threads,
}

impl RawRecorder {
    pub fn start(netns: &Path, proto: u8) -> Self {
        let socket =
            in_netns(netns, move || Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(i32::from(proto)))))
                .unwrap_or_else(|e| panic!("raw socket (protocol {proto}) in {}: {e}", netns.display()));
        socket.set_read_timeout(Some(POLL)).unwrap();
        let threads = Threads::new();
        let seen: Arc<Mutex<Vec<Ipv4Seen>>> = Arc::default();
        let (running, recorded) = (threads.running(), seen.clone());
        threads.spawn(move || {
            let mut buf = vec![0u8; 65536];
            while running() {
                let Ok(n) = (&socket).read(&mut buf) else {
                    continue;
                };
                if let Some(p) = Ipv4Seen::parse(&buf[..n]) {
                    recorded.lock().unwrap().push(p);
                }
            }
        });
        RawRecorder { seen, _threads: threads }
    }

    /// Every packet recorded so far.
    pub fn seen(&self) -> Vec<Ipv4Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The recorded packets for which `pick` holds.
    pub fn matching(&self, pick: impl Fn(&Ipv4Seen) -> bool) -> Vec<Ipv4Seen> {
        self.seen().into_iter().filter(|p| pick(p)).collect()
    }
}

/// An AF_PACKET socket inside a netns recording every IPv4 frame on its interfaces, both
/// directions, before any reassembly or filtering by the stack: what was on the wire.
pub struct FrameRecorder {
    seen: Arc<Mutex<Vec<Ipv4Seen>>>,
    _threads: Threads,
}

impl FrameRecorder {
    pub fn start(netns: &Path) -> Self {
        const ETH_P_IP: u16 = 0x0800;
        let socket = in_netns(netns, || {
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(i32::from(ETH_P_IP.to_be()))))
        })
        .unwrap_or_else(|e| panic!("AF_PACKET socket in {}: {e}", netns.display()));
        socket.set_read_timeout(Some(POLL)).unwrap();
        let threads = Threads::new();
        let seen: Arc<Mutex<Vec<Ipv4Seen>>> = Arc::default();
        let (running, recorded) = (threads.running(), seen.clone());
        threads.spawn(move || {
            let mut buf = vec![0u8; 65536];
            while running() {
                let Ok(n) = (&socket).read(&mut buf) else {
                    continue;
                };
                if let Some(p) = buf.get(14..n).and_then(Ipv4Seen::parse) {
                    recorded.lock().unwrap().push(p);
                }
            }
        });
        FrameRecorder { seen, _threads: threads }
    }

    /// The recorded IPv4 packets for which `pick` holds.
    pub fn matching(&self, pick: impl Fn(&Ipv4Seen) -> bool) -> Vec<Ipv4Seen> {
        self.seen.lock().unwrap().iter().filter(|p| pick(p)).cloned().collect()
    }
}
