//! `--format` and `--filter` end to end, against what Docker 20.10.24 prints (measured on a
//! real dockerd): `ps` and `network ls` tables (Go's tabwriter: columns as wide as their
//! widest cell plus three, at least ten), `table` formats with headers, `\t`, `{{json .}}`,
//! `-q`/`--no-trunc`/`-n`/`-l`, the filters and their errors (texts and exit codes), and
//! `inspect -f` templates (Go's printing of structs and maps, template errors).
use netd_tests::TestHost;
use serde_json::Value;

/// Exit code, stdout, stderr.
fn run(host: &TestHost, args: &[&str]) -> (i32, String, String) {
    let out = host.netd(args);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Where each column of a tabwriter table starts, from its header.
fn column_starts(header: &str, titles: &[&str]) -> Vec<usize> {
    titles.iter().map(|t| header.find(t).unwrap_or_else(|| panic!("{t} in {header:?}"))).collect()
}

/// Containers: `db` (bridge), `web` (front, -p 8080:80), `sh-cmd` (a command with spaces),
/// `gone` (stopped: Exited (137)); created in that order.
fn containers(host: &TestHost) {
    host.ok(&["network", "create", "front"]);
    host.ok(&["run", "-d", "--name", "db", "busybox", "sleep", "2000"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "front", "-p", "8080:80", "busybox", "sleep", "1000"]);
    host.ok(&["run", "-d", "--name", "sh-cmd", "busybox", "sh", "-c", "sleep 600 && echo done and more"]);
    host.ok(&["run", "-d", "--name", "gone", "busybox", "sleep", "900"]);
    host.ok(&["stop", "gone"]);
}

#[test]
fn ps_tables_and_formats() {
    let host = TestHost::start();
    containers(&host);
    let id = |name: &str| host.json(&["inspect", name])[0]["Id"].as_str().unwrap().to_string();

    // The default table: newest first, every cell starting under its title.
    let ps = host.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    let titles = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
    let starts = column_starts(lines[0], &titles);
    assert_eq!(&starts[..3], [0, 15, 25], "{ps}");
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED"), "{ps}");
    assert_eq!(lines.len(), 4, "{ps}");
    // Cells by character: `…` is one column wide.
    let cell = |line: &str, from: usize, to: Option<usize>| -> String {
        let chars: Vec<char> = line.chars().collect();
        chars[from..to.unwrap_or(chars.len())].iter().collect()
    };
    for (line, name) in lines[1..].iter().zip(["sh-cmd", "web", "db"]) {
        assert!(line.starts_with(&id(name)[..12]), "{line}");
        assert_eq!(cell(line, starts[6], None), name, "{ps}");
        assert_eq!(cell(line, starts[1], Some(starts[1] + 7)), "busybox");
        assert!(cell(line, starts[4], None).starts_with("Up "), "{line}");
        assert!(cell(line, starts[3], Some(starts[4])).trim_end().ends_with(" ago"), "{line}");
    }
    // COMMAND: arguments with spaces in single quotes, cut at 20 characters with "…", quoted.
    assert!(lines[1].contains("   \"sh -c 'sleep 600 &&…\"   "), "{ps}");
    assert!(lines[2].contains("   \"sleep 1000\"           "), "{ps}");
    // PORTS: an empty cell is padded like the others.
    assert_eq!(cell(lines[2], starts[5], Some(starts[6])), "0.0.0.0:8080->80/tcp   ");
    assert_eq!(cell(lines[3], starts[5], Some(starts[6])).trim(), "");

    // Time-independent columns, byte for byte.
    let table = host.ok(&["ps", "-a", "--format", r"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}"]);
    let expected = format!(
        "CONTAINER ID   IMAGE     COMMAND                  PORTS                  NAMES\n\
         {}   busybox   \"sleep 900\"                                     gone\n\
         {}   busybox   \"sh -c 'sleep 600 &&…\"                          sh-cmd\n\
         {}   busybox   \"sleep 1000\"             0.0.0.0:8080->80/tcp   web\n\
         {}   busybox   \"sleep 2000\"                                    db\n",
        &id("gone")[..12],
        &id("sh-cmd")[..12],
        &id("web")[..12],
        &id("db")[..12]
    );
    assert_eq!(table, expected);
    assert_eq!(
        host.ok(&["ps", "--format", r"table {{.Names}}\t{{.Ports}}", "-f", "name=^/(db|web)$"]),
        "NAMES     PORTS\nweb       0.0.0.0:8080->80/tcp\ndb        \n"
    );
    assert_eq!(host.ok(&["ps", "--format", r"{{.Names}}\t{{.State}}", "-f", "name=db"]), "db\trunning\n");
    assert_eq!(host.ok(&["ps", "--format", r"table {{upper .Names}}", "-f", "name=db"]), "NAMES\nDB\n");
    assert_eq!(host.ok(&["ps", "--format", "  {{.Names}}  ", "-l"]), "gone\n");
    let stopped = host.ok(&["ps", "-a", "--format", "{{.Status}}", "-f", "name=gone"]);
    assert!(stopped.starts_with("Exited (137) ") && stopped.ends_with(" ago\n"), "{stopped}");
    assert_eq!(
        host.ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Command}}", "-f", "name=sh-cmd"]),
        format!("{} \"sh -c 'sleep 600 && echo done and more'\"\n", id("sh-cmd"))
    );

    // -q, --no-trunc, -n, -l; a --format wins over -q.
    assert_eq!(host.ok(&["ps", "-q"]), format!("{}\n{}\n{}\n", &id("sh-cmd")[..12], &id("web")[..12], &id("db")[..12]));
    assert_eq!(host.ok(&["ps", "-aq", "--no-trunc"]).lines().next().unwrap(), id("gone"));
    assert_eq!(host.ok(&["ps", "-q", "--format", "{{.Names}}", "-f", "name=web"]), "web\n");
    assert_eq!(host.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]), "gone\nsh-cmd\n");
    assert_eq!(host.ok(&["ps", "-l", "-q"]), format!("{}\n", &id("gone")[..12]));
    assert_eq!(host.ok(&["ps", "-n", "0", "--format", "{{.Names}}"]), "sh-cmd\nweb\ndb\n");

    // {{json .}}: Docker's keys in order, its HTML escaping; `json` prints the same.
    let json = host.ok(&["ps", "--format", "{{json .}}", "-f", "name=web"]);
    assert!(json.contains(r#""Ports":"0.0.0.0:8080-\u003e80/tcp""#), "{json}");
    let row: Value = serde_json::from_str(&json).unwrap();
    // Docker's row keys in their (sorted) order; the full list is pinned by cli::container's
    // unit test.
    let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(keys.is_sorted() && keys.len() == 14, "{keys:?}");
    assert!(["Command", "Labels", "Names", "Networks", "Ports", "Status"].iter().all(|k| keys.contains(k)), "{keys:?}");
    assert_eq!((&row["Names"], &row["Networks"], &row["State"]), (&"web".into(), &"front".into(), &"running".into()));
    assert_eq!(host.ok(&["ps", "--format", "json", "-f", "name=web"]), json);

    // Template failures: Docker's texts, exit code 1, nothing printed.
    for (format, error) in [
        ("{{.Names", "failed to parse template: template: :1: unclosed action"),
        ("{{nosuch .Names}}", "failed to parse template: template: :1: function \"nosuch\" not defined"),
        (
            "{{.Nope}}",
            "failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type \
             *formatter.ContainerContext",
        ),
    ] {
        assert_eq!(run(&host, &["ps", "--format", format]), (1, String::new(), format!("{error}\n")), "{format}");
    }
}

#[test]
fn ps_filters() {
    let host = TestHost::start();
    containers(&host);
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        host.ok(&args).lines().map(str::to_string).collect::<Vec<_>>().join(",")
    };
    let id = |name: &str| host.json(&["inspect", name])[0]["Id"].as_str().unwrap().to_string();

    // name: a regular expression in /NAME; values of one key OR, keys AND.
    assert_eq!(names(&["name=e"]), "web");
    assert_eq!(names(&["name=^/db$"]), "db");
    assert_eq!(names(&["name=db", "name=web"]), "web,db");
    assert_eq!(names(&["name=["]), "");
    assert_eq!(names(&["Name = db"]), "db");
    // status: implies -a.
    assert_eq!(names(&["status=exited"]), "gone");
    assert_eq!(names(&["status=running", "name=w"]), "web");
    assert_eq!(names(&["status=exited", "status=running"]), "gone,sh-cmd,web,db");
    // exited: only with -a for stopped ones.
    assert_eq!(names(&["exited=137"]), "");
    assert_eq!(host.ok(&["ps", "-a", "--format", "{{.Names}}", "-f", "exited=137"]), "gone\n");
    // network: a name, or a prefix of its id.
    assert_eq!(names(&["network=front"]), "web");
    let front = host.json(&["network", "inspect", "front"])[0]["Id"].as_str().unwrap().to_string();
    assert_eq!(names(&[&format!("network={}", &front[..5])]), "web");
    assert_eq!(names(&["network=bridge"]), "sh-cmd,db");
    assert_eq!(names(&["network=nosuch"]), "");
    // id: a prefix.
    assert_eq!(names(&[&format!("id={}", &id("db")[..4])]), "db");
    assert_eq!(names(&[&format!("id={}", &id("db")[1..6])]), "");
    // ancestor: the image, with Docker's defaults.
    assert_eq!(names(&["ancestor=busybox:latest"]), "sh-cmd,web,db");
    assert_eq!(names(&["ancestor=busy"]), "");
    // label: netd containers have none.
    assert_eq!(names(&["label=app"]), "");
    // before/since another container; publish/expose.
    assert_eq!(names(&["before=web"]), "db");
    assert_eq!(names(&["since=web"]), "sh-cmd");
    assert_eq!(names(&["publish=8080"]), "web");
    assert_eq!(names(&["expose=80/tcp"]), "web");
    assert_eq!(names(&["publish=8080/udp"]), "");

    // Bad filters: Docker's texts and exit codes.
    for (filter, code, error) in [
        ("bogus=1", 1, "Error response from daemon: Invalid filter 'bogus'"),
        ("=x", 1, "Error response from daemon: Invalid filter ''"),
        ("status=bogus", 1, "Error response from daemon: Invalid filter 'status=bogus'"),
        ("exited=abc", 1, "Error response from daemon: strconv.Atoi: parsing \"abc\": invalid syntax"),
        ("before=nosuch", 1, "Error response from daemon: no such container nosuch"),
        ("health=bogus", 1, "Error response from daemon: Unrecognised filter value for health: bogus"),
        (
            "bogus",
            125,
            "invalid argument \"bogus\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\
             See 'netd ps --help'.",
        ),
    ] {
        assert_eq!(run(&host, &["ps", "--filter", filter]), (code, String::new(), format!("{error}\n")), "{filter}");
    }
}

#[test]
fn network_ls_formats_and_filters() {
    let host = TestHost::start();
    host.ok(&["network", "create", "front"]);
    host.ok(&["network", "create", "--label", "env=prod", "--label", "tier=web", "back"]);
    host.ok(&["network", "create", "--internal", "net10"]);
    host.ok(&["network", "create", "net2"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "1000"]);
    let id = |name: &str| host.json(&["network", "inspect", name])[0]["Id"].as_str().unwrap().to_string();

    // The default table, in natural order of names.
    let order = ["back", "bridge", "front", "host", "net2", "net10", "none"];
    let mut expected = "NETWORK ID     NAME      DRIVER    SCOPE\n".to_string();
    for name in order {
        let driver = match name {
            "host" => "host",
            "none" => "null",
            _ => "bridge",
        };
        expected += &format!("{}   {name:<7}   {driver:<6}    local\n", &id(name)[..12]);
    }
    assert_eq!(host.ok(&["network", "ls"]), expected);
    let mut no_trunc = format!("NETWORK ID{}NAME      DRIVER    SCOPE\n", " ".repeat(57));
    for (name, line) in order.iter().zip(expected.lines().skip(1)) {
        no_trunc += &format!("{}{}\n", id(name), &line[12..]);
    }
    assert_eq!(host.ok(&["network", "ls", "--no-trunc"]), no_trunc);
    let ids: Vec<String> = order.iter().map(|n| id(n)[..12].to_string() + "\n").collect();
    assert_eq!(host.ok(&["network", "ls", "-q"]), ids.concat());
    assert_eq!(host.ok(&["network", "ls", "-q", "--format", "{{.Name}}", "-f", "name=front"]), "front\n");
    assert_eq!(
        host.ok(&["network", "ls", "--format", r"table {{.Name}}\t{{.Driver}}", "-f", "driver=null"]),
        "NAME      DRIVER\nnone      null\n"
    );
    assert_eq!(
        host.ok(&["network", "ls", "--format", r"table {{.Name}}\t{{.Internal}}\t{{.Labels}}\t{{.IPv6}}", "-f", "name=^(back|net10)$"]),
        "NAME      INTERNAL   LABELS              IPV6\nback      false      env=prod,tier=web   false\nnet10     true                           false\n"
    );
    assert_eq!(
        host.ok(&[
            "network",
            "ls",
            "--format",
            r#"table {{.Name}}\t{{.Label "tier"}}\t{{.Label "nope"}}|"#,
            "-f",
            "name=back"
        ]),
        "NAME      tier      nope|\nback      web       |\n"
    );
    let json = host.ok(&["network", "ls", "--format", "{{json .}}", "-f", "name=back"]);
    let row: Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name", "Scope"]);
    assert_eq!((&row["Labels"], &row["ID"]), (&"env=prod,tier=web".into(), &id("back")[..12].into()));

    let names = |filters: &[&str]| {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        host.ok(&args).lines().map(str::to_string).collect::<Vec<_>>().join(",")
    };
    assert_eq!(names(&["name=et"]), "net2,net10");
    assert_eq!(names(&["name=^n"]), "net2,net10,none");
    assert_eq!(names(&["name=["]), "");
    assert_eq!(names(&["name=front", "name=back"]), "back,front");
    assert_eq!(names(&["name=front", "driver=host"]), "");
    assert_eq!(names(&["driver=bridge"]), "back,bridge,front,net2,net10");
    assert_eq!(names(&["driver=bri"]), "");
    assert_eq!(names(&[&format!("id={}", &id("front")[..4])]), "front");
    assert_eq!(names(&["label=env"]), "back");
    assert_eq!(names(&["label=env=prod", "label=tier=web"]), "back");
    assert_eq!(names(&["label=env=prod", "label=tier=x"]), "");
    assert_eq!(names(&["type=custom"]), "back,front,net2,net10");
    assert_eq!(names(&["type=builtin"]), "bridge,host,none");
    assert_eq!(names(&["scope=local"]).split(',').count(), 7);
    assert_eq!(names(&["scope=swarm"]), "");
    // dangling: custom networks no container is attached to (see the report: Docker 20.10
    // lists every custom network here, its list leaves Containers empty).
    assert_eq!(names(&["dangling=true"]), "back,net2,net10");
    assert_eq!(names(&["dangling=0"]), "bridge,front,host,none");

    for (filter, code, error) in [
        ("bogus=1", 1, "Error response from daemon: Invalid filter 'bogus'"),
        ("type=bogus", 1, "Error response from daemon: invalid filter: 'type'='bogus'"),
        (
            "dangling=x",
            1,
            "Error response from daemon: invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" \
             (or \"0\")",
        ),
        (
            "bogus",
            125,
            "invalid argument \"bogus\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\
             See 'netd network ls --help'.",
        ),
    ] {
        assert_eq!(run(&host, &["network", "ls", "--filter", filter]), (code, String::new(), format!("{error}\n")));
    }
    assert_eq!(
        run(&host, &["network", "ls", "--format", "{{.Nope}}"]),
        (
            1,
            String::new(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type \
             *network.networkContext\n"
                .into()
        )
    );
}

#[test]
fn inspect_templates() {
    let host = TestHost::start();
    host.ok(&["network", "create", "front"]);
    host.ok(&["network", "create", "--label", "env=prod", "--label", "tier=web", "back"]);
    host.ok(&["network", "create", "-o", "com.docker.network.bridge.name=brx", "withopts"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "1000"]);

    let f = |args: &[&str]| host.ok(args);
    assert_eq!(f(&["network", "inspect", "-f", "{{.Name}}", "front"]), "front\n");
    assert_eq!(
        f(&["network", "inspect", "-f", "{{json .IPAM}}", "front"]),
        "{\"Driver\":\"default\",\"Options\":{},\"Config\":[{\"Subnet\":\"172.18.0.0/16\",\"Gateway\":\"172.18.0.1\"}]}\n"
    );
    // Go prints structs as {values} (every field of an IPAM config) and maps as map[k:v].
    assert_eq!(
        f(&["network", "inspect", "-f", "{{.IPAM.Config}}", "front", "withopts"]),
        "[{172.18.0.0/16  172.18.0.1 map[]}]\n[{172.20.0.0/16  172.20.0.1 map[]}]\n"
    );
    assert_eq!(
        f(&["network", "inspect", "-f", "{{.IPAM}}", "front"]),
        "{default map[] [{172.18.0.0/16  172.18.0.1 map[]}]}\n"
    );
    assert_eq!(
        f(&["network", "inspect", "-f", r#"{{index .Options "com.docker.network.bridge.name"}}"#, "withopts"]),
        "brx\n"
    );
    assert_eq!(
        f(&["network", "inspect", "-f", "{{.Options}}", "withopts"]),
        "map[com.docker.network.bridge.name:brx]\n"
    );
    assert_eq!(f(&["network", "inspect", "-f", "{{.Labels}}", "back", "front"]), "map[env:prod tier:web]\nmap[]\n");
    assert_eq!(f(&["network", "inspect", "-f", "{{json .Labels}}", "back"]), "{\"env\":\"prod\",\"tier\":\"web\"}\n");
    assert_eq!(f(&["network", "inspect", "-f", "{{.Labels.nope}}", "back"]), "<no value>\n");
    assert_eq!(f(&["network", "inspect", "-f", r#"{{index .Labels "nope"}}|"#, "back"]), "|\n");
    assert_eq!(
        f(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}}", "web"]),
        "front 172.18.0.2\n"
    );
    assert_eq!(
        f(&[
            "inspect",
            "-f",
            r#"{{println .Name}}{{upper .Name}} {{lower "AbC"}} {{title "hello world-x"}} {{join .Config.Cmd "+"}} {{split "a,b" ","}} {{len .Config.Cmd}}"#,
            "web"
        ]),
        "/web\n/WEB abc Hello World-X sleep+1000 [a b] 2\n"
    );
    assert_eq!(f(&["inspect", "-f", "{{truncate .Name 3}}|{{pad .Name 2 3}}|", "web"]), "/we|  /web   |\n");
    assert_eq!(f(&["inspect", "-f", "{{json .Config.Cmd}} {{json .Name}}", "web"]), "[\"sleep\",\"1000\"] \"/web\"\n");

    // Errors: a template that does not parse exits 64; one that fails on an object is that
    // object's error (exit 1), with a lone newline when nothing was printed.
    assert_eq!(
        run(&host, &["network", "inspect", "-f", "{{.Name", "front"]),
        (64, String::new(), "template parsing error: template: :1: unclosed action\n".into())
    );
    assert_eq!(
        run(&host, &["network", "inspect", "-f", "{{nosuch .Name}}", "front"]),
        (64, String::new(), "template parsing error: template: :1: function \"nosuch\" not defined\n".into())
    );
    let missing =
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\"";
    assert_eq!(
        run(&host, &["network", "inspect", "-f", "{{.Nope}}", "front", "back"]),
        (1, "\n".into(), format!("{missing}\n{missing}\n"))
    );
    assert_eq!(
        run(&host, &["inspect", "-f", "{{.State.Nope}}", "web"]),
        (
            1,
            "\n".into(),
            "template parsing error: template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\"\n"
                .into()
        )
    );
    // (The text of the lookup error belongs to the error paths: Docker's is "Error: No such
    // network: nosuch".)
    let (code, stdout, _) = run(&host, &["network", "inspect", "-f", "{{.Name}}", "front", "nosuch"]);
    assert_eq!((code, stdout.as_str()), (1, "front\n"));
    let (code, stdout, _) = run(&host, &["network", "inspect", "-f", "{{.Name}}", "nosuch"]);
    assert_eq!((code, stdout.as_str()), (1, "\n"));
}
