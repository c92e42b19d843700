//! Embedded DNS (DESIGN §5): on user-defined networks each container's resolver is
//! 127.0.0.11, served by the daemon on sockets bound inside the container's netns.
//!
//! - `records`: the names each listener may resolve, rebuilt from the manager's state.
//! - `answer`: one query → one answer (local names, `host.docker.internal`, or upstream).
//! - `upstream`: forwarding to the host's resolvers (or a container's `--dns`).
//! - `server`: the sockets inside the netns and the tasks serving them.
//! - `budget`: the daemon-wide budget of fds that all listeners share.
//!
//! The manager calls [`Dns::sync`] after every change to containers or endpoints; it swaps
//! the records and starts or stops listeners so that exactly the containers with an endpoint
//! on a user-defined network have one. A restarted daemon makes them again for every live
//! container through the same call.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
};

use tokio::task::JoinHandle;

use crate::{
    model::{Container, Network},
    netns,
};

mod answer;
mod budget;
mod records;
mod server;
mod upstream;

/// The DNS fuzz target's entry (`fuzz/fuzz_targets/dns.rs`): one query from a container of a
/// fixed set of networks and containers, decided with no I/O (never forwarded).
#[cfg(feature = "fuzzing")]
pub fn fuzz_query(raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
    use hickory_proto::op::Message;
    let (networks, containers) = records::tests::state();
    let records = records::Records::build(&networks, &containers);
    let transport = if tcp { answer::Transport::Tcp } else { answer::Transport::Udp };
    let upstreams = ["192.0.2.53".parse().unwrap()];
    match answer::decide(&records, &records::Rotation::default(), &upstreams, &records::tests::id("a1"), raw, transport)
    {
        answer::Decision::Reply(reply) => {
            if let Some(bytes) = &reply {
                let response = Message::from_vec(bytes).expect("a reply netd sends parses");
                assert_eq!(response.metadata.message_type, hickory_proto::op::MessageType::Response);
                if !tcp {
                    let asked = Message::from_vec(raw).map(|q| q.max_payload()).unwrap_or(512);
                    assert!(bytes.len() <= usize::from(asked.max(512)), "UDP reply larger than the client takes");
                }
            }
            reply
        }
        answer::Decision::Forward { servers, .. } => {
            assert!(!servers.is_empty());
            None
        }
    }
}

pub use server::DNS_ADDRESS;
pub use upstream::nameservers;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("embedded DNS: enter netns {}: {reason}", netns.display())]
    Netns { netns: PathBuf, reason: String },
    #[error("embedded DNS: bind 127.0.0.11:53 in {}: {source}", netns.display())]
    Bind { netns: PathBuf, source: std::io::Error },
    #[error("embedded DNS: {source}")]
    Serve { source: std::io::Error },
    #[error("embedded DNS: no file descriptor left in the daemon's budget for {}", netns.display())]
    OverBudget { netns: PathBuf },
}

/// What the listeners share: the current records, the rotation counters, the daemon's
/// upstream resolvers and the budget of fds.
pub struct Shared {
    records: RwLock<Arc<records::Records>>,
    rotation: records::Rotation,
    upstreams: Vec<IpAddr>,
    fd_budget: budget::FdBudget,
}

impl Shared {
    fn records(&self) -> Arc<records::Records> {
        self.records.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A listener in one container netns. Dropping it ends its task, which closes its sockets
/// (they would otherwise keep the netns alive).
struct Listener {
    netns: PathBuf,
    /// The start of the container it was made for (`Client::started`): a container that got
    /// a new netns at the same path (stop, start) needs a new listener. Compared instead of
    /// the netns' inode so that a sync makes no system call per container.
    started: String,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Dns {
    shared: Arc<Shared>,
    /// By the id of the container that owns the netns.
    listeners: Mutex<HashMap<String, Listener>>,
}

/// Other hosts' endpoints on this host's overlay networks, as the cluster's watch last gave
/// them, with a generation that changes with them: a sync recomputes their names only then.
#[derive(Debug, Default)]
pub struct RemoteNames {
    pub generation: u64,
    pub announcements: Vec<crate::cluster::records::Announcement>,
}

impl RemoteNames {
    pub fn set(&mut self, announcements: Vec<crate::cluster::records::Announcement>) {
        self.announcements = announcements;
        self.generation += 1;
    }
}

impl Dns {
    /// `upstreams`: where names that are not containers' are forwarded (the daemon's
    /// `--dns-upstream`, or the host's resolv.conf). `fd_budget`: how many fds all listeners
    /// together may hold (`limits::dns_fd_budget`).
    pub fn new(upstreams: Vec<IpAddr>, fd_budget: u64) -> Self {
        let fd_budget = budget::FdBudget::new(fd_budget);
        let shared =
            Shared { records: RwLock::default(), rotation: records::Rotation::default(), upstreams, fd_budget };
        Self { shared: Arc::new(shared), listeners: Mutex::default() }
    }

    pub fn upstreams(&self) -> &[IpAddr] {
        &self.shared.upstreams
    }

    /// Makes the records and the listeners match `containers`, those of `pending` left out (a
    /// `run` between its reservation and its commit has no name yet). A listener that cannot be
    /// made is logged and tried again at the next sync; the containers' other networking
    /// does not depend on it. Must run inside the tokio runtime.
    /// `remote`: other hosts' endpoints on overlay networks (named, never listened for).
    pub fn sync(
        &self,
        networks: &BTreeMap<String, Network>,
        containers: &BTreeMap<String, Container>,
        pending: &BTreeSet<String>,
        remote: &RemoteNames,
    ) {
        let records = {
            let mut current = self.shared.records.write().unwrap_or_else(|e| e.into_inner());
            // In place, unless a query holds this version: then on a copy.
            let records = Arc::make_mut(&mut current);
            let changed =
                records.update_settled(networks, containers, pending) | records.update_remote(networks, remote);
            if changed {
                self.shared.rotation.retain(&current);
            }
            current.clone()
        };

        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.retain(|id, l| {
            let keep = records
                .client(id)
                .is_some_and(|client| client.netns == l.netns && client.started == l.started && !l.task.is_finished());
            if !keep {
                tracing::debug!(container = %id, netns = %l.netns.display(), "dns listener stopped");
            }
            keep
        });
        for (id, client) in records.clients() {
            if listeners.contains_key(id) {
                continue;
            }
            if !netns::is_netns_mount(&client.netns) {
                continue; // its netns is gone
            }
            match self.start_listener(id, client) {
                Ok(listener) => {
                    tracing::debug!(container = %id, netns = %client.netns.display(), "dns listener started");
                    listeners.insert(id.clone(), listener);
                }
                Err(e) => tracing::warn!(container = %id, error = %e, "embedded DNS not available"),
            }
        }
    }

    fn start_listener(&self, id: &str, client: &records::Client) -> Result<Listener, DnsError> {
        let sockets = server::bind_in(&client.netns, &self.shared.fd_budget)?;
        let (shared, client_id) = (self.shared.clone(), id.to_string());
        let task = tokio::spawn(async move {
            if let Err(e) = server::serve(sockets, shared, client_id.clone()).await {
                tracing::warn!(container = %client_id, error = %e, "embedded DNS stopped");
            }
        });
        Ok(Listener { netns: client.netns.clone(), started: client.started.clone(), task })
    }
}
