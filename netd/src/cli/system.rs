//! `netd stats` (drops, endpoint traffic, flow tables) and `netd system reset`.
use super::{output::format_table, template::Template};
use crate::{api_types::Stats, client::Client};

pub(super) async fn stats(client: &Client, format: Option<&str>) -> anyhow::Result<()> {
    let stats = client.stats().await?;
    match format {
        None | Some("table") => print!("{}", stats_tables(&stats)),
        Some("json") => println!("{}", serde_json::to_string(&stats)?),
        // A Go template over the whole object (`{{range .drops}}...{{end}}`).
        Some(f) => println!("{}", Template::parse(f)?.execute(&serde_json::to_value(&stats)?)?),
    }
    Ok(())
}

/// Three tables, each under its title: the drops that happened (by reason and hook), every
/// endpoint's traffic, and the flow tables' fill.
fn stats_tables(stats: &Stats) -> String {
    let drops: Vec<Vec<String>> = stats
        .drops
        .iter()
        .filter(|d| d.packets > 0 || d.bytes > 0)
        .map(|d| vec![d.reason.clone(), d.hook.clone(), d.packets.to_string(), d.bytes.to_string()])
        .collect();
    let endpoints: Vec<Vec<String>> = stats
        .endpoints
        .iter()
        .map(|e| {
            vec![
                e.container.clone(),
                e.network.clone(),
                e.interface.clone(),
                e.ip.to_string(),
                e.rx_packets.to_string(),
                e.rx_bytes.to_string(),
                e.tx_packets.to_string(),
                e.tx_bytes.to_string(),
            ]
        })
        .collect();
    let flows: Vec<Vec<String>> =
        [("conntrack tcp", stats.conntrack.tcp), ("conntrack other", stats.conntrack.other), ("nat", stats.nat)]
            .into_iter()
            .map(|(name, t)| vec![name.to_string(), t.entries.to_string(), t.capacity.to_string()])
            .collect();
    let section = |title: &str, header: &[&str], rows: &[Vec<String>], none: &str| {
        let body = if rows.is_empty() { format!("{none}\n") } else { format_table(header, rows) };
        format!("{title}\n{body}")
    };
    [
        section("DROPS", &["REASON", "HOOK", "PACKETS", "BYTES"], &drops, "no packet dropped"),
        section(
            "ENDPOINTS",
            &["CONTAINER", "NETWORK", "INTERFACE", "IP", "RX PACKETS", "RX BYTES", "TX PACKETS", "TX BYTES"],
            &endpoints,
            "no endpoints",
        ),
        section("FLOWS", &["TABLE", "ENTRIES", "CAPACITY"], &flows, ""),
    ]
    .into_iter()
    .chain((!stats.warnings.is_empty()).then(|| format!("WARNINGS\n{}\n", stats.warnings.join("\n"))))
    .collect::<Vec<_>>()
    .join("\n")
}

pub(super) async fn reset(client: &Client) -> anyhow::Result<()> {
    client.reset().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::{ConntrackUsage, DropCount, EndpointCount, TableFill};

    fn drop(reason: &str, code: u8, hook: &str, packets: u64, bytes: u64) -> DropCount {
        DropCount { reason: reason.into(), code, hook: hook.into(), packets, bytes }
    }

    #[test]
    fn tables_show_the_drops_that_happened_every_endpoint_and_the_flow_tables() {
        let stats = Stats {
            drops: vec![
                drop("malformed", 1, "endpoint_ingress", 0, 0),
                drop("isolation", 3, "endpoint_ingress", 7, 588),
                drop("unpublished_ingress", 14, "uplink_ingress", 2, 120),
            ],
            endpoints: vec![EndpointCount {
                container: "web".into(),
                network: "front".into(),
                interface: "eth0".into(),
                ip: "172.18.0.2".parse().unwrap(),
                rx_packets: 12,
                rx_bytes: 1204,
                tx_packets: 10,
                tx_bytes: 980,
            }],
            conntrack: ConntrackUsage {
                tcp: TableFill { entries: 1, capacity: 262_144 },
                other: TableFill { entries: 0, capacity: 262_144 },
            },
            nat: TableFill { entries: 1, capacity: 524_288 },
            endpoints_being_removed: 0,
            netns_being_prepared: 0,
            warnings: vec![],
        };
        assert_eq!(
            stats_tables(&stats),
            "\
DROPS
REASON                HOOK               PACKETS   BYTES
isolation             endpoint_ingress   7         588
unpublished_ingress   uplink_ingress     2         120

ENDPOINTS
CONTAINER   NETWORK   INTERFACE   IP           RX PACKETS   RX BYTES   TX PACKETS   TX BYTES
web         front     eth0        172.18.0.2   12           1204       10           980

FLOWS
TABLE             ENTRIES   CAPACITY
conntrack tcp     1         262144
conntrack other   0         262144
nat               1         524288
"
        );
    }

    #[test]
    fn tables_say_so_when_nothing_was_dropped_and_no_endpoint_exists() {
        let stats = Stats { drops: vec![drop("isolation", 3, "endpoint_ingress", 0, 0)], ..Default::default() };
        let out = stats_tables(&stats);
        assert!(out.starts_with("DROPS\nno packet dropped\n\nENDPOINTS\nno endpoints\n\nFLOWS\n"), "{out}");
        assert!(!out.contains("WARNINGS"), "{out}");
    }

    #[test]
    fn tables_end_with_what_does_not_work_on_this_host() {
        let warning = "host clients cannot reach published ports: no cgroup2 mount for the socket-LB";
        let stats = Stats { warnings: vec![warning.into()], ..Default::default() };
        assert!(stats_tables(&stats).ends_with(&format!("\nWARNINGS\n{warning}\n")), "{}", stats_tables(&stats));
        // In JSON only when there is one.
        assert!(serde_json::to_string(&Stats::default()).unwrap().find("warnings").is_none());
        assert!(serde_json::to_string(&stats).unwrap().contains(warning));
    }
}
