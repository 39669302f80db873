//! Per-swarm bitfield storage: one arena of fixed-stride slots and the per-piece availability.
//!
//! A peer's bitfield is either unknown, empty, full or a slot here; empty and full peers cost no
//! bytes. Never stores a bitfield whose length differs from the swarm's stride.

/// What the tracker knows about which pieces one peer has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Have {
    /// Never learned (not polled yet, not reported).
    Unknown = 0,
    /// No pieces (HaveNone, an all-zero bitfield, or silence when polled).
    None = 1,
    /// Every piece (HaveAll or a full bitfield).
    All = 2,
    /// Some pieces: the bits live in the swarm's arena slot.
    Some = 3,
}

impl Have {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Have::Unknown => "unknown",
            Have::None => "none",
            Have::All => "all",
            Have::Some => "some",
        }
    }
}

/// How a bitfield was learned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Source {
    /// Sent by the peer itself in an announce (`bitfield=`).
    Report = 0,
    /// Learned by the tracker connecting to the peer.
    Poll = 1,
}

impl Source {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Report => "report",
            Source::Poll => "poll",
        }
    }
}

/// A bitfield about to be stored: the caller's bytes, validated against the swarm stride.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewBits {
    /// No pieces.
    None,
    /// All pieces.
    All,
    /// Raw BEP 3 bitfield bytes (MSB of byte 0 is piece 0).
    Bytes(Vec<u8>),
}

/// Slot arena plus availability for one swarm; a swarm without bitfields holds only a null
/// pointer here.
#[derive(Default)]
pub struct Arena {
    inner: Option<Box<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Bytes per bitfield; 0 while unknown.
    stride: usize,
    data: Vec<u8>,
    free: Vec<u32>,
    /// How many stored `Some` bitfields have each piece.
    avail: Vec<u32>,
    /// How many peers have every piece (not counted in `avail`).
    all: u32,
}

/// Why a bitfield was not stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BitsError {
    /// Its length does not match the torrent's piece count.
    WrongLength,
    /// Bits beyond the last piece are set.
    SpareBits,
    /// More pieces than the tracker accepts.
    TooLarge,
}

impl std::fmt::Display for BitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BitsError::WrongLength => "bitfield length does not match the piece count",
            BitsError::SpareBits => "bitfield has bits set beyond the last piece",
            BitsError::TooLarge => "bitfield longer than the tracker accepts",
        })
    }
}

impl Arena {
    fn inner_mut(&mut self) -> &mut Inner {
        self.inner.get_or_insert_with(Box::default)
    }

    /// Bytes per bitfield, 0 while unknown.
    pub fn stride(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.stride)
    }

    /// Fix the stride (from a registered torrent or the first bitfield seen).
    pub fn set_stride(&mut self, stride: usize) {
        let i = self.inner_mut();
        if i.stride == 0 {
            i.stride = stride;
            i.avail = vec![0; stride * 8];
        }
    }

    /// Validate `bytes` for this swarm: `pieces` is the exact piece count when known.
    pub fn check(
        &self,
        bytes: &[u8],
        pieces: Option<u32>,
        max_pieces: u32,
    ) -> Result<(), BitsError> {
        if bytes.len() as u64 * 8 > u64::from(max_pieces) + 7 {
            return Err(BitsError::TooLarge);
        }
        if let Some(n) = pieces {
            if bytes.len() != (n as usize).div_ceil(8) {
                return Err(BitsError::WrongLength);
            }
            let spare = (bytes.len() * 8) as u32 - n;
            if spare > 0 && bytes.last().is_some_and(|b| b & ((1u8 << spare) - 1) != 0) {
                return Err(BitsError::SpareBits);
            }
        } else if self.stride() != 0 && bytes.len() != self.stride() {
            return Err(BitsError::WrongLength);
        }
        Ok(())
    }

    /// The bytes of a slot.
    pub fn slot(&self, slot: u32) -> &[u8] {
        let Some(i) = &self.inner else { return &[] };
        let start = slot as usize * i.stride;
        i.data.get(start..start + i.stride).unwrap_or(&[])
    }

    /// The highest piece some stored bitfield has, if any.
    pub fn highest_piece(&self) -> Option<usize> {
        self.inner
            .as_ref()
            .and_then(|i| i.avail.iter().rposition(|&a| a > 0))
    }

    /// How many peers have `piece` (stored bitfields and full peers).
    pub fn availability(&self, piece: usize) -> u32 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.avail.get(piece).copied().unwrap_or(0) + i.all)
    }

    /// Forget a peer's bits (it left or its bits are replaced).
    pub fn release(&mut self, have: Have, slot: u32) {
        let Some(i) = self.inner.as_deref_mut() else {
            return;
        };
        match have {
            Have::All => i.all = i.all.saturating_sub(1),
            Have::Some => {
                let start = slot as usize * i.stride;
                if let Some(bytes) = i.data.get(start..start + i.stride) {
                    for (byte_i, &b) in bytes.iter().enumerate() {
                        for_each_bit(b, |bit| {
                            if let Some(a) = i.avail.get_mut(byte_i * 8 + bit) {
                                *a = a.saturating_sub(1);
                            }
                        });
                    }
                }
                i.free.push(slot);
            }
            Have::None | Have::Unknown => {}
        }
    }

    /// Store new bits, returning the peer's new state and slot. `exact_pieces` is the piece
    /// count when exact, used to store a complete bitfield as [`Have::All`].
    pub fn store(&mut self, bits: &NewBits, exact_pieces: Option<u32>) -> (Have, u32) {
        match bits {
            NewBits::None => (Have::None, u32::MAX),
            NewBits::All => {
                self.inner_mut().all += 1;
                (Have::All, u32::MAX)
            }
            NewBits::Bytes(bytes) => {
                let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
                if ones == 0 {
                    return (Have::None, u32::MAX);
                }
                if exact_pieces == Some(ones) {
                    self.inner_mut().all += 1;
                    return (Have::All, u32::MAX);
                }
                if self.stride() == 0 {
                    self.set_stride(bytes.len());
                }
                let i = self.inner_mut();
                let slot = match i.free.pop() {
                    Some(s) => s,
                    None => {
                        let s = (i.data.len() / i.stride.max(1)) as u32;
                        i.data.resize(i.data.len() + i.stride, 0);
                        s
                    }
                };
                let start = slot as usize * i.stride;
                let n = i.stride.min(bytes.len());
                if let Some(dst) = i.data.get_mut(start..start + n) {
                    dst.copy_from_slice(&bytes[..n]);
                }
                for (byte_i, &b) in bytes.iter().take(n).enumerate() {
                    for_each_bit(b, |bit| {
                        if let Some(a) = i.avail.get_mut(byte_i * 8 + bit) {
                            *a += 1;
                        }
                    });
                }
                (Have::Some, slot)
            }
        }
    }

    /// Bytes held by this arena (for the memory figures in /metrics).
    pub fn heap_bytes(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| {
            std::mem::size_of::<Inner>()
                + i.data.capacity()
                + i.free.capacity() * 4
                + i.avail.capacity() * 4
        })
    }
}

/// Call `f(bit)` for every set bit of `b`, bit 0 being the most significant (BEP 3 order).
pub fn for_each_bit(mut b: u8, mut f: impl FnMut(usize)) {
    while b != 0 {
        let lz = b.leading_zeros() as usize;
        f(lz);
        b &= !(0x80u8 >> lz);
    }
}

/// Whether bit `i` (BEP 3 order) is set.
pub fn get_bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
}

/// Set bit `i` (BEP 3 order) when in range.
pub fn set_bit(bytes: &mut [u8], i: usize) {
    if let Some(b) = bytes.get_mut(i / 8) {
        *b |= 0x80 >> (i % 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_store_and_release() {
        let mut a = Arena::default();
        a.set_stride(2);
        let (h1, s1) = a.store(&NewBits::Bytes(vec![0b1000_0000, 0b0000_0001]), Some(16));
        let (h2, s2) = a.store(&NewBits::Bytes(vec![0b1100_0000, 0]), Some(16));
        let (h3, _) = a.store(&NewBits::All, Some(16));
        assert_eq!((h1, h2, h3), (Have::Some, Have::Some, Have::All));
        assert_eq!(a.availability(0), 3);
        assert_eq!(a.availability(1), 2);
        assert_eq!(a.availability(15), 2);
        assert_eq!(a.availability(2), 1);
        a.release(h1, s1);
        assert_eq!(a.availability(0), 2);
        assert_eq!(a.availability(15), 1);
        // The freed slot is reused.
        let (_, s4) = a.store(&NewBits::Bytes(vec![0, 1]), Some(16));
        assert_eq!(s4, s1);
        assert_eq!(a.slot(s2), &[0b1100_0000, 0]);
    }

    #[test]
    fn full_and_empty_bitfields_take_no_slot() {
        let mut a = Arena::default();
        assert_eq!(
            a.store(&NewBits::Bytes(vec![0xff, 0xe0]), Some(11)).0,
            Have::All
        );
        assert_eq!(a.store(&NewBits::Bytes(vec![0, 0]), Some(11)).0, Have::None);
        assert_eq!(a.slot(0), &[] as &[u8]);
        assert_eq!(a.stride(), 0, "no slot, no stride");
    }

    #[test]
    fn check_rejects_wrong_length_and_spare_bits() {
        let a = Arena::default();
        assert_eq!(a.check(&[0xff, 0xe0], Some(11), 100), Ok(()));
        assert_eq!(a.check(&[0xff], Some(11), 100), Err(BitsError::WrongLength));
        assert_eq!(
            a.check(&[0xff, 0xf0], Some(11), 100),
            Err(BitsError::SpareBits)
        );
        assert_eq!(a.check(&[0; 20], None, 100), Err(BitsError::TooLarge));
        let mut b = Arena::default();
        b.set_stride(3);
        assert_eq!(b.check(&[0; 2], None, 100), Err(BitsError::WrongLength));
    }
}
