//! Which pieces a peer has: a fixed-capacity bitfield in BEP 3 bit order.
//!
//! Piece 0 is the high bit of byte 0 (BEP 3). The bits past [`Bitfield::len`] are always zero:
//! every constructor and mutator keeps them so, which is what lets [`Bitfield::as_bytes`] go to
//! the wire unchanged and lets counts and searches work a byte at a time.

use core::fmt;

/// The requested number of pieces does not fit the bitfield's capacity (`BYTES * 8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("capacity exceeded")
    }
}

impl core::error::Error for CapacityError {}

/// Why a bitfield received from a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BitfieldError {
    /// The byte count is not `ceil(pieces / 8)`.
    WrongLength,
    /// A bit after the last piece is set (BEP 3: drop the connection).
    SpareBitsSet,
    /// More pieces than the bitfield can hold.
    Capacity,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BitfieldError::WrongLength => "bitfield has the wrong length",
            BitfieldError::SpareBitsSet => "bitfield has spare bits set",
            BitfieldError::Capacity => "bitfield capacity exceeded",
        })
    }
}

impl core::error::Error for BitfieldError {}

impl From<CapacityError> for BitfieldError {
    fn from(_: CapacityError) -> Self {
        BitfieldError::Capacity
    }
}

/// One bit per piece for up to `BYTES * 8` pieces, stored inline (no allocation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield<const BYTES: usize> {
    bits: [u8; BYTES],
    len: u32,
}

/// Return the number of bytes that hold `len_bits` bits.
const fn byte_len(len_bits: u32) -> usize {
    len_bits.div_ceil(8) as usize
}

/// Return the mask of the bits of the last byte that belong to pieces (all ones when full).
const fn last_byte_mask(len_bits: u32) -> u8 {
    match len_bits % 8 {
        0 => 0xff,
        r => 0xff << (8 - r),
    }
}

impl<const BYTES: usize> Default for Bitfield<BYTES> {
    /// A bitfield of zero pieces.
    fn default() -> Self {
        Self::empty()
    }
}

impl<const BYTES: usize> Bitfield<BYTES> {
    /// The largest piece count this type can hold.
    pub const CAPACITY: u32 = if BYTES as u64 * 8 > u32::MAX as u64 {
        u32::MAX
    } else {
        (BYTES * 8) as u32
    };

    /// Create an all-zero bitfield of `len_bits` pieces.
    pub const fn new(len_bits: u32) -> Result<Self, CapacityError> {
        if len_bits > Self::CAPACITY {
            return Err(CapacityError);
        }
        Ok(Bitfield {
            bits: [0; BYTES],
            len: len_bits,
        })
    }

    /// A bitfield of zero pieces (usable in `const` contexts).
    pub const fn empty() -> Self {
        Bitfield {
            bits: [0; BYTES],
            len: 0,
        }
    }

    /// Make this an all-zero bitfield of `len_bits` pieces, in place.
    pub fn reset(&mut self, len_bits: u32) -> Result<(), CapacityError> {
        if len_bits > Self::CAPACITY {
            return Err(CapacityError);
        }
        self.bits.fill(0);
        self.len = len_bits;
        Ok(())
    }

    /// Return the number of pieces.
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Return true when the bitfield covers zero pieces (not when no bit is set).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Return whether piece `i` is set; false when `i` is out of range.
    pub fn get(&self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let byte = self.bits.get((i / 8) as usize).copied().unwrap_or(0);
        byte & (0x80 >> (i % 8)) != 0
    }

    /// Set or clear piece `i`; does nothing when `i` is out of range.
    pub fn set(&mut self, i: u32, v: bool) {
        if i >= self.len {
            return;
        }
        if let Some(byte) = self.bits.get_mut((i / 8) as usize) {
            let mask = 0x80 >> (i % 8);
            if v {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }

    /// Set every piece.
    pub fn fill(&mut self) {
        let n = byte_len(self.len);
        for (i, byte) in self.bits.iter_mut().enumerate() {
            *byte = if i + 1 < n {
                0xff
            } else if i + 1 == n {
                last_byte_mask(self.len)
            } else {
                0
            };
        }
    }

    /// Clear every piece.
    pub fn clear_all(&mut self) {
        self.bits = [0; BYTES];
    }

    /// Return the number of pieces set. Reads the torrent's bytes only, never the whole
    /// capacity (a 128-piece torrent in a 32,768-piece bitfield: 16 bytes, not 4,096).
    pub fn count_ones(&self) -> u32 {
        self.as_bytes().iter().map(|b| b.count_ones()).sum()
    }

    /// Return true when every piece is set (also for a zero-piece bitfield).
    pub fn is_full(&self) -> bool {
        self.count_ones() == self.len
    }

    /// Return the `ceil(len / 8)` bytes in wire order, spare bits zero.
    pub fn as_bytes(&self) -> &[u8] {
        self.bits.get(..byte_len(self.len)).unwrap_or(&[])
    }

    /// Return the whole backing array; bytes past [`Self::as_bytes`] are zero.
    pub(crate) fn raw(&self) -> &[u8; BYTES] {
        &self.bits
    }

    /// Check a wire bitfield of `len_bits` pieces: exact length and zero spare bits.
    pub fn from_wire(len_bits: u32, bytes: &[u8]) -> Result<Self, BitfieldError> {
        let mut field = Self::new(len_bits)?;
        field.copy_from_slices(bytes, &[])?;
        Ok(field)
    }

    /// Replace the contents with a wire bitfield split in two halves (`a` then `b`), keeping
    /// [`Self::len`]; checks as [`Self::from_wire`] does and leaves `self` unchanged on error.
    pub fn copy_from_slices(&mut self, a: &[u8], b: &[u8]) -> Result<(), BitfieldError> {
        let n = byte_len(self.len);
        if a.len().checked_add(b.len()) != Some(n) {
            return Err(BitfieldError::WrongLength);
        }
        let last = b.last().or(a.last()).copied().unwrap_or(0);
        if last & !last_byte_mask(self.len) != 0 {
            return Err(BitfieldError::SpareBitsSet);
        }
        for (dst, src) in self.bits.iter_mut().zip(a.iter().chain(b)) {
            *dst = *src;
        }
        Ok(())
    }

    /// Replace the contents with a `BITFIELD` payload as the wire decoder hands it over (ring
    /// halves); same checks as [`Self::copy_from_slices`].
    pub fn copy_from_split(&mut self, s: crate::wire::Split<'_>) -> Result<(), BitfieldError> {
        self.copy_from_slices(s.a, s.b)
    }

    /// Iterate over the set pieces in increasing order, skipping zero bytes.
    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        Ones {
            bytes: self.as_bytes(),
            next_byte: 0,
            current: 0,
            base: 0,
        }
    }

    /// Return the lowest piece not set, or `None` when full.
    pub fn first_zero(&self) -> Option<u32> {
        let (i, byte) = self
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, b)| **b != 0xff)?;
        let piece = i as u32 * 8 + byte.leading_ones();
        (piece < self.len).then_some(piece)
    }

    /// Return true when some piece set here and in `wanted` is not set in `have` (e.g. "has
    /// the peer a piece we want and lack").
    pub fn any_wanted_not_in(&self, wanted: &Self, have: &Self) -> bool {
        (self.as_bytes().iter().zip(wanted.bits.iter()))
            .zip(have.bits.iter())
            .any(|((mine, w), h)| mine & w & !h != 0)
    }

    /// Return true when some piece set here is not set in `other` (e.g. "is the peer interesting").
    pub fn any_not_in(&self, other: &Self) -> bool {
        self.as_bytes()
            .iter()
            .zip(other.bits.iter())
            .any(|(mine, theirs)| mine & !theirs != 0)
    }
}

/// Iterator over set bits: takes one non-zero byte at a time and peels its leading set bit.
struct Ones<'a> {
    bytes: &'a [u8],
    next_byte: usize,
    /// The not-yet-yielded set bits of the current byte.
    current: u8,
    /// Piece number of the current byte's high bit.
    base: u32,
}

impl Iterator for Ones<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.current == 0 {
            let byte = *self.bytes.get(self.next_byte)?;
            self.base = self.next_byte as u32 * 8;
            self.next_byte += 1;
            self.current = byte;
        }
        let bit = self.current.leading_zeros();
        self.current &= !(0x80 >> bit);
        Some(self.base + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn bep3_bit_order_piece_zero_is_high_bit_of_first_byte() {
        let mut b = Bitfield::<2>::new(10).unwrap();
        b.set(0, true);
        assert_eq!(b.as_bytes(), [0b1000_0000, 0]);
        b.set(7, true);
        b.set(8, true);
        b.set(9, true);
        assert_eq!(b.as_bytes(), [0b1000_0001, 0b1100_0000]);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), [0, 7, 8, 9]);
        b.set(0, false);
        assert_eq!(b.as_bytes(), [0b0000_0001, 0b1100_0000]);
    }

    #[test]
    fn wire_vector_of_a_seeder_with_ten_pieces() {
        // A seeder of 10 pieces sends ff c0: eight pieces, then two, then six zero spare bits.
        let b = Bitfield::<2>::from_wire(10, &[0xff, 0xc0]).unwrap();
        assert!(b.is_full());
        assert_eq!(b.count_ones(), 10);
        assert_eq!(b.first_zero(), None);
        let mut filled = Bitfield::<2>::new(10).unwrap();
        filled.fill();
        assert_eq!(filled, b);
    }

    #[test]
    fn spare_bits_are_rejected() {
        for spare in 0..6 {
            let last = 0xc0 | (1 << spare);
            assert_eq!(
                Bitfield::<2>::from_wire(10, &[0, last]),
                Err(BitfieldError::SpareBitsSet),
                "spare bit {spare}"
            );
        }
        // With a multiple of 8 pieces there are no spare bits.
        assert!(Bitfield::<2>::from_wire(16, &[0xff, 0xff]).is_ok());
    }

    #[test]
    fn wrong_lengths_and_capacity_are_rejected() {
        assert_eq!(
            Bitfield::<2>::from_wire(10, &[0xff]),
            Err(BitfieldError::WrongLength)
        );
        assert_eq!(
            Bitfield::<2>::from_wire(10, &[0, 0, 0]),
            Err(BitfieldError::WrongLength)
        );
        assert_eq!(
            Bitfield::<2>::from_wire(8, &[0, 0]),
            Err(BitfieldError::WrongLength)
        );
        assert_eq!(
            Bitfield::<2>::from_wire(17, &[0, 0, 0]),
            Err(BitfieldError::Capacity)
        );
        assert_eq!(Bitfield::<2>::new(17), Err(CapacityError));
        assert!(Bitfield::<0>::from_wire(0, &[]).unwrap().is_full());
    }

    #[test]
    fn copy_from_slices_accepts_every_split_and_keeps_state_on_error() {
        let wire = [0xa5, 0x5a, 0xe0];
        let whole = Bitfield::<3>::from_wire(19, &wire).unwrap();
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            let mut f = Bitfield::<3>::new(19).unwrap();
            f.copy_from_slices(a, b).unwrap();
            assert_eq!(f, whole, "split at {at}");
        }
        let mut f = whole.clone();
        assert_eq!(
            f.copy_from_slices(&[0, 0], &[0xf0]),
            Err(BitfieldError::SpareBitsSet)
        );
        assert_eq!(
            f.copy_from_slices(&[0, 0, 0xf0], &[]),
            Err(BitfieldError::SpareBitsSet)
        );
        assert_eq!(
            f.copy_from_slices(&[0], &[0]),
            Err(BitfieldError::WrongLength)
        );
        assert_eq!(f, whole);
    }

    #[test]
    fn bitfield_message_from_the_wire_decoder_split_everywhere() {
        use crate::wire::{Message, Status};
        // BEP 3 BITFIELD: length 4, id 5, then 19 pieces in three bytes (five spare bits).
        let wire = [0, 0, 0, 4, 5, 0xa5, 0x5a, 0xe0];
        let expected = Bitfield::<3>::from_wire(19, &[0xa5, 0x5a, 0xe0]).unwrap();
        assert_eq!(
            expected.iter_ones().collect::<Vec<_>>(),
            [0, 2, 5, 7, 9, 11, 12, 14, 16, 17, 18]
        );
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            let Ok(Status::Complete((Message::Bitfield(payload), 8))) = Message::decode(a, b, 64)
            else {
                panic!("split at {at} did not decode a bitfield");
            };
            let mut f = Bitfield::<3>::new(19).unwrap();
            f.copy_from_split(payload).unwrap();
            assert_eq!(f, expected, "split at {at}");
            let mut short = Bitfield::<3>::new(17).unwrap();
            assert_eq!(
                short.copy_from_split(payload),
                Err(BitfieldError::SpareBitsSet)
            );
        }
    }

    #[test]
    fn out_of_range_access_is_inert() {
        let mut b = Bitfield::<2>::new(10).unwrap();
        b.set(10, true);
        b.set(u32::MAX, true);
        assert_eq!(b.count_ones(), 0);
        assert!(!b.get(10));
        assert!(!b.get(u32::MAX));
        assert_eq!(b.first_zero(), Some(0));
    }

    #[test]
    fn first_zero_skips_full_bytes() {
        let mut b = Bitfield::<3>::new(20).unwrap();
        for i in 0..13 {
            b.set(i, true);
        }
        assert_eq!(b.first_zero(), Some(13));
        b.fill();
        b.set(19, false);
        assert_eq!(b.first_zero(), Some(19));
    }

    #[test]
    fn interest_is_any_piece_the_other_lacks() {
        let mut peer = Bitfield::<2>::new(10).unwrap();
        let mut have = Bitfield::<2>::new(10).unwrap();
        assert!(!peer.any_not_in(&have));
        peer.set(9, true);
        assert!(peer.any_not_in(&have));
        have.set(9, true);
        assert!(!peer.any_not_in(&have));
    }

    proptest! {
        #[test]
        fn matches_a_bool_array(len in 0u32..=64, ops in proptest::collection::vec((0u32..70, any::<bool>()), 0..100)) {
            let mut b = Bitfield::<8>::new(len).unwrap();
            let mut model = [false; 64];
            for (i, v) in ops {
                b.set(i, v);
                if i < len {
                    model[i as usize] = v;
                }
            }
            let ones: Vec<u32> = (0..len).filter(|&i| model[i as usize]).collect();
            prop_assert_eq!(b.iter_ones().collect::<Vec<_>>(), ones.clone());
            prop_assert_eq!(b.count_ones(), ones.len() as u32);
            prop_assert_eq!(b.first_zero(), (0..len).find(|&i| !model[i as usize]));
            prop_assert_eq!(b.is_full(), ones.len() as u32 == len);
            // What goes on the wire comes back identical.
            prop_assert_eq!(Bitfield::<8>::from_wire(len, b.as_bytes()), Ok(b.clone()));
        }
    }
}
