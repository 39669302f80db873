//! Base64url without padding (RFC 4648 §5), the encoding of our peers' self-reported
//! `bitfield=` announce parameter. Its alphabet needs no percent-escaping in a URL.
//!
//! Decoding is strict: only `A-Z a-z 0-9 - _`, no `=` padding, no length of the form 4k+1, and
//! the unused low bits of the last character must be zero, so every byte string has exactly one
//! accepted text.

use super::out::Out;
use super::TrackerError;
use crate::BufferTooSmall;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Return the length of the unpadded encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n / 3 * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Return the number of bytes a text of `text_len` characters decodes to, or `None` for a
/// length no encoding has (4k+1).
pub const fn decoded_len(text_len: usize) -> Option<usize> {
    let whole = text_len / 4 * 3;
    match text_len % 4 {
        0 => Some(whole),
        2 => Some(whole + 1),
        3 => Some(whole + 2),
        _ => None,
    }
}

/// Encode `bytes` into `out`; return the number of characters written.
pub fn encode_into(bytes: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Out::new(out);
    put(&mut w, bytes);
    w.finish()
}

/// Append the encoding of `bytes` to `w`.
pub(crate) fn put(w: &mut Out<'_>, bytes: &[u8]) {
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        if let [a, b, c] = *c {
            let v = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            w.put(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            w.put(&[sym(v >> 18), sym(v >> 12)]);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            w.put(&[sym(v >> 18), sym(v >> 12), sym(v >> 6)]);
        }
        _ => {}
    }
}

/// Decode `text` into `out`; return the number of bytes written.
///
/// Errors: [`TrackerError::BadBase64`] for any text outside the strict form above,
/// [`TrackerError::OutputTooSmall`] when the bytes do not fit in `out`.
pub fn decode(text: &[u8], out: &mut [u8]) -> Result<usize, TrackerError> {
    let n = decoded_len(text.len()).ok_or(TrackerError::BadBase64)?;
    let out = out.get_mut(..n).ok_or(TrackerError::OutputTooSmall)?;
    let mut chunks = text.chunks_exact(4);
    let mut dst = out.chunks_mut(3);
    for (src, d) in (&mut chunks).zip(&mut dst) {
        if let (&[a, b, c, e], [x, y, z]) = (src, d) {
            let v = value(a)? << 18 | value(b)? << 12 | value(c)? << 6 | value(e)?;
            let [_, hi, mid, lo] = v.to_be_bytes();
            (*x, *y, *z) = (hi, mid, lo);
        }
    }
    let tail = dst.next().unwrap_or_default();
    match (chunks.remainder(), tail) {
        (&[], []) => {}
        (&[a, b], [x]) => {
            let v = value(a)? << 6 | value(b)?;
            // The low 4 bits are padding and must be zero (canonical form).
            if v & 0xf != 0 {
                return Err(TrackerError::BadBase64);
            }
            *x = (v >> 4) as u8;
        }
        (&[a, b, c], [x, y]) => {
            let v = value(a)? << 12 | value(b)? << 6 | value(c)?;
            // The low 2 bits are padding and must be zero.
            if v & 0x3 != 0 {
                return Err(TrackerError::BadBase64);
            }
            (*x, *y) = ((v >> 10) as u8, (v >> 2) as u8);
        }
        _ => return Err(TrackerError::BadBase64),
    }
    Ok(n)
}

fn value(c: u8) -> Result<u32, TrackerError> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return Err(TrackerError::BadBase64),
    };
    Ok(u32::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn enc(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(bytes.len())];
        assert_eq!(encode_into(bytes, &mut out), Ok(out.len()));
        out
    }

    fn dec(text: &[u8]) -> Result<Vec<u8>, TrackerError> {
        let mut out = vec![0u8; text.len()];
        let n = decode(text, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// RFC 4648 §10 test vectors, padding removed.
    #[test]
    fn rfc4648_vectors() {
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg"),
            (b"fo", b"Zm8"),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg"),
            (b"fooba", b"Zm9vYmE"),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (bytes, text) in vectors {
            assert_eq!(enc(bytes), text);
            assert_eq!(dec(text).unwrap(), bytes);
        }
    }

    #[test]
    fn url_safe_alphabet() {
        // Standard base64 of fb ef be is "++++"; §5 replaces '+' and '/' with '-' and '_'.
        assert_eq!(enc(&[0xfb, 0xef, 0xbe]), b"----");
        assert_eq!(enc(&[0xff, 0xff, 0xff]), b"____");
        assert_eq!(dec(b"-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn a_bitfield_of_ten_pieces() {
        // Pieces 0, 1 and 9 of 10: 0b1100_0000 0b0100_0000.
        assert_eq!(enc(&[0xc0, 0x40]), b"wEA");
        assert_eq!(dec(b"wEA").unwrap(), [0xc0, 0x40]);
    }

    #[test]
    fn rejects_bad_text() {
        for text in [
            &b"Zg=="[..], // padding
            b"Zm9v=",
            b"Z",     // 4k+1
            b"Zm9vY", // 4k+1
            b"Zm+v",  // standard alphabet
            b"Zm/v",
            b"Zm9 ",
            b"Zh",     // 'h' leaves non-zero unused bits
            b"Zm9",    // '9' leaves non-zero unused bits
            b"%41%41", // percent escapes are not base64url
        ] {
            assert_eq!(dec(text), Err(TrackerError::BadBase64), "{text:?}");
        }
    }

    #[test]
    fn output_too_small() {
        let mut out = [0u8; 2];
        assert_eq!(decode(b"Zm9v", &mut out), Err(TrackerError::OutputTooSmall));
        assert_eq!(
            encode_into(b"foo", &mut out),
            Err(BufferTooSmall { required: 4 })
        );
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let text = enc(&bytes);
            prop_assert_eq!(decoded_len(text.len()), Some(bytes.len()));
            prop_assert_eq!(dec(&text).unwrap(), bytes);
        }

        #[test]
        fn decoding_is_canonical(text in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Whatever decodes must re-encode to the very same text.
            if let Ok(bytes) = dec(&text) {
                prop_assert_eq!(enc(&bytes), text);
            }
        }
    }
}
