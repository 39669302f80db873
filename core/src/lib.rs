//! Enjambre's BitTorrent core: codecs, piece-store accounting and the peer session.
//!
//! This crate never opens a socket, reads a file, reads a clock, allocates or touches global
//! state. Time, bytes and storage results are inputs; transmits, commands and events are
//! outputs. Every capacity (peers, pieces, partial pieces, buffer sizes) is chosen by the caller
//! through const generics or caller-owned slices, so the same code runs on a microcontroller, in a
//! browser and on a server. Overflowing a capacity is an error value, never a panic.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod bencode;
pub mod bitfield;
pub mod geometry;
pub mod ids;
pub mod metainfo;
pub mod picker;
pub mod progress;
pub mod resume;
pub mod ring;
pub mod session;
pub mod sha1;
pub mod time;
pub mod tracker;
pub mod wire;

pub use geometry::{BlockRef, Geometry, PieceIndex, BLOCK_LEN};
pub use ids::{InfoHash, PeerId};
pub use time::{Duration, Instant};

/// The output buffer given to an encoder was too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// How many bytes the encoding needs in total.
    pub required: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "output buffer too small: {} bytes required",
            self.required
        )
    }
}

impl core::error::Error for BufferTooSmall {}
