//! One query in, one answer out: names of containers on the asker's networks and
//! `host.docker.internal` are answered here, everything else is forwarded upstream.
//!
//! Local answers are Docker 20.10's on the wire (measured with dig against its 127.0.0.11):
//! QR, RD as asked, RA, never AA; no EDNS OPT record even when the query had one; TTL 600;
//! NOERROR without records for the other types of a container name (AAAA, MX); ANY is
//! forwarded. When no upstream answers, nothing is sent back (the client times out).
use std::net::IpAddr;

use hickory_proto::{
    op::{Header, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        rdata::{A, PTR},
        DNSClass, Name, RData, Record, RecordType,
    },
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding},
};

use super::{
    records::{Client, Records, Rotation},
    upstream, Shared,
};

/// TTL of local answers (Docker's).
const TTL: u32 = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The answer to `raw` from the listener of container `client_id`, or `None` when nothing
/// should be sent back (not a query, or no upstream answered).
pub async fn answer(shared: &Shared, client_id: &str, raw: &[u8], transport: Transport) -> Option<Vec<u8>> {
    match decide(&shared.records(), &shared.rotation, &shared.upstreams, client_id, raw, transport) {
        Decision::Reply(reply) => reply,
        Decision::Forward { query, servers } => {
            match upstream::forward(raw, &query, &servers, transport == Transport::Tcp, &shared.fd_budget).await {
                Ok(answer) => Some(answer),
                Err(e) => {
                    // Docker sends nothing back then either.
                    let name = query.queries.first().map(|q| q.name().to_string()).unwrap_or_default();
                    tracing::debug!(%name, error = %e, "dns: no upstream answer");
                    None
                }
            }
        }
    }
}

/// What to do with one query: everything but the upstream round trip, with no I/O.
pub enum Decision {
    /// Send this back (`None`: nothing).
    Reply(Option<Vec<u8>>),
    /// Not a name of ours: ask `servers` (the container's `--dns` or the daemon's upstreams).
    Forward { query: Message, servers: Vec<IpAddr> },
}

pub fn decide(
    records: &Records,
    rotation: &Rotation,
    upstreams: &[IpAddr],
    client_id: &str,
    raw: &[u8],
    transport: Transport,
) -> Decision {
    let query = match Message::from_vec(raw) {
        Ok(query) => query,
        Err(_) => {
            // Answer FORMERR when at least the header is readable, as resolvers do.
            let Ok(header) = Header::read(&mut BinDecoder::new(raw)) else { return Decision::Reply(None) };
            if header.metadata.message_type != MessageType::Query {
                return Decision::Reply(None);
            }
            let mut error = Message::error_msg(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr);
            error.metadata.recursion_desired = header.metadata.recursion_desired;
            return Decision::Reply(wire(&error));
        }
    };
    if query.metadata.message_type != MessageType::Query {
        return Decision::Reply(None);
    }
    if query.metadata.op_code != OpCode::Query {
        return Decision::Reply(encode(error(&query, ResponseCode::NotImp), &query, transport));
    }
    let [question] = query.queries.as_slice() else {
        return Decision::Reply(encode(error(&query, ResponseCode::FormErr), &query, transport));
    };
    let Some(client) = records.client(client_id) else {
        // The listener is going away (its container left its last user network).
        return Decision::Reply(encode(error(&query, ResponseCode::Refused), &query, transport));
    };
    if let Some(answers) = local(records, rotation, client, question) {
        let mut response = reply(&query);
        response.answers = answers;
        return Decision::Reply(encode(response, &query, transport));
    }
    let servers = if client.servers.is_empty() { upstreams.to_vec() } else { client.servers.clone() };
    Decision::Forward { query, servers }
}

/// The local answer to `question`: `Some` (possibly without records: the name exists but has
/// no data of that type, e.g. AAAA) when the name is ours, `None` to forward it.
fn local(records: &Records, rotation: &Rotation, client: &Client, question: &Query) -> Option<Vec<Record>> {
    if question.query_class() != DNSClass::IN {
        return None;
    }
    let qname = question.name();
    if question.query_type() == RecordType::PTR {
        let ip = qname.parse_arpa_name().ok().filter(|net| net.prefix_len() == 32).map(|net| net.addr())?;
        let IpAddr::V4(ip) = ip else { return None };
        let target = Name::from_ascii(format!("{}.", records.name_of(client, ip)?)).ok()?;
        return Some(vec![Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target)))]);
    }
    if question.query_type() == RecordType::ANY {
        return None; // Docker forwards it.
    }
    let name = qname.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut ips = records.addresses(client, &name)?;
    match question.query_type() {
        RecordType::A => {
            rotation.rotate(&name, &mut ips);
            Some(ips.into_iter().map(|ip| Record::from_rdata(qname.clone(), TTL, RData::A(A(ip)))).collect())
        }
        // Containers have no IPv6 addresses and no other record types: NOERROR, no data.
        _ => Some(vec![]),
    }
}

/// A response to `query` with its question, before answers: no EDNS OPT record, as Docker's.
fn reply(query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    response.queries = query.queries.clone();
    response
}

fn error(query: &Message, code: ResponseCode) -> Message {
    let mut response = reply(query);
    response.metadata.response_code = code;
    response
}

/// Encodes `response`; over UDP, one larger than the client takes is sent truncated (TC set,
/// no records) so that the client asks again over TCP.
fn encode(response: Message, query: &Message, transport: Transport) -> Option<Vec<u8>> {
    let bytes = wire(&response)?;
    if transport == Transport::Udp && bytes.len() > usize::from(query.max_payload()) {
        return wire(&response.truncate());
    }
    Some(bytes)
}

/// `message` as Docker's resolver (miekg/dns) writes it: names never compressed (a local A
/// answer for `web` is 40 bytes, as dig measures Docker's, not 37).
fn wire(message: &Message) -> Option<Vec<u8>> {
    let mut buffer = Vec::with_capacity(512);
    {
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        message.emit(&mut encoder).ok()?;
    }
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::dns::{
        budget::FdBudget,
        records::tests::{id, state},
    };

    fn shared() -> Shared {
        let (networks, containers) = state();
        Shared {
            records: RwLock::new(Arc::new(Records::build(&networks, &containers))),
            rotation: Rotation::default(),
            upstreams: vec![],
            fd_budget: FdBudget::new(16),
        }
    }

    async fn ask(shared: &Shared, client: &str, name: &str, rtype: RecordType) -> Message {
        ask_edns(shared, client, name, rtype, false).await.expect("an answer")
    }

    /// `None`: nothing sent back.
    async fn ask_edns(shared: &Shared, client: &str, name: &str, rtype: RecordType, edns: bool) -> Option<Message> {
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        if edns {
            query.set_edns(hickory_proto::op::Edns::new());
        }
        let raw = query.to_vec().unwrap();
        let reply = Message::from_vec(&answer(shared, &id(client), &raw, Transport::Udp).await?).unwrap();
        assert_eq!(reply.metadata.id, query.metadata.id);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.queries, query.queries);
        Some(reply)
    }

    fn addresses(reply: &Message) -> Vec<String> {
        reply
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::PTR(p) => p.0.to_string(),
                other => panic!("unexpected record {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn local_names_are_answered_here() {
        let shared = shared();
        let reply = ask(&shared, "a1", "TWO.", RecordType::A).await;
        assert_eq!(
            (reply.metadata.response_code, addresses(&reply)),
            (ResponseCode::NoError, vec!["172.18.0.3".into()])
        );
        assert!(!reply.metadata.authoritative && reply.metadata.recursion_available, "Docker's flags: no AA");
        assert!(reply.edns.is_none());
        assert_eq!(reply.answers[0].ttl, TTL);
        let mut query = Message::query();
        query.add_query(Query::query(Name::from_ascii("web.").unwrap(), RecordType::A));
        let mut response = super::reply(&query);
        response.answers =
            vec![Record::from_rdata(Name::from_ascii("web.").unwrap(), TTL, RData::A(A([1, 2, 3, 4].into())))];
        assert_eq!(encode(response, &query, Transport::Udp).unwrap().len(), 40, "no name compression (Docker's size)");
        let first = addresses(&ask(&shared, "a1", "web.", RecordType::A).await);
        let second = addresses(&ask(&shared, "a1", "web.", RecordType::A).await);
        assert_eq!(first, ["172.18.0.3", "172.18.0.4"]);
        assert_eq!(second, ["172.18.0.4", "172.18.0.3"], "rotated");
        let aaaa = ask(&shared, "a1", "two.", RecordType::AAAA).await;
        assert_eq!((aaaa.metadata.response_code, aaaa.answers.len()), (ResponseCode::NoError, 0), "no data");
        let host = ask(&shared, "a1", "host.docker.internal.", RecordType::A).await;
        assert_eq!(addresses(&host), ["172.18.0.1"]);
        let ptr = ask(&shared, "a1", "3.0.18.172.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(addresses(&ptr), ["two.my-net."]);
        assert!(!ptr.metadata.authoritative && ptr.edns.is_none());
        // A query with EDNS gets an answer without (Docker's).
        let edns = ask_edns(&shared, "a1", "two.", RecordType::A, true).await.unwrap();
        assert!(edns.edns.is_none() && !edns.metadata.authoritative);
        assert_eq!(addresses(&edns), ["172.18.0.3"]);
        let mx = ask(&shared, "a1", "two.my-net.", RecordType::MX).await;
        assert_eq!((mx.metadata.response_code, mx.answers.len()), (ResponseCode::NoError, 0));
    }

    #[tokio::test]
    async fn other_names_go_upstream_and_fail_without_one() {
        let shared = shared();
        // No upstream answer: nothing sent back, as Docker.
        assert!(ask_edns(&shared, "a1", "far.", RecordType::A, false).await.is_none());
        let ptr = ask_edns(&shared, "a1", "2.0.19.172.in-addr.arpa.", RecordType::PTR, false).await;
        assert!(ptr.is_none(), "not a shared network's address: forwarded");
        assert!(ask_edns(&shared, "a1", "two.", RecordType::ANY, false).await.is_none(), "ANY is forwarded");
        let unknown = ask(&shared, "zz", "two.", RecordType::A).await;
        assert_eq!(unknown.metadata.response_code, ResponseCode::Refused, "no listener of that container");
    }

    #[tokio::test]
    async fn with_no_fd_left_in_the_budget_forwarding_fails_at_once_and_local_names_still_work() {
        // TEST-NET-1: never contacted, the budget is spent before any socket is made.
        let shared = Shared { upstreams: vec!["192.0.2.1".parse().unwrap()], fd_budget: FdBudget::new(0), ..shared() };
        assert!(ask_edns(&shared, "a1", "far.", RecordType::A, false).await.is_none());
        let two = ask(&shared, "a1", "two.", RecordType::A).await;
        assert_eq!(addresses(&two), ["172.18.0.3"]);
    }

    #[tokio::test]
    async fn malformed_queries_get_formerr_and_answers_get_nothing() {
        let shared = shared();
        let garbage = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let reply = Message::from_vec(&answer(&shared, &id("a1"), &garbage, Transport::Udp).await.unwrap()).unwrap();
        assert_eq!((reply.metadata.id, reply.metadata.response_code), (0x1234, ResponseCode::FormErr));
        let mut response = Message::response(7, OpCode::Query);
        response.add_query(Query::query(Name::from_ascii("two.").unwrap(), RecordType::A));
        assert!(answer(&shared, &id("a1"), &response.to_vec().unwrap(), Transport::Udp).await.is_none());
        assert!(answer(&shared, &id("a1"), &[1, 2, 3], Transport::Udp).await.is_none());
    }

    #[test]
    fn oversized_udp_answers_are_truncated_and_tcp_ones_are_not() {
        let name = Name::from_ascii("many.").unwrap();
        let query = {
            let mut q = Message::query();
            q.add_query(Query::query(name.clone(), RecordType::A));
            q
        };
        let mut response = reply(&query);
        response.answers =
            (0..64u8).map(|i| Record::from_rdata(name.clone(), TTL, RData::A(A([10, 0, 0, i].into())))).collect();
        let udp = Message::from_vec(&encode(response.clone(), &query, Transport::Udp).unwrap()).unwrap();
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        assert_eq!(udp.metadata.id, query.metadata.id);
        let tcp = Message::from_vec(&encode(response, &query, Transport::Tcp).unwrap()).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 64);
    }
}
