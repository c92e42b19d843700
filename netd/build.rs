use anyhow::{anyhow, Context as _};
use aya_build::Toolchain;

/// Builds netd-ebpf for the BPF target (aya-template's shape); the object is embedded with
/// `include_bytes_aligned!` from OUT_DIR.
fn main() -> anyhow::Result<()> {
    if std::env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return Ok(());
    }
    let cargo_metadata::Metadata { packages, .. } =
        cargo_metadata::MetadataCommand::new().no_deps().exec().context("MetadataCommand::exec")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "netd-ebpf")
        .ok_or_else(|| anyhow!("netd-ebpf package not found"))?;
    let root_dir = ebpf.manifest_path.parent().ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    let package = aya_build::Package { name: ebpf.name.as_str(), root_dir: root_dir.as_str(), ..Default::default() };
    aya_build::build_ebpf([package], Toolchain::default())
}
