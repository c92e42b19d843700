//! The daemon-wide budget of file descriptors for the embedded DNS's per-container work:
//! every listener socket, TCP connection from a container and upstream forwarding socket holds
//! one permit for as long as it is open, so that their sum never crosses the budget, whatever
//! the containers do. Without it, one container opening ~10,000 connections to 127.0.0.11:53
//! ran the daemon out of fds, and the API and every other container's DNS stopped answering.
//! The budget is derived from RLIMIT_NOFILE at daemon start (`limits::dns_fd_budget`).
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct FdBudget(Arc<Semaphore>);

impl FdBudget {
    pub fn new(fds: u64) -> Self {
        let fds = usize::try_from(fds).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Self(Arc::new(Semaphore::new(fds)))
    }

    /// `fds` permits, returned when the result is dropped; `None` when the budget has not
    /// that many left (the caller then does without: closes, drops or fails the work).
    pub fn take(&self, fds: u32) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_many_owned(fds).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_returned_on_drop() {
        let budget = FdBudget::new(3);
        let listener = budget.take(2).expect("two fds");
        let other = budget.clone();
        let connection = other.take(1).expect("the last fd");
        assert!(budget.take(1).is_none(), "spent, through either handle");
        drop(connection);
        assert!(budget.take(1).is_some(), "returned on drop");
        drop(listener);
        assert!(budget.take(3).is_some());
    }
}
