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
//! - [`wire`]: the peer wire protocol (BEP 3, 6, 9, 10, 11), decoded across a [`ring::RingBuffer`].
//! - [`tracker`]: HTTP and UDP tracker messages, both directions (BEP 3, 7, 15, 23, 48).
//! - [`bitfield`], [`progress`], [`resume`], [`picker`]: which pieces and which exact bytes
//!   are held, what to fetch next, and the state that survives a restart.
//! - [`select`]: the pieces a selection of files needs, and the globs that name files.
//! - [`session`]: one torrent's swarm, tying it all together.
//! - [`magnet`], [`metadata`]: from a magnet link to the info dictionary, fetched from peers
//!   (BEP 9) before a session can start.
//!
//! # The run loop
//! A shell owns the sockets, the clock and the storage. After every input it drains
//! [`session::Session::poll_output`] until that returns [`session::Output::Timeout`]:
//!
//! ```no_run
//! use enjambre_core::session::{preset, Command, Config, Output, MIN_OUTPUT_BUF};
//! use enjambre_core::sha1::Sha1Smol;
//! use enjambre_core::{Geometry, InfoHash, Instant, PeerId};
//!
//! # fn clock() -> Instant { Instant::ZERO }
//! # fn next_input(_deadline: Instant) -> Option<(enjambre_core::session::PeerHandle, Vec<u8>)> { None }
//! let hashes = vec![0u8; 20];
//! let geometry = Geometry::new(16384, 16384).unwrap();
//! let config = Config::new(PeerId(*b"-EJ0001-abcdefghijkl"), 6881);
//! // The browser's shape; the piece hashes are owned by the session.
//! let mut session = Box::new(preset::Browser::<Sha1Smol, Vec<u8>>::empty());
//! session.start(clock(), config, InfoHash([0; 20]), geometry, hashes, None).unwrap();
//! let mut buf = vec![0u8; MIN_OUTPUT_BUF];
//! loop {
//!     let deadline = loop {
//!         match session.poll_output(clock(), &mut buf) {
//!             Output::Timeout(at) => break at,
//!             Output::Transmit { peer, bytes } => {
//!                 /* queue `bytes` on the peer's socket; as it takes them: */
//!                 let n = bytes.len();
//!                 session.handle_sent(clock(), peer, n);
//!             }
//!             Output::Write { op, piece, offset, bytes } => {
//!                 /* store `bytes`, then: */
//!                 session.handle_write_done(clock(), op, Ok(()));
//!             }
//!             Output::Command(Command::Connect { peer, addr }) => { /* open a socket */ }
//!             Output::Command(_other) => { /* see the contract below */ }
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
//!
//! # The shell contract
//! Which input answers each output, when, and what a slow shell costs. Every rule has a
//! transcript test in `session/tests/contract.rs`.
//!
//! | output | the shell… | answered by | if the shell is slow |
//! |---|---|---|---|
//! | `Transmit { peer, bytes }` | writes `bytes` to the peer's socket, in order | `handle_sent(peer, n)` as the socket takes bytes | nothing more for that peer beyond its send window |
//! | `Write { op, .. }` | stores the bytes | `handle_write_done(op, result)` | at most `OPS` operations wait; the rest of the input waits in the receive rings |
//! | `Command::SendBlock { peer, .. }` | writes the 13-byte header, then the block from storage | `handle_sent(peer, 13 + len)` | as `Transmit` |
//! | `Command::Read { op, .. }` | reads the bytes back | `handle_read_done(op, result)` | the piece's check waits |
//! | `Command::Connect { peer, addr }` | opens a connection | `handle_connected` or `handle_connect_failed` | the slot waits (the shell's own timeout ends it) |
//! | `Command::Close { peer, .. }` | closes the socket; the slot is already free | nothing | — |
//! | `Command::Announce { .. }` | announces (see [`tracker::client`]) | `handle_announce_ok` + `handle_peers`, or `handle_announce_failed` | no other announce starts |
//! | `Command::PersistResume` | flushes the data, then saves [`session::Session::encode_resume`] atomically | nothing | asked again at most every `persist_interval` |
//! | `Command::PieceVerified` / `PieceDiscarded` | records the fact (journal) in order with the writes before it | nothing | never dropped: no new piece starts while `PARTIAL` pieces and facts are pending |
//! | `Event(..)` | shows it | nothing | beyond `EVENTS` queued, the newest are dropped |
//! | `Timeout(at)` | waits for input or `at` | `handle_timeout` | timers run late, nothing is lost |
//!
//! - **Back-pressure.** Per peer, the bytes of `Transmit`s and `SendBlock`s (13 + `len`) not yet
//!   confirmed with `handle_sent` never exceed [`session::Config::send_window`] (at least
//!   [`session::MIN_SEND_WINDOW`], one block and its company). A shell whose socket is full
//!   simply does not confirm; it never buffers more than the window for one peer, and needs
//!   no buffer at all for block data it can stream from storage.
//! - **Uploads** count when `handle_sent` covers the whole `SendBlock`, not when it is asked.
//! - **Closing.** When a socket ends, the shell offers every byte it read before the end
//!   (draining between offers, as always), then calls `handle_closed`. After a
//!   `Command::Close`, bytes still offered for that peer are taken and dropped.
//! - **`Write` bytes** are always the first `bytes.len()` bytes of the buffer given to
//!   `poll_output`: a shell may hand that very buffer to storage and poll with a fresh one.
//! - **Persistence.** Write, then journal (the `Write`s and the facts, in order), then save
//!   the state, then trim the journal: [`journal`] holds the record codec and the rules.
//! - **Memory.** A session is one value of fixed size: [`session::Session::EMPTY`] for a
//!   `static`, [`session::Session::empty`] for the heap, then [`session::Session::start`] in
//!   place. [`session::preset`] lists the shapes and their sizes.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod bencode;
pub mod bitfield;
pub mod decimal;
pub mod flash_image;
pub mod geometry;
pub mod ids;
pub mod journal;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod mse;
pub mod picker;
pub mod progress;
pub mod resume;
pub mod ring;
pub mod rng;
pub mod select;
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
