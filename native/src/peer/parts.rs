//! The part file: where the bytes of skipped files go when a wanted piece straddles them.
//!
//! A piece is verified whole, so a download of some files also receives the edges of the
//! files next to them. Those bytes must be kept (to verify the piece again, and to serve it),
//! but never where a user would take them for the skipped file. They go in one sparse file
//! beside the resume state, `<dir>/.enjambre/<info-hash>.parts`, at their torrent-wide offset:
//! only the bytes written take space. When a later run selects such a file, its bytes are
//! copied out of the part file into the new file, and the part file lets go of them (a hole is
//! punched over the file's range); once no skipped file is left, the part file goes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use enjambre_core::InfoHash;

use super::resume_file::STATE_DIR;

/// Where skipped files' bytes go, and which files are skipped.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The part file.
    pub path: PathBuf,
    /// Per file of the torrent: skipped (its bytes go to the part file unless the file is
    /// already in the download directory, where it is kept and used).
    pub skipped: Vec<bool>,
}

/// The part file of `info_hash` beside data stored in `dir`.
pub fn parts_path(dir: &Path, info_hash: InfoHash) -> PathBuf {
    dir.join(STATE_DIR).join(format!("{info_hash}.parts"))
}

/// Copy torrent-wide bytes `offset..offset + len` that the part file holds into `dest`, byte
/// `offset` at `dest`'s start; the part file's holes (bytes never written) are skipped. A part file
/// that is missing or shorter holds nothing more to copy.
pub fn copy_out(parts: &Path, offset: u64, len: u64, dest: &File) -> io::Result<()> {
    let src = match File::open(parts) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let end = offset.saturating_add(len);
    let mut at = offset;
    let mut buf = vec![0u8; 1 << 20];
    while at < end {
        // The next stretch of data, and where it ends; no data left: done.
        let data = match rustix::fs::seek(&src, rustix::fs::SeekFrom::Data(at)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if data >= end {
            return Ok(());
        }
        let hole = rustix::fs::seek(&src, rustix::fs::SeekFrom::Hole(data))?.min(end);
        let mut from = data;
        while from < hole {
            let n = ((hole - from) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], from)?;
            dest.write_all_at(&buf[..n], from - offset)?;
            from += n as u64;
        }
        at = hole;
    }
    Ok(())
}

/// Let the part file go of torrent-wide bytes `offset..offset + len` (a file now kept in the
/// download directory): a hole is punched there, so they take no space and read as zeros. A file
/// system without holes keeps the bytes (they are never read again: the file's own copy is used).
pub fn release(parts: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::FallocateFlags;
    let size = parts.metadata()?.len();
    if len == 0 || offset >= size {
        return Ok(());
    }
    let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    match rustix::fs::fallocate(parts, flags, offset, len.min(size - offset)) {
        Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bytes_written_are_copied_out_at_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let parts = dir.path().join("p");
        let f = File::create(&parts).unwrap();
        f.write_all_at(b"abc", 100).unwrap();
        f.write_all_at(b"xyz", 5_000_000).unwrap();
        let dest_path = dir.path().join("d");
        let dest = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&dest_path)
            .unwrap();
        dest.set_len(10).unwrap();
        copy_out(&parts, 98, 10, &dest).unwrap();
        assert_eq!(std::fs::read(&dest_path).unwrap(), b"\0\0abc\0\0\0\0\0");
        copy_out(&dir.path().join("missing"), 0, 10, &dest).unwrap();
    }

    #[test]
    fn released_bytes_read_as_zeros_and_are_not_copied_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let parts = dir.path().join("p");
        let f = File::create(&parts).unwrap();
        f.write_all_at(&[7u8; 3 * 4096], 0).unwrap();
        // The middle block's file is kept in the directory now: the part file lets it go.
        release(&f, 4096, 4096).unwrap();
        let back = std::fs::read(&parts).unwrap();
        assert_eq!(back.len(), 3 * 4096, "the part file keeps its size");
        assert!(back[..4096].iter().all(|&b| b == 7));
        assert!(back[4096..8192].iter().all(|&b| b == 0), "released");
        assert!(back[8192..].iter().all(|&b| b == 7));
        // Past its end: nothing to do.
        release(&f, 1 << 20, 10).unwrap();
    }
}
