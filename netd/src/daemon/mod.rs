//! `netd daemon`: owns the state, the datapath and the API socket.
pub mod access;
pub mod api;
pub mod api_server;
pub mod cluster;
pub mod container_files;
pub mod crash;
pub mod datapath;
pub mod dns;
pub mod docker_plugin;
pub mod egress;
pub mod host_ports;
pub mod instance_lock;
pub mod ipam;
pub mod kernel;
pub mod limits;
pub mod manager;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod netns_pool;
pub mod plumbing;
pub mod reaper;
pub mod store;
pub mod supervisor;
pub mod sweep;
pub mod validate;
pub mod views;

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use tokio::signal::unix::SignalKind;

use self::{
    api::Api,
    datapath::{ebpf::EbpfDatapath, Datapath},
    dns::Dns,
    kernel::HostKernel,
    manager::Manager,
    netlink::Netlink,
    plumbing::Plumber,
    store::Store,
    supervisor::{Exit, Supervisor},
};
use crate::attach;

#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Where the state store lives.
    #[arg(long, default_value = "/var/lib/netd")]
    pub state_dir: PathBuf,
    /// Runtime files: the API socket, container netns mounts, per-container files.
    #[arg(long, default_value = "/run/netd")]
    pub run_dir: PathBuf,
    /// Where maps, programs and links are pinned (bpffs is mounted if needed).
    #[arg(long, default_value = "/sys/fs/bpf/netd")]
    pub bpffs: PathBuf,
    /// Uplink interfaces (default: the devices of the default routes).
    #[arg(long)]
    pub uplink: Vec<String>,
    /// Upstream resolver for names that are not containers' (repeatable; like dockerd's
    /// `--dns`). Default: the nameservers of /etc/resolv.conf.
    #[arg(long = "dns-upstream", value_name = "IP")]
    pub dns_upstream: Vec<std::net::IpAddr>,
    /// Endpoints on all networks together (2 maps, 200 B of kernel memory per endpoint:
    /// 12.5 MiB at the default).
    /// A `run` or `network connect` that would exceed it is refused.
    #[arg(long, value_name = "N", default_value_t = limits::Capacities::default().endpoints,
          value_parser = clap::value_parser!(u32).range(limits::CAPACITY_RANGE))]
    pub max_endpoints: u32,
    /// Tracked flows, for TCP and for UDP/ICMP each (LRU; 2 maps, 96 B per entry each: 48 MiB
    /// at the default). When full, the least recently used flow makes room.
    #[arg(long, value_name = "N", default_value_t = limits::Capacities::default().conntrack,
          value_parser = clap::value_parser!(u32).range(limits::CAPACITY_RANGE))]
    pub conntrack_entries: u32,
    /// Masqueraded flows (96 B per entry: 48 MiB at the default). When full, new masqueraded
    /// flows are dropped (`netd stats`: nat_table_full); flows in use keep their mapping.
    #[arg(long, value_name = "N", default_value_t = limits::Capacities::default().nat,
          value_parser = clap::value_parser!(u32).range(limits::CAPACITY_RANGE))]
    pub nat_entries: u32,
    /// Published (host address, port, protocol) entries of all containers (2 maps, 160 B per
    /// port: 10 MiB at the default). A `run -p` that would exceed it is refused.
    #[arg(long, value_name = "N", default_value_t = limits::Capacities::default().published_ports,
          value_parser = clap::value_parser!(u32).range(limits::CAPACITY_RANGE))]
    pub max_published_ports: u32,
    /// Where Docker finds netd's network and IPAM driver (`docker network create -d netd
    /// --ipam-driver netd`): dockerd looks for `/run/docker/plugins/<name>.sock`.
    #[arg(long, value_name = "PATH", default_value = docker_plugin::DEFAULT_SOCKET)]
    pub docker_plugin_socket: PathBuf,
    /// Serve no Docker plugin socket (`--docker-plugin-socket` is then ignored).
    #[arg(long)]
    pub no_docker_plugin: bool,
    /// Cluster mode: share overlay networks (`network create -d overlay`), their addresses
    /// and endpoints with the other netd daemons of this etcd cluster.
    #[arg(long, value_name = "etcd://HOST:PORT[,HOST:PORT...]", requires = "advertise_addr")]
    pub cluster_store: Option<String>,
    /// This host's underlay address, which the other hosts tunnel overlay traffic to (VXLAN,
    /// UDP 4789).
    #[arg(long, value_name = "IP", requires = "cluster_store")]
    pub advertise_addr: Option<std::net::Ipv4Addr>,
    /// Seconds this host's endpoints stay announced to the others after its daemon stops
    /// renewing them (a crash, `kill -9`); its pinned datapath keeps forwarding meanwhile.
    #[arg(long, value_name = "SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(2..=3600))]
    pub cluster_lease_ttl: u32,
    /// Network namespaces kept ready for `run` (≈160 KiB of kernel memory each), made while
    /// at most one `run` is in flight; 0: each `run` makes its own.
    #[arg(long, value_name = "N", default_value_t = netns_pool::DEFAULT_READY,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub netns_ahead: u16,
}

impl DaemonArgs {
    pub fn capacities(&self) -> limits::Capacities {
        limits::Capacities {
            endpoints: self.max_endpoints,
            conntrack: self.conntrack_entries,
            nat: self.nat_entries,
            published_ports: self.max_published_ports,
        }
    }
}

pub async fn run(args: DaemonArgs, socket: PathBuf) -> anyhow::Result<()> {
    // Before anything is created: nothing may start more open than it ends (`access.rs`).
    access::restrict_umask();
    let nofile = limits::raise_nofile().context("raise RLIMIT_NOFILE")?;
    let dns_fd_budget = limits::dns_fd_budget(nofile);
    tracing::info!(nofile, dns_fd_budget, "file descriptor limits");
    if nofile < limits::RESERVED_FDS + 64 {
        tracing::warn!(nofile, "RLIMIT_NOFILE is too low for the API's connections and the embedded DNS");
    }
    access::run_dir(&args.run_dir).context("create run dir")?;
    access::private_dir(&args.state_dir).context("create state dir")?;
    datapath::bpffs::ensure(&args.bpffs)?;
    // Before anything of another daemon's could be touched (`instance_lock.rs`).
    let _locks = instance_lock::lock_all(&[
        ("state dir", &args.state_dir),
        ("run dir", &args.run_dir),
        ("bpffs dir", &args.bpffs),
    ])?;
    access::tighten_container_dirs(&args.run_dir).context("make container dirs private")?;
    let store = Store::open(&args.state_dir)?;
    let capacities = args.capacities();
    let datapath = EbpfDatapath::load(&args.bpffs, &capacities)?;
    // Host clients of published ports (the socket-LB at the cgroup2 root, this netns only).
    datapath.attach_host_clients()?;
    let ebpf_datapath = Arc::new(datapath);
    let datapath: Arc<dyn Datapath> = ebpf_datapath.clone();
    let host = Netlink::open_on_own_thread("netlink-host")?;
    let uplinks = if args.uplink.is_empty() { host.default_route_devices().await? } else { args.uplink.clone() };
    if uplinks.is_empty() {
        tracing::warn!("no uplink (no default route and no --uplink): containers reach only the host");
    }
    let addresses_changed = Arc::new(tokio::sync::Notify::new());
    let egress_task = egress::start(Netlink::open()?, uplinks, datapath.clone(), addresses_changed.clone()).await?;
    let plumber = Plumber::new(
        host,
        Netlink::open_on_own_thread("netlink-reaper")?,
        &args.run_dir,
        usize::from(args.netns_ahead),
        datapath,
    );
    // `--network host` containers (and `netd exec` into them from any netns) use the
    // daemon's netns through this mount.
    plumber.host_netns()?;
    let (procs, exits) = Supervisor::new(&args.run_dir, &store.instance_id()?)?;
    let upstreams = if args.dns_upstream.is_empty() {
        dns::nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        args.dns_upstream.clone()
    };
    tracing::info!(?upstreams, "dns upstreams");
    let kernel = HostKernel::new(plumber, procs, addresses_changed);
    let cluster = match (&args.cluster_store, args.advertise_addr) {
        (Some(store), Some(advertise)) => {
            let config = cluster::ClusterConfig::parse(store, advertise, args.cluster_lease_ttl)?;
            Some(Arc::new(cluster::Cluster::new(config).await?))
        }
        _ => None,
    };
    let dns = Dns::new(upstreams, dns_fd_budget);
    let manager =
        Arc::new(Manager::start_in_cluster(store, kernel, &args.run_dir, dns, capacities, cluster.clone()).await?);
    if let Some(cluster) = cluster {
        tokio::spawn(cluster::run(cluster, Arc::new(manager::Sink(manager.clone()))));
    }
    // Recovery updated every endpoint link: no program of an older daemon runs any more. An
    // old pin that cannot go is copied again (harmlessly) at the next start.
    if let Err(e) = ebpf_datapath.finish_migration() {
        tracing::warn!(error = %e, "cannot unpin a migrated map");
    }
    drop(ebpf_datapath);
    manager.group_commits();
    manager.prepare_netns_ahead();
    tokio::spawn(watch_exits(manager.clone(), exits));

    let listener = api_server::bind(&socket)?;
    // The attach socket gets the API socket's owner and mode: whoever may run may attach.
    let attach_socket = attach::socket_path(&socket);
    let attach_task = tokio::spawn(attach::serve(api_server::bind(&attach_socket)?, manager.clone()));
    let docker_plugin = match args.no_docker_plugin {
        true => None,
        false => Some(docker_plugin::bind(&args.docker_plugin_socket)?),
    };
    tracing::info!(socket = %socket.display(), "netd daemon ready");
    let stop = Arc::new(tokio::sync::Notify::new());
    // The plugin socket closes with the API socket (its server stops with the process).
    let plugin_task = docker_plugin.map(|listener| {
        let app = docker_plugin::router(manager.clone());
        tokio::spawn(api_server::serve(listener, app, std::future::pending()))
    });
    let app = api::router(Api { manager: manager.clone(), run_dir: args.run_dir.clone(), stop: stop.clone() });
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let _ = reset_tx.send(shutdown_signal(stop).await);
    };
    api_server::serve(listener, app, shutdown).await;
    attach_task.abort();
    if let Some(task) = plugin_task {
        task.abort();
        let _ = std::fs::remove_file(&args.docker_plugin_socket);
    }
    manager.stop_preparing_netns();
    // Commits no command waited for (a container's exit) are on disk before the daemon goes.
    if let Err(e) = manager.durable().await {
        tracing::error!(error = %e, "state store not flushed at exit");
    }
    egress_task.abort();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&attach_socket);
    if reset_rx.await.unwrap_or(false) {
        remove_empty_run_dirs(&args.run_dir);
        tracing::info!("netd system reset done; daemon stopped");
    } else {
        tracing::info!("netd daemon stopped; pinned datapath keeps forwarding");
    }
    Ok(())
}

/// Stops (or with `--rm` removes) containers whose command exited, as Docker does.
async fn watch_exits(manager: Arc<Manager>, mut exits: tokio::sync::mpsc::UnboundedReceiver<Exit>) {
    while let Some(exit) = exits.recv().await {
        manager.process_exited(exit).await;
    }
}

/// Resolves on SIGINT/SIGTERM (false) or after `system reset` (true).
async fn shutdown_signal(stop: Arc<tokio::sync::Notify>) -> bool {
    let mut term = tokio::signal::unix::signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => false,
        _ = term.recv() => false,
        _ = stop.notified() => true,
    }
}

/// After a reset only empty directories can remain in the run dir; remove them.
fn remove_empty_run_dirs(run_dir: &std::path::Path) {
    for sub in ["netns", "netns-ready", "containers"] {
        let _ = std::fs::remove_dir(run_dir.join(sub));
    }
    let _ = std::fs::remove_dir(run_dir);
}
