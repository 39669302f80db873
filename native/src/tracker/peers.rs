//! One address family's peers of one swarm: a dense `Vec` (for random sampling) indexed by a
//! hash table of `u32` positions keyed by (ip, port).

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hashbrown::HashTable;

use super::bits::{Have, Source};

/// The IP bytes of one address family, stored inline in every peer.
pub trait IpBytes: Copy + Eq + std::hash::Hash + std::fmt::Debug {
    /// As a std address.
    fn ip(self) -> IpAddr;
    /// The raw bytes.
    fn octets(&self) -> &[u8];
}

impl IpBytes for [u8; 4] {
    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn octets(&self) -> &[u8] {
        self
    }
}

impl IpBytes for [u8; 16] {
    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn octets(&self) -> &[u8] {
        self
    }
}

/// What the last announce said.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Event {
    /// A regular re-announce.
    None = 0,
    /// The client started.
    Started = 1,
    /// The client finished downloading.
    Completed = 2,
    /// The client stopped.
    Stopped = 3,
}

impl Event {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::None => "none",
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        }
    }

    /// From the snapshot byte.
    pub fn from_u8(v: u8) -> Event {
        match v {
            1 => Event::Started,
            2 => Event::Completed,
            3 => Event::Stopped,
            _ => Event::None,
        }
    }
}

/// Flag: this peer's completion was already counted.
pub const COUNTED: u8 = 1;

/// One registered peer (72 bytes for IPv4, 88 for IPv6, plus its bitfield slot if any).
#[derive(Clone, Debug)]
pub struct Peer<I> {
    pub ip: I,
    pub port: u16,
    pub event: Event,
    pub have: Have,
    pub source: Source,
    /// Consecutive failed polls (0 = reachable or not polled yet).
    pub poll_fails: u8,
    pub flags: u8,
    pub peer_id: [u8; 20],
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    /// Unix seconds of the last announce.
    pub last_seen: u32,
    /// Unix seconds when `have` was learned.
    pub have_at: u32,
    /// Unix seconds when the poller should next dial this peer.
    pub next_poll: u32,
    /// Arena slot when `have == Have::Some`.
    pub slot: u32,
}

impl<I: IpBytes> Peer<I> {
    /// The peer's listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.ip(), self.port)
    }

    /// A seed: nothing left to download.
    pub fn is_seed(&self) -> bool {
        self.left == 0
    }
}

/// Sets up to this size are searched linearly and carry no index.
const SMALL: usize = 8;

/// The peers of one family: dense storage, plus an index once the set is not small.
pub struct PeerSet<I> {
    pub peers: Vec<Peer<I>>,
    index: Option<Box<HashTable<u32>>>,
}

impl<I> Default for PeerSet<I> {
    fn default() -> Self {
        PeerSet {
            peers: Vec::new(),
            index: None,
        }
    }
}

fn key_hash<I: IpBytes, S: BuildHasher>(s: &S, ip: I, port: u16) -> u64 {
    s.hash_one((ip, port))
}

impl<I: IpBytes> PeerSet<I> {
    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// The position of the peer at `ip:port`.
    pub fn find<S: BuildHasher>(&self, s: &S, ip: I, port: u16) -> Option<usize> {
        match &self.index {
            None => self.peers.iter().position(|p| p.ip == ip && p.port == port),
            Some(ix) => {
                let h = key_hash(s, ip, port);
                ix.find(h, |&i| {
                    self.peers
                        .get(i as usize)
                        .is_some_and(|p| p.ip == ip && p.port == port)
                })
                .map(|&i| i as usize)
            }
        }
    }

    /// Append a peer not yet present; returns its position.
    pub fn insert<S: BuildHasher>(&mut self, s: &S, peer: Peer<I>) -> usize {
        let i = self.peers.len();
        if self.peers.len() == self.peers.capacity() {
            // Grow one at a time while small: most swarms have one or two peers.
            let more = if i < SMALL { 1 } else { i };
            self.peers.reserve_exact(more);
        }
        self.peers.push(peer);
        let peers = &self.peers;
        let rehash = |&j: &u32| {
            let p = &peers[j as usize];
            key_hash(s, p.ip, p.port)
        };
        match &mut self.index {
            Some(ix) => {
                let p = &peers[i];
                ix.insert_unique(key_hash(s, p.ip, p.port), i as u32, rehash);
            }
            None if peers.len() > SMALL => {
                let mut ix = HashTable::with_capacity(peers.len() * 2);
                for (j, p) in peers.iter().enumerate() {
                    ix.insert_unique(key_hash(s, p.ip, p.port), j as u32, rehash);
                }
                self.index = Some(Box::new(ix));
            }
            None => {}
        }
        i
    }

    /// Remove the peer at position `i` (the last peer moves into its place).
    pub fn remove<S: BuildHasher>(&mut self, s: &S, i: usize) -> Peer<I> {
        let last = self.peers.len() - 1;
        if let Some(ix) = &mut self.index {
            let (ip, port) = (self.peers[i].ip, self.peers[i].port);
            if let Ok(e) = ix.find_entry(key_hash(s, ip, port), |&j| j as usize == i) {
                e.remove();
            }
            if i != last {
                let (lip, lport) = (self.peers[last].ip, self.peers[last].port);
                if let Some(slot) = ix.find_mut(key_hash(s, lip, lport), |&j| j as usize == last) {
                    *slot = i as u32;
                }
            }
        }
        let peer = self.peers.swap_remove(i);
        if self.peers.is_empty() {
            self.peers = Vec::new();
            self.index = None;
        } else if self.peers.capacity() > 64 && self.peers.len() * 4 < self.peers.capacity() {
            self.peers.shrink_to(self.peers.len() * 2);
            if let Some(ix) = &mut self.index {
                let peers = &self.peers;
                ix.shrink_to(peers.len(), |&j| {
                    let p = &peers[j as usize];
                    key_hash(s, p.ip, p.port)
                });
            }
        }
        peer
    }

    /// Heap bytes held (peers and index).
    pub fn heap_bytes(&self) -> usize {
        self.peers.capacity() * std::mem::size_of::<Peer<I>>()
            + self.index.as_ref().map_or(0, |ix| {
                std::mem::size_of::<HashTable<u32>>() + ix.capacity() * (4 + 1)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4], port: u16) -> Peer<[u8; 4]> {
        Peer {
            ip,
            port,
            event: Event::Started,
            have: Have::Unknown,
            source: Source::Report,
            poll_fails: 0,
            flags: 0,
            peer_id: [port as u8; 20],
            uploaded: 0,
            downloaded: 0,
            left: 1,
            last_seen: 0,
            have_at: 0,
            next_poll: 0,
            slot: u32::MAX,
        }
    }

    #[test]
    fn peer_records_stay_small() {
        assert_eq!(std::mem::size_of::<Peer<[u8; 4]>>(), 72);
        assert!(std::mem::size_of::<Peer<[u8; 16]>>() <= 96);
    }

    #[test]
    fn insert_find_remove_keep_the_index_consistent() {
        let s = hashbrown::DefaultHashBuilder::default();
        let mut set = PeerSet::default();
        for i in 0..100u16 {
            set.insert(&s, peer([10, 0, (i >> 8) as u8, i as u8], 6881 + i));
        }
        // Remove from the front repeatedly; every remaining peer must still be found at its position.
        for k in 0..60u16 {
            let i = set
                .find(&s, [10, 0, 0, k as u8], 6881 + k)
                .expect("present");
            let p = set.remove(&s, i);
            assert_eq!(p.port, 6881 + k);
            assert_eq!(set.find(&s, [10, 0, 0, k as u8], 6881 + k), None);
            for q in 0..set.len() {
                let (ip, port) = (set.peers[q].ip, set.peers[q].port);
                assert_eq!(set.find(&s, ip, port), Some(q));
            }
        }
        assert_eq!(set.len(), 40);
    }
}
