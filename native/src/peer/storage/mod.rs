//! A torrent's data on disk: the files under the output directory, and reads and writes at
//! torrent-wide offsets that cross file boundaries (which files a range spans is the core's
//! `metainfo::segments_in`, never worked out here).
//!
//! Every method takes `&self` (positional `pread`/`pwrite`), so one `Arc<Storage>` is shared by
//! the writer thread and the peers' upload tasks. Paths are validated component by component and
//! checked against symlinks out of the root; nothing is ever written outside it. At most a few
//! hundred files are open at once (the least recently used are closed), so a torrent of any
//! number of files works under the usual limit of 1024 open files.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use enjambre_core::metainfo::segments_in;
use lru::LruCache;

mod prepare;

/// Why a storage operation failed, with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The disk (or the quota) is full.
    #[error("no space left on device while writing {}", path.display())]
    DiskFull {
        /// The file being written or preallocated.
        path: PathBuf,
    },
    /// A path in the torrent would escape the output directory or is not a plain name.
    #[error("unsafe path in torrent: {0:?}")]
    UnsafePath(String),
    /// A file already in the download directory is longer than the torrent says: cutting it
    /// would lose data that is not ours (allowed with `--overwrite`).
    #[error(
        "{} is {actual} bytes, longer than the torrent's {expected}: not shortening it \
         (move it away, or pass --overwrite)",
        path.display()
    )]
    LongerThanTorrent {
        /// The file.
        path: PathBuf,
        /// Its length on disk.
        actual: u64,
        /// Its length in the torrent.
        expected: u64,
    },
    /// A range outside the torrent's data.
    #[error("byte range {offset}+{len} is outside the torrent ({total} bytes)")]
    OutOfRange {
        /// Torrent-wide offset asked for.
        offset: u64,
        /// Length asked for.
        len: u64,
        /// Total torrent length.
        total: u64,
    },
    /// Any other I/O error.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What we were doing ("writing", "opening", …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl StorageError {
    fn io(what: &'static str, path: &Path, source: io::Error) -> Self {
        // ENOSPC and EDQUOT both mean "the disk is full" to a user.
        if matches!(source.raw_os_error(), Some(28) | Some(122))
            || source.kind() == io::ErrorKind::StorageFull
        {
            StorageError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            StorageError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Return true when the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::DiskFull { .. })
    }

    /// Return true when the error says the data is not there (a file missing or shorter than
    /// the torrent says), rather than that the storage failed.
    pub fn is_missing_data(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// One file of a torrent, as the layout needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    /// Path relative to the storage root, already validated by [`safe_relative`].
    pub rel: PathBuf,
    /// Length in bytes (may be zero).
    pub length: u64,
    /// A BEP 47 pad file: zeros that are never stored (writes dropped, reads give zeros).
    pub pad: bool,
}

/// Build a relative path from torrent path components, refusing anything but plain names.
///
/// Refused: empty components, `.`, `..`, separators (`/`, `\`), NUL, and drive prefixes.
pub fn safe_relative<'c>(
    components: impl IntoIterator<Item = &'c str>,
) -> Result<PathBuf, StorageError> {
    let mut rel = PathBuf::new();
    for c in components {
        let bad = c.is_empty()
            || c == "."
            || c == ".."
            || c.contains(['/', '\\', '\0'])
            || (c.len() >= 2 && c.as_bytes()[1] == b':');
        if bad {
            return Err(StorageError::UnsafePath(c.to_string()));
        }
        rel.push(c);
    }
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if rel.as_os_str().is_empty() || !plain {
        return Err(StorageError::UnsafePath(rel.display().to_string()));
    }
    Ok(rel)
}

/// How files are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create missing files and directories, extend files to their length, preallocate.
    /// Existing data is kept (resuming); a file longer than the torrent says is refused.
    Download,
    /// As `Download`, but files longer than the torrent says are cut to its length.
    Overwrite,
    /// Read existing files only. A file that is missing or of the wrong size is not an error
    /// here: reading it fails, so the pieces it holds do not verify.
    Seed,
}

impl Access {
    fn writes(self) -> bool {
        matches!(self, Access::Download | Access::Overwrite)
    }
}

struct Slot {
    /// Torrent-wide offset of the file's first byte.
    offset: u64,
    path: PathBuf,
    dirty: AtomicBool,
    /// A pad file: no file on disk.
    pad: bool,
    /// A skipped file kept in the part file (`path`), its bytes at their torrent-wide offset.
    in_parts: bool,
}

impl Slot {
    /// Where byte `file_offset` of this file is in the file at `path`.
    fn at(&self, file_offset: u64) -> u64 {
        if self.in_parts {
            self.offset + file_offset
        } else {
            file_offset
        }
    }
}

/// The files of one torrent.
pub struct Storage {
    slots: Vec<Slot>,
    /// Torrent-wide offset just past each file, for [`segments_in`].
    ends: Vec<u64>,
    piece_length: u64,
    total: u64,
    /// Some file already held data when opened (a download without its resume state).
    had_data: bool,
    writable: bool,
    /// The files open now, by slot index, least recently used first out.
    open: Mutex<LruCache<usize, Arc<File>>>,
    /// The part file, when some skipped file's bytes are kept there.
    parts: Option<PathBuf>,
}

impl Storage {
    /// Return file `index` open (for reading and writing when downloading), from the cache or
    /// opened now, closing the least recently used one when the cache is full. When the process
    /// is out of file descriptors, more cached files are closed and the open is tried again.
    fn file(&self, index: usize) -> Result<Arc<File>, StorageError> {
        if let Some(f) = self.cache().get(&index) {
            return Ok(f.clone());
        }
        let path = &self.slots[index].path;
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(self.writable)
                .open(path)
        };
        let file = loop {
            match open() {
                Ok(f) => break Arc::new(f),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    let mut cache = self.cache();
                    let keep = cache.len() / 2;
                    if cache.is_empty() {
                        return Err(StorageError::io("opening", path, e));
                    }
                    while cache.len() > keep {
                        cache.pop_lru();
                    }
                }
                Err(e) => return Err(StorageError::io("opening", path, e)),
            }
        };
        self.cache().put(index, file.clone());
        Ok(file)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<usize, Arc<File>>> {
        // The cache holds no invariant a panicking holder could break.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Return the torrent-wide offset of `offset` inside `piece`.
    pub fn piece_offset(&self, piece: u32, offset: u32) -> u64 {
        u64::from(piece) * self.piece_length + u64::from(offset)
    }

    /// Write `bytes` at `offset` inside `piece`.
    pub fn write_piece(&self, piece: u32, offset: u32, bytes: &[u8]) -> Result<(), StorageError> {
        self.write_at(self.piece_offset(piece, offset), bytes)
    }

    /// Read `buf.len()` bytes at `offset` inside `piece`.
    pub fn read_piece(&self, piece: u32, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        self.read_at(self.piece_offset(piece, offset), buf)
    }

    /// Return the file pieces of `len` bytes at `offset` inside `piece`, for zero-copy sending:
    /// `(file, offset in file, length)` in order; each file is opened as the iterator reaches it.
    pub fn piece_segments(
        &self,
        piece: u32,
        offset: u32,
        len: u32,
    ) -> Result<impl Iterator<Item = FileSegment> + '_, StorageError> {
        let start = self.piece_offset(piece, offset);
        let end = self.check_range(start, u64::from(len))?;
        Ok(segments_in(&self.ends, start, end).map(|seg| {
            let at = self.slots[seg.file].at(seg.file_offset);
            (self.file(seg.file), at, seg.len as usize)
        }))
    }

    /// Whether `len` bytes at `offset` inside `piece` touch a pad file (which has no file to
    /// send from: such a block is read, zeros and all, instead).
    pub fn touches_pad(&self, piece: u32, offset: u32, len: u32) -> bool {
        let start = self.piece_offset(piece, offset);
        let end = start.saturating_add(u64::from(len)).min(self.total);
        segments_in(&self.ends, start, end).any(|seg| self.slots[seg.file].pad)
    }

    /// Write `bytes` at torrent-wide `offset`, splitting across files.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
        self.for_each_segment(offset, bytes.len(), |slot, file, file_off, range| {
            let Some(file) = file else { return Ok(()) };
            let result = file.write_all_at(&bytes[range], file_off);
            // Marked after the write: a flush that starts later is sure to cover it.
            slot.dirty.store(true, Ordering::Release);
            result.map_err(|e| StorageError::io("writing", &slot.path, e))
        })
    }

    /// Write `bufs`, one after the other, at torrent-wide `offset`: one `pwritev` per file
    /// touched instead of one `pwrite` per buffer.
    pub fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> Result<(), StorageError> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.for_each_segment(offset, len, |slot, file, file_off, range| {
            let Some(file) = file else { return Ok(()) };
            let result = write_all_vectored_at(file, bufs, range, file_off);
            slot.dirty.store(true, Ordering::Release);
            result.map_err(|e| StorageError::io("writing", &slot.path, e))
        })
    }

    /// Read `buf.len()` bytes at torrent-wide `offset`, splitting across files.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.for_each_segment(
            offset,
            buf.len(),
            |slot, file, file_off, range| match file {
                Some(file) => file
                    .read_exact_at(&mut buf[range], file_off)
                    .map_err(|e| StorageError::io("reading", &slot.path, e)),
                None => {
                    buf[range].fill(0);
                    Ok(())
                }
            },
        )
    }

    /// Call `f(slot, its open file (`None` for a pad file), offset in file, range of the
    /// caller's buffer)` for each file the range touches.
    fn for_each_segment(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&Slot, Option<&File>, u64, std::ops::Range<usize>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.check_range(offset, len as u64)?;
        // Segments are at most `u32::MAX` bytes: a longer range goes in parts of that size.
        let mut done = 0usize;
        while done < len {
            let part = (len - done).min(u32::MAX as usize);
            let at = offset + done as u64;
            for seg in segments_in(&self.ends, at, at + part as u64) {
                let from = done + seg.block_offset as usize;
                let range = from..from + seg.len as usize;
                let slot = &self.slots[seg.file];
                let file = if slot.pad {
                    None
                } else {
                    Some(self.file(seg.file)?)
                };
                f(slot, file.as_deref(), slot.at(seg.file_offset), range)?;
            }
            done += part;
        }
        Ok(())
    }

    /// Return the end of `[offset, offset + len)`, or why the range is not inside the torrent.
    fn check_range(&self, offset: u64, len: u64) -> Result<u64, StorageError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.total => Ok(end),
            _ => Err(StorageError::OutOfRange {
                offset,
                len,
                total: self.total,
            }),
        }
    }

    /// Flush every file written since the last flush to stable storage (`fdatasync`).
    pub fn flush(&self) -> Result<(), StorageError> {
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.dirty.swap(false, Ordering::AcqRel) {
                // A file closed since its write is opened again: `fdatasync` covers every write
                // to the file, through whichever descriptor.
                if let Err(e) = self.file(i).and_then(|f| {
                    f.sync_data()
                        .map_err(|e| StorageError::io("flushing", &slot.path, e))
                }) {
                    slot.dirty.store(true, Ordering::Release);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Return true when some file already held data when it was opened for downloading.
    pub fn had_data(&self) -> bool {
        self.had_data
    }

    /// Flush every file, written by this process or not (a previous run's unflushed data).
    pub fn flush_all(&self) -> Result<(), StorageError> {
        for (i, slot) in self.slots.iter().enumerate().filter(|(_, s)| !s.pad) {
            self.file(i)?
                .sync_data()
                .map_err(|e| StorageError::io("flushing", &slot.path, e))?;
            slot.dirty.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Return the index of the first file that ends after torrent-wide `offset` (zero-length
    /// files before it are skipped).
    fn first_file_past(&self, offset: u64) -> usize {
        self.ends.partition_point(|&end| end <= offset)
    }

    /// Return the indices of the files that bytes `[offset, offset + len)` fall in.
    pub fn files_in(&self, offset: u64, len: u64) -> std::ops::Range<usize> {
        let first = self.first_file_past(offset);
        let end = offset.saturating_add(len);
        let last = self.slots.partition_point(|s| s.offset < end);
        first..last.max(first)
    }

    /// Return the path of file `index`.
    pub fn path_of(&self, index: usize) -> &Path {
        &self.slots[index].path
    }

    /// Return the length and modification time of file `index` (from its open descriptor).
    /// Index `files().len()` is the part file's, when there is one.
    pub fn stamp_of(&self, index: usize) -> Result<FileStamp, StorageError> {
        let Some(slot) = self.slots.get(index) else {
            return self.parts_stamp();
        };
        if slot.pad || slot.in_parts {
            return Ok(pad_stamp(&self.ends, index, slot));
        }
        let meta = self
            .file(index)?
            .metadata()
            .map_err(|e| StorageError::io("reading metadata of", &slot.path, e))?;
        Ok(stamp_of(&meta))
    }

    /// Return each file's length and modification time, to tell later whether the files changed.
    /// A file kept in the part file has its length for a stamp, and the part file's own
    /// stamp comes last.
    pub fn stamps(&self) -> Result<Vec<FileStamp>, StorageError> {
        let mut stamps = (self.slots.iter().enumerate())
            .map(|(i, s)| {
                if s.pad || s.in_parts {
                    return Ok(pad_stamp(&self.ends, i, s));
                }
                let meta = fs::metadata(&s.path)
                    .map_err(|e| StorageError::io("reading metadata of", &s.path, e))?;
                Ok(stamp_of(&meta))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.parts.is_some() {
            stamps.push(self.parts_stamp()?);
        }
        Ok(stamps)
    }

    /// The index of the part file's stamp when file `index` is kept there (see
    /// [`Storage::stamp_of`]).
    pub fn parts_stamp_index(&self, index: usize) -> Option<usize> {
        (self.slots.get(index)?.in_parts).then_some(self.slots.len())
    }

    /// The part file's stamp; an index past the files when there is no part file is not found.
    fn parts_stamp(&self) -> Result<FileStamp, StorageError> {
        let Some(path) = self.parts.as_deref() else {
            let e = io::Error::new(io::ErrorKind::NotFound, "no such file index");
            return Err(StorageError::io(
                "reading metadata of",
                Path::new("part file"),
                e,
            ));
        };
        let meta =
            fs::metadata(path).map_err(|e| StorageError::io("reading metadata of", path, e))?;
        Ok(stamp_of(&meta))
    }
}

/// One file range of a block: the open file (or why it could not be opened), the offset in it,
/// the length; see [`Storage::piece_segments`].
pub type FileSegment = (Result<Arc<File>, StorageError>, u64, usize);

/// A file's length and modification time in nanoseconds, as the resume state and the write
/// journal record it.
pub type FileStamp = enjambre_core::journal::Stamp;

/// A pad file's stamp: its length, never modified.
fn pad_stamp(ends: &[u64], index: usize, slot: &Slot) -> FileStamp {
    FileStamp {
        length: ends[index] - slot.offset,
        mtime_ns: 0,
    }
}

fn stamp_of(meta: &fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    FileStamp {
        length: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    }
}

/// Write bytes `range` of the concatenation of `bufs` at `file_off`, resuming after short writes.
fn write_all_vectored_at(
    file: &File,
    bufs: &[&[u8]],
    range: std::ops::Range<usize>,
    mut file_off: u64,
) -> io::Result<()> {
    let mut from = range.start;
    while from < range.end {
        // The slices of [from, range.end), at most IOV_MAX of them.
        let mut slices = Vec::with_capacity(bufs.len().min(1024));
        let mut start = 0usize;
        for b in bufs {
            let end = start + b.len();
            let lo = from.max(start);
            let hi = range.end.min(end);
            if lo < hi && slices.len() < 1024 {
                slices.push(io::IoSlice::new(&b[lo - start..hi - start]));
            }
            start = end;
        }
        match rustix::io::pwritev(file, &slices, file_off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                from += n;
                file_off += n as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Open files at most: a quarter of this process's limit, between 16 and 512, so sockets and
/// the rest keep the other three quarters.
fn open_files_budget() -> NonZeroUsize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let budget = (limit / 4).clamp(16, 512) as usize;
    NonZeroUsize::new(budget).unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests;
