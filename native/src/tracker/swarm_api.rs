//! The swarm API's JSON: `/swarm/<hex>`, `/swarms`, `/stats`, and one peer as the live feed
//! shows it. Serialized straight from the registry's data through borrowing `Serialize` views
//! (no intermediate JSON values), because a swarm of thousands of peers with 10,000-piece
//! bitfields is large.
//!
//! Bitfields are base64url of the raw BEP 3 bytes, the same encoding as the `bitfield=`
//! self-report parameter.

use std::fmt;

use enjambre_core::InfoHash;
use serde::{Serialize, Serializer};

use super::bits::Have;
use super::metrics::{Metrics, Totals};
use super::proto::b64url;
use super::registry::{PeerView, Registry, Swarm};

/// Serialize with `Display` (info-hashes as hex).
fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Bytes as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The first bytes of a peer id as text, `.` for what is not printable ASCII (`-qB4650-`).
struct Client<'a>(&'a [u8]);

impl fmt::Display for Client<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().take(8).try_for_each(|&b| {
            let c = if b.is_ascii_graphic() { b as char } else { '.' };
            fmt::Write::write_char(f, c)
        })
    }
}

/// One peer as the API shows it.
#[derive(Serialize)]
pub struct PeerJson<'a> {
    #[serde(serialize_with = "display")]
    addr: std::net::SocketAddr,
    #[serde(serialize_with = "display")]
    peer_id: Hex<'a>,
    #[serde(serialize_with = "display")]
    client: Client<'a>,
    uploaded: u64,
    downloaded: u64,
    left: u64,
    seed: bool,
    event: &'static str,
    last_seen_age: u32,
    have: &'static str,
    pieces_have: Option<u64>,
    /// Rounded to 4 decimals.
    progress: Option<f64>,
    bitfield: Option<String>,
    source: Option<&'static str>,
    bitfield_age: Option<u32>,
    reachable: bool,
    poll_failures: u8,
}

/// The bitfield bytes the API shows for a peer, when they can be given.
fn shown_bits(p: &PeerView<&[u8]>) -> Option<Vec<u8>> {
    match p.have {
        Have::Unknown => None,
        Have::Some => p.bits.map(<[u8]>::to_vec),
        Have::None if p.stride > 0 => Some(vec![0; p.stride]),
        Have::All => {
            let n = p.pieces? as usize;
            let mut v = vec![0xffu8; n.div_ceil(8)];
            if n % 8 != 0 {
                if let Some(last) = v.last_mut() {
                    *last = 0xffu8 << (8 - n % 8);
                }
            }
            Some(v)
        }
        Have::None => None,
    }
}

/// One peer as JSON, with its ages counted at `now`.
pub fn peer_json<'a>(p: &'a PeerView<&[u8]>, now: u32) -> PeerJson<'a> {
    let count: Option<u64> = match p.have {
        Have::Unknown => None,
        Have::None => Some(0),
        Have::All => p.pieces.map(u64::from),
        Have::Some => p
            .bits
            .map(|b| b.iter().map(|x| u64::from(x.count_ones())).sum()),
    };
    // A fraction only of an exact count: the bitfield's length alone allows up to 7 more.
    let progress = match (count, p.pieces, p.have) {
        (_, _, Have::All) => Some(1.0),
        (Some(c), Some(t), _) if t > 0 => Some(c as f64 / f64::from(t)),
        _ if p.is_seed() => Some(1.0),
        _ => None,
    };
    let known = p.have != Have::Unknown;
    PeerJson {
        addr: p.addr,
        peer_id: Hex(&p.peer_id),
        client: Client(&p.peer_id),
        uploaded: p.uploaded,
        downloaded: p.downloaded,
        left: p.left,
        seed: p.is_seed(),
        event: p.event.as_str(),
        last_seen_age: now.saturating_sub(p.last_seen),
        have: p.have.as_str(),
        pieces_have: count,
        progress: progress.map(|v| (v * 10_000.0).round() / 10_000.0),
        bitfield: shown_bits(p).map(|b| b64url(&b)),
        source: known.then(|| p.source.as_str()),
        bitfield_age: known.then(|| now.saturating_sub(p.have_at)),
        reachable: p.poll_fails == 0,
        poll_failures: p.poll_fails,
    }
}

/// A peer to serialize, with the time its ages count to.
pub struct PeerAt<'a>(pub PeerView<&'a [u8]>, pub u32);

impl Serialize for PeerAt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        peer_json(&self.0, self.1).serialize(s)
    }
}

/// Every peer of a swarm, IPv4 first.
struct Peers<'a> {
    swarm: &'a Swarm,
    now: u32,
}

impl Serialize for Peers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sw = self.swarm;
        let v4 = sw
            .v4
            .peers
            .iter()
            .map(|p| PeerView::of(p, &sw.arena, sw.pieces));
        let v6 = sw
            .v6
            .peers
            .iter()
            .map(|p| PeerView::of(p, &sw.arena, sw.pieces));
        s.collect_seq(v4.chain(v6).map(|v| PeerAt(v, self.now)))
    }
}

/// How many peers have each piece known to exist.
struct Availability<'a> {
    swarm: &'a Swarm,
    listed: usize,
}

impl Serialize for Availability<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((0..self.listed).map(|i| self.swarm.arena.availability(i)))
    }
}

/// One swarm's JSON, whatever holds it: the in-memory registry streams its peers and
/// availability (`Peers`, `Availability`), the Redis store hands lists.
#[derive(Serialize)]
pub struct SwarmJson<'a, P: Serialize, A: Serialize> {
    #[serde(serialize_with = "display")]
    pub info_hash: &'a InfoHash,
    pub name: Option<&'a str>,
    pub piece_count: Option<u32>,
    pub piece_count_range: Option<(usize, usize)>,
    pub piece_count_exact: bool,
    pub registered: bool,
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u64,
    pub peers: P,
    pub availability: A,
}

/// One swarm as JSON: counters, every peer, and per-piece availability.
///
/// `piece_count` is the exact count or `null` while unknown (a torrent the tracker was not
/// given, before a seed's bitfield told it); `piece_count_range` is then what the bitfields
/// allow, and `availability` lists only the pieces known to exist.
pub fn swarm_json(ih: &InfoHash, s: &Swarm, now: u32) -> String {
    let range = s.piece_count_range();
    let listed = range.map_or(0, |r| r.0);
    to_json(
        512 + s.len() * 256 + listed * 3,
        &SwarmJson {
            info_hash: ih,
            name: s.name.as_deref(),
            piece_count: s.pieces,
            piece_count_range: range,
            piece_count_exact: s.pieces.is_some(),
            registered: s.registered,
            seeders: s.seeders,
            leechers: s.leechers,
            completed: s.completed,
            peers: Peers { swarm: s, now },
            availability: Availability { swarm: s, listed },
        },
    )
}

#[derive(Serialize)]
struct SwarmSummary<'a> {
    #[serde(serialize_with = "display")]
    info_hash: &'a InfoHash,
    name: Option<&'a str>,
    peers: usize,
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

/// Every swarm's counters, the most populated first (ties by info-hash, so pages are stable):
/// `limit` of them from position `offset`.
pub fn swarms_json(reg: &Registry, offset: usize, limit: usize) -> String {
    let mut list: Vec<(&InfoHash, &Swarm)> = reg.swarms.iter().map(|(k, v)| (k, &**v)).collect();
    list.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let total = list.len();
    let swarms: Vec<SwarmSummary> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(ih, s)| SwarmSummary {
            info_hash: ih,
            name: s.name.as_deref(),
            peers: s.len(),
            seeders: s.seeders,
            leechers: s.leechers,
            completed: s.completed,
            piece_count: s.pieces,
        })
        .collect();
    to_json(
        64 + swarms.len() * 160,
        &SwarmsJson {
            total,
            offset,
            swarms,
        },
    )
}

#[derive(Serialize)]
struct StatsJson {
    uptime_secs: u64,
    torrents: usize,
    peers: usize,
    seeders: u64,
    leechers: u64,
    completed: u64,
    peers_with_bitfield: usize,
    registry_heap_bytes: usize,
    http_announces: u64,
    udp_announces: u64,
    http_scrapes: u64,
    udp_scrapes: u64,
    polls_ok: u64,
    polls_failed: u64,
}

/// Tracker-wide counters.
pub fn stats_json(m: &Metrics, t: &Totals, uptime_secs: u64) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    to_json(
        512,
        &StatsJson {
            uptime_secs,
            torrents: t.torrents,
            peers: t.peers,
            seeders: t.seeders,
            leechers: t.leechers,
            completed: t.completed,
            peers_with_bitfield: t.peers_with_bitfield,
            registry_heap_bytes: t.registry_heap_bytes,
            http_announces: m.http_announces.load(Relaxed),
            udp_announces: m.udp_announces.load(Relaxed),
            http_scrapes: m.http_scrapes.load(Relaxed),
            udp_scrapes: m.udp_scrapes.load(Relaxed),
            polls_ok: m.polls_ok.load(Relaxed),
            polls_failed: m.polls_failed.load(Relaxed),
        },
    )
}

/// `v` as JSON text, written into a buffer of `capacity` bytes to start with.
pub fn to_json(capacity: usize, v: &impl Serialize) -> String {
    let mut out = Vec::with_capacity(capacity);
    // Serializing these types into memory cannot fail: no maps with non-string keys, no I/O.
    let _ = serde_json::to_writer(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}
