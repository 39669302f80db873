//! `enjambre_partial` messages: the pieces a peer holds only partly, with their exact byte ranges.
//!
//! Our own BEP 10 extension, sent only to peers that named `enjambre_partial` in the `m` of their
//! extended handshake. The payload is a bencoded dictionary: `d` (bytes downloaded in total), `u`
//! (bytes uploaded in total) and `p`, a list of one dictionary per partial piece: `i` (piece
//! index), `r` (a byte string of big-endian `u32` pairs `begin`, `end`: the byte ranges held,
//! sorted, non-empty, neither overlapping nor touching) and `h` (bytes held, the sum of the
//! ranges).
//!
//! [`PartialMessage::decode`] borrows the payload, checks all of it at once and never panics: a
//! message that breaks any rule, or holds more than [`MAX_PARTIAL_PIECES`] pieces or more than
//! [`MAX_PARTIAL_RANGES`] ranges in a piece, is an error and nothing of it is used. Keys may come
//! in any order; unknown keys are ignored; an absent `d`, `u` or `p` reads as 0 or empty.
//! [`PartialUpdate::encode`] writes a whole wire message into a caller-owned slice. Whether a
//! piece index is in range, and what to request because of a message, is the session's business.

use core::fmt;
use core::ops::Range;

use crate::bencode::{self, BencodeError, DecodeOptions, Dict, Encoder, List, Value};
use crate::decimal::{decimal, MAX_DIGITS};
use crate::BufferTooSmall;

/// Bytes before the dictionary in a whole message: length prefix, id 20, extended id.
const HEAD_LEN: usize = 6;

/// Bytes of one range in `r`: `begin` and `end`, big-endian.
const RANGE_LEN: usize = 8;

/// The most partial pieces a message may list; a longer message is refused.
pub const MAX_PARTIAL_PIECES: usize = 64;

/// The most ranges a piece of a message may hold; a piece with more is refused.
pub const MAX_PARTIAL_RANGES: usize = 32;

/// A dictionary key of an `enjambre_partial` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PartialField {
    /// `d`: bytes downloaded.
    Downloaded,
    /// `u`: bytes uploaded.
    Uploaded,
    /// `p`: the partial pieces.
    Pieces,
    /// `p[].i`: a piece index.
    Index,
    /// `p[].r`: a piece's ranges.
    Ranges,
    /// `p[].h`: a piece's bytes held.
    Held,
}

impl PartialField {
    /// Return the key as it is on the wire.
    pub fn key(self) -> &'static str {
        match self {
            PartialField::Downloaded => "d",
            PartialField::Uploaded => "u",
            PartialField::Pieces => "p",
            PartialField::Index => "i",
            PartialField::Ranges => "r",
            PartialField::Held => "h",
        }
    }
}

/// Why a payload is not an `enjambre_partial` message we can use. Each means a broken peer;
/// none is worth closing the connection for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PartialError {
    /// The payload is not one valid bencoded value.
    Bencode(BencodeError),
    /// The payload is bencode but not a dictionary.
    NotADict,
    /// A field is missing where required, of the wrong type, out of range or inconsistent.
    BadField(PartialField),
    /// More pieces, or more ranges in a piece, than this crate reads.
    TooLarge,
}

impl fmt::Display for PartialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartialError::Bencode(e) => write!(f, "enjambre_partial: {e}"),
            PartialError::NotADict => f.write_str("enjambre_partial: not a dictionary"),
            PartialError::BadField(key) => {
                write!(f, "enjambre_partial: malformed `{}`", key.key())
            }
            PartialError::TooLarge => f.write_str("enjambre_partial: too many pieces or ranges"),
        }
    }
}

impl core::error::Error for PartialError {}

impl From<BencodeError> for PartialError {
    fn from(e: BencodeError) -> Self {
        PartialError::Bencode(e)
    }
}

/// One `enjambre_partial` message, borrowing the payload it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartialMessage<'a> {
    /// Bytes the sender has downloaded in total (`d`).
    pub downloaded: u64,
    /// Bytes the sender has uploaded in total (`u`).
    pub uploaded: u64,
    pieces: Option<List<'a>>,
}

/// One partial piece of a message: its index and the byte ranges the sender holds of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartialPiece<'a> {
    /// The piece index (`i`).
    pub index: u32,
    /// Bytes held (`h`), the sum of the ranges' lengths.
    pub held: u32,
    ranges: &'a [u8],
}

impl<'a> PartialMessage<'a> {
    /// Read a message from an extended message's payload (the bytes after its extended id).
    pub fn decode(payload: &'a [u8]) -> Result<Self, PartialError> {
        let value = bencode::decode_with(payload, DecodeOptions::LENIENT)?;
        let dict = value.as_dict().ok_or(PartialError::NotADict)?;
        let pieces = match dict.get(b"p") {
            None => None,
            Some(p) => Some(
                p.as_list()
                    .ok_or(PartialError::BadField(PartialField::Pieces))?,
            ),
        };
        let mut count = 0;
        for item in pieces.iter().flat_map(|l| l.iter()) {
            count += 1;
            if count > MAX_PARTIAL_PIECES {
                return Err(PartialError::TooLarge);
            }
            PartialPiece::read(item)?;
        }
        Ok(PartialMessage {
            downloaded: total(dict, PartialField::Downloaded)?,
            uploaded: total(dict, PartialField::Uploaded)?,
            pieces,
        })
    }

    /// Iterate the partial pieces in the order they were sent.
    pub fn pieces(&self) -> impl Iterator<Item = PartialPiece<'a>> + Clone + 'a {
        // Every item was checked by `decode`, so none is dropped here.
        (self.pieces.into_iter())
            .flat_map(|l| l.iter())
            .filter_map(|v| PartialPiece::read(v).ok())
    }

    /// Return how many partial pieces the message lists.
    pub fn pieces_len(&self) -> usize {
        self.pieces.map_or(0, |l| l.len())
    }
}

impl<'a> PartialPiece<'a> {
    /// Check one item of `p` and read it.
    fn read(item: Value<'a>) -> Result<Self, PartialError> {
        let bad = PartialError::BadField;
        let d = item.as_dict().ok_or(bad(PartialField::Pieces))?;
        let int = |field: PartialField| -> Result<u32, PartialError> {
            let v = d.get(field.key().as_bytes()).and_then(|v| v.as_int());
            v.and_then(|v| u32::try_from(v).ok()).ok_or(bad(field))
        };
        let index = int(PartialField::Index)?;
        let held = int(PartialField::Held)?;
        let ranges = (d.get(b"r").and_then(|v| v.as_bytes()))
            .filter(|r| r.len() % RANGE_LEN == 0)
            .ok_or(bad(PartialField::Ranges))?;
        if ranges.len() / RANGE_LEN > MAX_PARTIAL_RANGES {
            return Err(PartialError::TooLarge);
        }
        let piece = PartialPiece {
            index,
            held,
            ranges,
        };
        let mut sum: u64 = 0;
        let mut last_end: Option<u32> = None;
        for r in piece.ranges() {
            if r.start >= r.end || last_end.is_some_and(|e| r.start <= e) {
                return Err(bad(PartialField::Ranges));
            }
            sum += u64::from(r.end - r.start);
            last_end = Some(r.end);
        }
        if sum != u64::from(held) {
            return Err(bad(PartialField::Held));
        }
        Ok(piece)
    }

    /// Iterate the byte ranges held, sorted, each non-empty, none touching the next.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u32>> + Clone + 'a {
        self.ranges.chunks_exact(RANGE_LEN).map(|c| {
            let (b, e) = c.split_at(4);
            let word = |s: &[u8]| u32::from_be_bytes(s.try_into().unwrap_or([0; 4]));
            word(b)..word(e)
        })
    }

    /// Return how many ranges the piece holds.
    pub fn ranges_len(&self) -> usize {
        self.ranges.len() / RANGE_LEN
    }

    /// Return whether every byte of `want` lies within one held range.
    pub fn holds(&self, want: Range<u32>) -> bool {
        want.start < want.end
            && self
                .ranges()
                .any(|r| r.start <= want.start && want.end <= r.end)
    }
}

/// Return `d` or `u`: 0 when absent, an error when not a non-negative integer.
fn total(dict: Dict<'_>, field: PartialField) -> Result<u64, PartialError> {
    match dict.get(field.key().as_bytes()) {
        None => Ok(0),
        Some(v) => (v.as_int())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or(PartialError::BadField(field)),
    }
}

/// What [`PartialUpdate::encode`] writes as an `enjambre_partial` message.
///
/// `pieces` yields each partial piece's index with its ranges; both are iterated more than once
/// (to count, then to write), so they must be cheap to clone. Ranges must be sorted, non-empty
/// and neither overlapping nor touching, or the receiver refuses the whole message.
#[derive(Debug, Clone)]
pub struct PartialUpdate<P> {
    /// Bytes downloaded in total.
    pub downloaded: u64,
    /// Bytes uploaded in total.
    pub uploaded: u64,
    /// The partial pieces: index and held ranges.
    pub pieces: P,
}

impl<P, R> PartialUpdate<P>
where
    P: Iterator<Item = (u32, R)> + Clone,
    R: Iterator<Item = Range<u32>> + Clone,
{
    /// Write the whole wire message (length prefix, id 20, `ext_id`, dictionary) and return its
    /// length. `ext_id` is the receiver's id for `enjambre_partial`. Keys go in sorted order;
    /// `h` is computed from the ranges.
    pub fn encode(&self, ext_id: u8, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let short = |e: BufferTooSmall| BufferTooSmall {
            required: e.required + HEAD_LEN,
        };
        let (head, body) = out
            .split_at_mut_checked(HEAD_LEN)
            .ok_or(BufferTooSmall { required: HEAD_LEN })?;
        let len = self.encode_dict(body).map_err(short)?;
        let total = len + HEAD_LEN;
        let prefix = u32::try_from(total - 4).map_err(|_| BufferTooSmall { required: total })?;
        let (prefix_bytes, ids) = head.split_at_mut(4);
        prefix_bytes.copy_from_slice(&prefix.to_be_bytes());
        ids.copy_from_slice(&[20, ext_id]);
        Ok(total)
    }

    /// Write the bencoded dictionary alone.
    fn encode_dict(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut e = Encoder::new(out);
        e.dict()?.bytes(b"d")?.int(clamp(self.downloaded))?;
        e.bytes(b"p")?.list()?;
        for (index, ranges) in self.pieces.clone() {
            let held: u64 = ranges
                .clone()
                .map(|r| u64::from(r.end - r.start.min(r.end)))
                .sum();
            e.dict()?.bytes(b"h")?.int(clamp(held))?;
            e.bytes(b"i")?.int(index.into())?;
            e.bytes(b"r")?;
            let mut d = [0u8; MAX_DIGITS];
            let n = ranges.clone().count() * RANGE_LEN;
            e.raw(decimal(n as u64, &mut d))?.raw(b":")?;
            for r in ranges {
                e.raw(&r.start.to_be_bytes())?.raw(&r.end.to_be_bytes())?;
            }
            e.end()?;
        }
        e.end()?;
        e.bytes(b"u")?.int(clamp(self.uploaded))?;
        e.end()?;
        Ok(e.finish())
    }
}
