//! The API socket and its accept loop, with limits (issue 8): no client can make the daemon
//! hold connections, fds or memory without bound. `axum::serve` exposes none of hyper's
//! settings, so connections are served here with hyper's HTTP/1 builder around the axum
//! Router. Values and their reasons: `limits.rs`.
//!
//! - At most `API_MAX_CONNECTIONS` connections; at the cap the loop stops accepting until one
//!   closes, so further clients wait in the socket's listen backlog (kernel memory, no fd of
//!   the daemon's) and are served in turn, instead of being refused.
//! - A request head must arrive within `API_HEADER_READ_TIMEOUT`. hyper starts that timer
//!   whenever it waits for a head (at accept and after each response), so it also closes idle
//!   keep-alive connections and connections that never send anything.
//! - The body is read whole before the handler runs, within `API_BODY_READ_TIMEOUT` and
//!   `API_MAX_BODY`; a handler (and the manager's lock) never waits on a client.
//! - A response write that makes no progress for `API_WRITE_STALL_TIMEOUT` fails.
//! - On shutdown (SIGTERM/SIGINT, `system reset`) the loop stops accepting, lets requests in
//!   progress finish (their connections then close) for up to `API_SHUTDOWN_GRACE`.
use std::{
    future::Future,
    io,
    path::Path,
    pin::{pin, Pin},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Request},
    http::{header, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Json, Router,
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::{body::Body as _, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{UnixListener, UnixStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};

use crate::{access, limits};

/// Binds the API socket at `path` (replacing a stale one) with its owner group and mode
/// (`access::secure_socket`). Directories made on the way are 0755, so that the `netd` group
/// can reach the socket.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        access::reachable_dir(dir).context("create socket dir")?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    match access::secure_socket(path) {
        Ok(access) => {
            tracing::info!(socket = %path.display(), mode = format!("{:o}", access.mode), group = ?access.group, "api socket");
            Ok(listener)
        }
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(e).with_context(|| format!("set the owner and mode of {}", path.display()))
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn serve(listener: UnixListener, app: Router, shutdown: impl Future<Output = ()>) {
    let service = TowerToHyperService::new(with_body_limits(app));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits::API_HEADER_READ_TIMEOUT)
        .max_buf_size(limits::API_READ_BUFFER)
        // A client may shut its writing side once the request is sent (`nc -N`): it still
        // gets its answer. Without this, hyper drops the connection when it reads the end of
        // the stream before it has read the whole request.
        .half_close(true);
    let slots = Arc::new(Semaphore::new(limits::API_MAX_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept_within_cap(&listener, &slots) => accepted,
        };
        if let Some((stream, slot)) = accepted {
            tokio::spawn(serve_connection(http.clone(), stream, service.clone(), stopping.clone(), slot));
        }
    }
    let _ = stop.send(true);
    // Each connection holds a slot until it closes: all slots back means all are done.
    let all_closed = slots.acquire_many(limits::API_MAX_CONNECTIONS as u32);
    if tokio::time::timeout(limits::API_SHUTDOWN_GRACE, all_closed).await.is_err() {
        tracing::warn!("api connections still open after {:?}; stopping anyway", limits::API_SHUTDOWN_GRACE);
    }
}

/// Waits for a free connection slot, then for a client.
async fn accept_within_cap(
    listener: &UnixListener,
    slots: &Arc<Semaphore>,
) -> Option<(UnixStream, OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, slot)),
        Err(e) => {
            // E.g. EMFILE: retrying at once would spin.
            tracing::warn!(error = %e, "api accept");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

async fn serve_connection(
    http: http1::Builder,
    stream: UnixStream,
    service: TowerToHyperService<Router>,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let io = TokioIo::new(WriteStallTimeout::new(stream, limits::API_WRITE_STALL_TIMEOUT));
    // With upgrades, as axum::serve: a route may take the connection over.
    let mut conn = pin!(http.serve_connection(io, service).with_upgrades());
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "api connection");
            }
            return;
        }
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Finishes the request in progress, if any, then closes.
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "api connection");
    }
}

fn with_body_limits(app: Router) -> Router {
    app.layer(middleware::from_fn(read_body_in_time)).layer(DefaultBodyLimit::max(limits::API_MAX_BODY))
}

/// Reads the whole request body, within the time and size limits, before the handler runs.
async fn read_body_in_time(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.size_hint().lower() > limits::API_MAX_BODY as u64 {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let read = Limited::new(body, limits::API_MAX_BODY).collect();
    let body = match tokio::time::timeout(limits::API_BODY_READ_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        Ok(Err(e)) => return refuse(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {e}")),
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "request body not received in time"),
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// An error in the API's shape. The rest of the body stays unread, so the connection closes.
fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONNECTION, "close")], Json(serde_json::json!({ "message": message }))).into_response()
}

/// Fails a write (or flush) that has made no progress for `limit`: hyper has no write timeout,
/// and a client that stops reading its response would otherwise keep its connection for ever.
struct WriteStallTimeout<T> {
    io: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallTimeout<T> {
    fn new(io: T, limit: Duration) -> Self {
        Self { io, limit, stalled: None }
    }

    /// Passes `poll` on, unless the write has been pending for `limit`.
    fn within_limit<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallTimeout<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.within_limit(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.within_limit(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.within_limit(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallTimeout<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

/// The loop itself on a real socket, with tokio's clock paused: timers fire as soon as
/// everything waits, so the timeouts are checked without waiting for them. The e2e tests
/// (`tests/tests/daemon_limits.rs`) check them against the real daemon, in real time.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::{get, post};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        time::Instant,
    };

    use super::*;

    struct Served {
        dir: std::path::PathBuf,
        socket: std::path::PathBuf,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        server: tokio::task::JoinHandle<()>,
    }

    impl Served {
        fn start(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("netd-api-server-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let socket = dir.join("api.sock");
            let listener = bind(&socket).unwrap();
            let app = Router::new()
                .route("/ping", get(|| async { "pong" }))
                .route("/echo", post(|body: String| async move { body }));
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let server = tokio::spawn(serve(listener, app, async move {
                let _ = stopped.await;
            }));
            Served { dir, socket, stop: Some(stop), server }
        }

        async fn connect(&self) -> UnixStream {
            UnixStream::connect(&self.socket).await.unwrap()
        }

        async fn stop(mut self) {
            let _ = self.stop.take().unwrap().send(());
            (&mut self.server).await.unwrap();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Everything the server sends until it closes the connection, and when it closed it
    /// (virtual time: a server that never closes fails the test after a virtual hour).
    async fn read_until_closed(stream: &mut UnixStream) -> (String, Duration) {
        let start = Instant::now();
        let mut all = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3600), stream.read_to_end(&mut all)).await;
        assert!(read.is_ok(), "the server never closed the connection; it sent {:?}", String::from_utf8_lossy(&all));
        (String::from_utf8_lossy(&all).into_owned(), start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn half_sent_heads_and_silent_clients_are_closed_after_the_header_timeout() {
        let served = Served::start("head");
        let start = Instant::now();
        let mut half = served.connect().await;
        half.write_all(b"GET /ping HTTP/1.1\r\nHo").await.unwrap();
        let mut silent = served.connect().await;
        let (sent, _) = read_until_closed(&mut half).await;
        assert!(start.elapsed() >= limits::API_HEADER_READ_TIMEOUT, "closed after {:?}", start.elapsed());
        assert!(!sent.contains("pong"), "{sent}");
        let (sent, _) = read_until_closed(&mut silent).await;
        assert!(start.elapsed() >= limits::API_HEADER_READ_TIMEOUT, "closed after {:?}", start.elapsed());
        assert_eq!(sent, "");

        // A whole request is answered, and the idle keep-alive connection closed afterwards.
        let mut whole = served.connect().await;
        whole.write_all(b"GET /ping HTTP/1.1\r\nHost: netd\r\n\r\n").await.unwrap();
        let (sent, after) = read_until_closed(&mut whole).await;
        assert!(sent.starts_with("HTTP/1.1 200") && sent.ends_with("pong"), "{sent}");
        assert!(after >= limits::API_HEADER_READ_TIMEOUT, "idle keep-alive closed after {after:?}");
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_must_arrive_in_time_and_within_the_size_limit() {
        let served = Served::start("body");
        let mut slow = served.connect().await;
        slow.write_all(b"POST /echo HTTP/1.1\r\nHost: netd\r\nContent-Length: 10\r\n\r\nabc").await.unwrap();
        let (sent, after) = read_until_closed(&mut slow).await;
        assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
        assert!(after >= limits::API_BODY_READ_TIMEOUT, "after {after:?}");

        let mut large = served.connect().await;
        let head = format!("POST /echo HTTP/1.1\r\nHost: netd\r\nContent-Length: {}\r\n\r\n", limits::API_MAX_BODY + 1);
        large.write_all(head.as_bytes()).await.unwrap();
        let (sent, _) = read_until_closed(&mut large).await;
        assert!(sent.starts_with("HTTP/1.1 413"), "{sent}");

        // Chunked, so the size is only known while reading.
        let mut chunked = served.connect().await;
        chunked.write_all(b"POST /echo HTTP/1.1\r\nHost: netd\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let writer = tokio::spawn(async move {
            for _ in 0..=(limits::API_MAX_BODY / chunk.len()) {
                let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if chunked.write_all(&framed).await.is_err() {
                    break;
                }
            }
            chunked
        });
        let mut chunked = writer.await.unwrap();
        let (sent, _) = read_until_closed(&mut chunked).await;
        assert!(sent.starts_with("HTTP/1.1 413"), "{sent}");

        let mut fine = served.connect().await;
        fine.write_all(b"POST /echo HTTP/1.1\r\nHost: netd\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            .await
            .unwrap();
        let (sent, _) = read_until_closed(&mut fine).await;
        assert!(sent.starts_with("HTTP/1.1 200") && sent.ends_with("hello"), "{sent}");
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_cap_clients_wait_for_a_free_slot() {
        crate::limits::raise_nofile().unwrap(); // both ends of 513 connections live here
        let served = Served::start("cap");
        let mut holders = Vec::new();
        for _ in 0..limits::API_MAX_CONNECTIONS {
            let mut c = served.connect().await;
            c.write_all(b"GET /ping HTTP/1.1\r\nHo").await.unwrap();
            holders.push(c);
        }
        let start = Instant::now();
        let mut waiting = served.connect().await; // queued in the listen backlog
        waiting.write_all(b"GET /ping HTTP/1.1\r\nHost: netd\r\nConnection: close\r\n\r\n").await.unwrap();
        let (sent, _) = read_until_closed(&mut waiting).await;
        assert!(sent.ends_with("pong"), "{sent}");
        assert!(
            start.elapsed() >= limits::API_HEADER_READ_TIMEOUT - Duration::from_secs(1),
            "served only once a slot freed"
        );
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut io = WriteStallTimeout::new(near, Duration::from_secs(30));
        // Progress, however slow, is fine.
        let reader = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            for _ in 0..32 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                far.read_exact(&mut byte).await.unwrap();
            }
            far
        });
        io.write_all(&[0u8; 48]).await.unwrap();
        let _far = reader.await.unwrap();
        // No reader at all: the write fails after the limit.
        let start = Instant::now();
        let error = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_secs(30));
    }
}
