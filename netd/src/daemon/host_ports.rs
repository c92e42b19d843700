//! The host's side of published ports, as `HostKernel` sees it in the daemon's netns: the
//! ephemeral range random host ports come from, and whether a host socket already holds a
//! port (a bind tried and closed at once; no socket is kept).
use std::{collections::BTreeSet, net::Ipv4Addr, os::fd::AsRawFd};

use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::ports::Proto;

/// Docker's fallback when `ip_local_port_range` cannot be read.
pub const FALLBACK_RANGE: (u16, u16) = (49153, 65535);

/// Where random host ports come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPorts {
    pub start: u16,
    pub end: u16,
    /// `ip_local_reserved_ports`: never handed out.
    pub reserved: BTreeSet<u16>,
}

impl LocalPorts {
    /// Reads `/proc/sys/net/ipv4/ip_local_port_range` and `ip_local_reserved_ports` of the
    /// calling thread's netns (the daemon's).
    pub fn read() -> Self {
        let read = |name: &str| read_sysctl(format!("/proc/sys/net/ipv4/{name}").as_ref()).unwrap_or_default();
        let (start, end) = parse_range(&read("ip_local_port_range")).unwrap_or(FALLBACK_RANGE);
        LocalPorts { start, end, reserved: parse_reserved(&read("ip_local_reserved_ports")) }
    }
}

/// The text of a sysctl file, read in one `read` at offset 0: the kernel formats some (the
/// large bitmap of `ip_local_reserved_ports`) only for a read at offset 0 and answers any
/// later read with end-of-file, so a buffered reader's small first read would cut the list
/// (`fs::read_to_string` reads 32 bytes first: `21000-21002,21004,...` came back as its first
/// 32 bytes). The buffer grows until the text fits.
pub fn read_sysctl(path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = file.read_at(&mut buf, 0)?;
        if n < buf.len() {
            buf.truncate(n);
            return String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// `32768\t60999`.
pub fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>().ok());
    let (start, end) = (it.next()??, it.next()??);
    (start > 0 && start <= end).then_some((start, end))
}

/// `8080,9000-9002` (the kernel's list); what does not parse is skipped.
pub fn parse_reserved(text: &str) -> BTreeSet<u16> {
    let mut set = BTreeSet::new();
    for part in text.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    set.extend(a..=b);
                }
            }
            None => set.extend(part.parse::<u16>().ok()),
        }
    }
    set
}

/// Tries to bind `addr:port` with a socket of `proto` in the calling thread's netns and closes
/// it at once. A TCP socket sets SO_REUSEADDR (as Go's listeners and docker-proxy do), so a
/// connection in TIME_WAIT does not count, a listener does. `Err` is the reason as Go prints
/// it (`address already in use`).
pub fn try_bind(addr: Ipv4Addr, port: u16, proto: Proto) -> Result<(), String> {
    let kind = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None).map_err(go_text)?;
    if proto == Proto::Tcp {
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(go_text)?;
    }
    let sa = SockaddrIn::from(std::net::SocketAddrV4::new(addr, port));
    let result = bind(fd.as_raw_fd(), &sa).map_err(go_text);
    drop(fd);
    result
}

/// Go's text of an errno: the C library's message with a lower-case first letter.
fn go_text(errno: nix::errno::Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_texts_are_read_whole_whatever_their_length() {
        let path = std::env::temp_dir().join(format!("netd-read-sysctl-{}", std::process::id()));
        let long: String = (1..=5000u32).map(|p| format!("{},", p * 2)).collect();
        std::fs::write(&path, &long).unwrap();
        let read = read_sysctl(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read.unwrap(), long);
    }

    #[test]
    fn proc_texts_parse() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("garbage"), None);
        assert_eq!(parse_range("5000 4000"), None);
        assert_eq!(parse_reserved("\n"), BTreeSet::new());
        assert_eq!(parse_reserved("8080,9000-9002\n"), BTreeSet::from([8080, 9000, 9001, 9002]));
    }

    #[test]
    fn a_bound_port_is_refused_with_gos_text() {
        let held = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        assert_eq!(try_bind(Ipv4Addr::LOCALHOST, port, Proto::Tcp), Err("address already in use".into()));
        assert_eq!(try_bind(Ipv4Addr::UNSPECIFIED, port, Proto::Tcp), Err("address already in use".into()));
        drop(held);
        assert_eq!(try_bind(Ipv4Addr::LOCALHOST, port, Proto::Tcp), Ok(()));
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_eq!(try_bind(Ipv4Addr::LOCALHOST, port, Proto::Udp), Err("address already in use".into()));
        assert_eq!(
            try_bind(Ipv4Addr::new(203, 0, 113, 9), 80, Proto::Udp),
            Err("cannot assign requested address".into())
        );
    }
}
