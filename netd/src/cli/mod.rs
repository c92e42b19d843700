//! The command line: Docker's verbs and spellings, as a thin client of the daemon's API.
//! This module holds the clap definitions and the dispatch; each group of commands has its
//! own module.
use std::path::PathBuf;

use clap::{FromArgMatches, Parser, Subcommand};

use crate::{client::Client, daemon::DaemonArgs, process::EnterArgs};

mod batch;
mod container;
mod human;
mod network;
mod output;
mod system;
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
    Stop(StopArgs),
    /// Start stopped containers again.
    Start(NamesArgs),
    /// List a container's published ports, or the host addresses of one of them.
    Port(PortArgs),
    /// Datapath statistics: drops by reason and hook, each endpoint's packets and bytes, and
    /// the conntrack and NAT tables against their capacity.
    Stats {
        /// `table` (default), `json`, or a Go template over the JSON object.
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
    Stop(StopArgs),
    Start(NamesArgs),
    Port(PortArgs),
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
    /// NAME[:ALIAS]: an /etc/hosts line for another container on the same network.
    #[arg(long = "link")]
    pub links: Vec<String>,
    /// HOST:IP (or HOST:host-gateway): an extra /etc/hosts line.
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// A DNS server for the container (repeatable): the embedded DNS forwards to it on
    /// user-defined networks; elsewhere it is the container's resolv.conf.
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// KEY=VALUE (or KEY, taken from this environment) for the command.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Publish a container's port(s) to the host: `[IP:][HOSTPORT[-END]:]PORT[-END][/tcp|/udp]`.
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// IMAGE [CMD ARGS...]: netd has no images; IMAGE is recorded and CMD runs on the host's
    /// filesystem. `run [OPTIONS] -- CMD ARGS...` gives a command without an image. Every
    /// argument before IMAGE is an option (an unknown one is an error, never IMAGE); every
    /// one after it belongs to CMD.
    #[arg(value_name = "IMAGE [CMD]", trailing_var_arg = true)]
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
            (Some(cmd), Some((image, rest))) => (image.clone(), rest.iter().chain(cmd.iter()).cloned().collect()),
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
    /// KEY=VALUE: name, id, status, exited, network, label, ancestor, before, since, publish,
    /// expose, health, is-task, volume, isolation.
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Show the N last created containers (all states).
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
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
pub struct PortArgs {
    pub container: String,
    /// PORT[/PROTO] (tcp when absent).
    pub port: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Docker's grace period before the kill, accepted for its scripts: netd ends the command
    /// at once (docs/docker-departures.md, `stop-kills-at-once`).
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<i64>,
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
    parse_from(argv.clone()).unwrap_or_else(|e| match unknown_flag(&e, &argv) {
        // Docker's (cobra's) text, with clap's exit code for usage errors.
        Some(text) => {
            eprintln!("{text}");
            std::process::exit(e.exit_code());
        }
        None => e.exit(),
    })
}

/// Docker's text for an unknown option: `unknown flag: --bogus`, or for a short one
/// `unknown shorthand flag: 'x' in -dx` (the whole word it came in).
fn unknown_flag(e: &clap::Error, argv: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return None };
    if arg.starts_with("--") {
        let name = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
        return Some(format!("unknown flag: {name}"));
    }
    let c = arg.strip_prefix('-').and_then(|s| s.chars().next())?;
    let word = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .find(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c))
        .cloned()
        .unwrap_or_else(|| arg.clone());
    Some(format!("unknown shorthand flag: '{c}' in {word}"))
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
        Command::Network(cmd) => network::run(&client, cmd).await,
        Command::Container(cmd) => container_command(&client, cmd).await,
        Command::Run(args) => container::run(&client, args).await,
        Command::Exec(args) => container::exec(&client, args).await,
        Command::Ps(args) => container::ps(&client, args).await,
        Command::Inspect(args) => container::inspect(&client, args).await,
        Command::Rm(args) => container::rm(&client, args).await,
        Command::Stop(args) => container::stop(&client, &args.names).await,
        Command::Start(args) => container::start(&client, &args.names).await,
        Command::Port(args) => container::port(&client, args).await,
        Command::Stats { format } => system::stats(&client, format.as_deref()).await,
        Command::System(SystemCommand::Reset) => system::reset(&client).await,
        Command::Daemon(_) | Command::Completion { .. } | Command::Enter(_) => {
            unreachable!("handled in main")
        }
    }
}

/// `netd container ...`: the same commands; `container inspect` looks for containers only.
async fn container_command(client: &Client, cmd: ContainerCommand) -> anyhow::Result<()> {
    match cmd {
        ContainerCommand::Run(args) => container::run(client, args).await,
        ContainerCommand::Exec(args) => container::exec(client, args).await,
        ContainerCommand::Ls(args) => container::ps(client, args).await,
        ContainerCommand::Inspect(mut args) => {
            args.kind.get_or_insert_with(|| "container".into());
            container::inspect(client, args).await
        }
        ContainerCommand::Rm(args) => container::rm(client, args).await,
        ContainerCommand::Stop(args) => container::stop(client, &args.names).await,
        ContainerCommand::Start(args) => container::start(client, &args.names).await,
        ContainerCommand::Port(args) => container::port(client, args).await,
    }
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
        let r = run_args(&["netd", "run", "-d", "--dns", "10.0.0.2", "--dns=fd00::53", "busybox"]);
        assert_eq!(r.dns, ["10.0.0.2".parse::<std::net::IpAddr>().unwrap(), "fd00::53".parse().unwrap()]);
        assert!(Cli::try_parse_from(["netd", "run", "--dns", "not-an-ip", "busybox"]).is_err());
    }

    #[test]
    fn publish_is_an_option_in_every_spelling() {
        let r = run_args(&["netd", "run", "-d", "--name", "web", "-p", "8080:80", "--network", "n"]);
        assert_eq!(r.publish, ["8080:80"]);
        assert_eq!(r.network.as_deref(), Some("n"));
        assert_eq!(r.image_and_cmd(), (String::new(), vec![]));
        let r = run_args(&["netd", "run", "-d", "--publish=127.0.0.1::80", "--publish", "53/udp", "-p80", "busybox"]);
        assert_eq!(r.publish, ["127.0.0.1::80", "53/udp", "80"]);
        assert_eq!(r.image_and_cmd(), ("busybox".to_string(), vec![]));
        let r = run_args(&["netd", "container", "run", "-dp", "9000-9002:9000-9002", "--", "sleep", "9"]);
        assert_eq!(r.publish, ["9000-9002:9000-9002"]);
        assert_eq!(r.image_and_cmd(), (String::new(), vec!["sleep".to_string(), "9".to_string()]));
        // After IMAGE, `-p` is CMD's.
        let r = run_args(&["netd", "run", "-d", "nc", "nc", "-l", "-p", "80"]);
        assert!(r.publish.is_empty());
        assert_eq!(r.image_and_cmd().1, ["nc", "-l", "-p", "80"]);
    }

    /// What `netd` prints for an unknown option (`None`: it parses).
    fn unknown(args: &[&str]) -> Option<String> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse_from(argv.clone()).err().map(|e| unknown_flag(&e, &argv).unwrap_or_else(|| format!("other: {e}")))
    }

    #[test]
    fn no_option_ever_becomes_image_and_unknown_ones_get_dockers_texts() {
        assert_eq!(unknown(&["netd", "run", "-d", "--bogus", "busybox"]).as_deref(), Some("unknown flag: --bogus"));
        assert_eq!(unknown(&["netd", "run", "--bogus=1", "busybox"]).as_deref(), Some("unknown flag: --bogus"));
        assert_eq!(unknown(&["netd", "run", "--bogus", "--", "sleep", "9"]).as_deref(), Some("unknown flag: --bogus"));
        assert_eq!(unknown(&["netd", "run", "-x", "busybox"]).as_deref(), Some("unknown shorthand flag: 'x' in -x"));
        assert_eq!(unknown(&["netd", "run", "-dx", "busybox"]).as_deref(), Some("unknown shorthand flag: 'x' in -dx"));
        assert_eq!(unknown(&["netd", "ps", "--bogus"]).as_deref(), Some("unknown flag: --bogus"));
        // Options after IMAGE are CMD's, whatever they are.
        assert_eq!(unknown(&["netd", "run", "-d", "busybox", "--bogus", "-x"]), None);
        assert_eq!(unknown(&["netd", "run", "-d", "-p", "80", "busybox", "sh", "--", "-x"]), None);
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
}
