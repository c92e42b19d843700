//! Removes, in the background, the veth pairs of endpoints that nothing uses any more: those
//! of a container that stops or goes, or that a `disconnect` took out. Deleting a veth waits
//! for RCU callbacks (tens of milliseconds, docs/control-plane-latency.md); no one needs to
//! wait for it, because `stop`/`rm`/`disconnect` first make the endpoint unreachable and its
//! address reusable (map entries, flows and the /32 route go at once; the netns mount goes, or
//! the container side is renamed out of the way) and the host-side name is unique to the
//! endpoint. The endpoint's program filter goes with its veth.
//!
//! Normally the kernel removes the veth itself when the netns ends (the peer's namespace goes,
//! and the pair with it).
//!
//! A crash with doomed veths still queued leaves links the store does not know: the
//! next start's sweep removes them, as any leftover. `settled` waits until the queue is empty
//! (`system reset`, and tests that compare the host before and after).
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::netlink::Netlink;

/// How long a released endpoint's veth may take to go with its netns before the reaper
/// deletes it itself (something else holds the netns: a `container:` sharer's process, a
/// shell an operator entered it with). Checked with a growing interval from 2 ms.
const NATURAL_END: Duration = Duration::from_secs(2);
const FIRST_CHECK: Duration = Duration::from_millis(2);

/// The background remover; cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    host: Netlink,
    /// Veths queued or being removed.
    pending: Arc<watch::Sender<usize>>,
}

impl Reaper {
    pub fn new(host: Netlink) -> Self {
        Self { host, pending: Arc::new(watch::Sender::new(0)) }
    }

    /// Removes the veth whose host end is `host_ifname` in the background: normally the kernel
    /// does, when the netns of its peer ends (one batch for many, no rtnl-held wait per
    /// device); after [`NATURAL_END`] the reaper deletes it. Needs a tokio runtime.
    pub fn reap(&self, host_ifname: String) {
        let reaper = self.clone();
        self.track(async move { reaper.remove(&host_ifname).await });
    }

    /// Deletes the veth whose host end is `host_ifname` in the background, without waiting for
    /// its netns to end (a disconnect: the netns stays).
    pub fn delete(&self, host_ifname: String) {
        let reaper = self.clone();
        self.track(async move { reaper.delete_now(&host_ifname).await });
    }

    /// Runs `removal` as a task counted in [`Self::pending`] until it ends.
    fn track(&self, removal: impl std::future::Future<Output = ()> + Send + 'static) {
        self.pending.send_modify(|n| *n += 1);
        let pending = self.pending.clone();
        tokio::spawn(async move {
            removal.await;
            pending.send_modify(|n| *n = n.saturating_sub(1));
        });
    }

    async fn delete_now(&self, host_ifname: &str) {
        if let Err(e) = self.host.delete_link(host_ifname).await {
            tracing::warn!(veth = %host_ifname, error = %e, "cannot remove the veth of a removed endpoint");
        }
    }

    /// Waits for the veth to go with its netns, and deletes it after [`NATURAL_END`].
    async fn remove(&self, host_ifname: &str) {
        let deadline = Instant::now() + NATURAL_END;
        let mut interval = FIRST_CHECK;
        loop {
            tokio::time::sleep(interval).await;
            match self.host.link_index(host_ifname).await {
                Ok(None) => return,
                Ok(Some(_)) if Instant::now() < deadline => interval = (interval * 2).min(NATURAL_END / 4),
                // Still there (or cannot tell): delete it; the peer goes with it.
                _ => return self.delete_now(host_ifname).await,
            }
        }
    }

    /// How many veths are queued or being removed.
    pub fn pending(&self) -> usize {
        *self.pending.borrow()
    }

    /// Waits until nothing is queued.
    pub async fn settled(&self) {
        let mut pending = self.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }
}
