//! TCP traffic for churn and soak tests: one echo exchange through a chosen address (a
//! published port, another container), and long-lived connections that keep exchanging
//! numbered lines in the background so a test can tell that the *same* connection still
//! carries data after whatever it did. Every wait is bounded.
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddrV4, TcpListener, TcpStream},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::in_netns;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn listen(netns: &Path, port: u16) -> TcpListener {
    in_netns(netns, move || TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| panic!("bind :{port}: {e}")))
}

fn connect(netns: &Path, target: SocketAddrV4) -> std::io::Result<TcpStream> {
    let stream = in_netns(netns, move || TcpStream::connect_timeout(&target.into(), IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Echoes every line of `conn` back until it closes or fails.
fn echo_lines(conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let mut writer = conn.try_clone().unwrap();
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        if writer.write_all(format!("{line}\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// Serves one connection on `listen_port` in `server_ns`, connects from `client_ns` to
/// `target`, and returns what came back for `message` (one line).
pub fn echo_once(server_ns: &Path, listen_port: u16, client_ns: &Path, target: SocketAddrV4, message: &str) -> String {
    let listener = listen(server_ns, listen_port);
    listener.set_nonblocking(false).unwrap();
    let serve = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        echo_lines(conn);
    });
    let mut stream = connect(client_ns, target).unwrap_or_else(|e| panic!("connect to {target}: {e}"));
    stream.write_all(format!("{message}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap()).read_line(&mut reply).unwrap_or_else(|e| panic!("read: {e}"));
    drop(stream);
    serve.join().unwrap();
    reply.trim_end().to_string()
}

/// A TCP connection from `client_ns` to `target`, served by an echo server on `listen_port` in
/// `server_ns`, that a background thread keeps exchanging numbered lines on (a short pause
/// between rounds, at most `max_rounds`). Stops on drop.
pub struct LongFlow {
    pub name: String,
    rounds: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LongFlow {
    pub fn start(name: &str, server_ns: &Path, listen_port: u16, client_ns: &Path, target: SocketAddrV4) -> Self {
        const MAX_ROUNDS: u64 = 1_000_000;
        let listener = listen(server_ns, listen_port);
        let server = std::thread::spawn(move || {
            if let Ok((conn, _)) = listener.accept() {
                echo_lines(conn);
            }
        });
        let stream = connect(client_ns, target).unwrap_or_else(|e| panic!("{name}: connect to {target}: {e}"));
        let (rounds, failure, stop) =
            (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(None)), Arc::new(AtomicBool::new(false)));
        let client = {
            let (rounds, failure, stop) = (rounds.clone(), failure.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                for n in 0..MAX_ROUNDS {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut line = String::new();
                    let result = writer
                        .write_all(format!("{n}\n").as_bytes())
                        .and_then(|()| reader.read_line(&mut line).map(drop));
                    if let Err(e) = result.and_then(|()| {
                        if line.trim_end() == n.to_string() {
                            Ok(())
                        } else {
                            Err(std::io::Error::other(format!("round {n}: got {line:?}")))
                        }
                    }) {
                        *failure.lock().unwrap() = Some(format!("round {n}: {e}"));
                        return;
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self { name: name.to_string(), rounds, failure, stop, threads: vec![server, client] }
    }

    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Panics if the connection failed.
    pub fn assert_unbroken(&self) {
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            panic!("long-lived flow {} broke: {failure}", self.name);
        }
    }

    /// Waits (bounded) until the same connection has carried `more` further rounds.
    pub fn assert_flowing(&self, more: u64) {
        let start = self.rounds();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.rounds() < start + more {
            self.assert_unbroken();
            assert!(Instant::now() < deadline, "long-lived flow {} stalled at round {}", self.name, self.rounds());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LongFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The client ends within one round (IO_TIMEOUT at worst) and closes the connection,
        // which ends the server.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
