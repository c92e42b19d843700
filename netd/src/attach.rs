//! Attached runs (`netd run` without `-d`): the daemon starts the command, with the CLI's own
//! stdin, stdout and stderr, so that no client ever hands the daemon a pid to track or kill.
//!
//! The CLI connects to the attach socket (`<API socket>.attach`) and sends one line,
//! `{"container":ID}`, with its fds 0, 1 and 2 attached (SCM_RIGHTS). The daemon answers
//! `{"started":true}` or `{"error":TEXT}`; then the CLI may send `{"signal":N}` lines (Ctrl-C
//! and friends, forwarded to the command), and the daemon ends with `{"exit_code":N}` once the
//! container has stopped (or with `--rm` is gone). A CLI that goes away leaves the command
//! running, detached, as Docker's does.
use std::{
    io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};

use crate::manager::Manager;

/// Attach connections at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request (with the fds) within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
struct AttachRequest {
    container: String,
}

#[derive(Serialize, Deserialize, Default)]
struct Reply {
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
}

#[derive(Serialize, Deserialize)]
struct SignalMessage {
    signal: i32,
}

/// Where the attach socket of the API socket `api_socket` lives.
pub fn socket_path(api_socket: &Path) -> PathBuf {
    PathBuf::from(format!("{}.attach", api_socket.display()))
}

/// Serves attach connections until the task is dropped.
pub async fn serve(listener: UnixListener, manager: Arc<Manager>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "attach accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let manager = manager.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = handle(stream, &manager).await {
                tracing::debug!(error = %e, "attach connection");
            }
        });
    }
}

async fn handle(stream: UnixStream, manager: &Manager) -> io::Result<()> {
    let (request, fds) = tokio::time::timeout(REQUEST_TIMEOUT, receive_request(&stream))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let (read, mut write) = stream.into_split();
    let stdio: Result<[OwnedFd; 3], _> = fds.try_into();
    let started = match stdio {
        Ok(stdio) => manager.start_attached(&request.container, stdio).await.map_err(|e| e.to_string()),
        Err(_) => Err("an attach request carries exactly three file descriptors".to_string()),
    };
    let (id, exit) = match started {
        Ok(started) => started,
        Err(error) => return send(&mut write, &Reply { error: Some(error), ..Default::default() }).await,
    };
    send(&mut write, &Reply { started: Some(true), ..Default::default() }).await?;
    let mut lines = tokio::io::BufReader::new(read).lines();
    let mut exit = std::pin::pin!(exit);
    loop {
        tokio::select! {
            code = &mut exit => {
                let code = code.unwrap_or(crate::supervisor::UNKNOWN_EXIT);
                return send(&mut write, &Reply { exit_code: Some(code), ..Default::default() }).await;
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Ok(SignalMessage { signal }) = serde_json::from_str(&line) {
                        if let Err(e) = manager.signal_command(&id, signal) {
                            tracing::debug!(error = %e, "attach: signal not forwarded");
                        }
                    }
                }
                // The CLI went away: the command runs on, detached.
                Ok(None) | Err(_) => return Ok(()),
            },
        }
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}

/// The request line and the fds that came with it (in one message: the client sends both at
/// once, and a unix stream socket delivers a small message whole).
async fn receive_request(stream: &UnixStream) -> io::Result<(AttachRequest, Vec<OwnedFd>)> {
    loop {
        stream.readable().await?;
        match stream.try_io(tokio::io::Interest::READABLE, || receive_with_fds(stream.as_raw_fd())) {
            Ok((bytes, fds)) => {
                let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
                let request =
                    serde_json::from_slice(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok((request, fds));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn receive_with_fds(socket: RawFd) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these fds in this process; nothing else owns them.
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too many file descriptors"));
    }
    let n = msg.bytes;
    buf.truncate(n);
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((buf, fds))
}

/// The CLI's side: runs the command of `container_id` with this process's stdio and returns
/// its exit code. Ctrl-C, SIGTERM, SIGHUP and SIGQUIT are forwarded to the command.
pub fn run_attached(api_socket: &Path, container_id: &str) -> anyhow::Result<i32> {
    use anyhow::{anyhow, bail, Context};
    // Blocked before the command can start, so that no Ctrl-C ends this CLI instead of
    // reaching the command.
    let forwarded = block_forwarded_signals()?;
    let path = socket_path(api_socket);
    let stream = std::os::unix::net::UnixStream::connect(&path)
        .with_context(|| format!("connect to the netd daemon's attach socket {}", path.display()))?;
    let mut request = serde_json::to_vec(&AttachRequest { container: container_id.to_string() })?;
    request.push(b'\n');
    let stdio = [0, 1, 2];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&request)],
        &[ControlMessage::ScmRights(&stdio)],
        MsgFlags::empty(),
        None,
    )
    .context("pass the terminal to the netd daemon")?;
    forward_signals(forwarded, stream.try_clone()?);
    let lost = || anyhow!("Error response from daemon: the netd daemon closed the attach connection");
    for line in BufReader::new(stream).lines() {
        let reply: Reply = serde_json::from_str(&line.map_err(|_| lost())?)?;
        if let Some(error) = reply.error {
            bail!("Error response from daemon: {error}");
        }
        if let Some(code) = reply.exit_code {
            return Ok(code);
        }
    }
    Err(lost())
}

/// Blocks the forwarded signals in this (single) thread; threads started later inherit the
/// mask.
fn block_forwarded_signals() -> anyhow::Result<nix::sys::signal::SigSet> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(sig);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// Relays the blocked signals in `set` to the daemon from a thread of their own.
fn forward_signals(set: nix::sys::signal::SigSet, mut stream: std::os::unix::net::UnixStream) {
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let mut line = serde_json::to_vec(&SignalMessage { signal: sig as i32 }).unwrap_or_default();
            line.push(b'\n');
            if stream.write_all(&line).is_err() {
                return;
            }
        }
    });
}
