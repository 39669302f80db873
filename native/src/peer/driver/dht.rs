//! The DHT glue: a task that looks the torrent up on the DHT in rounds, hands the peers it
//! finds to the loop (as the trackers' are), announces our port until a node takes it (and
//! again every [`REANNOUNCE`]), and saves the routing table after each round.
//!
//! Which nodes to ask and what they answer is the `mainline` crate's business, never this file's.

use std::sync::Arc;
use std::time::Duration;

use enjambre_core::InfoHash;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::{Driver, Input};
use crate::peer::dht::DhtNode;

/// The first rounds come this often, doubling up to [`SLOWEST`] while no peer is found.
const FIRST_GAP: Duration = Duration::from_secs(5);
/// The longest gap between rounds while no peer was found.
const SLOWEST: Duration = Duration::from_secs(120);
/// The gap between rounds once peers were found.
const FOUND_GAP: Duration = Duration::from_secs(300);
/// How often a stored announce is renewed (nodes forget them after about 30 minutes).
const REANNOUNCE: Duration = Duration::from_secs(15 * 60);

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Take peers the DHT found.
    pub(super) fn dht_found(&mut self, peers: Vec<std::net::SocketAddr>) {
        tracing::debug!(peers = peers.len(), "peers from the DHT");
        let now = self.now();
        self.session.handle_peers(now, peers);
    }
}

/// Look up and announce `info_hash` until aborted; `port` is our TCP port.
pub(super) async fn dht_loop(
    node: Arc<DhtNode>,
    info_hash: InfoHash,
    port: u16,
    tx: UnboundedSender<Input>,
) {
    let mut gap = FIRST_GAP;
    let mut announced: Option<Instant> = None;
    loop {
        let found = node
            .lookup(info_hash, |batch| tx.send(Input::DhtPeers(batch)).is_ok())
            .await;
        tracing::info!(found, "DHT lookup done");
        if announced.is_none_or(|at| at.elapsed() >= REANNOUNCE)
            && node.announce(info_hash, port).await
        {
            tracing::info!(port, "announced on the DHT");
            announced = Some(Instant::now());
        }
        node.save().await;
        let wait = if found > 0 { FOUND_GAP } else { gap };
        if found == 0 {
            gap = (gap * 2).min(SLOWEST);
        }
        tokio::time::sleep(wait).await;
    }
}
