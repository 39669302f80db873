//! One torrent's swarm, and the borrow of its peer sets apart from the rest that every update
//! works through.

use std::net::IpAddr;

use tokio::sync::broadcast;

use super::event::{Feed, SwarmEvent, FEED_CAPACITY};
use crate::tracker::bits::{Arena, NewBits, Source};
use crate::tracker::peers::{IpBytes, Peer, PeerSet};

/// One torrent's swarm.
pub struct Swarm {
    /// Name from a registered .torrent.
    pub name: Option<Box<str>>,
    /// Exact piece count, from a registered .torrent or a seed's bitfield.
    pub pieces: Option<u32>,
    /// Registered with --torrent.
    pub registered: bool,
    pub v4: PeerSet<[u8; 4]>,
    pub v6: PeerSet<[u8; 16]>,
    pub arena: Arena,
    pub seeders: u32,
    pub leechers: u32,
    /// Completed downloads, counted once per peer that finished.
    pub completed: u64,
    /// The live feed, while anyone listens.
    pub feed: Option<Feed>,
}

impl Swarm {
    pub(super) fn new() -> Self {
        Swarm {
            name: None,
            pieces: None,
            registered: false,
            v4: PeerSet::default(),
            v6: PeerSet::default(),
            arena: Arena::default(),
            seeders: 0,
            leechers: 0,
            completed: 0,
            feed: None,
        }
    }

    /// Peers in both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The fewest and most pieces this torrent can have: both the exact count when known;
    /// else what the bitfields' byte length allows (a count of `8 × len − 7` to `8 × len`),
    /// raised to the highest piece a peer has; `None` before any bitfield is seen.
    pub fn piece_count_range(&self) -> Option<(usize, usize)> {
        if let Some(n) = self.pieces {
            return Some((n as usize, n as usize));
        }
        let most = self.arena.stride() * 8;
        if most == 0 {
            return None;
        }
        let least = (most - 7).max(self.arena.highest_piece().map_or(0, |i| i + 1));
        Some((least, most))
    }

    /// Subscribe to the live feed, opening it if nobody listens yet.
    pub fn subscribe(&mut self) -> broadcast::Receiver<SwarmEvent> {
        self.feed
            .get_or_insert_with(|| broadcast::channel(FEED_CAPACITY).0)
            .subscribe()
    }
}

/// An address's family and key bytes (IPv4-mapped IPv6 counts as IPv4).
pub(super) enum FamKey {
    V4([u8; 4]),
    V6([u8; 16]),
}

pub(super) fn fam(ip: IpAddr) -> FamKey {
    match ip.to_canonical() {
        IpAddr::V4(v4) => FamKey::V4(v4.octets()),
        IpAddr::V6(v6) => FamKey::V6(v6.octets()),
    }
}

/// Run `$body` with `$set` the asker's family, `$other` the other family and `$parts` the rest.
macro_rules! with_family {
    ($swarm:expr, $ip:expr, |$set:ident, $other:ident, $parts:ident, $key:ident| $body:expr) => {{
        use $crate::tracker::registry::swarm::{fam, split, FamKey};
        let (v4, v6, mut $parts) = split($swarm);
        match fam($ip) {
            FamKey::V4($key) => {
                let ($set, $other) = (v4, v6);
                $body
            }
            FamKey::V6($key) => {
                let ($set, $other) = (v6, v4);
                $body
            }
        }
    }};
}
pub(super) use with_family;

/// The parts of a swarm other than its peer sets, borrowed alongside one set.
pub(super) struct Parts<'s> {
    pub(super) arena: &'s mut Arena,
    pub(super) pieces: &'s mut Option<u32>,
    pub(super) seeders: &'s mut u32,
    pub(super) leechers: &'s mut u32,
    pub(super) completed: &'s mut u64,
    pub(super) feed: &'s mut Option<Feed>,
}

impl Parts<'_> {
    pub(super) fn piece_count(&self) -> usize {
        self.pieces
            .map(|n| n as usize)
            .unwrap_or(self.arena.stride() * 8)
    }

    /// Replace what `p` is known to have with `bits`, learned from `source` at `now`.
    pub(super) fn learn<I>(&mut self, p: &mut Peer<I>, bits: &NewBits, source: Source, now: u32) {
        self.arena.release(p.have, p.slot);
        (p.have, p.slot) = self.arena.store(bits, *self.pieces);
        p.source = source;
        p.have_at = now;
    }

    /// Take a removed peer out of the counters and the arena.
    pub(super) fn forget<I: IpBytes>(&mut self, p: &Peer<I>) {
        self.arena.release(p.have, p.slot);
        let count = if p.is_seed() {
            &mut *self.seeders
        } else {
            &mut *self.leechers
        };
        *count = count.saturating_sub(1);
    }
}

pub(super) type Split<'s> = (
    &'s mut PeerSet<[u8; 4]>,
    &'s mut PeerSet<[u8; 16]>,
    Parts<'s>,
);

pub(super) fn split(s: &mut Swarm) -> Split<'_> {
    let parts = Parts {
        arena: &mut s.arena,
        pieces: &mut s.pieces,
        seeders: &mut s.seeders,
        leechers: &mut s.leechers,
        completed: &mut s.completed,
        feed: &mut s.feed,
    };
    (&mut s.v4, &mut s.v6, parts)
}

/// A seed's own bitfield has every bit set: when the piece count is not known yet, its set
/// bits are the count (if they fill the bitfield's length as a count must).
pub(super) fn learn_count_from_seed(
    pieces: &mut Option<u32>,
    arena: &mut Arena,
    bits: &[u8],
    max_pieces: u32,
) {
    if pieces.is_some() {
        return;
    }
    let ones: u32 = bits.iter().map(|x| x.count_ones()).sum();
    if ones > 0
        && (ones as usize).div_ceil(8) == bits.len()
        && arena.check(bits, Some(ones), max_pieces).is_ok()
    {
        *pieces = Some(ones);
        arena.set_stride(bits.len());
    }
}
