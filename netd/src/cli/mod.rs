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
pub(crate) mod template;

pub const DEFAULT_SOCKET: &str = "/run/netd/netd.sock";

/// Set by `netd exec` for the `netd __enter` it becomes: a command that cannot be started is
/// reported as `docker exec` does (see [`enter_failed`]).
pub const EXEC_ERRORS: &str = "NETD_EXEC_ERRORS";

/// How `netd __enter` reports a command it could not start: `docker exec`'s way (the text on
/// stdout, exit code 126) when `exec` is true, else as Docker's `run` exits for it (127 for a
/// command not found, 126 when it cannot be executed) with the text on stderr.
pub fn enter_failed(e: &anyhow::Error, exec: bool) -> (String, i32, bool) {
    let Some(errno) = e.downcast_ref::<nix::errno::Errno>() else { return (format!("{e:#}"), 1, false) };
    let cmd = e.to_string();
    let cmd = cmd.strip_prefix("exec ").unwrap_or(&cmd);
    let (reason, code) = match errno {
        nix::errno::Errno::ENOENT if !cmd.contains('/') => ("executable file not found in $PATH".to_string(), 127),
        nix::errno::Errno::ENOENT => ("no such file or directory".to_string(), 127),
        nix::errno::Errno::EACCES => ("permission denied".to_string(), 126),
        other => (other.desc().to_lowercase(), 126),
    };
    let text = format!("exec failed: unable to start container process: exec: \"{cmd}\": {reason}");
    if exec {
        (text, 126, true)
    } else {
        (text, code, false)
    }
}

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
// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
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
        /// Docker takes these repeated (one of each per subnet); netd's networks have one subnet.
        #[arg(long)]
        subnet: Vec<String>,
        #[arg(long = "ip-range")]
        ip_range: Vec<String>,
        #[arg(long)]
        gateway: Vec<String>,
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
    #[arg(long = "add-host", value_parser = extra_host)]
    pub add_hosts: Vec<String>,
    /// A DNS server for the container (repeatable): the embedded DNS forwards to it on
    /// user-defined networks; elsewhere it is the container's resolv.conf.
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// KEY=VALUE (or KEY, taken from this environment) for the command.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// KEY=VALUE (or KEY, with an empty value): a label of the container.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
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

/// A failure the CLI reports with its own text and exit code (Docker's `cli.StatusError`):
/// the text goes to stderr as it is (nothing when empty).
#[derive(Debug)]
pub struct Exit {
    pub text: String,
    pub code: i32,
}

impl Exit {
    pub fn new(text: impl Into<String>, code: i32) -> Self {
        Exit { text: text.into(), code }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Exit {}

/// Prints a command's error as Docker's CLI does and exits: an [`Exit`] with its code, any
/// other error as one text with exit code 1.
pub fn exit_with(e: anyhow::Error) -> ! {
    let (text, code) = match e.downcast_ref::<Exit>() {
        Some(x) => (x.text.clone(), x.code),
        None => (e.to_string(), 1),
    };
    if !text.is_empty() {
        eprintln!("{text}");
    }
    std::process::exit(code)
}

/// Docker's CLI check of `--add-host` (`ValidateExtraHost`): `HOST:IP` or `HOST:host-gateway`.
fn extra_host(val: &str) -> Result<String, String> {
    match val.split_once(':') {
        Some(("", _)) | None => Err(format!("bad format for add-host: {val:?}")),
        Some((_, ip)) if ip != "host-gateway" && ip.trim().parse::<std::net::IpAddr>().is_err() => {
            Err(format!("invalid IP address in add-host: {ip:?}"))
        }
        Some(_) => Ok(val.to_string()),
    }
}

/// Parses the command line. A `--` that comes before any IMAGE of `run` starts CMD, so that
/// `run -d --name x -- sleep 9` has no image and runs `sleep 9`. Usage errors get the texts
/// and exit codes of Docker's CLI (cobra), see [`usage_error`].
pub fn parse() -> Cli {
    let argv: Vec<String> = std::env::args().collect();
    parse_from(argv.clone()).unwrap_or_else(|e| match usage_error(&e, &argv) {
        Some(x) => {
            eprintln!("{}", x.text);
            std::process::exit(x.code);
        }
        None => e.exit(),
    })
}

/// The canonical names of the subcommands in `argv` (`["network", "rm"]` for
/// `netd --socket s network remove x`).
fn command_path(argv: &[String]) -> Vec<String> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut path = Vec::new();
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "--socket" {
            args.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        let Some(sub) = cmd.find_subcommand(a).cloned() else { break };
        path.push(sub.get_name().to_string());
        if sub.get_subcommands().next().is_none() {
            break;
        }
        cmd = sub;
    }
    path
}

/// How many positionals a command takes, as cobra says it.
#[derive(Clone, Copy)]
enum Arity {
    None,
    Exactly(usize),
    AtLeast(usize),
    Between(usize, usize),
}

/// Docker's `Args` rule, usage line and description for the commands netd shares with it.
fn docker_usage(path: &str) -> Option<(Arity, &'static str, &'static str)> {
    use Arity::*;
    const CONTAINERS: &str = "[OPTIONS] CONTAINER [CONTAINER...]";
    Some(match path {
        "network create" => (Exactly(1), "[OPTIONS] NETWORK", "Create a network"),
        "network ls" => (None, "[OPTIONS]", "List networks"),
        "network inspect" => {
            (AtLeast(1), "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks")
        }
        "network rm" => (AtLeast(1), "NETWORK [NETWORK...]", "Remove one or more networks"),
        "network prune" => (None, "[OPTIONS]", "Remove all unused networks"),
        "network connect" => (Exactly(2), "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network"),
        "network disconnect" => (Exactly(2), "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network"),
        "run" | "container run" => {
            (AtLeast(1), "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Run a command in a new container")
        }
        "exec" | "container exec" => {
            (AtLeast(2), "[OPTIONS] CONTAINER COMMAND [ARG...]", "Run a command in a running container")
        }
        "ps" | "container ls" => (None, "[OPTIONS]", "List containers"),
        "inspect" => (AtLeast(1), "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on netd objects"),
        "container inspect" => (AtLeast(1), CONTAINERS, "Display detailed information on one or more containers"),
        "rm" | "container rm" => (AtLeast(1), CONTAINERS, "Remove one or more containers"),
        "stop" | "container stop" => (AtLeast(1), CONTAINERS, "Stop one or more running containers"),
        "start" | "container start" => (AtLeast(1), CONTAINERS, "Start one or more stopped containers"),
        "port" | "container port" => (
            Between(1, 2),
            "CONTAINER [PRIVATE_PORT[/PROTO]]",
            "List port mappings or a specific mapping for the container",
        ),
        _ => return Option::None,
    })
}

/// cobra's text for a wrong number of positionals (exit code 1), e.g.
/// `"netd network create" requires exactly 1 argument.`, the `See` line and the usage.
fn arity_error(path: &str) -> Option<Exit> {
    let (arity, usage, about) = docker_usage(path)?;
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let rule = match arity {
        Arity::None => "accepts no arguments".to_string(),
        Arity::Exactly(n) => format!("requires exactly {n} {}", plural(n)),
        Arity::AtLeast(n) => format!("requires at least {n} {}", plural(n)),
        Arity::Between(a, b) => format!("requires at least {a} and at most {b} {}", plural(b)),
    };
    Some(Exit::new(
        format!("\"netd {path}\" {rule}.\nSee 'netd {path} --help'.\n\nUsage:  netd {path} {usage}\n\n{about}"),
        1,
    ))
}

/// Docker's (cobra's and pflag's) text and exit code for a command line that does not parse;
/// `None` leaves it to clap (help, version, netd's own commands).
fn usage_error(e: &clap::Error, argv: &[String]) -> Option<Exit> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let path = command_path(argv).join(" ");
    let context = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => Option::None,
    };
    // Errors about one flag: pflag's text, the `See` line, exit code 125.
    let flag_error = |text: String| Some(Exit::new(format!("{text}\nSee 'netd {path} --help'."), 125));
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg)?;
            if arg.starts_with('-') && arg != "-" {
                flag_error(unknown_flag(&arg, argv)?)
            } else {
                arity_error(&path)
            }
        }
        ErrorKind::MissingRequiredArgument => arity_error(&path),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let (long, short) = flag_names(&context(ContextKind::InvalidArg)?, &path)?;
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                // The flag came last, without its value.
                let word = argv.last().cloned().unwrap_or_default();
                return flag_error(match short {
                    Some(c) if !word.starts_with("--") => format!("flag needs an argument: '{c}' in {word}"),
                    _ => format!("flag needs an argument: --{long}"),
                });
            }
            match (path.as_str(), long.as_str()) {
                // Docker's CLI passes --ip on to its daemon, which refuses it.
                ("run" | "container run", "ip") => Some(Exit::new(
                    format!("netd: Error response from daemon: invalid IPv4 address: {value}.\nSee 'netd run --help'."),
                    125,
                )),
                ("network connect", "ip") => {
                    Some(Exit::new(format!("Error response from daemon: Invalid IPv4 address: {value})"), 1))
                }
                _ => {
                    let name = match short {
                        Some(c) => format!("-{c}, --{long}"),
                        None => format!("--{long}"),
                    };
                    let reason = match long.as_str() {
                        "dns" => format!("{value} is not an ip address"),
                        _ => std::error::Error::source(e)
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "invalid value".into()),
                    };
                    flag_error(format!("invalid argument \"{value}\" for \"{name}\" flag: {reason}"))
                }
            }
        }
        ErrorKind::ArgumentConflict if matches!(path.as_str(), "run" | "container run") => {
            let (long, _) = flag_names(&context(ContextKind::InvalidArg)?, &path)?;
            (long == "network").then(|| several_networks(argv))
        }
        ErrorKind::InvalidSubcommand if path.is_empty() => {
            let name = context(ContextKind::InvalidSubcommand)?;
            Some(Exit::new(format!("netd: '{name}' is not a netd command.\nSee 'netd --help'"), 1))
        }
        // A group without a known command: cobra's listing of the group, on stderr.
        ErrorKind::InvalidSubcommand => group_usage(&path, 1),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => group_usage(&path, 0),
        _ => Option::None,
    }
}

/// cobra's usage of a command group (`netd network`): its commands, sorted, with Docker's
/// descriptions (netd's own commands of the group only).
fn group_usage(path: &str, code: i32) -> Option<Exit> {
    let about = match path {
        "network" => "Manage networks",
        "container" => "Manage containers",
        _ => return Option::None,
    };
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd = cmd.find_subcommand(path)?.clone();
    let mut names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
    names.sort();
    let lines: Vec<String> = names
        .iter()
        .filter_map(|n| docker_usage(&format!("{path} {n}")).map(|(_, _, short)| format!("  {n:<11} {short}")))
        .collect();
    Some(Exit::new(
        format!(
            "\nUsage:  netd {path} COMMAND\n\n{about}\n\nCommands:\n{}\n\nRun 'netd {path} COMMAND --help' for more information on a command.",
            lines.join("\n")
        ),
        code,
    ))
}

/// `run` with `--network` given several times: Docker's CLI refuses a mix with a mode that is
/// no user-defined network (`bridge`, `host`, `none`, `container:X`), its daemon any other.
fn several_networks(argv: &[String]) -> Exit {
    let mut networks = Vec::new();
    let mut args = argv.iter().take_while(|a| *a != "--");
    while let Some(a) = args.next() {
        match a.split_once('=') {
            Some(("--network" | "--net", v)) => networks.push(v.to_string()),
            None if a == "--network" || a == "--net" => networks.extend(args.next().cloned()),
            _ => {}
        }
    }
    let text = if networks.iter().all(|n| names_user_network(n)) {
        format!(
            "netd: Error response from daemon: Container cannot be connected to network endpoints: {}.",
            networks.join(", ")
        )
    } else {
        "netd: conflicting options: cannot attach both user-defined and non-user-defined network-modes.".to_string()
    };
    Exit::new(format!("{text}\nSee 'netd run --help'."), 125)
}

/// Whether a `--network` value names a user-defined network, as Docker's CLI tells them apart:
/// not the default bridge (`default`, `bridge`), `host`, `none` or `container:X`.
fn names_user_network(network: &str) -> bool {
    !["default", "bridge", "host", "none"].contains(&network) && !network.starts_with("container:")
}

/// The long name and the short letter of the flag clap names as `--dns <IP>` or `-o <OPTIONS>`.
fn flag_names(arg: &str, path: &str) -> Option<(String, Option<char>)> {
    let name = arg.split_whitespace().next()?;
    let mut cmd = <Cli as clap::CommandFactory>::command();
    for part in path.split(' ').filter(|p| !p.is_empty()) {
        cmd = cmd.find_subcommand(part)?.clone();
    }
    let found = cmd.get_arguments().find(|a| match name.strip_prefix("--") {
        Some(long) => a.get_long() == Some(long),
        None => name.strip_prefix('-').and_then(|s| s.chars().next()).is_some_and(|c| a.get_short() == Some(c)),
    })?;
    Some((found.get_long()?.to_string(), found.get_short()))
}

/// Docker's text for an unknown option: `unknown flag: --bogus`, or for a short one
/// `unknown shorthand flag: 'x' in -dx` (the whole word it came in).
fn unknown_flag(arg: &str, argv: &[String]) -> Option<String> {
    if arg.starts_with("--") {
        let name = arg.split_once('=').map_or(arg, |(n, _)| n);
        return Some(format!("unknown flag: {name}"));
    }
    let c = arg.strip_prefix('-').and_then(|s| s.chars().next())?;
    let word = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .find(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c))
        .cloned()
        .unwrap_or_else(|| arg.to_string());
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

/// Every command but `daemon`, which each binary starts its own way (`main.rs`,
/// `bin/netd-daemon.rs`).
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Enter(args) => {
            let exec = std::env::var_os(EXEC_ERRORS).is_some();
            // SAFETY: single-threaded here (no runtime yet); the command must not see it.
            unsafe { std::env::remove_var(EXEC_ERRORS) };
            let (text, code, stdout) = enter_failed(&crate::process::enter_and_exec(&args), exec);
            if stdout {
                // Docker's exec ends this line with CRLF (measured on 20.10.24).
                print!("{text}\r\n");
            } else {
                eprintln!("{text}");
            }
            std::process::exit(code)
        }
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "netd",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Daemon(_) => anyhow::bail!("the daemon is started by its binary's main"),
        command => {
            let socket = cli.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run(command, socket))
        }
    }
}

async fn run(command: Command, socket: PathBuf) -> anyhow::Result<()> {
    let client = Client::new(&socket);
    match command {
        Command::Network(cmd) => network::run(&client, cmd).await,
        Command::Container(cmd) => container_command(&client, cmd).await,
        Command::Run(args) => run_checked(&client, args).await.map_err(run_error),
        Command::Exec(args) => exec(&client, args).await,
        Command::Ps(args) => container::ps(&client, args).await,
        Command::Inspect(args) => container::inspect(&client, args).await,
        Command::Rm(args) => container::rm(&client, args).await,
        Command::Stop(args) => container::stop(&client, &args.names).await,
        Command::Start(args) => container::start(&client, &args.names).await,
        Command::Port(args) => container::port(&client, args).await,
        Command::Stats { format } => system::stats(&client, format.as_deref()).await,
        Command::System(SystemCommand::Reset) => system::reset(&client).await,
        Command::Daemon(_) | Command::Completion { .. } | Command::Enter(_) => {
            unreachable!("handled in dispatch")
        }
    }
}

/// `run`, after the checks Docker's CLI makes itself (`parseNetworkOpts`).
async fn run_checked(client: &Client, args: RunArgs) -> anyhow::Result<()> {
    if !args.aliases.is_empty() && args.network.as_deref().is_some_and(|n| !names_user_network(n)) {
        anyhow::bail!("network-scoped aliases are only supported for user-defined networks");
    }
    container::run(client, args).await
}

/// `exec`: a container the daemon does not know is `Error: No such container: X`.
async fn exec(client: &Client, args: ExecArgs) -> anyhow::Result<()> {
    let name = args.container.clone();
    container::exec(client, args).await.map_err(|e| batch::no_such(e, "container", &name))
}

/// Docker's `reportError` for `run`: `netd: TEXT.` (with one period at the end), then
/// `See 'netd run --help'.`, exit code 125. Errors that Docker's daemon only finds when it
/// starts the container it has created have no `See` line.
fn run_error(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<Exit>().is_some() {
        return e;
    }
    let text = e.to_string();
    let help = if is_start_error(&text) { "" } else { "\nSee 'netd run --help'." };
    Exit::new(format!("netd: {}.{help}", text.strip_suffix('.').unwrap_or(&text)), 125).into()
}

/// The daemon errors that Docker 20.10 reports when it starts a container (after creating
/// it), not when it creates it (measured: network/container lookups of --network, --ip,
/// addresses, published ports).
fn is_start_error(text: &str) -> bool {
    let Some(message) = text.strip_prefix("Error response from daemon: ") else { return false };
    (message.starts_with("network ") && message.ends_with(" not found"))
        || [
            "No such container: ",
            "Address already in use",
            "Invalid address ",
            "user specified IP address is supported",
            "no available IPv4 addresses",
            "driver failed programming external connectivity",
            "cannot join network of a non running container",
            // netd's own: a full endpoint or port map is found where Docker finds a full pool.
            "netd's datapath holds at most ",
        ]
        .iter()
        .any(|p| message.starts_with(p))
}

/// `netd container ...`: the same commands; `container inspect` looks for containers only.
async fn container_command(client: &Client, cmd: ContainerCommand) -> anyhow::Result<()> {
    match cmd {
        ContainerCommand::Run(args) => run_checked(client, args).await.map_err(run_error),
        ContainerCommand::Exec(args) => exec(client, args).await,
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
    fn commands_that_cannot_start_exit_as_in_docker() {
        let err = |errno, cmd: &str| anyhow::Error::new(errno).context(format!("exec {cmd}"));
        let not_found = err(nix::errno::Errno::ENOENT, "nosuchcmd");
        let text =
            "exec failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH";
        assert_eq!(enter_failed(&not_found, true), (text.to_string(), 126, true));
        assert_eq!(enter_failed(&not_found, false), (text.to_string(), 127, false));
        let denied = err(nix::errno::Errno::EACCES, "/etc");
        let text = "exec failed: unable to start container process: exec: \"/etc\": permission denied";
        assert_eq!(enter_failed(&denied, true), (text.to_string(), 126, true));
        assert_eq!(enter_failed(&denied, false).1, 126);
        assert_eq!(enter_failed(&anyhow::anyhow!("open netns x: gone"), true), ("open netns x: gone".into(), 1, false));
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
        parse_from(argv.clone()).err().map(|e| match usage_error(&e, &argv) {
            Some(x) => x.text.lines().next().unwrap_or_default().to_string(),
            None => format!("other: {e}"),
        })
    }

    /// What `netd` prints for a command line that does not parse, and its exit code.
    fn usage(args: &[&str]) -> (String, i32) {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let e = parse_from(argv.clone()).expect_err("parses");
        let x = usage_error(&e, &argv).unwrap_or_else(|| panic!("clap's own: {e}"));
        (x.text, x.code)
    }

    #[test]
    fn usage_errors_get_cobras_texts_and_codes() {
        assert_eq!(
            usage(&["netd", "network", "create"]),
            (
                "\"netd network create\" requires exactly 1 argument.\nSee 'netd network create --help'.\n\n\
                 Usage:  netd network create [OPTIONS] NETWORK\n\nCreate a network"
                    .to_string(),
                1
            )
        );
        assert!(usage(&["netd", "network", "create", "a", "b"])
            .0
            .starts_with("\"netd network create\" requires exactly 1"));
        assert!(usage(&["netd", "--socket", "/x", "network", "remove"])
            .0
            .starts_with("\"netd network rm\" requires at least 1 argument."));
        assert!(usage(&["netd", "network", "connect", "x"])
            .0
            .starts_with("\"netd network connect\" requires exactly 2 arguments."));
        assert!(usage(&["netd", "ps", "x"]).0.starts_with("\"netd ps\" accepts no arguments."));
        assert!(usage(&["netd", "container", "list", "x"])
            .0
            .starts_with("\"netd container ls\" accepts no arguments."));
        assert!(usage(&["netd", "exec", "x"]).0.starts_with("\"netd exec\" requires at least 2 arguments."));
        assert!(usage(&["netd", "port", "a", "b", "c"])
            .0
            .starts_with("\"netd port\" requires at least 1 and at most 2 arguments."));
        assert_eq!(
            usage(&["netd", "rm", "--bogus", "x"]),
            ("unknown flag: --bogus\nSee 'netd rm --help'.".into(), 125)
        );
        assert_eq!(
            usage(&["netd", "network", "create", "--subnet"]),
            ("flag needs an argument: --subnet\nSee 'netd network create --help'.".into(), 125)
        );
        assert_eq!(
            usage(&["netd", "run", "-h"]),
            ("flag needs an argument: 'h' in -h\nSee 'netd run --help'.".into(), 125)
        );
        assert_eq!(
            usage(&["netd", "run", "--dns", "abc", "busybox"]),
            (
                "invalid argument \"abc\" for \"--dns\" flag: abc is not an ip address\nSee 'netd run --help'.".into(),
                125
            )
        );
        assert_eq!(
            usage(&["netd", "run", "--add-host", "nocolon", "busybox"]),
            (
                "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\"\nSee 'netd run --help'."
                    .into(),
                125
            )
        );
        assert_eq!(
            usage(&["netd", "run", "--ip", "10.0.0.300", "busybox"]),
            ("netd: Error response from daemon: invalid IPv4 address: 10.0.0.300.\nSee 'netd run --help'.".into(), 125)
        );
        assert_eq!(
            usage(&["netd", "network", "connect", "--ip", "abc", "n", "c"]),
            ("Error response from daemon: Invalid IPv4 address: abc)".into(), 1)
        );
        assert_eq!(
            usage(&["netd", "run", "-d", "--network", "en", "--net=auto", "busybox"]),
            (
                "netd: Error response from daemon: Container cannot be connected to network endpoints: en, auto.\n\
                 See 'netd run --help'."
                    .into(),
                125
            )
        );
        assert_eq!(
            usage(&["netd", "run", "-d", "--network", "en", "--network", "container:c1", "busybox"]),
            (
                "netd: conflicting options: cannot attach both user-defined and non-user-defined network-modes.\n\
                 See 'netd run --help'."
                    .into(),
                125
            )
        );
        let network = "\nUsage:  netd network COMMAND\n\nManage networks\n\nCommands:\n\
            \x20 connect     Connect a container to a network\n\
            \x20 create      Create a network\n\
            \x20 disconnect  Disconnect a container from a network\n\
            \x20 inspect     Display detailed information on one or more networks\n\
            \x20 ls          List networks\n\
            \x20 prune       Remove all unused networks\n\
            \x20 rm          Remove one or more networks\n\n\
            Run 'netd network COMMAND --help' for more information on a command.";
        assert_eq!(usage(&["netd", "network", "bogus"]), (network.to_string(), 1));
        assert_eq!(usage(&["netd", "network"]), (network.to_string(), 0));
        assert_eq!(usage(&["netd", "bogus"]), ("netd: 'bogus' is not a netd command.\nSee 'netd --help'".into(), 1));
    }

    #[test]
    fn run_errors_are_reported_as_docker_run_does() {
        let text = |e: &str| run_error(anyhow::anyhow!("{e}")).to_string();
        assert_eq!(text("Invalid containerPort: abc"), "netd: Invalid containerPort: abc.\nSee 'netd run --help'.");
        assert_eq!(
            text("Error response from daemon: network nosuch not found"),
            "netd: Error response from daemon: network nosuch not found."
        );
        assert_eq!(
            text("Error response from daemon: Conflict. The container name \"/c1\" is already in use."),
            "netd: Error response from daemon: Conflict. The container name \"/c1\" is already in use.\nSee 'netd run --help'."
        );
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
