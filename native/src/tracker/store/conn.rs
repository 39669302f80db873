//! The connection to the store: one Redis (`redis://HOST:PORT[/DB]`, a reconnecting
//! multiplexed connection) or a Redis Cluster (`redis+cluster://H1:P1,H2:P2,...`, the `redis`
//! crate's cluster client, which routes every command to the master of its key's slot and
//! follows the cluster's topology). Both are opened lazily: the tracker starts while the store
//! is down and connects when it is back.
//!
//! On a cluster every command, pipeline and script touches keys of one slot only: a torrent's
//! keys share its hash tag, the torrent index and the node heartbeats have tags of their own, and
//! reads over many torrents are sent as one pipeline per torrent (see `read.rs`).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The scheme of a cluster's node list.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Where the store is, parsed from `--store`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One Redis.
    Single(String),
    /// The seed nodes of a Redis Cluster, as `redis://HOST:PORT` each.
    Cluster(Vec<String>),
}

impl Target {
    /// Parse `redis://HOST:PORT[/DB]` or `redis+cluster://H1:P1,H2:P2,...`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        if let Some(list) = url.strip_prefix(CLUSTER_SCHEME) {
            let nodes: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|hp| format!("redis://{}", hp.trim_end_matches('/')))
                .collect();
            if nodes.is_empty() {
                anyhow::bail!(
                    "--store {url}: no cluster node (redis+cluster://HOST:PORT,HOST:PORT,...)"
                );
            }
            for n in &nodes {
                redis::Client::open(n.as_str()).map_err(|e| {
                    anyhow::anyhow!("--store {url}: {n} is not a Redis address: {e}")
                })?;
            }
            Ok(Target::Cluster(nodes))
        } else {
            redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("--store {url}: not a Redis address: {e}"))?;
            Ok(Target::Single(url.to_string()))
        }
    }

    /// The addresses a pub/sub connection may use, in order of preference.
    pub fn pubsub_urls(&self) -> Vec<String> {
        match self {
            Target::Single(u) => vec![u.clone()],
            Target::Cluster(n) => n.clone(),
        }
    }
}

/// A cluster connection made on first use and kept (it reconnects to nodes by itself).
pub struct LazyCluster {
    client: ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

impl LazyCluster {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.client.get_async_connection().await?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// A connection to issue commands on; cheap to clone (all clones share the connections).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

impl Conn {
    /// Open (lazily) the store at `target`. Must run inside the tracker's runtime.
    pub fn open(target: &Target) -> anyhow::Result<Conn> {
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Ok(Conn::Single(ConnectionManager::new_lazy_with_config(
                    client, config,
                )?))
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(Duration::from_secs(1))
                    .response_timeout(Duration::from_secs(2))
                    .retries(2)
                    .max_retry_wait(500)
                    .build()?;
                Ok(Conn::Cluster(Arc::new(LazyCluster {
                    client,
                    conn: tokio::sync::Mutex::new(None),
                })))
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(h) => Box::pin(async move {
                let mut c = h.get().await?;
                c.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(h) => Box::pin(async move {
                let mut c = h.get().await?;
                c.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_addresses_parse() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379").unwrap(),
            Target::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            Target::parse("redis+cluster://10.0.0.1:7000, 10.0.0.2:7001,").unwrap(),
            Target::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://10.0.0.2:7001".into()
            ])
        );
        assert!(Target::parse("redis+cluster://").is_err());
        assert!(Target::parse("http://x").is_err());
    }
}
