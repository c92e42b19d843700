//! Per-container files the daemon writes and `netd exec` mounts over /etc: hosts, resolv.conf,
//! hostname. `<run-dir>/containers` and each container's directory are 0700: the command's
//! `output.log` lives there. `hosts` and `resolv.conf` are 0644, for container processes that
//! do not run as root: they reach them through bind mounts, which ignore the directory.
use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use crate::{
    access,
    error::{Error, Result},
    model::{Container, NetMode, Network},
};

#[derive(Clone, Debug)]
pub struct ContainerFiles {
    dir: PathBuf,
}

impl ContainerFiles {
    pub fn new(run_dir: &Path, container_id: &str) -> Self {
        Self { dir: run_dir.join("containers").join(container_id) }
    }

    /// Whether the container has files (from an earlier run) already.
    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    /// `upstreams`: the daemon's upstream resolvers (`--dns-upstream` or the host's).
    pub fn write(
        &self,
        container: &Container,
        networks: &BTreeMap<String, Network>,
        upstreams: &[IpAddr],
    ) -> Result<()> {
        let io = |e| Error::os("write container files", e);
        if let Some(containers) = self.dir.parent() {
            access::private_dir(containers).map_err(io)?;
        }
        access::private_dir(&self.dir).map_err(io)?;
        let write = |path: PathBuf, contents: String| access::write_container_readable(&path, &contents).map_err(io);
        if container.mode == NetMode::Host {
            // The host's own files, as Docker gives `--network host` containers.
            let host_file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
            write(self.hosts(), host_file("/etc/hosts"))?;
            let resolv = if container.dns.is_empty() {
                host_file("/etc/resolv.conf")
            } else {
                container.dns.iter().map(|ns| format!("nameserver {ns}\n")).collect()
            };
            return write(self.resolv_conf(), resolv);
        }
        if matches!(container.mode, NetMode::Container(_)) && container.netns.is_some() {
            // It kept the netns of its target, which went: it keeps the files it had then.
            return Ok(());
        }
        write(self.hosts(), hosts_file(container))?;
        write(self.resolv_conf(), resolv_conf(container, networks, upstreams))
    }

    /// `hosts` and `resolv.conf` as `other`'s are now (a `container:` sharer keeps them when
    /// its target goes).
    pub fn copy_from(&self, other: &ContainerFiles) -> Result<()> {
        let io = |e| Error::os("copy container files", e);
        access::private_dir(&self.dir).map_err(io)?;
        for (from, to) in [(other.hosts(), self.hosts()), (other.resolv_conf(), self.resolv_conf())] {
            // A file gone behind the daemon's back: the sharer gets an empty one.
            let contents = std::fs::read_to_string(from).unwrap_or_default();
            access::write_container_readable(&to, &contents).map_err(io)?;
        }
        Ok(())
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Ids of the containers that have files under `run_dir`.
    pub fn ids(run_dir: &Path) -> Vec<String> {
        std::fs::read_dir(run_dir.join("containers"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Removes every container's files (`system reset`).
    pub fn remove_all(run_dir: &Path) {
        let _ = std::fs::remove_dir_all(run_dir.join("containers"));
    }
}

fn hosts_file(container: &Container) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for entry in &container.extra_hosts {
        out.push_str(&format!("{}\t{}\n", entry.ip, entry.names.join(" ")));
    }
    for ep in &container.endpoints {
        out.push_str(&format!("{}\t{}\n", ep.ip, container.hostname));
    }
    out
}

/// On a user-defined network: the embedded DNS, with `ndots:0` so that single names go to it
/// as they are. Otherwise (the default bridge, `none`): the container's `--dns` servers or the
/// daemon's upstreams, without loopback ones (unreachable from a container netns). Search
/// domains are the host's, as in Docker.
fn resolv_conf(container: &Container, networks: &BTreeMap<String, Network>, upstreams: &[IpAddr]) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let embedded = container.endpoints.iter().any(|ep| networks.get(&ep.network).is_some_and(|n| n.is_user_defined()));
    if embedded {
        out.push_str(&format!("nameserver {}\n", crate::dns::DNS_ADDRESS));
    } else {
        let servers = if container.dns.is_empty() { upstreams } else { &container.dns };
        for ns in servers.iter().filter(|ip| !ip.is_loopback()) {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    for line in host.lines().filter(|l| l.starts_with("search ") || l.starts_with("domain ")) {
        out.push_str(line);
        out.push('\n');
    }
    if embedded {
        out.push_str("options ndots:0\n");
    }
    out
}
