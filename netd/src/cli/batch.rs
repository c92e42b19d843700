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

/// How many requests of a multi-container command Docker 20.10's CLI has in flight at once:
/// `rm`, `stop` (and `kill`, `pause`, `unpause`) go through its `parallelOperation`, 50 at a
/// time; `start`, `restart` and `network rm` ask one name after another.
pub(super) const DOCKER_PARALLEL: usize = 50;

/// Runs `f` for every name, at most `in_flight` at once, and reports each name in the order
/// given, as Docker's `parallelOperation` does: the name on stdout when `f` succeeded, the
/// failure as `report` says. Fails (exit code 1, nothing more printed) if any name failed.
pub(super) async fn for_each<F, Fut>(names: &[String], in_flight: usize, report: Report, f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut at_end = Vec::new();
    let mut failed = Vec::new();
    in_order(names, in_flight, f, |name, result| {
        let Err(e) = result else {
            println!("{name}");
            return;
        };
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
                    return;
                }
                at_end.push(e.to_string());
            }
            Report::Start => eprintln!("{e}"),
        }
        failed.push(name.to_string());
    })
    .await;
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

/// Starts `op` for the names in their order, never more than `in_flight` unfinished at once,
/// and hands every result to `each` in the order of `names`: as soon as it and all those
/// before it are in (a slow first name holds the output back, not the requests after it).
async fn in_order<T, F, Fut>(names: &[String], in_flight: usize, op: F, mut each: impl FnMut(&str, anyhow::Result<T>))
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut waiting = names.iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut finished: Vec<Option<anyhow::Result<T>>> = names.iter().map(|_| None).collect();
    let mut next_to_report = 0;
    loop {
        while running.len() < in_flight.max(1) {
            let Some((i, name)) = waiting.next() else { break };
            let request = op(name.clone());
            running.push(async move { (i, request.await) });
        }
        let Some((i, result)) = running.next().await else { break };
        finished[i] = Some(result);
        while let Some(result) = finished.get_mut(next_to_report).and_then(Option::take) {
            each(&names[next_to_report], result);
            next_to_report += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, time::Duration};

    use super::*;

    /// What `run_bounded` saw.
    struct Seen {
        reported: Vec<String>,
        most_in_flight: usize,
        /// How many other requests had ended when the first one (the slowest) did.
        ended_before_first: usize,
    }

    /// 120 requests (on tokio's paused clock), the odd ones slower, the first slowest, every
    /// third failing.
    async fn run_bounded(limit: usize) -> Seen {
        let names: Vec<String> = (0..120).map(|i| format!("c{i}")).collect();
        let (now, most, ended, ended_before_first) = (Cell::new(0usize), Cell::new(0), Cell::new(0), Cell::new(0));
        let mut reported = Vec::new();
        in_order(
            &names,
            limit,
            |name| {
                let (now, most, ended, ended_before_first) = (&now, &most, &ended, &ended_before_first);
                async move {
                    now.set(now.get() + 1);
                    most.set(most.get().max(now.get()));
                    let i: u64 = name[1..].parse().unwrap();
                    let ms = if i == 0 { 500 } else { 1 + (i % 2) * 7 };
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    now.set(now.get() - 1);
                    if i == 0 {
                        ended_before_first.set(ended.get());
                    }
                    ended.set(ended.get() + 1);
                    if i.is_multiple_of(3) {
                        anyhow::bail!("no {name}");
                    }
                    Ok(name)
                }
            },
            |name, result| reported.push(format!("{name}={}", result.unwrap_or_else(|e| e.to_string()))),
        )
        .await;
        Seen { reported, most_in_flight: most.get(), ended_before_first: ended_before_first.get() }
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_the_limit_in_flight_results_in_order() {
        for limit in [1, 7, DOCKER_PARALLEL, 500] {
            let Seen { reported, most_in_flight, .. } = run_bounded(limit).await;
            assert_eq!(most_in_flight, limit.min(120), "limit {limit}");
            let expected: Vec<String> = (0..120u64)
                .map(|i| if i.is_multiple_of(3) { format!("c{i}=no c{i}") } else { format!("c{i}=c{i}") })
                .collect();
            assert_eq!(reported, expected, "limit {limit}");
        }
    }

    /// A slow first request holds back the output, not the requests after it (Docker's
    /// semaphore is released when a request ends, not when its result is printed).
    #[tokio::test(start_paused = true)]
    async fn a_slow_first_name_does_not_stall_the_others() {
        // The first takes 500 ms; the other 119, in the 49 other slots at ≤ 8 ms each, all end
        // before it.
        let seen = run_bounded(DOCKER_PARALLEL).await;
        assert_eq!(seen.ended_before_first, 119);
        assert_eq!(seen.reported.len(), 120);
        // One at a time, none can.
        assert_eq!(run_bounded(1).await.ended_before_first, 0);
    }

    #[tokio::test]
    async fn no_names_no_requests() {
        let mut reported = 0;
        in_order(&[], DOCKER_PARALLEL, |_| async { anyhow::Ok(()) }, |_, _| reported += 1).await;
        assert_eq!(reported, 0);
    }
}
