//! The CLI's client: HTTP/1.1 over the daemon's unix socket, one typed method per route of
//! `api.rs` (the types are in `api_types.rs`).
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::UnixStream;

use crate::api_types::{
    ConnectRequest, ContainerNetns, ContainerView, CreateNetwork, DisconnectRequest, Empty, ErrorResponse, NetworkView,
    RemoveContainer, Removed, RunContainer, Stats, StopContainer,
};

pub struct Client {
    socket: PathBuf,
}

/// An error the daemon answered with; printed like Docker's CLI prints them.
#[derive(Debug, thiserror::Error)]
#[error("Error response from daemon: {message}")]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

impl DaemonError {
    pub fn is_not_found(err: &anyhow::Error) -> bool {
        err.downcast_ref::<DaemonError>().is_some_and(|e| e.status == 404)
    }
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self { socket: socket.to_path_buf() }
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn networks(&self) -> anyhow::Result<Vec<NetworkView>> {
        self.get("/networks").await
    }

    pub async fn create_network(&self, req: &CreateNetwork) -> anyhow::Result<NetworkView> {
        self.post("/networks", req).await
    }

    pub async fn network(&self, name: &str) -> anyhow::Result<NetworkView> {
        self.get(&format!("/networks/{}", segment(name))).await
    }

    pub async fn remove_network(&self, name: &str) -> anyhow::Result<Removed> {
        self.delete(&format!("/networks/{}", segment(name))).await
    }

    /// The names of the networks removed.
    pub async fn prune_networks(&self) -> anyhow::Result<Vec<String>> {
        self.post("/networks/prune", &Empty {}).await
    }

    pub async fn connect(&self, network: &str, req: &ConnectRequest) -> anyhow::Result<Empty> {
        self.post(&format!("/networks/{}/connect", segment(network)), req).await
    }

    pub async fn disconnect(&self, network: &str, req: &DisconnectRequest) -> anyhow::Result<Empty> {
        self.post(&format!("/networks/{}/disconnect", segment(network)), req).await
    }

    pub async fn containers(&self) -> anyhow::Result<Vec<ContainerView>> {
        self.get("/containers").await
    }

    pub async fn run(&self, req: &RunContainer) -> anyhow::Result<ContainerView> {
        self.post("/containers", req).await
    }

    pub async fn container(&self, name: &str) -> anyhow::Result<ContainerView> {
        self.get(&format!("/containers/{}", segment(name))).await
    }

    pub async fn container_netns(&self, name: &str) -> anyhow::Result<ContainerNetns> {
        self.get(&format!("/containers/{}/netns", segment(name))).await
    }

    pub async fn remove_container(&self, name: &str, query: &RemoveContainer) -> anyhow::Result<Removed> {
        let query = serde_urlencoded::to_string(query).context("encode the query")?;
        self.delete(&format!("/containers/{}?{query}", segment(name))).await
    }

    pub async fn stop(&self, name: &str, req: &StopContainer) -> anyhow::Result<ContainerView> {
        self.post(&format!("/containers/{}/stop", segment(name)), req).await
    }

    pub async fn start(&self, name: &str) -> anyhow::Result<ContainerView> {
        self.post(&format!("/containers/{}/start", segment(name)), &Empty {}).await
    }

    pub async fn stats(&self) -> anyhow::Result<Stats> {
        self.get("/stats").await
    }

    pub async fn reset(&self) -> anyhow::Result<Empty> {
        self.post("/system/reset", &Empty {}).await
    }

    async fn get<R: DeserializeOwned>(&self, path: &str) -> anyhow::Result<R> {
        self.request(Method::GET, path, None).await
    }

    async fn post<R: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> anyhow::Result<R> {
        let body = serde_json::to_vec(body).context("encode the request")?;
        self.request(Method::POST, path, Some(body)).await
    }

    async fn delete<R: DeserializeOwned>(&self, path: &str) -> anyhow::Result<R> {
        self.request(Method::DELETE, path, None).await
    }

    async fn request<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<R> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|_| {
            anyhow!(
                "Cannot connect to the netd daemon at unix://{}. Is the netd daemon running?",
                self.socket.display()
            )
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "netd")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = sender.send_request(req).await.context("netd daemon request")?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| status.to_string());
            return Err(DaemonError { status: status.as_u16(), message }.into());
        }
        serde_json::from_slice(&bytes).with_context(|| format!("read the netd daemon's answer to {method} {path}"))
    }
}

/// Percent-encodes a path segment (names are restricted, but be safe).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
