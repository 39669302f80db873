//! Fetching a torrent's info dictionary from peers (BEP 9), for a magnet link.
//!
//! Before the info dictionary is known there are no pieces and no [`Session`](crate::session):
//! each connection runs a [`MetadataFetch`], and all of them share one
//! [`MetadataAssembler`], which picks the pieces to ask for and puts the answers together in a
//! caller-owned buffer. Once the whole matches the info-hash the shell parses it with
//! [`metainfo`](crate::metainfo) and starts a session. Nothing here allocates, reads a clock or
//! touches a socket; the messages themselves are [`wire::MetadataMessage`](crate::wire).
//!
//! The shell's part, per connection: offer the peer's bytes to
//! [`MetadataFetch::handle_input`], drain [`MetadataFetch::poll_output`] until `Timeout` (and
//! poll again at its instant), and then:
//! - `Transmit`: write the bytes to the socket, in order.
//! - `Failed`: close the connection, call [`MetadataAssembler::forget`] for the peer, and ban
//!   it unless the reason is [`FetchError::Size`] or [`FetchError::OutputTooSmall`].
//! - `Mismatch(peers)`: close and ban those peers (and `forget` them); the fetch goes on.
//! - `Done`: [`MetadataAssembler::info`] is the info dictionary; close or hand over the
//!   connections.
//!
//! A peer that stops answering keeps its requests until they time out, and then they go to
//! the others; closing idle connections (and `forget`ting them) is the shell's choice.

mod assembler;
mod error;
mod fetch;
mod fetch_rx;

#[cfg(test)]
mod assembler_tests;
#[cfg(test)]
mod fake_peer;
#[cfg(test)]
mod fetch_tests;

pub use assembler::{MetadataAssembler, Received};
pub use error::{FetchError, PieceFault, ReceiveError, SizeError};
pub use fetch::{
    FetchConfig, FetchOutput, MetadataFetch, FETCH_RX_LEN, MAX_IN_FLIGHT, MIN_FETCH_OUTPUT,
};
