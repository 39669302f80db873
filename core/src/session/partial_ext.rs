//! Our `enjambre_partial` extension, sending side: each peer that offered it is told which bytes
//! of our unverified pieces we hold, right after the extended handshake and then whenever they
//! changed, at most once per [`PARTIAL_INTERVAL`].
//!
//! What a peer may then request of those bytes is checked when it asks (`on_request`); this
//! module never decides what is served.

use super::tx::Writer;
use super::Session;
use crate::sha1::Sha1;
use crate::wire::{PartialUpdate, MAX_PARTIAL_PIECES, MAX_PARTIAL_RANGES};
use crate::{Duration, Instant};

/// Our messages to one peer are at least this far apart.
pub(crate) const PARTIAL_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Our partial pieces or their written bytes changed: every peer that takes our messages is
    /// owed one.
    pub(crate) fn partials_changed(&mut self) {
        self.partial_gen = self.partial_gen.wrapping_add(1);
    }

    /// Whether we owe peer `i` a message: it takes them, and it never heard from us or our
    /// partial pieces changed since.
    fn partial_pending(&self, i: usize) -> bool {
        let p = &self.peers[i];
        self.partial_on()
            && p.enjambre_partial.is_some()
            && p.is_active()
            && p.bitfield_sent
            && p.partial_told != Some(self.partial_gen)
    }

    /// When peer `i`'s next message is due, if one is owed.
    pub(crate) fn partial_deadline(&self, i: usize) -> Option<Instant> {
        self.partial_pending(i).then_some(self.peers[i].partial_due)
    }

    /// Write peer `i`'s message if one is due: every partial piece (at most
    /// [`MAX_PARTIAL_PIECES`]) with its written ranges, and our byte counts. Left for the next
    /// poll when it does not fit.
    pub(crate) fn compose_partial(&mut self, i: usize, w: &mut Writer<'_>) {
        let now = self.now;
        if !self.partial_pending(i) || now < self.peers[i].partial_due {
            return;
        }
        let Some(id) = self.peers[i].enjambre_partial else {
            return;
        };
        let pieces = (self.partials.iter())
            .filter(|p| p.written.received() > 0)
            .take(MAX_PARTIAL_PIECES)
            .map(|p| {
                let ranges = p.written.as_slice().iter().take(MAX_PARTIAL_RANGES);
                (p.piece, ranges.map(|&(s, e)| s..e))
            });
        let update = PartialUpdate {
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            pieces,
        };
        if !w.encoded(|buf| update.encode(id, buf)) {
            return;
        }
        let p = &mut self.peers[i];
        p.partial_told = Some(self.partial_gen);
        p.partial_due = now + PARTIAL_INTERVAL;
    }
}
