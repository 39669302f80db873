//! `--torrent FILE`: read a .torrent (validated by the core's metainfo parser) for its
//! info-hash, name and piece count.

use std::path::Path;

use enjambre_core::metainfo::Metainfo;
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
    let m = Metainfo::parse(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Registered {
        info_hash: m.info_hash,
        name: m.name.to_owned(),
        pieces: m.geometry().piece_count(),
    })
}

/// Read and parse a .torrent file.
pub fn load(path: &Path) -> anyhow::Result<Registered> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
