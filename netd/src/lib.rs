//! netd: Docker's networking model with an eBPF datapath. The library holds everything; the
//! `netd` binary (`main.rs`) only parses the command line and dispatches.
//!
//! What runs where, as the tree shows it:
//! - `cli/` and `client.rs`: the CLI (commands, output, `--format` templates, HTTP over the
//!   API socket);
//! - `daemon/`: the daemon — `mod.rs` (start and serve), `api`/`api_server`, `manager` (state
//!   and Docker's rules) over `kernel` (the seam to the host: `plumbing`, `netlink`, `netns`,
//!   `datapath`, `sweep`, `supervisor`), `store`, `dns`, `ipam`, `views`, `container_files`,
//!   `access`/`limits`;
//! - at the root, what both sides use: `api_types` (the API's requests and responses),
//!   `attach` (both halves of the attach socket), `model`, `error` and `process` (the
//!   `__enter` entry that starts every container command).
pub mod api_types;
pub mod attach;
pub mod cli;
pub mod client;
pub mod daemon;
// The daemon's modules live under `daemon/`; re-exported here so that paths stay short
// (`crate::manager`, `crate::store`, …).
pub use daemon::{
    access, api, api_server, cluster, container_files, crash, datapath, dns, docker_plugin, egress, host_ports, ipam,
    kernel, limits, manager, names, netlink, netns, netns_pool, plumbing, reaper, store, supervisor, sweep, validate,
    views,
};
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod model;
pub mod ports;
pub mod process;
