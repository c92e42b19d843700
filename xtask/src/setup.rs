//! `cargo xtask setup`: installs what building and testing netd needs on Debian 12.
//!
//! Idempotent: every prerequisite is detected first and only the missing ones are installed,
//! so `build`, `run`, `test` and `bench` call [`ensure`] as a fast check.
use std::{path::PathBuf, process::Command};

use anyhow::{anyhow, bail, Context, Result};

use netd_cmd::describe;

use crate::{
    paths,
    process::{probe, run_step, PROBE_TIMEOUT},
};

/// Debian packages: bpf-linker's build (against Debian's LLVM 22), then the datapath tools
/// and what the end-to-end tests and benchmarks drive.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "libxml2-dev",
    "iproute2",
    "iputils-ping",
    "bpftool",
    "nftables",
    "iptables",
    "procps",
    "dnsutils",
    "iperf3",
];

/// llvm-sys finds `llvm-config` (and so `-lLLVM`) through PATH.
const LLVM_BIN_DIR: &str = "/usr/lib/llvm-22/bin";
const BPF_LINKER_VERSION: &str = "0.13.0";
const BPF_LINKER_LLVM_FEATURE: &str = "llvm-22";

/// `cargo xtask setup`.
pub fn run() -> Result<()> {
    paths::require_root("cargo xtask setup")?;
    ensure()
}

/// Detects every prerequisite, installs the missing ones (which needs root), and checks
/// that nothing is missing afterwards.
pub fn ensure() -> Result<()> {
    let status = Status::detect()?;
    status.report();
    let missing = status.missing();
    if missing.is_empty() {
        return Ok(());
    }
    if !paths::is_root() {
        bail!(
            "cargo xtask setup must run as root (to install {})",
            missing.join(", ")
        );
    }
    status.install()?;
    let still_missing = Status::detect()?.missing();
    if !still_missing.is_empty() {
        bail!(
            "setup: still missing after installing: {}",
            still_missing.join(", ")
        );
    }
    println!("[setup] done");
    Ok(())
}

/// What is present and what is not.
struct Status {
    missing_packages: Vec<&'static str>,
    has_rust_src: bool,
    bpf_linker_version: Option<String>,
}

impl Status {
    fn detect() -> Result<Self> {
        Ok(Self {
            missing_packages: missing_packages(APT_PACKAGES)?,
            has_rust_src: has_nightly_rust_src()?,
            bpf_linker_version: bpf_linker_version(),
        })
    }

    fn missing(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .missing_packages
            .iter()
            .map(|p| p.to_string())
            .collect();
        if !self.has_rust_src {
            missing.push("rust-src (nightly)".into());
        }
        if self.bpf_linker_version.is_none() {
            missing.push("bpf-linker".into());
        }
        missing
    }

    fn report(&self) {
        match self.missing_packages.as_slice() {
            [] => println!("[setup] apt packages: all {} installed", APT_PACKAGES.len()),
            missing => println!("[setup] apt packages: missing {}", missing.join(" ")),
        }
        let rust_src = if self.has_rust_src {
            "installed"
        } else {
            "missing"
        };
        println!("[setup] rust-src (nightly): {rust_src}");
        match &self.bpf_linker_version {
            Some(version) => println!("[setup] bpf-linker: {version}"),
            None => println!("[setup] bpf-linker: missing"),
        }
    }

    /// Installs in dependency order: bpf-linker builds against the apt LLVM.
    fn install(&self) -> Result<()> {
        if !self.missing_packages.is_empty() {
            install_packages(&self.missing_packages)?;
        }
        if !self.has_rust_src {
            install_rust_src()?;
        }
        if self.bpf_linker_version.is_none() {
            install_bpf_linker()?;
        }
        Ok(())
    }
}

fn missing_packages(packages: &[&'static str]) -> Result<Vec<&'static str>> {
    let mut missing = Vec::new();
    for &package in packages {
        if !is_package_installed(package)? {
            missing.push(package);
        }
    }
    Ok(missing)
}

fn is_package_installed(package: &str) -> Result<bool> {
    // dpkg-query exits 1 with empty stdout for a package it does not know.
    let output = netd_cmd::output(
        Command::new("dpkg-query").args(["-W", "-f=${Status}", package]),
        netd_cmd::Limit::new(PROBE_TIMEOUT),
    )
    .context("setup: cannot run dpkg-query (setup supports Debian 12)")?;
    Ok(is_installed_status(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

fn is_installed_status(dpkg_status: &str) -> bool {
    dpkg_status.contains("install ok installed")
}

fn install_packages(packages: &[&str]) -> Result<()> {
    let apt_get = || {
        let mut apt_get = paths::command("apt-get");
        apt_get.env("DEBIAN_FRONTEND", "noninteractive");
        apt_get
    };
    run_step("setup: refresh apt package lists", apt_get().arg("update"))?;
    run_step(
        "setup: install apt packages",
        apt_get().args(["install", "-y"]).args(packages),
    )
}

fn has_nightly_rust_src() -> Result<bool> {
    let mut list = paths::command("rustup");
    list.args(["component", "list", "--toolchain", "nightly", "--installed"]);
    let installed = probe(&mut list).ok_or_else(|| {
        anyhow!(
            "setup: `{}` failed: are rustup and the nightly toolchain installed?",
            describe(&list)
        )
    })?;
    Ok(lists_rust_src(&installed))
}

/// `rustup component list --installed` prints one component a line; rust-src has no target.
fn lists_rust_src(components: &str) -> bool {
    components
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .any(|component| component == "rust-src")
}

fn install_rust_src() -> Result<()> {
    run_step(
        "setup: add nightly rust-src",
        paths::command("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
    )
}

/// `bpf-linker --version`, looked up on PATH and in cargo's bin dir.
fn bpf_linker_version() -> Option<String> {
    let version = probe(paths::command("bpf-linker").arg("--version"))?;
    Some(version.trim().to_owned())
}

fn install_bpf_linker() -> Result<()> {
    let mut search = vec![PathBuf::from(LLVM_BIN_DIR)];
    search.extend(paths::cargo_bin_dir());
    run_step(
        "setup: install bpf-linker",
        paths::cargo()
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args([
                "--no-default-features",
                "--features",
                BPF_LINKER_LLVM_FEATURE,
            ])
            .env("PATH", paths::path_with(&search)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_installed_only_when_fully_installed() {
        assert!(is_installed_status("install ok installed"));
        assert!(!is_installed_status("deinstall ok config-files"));
        assert!(!is_installed_status("install ok unpacked"));
        assert!(!is_installed_status(""));
    }

    #[test]
    fn detects_an_installed_and_an_unknown_package() {
        // dpkg itself is always installed on Debian; the second name is never a package.
        assert!(is_package_installed("dpkg").unwrap());
        assert!(!is_package_installed("xtask-no-such-package").unwrap());
    }

    #[test]
    fn rust_src_is_found_by_exact_component_name() {
        let listed = "cargo-x86_64-unknown-linux-gnu\nrust-src\nrustc-x86_64-unknown-linux-gnu\n";
        assert!(lists_rust_src(listed));
        assert!(lists_rust_src("rust-src (installed)\n"));
        assert!(!lists_rust_src(
            "rust-std-x86_64-unknown-linux-gnu\nrust-src-extra\n"
        ));
        assert!(!lists_rust_src(""));
    }

    #[test]
    fn missing_lists_every_absent_prerequisite() {
        let status = Status {
            missing_packages: vec!["nftables", "dnsutils"],
            has_rust_src: false,
            bpf_linker_version: None,
        };
        assert_eq!(
            status.missing(),
            ["nftables", "dnsutils", "rust-src (nightly)", "bpf-linker"]
        );
        let complete = Status {
            missing_packages: vec![],
            has_rust_src: true,
            bpf_linker_version: Some("bpf-linker 0.13.0".into()),
        };
        assert!(complete.missing().is_empty());
    }
}
