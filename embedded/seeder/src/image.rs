//! The file from a flash image: a region written by `enjambre create FILE --flash-image OUT.bin`
//! (layout in `enjambre_core::flash_image`), so a new file needs no new firmware. [`check`]
//! validates it at boot, every piece's SHA-1 included, and says what is wrong with a bad one.

use core::fmt;

use enjambre_core::flash_image::{FlashImage, FlashImageError};
use enjambre_core::session::preset;
use enjambre_core::sha1::Sha1Smol;
use enjambre_core::{Geometry, InfoHash};

use crate::seeder::Torrent;

/// The most pieces the board's session holds.
pub const MAX_PIECES: u32 = (preset::MCU_BITFIELD_BYTES * 8) as u32;

/// A flash image checked at boot: what it seeds, borrowing the region.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// The torrent's name.
    pub name: &'a str,
    /// The info-hash of the image's `info` dictionary.
    pub info_hash: InfoHash,
    /// Piece length and total length.
    pub geometry: Geometry,
    /// SHA-1 of every piece, concatenated (inside the region).
    pub piece_hashes: &'a [u8],
    /// The file (inside the region).
    pub file: &'a [u8],
}

impl Image<'static> {
    /// What the seeder serves, announced to `trackers` (the image holds only the `info`
    /// dictionary, so the trackers come from the firmware).
    pub fn torrent(&self, trackers: &'static [&'static str]) -> Torrent {
        Torrent {
            info_hash: self.info_hash,
            geometry: self.geometry,
            piece_hashes: self.piece_hashes,
            trackers,
        }
    }
}

/// Why a region is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ImageError {
    /// The header, the `info` dictionary or a piece is wrong (see [`FlashImageError`]).
    Image(FlashImageError),
    /// More pieces than the session holds ([`MAX_PIECES`]): make the image with a larger
    /// `--piece-length`.
    TooManyPieces(u32),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Image(e) => e.fmt(f),
            ImageError::TooManyPieces(n) => write!(
                f,
                "flash image: {n} pieces, the board holds {MAX_PIECES}: use a larger --piece-length"
            ),
        }
    }
}

/// Validate the image at the start of `region` (the rest of the region is ignored): the magic,
/// the lengths against the region, the `info` dictionary (one file of the header's length, at
/// most [`MAX_PIECES`] pieces), then every piece against its SHA-1.
pub fn check(region: &[u8]) -> Result<Image<'_>, ImageError> {
    let image = FlashImage::parse(region).map_err(ImageError::Image)?;
    let meta = image.metainfo;
    let pieces = meta.geometry().piece_count();
    if pieces > MAX_PIECES {
        return Err(ImageError::TooManyPieces(pieces));
    }
    image.verify::<Sha1Smol>().map_err(ImageError::Image)?;
    Ok(Image {
        name: meta.name,
        info_hash: meta.info_hash,
        geometry: meta.geometry(),
        piece_hashes: meta.pieces(),
        file: image.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `enjambre create board-image-test.bin --piece-length 16384
    /// -t http://10.77.0.1:6969/announce --flash-image board-image-test.img`: 20,000 bytes of
    /// xorshift output (`embed::default_file`'s generator), 2 pieces, info-hash
    /// 25c5a7c46597e3c073027c821babbe30d8c5e356.
    static IMAGE: &[u8; 20144] = include_bytes!("../tests/data/board-image-test.img");
    const INFO_HASH: &str = "25c5a7c46597e3c073027c821babbe30d8c5e356";
    const FILE_LEN: usize = 20_000;

    fn hex(b: &[u8; 20]) -> [u8; 40] {
        let mut out = [0u8; 40];
        for (i, x) in b.iter().enumerate() {
            out[2 * i] = b"0123456789abcdef"[usize::from(x >> 4)];
            out[2 * i + 1] = b"0123456789abcdef"[usize::from(x & 15)];
        }
        out
    }

    #[test]
    fn an_image_from_enjambre_create_is_seedable() {
        // The region is larger than the image: erased flash follows it.
        let mut region = [0xffu8; 24 * 1024];
        region[..IMAGE.len()].copy_from_slice(IMAGE);
        let image = check(&region).unwrap();
        assert_eq!(&hex(&image.info_hash.0), INFO_HASH.as_bytes());
        assert_eq!(image.name, "board-image-test.bin");
        assert_eq!(image.geometry.total_length(), FILE_LEN as u64);
        assert_eq!(image.geometry.piece_count(), 2);
        assert_eq!(image.file.len(), FILE_LEN);
        assert_eq!(image.file, &IMAGE[IMAGE.len() - FILE_LEN..]);
        assert_eq!(image.piece_hashes.len(), 40);
        // The file starts 4-byte aligned in the region, as flash reads like it.
        assert_eq!(
            (image.file.as_ptr() as usize - region.as_ptr() as usize) % 4,
            0
        );
        let trackers: &'static [&'static str] = &["http://10.77.0.1:6969/announce"];
        let image: &'static [u8] = IMAGE;
        let torrent = check(image).unwrap().torrent(trackers);
        assert_eq!(torrent.geometry.piece_length(), 16384);
    }

    #[test]
    fn an_erased_or_foreign_region_is_refused_for_its_magic() {
        let err = check(&[0xff; 4096]).unwrap_err();
        assert_eq!(err, ImageError::Image(FlashImageError::BadMagic));
        let mut other = *IMAGE;
        other[7] = b'2'; // EJFLASH2
        assert_eq!(
            check(&other).unwrap_err(),
            ImageError::Image(FlashImageError::BadMagic)
        );
        assert_eq!(
            check(&IMAGE[..8]).unwrap_err(),
            ImageError::Image(FlashImageError::BadMagic)
        );
    }

    #[test]
    fn a_region_shorter_than_its_header_says_is_refused() {
        // The last byte of the file is missing (a download cut short).
        assert_eq!(
            check(&IMAGE[..IMAGE.len() - 1]).unwrap_err(),
            ImageError::Image(FlashImageError::Truncated)
        );
        // A torrent length past the region.
        let mut long = *IMAGE;
        long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            check(&long).unwrap_err(),
            ImageError::Image(FlashImageError::Truncated)
        );
        // A file length past the region.
        let mut long = *IMAGE;
        long[12..16].copy_from_slice(&(FILE_LEN as u32 + 1).to_le_bytes());
        assert_eq!(
            check(&long).unwrap_err(),
            ImageError::Image(FlashImageError::Truncated)
        );
    }

    #[test]
    fn a_piece_that_fails_its_hash_is_refused_by_number() {
        let mut bad = *IMAGE;
        let first_of_piece_1 = IMAGE.len() - FILE_LEN + 16384;
        bad[first_of_piece_1] ^= 0x40;
        assert_eq!(
            check(&bad).unwrap_err(),
            ImageError::Image(FlashImageError::BadPiece(1))
        );
        let mut bad = *IMAGE;
        bad[IMAGE.len() - FILE_LEN] ^= 1;
        assert_eq!(
            check(&bad).unwrap_err(),
            ImageError::Image(FlashImageError::BadPiece(0))
        );
    }

    #[cfg(feature = "build")]
    #[test]
    fn an_image_of_more_pieces_than_the_session_holds_is_refused() {
        use enjambre_core::flash_image::{data_offset, write_header};
        use enjambre_core::metainfo::{write_torrent, Metainfo, TorrentSpec};
        use std::vec;
        let pieces = MAX_PIECES + 1;
        let len = u64::from(pieces) * 16384;
        let hashes = vec![0u8; 20 * pieces as usize];
        let spec = TorrentSpec {
            name: "big.bin",
            piece_length: 16384,
            pieces: &hashes,
            files: &[],
            length: len,
            trackers: &[],
            private: false,
            created_by: None,
            creation_date: None,
            comment: None,
        };
        let mut torrent = vec![0u8; hashes.len() + 1024];
        let n = write_torrent(&spec, &mut torrent).unwrap();
        let info = Metainfo::parse(&torrent[..n]).unwrap().info_bytes;
        let mut img = vec![0u8; data_offset(info.len() + 8) + len as usize];
        write_header(&mut img, info, len as u32).unwrap();
        assert_eq!(check(&img).unwrap_err(), ImageError::TooManyPieces(pieces));
    }

    #[test]
    fn a_bad_info_dictionary_is_refused() {
        let mut bad = *IMAGE;
        bad[16] = b'x'; // not `d4:info…`
        assert!(matches!(
            check(&bad).unwrap_err(),
            ImageError::Image(FlashImageError::BadInfo(_))
        ));
    }
}
