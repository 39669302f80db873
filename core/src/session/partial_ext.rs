//! Our `enjambre_partial` extension, sending side: each peer that offered it is told which bytes
//! of our unverified pieces we hold, right after the extended handshake and then whenever they
//! changed, at most once per [`PARTIAL_INTERVAL`].
//!
//! Receiving side: what a peer that offered it tells us is kept in a small table shared by all
//! peers ([`Advert`], at most `PARTIAL` entries, so none in a session that never downloads), and
//! block picking may ask that peer for a stretch we miss inside its advertised ranges of a piece
//! it has not finished. The SHA-1 check decides as for any piece. What a peer may request of
//! our own bytes is checked when it asks (`on_request`); this module never decides what is
//! served.

use heapless::Vec;

use super::peer::Request;
use super::tx::Writer;
use super::Session;
use crate::geometry::BLOCK_LEN;
use crate::sha1::Sha1;
use crate::wire::{PartialMessage, PartialUpdate, MAX_PARTIAL_PIECES, MAX_PARTIAL_RANGES};
use crate::{Duration, Instant};

/// The largest `enjambre_partial` payload read; longer ones are ignored.
pub(crate) const MAX_PARTIAL_PAYLOAD: usize = 2048;
/// Pieces kept of one peer's message (the first ones it lists that we still miss).
pub(crate) const ADVERT_PIECES: usize = 2;
/// Ranges kept of one advertised piece (its first ones).
pub(crate) const ADVERT_RANGES: usize = 4;

/// The partial pieces one message advertised that we may ask for, with their ranges, as read
/// off the wire (nothing borrowed), before they go in the table.
pub(crate) type Held = Vec<(u32, Vec<(u32, u32), ADVERT_RANGES>), ADVERT_PIECES>;

/// One piece a peer holds partly: the byte ranges it advertised of it.
#[derive(Debug, Clone)]
pub(crate) struct Advert {
    /// The peer's slot.
    pub(crate) peer: usize,
    pub(crate) piece: u32,
    pub(crate) ranges: Vec<(u32, u32), ADVERT_RANGES>,
}

/// Read what we keep of an `enjambre_partial` payload: the pieces `wanted` accepts; `None`
/// when it does not decode.
pub(crate) fn read_held(payload: &[u8], wanted: impl Fn(u32) -> bool) -> Option<Held> {
    let m = PartialMessage::decode(payload).ok()?;
    let mut held = Held::new();
    for p in m.pieces().filter(|p| wanted(p.index)) {
        let ranges = p.ranges().take(ADVERT_RANGES).map(|r| (r.start, r.end));
        if held.push((p.index, ranges.collect())).is_err() {
            break;
        }
    }
    Some(held)
}

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
        // As many pieces as fit what a receiver reads (`MAX_PARTIAL_PAYLOAD`), by a bound on
        // each one's encoding (index, held and length fields, then 8 bytes a range).
        let mut budget = MAX_PARTIAL_PAYLOAD - 64;
        let count = (self.partials.iter())
            .filter(|p| p.written.received() > 0)
            .take_while(|p| {
                let cost = 48 + 8 * p.written.as_slice().len().min(MAX_PARTIAL_RANGES);
                budget = budget.saturating_sub(cost);
                budget > 0
            })
            .count();
        let pieces = (self.partials.iter())
            .filter(|p| p.written.received() > 0)
            .take(count.min(MAX_PARTIAL_PIECES))
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

    /// Keep what peer `i`'s latest message advertises (replacing what it said before): pieces
    /// we miss, ranges within the piece, while the table has room.
    pub(crate) fn take_adverts(&mut self, i: usize, held: Held) {
        self.forget_adverts(i);
        for (piece, ranges) in held {
            let Some(index) = self.geometry.piece(piece) else {
                continue;
            };
            let len = self.geometry.piece_len(index);
            if self.have.get(piece) || ranges.is_empty() || ranges.iter().any(|&(_, e)| e > len) {
                continue;
            }
            let advert = Advert {
                peer: i,
                piece,
                ranges,
            };
            if self.adverts.push(advert).is_err() {
                break;
            }
        }
    }

    /// Drop what peer `i` advertised (it left, or sent a newer message).
    pub(crate) fn forget_adverts(&mut self, i: usize) {
        self.adverts.retain(|a| a.peer != i);
    }

    /// Whether peer `i` advertised bytes we have not written.
    pub(crate) fn advert_wanted(&self, i: usize) -> bool {
        (self.adverts.iter())
            .filter(|a| a.peer == i && !self.have.get(a.piece) && self.wanted.get(a.piece))
            .any(|a| match self.partial_index(a.piece) {
                None => true,
                Some(k) => self.partials[k]
                    .written
                    .missing()
                    .any(|(hb, he)| (a.ranges.iter()).any(|&(rb, re)| hb.max(rb) < he.min(re))),
            })
    }

    /// A block to ask peer `i` for inside the ranges it advertised: the first stretch of a piece
    /// it holds partly that nobody was asked for, at most one aligned block, possibly starting
    /// mid-block. A piece not yet in progress is begun when there is room.
    pub(crate) fn advert_block(&mut self, i: usize) -> Option<Request> {
        for a in 0..self.adverts.len() {
            let advert = &self.adverts[a];
            if advert.peer != i || self.have.get(advert.piece) || !self.wanted.get(advert.piece) {
                continue;
            }
            let (piece, ranges) = (advert.piece, advert.ranges.clone());
            let k = match self.partial_index(piece) {
                Some(k) => k,
                None if !self.partials.is_full() => match self.begin_piece(piece) {
                    Some(k) => k,
                    None => continue,
                },
                None => continue,
            };
            if self.partials[k].next_hole().is_none() || !self.parole_allows(i, piece) {
                continue;
            }
            let covered = &self.partials[k].covered;
            let found = covered.missing().find_map(|(hb, he)| {
                ranges.iter().find_map(|&(rb, re)| {
                    let (s, e) = (hb.max(rb), he.min(re));
                    let block_end = (s / BLOCK_LEN + 1).saturating_mul(BLOCK_LEN);
                    (s < e).then_some((s, e.min(block_end)))
                })
            });
            if let Some((begin, end)) = found {
                let _ = self.partials[k].covered.add(begin, end);
                return Some(Request {
                    piece,
                    begin,
                    len: end - begin,
                    sent: false,
                });
            }
        }
        None
    }
}
