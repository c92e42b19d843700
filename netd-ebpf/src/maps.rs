//! Map definitions, apart from the logic that uses them. Names come from netd-common so that
//! userspace finds the same pins.
use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray},
};
use netd_common::{
    maps::*, CtEntry, CtKey, DropCounter, EndpointValue, FragKey, FragTarget, InterfaceValue, NatReverse, PortKey,
    RemoteEndpointValue, ServiceKey, ServiceValue, SockRevKey, SockRevValue, UplinkValue,
};

#[map(name = "NETD_EP_V2")]
pub static ENDPOINTS_BY_IP: HashMap<u32, EndpointValue> = HashMap::pinned(MAX_ENDPOINTS, 0);

#[map(name = "NETD_IF_V2")]
pub static ENDPOINTS_BY_IFINDEX: HashMap<u32, InterfaceValue> = HashMap::pinned(MAX_ENDPOINTS, 0);

#[map(name = "NETD_UPLINK_V1")]
pub static UPLINKS_BY_IFINDEX: HashMap<u32, UplinkValue> = HashMap::pinned(MAX_UPLINKS, 0);

#[map(name = "NETD_CT_TCP_V1")]
pub static CONNTRACK_TCP: LruHashMap<CtKey, CtEntry> = LruHashMap::pinned(CT_TCP_ENTRIES, 0);

#[map(name = "NETD_CT_ANY_V1")]
pub static CONNTRACK_OTHER: LruHashMap<CtKey, CtEntry> = LruHashMap::pinned(CT_OTHER_ENTRIES, 0);

#[map(name = "NETD_NAT_V1")]
pub static NAT_BY_REPLY: HashMap<CtKey, NatReverse> = HashMap::pinned(NAT_ENTRIES, 0);

#[map(name = "NETD_RSVD_V1")]
pub static RESERVED_PORTS: HashMap<PortKey, u8> = HashMap::pinned(MAX_RESERVED_PORTS, 0);

#[map(name = "NETD_SVC_V1")]
pub static SERVICES: HashMap<ServiceKey, ServiceValue> = HashMap::pinned(MAX_SERVICES, 0);

#[map(name = "NETD_SOCKREV_V1")]
pub static SOCK_REVERSE: LruHashMap<SockRevKey, SockRevValue> = LruHashMap::pinned(SOCK_REVERSE_ENTRIES, 0);

#[map(name = "NETD_HOSTIP_V1")]
pub static HOST_ADDRS: HashMap<u32, u8> = HashMap::pinned(MAX_HOST_ADDRS, 0);

#[map(name = "NETD_FRAG_V1")]
pub static FRAGMENTS: LruHashMap<FragKey, FragTarget> = LruHashMap::pinned(FRAGMENT_ENTRIES, 0);

#[map(name = "NETD_REMOTE_V1")]
pub static REMOTE_ENDPOINTS: HashMap<u32, RemoteEndpointValue> = HashMap::pinned(MAX_REMOTE_ENDPOINTS, 0);

#[map(name = "NETD_VNI_V1")]
pub static TUNNEL_NETWORKS: HashMap<u32, u32> = HashMap::pinned(MAX_TUNNEL_NETWORKS, 0);

#[map(name = "NETD_FLOWS_OF_V1")]
pub static FLOWS_OF: HashMap<u32, u8> = HashMap::pinned(MAX_ENDPOINTS, 0);

#[map(name = "NETD_METRICS_V1")]
pub static METRICS: PerCpuArray<DropCounter> = PerCpuArray::pinned(METRIC_SLOTS, 0);

// The map names above must match netd-common's constants; checked at compile time.
const _: () = {
    assert!(eq(ENDPOINTS.as_bytes(), b"NETD_EP_V2"));
    assert!(eq(INTERFACES.as_bytes(), b"NETD_IF_V2"));
    assert!(eq(UPLINKS.as_bytes(), b"NETD_UPLINK_V1"));
    assert!(eq(CT_TCP.as_bytes(), b"NETD_CT_TCP_V1"));
    assert!(eq(CT_OTHER.as_bytes(), b"NETD_CT_ANY_V1"));
    assert!(eq(NAT.as_bytes(), b"NETD_NAT_V1"));
    assert!(eq(netd_common::maps::RESERVED_PORTS.as_bytes(), b"NETD_RSVD_V1"));
    assert!(eq(netd_common::maps::METRICS.as_bytes(), b"NETD_METRICS_V1"));
    assert!(eq(netd_common::maps::FRAGMENTS.as_bytes(), b"NETD_FRAG_V1"));
    assert!(eq(netd_common::maps::SERVICES.as_bytes(), b"NETD_SVC_V1"));
    assert!(eq(netd_common::maps::SOCK_REVERSE.as_bytes(), b"NETD_SOCKREV_V1"));
    assert!(eq(netd_common::maps::HOST_ADDRS.as_bytes(), b"NETD_HOSTIP_V1"));
    assert!(eq(netd_common::maps::REMOTE_ENDPOINTS.as_bytes(), b"NETD_REMOTE_V1"));
    assert!(eq(netd_common::maps::TUNNEL_NETWORKS.as_bytes(), b"NETD_VNI_V1"));
    assert!(eq(netd_common::maps::FLOWS_OF.as_bytes(), b"NETD_FLOWS_OF_V1"));
};

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
