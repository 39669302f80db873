//! Enjambre on a board: a seeder that serves one file from flash to any BitTorrent client over
//! `embassy-net`, announcing to HTTP trackers and answering their polls like any peer.
//!
//! No heap, no `unsafe`. Every byte of memory is the caller's: the core session (the
//! `McuSeeder` shape, ~10 KiB, in a `static`), the sockets' buffers ([`Buffers`]), and the
//! stack the application runs on. The same code runs on the firmware and, over a TAP device, on
//! a host (`embedded/host`): only `main`, the network device and the time driver differ.
//!
//! - [`seeder`]: the run loop, one task for every peer socket;
//! - [`announce`]: HTTP announces through the core's tracker client;
//! - [`source`]: the file, read straight into the sockets (`&[u8]` or a NOR flash);
//! - [`outbox`]: what a peer's socket has not taken yet, blocks as places in the file;
//! - [`board`]: a board's peer id and MAC address from its seed;
//! - [`image`]: the file from a flash image, checked at boot;
//! - `embed` (feature `build`): what a build script runs to embed a file.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "build")]
extern crate std;

#[macro_use]
mod fmt;

pub mod announce;
pub mod board;
#[cfg(feature = "build")]
pub mod embed;
pub mod image;
pub mod outbox;
pub mod seeder;
pub mod source;
mod time;

pub use board::mac_address;
pub use seeder::{run, start, Buffers, Session, Settings, Torrent, OUTPUT_BUF, SLOTS, SOCKETS};
pub use source::{BlockSource, NorFlash, ReadError};
