//! Borrowed views over bencode the decoder has already validated.

use core::fmt;

/// One decoded bencode value, borrowing the input it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Value<'a> {
    /// `i…e`.
    Int(i64),
    /// `<len>:<bytes>`: the bytes, without the length prefix.
    Bytes(&'a [u8]),
    /// `l…e`.
    List(List<'a>),
    /// `d…e`.
    Dict(Dict<'a>),
}

/// A validated list: iterate it to get its items (which never fails).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct List<'a> {
    span: &'a [u8],
}

/// A validated dictionary: look keys up or iterate it (which never fails).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dict<'a> {
    span: &'a [u8],
}

impl<'a> Value<'a> {
    /// Build the value whose exact, already validated encoding is `span`.
    pub(super) fn from_span(span: &'a [u8]) -> Value<'a> {
        match span.first() {
            Some(b'i') => Value::Int(validated_int(span)),
            Some(b'l') => Value::List(List { span }),
            Some(b'd') => Value::Dict(Dict { span }),
            _ => Value::Bytes(
                string_bounds(span, 0)
                    .and_then(|(s, e)| span.get(s..e))
                    .unwrap_or(&[]),
            ),
        }
    }

    /// Return the exact original bytes of a list or a dictionary, `None` for an integer or a
    /// string (their spans come from [`Dict::get_span`], [`List::iter_spans`] or
    /// [`decode_prefix`](super::decode_prefix)).
    pub fn span(&self) -> Option<&'a [u8]> {
        match self {
            Value::List(l) => Some(l.span),
            Value::Dict(d) => Some(d.span),
            Value::Int(_) | Value::Bytes(_) => None,
        }
    }

    /// Return the integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    /// Return the byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Return the byte string as UTF-8 text, if it is a string and valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// Return the list, if this is one.
    pub fn as_list(&self) -> Option<List<'a>> {
        match *self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Return the dictionary, if this is one.
    pub fn as_dict(&self) -> Option<Dict<'a>> {
        match *self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
}

impl<'a> List<'a> {
    /// Return the exact original bytes of the list, `l` to `e`.
    pub fn span(&self) -> &'a [u8] {
        self.span
    }

    /// Iterate over the items in order.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter {
            span: self.span,
            pos: 1,
        }
    }

    /// Iterate over the exact encoded bytes of each item.
    pub fn iter_spans(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut it = self.iter();
        core::iter::from_fn(move || it.next_span())
    }

    /// Return the number of items (counts them: O(size of the list)).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Return whether the list has no items.
    pub fn is_empty(&self) -> bool {
        self.span.get(1) == Some(&b'e')
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = Value<'a>;
    type IntoIter = ListIter<'a>;
    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

/// The items of a [`List`].
#[derive(Clone)]
pub struct ListIter<'a> {
    span: &'a [u8],
    pos: usize,
}

impl<'a> ListIter<'a> {
    fn next_span(&mut self) -> Option<&'a [u8]> {
        let end = skip(self.span, self.pos)?;
        let item = self.span.get(self.pos..end)?;
        self.pos = end;
        Some(item)
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        self.next_span().map(Value::from_span)
    }
}

impl<'a> Dict<'a> {
    /// Return the exact original bytes of the dictionary, `d` to `e`.
    pub fn span(&self) -> &'a [u8] {
        self.span
    }

    /// Return the value of `key` (the first one, if keys were allowed to repeat).
    pub fn get(&self, key: &[u8]) -> Option<Value<'a>> {
        self.get_span(key).map(Value::from_span)
    }

    /// Return the exact encoded bytes of the value of `key`.
    pub fn get_span(&self, key: &[u8]) -> Option<&'a [u8]> {
        let mut it = self.iter();
        while let Some((k, v)) = it.next_spans() {
            if k == key {
                return Some(v);
            }
        }
        None
    }

    /// Iterate over `(key, value)` pairs in their original order.
    pub fn iter(&self) -> DictIter<'a> {
        DictIter {
            span: self.span,
            pos: 1,
        }
    }

    /// Return the number of entries (counts them: O(size of the dictionary)).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Return whether the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.span.get(1) == Some(&b'e')
    }
}

impl<'a> IntoIterator for Dict<'a> {
    type Item = (&'a [u8], Value<'a>);
    type IntoIter = DictIter<'a>;
    fn into_iter(self) -> DictIter<'a> {
        self.iter()
    }
}

/// The entries of a [`Dict`].
#[derive(Clone)]
pub struct DictIter<'a> {
    span: &'a [u8],
    pos: usize,
}

impl<'a> DictIter<'a> {
    /// Return the next key (without its length prefix) and the encoded bytes of its value.
    fn next_spans(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let (key_start, key_end) = string_bounds(self.span, self.pos)?;
        let key = self.span.get(key_start..key_end)?;
        let value_end = skip(self.span, key_end)?;
        let value = self.span.get(key_end..value_end)?;
        self.pos = value_end;
        Some((key, value))
    }
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a [u8], Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        self.next_spans().map(|(k, v)| (k, Value::from_span(v)))
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (Key(k), v)))
            .finish()
    }
}

/// Shows a dictionary key as text when it is printable.
struct Key<'a>(&'a [u8]);

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.0) {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => fmt::Debug::fmt(self.0, f),
        }
    }
}

/// Return `(content start, end)` of the string whose length prefix starts at `pos`.
///
/// Used on validated input only; returns `None` rather than panicking if that ever fails.
fn string_bounds(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    let mut len = 0usize;
    let mut i = pos;
    loop {
        let c = *b.get(i)?;
        if c == b':' {
            break;
        }
        let d = c.checked_sub(b'0').filter(|d| *d <= 9)?;
        len = len.checked_mul(10)?.checked_add(d as usize)?;
        i += 1;
    }
    let start = i.checked_add(1)?;
    let end = start.checked_add(len)?;
    (end <= b.len()).then_some((start, end))
}

/// Return the end of the value that starts at `pos` in validated bytes; `None` at a closing `e`
/// (end of a container) or on bytes that were not validated.
fn skip(b: &[u8], mut pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(pos)? {
            b'i' => {
                let rest = b.get(pos..)?;
                pos = pos.checked_add(rest.iter().position(|&c| c == b'e')?)? + 1;
            }
            b'l' | b'd' => {
                depth += 1;
                pos += 1;
                continue;
            }
            b'e' => {
                depth = depth.checked_sub(1)?;
                pos += 1;
            }
            _ => pos = string_bounds(b, pos)?.1,
        }
        if depth == 0 {
            return Some(pos);
        }
    }
}

/// Read the integer of a validated `i…e` span (wrapping, so never panics on other bytes).
fn validated_int(span: &[u8]) -> i64 {
    let digits = span.get(1..span.len().saturating_sub(1)).unwrap_or(&[]);
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    let mut v: i64 = 0;
    for &c in digits {
        let d = i64::from(c.wrapping_sub(b'0'));
        // Accumulate on the negative side so that i64::MIN is representable.
        v = v.wrapping_mul(10).wrapping_sub(d);
    }
    if negative {
        v
    } else {
        v.wrapping_neg()
    }
}
