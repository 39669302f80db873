//! `enjambre tracker`: a BitTorrent tracker (HTTP and UDP on the same port number) that keeps
//! every peer's piece bitfield, learns it by polling the peers itself or from their own report,
//! serves a swarm API with a live feed and persists its registry.
//!
//! Endpoints (one listener, CORS `*` on every response): `GET /announce`, `GET /scrape`,
//! `GET /swarm/<info-hash hex>` (peers, bitfields with source and age, per-piece availability),
//! `GET /swarm/<hex>/events` (Server-Sent Events: `snapshot`, then `peer` / `leave`),
//! `GET /swarms`, `GET /stats`, `GET /metrics` (Prometheus); UDP announce/scrape (BEP 15).
//! The API paths can be limited to given networks (`--api-allow`) or turned off (`--no-api`).
//! `GET /` serves the page (`web/`, built in; see [`web`]).
//! `GET /bridge/<hex>/<ip>:<port>` is a WebSocket relay to a listed peer, for browser peers
//! (see [`bridge`]); `GET /bridge/announce` an announce that stores the asker only at the bridge
//! port it holds (`GET /bridge/listen/<hex>`, with `--bridge-ports`), relayed to the other
//! trackers of a torrent handed over by `POST /bridge/torrent/<hex>`.
//!
//! Self-report: an announce may carry `bitfield=<base64url of the raw BEP 3 bitfield bytes, no
//! padding>` (MSB of the first byte is piece 0). Standard clients never send it and other
//! trackers ignore it. The tracker takes it from anyone, checks its length (and that spare bits
//! are zero) against the piece count when known (registered .torrent, or a seed's polled
//! bitfield), and otherwise answers normally with a `warning message` saying why it was ignored.
//!
//! Threads: one per UDP socket (blocking receive, answer in place); a tokio runtime for HTTP, the
//! API, the poller and the periodic sweep and snapshot. All share one [`Registry`] behind a mutex
//! whose critical sections are short and bounded; or, with `--store`, the registry lives in Redis
//! and is shared by every node given the same store (see [`store`]).

mod api_access;
mod bits;
mod bridge;
mod config;
mod conn_limit;
mod connid;
mod http;
mod metrics;
mod mmsg;
mod peers;
mod poller;
mod proto;
mod registry;
mod select;
mod snapshot;
mod sse;
mod state;
mod store;
mod store_http;
mod swarm_api;
mod torrents;
mod udp;
mod web;

use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tracing::{info, warn};

use config::secs;
pub use config::TrackerArgs;
use connid::ConnIds;
use metrics::Metrics;
use registry::{unix_now, Registry};
use state::State;

fn bind_tcp(addr: SocketAddr, v6only: bool) -> std::io::Result<StdTcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(v6only)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

fn bind_udp(addr: SocketAddr, v6only: bool) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(v6only)?;
    }
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Bind TCP and UDP on the same port; port 0 picks one free for both.
fn bind_pair(addr: SocketAddr, v6only: bool) -> std::io::Result<(StdTcpListener, UdpSocket)> {
    if addr.port() != 0 {
        return Ok((bind_tcp(addr, v6only)?, bind_udp(addr, v6only)?));
    }
    let mut last = None;
    for _ in 0..32 {
        let tcp = bind_tcp(addr, v6only)?;
        let port = tcp.local_addr()?.port();
        match bind_udp(SocketAddr::new(addr.ip(), port), v6only) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Run the tracker until SIGINT or SIGTERM.
pub fn run(args: TrackerArgs) -> anyhow::Result<()> {
    let limits = args.limits()?;
    let mut registry = Registry::new(limits.clone());
    for path in &args.torrents {
        let t = torrents::load(path)?;
        info!(info_hash = %t.info_hash, name = %t.name, pieces = t.pieces, "registered torrent");
        registry.register(t.info_hash, &t.name, t.pieces);
    }
    if let Some(dir) = &args.state {
        snapshot::load(dir, &mut registry, unix_now());
    }
    let (addrs, defaults) = args.listen_addrs();
    let has_v4_any = addrs.iter().any(|a| a.is_ipv4());
    let mut bound = Vec::new();
    for addr in addrs {
        match bind_pair(addr, has_v4_any) {
            Ok(pair) => bound.push(pair),
            Err(e) if defaults && addr.is_ipv6() => {
                warn!(%addr, error = %e, "IPv6 not available; serving IPv4 only")
            }
            Err(e) => return Err(anyhow::anyhow!("cannot listen on {addr}: {e}")),
        }
    }
    let rt = if args.http_workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.http_workers)
            .enable_all()
            .build()?
    };
    let store = match &args.store {
        Some(url) => {
            let _in_rt = rt.enter();
            let store = Arc::new(store::Store::open(url, limits.clone(), args.node_timeout)?);
            rt.block_on(store.ping());
            let torrents = args
                .torrents
                .iter()
                .map(|p| torrents::load(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            rt.spawn(store::register_all(store.clone(), torrents));
            info!(url, "registry kept in the shared store");
            Some(store)
        }
        None => None,
    };
    if store.is_some() && args.bridge.inbound.bridge_ports.len() > 0 {
        anyhow::bail!(
            "--bridge-ports is not served with --store yet: pages dial out through any node, but a \
             page's port is listed through the in-memory registry"
        );
    }
    let bridge = bridge::Bridge::new(&args.bridge)?;
    let st = Arc::new(State {
        registry: Mutex::new(registry),
        store,
        metrics: Metrics::default(),
        connids: ConnIds::new(),
        limits,
        max_request_bytes: args.max_request_bytes,
        max_connections: args.max_connections,
        per_ip: conn_limit::PerIp::new(args.max_connections_per_ip),
        max_subscribers: args.max_subscribers,
        api: api_access::ApiAccess::new(args.no_api, &args.api_allow),
        bridge,
        http_idle_timeout: args.http_idle_timeout,
        http_head_timeout: secs(args.http_head_timeout, "--http-head-timeout")?,
        started: Instant::now(),
        totals: Mutex::new(None),
    });
    let own = bound.iter().filter_map(|(tcp, _)| tcp.local_addr().ok());
    st.bridge.forward.set_own(own.collect());
    // Announce where we listen, on stdout, for scripts and tests.
    for (tcp, udp) in &bound {
        println!(
            "enjambre tracker listening: http={} udp={}",
            tcp.local_addr()?,
            udp.local_addr()?
        );
    }
    let stop_udp = Arc::new(AtomicBool::new(false));
    let mut udp_threads = Vec::new();
    let mut tcp_listeners = Vec::new();
    for (tcp, udp) in bound {
        tcp_listeners.push(tcp);
        let st = st.clone();
        let stop = stop_udp.clone();
        udp_threads.push(
            std::thread::Builder::new()
                .name("udp".into())
                .spawn(move || udp::run(udp, st, stop))?,
        );
    }
    let times = poller::PollTimes {
        connect: secs(args.poll_connect_timeout, "--poll-connect-timeout")?,
        read: secs(args.poll_read_time, "--poll-read-time")?,
        spacing: secs(args.poll_spacing, "--poll-spacing")?,
    };
    let result = rt.block_on(serve(
        st.clone(),
        tcp_listeners,
        args.state.clone(),
        args.snapshot_interval,
        args.poll_concurrency,
        times,
    ));
    stop_udp.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in udp_threads {
        let _ = t.join();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(
    st: Arc<State>,
    listeners: Vec<StdTcpListener>,
    state_dir: Option<PathBuf>,
    snapshot_every: u64,
    poll_concurrency: usize,
    times: poller::PollTimes,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    for l in listeners {
        let l = tokio::net::TcpListener::from_std(l)?;
        tokio::spawn(http::serve(l, st.clone(), stop_rx.clone()));
    }
    // The heartbeat stops after the poller: a node leaving the store first stops claiming
    // peers and finishes the polls it started, then leaves the set of nodes at once.
    let (leave_tx, leave_rx) = watch::channel(false);
    let heartbeat = st
        .store
        .as_ref()
        .map(|store| tokio::spawn(store.clone().heartbeat(leave_rx)));
    let poller = tokio::spawn(poller::run(
        st.clone(),
        poll_concurrency,
        times,
        stop_rx.clone(),
    ));
    // Sweep expired peers.
    {
        let st = st.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(u64::from(st.limits.peer_timeout / 4).clamp(1, 60));
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! { _ = tick.tick() => {}, _ = stop.changed() => return }
                let removed = st.reg().sweep(unix_now());
                if removed > 0 {
                    info!(removed, "expired peers that stopped announcing");
                }
            }
        });
    }
    // Periodic snapshots.
    if let Some(dir) = state_dir.clone() {
        let st = st.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(snapshot_every.max(1)));
            tick.tick().await;
            loop {
                tokio::select! { _ = tick.tick() => {}, _ = stop.changed() => return }
                save(&st, &dir).await;
            }
        });
    }
    wait_for_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), poller).await;
    let _ = leave_tx.send(true);
    if let Some(h) = heartbeat {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    if let Some(dir) = state_dir {
        save(&st, &dir).await;
    }
    Ok(())
}

async fn save(st: &Arc<State>, dir: &std::path::Path) {
    let bytes = snapshot::encode(&st.reg(), unix_now());
    let dir = dir.to_owned();
    let len = bytes.len();
    match tokio::task::spawn_blocking(move || snapshot::write(&dir, &bytes)).await {
        Ok(Ok(())) => info!(bytes = len, "registry snapshot written"),
        Ok(Err(e)) => warn!(error = %e, "cannot write registry snapshot"),
        Err(e) => warn!(error = %e, "snapshot task failed"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
