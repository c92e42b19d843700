use which::which;

/// Rebuild when the bpf-linker binary changes: cargo cannot see that dependency otherwise.
fn main() {
    let bpf_linker = which("bpf-linker").expect("bpf-linker not found: run `cargo xtask setup`");
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
