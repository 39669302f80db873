//! Reading a `.torrent` for `get`, `seed` and `info`: a local file.

use crate::peer::Failure;

/// The largest `.torrent` accepted (a 10,000-piece torrent is about 200 KiB).
pub const MAX_TORRENT_BYTES: u64 = 16 << 20;

/// Read the torrent at `source`; a failure exits with code 2 (a bad torrent).
pub fn read(source: &str) -> Result<Vec<u8>, Failure> {
    read_file(source)
}

fn read_file(path: &str) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| Failure::new(2, format!("cannot read {path}: {e}"));
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > MAX_TORRENT_BYTES {
        return Err(too_large(path));
    }
    std::fs::read(path).map_err(cannot)
}

fn too_large(source: &str) -> Failure {
    Failure::new(
        2,
        format!(
            "{source} is larger than {} MiB: not a torrent",
            MAX_TORRENT_BYTES >> 20
        ),
    )
}
