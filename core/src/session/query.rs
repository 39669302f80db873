//! What a shell may ask a session: its settings, progress, counters and resume state.

use super::output::{PeerStatus, Stats};
use super::pieces::Verify;
use super::{Config, PeerHandle, Resume, Session};
use crate::bitfield::Bitfield;
use crate::resume::ResumeError;
use crate::sha1::Sha1;
use crate::{Geometry, PieceIndex};

impl<
        H: Sha1,
        P: AsRef<[u8]>,
        const PEERS: usize,
        const BYTES: usize,
        const PARTIAL: usize,
        const RX: usize,
        const Q: usize,
        const PICK: usize,
        const KNOWN: usize,
        const OPS: usize,
        const EVENTS: usize,
        const HAVES: usize,
        const BANS: usize,
        const PEX: usize,
    > Session<H, P, PEERS, BYTES, PARTIAL, RX, Q, PICK, KNOWN, OPS, EVENTS, HAVES, BANS, PEX>
{
    /// Return the configuration the session runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Return the verified pieces.
    pub fn have(&self) -> &Bitfield<BYTES> {
        &self.have
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have_count == self.geometry.piece_count()
    }

    /// A download with no peer to download from: worth asking the tracker sooner.
    pub(crate) fn peerless(&self) -> bool {
        !self.is_done() && !self.peers.iter().any(|p| p.is_active())
    }

    /// Return the torrent's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Return how many connected peers have `piece`, as the picker counts them.
    pub fn availability(&self, piece: PieceIndex) -> u16 {
        self.picker.availability(piece.get())
    }

    /// Return the counters.
    pub fn stats(&self) -> Stats {
        let active = self.peers.iter().filter(|p| p.is_active());
        Stats {
            pieces_have: self.have_count,
            piece_count: self.geometry.piece_count(),
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            left: self.left(),
            wanted_left: self.wanted_left,
            peers: self.peers.iter().filter(|p| p.is_active()).count(),
            wasted: self.waste.total(),
            waste: self.waste,
            stalls: self.stalls,
            in_progress: self.partials.len(),
            verifying: self
                .partials
                .iter()
                .filter(|p| p.verify != Verify::No)
                .count(),
            with_holes: self
                .partials
                .iter()
                .filter(|p| p.next_hole().is_some())
                .count(),
            requests: self.peers.iter().map(|p| p.requests.len()).sum(),
            serving_us: active
                .filter(|p| !p.peer_choking && p.am_interested)
                .count(),
            unchoked: self.unchoked_count(),
        }
    }

    /// Return every connected peer's state (handshake done), for status displays.
    pub fn peer_statuses(&self) -> impl Iterator<Item = PeerStatus> + '_ {
        self.peers
            .iter()
            .filter(|p| p.is_active())
            .map(|p| PeerStatus {
                addr: p.addr,
                outbound: p.outbound,
                pieces: p.has.count_ones(),
                am_choking: p.am_choking,
                am_interested: p.am_interested,
                peer_choking: p.peer_choking,
                peer_interested: p.peer_interested,
                optimistic: p.optimistic,
                down_rate: p.meter.rate(),
                up_rate: p.up_meter.rate(),
                requests: p.requests.len(),
                max_requests: p.max_requests,
                uploads_queued: p.incoming.len(),
            })
    }

    /// Whether the shell may send this peer's messages ahead of blocks handed to it earlier
    /// (never one message inside another, never messages out of their own order): true once
    /// both sides speak the Fast extension (BEP 6), where a choke rejects nothing by itself,
    /// so every block sent after it still answers a request. A request or a have that waits
    /// behind a slow uplink's queued blocks stalls what we download from that peer.
    pub fn messages_may_pass_blocks(&self, peer: PeerHandle) -> bool {
        self.slot(peer).is_some_and(|i| self.peers[i].fast)
    }

    /// Return the bytes of `piece` confirmed on storage, as sorted `[start, end)` ranges;
    /// the whole piece when verified, nothing when not started.
    pub fn piece_ranges(&self, piece: PieceIndex) -> impl Iterator<Item = (u32, u32)> + '_ {
        let full = self
            .have
            .get(piece.get())
            .then(|| (0, self.geometry.piece_len(piece)));
        let partial = self.partials.iter().find(|p| p.piece == piece.get());
        full.into_iter()
            .chain(partial.into_iter().flat_map(|p| p.written.ranges()))
    }

    /// Serialise the resume state (verified pieces, confirmed partial ranges, counters).
    pub fn encode_resume<'b>(&self, out: &'b mut [u8]) -> Result<&'b [u8], ResumeError> {
        let mut state = Resume::<BYTES, PARTIAL>::new(self.info_hash, self.geometry.piece_count())
            .map_err(|_| ResumeError::Capacity)?;
        state.have = self.have.clone();
        state.uploaded = self.uploaded;
        state.downloaded = self.downloaded;
        for p in self.partials.iter() {
            if p.written.received() > 0 {
                state
                    .partial
                    .push(p.written.clone())
                    .map_err(|_| ResumeError::Capacity)?;
            }
        }
        state.encode(out)
    }
}
