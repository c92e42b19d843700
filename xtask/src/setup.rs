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
    // A real dockerd for the Docker remote-driver tests (tests/tests/docker_driver.rs), with a
    // busybox image made from busybox-static.
    "docker.io",
    "busybox-static",
    // Overlay networks share state through etcd (tests/tests/overlay.rs starts one); the etcd
    // client crate compiles etcd's protobuf API with protoc.
    "etcd-server",
    "protobuf-compiler",
];

/// llvm-sys finds `llvm-config` (and so `-lLLVM`) through PATH.
const LLVM_BIN_DIR: &str = "/usr/lib/llvm-22/bin";
const BPF_LINKER_VERSION: &str = "0.13.0";
const BPF_LINKER_LLVM_FEATURE: &str = "llvm-22";

/// `cargo xtask setup`.
pub fn run() -> Result<()> {
    paths::require_root("cargo xtask setup")?;
    ensure()?;
    // Only `cargo xtask test` and `fuzz` need it: `run` and `build` do not wait for it.
    crate::fuzz::ensure_cargo_fuzz()
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
        bail!("cargo xtask setup must run as root (to install {})", missing.join(", "));
    }
    status.install()?;
    let still_missing = Status::detect()?.missing();
    if !still_missing.is_empty() {
        bail!("setup: still missing after installing: {}", still_missing.join(", "));
    }
    println!("[setup] done");
    Ok(())
}

/// What is present and what is not.
struct Status {
    missing_packages: Vec<&'static str>,
    /// rustup components not installed, as (toolchain, component).
    missing_components: Vec<(&'static str, &'static str)>,
    bpf_linker_version: Option<String>,
}

/// rustup components the build and `cargo xtask test` need: nightly's rust-src (the eBPF
/// build), nightly's rustfmt (rustfmt.toml groups imports with unstable options), stable's
/// clippy (the lint gate) and stable's standard library for musl (the static CLI binary).
const COMPONENTS: [(&str, &str); 4] =
    [("nightly", "rust-src"), ("nightly", "rustfmt"), ("stable", "clippy"), ("stable", crate::build::CLI_STD)];

impl Status {
    fn detect() -> Result<Self> {
        Ok(Self {
            missing_packages: missing_packages(APT_PACKAGES)?,
            missing_components: missing_components()?,
            bpf_linker_version: bpf_linker_version(),
        })
    }

    fn missing(&self) -> Vec<String> {
        let mut missing: Vec<String> = self.missing_packages.iter().map(|p| p.to_string()).collect();
        for (toolchain, component) in &self.missing_components {
            missing.push(format!("{component} ({toolchain})"));
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
        for (toolchain, component) in COMPONENTS {
            let state = if self.missing_components.contains(&(toolchain, component)) { "missing" } else { "installed" };
            println!("[setup] {component} ({toolchain}): {state}");
        }
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
        for (toolchain, component) in &self.missing_components {
            install_component(toolchain, component)?;
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
    Ok(is_installed_status(&String::from_utf8_lossy(&output.stdout)))
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
    run_step("setup: install apt packages", apt_get().args(["install", "-y"]).args(packages))
}

fn missing_components() -> Result<Vec<(&'static str, &'static str)>> {
    let mut missing = Vec::new();
    for toolchain in ["nightly", "stable"] {
        let mut list = paths::command("rustup");
        list.args(["component", "list", "--toolchain", toolchain, "--installed"]);
        let installed = probe(&mut list).ok_or_else(|| {
            anyhow!("setup: `{}` failed: are rustup and the {toolchain} toolchain installed?", describe(&list))
        })?;
        for (t, component) in COMPONENTS.into_iter().filter(|(t, _)| *t == toolchain) {
            if !lists_component(&installed, component) {
                missing.push((t, component));
            }
        }
    }
    Ok(missing)
}

/// `rustup component list --installed` prints one component a line, named with its target
/// (`clippy-x86_64-unknown-linux-gnu`) or without one (`rust-src`).
fn lists_component(components: &str, name: &str) -> bool {
    components.lines().filter_map(|line| line.split_whitespace().next()).any(|component| {
        // A target triple has at least three parts: arch-vendor-os.
        let with_target = component.strip_prefix(name).and_then(|rest| rest.strip_prefix('-'));
        component == name || with_target.is_some_and(|target| target.split('-').count() >= 3)
    })
}

fn install_component(toolchain: &str, component: &str) -> Result<()> {
    run_step(
        &format!("setup: add {toolchain} {component}"),
        paths::command("rustup").args(["component", "add", component, "--toolchain", toolchain]),
    )
}

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
            .args(["--no-default-features", "--features", BPF_LINKER_LLVM_FEATURE])
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
    fn components_are_found_by_name_with_or_without_a_target() {
        let listed = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrust-src\nrustc-x86_64-unknown-linux-gnu\n";
        assert!(lists_component(listed, "rust-src"));
        assert!(lists_component(listed, "clippy"));
        assert!(!lists_component(listed, "rustfmt"));
        assert!(lists_component("rust-src (installed)\n", "rust-src"));
        assert!(!lists_component("rust-std-x86_64-unknown-linux-gnu\nrust-src-extra\n", "rust-src"));
        assert!(!lists_component("", "rust-src"));
    }

    #[test]
    fn missing_lists_every_absent_prerequisite() {
        let status = Status {
            missing_packages: vec!["nftables", "dnsutils"],
            missing_components: vec![("nightly", "rust-src"), ("stable", "clippy")],
            bpf_linker_version: None,
        };
        assert_eq!(status.missing(), ["nftables", "dnsutils", "rust-src (nightly)", "clippy (stable)", "bpf-linker"]);
        let complete = Status {
            missing_packages: vec![],
            missing_components: vec![],
            bpf_linker_version: Some("bpf-linker 0.13.0".into()),
        };
        assert!(complete.missing().is_empty());
    }
}
