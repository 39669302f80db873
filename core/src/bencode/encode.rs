//! Writing bencode into a caller-owned buffer.

use crate::BufferTooSmall;

/// Writes bencode into a caller-owned `&mut [u8]`.
///
/// The caller opens containers with [`list`](Self::list) / [`dict`](Self::dict), closes them
/// with [`end`](Self::end) and writes dictionary keys (as [`bytes`](Self::bytes)) in sorted
/// order; the encoder does not check the structure. A call that does not fit writes nothing and
/// returns [`BufferTooSmall`], whose `required` is a lower bound (what was written so far plus
/// the refused item).
#[derive(Debug)]
pub struct Encoder<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl<'b> Encoder<'b> {
    /// Start writing at the beginning of `out`.
    pub fn new(out: &'b mut [u8]) -> Self {
        Encoder { out, len: 0 }
    }

    /// Write `i<v>e`.
    pub fn int(&mut self, v: i64) -> Result<&mut Self, BufferTooSmall> {
        let mut buf = [0u8; 22]; // 'i' + '-' + 19 digits + 'e'
        let digits = decimal(v.unsigned_abs(), &mut buf[2..21]);
        let start = 21 - digits;
        let mut first = start;
        if v < 0 {
            first -= 1;
            buf[first] = b'-';
        }
        first -= 1;
        buf[first] = b'i';
        buf[21] = b'e';
        self.put(&[&buf[first..]])
    }

    /// Write `<len>:<b>`.
    pub fn bytes(&mut self, b: &[u8]) -> Result<&mut Self, BufferTooSmall> {
        let mut buf = [0u8; 21]; // up to 20 digits + ':'
        let digits = decimal(b.len() as u64, &mut buf[..20]);
        buf[20] = b':';
        self.put(&[&buf[20 - digits..], b])
    }

    /// Open a list (close it with [`end`](Self::end)).
    pub fn list(&mut self) -> Result<&mut Self, BufferTooSmall> {
        self.put(&[b"l"])
    }

    /// Open a dictionary (close it with [`end`](Self::end)); write its keys in sorted order.
    pub fn dict(&mut self) -> Result<&mut Self, BufferTooSmall> {
        self.put(&[b"d"])
    }

    /// Close the innermost open list or dictionary.
    pub fn end(&mut self) -> Result<&mut Self, BufferTooSmall> {
        self.put(&[b"e"])
    }

    /// Copy bytes that already are bencode (an info dictionary's span, say) unchanged.
    pub fn raw(&mut self, already_encoded: &[u8]) -> Result<&mut Self, BufferTooSmall> {
        self.put(&[already_encoded])
    }

    /// Return how many bytes have been written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Return whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Return the written bytes.
    pub fn written(&self) -> &[u8] {
        self.out.get(..self.len).unwrap_or(&[])
    }

    /// Stop writing and return how many bytes were written.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Append `parts` entirely, or nothing.
    fn put(&mut self, parts: &[&[u8]]) -> Result<&mut Self, BufferTooSmall> {
        let total = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        let required = self.len.saturating_add(total);
        let room = self
            .out
            .get_mut(self.len..required)
            .ok_or(BufferTooSmall { required })?;
        let mut at = 0;
        for p in parts {
            room[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.len = required;
        Ok(self)
    }
}

/// Write `v` in decimal right-aligned at the end of `out` (at least 20 bytes); return the digit count.
fn decimal(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    let end = out.len();
    loop {
        n += 1;
        if let Some(slot) = out.get_mut(end - n) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || n == end {
            return n;
        }
    }
}
