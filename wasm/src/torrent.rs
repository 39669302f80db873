//! The torrent being downloaded, read from its `.torrent` by the core and kept in owned form:
//! the worker holds it for the whole download, after the file's bytes are gone.
//!
//! Its data is one byte range (every file concatenated in torrent order), so a piece's offset
//! is the storage offset; files are only names and lengths for the page.

use crate::prelude::*;
use enjambre_core::metainfo::Metainfo;
use enjambre_core::{Geometry, InfoHash};

/// One file of the torrent, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentFile {
    /// The path inside the torrent, components joined with `/`.
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// A BEP 47 pad file (zeros aligning the next file): part of the data, never saved.
    pub pad: bool,
}

/// A parsed torrent, owned.
#[derive(Debug, Clone)]
pub struct Torrent {
    /// The torrent's name.
    pub name: String,
    /// The SHA-1 of its info dictionary.
    pub info_hash: InfoHash,
    /// Pieces and lengths.
    pub geometry: Geometry,
    /// The info dictionary, as it hashes to `info_hash`: served to peers that ask (BEP 9).
    pub info: Vec<u8>,
    /// Where the pieces' SHA-1 hashes (20 bytes each) start in `info`.
    pub hashes_at: usize,
    /// The files, in torrent order.
    pub files: Vec<TorrentFile>,
    /// The tracker URLs it names (announce and announce-list), at most [`MAX_TRACKERS`].
    pub trackers: Vec<String>,
    /// Private (BEP 27): peers come from its trackers only, never from peer exchange.
    pub private: bool,
}

/// Tracker URLs kept at most.
pub const MAX_TRACKERS: usize = 64;

impl Torrent {
    /// Read a `.torrent`; the error is a sentence for the page.
    pub fn parse(bytes: &[u8]) -> Result<Torrent, String> {
        let meta = Metainfo::parse(bytes).map_err(|e| format!("not a valid .torrent: {e}"))?;
        let files = meta
            .files()
            .map(|f| TorrentFile {
                path: f.path.to_string(),
                length: f.length,
                pad: f.pad,
            })
            .collect();
        Ok(Torrent {
            name: meta.name.to_string(),
            info_hash: meta.info_hash,
            geometry: meta.geometry(),
            info: meta.info_bytes.to_vec(),
            hashes_at: meta.pieces_offset(),
            files,
            trackers: meta
                .trackers()
                .take(MAX_TRACKERS)
                .map(|(_, url)| url.to_string())
                .collect(),
            private: meta.private,
        })
    }

    /// The pieces' SHA-1 hashes, 20 bytes each.
    pub fn hashes(&self) -> &[u8] {
        let len = self.geometry.piece_count() as usize * 20;
        &self.info[self.hashes_at..self.hashes_at + len]
    }

    /// The info-hash in lowercase hex: the bridge's path and the storage files' names.
    pub fn hex(&self) -> String {
        crate::text::hex(&self.info_hash.0)
    }

    /// Whether the torrent names a tracker other than the one at `origin` (the page's), whose
    /// bridge then has to relay the page's announces to it.
    pub fn names_other_trackers(&self, origin: &str) -> bool {
        let ours = format!("{}/", origin.to_ascii_lowercase());
        self.trackers
            .iter()
            .any(|u| !u.to_ascii_lowercase().starts_with(&ours))
    }

    /// Whether the torrent has more than one file (its data is then saved as one blob of
    /// every file in order).
    pub fn is_multi_file(&self) -> bool {
        self.files.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enjambre_core::metainfo::{write_torrent, FileSpec, TorrentSpec};

    fn torrent(files: &[FileSpec<'_>], length: u64) -> Vec<u8> {
        let pieces = vec![7u8; 20 * length.div_ceil(16384) as usize];
        let spec = TorrentSpec {
            name: "album",
            piece_length: 16384,
            pieces: &pieces,
            files,
            length,
            trackers: &[&["http://127.0.0.1:6969/announce"]],
            private: false,
            created_by: None,
            creation_date: None,
            comment: None,
        };
        let mut out = vec![0u8; 64 * 1024];
        let n = write_torrent(&spec, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn a_single_file_torrent_is_one_file_named_like_the_torrent() {
        let t = Torrent::parse(&torrent(&[], 40_000)).unwrap();
        assert_eq!(t.name, "album");
        assert_eq!(t.geometry.piece_count(), 3);
        assert_eq!(t.hashes().len(), 60);
        assert_eq!(
            t.files,
            vec![TorrentFile {
                path: "album".into(),
                length: 40_000,
                pad: false,
            }]
        );
        assert!(!t.is_multi_file());
        assert_eq!(t.hex().len(), 40);
        assert_eq!(t.trackers, ["http://127.0.0.1:6969/announce"]);
        assert!(!t.names_other_trackers("http://127.0.0.1:6969"));
        assert!(t.names_other_trackers("http://127.0.0.1:8080"));
    }

    #[test]
    fn a_multi_file_torrent_lists_its_files_in_order() {
        let files = [
            FileSpec {
                length: 10_000,
                path: &["cd1", "a.flac"],
            },
            FileSpec {
                length: 30_000,
                path: &["b.flac"],
            },
        ];
        let t = Torrent::parse(&torrent(&files, 40_000)).unwrap();
        assert!(t.is_multi_file());
        let paths: Vec<_> = t.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["cd1/a.flac", "b.flac"]);
        assert_eq!(t.geometry.total_length(), 40_000);
    }

    #[test]
    fn garbage_is_refused_with_a_sentence() {
        let e = Torrent::parse(b"not bencode").unwrap_err();
        assert!(e.starts_with("not a valid .torrent"), "{e}");
    }
}
