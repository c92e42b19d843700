//! Probes: one measurement of one metric on one topology with one CPU pinning.
//!
//! The server runs in the topology's server netns and the client in its client netns, each
//! through `taskset -c CPU nsenter --net=NETNS` — the same binaries and pinning for every
//! topology. TCP_STREAM uses iperf3; the request/response probes use our own load tool
//! (`netd-bench serve` / `rr` / `crr` / `udprr`).

use std::{
    net::SocketAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU16, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    load::{ClientKind, LoadReport},
    runner::Plan,
    sys::{self, ChildGuard},
    topology::{ControlPlane, Endpoint, Network, Topology},
};

/// One reported number: a row of the table (per pinning).
#[derive(Debug, PartialEq)]
pub struct Quantity {
    /// Stable id used in results.json, e.g. `tcp_rr.tps`.
    pub id: &'static str,
    /// Metric name, e.g. `TCP_RR`.
    pub metric: &'static str,
    /// What is measured and its unit, e.g. `trans/s`, `p50 latency µs`.
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// None: one value per round, summarised as the median over rounds. Some(p): every
    /// sample of every round pooled, summarised as their p-th percentile (p in 0..=1).
    pub pooled: Option<f64>,
    /// Some: no samples of its own; computed in the report from the headline numbers of two
    /// rows of the same probe (listed before it).
    pub derived: Option<Derived>,
}

/// How a derived row's number comes from two other rows' headline numbers (medians, or the
/// pooled percentile).
#[derive(Debug, PartialEq)]
pub enum Derived {
    /// `a − b`: e.g. the network's cost of `run -d` (on a network minus `--network none`).
    Difference(&'static Quantity, &'static Quantity),
    /// `a / b`: e.g. how much faster 32 clients at once are than one after another.
    Ratio(&'static Quantity, &'static Quantity),
}

impl Derived {
    pub fn apply(&self, a: f64, b: f64) -> Option<f64> {
        match self {
            Derived::Difference(..) => Some(a - b),
            Derived::Ratio(..) => (b != 0.0).then(|| a / b),
        }
    }

    pub fn operands(&self) -> (&'static Quantity, &'static Quantity) {
        match *self {
            Derived::Difference(a, b) | Derived::Ratio(a, b) => (a, b),
        }
    }

    /// How the report says it was computed, e.g. `run.net_ms − run.none_ms`.
    pub fn describe(&self) -> String {
        match self {
            Derived::Difference(a, b) => format!("{} − {}", a.id, b.id),
            Derived::Ratio(a, b) => format!("{} / {}", a.id, b.id),
        }
    }
}

pub const TCP_STREAM_GBPS: Quantity = Quantity {
    id: "tcp_stream.gbps",
    metric: "TCP_STREAM",
    unit: "Gbit/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const TCP_RR_TPS: Quantity = Quantity {
    id: "tcp_rr.tps",
    metric: "TCP_RR",
    unit: "trans/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const TCP_RR_P50: Quantity = Quantity {
    id: "tcp_rr.p50_us",
    metric: "TCP_RR",
    unit: "p50 latency µs",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const TCP_RR_P99: Quantity = Quantity {
    id: "tcp_rr.p99_us",
    metric: "TCP_RR",
    unit: "p99 latency µs",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const TCP_CRR_CPS: Quantity = Quantity {
    id: "tcp_crr.cps",
    metric: "TCP_CRR",
    unit: "conn/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const UDP_RR_TPS: Quantity = Quantity {
    id: "udp_rr.tps",
    metric: "UDP_RR",
    unit: "trans/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const UDP_RR_P50: Quantity = Quantity {
    id: "udp_rr.p50_us",
    metric: "UDP_RR",
    unit: "p50 latency µs",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const PUBLISHED_RR_TPS: Quantity = Quantity {
    id: "published_tcp_rr.tps",
    metric: "TCP_RR outside→published port",
    unit: "trans/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const PUBLISHED_CRR_CPS: Quantity = Quantity {
    id: "published_tcp_crr.cps",
    metric: "TCP_CRR outside→published port",
    unit: "conn/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const LOCALHOST_RR_TPS: Quantity = Quantity {
    id: "localhost_tcp_rr.tps",
    metric: "TCP_RR host→127.0.0.1:port",
    unit: "trans/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const LOCALHOST_CRR_CPS: Quantity = Quantity {
    id: "localhost_tcp_crr.cps",
    metric: "TCP_CRR host→127.0.0.1:port",
    unit: "conn/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const EGRESS_STREAM_GBPS: Quantity = Quantity {
    id: "egress_tcp_stream.gbps",
    metric: "TCP_STREAM container→outside",
    unit: "Gbit/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const EGRESS_RR_TPS: Quantity = Quantity {
    id: "egress_tcp_rr.tps",
    metric: "TCP_RR container→outside",
    unit: "trans/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};
pub const EGRESS_CRR_CPS: Quantity = Quantity {
    id: "egress_tcp_crr.cps",
    metric: "TCP_CRR container→outside",
    unit: "conn/s",
    higher_is_better: true,
    pooled: None,
    derived: None,
};

pub const ATTACH_P50_MS: Quantity = Quantity {
    id: "attach.p50_ms",
    metric: "attach endpoint (network connect)",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const ATTACH_P99_MS: Quantity = Quantity {
    id: "attach.p99_ms",
    metric: "attach endpoint (network connect)",
    unit: "p99 ms",
    higher_is_better: false,
    pooled: Some(0.99),
    derived: None,
};
pub const DETACH_P50_MS: Quantity = Quantity {
    id: "detach.p50_ms",
    metric: "detach endpoint (network disconnect)",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const DETACH_P99_MS: Quantity = Quantity {
    id: "detach.p99_ms",
    metric: "detach endpoint (network disconnect)",
    unit: "p99 ms",
    higher_is_better: false,
    pooled: Some(0.99),
    derived: None,
};

pub const RUN_NONE_MS: Quantity = Quantity {
    id: "run.none_ms",
    metric: "run -d --network none",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const RUN_NET_MS: Quantity = Quantity {
    id: "run.net_ms",
    metric: "run -d --network NET",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const RUN_NET_COST_MS: Quantity = Quantity {
    id: "run.network_cost_ms",
    metric: "network cost of run -d (NET − none)",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: Some(Derived::Difference(&RUN_NET_MS, &RUN_NONE_MS)),
};
pub const RM_NONE_MS: Quantity = Quantity {
    id: "rm.none_ms",
    metric: "rm -f of a --network none container",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const RM_NET_MS: Quantity = Quantity {
    id: "rm.net_ms",
    metric: "rm -f of a container with one endpoint",
    unit: "p50 ms",
    higher_is_better: false,
    pooled: Some(0.50),
    derived: None,
};
pub const RM_NET_COST_MS: Quantity = Quantity {
    id: "rm.network_cost_ms",
    metric: "network cost of rm -f (one endpoint − none)",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: Some(Derived::Difference(&RM_NET_MS, &RM_NONE_MS)),
};

pub const PARALLEL_SEQUENTIAL_S: Quantity = Quantity {
    id: "parallel.sequential_s",
    metric: "32 run -d --network NET one after another",
    unit: "s",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const PARALLEL_AT_ONCE_S: Quantity = Quantity {
    id: "parallel.at_once_s",
    metric: "32 run -d --network NET at once (32 CLI clients)",
    unit: "s",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const PARALLEL_SEQUENTIAL_BUSY: Quantity = Quantity {
    id: "parallel.sequential_busy_pct",
    metric: "CPU busy (all CPUs) while 32 run -d go one after another",
    unit: "%",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const PARALLEL_AT_ONCE_BUSY: Quantity = Quantity {
    id: "parallel.at_once_busy_pct",
    metric: "CPU busy (all CPUs) while 32 run -d go at once",
    unit: "%",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const PARALLEL_SPEEDUP: Quantity = Quantity {
    id: "parallel.speedup",
    metric: "32 parallel run -d clients: one after another / at once",
    unit: "×",
    higher_is_better: true,
    pooled: None,
    derived: Some(Derived::Ratio(&PARALLEL_SEQUENTIAL_S, &PARALLEL_AT_ONCE_S)),
};

pub const DAEMON_RSS_MIB: Quantity = Quantity {
    id: "daemon.rss_mib",
    metric: "daemon RSS (idle, 3 containers)",
    unit: "MiB",
    higher_is_better: false,
    pooled: None,
    derived: None,
};

/// `{n}` in a metric stands for the plan's endpoint count (`Plan::metric`).
pub const ENDPOINTS_RSS_MIB: Quantity = Quantity {
    id: "endpoints.rss_mib",
    metric: "daemon RSS with {n} endpoints",
    unit: "MiB",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const ENDPOINTS_CREATE_S: Quantity = Quantity {
    id: "endpoints.create_s",
    metric: "create {n} endpoints (run -d, one by one)",
    unit: "s",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const ENDPOINTS_REMOVE_S: Quantity = Quantity {
    id: "endpoints.remove_s",
    metric: "remove {n} endpoints (one rm -f of all)",
    unit: "s",
    higher_is_better: false,
    pooled: None,
    derived: None,
};

pub const RUN_0_MS: Quantity = Quantity {
    id: "publish.run_0_ms",
    metric: "run -d, no published port",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const RUN_10_MS: Quantity = Quantity {
    id: "publish.run_10_ms",
    metric: "run -d publishing 10 ports",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const RUN_100_MS: Quantity = Quantity {
    id: "publish.run_100_ms",
    metric: "run -d publishing 100 ports",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const RUN_1000_MS: Quantity = Quantity {
    id: "publish.run_1000_ms",
    metric: "run -d publishing 1,000 ports",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: None,
};
pub const RM_1000_MS: Quantity = Quantity {
    id: "publish.rm_1000_ms",
    metric: "rm -f of the container publishing 1,000 ports",
    unit: "ms",
    higher_is_better: false,
    pooled: None,
    derived: None,
};

/// The data-plane probes. Control-plane probes (publish N ports, attach time, daemon RSS)
/// are added as further variants with their own quantities; `pinned()` says whether the
/// probe runs once per CPU pinning or once per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// TCP_STREAM with iperf3.
    Stream,
    /// TCP_RR: 1-byte request/response on one connection.
    Rr,
    /// TCP_CRR: connect, 1-byte request/response, close.
    Crr,
    /// UDP_RR: 1-byte request/response over UDP.
    Udprr,
    /// TCP_RR from the outside netns to the host's published port (DNAT to the container).
    PubRr,
    /// TCP_CRR from the outside netns to the host's published port.
    PubCrr,
    /// TCP_RR from the host netns to 127.0.0.1:published port (netd socket-LB vs docker-proxy).
    LocalRr,
    /// TCP_CRR from the host netns to 127.0.0.1:published port.
    LocalCrr,
    /// TCP_STREAM (iperf3) from the client to a server in the outside netns, through the
    /// topology's way out (netd: eBPF masquerade at its uplink; docker0: MASQUERADE in
    /// dockerd's netns; veth: a router netns forwarding without NAT, the floor).
    EgressStream,
    /// TCP_RR from the client to a server in the outside netns.
    EgressRr,
    /// TCP_CRR from the client to a server in the outside netns (a new flow, i.e. a new
    /// conntrack/NAT entry, per transaction).
    EgressCrr,
    /// Control plane: CLI wall time of `network connect` (a spare container to a spare
    /// network) and of the `network disconnect` after it, repeated `attach_per_round` times
    /// per round; p50/p99 over all of them.
    Attach,
    /// Control plane: CLI wall time of `run -d --network none` and `run -d --network NET`,
    /// then of their `rm -f`, `cycles_per_round` pairs per round; p50 over all of them, and
    /// the network's cost of each (the difference of the two p50s).
    RunRm,
    /// Control plane: wall time of 32 CLI `run -d --network NET` one after another, then of
    /// 32 started at once, and the ratio of the two (how well the daemon overlaps clients).
    Parallel,
    /// Control plane: resident memory of the daemon(s).
    Rss,
    /// Control plane: wall time of `run -d` with 0, 10 and 100 published ports.
    Publish,
    /// Control plane, once per run (after the rounds): `run -d` with 1,000 published ports,
    /// then its `rm -f`. Docker starts 2,000 docker-proxy processes for it (≈30 s, and ≈80 s
    /// to remove), so `--quick` leaves it out.
    Publish1000,
    /// Control plane at scale, once per run (after the rounds): `run -d` of `Plan::endpoints`
    /// containers (1,000; fewer with --quick) one by one, the daemon's RSS with all of them,
    /// then one `rm -f` of all. Opt-in on docker0 (≈6 min and ≈1,000 containerd-shims):
    /// it runs there only when named in `--probes`.
    Rss1000,
}

impl Probe {
    /// The default set (every probe; `rss1000` without docker0).
    pub const DEFAULT: [Probe; 18] = [
        Probe::Stream,
        Probe::Rr,
        Probe::Crr,
        Probe::Udprr,
        Probe::PubRr,
        Probe::PubCrr,
        Probe::LocalRr,
        Probe::LocalCrr,
        Probe::EgressStream,
        Probe::EgressRr,
        Probe::EgressCrr,
        Probe::Attach,
        Probe::RunRm,
        Probe::Parallel,
        Probe::Rss,
        Probe::Publish,
        Probe::Publish1000,
        Probe::Rss1000,
    ];

    /// The set `--quick` runs unless `--probes` says otherwise: the default set without the
    /// "container → outside" rows, which would add ≈1 minute (+30%) to its ≈3 minutes
    /// (`--quick --probes egress-stream,egress-rr,egress-crr` runs only those, ≈1 minute), and
    /// without the 1,000-port publish (≈2 minutes on docker0).
    pub fn quick() -> Vec<Probe> {
        Probe::DEFAULT.into_iter().filter(|p| !p.needs_egress() && *p != Probe::Publish1000).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Probe::Stream => "TCP_STREAM",
            Probe::Rr => "TCP_RR",
            Probe::Crr => "TCP_CRR",
            Probe::Udprr => "UDP_RR",
            Probe::PubRr => "TCP_RR outside→published port",
            Probe::PubCrr => "TCP_CRR outside→published port",
            Probe::LocalRr => "TCP_RR host→127.0.0.1:port",
            Probe::LocalCrr => "TCP_CRR host→127.0.0.1:port",
            Probe::EgressStream => "TCP_STREAM container→outside",
            Probe::EgressRr => "TCP_RR container→outside",
            Probe::EgressCrr => "TCP_CRR container→outside",
            Probe::Attach => "attach/detach endpoint",
            Probe::RunRm => "run -d / rm -f with and without a network",
            Probe::Parallel => "32 run -d clients, one after another and at once",
            Probe::Rss => "daemon RSS",
            Probe::Publish => "run -d publishing 0/10/100 ports",
            Probe::Publish1000 => "run -d publishing 1,000 ports",
            Probe::Rss1000 => "endpoints at scale: create, RSS, remove",
        }
    }

    /// Whether the probe needs the topology's daemon (control-plane probes).
    pub fn needs_control_plane(self) -> bool {
        matches!(
            self,
            Probe::Attach
                | Probe::RunRm
                | Probe::Parallel
                | Probe::Rss
                | Probe::Publish
                | Probe::Publish1000
                | Probe::Rss1000
        )
    }

    /// Whether the probe needs the daemon to publish ports.
    pub fn needs_publishing(self) -> bool {
        matches!(self, Probe::Publish | Probe::Publish1000)
    }

    /// Whether the probe goes through the server's published port.
    pub fn needs_published_port(self) -> bool {
        matches!(self, Probe::PubRr | Probe::PubCrr | Probe::LocalRr | Probe::LocalCrr)
    }

    /// Whether the probe goes from the client to the outside netns (`Topology::egress`).
    pub fn needs_egress(self) -> bool {
        matches!(self, Probe::EgressStream | Probe::EgressRr | Probe::EgressCrr)
    }

    pub fn quantities(self) -> &'static [&'static Quantity] {
        match self {
            Probe::Stream => &[&TCP_STREAM_GBPS],
            Probe::Rr => &[&TCP_RR_TPS, &TCP_RR_P50, &TCP_RR_P99],
            Probe::Crr => &[&TCP_CRR_CPS],
            Probe::Udprr => &[&UDP_RR_TPS, &UDP_RR_P50],
            Probe::PubRr => &[&PUBLISHED_RR_TPS],
            Probe::PubCrr => &[&PUBLISHED_CRR_CPS],
            Probe::LocalRr => &[&LOCALHOST_RR_TPS],
            Probe::LocalCrr => &[&LOCALHOST_CRR_CPS],
            Probe::EgressStream => &[&EGRESS_STREAM_GBPS],
            Probe::EgressRr => &[&EGRESS_RR_TPS],
            Probe::EgressCrr => &[&EGRESS_CRR_CPS],
            Probe::Attach => &[&ATTACH_P50_MS, &ATTACH_P99_MS, &DETACH_P50_MS, &DETACH_P99_MS],
            Probe::RunRm => &[&RUN_NONE_MS, &RUN_NET_MS, &RUN_NET_COST_MS, &RM_NONE_MS, &RM_NET_MS, &RM_NET_COST_MS],
            Probe::Parallel => &[
                &PARALLEL_SEQUENTIAL_S,
                &PARALLEL_AT_ONCE_S,
                &PARALLEL_SPEEDUP,
                &PARALLEL_SEQUENTIAL_BUSY,
                &PARALLEL_AT_ONCE_BUSY,
            ],
            Probe::Rss => &[&DAEMON_RSS_MIB],
            Probe::Publish => &[&RUN_0_MS, &RUN_10_MS, &RUN_100_MS],
            Probe::Publish1000 => &[&RUN_1000_MS, &RM_1000_MS],
            Probe::Rss1000 => &[&ENDPOINTS_CREATE_S, &ENDPOINTS_RSS_MIB, &ENDPOINTS_REMOVE_S],
        }
    }

    /// Whether the probe runs once per run, after the rounds, instead of once per round: it
    /// is long, and the kernel's tear-down of its namespaces would disturb what follows.
    pub fn once(self) -> bool {
        matches!(self, Probe::Rss1000 | Probe::Publish1000)
    }

    /// Whether the probe runs once per CPU pinning (data plane) or once per round.
    pub fn pinned(self) -> bool {
        !self.needs_control_plane()
    }
}

/// Where client and server run: the same CPU, or two different CPUs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pinning {
    /// `same_cpu` or `cross_cpu`.
    pub id: String,
    pub server_cpu: usize,
    pub client_cpu: usize,
}

impl Pinning {
    /// Same CPU on the last CPU (CPU 0 tends to take more of the machine's interrupts);
    /// cross-CPU with the server on the first. No cross mode on a one-CPU machine.
    pub fn defaults() -> Vec<Pinning> {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let last = n - 1;
        let mut v = vec![Pinning { id: "same_cpu".into(), server_cpu: last, client_cpu: last }];
        if n > 1 {
            v.push(Pinning { id: "cross_cpu".into(), server_cpu: 0, client_cpu: last });
        }
        v
    }

    pub fn label(&self) -> &str {
        match self.id.as_str() {
            "same_cpu" => "same CPU",
            "cross_cpu" => "cross CPU",
            other => other,
        }
    }
}

pub struct Tools {
    pub iperf3: Option<PathBuf>,
    pub bench: PathBuf,
}

impl Tools {
    pub fn find() -> Result<Self> {
        Ok(Self { iperf3: netd_cmd::which("iperf3"), bench: std::env::current_exe().context("locating netd-bench")? })
    }
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A fresh port for every measurement, so a server never meets the previous one's sockets.
fn next_port() -> u16 {
    42000 + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 10000
}

pub type Sample = (&'static Quantity, f64);

pub fn measure(probe: Probe, topo: &dyn Topology, pin: &Pinning, plan: &Plan, tools: &Tools) -> Result<Vec<Sample>> {
    let port = next_port();
    let secs = plan.secs;
    let (server, client) = (topo.server(), topo.client());
    match probe {
        Probe::Stream => Ok(vec![(&TCP_STREAM_GBPS, stream(server, &client.netns, port, pin, secs, tools)?)]),
        Probe::Rr | Probe::Crr | Probe::Udprr => {
            let kind = match probe {
                Probe::Rr => ClientKind::Rr,
                Probe::Crr => ClientKind::Crr,
                _ => ClientKind::Udprr,
            };
            let addr = SocketAddr::from((server.ip, port));
            let r = load_probe(kind, server, port, &client.netns, addr, Some(pin), secs, tools)?;
            Ok(match kind {
                ClientKind::Rr => vec![(&TCP_RR_TPS, r.per_sec), (&TCP_RR_P50, r.p50_us), (&TCP_RR_P99, r.p99_us)],
                ClientKind::Crr => vec![(&TCP_CRR_CPS, r.per_sec)],
                ClientKind::Udprr => vec![(&UDP_RR_TPS, r.per_sec), (&UDP_RR_P50, r.p50_us)],
            })
        }
        Probe::PubRr | Probe::PubCrr | Probe::LocalRr | Probe::LocalCrr => {
            let published = topo.published_port().map_err(|e| anyhow::anyhow!("no published port: {e:?}"))?;
            let target = match probe {
                Probe::PubRr | Probe::PubCrr => &published.from_outside,
                _ => &published.from_host,
            };
            let (kind, q) = match probe {
                Probe::PubRr => (ClientKind::Rr, &PUBLISHED_RR_TPS),
                Probe::PubCrr => (ClientKind::Crr, &PUBLISHED_CRR_CPS),
                Probe::LocalRr => (ClientKind::Rr, &LOCALHOST_RR_TPS),
                _ => (ClientKind::Crr, &LOCALHOST_CRR_CPS),
            };
            let r = load_probe(
                kind,
                server,
                published.container_port,
                &target.client_netns,
                target.addr,
                Some(pin),
                secs,
                tools,
            )?;
            Ok(vec![(q, r.per_sec)])
        }
        Probe::EgressStream | Probe::EgressRr | Probe::EgressCrr => {
            let egress = topo.egress().map_err(|e| anyhow::anyhow!("no way out: {e:?}"))?;
            let out = &egress.server;
            Ok(match probe {
                Probe::EgressStream => {
                    vec![(&EGRESS_STREAM_GBPS, stream(out, &egress.client_netns, port, pin, secs, tools)?)]
                }
                _ => {
                    let (kind, q) = if probe == Probe::EgressRr {
                        (ClientKind::Rr, &EGRESS_RR_TPS)
                    } else {
                        (ClientKind::Crr, &EGRESS_CRR_CPS)
                    };
                    let addr = SocketAddr::from((out.ip, port));
                    let r = load_probe(kind, out, port, &egress.client_netns, addr, Some(pin), secs, tools)?;
                    vec![(q, r.per_sec)]
                }
            })
        }
        Probe::Attach => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            // Every attach (and detach) is a sample of both its rows: their percentiles are
            // taken over all the attaches of all rounds (`Quantity::pooled`).
            let mut out = Vec::with_capacity(4 * plan.attach_per_round);
            for _ in 0..plan.attach_per_round.max(1) {
                sys::check_interrupted()?;
                let (connect, disconnect) = cp.attach_once()?;
                let (connect, disconnect) = (ms(connect), ms(disconnect));
                out.extend([(&ATTACH_P50_MS, connect), (&ATTACH_P99_MS, connect)]);
                out.extend([(&DETACH_P50_MS, disconnect), (&DETACH_P99_MS, disconnect)]);
            }
            Ok(out)
        }
        Probe::RunRm => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            run_rm_cycles(cp, plan.cycles_per_round.max(1))
        }
        Probe::Parallel => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            parallel_clients(cp, PARALLEL_CLIENTS)
        }
        Probe::Rss => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            Ok(vec![(&DAEMON_RSS_MIB, cp.daemon_rss()? as f64 / (1024.0 * 1024.0))])
        }
        Probe::Rss1000 => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            endpoints_at_scale(cp, plan.endpoints)
        }
        Probe::Publish => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            let mut out = Vec::new();
            for (n, q) in [(0, &RUN_0_MS), (10, &RUN_10_MS), (100, &RUN_100_MS)] {
                sys::check_interrupted()?;
                let (run, _) = cp.run_publishing(n).with_context(|| format!("run -d publishing {n} ports"))?;
                out.push((q, run.as_secs_f64() * 1000.0));
            }
            Ok(out)
        }
        Probe::Publish1000 => {
            let cp = topo.control_plane().map_err(|e| anyhow::anyhow!("no control plane: {e:?}"))?;
            let (run, rm) = cp.run_publishing(1000).context("run -d publishing 1,000 ports")?;
            let rm = rm.context("rm -f of the container publishing 1,000 ports")?;
            Ok(vec![(&RUN_1000_MS, run.as_secs_f64() * 1000.0), (&RM_1000_MS, rm.as_secs_f64() * 1000.0)])
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Clients of the parallel probe (the issue's 32).
pub const PARALLEL_CLIENTS: usize = 32;

static NEXT_BATCH: AtomicUsize = AtomicUsize::new(0);

/// A number unique to this run for the names of one batch of containers.
fn next_batch() -> usize {
    NEXT_BATCH.fetch_add(1, Ordering::Relaxed)
}

/// `cycles` times: `run -d` of a `--network none` container and of one on the topology's
/// network (which goes first alternates), then `rm -f` of each in the same order; every one
/// timed on its own, CLI included. What a user's loop of run and rm sees, kernel work the
/// daemon defers included.
fn run_rm_cycles(cp: &dyn ControlPlane, cycles: usize) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(4 * cycles);
    for i in 0..cycles {
        sys::check_interrupted()?;
        let batch = next_batch();
        let none = (cp.container_name(&format!("n{batch}")), Network::None, &RUN_NONE_MS, &RM_NONE_MS);
        let net = (cp.container_name(&format!("t{batch}")), Network::Topology, &RUN_NET_MS, &RM_NET_MS);
        let order = if i % 2 == 0 { [none, net] } else { [net, none] };
        let mut made = Containers::new(cp, Duration::from_secs(120));
        for (name, network, run_q, _) in &order {
            made.names.push(name.clone()); // listed first: a CLI killed half-way may have made it
            let t0 = Instant::now();
            cp.run_detached(name, *network).with_context(|| format!("run -d --network {}", network.label()))?;
            out.push((*run_q, ms(t0.elapsed())));
        }
        for (name, network, _, rm_q) in &order {
            let t0 = Instant::now();
            cp.remove_containers(std::slice::from_ref(name), Duration::from_secs(120))
                .with_context(|| format!("rm -f of the --network {} container", network.label()))?;
            out.push((*rm_q, ms(t0.elapsed())));
            made.names.retain(|n| n != name);
        }
    }
    Ok(out)
}

/// Wall time of `clients` CLI `run -d` on the topology's network one after another, then of
/// as many started at once (from the moment all their threads are released to the last
/// one's exit). Each batch is removed (not timed) and the kernel's tear-down of its
/// namespaces waited for (≤ 20 s) before what follows.
fn parallel_clients(cp: &dyn ControlPlane, clients: usize) -> Result<Vec<Sample>> {
    let batch = next_batch();
    let names = |what: &str| -> Vec<String> {
        (0..clients).map(|i| cp.container_name(&format!("{what}{batch}-{i:02}"))).collect()
    };
    let bound = Duration::from_secs(30) + cp.endpoint_budget() * clients as u32;

    let netns_before = sys::net_namespaces();
    let mut made = Containers::new(cp, bound);
    made.names = names("s");
    let (t0, cpu0) = (Instant::now(), sys::cpu_ticks());
    for name in made.names.clone() {
        sys::check_interrupted()?;
        cp.run_detached(&name, Network::Topology).context("run -d (one after another)")?;
    }
    let (sequential, sequential_busy) = (t0.elapsed(), sys::busy_percent(cpu0, sys::cpu_ticks()));
    made.remove()?;
    sys::settle_netns(netns_before, Duration::from_secs(20));

    let netns_before = sys::net_namespaces();
    made.names = names("p");
    let commands = made.names.iter().map(|name| cp.run_command(name, Network::Topology)).collect::<Result<Vec<_>>>()?;
    let start = std::sync::Barrier::new(clients + 1);
    let (at_once, at_once_busy, results) = std::thread::scope(|scope| {
        let threads: Vec<_> = commands
            .into_iter()
            .map(|mut cmd| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    sys::run_timeout(&mut cmd, bound).map(drop)
                })
            })
            .collect();
        start.wait();
        let (t0, cpu0) = (Instant::now(), sys::cpu_ticks());
        let results: Vec<Result<()>> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked"))))
            .collect();
        (t0.elapsed(), sys::busy_percent(cpu0, sys::cpu_ticks()), results)
    });
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e.context(format!("{failed} of {clients} parallel run -d failed")));
    }
    made.remove()?;
    sys::settle_netns(netns_before, Duration::from_secs(20));
    let mut out =
        vec![(&PARALLEL_SEQUENTIAL_S, sequential.as_secs_f64()), (&PARALLEL_AT_ONCE_S, at_once.as_secs_f64())];
    // Whether the clients at once were held back by the daemon or by the CPUs: with every CPU
    // busy, no ordering of the daemon's work makes them finish sooner.
    out.extend(sequential_busy.map(|b| (&PARALLEL_SEQUENTIAL_BUSY, b)));
    out.extend(at_once_busy.map(|b| (&PARALLEL_AT_ONCE_BUSY, b)));
    Ok(out)
}

/// TCP_STREAM with iperf3: the server in `server`'s netns, the client in `client_netns`;
/// received Gbit/s.
fn stream(server: &Endpoint, client_netns: &Path, port: u16, pin: &Pinning, secs: f64, tools: &Tools) -> Result<f64> {
    let iperf3 = tools.iperf3.as_ref().context("iperf3 is not installed")?;
    let mut srv = sys::netns_command(&server.netns, Some(pin.server_cpu), iperf3);
    srv.args(["-s", "-1", "-p", &port.to_string()]);
    let _server = start_server(srv, server, port)?;
    let t = secs.ceil().max(1.0) as u64;
    let mut cli = sys::netns_command(client_netns, Some(pin.client_cpu), iperf3);
    cli.args(["-c", &server.ip.to_string(), "-p", &port.to_string(), "-t", &t.to_string()]).args([
        "-J",
        "--connect-timeout",
        "3000",
    ]);
    let out = run_client(cli, t as f64)?;
    Ok(parse_iperf3(&out)? / 1e9)
}

/// Whether a client in `client_netns` can exchange TCP requests with a server in `server`'s
/// netns at its address: a 0.2 s TCP_RR with the bench's own load tool, unpinned (a few
/// seconds at most when the path is broken: the client's connect gives up after 3 s).
pub fn reachable(server: &Endpoint, client_netns: &Path) -> Result<()> {
    let bench = std::env::current_exe().context("locating netd-bench")?;
    let tools = Tools { iperf3: None, bench };
    let port = next_port();
    let addr = SocketAddr::from((server.ip, port));
    load_probe(ClientKind::Rr, server, port, client_netns, addr, None, 0.2, &tools).map(drop)
}

/// `run -d` of `n` containers one after another (timed), the daemon's RSS with all of them,
/// then one `rm -f` of all (timed), and a wait until the kernel has torn their network
/// namespaces down (not timed), so that what runs next does not pay for it. Bounded: it gives
/// up after `30 s + n × endpoint_budget` for each phase; whatever was created is removed on
/// every path out (error, interrupt, panic).
fn endpoints_at_scale(cp: &dyn ControlPlane, n: usize) -> Result<Vec<Sample>> {
    let n = n.max(1);
    let bound = Duration::from_secs(30) + cp.endpoint_budget() * n as u32;
    let netns_before = sys::net_namespaces();
    let mut batch = Containers::new(cp, bound);
    let t0 = Instant::now();
    for i in 0..n {
        sys::check_interrupted()?;
        if t0.elapsed() > bound {
            bail!("created only {i} of {n} endpoints within {bound:?}");
        }
        let name = cp.endpoint_name(i);
        // Listed before it exists: a CLI killed half-way may still have made it.
        batch.names.push(name.clone());
        cp.run_detached(&name, Network::Topology).with_context(|| format!("creating endpoint {} of {n}", i + 1))?;
    }
    let create = t0.elapsed();
    let rss = cp.daemon_rss()?;
    let names = std::mem::take(&mut batch.names);
    let t1 = Instant::now();
    let removed = cp.remove_containers(&names, bound);
    let remove = t1.elapsed();
    if let Err(e) = removed {
        batch.names = names; // the guard tries once more
        return Err(e.context(format!("removing {n} endpoints")));
    }
    drop(batch);
    sys::settle_netns(netns_before, Duration::from_secs(60));
    Ok(vec![
        (&ENDPOINTS_CREATE_S, create.as_secs_f64()),
        (&ENDPOINTS_RSS_MIB, rss as f64 / (1024.0 * 1024.0)),
        (&ENDPOINTS_REMOVE_S, remove.as_secs_f64()),
    ])
}

/// A probe's containers not yet removed; removes them when dropped (error, interrupt, panic).
struct Containers<'a> {
    cp: &'a dyn ControlPlane,
    names: Vec<String>,
    bound: Duration,
}

impl<'a> Containers<'a> {
    fn new(cp: &'a dyn ControlPlane, bound: Duration) -> Self {
        Self { cp, names: Vec::new(), bound }
    }

    /// One `rm -f` of all of them (not timed); on failure they stay listed for the drop.
    fn remove(&mut self) -> Result<()> {
        if !self.names.is_empty() {
            self.cp.remove_containers(&self.names, self.bound).context("rm -f of the batch")?;
            self.names.clear();
        }
        Ok(())
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        eprintln!("cleanup: removing {} containers", self.names.len());
        if let Err(e) = self.cp.remove_containers(&self.names, self.bound) {
            eprintln!("cleanup: {e:#}");
        }
    }
}

/// One run of our load tool: `serve` in the server endpoint on `port`, the client in
/// `client_netns` connecting to `addr`; pinned as `pin` says (unpinned when None).
#[allow(clippy::too_many_arguments)]
fn load_probe(
    kind: ClientKind,
    server: &Endpoint,
    port: u16,
    client_netns: &Path,
    addr: SocketAddr,
    pin: Option<&Pinning>,
    secs: f64,
    tools: &Tools,
) -> Result<LoadReport> {
    let mut srv = sys::netns_command(&server.netns, pin.map(|p| p.server_cpu), &tools.bench);
    srv.args(["serve", "--port", &port.to_string(), "--max-secs", &(secs + 30.0).to_string()]);
    let _server = start_server(srv, server, port)?;
    let sub = match kind {
        ClientKind::Rr => "rr",
        ClientKind::Crr => "crr",
        ClientKind::Udprr => "udprr",
    };
    let mut cli = sys::netns_command(client_netns, pin.map(|p| p.client_cpu), &tools.bench);
    cli.args([sub, "--addr", &addr.to_string(), "--secs", &secs.to_string()]);
    let out = run_client(cli, secs)?;
    serde_json::from_str(out.trim()).with_context(|| format!("load tool output: {out:?}"))
}

/// Starts a server and waits until it listens on `port` inside the endpoint's netns.
fn start_server(mut cmd: std::process::Command, at: &Endpoint, port: u16) -> Result<ChildGuard> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut server = ChildGuard::spawn(&mut cmd, "load server", Duration::from_secs(2))?;
    let pid = server.pid();
    sys::wait_until(Duration::from_secs(10), "load server", || {
        if let Some(status) = server.try_wait()? {
            bail!("server exited early ({status})");
        }
        // Until taskset and nsenter have exec'd, the PID still lives in our own netns.
        Ok(same_netns(pid, &at.netns) && sys::tcp_listening(pid, port)?)
    })?;
    Ok(server)
}

fn same_netns(pid: u32, netns: &Path) -> bool {
    match (std::fs::metadata(format!("/proc/{pid}/ns/net")), std::fs::metadata(netns)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn run_client(mut cmd: std::process::Command, secs: f64) -> Result<String> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("starting the client")?;
    let out = sys::wait_output(child, Duration::from_secs_f64(secs + 20.0), "client")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = if stderr.trim().is_empty() { iperf3_error(&stdout) } else { stderr.trim().to_string() };
        bail!("client failed ({}): {detail}", out.status);
    }
    Ok(stdout)
}

fn iperf3_error(stdout: &str) -> String {
    serde_json::from_str::<serde_json::Value>(stdout)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| stdout.chars().take(300).collect())
}

/// Received bits per second from `iperf3 -J` output.
pub fn parse_iperf3(json: &str) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 output is not JSON")?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {err}");
    }
    v.pointer("/end/sum_received/bits_per_second")
        .and_then(|b| b.as_f64())
        .context("iperf3 output has no end.sum_received.bits_per_second")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iperf3_json() {
        let j = r#"{"start":{},"end":{"sum_sent":{"bits_per_second":2e10},"sum_received":{"bits_per_second":1.5e10}}}"#;
        assert_eq!(parse_iperf3(j).unwrap(), 1.5e10);
        assert!(parse_iperf3(r#"{"error":"unable to connect"}"#)
            .unwrap_err()
            .to_string()
            .contains("unable to connect"));
    }

    #[test]
    fn quick_leaves_out_only_the_egress_rows_and_the_1000_port_publish() {
        let quick = Probe::quick();
        assert_eq!(quick.len(), Probe::DEFAULT.len() - 4);
        assert!(quick.iter().all(|p| !p.needs_egress() && *p != Probe::Publish1000 && Probe::DEFAULT.contains(p)));
    }

    #[test]
    fn quantity_ids_are_unique() {
        let mut ids: Vec<&str> = Probe::DEFAULT.iter().flat_map(|p| p.quantities()).map(|q| q.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
