//! One torrent's storage: its data, its resume state and its write journal, kept by the core's
//! persistence rules (`enjambre_core::journal`): **write → journal → save state → trim**.
//!
//! - `<info-hash>.data`: every file of the torrent concatenated, so a piece's offset is
//!   `piece × piece_length`.
//! - `<info-hash>.state`: the session's resume state and the journal mark it includes
//!   ([`StateFile`]).
//! - `<info-hash>.journal`: the core's journal records of what was written, verified and
//!   discarded since that state.
//!
//! A browser has no boot id, so instead of trusting a journal only within one boot (as the
//! native peer does), the data is flushed before every record is appended: a record never
//! claims bytes that a crash of the browser or of the machine can lose. Records are appended
//! once per turn of the worker's loop that stored bytes ([`Store::journal`]), covering every
//! write of that turn: one flush per turn, not per block.
//!
//! The store never decides what to fetch or what counts: it stores what the session asks and
//! hands the session back the state it saved.

use crate::prelude::*;
use enjambre_core::journal::{
    self, encode_header, encode_record, record_len, BootId, Entry, Header, Ledger, Mark, Replayed,
};
use enjambre_core::session::Resume;
use enjambre_core::{Geometry, InfoHash, PieceIndex};

use crate::file::{File, IoError};
use crate::state_file::StateFile;

/// The browser session's bitfield bytes and partial pieces (`session::preset::Browser`).
pub const BYTES: usize = 4096;
/// Pieces downloading at once in the browser session.
pub const PARTIAL: usize = 16;

/// The resume state of the browser session.
pub type BrowserResume = Resume<BYTES, PARTIAL>;

/// The "boot" every browser journal is written in: always the same, since records never claim
/// unflushed data (see the module docs).
pub const BOOT: BootId = *b"enjambre-browser-opfs-flushed-data00";

/// The three files of one torrent.
#[derive(Debug)]
pub struct Files<F> {
    /// `<info-hash>.data`.
    pub data: F,
    /// `<info-hash>.state`.
    pub state: F,
    /// `<info-hash>.journal`.
    pub journal: F,
}

/// What opening found.
#[derive(Debug)]
pub struct Opened {
    /// The state to start the session from: the saved one with the journal replayed on top.
    pub resume: Option<Box<BrowserResume>>,
    /// What the journal added to the saved state.
    pub replayed: Replayed,
}

/// One torrent's storage, open.
#[derive(Debug)]
pub struct Store<F: File> {
    files: Files<F>,
    geometry: Geometry,
    layout: StateFile,
    ledger: Ledger,
    generation: u64,
    /// Facts since the last record, in order.
    pending: Vec<Entry>,
    /// Where the next record goes.
    journal_end: u64,
    /// Bytes of records no saved state includes yet.
    kept: usize,
}

impl<F: File> Store<F> {
    /// Open the storage of `info_hash`: read the saved state, replay the journal on top, save
    /// that as the run's starting state naming a fresh journal `journal_id` (random, not 0),
    /// and only then put the fresh journal in place.
    pub fn open(
        mut files: Files<F>,
        info_hash: InfoHash,
        geometry: Geometry,
        journal_id: u64,
    ) -> Result<(Self, Opened), IoError> {
        let layout = StateFile::new(BrowserResume::max_encoded_len());
        let saved = layout.load(&mut files.state)?;
        let mut replayed = Replayed::default();
        let mut generation = 0;
        let mut resume = None;
        if let Some(saved) = saved {
            generation = saved.generation;
            if let Ok(mut state) = BrowserResume::decode(&saved.core, info_hash, geometry) {
                let bytes = files.journal.read_all()?;
                replayed = journal::apply(
                    &mut state,
                    &geometry,
                    saved.mark,
                    Some(&BOOT),
                    &bytes,
                    |_, _| {},
                );
                resume = Some(Box::new(state));
            }
        }
        if files.data.size()? < geometry.total_length() {
            files.data.truncate(geometry.total_length())?;
        }
        let mut store = Store {
            files,
            geometry,
            layout,
            ledger: Ledger::new(journal_id),
            generation,
            pending: Vec::new(),
            journal_end: Header::LEN as u64,
            kept: 0,
        };
        let start = match &resume {
            Some(state) => state.as_ref().clone(),
            None => BrowserResume::new(info_hash, geometry.piece_count())
                .map_err(|_| IoError("torrent too large for the browser peer".into()))?,
        };
        let mut buf = vec![0u8; BrowserResume::max_encoded_len()];
        let core = start
            .encode(&mut buf)
            .map_err(|e| IoError(format!("resume state: {e}")))?;
        store.save_at(store.ledger.start(), core)?;
        let mut head = [0u8; Header::LEN];
        let header = Header {
            boot: BOOT,
            id: journal_id,
        };
        encode_header(&header, &mut head).map_err(|_| IoError("journal header".into()))?;
        store.files.journal.truncate(0)?;
        store.files.journal.write_at(0, &head)?;
        store.files.journal.flush()?;
        Ok((store, Opened { resume, replayed }))
    }

    /// Store `bytes` at `offset` inside `piece`; journaled with the next [`Store::journal`].
    pub fn write(&mut self, piece: PieceIndex, offset: u32, bytes: &[u8]) -> Result<(), IoError> {
        let at = self.geometry.piece_offset(piece) + u64::from(offset);
        self.files.data.write_at(at, bytes)?;
        self.note(Entry::Write {
            piece: piece.get(),
            start: offset,
            end: offset + bytes.len() as u32,
        });
        Ok(())
    }

    /// Store `bytes` at `at` in the data file in one call: the writes `parts` (piece, offset in
    /// it, length), contiguous and in order; each journaled with the next [`Store::journal`].
    pub fn write_run(
        &mut self,
        at: u64,
        bytes: &[u8],
        parts: impl Iterator<Item = (PieceIndex, u32, u32)>,
    ) -> Result<(), IoError> {
        self.files.data.write_at(at, bytes)?;
        for (piece, offset, len) in parts {
            self.note(Entry::Write {
                piece: piece.get(),
                start: offset,
                end: offset + len,
            });
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at `offset` inside `piece`.
    pub fn read(&mut self, piece: PieceIndex, offset: u32, buf: &mut [u8]) -> Result<(), IoError> {
        let at = self.geometry.piece_offset(piece) + u64::from(offset);
        let n = self.files.data.read_at(at, buf)?;
        if n < buf.len() {
            return Err(IoError("short read".into()));
        }
        Ok(())
    }

    /// Whether bytes were stored since the last record (their record is due now).
    pub fn wrote(&self) -> bool {
        self.pending
            .iter()
            .any(|e| matches!(e, Entry::Write { .. }))
    }

    /// Record a durability fact (`Verified`, `Discard`) after the writes before it.
    pub fn note(&mut self, entry: Entry) {
        if !self.ledger.is_stopped() {
            self.pending.push(entry);
        }
    }

    /// Append one record of the facts since the last one, after flushing the data they name.
    pub fn journal(&mut self) -> Result<(), IoError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.files.data.flush()?;
        let len = record_len(&self.pending);
        let Some(seq) = self.ledger.append(self.kept, len) else {
            self.pending.clear();
            return Ok(());
        };
        let mut record = vec![0u8; len];
        let appended = encode_record(seq, &self.pending, &mut record)
            .map_err(|_| IoError("journal record too long".into()))
            .and_then(|_| self.files.journal.write_at(self.journal_end, &record));
        self.pending.clear();
        if let Err(e) = appended {
            self.ledger.append_failed();
            return Err(e);
        }
        self.journal_end += len as u64;
        self.kept += len;
        Ok(())
    }

    /// Save the session's encoded resume state (`Session::encode_resume`): journal what is
    /// pending, flush the data, save the state at the journal's last record, then trim the
    /// records it includes.
    pub fn save(&mut self, core: &[u8]) -> Result<(), IoError> {
        self.journal()?;
        self.files.data.flush()?;
        let mark = Mark {
            id: self.ledger.id(),
            seq: self.ledger.last(),
        };
        self.save_at(mark, core)?;
        if self.ledger.trim(mark).is_some() {
            // The state includes every record: the journal is its header again.
            self.files.journal.truncate(Header::LEN as u64)?;
            self.journal_end = Header::LEN as u64;
            self.kept = 0;
        }
        Ok(())
    }

    fn save_at(&mut self, mark: Mark, core: &[u8]) -> Result<(), IoError> {
        self.generation += 1;
        (self.layout).save(&mut self.files.state, self.generation, mark, core)
    }

    /// The data file, to hand to the page when saving.
    pub fn data(&mut self) -> &mut F {
        &mut self.files.data
    }

    /// Close: give the files back.
    pub fn into_files(self) -> Files<F> {
        self.files
    }
}
