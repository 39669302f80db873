//! The persisted resume state: verified pieces, partial byte ranges and counters, with a CRC.
//!
//! Frame layout (version 1), written into a caller-owned buffer:
//!
//! ```text
//! [version: u8] [postcard body] [CRC-32/ISCSI of version and body: u32 little-endian]
//! body = info_hash [u8; 20], piece_count u32, have bytes, partial [(piece u32, [(start u32, end u32)])],
//!        uploaded u64, downloaded u64
//! ```
//!
//! Decoding checks the CRC over the whole frame before anything else, so any damaged byte reads as
//! [`ResumeError::Corrupt`] and never as a different error; only then is the version looked at. It
//! then checks every field against the torrent's [`Geometry`], so a decoded state can be trusted.
//! It never panics and never allocates.

use core::fmt;

use crc::{Crc, CRC_32_ISCSI};
use serde::{Deserialize, Serialize, Serializer};

use crate::bitfield::{Bitfield, BitfieldError, CapacityError};
use crate::geometry::Geometry;
use crate::ids::InfoHash;
use crate::progress::PieceProgress;

/// The version byte written first in every encoded state.
pub const RESUME_VERSION: u8 = 1;

/// The checksum closing every frame.
static CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Bytes in the closing checksum.
const CRC_LEN: usize = 4;

/// Why a resume state could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ResumeError {
    /// Bad checksum, truncated, or not a valid encoding.
    Corrupt,
    /// The state belongs to another torrent.
    WrongTorrent,
    /// The state was written for a different number of pieces.
    WrongPieceCount,
    /// The frame is intact but written by a version this code does not read.
    UnsupportedVersion(u8),
    /// The output buffer is too small; [`ResumeState::max_encoded_len`] always suffices.
    BufferTooSmall,
    /// The state holds more pieces, partial pieces or ranges than the capacities allow.
    Capacity,
    /// The fields contradict each other or the torrent (a range outside its piece, a partial
    /// piece also verified or listed twice, spare bitfield bits set).
    Invalid,
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::Corrupt => f.write_str("resume state is corrupt"),
            ResumeError::WrongTorrent => f.write_str("resume state belongs to another torrent"),
            ResumeError::WrongPieceCount => f.write_str("resume state has a different piece count"),
            ResumeError::UnsupportedVersion(v) => write!(f, "unsupported resume state version {v}"),
            ResumeError::BufferTooSmall => f.write_str("buffer too small for the resume state"),
            ResumeError::Capacity => f.write_str("resume state exceeds the capacities"),
            ResumeError::Invalid => f.write_str("resume state is inconsistent"),
        }
    }
}

impl core::error::Error for ResumeError {}

impl From<CapacityError> for ResumeError {
    fn from(_: CapacityError) -> Self {
        ResumeError::Capacity
    }
}

/// What survives a restart: verified pieces, confirmed byte ranges of partial pieces, counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState<const BYTES: usize, const PARTIAL: usize, const RANGES: usize> {
    /// The torrent this state belongs to.
    pub info_hash: InfoHash,
    /// Number of pieces; equals `have.len()`.
    pub piece_count: u32,
    /// Pieces written and verified.
    pub have: Bitfield<BYTES>,
    /// Pieces partly written, at most one entry per piece, none of them in `have`.
    pub partial: heapless::Vec<PieceProgress<RANGES>, PARTIAL>,
    /// Bytes uploaded over the torrent's life.
    pub uploaded: u64,
    /// Bytes downloaded over the torrent's life.
    pub downloaded: u64,
}

impl<const BYTES: usize, const PARTIAL: usize, const RANGES: usize>
    ResumeState<BYTES, PARTIAL, RANGES>
{
    /// Create the state of a torrent with nothing downloaded yet.
    pub fn new(info_hash: InfoHash, piece_count: u32) -> Result<Self, CapacityError> {
        Ok(ResumeState {
            info_hash,
            piece_count,
            have: Bitfield::new(piece_count)?,
            partial: heapless::Vec::new(),
            uploaded: 0,
            downloaded: 0,
        })
    }

    /// Record that `[start, end)` of `piece` was written after this state was saved: what a
    /// shell's write journal replays on restart. Bytes of a verified piece are ignored; a piece
    /// not yet partial becomes partial. Returns the bytes newly covered.
    pub fn record_write(
        &mut self,
        geometry: &Geometry,
        piece: u32,
        start: u32,
        end: u32,
    ) -> Result<u32, ResumeError> {
        let Some(index) = geometry.piece(piece) else {
            return Err(ResumeError::Invalid);
        };
        let len = geometry.piece_len(index);
        if start >= end || end > len {
            return Err(ResumeError::Invalid);
        }
        if self.have.get(piece) {
            return Ok(0);
        }
        let k = match self.partial.iter().position(|p| p.piece() == piece) {
            Some(k) => k,
            None => {
                self.partial
                    .push(PieceProgress::new(piece, len))
                    .map_err(|_| ResumeError::Capacity)?;
                self.partial.len() - 1
            }
        };
        self.partial[k]
            .add(start, end)
            .map_err(|_| ResumeError::Capacity)
    }

    /// Record that `piece` passed its hash check after this state was saved (journal replay):
    /// it becomes verified and stops being partial.
    pub fn record_verified(&mut self, piece: u32) -> Result<(), ResumeError> {
        self.settle(piece, true)
    }

    /// Record that `piece`'s bytes were discarded after this state was saved (a failed hash
    /// check, journal replay): nothing of it counts as written any more.
    pub fn record_discard(&mut self, piece: u32) -> Result<(), ResumeError> {
        self.settle(piece, false)
    }

    /// Drop `piece`'s partial ranges and mark it verified or not.
    fn settle(&mut self, piece: u32, verified: bool) -> Result<(), ResumeError> {
        if piece >= self.piece_count {
            return Err(ResumeError::Invalid);
        }
        self.partial.retain(|p| p.piece() != piece);
        self.have.set(piece, verified);
        Ok(())
    }

    /// Return an upper bound of the encoded size for these capacities; a buffer this long always
    /// suffices for [`Self::encode`].
    pub const fn max_encoded_len() -> usize {
        const U32: usize = 5; // varint bytes of a u32
        const U64: usize = 10; // varint bytes of a u64
        let have = varint_len(BYTES) + BYTES;
        let one_partial = U32 + varint_len(RANGES) + RANGES * 2 * U32;
        let partial = varint_len(PARTIAL) + PARTIAL * one_partial;
        1 + 20 + U32 + have + partial + 2 * U64 + CRC_LEN
    }

    /// Write the state into `out` and return the bytes written.
    ///
    /// Refuses ([`ResumeError::Invalid`]) a state that [`Self::decode`] would refuse for its
    /// inconsistency, so whatever is written can be read back.
    pub fn encode<'b>(&self, out: &'b mut [u8]) -> Result<&'b [u8], ResumeError> {
        self.check()?;
        let body = StateOut::<RANGES> {
            info_hash: &self.info_hash.0,
            piece_count: self.piece_count,
            have: Bytes(self.have.as_bytes()),
            partial: PartialsOut(&self.partial),
            uploaded: self.uploaded,
            downloaded: self.downloaded,
        };
        let (version, rest) = out.split_first_mut().ok_or(ResumeError::BufferTooSmall)?;
        *version = RESUME_VERSION;
        let mut digest = CRC.digest();
        digest.update(&[RESUME_VERSION]);
        let written = postcard::to_slice_crc32(&body, rest, digest)
            .map_err(|e| match e {
                postcard::Error::SerializeBufferFull => ResumeError::BufferTooSmall,
                _ => ResumeError::Invalid,
            })?
            .len();
        out.get(..1 + written).ok_or(ResumeError::BufferTooSmall)
    }

    /// Read a state written by [`Self::encode`] for the torrent `expected` of shape `geometry`.
    ///
    /// Rejects a damaged frame, another torrent's state, another piece count, an unknown
    /// version, and any field that does not fit the geometry or the capacities.
    pub fn decode(
        bytes: &[u8],
        expected: InfoHash,
        geometry: Geometry,
    ) -> Result<Self, ResumeError> {
        let (frame, crc) = bytes
            .split_last_chunk::<CRC_LEN>()
            .ok_or(ResumeError::Corrupt)?;
        if CRC.checksum(frame) != u32::from_le_bytes(*crc) {
            return Err(ResumeError::Corrupt);
        }
        let (&version, body) = frame.split_first().ok_or(ResumeError::Corrupt)?;
        if version != RESUME_VERSION {
            return Err(ResumeError::UnsupportedVersion(version));
        }
        let (wire, rest) = postcard::take_from_bytes::<StateIn<'_, PARTIAL, RANGES>>(body)
            .map_err(|e| match e {
                // The only custom errors are heapless's "more elements than capacity".
                postcard::Error::SerdeDeCustom => ResumeError::Capacity,
                _ => ResumeError::Corrupt,
            })?;
        if !rest.is_empty() {
            return Err(ResumeError::Corrupt);
        }
        if wire.info_hash != expected.0 {
            return Err(ResumeError::WrongTorrent);
        }
        if wire.piece_count != geometry.piece_count() {
            return Err(ResumeError::WrongPieceCount);
        }
        let have = Bitfield::from_wire(wire.piece_count, wire.have).map_err(|e| match e {
            BitfieldError::Capacity => ResumeError::Capacity,
            _ => ResumeError::Invalid,
        })?;
        let mut state = ResumeState {
            info_hash: expected,
            piece_count: wire.piece_count,
            have,
            partial: heapless::Vec::new(),
            uploaded: wire.uploaded,
            downloaded: wire.downloaded,
        };
        for p in &wire.partial {
            let piece = geometry.piece(p.piece).ok_or(ResumeError::Invalid)?;
            let progress =
                PieceProgress::from_ranges(p.piece, geometry.piece_len(piece), &p.ranges)
                    .ok_or(ResumeError::Invalid)?;
            state
                .partial
                .push(progress)
                .map_err(|_| ResumeError::Capacity)?;
        }
        state.check()?;
        Ok(state)
    }

    /// Check what the public fields could get wrong: the piece count, and partial pieces that
    /// are out of range, already verified, or listed twice.
    fn check(&self) -> Result<(), ResumeError> {
        if self.have.len() != self.piece_count {
            return Err(ResumeError::Invalid);
        }
        let mut taken = self.have.clone();
        for p in &self.partial {
            if p.piece() >= self.piece_count || taken.get(p.piece()) {
                return Err(ResumeError::Invalid);
            }
            taken.set(p.piece(), true);
        }
        Ok(())
    }
}

/// Return the bytes of `n` as a postcard varint.
const fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// The body as written: borrows the state, so encoding copies nothing.
#[derive(Serialize)]
struct StateOut<'a, const RANGES: usize> {
    info_hash: &'a [u8; 20],
    piece_count: u32,
    have: Bytes<'a>,
    partial: PartialsOut<'a, RANGES>,
    uploaded: u64,
    downloaded: u64,
}

/// A byte string (postcard: varint length, then the bytes).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct PartialsOut<'a, const RANGES: usize>(&'a [PieceProgress<RANGES>]);

impl<const RANGES: usize> Serialize for PartialsOut<'_, RANGES> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| PartialOut {
            piece: p.piece(),
            ranges: p.as_slice(),
        }))
    }
}

#[derive(Serialize)]
struct PartialOut<'a> {
    piece: u32,
    ranges: &'a [(u32, u32)],
}

/// The body as read; capacities bound every sequence, the bitfield stays borrowed.
#[derive(Deserialize)]
struct StateIn<'a, const PARTIAL: usize, const RANGES: usize> {
    info_hash: [u8; 20],
    piece_count: u32,
    #[serde(borrow)]
    have: &'a [u8],
    partial: heapless::Vec<PartialIn<RANGES>, PARTIAL>,
    uploaded: u64,
    downloaded: u64,
}

#[derive(Deserialize)]
struct PartialIn<const RANGES: usize> {
    piece: u32,
    ranges: heapless::Vec<(u32, u32), RANGES>,
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
