//! The write journal: what the block thread put on disk since the last resume state, so a
//! `kill -9` while data streams in loses nothing that was written.
//!
//! The resume state is saved about once a second; the journal covers the gap. After each batch
//! of writes the block thread appends one record listing the byte ranges it wrote (after the
//! `pwrite`s, so a record never claims bytes that are not in the page cache), the pieces the
//! session verified or discarded, and the new length and mtime of each file it touched. Records
//! carry a sequence number; a resume state names the journal (by a random id) and the last
//! sequence number it already includes, and a restart replays only the records after it.
//!
//! Like a same-boot resume state, the journal is trusted only within the boot that wrote it: it
//! is never flushed, since a process crash keeps the page cache. A torn or damaged record ends
//! the replay; everything before it still counts. This module never interprets the pieces.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use enjambre_core::journal::{self as codec, Header, Ledger};
pub use enjambre_core::journal::{Entry, Mark};

use super::resume_file::BootId;

/// The journal being written (owned by the block thread).
pub struct Journal {
    path: PathBuf,
    file: File,
    boot: BootId,
    /// Sequence numbers, trims and when to stop, by the core's rules.
    ledger: Ledger,
    /// Encoded records not yet covered by a saved state, kept to rewrite the file on trim.
    kept: Vec<(u64, Vec<u8>)>,
    /// Bytes in `kept`.
    kept_bytes: usize,
}

impl Journal {
    /// The journal beside a resume file: `<resume path>.journal`.
    pub fn path_for(resume: &Path) -> PathBuf {
        resume.with_extension("journal")
    }

    /// Start an empty journal with a new random id at `path`, replacing any old one
    /// atomically. Write the resume state that names it before [`Journal::install`]-ing it.
    pub fn prepare(path: &Path, boot: BootId) -> io::Result<Prepared> {
        let id = loop {
            let id = rand::random::<u64>();
            if id != 0 {
                break id;
            }
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("journal.tmp");
        write_file(&tmp, id, boot, &[])?;
        Ok(Prepared {
            tmp,
            path: path.to_path_buf(),
            id,
            boot,
        })
    }

    /// Return the journal's id.
    pub fn id(&self) -> u64 {
        self.ledger.id()
    }

    /// Append one record of `entries`; returns its sequence number, or `None` when nothing
    /// was recorded (no entries, or the journal has stopped).
    pub fn append(&mut self, entries: &[Entry]) -> Option<u64> {
        if entries.is_empty() || self.ledger.is_stopped() {
            return None;
        }
        let len = codec::record_len(entries);
        let Some(seq) = self.ledger.append(self.kept_bytes, len) else {
            tracing::warn!(path = %self.path.display(), "write journal stopped: no resume save");
            return None;
        };
        let mut record = vec![0u8; len];
        if codec::encode_record(seq, entries, &mut record).is_err() {
            tracing::warn!(path = %self.path.display(), "write journal stopped: record too long");
            self.ledger.append_failed();
            return None;
        }
        if let Err(e) = self.file.write_all(&record) {
            tracing::warn!(error = %e, path = %self.path.display(), "write journal stopped");
            self.ledger.append_failed();
            return None;
        }
        self.kept_bytes += record.len();
        self.kept.push((seq, record));
        Some(seq)
    }

    /// Drop the records up to `seq`, which a saved resume state now includes, by rewriting the
    /// file with the rest (atomically).
    pub fn trim(&mut self, seq: u64) {
        let saved = Mark {
            id: self.ledger.id(),
            seq,
        };
        let Some(seq) = self.ledger.trim(saved) else {
            return;
        };
        self.kept.retain(|(s, _)| *s > seq);
        self.kept_bytes = self.kept.iter().map(|(_, r)| r.len()).sum();
        if self.ledger.is_stopped() {
            return;
        }
        let records: Vec<&[u8]> = self.kept.iter().map(|(_, r)| r.as_slice()).collect();
        let tmp = self.path.with_extension("journal.tmp");
        let reopened = write_file(&tmp, self.ledger.id(), self.boot, &records)
            .and_then(|()| fs::rename(&tmp, &self.path))
            .and_then(|()| OpenOptions::new().append(true).open(&self.path));
        match reopened {
            Ok(file) => self.file = file,
            Err(e) => {
                // The old file is still whole (or replaced by a whole one): only stop adding.
                tracing::warn!(error = %e, path = %self.path.display(), "write journal stopped");
                self.ledger.append_failed();
            }
        }
    }
}

/// A new journal written beside its final path, not yet in place.
pub struct Prepared {
    tmp: PathBuf,
    path: PathBuf,
    id: u64,
    boot: BootId,
}

impl Prepared {
    /// Return the new journal's id, for the resume state that will name it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Put the journal in place and open it for appending.
    pub fn install(self) -> io::Result<Journal> {
        fs::rename(&self.tmp, &self.path)?;
        let file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(Journal {
            path: self.path,
            file,
            boot: self.boot,
            ledger: Ledger::new(self.id),
            kept: Vec::new(),
            kept_bytes: 0,
        })
    }
}

fn write_file(path: &Path, id: u64, boot: BootId, records: &[&[u8]]) -> io::Result<()> {
    let mut bytes = vec![0u8; Header::LEN];
    codec::encode_header(&Header { boot, id }, &mut bytes).expect("sized for the header");
    for r in records {
        bytes.extend_from_slice(r);
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal at `path` as the core reads it: id, boot and every whole record.
    fn read_back(path: &Path) -> (u64, BootId, Vec<(u64, Vec<Entry>)>) {
        let bytes = fs::read(path).unwrap();
        let (header, records) = codec::read(&bytes).unwrap();
        let records = records.map(|r| (r.seq, r.entries().collect())).collect();
        (header.id, header.boot, records)
    }
    use crate::peer::storage::FileStamp;

    const BOOT: BootId = [b'b'; 36];

    fn stamp(n: u64) -> FileStamp {
        FileStamp {
            length: n,
            mtime_ns: -(n as i128) * 1_000_000_007,
        }
    }

    fn sample() -> Vec<Vec<Entry>> {
        vec![
            vec![
                Entry::Write {
                    piece: 0,
                    start: 0,
                    end: 16384,
                },
                Entry::Stamp(0, stamp(5)),
            ],
            vec![Entry::Verified(0), Entry::Discard(7)],
            vec![
                Entry::Write {
                    piece: u32::MAX,
                    start: 1,
                    end: u32::MAX,
                },
                Entry::Stamp(3, stamp(u64::MAX)),
            ],
        ]
    }

    fn journal_at(dir: &Path) -> Journal {
        let path = Journal::path_for(&dir.join("x.resume"));
        Journal::prepare(&path, BOOT).unwrap().install().unwrap()
    }

    #[test]
    fn appended_records_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal_at(dir.path());
        assert_eq!(j.append(&[]), None, "an empty record is not written");
        let seqs: Vec<_> = sample().iter().map(|e| j.append(e).unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        let (id, boot, records) = read_back(&j.path);
        assert_eq!((id, boot), (j.id(), BOOT));
        let read: Vec<_> = records.into_iter().map(|(_, e)| e).collect();
        assert_eq!(read, sample());
    }

    #[test]
    fn trim_keeps_only_what_no_saved_state_includes() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal_at(dir.path());
        for e in sample() {
            j.append(&e).unwrap();
        }
        j.trim(2);
        let next = j.append(&[Entry::Verified(9)]).unwrap();
        assert_eq!(next, 4, "sequence numbers go on after a trim");
        let (id, _, records) = read_back(&j.path);
        let seqs: Vec<u64> = records.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [3, 4]);
        assert_eq!(id, j.id());
    }

    #[test]
    fn a_prepared_journal_replaces_the_old_one_only_when_installed() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = journal_at(dir.path());
        old.append(&sample()[0]).unwrap();
        let prepared = Journal::prepare(&old.path, BOOT).unwrap();
        assert_ne!(prepared.id(), old.id());
        let (still, _, records) = read_back(&old.path);
        assert_eq!((still, records.len()), (old.id(), 1));
        let new = prepared.install().unwrap();
        let (now, _, records) = read_back(&old.path);
        assert_eq!((now, records.len()), (new.id(), 0));
    }

    #[test]
    fn a_journal_no_save_ever_trims_stops_at_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal_at(dir.path());
        let big: Vec<Entry> = (0..4096)
            .map(|piece| Entry::Write {
                piece,
                start: 0,
                end: 1,
            })
            .collect();
        let mut records = 0;
        while j.append(&big).is_some() {
            records += 1;
            assert!(records < 10_000, "never stopped");
        }
        assert!(j.kept_bytes <= codec::MAX_KEPT);
        let (_, _, read) = read_back(&j.path);
        assert_eq!(read.len(), records, "what was written still reads back");
    }
}
