//! The registry (R1): per info-hash swarms, per peer address, counters, bitfields, expiry, caps.
//!
//! Plain data behind one mutex: every method is synchronous and bounded. It never does I/O and
//! knows nothing of JSON or HTTP; the servers, the poller and the snapshot call into it, and a
//! swarm's live feed receives its changes as typed [`SwarmEvent`]s.

mod announce;
mod event;
mod expiry;
mod poll;
mod swarm;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use enjambre_core::InfoHash;
use hashbrown::{DefaultHashBuilder, HashMap};

use super::config::Limits;
use super::peers::Event;

pub use announce::Asker;
pub use event::{PeerView, SwarmEvent};
pub use swarm::Swarm;

/// An announce, decoded and with the address the tracker will give out for it.
#[derive(Clone, Copy, Debug)]
pub struct AnnounceIn<'a> {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
    /// Self-reported bitfield, raw bytes (already base64url-decoded).
    pub bitfield: Option<&'a [u8]>,
}

/// Which address families a response may carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Families {
    /// Only the asker's own (UDP: the packet format fixes it).
    Same,
    /// Both (HTTP: `peers` and `peers6`).
    Both,
}

/// What an announce answers besides the peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceOut {
    pub complete: u32,
    pub incomplete: u32,
    pub warning: Option<&'static str>,
}

/// Why an announce or a new swarm was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// --allow-only-registered and this info-hash is not registered.
    Unregistered,
    /// --max-torrents reached.
    TooManyTorrents,
}

impl Refusal {
    /// The failure reason sent to the client.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unregistered => "torrent not registered with this tracker",
            Refusal::TooManyTorrents => "tracker full: too many torrents",
        }
    }
}

/// A peer the poller should dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollTarget {
    pub info_hash: InfoHash,
    pub addr: SocketAddr,
    /// The swarm's bitfield length in bytes (0 = unknown), to place `Have`s after a silence.
    pub stride: usize,
}

/// Counters of refusals, for /metrics and the logs.
#[derive(Default, Clone, Copy, Debug)]
pub struct Refused {
    pub unregistered: u64,
    pub torrents_cap: u64,
    pub peers_cap: u64,
    pub bad_bitfield: u64,
}

/// All swarms.
pub struct Registry {
    /// Boxed: a map slot is then 28 bytes, however much of the table is empty.
    pub swarms: HashMap<InfoHash, Box<Swarm>, DefaultHashBuilder>,
    pub hasher: DefaultHashBuilder,
    pub limits: Limits,
    pub peer_total: usize,
    pub refused: Refused,
    rng: u64,
    scratch: Vec<u8>,
    /// When a cap was last reported at `warn` level (refusals are logged at most every 10 s).
    last_cap_warning: u32,
}

/// Unix seconds now, as the registry stores time.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: Limits) -> Self {
        Registry {
            swarms: HashMap::default(),
            hasher: DefaultHashBuilder::default(),
            limits,
            peer_total: 0,
            refused: Refused::default(),
            rng: rand::random::<u64>() | 1,
            scratch: Vec::new(),
            last_cap_warning: 0,
        }
    }

    /// Register a torrent: its name and exact piece count.
    pub fn register(&mut self, info_hash: InfoHash, name: &str, pieces: u32) {
        let s = self
            .swarms
            .entry(info_hash)
            .or_insert_with(|| Box::new(Swarm::new()));
        s.name = Some(name.into());
        s.registered = true;
        if s.pieces.is_none() && s.arena.stride() == (pieces as usize).div_ceil(8)
            || s.arena.stride() == 0
        {
            s.pieces = Some(pieces);
            s.arena.set_stride((pieces as usize).div_ceil(8));
        }
    }

    /// The swarm for `info_hash`, created if the caps and policy allow.
    pub fn swarm_mut(&mut self, info_hash: InfoHash) -> Result<&mut Swarm, Refusal> {
        if !self.swarms.contains_key(&info_hash) {
            if self.limits.allow_only_registered {
                self.refused.unregistered += 1;
                return Err(Refusal::Unregistered);
            }
            if self.swarms.len() >= self.limits.max_torrents {
                self.refused.torrents_cap += 1;
                self.warn_caps();
                return Err(Refusal::TooManyTorrents);
            }
            self.swarms.insert(info_hash, Box::new(Swarm::new()));
        }
        self.swarms
            .get_mut(&info_hash)
            .map(|b| &mut **b)
            .ok_or(Refusal::TooManyTorrents)
    }

    /// Report refusals at the caps, at most every 10 seconds.
    fn warn_caps(&mut self) {
        let now = unix_now();
        if now.saturating_sub(self.last_cap_warning) >= 10 {
            self.last_cap_warning = now;
            let r = self.refused;
            tracing::warn!(
                torrents = self.swarms.len(),
                peers = self.peer_total,
                refused_torrents = r.torrents_cap,
                refused_peers = r.peers_cap,
                max_torrents = self.limits.max_torrents,
                max_peers = self.limits.max_peers,
                max_peers_per_torrent = self.limits.max_peers_per_torrent,
                "registry at its caps: new torrents are refused (\"tracker full\"), new peers are served but not stored"
            );
        }
    }

    /// (seeders, completed, leechers) of a swarm, zeros when unknown.
    pub fn scrape(&self, info_hash: &InfoHash) -> (u32, u64, u32) {
        self.swarms
            .get(info_hash)
            .map(|s| (s.seeders, s.completed, s.leechers))
            .unwrap_or((0, 0, 0))
    }

    /// Whether the swarm of `info_hash` currently lists a peer at `addr`.
    pub fn lists(&self, info_hash: &InfoHash, addr: SocketAddr) -> bool {
        let Some(s) = self.swarms.get(info_hash) else {
            return false;
        };
        match swarm::fam(addr.ip()) {
            swarm::FamKey::V4(k) => s.v4.find(&self.hasher, k, addr.port()).is_some(),
            swarm::FamKey::V6(k) => s.v6.find(&self.hasher, k, addr.port()).is_some(),
        }
    }
}
