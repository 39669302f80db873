//! A byte writer over a caller-owned slice that keeps counting past the end, so an encoder that
//! runs out of room can report the exact size it needed. It never panics and never writes past
//! the slice.

use crate::BufferTooSmall;

pub(crate) struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl<'b> Out<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Out { buf, len: 0 }
    }

    /// Append `bytes`, or only count them once the slice is full.
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    pub(crate) fn put_u8(&mut self, b: u8) {
        self.put(&[b]);
    }

    pub(crate) fn put_u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn put_u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    /// Append `v` in decimal ASCII.
    pub(crate) fn put_decimal(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let text = decimal(v, &mut digits);
        self.put(text);
    }

    /// Append `v` as exactly eight upper-case hexadecimal digits.
    pub(crate) fn put_hex8(&mut self, v: u32) {
        let mut text = [0u8; 8];
        for (i, d) in text.iter_mut().enumerate() {
            let nibble = (v >> (28 - 4 * i)) & 0xf;
            *d = HEX_UPPER[nibble as usize];
        }
        self.put(&text);
    }

    /// Append `bytes` percent-encoded (see [`super::urlencode`]).
    pub(crate) fn put_urlencoded(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if super::urlencode::is_unreserved(b) {
                self.put_u8(b);
            } else {
                self.put(&[
                    b'%',
                    HEX_UPPER[usize::from(b >> 4)],
                    HEX_UPPER[usize::from(b & 0xf)],
                ]);
            }
        }
    }

    /// The length written, or the total length that was needed.
    pub(crate) fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(BufferTooSmall { required: self.len })
        }
    }
}

/// Format `v` in decimal into `digits`, returning the used tail.
pub(crate) fn decimal(mut v: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
        start -= 1;
        if v == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_edges() {
        let mut d = [0u8; 20];
        assert_eq!(decimal(0, &mut d), b"0");
        assert_eq!(decimal(51413, &mut d), b"51413");
        assert_eq!(decimal(u64::MAX, &mut d), b"18446744073709551615");
    }

    #[test]
    fn counts_past_the_end_and_reports_exact_size() {
        let mut buf = [0u8; 4];
        let mut out = Out::new(&mut buf);
        out.put(b"abc");
        out.put(b"de");
        out.put(b"f");
        assert_eq!(out.finish(), Err(BufferTooSmall { required: 6 }));
        // Nothing of the write that did not fit landed in the buffer.
        assert_eq!(&buf, b"abc\0");
    }

    #[test]
    fn hex8_pads() {
        let mut buf = [0u8; 8];
        let mut out = Out::new(&mut buf);
        out.put_hex8(0xAB);
        assert_eq!(out.finish(), Ok(8));
        assert_eq!(&buf, b"000000AB");
    }
}
