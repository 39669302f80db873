//! Keeping peer slots for peers that do useful work: while slots are short, peers that moved no
//! block for [`Config::idle_timeout`](super::Config::idle_timeout) are closed, the longest idle
//! first, and an address whose peer was closed so does not come straight back into the room
//! kept for others.

use core::net::IpAddr;

use super::output::CloseReason;
use super::Session;
use crate::sha1::Sha1;
use crate::Instant;

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
    /// Slots kept free for newcomers when idle peers can be closed: a tenth, at least one.
    pub(crate) fn spare_slots(&self) -> usize {
        self.max_peers().div_ceil(10)
    }

    /// Free slots under the configured maximum.
    pub(crate) fn room(&self) -> usize {
        self.max_peers().saturating_sub(self.live_peers())
    }

    pub(crate) fn max_peers(&self) -> usize {
        self.config.max_peers.min(PEERS)
    }

    /// The idle peer to close first: one neither side is interested in before one that is,
    /// then the longest idle.
    fn most_idle(&self, now: Instant) -> Option<usize> {
        let idle = self.config.idle_timeout;
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_live() && now >= p.last_useful + idle)
            .min_by_key(|(_, p)| (p.am_interested || p.peer_interested, p.last_useful))
            .map(|(j, _)| j)
    }

    /// When the next peer becomes idle, if slots are short enough for that to matter.
    pub(crate) fn next_idle(&self) -> Option<Instant> {
        if self.room() >= self.spare_slots() {
            return None;
        }
        let idle = self.config.idle_timeout;
        (self.peers.iter())
            .filter(|p| p.is_live())
            .map(|p| p.last_useful + idle)
            .min()
    }

    /// Close idle peers until the spare slots are free, or no peer is idle.
    pub(crate) fn keep_room(&mut self, now: Instant) {
        while self.room() < self.spare_slots() {
            let Some(j) = self.most_idle(now) else { return };
            self.close_idle(now, j);
            self.close(now, j, CloseReason::Idle);
        }
    }

    /// Every slot is taken and a peer connects: free the slot of the most idle peer at once
    /// (its `Close` follows on the next poll). Returns whether a slot was freed.
    pub(crate) fn evict_for_newcomer(&mut self, now: Instant) -> bool {
        let Some(j) = self.most_idle(now) else {
            return false;
        };
        let peer = self.handle_of(j);
        if self.evicted.push_back(peer).is_err() {
            return false;
        }
        self.close_idle(now, j);
        self.release(now, j, CloseReason::Idle);
        true
    }

    /// Whether a peer from `ip` must wait: slots are short and it was idle a moment ago.
    pub(crate) fn cooling_down(&self, now: Instant, ip: IpAddr) -> bool {
        self.room() <= self.spare_slots()
            && (self.cooling.iter()).any(|&(at, until)| at == ip && now < until)
    }

    /// Remember the address of peer `j`, about to be closed as idle.
    fn close_idle(&mut self, now: Instant, j: usize) {
        let Some(addr) = self.peers[j].addr else {
            return;
        };
        let until = now + self.config.idle_timeout;
        let ip = addr.ip();
        self.cooling.retain(|&(at, end)| at != ip && now < end);
        if self.cooling.is_full() {
            self.cooling.remove(0);
        }
        let _ = self.cooling.push((ip, until));
    }
}
