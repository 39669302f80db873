//! Command-line arguments of `enjambre tracker` and the limits derived from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `enjambre tracker`: an HTTP + UDP BitTorrent tracker that keeps every peer's bitfield.
#[derive(clap::Args, Debug, Clone)]
pub struct TrackerArgs {
    /// Address to serve HTTP and UDP on, same port number (repeatable). Port 0 picks a free port
    /// that is free for both. Default: 0.0.0.0:6969 and [::]:6969 (the latter when available).
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Announce interval sent to clients, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub interval: u32,
    /// Minimum announce interval sent to clients, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub min_interval: u32,
    /// Forget a peer that has not announced for this long (default: 2 × interval + 60).
    #[arg(long, value_name = "SECS")]
    pub peer_timeout: Option<u32>,
    /// Peers returned when the client does not say `numwant`.
    #[arg(long, default_value_t = 50)]
    pub numwant_default: u32,
    /// Upper bound on the peers returned in one response.
    #[arg(long, default_value_t = 200)]
    pub numwant_max: u32,
    /// Cap on the number of torrents (swarms) held in memory.
    #[arg(long, default_value_t = 100_000)]
    pub max_torrents: usize,
    /// Cap on the number of peers held per torrent.
    #[arg(long, default_value_t = 100_000)]
    pub max_peers_per_torrent: usize,
    /// Cap on the number of peers held across all torrents.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_peers: usize,
    /// Cap on the piece count of a bitfield the tracker stores.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_pieces: u32,
    /// Cap on concurrent HTTP connections.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Cap on concurrent HTTP connections from one client address (an IPv6 /64 counts as one);
    /// 0 = no cap.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_connections_per_ip: usize,
    /// Close an HTTP connection whose request head has not fully arrived this many seconds
    /// after it started (or after the connection opened).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub http_head_timeout: f64,
    /// Cap on the size of an HTTP request head, in bytes.
    #[arg(long, default_value_t = 8192)]
    pub max_request_bytes: usize,
    /// Cap on concurrent live-feed (SSE) subscribers.
    #[arg(long, default_value_t = 256)]
    pub max_subscribers: usize,
    /// Close an idle HTTP keep-alive connection after this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub http_idle_timeout: u64,
    /// Poll every registered peer for its bitfield this often, in seconds (0 disables polling).
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub poll_interval: f64,
    /// Wait this long after a peer's first announce before polling it, in seconds, so that it
    /// meets its swarm first (clients that accept one connection per address would otherwise
    /// refuse a real peer dialling from the tracker's address while the poll is open).
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub poll_grace: u32,
    /// Polls in flight at once.
    #[arg(long, default_value_t = 64)]
    pub poll_concurrency: usize,
    /// Time allowed to connect to a polled peer, in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub poll_connect_timeout: f64,
    /// Time spent reading a polled peer's messages, in seconds (at least 2; silence means no pieces).
    #[arg(long, default_value_t = 2.5, value_name = "SECS")]
    pub poll_read_time: f64,
    /// Minimum spacing between two polls of the same IP address, in seconds.
    #[arg(long, default_value_t = 0.25, value_name = "SECS")]
    pub poll_spacing: f64,
    /// Register a .torrent so the tracker knows its name and piece count (repeatable).
    #[arg(long = "torrent", value_name = "FILE")]
    pub torrents: Vec<PathBuf>,
    /// Refuse announces for torrents not registered with --torrent.
    #[arg(long)]
    pub allow_only_registered: bool,
    /// Directory for the registry snapshot; without it everything stays in memory.
    #[arg(long = "state", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Keep the registry in Redis (`redis://HOST:PORT`) instead of memory, shared with every
    /// tracker node given the same store: any node then answers for any torrent. A Redis Cluster:
    /// `redis+cluster://HOST:PORT,HOST:PORT,...` (some of its masters). Persistence is Redis's own
    /// (no --state).
    #[arg(long, value_name = "URL", conflicts_with = "state")]
    pub store: Option<String>,
    /// With --store: a tracker node not heard from for this long is taken for dead and its
    /// share of the polling goes to the others, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub node_timeout: u32,
    /// Snapshot the registry this often, in seconds (with --state).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub snapshot_interval: u64,
    /// Serve the swarm API (/swarm/…, /swarms, /stats, /metrics) only to clients in this network
    /// (CIDR such as 192.168.0.0/16, or one address; repeatable). Default: every client.
    #[arg(long = "api-allow", value_name = "CIDR", value_parser = super::api_access::parse_net)]
    pub api_allow: Vec<ipnet::IpNet>,
    /// Turn the swarm API off (its paths answer 404); announce and scrape are served as usual.
    #[arg(long, conflicts_with = "api_allow")]
    pub no_api: bool,
    /// Tokio worker threads for HTTP, the API and the poller (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub http_workers: usize,
    #[command(flatten)]
    pub bridge: super::bridge::BridgeArgs,
}

/// Limits and timings the registry and servers run with, resolved from [`TrackerArgs`].
#[derive(Debug, Clone)]
pub struct Limits {
    pub interval: u32,
    pub min_interval: u32,
    pub peer_timeout: u32,
    pub numwant_default: u32,
    pub numwant_max: u32,
    pub max_torrents: usize,
    pub max_peers_per_torrent: usize,
    pub max_peers: usize,
    pub max_pieces: u32,
    pub allow_only_registered: bool,
    pub poll_interval: Option<Duration>,
    /// Seconds after a peer's first announce before its first poll.
    pub poll_grace: u32,
}

impl TrackerArgs {
    /// The listen addresses, defaulting to 0.0.0.0:6969 and [::]:6969.
    pub fn listen_addrs(&self) -> (Vec<SocketAddr>, bool) {
        if self.listen.is_empty() {
            let v4: SocketAddr = "0.0.0.0:6969".parse().expect("literal");
            let v6: SocketAddr = "[::]:6969".parse().expect("literal");
            (vec![v4, v6], true)
        } else {
            (self.listen.clone(), false)
        }
    }

    /// Resolve the registry limits, rejecting nonsensical combinations.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        anyhow::ensure!(self.numwant_max >= 1, "--numwant-max must be at least 1");
        anyhow::ensure!(self.interval >= 1, "--interval must be at least 1");
        anyhow::ensure!(
            self.poll_read_time >= 2.0 || self.poll_interval == 0.0,
            "--poll-read-time must be at least 2 s (a silent peer has no pieces only after 2 s)"
        );
        let poll_interval = if self.poll_interval > 0.0 {
            Some(secs(self.poll_interval, "--poll-interval")?)
        } else {
            None
        };
        Ok(Limits {
            interval: self.interval,
            min_interval: self.min_interval.min(self.interval),
            peer_timeout: self
                .peer_timeout
                .unwrap_or(self.interval.saturating_mul(2).saturating_add(60)),
            numwant_default: self.numwant_default.min(self.numwant_max),
            numwant_max: self.numwant_max,
            max_torrents: self.max_torrents,
            max_peers_per_torrent: self.max_peers_per_torrent,
            max_peers: self.max_peers,
            max_pieces: self.max_pieces,
            allow_only_registered: self.allow_only_registered,
            poll_interval,
            poll_grace: self.poll_grace,
        })
    }
}

/// A positive, finite number of seconds as a [`Duration`].
pub fn secs(v: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow::anyhow!("{what}: not a valid number of seconds: {v}"))
}
