//! Published ports (`-p`/`--publish`) as both sides see them: the spec parser (Docker 20.10's
//! `nat.ParsePortSpec`, with its error texts), the bindings a container keeps, and the texts
//! users read (`ps` PORTS, `netd port`). The daemon's half (allocation, conflicts, the
//! datapath) is in `manager/ports.rs`; the design is docs/publishing.md.
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use serde::{Deserialize, Serialize};

pub use crate::datapath::Proto;

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container port bound as given (one entry of Docker's `HostConfig.PortBindings`): a
/// range spec is one mapping per container port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    pub container_port: u16,
    pub proto: Proto,
    /// The host address given (`127.0.0.1:8080:80`); `None`: every address (Docker's
    /// `HostIp: ""`, shown as 0.0.0.0 once published).
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
    /// `None`: a random port (`-p 80`); `(a, a)`: exactly `a`; `(a, b)`: a free port of that
    /// range (`-p 8000-8010:80`, Docker's "dynamic host port range"). Port 0 is random too.
    #[serde(default)]
    pub host_ports: Option<(u16, u16)>,
}

impl PortMapping {
    /// Docker's key, `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// Docker's `HostPort` string as given: "", "8080" or "8000-8010".
    pub fn host_port_text(&self) -> String {
        match self.host_ports {
            None => String::new(),
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}-{b}"),
        }
    }
}

/// A binding in effect while the container runs: the host side resolved (random ports
/// picked) and the endpoint address behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Published {
    /// 0.0.0.0: every address of the host.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
    /// The address of the endpoint the port leads to.
    pub backend: Ipv4Addr,
}

impl Published {
    pub fn datapath(&self) -> crate::datapath::PublishedPort {
        crate::datapath::PublishedPort {
            host_addr: (!self.host_ip.is_unspecified()).then_some(self.host_ip),
            host_port: self.host_port,
            proto: self.proto,
            backend_addr: self.backend,
            backend_port: self.container_port,
        }
    }
}

/// Parses one `-p` spec, `[IP:][HOSTPORT[-END]:]CPORT[-END][/PROTO]`, into one mapping per
/// container port, with Docker 20.10's checks in its order and its texts (go-connections
/// `nat.ParsePortSpec`, as measured with the 20.10.24 CLI: capitalised, unlike the lower-cased
/// texts of later versions quoted in research §7). `sctp`, valid for Docker, is refused: netd
/// publishes TCP and UDP only.
pub fn parse_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let (ip, host_port, container_port) = split_parts(raw);
    let (proto, container_port) = split_proto_port(container_port);
    let ip = split_host(ip).map_err(|why| format!("Invalid ip address {ip}: address {ip}:: {why}"))?;
    let host_ip = match ip {
        "" => None,
        text => Some(text.parse::<IpAddr>().map_err(|_| format!("Invalid ip address: {text}"))?),
    };
    if container_port.is_empty() {
        return Err(format!("No port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(container_port).ok_or_else(|| format!("Invalid containerPort: {container_port}"))?;
    let host = match host_port {
        "" => None,
        text => Some(parse_port_range(text).ok_or_else(|| format!("Invalid hostPort: {text}"))?),
    };
    if let Some((hs, he)) = host {
        if end - start != he - hs && end != start {
            return Err(format!(
                "Invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            ));
        }
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => return Err(format!("netd publishes tcp and udp ports only: {container_port}/{proto}")),
        _ => return Err(format!("Invalid proto: {proto}")),
    };
    Ok((start..=end)
        .map(|port| {
            let host_ports = host.map(|(hs, he)| {
                if start == end && hs != he {
                    // One container port, a host range: a free port of that range.
                    (hs, he)
                } else {
                    let p = hs + (port - start);
                    (p, p)
                }
            });
            PortMapping { container_port: port, proto, host_ip, host_ports }
        })
        .collect())
}

/// Every spec of a command line, in order.
pub fn parse_specs<S: AsRef<str>>(specs: &[S]) -> Result<Vec<PortMapping>, String> {
    let mut all = Vec::new();
    for spec in specs {
        all.extend(parse_spec(&standard_notation(spec.as_ref())?)?);
    }
    Ok(all)
}

/// The CLI's long form, `published=8080,target=80[,protocol=udp]`, as the short one
/// (`8080:80/udp`), the way Docker's `convertToStandardNotation` rewrites it; other specs as
/// they are.
fn standard_notation(spec: &str) -> Result<String, String> {
    if !spec.contains('=') {
        return Ok(spec.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in spec.split(',') {
        let mut opt = param.split('=');
        match (opt.next(), opt.next()) {
            (Some(name), Some(value)) => params.insert(name, value),
            _ => return Err(format!("invalid publish opts format (should be name=value but got '{param}')")),
        };
    }
    let get = |name| params.get(name).copied().unwrap_or_default();
    Ok(format!("{}:{}/{}", get("published"), get("target"), get("protocol")))
}

/// The address part as Go's `net.SplitHostPort(ip + ":")` takes it (Docker strips an IPv6
/// address's brackets so): the address, or why the part is not one.
fn split_host(ip: &str) -> Result<&str, &'static str> {
    if let Some(rest) = ip.strip_prefix('[') {
        // The first ']' must end the part (then comes the ':' Docker appended).
        let Some(end) = rest.find(']') else { return Err("missing ']' in address") };
        if end + 1 != rest.len() {
            return Err(if rest[end + 1..].starts_with(':') {
                "too many colons in address"
            } else {
                "missing port in address"
            });
        }
        let host = &rest[..end];
        if host.contains('[') {
            return Err("unexpected '[' in address");
        }
        return Ok(host);
    }
    if ip.contains(':') {
        return Err("too many colons in address");
    }
    if ip.contains('[') {
        return Err("unexpected '[' in address");
    }
    if ip.contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok(ip)
}

/// `IP:HOST:CONTAINER` split at colons from the right; an IPv6 address keeps its own.
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    match n {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        _ => {
            // Everything before the last two colons is the address.
            let ip_len = parts[..n - 2].iter().map(|p| p.len()).sum::<usize>() + (n - 3);
            (&raw[..ip_len], parts[n - 2], parts[n - 1])
        }
    }
}

/// `80/udp` → ("udp", "80"); no protocol is tcp; an empty port is ("", "").
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    match parts.get(1) {
        None => ("tcp", raw),
        Some(&"") => ("tcp", parts[0]),
        Some(p) => (p, parts[0]),
    }
}

/// `80` or `8000-8010` (Go's `ParseUint(s, 10, 16)` for each side: digits only, at most
/// 65535; the end not below the start). Like Docker, text after a second `-` is ignored.
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let number =
        |s: &str| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u16>().ok() } else { None };
    if !text.contains('-') {
        let p = number(text)?;
        return Some((p, p));
    }
    let mut parts = text.split('-');
    let start = number(parts.next()?)?;
    let end = number(parts.next()?)?;
    (end >= start).then_some((start, end))
}

/// A running container's published ports in Docker's `NetworkSettings.Ports` shape: by
/// `PORT/PROTO`, each with its host addresses and ports.
pub fn network_settings_ports(published: &[Published]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut ports: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for p in published {
        ports
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_default()
            .push((p.host_ip.to_string(), p.host_port.to_string()));
    }
    ports
}

/// One published port as `ps` reads it (Docker's `types.Port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayPort {
    pub ip: String,
    pub private_port: u16,
    pub public_port: u16,
    pub proto: String,
}

/// `ps`'s PORTS column: Docker 20.10's `DisplayablePorts` — sorted by container port, address,
/// host port and protocol; identity mappings (host port = container port) collapsed into
/// ranges per address and protocol and listed first, in the order their groups began; the
/// others listed one by one after them.
pub fn displayable_ports(mut ports: Vec<DisplayPort>) -> String {
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, &a.proto).cmp(&(b.private_port, &b.ip, b.public_port, &b.proto))
    });
    let mut groups: BTreeMap<String, (u16, u16)> = BTreeMap::new();
    let mut group_order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for port in &ports {
        let current = port.private_port;
        let mut key = port.proto.clone();
        if !port.ip.is_empty() {
            if port.public_port != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&port.ip, &port.public_port.to_string()),
                    port.private_port,
                    port.proto
                ));
                continue;
            }
            key = format!("{}/{}", port.ip, port.proto);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                group_order.push(key);
            }
            Some(group) if u32::from(current) == u32::from(group.1) + 1 => group.1 = current,
            Some(group) => {
                result.push(form_group(&key, group.0, group.1));
                *group = (current, current);
            }
        }
    }
    for key in &group_order {
        let (first, last) = groups[key];
        result.push(form_group(key, first, last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let all = parse_spec(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(all.len(), 1, "{spec}");
        all[0]
    }

    fn m(container_port: u16, proto: Proto, host_ip: Option<&str>, host_ports: Option<(u16, u16)>) -> PortMapping {
        PortMapping { container_port, proto, host_ip: host_ip.map(|i| i.parse().unwrap()), host_ports }
    }

    #[test]
    fn every_form_parses() {
        use Proto::*;
        assert_eq!(one("8080:80"), m(80, Tcp, None, Some((8080, 8080))));
        assert_eq!(one("80"), m(80, Tcp, None, None));
        assert_eq!(one("127.0.0.1:8081:80"), m(80, Tcp, Some("127.0.0.1"), Some((8081, 8081))));
        assert_eq!(one("127.0.0.1::80"), m(80, Tcp, Some("127.0.0.1"), None));
        assert_eq!(one(":80"), m(80, Tcp, None, None));
        assert_eq!(one("5353:53/udp"), m(53, Udp, None, Some((5353, 5353))));
        assert_eq!(one("53/UDP"), m(53, Udp, None, None));
        assert_eq!(one("80/"), m(80, Tcp, None, None));
        assert_eq!(one("80/tcp"), m(80, Tcp, None, None));
        assert_eq!(one("8000-8010:80"), m(80, Tcp, None, Some((8000, 8010))));
        assert_eq!(one("[::1]:8080:80"), m(80, Tcp, Some("::1"), Some((8080, 8080))));
        assert_eq!(one("0.0.0.0:65535:65535/udp"), m(65535, Udp, Some("0.0.0.0"), Some((65535, 65535))));
        assert_eq!(
            parse_spec("9000-9002:9000-9002").unwrap(),
            (9000..=9002).map(|p| m(p, Tcp, None, Some((p, p)))).collect::<Vec<_>>()
        );
        assert_eq!(
            parse_spec("127.0.0.1:7000-7001:80-81/udp").unwrap(),
            vec![m(80, Udp, Some("127.0.0.1"), Some((7000, 7000))), m(81, Udp, Some("127.0.0.1"), Some((7001, 7001)))]
        );
        assert_eq!(parse_spec("9000-9002").unwrap().len(), 3);
        assert_eq!(parse_specs(&["80", "53/udp"]).unwrap().len(), 2);
        let big = parse_spec("20000-20999:20000-20999").unwrap();
        assert_eq!(big.len(), 1000);
        assert_eq!(big[999], m(20999, Tcp, None, Some((20999, 20999))));
        // What `inspect` shows of each as given.
        assert_eq!(one("8000-8010:80").host_port_text(), "8000-8010");
        assert_eq!(one("80").host_port_text(), "");
        assert_eq!(one("8080:80/udp").key(), "80/udp");
    }

    #[test]
    fn bad_specs_get_dockers_texts() {
        for (spec, error) in [
            ("abc", "Invalid containerPort: abc"),
            ("8080:abc", "Invalid containerPort: abc"),
            ("99999", "Invalid containerPort: 99999"),
            ("80-70", "Invalid containerPort: 80-70"),
            ("+80", "Invalid containerPort: +80"),
            ("80-65536", "Invalid containerPort: 80-65536"),
            ("99999:80", "Invalid hostPort: 99999"),
            ("65536:80", "Invalid hostPort: 65536"),
            ("x:80", "Invalid hostPort: x"),
            ("1.2.3.4:x:80", "Invalid hostPort: x"),
            ("8080-:80", "Invalid hostPort: 8080-"),
            ("80/sctpx", "Invalid proto: sctpx"),
            ("8080:80/tcpp", "Invalid proto: tcpp"),
            ("8000-8001:80-82", "Invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
            ("9000-9002:9000-9001", "Invalid ranges specified for container and host Ports: 9000-9001 and 9000-9002"),
            ("8080:", "No port specified: 8080:<empty>"),
            ("", "No port specified: <empty>"),
            ("/udp", "No port specified: /udp<empty>"),
            ("127.0.0.1::", "No port specified: 127.0.0.1::<empty>"),
            ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
            ("localhost:8080:80", "Invalid ip address: localhost"),
            ("[::1:80:80", "Invalid ip address [::1: address [::1:: missing ']' in address"),
            (
                "127.0.0.1:8081:80:90",
                "Invalid ip address 127.0.0.1:8081: address 127.0.0.1:8081:: too many colons in address",
            ),
            ("80/sctp", "netd publishes tcp and udp ports only: 80/sctp"),
        ] {
            assert_eq!(parse_spec(spec), Err(error.to_string()), "{spec:?}");
        }
        // The long form.
        assert_eq!(parse_specs(&["published=8080,target=80"]), parse_specs(&["8080:80"]));
        assert_eq!(parse_specs(&["target=53,protocol=udp"]), parse_specs(&["53/udp"]));
        assert_eq!(parse_specs(&["mode=host,target=80,published=8000-8001"]), parse_specs(&["8000-8001:80"]));
        assert_eq!(
            parse_specs(&["published=8080,target"]),
            Err("invalid publish opts format (should be name=value but got 'target')".to_string())
        );
        assert_eq!(parse_specs(&["published=8080"]), Err("No port specified: 8080:/tcp<empty>".to_string()));
        // The first bad spec of several.
        assert_eq!(parse_specs(&["80", "x:1", "abc"]), Err("Invalid hostPort: x".to_string()));
    }

    fn port(ip: &str, private_port: u16, public_port: u16, proto: &str) -> DisplayPort {
        DisplayPort { ip: ip.into(), private_port, public_port, proto: proto.into() }
    }

    #[test]
    fn ps_ports_are_dockers() {
        assert_eq!(displayable_ports(vec![]), "");
        assert_eq!(displayable_ports(vec![port("0.0.0.0", 80, 8080, "tcp")]), "0.0.0.0:8080->80/tcp");
        // Identity ranges collapse per address and protocol.
        let range: Vec<DisplayPort> = (9000..=9002).rev().map(|p| port("0.0.0.0", p, p, "tcp")).collect();
        assert_eq!(displayable_ports(range), "0.0.0.0:9000-9002->9000-9002/tcp");
        // Identity groups first, then the others by container port. As in Docker's code, a
        // group that a gap ends is listed at once, before the groups still open.
        let mixed = vec![
            port("0.0.0.0", 80, 8080, "tcp"),
            port("0.0.0.0", 53, 5353, "udp"),
            port("127.0.0.1", 6379, 6379, "tcp"),
            port("0.0.0.0", 3306, 3306, "tcp"),
            port("0.0.0.0", 3307, 3307, "tcp"),
            port("0.0.0.0", 3309, 3309, "tcp"),
            port("0.0.0.0", 53, 53, "udp"),
        ];
        assert_eq!(
            displayable_ports(mixed),
            "0.0.0.0:3306-3307->3306-3307/tcp, 0.0.0.0:53->53/udp, 0.0.0.0:3309->3309/tcp, \
             127.0.0.1:6379->6379/tcp, 0.0.0.0:5353->53/udp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(vec![port("0.0.0.0", 80, 32768, "tcp"), port("0.0.0.0", 80, 32769, "udp")]),
            "0.0.0.0:32768->80/tcp, 0.0.0.0:32769->80/udp"
        );
    }

    #[test]
    fn network_settings_ports_are_by_port_and_proto() {
        let p = |host_ip: [u8; 4], host_port, container_port, proto| Published {
            host_ip: host_ip.into(),
            host_port,
            container_port,
            proto,
            backend: Ipv4Addr::new(172, 17, 0, 2),
        };
        let ports = network_settings_ports(&[
            p([0, 0, 0, 0], 8080, 80, Proto::Tcp),
            p([127, 0, 0, 1], 8081, 80, Proto::Tcp),
            p([0, 0, 0, 0], 5353, 53, Proto::Udp),
        ]);
        let keys: Vec<&String> = ports.keys().collect();
        assert_eq!(keys, ["53/udp", "80/tcp"]);
        assert_eq!(ports["80/tcp"], [("0.0.0.0".into(), "8080".into()), ("127.0.0.1".into(), "8081".into())]);
        assert_eq!(p([127, 0, 0, 1], 8081, 80, Proto::Tcp).datapath().host_addr, Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(p([0, 0, 0, 0], 8081, 80, Proto::Tcp).datapath().host_addr, None);
    }
}
