//! The project's own request/response load tool (hidden subcommands of `netd-bench`).
//!
//! - `serve --port P --max-secs S`: TCP and UDP on port P. One TCP connection at a time is
//!   served inline by the accepting thread (every client here is a single sequential
//!   connection, like netperf's RR tests), so there is no thread spawn per connection.
//!   A request byte `r` is echoed and the connection kept (TCP_RR); a request byte `c` is
//!   echoed and the server closes first (TCP_CRR), so the client never holds TIME_WAIT and
//!   cannot run out of ephemeral ports. UDP datagrams are echoed by a second thread.
//!   The process exits by itself after `--max-secs`.
//! - `rr|crr|udprr --addr A --secs S`: 1-byte request/response with TCP_NODELAY, bounded by
//!   time and by `--max-count`; prints one JSON line ([`LoadReport`]).

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const REQ_RR: u8 = b'r';
pub const REQ_CRR: u8 = b'c';

/// Stop a client after this many errors (refused connections, lost datagrams, ...).
const MAX_ERRORS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// TCP request/response on one connection.
    Rr,
    /// TCP connect + request/response + close, one connection per transaction.
    Crr,
    /// UDP request/response.
    Udprr,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[arg(long)]
    pub port: u16,
    /// Exit after this many seconds even if nobody stops us.
    #[arg(long, default_value_t = 120.0)]
    pub max_secs: f64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server address, IP:PORT.
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Upper bound on transactions, whatever the time.
    #[arg(long, default_value_t = 20_000_000)]
    pub max_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub kind: ClientKind,
    pub transactions: u64,
    pub errors: u64,
    pub secs: f64,
    pub per_sec: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
}

pub fn serve(args: &ServeArgs) -> Result<()> {
    if !(args.max_secs > 0.0 && args.max_secs <= 3600.0) {
        bail!("--max-secs must be in (0, 3600]");
    }
    let any = SocketAddr::from(([0, 0, 0, 0], args.port));
    let tcp = TcpListener::bind(any).with_context(|| format!("binding tcp {any}"))?;
    let udp = UdpSocket::bind(any).with_context(|| format!("binding udp {any}"))?;
    thread::spawn(move || serve_tcp(tcp));
    thread::spawn(move || serve_udp(udp));
    thread::sleep(Duration::from_secs_f64(args.max_secs));
    Ok(())
}

fn serve_tcp(listener: TcpListener) {
    loop {
        let Ok((conn, _)) = listener.accept() else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = serve_conn(conn);
    }
}

fn serve_conn(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 64];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
        if buf[n - 1] == REQ_CRR {
            return Ok(()); // server closes first
        }
    }
}

fn serve_udp(sock: UdpSocket) {
    let mut buf = [0u8; 64];
    loop {
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], peer);
        }
    }
}

/// Latency samples in nanoseconds, kept up to a bound so memory stays small.
struct Recorder {
    start: Instant,
    end: Instant,
    max_count: u64,
    samples: Vec<u32>,
    errors: u64,
}

impl Recorder {
    fn new(args: &ClientArgs) -> Result<Self> {
        if !(args.secs > 0.0 && args.secs <= 600.0) {
            bail!("--secs must be in (0, 600]");
        }
        let start = Instant::now();
        Ok(Self {
            start,
            end: start + Duration::from_secs_f64(args.secs),
            max_count: args.max_count.min(100_000_000),
            samples: Vec::with_capacity(1 << 20),
            errors: 0,
        })
    }

    fn more(&self) -> bool {
        (self.samples.len() as u64) < self.max_count && self.errors < MAX_ERRORS && Instant::now() < self.end
    }

    fn record(&mut self, t0: Instant) {
        self.samples.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }

    fn report(mut self, kind: ClientKind) -> Result<LoadReport> {
        let secs = self.start.elapsed().as_secs_f64();
        if self.samples.is_empty() {
            bail!("{kind:?}: no transaction completed ({} errors)", self.errors);
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let pct = |p: f64| self.samples[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0;
        let mean = self.samples.iter().map(|&s| s as f64).sum::<f64>() / n as f64 / 1000.0;
        Ok(LoadReport {
            kind,
            transactions: n as u64,
            errors: self.errors,
            secs,
            per_sec: n as f64 / secs,
            mean_us: mean,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
        })
    }
}

pub fn client(kind: ClientKind, args: &ClientArgs) -> Result<LoadReport> {
    let rec = Recorder::new(args)?;
    let rec = match kind {
        ClientKind::Rr => tcp_rr(args.addr, rec)?,
        ClientKind::Crr => tcp_crr(args.addr, rec)?,
        ClientKind::Udprr => udp_rr(args.addr, rec)?,
    };
    rec.report(kind)
}

fn tcp_rr(addr: SocketAddr, mut rec: Recorder) -> Result<Recorder> {
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).with_context(|| format!("connecting to {addr}"))?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = [0u8; 1];
    while rec.more() {
        let t0 = Instant::now();
        conn.write_all(&[REQ_RR])?;
        conn.read_exact(&mut buf).context("waiting for the response")?;
        rec.record(t0);
    }
    Ok(rec)
}

fn tcp_crr(addr: SocketAddr, mut rec: Recorder) -> Result<Recorder> {
    while rec.more() {
        let t0 = Instant::now();
        match crr_once(addr) {
            Ok(()) => rec.record(t0),
            Err(e) => {
                rec.errors += 1;
                if rec.samples.is_empty() && rec.errors >= 10 {
                    return Err(e).context(format!("connect/request/close to {addr}"));
                }
            }
        }
    }
    Ok(rec)
}

fn crr_once(addr: SocketAddr) -> std::io::Result<()> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))?;
    conn.write_all(&[REQ_CRR])?;
    let mut buf = [0u8; 1];
    conn.read_exact(&mut buf)?;
    // Wait for the server's FIN before closing: the server is the active closer.
    match conn.read(&mut buf)? {
        0 => Ok(()),
        _ => Err(std::io::Error::new(ErrorKind::InvalidData, "unexpected data after response")),
    }
}

fn udp_rr(addr: SocketAddr, mut rec: Recorder) -> Result<Recorder> {
    let sock = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))?;
    sock.connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = [0u8; 16];
    while rec.more() {
        let t0 = Instant::now();
        sock.send(&[REQ_RR])?;
        match sock.recv(&mut buf) {
            Ok(_) => rec.record(t0),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => rec.errors += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                rec.errors += 1;
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("udp receive"),
        }
    }
    Ok(rec)
}
