//! The `netd` binary: the CLI and, as `netd daemon`, the daemon (see the library).
use std::path::PathBuf;

use clap::CommandFactory;
use netd::{
    cli::{self, Cli, Command},
    daemon, process,
};

fn main() {
    let cli = cli::parse();
    if let Err(e) = dispatch(cli) {
        cli::exit_with(e);
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Enter(args) => {
            let exec = std::env::var_os(cli::EXEC_ERRORS).is_some();
            // SAFETY: single-threaded here (no runtime yet); the command must not see it.
            unsafe { std::env::remove_var(cli::EXEC_ERRORS) };
            let (text, code, stdout) = cli::enter_failed(&process::enter_and_exec(&args), exec);
            if stdout {
                // Docker's exec ends this line with CRLF (measured on 20.10.24).
                print!("{text}\r\n");
            } else {
                eprintln!("{text}");
            }
            std::process::exit(code)
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "netd", &mut std::io::stdout());
            Ok(())
        }
        Command::Daemon(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let socket = cli.socket.unwrap_or_else(|| args.run_dir.join("netd.sock"));
            tokio::runtime::Runtime::new()?.block_on(daemon::run(args, socket))
        }
        command => {
            let socket = cli.socket.unwrap_or_else(|| PathBuf::from(cli::DEFAULT_SOCKET));
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(cli::run(command, socket))
        }
    }
}
