//! The command line: Docker's verbs and spellings, as a thin client of the daemon's API.
use std::{
    collections::BTreeMap,
    os::unix::process::CommandExt,
    path::PathBuf,
};

use anyhow::{bail, Context};
use clap::{FromArgMatches, Parser, Subcommand};
use serde_json::{json, Value};

use crate::{
    client::{segment, Client, DaemonError},
    daemon::DaemonArgs,
    process::{self, EnterArgs},
};

mod human;
mod template;

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
    /// Manage containers (`netd container ls|run|exec|inspect|rm|stop|start`).
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Create a container (a network namespace, optionally running CMD) and start it.
    Run(RunArgs),
    /// Run a command inside a container's network namespace.
    Exec(ExecArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show low-level information on containers or networks.
    Inspect(InspectArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Stop containers: end their command and release their network.
    Stop(NamesArgs),
    /// Start stopped containers again.
    Start(NamesArgs),
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
pub enum ContainerCommand {
    Run(RunArgs),
    Exec(ExecArgs),
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    Inspect(InspectArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Stop(NamesArgs),
    Start(NamesArgs),
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
        /// `json` (one object per line) or a Go template (`{{.Name}}`).
        #[arg(long)]
        format: Option<String>,
        /// name=, id=, driver=, label=KEY[=VALUE], type=custom|builtin, scope=local
        #[arg(short = 'f', long = "filter")]
        filters: Vec<String>,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        #[arg(short = 'f', long)]
        format: Option<String>,
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
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open (with no CMD: run an interactive shell).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Accepted for Docker compatibility (the command gets the terminal netd has).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when its command exits.
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    #[arg(long = "network-alias", alias = "net-alias")]
    pub aliases: Vec<String>,
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// KEY=VALUE (or KEY, taken from this environment) for the command.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// IMAGE [CMD ARGS...]: netd has no images; IMAGE is recorded and CMD runs on the host's
    /// filesystem. `run [OPTIONS] -- CMD ARGS...` gives a command without an image.
    #[arg(value_name = "IMAGE [CMD]", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// What followed a `--` that came before any IMAGE (set by [`parse`]).
    #[arg(skip)]
    pub dashed: Option<Vec<String>>,
}

impl RunArgs {
    /// (IMAGE, CMD) from `IMAGE CMD...`, `-- CMD...` or `IMAGE -- CMD...`.
    fn image_and_cmd(&self) -> (String, Vec<String>) {
        match (&self.dashed, self.args.split_first()) {
            (Some(cmd), None) => (String::new(), cmd.clone()),
            (Some(cmd), Some((image, rest))) => {
                (image.clone(), rest.iter().chain(cmd.iter()).cloned().collect())
            }
            (None, Some((image, rest))) => (image.clone(), rest.to_vec()),
            (None, None) => (String::new(), vec![]),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Accepted for Docker compatibility (the command gets netd's stdin).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Accepted for Docker compatibility.
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub cmd: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    #[arg(short, long)]
    pub quiet: bool,
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
    /// `json` (one object per line) or a Go template (`{{.Names}}`).
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// `container` or `network` (default: whichever has the name, containers first).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// A Go template (`{{json .NetworkSettings.Networks}}`).
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Parses the command line. A `--` that comes before any IMAGE of `run` starts CMD, so that
/// `run -d --name x -- sleep 9` has no image and runs `sleep 9`.
pub fn parse() -> Cli {
    let argv: Vec<String> = std::env::args().collect();
    parse_from(argv).unwrap_or_else(|e| e.exit())
}

fn parse_from(argv: Vec<String>) -> Result<Cli, clap::Error> {
    if let Some(dd) = run_dashdash(&argv) {
        let matches = <Cli as clap::CommandFactory>::command().try_get_matches_from(&argv[..dd])?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let rest = argv[dd + 1..].to_vec();
        match &mut cli.command {
            Command::Run(r) | Command::Container(ContainerCommand::Run(r)) => r.dashed = Some(rest),
            _ => unreachable!("run_dashdash only finds run"),
        }
        return Ok(cli);
    }
    Cli::try_parse_from(argv)
}

/// The index of the first `--` after `run`/`container run`, when it comes before IMAGE
/// (i.e. among the options).
fn run_dashdash(argv: &[String]) -> Option<usize> {
    let mut i = 1;
    // Global options before the subcommand.
    while i < argv.len() && argv[i].starts_with('-') {
        i += if argv[i] == "--socket" { 2 } else { 1 };
    }
    if argv.get(i).map(String::as_str) == Some("container") {
        i += 1;
    }
    if argv.get(i).map(String::as_str) != Some("run") {
        return None;
    }
    let dd = argv[i..].iter().position(|a| a == "--")? + i;
    // The options before `--` must parse without any positional.
    let head = &argv[..dd];
    let matches = <Cli as clap::CommandFactory>::command().try_get_matches_from(head).ok()?;
    let cli = Cli::from_arg_matches(&matches).ok()?;
    match cli.command {
        Command::Run(r) | Command::Container(ContainerCommand::Run(r)) => Some(dd).filter(|_| r.args.len() <= 1),
        _ => None,
    }
}

pub async fn run(command: Command, socket: PathBuf) -> anyhow::Result<()> {
    let client = Client::new(&socket);
    match command {
        Command::Network(cmd) => network(&client, cmd).await,
        Command::Container(cmd) => container(&client, cmd).await,
        Command::Run(args) => run_container(&client, args).await,
        Command::Exec(args) => exec(&client, args).await,
        Command::Ps(args) => ps(&client, args).await,
        Command::Inspect(args) => inspect(&client, args).await,
        Command::Rm(args) => rm(&client, args).await,
        Command::Stop(args) => lifecycle(&client, "stop", &args.names).await,
        Command::Start(args) => lifecycle(&client, "start", &args.names).await,
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

async fn container(client: &Client, cmd: ContainerCommand) -> anyhow::Result<()> {
    match cmd {
        ContainerCommand::Run(args) => run_container(client, args).await,
        ContainerCommand::Exec(args) => exec(client, args).await,
        ContainerCommand::Ls(args) => ps(client, args).await,
        ContainerCommand::Inspect(mut args) => {
            args.kind.get_or_insert_with(|| "container".into());
            inspect(client, args).await
        }
        ContainerCommand::Rm(args) => rm(client, args).await,
        ContainerCommand::Stop(args) => lifecycle(client, "stop", &args.names).await,
        ContainerCommand::Start(args) => lifecycle(client, "start", &args.names).await,
    }
}

/// `-e KEY=VALUE`, or `-e KEY` with the value from this environment (skipped when unset).
fn resolve_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some(_) => Some(kv.clone()),
            None => std::env::var(kv).ok().map(|v| format!("{kv}={v}")),
        })
        .collect()
}

async fn run_container(client: &Client, args: RunArgs) -> anyhow::Result<()> {
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
    let code = run_attached(client, &c).await;
    let finish = if args.rm {
        client.delete(&format!("/containers/{id}?force=true")).await
    } else {
        let code = *code.as_ref().unwrap_or(&127);
        client.post(&format!("/containers/{id}/stop"), json!({ "exit_code": code })).await
    };
    let code = code?;
    finish?;
    std::process::exit(code);
}

/// Runs the container's command in the foreground with this terminal; returns its exit code.
async fn run_attached(client: &Client, c: &Value) -> anyhow::Result<i32> {
    let id = str_of(&c["Id"]);
    let cmd: Vec<String> = c["Config"]["Cmd"].as_array().into_iter().flatten().map(str_of).collect();
    let enter = enter_args(c, cmd, vec![]);
    let exe = std::env::current_exe().context("locate netd binary")?;
    let mut child = std::process::Command::new(exe);
    child.args(enter.to_args());
    // This process only waits: Ctrl-C and friends are for the command.
    ignore_terminal_signals(true);
    // SAFETY: only async-signal-safe calls (signal(2)) between fork and exec.
    unsafe {
        child.pre_exec(|| {
            ignore_terminal_signals(false);
            Ok(())
        });
    }
    let mut child = child.spawn().context("start the container's command")?;
    client.post(&format!("/containers/{id}/attach"), json!({ "pid": child.id() })).await?;
    let status = child.wait().context("wait for the container's command")?;
    ignore_terminal_signals(false);
    Ok(process::exit_code(status))
}

fn ignore_terminal_signals(ignore: bool) {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let handler = if ignore { SigHandler::SigIgn } else { SigHandler::SigDfl };
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: installing SIG_IGN/SIG_DFL has no handler code to be unsafe about.
        let _ = unsafe { signal(sig, handler) };
    }
}

/// `netd __enter` arguments for a command in the container `c` (its inspect JSON).
fn enter_args(c: &Value, cmd: Vec<String>, extra_env: Vec<String>) -> EnterArgs {
    let mut env: Vec<String> = c["Config"]["Env"].as_array().into_iter().flatten().map(str_of).collect();
    env.extend(extra_env);
    EnterArgs {
        netns: non_empty(&c["NetworkSettings"]["SandboxKey"]),
        hosts: non_empty(&c["HostsPath"]),
        resolv: non_empty(&c["ResolvConfPath"]),
        hostname: non_empty(&c["Config"]["Hostname"]),
        env,
        cmd,
    }
}

async fn exec(client: &Client, args: ExecArgs) -> anyhow::Result<()> {
    let c = client.get(&format!("/containers/{}", segment(&args.container))).await?;
    // Never run "in the container" without its netns: that would be the caller's netns.
    if c["State"]["Running"].as_bool() != Some(true) || non_empty(&c["NetworkSettings"]["SandboxKey"]).is_none() {
        bail!("Error response from daemon: Container {} is not running", str_of(&c["Id"]));
    }
    let enter = enter_args(&c, args.cmd, resolve_env(&args.env));
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

async fn rm(client: &Client, args: RmArgs) -> anyhow::Result<()> {
    let force = args.force;
    for_each(&args.names, |name| async move {
        client.delete(&format!("/containers/{}?force={force}", segment(&name))).await?;
        println!("{name}");
        Ok(())
    })
    .await
}

/// `stop` / `start`: prints each name as given, like Docker.
async fn lifecycle(client: &Client, verb: &str, names: &[String]) -> anyhow::Result<()> {
    for_each(names, |name| async move {
        client.post(&format!("/containers/{}/{verb}", segment(&name)), json!({})).await?;
        println!("{name}");
        Ok(())
    })
    .await
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

/// Fetches every name; returns the objects found and the errors (in order).
async fn fetch_all<F, Fut>(names: &[String], f: F) -> (Vec<Value>, Vec<anyhow::Error>)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match f(name.clone()).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    (found, errors)
}

/// Prints inspect results (an indented JSON array, or each object through `--format`), then
/// the errors; fails when there were any.
fn print_inspect((found, errors): (Vec<Value>, Vec<anyhow::Error>), format: Option<&str>) -> anyhow::Result<()> {
    match format {
        Some(f) if f != "json" => {
            let tpl = template::Template::parse(f)?;
            for v in &found {
                println!("{}", tpl.execute(v)?);
            }
        }
        Some(_) => found.iter().for_each(|v| println!("{v}")),
        None => println!("{}", docker_json(&Value::Array(found))),
    }
    if !errors.is_empty() {
        bail!(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
    }
    Ok(())
}

/// JSON indented with four spaces, as Docker prints inspect output.
fn docker_json(v: &Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).expect("JSON values serialize");
    String::from_utf8(out).expect("JSON is UTF-8")
}

async fn inspect(client: &Client, args: InspectArgs) -> anyhow::Result<()> {
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

async fn ps(client: &Client, args: PsArgs) -> anyhow::Result<()> {
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

/// Prints list rows as Docker does: a table, `--format json` (one object per line), or a Go
/// template per row (`table ...` adds a header row).
fn print_rows(format: Option<&str>, header: &[&str], keys: &[&str], rows: &[Value]) -> anyhow::Result<()> {
    match format {
        None | Some("table") => {
            let cells: Vec<Vec<String>> = rows.iter().map(|r| keys.iter().map(|k| str_of(&r[*k])).collect()).collect();
            print_table(header, &cells);
        }
        Some("json") => rows.iter().for_each(|r| println!("{r}")),
        Some(f) => {
            let (table, f) = match f.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, f),
            };
            let tpl = template::Template::parse(f)?;
            let mut lines = Vec::new();
            for r in rows {
                lines.push(tpl.execute(r)?);
            }
            if table {
                // The header row: each field's column title.
                let titles: serde_json::Map<String, Value> = keys
                    .iter()
                    .zip(header)
                    .map(|(k, h)| (k.to_string(), json!(h)))
                    .collect();
                lines.insert(0, tpl.execute(&Value::Object(titles))?);
                let cells: Vec<Vec<String>> =
                    lines.iter().map(|l| l.split('\t').map(str::to_string).collect()).collect();
                print!("{}", format_rows(&cells));
            } else {
                lines.iter().for_each(|l| println!("{l}"));
            }
        }
    }
    Ok(())
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
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// Docker's `Ellipsis`: at most `n` characters, the last one `…` when cut.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Docker's tabwriter layout (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): each column is
/// as wide as its widest cell plus three spaces, and at least ten.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(header, rows));
}

pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows.iter().cloned());
    format_rows(&all)
}

fn format_rows(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

fn non_empty(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        parse_from(args.iter().map(|s| s.to_string()).collect()).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).command {
            Command::Run(r) | Command::Container(ContainerCommand::Run(r)) => r,
            other => panic!("parsed as {other:?}"),
        }
    }

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
        let r = run_args(&["netd", "run", "-itd", "--name=db", "--net=my_bridge", "--", "sleep", "9"]);
        assert_eq!(r.network.as_deref(), Some("my_bridge"));
        assert_eq!(r.image_and_cmd(), (String::new(), vec!["sleep".to_string(), "9".to_string()]));
        assert!(Cli::try_parse_from(["netd", "run", "-d", "--name", "x", "--net-alias", "a", "--network", "n"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "inspect", "--type", "network", "bridge"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "container", "inspect", "mongodb"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "container", "exec", "-it", "db", "bash"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "exec", "-it", "nodectn", "node", "index.js"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "inspect", "--format={{json .NetworkSettings.Networks}}", "db"]).is_ok());
        assert!(Cli::try_parse_from(["netd", "network", "create", "--driver=bridge", "seunghwan-bridge"]).is_ok());
    }

    #[test]
    fn run_takes_image_and_command_like_docker() {
        let r = run_args(&["netd", "run", "-itd", "--name", "web", "nginx"]);
        assert_eq!(r.image_and_cmd(), ("nginx".to_string(), vec![]));
        let r = run_args(&["netd", "run", "-d", "--name", "one", "busybox", "sh", "-c", "echo -- hi"]);
        assert_eq!(r.image_and_cmd().0, "busybox");
        assert_eq!(r.image_and_cmd().1, ["sh", "-c", "echo -- hi"]);
        // Options after IMAGE belong to CMD.
        let r = run_args(&["netd", "run", "-d", "busybox", "ping", "-c", "1", "-e", "x"]);
        assert!(r.env.is_empty());
        assert_eq!(r.image_and_cmd().1, ["ping", "-c", "1", "-e", "x"]);
        let r = run_args(&["netd", "run", "-d", "-e", "A=1", "--rm", "busybox", "--", "sleep", "9"]);
        assert_eq!(r.env, ["A=1"]);
        assert!(r.rm);
        assert_eq!(r.image_and_cmd(), ("busybox".to_string(), vec!["sleep".to_string(), "9".to_string()]));
        let r = run_args(&["netd", "--socket", "/x.sock", "container", "run", "-d", "--", "sh", "-c", "a -- b"]);
        assert_eq!(r.image_and_cmd(), (String::new(), vec!["sh".into(), "-c".into(), "a -- b".into()]));
        let r = run_args(&["netd", "run", "-it", "--network", "none", "ubuntu:14.04", "sh", "--", "x"]);
        assert_eq!(r.image_and_cmd(), ("ubuntu:14.04".to_string(), vec!["sh".into(), "--".into(), "x".into()]));
    }

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

    #[test]
    fn inspect_json_uses_four_spaces() {
        assert_eq!(docker_json(&json!([{"Name": "x"}])), "[\n    {\n        \"Name\": \"x\"\n    }\n]");
    }

    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(ellipsis("sleep 600", 20), "sleep 600");
        assert_eq!(ellipsis("docker-entrypoint.sh mysqld", 20), "docker-entrypoint.s…");
    }
}
