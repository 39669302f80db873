//! The info dictionary, put together from pieces that several peers send.

use core::marker::PhantomData;

use heapless::Vec;

use super::{PieceFault, ReceiveError, SizeError};
use crate::sha1::Sha1;
use crate::wire::{metadata_piece_count, metadata_piece_len, METADATA_PIECE_LEN};
use crate::{Duration, InfoHash, Instant};

/// What [`MetadataAssembler::receive`] did with a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// Stored; other pieces are still missing.
    Stored,
    /// Not asked of this peer (or no longer): dropped, no harm done.
    Ignored,
    /// It was the last piece and the whole matches the info-hash: the info dictionary.
    Complete(&'a [u8]),
}

/// One piece's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot<K> {
    Missing,
    Requested { peer: K, at: Instant },
    Received { peer: K },
}

/// Puts the info dictionary together in a caller-owned buffer from the pieces peers send.
///
/// Shared by every connection of a magnet download: each asks it which piece to request
/// ([`next_request`](Self::next_request)) and hands it what comes back. It tracks at most
/// `PIECES` pieces (16 KiB each), identifies peers by the caller's key `K`, hashes with `H` and
/// never allocates. It checks sizes and lengths, not meaning: the whole is trusted only once
/// its SHA-1 is the info-hash.
pub struct MetadataAssembler<'b, H, K, const PIECES: usize> {
    buf: &'b mut [u8],
    info_hash: InfoHash,
    timeout: Duration,
    /// The metadata size; 0 while unknown.
    size: u32,
    pieces: [Slot<K>; PIECES],
    complete: bool,
    hasher: PhantomData<fn() -> H>,
}

impl<'b, H: Sha1, K: Copy + Eq, const PIECES: usize> MetadataAssembler<'b, H, K, PIECES> {
    /// Assemble the info dictionary of `info_hash` into `buf`. A request unanswered for
    /// `timeout` may be asked of another peer.
    pub fn new(buf: &'b mut [u8], info_hash: InfoHash, timeout: Duration) -> Self {
        MetadataAssembler {
            buf,
            info_hash,
            timeout,
            size: 0,
            pieces: [Slot::Missing; PIECES],
            complete: false,
            hasher: PhantomData,
        }
    }

    /// Return the metadata size, once known.
    pub fn size(&self) -> Option<u32> {
        (self.size != 0).then_some(self.size)
    }

    /// Return the request timeout given to [`new`](Self::new).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Return how many pieces are in, and how many there are (1 while the size is unknown).
    pub fn progress(&self) -> (u32, u32) {
        let count = self.count();
        let pieces = self.pieces.iter().take(count as usize);
        let got = pieces
            .filter(|s| matches!(s, Slot::Received { .. }))
            .count();
        (got as u32, count)
    }

    /// Return the verified info dictionary, once complete.
    pub fn info(&self) -> Option<&[u8]> {
        let size = usize::try_from(self.size).ok()?;
        self.buf.get(..size).filter(|_| self.complete)
    }

    /// Learn the size (a peer's `metadata_size`). The same size again is fine; a different one
    /// is a [`SizeError::Conflict`] and changes nothing.
    pub fn set_size(&mut self, size: u32) -> Result<(), SizeError> {
        if self.size != 0 && self.size == size {
            return Ok(());
        }
        if self.size != 0 {
            return Err(SizeError::Conflict {
                known: self.size,
                offered: size,
            });
        }
        self.check_size(size)?;
        self.size = size;
        Ok(())
    }

    /// Pick a piece to ask `peer` for and mark it requested at `now`.
    ///
    /// A missing piece first, else one asked of another peer at least the timeout ago. While
    /// the size is unknown only piece 0 is offered: its data message carries `total_size`.
    pub fn next_request(&mut self, peer: K, now: Instant) -> Option<u32> {
        if self.complete {
            return None;
        }
        let count = self.count() as usize;
        let timeout = self.timeout;
        let pieces = self.pieces.get_mut(..count)?;
        let stale = |s: &Slot<K>| match *s {
            Slot::Requested { peer: p, at } => p != peer && now - at >= timeout,
            _ => false,
        };
        let i = match pieces.iter().position(|s| *s == Slot::Missing) {
            Some(i) => i,
            None => pieces.iter().position(stale)?,
        };
        *pieces.get_mut(i)? = Slot::Requested { peer, at: now };
        u32::try_from(i).ok()
    }

    /// When the oldest request to a peer other than `peer` times out, so that
    /// [`next_request`](Self::next_request) may give its piece to `peer`.
    pub fn next_timeout(&self, peer: K) -> Option<Instant> {
        let requested = self.pieces.iter().filter_map(|s| match *s {
            Slot::Requested { peer: p, at } if p != peer && !self.complete => {
                Some(at + self.timeout)
            }
            _ => None,
        });
        requested.min()
    }

    /// `peer` rejected `piece`: it is missing again.
    pub fn reject(&mut self, peer: K, piece: u32) {
        if let Some(slot) = self.slot_requested_by(peer, piece) {
            *slot = Slot::Missing;
        }
    }

    /// `peer` is gone: what it was asked for is missing again (what it sent stays).
    pub fn forget(&mut self, peer: K) {
        for slot in &mut self.pieces {
            if matches!(*slot, Slot::Requested { peer: p, .. } if p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// Take `peer`'s data message for `piece`.
    ///
    /// Only a piece requested of this very peer is stored; anything else is
    /// [`Received::Ignored`]. The last piece triggers the hash check.
    pub fn receive(
        &mut self,
        peer: K,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<Received<'_>, ReceiveError<K, PIECES>> {
        if self.complete || self.slot_requested_by(peer, piece).is_none() {
            return Ok(Received::Ignored);
        }
        let fault = match self.check_data(piece, total_size, data) {
            Ok(start) => {
                let end = start + data.len();
                if let Some(dst) = self.buf.get_mut(start..end) {
                    dst.copy_from_slice(data);
                }
                self.size = total_size;
                if let Some(slot) = self.pieces.get_mut(piece as usize) {
                    *slot = Slot::Received { peer };
                }
                return self.check_complete();
            }
            Err(fault) => fault,
        };
        if let Some(slot) = self.pieces.get_mut(piece as usize) {
            *slot = Slot::Missing;
        }
        Err(ReceiveError::Fault(fault))
    }

    /// Return where `data` goes in the buffer if it is exactly piece `piece`.
    fn check_data(&self, piece: u32, total_size: u32, data: &[u8]) -> Result<usize, PieceFault> {
        if self.size == 0 {
            self.check_size(total_size).map_err(PieceFault::Size)?;
        } else if total_size != self.size {
            return Err(PieceFault::TotalSize {
                known: self.size,
                received: total_size,
            });
        }
        let expected = metadata_piece_len(total_size, piece).unwrap_or(0);
        if data.len() != expected {
            return Err(PieceFault::Length {
                piece,
                expected,
                received: data.len(),
            });
        }
        Ok(piece as usize * METADATA_PIECE_LEN)
    }

    fn check_complete(&mut self) -> Result<Received<'_>, ReceiveError<K, PIECES>> {
        let count = self.count() as usize;
        let pieces = self.pieces.get(..count).unwrap_or_default();
        if !pieces.iter().all(|s| matches!(s, Slot::Received { .. })) {
            return Ok(Received::Stored);
        }
        let info = self.buf.get(..self.size as usize).unwrap_or_default();
        if crate::sha1::digest::<H>(info) == self.info_hash.0 {
            self.complete = true;
            return Ok(Received::Complete(info));
        }
        let mut peers = Vec::new();
        for slot in pieces {
            if let Slot::Received { peer } = *slot {
                if !peers.contains(&peer) {
                    // At most one peer per piece: `peers` cannot be full.
                    let _ = peers.push(peer);
                }
            }
        }
        self.pieces = [Slot::Missing; PIECES];
        self.size = 0;
        Err(ReceiveError::HashMismatch { peers })
    }

    fn check_size(&self, size: u32) -> Result<(), SizeError> {
        if size == 0 {
            return Err(SizeError::Empty);
        }
        if usize::try_from(size).map_or(true, |s| s > self.buf.len()) {
            return Err(SizeError::LargerThanBuffer {
                size,
                buffer: self.buf.len(),
            });
        }
        if metadata_piece_count(size) as usize > PIECES {
            return Err(SizeError::TooManyPieces { size, max: PIECES });
        }
        Ok(())
    }

    /// Return how many pieces there are; 1 (piece 0, to learn the size) while unknown.
    fn count(&self) -> u32 {
        metadata_piece_count(self.size).max(1)
    }

    fn slot_requested_by(&mut self, peer: K, piece: u32) -> Option<&mut Slot<K>> {
        let count = self.count() as usize;
        let slot = self.pieces.get_mut(..count)?.get_mut(piece as usize)?;
        matches!(*slot, Slot::Requested { peer: p, .. } if p == peer).then_some(slot)
    }
}
