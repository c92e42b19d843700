//! Injected crash points for the crash-consistency tests: with `NETD_CRASH_AT=<point>` in the
//! daemon's environment, the daemon kills itself with SIGKILL when it reaches that point —
//! exactly what `kill -9` at that moment would do. Without the variable a point costs one
//! load of a cached `Option`.
use std::sync::OnceLock;

pub const ENV: &str = "NETD_CRASH_AT";

static TARGET: OnceLock<Option<String>> = OnceLock::new();

/// Dies here if this is the configured crash point.
pub fn point(name: &str) {
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()));
    if target.as_deref() == Some(name) {
        tracing::warn!(point = name, "injected crash");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
