//! BEP 9 `ut_metadata` messages: the info dictionary, asked for and sent in 16 KiB pieces.
//!
//! A message is the payload of an extended message (BEP 10) sent with the id the receiver chose
//! for `ut_metadata` in its extended handshake: a bencoded dictionary (`msg_type`, `piece` and,
//! in a data message, `total_size`), followed in a data message by the piece's bytes.
//! [`MetadataMessage::decode`] borrows the payload and never panics;
//! [`MetadataMessage::encode`] writes a whole wire message into a caller-owned slice. Whether a
//! piece was asked for or fits the metadata is [`metadata`](crate::metadata)'s business.

use core::fmt;

use crate::bencode::{self, BencodeError, DecodeOptions, Dict, Encoder};
use crate::BufferTooSmall;

/// Bytes per metadata piece; every piece but the last is exactly this long (BEP 9).
pub const METADATA_PIECE_LEN: usize = 16384;

const REQUEST: i64 = 0;
const DATA: i64 = 1;
const REJECT: i64 = 2;

/// Bytes before the dictionary in a whole message: length prefix, id 20, extended id.
const HEAD_LEN: usize = 6;

/// One `ut_metadata` message, borrowing the payload it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetadataMessage<'a> {
    /// Ask for a piece (`msg_type` 0).
    Request {
        /// The piece index.
        piece: u32,
    },
    /// A piece of the metadata (`msg_type` 1).
    Data {
        /// The piece index.
        piece: u32,
        /// The whole metadata's size in bytes, as the sender claims it.
        total_size: u32,
        /// The piece's bytes: everything after the dictionary.
        data: &'a [u8],
    },
    /// The sender will not send this piece (`msg_type` 2).
    Reject {
        /// The piece index.
        piece: u32,
    },
}

/// A dictionary key of a `ut_metadata` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetadataField {
    /// `msg_type`.
    MsgType,
    /// `piece`.
    Piece,
    /// `total_size`.
    TotalSize,
}

/// Why a payload is not a `ut_metadata` message we can use.
///
/// All but [`UnknownType`](Self::UnknownType) mean a broken peer; BEP 9 asks that a message of
/// an unknown type be ignored, so that one is only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetadataError {
    /// The payload does not start with valid bencode.
    Bencode(BencodeError),
    /// The payload starts with bencode that is not a dictionary.
    NotADict,
    /// A key is missing, not an integer, or out of range (`piece` and `total_size` are `u32`).
    BadField(MetadataField),
    /// A `msg_type` this module does not know: ignore the message (BEP 9).
    UnknownType(i64),
    /// A request or a reject with bytes after its dictionary.
    TrailingBytes,
}

impl MetadataError {
    /// Return whether BEP 9 says to ignore the message rather than drop the peer.
    pub fn is_ignorable(&self) -> bool {
        matches!(self, MetadataError::UnknownType(_))
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Bencode(e) => write!(f, "ut_metadata: {e}"),
            MetadataError::NotADict => f.write_str("ut_metadata: not a dictionary"),
            MetadataError::BadField(key) => {
                let key = match key {
                    MetadataField::MsgType => "msg_type",
                    MetadataField::Piece => "piece",
                    MetadataField::TotalSize => "total_size",
                };
                write!(f, "ut_metadata: `{key}` missing or out of range")
            }
            MetadataError::UnknownType(t) => write!(f, "ut_metadata: unknown msg_type {t}"),
            MetadataError::TrailingBytes => {
                f.write_str("ut_metadata: bytes after a request or reject")
            }
        }
    }
}

impl core::error::Error for MetadataError {}

impl From<BencodeError> for MetadataError {
    fn from(e: BencodeError) -> Self {
        MetadataError::Bencode(e)
    }
}

impl<'a> MetadataMessage<'a> {
    /// Read a message from an extended message's payload (the bytes after its extended id).
    ///
    /// Keys may come in any order and unknown keys are ignored; the type is checked before
    /// anything else, so a future type reads as [`MetadataError::UnknownType`].
    pub fn decode(payload: &'a [u8]) -> Result<Self, MetadataError> {
        let (value, used) = bencode::decode_prefix(payload, DecodeOptions::LENIENT)?;
        let dict = value.as_dict().ok_or(MetadataError::NotADict)?;
        let msg_type = dict
            .get(b"msg_type")
            .and_then(|v| v.as_int())
            .ok_or(MetadataError::BadField(MetadataField::MsgType))?;
        if !(REQUEST..=REJECT).contains(&msg_type) {
            return Err(MetadataError::UnknownType(msg_type));
        }
        let piece = u32_field(dict, b"piece", MetadataField::Piece)?;
        let rest = payload.get(used..).unwrap_or_default();
        if msg_type == DATA {
            let total_size = u32_field(dict, b"total_size", MetadataField::TotalSize)?;
            return Ok(MetadataMessage::Data {
                piece,
                total_size,
                data: rest,
            });
        }
        if !rest.is_empty() {
            return Err(MetadataError::TrailingBytes);
        }
        Ok(if msg_type == REQUEST {
            MetadataMessage::Request { piece }
        } else {
            MetadataMessage::Reject { piece }
        })
    }

    /// Return the piece index.
    pub fn piece(&self) -> u32 {
        match *self {
            MetadataMessage::Request { piece }
            | MetadataMessage::Data { piece, .. }
            | MetadataMessage::Reject { piece } => piece,
        }
    }

    /// Return how many bytes [`encode`](Self::encode) writes, length prefix included.
    pub fn encoded_len(&self) -> usize {
        // d 8:msg_type i_e 5:piece i…e [10:total_size i…e] e
        let head = HEAD_LEN + 2 + 10 + 3 + 7 + 2 + digits(self.piece());
        match *self {
            MetadataMessage::Data {
                total_size, data, ..
            } => head + 13 + 2 + digits(total_size) + data.len(),
            _ => head,
        }
    }

    /// Write the whole wire message (length prefix, id 20, `ext_id`, dictionary, data) and
    /// return its length. `ext_id` is the receiver's id for `ut_metadata`.
    ///
    /// Fails without writing when `out` is shorter than [`encoded_len`](Self::encoded_len).
    pub fn encode(&self, ext_id: u8, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let total = self.encoded_len();
        let too_small = BufferTooSmall { required: total };
        let prefix = u32::try_from(total - 4).map_err(|_| too_small)?;
        let out = out.get_mut(..total).ok_or(too_small)?;
        let (head, body) = out.split_at_mut(HEAD_LEN);
        let (prefix_bytes, ids) = head.split_at_mut(4);
        prefix_bytes.copy_from_slice(&prefix.to_be_bytes());
        ids.copy_from_slice(&[20, ext_id]);
        let mut e = Encoder::new(body);
        let (msg_type, total_size, data) = match *self {
            MetadataMessage::Request { .. } => (REQUEST, None, &[][..]),
            MetadataMessage::Data {
                total_size, data, ..
            } => (DATA, Some(total_size), data),
            MetadataMessage::Reject { .. } => (REJECT, None, &[][..]),
        };
        e.dict()?.bytes(b"msg_type")?.int(msg_type)?;
        e.bytes(b"piece")?.int(self.piece().into())?;
        if let Some(size) = total_size {
            e.bytes(b"total_size")?.int(size.into())?;
        }
        e.end()?.raw(data)?;
        Ok(total)
    }
}

/// Return how many pieces metadata of `size` bytes is cut into.
pub const fn metadata_piece_count(size: u32) -> u32 {
    size.div_ceil(METADATA_PIECE_LEN as u32)
}

/// Return the exact length of piece `piece` of metadata of `size` bytes, `None` past the end.
pub fn metadata_piece_len(size: u32, piece: u32) -> Option<usize> {
    let size = usize::try_from(size).ok()?;
    let start = usize::try_from(piece)
        .ok()?
        .checked_mul(METADATA_PIECE_LEN)?;
    let left = size.checked_sub(start).filter(|&n| n > 0)?;
    Some(left.min(METADATA_PIECE_LEN))
}

/// Return piece `piece` of the info dictionary `info` (what a data message carries), `None`
/// past the end.
pub fn metadata_piece(info: &[u8], piece: u32) -> Option<&[u8]> {
    let start = usize::try_from(piece)
        .ok()?
        .checked_mul(METADATA_PIECE_LEN)?;
    let rest = info.get(start..).filter(|r| !r.is_empty())?;
    rest.get(..METADATA_PIECE_LEN.min(rest.len()))
}

/// Return `dict[key]` when it is an integer that fits a `u32`.
fn u32_field(dict: Dict<'_>, key: &[u8], field: MetadataField) -> Result<u32, MetadataError> {
    dict.get(key)
        .and_then(|v| v.as_int())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(MetadataError::BadField(field))
}

/// Return how many decimal digits `v` has.
fn digits(v: u32) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}
