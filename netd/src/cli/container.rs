//! Container commands: `run`, `exec`, `ps`, `inspect`, `rm`, `stop` and `start` (also as
//! `netd container ...`).
use std::os::unix::process::CommandExt;

use anyhow::{bail, Context};
use serde::Serialize;

use super::{
    batch::{fetch_all, for_each, no_such, Report, DOCKER_PARALLEL},
    human,
    output::{ellipsis, print_inspect, print_rows, Filters, ListFormat},
    ExecArgs, InspectArgs, PortArgs, PsArgs, RmArgs, RunArgs,
};
use crate::{
    api_types::{ContainerView, NetworkView, RemoveContainer, RunContainer, StopContainer},
    client::{Client, DaemonError},
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
    // Bad specs are refused here with Docker's texts, before the daemon is asked.
    let ports = crate::ports::parse_specs(&args.publish).map_err(anyhow::Error::msg)?;
    if !ports.is_empty() && args.network.as_deref() == Some("host") {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    let interactive = args.interactive || args.tty;
    if cmd.is_empty() && interactive && !args.detach {
        // Docker would run the image's shell; netd runs the user's.
        cmd = vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())];
    }
    // Without -d a command runs attached to this terminal; without a command there is
    // nothing to attach to, and the container (its netns) simply stays up.
    let attach = !args.detach && !cmd.is_empty();
    // Every field, no `..Default::default()`: a new field of the request must be filled here.
    let req = RunContainer {
        name: args.name,
        network: args.network,
        ip: args.ip,
        aliases: args.aliases,
        hostname: args.hostname,
        cmd,
        image,
        env: resolve_env(&args.env),
        auto_remove: args.rm,
        links: args.links,
        add_hosts: args.add_hosts,
        dns: args.dns,
        ports,
        attach,
        labels: super::network::key_values(&args.labels),
        tty: args.tty,
        open_stdin: args.interactive,
    };
    let id = client.run(&req).await?.id;
    if !attach {
        println!("{id}");
        return Ok(());
    }
    // The daemon starts the command with this terminal's stdio and, once it has exited,
    // stops the container (or with --rm removes it) before it reports the code.
    let code = crate::attach::run_attached(client.socket(), &id)?;
    std::process::exit(code);
}

/// `netd __enter` arguments for a command in the container `c`, whose SandboxKey the caller
/// checked.
fn enter_args(c: &ContainerView, netns: String, cmd: Vec<String>, extra_env: Vec<String>) -> EnterArgs {
    let mut env = c.config.env.clone().unwrap_or_default();
    env.extend(extra_env);
    EnterArgs {
        netns,
        hosts: non_empty(&c.hosts_path),
        resolv: non_empty(&c.resolv_conf_path),
        hostname: non_empty(&c.config.hostname),
        env,
        cmd,
    }
}

pub(super) async fn exec(client: &Client, args: ExecArgs) -> anyhow::Result<()> {
    let c = client.container(&args.container).await?;
    // The daemon names the netns (a `container:` sharer has, as in Docker, no SandboxKey of
    // its own in inspect), `""` unless the container runs. Never run "in the container"
    // without it: that would be the caller's netns.
    let Some(netns) = non_empty(&client.container_netns(&c.id).await?.path) else {
        bail!("Error response from daemon: Container {} is not running", c.id);
    };
    let enter = enter_args(&c, netns, args.cmd, resolve_env(&args.env));
    let mut cmd = crate::process::own_binary();
    cmd.args(enter.to_args()).env(super::EXEC_ERRORS, "1");
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
    let query = RemoveContainer { force: args.force };
    let query = &query;
    let report = Report::AtTheEnd { no_such: Some("container"), force: args.force };
    // Up to 50 removals at once, as Docker's CLI: their kernel waits overlap.
    for_each(&args.names, DOCKER_PARALLEL, report, |name| async move {
        client.remove_container(&name, query).await.map(drop)
    })
    .await
}

/// `stop`: prints each name as given, like Docker, which also stops up to 50 at once.
pub(super) async fn stop(client: &Client, names: &[String]) -> anyhow::Result<()> {
    let report = Report::AtTheEnd { no_such: None, force: false };
    for_each(
        names,
        DOCKER_PARALLEL,
        report,
        |name| async move { client.stop(&name, &StopContainer {}).await.map(drop) },
    )
    .await
}

/// `start`: prints each name as given, like Docker; each failure on its own line, then
/// Docker's `Error: failed to start containers: A, B` (exit 1). One after another, as Docker.
pub(super) async fn start(client: &Client, names: &[String]) -> anyhow::Result<()> {
    for_each(names, 1, Report::Start, |name| async move { client.start(&name).await.map(drop) }).await
}

/// `netd port NAME [PORT[/PROTO]]`: Docker's lines, `80/tcp -> 0.0.0.0:8080` for every
/// published port, or the host addresses of one port.
pub(super) async fn port(client: &Client, args: PortArgs) -> anyhow::Result<()> {
    let c = client.container(&args.container).await.map_err(|e| no_such(e, "container", &args.container))?;
    print!("{}", port_lines(&c, &args.container, args.port.as_deref())?);
    Ok(())
}

/// Docker 20.10 prints its map of ports in Go's map order: a random rotation of the order of
/// the keys as strings ("5000/tcp" < "53/udp" < "80/tcp"), which is the order used here, every
/// time. One port is looked up as Docker's CLI does (`nat.NewPort`: the number must parse,
/// with Go's `ParseUint` texts; "080" finds 80).
fn port_lines(c: &ContainerView, name: &str, port: Option<&str>) -> anyhow::Result<String> {
    let ports = &c.network_settings.ports;
    let Some(port) = port else {
        let mut out = String::new();
        for (key, bindings) in ports.iter() {
            for b in bindings {
                out += &format!("{key} -> {}\n", crate::ports::join_host_port(&b.host_ip, &b.host_port));
            }
        }
        return Ok(out);
    };
    // As Docker's CLI: only a non-empty protocol is split off ("80/" stays a bad number).
    let (number, proto) = match port.split_once('/') {
        Some((n, p)) if !p.is_empty() => (n, p),
        _ => (port, "tcp"),
    };
    let key = format!("{number}/{proto}");
    let found = format!("{}/{proto}", go_port_range(number)?);
    match ports.get(&found) {
        Some(bindings) if !bindings.is_empty() => Ok(bindings
            .iter()
            .map(|b| format!("{}\n", crate::ports::join_host_port(&b.host_ip, &b.host_port)))
            .collect()),
        _ => bail!("Error: No public port '{key}' published for {name}"),
    }
}

/// go-connections' `ParsePortRangeToInt` as `nat.NewPort` formats it: `80`, `8000-8010`;
/// Docker's texts for what does not parse.
fn go_port_range(text: &str) -> anyhow::Result<String> {
    let parse = |s: &str| -> anyhow::Result<u16> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            bail!("strconv.ParseUint: parsing {s:?}: invalid syntax");
        }
        s.parse::<u16>().map_err(|_| anyhow::anyhow!("strconv.ParseUint: parsing {s:?}: value out of range"))
    };
    if text.is_empty() {
        bail!("empty string specified for ports.");
    }
    let Some((a, b)) = text.split_once('-') else {
        return Ok(parse(text)?.to_string());
    };
    let (start, end) = (parse(a)?, parse(b)?);
    if end < start {
        bail!("Invalid range specified for the Port: {text}");
    }
    Ok(if start == end { start.to_string() } else { format!("{start}-{end}") })
}

/// What `inspect` finds under a name.
#[derive(Serialize)]
#[serde(untagged)]
enum Inspected {
    Container(Box<ContainerView>),
    Network(Box<NetworkView>),
}

pub(super) async fn inspect(client: &Client, args: InspectArgs) -> anyhow::Result<()> {
    let kind = args.kind.clone();
    match kind.as_deref() {
        None | Some("container") | Some("network") => {}
        Some(other) => bail!("\"{other}\" is not a valid value for --type"),
    }
    // Docker's client: `No such container`/`network` with --type, else `No such object`.
    let no_such = match kind.as_deref() {
        Some("network") => "network",
        Some(_) => "container",
        None => "object",
    };
    let (found, errors) = fetch_all(&args.names, no_such, |name| {
        let kind = kind.clone();
        async move {
            let network = || async { client.network(&name).await.map(|n| Inspected::Network(Box::new(n))) };
            match kind.as_deref() {
                Some("network") => network().await,
                Some(_) => client.container(&name).await.map(|c| Inspected::Container(Box::new(c))),
                None => match client.container(&name).await {
                    Ok(c) => Ok(Inspected::Container(Box::new(c))),
                    Err(e) if DaemonError::is_not_found(&e) => network().await,
                    Err(e) => Err(e),
                },
            }
        }
    })
    .await;
    print_inspect((found, errors), args.format.as_deref())
}

pub(super) async fn ps(client: &Client, args: PsArgs) -> anyhow::Result<()> {
    let filters = ps_filters(&args.filters)?;
    let mut list = client.containers().await?;
    // Newest first, like Docker.
    list.sort_by(|a, b| b.created.cmp(&a.created));
    let last = if args.latest { 1 } else { args.last };
    let list = select_containers(list, &filters, args.all || filters.contains("status") || last > 0)?;
    let list = if last > 0 { list.into_iter().take(last as usize).collect() } else { list };
    let id = |c: &ContainerView| if args.no_trunc { c.id.clone() } else { c.id[..12].to_string() };
    // As Docker: -q is the default format's; a --format wins.
    if args.quiet && args.format.as_deref().is_none_or(str::is_empty) {
        list.iter().for_each(|c| println!("{}", id(c)));
        return Ok(());
    }
    let rows: Vec<PsRow> = list.iter().map(|c| PsRow::new(c, id(c), args.no_trunc)).collect();
    print_rows(args.format.as_deref(), &PS_FORMAT, &rows)
}

/// The filter keys Docker's daemon knows for containers.
const PS_FILTERS: [&str; 15] = [
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// `ps --filter`, with Docker's texts for the values it refuses.
fn ps_filters(args: &[String]) -> anyhow::Result<Filters> {
    let filters = Filters::parse(args, "ps", &PS_FILTERS)?;
    const STATES: [&str; 7] = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];
    if let Some(s) = filters.get("status").into_iter().find(|s| !STATES.contains(s)) {
        bail!("Error response from daemon: Invalid filter 'status={s}'");
    }
    if let Some(code) = filters.get("exited").into_iter().find(|c| c.parse::<i32>().is_err()) {
        bail!("Error response from daemon: strconv.Atoi: parsing {code:?}: invalid syntax");
    }
    if let Some(h) =
        filters.get("health").into_iter().find(|h| !["starting", "healthy", "unhealthy", "none"].contains(h))
    {
        bail!("Error response from daemon: Unrecognised filter value for health: {h}");
    }
    let tasks = filters.get("is-task");
    if tasks.iter().any(|t| !["true", "false"].contains(t)) {
        bail!("Error response from daemon: Invalid filter 'is-task=[{}]'", tasks.join(" "));
    }
    Ok(filters)
}

/// The containers (newest first) that `ps` lists: running ones unless `all`, and those the
/// filters match, as Docker's daemon filters them: `name` a regular expression searched for in
/// `/NAME`, `id` a prefix, `network` a network name or a prefix of its id, `ancestor` the image
/// reference (`busybox` = `busybox:latest`), `before`/`since` created before or after the
/// container named, `publish`/`expose` a published host port or a container port
/// (`80[/tcp]`), `label` KEY or KEY=VALUE. netd containers have no volumes, health checks or
/// tasks.
fn select_containers(list: Vec<ContainerView>, filters: &Filters, all: bool) -> anyhow::Result<Vec<ContainerView>> {
    let created_of = |key: &str| -> anyhow::Result<Option<String>> {
        let Some(name) = filters.get(key).last().copied() else {
            return Ok(None);
        };
        let found = list.iter().find(|c| c.name.trim_start_matches('/') == name || c.id.starts_with(name));
        match found {
            Some(c) if !name.is_empty() => Ok(Some(c.created.clone())),
            _ => bail!("Error response from daemon: no such container {name}"),
        }
    };
    let (before, since) = (created_of("before")?, created_of("since")?);
    let port_matches = |c: &ContainerView, v: &str, published: bool| {
        let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        c.network_settings.ports.iter().any(|(key, bindings)| {
            let (private, p) = key.split_once('/').unwrap_or((key, "tcp"));
            p == proto && if published { bindings.iter().any(|b| b.host_port == port) } else { private == port }
        })
    };
    let matches = |c: &ContainerView| {
        let networks = &c.network_settings.networks;
        (all || c.state.running)
            && filters.any_regex("name", &c.name)
            && filters.any("id", |v| c.id.starts_with(v))
            && filters.any("status", |v| c.state.status == v)
            && filters.any("exited", |v| c.state.status == "exited" && v.parse() == Ok(c.state.exit_code))
            && filters.labels(&c.config.labels)
            && filters.any("ancestor", |v| image_reference(v) == image_reference(&c.config.image))
            && filters.any("network", |v| {
                networks.contains_key(v) || networks.values().any(|e| !v.is_empty() && e.network_id.starts_with(v))
            })
            && before.as_ref().is_none_or(|t| c.created < *t)
            && since.as_ref().is_none_or(|t| c.created > *t)
            && filters.any("publish", |v| port_matches(c, v, true))
            && filters.any("expose", |v| port_matches(c, v, false))
            && filters.any("health", |v| v == "none")
            && filters.any("is-task", |v| v == "false")
            && filters.any("volume", |_| false)
            && filters.any("isolation", |v| v == "default")
    };
    Ok(list.into_iter().filter(|c| matches(c)).collect())
}

/// An image reference with Docker's defaults: `busybox` is `docker.io/library/busybox:latest`.
fn image_reference(image: &str) -> String {
    let name = image.strip_prefix("docker.io/").unwrap_or(image);
    let name = name.strip_prefix("library/").unwrap_or(name);
    let tagged = name.rsplit_once(':').is_some_and(|(_, tag)| !tag.contains('/')) || name.contains('@');
    if tagged {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// `ps`'s formats as Docker's CLI has them: the default table and each field's column title.
const PS_FORMAT: ListFormat = ListFormat {
    default_table:
        "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}",
    headers: &[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ],
    context_type: "*formatter.ContainerContext",
    parse_error: "failed to parse template: ",
    exec_error: "failed to execute template: ",
};

/// One `ps` row: Docker's `--format` field names, in the order `--format json` prints them.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PsRow {
    command: String,
    created_at: String,
    #[serde(rename = "ID")]
    id: String,
    image: String,
    labels: String,
    local_volumes: String,
    mounts: String,
    names: String,
    networks: String,
    ports: String,
    running_for: String,
    size: String,
    state: String,
    status: String,
}

impl PsRow {
    fn new(c: &ContainerView, id: String, no_trunc: bool) -> Self {
        let cmd = command_line(c.config.cmd.as_deref().unwrap_or_default());
        let command = if no_trunc { cmd } else { ellipsis(&cmd, 20) };
        let status = if c.state.running {
            format!("Up {}", human::human_duration(human::seconds_since(&c.state.started_at)))
        } else if c.state.status == "created" {
            "Created".into()
        } else {
            format!("Exited ({}) {}", c.state.exit_code, human::ago(&c.state.finished_at))
        };
        let networks: Vec<&str> = c.network_settings.networks.keys().map(String::as_str).collect();
        PsRow {
            command: super::template::go_quote(&command),
            created_at: human::go_time(&c.created, false),
            id,
            image: c.config.image.clone(),
            labels: super::network::labels_string(&c.config.labels),
            local_volumes: "0".into(),
            mounts: String::new(),
            names: c.name.trim_start_matches('/').to_string(),
            networks: networks.join(","),
            ports: ps_ports(c),
            running_for: human::ago(&c.created),
            size: "0B".into(),
            state: c.state.status.clone(),
            status,
        }
    }
}

/// Docker's `Command` of a container: the path, then each argument, in single quotes when it
/// has a space.
fn command_line(cmd: &[String]) -> String {
    let quoted =
        cmd.iter().enumerate().map(|(i, a)| if i > 0 && a.contains(' ') { format!("'{a}'") } else { a.clone() });
    quoted.collect::<Vec<_>>().join(" ")
}

/// The PORTS column: the published ports of `NetworkSettings.Ports`, Docker's way.
fn ps_ports(c: &ContainerView) -> String {
    let ports = c
        .network_settings
        .ports
        .iter()
        .flat_map(|(key, bindings)| {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let private_port = port.parse().unwrap_or(0);
            bindings.iter().map(move |b| crate::ports::DisplayPort {
                ip: b.host_ip.clone(),
                private_port,
                public_port: b.host_port.parse().unwrap_or(0),
                proto: proto.to_string(),
            })
        })
        .collect();
    crate::ports::displayable_ports(ports)
}

fn non_empty(s: &str) -> Option<String> {
    Some(s).filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::{ContainerConfig, ContainerState, EndpointSettings, NetworkSettings, PortBinding};

    fn with_ports(ports: &[(&str, &str, &str)]) -> ContainerView {
        let mut c = ContainerView::default();
        for (key, ip, port) in ports {
            c.network_settings
                .ports
                .entry(key.to_string())
                .or_default()
                .push(PortBinding { host_ip: ip.to_string(), host_port: port.to_string() });
        }
        c
    }

    #[test]
    fn port_prints_dockers_lines() {
        let c = with_ports(&[
            ("8080/tcp", "0.0.0.0", "8080"),
            ("80/tcp", "0.0.0.0", "32768"),
            ("80/tcp", "127.0.0.1", "8081"),
            ("53/udp", "0.0.0.0", "5353"),
            ("100/tcp", "0.0.0.0", "100"),
        ]);
        // Docker's keys in string order, as its CLI prints them (a rotation of it at random).
        assert_eq!(
            port_lines(&c, "web", None).unwrap(),
            "100/tcp -> 0.0.0.0:100\n53/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:32768\n80/tcp -> 127.0.0.1:8081\n\
             8080/tcp -> 0.0.0.0:8080\n"
        );
        assert_eq!(port_lines(&c, "web", Some("080")).unwrap(), "0.0.0.0:32768\n127.0.0.1:8081\n");
        for (port, error) in [
            ("abc", "strconv.ParseUint: parsing \"abc\": invalid syntax"),
            ("99999", "strconv.ParseUint: parsing \"99999\": value out of range"),
            ("", "empty string specified for ports."),
            ("90-80", "Invalid range specified for the Port: 90-80"),
            ("80/", "strconv.ParseUint: parsing \"80/\": invalid syntax"),
        ] {
            assert_eq!(port_lines(&c, "web", Some(port)).unwrap_err().to_string(), error, "{port:?}");
        }
        assert_eq!(port_lines(&c, "web", Some("80")).unwrap(), "0.0.0.0:32768\n127.0.0.1:8081\n");
        assert_eq!(port_lines(&c, "web", Some("80/tcp")).unwrap(), "0.0.0.0:32768\n127.0.0.1:8081\n");
        assert_eq!(port_lines(&c, "web", Some("53/udp")).unwrap(), "0.0.0.0:5353\n");
        for (port, key) in [("81", "81/tcp"), ("53", "53/tcp"), ("80/udp", "80/udp")] {
            assert_eq!(
                port_lines(&c, "web", Some(port)).unwrap_err().to_string(),
                format!("Error: No public port '{key}' published for web")
            );
        }
        assert_eq!(port_lines(&ContainerView::default(), "web", None).unwrap(), "");
    }

    #[test]
    fn ps_ports_column() {
        let c = with_ports(&[
            ("80/tcp", "0.0.0.0", "8080"),
            ("9000/tcp", "0.0.0.0", "9000"),
            ("9001/tcp", "0.0.0.0", "9001"),
            ("9002/tcp", "0.0.0.0", "9002"),
        ]);
        assert_eq!(ps_ports(&c), "0.0.0.0:9000-9002->9000-9002/tcp, 0.0.0.0:8080->80/tcp");
        let row = PsRow::new(&ContainerView { id: "ab".repeat(32), ..c }, "abababababab".into(), false);
        assert_eq!(row.ports, "0.0.0.0:9000-9002->9000-9002/tcp, 0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn ps_rows_have_dockers_fields_in_its_order() {
        let c = ContainerView {
            id: "cd".repeat(32),
            created: "2024-01-02T03:04:05.000000006Z".into(),
            name: "/web".into(),
            state: ContainerState {
                status: "exited".into(),
                exit_code: 137,
                finished_at: "2024-01-02T04:00:00Z".into(),
                ..Default::default()
            },
            config: ContainerConfig {
                image: "busybox".into(),
                cmd: Some(["sh", "-c", "sleep 600 && echo done"].map(String::from).to_vec()),
                ..Default::default()
            },
            network_settings: NetworkSettings {
                networks: [("n2", EndpointSettings::default()), ("bridge", EndpointSettings::default())]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let row = serde_json::to_value(PsRow::new(&c, c.id[..12].to_string(), false)).unwrap();
        let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Command",
                "CreatedAt",
                "ID",
                "Image",
                "Labels",
                "LocalVolumes",
                "Mounts",
                "Names",
                "Networks",
                "Ports",
                "RunningFor",
                "Size",
                "State",
                "Status"
            ]
        );
        assert!(PS_FORMAT.headers.iter().all(|(k, _)| keys.contains(k)));
        assert_eq!(row["Command"], "\"sh -c 'sleep 600 &&…\"");
        assert_eq!(row["ID"], "cdcdcdcdcdcd");
        assert_eq!(row["Names"], "web");
        assert_eq!(row["Networks"], "bridge,n2");
        assert_eq!(row["State"], "exited");
        assert!(row["Status"].as_str().unwrap().starts_with("Exited (137) "), "{}", row["Status"]);
    }
}
