//! Hostile input (issue 13): strings the daemon must refuse whoever sends them (the API
//! socket is the trust boundary), and malformed HTTP straight to the socket. Every refusal
//! is one line, in the API's error shape where HTTP got that far, and changes nothing; the
//! daemon keeps serving.
use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use netd_tests::TestHost;

const DAEMON: &str = "Error response from daemon: ";

/// `run`'s failure text (Docker's shape: prefixed, a full stop, the `See` line).
fn run_error(message: &str) -> String {
    format!("netd: {DAEMON}{message}.\nSee 'netd run --help'.")
}

/// One raw exchange over the API socket: the status (0 when the daemon closed without
/// answering) and the body. The request asks for `Connection: close` where it is well-formed
/// enough to carry it, so the answer ends with the connection.
fn raw(host: &TestHost, request: &[u8]) -> (u16, String) {
    exchange(host, request, false)
}

/// As `raw`; with `half_close` the client shuts its writing side once the request is sent
/// (as `nc -N` and some HTTP libraries do) and still waits for the answer.
fn exchange(host: &TestHost, request: &[u8], half_close: bool) -> (u16, String) {
    let mut conn = UnixStream::connect(host.socket()).expect("connect to the API socket");
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    // The daemon may answer (413) before it has read everything: a failed write is fine.
    let _ = conn.write_all(request);
    if half_close {
        conn.shutdown(std::net::Shutdown::Write).expect("shut the writing side");
    }
    // Cut-short requests end by the daemon's own read timeouts.
    let mut answer = Vec::new();
    if let Err(e) = conn.take(1 << 20).read_to_end(&mut answer) {
        eprintln!("reading the answer to {:?}: {e}", String::from_utf8_lossy(&request[..request.len().min(60)]));
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: netd\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The `message` of an error body in the API's shape (`{"message": ...}`).
fn message(status: u16, body: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {body:?}"));
    value["message"].as_str().unwrap_or_else(|| panic!("no message in {body:?}")).to_string()
}

/// Asserts a refusal with `status` in the API's error shape whose message starts with `start`.
fn refused(host: &TestHost, request: &[u8], status: u16, start: &str) {
    let (got, body) = raw(host, request);
    let shown = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    assert_eq!(got, status, "{shown:?}: {body}");
    let message = message(got, &body);
    assert!(message.starts_with(start), "{shown:?}: {message:?} does not start with {start:?}");
    assert!(!message.contains('\n'), "{message:?}");
}

#[test]
fn names_and_strings_are_checked_by_the_daemon() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.83.0.0/24", "hn"]);
    host.ok(&["run", "-d", "--name", "hc", "--network", "hn"]);

    // Network names: a bound on length, Docker's rule on characters.
    let long = "a".repeat(129);
    host.fails_cleanly(
        &["network", "create", &long],
        &format!("{DAEMON}Invalid name: 129 characters long, at most 128 are allowed"),
    );
    host.ok(&["network", "create", &"b".repeat(128)]);
    host.ok(&["network", "rm", &"b".repeat(128)]);
    for bad in ["a/b", "..", "a\nb"] {
        let shown = bad.escape_debug();
        host.fails_cleanly(
            &["network", "create", bad],
            &format!("{DAEMON}Invalid name \"{shown}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        );
    }
    let out = host.netd(&["network", "create", "a/b"]);
    assert_eq!(out.status.code(), Some(1), "network create's exit code");

    // Container names: `/` and `..` would leave the netns directory.
    for bad in ["a/b", "..", "../../x", "a\nb"] {
        let shown = bad.escape_debug();
        host.fails_cleanly(
            &["run", "-d", "--name", bad],
            &run_error(&format!("Invalid container name ({shown}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")),
        );
    }
    let out = host.netd(&["run", "-d", "--name", "a/b"]);
    assert_eq!(out.status.code(), Some(125), "run's exit code");

    // Host names, /etc/hosts fields.
    for bad in ["a b", "a\nb", &"h".repeat(65)] {
        let shown: String = bad.escape_debug().collect();
        host.fails_cleanly(
            &["run", "-d", "--name", "h1", "--hostname", bad],
            &run_error(&format!(
                "invalid hostname \"{shown}\": at most 64 characters without spaces, control characters or '#'"
            )),
        );
    }
    // What Docker 20.10 runs with (measured), though not RFC 1123.
    host.ok(&["run", "-d", "--name", "h2", "--hostname", "a_b"]);
    let hosts = host.ok(&["exec", "h2", "cat", "/etc/hosts"]);
    assert!(hosts.lines().any(|l| l.ends_with("\ta_b")), "{hosts}");
    host.ok(&["rm", "-f", "h2"]);
    let hosts_rule = "a host name of at most 253 characters without spaces, control characters or '#'";
    host.fails_cleanly(
        &["run", "-d", "--name", "h1", "--add-host", "x\n10.9.9.9 evil:10.0.0.1"],
        &run_error(&format!("invalid --add-host host \"x\\n10.9.9.9 evil\": {hosts_rule}")),
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "h1", "--network", "hn", "--network-alias", "a\n10.9.9.9 evil"],
        &run_error(&format!("invalid network alias \"a\\n10.9.9.9 evil\": {hosts_rule}")),
    );
    host.ok(&["network", "create", "--subnet", "10.84.0.0/24", "hn2"]);
    host.fails_cleanly(
        &["network", "connect", "--alias", "a b", "hn2", "hc"],
        &format!("{DAEMON}invalid network alias \"a b\": {hosts_rule}"),
    );
    host.fails_cleanly(&["run", "-d", "--name", "h1", "-e", "=x"], &run_error("invalid environment variable: =x"));
    host.fails_cleanly(&["run", "-d", "--name", "h1", "--label", "a\nb=v"], &run_error("invalid label key \"a\\nb\""));
    let hosts = host.ok(&["exec", "hc", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("evil"), "{hosts}");

    // Already checked before this issue; still refused.
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.0.0.0/33", "bad"],
        &format!("{DAEMON}Invalid subnet 10.0.0.0/33 : invalid CIDR address: 10.0.0.0/33"),
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "h1", "-p", "80:80:80:80"],
        "netd: Invalid ip address 80:80: address 80:80:: too many colons in address.\nSee 'netd run --help'.",
    );
    let ip = host.fails(&["run", "-d", "--name", "h1", "--network", "hn", "--ip", "10.83.0.300"]);
    assert_eq!(ip, run_error("invalid IPv4 address: 10.83.0.300"));

    // What the CLI cannot send (NUL, a name longer than an argument may be) over the API.
    let before = host.snapshot();
    refused(
        &host,
        &post("/networks", &format!("{{\"name\":\"{}\"}}", "n".repeat(200_000))),
        400,
        "Invalid name: 200000 characters long, at most 128 are allowed",
    );
    refused(&host, &post("/networks", r#"{"name":"a\u0000b"}"#), 400, "Invalid name \"a\\0b\"");
    refused(&host, &post("/containers", r#"{"name":"h1","env":["A=\u0000"]}"#), 400, "invalid environment variable");
    refused(&host, &post("/containers", r#"{"name":"h1","cmd":["sh","\u0000"]}"#), 400, "invalid command");
    refused(&host, &post("/containers", r#"{"name":"h\u0000"}"#), 400, "Invalid container name (h\\0)");
    assert_eq!(before, host.snapshot(), "a refused request changed something");
}

#[test]
fn malformed_requests_are_refused_and_the_daemon_keeps_serving() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.85.0.0/24", "mn"]);
    let before = host.snapshot();

    // Not HTTP at all, or cut short: hyper answers 400 or closes; never a 5xx.
    for garbage in [&b"hello\r\n\r\n"[..], b"\x00\x01\x02\xff\r\n\r\n", b"GET /networks HTTP/1.1\r\nHost"] {
        let (status, body) = raw(&host, garbage);
        assert!([0, 400, 408].contains(&status), "{garbage:?}: {status} {body}");
    }
    // A body shorter than its Content-Length.
    let (status, body) =
        raw(&host, b"POST /networks HTTP/1.1\r\nHost: netd\r\nContent-Length: 100\r\n\r\n{\"name\":\"tr");
    assert!([0, 400, 408].contains(&status), "truncated body: {status} {body}");
    if status != 0 {
        assert!(!message(status, &body).is_empty(), "{body}");
    }

    // Too big: refused on its announced length.
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(2 << 20));
    refused(&host, &post("/networks", &huge), 413, "request body too large");

    // JSON that does not fit: too deep, wrong types, unknown fields (named), not JSON.
    refused(
        &host,
        &post("/networks", &format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000))),
        400,
        "invalid request body:",
    );
    refused(&host, &post("/networks", r#"{"name":5}"#), 400, "invalid request body: invalid type: integer `5`");
    refused(
        &host,
        &post("/networks", r#"["mn2"]"#),
        400,
        "invalid request body: invalid length 1, expected struct CreateNetwork",
    );
    refused(
        &host,
        &post("/networks", r#"{"name":"mn2","subnett":"10.9.0.0/24"}"#),
        400,
        "invalid request body: unknown field `subnett`",
    );
    refused(&host, &post("/containers", r#"{"name":"c2","ports":[{"bogus":1}]}"#), 400, "invalid request body:");
    refused(
        &host,
        &post("/networks/mn/connect", r#"{"container":"x","ip":"1.2.3"}"#),
        400,
        "invalid request body: invalid IPv4 address syntax",
    );
    refused(&host, &post("/networks", "\u{feff}{}"), 400, "invalid request body:");
    refused(
        &host,
        b"DELETE /containers/x?force=maybe HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n",
        400,
        "invalid query string:",
    );

    // Unknown paths and methods.
    refused(&host, b"GET /nope HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n", 404, "page not found: /nope");
    refused(
        &host,
        b"GET /networks/mn/connect/x HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n",
        404,
        "page not found",
    );
    refused(
        &host,
        b"DELETE /stats HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n",
        405,
        "method DELETE not allowed on /stats",
    );
    refused(
        &host,
        b"PATCH /networks HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n",
        405,
        "method PATCH not allowed on /networks",
    );

    assert_eq!(before, host.snapshot(), "a malformed request changed something");
    // Still serving, for the CLI and for raw clients.
    host.ok(&["network", "inspect", "mn"]);
    let (status, body) = raw(&host, b"GET /networks HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_client_that_shuts_its_writing_side_after_the_request_still_gets_the_answer() {
    let host = TestHost::start();
    // Bodies larger than one read of the socket: hyper sees the end of the stream while the
    // request is still being read.
    for (name, size) in [("hc-small", 10), ("hc-large", 30_000), ("hc-larger", 600_000)] {
        let body = format!(r#"{{"name":"{name}","labels":{{"pad":"{}"}}}}"#, "p".repeat(size));
        let (status, answer) = exchange(&host, &post("/networks", &body), true);
        assert_eq!(status, 200, "{name}: {answer}");
        let labels = &host.json(&["network", "inspect", name])[0]["Labels"];
        assert_eq!(labels["pad"].as_str().map(str::len), Some(size), "{name}");
    }
    // A request cut short and then half-closed is refused or dropped, never served.
    let (status, _) = exchange(
        &host,
        b"POST /networks HTTP/1.1\r\nHost: netd\r\nContent-Length: 100\r\n\r\n{\"name\":\"hc-cut\"",
        true,
    );
    assert!([0, 400].contains(&status), "cut request: {status}");
    assert!(!host.ok(&["network", "ls"]).contains("hc-cut"));
}
