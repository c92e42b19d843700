//! The listening sockets inside a container netns and the tasks that serve them. The sockets
//! are made on a dedicated OS thread that joined the netns (`netns::run_in`), never on a tokio
//! worker; a socket stays in the netns it was made in, so tokio can then drive it from any
//! thread.
use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::Semaphore,
    task::JoinSet,
};

use super::{
    answer::{answer, Transport},
    DnsError, Shared,
};
use crate::netns;

/// The embedded DNS address every container on a user-defined network uses.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const DNS_PORT: u16 = 53;

/// Queries answered at once per listener; more wait (TCP) or are dropped (UDP; the client
/// retries).
const MAX_IN_FLIGHT: usize = 64;
/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// 127.0.0.11:53, UDP and TCP, inside one container netns.
pub struct Sockets {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
}

/// Binds the sockets inside the netns at `netns_path`. `lo` has 127.0.0.1/8, which makes
/// every 127/8 address local: no address needs adding.
pub fn bind_in(netns_path: &Path) -> Result<Sockets, DnsError> {
    let addr = SocketAddr::from((DNS_ADDRESS, DNS_PORT));
    let bind = move || -> std::io::Result<Sockets> {
        let udp = std::net::UdpSocket::bind(addr)?;
        // std sets SO_REUSEADDR on listeners: connections of a previous daemon left in
        // TIME_WAIT do not block the bind after a restart.
        let tcp = std::net::TcpListener::bind(addr)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok(Sockets { udp, tcp })
    };
    let bound = netns::run_in(netns_path, move || Ok(bind()))
        .map_err(|e| DnsError::Netns { netns: netns_path.to_path_buf(), reason: e.to_string() })?;
    bound.map_err(|source| DnsError::Bind { netns: netns_path.to_path_buf(), source })
}

/// Serves both sockets until the task is dropped (aborted); every query and connection task
/// belongs to this one and goes with it.
pub async fn serve(sockets: Sockets, shared: Arc<Shared>, client_id: String) -> Result<(), DnsError> {
    let io = |source| DnsError::Serve { source };
    let udp = Arc::new(UdpSocket::from_std(sockets.udp).map_err(io)?);
    let tcp = TcpListener::from_std(sockets.tcp).map_err(io)?;
    let client_id: Arc<str> = client_id.into();
    let udp_slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let tcp_slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; u16::MAX as usize];
    loop {
        tokio::select! {
            received = udp.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(r) => r,
                    // E.g. ECONNREFUSED left by an ICMP error for an earlier reply.
                    Err(e) => { tracing::debug!(error = %e, "dns udp receive"); continue; }
                };
                let Ok(slot) = udp_slots.clone().try_acquire_owned() else { continue };
                let (query, udp, shared, client_id) = (buf[..n].to_vec(), udp.clone(), shared.clone(), client_id.clone());
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
                let (slots, shared, client_id) = (tcp_slots.clone(), shared.clone(), client_id.clone());
                tasks.spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    if let Err(e) = serve_tcp(stream, &shared, &client_id).await {
                        tracing::debug!(error = %e, "dns tcp connection");
                    }
                });
            }
            // Reap finished tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Length-prefixed queries on one connection, answered in order, until the client closes it
/// or stays idle.
async fn serve_tcp(mut stream: TcpStream, shared: &Shared, client_id: &str) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let Some(reply) = answer(shared, client_id, &query, Transport::Tcp).await else {
            return Ok(());
        };
        let len = u16::try_from(reply.len()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
    }
}
