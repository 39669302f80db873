//! Our DHT node (BEP 5, IPv4): the `mainline` crate's node on a UDP port, joined through
//! `--dht-bootstrap`, the nodes the last run saved, or else the public routers; it finds the
//! peers of an info-hash and announces ours. It answers other nodes' queries (server mode), as
//! a BitTorrent client that accepts peers should.
//!
//! The protocol (KRPC, the routing table, the tokens, the stored peers and their limits) is the
//! crate's; this module only starts it, asks it, and keeps its table in a [`NodesFile`]. It is
//! never started for a private torrent (BEP 27) nor with `--no-dht`.

pub mod nodes_file;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::InfoHash;
use futures_util::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id};

use super::args::CommonArgs;
use super::Torrent;

pub use self::nodes_file::NodesFile;

/// How long one lookup may take at most (the crate ends it sooner when no closer node is left).
const LOOKUP_LIMIT: Duration = Duration::from_secs(20);

/// A running DHT node; dropping the last clone stops it.
#[derive(Debug, Clone)]
pub struct DhtNode {
    dht: AsyncDht,
    port: u16,
    nodes_file: Option<NodesFile>,
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct DhtOptions {
    /// `--dht-bootstrap`: HOST:PORT of nodes to join through; `none` starts a new DHT (never
    /// the public routers; other nodes join through us).
    pub bootstrap: Vec<String>,
    /// The UDP port wanted (0: any); another is taken when it is in use.
    pub port: u16,
    /// `--listen`, when it is an IPv4 address.
    pub listen: Option<IpAddr>,
    /// Where the routing table is kept (`None`: not kept).
    pub nodes_file: Option<NodesFile>,
}

impl DhtNode {
    /// Start a node; `None` (with a warning) when it cannot be, for a download goes on
    /// without the DHT.
    pub fn start(options: DhtOptions) -> Option<DhtNode> {
        let alone = options
            .bootstrap
            .iter()
            .any(|b| b.eq_ignore_ascii_case("none"));
        let named: Vec<&String> = options
            .bootstrap
            .iter()
            .filter(|b| !b.eq_ignore_ascii_case("none"))
            .collect();
        let mut bootstrap = resolve(&named);
        let saved = options
            .nodes_file
            .as_ref()
            .map(NodesFile::load)
            .unwrap_or_default();
        let from_saved = saved.len();
        bootstrap.extend(saved);
        let public = bootstrap.is_empty() && named.is_empty() && !alone;
        if public {
            bootstrap = resolve(&mainline::DEFAULT_BOOTSTRAP_NODES);
        }
        let bind = match options.listen {
            Some(IpAddr::V4(ip)) => ip,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let build = |port: u16| {
            let mut builder = Dht::builder();
            builder
                .server_mode()
                .bind_address(bind)
                .port(port)
                .bootstrap(&bootstrap);
            builder.build()
        };
        let dht = match build(options.port) {
            Ok(d) => d,
            Err(e) if options.port != 0 => {
                tracing::info!(port = options.port, error = %e, "DHT port in use; taking another");
                build(0).ok()?
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the DHT node");
                return None;
            }
        };
        let port = local_port(&dht);
        let dht = dht.as_async();
        tracing::info!(
            port,
            bootstrap = bootstrap.len(),
            from_saved,
            public,
            "DHT node started"
        );
        Some(DhtNode {
            dht,
            port,
            nodes_file: options.nodes_file,
        })
    }

    /// The UDP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Look `info_hash` up, handing each batch of peers found to `found` as it comes; ends
    /// when the lookup does, when `found` returns false, or after [`LOOKUP_LIMIT`] (a lookup
    /// lasts until its slowest node answers or times out). Returns how many addresses came.
    pub async fn lookup(
        &self,
        info_hash: InfoHash,
        mut found: impl FnMut(Vec<SocketAddr>) -> bool,
    ) -> usize {
        let mut stream = self.dht.get_peers(Id::from(info_hash.0));
        let mut count = 0;
        let deadline = tokio::time::Instant::now() + LOOKUP_LIMIT;
        while let Ok(Some(batch)) = tokio::time::timeout_at(deadline, stream.next()).await {
            count += batch.len();
            if !found(batch.into_iter().map(SocketAddr::V4).collect()) {
                break;
            }
        }
        count
    }

    /// Announce that we accept peers of `info_hash` on TCP `port`; false when no node took it.
    pub async fn announce(&self, info_hash: InfoHash, port: u16) -> bool {
        match self
            .dht
            .announce_peer(Id::from(info_hash.0), Some(port))
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(error = %e, "DHT announce not stored");
                false
            }
        }
    }

    /// Save the routing table for the next run (nothing when it is empty).
    pub async fn save(&self) {
        let Some(file) = &self.nodes_file else { return };
        let nodes: Vec<SocketAddrV4> = self
            .dht
            .to_bootstrap()
            .await
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        if let Err(e) = file.save(&nodes) {
            tracing::warn!(path = %file.path().display(), error = %e, "cannot save the DHT nodes");
        }
    }
}

/// The IPv4 addresses of `names` (HOST:PORT); those that do not resolve are skipped.
fn resolve<S: AsRef<str>>(names: &[S]) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    for name in names {
        let name = name.as_ref();
        match name.to_socket_addrs() {
            Ok(addrs) => out.extend(addrs.filter_map(|a| match a {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })),
            Err(e) => tracing::warn!(node = name, error = %e, "cannot resolve a DHT node"),
        }
    }
    out
}

fn local_port(dht: &Dht) -> u16 {
    // Blocking, but the crate's thread answers at once (the async call needs a runtime).
    #[allow(deprecated)]
    dht.info().local_addr().port()
}

/// Start the DHT node unless `--no-dht`, on the port asked for the peers.
pub(super) fn start_dht(common: &CommonArgs) -> Option<Arc<DhtNode>> {
    if common.no_dht {
        return None;
    }
    DhtNode::start(DhtOptions {
        bootstrap: common.dht_bootstrap.clone(),
        port: common.port,
        listen: common.listen,
        nodes_file: NodesFile::for_user(),
    })
    .map(Arc::new)
}

/// The DHT node for `torrent`: none for a private one (BEP 27: its peers come from its
/// trackers only), else `started` or a new one.
pub(super) fn dht_for(
    torrent: &Torrent,
    common: &CommonArgs,
    started: Option<Arc<DhtNode>>,
) -> Option<Arc<DhtNode>> {
    if torrent.meta.private {
        return None;
    }
    started.or_else(|| start_dht(common))
}
