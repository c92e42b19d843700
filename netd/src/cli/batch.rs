//! Commands over several names, as Docker runs them: every name is tried, the failures are
//! reported together.

/// Fetches every name; returns the objects found and the errors (in order).
pub(super) async fn fetch_all<T, F, Fut>(names: &[String], f: F) -> (Vec<T>, Vec<anyhow::Error>)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match f(name.clone()).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    (found, errors)
}

/// Runs `f` for every name; reports each failure on its own line and fails at the end, like
/// Docker does for multi-name commands.
pub(super) async fn for_each<F, Fut>(names: &[String], f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failed = false;
    for name in names {
        if let Err(e) = f(name.clone()).await {
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
