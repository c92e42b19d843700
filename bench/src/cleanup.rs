//! Leftovers of runs that could not clean up (killed with SIGKILL, machine reset…):
//! `netd-bench cleanup` removes what such runs created; a new run only points them out.
//!
//! A run's things all carry `nb-<pid>`: netns `/run/netns/nb-<pid>-*`, directories
//! `/tmp/nb-<pid>-*`, `/run/netd-bench/nb-<pid>`, `/sys/fs/bpf/nb-<pid>`, and the daemons it
//! started (dockerd, its containerd, netd) name those directories on their command lines.
//! Only runs whose process is gone are touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::sys;

/// PIDs of dead runs that left something behind.
pub fn stale_runs() -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    let dirs = [
        Path::new("/run/netns"),
        &std::env::temp_dir(),
        Path::new("/run/netd-bench"),
        Path::new("/sys/fs/bpf"),
    ];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            if let Some(pid) = run_pid(&e.file_name().to_string_lossy()) {
                if !run_alive(pid) {
                    pids.insert(pid);
                }
            }
        }
    }
    pids
}

/// `nb-<pid>` or `nb-<pid>-…` → pid.
fn run_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nb-")?;
    let digits = rest.split('-').next()?;
    digits.parse().ok()
}

fn run_alive(pid: u32) -> bool {
    sys::pid_alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() == "netd-bench")
            .unwrap_or(false)
}

/// Removes everything the dead run `pid` left.
pub fn clean_run(pid: u32) -> Result<()> {
    let tag = format!("nb-{pid}");
    let tmp = std::env::temp_dir();
    let dirs: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{tag}-"))
        })
        .map(|e| e.path())
        .chain([
            PathBuf::from("/run/netd-bench").join(&tag),
            PathBuf::from("/sys/fs/bpf").join(&tag),
        ])
        .filter(|p| p.exists())
        .collect();

    // Daemons the run started: their command lines name its directories.
    // dockerd and netd first (dockerd stops its containers and containerd), then the rest.
    let markers: Vec<String> = dirs.iter().map(|d| format!("{}/", d.display())).collect();
    let is_daemon = |p: &u32| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .map(|c| matches!(c.trim(), "dockerd" | "netd"))
            .unwrap_or(false)
    };
    let first: Vec<u32> = processes_mentioning(&markers)
        .into_iter()
        .filter(is_daemon)
        .collect();
    stop_all(&tag, &first);
    stop_all(&tag, &processes_mentioning(&markers));
    for d in &dirs {
        eprintln!("{tag}: removing {}", d.display());
        sys::remove_tree(d);
    }
    let _ = std::fs::remove_dir("/run/netd-bench");
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{tag}-")) {
            eprintln!("{tag}: deleting netns {name}");
            sys::run_quiet(sys::command("ip").args(["netns", "del", &name]));
        }
    }
    Ok(())
}

fn stop_all(tag: &str, pids: &[u32]) {
    for &p in pids {
        eprintln!(
            "{tag}: stopping pid {p} ({})",
            cmdline(p).chars().take(80).collect::<String>()
        );
        sys::signal(p, libc::SIGTERM);
    }
    for &p in pids {
        if sys::wait_until_cleanup(Duration::from_secs(20), "exit", || Ok(!sys::pid_alive(p)))
            .is_err()
        {
            sys::signal(p, libc::SIGKILL);
        }
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn processes_mentioning(markers: &[String]) -> Vec<u32> {
    if markers.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&p| p != me)
        .filter(|&p| {
            let c = cmdline(p);
            markers.iter().any(|m| c.contains(m.as_str()))
        })
        .collect()
}

/// `netd-bench cleanup`.
pub fn run() -> Result<()> {
    let stale = stale_runs();
    if stale.is_empty() {
        eprintln!("nothing left over by earlier runs");
    }
    for pid in stale {
        clean_run(pid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names() {
        assert_eq!(run_pid("nb-123-veth-s"), Some(123));
        assert_eq!(run_pid("nb-123"), Some(123));
        assert_eq!(run_pid("nb-x-1"), None);
        assert_eq!(run_pid("nt-123-host"), None);
    }
}
