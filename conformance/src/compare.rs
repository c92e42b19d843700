//! Step-by-step comparison of Docker's and netd's outcomes, and the report table.
use std::fmt::Write;

use crate::{Departures, Normaliser, Outcome, Scenario};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Same,
    /// Equal once these documented departures are applied.
    Documented(Vec<String>),
    /// A unified diff (Docker `-`, netd `+`) after normalisation and departures.
    Differs(String),
}

#[derive(Debug, Default)]
pub struct Report {
    /// (scenario, line, command, verdict)
    pub rows: Vec<(String, usize, String, Verdict)>,
}

/// Compares one scenario's outcomes; `docker` and `netd` are in step order.
pub fn compare(
    scenario: &Scenario,
    docker: &[Outcome],
    netd: &[Outcome],
    departures: &Departures,
    report: &mut Report,
) {
    let (mut nd, mut nn) = (Normaliser::new("docker"), Normaliser::new("netd"));
    for ((step, d), n) in scenario.steps.iter().zip(docker).zip(netd) {
        let mut a = render(&nd.outcome(step, d));
        let mut b = render(&nn.outcome(step, n));
        // A table whose padding one side collapsed (durations) is compared collapsed on both.
        if nd.collapsed && !nn.collapsed {
            b = crate::normalise::collapse_padding(&b);
        } else if nn.collapsed && !nd.collapsed {
            a = crate::normalise::collapse_padding(&a);
        }
        let verdict = if a == b {
            Verdict::Same
        } else {
            let used = departures.apply(&step.command, &mut a, &mut b);
            if a == b {
                Verdict::Documented(used)
            } else {
                Verdict::Differs(diff(&a, &b))
            }
        };
        report.rows.push((scenario.name.clone(), step.line, step.command.clone(), verdict));
    }
}

fn render(o: &Outcome) -> String {
    format!("exit {}\n-- stdout\n{}\n-- stderr\n{}\n", o.exit, o.stdout, o.stderr)
}

fn diff(docker: &str, netd: &str) -> String {
    similar::TextDiff::from_lines(docker, netd).unified_diff().context_radius(2).header("docker", "netd").to_string()
}

impl Report {
    pub fn differing(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r.3, Verdict::Differs(_))).count()
    }

    /// Ids of departures no step needed (stale entries hide nothing but mislead readers).
    pub fn unused<'a>(&self, departures: &'a Departures) -> Vec<&'a str> {
        departures
            .0
            .iter()
            .map(|d| d.id.as_str())
            .filter(|id| !self.rows.iter().any(|r| matches!(&r.3, Verdict::Documented(u) if u.iter().any(|x| x == id))))
            .collect()
    }

    /// A markdown table (every step) and, below it, the diffs of the steps that differ.
    pub fn markdown(&self) -> String {
        let count = |f: fn(&Verdict) -> bool| self.rows.iter().filter(|r| f(&r.3)).count();
        let mut out = format!(
            "# netd vs Docker 20.10: {} steps — {} same, {} documented departures, {} differ\n\n| step | command | result |\n|---|---|---|\n",
            self.rows.len(),
            count(|v| *v == Verdict::Same),
            count(|v| matches!(v, Verdict::Documented(_))),
            self.differing()
        );
        for (scenario, line, command, verdict) in &self.rows {
            let result = match verdict {
                Verdict::Same => "same".to_string(),
                Verdict::Documented(ids) => format!("documented ({})", ids.join(", ")),
                Verdict::Differs(_) => "**differs**".to_string(),
            };
            let _ = writeln!(out, "| {scenario}:{line} | `{}` | {result} |", command.replace('|', "\\|"));
        }
        for (scenario, line, command, verdict) in &self.rows {
            if let Verdict::Differs(d) = verdict {
                let _ = write!(out, "\n## {scenario}:{line} `{command}`\n\n```diff\n{d}```\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Step;

    fn step(line: usize, command: &str) -> Step {
        Step { line, command: command.into(), args: vec![], unordered: false }
    }

    fn out(exit: i32, stdout: &str) -> Outcome {
        Outcome { exit, stdout: stdout.into(), stderr: String::new() }
    }

    #[test]
    fn verdicts() {
        let scenario = Scenario {
            name: "s".into(),
            steps: vec![step(1, "docker run x"), step(2, "docker inspect x"), step(3, "docker ps")],
        };
        let id_d = "a".repeat(64);
        let id_n = "b".repeat(64);
        let docker = [out(0, &format!("{id_d}\n")), out(0, "\"Driver\": \"overlay2\"\n"), out(0, "x\n")];
        let netd = [out(0, &format!("{id_n}\n")), out(0, "\"Driver\": \"\"\n"), out(1, "x\n")];
        let departures = Departures::parse(
            "[[departure]]\nid = \"storage\"\nsummary = \"s\"\ncommands = 'inspect'\nrewrite = [{ find = '\"Driver\": \"[^\"]*\"', replace = '<driver>' }]\n",
        )
        .unwrap();
        let mut report = Report::default();
        compare(&scenario, &docker, &netd, &departures, &mut report);
        assert_eq!(report.rows[0].3, Verdict::Same);
        assert_eq!(report.rows[1].3, Verdict::Documented(vec!["storage".into()]));
        assert!(matches!(&report.rows[2].3, Verdict::Differs(d) if d.contains("-exit 0") && d.contains("+exit 1")));
        assert_eq!(report.differing(), 1);
        assert!(report.unused(&departures).is_empty());
        assert!(report.markdown().contains("1 same, 1 documented departures, 1 differ"));
    }
}
