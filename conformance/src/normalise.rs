//! What may differ between two runs of the same commands, even on the same engine, is
//! replaced by placeholders before comparing: object ids, timestamps, "5 seconds ago"-style
//! durations, pids and the program's own name.
//!
//! An id printed by `run`/`create`/`network create` becomes `<id:NAME>` (`<sid:NAME>` for
//! its 12-digit form) wherever it appears later, so that "my-net's id" must still be my-net's
//! on both sides; ids the scenario never named (endpoints, sandboxes, images, the predefined
//! networks) become `<id>`. JSON maps keyed by ids (a network's `Containers`) are printed in
//! key order by Docker (Go sorts map keys), which is random with respect to names: such a map
//! must be sorted by its keys on both sides, and its entries are then put in name order.
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

use crate::{Outcome, Step};

static FULL_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-f]{64}\b").unwrap());
static SHORT_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-f]{12}\b").unwrap());
/// RFC 3339 (JSON) and Go's `time.Time` String() (`network ls --format {{.CreatedAt}}`); the
/// zero time is kept, as it says "never".
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} [A-Z]+(?: m=[+-][0-9.]+)?",
    )
    .unwrap()
});
/// go-units' HumanDuration phrases, as `ps` prints them in CREATED and STATUS.
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(Less than a second|About a minute|About an hour|\d+ (second|minute|hour|day|week|month|year)s?)\b")
        .unwrap()
});
static PID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""Pid": [1-9]\d*"#).unwrap());
/// Runs of two or more spaces: table padding, which depends on the durations' widths.
static PADDING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" {2,}").unwrap());

/// One engine's normaliser for one scenario: it learns the names of ids as steps create them.
pub struct Normaliser {
    /// The program's name where the CLI prints it (see [`Normaliser::program_name`]).
    program: Regex,
    /// (first 12 hex digits, name) of every id a step created.
    names: Vec<(String, String)>,
    /// Whether the last [`Normaliser::outcome`] collapsed table padding (it had durations).
    pub collapsed: bool,
}

impl Normaliser {
    /// `program`: the engine's command name (`docker` or `netd`), which appears in its texts
    /// (`docker: Error …`, `See 'docker run --help'.`).
    pub fn new(program: &'static str) -> Self {
        let program = Regex::new(&format!(r#"(^|[\s'"]){}([\s:])"#, regex::escape(program))).unwrap();
        Self { program, names: Vec::new(), collapsed: false }
    }

    pub fn outcome(&mut self, step: &Step, o: &Outcome) -> Outcome {
        if let (Some(name), Some(id)) = (created_name(&step.args), Some(o.stdout.trim()).filter(|s| is_full_id(s))) {
            self.names.push((id[..12].to_string(), name));
        }
        self.collapsed = false;
        let mut stdout = self.text(&o.stdout);
        if step.unordered {
            let mut lines: Vec<&str> = stdout.lines().collect();
            lines.sort_unstable();
            stdout = lines.iter().map(|l| format!("{l}\n")).collect();
        }
        Outcome { exit: o.exit, stdout, stderr: self.text(&o.stderr) }
    }

    pub fn text(&mut self, s: &str) -> String {
        let s = canonical_json(s);
        let s = self.program_name(&s);
        let s = FULL_ID.replace_all(&s, |c: &Captures| match self.name_of(&c[0][..12]) {
            Some(n) => format!("<id:{n}>"),
            None => "<id>".to_string(),
        });
        let s = SHORT_ID.replace_all(&s, |c: &Captures| match self.name_of(&c[0]) {
            Some(n) => format!("<sid:{n}>"),
            None => "<sid>".to_string(),
        });
        let s = TIME.replace_all(&s, |c: &Captures| {
            if c[0].starts_with("0001-01-01T00:00:00") {
                c[0].to_string()
            } else {
                "<time>".to_string()
            }
        });
        let had_durations = DURATION.is_match(&s);
        let s = DURATION.replace_all(&s, "<duration>");
        let s = PID.replace_all(&s, r#""Pid": <pid>"#);
        if had_durations {
            self.collapsed = true;
            collapse_padding(&s)
        } else {
            s.into_owned()
        }
    }

    fn name_of(&self, short: &str) -> Option<&str> {
        self.names.iter().rev().find(|(id, _)| id == short).map(|(_, n)| n.as_str())
    }

    /// The program's name where the CLI prints it: `docker: ` at the start of a line, and
    /// `'docker run`, `"docker network create"`, `Usage:  docker …`.
    fn program_name(&self, s: &str) -> String {
        let re = &self.program;
        // Twice: adjacent matches share the separator between them.
        let once = re.replace_all(s, "${1}<prog>${2}");
        re.replace_all(&once, "${1}<prog>${2}").into_owned()
    }
}

/// Table padding reduced to two spaces: when one side's table had durations (whose widths
/// set the columns'), the other side's is compared the same way.
pub fn collapse_padding(s: &str) -> String {
    PADDING.replace_all(s, "  ").into_owned()
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The name a creating command gives its object: `network create … NAME`, `run|create …
/// --name NAME …` (also `container run|create`).
fn created_name(args: &[String]) -> Option<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let args = args.strip_prefix(&["container"]).unwrap_or(&args);
    match args {
        ["network", "create", .., name] => Some(name.to_string()),
        ["run" | "create", rest @ ..] => rest.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--name") {
            Some("") => rest.get(i + 1).map(|n| n.to_string()),
            Some(v) => v.strip_prefix('=').map(str::to_string),
            None => None,
        }),
        _ => None,
    }
}

/// A JSON document (as `inspect` prints it, indented or compact) with its id-keyed maps
/// checked and put in name order; any other text unchanged. Only a document that serde_json
/// prints back byte for byte is touched, so formatting differences still show.
fn canonical_json(s: &str) -> String {
    let trimmed = s.trim_end_matches('\n');
    let Ok(mut value) = serde_json::from_str::<Value>(trimmed) else { return s.to_string() };
    let pretty = |v: &Value| {
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
        serde::Serialize::serialize(v, &mut ser).map(|_| String::from_utf8(out).unwrap_or_default())
    };
    let compact = |v: &Value| serde_json::to_string(v);
    let printer: &dyn Fn(&Value) -> Result<String, serde_json::Error> = if pretty(&value).is_ok_and(|p| p == trimmed) {
        &pretty
    } else if compact(&value).is_ok_and(|c| c == trimmed) {
        &compact
    } else {
        return s.to_string();
    };
    sort_id_maps(&mut value);
    match printer(&value) {
        Ok(text) => format!("{text}{}", &s[trimmed.len()..]),
        Err(_) => s.to_string(),
    }
}

fn sort_id_maps(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(sort_id_maps),
        Value::Object(map) => {
            map.values_mut().for_each(sort_id_maps);
            if map.is_empty() || !map.keys().all(|k| is_full_id(k)) {
                return;
            }
            let in_key_order = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            let name = |v: &Value| v.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
            entries.sort_by_key(|(_, v)| name(v));
            if !in_key_order {
                map.insert("<not in id order>".into(), Value::Bool(true));
            }
            map.extend(entries);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(command: &str) -> Step {
        let args: Vec<String> = shlex::split(command).unwrap().into_iter().skip(1).collect();
        Step { line: 1, command: command.into(), args, unordered: false }
    }

    fn out(stdout: &str) -> Outcome {
        Outcome { exit: 0, stdout: stdout.into(), stderr: String::new() }
    }

    #[test]
    fn ids_take_the_name_of_the_object_that_created_them() {
        let mut n = Normaliser::new("docker");
        let a = "a".repeat(64);
        let b = format!("{}{}", "b".repeat(12), "c".repeat(52));
        let unnamed = "d".repeat(64);
        assert_eq!(n.outcome(&step("docker network create my-net"), &out(&format!("{a}\n"))).stdout, "<id:my-net>\n");
        assert_eq!(n.outcome(&step("docker run -d --name=web busybox"), &out(&format!("{b}\n"))).stdout, "<id:web>\n");
        let text = format!("{a} {} {unnamed} {}\n", &b[..12], &unnamed[..12]);
        assert_eq!(n.text(&text), "<id:my-net> <sid:web> <id> <sid>\n");
        // 02:42:ac:11:00:02 and words are not ids.
        assert_eq!(n.text("02:42:ac:11:00:02 deadbeef"), "02:42:ac:11:00:02 deadbeef");
        assert_eq!(created_name(&step("docker container run -d --name x busybox").args).as_deref(), Some("x"));
        assert_eq!(created_name(&step("docker run -d busybox").args), None);
    }

    #[test]
    fn id_keyed_maps_must_be_in_key_order_and_are_compared_in_name_order() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let doc = |first: &str, fname: &str, second: &str, sname: &str| {
            format!("[\n    {{\n        \"Containers\": {{\n            \"{first}\": {{\n                \"Name\": \"{fname}\"\n            }},\n            \"{second}\": {{\n                \"Name\": \"{sname}\"\n            }}\n        }}\n    }}\n]\n")
        };
        let sorted = canonical_json(&doc(&a, "zed", &b, "amy"));
        assert!(sorted.find("amy").unwrap() < sorted.find("zed").unwrap(), "{sorted}");
        assert!(!sorted.contains("<not in id order>"));
        assert!(canonical_json(&doc(&b, "amy", &a, "zed")).contains("<not in id order>"));
        // Text that is not JSON printed canonically is left alone.
        assert_eq!(canonical_json("[ 1,2 ]\n"), "[ 1,2 ]\n");
        assert_eq!(canonical_json("{\"x\":1}\n"), "{\"x\":1}\n");
    }

    #[test]
    fn times_durations_pids_and_the_program_name() {
        let mut n = Normaliser::new("netd");
        assert_eq!(
            n.text(r#""Created": "2026-12-04T14:50:00.123456789Z", "FinishedAt": "0001-01-01T00:00:00Z""#),
            r#""Created": "<time>", "FinishedAt": "0001-01-01T00:00:00Z""#
        );
        assert_eq!(n.text("2026-12-04 14:50:00.1234 +0000 UTC"), "<time>");
        assert_eq!(n.text("\"Pid\": 4242, \"Pid\": 0"), "\"Pid\": <pid>, \"Pid\": 0");
        assert_eq!(n.text("Up 5 seconds     web\nUp About a minute   db\n"), "Up <duration>  web\nUp <duration>  db\n");
        assert_eq!(
            n.text("netd: Error response from daemon: x.\nSee 'netd run --help'.\n\"netd network create\" requires\n"),
            "<prog>: Error response from daemon: x.\nSee '<prog> run --help'.\n\"<prog> network create\" requires\n"
        );
        // Only the program's name, not words or paths containing it.
        assert_eq!(n.text("/run/netd/x com.netd.y netdx"), "/run/netd/x com.netd.y netdx");
    }

    #[test]
    fn unordered_sorts_stdout_lines() {
        let mut n = Normaliser::new("docker");
        let mut s = step("docker port web");
        assert_eq!(n.outcome(&s, &out("b\na\n")).stdout, "b\na\n");
        s.unordered = true;
        assert_eq!(n.outcome(&s, &out("b\na\n")).stdout, "a\nb\n");
    }
}
