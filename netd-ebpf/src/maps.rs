//! Map definitions, apart from the logic that uses them. Names come from netd-common so that
//! userspace finds the same pins.
use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use netd_common::{maps::*, DropCounter, EndpointValue, InterfaceValue};

#[map(name = "NETD_EP_V1")]
pub static ENDPOINTS_BY_IP: HashMap<u32, EndpointValue> = HashMap::pinned(MAX_ENDPOINTS, 0);

#[map(name = "NETD_IF_V1")]
pub static ENDPOINTS_BY_IFINDEX: HashMap<u32, InterfaceValue> = HashMap::pinned(MAX_ENDPOINTS, 0);

#[map(name = "NETD_DROPS_V1")]
pub static DROPS: PerCpuArray<DropCounter> = PerCpuArray::pinned(DROP_SLOTS, 0);

// The map names above must match netd-common's constants; checked at compile time.
const _: () = {
    assert!(eq(ENDPOINTS.as_bytes(), b"NETD_EP_V1"));
    assert!(eq(INTERFACES.as_bytes(), b"NETD_IF_V1"));
    assert!(eq(netd_common::maps::DROPS.as_bytes(), b"NETD_DROPS_V1"));
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
