//! Container commands, supervised without ever trusting a bare pid.
//!
//! - Only the daemon starts them (`netd __enter …`, detached with a log, or attached to the
//!   stdio a CLI passed over the attach socket). It is created inside its container's cgroup
//!   (`cgroup.rs`, `spawn.rs`), so every process it ever starts is found there — also by a
//!   restarted daemon, also after a crash before the store knew about it.
//! - The command's main process is held by a pidfd (`pidfd.rs`): its exit is awaited through
//!   it and signals go through it. Across restarts it is re-acquired from the pid, start time
//!   and boot id the store keeps, or the container counts as exited.
//! - Ending a container is `cgroup.kill`: no signal ever goes to a pid number, a process group
//!   or a process that is not in the container's cgroup.
use std::{
    collections::{BTreeSet, HashMap},
    fs::File,
    os::{fd::OwnedFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;

use crate::{
    error::{Error, Result},
    process::EnterArgs,
};

pub(crate) mod cgroup;
mod pidfd;
mod spawn;

use cgroup::Cgroups;
use pidfd::Pidfd;
pub use pidfd::{ProcessIdentity, UNKNOWN_EXIT};

/// A container's main process ended with `code` (a shell's view: 128 + signal when killed).
#[derive(Debug)]
pub struct Exit {
    pub container: String,
    pub pid: u32,
    pub code: i32,
}

/// Where a command's stdio goes.
pub enum CommandIo {
    /// Detached: stdin from /dev/null, stdout and stderr to the container's log (0600).
    Log(PathBuf),
    /// Attached: the CLI's own stdin, stdout and stderr, passed over the attach socket.
    Attached([OwnedFd; 3]),
}

pub struct Supervisor {
    cgroups: Arc<Cgroups>,
    /// The main process of each container with a running command.
    live: Arc<Mutex<HashMap<String, Arc<Pidfd>>>>,
    exits: mpsc::UnboundedSender<Exit>,
}

impl Supervisor {
    /// `instance` tells this daemon's cgroups from other daemons' (one per state dir).
    pub fn new(run_dir: &Path, instance: &str) -> Result<(Self, mpsc::UnboundedReceiver<Exit>)> {
        let cgroups = Cgroups::open(run_dir, instance).map_err(|e| Error::os("container cgroups", e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((Self { cgroups: Arc::new(cgroups), live: Arc::default(), exits: tx }, rx))
    }

    /// Starts `args` for `container` in a fresh cgroup of its own and watches it; its exit is
    /// reported on the channel [`Supervisor::new`] returned. Must run inside the runtime.
    pub fn spawn(&self, container: &str, args: &EnterArgs, io: CommandIo) -> Result<ProcessIdentity> {
        let fail = |what: &str| {
            let what = what.to_string();
            move |e: std::io::Error| Error::os(what.clone(), e)
        };
        let stdio: [OwnedFd; 3] = match io {
            CommandIo::Log(path) => {
                let log =
                    File::options().create(true).append(true).mode(0o600).open(path).map_err(fail("create log"))?;
                // `mode` applies to new files only: a log of an older version may be 0644.
                log.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(fail("create log"))?;
                let log2 = log.try_clone().map_err(fail("create log"))?;
                let null = File::open("/dev/null").map_err(fail("open /dev/null"))?;
                [null.into(), log.into(), log2.into()]
            }
            CommandIo::Attached(fds) => fds,
        };
        let cgroup = self.cgroups.create(container).map_err(fail("create container cgroup"))?;
        match spawn::start(&args.to_args(), stdio, &cgroup, || self.cgroups.procs(container)) {
            Ok((pidfd, identity)) => {
                self.watch(container, pidfd);
                Ok(identity)
            }
            Err(e) => {
                let _ = self.cgroups.kill(container);
                Err(Error::os("start container command", e))
            }
        }
    }

    /// After a restart: watches the container's command again when `identity` still names a
    /// live process in the container's cgroup. `false`: it is gone (or cannot be proven to
    /// be the container's), and the container's command counts as exited.
    pub fn adopt(&self, container: &str, identity: &ProcessIdentity) -> bool {
        let watched = self.live.lock().unwrap_or_else(|e| e.into_inner()).get(container).map(|p| p.pid());
        if watched == Some(identity.pid) {
            return self.is_alive(container);
        }
        match Pidfd::reacquire(identity) {
            Some(pidfd) if self.cgroups.contains(container, pidfd.pid()) => {
                self.watch(container, pidfd);
                true
            }
            _ => false,
        }
    }

    fn watch(&self, container: &str, pidfd: Pidfd) {
        let pidfd = Arc::new(pidfd);
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(container.to_string(), pidfd.clone());
        let (live, exits, container) = (self.live.clone(), self.exits.clone(), container.to_string());
        tokio::spawn(async move {
            let code = pidfd.wait_exit().await;
            {
                let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
                if live.get(&container).is_some_and(|p| Arc::ptr_eq(p, &pidfd)) {
                    live.remove(&container);
                }
            }
            let _ = exits.send(Exit { container, pid: pidfd.pid(), code });
        });
    }

    /// Whether the container's command is running.
    pub fn is_alive(&self, container: &str) -> bool {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).get(container).is_some_and(|p| p.is_alive())
    }

    /// Sends `signal` to the container's main process (signal forwarding of attached runs).
    pub fn signal(&self, container: &str, signal: i32) -> Result<()> {
        let pidfd = self.live.lock().unwrap_or_else(|e| e.into_inner()).get(container).cloned();
        match pidfd {
            Some(p) => p.signal(signal).map_err(|e| Error::os("signal container command", e)),
            None => Ok(()),
        }
    }

    /// Ends every process of the container and removes its cgroup. Nothing there is success.
    pub async fn kill(&self, container: &str) -> Result<()> {
        let (cgroups, id) = (self.cgroups.clone(), container.to_string());
        tokio::task::spawn_blocking(move || cgroups.kill(&id))
            .await
            .map_err(|e| Error::os("kill container processes", e))?
            .map_err(|e| Error::os("kill container processes", e))
    }

    /// Ends the processes of every container not in `keep` (orphans of a crash, containers
    /// that stopped while the daemon was down); returns what failed.
    pub async fn sweep(&self, keep: &BTreeSet<String>) -> Vec<Error> {
        let ids = match self.cgroups.list() {
            Ok(ids) => ids,
            Err(e) => return vec![Error::os("list container cgroups", e)],
        };
        let mut errors = Vec::new();
        for id in ids.into_iter().filter(|id| !keep.contains(id)) {
            tracing::info!(container = %id, "ending processes of a container that is not running");
            if let Err(e) = self.kill(&id).await {
                errors.push(e);
            }
        }
        errors
    }

    /// `system reset`: ends every command and removes the daemon's cgroup directory.
    pub async fn remove_all(&self) -> Vec<Error> {
        let errors = self.sweep(&BTreeSet::new()).await;
        self.cgroups.remove_dir();
        errors
    }
}
