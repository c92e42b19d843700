//! netd: Docker's networking model with an eBPF datapath. The library holds everything; the
//! `netd` binary (`main.rs`) only parses the command line and dispatches.
//!
//! What runs where: the CLI is `cli` (commands, output, `--format` templates) with `client`
//! (HTTP over the API socket) and the client half of `attach`; the daemon is `daemon` (start
//! and serve), `api` and the server half of `attach`, `manager` (state and Docker's rules)
//! over `kernel` (the seam to the host: `plumbing`, `netlink`, `netns`, `datapath`,
//! `sweep`, `supervisor`), `store`, `dns`, `ipam`, `views` and `container_files`; `model`,
//! `error`, `process` (the `__enter` entry both use) and `api_types` (the API's request and
//! response types) are shared.
pub mod access;
pub mod api;
pub mod api_server;
pub mod api_types;
pub mod attach;
pub mod cli;
pub mod client;
pub mod container_files;
pub mod crash;
pub mod daemon;
pub mod datapath;
pub mod dns;
pub mod error;
pub mod ipam;
pub mod kernel;
pub mod limits;
pub mod manager;
pub mod model;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod plumbing;
pub mod process;
pub mod store;
pub mod sweep;
pub mod supervisor;
pub mod views;

