//! The journal's sequence numbers, kept in the order the persistence rules require.

use super::Mark;

/// Records kept for a trim that never comes (resume saves failing) stop the journal here.
pub const MAX_KEPT: usize = 16 << 20;

/// The owner's view of one journal: which record comes next, which records a saved state covers,
/// and when the journal must stop growing. Never touches storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    id: u64,
    seq: u64,
    trimmed: u64,
    stopped: bool,
}

impl Ledger {
    /// A new, empty journal with this random id (never 0).
    pub const fn new(id: u64) -> Self {
        Ledger {
            id,
            seq: 0,
            trimmed: 0,
            stopped: id == 0,
        }
    }

    /// The journal's id.
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// The mark the run's starting state carries: it must be saved before this journal is put in
    /// place, so a crash in between leaves a journal no state names.
    pub const fn start(&self) -> Mark {
        Mark {
            id: self.id,
            seq: 0,
        }
    }

    /// The last record appended (0: none).
    pub const fn last(&self) -> u64 {
        self.seq
    }

    /// Whether the journal stopped growing (a failed append, or no trim for too long).
    pub const fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The sequence number for a record of `record_len` bytes, to append after the writes it
    /// names, with `kept` bytes of untrimmed records already in the journal. `None`: append
    /// nothing; the journal stops when the records no state covers would pass [`MAX_KEPT`].
    pub fn append(&mut self, kept: usize, record_len: usize) -> Option<u64> {
        if self.stopped {
            return None;
        }
        if kept.saturating_add(record_len) > MAX_KEPT {
            self.stopped = true;
            return None;
        }
        self.seq += 1;
        Some(self.seq)
    }

    /// The append of the last record failed: the file may end in a torn record, so nothing more
    /// is added (what is there still replays).
    pub fn append_failed(&mut self) {
        self.stopped = true;
    }

    /// A state saved at `saved` is on storage: returns the last record that may now be dropped,
    /// when that is more than before. A mark of another journal, or beyond the last record, trims
    /// nothing.
    pub fn trim(&mut self, saved: Mark) -> Option<u64> {
        if saved.id != self.id || saved.seq > self.seq || saved.seq <= self.trimmed {
            return None;
        }
        self.trimmed = saved.seq;
        Some(saved.seq)
    }
}
