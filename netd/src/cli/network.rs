//! `netd network ...`: create, ls (filters, natural order), inspect, rm, prune, connect,
//! disconnect.
use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use super::{
    batch::{fetch_all, for_each, Report},
    human,
    output::{print_inspect, print_rows, Filters, ListFormat},
    NetworkCommand,
};
use crate::{
    api_types::{ConnectRequest, CreateNetwork, DisconnectRequest, NetworkView},
    client::Client,
};

pub(super) async fn run(client: &Client, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create { driver, subnet, ip_range, gateway, internal, labels, options, name } => {
            // Docker's CLI checks these itself, before it asks the daemon.
            fn strs(v: &[String]) -> Vec<&str> {
                v.iter().map(String::as_str).collect()
            }
            crate::ipam::check_flags(&strs(&subnet), &strs(&ip_range), &strs(&gateway))?;
            if subnet.len() > 1 {
                bail!("netd supports one subnet per network (--subnet given {} times)", subnet.len());
            }
            let req = CreateNetwork {
                name,
                driver: Some(driver),
                subnet: subnet.into_iter().next(),
                ip_range: ip_range.into_iter().next(),
                gateway: gateway.into_iter().next(),
                internal,
                labels: key_values(&labels),
                options: key_values(&options),
            };
            println!("{}", client.create_network(&req).await?.id);
            Ok(())
        }
        NetworkCommand::Ls { quiet, format, filters, no_trunc } => {
            let filters = parse_filters(&filters)?;
            let mut list = client.networks().await?;
            list.retain(|n| network_matches(n, &filters));
            list.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            let id = |n: &NetworkView| if no_trunc { n.id.clone() } else { n.id[..12].to_string() };
            // As Docker: -q is the default format's; a --format wins.
            if quiet && format.as_deref().is_none_or(str::is_empty) {
                list.iter().for_each(|n| println!("{}", id(n)));
                return Ok(());
            }
            let rows: Vec<NetworkRow> = list.iter().map(|n| NetworkRow::new(n, id(n))).collect();
            print_rows(format.as_deref(), &LS_FORMAT, &rows)
        }
        NetworkCommand::Inspect { format, names } => {
            let found = fetch_all(&names, "network", |name| async move { client.network(&name).await }).await;
            print_inspect(found, format.as_deref())
        }
        NetworkCommand::Rm { names } => {
            // One after another, as Docker's CLI.
            for_each(&names, 1, Report::AsTheyCome { no_such: "network" }, |name| async move {
                client.remove_network(&name).await.map(drop)
            })
            .await
        }
        NetworkCommand::Prune { force } => {
            if !force {
                use std::io::{BufRead, Write};
                print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !answer.trim().eq_ignore_ascii_case("y") {
                    return Ok(());
                }
            }
            let names = client.prune_networks().await?;
            // Docker's CLI: the list, then an empty line (measured on 20.10.24).
            if !names.is_empty() {
                println!("Deleted Networks:");
                names.iter().for_each(|n| println!("{n}"));
                println!();
            }
            Ok(())
        }
        NetworkCommand::Connect { ip, aliases, network, container } => {
            client.connect(&network, &ConnectRequest { container, ip, aliases }).await?;
            Ok(())
        }
        NetworkCommand::Disconnect { force, network, container } => {
            client.disconnect(&network, &DisconnectRequest { container, force }).await?;
            Ok(())
        }
    }
}

/// `network ls`'s formats as Docker's CLI has them: the default table and each field's
/// column title.
const LS_FORMAT: ListFormat = ListFormat {
    default_table: "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}",
    headers: &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ],
    context_type: "*network.networkContext",
    parse_error: "template parsing error: ",
    exec_error: "template parsing error: ",
};

/// One `network ls` row: Docker's `--format` field names, in the order `--format json`
/// prints them.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkRow {
    created_at: String,
    driver: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "IPv6")]
    ipv6: String,
    internal: String,
    labels: String,
    name: String,
    scope: String,
}

impl NetworkRow {
    fn new(n: &NetworkView, id: String) -> Self {
        NetworkRow {
            created_at: human::go_time(&n.created, true),
            driver: n.driver.clone(),
            id,
            ipv6: n.enable_ipv6.to_string(),
            internal: n.internal.to_string(),
            labels: labels_string(&n.labels),
            name: n.name.clone(),
            scope: n.scope.clone(),
        }
    }
}

/// `network ls --filter`: Docker's keys, and its texts for values it refuses.
fn parse_filters(args: &[String]) -> anyhow::Result<Filters> {
    let filters = Filters::parse(args, "network ls", &["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    if let Some(t) = filters.get("type").into_iter().find(|t| !["custom", "builtin"].contains(t)) {
        bail!("Error response from daemon: invalid filter: 'type'='{t}'");
    }
    if filters.get("dangling").iter().any(|d| !["true", "1", "false", "0"].contains(d)) {
        bail!(
            "Error response from daemon: invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
        );
    }
    Ok(filters)
}

/// Docker's network filters: `name` and `id` are regular expressions searched for in the name
/// and the full id, `driver` and `scope` exact, `type` builtin (bridge, host, none) or custom,
/// `label` KEY or KEY=VALUE (all must hold); `dangling=true` the custom networks no container
/// is attached to, `dangling=false` the others.
fn network_matches(n: &NetworkView, filters: &Filters) -> bool {
    let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
    filters.any_regex("name", &n.name)
        && filters.any_regex("id", &n.id)
        && filters.any("driver", |v| n.driver == v)
        && filters.any("scope", |v| n.scope == v)
        && filters.any("type", |v| (v == "builtin") == builtin)
        && filters.labels(&n.labels)
        && filters.any("dangling", |v| ["true", "1"].contains(&v) == (!builtin && n.containers.is_empty()))
}

/// Docker's `sortorder.NaturalLess`: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, chunk)) if *d == digit => chunk.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, sa), (db, sb)) in ca.iter().zip(cb.iter()) {
        let ord = if *da && *db {
            let (ta, tb) = (sa.trim_start_matches('0'), sb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then(ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

/// `--label`/`-o` values: `KEY=VALUE`, or `KEY` for an empty value.
pub(super) fn key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// `k=v,k2=v2`, sorted by key.
pub(super) fn labels_string(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_names() {
        let mut names = vec!["net10", "net2", "bridge", "net1", "host"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["bridge", "host", "net1", "net2", "net10"]);
    }

    #[test]
    fn network_rows_are_dockers_json() {
        let n = NetworkView {
            name: "my-net".into(),
            id: "ab".repeat(32),
            created: "2022-08-02T09:05:20.250288712Z".into(),
            driver: "bridge".into(),
            scope: "local".into(),
            internal: true,
            labels: [("b", "2"), ("a", "1")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            ..Default::default()
        };
        let row = serde_json::to_value(NetworkRow::new(&n, n.id[..12].to_string())).unwrap();
        let created = human::go_time(&n.created, true);
        assert_eq!(
            row.to_string(),
            format!(
                r#"{{"CreatedAt":"{created}","Driver":"bridge","ID":"abababababab","IPv6":"false","Internal":"true","Labels":"a=1,b=2","Name":"my-net","Scope":"local"}}"#
            )
        );
        assert!(LS_FORMAT.headers.iter().all(|(k, _)| row.get(k).is_some()));
    }

    #[test]
    fn network_filters() {
        let n = NetworkView {
            name: "my-net".into(),
            id: "abcdef".into(),
            driver: "bridge".into(),
            scope: "local".into(),
            labels: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        let f = |s: &[&str]| parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let matches = |s: &[&str]| network_matches(&n, &f(s).unwrap());
        assert!(matches(&["name=my"]));
        assert!(matches(&["name=^my-n.t$"]));
        assert!(!matches(&["name=other"]));
        assert!(!matches(&["name=["]));
        assert!(matches(&["name=other", "name=net"]));
        assert!(matches(&["id=abc", "driver=bridge", "type=custom", "label=k", "label=k=v"]));
        assert!(matches(&["id=cde", " Name = my"]));
        assert!(!matches(&["driver=bri"]));
        assert!(!matches(&["label=k", "label=x"]));
        assert!(!matches(&["type=builtin"]));
        assert!(matches(&["type=builtin", "type=custom"]));
        assert!(matches(&["dangling=true"]) && matches(&["dangling=1"]) && !matches(&["dangling=false"]));
        for (filter, error) in [
            ("bogus=1", "Invalid filter 'bogus'"),
            ("=x", "Invalid filter ''"),
            ("type=x", "invalid filter: 'type'='x'"),
            ("dangling=x", "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"),
        ] {
            assert_eq!(f(&[filter]).unwrap_err().to_string(), format!("Error response from daemon: {error}"));
        }
    }
}
