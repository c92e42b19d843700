//! Leftovers of runs that could not clean up (killed with SIGKILL, machine reset…):
//! `netd-bench cleanup` removes what such runs created; a new run only points them out.
//!
//! A run's things all carry `nb-<pid>`: netns `/run/netns/nb-<pid>-*`, directories
//! `/tmp/nb-<pid>-*`, `/run/netd-bench/nb-<pid>`, `/sys/fs/bpf/nb-<pid>`, and the daemons it
//! started (dockerd, its containerd, netd) name those directories on their command lines.
//! Only runs whose process is gone are touched. Processes are found by pid but signalled
//! through a pidfd opened before their command line is checked (`netd_cmd::Process`), so a
//! pid reused meanwhile by an unrelated process is never signalled.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Result;
use netd_cmd::Process;

use crate::sys;

/// PIDs of dead runs that left something behind.
pub fn stale_runs() -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    let dirs = [Path::new("/run/netns"), &std::env::temp_dir(), Path::new("/run/netd-bench"), Path::new("/sys/fs/bpf")];
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
    Process::open_checked(pid, |pid| comm(pid) == "netd-bench").is_some_and(|p| p.is_alive())
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim().to_string()).unwrap_or_default()
}

/// Removes everything the dead run `pid` left.
pub fn clean_run(pid: u32) -> Result<()> {
    let tag = format!("nb-{pid}");
    let tmp = std::env::temp_dir();
    // netd's bpffs dirs: nb-<pid> (netd topology), nb-<pid>-dn (docker-netd).
    let dirs: Vec<PathBuf> = [tmp.as_path(), Path::new("/sys/fs/bpf")]
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{tag}-")))
        .map(|e| e.path())
        .chain([PathBuf::from("/run/netd-bench").join(&tag), PathBuf::from("/sys/fs/bpf").join(&tag)])
        .filter(|p| p.exists())
        .collect();

    // Daemons the run started: their command lines name its directories.
    // dockerd and netd first (dockerd stops its containers and containerd), then the rest.
    let markers: Vec<String> = dirs.iter().map(|d| format!("{}/", d.display())).collect();
    let is_daemon = |p: u32| matches!(comm(p).as_str(), "dockerd" | "netd");
    stop_all(&tag, &processes_mentioning(&markers, is_daemon));
    stop_all(&tag, &processes_mentioning(&markers, |_| true));
    for d in &dirs {
        eprintln!("{tag}: removing {}", d.display());
        sys::remove_tree(d);
    }
    let _ = std::fs::remove_dir("/run/netd-bench");
    for e in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{tag}-")) {
            eprintln!("{tag}: deleting netns {name}");
            sys::run_quiet(sys::command("ip").args(["netns", "del", &name]));
        }
    }
    Ok(())
}

fn stop_all(tag: &str, processes: &[Process]) {
    for p in processes {
        eprintln!("{tag}: stopping pid {} ({})", p.pid(), cmdline(p.pid()).chars().take(80).collect::<String>());
        let _ = p.signal(libc::SIGTERM);
    }
    for p in processes {
        if !p.wait_exit(Duration::from_secs(20)) {
            let _ = p.signal(libc::SIGKILL);
        }
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Live processes (not this one) whose command line holds one of `markers` and for which
/// `also` holds.
fn processes_mentioning(markers: &[String], also: impl Fn(u32) -> bool) -> Vec<Process> {
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
        .filter_map(|p| {
            Process::open_checked(p, |p| {
                let c = cmdline(p);
                markers.iter().any(|m| c.contains(m.as_str())) && also(p)
            })
        })
        .filter(Process::is_alive)
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
