//! Saving the resume state: one save at a time on the persist thread, a later request folded
//! into one more save, the journal trimmed to what a saved state covers, and one last save at
//! exit once storage is idle.
//!
//! A state is encoded when the save starts, so it never claims a write the session has not
//! heard confirmed; the journal is trimmed only after that state is on disk.

use super::Driver;
use crate::peer::io_thread::IoOp;

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Save the resume state now, or once the save under way is done.
    pub(super) fn persist(&mut self) {
        if self.persist_tx.is_none() {
            return;
        }
        if self.persist_in_flight {
            self.persist_wanted = true;
            return;
        }
        // Encoded now: every write confirmed so far is finished, so a flush that follows
        // covers all the bytes this state claims.
        let state = match self.session.encode_resume(&mut self.resume_buf) {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the resume state");
                return;
            }
        };
        if let Some(tx) = &self.persist_tx {
            if tx.send((state, self.journal)).is_ok() {
                self.persisting = self.journal;
                self.persist_in_flight = true;
                self.persist_wanted = false;
            }
        }
    }

    /// A save ended: trim the journal it covers, and start the save asked for meanwhile.
    pub(super) fn persisted(&mut self, result: Result<(), String>) {
        self.persist_in_flight = false;
        match result {
            Err(e) => tracing::warn!(error = %e, "resume state not saved"),
            Ok(()) if self.persisting.id != 0 => {
                self.io(IoOp::Trim(self.persisting.seq));
            }
            Ok(()) => {}
        }
        if self.persist_wanted {
            self.persist();
        }
    }

    /// Start the last save once (call when storage is idle); true once no save is left to do.
    pub(super) fn final_persist_done(&mut self) -> bool {
        // The state as it ends: the last piece's verification may have come after the last
        // periodic save.
        if !self.final_persist && !self.persist_in_flight {
            self.final_persist = true;
            self.persist_wanted = false;
            self.persist();
        }
        !(self.persist_in_flight || self.persist_wanted)
    }
}
