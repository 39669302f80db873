//! Storage work: gathering writes, reads and journal notes into batches for the storage thread,
//! counting the operations that report back, and handing their outcomes to the session.
//!
//! Work reaches the storage thread in the order the session gave it, so the journal records
//! `PieceVerified`/`PieceDiscarded` in order with the writes. A write's buffer is the one the
//! session wrote the bytes into; it comes back to the pool when the write is done.

use enjambre_core::session::StorageError as CoreStorageError;

use super::{DriveError, Driver};
use crate::peer::io_thread::{IoDone, IoOp};
use crate::peer::storage::StorageError;

/// Writes gathered before the storage thread is woken, unless the loop goes idle first.
const IO_BATCH_BYTES: usize = 512 * 1024;

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Add `op` to the batch (dropped once storage has been let go at exit).
    pub(super) fn io(&mut self, op: IoOp) {
        if self.io_tx.is_some() {
            if let IoOp::Write { len, .. } = &op {
                self.io_batch_bytes += len;
            }
            if op.reports_back() {
                self.ops_in_flight += 1;
            }
            self.io_batch.push(op);
        }
    }

    /// Return whether the batch holds enough writes to send without waiting for idle.
    pub(super) fn io_batch_plenty(&self) -> bool {
        self.io_batch_bytes >= IO_BATCH_BYTES
    }

    /// Hand the batch to the storage thread; a thread that has gone ends the run.
    pub(super) fn send_io(&mut self) {
        if self.io_batch.is_empty() {
            return;
        }
        self.io_batch_bytes = 0;
        let batch = std::mem::take(&mut self.io_batch);
        let n = batch.iter().filter(|op| op.reports_back()).count();
        let sent = self.io_tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            self.ops_in_flight -= n;
            self.fail(DriveError::Storage("the storage thread stopped".into()));
        }
    }

    /// Take one report from the storage threads.
    pub(super) fn io_done(&mut self, report: IoDone) {
        let now = self.now();
        match report {
            IoDone::Write { op, result, buf } => {
                self.ops_in_flight -= 1;
                if !self.wrote_any {
                    self.wrote_any = true;
                    let ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
                    tracing::info!("first block on disk {ms:.1} ms after start");
                }
                self.out_pool.put(buf);
                let result = result.map_err(|e| self.storage_failed(e));
                self.session.handle_write_done(now, op, result);
            }
            IoDone::Read { op, result, buf } => {
                self.ops_in_flight -= 1;
                match result {
                    Ok(len) => self.session.handle_read_done(now, op, Ok(&buf[..len])),
                    Err(e) => {
                        let e = self.storage_failed(e);
                        self.session.handle_read_done(now, op, Err(e));
                    }
                }
                self.out_pool.put(buf);
            }
            IoDone::Journaled(seq) => self.journal.seq = seq,
            IoDone::Persisted(result) => self.persisted(result),
        }
    }

    /// Report a storage error to the user when it ends the run; map it for the session.
    fn storage_failed(&mut self, e: StorageError) -> CoreStorageError {
        if e.is_disk_full() {
            self.fail(DriveError::DiskFull(e.to_string()));
            CoreStorageError::NoSpace
        } else {
            self.fail(DriveError::Storage(e.to_string()));
            CoreStorageError::Io
        }
    }
}
