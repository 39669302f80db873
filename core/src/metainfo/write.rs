//! Writing a `.torrent` (for `enjambre create`) into a caller-owned buffer.

use super::files::valid_component;
use crate::bencode::Encoder;
use crate::geometry::Geometry;
use crate::BufferTooSmall;

/// What to put in a new `.torrent`.
#[derive(Debug, Clone, Copy)]
pub struct TorrentSpec<'s> {
    /// File name (single-file) or directory name (multi-file); one safe path component.
    pub name: &'s str,
    /// Bytes per piece.
    pub piece_length: u32,
    /// The SHA-1 of every piece, concatenated.
    pub pieces: &'s [u8],
    /// The files of a multi-file torrent; empty for a single-file torrent.
    pub files: &'s [FileSpec<'s>],
    /// The length of a single-file torrent (ignored when `files` is not empty).
    pub length: u64,
    /// Tracker URLs by tier (BEP 12); the first URL also goes in `announce`.
    pub trackers: &'s [&'s [&'s str]],
    /// Write `private` = 1 (BEP 27).
    pub private: bool,
    /// `created by`.
    pub created_by: Option<&'s str>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `comment`.
    pub comment: Option<&'s str>,
}

/// One file of a multi-file torrent.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec<'s> {
    /// Size in bytes.
    pub length: u64,
    /// Path components below the torrent's directory.
    pub path: &'s [&'s str],
}

/// Why a `.torrent` could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WriteError {
    /// `out` is too small; `required` is the exact size of the whole torrent.
    BufferTooSmall(BufferTooSmall),
    /// The name or a path component would not pass [`Metainfo::parse`](super::Metainfo::parse).
    BadPath,
    /// The piece length is zero.
    BadPieceLength,
    /// `pieces` does not hold exactly one 20-byte hash per piece.
    BadPieces,
    /// The total length is zero, or a length does not fit in a bencode integer.
    BadLength,
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::BufferTooSmall(e) => write!(f, "torrent: {e}"),
            WriteError::BadPath => f.write_str("torrent: unsafe or invalid file path"),
            WriteError::BadPieceLength => f.write_str("torrent: piece length is zero"),
            WriteError::BadPieces => f.write_str("torrent: wrong number of piece hashes"),
            WriteError::BadLength => f.write_str("torrent: bad total or file length"),
        }
    }
}

impl core::error::Error for WriteError {}

impl From<BufferTooSmall> for WriteError {
    fn from(e: BufferTooSmall) -> Self {
        WriteError::BufferTooSmall(e)
    }
}

/// Write `spec` as a `.torrent` into `out` and return its length.
///
/// Keys are sorted; `info` holds `files` or `length`, `name`, `piece length`, `pieces` and
/// `private` when set; `announce-list` is written only with more than one URL. The result is
/// checked to parse back with [`Metainfo::parse`](super::Metainfo::parse).
pub fn write_torrent(spec: &TorrentSpec<'_>, out: &mut [u8]) -> Result<usize, WriteError> {
    check(spec)?;
    let mut w = Writer {
        enc: Encoder::new(out),
        required: None,
    };
    w.open(b'd');
    w.trackers(spec.trackers);
    if let Some(c) = spec.comment {
        w.bytes(b"comment").bytes(c.as_bytes());
    }
    if let Some(c) = spec.created_by {
        w.bytes(b"created by").bytes(c.as_bytes());
    }
    if let Some(d) = spec.creation_date {
        w.bytes(b"creation date").int(d);
    }
    w.bytes(b"info").open(b'd');
    if spec.files.is_empty() {
        w.bytes(b"length").int(spec.length as i64);
    } else {
        w.bytes(b"files").open(b'l');
        for f in spec.files {
            w.open(b'd')
                .bytes(b"length")
                .int(f.length as i64)
                .bytes(b"path")
                .open(b'l');
            for c in f.path {
                w.bytes(c.as_bytes());
            }
            w.open(b'e').open(b'e');
        }
        w.open(b'e');
    }
    w.bytes(b"name").bytes(spec.name.as_bytes());
    w.bytes(b"piece length").int(i64::from(spec.piece_length));
    w.bytes(b"pieces").bytes(spec.pieces);
    if spec.private {
        w.bytes(b"private").int(1);
    }
    w.open(b'e').open(b'e');
    match w.required {
        Some(required) => Err(WriteError::BufferTooSmall(BufferTooSmall { required })),
        None => Ok(w.enc.finish()),
    }
}

/// Write a `.torrent` around an info dictionary received as it is (from peers, for a magnet
/// link), with `trackers` by tier; return its length. The info bytes are copied unchanged, so
/// the torrent's info-hash is theirs; that they parse as a torrent is the caller's to check.
pub fn write_torrent_with_info(
    info: &[u8],
    trackers: &[&[&str]],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer {
        enc: Encoder::new(out),
        required: None,
    };
    w.open(b'd');
    w.trackers(trackers);
    w.bytes(b"info").raw(info).open(b'e');
    match w.required {
        Some(required) => Err(BufferTooSmall { required }),
        None => Ok(w.enc.finish()),
    }
}

/// Refuse a spec that would not parse back.
fn check(spec: &TorrentSpec<'_>) -> Result<(), WriteError> {
    if !valid_component(spec.name.as_bytes()) {
        return Err(WriteError::BadPath);
    }
    let fits = |l: u64| i64::try_from(l).is_ok();
    let total = if spec.files.is_empty() {
        Some(spec.length).filter(|&l| fits(l))
    } else {
        let mut total = Some(0u64);
        for f in spec.files {
            let ok = !f.path.is_empty() && f.path.iter().all(|c| valid_component(c.as_bytes()));
            if !ok {
                return Err(WriteError::BadPath);
            }
            total = total
                .and_then(|t| t.checked_add(f.length))
                .filter(|_| fits(f.length));
        }
        total
    };
    let total = total.ok_or(WriteError::BadLength)?;
    if spec.piece_length == 0 {
        return Err(WriteError::BadPieceLength);
    }
    let geometry = Geometry::new(spec.piece_length, total).map_err(|_| WriteError::BadLength)?;
    if spec.pieces.len() as u64 != u64::from(geometry.piece_count()) * 20 {
        return Err(WriteError::BadPieces);
    }
    Ok(())
}

/// An encoder that, once out of room, keeps counting so the error can give the exact size.
struct Writer<'b> {
    enc: Encoder<'b>,
    required: Option<usize>,
}

impl Writer<'_> {
    /// `announce` (the first URL) and, with more than one URL, `announce-list`.
    fn trackers(&mut self, trackers: &[&[&str]]) {
        let urls: usize = trackers.iter().map(|t| t.len()).sum();
        if let Some(url) = trackers.iter().flat_map(|t| t.iter()).next() {
            self.bytes(b"announce").bytes(url.as_bytes());
        }
        if urls > 1 {
            self.bytes(b"announce-list").open(b'l');
            for tier in trackers.iter().filter(|t| !t.is_empty()) {
                self.open(b'l');
                for url in tier.iter() {
                    self.bytes(url.as_bytes());
                }
                self.open(b'e');
            }
            self.open(b'e');
        }
    }

    fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.item(encoded.len(), |e| e.raw(encoded).map(|_| ()))
    }

    fn open(&mut self, tag: u8) -> &mut Self {
        self.item(1, |e| e.raw(&[tag]).map(|_| ()))
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.item(digits(b.len() as u64) + 1 + b.len(), |e| {
            e.bytes(b).map(|_| ())
        })
    }

    fn int(&mut self, v: i64) -> &mut Self {
        let len = digits(v.unsigned_abs()) + 2 + usize::from(v < 0);
        self.item(len, |e| e.int(v).map(|_| ()))
    }

    fn item(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut Encoder<'_>) -> Result<(), BufferTooSmall>,
    ) -> &mut Self {
        match self.required {
            Some(ref mut r) => *r = r.saturating_add(len),
            None => {
                if write(&mut self.enc).is_err() {
                    self.required = Some(self.enc.len().saturating_add(len));
                }
            }
        }
        self
    }
}

fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}
