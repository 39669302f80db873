//! Percent-encoding of binary query values (BEP 3 `info_hash`, `peer_id`, `trackerid`).
//!
//! Encoding keeps the RFC 3986 unreserved bytes `0-9 A-Z a-z - . _ ~` and writes every other
//! byte as `%XX` in upper-case hex. Decoding accepts `%XX` with hex digits in either case and
//! takes every other byte literally, **including `+`**: a `+` is the byte 0x2B, never a space.
//! That is what trackers do in practice (opentracker's `scan_urlencoded_query` and aquatic's
//! `urldecode_20_bytes` both copy `+` through): announce URLs are not HTML form data, and an
//! info hash is binary, so a raw `+` from a client can only mean 0x2B. Decoding is also lenient
//! about other bytes that should have been escaped (opentracker relaxed the same way after
//! "losing too many requests to being too strict"); only a malformed `%` escape is an error.

use super::out::Out;
use super::TrackerError;
use crate::BufferTooSmall;

/// Return whether `b` is sent as itself (RFC 3986 unreserved), not as `%XX`.
pub const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Return how many bytes [`encode_into`] writes for `bytes`.
pub fn encoded_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| if is_unreserved(b) { 1 } else { 3 })
        .sum()
}

/// Percent-encode `bytes` into `out`; return the number of bytes written.
pub fn encode_into(bytes: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Out::new(out);
    w.put_urlencoded(bytes);
    w.finish()
}

/// Percent-decode `text` into `out`; return the number of bytes written.
///
/// Errors: [`TrackerError::BadUrlEncoding`] for a `%` not followed by two hex digits,
/// [`TrackerError::OutputTooSmall`] when the decoded bytes do not fit in `out`.
pub fn decode_into(text: &[u8], out: &mut [u8]) -> Result<usize, TrackerError> {
    let mut n = 0;
    for b in Decoded::new(text) {
        let b = b?;
        let slot = out.get_mut(n).ok_or(TrackerError::OutputTooSmall)?;
        *slot = b;
        n += 1;
    }
    Ok(n)
}

/// Decode a value that must be exactly 20 bytes (an info hash or peer id).
///
/// `field` names the query parameter in the [`TrackerError::BadField`] returned for any other
/// length.
pub(crate) fn decode_20(text: &[u8], field: &'static str) -> Result<[u8; 20], TrackerError> {
    // Each decoded byte takes one to three characters: outside 20..=60 no decoding can help.
    if text.len() < 20 || text.len() > 60 {
        return Err(TrackerError::BadField(field));
    }
    let mut out = [0u8; 20];
    let mut n = 0;
    for b in Decoded::new(text) {
        let b = b?;
        let slot = out.get_mut(n).ok_or(TrackerError::BadField(field))?;
        *slot = b;
        n += 1;
    }
    if n == out.len() {
        Ok(out)
    } else {
        Err(TrackerError::BadField(field))
    }
}

/// The bytes `text` decodes to, one at a time; an `Err` ends a malformed text.
#[derive(Clone)]
pub(crate) struct Decoded<'a> {
    rest: &'a [u8],
}

impl<'a> Decoded<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Self {
        Decoded { rest: text }
    }
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, TrackerError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&first, rest) = self.rest.split_first()?;
        if first != b'%' {
            self.rest = rest;
            return Some(Ok(first));
        }
        let decoded = match rest {
            [hi, lo, tail @ ..] => match (hex_value(*hi), hex_value(*lo)) {
                (Some(hi), Some(lo)) => {
                    self.rest = tail;
                    return Some(Ok(hi << 4 | lo));
                }
                _ => Err(TrackerError::BadUrlEncoding),
            },
            _ => Err(TrackerError::BadUrlEncoding),
        };
        // Stop after the first error.
        self.rest = &[];
        Some(decoded)
    }
}

/// The value of one hexadecimal digit, either case.
pub(crate) const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn encode(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(bytes)];
        let n = encode_into(bytes, &mut out).unwrap();
        assert_eq!(n, out.len());
        out
    }

    fn decode(text: &[u8]) -> Result<Vec<u8>, TrackerError> {
        let mut out = vec![0u8; text.len()];
        let n = decode_into(text, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// The escaping example of the BitTorrent specification on wiki.theory.org.
    const HASH: [u8; 20] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x12, 0x34, 0x56, 0x78, 0x9a,
    ];
    const HASH_TEXT: &[u8] = b"%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

    #[test]
    fn spec_example_both_ways() {
        assert_eq!(encode(&HASH), HASH_TEXT);
        assert_eq!(decode(HASH_TEXT).unwrap(), HASH);
        assert_eq!(decode_20(HASH_TEXT, "info_hash"), Ok(HASH));
    }

    #[test]
    fn lower_case_escapes_and_literal_plus() {
        assert_eq!(decode(b"%9a%Bc").unwrap(), [0x9a, 0xbc]);
        // '+' is 0x2B, not a space; "%20" is the space.
        assert_eq!(decode(b"a+b%20").unwrap(), b"a+b ");
        assert_eq!(encode(b"a+b "), b"a%2Bb%20");
    }

    #[test]
    fn bad_escapes_are_errors() {
        for text in [&b"%"[..], b"%4", b"ab%g0", b"%0g", b"%%41", b"abc%"] {
            assert_eq!(decode(text), Err(TrackerError::BadUrlEncoding), "{text:?}");
        }
    }

    #[test]
    fn output_too_small() {
        let mut out = [0u8; 2];
        assert_eq!(
            decode_into(b"abc", &mut out),
            Err(TrackerError::OutputTooSmall)
        );
        assert_eq!(
            encode_into(b"a b", &mut out),
            Err(BufferTooSmall { required: 5 })
        );
    }

    #[test]
    fn wrong_lengths_for_20_byte_values() {
        let nineteen = [b'a'; 19];
        let twenty_one = [b'a'; 21];
        assert_eq!(
            decode_20(&nineteen, "info_hash"),
            Err(TrackerError::BadField("info_hash"))
        );
        assert_eq!(
            decode_20(&twenty_one, "peer_id"),
            Err(TrackerError::BadField("peer_id"))
        );
        // 19 escapes plus one literal byte is 20 bytes; 19 escapes plus nothing is not.
        let mut text = b"%00".repeat(19);
        assert_eq!(
            decode_20(&text, "info_hash"),
            Err(TrackerError::BadField("info_hash"))
        );
        text.push(b'z');
        let mut expected = [0u8; 20];
        expected[19] = b'z';
        assert_eq!(decode_20(&text, "info_hash"), Ok(expected));
        // 21 bytes hidden in 60 characters.
        let mut text = b"%00".repeat(19);
        text.extend_from_slice(b"zz%00");
        assert_eq!(
            decode_20(&text, "info_hash"),
            Err(TrackerError::BadField("info_hash"))
        );
        assert_eq!(
            decode_20(
                b"%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%0",
                "x"
            ),
            Err(TrackerError::BadUrlEncoding)
        );
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = encode(&bytes);
            prop_assert!(text.iter().all(|&c| is_unreserved(c) || c == b'%'));
            prop_assert_eq!(decode(&text).unwrap(), bytes);
        }

        #[test]
        fn decoding_any_text_never_panics(text in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(bytes) = decode(&text) {
                prop_assert!(bytes.len() <= text.len());
            }
            let _ = decode_20(&text, "info_hash");
        }

        #[test]
        fn upper_and_lower_case_escapes_agree(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let lower = encode(&bytes).to_ascii_lowercase();
            // Lowering also lowers unreserved letters, so compare with the lowered original.
            let expect: Vec<u8> = bytes
                .iter()
                .map(|&b| if is_unreserved(b) { b.to_ascii_lowercase() } else { b })
                .collect();
            prop_assert_eq!(decode(&lower).unwrap(), expect);
        }
    }
}
