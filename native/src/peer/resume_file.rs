//! The resume file on disk: the core's encoded resume state, each data file's length and
//! modification time, and whether the data it claims was flushed before it was written.
//! It is always replaced atomically (temporary file, rename).
//!
//! Two disciplines, so a crash can lose time but never mark bytes as present that are not:
//! - [`Durability::Flushed`]: the caller flushed the data files first; the file itself is
//!   fsynced before and after the rename.
//! - [`Durability::SameBoot`]: nothing was flushed; the state records the kernel's boot id.
//!   After a process crash (`kill -9`) the written bytes are still in the page cache, so a
//!   restart in the same boot flushes the files and trusts the state. After a reboot (a power
//!   loss may have dropped unflushed pages) the loader re-verifies every claimed piece and drops
//!   the partial ranges. This keeps `fdatasync` out of the download path.
//!
//! This module never interprets the core's bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use enjambre_core::InfoHash;

use super::journal::Mark;
use super::storage::FileStamp;

const MAGIC: &[u8; 16] = b"ENJAMBRE-RESUME3";

/// The directory, beside a torrent's data, that holds our resume states, journals and locks.
pub const STATE_DIR: &str = ".enjambre";
const BOOT_ID_LEN: usize = 36;

/// The kernel's boot id, as it reads in `/proc/sys/kernel/random/boot_id`.
pub type BootId = [u8; BOOT_ID_LEN];

/// How far the data a state claims is known to be on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The data files were flushed before the state was written.
    Flushed,
    /// Not flushed; valid as it is only within the boot with this id.
    SameBoot([u8; BOOT_ID_LEN]),
}

impl Durability {
    /// `SameBoot` with the running kernel's boot id (all zeros, matching nothing, if unknown).
    pub fn this_boot() -> Self {
        Durability::SameBoot(current_boot_id().unwrap_or([0; BOOT_ID_LEN]))
    }

    /// Whether the claimed data can be trusted as it is, after the caller flushes the files
    /// when this is a same-boot state.
    pub fn trusted_now(&self) -> bool {
        match self {
            Durability::Flushed => true,
            Durability::SameBoot(id) => current_boot_id().is_some_and(|now| now == *id),
        }
    }
}

/// The running kernel's boot id (`/proc/sys/kernel/random/boot_id`), when readable.
pub fn current_boot_id() -> Option<BootId> {
    let text = fs::read("/proc/sys/kernel/random/boot_id").ok()?;
    let id: [u8; BOOT_ID_LEN] = text.get(..BOOT_ID_LEN)?.try_into().ok()?;
    (id != [0; BOOT_ID_LEN]).then_some(id)
}

/// What a resume file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The core's encoded `ResumeState` (checked by the core's own CRC on decode).
    pub core: Vec<u8>,
    /// Length and mtime of each data file when the state was written.
    pub stamps: Vec<FileStamp>,
    /// Whether the claimed data was flushed first.
    pub durability: Durability,
    /// The write journal that continues this state, and how much of it the state includes.
    pub journal: Mark,
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
            path: dir.join(STATE_DIR).join(format!("{info_hash}.resume")),
        }
    }

    /// The resume file for a seed of `data` kept in `dir`: beside it when we may write there,
    /// otherwise (read-only media, someone else's directory, or data that is itself named like
    /// our state directory) in the user's state directory, `$XDG_STATE_HOME/enjambre`, else
    /// `~/.local/state/enjambre`.
    pub fn for_seed(dir: &Path, data: &Path, info_hash: InfoHash) -> Self {
        let beside = Self::in_dir(dir, info_hash);
        let state = dir.join(STATE_DIR);
        let writable = |d: &Path| rustix::fs::access(d, rustix::fs::Access::WRITE_OK).is_ok();
        let is_data = state.canonicalize().ok() == data.canonicalize().ok();
        let usable = if state.exists() {
            !is_data && state.is_dir() && writable(&state)
        } else {
            writable(dir)
        };
        match dirs::state_dir() {
            Some(home) if !usable => ResumeFile {
                path: home.join("enjambre").join(format!("{info_hash}.resume")),
            },
            _ => beside,
        }
    }

    /// Return the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the download directory's lock for this torrent (`<info-hash>.lock` beside the
    /// resume file), held until the returned file is dropped; `Ok(None)` when another process
    /// holds it. Two writers of one resume state and journal would corrupt each other's claims.
    pub fn lock(&self) -> io::Result<Option<File>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
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
    /// new state, complete. A `Flushed` state is also made durable itself.
    pub fn store(
        &self,
        core: &[u8],
        stamps: &[FileStamp],
        durability: Durability,
        journal: Mark,
    ) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("resume.tmp");
        let mut bytes = Vec::with_capacity(MAGIC.len() + 48 + core.len() + stamps.len() * 24);
        encode(core, stamps, durability, journal, &mut bytes);
        let sync = durability == Durability::Flushed;
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            if sync {
                f.sync_all()?;
            }
        }
        fs::rename(&tmp, &self.path)?;
        if sync {
            // The rename itself is durable only once the directory is flushed.
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn encode(
    core: &[u8],
    stamps: &[FileStamp],
    durability: Durability,
    journal: Mark,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(MAGIC);
    match durability {
        Durability::Flushed => {
            out.push(1);
            out.extend_from_slice(&[0; BOOT_ID_LEN]);
        }
        Durability::SameBoot(id) => {
            out.push(0);
            out.extend_from_slice(&id);
        }
    }
    out.extend_from_slice(&journal.id.to_le_bytes());
    out.extend_from_slice(&journal.seq.to_le_bytes());
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
    let (&flag, rest) = rest.split_first()?;
    let (id, rest) = rest.split_first_chunk::<BOOT_ID_LEN>()?;
    let durability = match flag {
        1 => Durability::Flushed,
        0 => Durability::SameBoot(*id),
        _ => return None,
    };
    let (id, rest) = rest.split_first_chunk::<8>()?;
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let journal = Mark {
        id: u64::from_le_bytes(*id),
        seq: u64::from_le_bytes(*seq),
    };
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
    Some(Saved {
        core,
        stamps,
        durability,
        journal,
    })
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
        rf.store(b"first", &stamps(), Durability::Flushed, Mark::default())
            .unwrap();
        let saved = rf.load().unwrap().unwrap();
        assert_eq!(
            (saved.core.as_slice(), saved.durability),
            (&b"first"[..], Durability::Flushed)
        );
        let mark = Mark { id: 7, seq: 99 };
        rf.store(b"second state", &stamps(), Durability::this_boot(), mark)
            .unwrap();
        let saved = rf.load().unwrap().unwrap();
        assert_eq!(saved.core, b"second state");
        assert_eq!(saved.stamps, stamps());
        assert_eq!(saved.durability, Durability::this_boot());
        assert_eq!(saved.journal, mark);
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
    fn a_seed_s_state_never_lands_inside_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let hash = InfoHash([7; 20]);
        let data = dir.path().join("movie.bin");
        fs::write(&data, b"x").unwrap();
        let beside = ResumeFile::for_seed(dir.path(), &data, hash);
        assert_eq!(beside.path(), ResumeFile::in_dir(dir.path(), hash).path());
        // A torrent's directory named `.enjambre`, seeded in place, or a file of that name.
        for named in [true, false] {
            let data = dir.path().join(STATE_DIR);
            let _ = fs::remove_dir_all(&data);
            let _ = fs::remove_file(&data);
            if named {
                fs::create_dir(&data).unwrap();
            } else {
                fs::write(&data, b"x").unwrap();
            }
            let file = ResumeFile::for_seed(dir.path(), &data, hash);
            assert!(!file.path().starts_with(&data), "{}", file.path().display());
            assert!(file.path().ends_with(format!("enjambre/{hash}.resume")));
        }
    }

    #[test]
    fn one_process_at_a_time_holds_a_torrents_lock() {
        let dir = tempfile::tempdir().unwrap();
        let rf = ResumeFile::in_dir(dir.path(), InfoHash([0xcd; 20]));
        let held = rf.lock().unwrap().expect("free at first");
        assert!(rf.lock().unwrap().is_none(), "taken while held");
        drop(held);
        assert!(rf.lock().unwrap().is_some(), "free again once dropped");
    }

    #[test]
    fn every_truncation_and_garbage_is_refused() {
        let mut bytes = Vec::new();
        encode(
            b"core",
            &stamps(),
            Durability::SameBoot([b'7'; BOOT_ID_LEN]),
            Mark { id: 1, seq: 2 },
            &mut bytes,
        );
        assert!(decode(&bytes).is_some());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut huge = bytes.clone();
        huge[69..73].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
        let mut bad_flag = bytes.clone();
        bad_flag[16] = 2;
        assert_eq!(decode(&bad_flag), None);
    }

    #[test]
    fn a_same_boot_state_is_trusted_only_in_this_boot() {
        assert!(Durability::Flushed.trusted_now());
        let this = Durability::this_boot();
        if current_boot_id().is_some() {
            assert!(this.trusted_now());
        }
        assert!(!Durability::SameBoot([b'0'; BOOT_ID_LEN]).trusted_now());
        assert!(
            !Durability::SameBoot([0; BOOT_ID_LEN]).trusted_now(),
            "an unknown boot matches nothing"
        );
    }
}
