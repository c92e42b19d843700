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
    path::{Path, PathBuf},
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
    /// Sockets bound ahead for runs in flight ([`Dns::prepare`]), by container id, with the
    /// netns they are bound in.
    prepared: Mutex<HashMap<String, (PathBuf, server::Sockets)>>,
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
        Self { shared: Arc::new(shared), listeners: Mutex::default(), prepared: Mutex::default() }
    }

    /// Binds the listener's sockets of container `id`, being made in `netns`, before its run
    /// commits: the sync that starts the listener runs under the manager's lock, and binding
    /// enters the netns on the netns thread (70–150 µs that every other run would wait for
    /// behind the lock). A query sent before the listener starts waits in the socket. A
    /// failure is left to the sync, which binds again and logs it.
    pub fn prepare(&self, id: &str, netns: &Path) {
        match server::bind_in(netns, &self.shared.fd_budget) {
            Ok(sockets) => {
                let mut prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
                prepared.insert(id.to_string(), (netns.to_path_buf(), sockets));
            }
            Err(e) => tracing::debug!(container = %id, error = %e, "dns sockets not bound ahead"),
        }
    }

    /// Closes the sockets bound ahead for `id` (its run failed).
    pub fn forget_prepared(&self, id: &str) {
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
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
        drop(listeners);
        // Sockets bound ahead for a container that settled without becoming a client close.
        self.prepared.lock().unwrap_or_else(|e| e.into_inner()).retain(|id, _| pending.contains(id));
    }

    fn start_listener(&self, id: &str, client: &records::Client) -> Result<Listener, DnsError> {
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let sockets = match prepared {
            Some((netns, sockets)) if netns == client.netns => sockets,
            _ => server::bind_in(&client.netns, &self.shared.fd_budget)?,
        };
        let (shared, client_id) = (self.shared.clone(), id.to_string());
        let task = tokio::spawn(async move {
            if let Err(e) = server::serve(sockets, shared, client_id.clone()).await {
                tracing::warn!(container = %client_id, error = %e, "embedded DNS stopped");
            }
        });
        Ok(Listener { netns: client.netns.clone(), started: client.started.clone(), task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Network namespaces of the test's own, unmounted at the end (on a panic too).
    struct Namespaces(PathBuf, Vec<PathBuf>);

    impl Drop for Namespaces {
        fn drop(&mut self) {
            for path in &self.1 {
                let _ = netns::remove(path);
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs root (network namespaces); cargo xtask test runs it"]
    async fn sockets_bound_ahead_go_to_the_listener_or_close() {
        let dir = std::env::temp_dir().join(format!("netd-dns-ahead-{}", crate::model::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spaces = Namespaces(dir.clone(), vec![dir.join("one"), dir.join("plain")]);
        for path in &spaces.1 {
            netns::create_with_lo_up(path).unwrap();
        }
        let (networks, mut containers) = records::tests::state();
        // "one" is on a user-defined network (a DNS client), "plain" on the default bridge.
        let (one, plain) = (records::tests::id("a1"), records::tests::id("e5"));
        containers.retain(|id, _| *id == one || *id == plain);
        for (id, path) in [(&one, &spaces.1[0]), (&plain, &spaces.1[1])] {
            containers.get_mut(id).unwrap().netns = Some(path.to_string_lossy().into_owned());
        }
        // Room for the two listeners' sockets and no more: a listener that bound again instead
        // of taking its sockets would find no fd left.
        let dns = Dns::new(vec![], 4);
        dns.prepare(&one, &spaces.1[0]);
        dns.prepare(&plain, &spaces.1[1]);
        assert!(dns.shared.fd_budget.take(1).is_none(), "the sockets bound ahead hold their fds");

        let pending = BTreeSet::from([one.clone(), plain.clone()]);
        dns.sync(&networks, &containers, &pending, &RemoteNames::default());
        assert_eq!(dns.prepared.lock().unwrap().len(), 2, "runs in flight keep theirs");
        assert!(dns.listeners.lock().unwrap().is_empty());

        dns.sync(&networks, &containers, &BTreeSet::new(), &RemoteNames::default());
        assert!(dns.prepared.lock().unwrap().is_empty());
        let listening: Vec<String> = dns.listeners.lock().unwrap().keys().cloned().collect();
        assert_eq!(listening, [one], "one serves on the sockets bound ahead");
        // plain's sockets are closed: its two fds are back, one's are its listener's.
        let back = dns.shared.fd_budget.take(2);
        assert!(back.is_some(), "plain's fds were not returned");
        assert!(dns.shared.fd_budget.take(1).is_none());
    }
}
