//! Network namespaces made before a command asks for one. Making a netns (`unshare`, the IPv6
//! sysctls, the bind mount, `lo` up) is ≈1 ms of a `run` and ≈0.5 ms of CPU, the same for every
//! container: a background thread keeps some of them (`--netns-ahead`) mounted under
//! `<run dir>/netns-ready/`, and `run`/`start` mount one at the container's path (one bind
//! mount) instead. The ready mount is then removed in the background too.
//!
//! The thread works only while at most one `run` is in flight. One after another, it works on
//! a CPU the run leaves idle; during a burst of runs it would take CPU from them, so it waits
//! and the burst uses the stock (what the stock does not cover, each run makes itself).
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

/// The default of `--netns-ahead`: a burst of 32 runs (the parallel clients of the bench) finds
/// one each. An idle netns with `lo` up holds ≈160 KiB of kernel memory (5 MiB for 32).
pub const DEFAULT_READY: u16 = 32;

pub struct NetnsPool {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    /// How many are kept ready.
    ready: usize,
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
    /// `run`s between their reservation and their commit: above one, the thread waits.
    runs_in_flight: usize,
}

impl NetnsPool {
    pub fn new(dir: PathBuf, ready: usize) -> Self {
        let shared = Shared { dir, ready, state: Mutex::default(), changed: Condvar::new() };
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

    /// How many `run`s are in flight now (the manager's count, kept up to date).
    pub fn set_runs_in_flight(&self, runs: usize) {
        let mut state = self.shared.lock();
        let resumes = state.runs_in_flight > 1 && runs <= 1;
        state.runs_in_flight = runs;
        if resumes {
            self.shared.changed.notify_all();
        }
    }

    /// Namespaces being made or removed: 0 once the pool is full and idle (or not started).
    pub fn pending(&self) -> usize {
        let state = self.shared.lock();
        let missing =
            if state.started && !state.stopping && !state.failing { self.shared.ready - state.ready.len() } else { 0 };
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

#[derive(Debug, PartialEq)]
enum Job {
    Make(PathBuf),
    Remove(PathBuf),
}

impl State {
    /// What the thread does next: nothing during a burst of runs (they have the CPUs), else
    /// spent mounts first, then one more namespace while fewer than `ready` are.
    fn next_job(&mut self, dir: &Path, ready: usize) -> Option<Job> {
        if self.runs_in_flight > 1 {
            return None;
        }
        if let Some(path) = self.spent.pop() {
            return Some(Job::Remove(path));
        }
        if self.failing || self.ready.len() >= ready {
            return None;
        }
        let path = dir.join(self.next.to_string());
        self.next += 1;
        Some(Job::Make(path))
    }
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
                    if let Some(job) = state.next_job(&self.dir, self.ready) {
                        break job;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_made_or_removed_while_runs_come_together() {
        let dir = Path::new("/run/netd/netns-ready");
        let mut state = State { runs_in_flight: 2, ..Default::default() };
        state.spent.push(dir.join("0"));
        assert_eq!(state.next_job(dir, 32), None);
        state.runs_in_flight = 1;
        assert_eq!(state.next_job(dir, 32), Some(Job::Remove(dir.join("0"))));
        assert_eq!(state.next_job(dir, 32), Some(Job::Make(dir.join("0"))));
        assert_eq!(state.next_job(dir, 32), Some(Job::Make(dir.join("1"))));
    }

    #[test]
    fn the_stock_stops_at_its_size_and_after_a_failure() {
        let dir = Path::new("/run/netd/netns-ready");
        let mut state = State::default();
        state.ready.extend([dir.join("a"), dir.join("b")]);
        assert_eq!(state.next_job(dir, 2), None);
        assert_eq!(state.next_job(dir, 3), Some(Job::Make(dir.join("0"))));
        state.failing = true;
        assert_eq!(state.next_job(dir, 3), None);
        assert_eq!(state.next_job(dir, 0), None);
    }
}
