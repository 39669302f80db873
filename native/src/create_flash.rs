//! `enjambre create FILE --flash-image OUT.bin`: the file and its `info` dictionary in the
//! core's flash image layout (`enjambre_core::flash_image`), for a board to seed without new
//! firmware.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use enjambre_core::flash_image::{data_offset, write_header};
use enjambre_core::metainfo::Metainfo;

/// Pieces a board's session holds.
const BOARD_PIECES: u32 = 1024;

/// Write the image of `data` (a single file) described by the `.torrent` bytes `torrent` to
/// `out`; an existing `out` is replaced only with `force`.
pub fn write(torrent: &[u8], data: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    let meta = Metainfo::parse(torrent).context("the torrent just written")?;
    if meta.is_multi_file() || !data.is_file() {
        bail!("--flash-image takes a single file, not a directory");
    }
    let bytes = std::fs::read(data).with_context(|| format!("reading {}", data.display()))?;
    let Ok(len) = u32::try_from(bytes.len()) else {
        bail!("--flash-image: {} is larger than 4 GiB", data.display());
    };
    let mut image = vec![0u8; data_offset(meta.info_bytes.len() + 8)];
    write_header(&mut image, meta.info_bytes, len).context("flash image header")?;
    image.extend_from_slice(&bytes);
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options
        .open(out)
        .and_then(|mut f| f.write_all(&image))
        .with_context(|| format!("writing {} (--force replaces it)", out.display()))?;
    println!("{}: flash image, {} bytes", out.display(), image.len());
    let pieces = meta.geometry().piece_count();
    if pieces > BOARD_PIECES {
        eprintln!(
            "warning: {pieces} pieces; a board seeds at most {BOARD_PIECES}: use a larger --piece-length"
        );
    }
    Ok(())
}
