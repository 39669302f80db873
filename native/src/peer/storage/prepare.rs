//! Preparing a torrent's files before the transfer: each created (with its directories) or
//! sized, its blocks reserved, a skipped file's bytes kept in the part file, and a file longer
//! than the torrent refused.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use lru::LruCache;

use super::{open_files_budget, Access, FileLayout, Slot, Storage, StorageError};
use crate::peer::parts::{copy_out, release, Parts};

impl Storage {
    /// Open (or create) every file of `files` under `root`, which is created if missing.
    #[allow(dead_code)] // `get` and `seed` use the form with a part file; tests use this one.
    pub fn open(
        root: &Path,
        files: &[FileLayout],
        piece_length: u32,
        access: Access,
    ) -> Result<Self, StorageError> {
        Self::open_with_parts(root, files, piece_length, access, None)
    }

    /// As [`Storage::open`], with skipped files: one not in `root` is neither created nor
    /// looked for there, its bytes are kept in the part file (see [`crate::peer::parts`]); a file
    /// created now gets the bytes the part file already holds for it, and the part file lets go
    /// of every kept file's bytes (it is removed when no file is left in it).
    pub fn open_with_parts(
        root: &Path,
        files: &[FileLayout],
        piece_length: u32,
        access: Access,
        parts: Option<&Parts>,
    ) -> Result<Self, StorageError> {
        let skipped = |i: usize| parts.is_some_and(|p| p.skipped.get(i) == Some(&true));
        let in_parts: Vec<bool> = (files.iter().enumerate())
            .map(|(i, f)| !f.pad && skipped(i) && fs::symlink_metadata(root.join(&f.rel)).is_err())
            .collect();
        let kept: Vec<FileLayout> = (files.iter().zip(&in_parts))
            .filter(|(_, p)| !**p)
            .map(|(f, _)| f.clone())
            .collect();
        if access == Access::Download {
            refuse_longer_files(root, &kept)?;
        }
        let parts_path = (parts.filter(|_| in_parts.contains(&true))).map(|p| p.path.clone());
        if let (Some(path), true) = (&parts_path, access.writes()) {
            create_parts(path)?;
        }
        if access.writes() {
            fs::create_dir_all(root)
                .map_err(|e| StorageError::io("creating directory", root, e))?;
        }
        let canon_root = root
            .canonicalize()
            .map_err(|e| StorageError::io("opening directory", root, e))?;
        let mut slots = Vec::with_capacity(files.len());
        let mut had_data = false;
        let mut offset = 0u64;
        for (f, &in_parts) in files.iter().zip(&in_parts) {
            let path = match (&parts_path, in_parts) {
                (Some(parts), true) => parts.clone(),
                _ => root.join(&f.rel),
            };
            let parent = path.parent().unwrap_or(root);
            if access.writes() && !f.pad && !in_parts {
                fs::create_dir_all(parent)
                    .map_err(|e| StorageError::io("creating directory", parent, e))?;
                // A symlink already on disk must not lead a write outside the root.
                let canon_parent = parent
                    .canonicalize()
                    .map_err(|e| StorageError::io("opening directory", parent, e))?;
                if !canon_parent.starts_with(&canon_root) || is_symlink(&path) {
                    return Err(StorageError::UnsafePath(f.rel.display().to_string()));
                }
                let created = fs::symlink_metadata(&path).is_err();
                // Created and sized now, then closed: the cache opens it again when needed.
                had_data |= prepare_for_download(&path, f.length)?;
                if let (true, Some(parts)) = (created && f.length > 0, parts) {
                    fill_from_parts(&parts.path, offset, f.length, &path)?;
                }
            }
            slots.push(Slot {
                offset,
                path,
                dirty: AtomicBool::new(false),
                pad: f.pad,
                in_parts,
            });
            offset = offset
                .checked_add(f.length)
                .ok_or(StorageError::OutOfRange {
                    offset,
                    len: f.length,
                    total: u64::MAX,
                })?;
        }
        if let (Some(parts), true) = (parts, access.writes()) {
            shrink_parts(&parts.path, &slots, files, parts_path.is_none())?;
        }
        let ends = slots
            .iter()
            .zip(files)
            .map(|(s, f)| s.offset + f.length)
            .collect();
        Ok(Storage {
            slots,
            ends,
            piece_length: u64::from(piece_length),
            total: offset,
            had_data,
            writable: access.writes(),
            open: Mutex::new(LruCache::new(open_files_budget())),
            parts: parts_path,
        })
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Create a file for downloading, or size an existing one; return whether it already held data.
fn prepare_for_download(path: &Path, length: u64) -> Result<bool, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io("opening", path, e))?;
    let current = file
        .metadata()
        .map_err(|e| StorageError::io("reading metadata of", path, e))?
        .len();
    let had_data = current > 0;
    if current != length {
        file.set_len(length)
            .map_err(|e| StorageError::io("resizing", path, e))?;
    }
    // A file already at its length is being resumed: leave it alone, since `fallocate` moves
    // its mtime (ext4) and the resume state would think someone else changed it.
    if length > 0 && current != length && on_tmpfs(&file) {
        // tmpfs reserves by zeroing every page (≈ 90 ms per GiB before the first byte): compare
        // with the free space instead; a write that still runs out says so then.
        let free = rustix::fs::fstatvfs(&file)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(u64::MAX);
        if length - current.min(length) > free {
            return Err(StorageError::DiskFull {
                path: path.to_path_buf(),
            });
        }
    } else if length > 0 && current != length {
        // Reserve the blocks now so a full disk is reported before the download, not in the middle.
        match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, length) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::NOSPC || e == rustix::io::Errno::DQUOT => {
                return Err(StorageError::DiskFull {
                    path: path.to_path_buf(),
                })
            }
            // Filesystems without fallocate keep the sparse file.
            Err(_) => {}
        }
    }
    Ok(had_data)
}

/// Create the part file (and its directory) if missing.
fn create_parts(path: &Path) -> Result<(), StorageError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| StorageError::io("creating directory", dir, e))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| StorageError::io("creating", path, e))
}

/// Give a file just created the bytes of it the part file holds (a file skipped before), on
/// stable storage before the part file lets them go.
fn fill_from_parts(parts: &Path, offset: u64, len: u64, path: &Path) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("opening", path, e))?;
    copy_out(parts, offset, len, &file).map_err(|e| StorageError::io("copying into", path, e))?;
    file.sync_data()
        .map_err(|e| StorageError::io("flushing", path, e))
}

/// The part file lets go of the bytes of every file now kept in the download directory (their
/// own copy is what is read and written); with no skipped file left (`empty`), it goes.
fn shrink_parts(
    parts: &Path,
    slots: &[Slot],
    files: &[FileLayout],
    empty: bool,
) -> Result<(), StorageError> {
    if empty {
        return match fs::remove_file(parts) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StorageError::io("removing", parts, e))
            }
            _ => Ok(()),
        };
    }
    let file = match OpenOptions::new().write(true).open(parts) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("opening", parts, e)),
    };
    for (slot, f) in slots.iter().zip(files) {
        if !slot.in_parts && !slot.pad {
            release(&file, slot.offset, f.length)
                .map_err(|e| StorageError::io("releasing bytes of", parts, e))?;
        }
    }
    Ok(())
}

/// Whether `file` lives on tmpfs (memory), where `fallocate` zeroes what it reserves.
fn on_tmpfs(file: &File) -> bool {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    rustix::fs::fstatfs(file).is_ok_and(|s| s.f_type as u64 == TMPFS_MAGIC)
}

/// Refuse to start when a file already there is longer than the torrent says: it is not ours
/// to shorten. Checked before anything is created or resized.
fn refuse_longer_files(root: &Path, files: &[FileLayout]) -> Result<(), StorageError> {
    for f in files.iter().filter(|f| !f.pad) {
        let path = root.join(&f.rel);
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if meta.is_file() && meta.len() > f.length {
                return Err(StorageError::LongerThanTorrent {
                    path,
                    actual: meta.len(),
                    expected: f.length,
                });
            }
        }
    }
    Ok(())
}
