//! Removes, in the background, the veth pairs and program links of endpoints that nothing uses
//! any more: those of a container that stops or goes. Deleting a veth and detaching its tcx
//! link each wait for RCU grace periods (tens of milliseconds, docs/control-plane-latency.md);
//! no one needs to wait for them, because `stop`/`rm` first make the endpoint unreachable and
//! its address reusable (map entries, flows and the /32 route go at once, the netns mount
//! goes, the container-side name is in a netns no one can enter) and the host-side name is
//! unique to the endpoint.
//!
//! A crash with doomed veths still queued leaves links and pins the store does not know: the
//! next start's sweep removes them, as any leftover. `settled` waits until the queue is empty
//! (`system reset`, and tests that compare the host before and after).
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::{datapath::Datapath, netlink::Netlink};

/// The background remover; cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    doomed: mpsc::UnboundedSender<String>,
    /// Veths queued or being removed.
    pending: Arc<watch::Sender<usize>>,
}

impl Reaper {
    /// Starts the task that removes veths (by host-side name) and then their links' pins. Needs
    /// a tokio runtime.
    pub fn start(host: Netlink, datapath: Arc<dyn Datapath>) -> Self {
        let (doomed, mut queue) = mpsc::unbounded_channel::<String>();
        let pending = Arc::new(watch::Sender::new(0usize));
        let counter = pending.clone();
        tokio::spawn(async move {
            while let Some(host_ifname) = queue.recv().await {
                // The peer and the /32 route (already deleted) go with the host end.
                if let Err(e) = host.delete_link(&host_ifname).await {
                    tracing::warn!(veth = %host_ifname, error = %e, "cannot remove the veth of a removed endpoint");
                }
                // Detaching from a device that is gone does not wait for a grace period.
                if let Err(e) = datapath.release_link(&host_ifname) {
                    tracing::warn!(veth = %host_ifname, error = %e, "cannot unpin the link of a removed endpoint");
                }
                counter.send_modify(|n| *n = n.saturating_sub(1));
            }
        });
        Self { doomed, pending }
    }

    /// Queues the veth whose host end is `host_ifname`, and its program link.
    pub fn reap(&self, host_ifname: String) {
        self.pending.send_modify(|n| *n += 1);
        if self.doomed.send(host_ifname).is_err() {
            // The task ended with the runtime: the next start's sweep removes the veth.
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
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
