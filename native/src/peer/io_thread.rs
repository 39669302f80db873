//! The storage threads: one writes and reads blocks in order (positional I/O, so the async
//! loop never waits on the disk); one flushes the files and then replaces the resume file, so
//! downloading continues while `fdatasync` runs.

use std::sync::Arc;

use enjambre_core::session::OpId;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

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
    /// The data was flushed and the resume file replaced (or not).
    Persisted(Result<(), String>),
}

/// Start the block thread; it ends when the sender is dropped. Work arrives in batches (one
/// per drain of the session) and results go back in batches, so a burst of blocks costs one
/// wake-up each way instead of one per block.
pub fn spawn_block_thread<T: From<Vec<IoDone>> + Send + 'static>(
    storage: Arc<Storage>,
    pool: Arc<BufPool>,
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
                let reports: Vec<IoDone> = batch
                    .into_iter()
                    .map(|op| run(&storage, &pool, op))
                    .collect();
                if done.send(reports.into()).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the storage thread")
}

fn run(storage: &Storage, pool: &BufPool, op: IoOp) -> IoDone {
    match op {
        IoOp::Write {
            op,
            piece,
            offset,
            buf,
            len,
        } => {
            let result = storage.write_piece(piece, offset, &buf[..len]);
            IoDone::Write { op, result, buf }
        }
        IoOp::Read {
            op,
            piece,
            offset,
            len,
        } => {
            let mut buf = pool.get();
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let result = storage
                .read_piece(piece, offset, &mut buf[..len])
                .map(|()| len);
            IoDone::Read { op, result, buf }
        }
    }
}

/// Start the persist thread: each message is an encoded resume state to save (after a flush of
/// the data files when `flush`).
pub fn spawn_persist_thread<T: From<Vec<IoDone>> + Send + 'static>(
    storage: Arc<Storage>,
    file: ResumeFile,
    flush: bool,
    mut states: UnboundedReceiver<Vec<u8>>,
    done: UnboundedSender<T>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("enjambre-persist".into())
        .spawn(move || {
            while let Some(state) = states.blocking_recv() {
                let result = persist(&storage, &file, &state, flush);
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
) -> Result<(), String> {
    let durability = if flush {
        storage.flush().map_err(|e| e.to_string())?;
        Durability::Flushed
    } else {
        Durability::this_boot()
    };
    let stamps = storage.stamps().map_err(|e| e.to_string())?;
    file.store(state, &stamps, durability)
        .map_err(|e| format!("writing {}: {e}", file.path().display()))
}
