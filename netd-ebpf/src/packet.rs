//! Bounded packet access (the aya book's `ptr_at`) and the header facts the programs decide on,
//! read once per packet.
use core::mem;

use aya_ebpf::programs::TcContext;
use network_types::ip::Ipv4Hdr;

pub const ETH_HLEN: usize = 14;
/// Offset of the IPv4 header fields the programs rewrite.
pub const IP_CSUM_OFF: usize = ETH_HLEN + 10;
pub const IP_TTL_OFF: usize = ETH_HLEN + 8;
pub const IP_SRC_OFF: usize = ETH_HLEN + 12;
pub const IP_DST_OFF: usize = ETH_HLEN + 16;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// ICMP error messages: they quote the packet they are about.
#[inline(always)]
pub fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM)
}

#[inline(always)]
pub fn ptr_at<T>(ctx: &TcContext, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + mem::size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

/// Reads an IPv4 address field as the u32 key the maps use (network byte order kept).
#[inline(always)]
pub fn ip_key(addr: [u8; 4]) -> u32 {
    u32::from_ne_bytes(addr)
}

/// True for 127.0.0.0/8 (an address as `ip_key` reads it).
#[inline(always)]
pub fn is_loopback(addr: u32) -> bool {
    addr.to_ne_bytes()[0] == 127
}

/// True for 0.0.0.0/8 ("this network"), 224.0.0.0/4 and 255.255.255.255: never routed out,
/// whatever the routes say.
#[inline(always)]
pub fn is_never_routed(addr: u32) -> bool {
    let first = addr.to_ne_bytes()[0];
    addr == u32::MAX || first & 0xf0 == 0xe0 || first == 0
}

/// The IPv4 header as the programs need it.
#[derive(Clone, Copy)]
pub struct Ipv4Packet {
    pub saddr: u32,
    pub daddr: u32,
    pub proto: u8,
    pub ttl: u8,
    /// Identification, as it sits in the packet (it keys fragments).
    pub id: u16,
    /// Offset of the L4 header (options skipped).
    pub l4: usize,
    /// More-fragments set or a non-zero fragment offset.
    pub fragment: bool,
    /// Fragment offset non-zero: no L4 header in this packet.
    pub later_fragment: bool,
    /// Don't-fragment set: a router that cannot forward it whole answers "fragmentation needed".
    pub dont_fragment: bool,
}

#[inline(always)]
pub fn ipv4(ctx: &TcContext) -> Result<Ipv4Packet, ()> {
    let ip: *const Ipv4Hdr = ptr_at(ctx, ETH_HLEN)?;
    // SAFETY: bounds-checked by ptr_at.
    let ip = unsafe { &*ip };
    let ihl = (ip.vihl & 0x0f) as usize;
    if ihl < 5 {
        return Err(());
    }
    let frags = u16::from_be_bytes(ip.frags);
    Ok(Ipv4Packet {
        saddr: ip_key(ip.src_addr),
        daddr: ip_key(ip.dst_addr),
        proto: ip.proto,
        ttl: ip.ttl,
        id: u16::from_ne_bytes(ip.id),
        l4: ETH_HLEN + ihl * 4,
        fragment: frags & 0x3fff != 0,
        later_fragment: frags & 0x1fff != 0,
        dont_fragment: frags & 0x4000 != 0,
    })
}

/// Ports (host order) and flags of the L4 header. For ICMP echo, `sport` is the identifier;
/// for other ICMP messages both are 0 and `icmp_type` says what it is.
#[derive(Clone, Copy)]
pub struct L4 {
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
}

#[inline(always)]
pub fn l4(ctx: &TcContext, pkt: &Ipv4Packet) -> Result<L4, ()> {
    match pkt.proto {
        IPPROTO_TCP => {
            let h: *const [u8; 14] = ptr_at(ctx, pkt.l4)?;
            // SAFETY: bounds-checked by ptr_at.
            let h = unsafe { &*h };
            Ok(L4 {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                tcp_flags: h[13],
                icmp_type: 0,
            })
        }
        IPPROTO_UDP => {
            let h: *const [u8; 4] = ptr_at(ctx, pkt.l4)?;
            // SAFETY: bounds-checked by ptr_at.
            let h = unsafe { &*h };
            Ok(L4 {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                tcp_flags: 0,
                icmp_type: 0,
            })
        }
        IPPROTO_ICMP => {
            let h: *const [u8; 8] = ptr_at(ctx, pkt.l4)?;
            // SAFETY: bounds-checked by ptr_at.
            let h = unsafe { &*h };
            let id = match h[0] {
                ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => u16::from_be_bytes([h[4], h[5]]),
                _ => 0,
            };
            Ok(L4 { sport: id, dport: 0, tcp_flags: 0, icmp_type: h[0] })
        }
        _ => Ok(L4 { sport: 0, dport: 0, tcp_flags: 0, icmp_type: 0 }),
    }
}

/// Offset of the L4 checksum relative to the L4 header, for the protocols netd translates.
#[inline(always)]
pub fn l4_csum_offset(proto: u8) -> usize {
    match proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => 2,
    }
}
