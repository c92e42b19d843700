//! Container commands are the daemon's own and are tracked race-free (issue: host safety):
//! the API takes no pid, a restarted daemon never signals a reused pid, a command that exited
//! while the daemon was down marks its container exited, `rm` ends every process of the
//! container and nothing else, `container:` chains of any depth run in the owner's netns, and
//! attached runs get their exit code and signals.
use std::{
    io::{Read, Write},
    os::unix::{fs::MetadataExt, net::UnixStream, process::ExitStatusExt},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use netd_tests::{agreement::processes_with, cgroup_dir, TestHost};
use nix::sys::signal::Signal;

/// Raw HTTP on the daemon's API socket; returns the status code.
fn http_status(host: &TestHost, method: &str, path: &str, body: &str) -> u16 {
    let mut s = UnixStream::connect(host.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: netd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {reply:?}"))
}

fn pid_of(host: &TestHost, name: &str) -> u32 {
    host.json(&["inspect", name])[0]["State"]["Pid"].as_u64().unwrap() as u32
}

/// Gone for good: ended and reaped.
fn wait_gone(pid: u32) {
    netd_tests::wait_process_gone(pid, Duration::from_secs(15));
}

/// A process of the test's own, outside every container: it must survive everything netd does.
struct Bystander(Child);

impl Bystander {
    fn start() -> Self {
        Bystander(Command::new("sleep").arg("600").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn assert_alive(&mut self) {
        assert!(self.0.try_wait().unwrap().is_none(), "netd ended a process that is not a container's");
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_api_takes_no_pid_and_rm_ends_only_the_containers_processes() {
    let host = TestHost::start();
    let mut bystander = Bystander::start();
    host.ok(&["network", "create", "pr-net"]);
    // The command forks: rm must end both processes, found through the container's cgroup.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "pr-net",
        "--",
        "sh",
        "-c",
        "sleep 600.101 & exec sleep 600.102",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with("600.101").is_empty() {
        assert!(Instant::now() < deadline, "the command's child did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (child, main) = (processes_with("600.101"), pid_of(&host, "web"));
    // The route that took any pid (4294967295 made `rm -f` kill every process) is gone.
    for pid in ["4294967295", "0", "1", &bystander.pid().to_string()] {
        let status = http_status(&host, "POST", "/containers/web/attach", &format!("{{\"pid\":{pid}}}"));
        assert!(status == 404 || status == 405, "attach with a pid answered {status}");
    }
    // Stop no longer takes an exit code or pid from the client either: the body is ignored.
    assert_eq!(pid_of(&host, "web"), main);
    host.ok(&["rm", "-f", "web"]);
    wait_gone(main);
    for pid in child {
        wait_gone(pid);
    }
    bystander.assert_alive();
    assert!(!netd_cmd::is_zombie(std::process::id()));
}

#[test]
fn the_attach_socket_refuses_containers_that_are_not_waiting_for_it() {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "busy", "--", "sleep", "600.201"]);
    let main = pid_of(&host, "busy");
    let attach = host.socket().with_extension("sock.attach");
    for (request, fds) in [
        (r#"{"container":"busy"}"#, vec![0, 1, 2]),
        (r#"{"container":"nosuch"}"#, vec![0, 1, 2]),
        (r#"{"container":"busy"}"#, vec![0]),
    ] {
        let s = UnixStream::connect(&attach).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let line = format!("{request}\n");
        sendmsg::<()>(
            s.as_raw_fd(),
            &[std::io::IoSlice::new(line.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut reply = String::new();
        let _ = (&s).read_to_string(&mut reply);
        assert!(reply.contains("\"error\""), "{request} with {} fds: {reply}", fds.len());
    }
    assert_eq!(pid_of(&host, "busy"), main, "a refused attach changed the container's process");
    assert_eq!(processes_with("600.201"), vec![main]);
}

#[test]
fn a_command_that_exits_while_the_daemon_is_down_marks_its_container_exited() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "down-net"]);
    host.ok(&["run", "-d", "--name", "short", "--network", "down-net", "--", "sleep", "1.5"]);
    host.ok(&["run", "-d", "--rm", "--name", "gone", "--network", "down-net", "--", "sleep", "1.5"]);
    host.ok(&["run", "-d", "--name", "long", "--network", "down-net", "--", "sleep", "600.301"]);
    let (short, gone, long) = (pid_of(&host, "short"), pid_of(&host, "gone"), pid_of(&host, "long"));
    host.stop_daemon(Signal::SIGKILL);
    wait_gone(short);
    wait_gone(gone);
    host.start_daemon();
    let c = &host.json(&["inspect", "short"])[0];
    assert_eq!(c["State"]["Status"], "exited", "{c}");
    assert_eq!(c["State"]["ExitCode"], 255, "{c}");
    assert!(host.netd(&["inspect", "gone"]).status.code() != Some(0), "--rm container still there");
    // The live command was adopted: still Up with the same pid, and rm still ends it.
    let l = &host.json(&["inspect", "long"])[0];
    assert_eq!((l["State"]["Running"].as_bool(), l["State"]["Pid"].as_u64()), (Some(true), Some(long as u64)));
    host.ok(&["rm", "-f", "long"]);
    wait_gone(long);
    assert!(host.ok(&["ps", "-aq"]).lines().count() == 1, "only the exited container is left");
    host.ok(&["rm", "short"]);
    host.ok(&["network", "rm", "down-net"]);
}

/// Makes the kernel hand out `pid` to a new process of ours (`ns_last_pid`), so that it
/// impersonates a container command that exited.
fn impostor_with_pid(pid: u32) -> Bystander {
    // A zombie still holds its pid until whoever adopted it reaps it.
    wait_gone(pid);
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        if child.id() == pid {
            return Bystander(child);
        }
        drop(Bystander(child));
    }
    panic!("could not get pid {pid} reused (the machine forks too fast)");
}

#[test]
fn a_reused_pid_is_never_taken_for_the_containers_command() {
    let mut host = TestHost::start();
    host.ok(&["run", "-d", "--name", "brief", "--", "sleep", "1"]);
    let pid = pid_of(&host, "brief");
    host.stop_daemon(Signal::SIGKILL);
    wait_gone(pid);
    let mut impostor = impostor_with_pid(pid);
    host.start_daemon();
    let c = &host.json(&["inspect", "brief"])[0];
    assert_eq!(c["State"]["Status"], "exited", "a reused pid was taken for the command: {c}");
    host.ok(&["start", "brief"]);
    host.ok(&["stop", "brief"]);
    host.ok(&["rm", "-f", "brief"]);
    impostor.assert_alive();
}

#[test]
fn container_chains_of_any_depth_run_in_the_owners_netns() {
    let host = TestHost::start();
    host.ok(&["network", "create", "chain-net"]);
    host.ok(&["run", "-d", "--name", "c0", "--network", "chain-net", "--", "sleep", "600.401"]);
    let owner_ino = std::fs::metadata(host.container_netns("c0")).unwrap().ino();
    let host_ino = std::fs::metadata(host.netns_path(&host.host_ns)).unwrap().ino();
    for i in 1..=10 {
        let (name, target) = (format!("c{i}"), format!("container:c{}", i - 1));
        host.ok(&["run", "-d", "--name", &name, "--network", &target, "--", "sleep", "600.401"]);
    }
    for i in 0..=10 {
        let pid = pid_of(&host, &format!("c{i}"));
        let ino = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap().ino();
        assert_eq!(ino, owner_ino, "c{i}'s command runs outside c0's netns");
        assert_ne!(ino, host_ino);
        let c = &host.json(&["inspect", &format!("c{i}")])[0];
        // As in Docker, a `container:` sharer shows no SandboxKey of its own.
        let key = if i == 0 { host.container_netns("c0").to_string_lossy().into_owned() } else { String::new() };
        assert_eq!(c["NetworkSettings"]["SandboxKey"], key.as_str());
    }
    let seen = host.ok(&["exec", "c10", "--", "readlink", "/proc/self/ns/net"]);
    assert_eq!(seen.trim(), format!("net:[{owner_ino}]"));
    for i in (0..=10).rev() {
        host.ok(&["rm", "-f", &format!("c{i}")]);
    }
}

#[test]
fn an_attached_run_gets_its_exit_code_and_forwards_signals() {
    let host = TestHost::start();
    host.ok(&["network", "create", "att-net"]);
    let out = host.netd(&["run", "--name", "seven", "--network", "att-net", "--", "sh", "-c", "echo out; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let c = &host.json(&["inspect", "seven"])[0];
    assert_eq!((c["State"]["Status"].as_str(), c["State"]["ExitCode"].as_i64()), (Some("exited"), Some(7)));
    let out = host.netd(&["run", "--rm", "--name", "brief", "--network", "att-net", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!host.netd(&["inspect", "brief"]).status.success(), "--rm container left");

    // Ctrl-C reaches the command through the CLI: sleep dies of SIGINT (130).
    let mut cli = host
        .cli(&["run", "--name", "sig", "--network", "att-net", "--", "sleep", "600.501"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Started once the daemon reports its pid (the CLI's own command line has the marker).
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = || {
        let out = host.netd(&["inspect", "sig"]);
        let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        c[0]["State"]["Pid"].as_u64().unwrap_or(0) != 0
    };
    while !started() {
        assert!(Instant::now() < deadline, "attached command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = cli.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = cli.kill();
            panic!("the attached CLI did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status:?} (signal {:?})", status.signal());
    let c = &host.json(&["inspect", "sig"])[0];
    assert_eq!(c["State"]["ExitCode"], 130, "{c}");
    assert!(Path::new(&host.socket()).exists());
}

#[test]
fn a_command_is_in_its_containers_cgroup_from_the_start_and_rm_leaves_no_cgroup() {
    let host = TestHost::start();
    // Reading its own cgroup is the command's first action: it was created in the cgroup.
    let out = host.ok(&["run", "--name", "cg-first", "--network", "none", "--", "cat", "/proc/self/cgroup"]);
    let id = host.json(&["inspect", "cg-first"])[0]["Id"].as_str().unwrap().to_string();
    let line = out.lines().find(|l| l.starts_with("0::")).unwrap_or_else(|| panic!("no cgroup2 line in {out:?}"));
    assert!(line.contains("/netd/") && line.ends_with(&format!("/{id}")), "not in its container's cgroup: {line}");

    // rm -f returns once every process of the container is gone and its cgroup removed.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "cg-many",
        "--",
        "sh",
        "-c",
        "sleep 600.511 & sleep 600.512 & exec sleep 600.513",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with("600.512").is_empty() {
        assert!(Instant::now() < deadline, "the command's children did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let main = pid_of(&host, "cg-many");
    let dir = cgroup_dir(main);
    assert!(dir.join("cgroup.procs").exists(), "{} missing", dir.display());
    host.ok(&["rm", "-f", "cg-many"]);
    assert!(!dir.exists(), "{} left after rm -f", dir.display());
    for tag in ["600.511", "600.512", "600.513"] {
        assert!(processes_with(tag).is_empty(), "a process of the container ({tag}) outlived rm -f");
    }
}

#[test]
fn a_command_starts_with_no_signal_ignored_as_in_docker() {
    let host = TestHost::start();
    // `SigIgn` is the mask of ignored signals (Docker's commands: 0). netd's `__enter` is a Rust
    // program, whose runtime ignores SIGPIPE (bit 12): it must not reach the command.
    let out = host.ok(&["run", "--name", "sp-first", "--network", "none", "--", "grep", "SigIgn", "/proc/self/status"]);
    let mask = out.trim().strip_prefix("SigIgn:").unwrap_or_else(|| panic!("{out:?}")).trim();
    let mask = u64::from_str_radix(mask, 16).unwrap_or_else(|e| panic!("{mask}: {e}"));
    assert_eq!(mask, 0, "signals ignored in the command: SigIgn {mask:x}");
}
