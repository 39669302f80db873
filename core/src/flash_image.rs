//! The flash image: a file and its torrent's `info` dictionary in one region, so a board can
//! seed a new file without new firmware (`enjambre create FILE --flash-image OUT.bin` writes
//! it; the board checks it at boot).
//!
//! Layout, all integers little-endian:
//!
//! | offset | bytes | what |
//! |---|---|---|
//! | 0 | 8 | magic `EJFLASH1` |
//! | 8 | 4 | `T`: length of the torrent below |
//! | 12 | 4 | `L`: length of the file |
//! | 16 | `T` | `d4:info<info dictionary>e`: a torrent holding only `info`, so [`Metainfo::parse`] reads it |
//! | 16 + `T`, rounded up to 4 | `L` | the file |
//!
//! [`FlashImage::parse`] checks the header and the `info` dictionary, never the data;
//! [`FlashImage::verify`] checks every piece's SHA-1.

use core::fmt;

use crate::metainfo::{Metainfo, MetainfoError};
use crate::sha1::Sha1;
use crate::BufferTooSmall;

/// The first bytes of every image.
pub const MAGIC: [u8; 8] = *b"EJFLASH1";
/// Bytes before the torrent.
const FIXED: usize = 16;

/// Why a region is not a usable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlashImageError {
    /// The region does not start with [`MAGIC`] (empty, erased, or something else).
    BadMagic,
    /// The lengths in the header run past the end of the region.
    Truncated,
    /// The torrent in the header does not parse.
    BadInfo(MetainfoError),
    /// The torrent has several files, or its length is not the header's.
    LengthMismatch,
    /// This piece's SHA-1 is not the torrent's.
    BadPiece(u32),
}

impl fmt::Display for FlashImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlashImageError::BadMagic => f.write_str("flash image: no EJFLASH1 header"),
            FlashImageError::Truncated => f.write_str("flash image: longer than its region"),
            FlashImageError::BadInfo(e) => write!(f, "flash image: bad info dictionary: {e}"),
            FlashImageError::LengthMismatch => {
                f.write_str("flash image: not one file of the header's length")
            }
            FlashImageError::BadPiece(p) => write!(f, "flash image: piece {p} fails its hash"),
        }
    }
}

impl core::error::Error for FlashImageError {}

/// A parsed image, borrowing its region.
#[derive(Debug, Clone, Copy)]
pub struct FlashImage<'a> {
    /// The torrent (only `info`): name, geometry, piece hashes, info-hash.
    pub metainfo: Metainfo<'a>,
    /// The file.
    pub data: &'a [u8],
}

/// Where the file starts in an image whose torrent is `torrent_len` bytes long.
pub const fn data_offset(torrent_len: usize) -> usize {
    (FIXED + torrent_len + 3) & !3
}

/// Write the header for a file of `data_len` bytes whose `info` dictionary is `info` (its exact
/// bytes, as [`Metainfo::info_bytes`] gives them) into `out`; returns its length, after which
/// the file's bytes follow. Padding bytes are zero.
pub fn write_header(out: &mut [u8], info: &[u8], data_len: u32) -> Result<usize, BufferTooSmall> {
    let torrent_len = info.len() + 8;
    let len = data_offset(torrent_len);
    if out.len() < len || u32::try_from(torrent_len).is_err() {
        return Err(BufferTooSmall { required: len });
    }
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&(torrent_len as u32).to_le_bytes());
    out[12..16].copy_from_slice(&data_len.to_le_bytes());
    out[16..23].copy_from_slice(b"d4:info");
    out[23..23 + info.len()].copy_from_slice(info);
    out[23 + info.len()] = b'e';
    out[FIXED + torrent_len..len].fill(0);
    Ok(len)
}

impl<'a> FlashImage<'a> {
    /// Read the image at the start of `region` (the region may be longer than the image).
    pub fn parse(region: &'a [u8]) -> Result<Self, FlashImageError> {
        if region.len() < FIXED || region[..8] != MAGIC {
            return Err(FlashImageError::BadMagic);
        }
        let word = |at: usize| {
            u32::from_le_bytes([region[at], region[at + 1], region[at + 2], region[at + 3]])
        };
        let (torrent_len, data_len) = (word(8) as usize, word(12) as usize);
        let start = FIXED
            .checked_add(torrent_len)
            .filter(|&end| end <= region.len())
            .map(|_| data_offset(torrent_len))
            .ok_or(FlashImageError::Truncated)?;
        let data = start
            .checked_add(data_len)
            .and_then(|end| region.get(start..end))
            .ok_or(FlashImageError::Truncated)?;
        let metainfo = Metainfo::parse(&region[FIXED..FIXED + torrent_len])
            .map_err(FlashImageError::BadInfo)?;
        if metainfo.is_multi_file() || metainfo.geometry().total_length() != data_len as u64 {
            return Err(FlashImageError::LengthMismatch);
        }
        Ok(FlashImage { metainfo, data })
    }

    /// Check every piece of the file against its SHA-1, with hasher `H`.
    pub fn verify<H: Sha1>(&self) -> Result<(), FlashImageError> {
        let geometry = self.metainfo.geometry();
        for piece in geometry.pieces() {
            let start = geometry.piece_offset(piece) as usize;
            let end = start + geometry.piece_len(piece) as usize;
            let mut h = H::default();
            h.update(&self.data[start..end]);
            if h.finish() != self.metainfo.piece_hash(piece) {
                return Err(FlashImageError::BadPiece(piece.get()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::metainfo::{write_torrent, TorrentSpec};
    use crate::sha1::{digest, Sha1Smol};

    /// A torrent for `data` in 16 KiB pieces, and the image of both.
    fn image(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let pieces: Vec<u8> = data.chunks(16384).flat_map(digest::<Sha1Smol>).collect();
        let spec = TorrentSpec {
            name: "file.bin",
            piece_length: 16384,
            pieces: &pieces,
            files: &[],
            length: data.len() as u64,
            trackers: &[&["http://10.0.0.1:6969/announce"]],
            private: false,
            created_by: None,
            creation_date: None,
            comment: None,
        };
        let mut torrent = std::vec![0u8; 4096];
        let n = write_torrent(&spec, &mut torrent).unwrap();
        torrent.truncate(n);
        let info = Metainfo::parse(&torrent).unwrap().info_bytes;
        let mut img = std::vec![0u8; data_offset(info.len() + 8)];
        let len = write_header(&mut img, info, data.len() as u32).unwrap();
        assert_eq!(len, img.len());
        img.extend_from_slice(data);
        (torrent, img)
    }

    fn data() -> Vec<u8> {
        (0..40_000u32).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn an_image_reads_back_with_the_torrents_info_hash_and_verifies() {
        let (torrent, mut img) = image(&data());
        img.extend_from_slice(&[0xff; 100]); // the rest of the region: erased flash
        let parsed = FlashImage::parse(&img).unwrap();
        assert_eq!(
            parsed.metainfo.info_hash,
            Metainfo::parse(&torrent).unwrap().info_hash
        );
        assert_eq!(parsed.data, &data()[..]);
        assert_eq!(parsed.data.as_ptr() as usize % 4, img.as_ptr() as usize % 4);
        parsed.verify::<Sha1Smol>().unwrap();
    }

    #[test]
    fn a_bad_header_or_a_bad_piece_is_refused() {
        let (_, img) = image(&data());
        assert_eq!(
            FlashImage::parse(&[0xff; 64]).unwrap_err(),
            FlashImageError::BadMagic
        );
        assert_eq!(
            FlashImage::parse(&img[..img.len() - 1]).unwrap_err(),
            FlashImageError::Truncated
        );
        let mut wrong_len = img.clone();
        wrong_len[12..16].copy_from_slice(&39_999u32.to_le_bytes());
        assert_eq!(
            FlashImage::parse(&wrong_len).unwrap_err(),
            FlashImageError::LengthMismatch
        );
        let mut bad_info = img.clone();
        bad_info[16] = b'x';
        assert!(matches!(
            FlashImage::parse(&bad_info),
            Err(FlashImageError::BadInfo(_))
        ));
        let mut flipped = img.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let parsed = FlashImage::parse(&flipped).unwrap();
        assert_eq!(
            parsed.verify::<Sha1Smol>(),
            Err(FlashImageError::BadPiece(2))
        );
    }
}
