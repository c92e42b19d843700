//! Commands over many containers (issue #14): `rm` and `stop` send up to 50 requests at once,
//! as Docker 20.10's CLI does (`parallelOperation` in docker/cli `cli/command/container/utils.go`,
//! used by rm, stop, kill, pause), and still report every name in the order given — the name
//! on stdout, a failure on stderr, exit code 1 if one failed (an unknown name is none for
//! `rm -f`); `start` and `network rm` ask one name after another, as Docker's do.
//!
//! A [`FakeDaemon`] holds its answers to see how many requests are in flight and answers them
//! in reverse order; a real daemon removes 60 containers with one `rm -f`, and a mix of
//! running, stopped and unknown names.
use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use netd_cmd::Limit;
use netd_tests::{
    agreement::{assert_store_and_kernel_agree, processes_with},
    footprint::KernelFootprint,
    netd_bin, TestHost,
};

/// Docker's CLI: at most this many requests of `rm` or `stop` at once.
const DOCKER_PARALLEL: usize = 50;
/// Longer than the CLI needs to send its first 50 requests on a busy machine; reached only when
/// it sends fewer (the peak then says so).
const PARALLEL_HOLD: Duration = Duration::from_secs(30);
/// How long a one-after-another command's first request is held, for a second one to show up
/// if the command sent it (it must not).
const SEQUENTIAL_HOLD: Duration = Duration::from_millis(500);
/// How long one CLI command may take (a hang fails the test).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// What the fake daemon answers for a request about `name`: (HTTP status, JSON body).
type Answer = fn(&str) -> (u16, String);

/// What the fake daemon saw.
#[derive(Default)]
struct Seen {
    in_flight: usize,
    peak: usize,
    /// Names in the order their requests arrived.
    arrived: Vec<String>,
    /// Open once `hold_until` requests were in flight together (or the hold ran out): from then
    /// on every request is answered.
    gate_open: bool,
    first_arrival: Option<Instant>,
    /// The held requests (arrival numbers), answered last-come first once the gate opens.
    answer_order: Vec<usize>,
}

/// An API socket that answers `rm`/`stop`/`start`/`network rm` requests with `answer`,
/// holding every answer until `hold_until` requests are unanswered at once or `hold` has
/// passed since the first one.
struct FakeDaemon {
    dir: PathBuf,
    seen: Arc<(Mutex<Seen>, Condvar)>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    fn start(tag: &str, hold_until: usize, hold: Duration, answer: Answer) -> Self {
        let dir = std::env::temp_dir().join(format!("netd-fake-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join("netd.sock")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new((Mutex::new(Seen::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut connections = Vec::new();
                // Bounded: the test stops it, and it gives up on its own after the CLI's limit.
                let deadline = Instant::now() + CLI_TIMEOUT;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let seen = seen.clone();
                            connections.push(std::thread::spawn(move || serve(conn, &seen, hold_until, hold, answer)));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2))
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                connections.into_iter().for_each(|c| c.join().unwrap());
            })
        };
        Self { dir, seen, stop, acceptor: Some(acceptor) }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("netd.sock")
    }

    /// Runs the CLI against this socket: (exit code, stdout, stderr).
    fn netd(&self, args: &[&str]) -> (i32, String, String) {
        let mut cli = Command::new(netd_bin());
        cli.arg("--socket").arg(self.socket()).args(args);
        let out =
            netd_cmd::output(&mut cli, Limit::new(CLI_TIMEOUT)).unwrap_or_else(|e| panic!("netd {args:?}: {e:?}"));
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    }

    /// (the most requests that were unanswered at once, the names in their arrival order).
    fn seen(&self) -> (usize, Vec<String>) {
        let seen = self.seen.0.lock().unwrap();
        (seen.peak, seen.arrived.clone())
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.acceptor.take().map(JoinHandle::join);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One connection: reads one request, waits for the gate and its turn, answers, closes.
fn serve(conn: UnixStream, seen: &(Mutex<Seen>, Condvar), hold_until: usize, hold: Duration, answer: Answer) {
    conn.set_read_timeout(Some(CLI_TIMEOUT)).unwrap();
    let name = read_request_name(&mut BufReader::new(&conn));
    let (lock, changed) = seen;
    let mut s = lock.lock().unwrap();
    let me = s.arrived.len();
    s.arrived.push(name.clone());
    s.in_flight += 1;
    s.peak = s.peak.max(s.in_flight);
    let first = *s.first_arrival.get_or_insert_with(Instant::now);
    if !s.gate_open {
        s.answer_order.push(me);
    }
    if s.in_flight >= hold_until {
        s.gate_open = true;
    }
    changed.notify_all();
    // Wait for the gate, then (if held) for the turn: the last held is answered first.
    loop {
        let my_turn = !s.answer_order.contains(&me) || s.answer_order.last() == Some(&me);
        if s.gate_open && my_turn {
            break;
        }
        let left = (first + hold).saturating_duration_since(Instant::now());
        if left.is_zero() {
            s.gate_open = true;
            changed.notify_all();
            continue;
        }
        s = changed.wait_timeout(s, left).unwrap().0;
    }
    // Counted out before the answer is sent: the CLI may start its next request as soon as it
    // has it.
    s.in_flight -= 1;
    s.answer_order.retain(|&i| i != me);
    changed.notify_all();
    drop(s);
    let (status, body) = answer(&name);
    let mut conn = conn;
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body.as_bytes())).unwrap();
}

/// The name in `DELETE /containers/NAME?force=true`, `POST /containers/NAME/stop`,
/// `DELETE /networks/NAME`...; the body (if any) is read and ignored.
fn read_request_name(reader: &mut impl BufRead) -> String {
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            if key.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    reader.read_exact(&mut vec![0; length]).unwrap();
    let path = request_line.split(' ').nth(1).unwrap_or_else(|| panic!("request line {request_line:?}"));
    let path = path.split('?').next().unwrap();
    path.split('/').nth(2).unwrap_or_else(|| panic!("no name in {path}")).to_string()
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn lines(names: &[&str]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// `rm -f` of 60 names: the first 50 requests together and no more (they are answered only
/// once all 50 are in, last first), then the other 10; the output in the order of the
/// arguments: names on stdout, an unknown name's error on stderr (no failure with -f), another
/// failure at the end (exit 1).
#[test]
fn rm_sends_fifty_at_once_and_reports_in_the_order_given() {
    let answer: Answer = |name| match name.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if n % 7 == 3 => (404, format!(r#"{{"message":"No such container: {name}"}}"#)),
        Some(n) if n % 11 == 5 => (409, format!(r#"{{"message":"cannot remove {name}"}}"#)),
        _ => (200, format!(r#"{{"Name":"{name}","Id":"{}"}}"#, "ab".repeat(32))),
    };
    let fake = FakeDaemon::start("rm", DOCKER_PARALLEL, PARALLEL_HOLD, answer);
    let all = names("c", 60);
    let mut args = vec!["rm", "-f"];
    args.extend(all.iter().map(String::as_str));
    let (code, out, err) = fake.netd(&args);

    let (peak, arrived) = fake.seen();
    assert_eq!(peak, DOCKER_PARALLEL, "requests in flight at once");
    assert_eq!(arrived.len(), 60, "one request a name: {arrived:?}");
    let first: BTreeSet<&String> = arrived[..DOCKER_PARALLEL].iter().collect();
    assert_eq!(first, all[..DOCKER_PARALLEL].iter().collect(), "the first 50 names go first");

    let n = |name: &String| name[1..].parse::<usize>().unwrap();
    let removed: Vec<&str> = all.iter().filter(|c| n(c) % 7 != 3 && n(c) % 11 != 5).map(String::as_str).collect();
    let unknown: String =
        all.iter().filter(|c| n(c) % 7 == 3).map(|c| format!("Error: No such container: {c}\n")).collect();
    let refused: Vec<String> = all
        .iter()
        .filter(|c| n(c) % 7 != 3 && n(c) % 11 == 5)
        .map(|c| format!("Error response from daemon: cannot remove {c}"))
        .collect();
    assert_eq!((code, out), (1, lines(&removed)));
    assert_eq!(err, format!("{unknown}{}\n", refused.join("\n")));
}

/// `stop` is parallel too: 55 names the fake daemon all refuses, each failure in the order
/// given, together at the end, exit 1.
#[test]
fn stop_sends_fifty_at_once_and_reports_in_the_order_given() {
    let answer: Answer = |name| (500, format!(r#"{{"message":"cannot stop {name}"}}"#));
    let fake = FakeDaemon::start("stop", DOCKER_PARALLEL, PARALLEL_HOLD, answer);
    let all = names("s", 55);
    let mut args = vec!["stop"];
    args.extend(all.iter().map(String::as_str));
    let (code, out, err) = fake.netd(&args);
    assert_eq!(fake.seen().0, DOCKER_PARALLEL);
    let errors: Vec<String> = all.iter().map(|s| format!("Error response from daemon: cannot stop {s}")).collect();
    assert_eq!((code, out.as_str(), err), (1, "", format!("{}\n", errors.join("\n"))));
}

/// `start` and `network rm` ask one name after another, as Docker's CLI: a request arrives only
/// once the one before it is answered (each is held a while for a second to show up).
#[test]
fn start_and_network_rm_ask_one_name_after_another() {
    let answer: Answer = |name| (404, format!(r#"{{"message":"No such thing: {name}"}}"#));
    for (args, expected_err) in [
        (
            ["start", "a1", "a2", "a3"],
            "Error response from daemon: No such thing: a1\nError response from daemon: No such thing: a2\n\
             Error response from daemon: No such thing: a3\nError: failed to start containers: a1, a2, a3\n",
        ),
        (["network", "rm", "a1", "a2"], "Error: No such network: a1\nError: No such network: a2\n"),
    ] {
        let fake = FakeDaemon::start(args[0], 2, SEQUENTIAL_HOLD, answer);
        assert_eq!(fake.netd(&args), (1, String::new(), expected_err.to_string()), "{args:?}");
        let (peak, arrived) = fake.seen();
        assert_eq!(peak, 1, "{args:?}: requests in flight at once");
        let given: Vec<&str> = args.iter().copied().filter(|a| a.starts_with('a')).collect();
        assert_eq!(arrived, given, "{args:?}");
    }
}

/// The real daemon: one `rm -f` of 60 containers on one network, given by name or by id prefix
/// in a shuffled order, prints each as given in that order; every one is gone from the store,
/// the kernel and the maps, and their processes have ended.
#[test]
fn rm_f_of_sixty_containers_removes_every_one() {
    let host = TestHost::start();
    // Unique to this test: the other test in this file runs at the same time.
    let marker = format!("600.{}1", std::process::id());
    host.ok(&["network", "create", "pr-net"]);
    let before = KernelFootprint::of(&host);
    let mut given = Vec::new();
    for i in 0..60usize {
        let name = format!("pr-c{i}");
        let id = host.ok(&["run", "-d", "--name", &name, "--network", "pr-net", "--", "sleep", &marker]);
        given.push(if i.is_multiple_of(3) { id.trim()[..12].to_string() } else { name });
    }
    // Shuffled (7 and 60 are coprime): no two neighbours were created one after the other.
    let given: Vec<String> = (0..60).map(|i| given[i * 7 % 60].clone()).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(given.iter().map(String::as_str));
    let out = host.netd(&args);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(0), lines(&given.iter().map(String::as_str).collect::<Vec<_>>()), String::new())
    );
    assert_eq!(host.ok(&["ps", "-aq"]), "");
    assert_eq!(KernelFootprint::of(&host), before, "kernel objects of removed containers left");
    assert_store_and_kernel_agree(&host, &marker);
    assert_eq!(processes_with(&marker), Vec::<u32>::new(), "processes of removed containers");
    host.ok(&["network", "rm", "pr-net"]);
}

/// The real daemon, a mix of 55 names (more than 50): running, stopped and unknown ones,
/// interleaved. `rm` removes the stopped ones and reports the others' errors together at the
/// end, in the order given (exit 1); `stop` then stops the running ones and reports every other
/// name, now unknown, at the end (exit 1); `rm -f` removes the rest and reports the unknown
/// names on stderr as it goes, without failing.
#[test]
fn rm_and_stop_of_a_mix_report_every_name_in_order() {
    let host = TestHost::start();
    let marker = format!("600.{}2", std::process::id());
    host.ok(&["network", "create", "mx-net"]);
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Running,
        Stopped,
        Unknown,
    }
    let kind = |i: usize| [Kind::Running, Kind::Stopped, Kind::Unknown][i % 3];
    let given: Vec<String> = (0..55).map(|i| format!("mx-{i}")).collect();
    let mut ids = Vec::new();
    for (i, name) in given.iter().enumerate() {
        if kind(i) == Kind::Unknown {
            ids.push(String::new());
            continue;
        }
        let id = host.ok(&["run", "-d", "--name", name, "--network", "mx-net", "--", "sleep", &marker]);
        if kind(i) == Kind::Stopped {
            host.ok(&["stop", name]);
        }
        ids.push(id.trim().to_string());
    }
    let outcome = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(given.iter().map(String::as_str));
        let out = host.netd(&all);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    };
    // The given names for which `keep` holds, each through `line`.
    let each = |keep: &dyn Fn(Kind) -> bool, line: &dyn Fn(usize) -> String| -> String {
        (0..55).filter(|&i| keep(kind(i))).map(|i| format!("{}\n", line(i))).collect()
    };
    let name = |i: usize| given[i].clone();

    let refused = each(&|k| k != Kind::Stopped, &|i| match kind(i) {
        Kind::Running => format!(
            "Error response from daemon: You cannot remove a running container {}. Stop the container before \
             attempting removal or force remove",
            ids[i]
        ),
        _ => format!("Error: No such container: {}", given[i]),
    });
    assert_eq!(outcome(&["rm"]), (1, each(&|k| k == Kind::Stopped, &name), refused), "rm");

    let unknown =
        each(&|k| k != Kind::Running, &|i| format!("Error response from daemon: No such container: {}", given[i]));
    assert_eq!(outcome(&["stop"]), (1, each(&|k| k == Kind::Running, &name), unknown), "stop");

    let unknown = each(&|k| k != Kind::Running, &|i| format!("Error: No such container: {}", given[i]));
    assert_eq!(outcome(&["rm", "-f"]), (0, each(&|k| k == Kind::Running, &name), unknown), "rm -f");

    assert_eq!(host.ok(&["ps", "-aq"]), "");
    assert_store_and_kernel_agree(&host, &marker);
    assert_eq!(processes_with(&marker), Vec::<u32>::new(), "processes of removed containers");
    host.ok(&["network", "rm", "mx-net"]);
}
