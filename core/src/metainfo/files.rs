//! The files of a torrent, their safe paths, and the mapping from blocks to file ranges.

use core::fmt;

use super::MetainfoError;
use crate::bencode::{List, ListIter};

/// One file of a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry<'a> {
    /// Position in the torrent's file list, from 0.
    pub index: usize,
    /// Size in bytes (may be 0).
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated data.
    pub offset: u64,
    /// Where the file goes, relative to the download directory (multi-file: below `name`).
    pub path: FilePath<'a>,
    /// A BEP 47 pad file (`attr` holds `p`): zeros that align the next file to a piece, part of
    /// the pieces but not of the content, never to be stored as a file.
    pub pad: bool,
}

/// A validated relative path: every component is non-empty, not `.` or `..`, free of `/`, `\`
/// and NUL, and not a drive prefix like `C:`. Joining it under a directory never escapes it.
///
/// For a multi-file torrent the components are the file's `path` list only (the torrent `name`
/// is the directory that holds them); for a single-file torrent it is `[name]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FilePath<'a> {
    inner: PathInner<'a>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PathInner<'a> {
    Name(&'a str),
    List(List<'a>),
}

impl<'a> FilePath<'a> {
    /// Iterate over the components, outermost first.
    pub fn components(&self) -> Components<'a> {
        match self.inner {
            PathInner::Name(n) => Components {
                name: Some(n),
                list: None,
            },
            PathInner::List(l) => Components {
                name: None,
                list: Some(l.iter()),
            },
        }
    }
}

impl fmt::Display for FilePath<'_> {
    /// Show the components joined with `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.components().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(c)?;
        }
        Ok(())
    }
}

impl fmt::Debug for FilePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.components()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FilePath<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        for (i, c) in self.components().enumerate() {
            if i > 0 {
                defmt::write!(f, "/");
            }
            defmt::write!(f, "{=str}", c);
        }
    }
}

/// The components of a [`FilePath`].
#[derive(Clone)]
pub struct Components<'a> {
    name: Option<&'a str>,
    list: Option<ListIter<'a>>,
}

impl<'a> Iterator for Components<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if let Some(n) = self.name.take() {
            return Some(n);
        }
        self.list.as_mut()?.next()?.as_str()
    }
}

/// The files of a torrent, in order (see [`Metainfo::files`](super::Metainfo::files)).
#[derive(Clone)]
pub struct Files<'a> {
    single: Option<(&'a str, u64)>,
    list: Option<ListIter<'a>>,
    index: usize,
    offset: u64,
}

impl<'a> Files<'a> {
    pub(super) fn single(name: &'a str, length: u64) -> Self {
        Files {
            single: Some((name, length)),
            list: None,
            index: 0,
            offset: 0,
        }
    }

    pub(super) fn multi(list: List<'a>) -> Self {
        Files {
            single: None,
            list: Some(list.iter()),
            index: 0,
            offset: 0,
        }
    }
}

impl<'a> Iterator for Files<'a> {
    type Item = FileEntry<'a>;
    fn next(&mut self) -> Option<FileEntry<'a>> {
        let (length, path, pad) = match self.single.take() {
            Some((name, length)) => (length, PathInner::Name(name), false),
            None => {
                // Validated by `validate`, so these lookups succeed.
                let file = self.list.as_mut()?.next()?.as_dict()?;
                let length = u64::try_from(file.get(b"length")?.as_int()?).ok()?;
                let attr = file
                    .get(b"attr")
                    .and_then(|a| a.as_bytes())
                    .unwrap_or_default();
                let path = PathInner::List(file.get(b"path")?.as_list()?);
                (length, path, attr.contains(&b'p'))
            }
        };
        let entry = FileEntry {
            index: self.index,
            length,
            offset: self.offset,
            path: FilePath { inner: path },
            pad,
        };
        self.index += 1;
        self.offset = self.offset.saturating_add(length);
        Some(entry)
    }
}

/// Check every entry of a `files` list; return the total length and the file count.
pub(super) fn validate(files: List<'_>) -> Result<(u64, usize), MetainfoError> {
    let mut total = 0u64;
    let mut count = 0usize;
    for file in files.iter() {
        let file = file.as_dict().ok_or(MetainfoError::WrongType("files"))?;
        let length = file
            .get(b"length")
            .ok_or(MetainfoError::MissingField("length"))?;
        let length = super::length(length)?;
        total = total
            .checked_add(length)
            .ok_or(MetainfoError::LengthOverflow)?;
        let path = file
            .get(b"path")
            .ok_or(MetainfoError::MissingField("path"))?;
        let path = path.as_list().ok_or(MetainfoError::WrongType("path"))?;
        if path.is_empty() {
            return Err(MetainfoError::BadPath);
        }
        for c in path.iter() {
            let ok = c.as_str().is_some_and(|s| valid_component(s.as_bytes()));
            if !ok {
                return Err(MetainfoError::BadPath);
            }
        }
        count += 1;
    }
    if count == 0 {
        return Err(MetainfoError::NoFiles);
    }
    Ok((total, count))
}

/// Return whether `c` is safe as one path component on Unix and Windows.
pub(super) fn valid_component(c: &[u8]) -> bool {
    let drive_prefix = matches!(c, [letter, b':', ..] if letter.is_ascii_alphabetic());
    !c.is_empty()
        && c != b"."
        && c != b".."
        && !drive_prefix
        && !c.iter().any(|&b| b == b'/' || b == b'\\' || b == 0)
}

/// A piece of a block that lies inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Segment {
    /// Index of the file (as in [`FileEntry::index`]).
    pub file: usize,
    /// Offset of the segment inside the file.
    pub file_offset: u64,
    /// Number of bytes, at least 1.
    pub len: u32,
    /// Offset of the segment inside the block.
    pub block_offset: u32,
}

/// The per-file ranges of a block (see [`Metainfo::segments`](super::Metainfo::segments)).
#[derive(Clone)]
pub struct Segments<'a> {
    files: Files<'a>,
    block_start: u64,
    start: u64,
    end: u64,
}

impl<'a> Segments<'a> {
    pub(super) fn new(files: Files<'a>, start: u64, end: u64) -> Self {
        Segments {
            files,
            block_start: start,
            start,
            end,
        }
    }

    pub(super) fn empty(files: Files<'a>) -> Self {
        Segments {
            files,
            block_start: 0,
            start: 0,
            end: 0,
        }
    }
}

impl Iterator for Segments<'_> {
    type Item = Segment;
    fn next(&mut self) -> Option<Segment> {
        while self.start < self.end {
            let f = self.files.next()?;
            let file_end = f.offset.saturating_add(f.length);
            if file_end <= self.start {
                continue; // before the block, or empty
            }
            let seg = cut(
                f.index,
                f.offset,
                file_end,
                self.block_start,
                self.start,
                self.end,
            )?;
            self.start += u64::from(seg.len);
            return Some(seg);
        }
        None
    }
}

/// Split the torrent-wide bytes `start..end` into per-file ranges, in order, skipping empty
/// files, for a shell that keeps its files' layout rather than a [`Metainfo`](super::Metainfo):
/// `ends[i]` is the torrent-wide offset just past file `i` (the running sum of the lengths, so
/// never decreasing). The first file is found by binary search. Each segment's `block_offset`
/// counts from `start`. Bytes past the last file, or more than `u32::MAX` bytes into the range,
/// give no segment; nothing here panics, whatever `ends` holds.
pub fn segments_in(ends: &[u64], start: u64, end: u64) -> EndSegments<'_> {
    EndSegments {
        ends,
        next: ends.partition_point(|&e| e <= start),
        block_start: start,
        start,
        end,
    }
}

/// The per-file ranges of a torrent-wide byte range (see [`segments_in`]).
#[derive(Clone)]
pub struct EndSegments<'e> {
    ends: &'e [u64],
    next: usize,
    block_start: u64,
    start: u64,
    end: u64,
}

impl Iterator for EndSegments<'_> {
    type Item = Segment;
    fn next(&mut self) -> Option<Segment> {
        while self.start < self.end {
            let file = self.next;
            let file_end = *self.ends.get(file)?;
            self.next += 1;
            if file_end <= self.start {
                continue; // empty
            }
            let file_start = match file.checked_sub(1) {
                Some(before) => *self.ends.get(before)?,
                None => 0,
            };
            let seg = cut(
                file,
                file_start,
                file_end,
                self.block_start,
                self.start,
                self.end,
            )?;
            self.start += u64::from(seg.len);
            return Some(seg);
        }
        None
    }
}

/// Return the part of `start..end` that lies in `file` (torrent-wide `file_start..file_end`,
/// which holds `start`), as a segment of the block that begins at `block_start`.
fn cut(
    file: usize,
    file_start: u64,
    file_end: u64,
    block_start: u64,
    start: u64,
    end: u64,
) -> Option<Segment> {
    let seg_end = file_end.min(end);
    Some(Segment {
        file,
        file_offset: start.checked_sub(file_start)?,
        len: u32::try_from(seg_end.checked_sub(start)?).ok()?,
        block_offset: u32::try_from(start.checked_sub(block_start)?).ok()?,
    })
}
