//! Installs the tools a run needs from Debian's packages (iperf3; docker.io and
//! busybox-static for the docker0 topology) when they are missing.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::{sys, topology::Kind};

/// (command that must exist, Debian package providing it)
fn needed(kinds: &[Kind]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("iperf3", "iperf3"), ("nsenter", "util-linux"), ("taskset", "util-linux"), ("ip", "iproute2")];
    if kinds.contains(&Kind::Docker0) || kinds.contains(&Kind::DockerNetd) {
        v.extend([("dockerd", "docker.io"), ("busybox", "busybox-static"), ("tar", "tar"), ("iptables", "iptables")]);
    }
    v
}

fn present(cmd: &str) -> bool {
    match cmd {
        // busybox-static installs /bin/busybox, which need not be on PATH.
        "busybox" => ["/bin/busybox", "/usr/bin/busybox"].iter().any(|p| std::path::Path::new(p).exists()),
        _ => netd_cmd::which(cmd).is_some(),
    }
}

/// Installs missing packages with apt-get (running `apt-get update` first only if the
/// install fails without it). Returns the packages it installed.
pub fn ensure_tools(kinds: &[Kind], progress: &mut crate::progress::Progress) -> Result<Vec<&'static str>> {
    let mut missing: Vec<&str> = needed(kinds).into_iter().filter(|(c, _)| !present(c)).map(|(_, p)| p).collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(missing);
    }
    if netd_cmd::which("apt-get").is_none() {
        bail!("missing {} and there is no apt-get to install them", missing.join(", "));
    }
    progress.note(&format!("installing {} (apt-get)…", missing.join(" ")));
    let install = |pkgs: &[&str]| {
        sys::run_timeout(
            sys::command("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(pkgs)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            Duration::from_secs(600),
        )
    };
    if install(&missing).is_err() {
        sys::check_interrupted()?;
        sys::run_timeout(sys::command("apt-get").args(["update", "-q"]), Duration::from_secs(300))?;
        install(&missing)?;
    }
    Ok(missing)
}
