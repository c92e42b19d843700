//! Scenario files and recordings.
//!
//! A scenario is a text file of Docker command lines run in order on a fresh host: one
//! command per line, starting with `docker`, split like a POSIX shell would (quotes, no
//! expansion); `#` starts a comment line. A line may start with flags in brackets:
//! `[unordered]` compares stdout's lines as a set (Docker prints some lists in Go's random
//! map order).
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file name without `.txt`.
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based line in the scenario file.
    pub line: usize,
    /// The command as written (without the bracketed flags).
    pub command: String,
    /// The arguments after `docker`.
    pub args: Vec<String>,
    pub unordered: bool,
}

/// What one command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One engine's outcomes for one scenario (Docker's are the golden files).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// e.g. `docker 20.10.24`.
    pub engine: String,
    pub scenario: String,
    pub steps: Vec<RecordedStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedStep {
    pub command: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Recording {
    pub fn path(dir: &Path, scenario: &str) -> std::path::PathBuf {
        dir.join(format!("{scenario}.json"))
    }

    pub fn load(dir: &Path, scenario: &Scenario) -> Result<Self> {
        let path = Self::path(dir, &scenario.name);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("reading {} (record Docker's side with `cargo xtask conformance --record`)", path.display())
        })?;
        let rec: Self = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let recorded: Vec<&str> = rec.steps.iter().map(|s| s.command.as_str()).collect();
        let wanted: Vec<&str> = scenario.steps.iter().map(|s| s.command.as_str()).collect();
        if recorded != wanted {
            bail!(
                "{} was recorded for other commands than scenarios/{}.txt has now; record it again with `cargo \
                 xtask conformance --record`",
                path.display(),
                scenario.name
            );
        }
        Ok(rec)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path(dir, &self.scenario);
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Every `*.txt` in `dir`, in name order.
pub fn load_scenarios(dir: &Path) -> Result<Vec<Scenario>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse(&name, &text).with_context(|| format!("in {}", p.display()))
        })
        .collect()
}

fn parse(name: &str, text: &str) -> Result<Scenario> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut unordered = false;
        while let Some(rest) = line.strip_prefix('[') {
            let (flag, after) = rest.split_once(']').with_context(|| format!("line {}: unclosed [", i + 1))?;
            match flag {
                "unordered" => unordered = true,
                other => bail!("line {}: unknown flag [{other}]", i + 1),
            }
            line = after.trim_start();
        }
        let words = shlex::split(line).with_context(|| format!("line {}: unbalanced quotes", i + 1))?;
        let Some(("docker", args)) = words.split_first().map(|(p, a)| (p.as_str(), a)) else {
            bail!("line {}: a command starts with `docker`: {line}", i + 1);
        };
        steps.push(Step { line: i + 1, command: line.to_string(), args: args.to_vec(), unordered });
    }
    Ok(Scenario { name: name.to_string(), steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_steps() {
        let s = parse(
            "x",
            "# c\n\ndocker network create a\n[unordered] docker port web\ndocker inspect -f '{{json .X}}' a b\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].line, 3);
        assert_eq!(s.steps[0].args, ["network", "create", "a"]);
        assert!(s.steps[1].unordered);
        assert_eq!(s.steps[1].command, "docker port web");
        assert_eq!(s.steps[2].args, ["inspect", "-f", "{{json .X}}", "a", "b"]);
        assert!(parse("x", "netd ps\n").is_err());
        assert!(parse("x", "[bogus] docker ps\n").is_err());
        assert!(parse("x", "docker inspect 'a\n").is_err());
    }
}
