//! Per-container files the daemon writes and `netd exec` mounts over /etc: hosts, resolv.conf,
//! hostname.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{
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

    pub fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    pub fn write(&self, container: &Container, _networks: &BTreeMap<String, Network>) -> Result<()> {
        let io = |e| Error::system("write container files", e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        if container.mode == NetMode::Host {
            // The host's own files, as Docker gives `--network host` containers.
            let host_file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
            std::fs::write(self.hosts(), host_file("/etc/hosts")).map_err(io)?;
            std::fs::write(self.resolv_conf(), host_file("/etc/resolv.conf")).map_err(io)?;
            return Ok(());
        }
        std::fs::write(self.hosts(), hosts_file(container)).map_err(io)?;
        std::fs::write(self.resolv_conf(), resolv_conf(&host_nameservers())).map_err(io)?;
        Ok(())
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// The host's upstream resolvers; loopback ones are unreachable from a container.
fn host_nameservers() -> Vec<String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|ip| !ip.starts_with("127.") && ip != "::1")
        .collect()
}

fn resolv_conf(nameservers: &[String]) -> String {
    nameservers.iter().map(|ns| format!("nameserver {ns}\n")).collect()
}
