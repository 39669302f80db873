//! Fetching a torrent's info dictionary from peers (BEP 9), for a magnet link.
//!
//! Before the info dictionary is known there are no pieces and no [`Session`](crate::session):
//! each connection runs a [`MetadataFetch`], and all of them share one
//! [`MetadataAssembler`], which picks the pieces to ask for and puts the answers together in a
//! caller-owned buffer. Once the whole matches the info-hash the shell parses it with
//! [`metainfo`](crate::metainfo) and starts a session. Nothing here allocates, reads a clock or
//! touches a socket; the messages themselves are [`wire::MetadataMessage`](crate::wire).

mod assembler;
mod fetch;

#[cfg(test)]
mod assembler_tests;
#[cfg(test)]
mod fetch_tests;

pub use assembler::{MetadataAssembler, PieceFault, ReceiveError, Received, SizeError};
pub use fetch::{
    FetchConfig, FetchOutput, MetadataFetch, FETCH_RX_LEN, MAX_IN_FLIGHT, MIN_FETCH_OUTPUT,
};

use core::fmt;

use crate::wire::{MetadataError, WireError};

/// Why a [`MetadataFetch`] gave up on its peer: close the connection. All but
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
    /// The shell's output buffer is shorter than [`MIN_FETCH_OUTPUT`].
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
