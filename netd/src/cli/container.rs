//! Container commands: `run`, `exec`, `ps`, `inspect`, `rm`, `stop` and `start` (also as
//! `netd container ...`).
use std::os::unix::process::CommandExt;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::{
    batch::{fetch_all, for_each},
    human,
    output::{ellipsis, print_inspect, print_rows, str_of},
    ExecArgs, InspectArgs, PsArgs, RmArgs, RunArgs,
};
use crate::{
    client::{segment, Client, DaemonError},
    process::EnterArgs,
};

/// `-e KEY=VALUE`, or `-e KEY` with the value from this environment (skipped when unset).
fn resolve_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some(_) => Some(kv.clone()),
            None => std::env::var(kv).ok().map(|v| format!("{kv}={v}")),
        })
        .collect()
}

pub(super) async fn run(client: &Client, args: RunArgs) -> anyhow::Result<()> {
    let (image, mut cmd) = args.image_and_cmd();
    let interactive = args.interactive || args.tty;
    if cmd.is_empty() && interactive && !args.detach {
        // Docker would run the image's shell; netd runs the user's.
        cmd = vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())];
    }
    // Without -d a command runs attached to this terminal; without a command there is
    // nothing to attach to, and the container (its netns) simply stays up.
    let attach = !args.detach && !cmd.is_empty();
    let body = json!({
        "name": args.name,
        "network": args.network,
        "ip": args.ip,
        "aliases": args.aliases,
        "hostname": args.hostname,
        "links": args.links,
        "add_hosts": args.add_hosts,
        "dns": args.dns,
        "cmd": cmd,
        "image": image,
        "env": resolve_env(&args.env),
        "auto_remove": args.rm,
        "attach": attach,
    });
    let c = client.post("/containers", body).await?;
    let id = str_of(&c["Id"]);
    if !attach {
        println!("{id}");
        return Ok(());
    }
    // The daemon starts the command with this terminal's stdio and, once it has exited,
    // stops the container (or with --rm removes it) before it reports the code.
    let code = crate::attach::run_attached(client.socket(), &id)?;
    std::process::exit(code);
}

/// `netd __enter` arguments for a command in the container `c` (its inspect JSON), whose
/// SandboxKey the caller checked.
fn enter_args(c: &Value, netns: String, cmd: Vec<String>, extra_env: Vec<String>) -> EnterArgs {
    let mut env: Vec<String> = c["Config"]["Env"].as_array().into_iter().flatten().map(str_of).collect();
    env.extend(extra_env);
    EnterArgs {
        netns,
        hosts: non_empty(&c["HostsPath"]),
        resolv: non_empty(&c["ResolvConfPath"]),
        hostname: non_empty(&c["Config"]["Hostname"]),
        env,
        cmd,
    }
}

pub(super) async fn exec(client: &Client, args: ExecArgs) -> anyhow::Result<()> {
    let c = client.get(&format!("/containers/{}", segment(&args.container))).await?;
    // Never run "in the container" without its netns: that would be the caller's netns.
    let netns = non_empty(&c["NetworkSettings"]["SandboxKey"]);
    let (Some(netns), Some(true)) = (netns, c["State"]["Running"].as_bool()) else {
        bail!("Error response from daemon: Container {} is not running", str_of(&c["Id"]));
    };
    let enter = enter_args(&c, netns, args.cmd, resolve_env(&args.env));
    let exe = std::env::current_exe().context("locate netd binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(enter.to_args());
    if args.detach {
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        cmd.spawn().context("exec")?;
        return Ok(());
    }
    // A fresh process enters the container: this one has runtime threads.
    let err = cmd.exec();
    bail!("exec: {err}")
}

pub(super) async fn rm(client: &Client, args: RmArgs) -> anyhow::Result<()> {
    let force = args.force;
    for_each(&args.names, |name| async move {
        client.delete(&format!("/containers/{}?force={force}", segment(&name))).await?;
        println!("{name}");
        Ok(())
    })
    .await
}

/// `stop` / `start`: prints each name as given, like Docker.
pub(super) async fn lifecycle(client: &Client, verb: &str, names: &[String]) -> anyhow::Result<()> {
    for_each(names, |name| async move {
        client.post(&format!("/containers/{}/{verb}", segment(&name)), json!({})).await?;
        println!("{name}");
        Ok(())
    })
    .await
}

pub(super) async fn inspect(client: &Client, args: InspectArgs) -> anyhow::Result<()> {
    let kind = args.kind.clone();
    match kind.as_deref() {
        None | Some("container") | Some("network") => {}
        Some(other) => bail!("\"{other}\" is not a valid value for --type"),
    }
    let (found, errors) = fetch_all(&args.names, |name| {
        let kind = kind.clone();
        async move {
            let path = |base: &str| format!("{base}/{}", segment(&name));
            match kind.as_deref() {
                Some("network") => client.get(&path("/networks")).await,
                Some(_) => client.get(&path("/containers")).await.map_err(|e| {
                    if DaemonError::is_not_found(&e) {
                        anyhow::anyhow!("Error: No such container: {name}")
                    } else {
                        e
                    }
                }),
                None => match client.get(&path("/containers")).await {
                    Err(e) if DaemonError::is_not_found(&e) => client.get(&path("/networks")).await.map_err(|e| {
                        if DaemonError::is_not_found(&e) {
                            anyhow::anyhow!("Error: No such object: {name}")
                        } else {
                            e
                        }
                    }),
                    other => other,
                },
            }
        }
    })
    .await;
    print_inspect((found, errors), args.format.as_deref())
}

pub(super) async fn ps(client: &Client, args: PsArgs) -> anyhow::Result<()> {
    let list = client.get("/containers").await?;
    let mut list = list.as_array().cloned().unwrap_or_default();
    list.retain(|c| args.all || c["State"]["Running"].as_bool() == Some(true));
    // Newest first, like Docker.
    list.sort_by(|a, b| str_of(&b["Created"]).cmp(&str_of(&a["Created"])));
    let id = |c: &Value| {
        let id = str_of(&c["Id"]);
        if args.no_trunc { id } else { id[..12].to_string() }
    };
    if args.quiet {
        list.iter().for_each(|c| println!("{}", id(c)));
        return Ok(());
    }
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, id(c), args.no_trunc)).collect();
    let header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
    let keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"];
    print_rows(args.format.as_deref(), &header, &keys, &rows)
}

/// One `ps` row with Docker's `--format` field names.
fn ps_row(c: &Value, id: String, no_trunc: bool) -> Value {
    let cmd: Vec<String> = c["Config"]["Cmd"].as_array().into_iter().flatten().map(str_of).collect();
    let cmd = cmd.join(" ");
    let command = if no_trunc { cmd } else { ellipsis(&cmd, 20) };
    let running = c["State"]["Running"].as_bool() == Some(true);
    let status = if running {
        format!("Up {}", human::human_duration(human::seconds_since(&str_of(&c["State"]["StartedAt"]))))
    } else {
        format!(
            "Exited ({}) {}",
            c["State"]["ExitCode"],
            human::ago(&str_of(&c["State"]["FinishedAt"]))
        )
    };
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "Command": format!("\"{command}\""),
        "CreatedAt": human::go_time(&str_of(&c["Created"]), false),
        "ID": id,
        "Image": c["Config"]["Image"],
        "Labels": "",
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": str_of(&c["Name"]).trim_start_matches('/'),
        "Networks": networks.join(","),
        "Ports": "",
        "RunningFor": human::ago(&str_of(&c["Created"])),
        "Size": "0B",
        "State": c["State"]["Status"],
        "Status": status,
    })
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}
