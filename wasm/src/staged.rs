//! Writes held back to be stored together: contiguous bytes of the data file and the session's
//! write operations they answer.
//!
//! An OPFS `write` costs about 80 µs whatever its size up to hundreds of KiB, so a 16 KiB block
//! per call held the page to about 200 MB/s of writing with nothing else to do. Blocks that
//! follow each other in the file (one peer's piece, in order) are gathered here and written by
//! one call. Nothing here is confirmed to the session before that call returned.

use crate::prelude::*;
use enjambre_core::session::OpId;
use enjambre_core::PieceIndex;

/// Bytes gathered at most before they are written.
pub const MAX_BYTES: usize = 1 << 20;
/// Operations gathered at most (the session allows 256 at once).
pub const MAX_OPS: usize = 64;

/// Gathered writes: `bytes` belong at `at` in the data file.
#[derive(Default)]
pub struct Staged {
    at: u64,
    pub bytes: Vec<u8>,
    /// Each operation, with the piece, the offset in it and the length it wrote.
    pub ops: Vec<(OpId, PieceIndex, u32, u32)>,
}

impl Staged {
    /// Whether `len` bytes at `at` can join what is gathered (contiguous, within the bounds).
    pub fn takes(&self, at: u64, len: usize) -> bool {
        self.ops.is_empty()
            || (self.at + self.bytes.len() as u64 == at
                && self.bytes.len() + len <= MAX_BYTES
                && self.ops.len() < MAX_OPS)
    }

    /// Gather `bytes` of operation `op`, at `at` in the file (call [`Staged::takes`] first).
    pub fn push(&mut self, at: u64, op: OpId, piece: PieceIndex, offset: u32, bytes: &[u8]) {
        if self.ops.is_empty() {
            self.at = at;
        }
        self.bytes.extend_from_slice(bytes);
        self.ops.push((op, piece, offset, bytes.len() as u32));
    }

    /// Whether to write now rather than gather more.
    pub fn full(&self) -> bool {
        self.ops.len() >= MAX_OPS || self.bytes.len() >= MAX_BYTES - 16384
    }

    /// Where the gathered bytes go in the data file.
    pub fn at(&self) -> u64 {
        self.at
    }

    /// Forget what was gathered (after writing it), keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
    }
}
