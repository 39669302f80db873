//! The storage threads: one writes and reads blocks in order (positional I/O, so the async
//! loop never waits on the disk) and journals what it wrote; one flushes the files and then
//! replaces the resume file, so downloading continues while `fdatasync` runs.

use std::sync::Arc;

use enjambre_core::session::OpId;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::journal::{Entry, Journal, Mark};
use super::pool::BufPool;
use super::resume_file::{Durability, ResumeFile};
use super::storage::{Storage, StorageError};

/// Work for the block thread.
pub enum IoOp {
    /// Write `buf[..len]` at `offset` inside `piece`.
    Write {
        /// The session's id.
        op: OpId,
        /// Piece.
        piece: u32,
        /// Offset inside the piece.
        offset: u32,
        /// The data (a pooled buffer, returned with the result).
        buf: Vec<u8>,
        /// How much of `buf`.
        len: usize,
    },
    /// Read `len` bytes at `offset` inside `piece`.
    Read {
        /// The session's id.
        op: OpId,
        /// Piece.
        piece: u32,
        /// Offset inside the piece.
        offset: u32,
        /// Length.
        len: usize,
    },
    /// Add a fact to the write journal, in order with the writes around it.
    Note(Entry),
    /// A saved resume state includes the journal up to this record: drop what it covers.
    Trim(u64),
}

impl IoOp {
    /// Whether the block thread reports back on this op (writes and reads; notes and trims
    /// only feed the journal).
    pub fn reports_back(&self) -> bool {
        matches!(self, IoOp::Write { .. } | IoOp::Read { .. })
    }
}

/// What the storage threads report back.
pub enum IoDone {
    /// A write finished; `buf` goes back to the pool.
    Write {
        /// The session's id.
        op: OpId,
        /// The outcome.
        result: Result<(), StorageError>,
        /// The buffer it came in.
        buf: Vec<u8>,
    },
    /// A read finished: `buf[..len]` holds the data.
    Read {
        /// The session's id.
        op: OpId,
        /// The outcome.
        result: Result<usize, StorageError>,
        /// The data.
        buf: Vec<u8>,
    },
    /// The writes reported before this are in the journal, up to this record.
    Journaled(u64),
    /// The data was flushed and the resume file replaced (or not).
    Persisted(Result<(), String>),
}

/// Start the block thread; it ends when the sender is dropped. Work arrives in batches (one
/// per drain of the session) and results go back in batches, so a burst of blocks costs one
/// wake-up each way instead of one per block. After each batch's writes, one journal record.
pub fn spawn_block_thread<T: From<Vec<IoDone>> + Send + 'static>(
    storage: Arc<Storage>,
    pool: Arc<BufPool>,
    mut journal: Option<Journal>,
    mut ops: UnboundedReceiver<Vec<IoOp>>,
    done: UnboundedSender<T>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("enjambre-io".into())
        .spawn(move || {
            while let Some(mut batch) = ops.blocking_recv() {
                // Take whatever else is already queued, too.
                while let Ok(more) = ops.try_recv() {
                    batch.extend(more);
                }
                let mut out = run_batch(&storage, &pool, batch);
                if let Some(journal) = &mut journal {
                    stamp_touched(&storage, &mut out.entries);
                    if let Some(seq) = journal.append(&out.entries) {
                        out.reports.push(IoDone::Journaled(seq));
                    }
                    if let Some(seq) = out.trim {
                        journal.trim(seq);
                    }
                }
                let reports = out.reports;
                if done.send(reports.into()).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the storage thread")
}

/// Blocks written back to back at most in one `pwritev`.
const MAX_GATHER: usize = 64;

/// What a batch produced.
#[derive(Default)]
struct BatchOut {
    /// One report per write or read, in order.
    reports: Vec<IoDone>,
    /// For the journal: each successful write and each note, in order.
    entries: Vec<Entry>,
    /// The last trim asked for.
    trim: Option<u64>,
}

/// Run a batch in order; runs of writes to consecutive bytes go out in one `pwritev` (each is
/// retried alone if it fails, so every report is that of its own write).
fn run_batch(storage: &Storage, pool: &BufPool, batch: Vec<IoOp>) -> BatchOut {
    let mut out = BatchOut {
        reports: Vec::with_capacity(batch.len()),
        ..BatchOut::default()
    };
    let mut ops = batch.into_iter().peekable();
    while let Some(op) = ops.next() {
        let (piece, offset, len) = match &op {
            IoOp::Write {
                piece, offset, len, ..
            } => (*piece, *offset, *len),
            IoOp::Read {
                op,
                piece,
                offset,
                len,
            } => {
                let report = read_one(storage, pool, *op, *piece, *offset, *len);
                out.reports.push(report);
                continue;
            }
            IoOp::Note(entry) => {
                out.entries.push(*entry);
                continue;
            }
            IoOp::Trim(seq) => {
                out.trim = Some(*seq);
                continue;
            }
        };
        let start = storage.piece_offset(piece, offset);
        let mut end = start + len as u64;
        let mut run_of = vec![op];
        while run_of.len() < MAX_GATHER {
            match ops.peek() {
                Some(IoOp::Write {
                    piece, offset, len, ..
                }) if storage.piece_offset(*piece, *offset) == end => {
                    end += *len as u64;
                    run_of.extend(ops.next());
                }
                _ => break,
            }
        }
        let together = if run_of.len() == 1 {
            None
        } else {
            let bufs: Vec<&[u8]> = run_of
                .iter()
                .map(|op| match op {
                    IoOp::Write { buf, len, .. } => &buf[..*len],
                    _ => &[][..],
                })
                .collect();
            Some(storage.write_vectored_at(start, &bufs).is_ok())
        };
        for op in run_of {
            let IoOp::Write {
                op,
                piece,
                offset,
                buf,
                len,
            } = op
            else {
                continue;
            };
            // Gathered writes that failed are retried one by one, each with its own outcome.
            let result = match together {
                Some(true) => Ok(()),
                _ => storage.write_piece(piece, offset, &buf[..len]),
            };
            let written = result.is_ok().then_some((piece, offset, len));
            out.reports.push(IoDone::Write { op, result, buf });
            if let Some((piece, offset, len)) = written {
                out.entries.push(Entry::Write {
                    piece,
                    start: offset,
                    end: offset + len as u32,
                });
            }
        }
    }
    out
}

/// Add, after the writes, the new length and mtime of every file they touched.
fn stamp_touched(storage: &Storage, entries: &mut Vec<Entry>) {
    let mut files: Vec<usize> = Vec::new();
    for e in entries.iter() {
        if let Entry::Write { piece, start, end } = *e {
            let at = storage.piece_offset(piece, start);
            files.extend(storage.files_in(at, u64::from(end - start)));
        }
    }
    // A file kept in the part file changes the part file.
    let parts: Vec<usize> = files
        .iter()
        .filter_map(|&i| storage.parts_stamp_index(i))
        .collect();
    files.extend(parts);
    files.sort_unstable();
    files.dedup();
    for i in files {
        if let Ok(stamp) = storage.stamp_of(i) {
            entries.push(Entry::Stamp(i as u32, stamp));
        }
    }
}

fn read_one(
    storage: &Storage,
    pool: &BufPool,
    op: OpId,
    piece: u32,
    offset: u32,
    len: usize,
) -> IoDone {
    let mut buf = pool.get();
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let result = storage
        .read_piece(piece, offset, &mut buf[..len])
        .map(|()| len);
    IoDone::Read { op, result, buf }
}

/// Start the persist thread: each message is an encoded resume state to save (after a flush of
/// the data files when `flush`) with the journal mark it includes.
pub fn spawn_persist_thread<T: From<Vec<IoDone>> + Send + 'static>(
    storage: Arc<Storage>,
    file: ResumeFile,
    flush: bool,
    mut states: UnboundedReceiver<(Vec<u8>, Mark)>,
    done: UnboundedSender<T>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("enjambre-persist".into())
        .spawn(move || {
            while let Some((state, mark)) = states.blocking_recv() {
                let result = persist(&storage, &file, &state, flush, mark);
                if done.send(vec![IoDone::Persisted(result)].into()).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the persist thread")
}

/// Save `state`. With `flush`: data first (`fdatasync` of every written file), then the state,
/// durably. Without: the state only, marked valid for this boot (see [`Durability`]).
pub fn persist(
    storage: &Storage,
    file: &ResumeFile,
    state: &[u8],
    flush: bool,
    journal: Mark,
) -> Result<(), String> {
    let durability = if flush {
        storage.flush().map_err(|e| e.to_string())?;
        Durability::Flushed
    } else {
        Durability::this_boot()
    };
    let stamps = storage.stamps().map_err(|e| e.to_string())?;
    file.store(state, &stamps, durability, journal)
        .map_err(|e| format!("writing {}: {e}", file.path().display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::storage::{safe_relative, Access, FileLayout};

    fn write(op: u32, piece: u32, offset: u32, bytes: &[u8]) -> IoOp {
        IoOp::Write {
            op: OpId(op),
            piece,
            offset,
            buf: bytes.to_vec(),
            len: bytes.len(),
        }
    }

    #[test]
    fn a_batch_runs_in_order_and_each_write_reports_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let files = [FileLayout {
            rel: safe_relative(["f"]).unwrap(),
            length: 64,
            pad: false,
        }];
        let storage = Storage::open(dir.path(), &files, 16, Access::Download).unwrap();
        let pool = BufPool::new(16, 4);
        let batch = vec![
            // Back to back: gathered into one write.
            write(1, 0, 0, &[1; 4]),
            write(2, 0, 4, &[2; 4]),
            // Reads see what the writes before them wrote.
            IoOp::Read {
                op: OpId(3),
                piece: 0,
                offset: 2,
                len: 4,
            },
            write(4, 1, 0, &[4; 4]),
            // Gathered with a write past the end: that one alone fails.
            write(5, 3, 8, &[5; 4]),
            write(6, 3, 12, &[6; 8]),
        ];
        let out = run_batch(&storage, &pool, batch);
        let written: Vec<(u32, u32, u32)> = out
            .entries
            .iter()
            .map(|e| match *e {
                Entry::Write { piece, start, end } => (piece, start, end),
                _ => unreachable!("only writes in this batch"),
            })
            .collect();
        assert_eq!(
            written,
            [(0, 0, 4), (0, 4, 8), (1, 0, 4), (3, 8, 12)],
            "the journal names each write that succeeded, not the failed one"
        );
        let mut seen = Vec::new();
        for r in out.reports {
            match r {
                IoDone::Write { op, result, buf } => {
                    assert_eq!(result.is_ok(), op.0 != 6, "write {}", op.0);
                    assert!(!buf.is_empty(), "the buffer comes back");
                    seen.push(op.0);
                }
                IoDone::Read { op, result, buf } => {
                    assert_eq!(result.unwrap(), 4);
                    assert_eq!(buf[..4], [1, 1, 2, 2]);
                    seen.push(op.0);
                }
                IoDone::Persisted(_) | IoDone::Journaled(_) => unreachable!(),
            }
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        let data = std::fs::read(dir.path().join("f")).unwrap();
        assert_eq!(data[..8], [1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(data[16..20], [4; 4]);
        assert_eq!(data[56..60], [5; 4]);
        assert_eq!(data[60..64], [0; 4], "the failed write left nothing");
    }
}
