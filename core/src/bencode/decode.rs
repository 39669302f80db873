//! The validating pass: one loop over the bytes with a fixed stack of [`MAX_DEPTH`] frames.

use super::{BencodeError, DecodeOptions, Value, MAX_DEPTH};

/// Decode exactly one value with sorted, unique keys; any byte after it is an error.
pub fn decode(bytes: &[u8]) -> Result<Value<'_>, BencodeError> {
    decode_with(bytes, DecodeOptions::default())
}

/// Decode exactly one value with `opts`; any byte after it is an error.
pub fn decode_with(bytes: &[u8], opts: DecodeOptions) -> Result<Value<'_>, BencodeError> {
    let (value, used) = decode_prefix(bytes, opts)?;
    if used != bytes.len() {
        return Err(BencodeError::TrailingBytes { pos: used });
    }
    Ok(value)
}

/// Decode the value at the start of `bytes` and return it with the number of bytes it spans.
///
/// An input that is a strict prefix of a valid value is always `UnexpectedEof`, never a value.
pub fn decode_prefix(
    bytes: &[u8],
    opts: DecodeOptions,
) -> Result<(Value<'_>, usize), BencodeError> {
    let end = validate(bytes, opts)?;
    let span = bytes.get(..end).ok_or(BencodeError::UnexpectedEof)?;
    Ok((Value::from_span(span), end))
}

/// One open list or dictionary.
#[derive(Clone, Copy)]
struct Frame {
    is_dict: bool,
    /// In a dictionary: the next item is a key (else a value).
    expect_key: bool,
    /// In a dictionary: where the previous key's bytes are, for the order check.
    last_key: Option<(usize, usize)>,
}

const EMPTY: Frame = Frame {
    is_dict: false,
    expect_key: false,
    last_key: None,
};

/// Check the value at the start of `b` and return where it ends.
fn validate(b: &[u8], opts: DecodeOptions) -> Result<usize, BencodeError> {
    let mut stack = [EMPTY; MAX_DEPTH];
    let mut depth = 0usize;
    let mut pos = 0usize;
    loop {
        let c = *b.get(pos).ok_or(BencodeError::UnexpectedEof)?;
        let top = match depth.checked_sub(1) {
            Some(i) => stack.get_mut(i),
            None => None,
        };
        if let Some(frame) = top {
            if c == b'e' {
                if frame.is_dict && !frame.expect_key {
                    // A key without its value.
                    return Err(BencodeError::InvalidByte { pos });
                }
                depth -= 1;
                pos += 1;
            } else if frame.is_dict && frame.expect_key {
                let (start, end) = string(b, pos)?;
                if opts.require_sorted_keys {
                    check_order(b, frame.last_key, (start, end), pos)?;
                }
                frame.last_key = Some((start, end));
                frame.expect_key = false;
                pos = end;
                continue;
            } else {
                match scalar_or_open(b, pos, c)? {
                    Item::Scalar(end) => pos = end,
                    Item::Open(is_dict) => {
                        let next = stack.get_mut(depth).ok_or(BencodeError::TooDeep { pos })?;
                        *next = Frame {
                            is_dict,
                            expect_key: true,
                            last_key: None,
                        };
                        depth += 1;
                        pos += 1;
                        continue;
                    }
                }
            }
        } else {
            match scalar_or_open(b, pos, c)? {
                Item::Scalar(end) => return Ok(end),
                Item::Open(is_dict) => {
                    // MAX_DEPTH is at least 1, so the first frame always exists.
                    let first = stack.get_mut(0).ok_or(BencodeError::TooDeep { pos })?;
                    *first = Frame {
                        is_dict,
                        expect_key: true,
                        last_key: None,
                    };
                    depth = 1;
                    pos += 1;
                    continue;
                }
            }
        }
        // A value just ended (a scalar, or a container's `e`).
        match depth.checked_sub(1).and_then(|i| stack.get_mut(i)) {
            None => return Ok(pos),
            Some(parent) => parent.expect_key = true,
        }
    }
}

enum Item {
    /// A complete integer or string ending at this offset.
    Scalar(usize),
    /// The start of a container (`true` for a dictionary).
    Open(bool),
}

fn scalar_or_open(b: &[u8], pos: usize, c: u8) -> Result<Item, BencodeError> {
    match c {
        b'i' => int(b, pos).map(Item::Scalar),
        b'0'..=b'9' => string(b, pos).map(|(_, end)| Item::Scalar(end)),
        b'l' => Ok(Item::Open(false)),
        b'd' => Ok(Item::Open(true)),
        _ => Err(BencodeError::InvalidByte { pos }),
    }
}

/// Check a canonical `i…e` at `pos` and return where it ends.
///
/// Refuses `i-0`, `i0<digit>` and `i-e` as soon as they are seen, before the closing `e`.
fn int(b: &[u8], pos: usize) -> Result<usize, BencodeError> {
    let mut i = pos + 1;
    let negative = b.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let first = i;
    let mut v: i64 = 0;
    loop {
        let c = *b.get(i).ok_or(BencodeError::UnexpectedEof)?;
        match c {
            b'0'..=b'9' => {
                // A zero may only stand alone, and never after a minus sign.
                if (i > first && v == 0) || (negative && i == first && c == b'0') {
                    return Err(BencodeError::NonCanonicalInteger { pos });
                }
                let d = i64::from(c - b'0');
                // Accumulate toward the sign so that i64::MIN fits.
                v = v
                    .checked_mul(10)
                    .and_then(|v| {
                        if negative {
                            v.checked_sub(d)
                        } else {
                            v.checked_add(d)
                        }
                    })
                    .ok_or(BencodeError::IntegerOverflow { pos })?;
                i += 1;
            }
            b'e' if i > first => return Ok(i + 1),
            b'e' => return Err(BencodeError::NonCanonicalInteger { pos }),
            _ => return Err(BencodeError::InvalidByte { pos: i }),
        }
    }
}

/// Check a canonical `<len>:<bytes>` at `pos`; return (content start, end).
fn string(b: &[u8], pos: usize) -> Result<(usize, usize), BencodeError> {
    let mut len = 0usize;
    let mut i = pos;
    loop {
        let c = *b.get(i).ok_or(BencodeError::UnexpectedEof)?;
        match c {
            b'0'..=b'9' => {
                if i > pos && len == 0 {
                    return Err(BencodeError::NonCanonicalLength { pos });
                }
                len = len
                    .checked_mul(10)
                    .and_then(|l| l.checked_add(usize::from(c - b'0')))
                    .ok_or(BencodeError::IntegerOverflow { pos })?;
                i += 1;
            }
            b':' if i > pos => break,
            _ => return Err(BencodeError::InvalidByte { pos: i }),
        }
    }
    let start = i + 1;
    let end = start
        .checked_add(len)
        .ok_or(BencodeError::IntegerOverflow { pos })?;
    if end > b.len() {
        return Err(BencodeError::UnexpectedEof);
    }
    Ok((start, end))
}

/// Require `key` to sort strictly after `last` as raw bytes.
fn check_order(
    b: &[u8],
    last: Option<(usize, usize)>,
    key: (usize, usize),
    pos: usize,
) -> Result<(), BencodeError> {
    let Some((ls, le)) = last else { return Ok(()) };
    let prev = b.get(ls..le).unwrap_or(&[]);
    let this = b.get(key.0..key.1).unwrap_or(&[]);
    match prev.cmp(this) {
        core::cmp::Ordering::Less => Ok(()),
        core::cmp::Ordering::Equal => Err(BencodeError::DuplicateKey { pos }),
        core::cmp::Ordering::Greater => Err(BencodeError::UnsortedKeys { pos }),
    }
}
