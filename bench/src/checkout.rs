//! The netd checkout the bench runs from, found at run time from the current directory.
//!
//! Never the path the binary was compiled in (`env!("CARGO_MANIFEST_DIR")`): a target/ dir
//! copied from one clone to another keeps a binary that would write its results into the
//! first clone. `cargo xtask bench` runs the bench from its workspace root.

use std::path::{Path, PathBuf};

/// The nearest of `dir` and its ancestors that holds netd's workspace: a Cargo.toml beside
/// a bench/Cargo.toml of the `netd-bench` package.
pub fn find_from(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| is_checkout(d)).map(Path::to_path_buf)
}

/// The checkout around the current directory.
pub fn current() -> Option<PathBuf> {
    find_from(&std::env::current_dir().ok()?)
}

/// `<checkout>/bench`, where results.{json,md,png} go unless `--out-dir` says otherwise;
/// an error naming the way out when the bench does not run inside a checkout.
pub fn results_dir() -> anyhow::Result<PathBuf> {
    match current() {
        Some(root) => Ok(root.join("bench")),
        None => anyhow::bail!(
            "not inside a netd checkout (no Cargo.toml beside bench/Cargo.toml above {}): run from the checkout or pass --out-dir",
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
        ),
    }
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
        && std::fs::read_to_string(dir.join("bench/Cargo.toml"))
            .is_ok_and(|m| m.lines().any(|l| l.replace(' ', "") == "name=\"netd-bench\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_checkout_above_a_subdirectory_and_nothing_elsewhere() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("bench/src")).unwrap();
        std::fs::write(r.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(r.join("bench/Cargo.toml"), "[package]\nname = \"netd-bench\"\n").unwrap();
        assert_eq!(find_from(&r.join("bench/src")).as_deref(), Some(r));
        assert_eq!(find_from(r).as_deref(), Some(r));

        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("bench")).unwrap();
        std::fs::write(other.path().join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(other.path().join("bench/Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        assert_eq!(find_from(other.path()), None);
    }
}
