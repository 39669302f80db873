//! The registry in Redis (`enjambre tracker --store redis://HOST:PORT`): several tracker nodes
//! share one set of swarms, so any node answers for any torrent.
//!
//! Layout: every key of a torrent carries the hash tag `{<info-hash hex>}` ([`keys`]), so the
//! torrent lives in one Redis Cluster slot. An announce is one `EVALSHA` of a server-side script
//! ([`announce`]) that trims that torrent's expired peers, stores the asker (its record in a hash,
//! its last-seen time as the score of a sorted set of seeders or of leechers), counts a
//! completion, checks a reported bitfield and picks peers at random; a torrent's first peer adds
//! one more command, to the torrent index. Idle torrents vanish by Redis key expiry: nothing
//! scans every peer. Bitfields (with source and age) sit in a hash per torrent, so a swarm's
//! view and its per-piece availability are one read of that torrent ([`read`]).
//!
//! When Redis cannot be reached, every request that needs it fails with a clear reason; the
//! connection manager reconnects by itself when Redis is back.

mod announce;
mod conn;
mod feed;
pub mod keys;
mod nodes;
mod poll;
mod read;
pub mod record;
mod rendezvous;
mod view;

use std::fmt::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use enjambre_core::InfoHash;
use tracing::{info, warn};

use super::config::Limits;
use super::registry::unix_now;

pub use conn::Target;
pub use nodes::Nodes;
pub use read::SwarmData;
pub use view::{swarm_json, swarms_json};

/// The `failure reason` an announce gets while Redis cannot be reached.
pub const UNAVAILABLE: &str = "tracker storage unavailable, try again later";

/// Why a request to the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or did not answer in time.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something the tracker did not write.
    #[error("unexpected reply from redis: {0}")]
    Reply(&'static str),
}

/// A connection to the shared registry.
pub struct Store {
    conn: conn::Conn,
    /// Where the store is (pub/sub connections are opened to it apart).
    target: Target,
    script: redis::Script,
    poll_script: redis::Script,
    claim_script: redis::Script,
    limits: Limits,
    /// This node among the others, when it polls.
    nodes: Option<Nodes>,
    /// The piece count and stride of the torrents whose peers are being polled.
    poll_pieces: std::sync::Mutex<std::collections::HashMap<InfoHash, (Option<u32>, usize)>>,
    rt: tokio::runtime::Handle,
    /// Requests that could not reach Redis.
    errors: AtomicU64,
    /// Unix seconds of the last request that failed, and of the last one that succeeded.
    last_error: AtomicU32,
    /// When a failure was last logged at `warn` (at most every 10 s).
    last_warned: AtomicU32,
}

impl Store {
    /// Open the store at `url` (`redis://HOST:PORT[/DB]`, or `redis+cluster://H1:P1,H2:P2,...`
    /// for a Redis Cluster); Redis need not be up yet. Must run inside the tracker's runtime. `node_timeout`: seconds after which a silent node's share
    /// of the polling is taken over.
    pub fn open(url: &str, limits: Limits, node_timeout: u32) -> anyhow::Result<Self> {
        let target = Target::parse(url)?;
        let conn = conn::Conn::open(&target)?;
        Ok(Store {
            conn,
            target,
            script: redis::Script::new(include_str!("announce.lua")),
            poll_script: redis::Script::new(include_str!("poll.lua")),
            claim_script: redis::Script::new(include_str!("claim.lua")),
            nodes: limits.poll_interval.map(|_| Nodes::new(node_timeout)),
            poll_pieces: Default::default(),
            limits,
            rt: tokio::runtime::Handle::current(),
            errors: AtomicU64::new(0),
            last_error: AtomicU32::new(0),
            last_warned: AtomicU32::new(0),
        })
    }

    /// A connection to issue commands on (cheap: shares one multiplexed connection).
    fn conn(&self) -> conn::Conn {
        self.conn.clone()
    }

    /// Run `f` to completion from a thread outside the runtime (the UDP threads).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Check that Redis answers, logging the outcome.
    pub async fn ping(&self) -> bool {
        let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut self.conn()).await;
        match r {
            Ok(_) => {
                info!("registry store reachable");
                true
            }
            Err(e) => {
                warn!(error = %e, "registry store unreachable: announces fail until it is back");
                false
            }
        }
    }

    /// Register a torrent: its name and exact piece count, kept without expiry.
    pub async fn register(&self, ih: &InfoHash, name: &str, pieces: u32) -> Result<(), StoreError> {
        let k = keys::TorrentKeys::of(ih);
        let stride = (pieces as usize).div_ceil(8);
        redis::pipe()
            .hset_multiple(
                &k.meta,
                &[
                    ("name", name.to_string()),
                    ("pieces", pieces.to_string()),
                    ("stride", stride.to_string()),
                    ("registered", "1".to_string()),
                ],
            )
            .ignore()
            .persist(&k.meta)
            .ignore()
            .exec_async(&mut self.conn())
            .await?;
        // The index has a slot of its own: a command apart.
        redis::cmd("SADD")
            .arg(keys::INDEX)
            .arg(ih.to_string())
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Peers older than this are gone.
    fn deadline(&self, now: u32) -> u32 {
        now.saturating_sub(self.limits.peer_timeout)
    }

    /// Count a request that could not reach Redis, and log it (at `warn` at most every 10 s).
    pub fn failed(&self, e: &StoreError) {
        self.errors.fetch_add(1, Relaxed);
        let now = unix_now();
        self.last_error.store(now, Relaxed);
        let last = self.last_warned.load(Relaxed);
        if now.saturating_sub(last) >= 10
            && self
                .last_warned
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            warn!(error = %e, errors = self.errors.load(Relaxed), "registry store unavailable: answering with a failure reason");
        } else {
            tracing::debug!(error = %e, "registry store request failed");
        }
    }

    /// Append the store's own lines to `/metrics`.
    pub fn render(&self, out: &mut String) {
        let recent = unix_now().saturating_sub(self.last_error.load(Relaxed)) < 5;
        let _ = writeln!(
            out,
            "# HELP enjambre_tracker_store_errors_total Requests that could not reach the registry store.\n# TYPE enjambre_tracker_store_errors_total counter\nenjambre_tracker_store_errors_total {}",
            self.errors.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP enjambre_tracker_store_up Whether the registry store answered (no failure in the last 5 s).\n# TYPE enjambre_tracker_store_up gauge\nenjambre_tracker_store_up {}",
            u8::from(!recent)
        );
        if let Some(n) = &self.nodes {
            let _ = writeln!(
                out,
                "# HELP enjambre_tracker_store_nodes Tracker nodes heard from within the node timeout.\n# TYPE enjambre_tracker_store_nodes gauge\nenjambre_tracker_store_nodes {}",
                n.count()
            );
            let _ = writeln!(
                out,
                "# HELP enjambre_tracker_store_polling Whether this node polls its share (0: cut off from the store).\n# TYPE enjambre_tracker_store_polling gauge\nenjambre_tracker_store_polling {}",
                u8::from(n.polling() && n.live().is_some())
            );
        }
    }
}

/// Register the `--torrent` files in the store, retrying every second until Redis answers.
pub async fn register_all(
    store: std::sync::Arc<Store>,
    torrents: Vec<super::torrents::Registered>,
) {
    for t in torrents {
        loop {
            match store.register(&t.info_hash, &t.name, t.pieces).await {
                Ok(()) => {
                    info!(info_hash = %t.info_hash, name = %t.name, pieces = t.pieces, "registered torrent in the store");
                    break;
                }
                Err(e) => {
                    store.failed(&e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
