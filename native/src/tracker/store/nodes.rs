//! The tracker nodes sharing a store know each other by heartbeats: each node scores its name
//! with the Unix second in one sorted set every quarter of the node timeout, and the live nodes
//! are those heard from within the timeout. A node that cannot reach the store stops polling
//! (it cannot know its share), says so in its log, and `/metrics` shows it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Store, StoreError};
use crate::tracker::registry::unix_now;

/// The sorted set of node names scored by their last heartbeat.
pub const NODES: &str = "enj:{nodes}:live";

/// This node and what it knows of the others.
pub struct Nodes {
    /// This node's name: random, new at every start.
    pub id: String,
    /// A node not heard from for this long is taken for dead, in seconds.
    pub timeout: u32,
    live: Mutex<Vec<String>>,
    /// Unix second of the last heartbeat the store acknowledged.
    heard: AtomicU32,
    polling: AtomicBool,
}

impl Nodes {
    /// A new node name with `timeout` seconds.
    pub fn new(timeout: u32) -> Self {
        Nodes {
            id: format!("{:016x}", rand::random::<u64>()),
            timeout: timeout.max(2),
            live: Mutex::new(Vec::new()),
            heard: AtomicU32::new(0),
            polling: AtomicBool::new(false),
        }
    }

    /// The live nodes (sorted), while this node's own view of them is fresh; `None` when it is
    /// cut off from the store and must not poll.
    pub fn live(&self) -> Option<Vec<String>> {
        let fresh = unix_now().saturating_sub(self.heard.load(Relaxed)) < self.timeout;
        fresh.then(|| self.live.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Whether this node polls now (for `/metrics`).
    pub fn polling(&self) -> bool {
        self.polling.load(Relaxed)
    }

    /// How many nodes this node saw live at its last heartbeat.
    pub fn count(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Store {
    /// One heartbeat: say this node is alive, forget the dead, read who is live.
    async fn beat(&self, nodes: &Nodes) -> Result<Vec<String>, StoreError> {
        let now = unix_now();
        let dead_before = now.saturating_sub(nodes.timeout);
        let (_, _, live): ((), (), Vec<String>) = redis::pipe()
            .zadd(NODES, &nodes.id, now)
            .zrembyscore(NODES, "-inf", format!("({dead_before}"))
            .cmd("ZRANGEBYSCORE")
            .arg(NODES)
            .arg(dead_before)
            .arg("+inf")
            .query_async(&mut self.conn())
            .await?;
        Ok(live)
    }

    /// Keep this node's heartbeat until `stop` flips; then leave the set at once, so that the
    /// others take its share without waiting for the timeout.
    pub async fn heartbeat(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(nodes) = self.nodes.as_ref() else {
            return;
        };
        let every = Duration::from_millis(u64::from(nodes.timeout) * 250);
        let mut tick = tokio::time::interval(every);
        let mut known = 0;
        loop {
            tokio::select! { _ = tick.tick() => {}, _ = stop.changed() => break }
            match self.beat(nodes).await {
                Ok(mut live) => {
                    live.sort();
                    if live.len() != known {
                        info!(node = %nodes.id, live = live.len(), "tracker nodes sharing the store");
                        known = live.len();
                    }
                    *nodes.live.lock().unwrap_or_else(|e| e.into_inner()) = live;
                    nodes.heard.store(unix_now(), Relaxed);
                    if !nodes.polling.swap(true, Relaxed) {
                        info!(node = %nodes.id, "polling this node's share of the peers");
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    if nodes.live().is_none() && nodes.polling.swap(false, Relaxed) {
                        warn!(node = %nodes.id, "cut off from the store: polling stopped (this node cannot know its share)");
                    }
                }
            }
        }
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg(NODES)
            .arg(&nodes.id)
            .exec_async(&mut self.conn())
            .await;
    }
}
