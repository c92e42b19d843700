//! Forwarding to upstream resolvers. Forwarded queries leave from the daemon's own netns (plain
//! tokio sockets), so they reach the host's resolvers the way the host does, loopback ones
//! included, whatever the container's routes. The client's query goes out as it came, on the
//! same transport, and the first well-formed answer to it comes back unchanged.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType},
    serialize::binary::DecodeError,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

use super::budget::FdBudget;

/// How long one upstream server gets to answer before the next one is asked.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest DNS message (TCP length prefix; UDP datagrams are smaller).
const MAX_MESSAGE: usize = u16::MAX as usize;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream resolver configured")]
    NoServers,
    #[error("no file descriptor left in the embedded DNS's budget")]
    OverBudget,
    #[error("{server}: {source}")]
    Io { server: SocketAddr, source: std::io::Error },
    #[error("{server}: no answer within {UPSTREAM_TIMEOUT:?}")]
    Timeout { server: SocketAddr },
    #[error("{server}: malformed answer: {source}")]
    Malformed { server: SocketAddr, source: DecodeError },
    #[error("{server}: answer does not match the query ({reason})")]
    Mismatch { server: SocketAddr, reason: &'static str },
}

/// The `nameserver` addresses of a resolv.conf, in order.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                // A scoped IPv6 address (fe80::1%eth0) names an interface of the host.
                (Some("nameserver"), Some(addr)) => addr.split('%').next()?.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// Asks `servers` in turn (UDP, or TCP when the client used TCP) until one answers `query`;
/// returns the answer's bytes. `raw` is the query as the client sent it. One socket is open at
/// a time, counted in `budget`; with none left the query fails at once (no answer is sent back,
/// as when no server answers) rather than wait.
pub async fn forward(
    raw: &[u8],
    query: &Message,
    servers: &[IpAddr],
    tcp: bool,
    budget: &FdBudget,
) -> Result<Vec<u8>, UpstreamError> {
    if servers.is_empty() {
        return Err(UpstreamError::NoServers);
    }
    let _fd = budget.take(1).ok_or(UpstreamError::OverBudget)?;
    let mut last = UpstreamError::NoServers;
    for ip in servers {
        let server = SocketAddr::new(*ip, 53);
        let exchange = async {
            if tcp {
                tcp_exchange(server, raw).await
            } else {
                udp_exchange(server, raw, query).await
            }
        };
        let result = match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
            Ok(result) => result.and_then(|answer| check(server, query, &answer).map(|()| answer)),
            Err(_) => Err(UpstreamError::Timeout { server }),
        };
        match result {
            Ok(answer) => return Ok(answer),
            Err(e) => {
                tracing::debug!(error = %e, "dns upstream");
                last = e;
            }
        }
    }
    Err(last)
}

/// One query on a fresh connected socket (a random source port each time); datagrams that
/// are not an answer to it are ignored until the caller's timeout.
async fn udp_exchange(server: SocketAddr, raw: &[u8], query: &Message) -> Result<Vec<u8>, UpstreamError> {
    let io = |source| UpstreamError::Io { server, source };
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(raw).await.map_err(io)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        if check(server, query, &buf[..n]).is_ok() {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One query on a new TCP connection, with the 2-byte length prefix of RFC 1035 4.2.2.
async fn tcp_exchange(server: SocketAddr, raw: &[u8]) -> Result<Vec<u8>, UpstreamError> {
    let io = |source| UpstreamError::Io { server, source };
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(raw.len()).map_err(|_| io(std::io::ErrorKind::InvalidInput.into()))?;
    let mut framed = Vec::with_capacity(raw.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(raw);
    stream.write_all(&framed).await.map_err(io)?;
    let len = stream.read_u16().await.map_err(io)?;
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await.map_err(io)?;
    Ok(answer)
}

/// An answer to `query`: a response with its id and question.
fn check(server: SocketAddr, query: &Message, answer: &[u8]) -> Result<(), UpstreamError> {
    let answer = Message::from_vec(answer).map_err(|source| UpstreamError::Malformed { server, source })?;
    let mismatch = |reason| Err(UpstreamError::Mismatch { server, reason });
    if answer.metadata.message_type != MessageType::Response {
        return mismatch("not a response");
    }
    if answer.metadata.id != query.metadata.id {
        return mismatch("another id");
    }
    // A truncated answer may leave the question out (RFC 1035 does not require it).
    if answer.queries != query.queries && !(answer.metadata.truncation && answer.queries.is_empty()) {
        return mismatch("another question");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_of_a_resolv_conf_in_order() {
        let conf = "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver  127.0.0.53 \n\
                    options ndots:2\nnameserver fe80::1%eth0\nnameserver ::1\nnameserver bogus\n";
        let expected: Vec<IpAddr> =
            ["10.0.0.2", "127.0.0.53", "fe80::1", "::1"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(nameservers(conf), expected);
    }
}
