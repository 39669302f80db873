//! What a swarm tells its live feed: typed changes, sent through a broadcast channel while anyone
//! listens, and the copy of one peer they carry. The registry never formats them; whoever reads
//! the channel does, outside the registry's lock.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::tracker::bits::{Arena, Have, Source};
use crate::tracker::peers::{Event, IpBytes, Peer};

/// Events buffered per swarm before a slow subscriber skips ahead (it is told it lagged).
pub const FEED_CAPACITY: usize = 1024;

/// A swarm's live feed: present only while it has subscribers.
pub type Feed = broadcast::Sender<SwarmEvent>;

/// One change to a swarm.
#[derive(Clone, Debug)]
pub enum SwarmEvent {
    /// A peer joined or changed (an announce, a poll's result): the peer as it is after the
    /// change, made at `at` (Unix seconds; ages count from there).
    Peer {
        at: u32,
        peer: Arc<PeerView<Box<[u8]>>>,
    },
    /// A peer left (it announced `stopped`).
    Left(SocketAddr),
}

/// One peer's record with its bitfield bytes and what its swarm knows of the piece count:
/// borrowed from the registry (`B = &[u8]`) or copied out of it (`B = Box<[u8]>`).
#[derive(Clone, Debug)]
pub struct PeerView<B> {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub last_seen: u32,
    pub have: Have,
    pub source: Source,
    pub have_at: u32,
    pub poll_fails: u8,
    /// The bitfield when `have` is [`Have::Some`].
    pub bits: Option<B>,
    /// The swarm's exact piece count, when known.
    pub pieces: Option<u32>,
    /// The swarm's bitfield length in bytes (0 while unknown).
    pub stride: usize,
}

impl<'a> PeerView<&'a [u8]> {
    /// `p`, with its bitfield from its swarm's `arena`.
    pub fn of<I: IpBytes>(p: &Peer<I>, arena: &'a Arena, pieces: Option<u32>) -> Self {
        PeerView {
            addr: p.addr(),
            peer_id: p.peer_id,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
            event: p.event,
            last_seen: p.last_seen,
            have: p.have,
            source: p.source,
            have_at: p.have_at,
            poll_fails: p.poll_fails,
            bits: (p.have == Have::Some).then(|| arena.slot(p.slot)),
            pieces,
            stride: arena.stride(),
        }
    }

    /// A copy that owns its bitfield, to send out of the registry.
    pub fn owned(&self) -> PeerView<Box<[u8]>> {
        self.map_bits(|b| Box::from(*b))
    }
}

impl<B> PeerView<B> {
    /// A view of the same peer borrowing this one's bitfield.
    pub fn borrowed(&self) -> PeerView<&[u8]>
    where
        B: AsRef<[u8]>,
    {
        self.map_bits(|b| b.as_ref())
    }

    /// A seed: nothing left to download.
    pub fn is_seed(&self) -> bool {
        self.left == 0
    }

    fn map_bits<'s, C>(&'s self, f: impl FnOnce(&'s B) -> C) -> PeerView<C> {
        PeerView {
            addr: self.addr,
            peer_id: self.peer_id,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            event: self.event,
            last_seen: self.last_seen,
            have: self.have,
            source: self.source,
            have_at: self.have_at,
            poll_fails: self.poll_fails,
            bits: self.bits.as_ref().map(f),
            pieces: self.pieces,
            stride: self.stride,
        }
    }
}

/// Send `event()` to `feed` when it has subscribers; drop the feed when it has none (`event` is
/// then never built).
pub(super) fn emit(feed: &mut Option<Feed>, event: impl FnOnce() -> SwarmEvent) {
    if let Some(tx) = feed {
        if tx.receiver_count() == 0 {
            *feed = None;
        } else {
            let _ = tx.send(event());
        }
    }
}

/// The event for the peer at `p` after a change made at `now`.
pub(super) fn peer_changed<I: IpBytes>(
    p: &Peer<I>,
    arena: &Arena,
    pieces: Option<u32>,
    now: u32,
) -> SwarmEvent {
    SwarmEvent::Peer {
        at: now,
        peer: Arc::new(PeerView::of(p, arena, pieces).owned()),
    }
}
