//! Torrent metainfo (`.torrent` files): parsing, validation, file mapping, writing.
//!
//! [`Metainfo::parse`] checks a whole torrent once (types, piece geometry, every file path) and
//! then answers questions by borrowing the file's bytes: piece hashes, trackers (BEP 12), files
//! and which file ranges a block covers. The info-hash is the SHA-1 of the `info` dictionary
//! exactly as it appears in the file, never of a re-encoding. [`write_torrent`] produces a
//! `.torrent` into a caller-owned buffer. Nothing here allocates or panics on any input.

mod files;
mod trackers;
mod web_seeds;
mod write;

pub use files::{
    segments_in, Components, EndSegments, FileEntry, FilePath, Files, Segment, Segments,
};
pub use trackers::Trackers;
pub use web_seeds::{is_web_url, web_seeds, write_file_url, WebSeeds};
pub use write::{write_torrent, write_torrent_with_info, FileSpec, TorrentSpec, WriteError};

use crate::bencode::{decode_with, BencodeError, DecodeOptions, Dict, List, Value};
use crate::geometry::{Geometry, GeometryError, PieceIndex};
use crate::ids::InfoHash;
use crate::sha1::{digest, Sha1Smol};

/// Why bytes are not a usable torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MetainfoError {
    /// The file is not valid bencode.
    Bencode(BencodeError),
    /// The file, or its `info`, is not a dictionary.
    NotADict,
    /// A required key is absent.
    MissingField(&'static str),
    /// A key holds the wrong kind of value (or text that is not UTF-8, or a negative length).
    WrongType(&'static str),
    /// `piece length` is zero, negative or above `u32::MAX`.
    BadPieceLength,
    /// `pieces` is not a whole number of 20-byte hashes.
    BadPiecesLength,
    /// The number of piece hashes does not match the total length and piece length.
    LengthMismatch,
    /// A file name or path component is empty, `.`, `..`, holds `/`, `\` or NUL, starts with a
    /// drive prefix such as `C:`, or is not UTF-8.
    BadPath,
    /// A multi-file torrent with an empty `files` list.
    NoFiles,
    /// More than `u32::MAX` pieces.
    TooManyPieces,
    /// The torrent holds no bytes at all.
    ZeroLength,
    /// `info` has both `length` and `files`.
    LengthAndFiles,
    /// The file lengths add up to more than `u64::MAX`.
    LengthOverflow,
    /// A pure v2 torrent (BEP 52: `meta version` 2, no v1 `pieces`): not supported. A hybrid
    /// (v1 and v2) torrent is read through its v1 side.
    V2Only,
}

impl core::fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MetainfoError::Bencode(e) => write!(f, "torrent: {e}"),
            MetainfoError::NotADict => f.write_str("torrent: not a dictionary"),
            MetainfoError::MissingField(k) => write!(f, "torrent: missing `{k}`"),
            MetainfoError::WrongType(k) => write!(f, "torrent: `{k}` has the wrong type"),
            MetainfoError::BadPieceLength => f.write_str("torrent: bad piece length"),
            MetainfoError::BadPiecesLength => {
                f.write_str("torrent: `pieces` is not a multiple of 20 bytes")
            }
            MetainfoError::LengthMismatch => {
                f.write_str("torrent: piece count does not match the total length")
            }
            MetainfoError::BadPath => f.write_str("torrent: unsafe or invalid file path"),
            MetainfoError::NoFiles => f.write_str("torrent: empty file list"),
            MetainfoError::TooManyPieces => f.write_str("torrent: too many pieces"),
            MetainfoError::ZeroLength => f.write_str("torrent: total length is zero"),
            MetainfoError::LengthAndFiles => f.write_str("torrent: both `length` and `files`"),
            MetainfoError::LengthOverflow => f.write_str("torrent: total length overflows"),
            MetainfoError::V2Only => f.write_str(
                "torrent: a pure v2 (BEP 52) torrent, not supported: only v1 and hybrid torrents",
            ),
        }
    }
}

impl core::error::Error for MetainfoError {}

impl From<BencodeError> for MetainfoError {
    fn from(e: BencodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

/// A validated torrent, borrowing the `.torrent` bytes it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Metainfo<'a> {
    /// SHA-1 of [`info_bytes`](Self::info_bytes).
    pub info_hash: InfoHash,
    /// The suggested file name (single-file) or directory name (multi-file); one safe component.
    pub name: &'a str,
    /// The exact bytes of the `info` dictionary (what BEP 9 metadata exchange sends).
    pub info_bytes: &'a [u8],
    /// `private` is 1 (BEP 27): use only the torrent's trackers.
    pub private: bool,
    /// `comment`, when present and UTF-8.
    pub comment: Option<&'a str>,
    /// `created by`, when present and UTF-8.
    pub created_by: Option<&'a str>,
    /// `creation date` (seconds since the Unix epoch), when present.
    pub creation_date: Option<i64>,
    geometry: Geometry,
    pieces: &'a [u8],
    announce: Option<&'a str>,
    /// BEP 12 tiers, kept only when they hold at least one URL.
    announce_list: Option<List<'a>>,
    /// `Some` for a multi-file torrent: the validated `files` list.
    files: Option<List<'a>>,
    file_count: usize,
}

impl<'a> Metainfo<'a> {
    /// Parse and validate a whole `.torrent` file, including every file path.
    ///
    /// Keys outside and inside `info` may be unsorted (some creators do that); the info-hash is
    /// taken from the raw bytes either way.
    pub fn parse(torrent: &'a [u8]) -> Result<Self, MetainfoError> {
        let root = decode_with(torrent, DecodeOptions::LENIENT)?
            .as_dict()
            .ok_or(MetainfoError::NotADict)?;
        let info = root
            .get(b"info")
            .ok_or(MetainfoError::MissingField("info"))?;
        let info = info.as_dict().ok_or(MetainfoError::NotADict)?;
        let info_bytes = info.span();

        let name = match info.get(b"name") {
            None => return Err(MetainfoError::MissingField("name")),
            Some(v) => v.as_bytes().ok_or(MetainfoError::WrongType("name"))?,
        };
        let name = core::str::from_utf8(name)
            .ok()
            .filter(|n| files::valid_component(n.as_bytes()))
            .ok_or(MetainfoError::BadPath)?;
        let piece_length = match info.get(b"piece length") {
            None => return Err(MetainfoError::MissingField("piece length")),
            Some(v) => v.as_int().ok_or(MetainfoError::WrongType("piece length"))?,
        };
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|&l| l > 0)
            .ok_or(MetainfoError::BadPieceLength)?;
        let pieces = match info.get(b"pieces") {
            None if info.get(b"meta version").and_then(|v| v.as_int()) == Some(2) => {
                return Err(MetainfoError::V2Only)
            }
            None => return Err(MetainfoError::MissingField("pieces")),
            Some(v) => v.as_bytes().ok_or(MetainfoError::WrongType("pieces"))?,
        };
        if pieces.len() % 20 != 0 {
            return Err(MetainfoError::BadPiecesLength);
        }

        let (total, files, file_count) = match (info.get(b"length"), info.get(b"files")) {
            (Some(_), Some(_)) => return Err(MetainfoError::LengthAndFiles),
            (None, None) => return Err(MetainfoError::MissingField("length")),
            (Some(len), None) => (length(len)?, None, 1),
            (None, Some(list)) => {
                let list = list.as_list().ok_or(MetainfoError::WrongType("files"))?;
                let (total, count) = files::validate(list)?;
                (total, Some(list), count)
            }
        };
        let geometry = Geometry::new(piece_length, total).map_err(|e| match e {
            GeometryError::ZeroPieceLength => MetainfoError::BadPieceLength,
            GeometryError::ZeroLength => MetainfoError::ZeroLength,
            GeometryError::TooManyPieces => MetainfoError::TooManyPieces,
        })?;
        if pieces.len() / 20 != geometry.piece_count() as usize {
            return Err(MetainfoError::LengthMismatch);
        }

        let announce = text(root, "announce")?;
        let announce_list = trackers::validate(root)?;
        Ok(Metainfo {
            info_hash: InfoHash(digest::<Sha1Smol>(info_bytes)),
            name,
            info_bytes,
            private: info.get(b"private").and_then(|v| v.as_int()) == Some(1),
            comment: root.get(b"comment").and_then(|v| v.as_str()),
            created_by: root.get(b"created by").and_then(|v| v.as_str()),
            creation_date: root.get(b"creation date").and_then(|v| v.as_int()),
            geometry,
            pieces,
            announce,
            announce_list,
            files,
            file_count,
        })
    }

    /// Return the piece length, total length and piece count.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Return the concatenated piece hashes: `piece_count * 20` bytes.
    pub fn pieces(&self) -> &'a [u8] {
        self.pieces
    }

    /// Return where [`pieces`](Self::pieces) starts inside [`info_bytes`](Self::info_bytes),
    /// so a holder of the info dictionary alone can find the piece hashes in it.
    pub fn pieces_offset(&self) -> usize {
        // Both borrow the same torrent, `pieces` inside `info`: the difference of their
        // addresses is the offset (no pointer is dereferenced).
        self.pieces.as_ptr() as usize - self.info_bytes.as_ptr() as usize
    }

    /// Return the SHA-1 of piece `p` (all zeros if `p` belongs to another torrent's geometry).
    pub fn piece_hash(&self, p: PieceIndex) -> [u8; 20] {
        let start = p.get() as usize * 20;
        let mut out = [0u8; 20];
        if let Some(h) = self.pieces.get(start..start + 20) {
            out.copy_from_slice(h);
        }
        out
    }

    /// Return the `announce` URL, if any.
    pub fn announce(&self) -> Option<&'a str> {
        self.announce
    }

    /// Iterate over `(tier, url)`: the BEP 12 `announce-list` (tiers numbered densely from 0,
    /// empty tiers skipped) when it has a URL, else `announce` alone as tier 0.
    pub fn trackers(&self) -> Trackers<'a> {
        Trackers::new(self.announce_list, self.announce)
    }

    /// Return whether the torrent has a `files` list (its `name` is then a directory).
    pub fn is_multi_file(&self) -> bool {
        self.files.is_some()
    }

    /// Iterate over the files in torrent order; a single-file torrent has one, named `name`.
    pub fn files(&self) -> Files<'a> {
        match self.files {
            Some(list) => Files::multi(list),
            None => Files::single(self.name, self.geometry.total_length()),
        }
    }

    /// Return the number of files.
    pub fn file_count(&self) -> usize {
        self.file_count
    }

    /// Split the block `offset..offset + len` of `piece` into per-file ranges, in order, skipping
    /// empty files. The block is clipped to the piece; a piece outside this torrent gives nothing.
    pub fn segments(&self, piece: PieceIndex, offset: u32, len: u32) -> Segments<'a> {
        let g = self.geometry;
        if piece.get() >= g.piece_count() || offset >= g.piece_len(piece) {
            return Segments::empty(self.files());
        }
        let piece_start = g.piece_offset(piece);
        let start = piece_start + u64::from(offset);
        let end = (start + u64::from(len)).min(piece_start + u64::from(g.piece_len(piece)));
        Segments::new(self.files(), start, end)
    }
}

/// Read an optional UTF-8 string field; present but not UTF-8 text is an error.
fn text<'a>(d: Dict<'a>, key: &'static str) -> Result<Option<&'a str>, MetainfoError> {
    match d.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or(MetainfoError::WrongType(key)),
    }
}

/// Read a non-negative `length`.
fn length(v: Value<'_>) -> Result<u64, MetainfoError> {
    v.as_int()
        .and_then(|l| u64::try_from(l).ok())
        .ok_or(MetainfoError::WrongType("length"))
}

#[cfg(test)]
mod tests;
