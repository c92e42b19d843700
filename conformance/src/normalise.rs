//! What may differ between two runs of the same commands, even on the same engine, is
//! replaced by placeholders before comparing: object ids (numbered in order of first
//! appearance, so "the second network's id" still has to be the same object on both sides),
//! timestamps, "5 seconds ago"-style durations, pids and the program's own name.
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::Outcome;

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
    Regex::new(
        r"\b(Less than a second|About a minute|About an hour|\d+ (seconds|minutes|hours|days|weeks|months|years))\b",
    )
    .unwrap()
});
static PID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""Pid": [1-9]\d*"#).unwrap());
/// Runs of two or more spaces: table padding, which depends on the durations' widths.
static PADDING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r" {2,}").unwrap());

/// One engine's normaliser for one scenario: ids keep their numbers across its steps.
pub struct Normaliser {
    program: &'static str,
    /// The first 12 hex digits of every id seen, in order of first appearance.
    ids: Vec<String>,
}

impl Normaliser {
    /// `program`: the engine's command name (`docker` or `netd`), which appears in its texts
    /// (`docker: Error …`, `See 'docker run --help'.`).
    pub fn new(program: &'static str) -> Self {
        Self { program, ids: Vec::new() }
    }

    pub fn outcome(&mut self, o: &Outcome, unordered: bool) -> Outcome {
        let mut stdout = self.text(&o.stdout);
        if unordered {
            let mut lines: Vec<&str> = stdout.lines().collect();
            lines.sort_unstable();
            stdout = lines.iter().map(|l| format!("{l}\n")).collect();
        }
        Outcome { exit: o.exit, stdout, stderr: self.text(&o.stderr) }
    }

    pub fn text(&mut self, s: &str) -> String {
        let s = self.program_name(s);
        let s = FULL_ID.replace_all(&s, |c: &Captures| format!("<id{}>", self.number(&c[0][..12])));
        let s = SHORT_ID.replace_all(&s, |c: &Captures| format!("<sid{}>", self.number(&c[0])));
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
            PADDING.replace_all(&s, "  ").into_owned()
        } else {
            s.into_owned()
        }
    }

    fn number(&mut self, short: &str) -> usize {
        match self.ids.iter().position(|i| i == short) {
            Some(n) => n + 1,
            None => {
                self.ids.push(short.to_string());
                self.ids.len()
            }
        }
    }

    /// The program's name where the CLI prints it: `docker: ` at the start of a line, and
    /// `'docker run`, `"docker network create"`, `Usage:  docker …`.
    fn program_name(&self, s: &str) -> String {
        let re = Regex::new(&format!(r#"(^|[\s'"]){}([\s:])"#, regex::escape(self.program))).unwrap();
        // Twice: adjacent matches share the separator between them.
        let once = re.replace_all(s, "${1}<prog>${2}");
        re.replace_all(&once, "${1}<prog>${2}").into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_in_order_and_short_ids_follow_full_ones() {
        let mut n = Normaliser::new("docker");
        let a = "a".repeat(64);
        let b = format!("{}{}", "b".repeat(12), "c".repeat(52));
        let text = format!("{a}\n{b} {}\n{}\n", &a[..12], &b[..12]);
        assert_eq!(n.text(&text), "<id1>\n<id2> <sid1>\n<sid2>\n");
        // 02:42:ac:11:00:02 and words are not ids.
        assert_eq!(n.text("02:42:ac:11:00:02 deadbeef"), "02:42:ac:11:00:02 deadbeef");
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
        let o = Outcome { exit: 0, stdout: "b\na\n".into(), stderr: String::new() };
        assert_eq!(n.outcome(&o, true).stdout, "a\nb\n");
        assert_eq!(n.outcome(&o, false).stdout, "b\na\n");
    }
}
