//! `--torrent FILE`: read a .torrent for its info-hash, name and piece count.

use std::path::Path;

use enjambre_core::bencode::{decode_with, DecodeOptions};
use enjambre_core::sha1::{digest, Sha1Smol};
use enjambre_core::InfoHash;

/// What the registry needs from a .torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub info_hash: InfoHash,
    pub name: String,
    pub pieces: u32,
}

/// Parse a .torrent's bytes.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Registered> {
    // Real-world torrents are not always canonically sorted; the info-hash is over the exact bytes.
    let top = decode_with(
        bytes,
        DecodeOptions {
            require_sorted_keys: false,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dict = top
        .as_dict()
        .ok_or_else(|| anyhow::anyhow!("not a bencoded dictionary"))?;
    let info_span = dict
        .get_span(b"info")
        .ok_or_else(|| anyhow::anyhow!("no info dictionary"))?;
    let info = dict
        .get(b"info")
        .and_then(|v| v.as_dict())
        .ok_or_else(|| anyhow::anyhow!("info is not a dictionary"))?;
    let name = info
        .get(b"name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let pieces = info
        .get(b"pieces")
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| anyhow::anyhow!("no pieces"))?;
    anyhow::ensure!(
        !pieces.is_empty() && pieces.len() % 20 == 0,
        "pieces is not a multiple of 20 bytes"
    );
    Ok(Registered {
        info_hash: InfoHash(digest::<Sha1Smol>(info_span)),
        name,
        pieces: (pieces.len() / 20) as u32,
    })
}

/// Read and parse a .torrent file.
pub fn load(path: &Path) -> anyhow::Result<Registered> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
