//! The shape of a torrent's data: piece length, total length, and validated piece/block references.
//!
//! Wire integers are validated once, here, into [`PieceIndex`] and [`BlockRef`]; code that holds
//! one of those never needs to bounds-check again.

/// The block size requested from peers: 16 KiB, the largest every client serves.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Piece length, total length and piece count of one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Geometry {
    piece_length: u32,
    total_length: u64,
    piece_count: u32,
}

/// A piece index known to be within its torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PieceIndex(u32);

/// A byte range inside one piece, known to be within it and non-empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BlockRef {
    /// The piece.
    pub piece: PieceIndex,
    /// Offset of the first byte inside the piece.
    pub offset: u32,
    /// Number of bytes, at least one.
    pub len: u32,
}

/// Why a geometry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GeometryError {
    /// The piece length is zero.
    ZeroPieceLength,
    /// The total length is zero.
    ZeroLength,
    /// More than `u32::MAX` pieces.
    TooManyPieces,
}

impl core::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GeometryError::ZeroPieceLength => "piece length is zero",
            GeometryError::ZeroLength => "torrent length is zero",
            GeometryError::TooManyPieces => "too many pieces",
        })
    }
}

impl core::error::Error for GeometryError {}

impl PieceIndex {
    /// Return the index as a number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Geometry {
    /// The shape of no torrent: zero pieces. A session holds it until it is started.
    pub(crate) const NONE: Geometry = Geometry {
        piece_length: 1,
        total_length: 0,
        piece_count: 0,
    };

    /// Build the geometry of a torrent of `total_length` bytes cut in pieces of `piece_length`.
    pub fn new(piece_length: u32, total_length: u64) -> Result<Self, GeometryError> {
        if piece_length == 0 {
            return Err(GeometryError::ZeroPieceLength);
        }
        if total_length == 0 {
            return Err(GeometryError::ZeroLength);
        }
        let count = total_length.div_ceil(piece_length as u64);
        let piece_count = u32::try_from(count).map_err(|_| GeometryError::TooManyPieces)?;
        Ok(Geometry {
            piece_length,
            total_length,
            piece_count,
        })
    }

    /// Return the nominal piece length (every piece but possibly the last).
    pub const fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Return the torrent's total length in bytes.
    pub const fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Return the number of pieces.
    pub const fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Validate a wire piece index.
    pub fn piece(&self, index: u32) -> Option<PieceIndex> {
        (index < self.piece_count).then_some(PieceIndex(index))
    }

    /// Return the length of `piece` (the last one may be shorter).
    pub fn piece_len(&self, piece: PieceIndex) -> u32 {
        let start = piece.0 as u64 * self.piece_length as u64;
        (self.total_length - start).min(self.piece_length as u64) as u32
    }

    /// Return the torrent-wide offset of the first byte of `piece`.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        piece.0 as u64 * self.piece_length as u64
    }

    /// Validate a wire block reference: the range must be non-empty and inside the piece.
    pub fn block(&self, index: u32, offset: u32, len: u32) -> Option<BlockRef> {
        let piece = self.piece(index)?;
        let end = offset.checked_add(len)?;
        (len > 0 && end <= self.piece_len(piece)).then_some(BlockRef { piece, offset, len })
    }

    /// Iterate over all pieces.
    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> {
        (0..self.piece_count).map(PieceIndex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_piece_is_short() {
        let g = Geometry::new(16, 40).unwrap();
        assert_eq!(g.piece_count(), 3);
        assert_eq!(g.piece_len(g.piece(2).unwrap()), 8);
        assert_eq!(g.piece(3), None);
        assert!(g.block(2, 0, 8).is_some());
        assert!(g.block(2, 1, 8).is_none());
        assert!(g.block(0, 0, 0).is_none());
        assert!(g.block(0, u32::MAX, 2).is_none());
    }

    #[test]
    fn refuses_degenerate() {
        assert_eq!(Geometry::new(0, 1), Err(GeometryError::ZeroPieceLength));
        assert_eq!(Geometry::new(1, 0), Err(GeometryError::ZeroLength));
        assert_eq!(
            Geometry::new(1, u64::MAX),
            Err(GeometryError::TooManyPieces)
        );
    }
}
