//! The command line: Docker's verbs and spellings, as a thin client of the daemon's API.
use std::{os::unix::process::CommandExt, path::PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::{
    client::{segment, Client},
    daemon::DaemonArgs,
    process::EnterArgs,
};

pub const DEFAULT_SOCKET: &str = "/run/netd/netd.sock";

#[derive(Parser, Debug)]
#[command(name = "netd", version, about = "Docker's networking model on an eBPF datapath")]
pub struct Cli {
    /// The daemon's API socket.
    #[arg(long, global = true, env = "NETD_SOCKET")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon in the foreground.
    Daemon(DaemonArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Create a container (a network namespace, optionally running CMD) and start it.
    Run(RunArgs),
    /// Run a command inside a container's network namespace.
    Exec {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// List containers.
    Ps {
        #[arg(short, long)]
        quiet: bool,
        /// Accepted for Docker compatibility: netd lists every container.
        #[arg(short, long)]
        all: bool,
    },
    /// Show low-level information on containers (or networks with --type network).
    Inspect {
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Drop counters by reason.
    Stats {
        #[arg(long)]
        format: Option<String>,
    },
    /// Manage netd itself.
    #[command(subcommand)]
    System(SystemCommand),
    /// Print shell completions.
    Completion { shell: clap_complete::Shell },
    /// Internal: become a container process (used by `run` and `exec`).
    #[command(name = "__enter", hide = true)]
    Enter(EnterArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Remove every netd object: containers, networks, links, routes, pins, state.
    Reset,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        #[arg(short = 'd', long = "driver", default_value = "bridge")]
        driver: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        #[arg(long)]
        internal: bool,
        #[arg(long = "label")]
        labels: Vec<String>,
        #[arg(short = 'o', long = "opt")]
        options: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect {
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        #[arg(long = "alias")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run in the background (netd always does; accepted for Docker compatibility).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Accepted for Docker compatibility.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Accepted for Docker compatibility.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Accepted for Docker compatibility.
    #[arg(long)]
    pub rm: bool,
    #[arg(long, required = true)]
    pub name: String,
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    #[arg(long = "network-alias", alias = "net-alias")]
    pub aliases: Vec<String>,
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

pub async fn run(command: Command, socket: PathBuf) -> anyhow::Result<()> {
    let client = Client::new(&socket);
    match command {
        Command::Network(cmd) => network(&client, cmd).await,
        Command::Run(args) => {
            let body = json!({
                "name": args.name,
                "network": args.network,
                "ip": args.ip,
                "aliases": args.aliases,
                "hostname": args.hostname,
                "cmd": args.cmd,
            });
            let c = client.post("/containers", body).await?;
            println!("{}", str_of(&c["Id"]));
            Ok(())
        }
        Command::Exec { container, cmd } => {
            let c = client.get(&format!("/containers/{}", segment(&container))).await?;
            let enter = EnterArgs {
                netns: non_empty(&c["NetworkSettings"]["SandboxKey"]),
                hosts: non_empty(&c["HostsPath"]),
                resolv: non_empty(&c["ResolvConfPath"]),
                hostname: non_empty(&c["Config"]["Hostname"]),
                cmd,
            };
            // A fresh process enters the container: this one has runtime threads.
            let exe = std::env::current_exe().context("locate netd binary")?;
            let err = std::process::Command::new(exe).args(enter.to_args()).exec();
            bail!("exec: {err}")
        }
        Command::Ps { quiet, all: _ } => ps(&client, quiet).await,
        Command::Inspect { kind, names } => {
            let base = match kind.as_deref() {
                Some("network") => "/networks",
                None | Some("container") => "/containers",
                Some(other) => bail!("\"{other}\" is not a valid value for --type"),
            };
            inspect(&client, base, &names).await
        }
        Command::Rm { force, names } => {
            for_each(&names, |name| {
                let client = &client;
                async move {
                    client.delete(&format!("/containers/{}?force={force}", segment(&name))).await?;
                    println!("{name}");
                    Ok(())
                }
            })
            .await
        }
        Command::Stats { format } => {
            let stats = client.get("/stats").await?;
            if format.as_deref() == Some("json") {
                println!("{stats}");
            } else {
                let rows: Vec<Vec<String>> = stats["drops"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| vec![str_of(&d["reason"]), d["packets"].to_string(), d["bytes"].to_string()])
                    .collect();
                print_table(&["DROP REASON", "PACKETS", "BYTES"], &rows);
            }
            Ok(())
        }
        Command::System(SystemCommand::Reset) => {
            client.post("/system/reset", json!({})).await?;
            Ok(())
        }
        Command::Daemon(_) | Command::Completion { .. } | Command::Enter(_) => {
            unreachable!("handled in main")
        }
    }
}

async fn network(client: &Client, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create { driver, subnet, ip_range, gateway, internal, labels, options, name } => {
            let body = json!({
                "name": name,
                "driver": driver,
                "subnet": subnet,
                "ip_range": ip_range,
                "gateway": gateway,
                "internal": internal,
                "labels": key_values(&labels)?,
                "options": key_values(&options)?,
            });
            let n = client.post("/networks", body).await?;
            println!("{}", str_of(&n["Id"]));
            Ok(())
        }
        NetworkCommand::Ls { quiet, format } => {
            let networks = client.get("/networks").await?;
            let mut list = networks.as_array().cloned().unwrap_or_default();
            list.sort_by_key(|n| str_of(&n["Name"]));
            if quiet {
                list.iter().for_each(|n| println!("{}", &str_of(&n["Id"])[..12]));
            } else if format.as_deref() == Some("json") {
                for n in &list {
                    let line = json!({
                        "CreatedAt": n["Created"], "Driver": n["Driver"], "ID": &str_of(&n["Id"])[..12],
                        "IPv6": "false", "Internal": n["Internal"].to_string(), "Labels": labels_string(&n["Labels"]),
                        "Name": n["Name"], "Scope": n["Scope"],
                    });
                    println!("{line}");
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![str_of(&n["Id"])[..12].to_string(), str_of(&n["Name"]), str_of(&n["Driver"]), str_of(&n["Scope"])]
                    })
                    .collect();
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
            Ok(())
        }
        NetworkCommand::Inspect { names } => inspect(client, "/networks", &names).await,
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

/// Runs `f` for every name; reports each failure on its own line and fails at the end, like
/// Docker does for multi-name commands.
async fn for_each<F, Fut>(names: &[String], f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failed = false;
    for name in names {
        if let Err(e) = f(name.clone()).await {
            eprintln!("Error response from daemon: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

async fn inspect(client: &Client, base: &str, names: &[String]) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match client.get(&format!("{base}/{}", segment(name))).await {
            Ok(v) => out.push(v),
            Err(e) => missing.push(e.to_string()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    if !missing.is_empty() {
        bail!(missing.join("\n"));
    }
    Ok(())
}

async fn ps(client: &Client, quiet: bool) -> anyhow::Result<()> {
    let list = client.get("/containers").await?;
    let list = list.as_array().cloned().unwrap_or_default();
    if quiet {
        list.iter().for_each(|c| println!("{}", &str_of(&c["Id"])[..12]));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let cmd: Vec<String> = c["Config"]["Cmd"].as_array().into_iter().flatten().map(str_of).collect();
            let status = if c["State"]["Running"].as_bool() == Some(true) || cmd.is_empty() { "Up" } else { "Exited" };
            vec![
                str_of(&c["Id"])[..12].to_string(),
                format!("\"{}\"", truncate(&cmd.join(" "), 20)),
                str_of(&c["Created"]),
                status.to_string(),
                String::new(),
                str_of(&c["Name"]).trim_start_matches('/').to_string(),
            ]
        })
        .collect();
    print_table(&["CONTAINER ID", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], &rows);
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Docker's tabwriter layout (minwidth 10, padding 3): columns padded to the widest cell plus
/// three spaces, and at least ten wide.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}

pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<width$}", width = (widths[i] + 3).max(10)));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn key_values(items: &[String]) -> anyhow::Result<serde_json::Map<String, Value>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), json!(v))),
            None => Ok((kv.to_string(), json!(""))),
        })
        .collect()
}

fn labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", str_of(v))).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_like_docker() {
        let out = format_table(
            &["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
            &[vec!["7fca4eb8c647".into(), "bridge".into(), "bridge".into(), "local".into()]],
        );
        assert_eq!(out, "NETWORK ID     NAME      DRIVER    SCOPE\n7fca4eb8c647   bridge    bridge    local\n");
    }

    #[test]
    fn docker_spellings_parse() {
        let cli = Cli::try_parse_from(["netd", "run", "-itd", "--name=db", "--net=my_bridge", "--", "sleep", "9"]).unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.network.as_deref(), Some("my_bridge"));
                assert_eq!(r.cmd, ["sleep", "9"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["netd", "run", "-d", "--name", "x", "--net-alias", "a", "--network", "n"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "inspect", "--type", "network", "bridge"]).is_ok());
    }
}
