//! HTTP/JSON API on the daemon's unix socket. Handlers are thin: they read a request type of
//! `api_types.rs`, call the manager and answer with a view (`views.rs`). A body or query
//! string that does not fit its type is a 400 with serde's one-line reason.
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request, State},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::de::DeserializeOwned;

use crate::{
    api_types::{
        ConnectRequest, ContainerNetns, ContainerView, CreateNetwork, DisconnectRequest, Empty, ErrorResponse,
        NetworkView, RemoveContainer, Removed, RunContainer, Stats, StopContainer,
    },
    error::Error,
    manager::{ContainerInfo, Manager},
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
        (status, Json(ErrorResponse { message: self.to_string() })).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, Error>;

/// A JSON request body of type `T`; an empty body reads as `{}`. Unlike axum's `Json`, a
/// body that does not fit (unknown field, wrong type, bad JSON) is answered like every other
/// error: 400 with `{"message": ...}`, which the CLI prints.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::InvalidArgument(format!("cannot read the request body: {}", e.body_text())))?;
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(json)
            .map(JsonBody)
            .map_err(|e| Error::InvalidArgument(format!("invalid request body: {e}")))
    }
}

/// A query string of type `T` (absent reads as empty), refused like [`JsonBody`].
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(QueryArgs)
            .map_err(|e| Error::InvalidArgument(format!("invalid query string: {e}")))
    }
}

/// The routes; `api_types.rs` lists each one's request and response types.
pub fn router(api: Api) -> Router {
    let durable = axum::middleware::from_fn_with_state(api.manager.clone(), answer_when_durable);
    Router::new()
        .route("/networks", get(list_networks).post(create_network))
        .route("/networks/prune", post(prune_networks))
        .route("/networks/{name}", get(inspect_network).delete(remove_network))
        .route("/networks/{name}/connect", post(connect))
        .route("/networks/{name}/disconnect", post(disconnect))
        .route("/containers", get(list_containers).post(run_container))
        .route("/containers/{name}", get(inspect_container).delete(remove_container))
        .route("/containers/{name}/netns", get(container_netns))
        .route("/containers/{name}/stop", post(stop_container))
        .route("/containers/{name}/start", post(start_container))
        .route("/stats", get(stats))
        .route("/system/reset", post(reset))
        .fallback(unknown_path)
        .method_not_allowed_fallback(unknown_method)
        .layer(durable)
        .with_state(api)
}

/// A command that may have changed the state answers only once its commit is on disk
/// (`store.rs`, group commit): the client's answer stands after a crash.
async fn answer_when_durable(
    State(manager): State<Arc<Manager>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let changes = request.method() != axum::http::Method::GET;
    let response = next.run(request).await;
    if changes {
        if let Err(e) = manager.durable().await {
            return e.into_response();
        }
    }
    response
}

/// Unknown paths and methods are answered in the shape of every other error (axum's own
/// answers have an empty body, which the CLI could not print).
async fn unknown_path(uri: axum::http::Uri) -> Response {
    refusal(StatusCode::NOT_FOUND, format!("page not found: {}", uri.path()))
}

async fn unknown_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    refusal(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed on {}", uri.path()))
}

fn refusal(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorResponse { message })).into_response()
}

async fn list_networks(State(api): State<Api>) -> ApiResult<Vec<NetworkView>> {
    let all = api.manager.networks().await;
    Ok(Json(all.iter().map(|(n, m)| views::network(n, m)).collect()))
}

async fn create_network(State(api): State<Api>, JsonBody(req): JsonBody<CreateNetwork>) -> ApiResult<NetworkView> {
    let n = api.manager.create_network(req).await?;
    Ok(Json(views::network(&n, &[])))
}

async fn inspect_network(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<NetworkView> {
    let (n, m) = api.manager.network(&name).await?;
    Ok(Json(views::network(&n, &m)))
}

async fn remove_network(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<Removed> {
    let n = api.manager.remove_network(&name).await?;
    Ok(Json(Removed { name: n.name, id: n.id }))
}

async fn prune_networks(State(api): State<Api>, JsonBody(Empty {}): JsonBody<Empty>) -> ApiResult<Vec<String>> {
    Ok(Json(api.manager.prune_networks().await?))
}

fn container_view(api: &Api, info: &ContainerInfo) -> ContainerView {
    views::container(info, &api.run_dir)
}

async fn list_containers(State(api): State<Api>) -> ApiResult<Vec<ContainerView>> {
    let all = api.manager.containers().await;
    Ok(Json(all.iter().map(|c| container_view(&api, c)).collect()))
}

async fn run_container(State(api): State<Api>, JsonBody(req): JsonBody<RunContainer>) -> ApiResult<ContainerView> {
    // On a task of its own: a client that goes away must not stop a run half-way (it holds a
    // reservation every other command waits for until it ends, `Manager::bring_up`).
    let manager = api.manager.clone();
    let c = tokio::spawn(async move { manager.run(req).await })
        .await
        .map_err(|e| Error::Inconsistent(format!("run ended abnormally: {e}")))??;
    Ok(Json(container_view(&api, &c)))
}

async fn inspect_container(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<ContainerView> {
    let c = api.manager.container(&name).await?;
    Ok(Json(container_view(&api, &c)))
}

async fn container_netns(State(api): State<Api>, Path(name): Path<String>) -> ApiResult<ContainerNetns> {
    let c = api.manager.container(&name).await?;
    let path = if c.container.running() { c.owner.netns.clone().unwrap_or_default() } else { String::new() };
    Ok(Json(ContainerNetns { path }))
}

async fn stop_container(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(StopContainer {}): JsonBody<StopContainer>,
) -> ApiResult<ContainerView> {
    let c = api.manager.stop(&name, None).await?;
    Ok(Json(container_view(&api, &c)))
}

async fn start_container(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(Empty {}): JsonBody<Empty>,
) -> ApiResult<ContainerView> {
    let c = api.manager.start_container(&name).await?;
    Ok(Json(container_view(&api, &c)))
}

async fn remove_container(
    State(api): State<Api>,
    Path(name): Path<String>,
    QueryArgs(RemoveContainer { force }): QueryArgs<RemoveContainer>,
) -> ApiResult<Removed> {
    let c = api.manager.remove_container(&name, force).await?;
    Ok(Json(Removed { name: c.name, id: c.id }))
}

async fn stats(State(api): State<Api>) -> ApiResult<Stats> {
    Ok(Json(api.manager.stats().await?))
}

async fn reset(State(api): State<Api>, JsonBody(Empty {}): JsonBody<Empty>) -> ApiResult<Empty> {
    let result = api.manager.reset().await;
    // Even a partial reset leaves the daemon without its state: stop either way.
    api.stop.notify_one();
    result?;
    Ok(Json(Empty {}))
}

async fn connect(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<ConnectRequest>,
) -> ApiResult<Empty> {
    api.manager.connect(&name, req).await?;
    Ok(Json(Empty {}))
}

async fn disconnect(
    State(api): State<Api>,
    Path(name): Path<String>,
    JsonBody(DisconnectRequest { container, force }): JsonBody<DisconnectRequest>,
) -> ApiResult<Empty> {
    api.manager.disconnect(&name, &container, force).await?;
    Ok(Json(Empty {}))
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::header};

    use super::*;

    /// The answer to a body or query that does not fit its type: status and message.
    async fn refused(rejection: Error) -> (StatusCode, String) {
        let response = rejection.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: ErrorResponse = serde_json::from_slice(&bytes).unwrap();
        (status, body.message)
    }

    async fn body<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
        let req =
            Request::post("/x").header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string()));
        JsonBody::<T>::from_request(req.unwrap(), &()).await.map(|JsonBody(t)| t)
    }

    async fn query<T: DeserializeOwned>(uri: &str) -> Result<T, Error> {
        let (mut parts, ()) = Request::delete(uri).body(()).unwrap().into_parts();
        QueryArgs::<T>::from_request_parts(&mut parts, &()).await.map(|QueryArgs(t)| t)
    }

    #[tokio::test]
    async fn bodies_and_queries_that_do_not_fit_are_a_one_line_400() {
        let cases = [
            (
                body::<RunContainer>(r#"{"name":"web","auto_rm":true}"#).await.err(),
                "invalid request body: unknown field `auto_rm`, expected one of",
            ),
            (
                body::<CreateNetwork>(r#"{"name":"n","internal":"yes"}"#).await.err(),
                "invalid request body: invalid type: string \"yes\", expected a boolean at line 1 column 28",
            ),
            (
                body::<ConnectRequest>(r#"{"container":"c","ip":"10.0.0.300"}"#).await.err(),
                "invalid request body: invalid IPv4 address syntax at line 1 column 34",
            ),
            (body::<CreateNetwork>("{\"name\":").await.err(), "invalid request body: EOF while parsing a value"),
            (body::<StopContainer>(r#"{"t":10}"#).await.err(), "invalid request body: unknown field `t`"),
            (
                query::<RemoveContainer>("/containers/x?forse=true").await.err(),
                "invalid query string: unknown field `forse`, expected `force`",
            ),
            (query::<RemoveContainer>("/containers/x?force=yes").await.err(), "invalid query string:"),
        ];
        for (rejection, expected) in cases {
            let (status, message) = refused(rejection.expect("refused")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
            assert!(message.starts_with(expected), "{message:?} does not start with {expected:?}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    #[tokio::test]
    async fn bodies_and_queries_that_fit_are_read() {
        let req: CreateNetwork = body(r#"{"name":"n","labels":{"k":"v"}}"#).await.unwrap();
        assert_eq!(req.labels["k"], "v");
        // No body at all is `{}`: stop and start need none.
        assert_eq!(body::<StopContainer>("").await.unwrap(), StopContainer {});
        assert_eq!(
            query::<RemoveContainer>("/containers/x?force=true").await.unwrap(),
            RemoveContainer { force: true }
        );
        assert_eq!(query::<RemoveContainer>("/containers/x").await.unwrap(), RemoveContainer { force: false });
    }
}
