//! The client side of traffic tests, run inside a netns (a container's, the host's, the
//! outside's): TCP connections from a chosen source port, UDP requests, pings with a raw
//! socket, hand-made IPv4 packets and Ethernet frames, and the TX checksum offload switch of an
//! interface. Every wait is bounded.
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU16, Ordering},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::{
    in_netns,
    packet::{icmp_echo_request, Ipv4Seen, ICMP_ECHO_REPLY},
};

/// Socket timeouts of the probes: long enough for any working path on a loaded 2-core VM,
/// short enough that a dropped path fails its test quickly.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a TCP connection from the netns `netns`, optionally from the source `bind`
/// (address and/or port), to `dst`. The stream has read and write timeouts of [`IO_TIMEOUT`].
pub fn tcp_connect(
    netns: &Path,
    bind: Option<SocketAddrV4>,
    dst: SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    in_netns(netns, move || {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(bind) = bind {
            socket.bind(&SocketAddr::V4(bind).into())?;
        }
        socket.connect_timeout(&SocketAddr::V4(dst).into(), timeout)?;
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    })
}

/// Reads one `\n`-terminated line (without it).
pub fn read_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte)? {
            0 => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before end of line")),
            _ if byte[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            _ => line.push(byte[0]),
        }
    }
}

/// Connects to a [`crate::servers::TcpPeerServer`] and returns the stream and the address
/// the server saw the connection come from.
pub fn tcp_peer(
    netns: &Path,
    bind: Option<SocketAddrV4>,
    dst: SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<(TcpStream, SocketAddrV4)> {
    let mut stream = tcp_connect(netns, bind, dst, timeout)?;
    let line = read_line(&mut stream)?;
    let seen = line
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("peer line {line:?}: {e}")))?;
    Ok((stream, seen))
}

/// Sends `message` on a stream to a [`crate::servers::TcpPeerServer`] and checks that it
/// comes back upper-cased.
pub fn exchange(stream: &mut TcpStream, message: &str) -> std::io::Result<()> {
    stream.write_all(message.as_bytes())?;
    let mut reply = vec![0u8; message.len()];
    stream.read_exact(&mut reply)?;
    if reply != message.to_ascii_uppercase().as_bytes() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("sent {message:?}, got back {:?}", String::from_utf8_lossy(&reply)),
        ));
    }
    Ok(())
}

/// Sends a datagram from the netns `netns` (optionally from `bind`) to a
/// [`crate::servers::UdpPeerServer`] at `dst` and returns the address the server saw, or
/// None when no answer came (three tries, [`IO_TIMEOUT`] in all).
pub fn udp_peer(netns: &Path, bind: Option<SocketAddrV4>, dst: SocketAddrV4) -> Option<SocketAddrV4> {
    in_netns(netns, move || {
        let socket = UdpSocket::bind(bind.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))).expect("bind UDP");
        socket.set_read_timeout(Some(IO_TIMEOUT / 3)).unwrap();
        let mut buf = [0u8; 256];
        for _ in 0..3 {
            // An unreachable destination may fail the send itself (ENETUNREACH): that is "no answer".
            if socket.send_to(b"who am I", dst).is_err() {
                std::thread::sleep(IO_TIMEOUT / 3);
                continue;
            }
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                if from == SocketAddr::V4(dst) {
                    return String::from_utf8_lossy(&buf[..n]).parse().ok();
                }
            }
        }
        None
    })
}

/// Sends one datagram and waits for nothing.
pub fn udp_send(netns: &Path, dst: SocketAddrV4, payload: &'static [u8]) {
    in_netns(netns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
        let _ = socket.send_to(payload, dst);
    })
}

static PING_ID: AtomicU16 = AtomicU16::new(0);

/// Pings `dst` from the netns `netns` with a raw ICMP socket; true when an echo reply with
/// this ping's identifier came back from `dst` within `timeout` (a request is sent every
/// second until then).
pub fn ping(netns: &Path, dst: Ipv4Addr, timeout: Duration) -> bool {
    let id = (std::process::id() as u16).wrapping_mul(257) ^ PING_ID.fetch_add(1, Ordering::SeqCst);
    in_netns(netns, move || {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw ICMP socket");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let to: SockAddr = SocketAddr::V4(SocketAddrV4::new(dst, 0)).into();
        let deadline = Instant::now() + timeout;
        let mut next_send = Instant::now();
        let mut seq = 0u16;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if Instant::now() >= next_send {
                seq += 1;
                let _ = socket.send_to(&icmp_echo_request(id, seq, b"netd egress test"), &to);
                next_send = Instant::now() + Duration::from_secs(1);
            }
            let Ok(n) = (&socket).read(&mut buf) else {
                continue;
            };
            if let Some(p) = Ipv4Seen::parse(&buf[..n]) {
                if p.src == dst && p.icmp_type() == Some(ICMP_ECHO_REPLY) && p.icmp_echo_id() == Some(id) {
                    return true;
                }
            }
        }
        false
    })
}

/// Sends a complete IPv4 packet (header included, as built by [`crate::packet`]) from the
/// netns `netns`; the kernel routes it by its destination and leaves the rest as it is
/// (IP_HDRINCL).
pub fn send_ipv4(netns: &Path, packet: Vec<u8>) {
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    in_netns(netns, move || {
        let socket =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(libc::IPPROTO_RAW))).expect("raw IPv4 socket");
        socket.set_header_included_v4(true).unwrap();
        socket.send_to(&packet, &SocketAddr::V4(SocketAddrV4::new(dst, 0)).into()).expect("send raw IPv4 packet");
    })
}

/// Sends an Ethernet frame as it is out of `ifname` in the netns `netns` (AF_PACKET).
pub fn send_frame(netns: &Path, ifname: &str, frame: Vec<u8>) {
    let ifname = std::ffi::CString::new(ifname).unwrap();
    in_netns(netns, move || {
        // SAFETY: plain syscalls on a socket this closure owns; sockaddr_ll is fully
        // initialised (zeroed, then the fields AF_PACKET reads).
        unsafe {
            let index = libc::if_nametoindex(ifname.as_ptr());
            assert!(index != 0, "no interface {ifname:?}: {}", std::io::Error::last_os_error());
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut to: libc::sockaddr_ll = std::mem::zeroed();
            to.sll_family = libc::AF_PACKET as u16;
            to.sll_ifindex = index as i32;
            to.sll_halen = 6;
            to.sll_addr[..6].copy_from_slice(&frame[..6]);
            let sent = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(sent, frame.len() as isize, "send frame on {ifname:?}: {err}");
        }
    })
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// One ETHTOOL_* get/set of a u32 value on `ifname` in the current thread's netns.
fn ethtool_value(ifname: &str, cmd: u32, data: u32) -> std::io::Result<u32> {
    let mut value = EthtoolValue { cmd, data };
    // SAFETY: ifreq is plain data; the name is NUL-terminated (shorter than IFNAMSIZ) and
    // ifru_data points to `value`, which outlives the ioctl.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        assert!(ifname.len() < req.ifr_name.len());
        for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let rc = libc::ioctl(fd, SIOCETHTOOL as _, &mut req);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc < 0 {
            return Err(err);
        }
    }
    Ok(value.data)
}

/// Whether TX checksum offload is on for `ifname` in the netns `netns` (ETHTOOL_GTXCSUM).
pub fn tx_checksum_offload(netns: &Path, ifname: &str) -> bool {
    let ifname = ifname.to_string();
    in_netns(netns, move || ethtool_value(&ifname, ETHTOOL_GTXCSUM, 0).expect("ETHTOOL_GTXCSUM") != 0)
}

/// Turns TX checksum offload of `ifname` in the netns `netns` on or off (ETHTOOL_STXCSUM: what
/// `ethtool -K IF tx on|off` does).
pub fn set_tx_checksum_offload(netns: &Path, ifname: &str, on: bool) {
    let ifname = ifname.to_string();
    in_netns(netns, move || {
        ethtool_value(&ifname, ETHTOOL_STXCSUM, u32::from(on)).expect("ETHTOOL_STXCSUM");
    })
}

/// The MAC address of `ifname` in the named netns `ns` (as `ip -n` knows it).
pub fn link_mac(ns: &str, ifname: &str) -> [u8; 6] {
    let out = crate::sh(&["ip", "-n", ns, "-j", "link", "show", "dev", ifname]);
    let links: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = links[0]["address"].as_str().unwrap_or_else(|| panic!("no address for {ifname} in {ns}: {out}"));
    let bytes: Vec<u8> = text.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
    bytes.try_into().unwrap_or_else(|_| panic!("bad MAC {text}"))
}

/// Writes a sysctl under /proc/sys/net (e.g. `ipv4/ip_forward`) of the netns `netns` and
/// returns its previous value. /proc/sys/net shows the netns of the thread that opens it.
pub fn set_net_sysctl(netns: &Path, key: &str, value: &str) -> String {
    let path = PathBuf::from("/proc/sys/net").join(key);
    let value = value.to_string();
    in_netns(netns, move || {
        let before = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(&path, &value).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        before.trim().to_string()
    })
}

/// Reads a sysctl under /proc/sys/net of the netns `netns`.
pub fn net_sysctl(netns: &Path, key: &str) -> String {
    let path = PathBuf::from("/proc/sys/net").join(key);
    in_netns(netns, move || {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
    })
}

/// Ipv4 shorthand for tests: `v4("198.51.100.1", 80)`.
pub fn v4(addr: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")), port)
}
