//! The swarm API's JSON from the store's data, in the same shape as the in-memory registry's
//! (`/swarm/<hex>`, `/swarms`), so the page and scripts read either alike.

use enjambre_core::InfoHash;
use serde::Serialize;

use super::read::{Summary, SwarmData};
use crate::tracker::swarm_api::{to_json, PeerAt, SwarmJson};

/// One swarm as JSON: counters, every peer, and per-piece availability.
pub fn swarm_json(ih: &InfoHash, d: &SwarmData, now: u32) -> String {
    let range = d.piece_count_range();
    let listed = range.map_or(0, |r| r.0);
    to_json(
        512 + d.peers.len() * 256 + listed * 3,
        &SwarmJson {
            info_hash: ih,
            name: d.name.as_deref(),
            piece_count: d.pieces,
            piece_count_range: range,
            piece_count_exact: d.pieces.is_some(),
            registered: d.registered,
            seeders: d.seeders,
            leechers: d.leechers,
            completed: d.completed,
            peers: (d.peers.iter().map(|p| PeerAt(p.borrowed(), now))).collect::<Vec<_>>(),
            availability: d.availability(listed),
        },
    )
}

fn hex<S: serde::Serializer>(ih: &&InfoHash, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ih)
}

#[derive(Serialize)]
struct SwarmSummary<'a> {
    #[serde(serialize_with = "hex")]
    info_hash: &'a InfoHash,
    name: Option<&'a str>,
    peers: u32,
    seeders: u32,
    leechers: u32,
    completed: u64,
    piece_count: Option<u32>,
}

#[derive(Serialize)]
struct SwarmsJson<'a> {
    total: usize,
    offset: usize,
    swarms: Vec<SwarmSummary<'a>>,
}

/// Every swarm's counters, the most populated first (ties by info-hash): `limit` of them from
/// position `offset`.
pub fn swarms_json(list: &mut [Summary], offset: usize, limit: usize) -> String {
    let peers = |s: &Summary| s.seeders + s.leechers;
    list.sort_by(|a, b| peers(b).cmp(&peers(a)).then(a.info_hash.cmp(&b.info_hash)));
    let swarms: Vec<SwarmSummary> = list
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| SwarmSummary {
            info_hash: &s.info_hash,
            name: s.name.as_deref(),
            peers: peers(s),
            seeders: s.seeders,
            leechers: s.leechers,
            completed: s.completed,
            piece_count: s.pieces,
        })
        .collect();
    to_json(
        64 + swarms.len() * 160,
        &SwarmsJson {
            total: list.len(),
            offset,
            swarms,
        },
    )
}
