//! The pieces the shell wants: a selection of files narrows the download to the pieces that
//! hold their bytes ([`crate::select`]). Only what to request changes: the pieces we announce
//! are still exactly the verified ones, and the `completed` announce still waits for all.

use super::output::{Event, SessionError};
use super::Session;
use crate::bitfield::Bitfield;
use crate::sha1::Sha1;

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
    /// Download only the pieces set in `wanted` (one bit per piece of the started torrent);
    /// every piece is wanted until this is called. Pieces in progress that are no longer
    /// wanted get no more requests. When every wanted piece is already verified,
    /// [`Event::Completed`] follows.
    pub fn set_wanted(&mut self, wanted: &Bitfield<BYTES>) -> Result<(), SessionError> {
        if wanted.len() != self.geometry.piece_count() {
            return Err(SessionError::BadWanted);
        }
        let was_done = self.is_done();
        self.wanted.clone_from(wanted);
        self.recount_wanted();
        for i in 0..PEERS {
            if self.peers[i].is_active() {
                self.update_interest(i);
            }
        }
        if self.is_done() && !was_done {
            self.push_event(Event::Completed);
        }
        Ok(())
    }

    /// Return the pieces to download.
    pub fn wanted(&self) -> &Bitfield<BYTES> {
        &self.wanted
    }

    /// Whether every wanted piece is verified (with nothing narrowed: [`Self::is_complete`]).
    pub fn is_done(&self) -> bool {
        self.wanted_missing == 0
    }

    /// Count the wanted pieces not yet verified, and their bytes.
    pub(crate) fn recount_wanted(&mut self) {
        let (mut missing, mut left) = (0u32, 0u64);
        for i in self.wanted.iter_ones() {
            if let (false, Some(p)) = (self.have.get(i), self.geometry.piece(i)) {
                missing += 1;
                left += u64::from(self.geometry.piece_len(p));
            }
        }
        (self.wanted_missing, self.wanted_left) = (missing, left);
    }

    /// `piece` of `len` bytes was just verified: return true when that finished the wanted set.
    pub(crate) fn wanted_verified(&mut self, piece: u32, len: u64) -> bool {
        if !self.wanted.get(piece) {
            return false;
        }
        self.wanted_missing = self.wanted_missing.saturating_sub(1);
        self.wanted_left = self.wanted_left.saturating_sub(len);
        self.wanted_missing == 0
    }
}
