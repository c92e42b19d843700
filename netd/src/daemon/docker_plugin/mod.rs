//! Docker's remote network driver and IPAM driver (`docker network create -d netd
//! --ipam-driver netd`): HTTP/1.1 `POST /<Interface>.<Method>` with JSON bodies on a unix
//! socket Docker finds by name in /run/docker/plugins. The protocol as Docker 20.10 speaks it:
//! /work/shared/research/docker-plugin-protocol.md; how Docker's endpoints map onto netd:
//! docs/architecture.md ("Docker's networks").
//!
//! Handlers never call Docker (dockerd has no timeout for v1 plugins and would deadlock at its
//! start-up) and take the manager's lock like every other command. Every error is HTTP 500
//! with `{"Err":"…"}`: Docker reads `Err` from it for both interfaces (IPAM replies on a 200
//! would be read for `Error`).
use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use axum::{
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};
use tokio::net::UnixListener;

use crate::{access, error::Error, kernel::Kernel, manager::Manager};

pub mod ipam_driver;
pub mod network_driver;
pub mod types;

/// Where dockerd looks for a plugin named `netd` first.
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/netd.sock";

/// A failed call: its text goes to Docker as `{"Err": …}`.
#[derive(Debug)]
pub struct PluginError(pub String);

impl PluginError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        Self(e.to_string())
    }
}

impl IntoResponse for PluginError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(types::ErrorReply { err: self.0 })).into_response()
    }
}

/// Binds the plugin socket at `path`: its directory made if missing, a stale socket replaced,
/// mode 0660 and owned by root (only dockerd, as root, talks to it).
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        access::reachable_dir(dir).context("create the Docker plugin socket's directory")?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)) {
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("set the mode of {}", path.display()));
    }
    tracing::info!(socket = %path.display(), "docker plugin socket");
    Ok(listener)
}

pub fn router<K: Kernel>(manager: Arc<Manager<K>>) -> Router {
    Router::new().route("/{call}", post(handle::<K>)).with_state(manager)
}

async fn handle<K: Kernel>(
    State(manager): State<Arc<Manager<K>>>,
    UrlPath(call): UrlPath<String>,
    body: Bytes,
) -> Result<Json<Value>, PluginError> {
    let started = std::time::Instant::now();
    let mut reply = dispatch(&manager, &call, &body).await;
    // As netd's own API: dockerd is answered once the change is on disk (group commit).
    if let Err(e) = manager.durable().await {
        reply = Err(e.into());
    }
    match &reply {
        Ok(_) => tracing::debug!(%call, elapsed = ?started.elapsed(), "docker plugin call"),
        Err(e) => tracing::info!(%call, error = %e.0, "docker plugin call failed"),
    }
    reply.map(Json)
}

/// The body as `T`; an empty one (Activate, GetCapabilities) reads as `{}`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, PluginError> {
    let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    serde_json::from_slice(json).map_err(|e| PluginError::bad(format!("invalid request body: {e}")))
}

fn to_value(reply: impl Serialize) -> Result<Value, PluginError> {
    serde_json::to_value(reply).map_err(|e| PluginError::bad(e.to_string()))
}

/// Runs one call; the reply is its JSON.
pub async fn dispatch<K: Kernel>(manager: &Manager<K>, call: &str, body: &[u8]) -> Result<Value, PluginError> {
    use ipam_driver as ipam;
    use network_driver as net;
    let empty = || Ok(json!({}));
    match call {
        "Plugin.Activate" => {
            to_value(types::Activate { implements: vec!["NetworkDriver".into(), "IpamDriver".into()] })
        }
        "NetworkDriver.GetCapabilities" => to_value(net::capabilities()),
        "NetworkDriver.CreateNetwork" => {
            let req = net::network_request(parse(body)?)?;
            manager.docker_create_network(req).await?;
            empty()
        }
        "NetworkDriver.DeleteNetwork" => {
            let req: types::Ids = parse(body)?;
            manager.docker_delete_network(&req.network_id).await?;
            empty()
        }
        "NetworkDriver.CreateEndpoint" => to_value(net::create_endpoint(manager, parse(body)?).await?),
        "NetworkDriver.EndpointOperInfo" => {
            let req: types::Ids = parse(body)?;
            manager.docker_endpoint_exists(&req.network_id, &req.endpoint_id).await?;
            Ok(json!({"Value": {}}))
        }
        "NetworkDriver.Join" => to_value(net::join(manager, parse(body)?).await?),
        "NetworkDriver.Leave" => {
            let req: types::Ids = parse(body)?;
            manager.docker_leave(&req.network_id, &req.endpoint_id).await?;
            empty()
        }
        "NetworkDriver.DeleteEndpoint" => {
            let req: types::Ids = parse(body)?;
            manager.docker_delete_endpoint(&req.network_id, &req.endpoint_id).await?;
            empty()
        }
        "NetworkDriver.ProgramExternalConnectivity" => net::program(manager, parse(body)?).await,
        "NetworkDriver.RevokeExternalConnectivity" => net::revoke(manager, parse(body)?).await,
        // Sent only for a global ConnectivityScope, and by swarm: nothing to do.
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => empty(),
        "NetworkDriver.AllocateNetwork" => Ok(json!({"Options": {}})),
        "NetworkDriver.FreeNetwork" => empty(),
        "IpamDriver.GetCapabilities" => to_value(ipam::capabilities()),
        "IpamDriver.GetDefaultAddressSpaces" => to_value(ipam::address_spaces()),
        "IpamDriver.RequestPool" => to_value(ipam::request_pool(manager, parse(body)?).await?),
        "IpamDriver.ReleasePool" => ipam::release_pool(manager, parse(body)?).await.and_then(|()| empty()),
        "IpamDriver.RequestAddress" => to_value(ipam::request_address(manager, parse(body)?).await?),
        "IpamDriver.ReleaseAddress" => ipam::release_address(manager, parse(body)?).await.and_then(|()| empty()),
        other => Err(PluginError::bad(format!("netd does not implement {other}"))),
    }
}
