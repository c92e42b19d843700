//! Running child commands as named steps, and turning their failures into exit codes.
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{Context, Result};

/// A step whose command ran and exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed ({status})")]
pub struct StepFailed {
    pub step: String,
    pub status: ExitStatus,
}

/// Prints the step and its command line, runs it with inherited stdio, and fails unless it
/// exits 0.
pub fn run_step(step: &str, command: &mut Command) -> Result<()> {
    println!("[xtask] {step}: `{}`", describe(command));
    let status = command
        .status()
        .with_context(|| format!("{step}: cannot start `{}`", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepFailed {
            step: step.to_owned(),
            status,
        }
        .into())
    }
}

/// Runs a probe command quietly: its stdout if it exits 0, `None` if it fails or is absent.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A failed child's own exit code (so `cargo xtask test` exits like `cargo test`), else 1.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<StepFailed>())
        .and_then(|failed| failed.status.code())
        .and_then(|code| u8::try_from(code).ok())
        .filter(|&code| code != 0)
        .map(ExitCode::from)
        .unwrap_or(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_step_reports_the_step_and_keeps_the_exit_code() {
        let err = run_step("probe step", Command::new("sh").args(["-c", "exit 7"])).unwrap_err();
        assert!(err.to_string().starts_with("probe step failed"), "{err}");
        assert_eq!(exit_code(&err), ExitCode::from(7));
    }

    #[test]
    fn run_step_names_a_missing_program() {
        let err = run_step("missing", &mut Command::new("/nonexistent/xtask-none")).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("missing: cannot start"),
            "{err:#}"
        );
        assert_eq!(exit_code(&err), ExitCode::FAILURE);
    }

    #[test]
    fn probe_returns_stdout_only_on_success() {
        assert_eq!(
            probe(Command::new("echo").arg("hi")).as_deref(),
            Some("hi\n")
        );
        assert_eq!(probe(&mut Command::new("false")), None);
        assert_eq!(probe(&mut Command::new("/nonexistent/xtask-none")), None);
    }
}
