//! `cargo xtask run`: builds, then becomes `netd daemon` in the foreground.
use std::{ffi::OsString, os::unix::process::CommandExt};

use anyhow::{Context, Result};
use netd_cmd::describe;

use crate::{build, paths};

/// Replaces xtask with the daemon (exec), so Ctrl-C and SIGTERM reach netd itself.
pub fn run(daemon_args: &[OsString]) -> Result<()> {
    paths::require_root("cargo xtask run")?;
    let netd = build::run()?;
    let mut daemon = paths::command(&netd);
    daemon.arg("daemon").args(daemon_args);
    println!("[xtask] run: {}", describe(&daemon));
    let err = daemon.exec();
    Err(err).with_context(|| format!("run: cannot exec `{}`", describe(&daemon)))
}
