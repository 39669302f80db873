//! The BitTorrent peer wire protocol (BEP 3, BEP 6 fast extension, BEP 10 extension protocol,
//! BEP 9 `ut_metadata` and BEP 11 `ut_pex` messages, and our own `enjambre_partial`).
//!
//! Decoders read straight out of a receive ring's two halves ([`Split`]), so a message that wraps
//! around the end of the ring is never copied. They return [`Status::Partial`] while more bytes
//! are needed (never an error), reject an oversized length prefix as soon as its four bytes are
//! readable, and never panic on any input. Encoders write into caller-owned slices and never
//! allocate. What a message *means* at a given moment (a piece that was never requested, a
//! bitfield of the wrong size) is the session's business, not this module's.

mod enjambre_partial;
mod extended;
mod handshake;
mod message;
mod split;
mod ut_metadata;
mod ut_pex;

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod enjambre_partial_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod ut_metadata_tests;
#[cfg(test)]
mod ut_pex_tests;

pub use enjambre_partial::{
    PartialError, PartialField, PartialMessage, PartialPiece, PartialUpdate, MAX_PARTIAL_PIECES,
    MAX_PARTIAL_RANGES,
};
pub use extended::{ExtendedHandshake, EXTENDED_HANDSHAKE_ID};
pub use handshake::{Extensions, Handshake, HANDSHAKE_LEN, PROTOCOL};
pub(crate) use message::BITFIELD as BITFIELD_ID;
pub use message::{piece_header, Message};
pub use split::Split;
pub use ut_metadata::{
    metadata_piece, metadata_piece_count, metadata_piece_len, MetadataError, MetadataField,
    MetadataMessage, METADATA_PIECE_LEN,
};
pub use ut_pex::{PexError, PexField, PexFlags, PexMessage, PexUpdate};

use core::fmt;

/// The outcome of a decoder that may need more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status<T> {
    /// A whole item was decoded.
    Complete(T),
    /// The bytes so far are a valid beginning; call again when more have arrived.
    Partial,
}

impl<T> Status<T> {
    /// Return the decoded item, or `None` while partial.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(t) => Some(t),
            Status::Partial => None,
        }
    }

    /// Return whether more bytes are needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}

/// Bytes that are not a valid peer wire message. A peer that sends them should be disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WireError {
    /// The handshake does not start with `\x13BitTorrent protocol`.
    BadProtocol,
    /// A length prefix is above the limit the caller allows.
    MessageTooLong {
        /// The length prefix received.
        len: u32,
        /// The caller's limit.
        max: u32,
    },
    /// A message's length prefix does not fit its id (e.g. a `have` that is not 5 bytes).
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix received.
        len: u32,
    },
    /// A message id this module does not know.
    UnknownMessage {
        /// The message id.
        id: u8,
    },
    /// The BEP 10 handshake payload is not valid bencode.
    Bencode(crate::bencode::BencodeError),
    /// The BEP 10 handshake payload is bencode but not a dictionary, or its `m` is not one.
    BadExtendedHandshake,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadProtocol => f.write_str("not a BitTorrent handshake"),
            WireError::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            WireError::BadLength { id, len } => {
                write!(f, "message id {id} cannot be {len} bytes long")
            }
            WireError::UnknownMessage { id } => write!(f, "unknown message id {id}"),
            WireError::Bencode(e) => write!(f, "extended handshake: {e}"),
            WireError::BadExtendedHandshake => {
                f.write_str("extended handshake is not a dictionary with an `m` dictionary")
            }
        }
    }
}

impl core::error::Error for WireError {}
