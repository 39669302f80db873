//! For build scripts: embed a file in a program. Hashes its pieces, computes the info-hash,
//! writes the `.torrent`, and writes Rust source naming the file, the hashes and the torrent's
//! shape for `include!`. Uses the core's metainfo writer and parser, never its own encoding.

use std::format;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

use enjambre_core::metainfo::{write_torrent, Metainfo, TorrentSpec};
use enjambre_core::sha1::{digest, Sha1Smol};

/// The most pieces the board's session holds.
pub const MAX_PIECES: u64 = 1024;

/// What [`embed`] wrote.
#[derive(Debug)]
pub struct Embedded {
    /// The `.torrent` written.
    pub torrent: PathBuf,
    /// The Rust source to `include!`.
    pub source: PathBuf,
    /// The info-hash, in hex.
    pub info_hash_hex: String,
}

/// What a build script calls: embed `SEED_FILE` (default: [`default_file`]), announced to
/// `SEED_TRACKER` (default `http://10.77.0.1:6969/announce`), into `OUT_DIR`; copy the
/// `.torrent` and the file beside the program; export `SEED_INFO_HASH` to the crate.
pub fn from_env() -> io::Result<Embedded> {
    std::println!("cargo:rerun-if-env-changed=SEED_FILE");
    std::println!("cargo:rerun-if-env-changed=SEED_TRACKER");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR: run from a build script"));
    let file = match std::env::var_os("SEED_FILE") {
        Some(f) => {
            std::println!("cargo:rerun-if-changed={}", Path::new(&f).display());
            PathBuf::from(f)
        }
        None => default_file(&out)?,
    };
    let tracker = std::env::var("SEED_TRACKER")
        .unwrap_or_else(|_| String::from("http://10.77.0.1:6969/announce"));
    let e = embed(&file, &[tracker.as_str()], &out)?;
    // OUT_DIR is target/[<triple>/]<profile>/build/<pkg>-<hash>/out: the program is 3 levels up.
    if let Some(bin_dir) = out.ancestors().nth(3) {
        fs::copy(
            &e.torrent,
            bin_dir.join(e.torrent.file_name().unwrap_or_default()),
        )?;
        fs::copy(&file, bin_dir.join(file.file_name().unwrap_or_default()))?;
    }
    std::println!("cargo:rustc-env=SEED_INFO_HASH={}", e.info_hash_hex);
    Ok(e)
}

/// Write `board-seed.bin` into `dir`: 300 KiB of fixed pseudo-random bytes (xorshift), the
/// file seeded when none is named.
pub fn default_file(dir: &Path) -> io::Result<PathBuf> {
    let f = dir.join("board-seed.bin");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..300 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(&f, data)?;
    Ok(f)
}

/// The smallest piece length (a power of two, at least 16 KiB) that keeps `len` bytes within
/// [`MAX_PIECES`] pieces.
pub fn piece_length_for(len: u64) -> u32 {
    let mut piece = 16 * 1024u64;
    while len.div_ceil(piece) > MAX_PIECES {
        piece *= 2;
    }
    piece as u32
}

/// Embed `file`, announced to `trackers`: write `<name>.torrent` and `seeded.rs` into `out_dir`.
///
/// `seeded.rs` defines `FILE: &[u8]` (`include_bytes!` of `file`), `PIECE_HASHES: &[u8]`,
/// `INFO_HASH: [u8; 20]`, `PIECE_LENGTH: u32`, `LENGTH: u64`, `NAME: &str` and
/// `TRACKERS: &[&str]`.
pub fn embed(file: &Path, trackers: &[&str], out_dir: &Path) -> io::Result<Embedded> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let data = fs::read(file)?;
    if data.is_empty() {
        return Err(bad(format!("{}: empty file", file.display())));
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad(format!("{}: no usable file name", file.display())))?;
    let piece_length = piece_length_for(data.len() as u64);
    let pieces: Vec<u8> = data
        .chunks(piece_length as usize)
        .flat_map(digest::<Sha1Smol>)
        .collect();
    let tiers: Vec<&[&str]> = trackers.iter().map(core::slice::from_ref).collect();
    let spec = TorrentSpec {
        name,
        piece_length,
        pieces: &pieces,
        files: &[],
        length: data.len() as u64,
        trackers: &tiers,
        private: false,
        created_by: Some("enjambre-embedded"),
        creation_date: None,
        comment: None,
    };
    let mut buf = std::vec![0u8; pieces.len() + 4096];
    let n = write_torrent(&spec, &mut buf).map_err(|e| bad(format!("{e}")))?;
    let meta = Metainfo::parse(&buf[..n]).map_err(|e| bad(format!("{e}")))?;
    let torrent = out_dir.join(format!("{name}.torrent"));
    fs::write(&torrent, &buf[..n])?;
    let hashes = out_dir.join("piece-hashes.bin");
    fs::write(&hashes, &pieces)?;
    let abs = fs::canonicalize(file)?;
    let info_hash_hex: String = meta
        .info_hash
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let source = out_dir.join("seeded.rs");
    fs::write(
        &source,
        format!(
            "/// The seeded file.\npub static FILE: &[u8] = include_bytes!({abs:?});\n\
             /// SHA-1 of every piece.\npub static PIECE_HASHES: &[u8] = include_bytes!({hashes:?});\n\
             /// The info-hash ({info_hash_hex}).\npub const INFO_HASH: [u8; 20] = {ih:?};\n\
             /// Bytes per piece.\npub const PIECE_LENGTH: u32 = {piece_length};\n\
             /// The file's length.\npub const LENGTH: u64 = {len};\n\
             /// The torrent's name.\npub const NAME: &str = {name:?};\n\
             /// Announce URLs.\npub static TRACKERS: &[&str] = &{trackers:?};\n",
            ih = meta.info_hash.0,
            len = data.len(),
        ),
    )?;
    Ok(Embedded {
        torrent,
        source,
        info_hash_hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_length_keeps_a_file_within_the_boards_pieces() {
        assert_eq!(piece_length_for(1), 16 * 1024);
        assert_eq!(piece_length_for(16 * 1024 * 1024), 16 * 1024);
        assert_eq!(piece_length_for(16 * 1024 * 1024 + 1), 32 * 1024);
    }

    #[test]
    fn an_embedded_file_gets_a_torrent_that_parses_with_its_hashes() {
        let dir = std::env::temp_dir().join(format!("enjambre-embed-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hello.bin");
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        fs::write(&file, &data).unwrap();
        let e = embed(&file, &["http://10.0.0.1:6969/announce"], &dir).unwrap();
        let bytes = fs::read(&e.torrent).unwrap();
        let meta = Metainfo::parse(&bytes).unwrap();
        assert_eq!(meta.geometry().piece_count(), 3);
        assert_eq!(
            meta.pieces(),
            &fs::read(dir.join("piece-hashes.bin")).unwrap()[..]
        );
        assert_eq!(meta.announce(), Some("http://10.0.0.1:6969/announce"));
        let src = fs::read_to_string(&e.source).unwrap();
        assert!(src.contains("pub const LENGTH: u64 = 40000;"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
