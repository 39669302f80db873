//! Reads: a torrent's counters (scrape), its whole swarm (the swarm API, the live feed's
//! snapshot), and walks of the torrent index (`/swarms`, a full scrape, `/metrics` totals).
//! Expired peers not trimmed yet are never counted: counts are taken above the deadline.

use std::collections::HashMap;
use std::net::SocketAddr;

use enjambre_core::InfoHash;

use super::keys::{self, TorrentKeys};
use super::record::{self, BitsRecord, PeerRecord};
use super::{Store, StoreError};
use crate::tracker::bits::Have;
use crate::tracker::metrics::Totals;
use crate::tracker::registry::PeerView;

/// One torrent's counters and facts, as a walk of the index gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub info_hash: InfoHash,
    pub name: Option<String>,
    pub pieces: Option<u32>,
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u64,
    pub with_bitfield: usize,
    /// The torrent has a meta record (registered, or counters worth keeping).
    pub has_meta: bool,
}

/// One torrent's whole swarm.
pub struct SwarmData {
    pub name: Option<String>,
    pub pieces: Option<u32>,
    pub stride: usize,
    pub registered: bool,
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u64,
    pub peers: Vec<PeerView<Box<[u8]>>>,
}

impl SwarmData {
    /// A swarm the store knows nothing of.
    pub fn empty() -> Self {
        SwarmData {
            name: None,
            pieces: None,
            stride: 0,
            registered: false,
            seeders: 0,
            leechers: 0,
            completed: 0,
            peers: Vec::new(),
        }
    }

    /// The fewest and most pieces the torrent can have (see `Swarm::piece_count_range`).
    pub fn piece_count_range(&self) -> Option<(usize, usize)> {
        if let Some(n) = self.pieces {
            return Some((n as usize, n as usize));
        }
        let most = self.stride * 8;
        if most == 0 {
            return None;
        }
        let highest = self
            .peers
            .iter()
            .filter_map(|p| p.bits.as_deref())
            .filter_map(|b| {
                let i = b.iter().rposition(|&x| x != 0)?;
                Some(i * 8 + 7 - b[i].trailing_zeros() as usize)
            })
            .max();
        Some(((most - 7).max(highest.map_or(0, |i| i + 1)), most))
    }

    /// How many peers have each of the first `listed` pieces.
    pub fn availability(&self, listed: usize) -> Vec<u32> {
        let mut avail = vec![0u32; listed];
        for p in &self.peers {
            match (p.have, p.bits.as_deref()) {
                (Have::All, _) => avail.iter_mut().for_each(|a| *a += 1),
                (Have::Some, Some(b)) => {
                    for (i, a) in avail.iter_mut().enumerate() {
                        *a += u32::from(crate::tracker::bits::get_bit(b, i));
                    }
                }
                _ => {}
            }
        }
        avail
    }
}

type Members = Vec<(Vec<u8>, f64)>;
type Hash = HashMap<Vec<u8>, Vec<u8>>;

fn text(h: &Hash, k: &str) -> Option<String> {
    h.get(k.as_bytes())
        .and_then(|v| String::from_utf8(v.clone()).ok())
}

fn number<T: std::str::FromStr>(h: &Hash, k: &str) -> Option<T> {
    text(h, k)?.parse().ok()
}

/// How many per-torrent pipelines are in flight at once.
const IN_FLIGHT: usize = 64;

impl Store {
    /// Send one pipeline per torrent (each within one slot, as a Redis Cluster needs), many at
    /// a time on the multiplexed connection; the replies in order.
    async fn per_torrent<T, I>(&self, pipes: I) -> Result<Vec<T>, StoreError>
    where
        T: redis::FromRedisValue + Send + 'static,
        I: IntoIterator<Item = redis::Pipeline>,
    {
        let pipes: Vec<redis::Pipeline> = pipes.into_iter().collect();
        let mut out = Vec::with_capacity(pipes.len());
        for chunk in pipes.chunks(IN_FLIGHT) {
            let calls = chunk.iter().map(|pipe| {
                let mut conn = self.conn();
                let pipe = pipe.clone();
                Box::pin(async move { pipe.query_async::<T>(&mut conn).await })
                    as std::pin::Pin<
                        Box<dyn std::future::Future<Output = redis::RedisResult<T>> + Send>,
                    >
            });
            out.extend(futures_util::future::try_join_all(calls).await?);
        }
        Ok(out)
    }

    /// (seeders, completed, leechers) of each torrent, zeros when unknown.
    pub async fn scrape(
        &self,
        now: u32,
        hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, u32, u64, u32)>, StoreError> {
        let dl = self.deadline(now);
        let pipes = hashes.iter().map(|ih| {
            let k = TorrentKeys::of(ih);
            let mut pipe = redis::pipe();
            pipe.zcount(&k.seeders, dl, "+inf")
                .zcount(&k.leechers, dl, "+inf")
                .hget(&k.meta, "completed");
            pipe
        });
        let got: Vec<(u32, u32, Option<u64>)> = self.per_torrent(pipes).await?;
        Ok(hashes
            .iter()
            .zip(got)
            .map(|(ih, (s, l, c))| (*ih, s, c.unwrap_or(0), l))
            .collect())
    }

    /// Whether the swarm of `ih` lists `addr` (a seeder or leecher heard from within the peer
    /// timeout): what the bridge asks before it dials.
    pub async fn lists(
        &self,
        now: u32,
        ih: &InfoHash,
        addr: SocketAddr,
    ) -> Result<bool, StoreError> {
        let k = TorrentKeys::of(ih);
        let m = keys::member(addr);
        let (seed, leech): (Option<f64>, Option<f64>) = redis::pipe()
            .zscore(&k.seeders, &m)
            .zscore(&k.leechers, &m)
            .query_async(&mut self.conn())
            .await?;
        let dl = f64::from(self.deadline(now));
        Ok(seed.into_iter().chain(leech).any(|seen| seen >= dl))
    }

    /// The whole swarm of `ih`, `None` when the store knows nothing of it.
    pub async fn swarm(&self, now: u32, ih: &InfoHash) -> Result<Option<SwarmData>, StoreError> {
        let k = TorrentKeys::of(ih);
        let dl = self.deadline(now);
        let (seeders, leechers, recs, bits, fails, meta): (
            Members,
            Members,
            Hash,
            Hash,
            Hash,
            Hash,
        ) = redis::pipe()
            .cmd("ZRANGEBYSCORE")
            .arg(&k.seeders)
            .arg(dl)
            .arg("+inf")
            .arg("WITHSCORES")
            .cmd("ZRANGEBYSCORE")
            .arg(&k.leechers)
            .arg(dl)
            .arg("+inf")
            .arg("WITHSCORES")
            .hgetall(&k.peers)
            .hgetall(&k.bits)
            .hgetall(&k.fails)
            .hgetall(&k.meta)
            .query_async(&mut self.conn())
            .await?;
        if seeders.is_empty() && leechers.is_empty() && meta.is_empty() {
            return Ok(None);
        }
        let pieces = number::<u32>(&meta, "pieces");
        let stride = number::<usize>(&meta, "stride").unwrap_or(0);
        let mut peers = Vec::with_capacity(seeders.len() + leechers.len());
        for (m, seen) in seeders.iter().chain(&leechers) {
            let Some(addr) = keys::parse_member(m) else {
                continue;
            };
            let Some(rec) = recs.get(m).and_then(|r| PeerRecord::decode(r)) else {
                continue;
            };
            let b = bits.get(m).and_then(|b| BitsRecord::decode(b));
            let f = fails.get(m).map_or(0, |e| super::poll::parse_entry(e).1);
            let last_seen = *seen as u32;
            peers.push(record::view(
                addr,
                last_seen,
                &rec,
                b.as_ref(),
                f,
                pieces,
                stride,
            ));
        }
        // IPv4 first, as the in-memory registry lists them.
        peers.sort_by_key(|p| p.addr.is_ipv6());
        Ok(Some(SwarmData {
            name: text(&meta, "name"),
            pieces,
            stride,
            registered: text(&meta, "registered").as_deref() == Some("1"),
            seeders: seeders.len() as u32,
            leechers: leechers.len() as u32,
            completed: number(&meta, "completed").unwrap_or(0),
            peers,
        }))
    }

    /// Every torrent of the index with its counters; torrents found gone are dropped from it.
    pub async fn summaries(&self, now: u32) -> Result<Vec<Summary>, StoreError> {
        let hexes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::INDEX)
            .query_async(&mut self.conn())
            .await?;
        let dl = self.deadline(now);
        let mut out = Vec::with_capacity(hexes.len());
        let mut gone = Vec::new();
        {
            let mut hashes = Vec::with_capacity(hexes.len());
            for hex in &hexes {
                match InfoHash::from_hex(hex) {
                    Some(ih) => hashes.push(ih),
                    None => gone.push(hex.clone()),
                }
            }
            let pipes = hashes.iter().map(|ih| {
                let k = TorrentKeys::of(ih);
                let mut pipe = redis::pipe();
                pipe.zcount(&k.seeders, dl, "+inf")
                    .zcount(&k.leechers, dl, "+inf")
                    .hlen(&k.bits)
                    .hgetall(&k.meta);
                pipe
            });
            let got: Vec<(u32, u32, usize, Hash)> = self.per_torrent(pipes).await?;
            for (ih, (s, l, b, meta)) in hashes.into_iter().zip(got) {
                if s + l == 0 && meta.is_empty() {
                    gone.push(ih.to_string());
                    continue;
                }
                out.push(Summary {
                    info_hash: ih,
                    name: text(&meta, "name"),
                    pieces: number(&meta, "pieces"),
                    seeders: s,
                    leechers: l,
                    completed: number(&meta, "completed").unwrap_or(0),
                    with_bitfield: b.min((s + l) as usize),
                    has_meta: !meta.is_empty(),
                });
            }
        }
        if !gone.is_empty() {
            // Both keys share the `{index}` slot.
            redis::pipe()
                .srem(keys::INDEX, &gone)
                .ignore()
                .zrem(keys::DUE, &gone)
                .ignore()
                .exec_async(&mut self.conn())
                .await?;
        }
        Ok(out)
    }

    /// Totals over every torrent, for `/stats` and `/metrics`.
    pub async fn totals(&self, now: u32) -> Result<Totals, StoreError> {
        let mut t = Totals::default();
        for s in self.summaries(now).await? {
            t.torrents += 1;
            t.peers += (s.seeders + s.leechers) as usize;
            t.seeders += u64::from(s.seeders);
            t.leechers += u64::from(s.leechers);
            t.completed += s.completed;
            t.peers_with_bitfield += s.with_bitfield;
        }
        Ok(t)
    }
}
