//! Extra /etc/hosts lines of `run`: `--link NAME[:ALIAS]` (Docker's legacy links) and
//! `--add-host HOST:IP|HOST:host-gateway`. Resolved once, when the container is created.
use std::net::Ipv4Addr;

use super::{State, DEFAULT_BRIDGE};
use crate::{
    error::{Error, Result},
    model::{HostEntry, Network},
};

impl State {
    /// One line per link: the target's address on `network`, then `ALIAS ID12 NAME` (without
    /// repeats), as Docker writes them.
    pub(super) fn link_entries(&self, links: &[String], network: Option<&Network>) -> Result<Vec<HostEntry>> {
        links
            .iter()
            .map(|spec| {
                let (name, alias) = spec.split_once(':').unwrap_or((spec, spec));
                let target = self.container(name).map_err(|_| Error::LinkTargetNotFound(name.into()))?;
                let not_on_network = || match network {
                    Some(n) if n.name != DEFAULT_BRIDGE => {
                        Error::LinkTargetNotOnNetwork { name: target.name.clone(), network: n.name.clone() }
                    }
                    _ => Error::LinkTargetNotOnDefaultNetwork(target.name.clone()),
                };
                let network = network.ok_or_else(not_on_network)?;
                let ep = self
                    .owner(target)
                    .endpoints
                    .iter()
                    .find(|ep| ep.network == network.id)
                    .ok_or_else(not_on_network)?;
                let mut names: Vec<String> = Vec::new();
                for n in [alias, &target.id[..12], &target.name] {
                    if !names.iter().any(|m| m == n) {
                        names.push(n.to_string());
                    }
                }
                Ok(HostEntry { ip: ep.ip, names })
            })
            .collect()
    }

    /// `--link`s as Docker's inspect shows them (`links` already checked by
    /// [`Self::link_entries`]): `/TARGET:/NAME/ALIAS` on the default bridge, as given on a
    /// user-defined network.
    pub(super) fn shown_links(&self, links: &[String], network: Option<&Network>, name: &str) -> Vec<String> {
        if network.is_some_and(|n| n.name != DEFAULT_BRIDGE) {
            return links.to_vec();
        }
        links
            .iter()
            .map(|spec| {
                let (target, alias) = spec.split_once(':').unwrap_or((spec, spec));
                let target = self.container(target).map_or(target, |c| c.name.as_str());
                format!("/{target}:/{name}/{alias}")
            })
            .collect()
    }

    /// `HOST:IP` lines; `host-gateway` is the default bridge's gateway, as in Docker.
    pub(super) fn add_host_entries(&self, specs: &[String]) -> Result<Vec<HostEntry>> {
        specs
            .iter()
            .map(|spec| {
                let (host, addr) = spec
                    .split_once(':')
                    .filter(|(h, a)| !h.is_empty() && !a.is_empty())
                    .ok_or_else(|| Error::AddHostFormat(spec.clone()))?;
                let ip = if addr == "host-gateway" {
                    self.default_bridge_gateway().ok_or_else(|| Error::AddHostAddress(addr.into()))?
                } else {
                    addr.parse().map_err(|_| Error::AddHostAddress(addr.into()))?
                };
                Ok(HostEntry { ip, names: vec![host.to_string()] })
            })
            .collect()
    }

    fn default_bridge_gateway(&self) -> Option<Ipv4Addr> {
        self.networks.values().find(|n| n.name == DEFAULT_BRIDGE)?.ipam.as_ref().map(|i| i.gateway)
    }
}
