//! Who we upload to (tit-for-tat with one optimistic slot) and the per-peer timers.

use super::output::CloseReason;
use super::peer::{Control, Peer};
use super::Session;
use crate::geometry::BLOCK_LEN;
use crate::sha1::Sha1;
use crate::{Duration, Instant};

/// The optimistic unchoke moves every this many rechoke rounds.
const OPTIMISTIC_ROUNDS: u32 = 3;

/// A peer owing us blocks is never called stalled before this long without payload: TCP's
/// retransmission timeouts on a lossy link are silent for a second and more, and a stall
/// called too soon cancels blocks already on their way, which then arrive twice (in the flash
/// crowd of the laboratory: 1 s → 3 s halved the duplicates, 33 → 10 MiB, and finished sooner).
const STALL_FLOOR: Duration = Duration::from_secs(3);

/// Nor before the time it takes to send this many blocks at its measured rate.
const STALL_BLOCKS: u64 = 8;

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
    /// A peer became interested: unchoke it at once if a slot is free (no 10 s wait) and we
    /// have something to give (a piece, or bytes of unfinished ones we tell of).
    pub(crate) fn unchoke_if_room(&mut self, i: usize) {
        if self.unchoked_count() < self.config.unchoke_slots.max(1)
            && (self.have_count > 0 || self.tells_partial_bytes())
        {
            self.peers[i].am_choking = false;
        }
    }

    /// Free upload slots go at once (not at the next rechoke) to the choked interested peers
    /// with the fewest pieces: after we verified a piece (a peer may have become interested
    /// before we had anything to give: in the laboratory's flash crowd, half the leeches
    /// waited 10 s) and when a peer gives its slot up.
    pub(crate) fn fill_free_slots(&mut self) {
        for _ in self.unchoked_count()..self.config.unchoke_slots.max(1) {
            let waiting = (0..PEERS).filter(|&j| {
                let p = &self.peers[j];
                p.is_active() && p.peer_interested && p.am_choking
            });
            let Some(j) = waiting.min_by_key(|&j| self.peers[j].has.count_ones()) else {
                break;
            };
            self.peers[j].am_choking = false;
        }
    }

    /// Whether our partial-piece adverts offer bytes (ranges of pieces not yet verified).
    fn tells_partial_bytes(&self) -> bool {
        self.partial_on() && self.partials.iter().any(|p| p.written.received() > 0)
    }

    /// Connected peers we do not choke.
    pub(crate) fn unchoked_count(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| p.is_active() && !p.am_choking)
            .count()
    }

    /// Peer `i` no longer wants to download: if it held an upload slot, the slot is handed on
    /// at once ([`Self::fill_free_slots`]).
    pub(crate) fn hand_on_slot(&mut self, i: usize) {
        if self.peers[i].am_choking {
            return;
        }
        self.peers[i].am_choking = true;
        self.choked(i);
        self.fill_free_slots();
    }

    /// Rank interested peers by what they gave us (tit-for-tat) or, seeding, by how long ago
    /// they last held a slot (the slots go round, so what we seed spreads over the swarm
    /// instead of staying with the first peers that asked; ranking by how little a peer took
    /// instead gave the slots again and again to the peers that take slowly); unchoke the best
    /// `unchoke_slots - 1` plus one optimistic pick, choke the rest. Ties go to a different
    /// peer each round.
    pub(crate) fn rechoke(&mut self, now: Instant) {
        self.rechoke_round = self.rechoke_round.wrapping_add(1);
        let seeding = self.is_complete();
        let round = self.rechoke_round;
        for p in self.peers.iter_mut() {
            p.down_rate = p.down_round;
            p.up_rate = p.up_round;
            p.down_round = 0;
            p.up_round = 0;
            if p.is_active() && !p.am_choking {
                p.served_round = round;
            }
        }
        let slots = self.config.unchoke_slots.max(1);
        let mut chosen = [false; PEERS];
        let start = (self.random() % PEERS.max(1) as u64) as usize;
        for _ in 0..slots.saturating_sub(1) {
            let mut best: Option<(usize, u64)> = None;
            for j in (0..PEERS).map(|k| (start + k) % PEERS) {
                let p = &self.peers[j];
                if chosen[j] || !p.is_active() || !p.peer_interested {
                    continue;
                }
                let score = if seeding {
                    u64::from(u32::MAX - p.served_round)
                } else {
                    p.down_rate
                };
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((j, score));
                }
            }
            match best {
                Some((j, _)) => chosen[j] = true,
                None => break,
            }
        }
        // Optimistic slot: keep the current one for a few rounds, then draw a new one.
        let keep = self.rechoke_round % OPTIMISTIC_ROUNDS != 0;
        let current = self
            .peers
            .iter()
            .position(|p| p.optimistic && p.is_active() && p.peer_interested)
            .filter(|&j| keep && !chosen[j]);
        let optimistic = match current {
            Some(j) => Some(j),
            None => {
                let n = (0..PEERS)
                    .filter(|&j| {
                        !chosen[j] && self.peers[j].is_active() && self.peers[j].peer_interested
                    })
                    .count();
                if n == 0 {
                    None
                } else {
                    let mut pick = (self.random() % n as u64) as usize;
                    (0..PEERS).find(|&j| {
                        let eligible = !chosen[j]
                            && self.peers[j].is_active()
                            && self.peers[j].peer_interested;
                        if eligible {
                            if pick == 0 {
                                return true;
                            }
                            pick -= 1;
                        }
                        false
                    })
                }
            }
        };
        for (j, &picked) in chosen.iter().enumerate() {
            let p = &mut self.peers[j];
            p.optimistic = Some(j) == optimistic;
            if !p.is_active() {
                continue;
            }
            let unchoke = picked || p.optimistic;
            if unchoke == p.am_choking {
                p.am_choking = !unchoke;
                if p.am_choking {
                    self.choked(j);
                }
            }
        }
        // Seeds that are connected to a seed have nothing to do.
        if seeding {
            for j in 0..PEERS {
                if self.peers[j].is_active() && self.peers[j].has.is_full() {
                    self.close(now, j, CloseReason::NotUseful);
                }
            }
        }
    }

    /// We choked peer `j`: its queued requests will not be served.
    fn choked(&mut self, j: usize) {
        let p = &mut self.peers[j];
        while let Some(b) = p.incoming.pop_front() {
            if p.fast {
                let c = Control::Reject {
                    piece: b.piece.get(),
                    begin: b.offset,
                    len: b.len,
                };
                let _ = p.control.push_back(c);
            }
        }
    }

    /// Close silent peers, and idle ones while slots are short; take back requests from peers
    /// that stopped sending payload.
    pub(crate) fn check_timeouts(&mut self, now: Instant) {
        self.keep_room(now);
        for j in 0..PEERS {
            let p = &self.peers[j];
            if !p.is_live() {
                continue;
            }
            if now >= p.last_rx + self.peer_timeout(p) {
                self.close(now, j, CloseReason::Timeout);
                continue;
            }
            // Owing blocks: a request sent, or a block begun that we keep (a late reply has
            // no request left, yet its rest is claimed until it comes). A session that never
            // downloads (`PARTIAL == 0`, the board) is owed nothing.
            let waiting = PARTIAL > 0
                && (p.requests.iter().any(|r| r.sent) || p.inbound.is_some_and(|b| b.wanted));
            if waiting && now >= p.last_piece_rx + self.stall_after(p) {
                // Stalled: its blocks go to others at once (cancelled here, so late replies
                // stop), each continuing from the last byte written; it is asked for nothing
                // until it sends again or, as long again later, one block to prove itself.
                let p = &mut self.peers[j];
                for r in p.requests.iter().filter(|r| r.sent) {
                    let c = Control::Cancel {
                        piece: r.piece,
                        begin: r.begin,
                        len: r.len,
                    };
                    let _ = p.control.push_back(c);
                }
                // The block it was cut in the middle of is free again from its next byte.
                self.unwant_inbound(j);
                self.drop_requests(j);
                let p = &mut self.peers[j];
                p.max_requests = 0;
                p.last_piece_rx = now;
                self.stalls = self.stalls.saturating_add(1);
            } else if !waiting
                && p.max_requests == 0
                && now >= p.last_piece_rx + self.stall_after(p)
            {
                self.peers[j].max_requests = 1;
            }
        }
    }

    /// How long a peer with requests in flight may send no payload before it counts as
    /// stalled: [`STALL_BLOCKS`] at its measured rate, at least [`STALL_FLOOR`], at most
    /// `request_timeout` (also the wait before its first byte, its rate unknown).
    pub(crate) fn stall_after(&self, p: &Peer<BYTES, RX, Q>) -> Duration {
        let timeout = self.config.request_timeout;
        let rate = p.meter.rate();
        if rate == 0 {
            return timeout;
        }
        let blocks = Duration::from_millis(STALL_BLOCKS * BLOCK_LEN as u64 * 1000 / rate);
        blocks.max(STALL_FLOOR).min(timeout)
    }

    /// Peer `j`'s payload rate, or 0 while it owes us blocks and sent nothing for
    /// [`STALL_FLOOR`].
    pub(crate) fn delivering_rate(&self, j: usize) -> u64 {
        let p = &self.peers[j];
        let silent = self.now.saturating_since(p.last_piece_rx) >= STALL_FLOOR;
        if silent && p.requests.iter().any(|r| r.sent) {
            0
        } else {
            p.meter.rate()
        }
    }
}
