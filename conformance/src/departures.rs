//! Documented departures: where netd differs from Docker on purpose. Each one names the
//! steps it applies to (a regex over the command line) and rewrites, on both sides, exactly
//! the part of the output that differs, so that anything else in the same step still has to
//! match. Each one is explained in `docs/docker-departures.md` under a heading that names its
//! id in backticks; [`Departures::check`] enforces that.
use std::path::Path;

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default, rename = "departure")]
    departures: Vec<Raw>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    id: String,
    /// One line; docs/docker-departures.md has the reasoning.
    summary: String,
    #[serde(default)]
    commands: Option<String>,
    rewrite: Vec<RawRewrite>,
}

#[derive(Debug, Deserialize)]
struct RawRewrite {
    find: String,
    replace: String,
}

#[derive(Debug)]
pub struct Departure {
    pub id: String,
    pub summary: String,
    commands: Option<Regex>,
    rewrites: Vec<(Regex, String)>,
}

#[derive(Debug, Default)]
pub struct Departures(pub Vec<Departure>);

impl Departures {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let file: File = toml::from_str(text)?;
        let mut out = Vec::new();
        for raw in file.departures {
            if out.iter().any(|d: &Departure| d.id == raw.id) {
                bail!("departure `{}` is defined twice", raw.id);
            }
            let re = |s: &str| Regex::new(s).with_context(|| format!("departure `{}`: bad regex {s:?}", raw.id));
            out.push(Departure {
                commands: raw.commands.as_deref().map(re).transpose()?,
                rewrites: raw.rewrite.iter().map(|r| Ok((re(&r.find)?, r.replace.clone()))).collect::<Result<_>>()?,
                id: raw.id,
                summary: raw.summary,
            });
        }
        Ok(Self(out))
    }

    /// Every departure has a heading naming its id in `doc` (the text of
    /// docs/docker-departures.md).
    pub fn check(&self, doc: &str) -> Result<()> {
        let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with('#')).collect();
        let missing: Vec<&str> = self
            .0
            .iter()
            .filter(|d| !headings.iter().any(|h| h.contains(&format!("`{}`", d.id))))
            .map(|d| d.id.as_str())
            .collect();
        if !missing.is_empty() {
            bail!("departures without a heading in docs/docker-departures.md: {}", missing.join(", "));
        }
        Ok(())
    }

    /// Rewrites both texts with the departures that apply to `command`; returns the ids of
    /// those that changed either text.
    pub fn apply(&self, command: &str, a: &mut String, b: &mut String) -> Vec<String> {
        let mut used = Vec::new();
        for d in self.0.iter().filter(|d| d.commands.as_ref().is_none_or(|c| c.is_match(command))) {
            let mut changed = false;
            for (re, with) in &d.rewrites {
                for text in [&mut *a, &mut *b] {
                    let new = re.replace_all(text, with.as_str());
                    if new != *text {
                        *text = new.into_owned();
                        changed = true;
                    }
                }
            }
            if changed {
                used.push(d.id.clone());
            }
        }
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[departure]]
id = "sandbox-key"
summary = "netd's netns paths"
commands = '^docker inspect'
rewrite = [ { find = '"SandboxKey": "[^"]*"', replace = '"SandboxKey": <path>' } ]
"#;

    #[test]
    fn rewrites_only_the_named_part_of_matching_commands() {
        let d = Departures::parse(SAMPLE).unwrap();
        let (mut a, mut b) = (
            r#""SandboxKey": "/var/run/docker/netns/x", "A": 1"#.to_string(),
            r#""SandboxKey": "/run/netd/netns/y", "A": 2"#.to_string(),
        );
        assert_eq!(d.apply("docker inspect web", &mut a, &mut b), ["sandbox-key"]);
        assert_eq!(a, r#""SandboxKey": <path>, "A": 1"#);
        assert_ne!(a, b, "the rest still differs");
        let (mut a, mut b) = (r#""SandboxKey": "x""#.to_string(), String::new());
        assert!(d.apply("docker ps", &mut a, &mut b).is_empty());
    }

    #[test]
    fn every_departure_needs_a_heading() {
        let d = Departures::parse(SAMPLE).unwrap();
        assert!(d.check("# Departures\n## `sandbox-key`: why\n").is_ok());
        assert!(d.check("# Departures\nsandbox-key is mentioned but not a heading\n").is_err());
        assert!(Departures::parse(&format!("{SAMPLE}{SAMPLE}")).is_err());
    }
}
