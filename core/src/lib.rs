//! Enjambre's BitTorrent core: codecs, piece-store accounting and the peer session.
//!
//! This crate never opens a socket, reads a file, reads a clock, allocates or touches global
//! state. Time, bytes and storage results are inputs; transmits, commands and events are
//! outputs. Every capacity (peers, pieces, partial pieces, buffer sizes) is chosen by the caller
//! through const generics or caller-owned slices, so the same code runs on a microcontroller, in a
//! browser and on a server. Overflowing a capacity is an error value, never a panic.
//!
//! # Layers
//! - [`bencode`], [`metainfo`]: `.torrent` files and bencoded values, zero-copy.
//! - [`wire`]: the peer wire protocol (BEP 3, 6, 10), decoded across a [`ring::RingBuffer`].
//! - [`tracker`]: HTTP and UDP tracker messages, both directions (BEP 3, 7, 15, 23, 48).
//! - [`bitfield`], [`progress`], [`resume`], [`picker`]: which pieces and which exact bytes
//!   are held, what to fetch next, and the state that survives a restart.
//! - [`session`]: one torrent's swarm, tying it all together.
//!
//! # The run loop
//! A shell owns the sockets, the clock and the storage. After every input it drains
//! [`session::Session::poll_output`] until that returns [`session::Output::Timeout`]:
//!
//! ```no_run
//! use enjambre_core::session::{Command, Config, Output, Session, MIN_OUTPUT_BUF};
//! use enjambre_core::sha1::Sha1Smol;
//! use enjambre_core::{Geometry, InfoHash, Instant, PeerId};
//!
//! # fn clock() -> Instant { Instant::ZERO }
//! # fn next_input(_deadline: Instant) -> Option<(enjambre_core::session::PeerHandle, Vec<u8>)> { None }
//! let hashes = [0u8; 20];
//! let geometry = Geometry::new(16384, 16384).unwrap();
//! let config = Config::new(PeerId(*b"-EJ0001-abcdefghijkl"), 6881);
//! // 8 peers, 1 KiB of bitfield, 4 pieces in flight, 32 KiB receive ring, 16 requests per peer.
//! let mut session: Session<'_, Sha1Smol, 8, 1024, 4, 32768, 16> =
//!     Session::new(clock(), config, InfoHash([0; 20]), geometry, &hashes, None).unwrap();
//! let mut buf = vec![0u8; MIN_OUTPUT_BUF];
//! loop {
//!     let deadline = loop {
//!         match session.poll_output(clock(), &mut buf) {
//!             Output::Timeout(at) => break at,
//!             Output::Transmit { peer, bytes } => { /* write `bytes` to the peer's socket */ }
//!             Output::Write { op, piece, offset, bytes } => {
//!                 /* store `bytes`, then: */
//!                 session.handle_write_done(clock(), op, Ok(()));
//!             }
//!             Output::Command(Command::Connect { peer, addr }) => { /* open a socket */ }
//!             Output::Command(_other) => { /* close, serve a block, read back, announce, persist */ }
//!             Output::Event(event) => println!("{event:?}"),
//!         }
//!     };
//!     match next_input(deadline) {
//!         Some((peer, bytes)) => {
//!             let mut rest = &bytes[..];
//!             while !rest.is_empty() {
//!                 let taken = session.handle_input(clock(), peer, rest);
//!                 rest = &rest[taken..];
//!                 // (drain poll_output again before offering the rest)
//! #               if taken == 0 { break }
//!             }
//!         }
//!         None => session.handle_timeout(clock()),
//!     }
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod bencode;
pub mod bitfield;
pub mod geometry;
pub mod ids;
pub mod journal;
pub mod metainfo;
pub mod picker;
pub mod progress;
pub mod resume;
pub mod ring;
pub mod rng;
pub mod session;
pub mod sha1;
pub mod time;
pub mod tracker;
pub mod wire;

#[cfg(feature = "defmt")]
mod defmt_check;

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
