//! Bencode: a zero-copy validating reader and an encoder into caller-owned buffers.
//!
//! [`decode`] checks a whole value once (canonical integers and lengths, nesting at most
//! [`MAX_DEPTH`], sorted unique keys unless told otherwise) and then hands out [`Value`]s that
//! borrow the input: [`List`] and [`Dict`] are lazy views whose iteration cannot fail. Nothing is
//! copied or allocated, and no input makes the decoder recurse or panic.
//! [`Encoder`] writes bencode into a `&mut [u8]` the caller owns.

mod decode;
mod encode;
mod value;

pub use decode::{decode, decode_prefix, decode_with};
pub use encode::Encoder;
pub use value::{Dict, DictIter, List, ListIter, Value};

/// How deeply lists and dictionaries may nest; a value with more open containers is refused.
pub const MAX_DEPTH: usize = 32;

/// Why bytes are not one valid bencoded value. Positions are byte offsets into the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BencodeError {
    /// The input ends inside a value: more bytes are needed.
    UnexpectedEof,
    /// A byte that cannot start or continue a value here.
    InvalidByte {
        /// Offset of the byte.
        pos: usize,
    },
    /// An integer with a leading zero, a negative zero, or no digits (`i03e`, `i-0e`, `ie`).
    NonCanonicalInteger {
        /// Offset of the `i`.
        pos: usize,
    },
    /// A string length with a leading zero (`03:abc`).
    NonCanonicalLength {
        /// Offset of the first digit.
        pos: usize,
    },
    /// An integer or a string length that does not fit in `i64` / `usize`.
    IntegerOverflow {
        /// Offset of the value.
        pos: usize,
    },
    /// A dictionary key smaller than the key before it.
    UnsortedKeys {
        /// Offset of the offending key.
        pos: usize,
    },
    /// A dictionary key equal to the key before it.
    DuplicateKey {
        /// Offset of the offending key.
        pos: usize,
    },
    /// More than [`MAX_DEPTH`] nested lists and dictionaries.
    TooDeep {
        /// Offset of the container that is one too deep.
        pos: usize,
    },
    /// Bytes left over after a complete value.
    TrailingBytes {
        /// Offset of the first extra byte.
        pos: usize,
    },
}

impl core::fmt::Display for BencodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            BencodeError::UnexpectedEof => f.write_str("bencode: unexpected end of input"),
            BencodeError::InvalidByte { pos } => write!(f, "bencode: invalid byte at {pos}"),
            BencodeError::NonCanonicalInteger { pos } => {
                write!(f, "bencode: non-canonical integer at {pos}")
            }
            BencodeError::NonCanonicalLength { pos } => {
                write!(f, "bencode: non-canonical string length at {pos}")
            }
            BencodeError::IntegerOverflow { pos } => {
                write!(f, "bencode: integer overflow at {pos}")
            }
            BencodeError::UnsortedKeys { pos } => write!(f, "bencode: unsorted key at {pos}"),
            BencodeError::DuplicateKey { pos } => write!(f, "bencode: duplicate key at {pos}"),
            BencodeError::TooDeep { pos } => write!(f, "bencode: nesting too deep at {pos}"),
            BencodeError::TrailingBytes { pos } => write!(f, "bencode: trailing bytes at {pos}"),
        }
    }
}

impl core::error::Error for BencodeError {}

/// What the decoder insists on beyond the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeOptions {
    /// Refuse dictionaries whose keys are not strictly increasing as raw bytes (BEP 3).
    /// When false, keys may come in any order and repeat; [`Dict::get`] returns the first.
    pub require_sorted_keys: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            require_sorted_keys: true,
        }
    }
}

impl DecodeOptions {
    /// Accept dictionaries with keys in any order (still canonical everywhere else).
    pub const LENIENT: DecodeOptions = DecodeOptions {
        require_sorted_keys: false,
    };
}

#[cfg(test)]
mod tests;
