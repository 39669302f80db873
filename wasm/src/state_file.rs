//! The resume state file, `<info-hash>.state`: the core's encoded resume state and the journal
//! [`Mark`] it continues, in two alternating slots.
//!
//! OPFS offers no atomic rename to a sync access handle, so a save overwrites the older slot
//! and leaves the newer one intact: a save torn by a crash fails its CRC and the other slot
//! still counts. A slot is `magic, generation, mark id, mark seq, length, state, CRC-32C`.
//! This module never interprets the core's bytes.

use crate::prelude::*;
use crc::{Crc, CRC_32_ISCSI};
use enjambre_core::journal::Mark;

use crate::file::{File, IoError};

const MAGIC: &[u8; 8] = b"EJSTATE1";
const HEAD: usize = 8 + 8 + 8 + 8 + 4;
const CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// A saved state, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Counts saves; the higher valid slot is the newer.
    pub generation: u64,
    /// The journal this state continues, and the last record it includes.
    pub mark: Mark,
    /// The core's encoded resume state.
    pub core: Vec<u8>,
}

/// The two-slot state file of states at most `max_core` bytes long.
#[derive(Debug, Clone, Copy)]
pub struct StateFile {
    slot: usize,
}

impl StateFile {
    /// The layout for states at most `max_core` bytes long.
    pub const fn new(max_core: usize) -> Self {
        StateFile {
            slot: HEAD + max_core + 4,
        }
    }

    /// Save `core` at `mark` as save number `generation` (into slot `generation % 2`), and
    /// flush it.
    pub fn save(
        &self,
        file: &mut impl File,
        generation: u64,
        mark: Mark,
        core: &[u8],
    ) -> Result<(), IoError> {
        if HEAD + core.len() + 4 > self.slot {
            return Err(IoError("resume state larger than its slot".into()));
        }
        let mut out = Vec::with_capacity(HEAD + core.len() + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&mark.id.to_le_bytes());
        out.extend_from_slice(&mark.seq.to_le_bytes());
        out.extend_from_slice(&(core.len() as u32).to_le_bytes());
        out.extend_from_slice(core);
        out.extend_from_slice(&CRC.checksum(&out).to_le_bytes());
        file.write_at((generation % 2) * self.slot as u64, &out)?;
        file.flush()
    }

    /// The newest intact save, if any.
    pub fn load(&self, file: &mut impl File) -> Result<Option<Saved>, IoError> {
        let mut best: Option<Saved> = None;
        for k in 0..2u64 {
            let mut buf = vec![0u8; self.slot];
            let n = file.read_at(k * self.slot as u64, &mut buf)?;
            buf.truncate(n);
            if let Some(saved) = decode(&buf) {
                if best
                    .as_ref()
                    .is_none_or(|b| saved.generation > b.generation)
                {
                    best = Some(saved);
                }
            }
        }
        Ok(best)
    }
}

fn decode(slot: &[u8]) -> Option<Saved> {
    let u64_at = |i: usize| Some(u64::from_le_bytes(slot.get(i..i + 8)?.try_into().ok()?));
    if slot.get(..8)? != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(slot.get(32..36)?.try_into().ok()?) as usize;
    let end = HEAD + len;
    let crc = u32::from_le_bytes(slot.get(end..end + 4)?.try_into().ok()?);
    if CRC.checksum(&slot[..end]) != crc {
        return None;
    }
    Some(Saved {
        generation: u64_at(8)?,
        mark: Mark {
            id: u64_at(16)?,
            seq: u64_at(24)?,
        },
        core: slot[HEAD..end].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::MemFile;

    const FILE: StateFile = StateFile::new(100);

    fn mark(seq: u64) -> Mark {
        Mark { id: 42, seq }
    }

    #[test]
    fn the_newest_save_is_read_back() {
        let mut f = MemFile::default();
        assert_eq!(FILE.load(&mut f).unwrap(), None);
        FILE.save(&mut f, 1, mark(1), b"first").unwrap();
        FILE.save(&mut f, 2, mark(5), b"second").unwrap();
        let saved = FILE.load(&mut f).unwrap().unwrap();
        assert_eq!((saved.generation, saved.mark), (2, mark(5)));
        assert_eq!(saved.core, b"second");
        assert_eq!(f.flushes, 2);
    }

    #[test]
    fn a_torn_save_leaves_the_previous_one() {
        let mut f = MemFile::default();
        FILE.save(&mut f, 1, mark(1), b"first").unwrap();
        FILE.save(&mut f, 2, mark(5), b"second").unwrap();
        // The crash hits the third save (slot 1) halfway: its last bytes never arrive.
        FILE.save(&mut f, 3, mark(9), b"third").unwrap();
        let slot1 = 140usize;
        f.bytes[slot1 + 40] ^= 0xff;
        let saved = FILE.load(&mut f).unwrap().unwrap();
        assert_eq!(
            (saved.generation, saved.core.as_slice()),
            (2, &b"second"[..])
        );
    }

    #[test]
    fn a_state_larger_than_its_slot_is_refused() {
        let mut f = MemFile::default();
        assert!(FILE.save(&mut f, 1, mark(1), &[0; 101]).is_err());
    }
}
