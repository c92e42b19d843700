//! Container lifecycles: `run`, `stop`, `start`, `rm`, and what happens when a container's
//! command exits. A container is a network namespace plus an optional command; stopping it
//! releases its endpoints and netns (as Docker releases a stopped container's network) and
//! remembers the attachments that `start` makes again.
use std::{collections::BTreeMap, os::fd::OwnedFd, path::PathBuf};

use tokio::sync::MutexGuard;

use super::{
    check_endpoint_options, datapath_network, endpoint_error,
    ports::{check_mode, gateway_slot},
    Kernel, Manager, State, Undo, DEFAULT_BRIDGE,
};
use crate::{
    api_types::RunContainer,
    container_files::ContainerFiles,
    crash,
    error::{Error, Result},
    model::{new_id, now_rfc3339, Attachment, Container, Driver, Endpoint, NetMode, Network, Stopped},
    names,
    process::EnterArgs,
    store::Changes,
    supervisor::{CommandIo, Exit},
    validate,
};

/// A container with what its views need: the container whose netns and endpoints it uses
/// (itself, or the target of `container:NAME`), and the networks by id.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub container: Container,
    pub owner: Container,
    pub networks: std::collections::BTreeMap<String, Network>,
}

/// Docker's exit code for a process ended by SIGKILL.
const KILLED: i32 = 137;

impl State {
    fn info(&self, c: &Container) -> ContainerInfo {
        ContainerInfo { container: c.clone(), owner: self.owner(c).clone(), networks: self.networks.clone() }
    }

    /// Parses `--network`: the mode, and for a bridge network the network itself.
    fn network_mode(&self, arg: &str) -> Result<(NetMode, Option<Network>)> {
        if let Some(target) = arg.strip_prefix("container:") {
            let target = self.container(target)?;
            if !target.running() {
                return Err(Error::Conflict(format!("cannot join network of a non running container: {}", target.id)));
            }
            return Ok((NetMode::Container(target.id.clone()), None));
        }
        // Docker's `--network default` is the default bridge.
        let arg = if arg == "default" { DEFAULT_BRIDGE } else { arg };
        let network = self.network(arg)?;
        Ok(match network.driver {
            Driver::Host => (NetMode::Host, None),
            Driver::Null => (NetMode::None, None),
            Driver::Bridge | Driver::Overlay => (NetMode::Own, Some(network.clone())),
        })
    }

    fn unused_name(&self) -> String {
        (0..1000)
            .map(names::random)
            .find(|n| !self.containers.values().any(|c| &c.name == n))
            .unwrap_or_else(|| format!("netd_{}", &new_id()[..12]))
    }
}

impl<K: Kernel> Manager<K> {
    pub async fn containers(&self) -> Vec<ContainerInfo> {
        let state = self.lock_settled().await;
        state.containers.values().map(|c| state.info(c)).collect()
    }

    pub async fn container(&self, name: &str) -> Result<ContainerInfo> {
        let state = self.lock_settled().await;
        let c = state.container(name)?;
        Ok(state.info(c))
    }

    /// What `netd __enter` needs to run `cmd` in the container: its owner's netns and files,
    /// its hostname and environment. A container whose owner has no netns (a broken
    /// `container:` chain) is refused: its command must never run in the daemon's netns.
    fn enter_args(&self, state: &State, c: &Container, cmd: Vec<String>) -> Result<EnterArgs> {
        self.enter_args_with(state.owner(c), c, cmd)
    }

    /// [`Self::enter_args`] with `c`'s owner given (itself, or its `container:` target).
    fn enter_args_with(&self, owner: &Container, c: &Container, cmd: Vec<String>) -> Result<EnterArgs> {
        let netns = owner
            .netns
            .clone()
            .ok_or_else(|| Error::Conflict(format!("container {} has no network namespace to run in", c.name)))?;
        let files = ContainerFiles::new(&self.run_dir, &owner.id);
        Ok(EnterArgs {
            netns,
            hosts: Some(files.hosts().to_string_lossy().into_owned()),
            resolv: Some(files.resolv_conf().to_string_lossy().into_owned()),
            hostname: Some(c.hostname.clone()),
            env: c.env.clone(),
            cmd,
        })
    }

    pub async fn run(&self, req: RunContainer) -> Result<ContainerInfo> {
        validate::run_container(&req)?;
        // Runs reserve what they take and make it in the kernel without the lock, side by side
        // (`bring_up`); one that joins another container's netns needs it settled.
        let joins = req.network.as_deref().is_some_and(|n| n.starts_with("container:"));
        let state = if joins { self.lock_settled().await } else { self.state.lock().await };
        let name = match req.name.clone() {
            Some(name) => {
                if let Some(c) = state.containers.values().find(|c| c.name == name) {
                    return Err(Error::ContainerExists { name, id: c.id.clone() });
                }
                name
            }
            None => state.unused_name(),
        };
        let network_arg = req.network.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into());
        let (mode, network) = state.network_mode(&network_arg)?;
        match &network {
            Some(network) => check_endpoint_options(network, req.ip, &req.aliases)?,
            None if req.ip.is_some() => return Err(Error::IpNeedsUserNetwork),
            None if !req.aliases.is_empty() => return Err(Error::AliasNeedsUserNetwork),
            None => {}
        }
        if req.hostname.is_some() && matches!(mode, NetMode::Host | NetMode::Container(_)) {
            return Err(Error::HostnameConflict);
        }
        if !req.dns.is_empty() && matches!(mode, NetMode::Container(_)) {
            return Err(Error::DnsConflict);
        }
        check_mode(&mode, &req.ports)?;
        let network_mode = match &mode {
            NetMode::Container(target) => format!("container:{target}"),
            _ => req.network.clone().unwrap_or_else(|| "default".into()),
        };
        let links = state.shown_links(&req.links, network.as_ref(), &name);
        let mut extra_hosts = state.link_entries(&req.links, network.as_ref())?;
        extra_hosts.extend(state.add_host_entries(&req.add_hosts)?);
        let id = new_id();
        let hostname = match &mode {
            NetMode::Host => host_hostname()?,
            NetMode::Container(target) => state.containers[target].hostname.clone(),
            NetMode::Own | NetMode::None => req.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        };
        let sandbox_endpoint = if matches!(mode, NetMode::Host | NetMode::None) { new_id() } else { String::new() };
        let now = now_rfc3339();
        let mut container = Container {
            id,
            name,
            mode,
            hostname,
            endpoints: vec![],
            netns: None,
            cmd: req.cmd.clone(),
            process: None,
            created: now.clone(),
            image: req.image.clone(),
            env: req.env.clone(),
            auto_remove: req.auto_remove,
            started: now,
            stopped: None,
            sandbox_endpoint,
            extra_hosts,
            dns: req.dns.clone(),
            ports: req.ports.clone(),
            published: vec![],
            network_mode,
            links,
            add_hosts: req.add_hosts.clone(),
            attached: req.attach,
            labels: req.labels.clone(),
            tty: req.tty,
            open_stdin: req.open_stdin,
        };
        let attachments: Vec<Attachment> = network
            .iter()
            .map(|n| Attachment { network: n.id.clone(), ip: req.ip, aliases: req.aliases.clone() })
            .collect();
        let unlocked = matches!(container.mode, NetMode::Own | NetMode::None);
        let mut state = self.bring_up(state, &mut container, &attachments, !req.attach, unlocked).await?;
        if req.attach && !container.cmd.is_empty() {
            state.awaiting_attach.insert(container.id.clone());
        }
        Ok(state.info(&container))
    }

    /// Creates the container's netns and endpoints, publishes its ports, writes its files,
    /// starts its command (unless the CLI runs it attached) and commits; undoes everything on
    /// failure. What it takes from the state — host ports, addresses, the name — is chosen and
    /// checked first, before anything changes. `unlocked` (a new container with a netns of its
    /// own): that is reserved in the state (`State::pending`) and the kernel work runs without
    /// the lock, so that runs overlap; the commit takes it again.
    async fn bring_up<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        container: &mut Container,
        attachments: &[Attachment],
        spawn: bool,
        unlocked: bool,
    ) -> Result<MutexGuard<'a, State>> {
        // The gateway endpoint: the default route, and the published ports (its id known now
        // for the error texts).
        let gateway = gateway_slot(attachments, &state.networks);
        let backend = gateway.filter(|_| container.mode == NetMode::Own && !container.ports.is_empty());
        let backend_id = new_id();
        state.check_endpoint_capacity(attachments.len())?;
        let host_ports = match backend {
            Some(_) => self.resolve_ports(&mut state, container, &backend_id)?,
            None => vec![],
        };
        state.check_published_capacity(&container.id, host_ports.len())?;
        // The addresses (for overlay networks, taken in the cluster store: given back if the
        // run fails).
        let mut endpoints = Vec::with_capacity(attachments.len());
        let mut reserved = Vec::new();
        for (slot, attachment) in attachments.iter().enumerate() {
            let id = if backend == Some(slot) { backend_id.clone() } else { new_id() };
            let allocated = match state.networks.get(&attachment.network).cloned() {
                Some(network) => self
                    .new_endpoint(&state, &network, attachment.ip, &attachment.aliases, slot, id)
                    .await
                    .map(|ep| (ep, network)),
                None => Err(Error::NetworkNotFound(attachment.network.clone())),
            };
            match allocated {
                Ok((ep, network)) => {
                    if network.driver == Driver::Overlay {
                        reserved.push(ep.clone());
                    }
                    endpoints.push((ep, network));
                }
                Err(e) => {
                    self.release_overlay(&reserved).await;
                    return Err(e);
                }
            }
        }
        let published: Vec<_> = match backend {
            Some(slot) => host_ports.iter().map(|h| h.published(endpoints[slot].0.ip)).collect(),
            None => vec![],
        };
        let networks = state.networks.clone();
        // A `container:` sharer's command runs in its owner's netns.
        let owner = matches!(container.mode, NetMode::Container(_)).then(|| state.owner(container).clone());
        let mut guard = Some(state);
        if unlocked {
            let mut state = guard.take().expect("locked");
            let mut reservation = container.clone();
            reservation.endpoints = endpoints.iter().map(|(ep, _)| ep.clone()).collect();
            reservation.published = published.clone();
            state.pending.insert(container.id.clone());
            state.containers.insert(container.id.clone(), reservation);
            self.kernel.set_runs_in_flight(state.pending.len());
        }
        let mut undo = Undo::default();
        // A start finds the files of the container's earlier runs (its log above all): they
        // stay whatever happens; only a first run's files go with a failure.
        let files = ContainerFiles::new(&self.run_dir, &container.id);
        let first_files = !files.exists();
        let applied: Result<()> = async {
            container.netns = match &container.mode {
                NetMode::Host => Some(self.kernel.host_netns()?.to_string_lossy().into_owned()),
                NetMode::Container(_) => None,
                NetMode::Own | NetMode::None => {
                    let path = self.kernel.create_netns(&container.name).await?;
                    undo.netns = Some(path.clone());
                    crash::point("run:netns");
                    Some(path.to_string_lossy().into_owned())
                }
            };
            for (slot, (ep, network)) in endpoints.iter().enumerate() {
                let netns = PathBuf::from(container.netns.as_ref().expect("own netns"));
                let default_route = gateway == Some(slot);
                self.kernel
                    .add_endpoint(&netns, ep, network.into(), default_route)
                    .await
                    .map_err(|e| endpoint_error(e, &container.name, &network.name))?;
                undo.endpoints.push((ep.clone(), network.into()));
                container.endpoints.push(ep.clone());
                crash::point("run:endpoint");
            }
            if container.mode == NetMode::Own && endpoints.iter().any(|(_, n)| n.is_user_defined()) {
                // Its DNS listener's sockets, bound before its command starts (a lookup it
                // makes at once waits in them instead of being refused) and outside the lock.
                let netns = PathBuf::from(container.netns.as_ref().expect("own netns"));
                self.dns.prepare(&container.id, &netns);
            }
            if !published.is_empty() {
                let entries: Vec<_> = published.iter().map(|p| p.datapath()).collect();
                // One call, all or nothing.
                self.kernel.publish(&entries)?;
                undo.published = entries;
                container.published = published.clone();
                crash::point("run:publish");
            }
            files.write(container, &networks, self.dns.upstreams())?;
            if first_files {
                undo.files = Some(files.clone());
            }
            crash::point("run:files");
            if spawn && !container.cmd.is_empty() {
                let args =
                    self.enter_args_with(owner.as_ref().unwrap_or(container), container, container.cmd.clone())?;
                undo.process = Some(container.id.clone());
                container.process = Some(self.kernel.spawn(&container.id, &args, CommandIo::Log(files.log()))?);
                crash::point("run:spawn");
            }
            Ok(())
        }
        .await;
        let changes = || Changes { put_containers: vec![container.clone()], ..Default::default() };
        // A run with a reservation commits before it takes the lock again: a commit can wait
        // for the flush's fsync (`Store::commit_off_runtime`), and every other run's commit
        // would wait behind the lock meanwhile. Nothing else writes its record: commands that
        // touch a pending container wait until it settles.
        let committed = match applied {
            Ok(()) if unlocked => self.store.commit_off_runtime(changes()).await,
            applied => applied,
        };
        let mut state = match guard {
            Some(state) => state,
            None => self.state.lock().await,
        };
        let committed = if unlocked { committed } else { committed.and_then(|()| self.store.commit(changes())) };
        if unlocked {
            state.pending.remove(&container.id);
            state.containers.remove(&container.id);
            self.kernel.set_runs_in_flight(state.pending.len());
        }
        if let Err(e) = committed {
            self.dns.forget_prepared(&container.id);
            undo.run(&self.kernel).await;
            self.release_overlay(&reserved).await;
            container.endpoints.clear();
            container.published.clear();
            container.netns = None;
            container.process = None;
            if !first_files {
                // Back to what the stopped container's files said.
                let _ = files.write(container, &state.networks, self.dns.upstreams());
            }
            self.settled.notify_waiters();
            return Err(e);
        }
        state.containers.insert(container.id.clone(), container.clone());
        self.sync_dns(&state);
        self.announce_overlay(&state, container).await;
        self.settled.notify_waiters();
        Ok(state)
    }

    /// Starts the command of a container made by an attached `run`, with the CLI's stdio
    /// (`stdio`: stdin, stdout, stderr, received over the attach socket). The receiver gets
    /// the command's exit code once the container has stopped (or with `--rm` is gone).
    pub async fn start_attached(
        &self,
        name: &str,
        stdio: [OwnedFd; 3],
    ) -> Result<(String, tokio::sync::oneshot::Receiver<i32>)> {
        let mut state = self.lock_settled().await;
        let mut c = state.container(name)?.clone();
        if !c.running() || !state.awaiting_attach.contains(&c.id) {
            return Err(Error::Conflict(format!("container {} is not waiting for an attached command", c.name)));
        }
        let args = self.enter_args(&state, &c, c.cmd.clone())?;
        let process = self.kernel.spawn(&c.id, &args, CommandIo::Attached(stdio))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.exit_waiters.lock().unwrap_or_else(|e| e.into_inner()).insert((c.id.clone(), process.pid), tx);
        c.process = Some(process);
        crash::point("attach:spawn");
        if let Err(e) = self.store.commit(Changes { put_containers: vec![c.clone()], ..Default::default() }) {
            let _ = self.kernel.kill(&c.id).await;
            return Err(e);
        }
        state.awaiting_attach.remove(&c.id);
        let id = c.id.clone();
        state.containers.insert(c.id.clone(), c);
        Ok((id, rx))
    }

    /// Forwards a signal the attached CLI received (Ctrl-C, …) to the container's command.
    pub fn signal_command(&self, container_id: &str, signal: i32) -> Result<()> {
        const FORWARDED: [i32; 5] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGWINCH];
        if !FORWARDED.contains(&signal) {
            return Err(Error::InvalidArgument(format!("signal {signal} is not forwarded")));
        }
        self.kernel.signal(container_id, signal)
    }

    /// `netd stop`: ends the command and releases the network (endpoints, addresses, netns);
    /// the attachments are kept for `start`. Stopping a stopped container changes nothing.
    /// `exit_code` is the command's own, when it ended by itself.
    pub async fn stop(&self, name: &str, exit_code: Option<i32>) -> Result<ContainerInfo> {
        let mut state = self.lock_settled().await;
        let c = state.container(name)?.clone();
        self.stop_locked(&mut state, &c, exit_code).await?;
        let c = &state.containers[&c.id];
        Ok(state.info(c))
    }

    async fn stop_locked(&self, state: &mut State, c: &Container, exit_code: Option<i32>) -> Result<()> {
        if !c.running() {
            return Ok(());
        }
        let was_alive = self.kernel.is_alive(&c.id);
        let mut stopped = c.clone();
        stopped.endpoints.clear();
        stopped.published.clear();
        stopped.process = None;
        stopped.netns = None;
        stopped.stopped = Some(Stopped {
            at: now_rfc3339(),
            exit_code: exit_code.unwrap_or(if was_alive { KILLED } else { 0 }),
            attachments: c.attachments(),
        });
        let keepers = self.keep_netns_for_sharers(state, c)?;
        let netns_goes = keepers.is_empty();
        let changes = Changes { put_containers: vec![stopped.clone()], ..Default::default() };
        self.commit_keeping(state, changes, keepers)?;
        state.containers.insert(stopped.id.clone(), stopped.clone());
        state.awaiting_attach.remove(&c.id);
        crash::point("stop:commit");
        let errors = self.teardown(&state.networks, c, netns_goes).await;
        // The files stay: `inspect` shows their paths and the log is kept, as in Docker.
        let files = ContainerFiles::new(&self.run_dir, &c.id).write(&stopped, &state.networks, self.dns.upstreams());
        self.sync_dns(state);
        if !errors.is_empty() {
            self.cleanup_after(state, errors).await;
        }
        files
    }

    /// `netd start`: makes the netns and the attachments again (addresses are allocated
    /// afresh, except those asked for with `--ip`) and starts the command detached.
    pub async fn start_container(&self, name: &str) -> Result<ContainerInfo> {
        let state = self.lock_settled().await;
        let c = state.container(name)?.clone();
        let Some(stopped) = c.stopped.clone() else {
            return Ok(state.info(&c));
        };
        if let NetMode::Container(target) = &c.mode {
            match state.containers.get(target) {
                Some(t) if t.running() => {}
                Some(t) => {
                    return Err(Error::Conflict(format!("cannot join network of a non running container: {}", t.id)))
                }
                None => return Err(Error::ContainerNotFound(target.clone())),
            }
        }
        let mut container = c.clone();
        container.stopped = None;
        container.started = now_rfc3339();
        // On failure the stored container stays as it was: stopped.
        let state = self.bring_up(state, &mut container, &stopped.attachments, true, false).await?;
        Ok(state.info(&container))
    }

    pub async fn remove_container(&self, name: &str, force: bool) -> Result<Container> {
        let mut state = self.lock_settled().await;
        let container = state.container(name)?.clone();
        self.remove_locked(&mut state, &container, force).await?;
        Ok(container)
    }

    async fn remove_locked(&self, state: &mut State, container: &Container, force: bool) -> Result<()> {
        if container.running() && self.kernel.is_alive(&container.id) && !force {
            return Err(Error::Conflict(format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                container.id
            )));
        }
        let keepers = if container.running() { self.keep_netns_for_sharers(state, container)? } else { vec![] };
        let netns_goes = keepers.is_empty();
        let changes = Changes { del_containers: vec![container.id.clone()], ..Default::default() };
        self.commit_keeping(state, changes, keepers)?;
        state.containers.remove(&container.id);
        state.awaiting_attach.remove(&container.id);
        crash::point("rm:commit");
        let errors = self.teardown(&state.networks, container, netns_goes).await;
        ContainerFiles::new(&self.run_dir, &container.id).remove();
        self.sync_dns(state);
        if !errors.is_empty() {
            self.cleanup_after(state, errors).await;
        }
        Ok(())
    }

    /// Before `owner` stops or goes: its running `container:` sharers keep its netns, as in
    /// Docker, where their processes hold it — each gets its own mount of it and a copy of
    /// the owner's hosts and resolv.conf (what they see at that moment; Docker's stay
    /// mounted). Once the owner's teardown has removed its endpoints, only `lo` is left in
    /// there. Returns the sharers to commit with the owner's change; on failure what was made
    /// is undone.
    fn keep_netns_for_sharers(&self, state: &State, owner: &Container) -> Result<Vec<Container>> {
        let Some(from) = owner.netns.as_deref().filter(|_| owner.mode != NetMode::Host) else {
            return Ok(vec![]);
        };
        if !self.kernel.netns_alive(std::path::Path::new(from)) {
            // Gone (a reboot): nothing to keep; recovery finds its sharers exited too.
            return Ok(vec![]);
        }
        let mut keepers: Vec<Container> = Vec::new();
        let from_files = ContainerFiles::new(&self.run_dir, &owner.id);
        // A sharer that kept an earlier netns of the owner (the owner stopped and started again)
        // is not in this one.
        for sharer in state.sharers(&owner.id).into_iter().filter(|s| s.running() && s.netns.is_none()) {
            let kept = self.kernel.keep_netns(std::path::Path::new(from), &sharer.name).and_then(|path| {
                let mut k = sharer.clone();
                k.netns = Some(path.to_string_lossy().into_owned());
                keepers.push(k);
                ContainerFiles::new(&self.run_dir, &sharer.id).copy_from(&from_files)
            });
            if let Err(e) = kept {
                self.unkeep(&keepers);
                return Err(e);
            }
        }
        Ok(keepers)
    }

    /// Commits `changes` (an owner stopping or going) together with the sharers that keep its
    /// netns, and takes those into the state; if the commit fails, undoes the keeping.
    fn commit_keeping(&self, state: &mut State, mut changes: Changes, keepers: Vec<Container>) -> Result<()> {
        changes.put_containers.extend(keepers.iter().cloned());
        if let Err(e) = self.store.commit(changes) {
            self.unkeep(&keepers);
            return Err(e);
        }
        for k in keepers {
            state.containers.insert(k.id.clone(), k);
        }
        Ok(())
    }

    /// Undoes `keep_netns_for_sharers` (its change was not committed).
    fn unkeep(&self, keepers: &[Container]) {
        for k in keepers {
            if let Some(netns) = &k.netns {
                let _ = self.kernel.remove_netns(std::path::Path::new(netns));
            }
        }
    }

    /// Unpublishes the container's ports, ends its processes, removes its endpoints and the
    /// netns of its own. Keeps going after an error and returns every one. Files are left to
    /// the caller. `netns_goes`: no sharer keeps the netns, so its veths may go in the
    /// background (unreachable at once); otherwise they go now, as the sharers see them.
    pub(super) async fn teardown(
        &self,
        networks: &BTreeMap<String, Network>,
        container: &Container,
        netns_goes: bool,
    ) -> Vec<Error> {
        let mut errors = Vec::new();
        if !container.published.is_empty() {
            let entries: Vec<_> = container.published.iter().map(|p| p.datapath()).collect();
            errors.extend(self.kernel.unpublish(&entries).err());
            crash::point("teardown:unpublish");
        }
        errors.extend(self.kernel.kill(&container.id).await.err());
        crash::point("teardown:processes");
        for ep in &container.endpoints {
            let network = datapath_network(networks, &ep.network);
            let removed = match netns_goes {
                true => self.kernel.release_endpoint(ep, network).await,
                false => self.kernel.remove_endpoint(ep, network).await,
            };
            errors.extend(removed.err());
            crash::point("teardown:endpoint");
        }
        let overlay: Vec<Endpoint> = container
            .endpoints
            .iter()
            .filter(|ep| networks.get(&ep.network).is_some_and(|n| n.driver == Driver::Overlay))
            .cloned()
            .collect();
        self.release_overlay(&overlay).await;
        // Its own, or (a `container:` sharer) the one it kept when its target went.
        if container.mode != NetMode::Host {
            if let Some(netns) = &container.netns {
                errors.extend(self.kernel.remove_netns(std::path::Path::new(netns)).err());
            }
        }
        errors
    }

    /// A container's command (started by the daemon) exited: with `--rm` the container goes,
    /// otherwise it stops, like Docker's; then an attached CLI gets the exit code. Exits of
    /// processes the container no longer records (it was stopped or removed) change nothing.
    pub async fn process_exited(&self, exit: Exit) {
        let mut state = self.lock_settled().await;
        let current = state
            .containers
            .get(&exit.container)
            .filter(|c| c.running() && c.process.as_ref().is_some_and(|p| p.pid == exit.pid));
        if let Some(c) = current.cloned() {
            if let Err(e) = self.exited_locked(&mut state, &c, exit.code).await {
                tracing::warn!(container = %c.name, "after its command exited: {e}");
            }
        }
        let waiter = self.exit_waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&(exit.container, exit.pid));
        if let Some(waiter) = waiter {
            let _ = waiter.send(exit.code);
        }
    }

    /// `c`'s command ended with `code` (also found at a restart): `--rm` removes it, else it
    /// stops (its running sharers keep its netns, without its endpoints, as in Docker).
    pub(super) async fn exited_locked(&self, state: &mut State, c: &Container, code: i32) -> Result<()> {
        if c.auto_remove {
            self.remove_locked(state, c, true).await
        } else {
            self.stop_locked(state, c, Some(code)).await
        }
    }
}

/// The daemon's hostname, which `--network host` containers share (as in Docker).
fn host_hostname() -> Result<String> {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).map_err(|e| Error::os("gethostname", e))
}
