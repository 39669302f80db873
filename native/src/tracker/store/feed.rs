//! The live feed across nodes: the node that handles a change publishes the feed message (the
//! same JSON a single tracker sends) on the torrent's channel, and every node serving that
//! torrent's feed forwards what its subscription receives. A torrent's `watched` key, kept
//! alive by the nodes serving its feed, spares announces the `PUBLISH` while nobody watches.

use std::pin::Pin;

use enjambre_core::InfoHash;
use futures_util::{Stream, StreamExt};
use tracing::debug;

use super::keys::TorrentKeys;
use super::{Store, StoreError};
use crate::tracker::registry::SwarmEvent;
use crate::tracker::sse::event_json;

/// How long a torrent counts as watched after a node last said so, in seconds.
const WATCHED_SECS: u64 = 45;

/// One node's subscription to a torrent's feed.
pub struct Subscription {
    messages: Pin<Box<dyn Stream<Item = redis::Msg> + Send>>,
    watched: String,
}

impl Store {
    /// Publish `event` on the torrent's channel, without waiting for the reply.
    pub(super) fn publish(&self, k: &TorrentKeys, event: &SwarmEvent) {
        let msg = event_json(event);
        let channel = k.feed.clone();
        let mut conn = self.conn();
        self.rt.spawn(async move {
            let r: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(msg)
                .query_async(&mut conn)
                .await;
            if let Err(e) = r {
                debug!(error = %e, channel, "cannot publish a live feed event");
            }
        });
    }

    /// Subscribe to the feed of `ih` and mark it watched.
    pub async fn subscribe(&self, ih: &InfoHash) -> Result<Subscription, StoreError> {
        let k = TorrentKeys::of(ih);
        // On a cluster a `PUBLISH` reaches every node, so any node that answers will do.
        let mut last = None;
        let mut ps = None;
        for url in self.target.pubsub_urls() {
            let got = async {
                let client = redis::Client::open(url.as_str())?;
                let mut ps = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    client.get_async_pubsub(),
                )
                .await
                .map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection timed out"))
                })??;
                ps.subscribe(&k.feed).await?;
                Ok::<_, redis::RedisError>(ps)
            }
            .await;
            match got {
                Ok(p) => {
                    ps = Some(p);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(ps) = ps else {
            return Err(last
                .unwrap_or_else(|| (redis::ErrorKind::Io, "no store address").into())
                .into());
        };
        let sub = Subscription {
            messages: Box::pin(ps.into_on_message()),
            watched: k.watched,
        };
        self.keep_watched(&sub.watched).await?;
        Ok(sub)
    }

    /// Say again that the feed is watched (call more often than every [`WATCHED_SECS`]).
    pub async fn keep_watched(&self, watched: &str) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(watched)
            .arg(1)
            .arg("EX")
            .arg(WATCHED_SECS)
            .exec_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

impl Subscription {
    /// The key that marks the torrent's feed as watched.
    pub fn watched_key(&self) -> &str {
        &self.watched
    }

    /// The next feed message (JSON), `None` when the subscription's connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            let m = self.messages.next().await?;
            if let Ok(s) = m.get_payload::<String>() {
                return Some(s);
            }
        }
    }
}
