//! A fixed-capacity byte queue: what the exchange has received and not parsed yet, or has to
//! send and was not taken yet.

pub(super) struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    pub(super) const fn new() -> Self {
        Buf {
            bytes: [0; N],
            len: 0,
        }
    }

    /// Append as much of `input` as fits; returns how much did.
    pub(super) fn push(&mut self, input: &[u8]) -> usize {
        let n = input.len().min(N - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&input[..n]);
        self.len += n;
        n
    }

    /// Drop the first `n` bytes.
    pub(super) fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.len, 0);
        self.len -= n;
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Where `needle` starts in `hay`, if it does at or before `max_start`.
pub(super) fn find(hay: &[u8], needle: &[u8], max_start: usize) -> Option<usize> {
    hay.windows(needle.len())
        .take(max_start + 1)
        .position(|w| w == needle)
}
