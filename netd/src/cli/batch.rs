//! Commands over several names, as Docker 20.10's CLI runs them: every name is tried, each
//! success and each failure is reported, and the command fails at the end if any name did.
use crate::client::DaemonError;

/// Fetches every name; returns the objects found and the errors (in order). A name the daemon
/// does not know is reported as `Error: No such <kind>: NAME`, as Docker's client does.
pub(super) async fn fetch_all<T, F, Fut>(names: &[String], kind: &str, f: F) -> (Vec<T>, Vec<anyhow::Error>)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match f(name.clone()).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(no_such(e, kind, name)),
        }
    }
    (found, errors)
}

/// `Error: No such <kind>: NAME` for the daemon's "not found" (Docker's client's text for
/// inspect, `rm`, `network rm`, `exec`, `port`); any other error as it is.
pub(crate) fn no_such(e: anyhow::Error, kind: &str, name: &str) -> anyhow::Error {
    if DaemonError::is_not_found(&e) {
        anyhow::anyhow!("Error: No such {kind}: {name}")
    } else {
        e
    }
}

/// How a multi-name command reports its failures (measured on Docker 20.10.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Report {
    /// `network rm`: each error on stderr as it comes; a name the daemon does not know is
    /// `Error: No such network: NAME`.
    AsTheyCome { no_such: &'static str },
    /// `rm`, `stop`: the errors together at the end. `rm` says `Error: No such container: X`
    /// (`stop` keeps the daemon's text); `rm -f` prints an unknown name's error at once and
    /// does not fail for it.
    AtTheEnd { no_such: Option<&'static str>, force: bool },
    /// `start`: each error as it comes, then `Error: failed to start containers: a, b`.
    Start,
}

/// Runs `f` for every name (which prints what it did) and reports failures as `report` says.
/// Fails (exit code 1, nothing more printed) if any name failed.
pub(super) async fn for_each<F, Fut>(names: &[String], report: Report, f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut at_end = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let Err(e) = f(name.clone()).await else { continue };
        let not_found = DaemonError::is_not_found(&e);
        match report {
            Report::AsTheyCome { no_such: kind } => eprintln!("{}", no_such(e, kind, name)),
            Report::AtTheEnd { no_such: kind, force } => {
                let e = match kind {
                    Some(kind) => no_such(e, kind, name),
                    None => e,
                };
                if force && not_found {
                    eprintln!("{e}");
                    continue;
                }
                at_end.push(e.to_string());
            }
            Report::Start => eprintln!("{e}"),
        }
        failed.push(name.as_str());
    }
    if failed.is_empty() {
        return Ok(());
    }
    let text = match report {
        Report::AsTheyCome { .. } => String::new(),
        Report::AtTheEnd { .. } => at_end.join("\n"),
        Report::Start => format!("Error: failed to start containers: {}", failed.join(", ")),
    };
    Err(super::Exit::new(text, 1).into())
}
