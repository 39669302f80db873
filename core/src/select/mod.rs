//! File selection: which pieces a download needs when only some of a torrent's files are
//! wanted, and the glob patterns that name those files.
//!
//! A piece is wanted when it holds at least one byte of a selected file. A piece that straddles
//! a selected and a skipped file is wanted whole (its hash covers both); where the skipped
//! file's bytes go is the shell's business. Zero-length files and BEP 47 pad files hold no
//! byte of their own, so they never make a piece wanted.

mod glob;

pub use glob::glob_match;

use crate::bitfield::{Bitfield, CapacityError};
use crate::geometry::Geometry;
use crate::metainfo::FileEntry;

/// Set in `wanted` every piece holding a byte of `length` bytes at torrent-wide `offset`;
/// bytes past the torrent's end are ignored. Other bits are left as they are.
pub fn mark_span<const B: usize>(
    geometry: &Geometry,
    offset: u64,
    length: u64,
    wanted: &mut Bitfield<B>,
) {
    let end = offset.saturating_add(length).min(geometry.total_length());
    if offset >= end {
        return;
    }
    let piece_length = u64::from(geometry.piece_length());
    let (first, last) = (offset / piece_length, (end - 1) / piece_length);
    for piece in first..=last {
        if let Ok(piece) = u32::try_from(piece) {
            wanted.set(piece, true);
        }
    }
}

/// Make `wanted` the pieces that hold a byte of a file `selected` accepts (pad files never
/// count), for a torrent of `geometry` whose files are `files`.
pub fn wanted_pieces<'a, const B: usize>(
    geometry: &Geometry,
    files: impl IntoIterator<Item = FileEntry<'a>>,
    mut selected: impl FnMut(&FileEntry<'a>) -> bool,
    wanted: &mut Bitfield<B>,
) -> Result<(), CapacityError> {
    wanted.reset(geometry.piece_count())?;
    for file in files {
        if !file.pad && selected(&file) {
            mark_span(geometry, file.offset, file.length, wanted);
        }
    }
    Ok(())
}

/// Return the total length of the pieces set in `wanted`: the bytes a selection downloads.
pub fn wanted_bytes<const B: usize>(geometry: &Geometry, wanted: &Bitfield<B>) -> u64 {
    (wanted.iter_ones())
        .filter_map(|i| geometry.piece(i))
        .map(|p| u64::from(geometry.piece_len(p)))
        .sum()
}

#[cfg(test)]
mod tests;
