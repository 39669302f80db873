//! What goes wrong while fetching metadata, and whose fault it is.

use core::fmt;

use heapless::Vec;

use crate::wire::{MetadataError, WireError};

/// Why a metadata size cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SizeError {
    /// A size of 0: no info dictionary is that short.
    Empty,
    /// More bytes than the caller's buffer holds.
    LargerThanBuffer {
        /// The size offered.
        size: u32,
        /// The buffer's length.
        buffer: usize,
    },
    /// More pieces than the assembler tracks (`PIECES`).
    TooManyPieces {
        /// The size offered.
        size: u32,
        /// The most pieces the assembler tracks.
        max: usize,
    },
    /// Another size is already known; the two peers disagree.
    Conflict {
        /// The size already known.
        known: u32,
        /// The size offered.
        offered: u32,
    },
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeError::Empty => f.write_str("metadata size of 0"),
            SizeError::LargerThanBuffer { size, buffer } => {
                write!(
                    f,
                    "metadata of {size} bytes exceeds the {buffer}-byte buffer"
                )
            }
            SizeError::TooManyPieces { size, max } => {
                write!(f, "metadata of {size} bytes needs more than {max} pieces")
            }
            SizeError::Conflict { known, offered } => {
                write!(f, "metadata size {offered} contradicts the known {known}")
            }
        }
    }
}

impl core::error::Error for SizeError {}

/// What a peer did wrong in a data message it was asked for: drop and ban it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PieceFault {
    /// Its `total_size` is not one we can use (when it was the first size we heard).
    Size(SizeError),
    /// Its `total_size` is not the size already known.
    TotalSize {
        /// The size already known.
        known: u32,
        /// The `total_size` received.
        received: u32,
    },
    /// Its data is not the piece's exact length (16 KiB, or the rest for the last piece).
    Length {
        /// The piece index.
        piece: u32,
        /// The piece's length.
        expected: usize,
        /// The data's length.
        received: usize,
    },
}

impl fmt::Display for PieceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PieceFault::Size(e) => write!(f, "metadata data: {e}"),
            PieceFault::TotalSize { known, received } => {
                write!(f, "metadata data: total_size {received}, not {known}")
            }
            PieceFault::Length {
                piece,
                expected,
                received,
            } => write!(
                f,
                "metadata piece {piece}: {received} bytes instead of {expected}"
            ),
        }
    }
}

impl core::error::Error for PieceFault {}

/// Why [`MetadataAssembler::receive`](super::MetadataAssembler::receive) did not take a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiveError<K, const N: usize> {
    /// The sender broke BEP 9; its piece is missing again.
    Fault(PieceFault),
    /// Every piece arrived but their SHA-1 is not the info-hash. The assembler forgot every
    /// piece and the size; `peers` are all who sent a piece (ban them: one of them lied).
    HashMismatch {
        /// The distinct senders of the discarded pieces.
        peers: Vec<K, N>,
    },
}

impl<K, const N: usize> fmt::Display for ReceiveError<K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Fault(e) => fmt::Display::fmt(e, f),
            ReceiveError::HashMismatch { peers } => write!(
                f,
                "the metadata from {} peers does not match the info-hash",
                peers.len()
            ),
        }
    }
}

impl<K: fmt::Debug, const N: usize> core::error::Error for ReceiveError<K, N> {}

/// Why a [`MetadataFetch`](super::MetadataFetch) gave up on its peer: close the connection. All but
/// [`Size`](Self::Size) (when the size is beyond our buffers) and
/// [`OutputTooSmall`](Self::OutputTooSmall) are the peer's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FetchError {
    /// Bytes that are not the peer wire protocol, or a message longer than the buffer.
    Wire(WireError),
    /// The peer's handshake names another torrent.
    WrongInfoHash,
    /// The peer is us.
    SelfConnection,
    /// The peer's handshake does not offer the extension protocol (BEP 10).
    NoExtensionProtocol,
    /// The peer's extended handshake does not offer `ut_metadata`.
    NoUtMetadata,
    /// A `ut_metadata` message that is not valid.
    Metadata(MetadataError),
    /// A data message we asked for that does not fit the metadata.
    Piece(PieceFault),
    /// The peer's `metadata_size` is 0, or more than our buffer or `PIECES` hold.
    Size(SizeError),
    /// The shell's output buffer is shorter than [`MIN_FETCH_OUTPUT`](super::MIN_FETCH_OUTPUT).
    OutputTooSmall,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Wire(e) => fmt::Display::fmt(e, f),
            FetchError::WrongInfoHash => f.write_str("the peer's handshake names another torrent"),
            FetchError::SelfConnection => f.write_str("connected to ourselves"),
            FetchError::NoExtensionProtocol => {
                f.write_str("the peer does not support the extension protocol (BEP 10)")
            }
            FetchError::NoUtMetadata => f.write_str("the peer does not support ut_metadata"),
            FetchError::Metadata(e) => fmt::Display::fmt(e, f),
            FetchError::Piece(e) => fmt::Display::fmt(e, f),
            FetchError::Size(e) => fmt::Display::fmt(e, f),
            FetchError::OutputTooSmall => {
                f.write_str("the output buffer is shorter than MIN_FETCH_OUTPUT")
            }
        }
    }
}

impl core::error::Error for FetchError {}
