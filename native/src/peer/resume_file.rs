//! The resume file on disk: the core's encoded resume state plus each data file's length and
//! modification time, replaced atomically (temporary file, fsync, rename, fsync of the directory).
//!
//! The caller flushes the data files before calling [`ResumeFile::store`], so the state on disk
//! never claims bytes that are not on disk. This module never interprets the core's bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use enjambre_core::InfoHash;

use super::storage::FileStamp;

const MAGIC: &[u8; 16] = b"ENJAMBRE-RESUME1";

/// What a resume file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The core's encoded `ResumeState` (checked by the core's own CRC on decode).
    pub core: Vec<u8>,
    /// Length and mtime of each data file when the state was written.
    pub stamps: Vec<FileStamp>,
}

/// Where one torrent's resume state lives: `<dir>/.enjambre/<info-hash>.resume`.
#[derive(Debug, Clone)]
pub struct ResumeFile {
    path: PathBuf,
}

impl ResumeFile {
    /// The resume file for `info_hash` beside data stored in `dir`.
    pub fn in_dir(dir: &Path, info_hash: InfoHash) -> Self {
        ResumeFile {
            path: dir.join(".enjambre").join(format!("{info_hash}.resume")),
        }
    }

    /// Return the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the saved state; `Ok(None)` when there is none or it is unreadable garbage.
    pub fn load(&self) -> io::Result<Option<Saved>> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(decode(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replace the saved state atomically: after a crash the file holds either the old or the
    /// new state, complete.
    pub fn store(&self, core: &[u8], stamps: &[FileStamp]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("resume.tmp");
        let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + core.len() + stamps.len() * 24);
        encode(core, stamps, &mut bytes);
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        // The rename itself is durable only once the directory is flushed.
        File::open(dir)?.sync_all()
    }
}

fn encode(core: &[u8], stamps: &[FileStamp], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(core.len() as u32).to_le_bytes());
    out.extend_from_slice(core);
    out.extend_from_slice(&(stamps.len() as u32).to_le_bytes());
    for s in stamps {
        out.extend_from_slice(&s.length.to_le_bytes());
        out.extend_from_slice(&s.mtime_ns.to_le_bytes());
    }
}

fn decode(bytes: &[u8]) -> Option<Saved> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (core_len, rest) = take_u32(rest)?;
    let core = rest.get(..core_len as usize)?.to_vec();
    let rest = &rest[core_len as usize..];
    let (count, mut rest) = take_u32(rest)?;
    if rest.len() != count as usize * 24 {
        return None;
    }
    let mut stamps = Vec::with_capacity(count as usize);
    while let Some((one, more)) = rest.split_first_chunk::<24>() {
        let length = u64::from_le_bytes(one[..8].try_into().ok()?);
        let mtime_ns = i128::from_le_bytes(one[8..].try_into().ok()?);
        stamps.push(FileStamp { length, mtime_ns });
        rest = more;
    }
    Some(Saved { core, stamps })
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (n, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*n), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps() -> Vec<FileStamp> {
        vec![
            FileStamp {
                length: 5,
                mtime_ns: 1_700_000_000_123_456_789,
            },
            FileStamp {
                length: 0,
                mtime_ns: -1,
            },
        ]
    }

    #[test]
    fn store_then_load_round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let rf = ResumeFile::in_dir(dir.path(), InfoHash([0xab; 20]));
        assert_eq!(rf.load().unwrap(), None);
        rf.store(b"first", &stamps()).unwrap();
        rf.store(b"second state", &stamps()).unwrap();
        let saved = rf.load().unwrap().unwrap();
        assert_eq!(saved.core, b"second state");
        assert_eq!(saved.stamps, stamps());
        let names: Vec<_> = fs::read_dir(rf.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(format!(
                "{}.resume",
                InfoHash([0xab; 20])
            ))]
        );
    }

    #[test]
    fn every_truncation_and_garbage_is_refused() {
        let mut bytes = Vec::new();
        encode(b"core", &stamps(), &mut bytes);
        assert!(decode(&bytes).is_some());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut huge = bytes.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
    }
}
