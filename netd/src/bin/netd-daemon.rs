//! The `netd-daemon` binary: the daemon, which `netd daemon` runs (see `main.rs`), and the
//! `netd __enter` that starts each container command (the daemon runs its own binary for
//! it). Every other command works here too.
use std::path::PathBuf;

use netd::{
    cli::{self, Command},
    daemon::{self, DaemonArgs},
};

fn main() {
    let cli = cli::parse();
    let result = match cli.command {
        Command::Daemon(args) => run_daemon(args, cli.socket),
        _ => cli::dispatch(cli),
    };
    if let Err(e) = result {
        cli::exit_with(e);
    }
}

fn run_daemon(args: DaemonArgs, socket: Option<PathBuf>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let socket = socket.unwrap_or_else(|| args.run_dir.join("netd.sock"));
    tokio::runtime::Runtime::new()?.block_on(daemon::run(args, socket))
}
