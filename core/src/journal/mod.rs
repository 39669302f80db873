//! The write journal's bytes and rules, shared by every shell that persists a download.
//!
//! A resume state is saved now and then; the journal covers the gap. The order every shell keeps:
//!
//! 1. **write** a batch of blocks to storage;
//! 2. **journal** one record of what that batch put there (the ranges written, the pieces
//!    verified or discarded, in order with the writes, and the new stamp of each file touched),
//!    after the writes, so a record never claims bytes that are not stored;
//! 3. **save state**: the resume state names the journal's id and the last record it includes
//!    ([`Mark`]);
//! 4. **trim**: the records up to that mark are dropped only once the state naming it is saved.
//!
//! A new run first saves the state it starts from naming a fresh, empty journal, and only then
//! puts that journal in place, so a crash in between leaves a journal nobody names rather than a
//! wrong one. On restart the records after the state's mark are replayed ([`apply`]); the first
//! torn or damaged record ends the replay and everything before it still counts.
//!
//! This module never reads or writes storage: it turns facts into bytes and bytes into facts, and
//! [`Ledger`] keeps the sequence numbers in that order. The file handling (append, atomic
//! rewrite on trim) is the shell's.

mod codec;
mod ledger;
#[cfg(test)]
mod tests;

pub use codec::{encode_header, encode_record, read, record_len, Entries, Header, Record, Records};
pub use ledger::{Ledger, MAX_KEPT};

use crate::resume::{ResumeError, ResumeState};
use crate::Geometry;

/// The journal file's first bytes.
pub const MAGIC: &[u8; 16] = b"ENJAMBRE-JOURNL1";
/// Length of the boot id a journal is trusted within (the text of a Linux boot id).
pub const BOOT_ID_LEN: usize = 36;
/// A record whose payload is longer than this is damage, not a record.
pub const MAX_RECORD: usize = 1 << 20;

/// Which boot wrote a journal: a journal is trusted only in the boot that wrote it, since it is
/// never flushed (a process crash keeps the page cache, a reboot may not).
pub type BootId = [u8; BOOT_ID_LEN];

/// A file's length and modification time as the journal records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stamp {
    /// Length in bytes.
    pub length: u64,
    /// Modification time, nanoseconds since the epoch (negative before it).
    pub mtime_ns: i128,
}

/// One fact in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Entry {
    /// Bytes `[start, end)` of `piece` were written.
    Write {
        /// Piece.
        piece: u32,
        /// First byte, inside the piece.
        start: u32,
        /// One past the last byte.
        end: u32,
    },
    /// The piece passed its hash check.
    Verified(u32),
    /// The piece's bytes were discarded (a failed hash check).
    Discard(u32),
    /// The data file with this index now has this stamp.
    Stamp(u32, Stamp),
}

/// Which journal a resume state continues, and how far it already includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mark {
    /// The journal's random id (0: none).
    pub id: u64,
    /// The last record the state includes (0: none of them).
    pub seq: u64,
}

impl Mark {
    /// Whether a state saved at this mark continues the journal `header` in the boot `boot`
    /// (`None`: the boot is unknown, so nothing is trusted).
    pub fn continues(&self, header: &Header, boot: Option<&BootId>) -> bool {
        self.id != 0 && self.id == header.id && boot == Some(&header.boot)
    }
}

/// What a replay changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Replayed {
    /// Records applied.
    pub records: u64,
    /// Bytes newly counted as written.
    pub bytes: u64,
    /// The first entry the state refused (out of range for this torrent), which ended the replay.
    pub refused: Option<Entry>,
}

/// Replay into `state` (saved at `mark`) the records of the journal `bytes` that it does not
/// include yet, when that journal continues it in boot `boot`. `stamp` receives every file
/// stamp in order, for the shell's check of files changed behind its back.
///
/// Stops at the first torn or damaged record, and at the first entry the state refuses.
pub fn apply<const BYTES: usize, const PARTIAL: usize, const RANGES: usize>(
    state: &mut ResumeState<BYTES, PARTIAL, RANGES>,
    geometry: &Geometry,
    mark: Mark,
    boot: Option<&BootId>,
    bytes: &[u8],
    mut stamp: impl FnMut(u32, Stamp),
) -> Replayed {
    let mut done = Replayed::default();
    let Some((header, records)) = read(bytes) else {
        return done;
    };
    if !mark.continues(&header, boot) {
        return done;
    }
    for record in records.filter(|r| r.seq > mark.seq) {
        for entry in record.entries() {
            let applied: Result<(), ResumeError> = match entry {
                Entry::Write { piece, start, end } => state
                    .record_write(geometry, piece, start, end)
                    .map(|n| done.bytes += u64::from(n)),
                Entry::Verified(piece) => state.record_verified(piece),
                Entry::Discard(piece) => state.record_discard(piece),
                Entry::Stamp(file, s) => {
                    stamp(file, s);
                    Ok(())
                }
            };
            if applied.is_err() {
                done.refused = Some(entry);
                return done;
            }
        }
        done.records += 1;
    }
    done
}
