//! Checks on the free-form strings of API requests. The API socket is the trust boundary:
//! a name or value that reaches `/etc/hosts`, a netns file name, the store or `execve`
//! must not be able to add lines, escape a directory or grow without bound, whatever
//! client sent it.

use std::collections::BTreeMap;

use crate::{
    api_types::{CreateNetwork, RunContainer},
    error::{Error, Result},
};

/// Longest network name taken. Docker 20.10 sets no bound; netd stores and echoes
/// names in every listing, so it sets one (a departure, docs/docker-departures.md).
pub const MAX_NETWORK_NAME: usize = 128;

/// The kernel's `HOST_NAME_MAX`: `sethostname` refuses anything longer.
pub const MAX_HOSTNAME: usize = 64;

/// Longest host name or alias written into `/etc/hosts` (a DNS name's limit).
pub const MAX_HOST_ENTRY_NAME: usize = 253;

/// Docker's network name rule plus a length bound. The name is not echoed when too long.
pub fn network_name(name: &str) -> Result<()> {
    if name.len() > MAX_NETWORK_NAME {
        return Err(invalid(format!(
            "Invalid name: {} characters long, at most {MAX_NETWORK_NAME} are allowed",
            name.len()
        )));
    }
    if has_docker_name_chars(name) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid name \"{}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", shown(name))))
    }
}

/// `--hostname`: what Docker 20.10 takes (`a_b`, `-a` too: measured), but one field of an
/// `/etc/hosts` line and at most `HOST_NAME_MAX` (longer, Docker fails at start in
/// `sethostname`).
pub fn hostname(name: &str) -> Result<()> {
    match is_one_hosts_field(name, MAX_HOSTNAME) {
        true => Ok(()),
        false => Err(invalid(format!(
            "invalid hostname \"{}\": at most {MAX_HOSTNAME} characters without spaces, control characters or '#'",
            shown(name)
        ))),
    }
}

/// A name written as one field of an `/etc/hosts` line (`--add-host` host, `--network-alias`):
/// no whitespace, control character or comment mark, which would add fields or lines.
pub fn host_entry_name(what: &str, name: &str) -> Result<()> {
    match is_one_hosts_field(name, MAX_HOST_ENTRY_NAME) {
        true => Ok(()),
        false => Err(invalid(format!(
            "invalid {what} \"{}\": a host name of at most {MAX_HOST_ENTRY_NAME} characters without spaces, control characters or '#'",
            shown(name)
        ))),
    }
}

fn is_one_hosts_field(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '#')
}

/// `--network-alias` values.
pub fn aliases(aliases: &[String]) -> Result<()> {
    aliases.iter().try_for_each(|a| host_entry_name("network alias", a))
}

/// The host part of each `--add-host HOST:IP` (the address is parsed where it is used).
pub fn add_hosts(specs: &[String]) -> Result<()> {
    specs
        .iter()
        .filter_map(|spec| spec.split_once(':'))
        .filter(|(host, _)| !host.is_empty())
        .try_for_each(|(host, _)| host_entry_name("--add-host host", host))
}

/// `-e KEY=VALUE`: a key, and no NUL anywhere (`execve` cannot carry one).
pub fn env(vars: &[String]) -> Result<()> {
    for var in vars {
        let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
        if key.is_empty() {
            return Err(invalid(format!("invalid environment variable: {}", shown(var))));
        }
        if var.contains('\0') {
            return Err(invalid(format!("invalid environment variable \"{}\": contains a NUL byte", shown(key))));
        }
    }
    Ok(())
}

/// The command and its arguments: no NUL (`execve` cannot carry one).
pub fn command(cmd: &[String]) -> Result<()> {
    if cmd.iter().any(|arg| arg.contains('\0')) {
        return Err(invalid("invalid command: an argument contains a NUL byte".into()));
    }
    Ok(())
}

/// `--label KEY=VALUE`: a non-empty key without control characters, and no NUL in values.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in labels {
        if key.is_empty() || key.chars().any(|c| c.is_control()) {
            return Err(invalid(format!("invalid label key \"{}\"", shown(key))));
        }
        if value.contains('\0') {
            return Err(invalid(format!("invalid label value for \"{}\": contains a NUL byte", shown(key))));
        }
    }
    Ok(())
}

/// Docker's container name rule, `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (two characters at least),
/// with its message, at most 200 characters (the name is also the file name of the
/// container's netns mount, so `/` and `..` must never pass).
pub fn container_name(name: &str) -> Result<()> {
    if (2..=200).contains(&name.len()) && has_docker_name_chars(name) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", shown(name))))
    }
}

/// Docker's name characters, `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (`/` and `..` never pass).
fn has_docker_name_chars(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Every free-form string of a `run` request, before anything is looked up or changed.
pub fn run_container(req: &RunContainer) -> Result<()> {
    if let Some(name) = &req.name {
        container_name(name)?;
    }
    if let Some(name) = &req.hostname {
        hostname(name)?;
    }
    aliases(&req.aliases)?;
    add_hosts(&req.add_hosts)?;
    env(&req.env)?;
    command(&req.cmd)?;
    labels(&req.labels)
}

/// Every free-form string of a `network create` request.
pub fn create_network(req: &CreateNetwork) -> Result<()> {
    network_name(&req.name)?;
    labels(&req.labels)?;
    labels(&req.options)
        .map_err(|_| invalid("invalid network option: an empty key, a control character or a NUL byte".into()))?;
    crate::model::mtu_option(&req.options).map(drop).map_err(invalid)
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// The string as shown in an error: control characters escaped (the error stays one line)
/// and cut after 80 characters.
fn shown(s: &str) -> String {
    const SHOWN: usize = 80;
    let mut out: String = s.chars().take(SHOWN).flat_map(char::escape_debug).collect();
    if s.chars().count() > SHOWN {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names() {
        assert!(network_name("net-1.a_b").is_ok());
        assert!(network_name(&"a".repeat(MAX_NETWORK_NAME)).is_ok());
        let long = network_name(&"a".repeat(1 << 20)).unwrap_err().to_string();
        assert_eq!(long, "Invalid name: 1048576 characters long, at most 128 are allowed");
        for bad in ["", "a/b", "..", "a\0b", "a\nb", "-a"] {
            let err = network_name(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn container_names() {
        assert!(container_name("web-1").is_ok());
        for bad in ["a", "a/b", "..", "../x", "a\0b", "a\nb", &"a".repeat(201)] {
            let err = container_name(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn hostnames() {
        // Docker 20.10 starts containers with these (measured).
        for ok in ["web-1.example", "a_b", "-ab", &"a".repeat(64)] {
            assert!(hostname(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a b", "a\nb", "a#b", &"a".repeat(65)] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            hostname("a\nb").unwrap_err().to_string(),
            "invalid hostname \"a\\nb\": at most 64 characters without spaces, control characters or '#'"
        );
    }

    #[test]
    fn host_entries_cannot_add_lines_or_fields() {
        assert!(aliases(&["db".into(), "db.local".into()]).is_ok());
        for bad in ["a\nb", "a b", "a\tb", "a#b", ""] {
            assert!(aliases(&[bad.into()]).is_err(), "{bad:?}");
        }
        assert!(add_hosts(&["h:10.0.0.1".into()]).is_ok());
        assert!(add_hosts(&["h\n1.2.3.4 evil:10.0.0.1".into()]).is_err());
    }

    #[test]
    fn env_labels_and_commands() {
        assert!(env(&["A=1".into(), "B".into()]).is_ok());
        assert!(env(&["=1".into()]).is_err());
        assert!(env(&["A=\0".into()]).is_err());
        assert!(command(&["sh".into(), "a\0".into()]).is_err());
        let mut l = BTreeMap::from([("k".to_string(), "v\nw".to_string())]);
        assert!(labels(&l).is_ok());
        l.insert("a\nb".into(), "v".into());
        assert!(labels(&l).is_err());
    }

    #[test]
    fn shown_cuts_and_escapes() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(100)).len(), 83);
    }
}
