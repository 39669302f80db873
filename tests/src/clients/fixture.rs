//! The data of one scenario: a scratch directory, a file of deterministic bytes and its
//! `.torrent` made by `enjambre create`, and fresh copies of the data for each seed.

use std::path::{Path, PathBuf};

use super::{data, enjambre, Scratch, Torrent};

/// A file to share and its torrent, in a scenario's scratch directory.
pub struct Fixture {
    pub dir: PathBuf,
    pub bytes: Vec<u8>,
    pub torrent: Torrent,
    src: PathBuf,
}

impl Fixture {
    /// In `dir`, the data of `scenario` (`len` bytes seeded by the name) and its torrent
    /// announcing to `trackers`.
    pub fn new(
        dir: &Scratch,
        scenario: &str,
        len: usize,
        piece_length: u32,
        trackers: &[String],
    ) -> Fixture {
        let seed = scenario
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let bytes = data(len, seed);
        let src = dir.sub("src").join(format!("{scenario}.bin"));
        std::fs::write(&src, &bytes).expect("write data");
        let torrent = enjambre::create(
            &src,
            &dir.path().join(format!("{scenario}.torrent")),
            trackers,
            piece_length,
        );
        Fixture {
            dir: dir.path().to_path_buf(),
            bytes,
            torrent,
            src,
        }
    }

    /// A new directory `name` holding a copy of the data under the torrent's name.
    pub fn seed_dir(&self, name: &str) -> PathBuf {
        let d = self.empty_dir(name);
        std::fs::copy(&self.src, d.join(&self.torrent.name)).expect("copy data");
        d
    }

    /// A new empty directory `name` (readable by all).
    pub fn empty_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).expect("create dir");
        d
    }

    /// The path of the data under the torrent's name in `dir`.
    pub fn file_in(&self, dir: &Path) -> PathBuf {
        dir.join(&self.torrent.name)
    }
}
