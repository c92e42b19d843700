//! HTTP/JSON API on the daemon's unix socket. Handlers are thin: they call the manager and
//! render Docker-shaped views.
use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

use crate::{
    error::Error,
    manager::{ContainerInfo, CreateNetwork, Manager, RunContainer},
    views,
};

#[derive(Clone)]
pub struct Api {
    pub manager: Arc<Manager>,
    pub run_dir: std::path::PathBuf,
    /// Notified after `system reset`: with its state gone, the daemon exits.
    pub stop: Arc<tokio::sync::Notify>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "message": self.to_string() }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, Error>;

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/networks", get(list_networks).post(create_network))
        .route("/networks/prune", post(prune_networks))
        .route("/networks/{name}", get(inspect_network).delete(remove_network))
        .route("/networks/{name}/connect", post(connect))
        .route("/networks/{name}/disconnect", post(disconnect))
        .route("/containers", get(list_containers).post(run_container))
        .route("/containers/{name}", get(inspect_container).delete(remove_container))
        .route("/containers/{name}/stop", post(stop_container))
        .route("/containers/{name}/start", post(start_container))
        .route("/stats", get(stats))
        .route("/system/reset", post(reset))
        .with_state(api)
}

async fn list_networks(State(api): State<Api>) -> ApiResult {
    let all = api.manager.networks().await;
    Ok(Json(Value::Array(all.iter().map(|(n, m)| views::network(n, m)).collect())))
}

async fn create_network(State(api): State<Api>, Json(req): Json<CreateNetwork>) -> ApiResult {
    let n = api.manager.create_network(req).await?;
    Ok(Json(views::network(&n, &[])))
}

async fn inspect_network(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let (n, m) = api.manager.network(&name).await?;
    Ok(Json(views::network(&n, &m)))
}

async fn remove_network(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let n = api.manager.remove_network(&name).await?;
    Ok(Json(json!({ "Name": n.name, "Id": n.id })))
}

async fn prune_networks(State(api): State<Api>) -> ApiResult {
    let removed = api.manager.prune_networks().await?;
    Ok(Json(json!(removed)))
}

fn container_view(api: &Api, info: &ContainerInfo) -> Value {
    views::container(info, &api.run_dir)
}

async fn list_containers(State(api): State<Api>) -> ApiResult {
    let all = api.manager.containers().await;
    Ok(Json(Value::Array(all.iter().map(|c| container_view(&api, c)).collect())))
}

async fn run_container(State(api): State<Api>, Json(req): Json<RunContainer>) -> ApiResult {
    let c = api.manager.run(req).await?;
    Ok(Json(container_view(&api, &c)))
}

async fn inspect_container(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let c = api.manager.container(&name).await?;
    Ok(Json(container_view(&api, &c)))
}

/// Clients never report exit codes or pids: the daemon knows its commands' own.
async fn stop_container(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let c = api.manager.stop(&name, None).await?;
    Ok(Json(container_view(&api, &c)))
}

async fn start_container(State(api): State<Api>, Path(name): Path<String>) -> ApiResult {
    let c = api.manager.start_container(&name).await?;
    Ok(Json(container_view(&api, &c)))
}

#[derive(serde::Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

async fn remove_container(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult {
    let c = api.manager.remove_container(&name, q.force).await?;
    Ok(Json(json!({ "Name": c.name, "Id": c.id })))
}

async fn stats(State(api): State<Api>) -> ApiResult {
    let drops = api.manager.drop_stats()?;
    Ok(Json(json!({ "drops": drops })))
}

async fn reset(State(api): State<Api>) -> ApiResult {
    let result = api.manager.reset().await;
    // Even a partial reset leaves the daemon without its state: stop either way.
    api.stop.notify_one();
    result?;
    Ok(Json(json!({})))
}

#[derive(serde::Deserialize)]
struct DisconnectRequest {
    container: String,
    #[serde(default)]
    force: bool,
}

async fn connect(
    State(api): State<Api>,
    Path(name): Path<String>,
    Json(req): Json<crate::manager::ConnectRequest>,
) -> ApiResult {
    api.manager.connect(&name, req).await?;
    Ok(Json(json!({})))
}

async fn disconnect(State(api): State<Api>, Path(name): Path<String>, Json(req): Json<DisconnectRequest>) -> ApiResult {
    api.manager.disconnect(&name, &req.container, req.force).await?;
    Ok(Json(json!({})))
}
