//! The listening sockets inside a container netns and the tasks that serve them. The sockets
//! are made on a dedicated OS thread that joined the netns (`netns::run_in`), never on a tokio
//! worker; a socket stays in the netns it was made in, so tokio can then drive it from any
//! thread.
use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::Arc,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};

use super::{
    answer::{answer, Transport},
    budget::FdBudget,
    DnsError, Shared,
};
use crate::{
    limits::{DNS_QUERIES_IN_FLIGHT, DNS_TCP_CONNECTIONS, DNS_TCP_IDLE},
    netns,
};

/// The embedded DNS address every container on a user-defined network uses.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const DNS_PORT: u16 = 53;

/// 127.0.0.11:53, UDP and TCP, inside one container netns, with their two fds of the budget.
pub struct Sockets {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    _fds: OwnedSemaphorePermit,
}

/// Binds the sockets inside the netns at `netns_path`. `lo` has 127.0.0.1/8, which makes
/// every 127/8 address local: no address needs adding.
pub fn bind_in(netns_path: &Path, budget: &FdBudget) -> Result<Sockets, DnsError> {
    let fds = budget.take(2).ok_or_else(|| DnsError::OverBudget { netns: netns_path.to_path_buf() })?;
    let addr = SocketAddr::from((DNS_ADDRESS, DNS_PORT));
    let bind = move || -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
        let udp = std::net::UdpSocket::bind(addr)?;
        // std sets SO_REUSEADDR on listeners: connections of a previous daemon left in
        // TIME_WAIT do not block the bind after a restart.
        let tcp = std::net::TcpListener::bind(addr)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok((udp, tcp))
    };
    let bound = netns::run_in(netns_path, move || Ok(bind()))
        .map_err(|e| DnsError::Netns { netns: netns_path.to_path_buf(), reason: e.to_string() })?;
    let (udp, tcp) = bound.map_err(|source| DnsError::Bind { netns: netns_path.to_path_buf(), source })?;
    Ok(Sockets { udp, tcp, _fds: fds })
}

/// Serves both sockets until the task is dropped (aborted); every query and connection task
/// belongs to this one and goes with it.
///
/// What one container can make the daemon hold is bounded here: `DNS_TCP_CONNECTIONS`
/// connections (a connection over it, or over the daemon-wide fd budget, is closed as soon as
/// it is accepted: waiting for a slot would hold its fd, which is how 10,000 connections from
/// one container once exhausted the daemon's fds) and `DNS_QUERIES_IN_FLIGHT` queries, UDP and
/// TCP together, each with at most one upstream socket (from the budget too).
pub async fn serve(sockets: Sockets, shared: Arc<Shared>, client_id: String) -> Result<(), DnsError> {
    let io = |source| DnsError::Serve { source };
    let Sockets { udp, tcp, _fds } = sockets;
    let udp = Arc::new(UdpSocket::from_std(udp).map_err(io)?);
    let tcp = TcpListener::from_std(tcp).map_err(io)?;
    let client_id: Arc<str> = client_id.into();
    let queries = Arc::new(Semaphore::new(DNS_QUERIES_IN_FLIGHT));
    let connections = Arc::new(Semaphore::new(DNS_TCP_CONNECTIONS));
    let mut refused_any = false;
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            ready = udp.readable() => {
                let received = ready.and_then(|()| receive_datagram(&udp));
                let (query, peer) = match received {
                    Ok(Some(r)) => r,
                    // Readiness that was spurious.
                    Ok(None) => continue,
                    // E.g. ECONNREFUSED left by an ICMP error for an earlier reply.
                    Err(e) => { tracing::debug!(error = %e, "dns udp receive"); continue; }
                };
                // Dropped when too many are in flight: the client retries.
                let Ok(slot) = queries.clone().try_acquire_owned() else { continue };
                let (udp, shared, client_id) = (udp.clone(), shared.clone(), client_id.clone());
                tasks.spawn(async move {
                    let _slot = slot;
                    if let Some(reply) = answer(&shared, &client_id, &query, Transport::Udp).await {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                });
            }
            accepted = tcp.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => { tracing::debug!(error = %e, "dns tcp accept"); continue; }
                };
                let slots = connections.clone().try_acquire_owned().ok().zip(shared.fd_budget.take(1));
                let Some(slots) = slots else {
                    drop(stream);
                    if !std::mem::replace(&mut refused_any, true) {
                        tracing::warn!(container = %client_id, max = DNS_TCP_CONNECTIONS,
                            "embedded DNS: too many TCP connections from this container (or none left in the daemon's budget); closing the excess");
                    }
                    continue;
                };
                let (queries, shared, client_id) = (queries.clone(), shared.clone(), client_id.clone());
                tasks.spawn(async move {
                    let _slots = slots;
                    if let Err(e) = serve_tcp(stream, &shared, &client_id, &queries).await {
                        tracing::debug!(error = %e, "dns tcp connection");
                    }
                });
            }
            // Reap finished tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// One waiting datagram, read whole whatever its size (up to UDP's 65,535 bytes), or `None`
/// when there is none after all. The 64 KiB buffer lives only for this read (the kernel writes
/// only the datagram into it) and the query is copied out at its own size: a zeroed buffer kept
/// per listener cost 25 MiB of RSS with 1,000 containers (docs/architecture.md, "Daemon
/// memory").
fn receive_datagram(udp: &UdpSocket) -> std::io::Result<Option<(Vec<u8>, SocketAddr)>> {
    let mut buf = Vec::with_capacity(usize::from(u16::MAX));
    match udp.try_recv_buf_from(&mut buf) {
        Ok((n, peer)) => Ok(Some((buf[..n].to_vec(), peer))),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Length-prefixed queries on one connection, answered in order, until the client closes it,
/// stays idle or does not take its reply.
async fn serve_tcp(
    mut stream: TcpStream,
    shared: &Shared,
    client_id: &str,
    queries: &Semaphore,
) -> std::io::Result<()> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    loop {
        let len = match tokio::time::timeout(DNS_TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; usize::from(len)];
        tokio::time::timeout(DNS_TCP_IDLE, stream.read_exact(&mut query)).await.map_err(|_| timed_out())??;
        let reply = {
            let Ok(_slot) = queries.acquire().await else {
                return Ok(());
            };
            answer(shared, client_id, &query, Transport::Tcp).await
        };
        let Some(reply) = reply else { return Ok(()) };
        let len = u16::try_from(reply.len()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        tokio::time::timeout(DNS_TCP_IDLE, stream.write_all(&framed)).await.map_err(|_| timed_out())??;
    }
}
