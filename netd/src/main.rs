//! The `netd` binary: the CLI. `cargo xtask build` links it statically (musl) and without the
//! daemon's code, so that a command starts in a fraction of a millisecond: glibc's start-up
//! alone asks the CPU for its features and caches many times, which costs ≈0.4 ms on a VM
//! (every `cpuid` is a trap to the hypervisor). See docs/control-plane-latency.md.
//!
//! `netd daemon` runs the daemon's binary, `netd-daemon`, installed beside this one.
use std::{os::unix::process::CommandExt, path::PathBuf};

use anyhow::Context;
use netd::cli::{self, Command};

/// musl's allocator maps and unmaps memory for most of a command's allocations (≈100
/// `mmap`/`munmap` for one `run -d`, each with its page faults and TLB flush); dlmalloc takes
/// memory from the kernel in large pieces and keeps what is freed.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The daemon's binary, beside this one.
const DAEMON_BINARY: &str = "netd-daemon";

fn main() {
    let cli = cli::parse();
    let result = match cli.command {
        Command::Daemon(_) => exec_daemon(),
        _ => cli::dispatch(cli),
    };
    if let Err(e) = result {
        cli::exit_with(e);
    }
}

/// Becomes the daemon's binary with the same arguments (it parses them again), so that the
/// daemon keeps this process's PID.
fn exec_daemon() -> anyhow::Result<()> {
    let me = std::env::current_exe().context("cannot locate the netd binary")?;
    let daemon = daemon_binary(&me);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "netd".into());
    let err = std::process::Command::new(&daemon).arg0(arg0).args(args).exec();
    Err(anyhow::anyhow!("cannot start the daemon {}: {err}", daemon.display()))
}

fn daemon_binary(me: &std::path::Path) -> PathBuf {
    me.with_file_name(DAEMON_BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_binary_is_beside_the_cli() {
        assert_eq!(daemon_binary("/usr/local/bin/netd".as_ref()), PathBuf::from("/usr/local/bin/netd-daemon"));
    }
}
