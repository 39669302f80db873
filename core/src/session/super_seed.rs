//! Super-seeding (BEP 16): a seed that shows each peer only the pieces it wants spread.
//!
//! A seed that advertises everything lets its leeches pick freely, and several of them pick
//! the same pieces: a seed that leaves after uploading little more than one copy then leaves
//! pieces nobody got. A super-seeding seed sends a peer no bitfield (`HaveNone` under the fast
//! extension) and then a `Have` for at most [`REVEALS`] pieces, chosen among those it has not
//! shown anyone yet; once the swarm holds a whole copy, the rarest the peer lacks. When the peer reports one of them (its own `Have`: it finished it),
//! the next is shown. So the first copy the seed uploads is, piece for piece, a copy of the
//! whole file spread over the swarm; the leeches trade the rest.
//!
//! Only a complete session super-seeds, and only peers that connect while it is complete; a
//! peer that drops takes its shown pieces with it (shown to the next peer again when nobody
//! connected has them). Requests for pieces not shown are still served: a peer may have
//! learned of them elsewhere. The tracker's poller, like any peer, sees only what was shown.

use super::peer::Peer;
use super::Session;
use crate::sha1::Sha1;
use crate::wire::Message;

/// Pieces shown to one peer and not yet reported back, at most.
pub(crate) const REVEALS: usize = 2;

/// An empty slot in [`Peer::reveals`].
pub(crate) const NONE: u32 = u32::MAX;

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
    /// Whether this shape can super-seed: it counts pieces (the picker), which a shape that
    /// never downloads does not, so a board's seeder carries none of this.
    const SUPER_SEEDS: bool = PICK > 0 && PARTIAL > 0;

    /// Whether a peer whose first message is being sent now is to be super-seeded.
    pub(super) fn super_seeding(&self) -> bool {
        Self::SUPER_SEEDS && self.config.super_seed && self.is_complete()
    }

    /// Show super-seeded peer `i` pieces for its empty reveal slots, as `Have`s into `w`.
    pub(super) fn reveal(&mut self, i: usize, w: &mut super::tx::Writer<'_>) {
        if !Self::SUPER_SEEDS || !self.peers[i].super_seeded {
            return;
        }
        for slot in 0..REVEALS {
            if self.peers[i].reveals[slot] != NONE {
                continue;
            }
            let Some(piece) = self.next_reveal(i) else {
                return;
            };
            if !w.message(&Message::Have(piece)) {
                return;
            }
            self.peers[i].reveals[slot] = piece;
            self.revealed.set(piece, true);
        }
    }

    /// The piece to show peer `i` next: one shown to nobody yet (rarest first); once every
    /// piece shown was reported by some peer (the swarm holds a whole copy), the rarest it
    /// lacks. Until then never one only on its way to another peer: that would upload it twice
    /// while pieces nobody has wait. `None` when there is no such piece, for now.
    fn next_reveal(&mut self, i: usize) -> Option<u32> {
        let p = &self.peers[i];
        let shown = |x: u32| p.reveals.contains(&x);
        let revealed = &self.revealed;
        let fresh = self
            .picker
            .pick(&self.have, &p.has, &self.have, false, |x| {
                shown(x) || revealed.get(x)
            });
        if fresh.is_some() {
            return fresh;
        }
        let reported = self.reported.raw();
        let on_its_way = (revealed.raw().iter().zip(reported)).any(|(r, k)| r & !k != 0);
        if on_its_way {
            return None;
        }
        // Every piece we have may be shown: our `have` is the wanted mask.
        self.picker
            .pick(&self.have, &p.has, &self.have, false, shown)
    }

    /// Peer `i` reported `piece`: it is out in the swarm, and when it was shown to `i` that
    /// slot is free for the next.
    pub(super) fn reveal_reported(&mut self, i: usize, piece: u32) {
        if Self::SUPER_SEEDS {
            self.reported.set(piece, true);
            clear_reveal(&mut self.peers[i], piece);
        }
    }

    /// Peer `i` told its pieces (a bitfield, `HaveAll`): those are out in the swarm, and a
    /// piece shown to it that it holds already will never be reported, so its slot is free.
    pub(super) fn reveals_known(&mut self, i: usize) {
        if !Self::SUPER_SEEDS || !self.config.super_seed {
            return;
        }
        let p = &mut self.peers[i];
        for r in p.reveals.iter_mut() {
            if *r != NONE && p.has.get(*r) {
                *r = NONE;
            }
        }
        for piece in p.has.iter_ones() {
            self.reported.set(piece, true);
        }
    }

    /// Peer `i` is leaving: what it was shown and nobody connected has is to be shown again.
    pub(super) fn forget_reveals(&mut self, i: usize) {
        if !Self::SUPER_SEEDS {
            return;
        }
        for slot in 0..REVEALS {
            let piece = core::mem::replace(&mut self.peers[i].reveals[slot], NONE);
            if piece != NONE && self.picker.availability(piece) == 0 {
                self.revealed.set(piece, false);
            }
        }
        self.peers[i].super_seeded = false;
    }
}

fn clear_reveal<const BYTES: usize, const RX: usize, const Q: usize>(
    p: &mut Peer<BYTES, RX, Q>,
    piece: u32,
) {
    for r in p.reveals.iter_mut().filter(|r| **r == piece) {
        *r = NONE;
    }
}
