//! A peer's requests of us: whether each is served (a verified piece, or bytes of an
//! unverified one we hold, to a peer that offered `enjambre_partial`), rejected or dropped.

use super::output::{CloseReason, PeerMisbehaved};
use super::peer::Control;
use super::rx::MAX_PIECE_PAYLOAD;
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
    /// Return whether peer `i` offered `enjambre_partial` and `begin..begin + len` of an
    /// unverified piece lies within the bytes we have written of it (confirmed by storage,
    /// so the shell can read them back like a verified piece's).
    fn partly_servable(&self, i: usize, index: u32, begin: u32, len: u32) -> bool {
        let Some(end) = begin.checked_add(len).filter(|_| len > 0) else {
            return false;
        };
        self.partial_on()
            && self.peers[i].enjambre_partial.is_some()
            && (self.partial_index(index))
                .is_some_and(|k| self.partials[k].written.contains(begin, end))
    }

    pub(super) fn on_request(&mut self, now: Instant, i: usize, index: u32, begin: u32, len: u32) {
        let Some(block) = self
            .geometry
            .block(index, begin, len)
            .filter(|b| b.len <= MAX_PIECE_PAYLOAD)
        else {
            self.close(now, i, CloseReason::Misbehaved(PeerMisbehaved::BadRequest));
            return;
        };
        let servable = !self.peers[i].am_choking
            && (self.have.get(index) || self.partly_servable(i, index, begin, len));
        let p = &mut self.peers[i];
        if servable && p.incoming.push_back(block).is_ok() {
            p.last_useful = now;
            return;
        }
        if p.fast {
            let _ = p.control.push_back(Control::Reject {
                piece: index,
                begin,
                len,
            });
        }
        // Without the fast extension, an unservable request is silently dropped (BEP 3).
    }
}
