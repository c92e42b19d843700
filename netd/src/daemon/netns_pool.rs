//! Network namespaces made before a command asks for one. Making a netns (`unshare`, the IPv6
//! sysctls, the bind mount, `lo` up) is ≈1 ms of a `run` and is the same for every container:
//! a background thread keeps [`READY`] of them mounted under `<run dir>/netns-ready/`, and
//! `run`/`start` mount one at the container's path (one bind mount) instead. The ready mount is
//! then removed in the background too.
//!
//! Nothing else refers to a ready netns: a crash leaves only mounts in `netns-ready/`, which the
//! next start removes (`sweep.rs`) before the pool fills again; a stopping daemon removes them
//! itself ([`NetnsPool::stop`]).
use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
};

use crate::{error::Result, netns};

/// How many namespaces are kept ready: enough for a burst of two before the thread catches
/// up, few enough to cost nothing (an idle netns with `lo`).
const READY: usize = 2;

pub struct NetnsPool {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    ready: VecDeque<PathBuf>,
    /// Ready mounts already mounted at a container's path, to remove.
    spent: Vec<PathBuf>,
    /// Name of the next one.
    next: u64,
    started: bool,
    stopping: bool,
    /// The last one could not be made: no more tries until the next take.
    failing: bool,
    /// The thread is making or removing one.
    busy: bool,
}

impl NetnsPool {
    pub fn new(dir: PathBuf) -> Self {
        let shared = Shared { dir, state: Mutex::default(), changed: Condvar::new() };
        Self { shared: Arc::new(shared), thread: Mutex::new(None) }
    }

    /// Where the ready namespaces are mounted.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Starts keeping namespaces ready (after the start-up sweep removed a previous daemon's).
    pub fn start(&self) {
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if thread.is_some() {
            return;
        }
        self.shared.lock().started = true;
        let shared = self.shared.clone();
        match std::thread::Builder::new().name("netns-pool".into()).spawn(move || shared.fill()) {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::warn!(error = %e, "no netns made ahead: cannot start its thread"),
        }
    }

    /// Mounts a ready netns at `target` (which must not exist). `None`: none is ready; the
    /// caller makes one itself.
    pub fn take_into(&self, target: &Path) -> Option<Result<()>> {
        let ready = {
            let mut state = self.shared.lock();
            state.failing = false;
            let ready = state.ready.pop_front();
            self.shared.changed.notify_all();
            ready?
        };
        let mounted = netns::bind_existing(&ready, target);
        self.shared.lock().spent.push(ready);
        self.shared.changed.notify_all();
        Some(mounted)
    }

    /// Namespaces being made or removed: 0 once the pool is full and idle (or not started).
    pub fn pending(&self) -> usize {
        let state = self.shared.lock();
        let missing = if state.started && !state.stopping && !state.failing { READY - state.ready.len() } else { 0 };
        missing.max(usize::from(state.busy)) + state.spent.len()
    }

    /// Stops making namespaces and removes the ready ones (the daemon is stopping).
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        let leftovers: Vec<PathBuf> = {
            let mut state = self.shared.lock();
            let state = &mut *state;
            state.ready.drain(..).chain(state.spent.drain(..)).collect()
        };
        for path in leftovers {
            if let Err(e) = netns::remove(&path) {
                tracing::warn!(netns = %path.display(), error = %e, "cannot remove a ready netns");
            }
        }
    }
}

enum Job {
    Make(PathBuf),
    Remove(PathBuf),
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thread: removes spent mounts first, then tops the pool up; sleeps when neither.
    fn fill(&self) {
        loop {
            let job = {
                let mut state = self.lock();
                let job = loop {
                    if state.stopping {
                        return;
                    }
                    if let Some(path) = state.spent.pop() {
                        break Job::Remove(path);
                    }
                    if !state.failing && state.ready.len() < READY {
                        let path = self.dir.join(state.next.to_string());
                        state.next += 1;
                        break Job::Make(path);
                    }
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                };
                // In the same critical section: `pending` never sees the job nowhere.
                state.busy = true;
                job
            };
            let done = match &job {
                Job::Remove(path) => netns::remove(path),
                Job::Make(path) => netns::create_with_lo_up(path),
            };
            let mut state = self.lock();
            state.busy = false;
            match (job, done) {
                (Job::Make(path), Ok(())) => state.ready.push_back(path),
                (Job::Make(path), Err(e)) => {
                    tracing::warn!(netns = %path.display(), error = %e, "cannot make a netns ahead");
                    state.failing = true;
                }
                (Job::Remove(path), Err(e)) => {
                    tracing::warn!(netns = %path.display(), error = %e, "cannot remove a ready netns mount");
                }
                (Job::Remove(_), Ok(())) => {}
            }
            self.changed.notify_all();
        }
    }
}
