//! Where the seeded file's bytes come from: read straight into a socket's transmit buffer, so
//! no block is ever copied into a buffer of our own.

use embedded_storage::nor_flash::ReadNorFlash;

/// The file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadError;

/// The seeded file, read by offset. Implemented for a memory-mapped `&[u8]` (flash on a board,
/// `include_bytes!` anywhere) and for any `embedded-storage` [`ReadNorFlash`] via [`NorFlash`].
pub trait BlockSource {
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill all of `out` with the file's bytes from `offset`.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), ReadError>;
}

impl BlockSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), ReadError> {
        let start = usize::try_from(offset).map_err(|_| ReadError)?;
        let bytes = start
            .checked_add(out.len())
            .and_then(|end| self.get(start..end))
            .ok_or(ReadError)?;
        out.copy_from_slice(bytes);
        Ok(())
    }
}

/// A file stored in a NOR flash at `base`, `len` bytes long. The flash must read byte by byte
/// (`READ_SIZE` 1, as the STM32 and RP2040 flash drivers do).
pub struct NorFlash<F> {
    flash: F,
    base: u32,
    len: u32,
}

impl<F: ReadNorFlash> NorFlash<F> {
    /// The file at `base..base + len` of `flash`; `None` when the flash cannot read single
    /// bytes or the region does not fit in it.
    pub fn new(flash: F, base: u32, len: u32) -> Option<Self> {
        let fits = base
            .checked_add(len)
            .is_some_and(|end| end as usize <= flash.capacity());
        (F::READ_SIZE == 1 && fits).then_some(NorFlash { flash, base, len })
    }
}

impl<F: ReadNorFlash> BlockSource for NorFlash<F> {
    fn len(&self) -> u64 {
        u64::from(self.len)
    }

    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), ReadError> {
        let end = offset.checked_add(out.len() as u64).ok_or(ReadError)?;
        if end > u64::from(self.len) {
            return Err(ReadError);
        }
        (self.flash)
            .read(self.base + offset as u32, out)
            .map_err(|_| ReadError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_storage::nor_flash::{ErrorType, NorFlashError, NorFlashErrorKind};

    #[test]
    fn a_slice_reads_inside_and_refuses_past_its_end() {
        let mut file: &[u8] = b"0123456789";
        let mut out = [0u8; 4];
        file.read(3, &mut out).unwrap();
        assert_eq!(&out, b"3456");
        assert_eq!(file.read(7, &mut out), Err(ReadError));
    }

    struct Fake([u8; 64]);
    #[derive(Debug)]
    struct E;
    impl NorFlashError for E {
        fn kind(&self) -> NorFlashErrorKind {
            NorFlashErrorKind::Other
        }
    }
    impl ErrorType for Fake {
        type Error = E;
    }
    impl ReadNorFlash for Fake {
        const READ_SIZE: usize = 1;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), E> {
            let o = offset as usize;
            bytes.copy_from_slice(&self.0[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            64
        }
    }

    #[test]
    fn a_nor_flash_region_reads_from_its_base() {
        let mut mem = [0u8; 64];
        for (i, b) in mem.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut file = NorFlash::new(Fake(mem), 16, 8).unwrap();
        let mut out = [0u8; 3];
        file.read(5, &mut out).unwrap();
        assert_eq!(out, [21, 22, 23]);
        assert_eq!(file.read(6, &mut out), Err(ReadError));
        assert!(NorFlash::new(Fake(mem), 60, 8).is_none());
    }
}
