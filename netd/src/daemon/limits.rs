//! Every resource limit of the daemon in one place, with the reason for its value: what a
//! client of the API or a process inside a container may make the daemon hold (issue 8).
//! Nothing here is a performance knob: the values bound the worst case, and ordinary use stays
//! far below them.
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

// --- API (unix socket, `api_server.rs`) ---

/// Connections served at once. Beyond it the daemon stops accepting until one closes: further
/// clients wait in the socket's listen backlog (kernel memory, no fd of the daemon's). The CLI
/// makes one connection per command, so 512 is far above real use, and small enough that
/// 512 × (read buffer + body) stays a few hundred MiB at the very worst.
pub const API_MAX_CONNECTIONS: usize = 512;

/// Time a client has to send a request's head, counted from the moment hyper waits for one:
/// at accept and again after each response. It is therefore also the idle timeout of a
/// keep-alive connection. A local client sends its head in one write; 10 s is generous.
pub const API_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to send a whole request body once its head is in. Bodies are small JSON
/// documents written at once by the CLI.
pub const API_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request body. The biggest real one is a `run` with its command and `-e` values:
/// kilobytes.
pub const API_MAX_BODY: usize = 1024 * 1024;

/// hyper's read buffer per connection (its default is about 400 KiB): a request head is a few
/// hundred bytes, and the body goes through the buffer in pieces.
pub const API_READ_BUFFER: usize = 64 * 1024;

/// A response write that makes no progress for this long fails and the connection closes:
/// hyper has no write timeout, and a client that stops reading would otherwise hold its
/// connection slot for ever.
pub const API_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopping daemon waits for requests in progress before it exits anyway.
pub const API_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

// --- Embedded DNS (`dns/server.rs`, `dns/upstream.rs`) ---

/// TCP connections from one container to its 127.0.0.11:53 at once. Over it a new connection
/// is closed at once, so that it holds no fd of the daemon's. Stub resolvers use TCP only to
/// retry a truncated answer, one connection per query; 32 leaves room for a busy container.
pub const DNS_TCP_CONNECTIONS: usize = 32;

/// Queries of one container answered at once, UDP and TCP together; each may hold an upstream
/// socket. More UDP queries are dropped (the client retries), a TCP connection waits for its
/// turn. Docker's resolver allows 1024 forwarded queries per container (`maxConcurrent` in
/// libnetwork/resolver.go); a container's resolver sends a handful at once, and 64 per
/// container keeps one container's share of the fd budget small.
pub const DNS_QUERIES_IN_FLIGHT: usize = 64;

/// A TCP client that sends nothing for this long is disconnected; also the time a reply may
/// take to be written. Docker's resolver (miekg/dns) uses 8 s; RFC 7766 asks for seconds.
pub const DNS_TCP_IDLE: Duration = Duration::from_secs(10);

/// Fds that are not the embedded DNS's: stdio; the API's listener and its
/// [`API_MAX_CONNECTIONS`] connections (513); the store (1-2); the netlink socket and the
/// ones opened per operation in a container netns; eBPF maps and programs (about 10) and the
/// link fds opened while attaching; tokio (epoll, eventfd, signals); netns files, /proc reads
/// and the pipes of `Command::spawn` during operations. That is about 600 at the very worst;
/// 1024 leaves room.
pub const RESERVED_FDS: u64 = 1024;

/// Above this many fds the embedded DNS's memory, not fds, would be the limit (each TCP
/// connection is a task with up to a 64 KiB message buffer).
pub const DNS_FD_BUDGET_MAX: u64 = 65536;

/// The fds the embedded DNS may hold, for all containers together (listener sockets, TCP
/// connections from containers, upstream sockets), with the daemon's RLIMIT_NOFILE at
/// `nofile`: everything above [`RESERVED_FDS`], up to [`DNS_FD_BUDGET_MAX`]. Under a tiny limit
/// (≤ 1088) it keeps 1/16 of it, so that a few containers still resolve names.
pub fn dns_fd_budget(nofile: u64) -> u64 {
    nofile.saturating_sub(RESERVED_FDS).max(nofile / 16).min(DNS_FD_BUDGET_MAX)
}

// --- eBPF map capacities (`netd daemon --max-endpoints …`, `datapath/ebpf.rs`) ---

/// How many entries the datapath's maps hold: fixed when a map is created (pinned maps keep
/// their size across restarts), so that what would not fit is refused by the command that
/// asks for it, never missed by the datapath. Hash and LRU maps preallocate every entry: the
/// memory is taken at start, whatever is used (docs/architecture.md, "Map capacities").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacities {
    /// Endpoints (container interfaces) on all networks: sizes the endpoint map (by address)
    /// and the interface map (by host veth).
    pub endpoints: u32,
    /// Tracked flows, for TCP and for UDP/ICMP each (LRU: the least recently used flow makes
    /// room, so established flows that carry traffic stay).
    pub conntrack: u32,
    /// Masqueraded flows' reverse mappings (a plain hash: when full a new masqueraded flow is
    /// dropped and counted as `nat_full` in `netd stats`, rather than evicting the mapping of a
    /// flow in use).
    pub nat: u32,
    /// Published (host address, host port, protocol) entries of all containers: sizes the
    /// service map and the reserved-port map.
    pub published_ports: u32,
}

impl Default for Capacities {
    fn default() -> Self {
        use netd_common::maps;
        Self {
            endpoints: maps::MAX_ENDPOINTS,
            conntrack: maps::CT_TCP_ENTRIES,
            nat: maps::NAT_ENTRIES,
            published_ports: maps::MAX_SERVICES,
        }
    }
}

/// The smallest and largest capacity a flag takes: below 16 a map is useless, above 2^24
/// entries one map alone would take gigabytes of kernel memory.
pub const CAPACITY_RANGE: std::ops::RangeInclusive<i64> = 16..=(1 << 24);

impl Capacities {
    /// Each map's name with the size it gets.
    pub fn map_sizes(&self) -> Vec<(&'static str, u32)> {
        use netd_common::maps;
        vec![
            (maps::ENDPOINTS, self.endpoints),
            (maps::INTERFACES, self.endpoints),
            (maps::FLOWS_OF, self.endpoints),
            (maps::CT_TCP, self.conntrack),
            (maps::CT_OTHER, self.conntrack),
            (maps::NAT, self.nat),
            (maps::SERVICES, self.published_ports),
            (maps::RESERVED_PORTS, self.published_ports),
        ]
    }

    /// The daemon flag that sizes `map`, for error messages.
    pub fn flag_of(map: &str) -> &'static str {
        use netd_common::maps;
        match map {
            m if m == maps::ENDPOINTS || m == maps::INTERFACES || m == maps::FLOWS_OF => "--max-endpoints",
            m if m == maps::CT_TCP || m == maps::CT_OTHER => "--conntrack-entries",
            m if m == maps::NAT => "--nat-entries",
            _ => "--max-published-ports",
        }
    }
}

/// RLIMIT_NOFILE's soft limit before [`raise_nofile`], restored for container commands.
static ORIGINAL_NOFILE_SOFT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Raises the daemon's RLIMIT_NOFILE soft limit to the hard limit (the soft default of 1024 is
/// meant for programs using select(2)); returns the limit now in force.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        ORIGINAL_NOFILE_SOFT.store(limit.rlim_cur, Ordering::Relaxed);
        // An unlimited hard limit cannot be the soft one: the kernel caps fds at fs.nr_open.
        let ceiling = if limit.rlim_max == libc::RLIM_INFINITY { nr_open() } else { limit.rlim_max };
        if limit.rlim_cur < ceiling {
            limit.rlim_cur = ceiling;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// The kernel's per-process ceiling for fds (`fs.nr_open`, 1048576 unless changed).
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20)
}

/// What a container command must get back from the daemon before it execs (call it in the
/// command's `pre_exec`): the usual umask 0o022 instead of the daemon's 0o077, and the
/// RLIMIT_NOFILE soft limit the daemon was started with instead of the raised one (programs
/// that use select(2) break above 1024). Only async-signal-safe calls.
pub fn restore_for_child() -> std::io::Result<()> {
    // SAFETY: umask and getrlimit/setrlimit are plain syscalls, safe between fork and exec.
    unsafe {
        libc::umask(0o022);
        let soft = ORIGINAL_NOFILE_SOFT.load(Ordering::Relaxed);
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if soft != u64::MAX && libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = soft.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sized_map_has_its_flag_and_the_defaults_are_the_built_in_sizes() {
        let caps = Capacities::default();
        for (map, size) in caps.map_sizes() {
            assert!(Capacities::flag_of(map).starts_with("--"), "{map}");
            assert!(CAPACITY_RANGE.contains(&i64::from(size)), "{map}: {size}");
        }
        assert_eq!(Capacities::flag_of(netd_common::maps::NAT), "--nat-entries");
        assert_eq!(Capacities::flag_of(netd_common::maps::SERVICES), "--max-published-ports");
    }

    #[test]
    fn the_dns_budget_is_what_the_reserve_leaves() {
        assert_eq!(dns_fd_budget(20_000), 20_000 - RESERVED_FDS);
        assert_eq!(dns_fd_budget(1100), 76);
        assert_eq!(dns_fd_budget(524_288), DNS_FD_BUDGET_MAX, "capped");
    }

    #[test]
    fn under_a_tiny_limit_the_dns_keeps_a_sixteenth() {
        assert_eq!(dns_fd_budget(1024), 64);
        assert_eq!(dns_fd_budget(256), 16);
        assert!(1024 - dns_fd_budget(1024) > API_MAX_CONNECTIONS as u64, "the API's connections still fit");
    }
}
