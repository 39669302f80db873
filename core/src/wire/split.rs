//! Bytes possibly split across a ring buffer's two halves.

use core::fmt;

/// Bytes possibly split across a ring buffer's two halves: `a` first, then `b`.
///
/// Equality compares the byte sequences, not where the halves split.
#[derive(Clone, Copy, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Split<'a> {
    /// The first bytes.
    pub a: &'a [u8],
    /// The bytes after `a` (empty when contiguous).
    pub b: &'a [u8],
}

impl<'a> Split<'a> {
    /// Return the concatenation of `a` and `b`, without copying.
    pub const fn new(a: &'a [u8], b: &'a [u8]) -> Self {
        Split { a, b }
    }

    /// Return a view of one contiguous slice.
    pub const fn contiguous(bytes: &'a [u8]) -> Self {
        Split { a: bytes, b: &[] }
    }

    /// Return the total number of bytes.
    pub const fn len(&self) -> usize {
        self.a.len() + self.b.len()
    }

    /// Return whether there are no bytes.
    pub const fn is_empty(&self) -> bool {
        self.a.is_empty() && self.b.is_empty()
    }

    /// Return the byte at `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<u8> {
        match self.a.get(i) {
            Some(&byte) => Some(byte),
            None => self.b.get(i - self.a.len()).copied(),
        }
    }

    /// Return the `len` bytes starting at `start`, or `None` if they are not all here.
    pub fn slice(&self, start: usize, len: usize) -> Option<Split<'a>> {
        let end = start.checked_add(len)?;
        if end > self.len() {
            return None;
        }
        let a_len = self.a.len();
        let a = self.a.get(start.min(a_len)..end.min(a_len))?;
        let b = self
            .b
            .get(start.saturating_sub(a_len)..end.saturating_sub(a_len))?;
        Some(Split { a, b })
    }

    /// Return the bytes as one slice when they do not straddle the two halves.
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        match (self.a.is_empty(), self.b.is_empty()) {
            (_, true) => Some(self.a),
            (true, false) => Some(self.b),
            (false, false) => None,
        }
    }

    /// Copy the bytes, in order, into the start of `out`.
    ///
    /// `out` is meant to be exactly [`len`](Self::len) bytes long; when it is shorter only its
    /// length is copied, when longer the rest of it is left untouched. Never panics.
    pub fn copy_to(&self, out: &mut [u8]) {
        let (to_a, to_b) = out.split_at_mut(self.a.len().min(out.len()));
        to_a.copy_from_slice(&self.a[..to_a.len()]);
        let n = self.b.len().min(to_b.len());
        to_b[..n].copy_from_slice(&self.b[..n]);
    }

    /// Return the non-empty halves, in order (zero, one or two slices).
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> {
        [self.a, self.b].into_iter().filter(|c| !c.is_empty())
    }

    /// Return the bytes one by one, in order.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'a {
        self.a.iter().chain(self.b.iter()).copied()
    }

    /// Return the big-endian `u32` at `at`, or `None` if its four bytes are not all here.
    pub(crate) fn u32_at(&self, at: usize) -> Option<u32> {
        if let Some(&[b0, b1, b2, b3]) = self.a.get(at..at.checked_add(4)?) {
            // Fast path: not straddling the halves.
            return Some(u32::from_be_bytes([b0, b1, b2, b3]));
        }
        Some(u32::from_be_bytes([
            self.get(at)?,
            self.get(at + 1)?,
            self.get(at + 2)?,
            self.get(at + 3)?,
        ]))
    }
}

impl PartialEq for Split<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for Split<'_> {}

impl PartialEq<[u8]> for Split<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.len() == other.len() && self.bytes().eq(other.iter().copied())
    }
}

impl fmt::Debug for Split<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long payloads (pieces) would drown a log: show the length and the first bytes.
        const SHOWN: usize = 16;
        write!(f, "Split({} bytes: ", self.len())?;
        for byte in self.bytes().take(SHOWN) {
            write!(f, "{byte:02x}")?;
        }
        if self.len() > SHOWN {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn equality_ignores_where_the_halves_split() {
        assert_eq!(Split::new(b"ab", b"cd"), Split::new(b"a", b"bcd"));
        assert_eq!(Split::new(b"ab", b"cd"), Split::contiguous(b"abcd"));
        assert_ne!(Split::new(b"ab", b"cd"), Split::contiguous(b"abc"));
        assert_eq!(Split::new(b"ab", b"c"), b"abc"[..]);
    }

    #[test]
    fn copy_to_a_short_or_long_buffer_never_panics() {
        let s = Split::new(b"abc", b"def");
        let mut short = [0u8; 4];
        s.copy_to(&mut short);
        assert_eq!(&short, b"abcd");
        let mut long = [b'.'; 8];
        s.copy_to(&mut long);
        assert_eq!(&long, b"abcdef..");
    }

    #[test]
    fn chunks_skip_empty_halves() {
        assert_eq!(Split::new(b"", b"xy").chunks().count(), 1);
        assert_eq!(Split::new(b"", b"").chunks().count(), 0);
        assert_eq!(
            Split::new(b"a", b"b").chunks().collect::<Vec<_>>(),
            vec![&b"a"[..], &b"b"[..]]
        );
    }

    #[test]
    fn as_contiguous_only_when_one_half_is_empty() {
        assert_eq!(Split::new(b"", b"xy").as_contiguous(), Some(&b"xy"[..]));
        assert_eq!(Split::new(b"xy", b"").as_contiguous(), Some(&b"xy"[..]));
        assert_eq!(Split::new(b"x", b"y").as_contiguous(), None);
    }

    #[test]
    fn u32_straddling_the_halves() {
        let bytes = [0x12, 0x34, 0x56, 0x78, 0x9a];
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let s = Split::new(a, b);
            assert_eq!(s.u32_at(0), Some(0x1234_5678));
            assert_eq!(s.u32_at(1), Some(0x3456_789a));
            assert_eq!(s.u32_at(2), None);
            assert_eq!(s.u32_at(usize::MAX - 1), None);
        }
    }

    proptest! {
        /// `slice`, `get`, `copy_to` agree with slicing the concatenation, for every cut.
        #[test]
        fn agrees_with_the_concatenation(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..40, start in 0usize..45, len in 0usize..45,
        ) {
            let cut = cut.min(bytes.len());
            let (a, b) = bytes.split_at(cut);
            let s = Split::new(a, b);
            prop_assert_eq!(s.len(), bytes.len());
            for i in 0..bytes.len() + 2 {
                prop_assert_eq!(s.get(i), bytes.get(i).copied());
            }
            let expected = bytes.get(start..start + len);
            let got = s.slice(start, len);
            prop_assert_eq!(got.is_some(), expected.is_some());
            if let (Some(got), Some(expected)) = (got, expected) {
                prop_assert!(got == *expected);
                let mut out = vec![0u8; len];
                got.copy_to(&mut out);
                prop_assert_eq!(&out[..], expected);
                prop_assert_eq!(got.chunks().flatten().copied().collect::<Vec<u8>>(), expected);
            }
        }
    }
}
