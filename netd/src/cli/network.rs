//! `netd network ...`: create, ls (filters, natural order), inspect, rm, prune, connect,
//! disconnect.
use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::{json, Value};

use super::{
    batch::{fetch_all, for_each},
    human,
    output::{print_inspect, print_rows, str_of},
    NetworkCommand,
};
use crate::client::{segment, Client};

pub(super) async fn run(client: &Client, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create { driver, subnet, ip_range, gateway, internal, labels, options, name } => {
            let body = json!({
                "name": name,
                "driver": driver,
                "subnet": subnet,
                "ip_range": ip_range,
                "gateway": gateway,
                "internal": internal,
                "labels": key_values(&labels),
                "options": key_values(&options),
            });
            let n = client.post("/networks", body).await?;
            println!("{}", str_of(&n["Id"]));
            Ok(())
        }
        NetworkCommand::Ls { quiet, format, filters, no_trunc } => {
            let networks = client.get("/networks").await?;
            let mut list = networks.as_array().cloned().unwrap_or_default();
            let filters = parse_filters(&filters)?;
            list.retain(|n| network_matches(n, &filters));
            list.sort_by(|a, b| natural_cmp(&str_of(&a["Name"]), &str_of(&b["Name"])));
            let id = |n: &Value| {
                let id = str_of(&n["Id"]);
                if no_trunc { id } else { id[..12].to_string() }
            };
            if quiet {
                list.iter().for_each(|n| println!("{}", id(n)));
                return Ok(());
            }
            let rows: Vec<Value> = list
                .iter()
                .map(|n| {
                    json!({
                        "CreatedAt": human::go_time(&str_of(&n["Created"]), true),
                        "Driver": n["Driver"],
                        "ID": id(n),
                        "IPv6": n["EnableIPv6"].to_string(),
                        "Internal": n["Internal"].to_string(),
                        "Labels": labels_string(&n["Labels"]),
                        "Name": n["Name"],
                        "Scope": n["Scope"],
                    })
                })
                .collect();
            let header = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"];
            let keys = ["ID", "Name", "Driver", "Scope"];
            print_rows(format.as_deref(), &header, &keys, &rows)
        }
        NetworkCommand::Inspect { format, names } => {
            let found = fetch_all(&names, |name| async move {
                client.get(&format!("/networks/{}", segment(&name))).await
            })
            .await;
            print_inspect(found, format.as_deref())
        }
        NetworkCommand::Rm { names } => {
            for_each(&names, |name| async move {
                client.delete(&format!("/networks/{}", segment(&name))).await?;
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
            let removed = client.post("/networks/prune", json!({})).await?;
            let names: Vec<String> = removed.as_array().into_iter().flatten().map(str_of).collect();
            if !names.is_empty() {
                println!("Deleted Networks:");
                names.iter().for_each(|n| println!("{n}"));
            }
            Ok(())
        }
        NetworkCommand::Connect { ip, aliases, network, container } => {
            let body = json!({ "container": container, "ip": ip, "aliases": aliases });
            client.post(&format!("/networks/{}/connect", segment(&network)), body).await?;
            Ok(())
        }
        NetworkCommand::Disconnect { force, network, container } => {
            let body = json!({ "container": container, "force": force });
            client.post(&format!("/networks/{}/disconnect", segment(&network)), body).await?;
            Ok(())
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
fn network_matches(n: &Value, filters: &[(String, String)]) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k).or_default().push(v);
    }
    by_key.iter().all(|(key, values)| {
        values.iter().any(|v| match *key {
            "name" => str_of(&n["Name"]).contains(v),
            "id" => str_of(&n["Id"]).starts_with(v),
            "driver" => str_of(&n["Driver"]) == *v,
            "scope" => str_of(&n["Scope"]) == *v,
            "type" => {
                let builtin = ["bridge", "host", "none"].contains(&str_of(&n["Name"]).as_str());
                (*v == "builtin") == builtin
            }
            "label" => match v.split_once('=') {
                Some((k, val)) => n["Labels"][k].as_str() == Some(val),
                None => n["Labels"].get(v).is_some(),
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

fn key_values(items: &[String]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (kv.to_string(), json!("")),
        })
        .collect()
}

fn labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", str_of(v))).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
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
    fn network_filters() {
        let n = json!({"Name": "my-net", "Id": "abcdef", "Driver": "bridge", "Scope": "local", "Labels": {"k": "v"}});
        let f = |s: &[&str]| parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
        assert!(network_matches(&n, &f(&["name=my"])));
        assert!(!network_matches(&n, &f(&["name=other"])));
        assert!(network_matches(&n, &f(&["name=other", "name=net"])));
        assert!(network_matches(&n, &f(&["id=abc", "driver=bridge", "type=custom", "label=k", "label=k=v"])));
        assert!(!network_matches(&n, &f(&["type=builtin"])));
        assert!(parse_filters(&["bogus=1".into()]).is_err());
    }
}
