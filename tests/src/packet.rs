//! IPv4 packets as the tests' raw sockets see and make them: parsing, checksum checks and
//! builders for hand-made packets (a UDP datagram with a zero checksum, a frame to 127.0.0.1).
use std::net::Ipv4Addr;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_ECHO_REQUEST: u8 = 8;

/// One's-complement sum of big-endian 16-bit words (an odd last byte is padded), unfolded.
fn sum(data: &[u8]) -> u32 {
    data.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum()
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The Internet checksum of `data` (RFC 1071), ready to be stored.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the TCP/UDP pseudo-header.
fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + u32::from(proto) + len as u32
}

/// What an L4 checksum field holds, as seen by a raw socket of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// A complete checksum that verifies.
    Full,
    /// The pseudo-header sum a CHECKSUM_PARTIAL packet carries until a device (here: never,
    /// veth to veth) completes it; correct for the packet's addresses and length.
    PartialSeed,
    /// UDP without a checksum (0).
    Zero,
    /// Anything else: the packet was rewritten without fixing its checksum.
    Wrong,
}

/// One IPv4 packet as received by a raw socket (IP header included).
#[derive(Clone, Debug)]
pub struct Ipv4Seen {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    /// A fragment (more-fragments set or a non-zero offset); only the first carries ports.
    pub fragment: bool,
    /// The L4 header and payload (up to the IP total length).
    pub l4: Vec<u8>,
}

impl Ipv4Seen {
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < 20 || buf[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(buf.len());
        if ihl < 20 || total < ihl {
            return None;
        }
        let addr = |at: usize| Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]);
        let fragment = u16::from_be_bytes([buf[6], buf[7]]) & 0x3fff != 0;
        Some(Ipv4Seen {
            src: addr(12),
            dst: addr(16),
            proto: buf[9],
            ttl: buf[8],
            fragment,
            l4: buf[ihl..total].to_vec(),
        })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*self.l4.get(at)?, *self.l4.get(at + 1)?]))
    }

    /// (source, destination) ports of a TCP or UDP packet.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.proto {
            IPPROTO_TCP | IPPROTO_UDP => Some((self.u16_at(0)?, self.u16_at(2)?)),
            _ => None,
        }
    }

    pub fn icmp_type(&self) -> Option<u8> {
        (self.proto == IPPROTO_ICMP).then(|| self.l4.first().copied()).flatten()
    }

    /// The identifier of an ICMP echo request or reply.
    pub fn icmp_echo_id(&self) -> Option<u16> {
        match self.icmp_type()? {
            ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => self.u16_at(4),
            _ => None,
        }
    }

    /// The raw L4 checksum field.
    pub fn checksum_field(&self) -> Option<u16> {
        match self.proto {
            IPPROTO_ICMP => self.u16_at(2),
            IPPROTO_TCP => self.u16_at(16),
            IPPROTO_UDP => self.u16_at(6),
            _ => None,
        }
    }

    /// Whether the L4 checksum is right for the packet as received (addresses included).
    pub fn checksum(&self) -> Checksum {
        let Some(field) = self.checksum_field() else {
            return Checksum::Wrong;
        };
        let full = match self.proto {
            IPPROTO_ICMP => fold(sum(&self.l4)),
            IPPROTO_UDP if field == 0 => return Checksum::Zero,
            _ => fold(pseudo_header(self.src, self.dst, self.proto, self.l4.len()) + sum(&self.l4)),
        };
        if full == 0xffff {
            return Checksum::Full;
        }
        if self.proto != IPPROTO_ICMP && field == fold(pseudo_header(self.src, self.dst, self.proto, self.l4.len())) {
            return Checksum::PartialSeed;
        }
        Checksum::Wrong
    }
}

/// An IPv4 header (no options, DF set, TTL 64) with its checksum, followed by `l4`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let csum = checksum(&p);
    p[10..12].copy_from_slice(&csum.to_be_bytes());
    p.extend_from_slice(l4);
    p
}

/// A UDP datagram inside an IPv4 packet; `with_checksum: false` leaves the checksum 0 ("none").
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8], with_checksum: bool) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut udp = Vec::with_capacity(len);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    if with_checksum {
        let mut csum = !fold(pseudo_header(src, dst, IPPROTO_UDP, len) + sum(&udp));
        if csum == 0 {
            csum = 0xffff;
        }
        udp[6..8].copy_from_slice(&csum.to_be_bytes());
    }
    ipv4(src, dst, IPPROTO_UDP, &udp)
}

/// An ICMP echo request with its checksum.
pub fn icmp_echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![ICMP_ECHO_REQUEST, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let csum = checksum(&m);
    m[2..4].copy_from_slice(&csum.to_be_bytes());
    m
}

/// An Ethernet II frame carrying IPv4.
pub fn ethernet_ipv4(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_packets_verify() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let udp = Ipv4Seen::parse(&ipv4_udp(a, b, 1000, 2000, b"hello", true)).unwrap();
        assert_eq!((udp.src, udp.dst, udp.ports()), (a, b, Some((1000, 2000))));
        assert_eq!(udp.checksum(), Checksum::Full);
        let zero = Ipv4Seen::parse(&ipv4_udp(a, b, 1000, 2000, b"hello", false)).unwrap();
        assert_eq!(zero.checksum(), Checksum::Zero);
        let mut bad = ipv4_udp(a, b, 1000, 2000, b"hello", true);
        bad[12] = 11;
        assert_eq!(Ipv4Seen::parse(&bad).unwrap().checksum(), Checksum::Wrong);
        let echo = Ipv4Seen::parse(&ipv4(a, b, IPPROTO_ICMP, &icmp_echo_request(7, 1, b"x"))).unwrap();
        assert_eq!((echo.icmp_type(), echo.icmp_echo_id(), echo.checksum()), (Some(8), Some(7), Checksum::Full));
        assert_eq!(checksum(&ipv4(a, b, IPPROTO_ICMP, &[])[..20]), 0);
    }

    #[test]
    fn partial_seed_is_recognised() {
        let (a, b) = (Ipv4Addr::new(198, 51, 100, 2), Ipv4Addr::new(198, 51, 100, 1));
        let mut p = ipv4_udp(a, b, 1000, 2000, b"data", false);
        let seed = fold(pseudo_header(a, b, IPPROTO_UDP, 12));
        p[26..28].copy_from_slice(&seed.to_be_bytes());
        assert_eq!(Ipv4Seen::parse(&p).unwrap().checksum(), Checksum::PartialSeed);
    }
}
