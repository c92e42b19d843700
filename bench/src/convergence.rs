//! `netd-bench convergence`: how long after `netd run` on one host the other hosts of a cluster
//! know the new container, with 3 and 10 simulated hosts (`topology::overlay::OverlayCluster`).
//!
//! Each sample runs a container on the overlay network on one host (in turn), and from the
//! moment its `run` returns, an observer container on every other host asks its embedded DNS
//! (127.0.0.11, UDP, every 0.5 ms) for the new name until it is answered. The daemon applies
//! a watch event in one step: the tunnel's remote-endpoint map first, then the DNS names; so an
//! answer means the datapath already reaches the container. Every sample's reachability is
//! then checked for real (a TCP connect from one observer: answered, even if refused).
//! Containers stay until the end, so no address is reused during a measurement.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::{AsFd, AsRawFd},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::{
    stats, sys,
    topology::{overlay::OverlayCluster, Names},
};

#[derive(Args, Clone)]
pub struct ConvergenceArgs {
    /// Cluster sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![3, 10])]
    hosts: Vec<usize>,
    /// Containers run per cluster size (each observed by every other host).
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// Where convergence.json, .md and .png go [default: bench/overlay/ of the checkout].
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// How long a host may take to learn a container before the measurement fails.
const GIVE_UP: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_micros(500);

#[derive(Serialize)]
struct Row {
    hosts: usize,
    samples: usize,
    /// From the start of `run` on one host until another host answers its name, ms: p50,
    /// p99 and max over all (sample, other host) pairs.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The same from `run`'s return (the announcement is made before `run` returns).
    after_return_p50_ms: f64,
    after_return_p99_ms: f64,
    /// The `run` CLI's own wall time, ms (p50).
    run_p50_ms: f64,
    /// Every (sample, other host) delay, ms: from `run`'s start and from its return.
    from_run_ms: Vec<f64>,
    after_return_ms: Vec<f64>,
}

pub fn measure(args: ConvergenceArgs) -> Result<()> {
    let dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => crate::checkout::results_dir()?.join("overlay"),
    };
    std::fs::create_dir_all(&dir)?;
    let names = Names::for_this_process();
    let mut rows = Vec::new();
    for (k, &n) in args.hosts.iter().enumerate() {
        if n < 2 {
            bail!("--hosts: a cluster needs at least 2 hosts");
        }
        eprintln!("convergence: {n} hosts, {} samples", args.samples);
        let names = names.variant(&char::from(b'a' + k as u8).to_string());
        let cluster = OverlayCluster::setup(&names, n)?;
        rows.push(measure_cluster(&cluster, &names, n, args.samples)?);
        sys::check_interrupted()?;
    }
    let json = serde_json::to_string_pretty(&rows)?;
    std::fs::write(dir.join("convergence.json"), json)?;
    let md = markdown(&rows, args.samples);
    std::fs::write(dir.join("convergence.md"), &md)?;
    let series: Vec<_> = rows.iter().map(|r| (r.hosts, r.from_run_ms.clone(), r.after_return_ms.clone())).collect();
    if let Err(e) = crate::plot::draw_convergence(&series, &dir.join("convergence.png")) {
        eprintln!("warning: plot: {e:#}");
    }
    println!("{md}");
    eprintln!("wrote {}", dir.join("convergence.md").display());
    Ok(())
}

fn measure_cluster(cluster: &OverlayCluster, names: &Names, n: usize, samples: usize) -> Result<Row> {
    let observers: Vec<PathBuf> = cluster
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| h.run(&names.netns(&format!("obs{i}"))).map(|ep| ep.netns))
        .collect::<Result<_>>()?;
    let (mut delays, mut after_return, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..samples {
        sys::check_interrupted()?;
        let on = s % n;
        let name = names.netns(&format!("cv{s}"));
        let started = Instant::now();
        let ep = cluster.hosts[on].run(&name)?;
        let returned = Instant::now();
        runs.push((returned - started).as_secs_f64() * 1e3);
        let waits: Vec<_> = (0..n)
            .filter(|i| *i != on)
            .map(|i| {
                let (netns, name) = (observers[i].clone(), name.clone());
                std::thread::spawn(move || answered_after(&netns, &name, started))
            })
            .collect();
        for w in waits {
            let after = w.join().map_err(|_| anyhow::anyhow!("observer thread panicked"))??;
            delays.push(after.as_secs_f64() * 1e3);
            after_return.push((after.saturating_sub(returned - started)).as_secs_f64() * 1e3);
        }
        let observer = observers[(on + 1) % n].clone();
        reachable(&observer, ep.ip).with_context(|| format!("{name} answered by name but not reachable"))?;
    }
    let p = |q| stats::percentile(&delays, q).unwrap_or(f64::NAN);
    Ok(Row {
        hosts: n,
        samples,
        p50_ms: p(0.5),
        p99_ms: p(0.99),
        max_ms: delays.iter().copied().fold(0.0, f64::max),
        after_return_p50_ms: stats::percentile(&after_return, 0.5).unwrap_or(f64::NAN),
        after_return_p99_ms: stats::percentile(&after_return, 0.99).unwrap_or(f64::NAN),
        run_p50_ms: stats::percentile(&runs, 0.5).unwrap_or(f64::NAN),
        from_run_ms: delays,
        after_return_ms: after_return,
    })
}

/// Runs `f` on a new thread inside the netns at `netns`.
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let ns = std::fs::File::open(netns).with_context(|| format!("open {}", netns.display()))?;
    std::thread::spawn(move || {
        // SAFETY: setns on a valid fd, on this thread only (a thread of its own).
        if unsafe { libc::setns(ns.as_fd().as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}

/// How long after `since` the embedded DNS in `netns` first answers `name` with an address.
fn answered_after(netns: &Path, name: &str, since: Instant) -> Result<Duration> {
    let query = dns_query(name);
    let name = name.to_string();
    in_netns(netns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.connect("127.0.0.11:53")?;
        socket.set_read_timeout(Some(POLL))?;
        let mut buf = [0u8; 512];
        loop {
            socket.send(&query)?;
            // Unknown yet: a negative answer (or none within POLL); ask again.
            if let Ok(len) = socket.recv(&mut buf) {
                if has_address(&buf[..len]) {
                    return Ok(since.elapsed());
                }
            }
            if since.elapsed() > GIVE_UP {
                bail!("{name} not answered after {GIVE_UP:?}");
            }
            std::thread::sleep(POLL);
        }
    })
}

/// A TCP connect from `netns` to `ip`: refused or accepted, either way the container answered.
fn reachable(netns: &Path, ip: Ipv4Addr) -> Result<()> {
    in_netns(netns, move || {
        match std::net::TcpStream::connect_timeout(&SocketAddr::from((ip, 9)), Duration::from_secs(2)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
            Err(e) => Err(e).context("connect"),
        }
    })
}

/// A DNS query for the A record of `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x4e, 0x44, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Whether a DNS response says NOERROR with at least one answer.
fn has_address(response: &[u8]) -> bool {
    response.len() >= 12 && response[3] & 0x0f == 0 && u16::from_be_bytes([response[6], response[7]]) > 0
}

fn markdown(rows: &[Row], samples: usize) -> String {
    let mut md = String::from("# Overlay convergence\n\n");
    md.push_str(&format!(
        "Time from the start of `netd run` on one host until another host's embedded DNS answers the new \
         container's name (that host writes its tunnel map before the names, in one step), and the same counted \
         from `run`'s return ({samples} containers per cluster size, run on each host in turn; percentiles over \
         all (container, other host) pairs; the other hosts start asking when `run` returns, so the first columns \
         are upper bounds; reachability checked by a TCP connect after each).\n\n"
    ));
    md.push_str(
        "| Hosts | from `run` p50 ms | p99 ms | max ms | after `run` returned p50 ms | p99 ms | `run` p50 ms |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            r.hosts, r.p50_ms, r.p99_ms, r.max_ms, r.after_return_p50_ms, r.after_return_p99_ms, r.run_p50_ms
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_answers_are_dns_wire_format() {
        let q = dns_query("a.b");
        assert_eq!(&q[12..], &[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        let mut answer = q.clone();
        answer[2] = 0x81;
        assert!(!has_address(&answer), "no answer records");
        answer[7] = 1;
        assert!(has_address(&answer));
        answer[3] = 0x83; // NXDOMAIN
        assert!(!has_address(&answer));
    }
}
