//! Host safety (issue 8): who may read the daemon's files and use its API, and what a client
//! of the API or a process in a container can make the daemon hold.
//!
//! Deadlines here only mean "it answered at all" (2-core noisy VMs): none is a performance
//! assertion. Every load loop is bounded in count and time; DNS load comes from inside a
//! container netns the test made, API load over the test daemon's unix socket.
use std::{
    fs::File,
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    os::unix::{fs::MetadataExt, net::UnixStream},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use netd_tests::{in_netns, netd_bin, DaemonOptions, TestHost};
use nix::{
    fcntl::{Flock, FlockArg},
    sys::signal::Signal,
    unistd::Group,
};

/// netd's limits the tests count on (netd/src/daemon/limits.rs).
const API_MAX_CONNECTIONS: usize = 512;
const API_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DNS_TCP_CONNECTIONS: usize = 32;
const DNS_QUERIES_IN_FLIGHT: usize = 64;
/// The API's own group (netd/src/daemon/access.rs).
const API_GROUP: &str = "netd";
const NOBODY: u32 = 65534;

/// The permission bits of `path`, in octal ("700").
fn mode(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", meta.mode() & 0o7777)
}

fn path_of(value: &serde_json::Value) -> PathBuf {
    PathBuf::from(value.as_str().unwrap_or_else(|| panic!("not a path: {value}")))
}

/// Runs `cmd` as nobody, with only `group` as supplementary group.
fn as_nobody(group: Option<u32>, cmd: &[&str]) -> Output {
    let groups = match group {
        Some(gid) => format!("--groups={gid}"),
        None => "--clear-groups".to_string(),
    };
    Command::new("setpriv")
        .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), groups, "--".into()])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv")
}

/// The netd CLI as nobody against `host`'s daemon.
fn netd_as_nobody(host: &TestHost, group: Option<u32>, args: &[&str]) -> Output {
    let (bin, socket) = (netd_bin(), host.socket());
    let mut cmd = vec![bin.to_str().unwrap(), "--socket", socket.to_str().unwrap()];
    cmd.extend_from_slice(args);
    as_nobody(group, &cmd)
}

/// Runs the CLI and waits at most `limit` for it (then kills it, the CLI process we started,
/// and fails).
fn netd_within(host: &TestHost, args: &[&str], limit: Duration) -> Output {
    let mut child = host
        .cli(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run netd CLI");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netd {args:?} did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn ok_within(host: &TestHost, args: &[&str], limit: Duration) -> String {
    let out = netd_within(host, args, limit);
    assert!(out.status.success(), "netd {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Raises this test process's RLIMIT_NOFILE soft limit to its hard limit (the floods below
/// hold thousands of client sockets); returns the limit.
fn raise_own_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(1 << 20);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// The daemon's fd count once it has taken in the load: sampled until it stops changing (or
/// for `within`), the highest sample. Right after a flood the daemon may still be accepting.
fn settled_fds(host: &TestHost, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let (mut highest, mut last, mut same) = (0, usize::MAX, 0);
    while same < 4 && Instant::now() < deadline {
        let now = host.daemon_fds();
        highest = highest.max(now);
        same = if now == last { same + 1 } else { 0 };
        last = now;
        std::thread::sleep(Duration::from_millis(250));
    }
    highest
}

// --- The `netd` group is machine-wide ---
//
// A daemon gives its socket to the `netd` group when that group exists at its start. The test
// that creates the group holds an exclusive lock while it exists; the tests that expect a
// daemon without it hold a shared lock from before their daemon starts until they have checked
// its socket. The lock is a file, so it also orders tests of other worktrees' runs.

const GROUP_LOCK: &str = "/run/lock/netd-tests-netd-group.lock";

fn group_lock(arg: FlockArg) -> Flock<File> {
    let file = File::options().create(true).truncate(false).write(true).open(GROUP_LOCK).expect("open the group lock");
    Flock::lock(file, arg).map_err(|(_, e)| e).expect("lock the group lock")
}

/// The socket's expected (mode, group): `root:netd 0660` when the group exists, else 0600.
/// Call under the lock.
fn expected_socket_access() -> (u32, Option<u32>) {
    match Group::from_name(API_GROUP).unwrap() {
        Some(group) => (0o660, Some(group.gid.as_raw())),
        None => (0o600, None),
    }
}

fn assert_socket_access(host: &TestHost, expected: (u32, Option<u32>)) {
    let socket = host.socket();
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(mode(&socket), format!("{:o}", expected.0), "mode of {}", socket.display());
    assert_eq!(meta.uid(), 0, "owner of {}", socket.display());
    if let Some(gid) = expected.1 {
        assert_eq!(meta.gid(), gid, "group of {}", socket.display());
    }
    // Whatever the mode says: someone outside the group cannot use the API.
    let out = netd_as_nobody(host, None, &["network", "ls"]);
    assert!(!out.status.success(), "nobody used the API: {}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `netd` group for the duration of a test, created (and removed on drop, even on panic)
/// unless it already existed.
struct NetdGroup {
    gid: u32,
    created: bool,
    _lock: Flock<File>,
}

impl NetdGroup {
    fn get() -> Self {
        let lock = group_lock(FlockArg::LockExclusive);
        if let Some(group) = Group::from_name(API_GROUP).unwrap() {
            return NetdGroup { gid: group.gid.as_raw(), created: false, _lock: lock };
        }
        let out = Command::new("groupadd").arg(API_GROUP).output().expect("run groupadd");
        assert!(out.status.success(), "groupadd {API_GROUP}: {}", String::from_utf8_lossy(&out.stderr));
        // From here on, dropping it removes the group.
        let mut group = NetdGroup { gid: 0, created: true, _lock: lock };
        group.gid = Group::from_name(API_GROUP).unwrap().expect("the group just added").gid.as_raw();
        group
    }
}

impl Drop for NetdGroup {
    fn drop(&mut self) {
        if self.created {
            let _ = Command::new("groupdel").arg(API_GROUP).output();
        }
    }
}

// --- Files ---

#[test]
fn the_store_the_container_dirs_and_logs_are_root_only() {
    let lock = group_lock(FlockArg::LockShared);
    let expected = expected_socket_access();
    let host = TestHost::start();
    assert_socket_access(&host, expected);
    drop(lock);

    host.ok(&["network", "create", "my-net"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "my-net",
        "-e",
        "SECRET=hunter2",
        "--",
        "sh",
        "-c",
        "echo started; sleep 600",
    ]);
    let c = &host.json(&["inspect", "c1"])[0];
    let (log, resolv, hosts) = (path_of(&c["LogPath"]), path_of(&c["ResolvConfPath"]), path_of(&c["HostsPath"]));
    let container_dir = log.parent().unwrap().to_path_buf();
    let store = host.dir.join("state");

    assert_eq!(mode(&store), "700", "state dir");
    assert_eq!(mode(&store.join("netd.redb")), "600", "the store holds -e values");
    assert_eq!(mode(&host.run_dir()), "755", "run dir: the socket must be reachable");
    assert_eq!(mode(&host.run_dir().join("containers")), "700");
    assert_eq!(mode(&container_dir), "700", "{}", container_dir.display());
    assert_eq!(mode(&log), "600");
    assert_eq!(mode(&host.bpffs), "700", "pinned maps hold every container's addresses and flows");
    assert_eq!([mode(&resolv), mode(&hosts)], ["644", "644"], "read by container processes");

    for secret in [store.join("netd.redb"), log.clone()] {
        let out = as_nobody(None, &["cat", secret.to_str().unwrap()]);
        assert!(!out.status.success(), "nobody read {}", secret.display());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A container process that is not root still reads the files mounted over /etc: the bind
    // mounts do not go through the 0700 directory.
    let ip = host.ip_of("c1", "my-net");
    let nobody = [format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()];
    let read_as_nobody = |file: &str| {
        let mut cmd = vec!["exec", "c1", "--", "setpriv"];
        cmd.extend(nobody.iter().map(String::as_str));
        cmd.extend(["--", "cat", file]);
        host.ok(&cmd)
    };
    assert!(read_as_nobody("/etc/resolv.conf").starts_with("nameserver 127.0.0.11\n"));
    assert!(read_as_nobody("/etc/hosts").contains(&ip));
}

#[test]
fn modes_an_older_version_left_open_are_tightened_at_start() {
    let mut host = TestHost::start();
    host.ok(&["run", "-d", "--name", "c1", "--", "sh", "-c", "echo started; sleep 600"]);
    let c = &host.json(&["inspect", "c1"])[0];
    let log = path_of(&c["LogPath"]);
    let container_dir = log.parent().unwrap().to_path_buf();
    let store = host.dir.join("state");
    host.stop_daemon(Signal::SIGTERM);
    let open = [
        (store.clone(), 0o755),
        (store.join("netd.redb"), 0o644),
        (host.run_dir(), 0o777),
        (host.run_dir().join("containers"), 0o755),
        (container_dir.clone(), 0o755),
        (log.clone(), 0o644),
        (host.bpffs.clone(), 0o755),
    ];
    for (path, bits) in &open {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*bits)).unwrap();
    }
    host.start_daemon();
    let modes: Vec<String> = open.iter().map(|(path, _)| mode(path)).collect();
    assert_eq!(modes, ["700", "600", "755", "700", "700", "600", "700"], "{open:?}");
}

#[test]
fn a_daemon_started_under_umask_000_keeps_its_socket_and_state_private() {
    let lock = group_lock(FlockArg::LockShared);
    let expected = expected_socket_access();
    let host = TestHost::start_with(DaemonOptions { umask: Some(0), ..Default::default() });
    assert_socket_access(&host, expected);
    drop(lock);
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "my-net", "--", "sleep", "600"]);
    let c = &host.json(&["inspect", "c1"])[0];
    let (log, resolv) = (path_of(&c["LogPath"]), path_of(&c["ResolvConfPath"]));
    assert_eq!(mode(&host.dir.join("state")), "700");
    assert_eq!(mode(&host.dir.join("state/netd.redb")), "600");
    assert_eq!(mode(&host.run_dir()), "755");
    assert_eq!(mode(log.parent().unwrap()), "700");
    assert_eq!(mode(&host.bpffs), "700");
    assert_eq!(mode(&resolv), "644", "not world-writable");
}

#[test]
fn members_of_the_netd_group_may_use_the_api_and_no_one_else() {
    let group = NetdGroup::get();
    let host = TestHost::start();
    assert_socket_access(&host, (0o660, Some(group.gid)));
    let out = netd_as_nobody(&host, Some(group.gid), &["network", "ls", "--format", "{{.Name}}"]);
    assert!(out.status.success(), "a member of {API_GROUP}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == "bridge"));
    drop(host);
    drop(group);
}

// --- API ---

/// Opens `count` connections to the API socket, each sending `request` and holding.
fn hold_api_connections(socket: &Path, count: usize, request: &[u8], deadline: Instant) -> Vec<UnixStream> {
    let mut held = Vec::with_capacity(count);
    while held.len() < count && Instant::now() < deadline {
        let mut conn = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connection {}: {e}", held.len()));
        conn.write_all(request).unwrap();
        held.push(conn);
    }
    assert_eq!(held.len(), count, "opened in time");
    held
}

/// Whether the daemon has closed `conn` (EOF or reset) by `deadline`; what it sent is ignored.
fn closed_by(mut conn: &UnixStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        conn.set_read_timeout(Some(left)).unwrap();
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether `conn` is still open now, without waiting.
fn still_open(mut conn: &UnixStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!(conn.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    conn.set_nonblocking(false).unwrap();
    open
}

#[test]
fn half_sent_requests_neither_stop_the_api_nor_stay_open() {
    raise_own_nofile();
    let host = TestHost::start();
    let before = host.daemon_fds();
    let start = Instant::now();
    let mut held =
        hold_api_connections(&host.socket(), 800, b"GET /networks HTTP/1.1\r\nHo", start + Duration::from_secs(60));
    held.extend(hold_api_connections(&host.socket(), 50, b"", start + Duration::from_secs(60)));

    // hyper's header timer starts at accept, after `start`: until the timeout none is closed,
    // neither for the half request nor for silence.
    let checked = held.iter().filter(|c| still_open(c)).count();
    assert!(start.elapsed() < API_HEADER_READ_TIMEOUT, "too slow to check before the timeout: {:?}", start.elapsed());
    assert_eq!(checked, held.len(), "connections closed before the header timeout");

    // Over the cap, the daemon does not accept (and hold) more connections. (Sampled before
    // the first held connections time out.)
    let during = settled_fds(&host, API_HEADER_READ_TIMEOUT - start.elapsed().min(API_HEADER_READ_TIMEOUT));
    eprintln!("daemon fds: {before} before, {during} with {} clients", held.len());
    assert!(
        during <= before + API_MAX_CONNECTIONS + 32,
        "daemon fds: {before} before, {during} with {} clients",
        held.len()
    );

    // The API answers: once the held connections time out, the CLI's gets its turn.
    let networks = ok_within(&host, &["network", "ls", "--format", "{{.Name}}"], Duration::from_secs(120));
    assert!(networks.lines().any(|l| l == "bridge"), "{networks}");

    // Every half-sent or silent connection is closed by the daemon, and the fds come back.
    let deadline = start + Duration::from_secs(180);
    let open = held.iter().filter(|c| !closed_by(c, deadline)).count();
    assert_eq!(open, 0, "connections still open after {:?}", start.elapsed());
    let after = host.daemon_fds();
    assert!(after <= before + 8, "daemon fds: {before} before, {after} after the clients were closed");
}

#[test]
fn a_request_body_that_never_ends_is_answered_408_and_closed() {
    let host = TestHost::start();
    let mut conn = UnixStream::connect(host.socket()).unwrap();
    conn.write_all(b"POST /networks HTTP/1.1\r\nHost: netd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Name\":")
        .unwrap();
    let start = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(180))).unwrap();
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "after {:?}: {reply:?}", start.elapsed());
    assert!(reply.contains("request body not received in time"), "{reply}");
    assert!(host.ok(&["network", "ls", "-q"]).lines().count() >= 1);
}

// --- Embedded DNS ---

/// Opens up to `max` TCP connections to 127.0.0.11:53 from inside `netns`, for at most
/// `within`, and keeps those that connect. The daemon may close them at once: they are kept
/// open on this side all the same.
fn flood_dns(netns: &Path, max: usize, within: Duration) -> Vec<TcpStream> {
    in_netns(netns, move || {
        let target: SocketAddr = "127.0.0.11:53".parse().unwrap();
        let deadline = Instant::now() + within;
        let mut open = Vec::with_capacity(max);
        let mut attempts = 0;
        while open.len() < max && attempts < 2 * max && Instant::now() < deadline {
            attempts += 1;
            if let Ok(conn) = TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
                open.push(conn);
            }
        }
        open
    })
}

fn dig_short(host: &TestHost, container: &str, name: &str) -> String {
    ok_within(host, &["exec", container, "--", "dig", "+short", "+time=2", "+tries=1", name], Duration::from_secs(60))
        .trim()
        .to_string()
}

#[test]
fn a_container_flooding_its_embedded_dns_starves_no_one() {
    let own_nofile = raise_own_nofile();
    let host = TestHost::start();
    host.ok(&["network", "create", "net-a"]);
    host.ok(&["network", "create", "net-b"]);
    host.ok(&["run", "-d", "--name", "flood", "--network", "net-a", "busybox"]);
    host.ok(&["run", "-d", "--name", "other", "--network", "net-b", "busybox"]);
    host.ok(&["run", "-d", "--name", "peer", "--network", "net-b", "busybox"]);
    let peer_ip = host.ip_of("peer", "net-b");
    assert_eq!(dig_short(&host, "other", "peer"), peer_ip);
    let before = host.daemon_fds();

    let max = 10_000.min(own_nofile.saturating_sub(3000) as usize);
    let flood = flood_dns(&host.container_netns("flood"), max, Duration::from_secs(60));
    assert!(flood.len() > 2 * (DNS_TCP_CONNECTIONS + DNS_QUERIES_IN_FLIGHT), "only {} connections opened", flood.len());

    // The daemon holds at most its per-container share, not one fd per connection.
    let during = settled_fds(&host, Duration::from_secs(8));
    eprintln!("daemon fds: {before} before, {during} with {} connections", flood.len());
    let share = DNS_TCP_CONNECTIONS + DNS_QUERIES_IN_FLIGHT;
    assert!(during <= before + share + 32, "daemon fds: {before} before, {during} with {} connections", flood.len());

    // While the connections are held: the API, a new container and everyone's DNS answer.
    assert!(ok_within(&host, &["network", "ls", "-q"], Duration::from_secs(60)).lines().count() >= 3);
    ok_within(&host, &["run", "-d", "--name", "late", "--network", "net-b", "busybox"], Duration::from_secs(60));
    assert_eq!(dig_short(&host, "other", "peer"), peer_ip);
    assert_eq!(dig_short(&host, "other", "late"), host.ip_of("late", "net-b"), "the new container's name");
    assert_eq!(dig_short(&host, "late", "other"), host.ip_of("other", "net-b"), "the new container's own listener");
    assert_eq!(dig_short(&host, "flood", "flood"), host.ip_of("flood", "net-a"), "UDP still answers the flooder");
    let still = host.daemon_fds();
    assert!(still <= before + share + 32 + 4, "daemon fds: {before} before, {still} later in the flood");
    drop(flood);
}

/// The number after `key=` in the daemon's log.
fn logged_number(host: &TestHost, key: &str) -> u64 {
    let log = host.plain_daemon_log();
    let at = log.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key} in the daemon log:\n{log}"));
    let digits: String = log[at + key.len() + 1..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// "Max open files" (soft, hard) of a process.
fn nofile_of(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn floods_from_several_containers_stay_within_the_daemon_wide_budget() {
    raise_own_nofile();
    // A small limit makes a small budget (1100 - the 1024 reserved = 76 fds): four flooding
    // containers would hold 4 × (2 listener fds + 32 connections) = 136 on their own.
    let host = TestHost::start_with(DaemonOptions { nofile: Some((512, 1100)), ..Default::default() });
    assert_eq!(nofile_of(host.daemon_pid()), (1100, 1100), "the daemon raised its soft limit");
    let budget = logged_number(&host, "dns_fd_budget") as usize;
    let flooders = ["f1", "f2", "f3", "f4"];
    assert!(budget < flooders.len() * (2 + DNS_TCP_CONNECTIONS), "the flood must exceed the budget of {budget}");

    host.ok(&["network", "create", "net-a"]);
    let before = host.daemon_fds(); // no listener yet
    host.ok(&["run", "-d", "--name", "quiet", "--network", "net-a", "busybox"]);
    for name in flooders {
        host.ok(&["run", "-d", "--name", name, "--network", "net-a", "busybox"]);
    }
    // All at once, so that the held connections add up before DNS_TCP_IDLE closes any.
    let floods: Vec<Vec<TcpStream>> = std::thread::scope(|scope| {
        let floods: Vec<_> = flooders
            .iter()
            .map(|name| {
                let netns = host.container_netns(name);
                scope.spawn(move || flood_dns(&netns, 200, Duration::from_secs(5)))
            })
            .collect();
        floods.into_iter().map(|flood| flood.join().unwrap()).collect()
    });
    let during = settled_fds(&host, Duration::from_secs(5));
    eprintln!(
        "daemon fds: {before} before, {during} during; budget {budget}; opened {:?}",
        floods.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(
        during <= before + budget + 8,
        "daemon fds: {before} before, {during} during (budget {budget}); opened {:?}",
        floods.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(ok_within(&host, &["network", "ls", "-q"], Duration::from_secs(60)).lines().count() >= 2);
    assert_eq!(dig_short(&host, "quiet", "f1"), host.ip_of("f1", "net-a"));
    drop(floods);
}
