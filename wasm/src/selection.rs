//! Which files of a multi-file torrent the page downloads, and the pieces that takes.
//!
//! The page lists the torrent's files without its BEP 47 pad files; a selection is one flag
//! per listed file. It is kept in `<info-hash>.select` (one byte per listed file, `1` or `0`)
//! so a reload downloads what the person chose, and turned into the session's wanted pieces
//! by the core's rule (`enjambre_core::select`): a piece holding a byte of a selected file is
//! wanted whole. A straddling piece's bytes of a skipped file stay in the data file, which the
//! person never sees: saving writes out selected files only.
//!
//! A selection file that is missing, or whose length does not match the torrent, selects
//! everything: at worst more is downloaded, never less than asked.

use crate::prelude::*;
use enjambre_core::bitfield::Bitfield;
use enjambre_core::select::mark_span;

use crate::engine::BrowserSession;
use crate::file::{File, IoError};
use crate::store::BYTES;
use crate::torrent::Torrent;

/// One flag per listed (not pad) file of a torrent: whether the page downloads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<bool>);

impl Selection {
    /// Every listed file of `torrent`.
    pub fn all(torrent: &Torrent) -> Selection {
        Selection(vec![true; listed(torrent)])
    }

    /// The selection stored in `file` for `torrent`; everything when there is none or it does
    /// not fit the torrent.
    pub fn load(file: &mut impl File, torrent: &Torrent) -> Result<Selection, IoError> {
        let bytes = file.read_all()?;
        let fits = bytes.len() == listed(torrent) && bytes.iter().all(|b| matches!(b, b'0' | b'1'));
        Ok(if fits {
            Selection(bytes.iter().map(|&b| b == b'1').collect())
        } else {
            Selection::all(torrent)
        })
    }

    /// Store the selection in `file`, replacing what it held, and flush it.
    pub fn save(&self, file: &mut impl File) -> Result<(), IoError> {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .map(|&s| if s { b'1' } else { b'0' })
            .collect();
        file.truncate(0)?;
        file.write_at(0, &bytes)?;
        file.flush()
    }

    /// The selection `flags` (one per listed file, non-zero for selected) for `torrent`, or a
    /// sentence for the page when it does not fit or selects nothing.
    pub fn from_flags(flags: &[u8], torrent: &Torrent) -> Result<Selection, String> {
        if flags.len() != listed(torrent) {
            return Err(format!(
                "a selection of {} files for a torrent of {}",
                flags.len(),
                listed(torrent)
            ));
        }
        if flags.iter().all(|&f| f == 0) {
            return Err("select at least one file to download".into());
        }
        Ok(Selection(flags.iter().map(|&f| f != 0).collect()))
    }

    /// Whether the listed file `k` is selected.
    pub fn is_selected(&self, k: usize) -> bool {
        self.0.get(k).copied().unwrap_or(false)
    }

    /// Whether every listed file is selected.
    pub fn is_all(&self) -> bool {
        self.0.iter().all(|&s| s)
    }

    /// Make `session` download the pieces of the selected files only.
    pub fn apply(&self, torrent: &Torrent, session: &mut BrowserSession) -> Result<(), String> {
        session
            .set_wanted(&self.wanted(torrent))
            .map_err(|e| e.to_string())
    }

    /// The pieces holding a byte of a selected file.
    pub fn wanted(&self, torrent: &Torrent) -> Bitfield<BYTES> {
        let geometry = &torrent.geometry;
        let mut wanted = Bitfield::empty();
        // A torrent the session took has at most `BYTES * 8` pieces.
        let _ = wanted.reset(geometry.piece_count());
        let mut offset = 0;
        let mut k = 0;
        for f in &torrent.files {
            if !f.pad {
                if self.is_selected(k) {
                    mark_span(geometry, offset, f.length, &mut wanted);
                }
                k += 1;
            }
            offset += f.length;
        }
        wanted
    }
}

/// The files the page lists: all but pad files.
fn listed(torrent: &Torrent) -> usize {
    torrent.files.iter().filter(|f| !f.pad).count()
}
