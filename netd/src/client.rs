//! The CLI's client: HTTP/1.1 over the daemon's unix socket.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

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

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.request(Method::DELETE, path, None).await
    }

    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|_| {
            anyhow!(
                "Cannot connect to the netd daemon at unix://{}. Is the netd daemon running?",
                self.socket.display()
            )
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "netd")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = sender.send_request(req).await.context("netd daemon request")?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["message"].as_str().map(str::to_string).unwrap_or_else(|| status.to_string());
            return Err(DaemonError { status: status.as_u16(), message }.into());
        }
        Ok(value)
    }
}

/// Percent-encodes a path segment (names are restricted, but be safe).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
