//! `netd network ...`: create, ls (filters, natural order), inspect, rm, prune, connect,
//! disconnect.
use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use super::{
    batch::{fetch_all, for_each, Report},
    human,
    output::{print_inspect, print_rows},
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
            let mut list = client.networks().await?;
            let filters = parse_filters(&filters)?;
            list.retain(|n| network_matches(n, &filters));
            list.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            let id = |n: &NetworkView| if no_trunc { n.id.clone() } else { n.id[..12].to_string() };
            if quiet {
                list.iter().for_each(|n| println!("{}", id(n)));
                return Ok(());
            }
            let rows: Vec<NetworkRow> = list.iter().map(|n| NetworkRow::new(n, id(n))).collect();
            print_rows(format.as_deref(), &LS_HEADER, &LS_KEYS, &rows)
        }
        NetworkCommand::Inspect { format, names } => {
            let found = fetch_all(&names, "network", |name| async move { client.network(&name).await }).await;
            print_inspect(found, format.as_deref())
        }
        NetworkCommand::Rm { names } => {
            for_each(&names, Report::AsTheyCome { no_such: "network" }, |name| async move {
                client.remove_network(&name).await?;
                println!("{name}");
                Ok(())
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
            if !names.is_empty() {
                println!("Deleted Networks:");
                names.iter().for_each(|n| println!("{n}"));
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

/// `network ls`'s table: column titles and the row fields they show.
const LS_HEADER: [&str; 4] = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"];
const LS_KEYS: [&str; 4] = ["ID", "Name", "Driver", "Scope"];

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

fn parse_filters(filters: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if ["name", "id", "driver", "label", "type", "scope"].contains(&k) => {
                Ok((k.to_string(), v.to_string()))
            }
            Some((k, _)) => bail!("invalid filter '{k}'"),
            None => bail!("bad format of filter (expected name=value)"),
        })
        .collect()
}

/// Docker's network filters: values of one key are alternatives; keys must all match.
fn network_matches(n: &NetworkView, filters: &[(String, String)]) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(key, values)| {
        values.iter().any(|v| match *key {
            "name" => n.name.contains(v),
            "id" => n.id.starts_with(v),
            "driver" => n.driver == *v,
            "scope" => n.scope == *v,
            "type" => {
                let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
                (*v == "builtin") == builtin
            }
            "label" => match v.split_once('=') {
                Some((k, val)) => n.labels.get(k).map(String::as_str) == Some(val),
                None => n.labels.contains_key(*v),
            },
            _ => false,
        })
    })
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
fn key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// `k=v,k2=v2`, sorted by key.
fn labels_string(labels: &BTreeMap<String, String>) -> String {
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
        assert!(LS_KEYS.iter().all(|k| row.get(k).is_some()));
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
        let f = |s: &[&str]| parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
        assert!(network_matches(&n, &f(&["name=my"])));
        assert!(!network_matches(&n, &f(&["name=other"])));
        assert!(network_matches(&n, &f(&["name=other", "name=net"])));
        assert!(network_matches(&n, &f(&["id=abc", "driver=bridge", "type=custom", "label=k", "label=k=v"])));
        assert!(!network_matches(&n, &f(&["type=builtin"])));
        assert!(parse_filters(&["bogus=1".into()]).is_err());
    }
}
