//! Docker's plugin protocol end to end through `docker_plugin::dispatch` on the fake kernel:
//! the JSON Docker sends (from the protocol spec) and what it reads back, fill-only-empty, the
//! error form, IPAM's pool choice, and that a restarted daemon still knows everything.
use std::path::PathBuf;

use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::super::Manager;
use crate::{
    api_types::CreateNetwork,
    dns::Dns,
    docker_plugin::{dispatch, PluginError},
    kernel::fake::FakeKernel,
    store::Store,
};

struct Fixture {
    manager: Manager<FakeKernel>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const NET: &str = "8d7c00000000000000000000000000000000000000000000000000000000aaaa";
const EP1: &str = "2f2497db76a500000000000000000000000000000000000000000000000000e1";
const EP2: &str = "3a3497db76a500000000000000000000000000000000000000000000000000e2";

impl Fixture {
    async fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netd-docker-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let manager = Self::start(&dir, FakeKernel::new(&dir.join("run"))).await;
        Fixture { manager, dir }
    }

    async fn start(dir: &std::path::Path, kernel: FakeKernel) -> Manager<FakeKernel> {
        let store = Store::open(&dir.join("state")).unwrap();
        Manager::start(store, kernel, &dir.join("run"), Dns::new(vec![], 64), Default::default()).await.unwrap()
    }

    /// As a `kill -9` would: nothing torn down, a new manager on the same store and host.
    async fn restart(mut self) -> Self {
        let dir = self.dir.clone();
        let placeholder = Self::start(&dir.join("placeholder"), FakeKernel::new(&dir.join("placeholder-run"))).await;
        let Manager { kernel, store, .. } = std::mem::replace(&mut self.manager, placeholder);
        drop(store);
        self.manager = Self::start(&dir, kernel).await;
        self
    }

    async fn call(&self, call: &str, body: Value) -> Value {
        let body = serde_json::to_vec(&body).unwrap();
        dispatch(&self.manager, call, &body).await.unwrap_or_else(|e| panic!("{call}: {}", e.0))
    }

    async fn fails(&self, call: &str, body: Value) -> String {
        let body = serde_json::to_vec(&body).unwrap();
        match dispatch(&self.manager, call, &body).await {
            Ok(v) => panic!("{call} succeeded: {v}"),
            Err(e) => e.0,
        }
    }

    /// A network as `docker network create -d netd --ipam-driver netd` makes it: pool,
    /// gateway address, CreateNetwork.
    async fn network(&self, id: &str) -> (String, String) {
        let pool = self
            .call(
                "IpamDriver.RequestPool",
                json!({"AddressSpace":"netd-local","Pool":"","SubPool":"","Options":{},"V6":false}),
            )
            .await;
        let pool_id = pool["PoolID"].as_str().unwrap().to_string();
        let gw = self
            .call(
                "IpamDriver.RequestAddress",
                json!({"PoolID":pool_id,"Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}),
            )
            .await;
        self.call(
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID":id,"Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},
                   "IPv4Data":[{"AddressSpace":"netd-local","Pool":pool["Pool"],"Gateway":gw["Address"]}],"IPv6Data":[]}),
        )
        .await;
        (pool_id, pool["Pool"].as_str().unwrap().to_string())
    }

    async fn endpoint(&self, pool_id: &str, id: &str) -> String {
        let addr = self.call("IpamDriver.RequestAddress", json!({"PoolID":pool_id,"Address":"","Options":{}})).await;
        let address = addr["Address"].as_str().unwrap().to_string();
        let reply = self
            .call(
                "NetworkDriver.CreateEndpoint",
                json!({"NetworkID":NET,"EndpointID":id,"Interface":{"Address":address,"AddressIPv6":"","MacAddress":""},"Options":{}}),
            )
            .await;
        assert!(reply["Interface"]["MacAddress"].as_str().unwrap().starts_with("02:42:"), "{reply}");
        address
    }
}

#[tokio::test]
async fn activation_and_capabilities_have_docker_shapes() {
    let fx = Fixture::new("activate").await;
    assert_eq!(fx.call("Plugin.Activate", json!(null)).await, json!({"Implements":["NetworkDriver","IpamDriver"]}));
    assert_eq!(
        fx.call("NetworkDriver.GetCapabilities", json!({})).await,
        json!({"Scope":"local","ConnectivityScope":"local"})
    );
    assert_eq!(
        fx.call("IpamDriver.GetCapabilities", json!({})).await,
        json!({"RequiresMACAddress":false,"RequiresRequestReplay":false})
    );
    assert_eq!(
        fx.call("IpamDriver.GetDefaultAddressSpaces", json!({})).await,
        json!({"LocalDefaultAddressSpace":"netd-local","GlobalDefaultAddressSpace":"netd-global"})
    );
    // Activate and GetCapabilities come with an empty body.
    assert!(dispatch(&fx.manager, "NetworkDriver.GetCapabilities", b"").await.is_ok());
    assert!(fx.fails("NetworkDriver.Nonsense", json!({})).await.contains("does not implement"));
}

#[tokio::test]
async fn errors_are_http_500_with_err() {
    let response = PluginError::bad("no such thing").into_response();
    assert_eq!(response.status().as_u16(), 500);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({"Err":"no such thing"}));
}

#[tokio::test]
async fn a_container_lifecycle_makes_and_removes_the_veth_and_its_ports() {
    let fx = Fixture::new("lifecycle").await;
    let (pool_id, pool) = fx.network(NET).await;
    assert_eq!(pool, "172.18.0.0/16");
    let (network, _) = fx.manager.network(NET).await.unwrap();
    assert_eq!(network.name, format!("docker-{}", &NET[..12]));
    assert_eq!(network.ipam.as_ref().unwrap().gateway.to_string(), "172.18.0.1");
    let address = fx.endpoint(&pool_id, EP1).await;
    assert_eq!(address, "172.18.0.2/16");
    let host = fx.manager.kernel.host();
    let (_, peer, ip) = &host.veths[&format!("nd{}", &EP1[..12])];
    assert_eq!((peer.as_str(), ip.to_string().as_str()), ("nc2f2497db76a5", "172.18.0.2"));

    let join = fx
        .call(
            "NetworkDriver.Join",
            json!({"NetworkID":NET,"EndpointID":EP1,"SandboxKey":"/var/run/docker/netns/fc2ac21230fc","Options":{}}),
        )
        .await;
    assert_eq!(
        join,
        json!({"InterfaceName":{"SrcName":"nc2f2497db76a5","DstPrefix":"eth"},"Gateway":"172.18.0.1","DisableGatewayService":true})
    );
    let portmap = json!([{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
                         {"Proto":6,"IP":"","Port":81,"HostIP":"","HostPort":0,"HostPortEnd":0}]);
    fx.call(
        "NetworkDriver.ProgramExternalConnectivity",
        json!({"NetworkID":NET,"EndpointID":EP1,"Options":{"com.docker.network.portmap":portmap}}),
    )
    .await;
    let published = fx.manager.kernel.host().published;
    assert_eq!(published.len(), 2);
    assert!(published.keys().any(|(addr, port, _)| addr.is_none() && *port == 8080));
    assert!(published.keys().any(|(_, port, _)| (32768..=60999).contains(port)), "{published:?}");
    assert_eq!(
        fx.call("NetworkDriver.EndpointOperInfo", json!({"NetworkID":NET,"EndpointID":EP1})).await,
        json!({"Value":{}})
    );

    // A second endpoint cannot take 8080.
    let addr2 = fx.endpoint(&pool_id, EP2).await;
    assert_eq!(addr2, "172.18.0.3/16");
    let taken = json!([{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]);
    let err = fx
        .fails(
            "NetworkDriver.ProgramExternalConnectivity",
            json!({"NetworkID":NET,"EndpointID":EP2,"Options":{"com.docker.network.portmap":taken}}),
        )
        .await;
    assert!(err.contains("port is already allocated"), "{err}");
    // A range picks a free port of it.
    let range = json!([{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8082}]);
    fx.call(
        "NetworkDriver.ProgramExternalConnectivity",
        json!({"NetworkID":NET,"EndpointID":EP2,"Options":{"com.docker.network.portmap":range}}),
    )
    .await;
    assert!(fx.manager.kernel.host().published.keys().any(|(_, port, _)| *port == 8081));

    fx.call("NetworkDriver.RevokeExternalConnectivity", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    fx.call("NetworkDriver.Leave", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    fx.call("NetworkDriver.DeleteEndpoint", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    let host = fx.manager.kernel.host();
    assert_eq!(host.veths.len(), 1);
    assert_eq!(host.published.len(), 1);
    let err = fx.fails("NetworkDriver.DeleteNetwork", json!({"NetworkID":NET})).await;
    assert!(err.contains("active endpoints"), "{err}");
    fx.call("NetworkDriver.DeleteEndpoint", json!({"NetworkID":NET,"EndpointID":EP2})).await;
    // Deleting again is fine (Docker may retry after a restart).
    fx.call("NetworkDriver.DeleteEndpoint", json!({"NetworkID":NET,"EndpointID":EP2})).await;
    fx.call("NetworkDriver.DeleteNetwork", json!({"NetworkID":NET})).await;
    fx.call("IpamDriver.ReleaseAddress", json!({"PoolID":pool_id,"Address":"172.18.0.1"})).await;
    fx.call("IpamDriver.ReleasePool", json!({"PoolID":pool_id})).await;
    let host = fx.manager.kernel.host();
    assert!(host.veths.is_empty() && host.published.is_empty(), "{host:?}");
    assert!(!host.gateways.contains(&"172.18.0.1".parse().unwrap()));
    assert!(fx.manager.lock_settled().await.docker_pools.is_empty());
}

#[tokio::test]
async fn create_endpoint_fills_only_empty_fields() {
    let fx = Fixture::new("fill").await;
    let (pool_id, _) = fx.network(NET).await;
    fx.call("IpamDriver.RequestAddress", json!({"PoolID":pool_id,"Address":"172.18.0.9","Options":{}})).await;
    let reply = fx
        .call(
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID":NET,"EndpointID":EP1,"Interface":{"Address":"172.18.0.9/16","MacAddress":"02:aa:bb:cc:dd:ee"}}),
        )
        .await;
    assert_eq!(reply, json!({}));
    let (network, _) = fx.manager.network(NET).await.unwrap();
    assert_eq!(network.docker_endpoints().next().unwrap().endpoint.mac, [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    let err = fx
        .fails(
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID":NET,"EndpointID":EP2,"Interface":{"Address":"172.18.0.9/16"}}),
        )
        .await;
    assert_eq!(err, "Address already in use");
    let err = fx
        .fails(
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID":NET,"EndpointID":"short","Interface":{"Address":"172.18.0.10/16"}}),
        )
        .await;
    assert!(err.contains("64 hexadecimal"), "{err}");
}

#[tokio::test]
async fn a_failed_veth_leaves_nothing_behind() {
    let fx = Fixture::new("undo").await;
    let (_, _) = fx.network(NET).await;
    let before = fx.manager.kernel.host();
    fx.manager.kernel.fail("add_docker_endpoint", 0);
    fx.fails(
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID":NET,"EndpointID":EP1,"Interface":{"Address":"172.18.0.2/16"}}),
    )
    .await;
    assert_eq!(fx.manager.kernel.host(), before);
    assert_eq!(fx.manager.network(NET).await.unwrap().0.docker_endpoints().count(), 0);
}

#[tokio::test]
async fn pools_skip_netd_networks_held_pools_and_are_never_repeated() {
    let fx = Fixture::new("pools").await;
    let req = CreateNetwork { name: "mine".into(), ..Default::default() };
    assert_eq!(fx.manager.create_network(req).await.unwrap().ipam.unwrap().subnet.to_string(), "172.18.0.0/16");
    let mut seen = vec![];
    for _ in 0..3 {
        // libnetwork asks again while holding the last one when it does not like it.
        let p = fx.call("IpamDriver.RequestPool", json!({"AddressSpace":"netd-local"})).await;
        seen.push(p["Pool"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["172.19.0.0/16", "172.20.0.0/16", "172.21.0.0/16"]);
    // A netd network made now does not take a held pool either.
    let req = CreateNetwork { name: "later".into(), subnet: Some("172.19.0.0/24".into()), ..Default::default() };
    assert!(fx.manager.create_network(req).await.is_err());
    // --subnet overlapping a netd network, and --ip-range outside the pool.
    let err = fx.fails("IpamDriver.RequestPool", json!({"Pool":"172.18.5.0/24"})).await;
    assert_eq!(err, "Pool overlaps with other one on this address space");
    assert!(fx
        .fails("IpamDriver.RequestPool", json!({"Pool":"10.5.0.0/16","SubPool":"10.6.0.0/24"}))
        .await
        .contains("range"));
    let p = fx.call("IpamDriver.RequestPool", json!({"Pool":"10.5.0.0/16","SubPool":"10.5.1.0/24"})).await;
    let id = p["PoolID"].as_str().unwrap();
    let gw = fx
        .call(
            "IpamDriver.RequestAddress",
            json!({"PoolID":id,"Options":{"RequestAddressType":"com.docker.network.gateway"}}),
        )
        .await;
    assert_eq!(gw["Address"], "10.5.0.1/16");
    // Go sends a nil map as null.
    let a = fx.call("IpamDriver.RequestAddress", json!({"PoolID":id,"Address":"","Options":null})).await;
    // As netd's own IPAM (and Docker's): the range's first address, in a /16 a host address.
    assert_eq!(a["Address"], "10.5.1.0/16");
    assert!(fx.fails("IpamDriver.RequestPool", json!({"V6":true})).await.contains("IPv4"));
}

#[tokio::test]
async fn docker_default_ipam_pools_are_checked_against_netd_networks() {
    let fx = Fixture::new("default-ipam").await;
    let req = CreateNetwork { name: "mine".into(), ..Default::default() };
    fx.manager.create_network(req).await.unwrap();
    let create = |pool: &str, gw: &str| json!({"NetworkID":NET,"Options":{},"IPv4Data":[{"AddressSpace":"LocalDefault","Pool":pool,"Gateway":gw}]});
    let err = fx.fails("NetworkDriver.CreateNetwork", create("172.18.0.0/16", "172.18.0.1/16")).await;
    assert!(err.contains("overlaps netd network mine"), "{err}");
    fx.call("NetworkDriver.CreateNetwork", create("172.30.0.0/16", "172.30.0.1/16")).await;
    let (network, _) = fx.manager.network(NET).await.unwrap();
    assert_eq!(network.docker.as_ref().unwrap().pool, None);
    assert!(fx.manager.kernel.host().gateways.contains(&"172.30.0.1".parse().unwrap()));
}

#[tokio::test]
async fn netd_commands_leave_docker_networks_to_docker() {
    let fx = Fixture::new("owned").await;
    fx.network(NET).await;
    let name = format!("docker-{}", &NET[..12]);
    let err = fx.manager.remove_network(&name).await.unwrap_err();
    assert!(err.to_string().contains("owned by Docker"), "{err}");
    assert!(fx.manager.prune_networks().await.unwrap().is_empty());
    let req = crate::api_types::RunContainer {
        name: Some("web".into()),
        network: Some(name.clone()),
        cmd: vec!["true".into()],
        ..Default::default()
    };
    let err = fx.manager.run(req).await.unwrap_err().to_string();
    assert!(err.contains("owned by Docker"), "{err}");
}

#[tokio::test]
async fn a_restarted_daemon_keeps_docker_networks_endpoints_pools_and_ports() {
    let fx = Fixture::new("restart").await;
    let (pool_id, _) = fx.network(NET).await;
    fx.endpoint(&pool_id, EP1).await;
    let portmap = json!([{"Proto":17,"IP":"","Port":53,"HostIP":"","HostPort":5353,"HostPortEnd":5353}]);
    fx.call(
        "NetworkDriver.ProgramExternalConnectivity",
        json!({"NetworkID":NET,"EndpointID":EP1,"Options":{"com.docker.network.portmap":portmap}}),
    )
    .await;
    let before = fx.manager.kernel.host();
    let fx = fx.restart().await;
    // Recovery's sweep kept the veth, the datapath entry and the port.
    assert_eq!(fx.manager.kernel.host(), before);
    let join = fx.call("NetworkDriver.Join", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    assert_eq!(join["Gateway"], "172.18.0.1");
    // The pool and its addresses are still held.
    let next = fx.call("IpamDriver.RequestAddress", json!({"PoolID":pool_id})).await;
    assert_eq!(next["Address"], "172.18.0.3/16");
    assert_eq!(fx.call("IpamDriver.RequestPool", json!({})).await["Pool"], "172.19.0.0/16");
    // system reset removes Docker's endpoints too.
    fx.manager.reset().await.unwrap();
    let host = fx.manager.kernel.host();
    assert!(host.veths.is_empty() && host.published.is_empty(), "{host:?}");
    // Docker's own clean-up of what the reset removed still finishes.
    fx.call("NetworkDriver.DeleteEndpoint", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    fx.call("NetworkDriver.DeleteNetwork", json!({"NetworkID":NET})).await;
    fx.call("IpamDriver.ReleaseAddress", json!({"PoolID":pool_id,"Address":"172.18.0.2"})).await;
    fx.call("IpamDriver.ReleasePool", json!({"PoolID":pool_id})).await;
}

#[tokio::test]
async fn a_veth_gone_with_its_sandbox_is_deleted_cleanly() {
    let fx = Fixture::new("gone").await;
    let (pool_id, _) = fx.network(NET).await;
    fx.endpoint(&pool_id, EP1).await;
    fx.endpoint(&pool_id, EP2).await;
    let veth = format!("nd{}", &EP1[..12]);
    fx.manager.kernel.lose_veth(&veth);
    assert!(fx.manager.kernel.host().datapath.contains_key(&veth));
    fx.call("NetworkDriver.Leave", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    fx.call("NetworkDriver.DeleteEndpoint", json!({"NetworkID":NET,"EndpointID":EP1})).await;
    let host = fx.manager.kernel.host();
    // Its datapath entry went; the other endpoint's stayed.
    assert_eq!(host.datapath.keys().collect::<Vec<_>>(), [&format!("nd{}", &EP2[..12])]);
    assert_eq!(fx.manager.network(NET).await.unwrap().0.docker_endpoints().count(), 1);
}
