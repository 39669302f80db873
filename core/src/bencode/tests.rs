use super::*;
use crate::BufferTooSmall;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

const STRICT: DecodeOptions = DecodeOptions {
    require_sorted_keys: true,
};

/// Valid encodings from BEP 3 and around it.
const VALID: &[&[u8]] = &[
    b"4:spam",
    b"0:",
    b"i3e",
    b"i-3e",
    b"i0e",
    b"i-9223372036854775808e",
    b"i9223372036854775807e",
    b"l4:spam4:eggse",
    b"le",
    b"de",
    b"d3:cow3:moo4:spam4:eggse",
    b"d4:spaml1:a1:bee",
    b"d9:publisher3:bob17:publisher-webpage15:www.example.com18:publisher.location4:homee",
    b"d1:ad1:bl1:ci-1ei0eee1:dlee",
    b"l10:0123456789i100ele0:e",
];

fn err(input: &[u8]) -> BencodeError {
    decode(input).expect_err("must be refused")
}

#[test]
fn bep3_strings() {
    assert_eq!(decode(b"4:spam"), Ok(Value::Bytes(b"spam")));
    assert_eq!(decode(b"0:"), Ok(Value::Bytes(b"")));
    assert_eq!(decode(b"4:spam").unwrap().as_str(), Some("spam"));
    assert_eq!(decode(b"2:\xff\xfe").unwrap().as_str(), None);
}

#[test]
fn bep3_integers() {
    assert_eq!(decode(b"i3e"), Ok(Value::Int(3)));
    assert_eq!(decode(b"i-3e"), Ok(Value::Int(-3)));
    assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
    assert_eq!(decode(b"i-10e"), Ok(Value::Int(-10)));
    assert_eq!(decode(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
    assert_eq!(decode(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
}

#[test]
fn bep3_list() {
    let v = decode(b"l4:spam4:eggse").unwrap();
    let l = v.as_list().unwrap();
    assert_eq!(l.len(), 2);
    let items: Vec<_> = l.iter().map(|i| i.as_bytes().unwrap()).collect();
    assert_eq!(items, [b"spam".as_slice(), b"eggs"]);
    assert!(decode(b"le").unwrap().as_list().unwrap().is_empty());
}

#[test]
fn bep3_dicts() {
    let d = decode(b"d3:cow3:moo4:spam4:eggse")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(d.get(b"cow").and_then(|v| v.as_str()), Some("moo"));
    assert_eq!(d.get(b"spam").and_then(|v| v.as_str()), Some("eggs"));
    assert_eq!(d.get(b"co"), None);
    assert_eq!(d.len(), 2);

    let d = decode(b"d4:spaml1:a1:bee").unwrap().as_dict().unwrap();
    let l = d.get(b"spam").unwrap().as_list().unwrap();
    assert_eq!(
        l.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );

    let d = decode(
        b"d9:publisher3:bob17:publisher-webpage15:www.example.com18:publisher.location4:homee",
    )
    .unwrap()
    .as_dict()
    .unwrap();
    let keys: Vec<_> = d.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            b"publisher".as_slice(),
            b"publisher-webpage",
            b"publisher.location"
        ]
    );
    assert_eq!(d.get(b"publisher.location").unwrap().as_str(), Some("home"));
    assert!(decode(b"de").unwrap().as_dict().unwrap().is_empty());
}

#[test]
fn spans_are_exact() {
    let input = b"d4:infod6:lengthi5e4:name1:ae1:xl1:ai7eee";
    let d = decode(input).unwrap().as_dict().unwrap();
    assert_eq!(d.span(), input);
    assert_eq!(
        d.get(b"info").unwrap().span(),
        Some(&b"d6:lengthi5e4:name1:ae"[..])
    );
    assert_eq!(d.get_span(b"x"), Some(&b"l1:ai7ee"[..]));
    let l = d.get(b"x").unwrap().as_list().unwrap();
    assert_eq!(
        l.iter_spans().collect::<Vec<_>>(),
        [b"1:a".as_slice(), b"i7e"]
    );
    assert_eq!(Value::Int(7).span(), None);
    let info = d.get(b"info").unwrap().as_dict().unwrap();
    assert_eq!(info.get_span(b"length"), Some(&b"i5e"[..]));
}

#[test]
fn non_canonical_integers() {
    for input in [
        &b"i-0e"[..],
        b"i03e",
        b"i-e",
        b"ie",
        b"i-03e",
        b"i00e",
        b"i-00e",
    ] {
        assert_eq!(
            err(input),
            BencodeError::NonCanonicalInteger { pos: 0 },
            "{input:?}"
        );
    }
    // Refused early, without waiting for the closing `e`.
    assert_eq!(
        decode_prefix(b"i03", STRICT),
        Err(BencodeError::NonCanonicalInteger { pos: 0 })
    );
    assert_eq!(
        decode_prefix(b"i-0", STRICT),
        Err(BencodeError::NonCanonicalInteger { pos: 0 })
    );
    assert_eq!(
        err(b"li1ei01ee"),
        BencodeError::NonCanonicalInteger { pos: 4 }
    );
    assert_eq!(err(b"i1-2e"), BencodeError::InvalidByte { pos: 2 });
    assert_eq!(err(b"i--1e"), BencodeError::InvalidByte { pos: 2 });
    assert_eq!(err(b"i+1e"), BencodeError::InvalidByte { pos: 1 });
    assert_eq!(err(b"i 1e"), BencodeError::InvalidByte { pos: 1 });
}

#[test]
fn integer_overflow() {
    assert_eq!(
        err(b"i9223372036854775808e"),
        BencodeError::IntegerOverflow { pos: 0 }
    );
    assert_eq!(
        err(b"i-9223372036854775809e"),
        BencodeError::IntegerOverflow { pos: 0 }
    );
    assert_eq!(
        err(b"li1ei99999999999999999999999ee"),
        BencodeError::IntegerOverflow { pos: 4 }
    );
    assert_eq!(
        err(b"99999999999999999999999:"),
        BencodeError::IntegerOverflow { pos: 0 }
    );
}

#[test]
fn non_canonical_and_broken_strings() {
    assert_eq!(err(b"03:abc"), BencodeError::NonCanonicalLength { pos: 0 });
    assert_eq!(err(b"00:"), BencodeError::NonCanonicalLength { pos: 0 });
    assert_eq!(
        err(b"l1:a01:be"),
        BencodeError::NonCanonicalLength { pos: 4 }
    );
    assert_eq!(err(b":abc"), BencodeError::InvalidByte { pos: 0 });
    assert_eq!(err(b"-1:a"), BencodeError::InvalidByte { pos: 0 });
    assert_eq!(err(b"1a"), BencodeError::InvalidByte { pos: 1 });
    assert_eq!(err(b"5:abc"), BencodeError::UnexpectedEof);
    // A length that fits in usize but not in the input is "more bytes needed".
    assert_eq!(err(b"4294967296:"), BencodeError::UnexpectedEof);
}

#[test]
fn key_order() {
    assert_eq!(err(b"d1:b0:1:a0:e"), BencodeError::UnsortedKeys { pos: 6 });
    assert_eq!(err(b"d1:a0:1:a0:e"), BencodeError::DuplicateKey { pos: 6 });
    assert_eq!(err(b"d2:aa0:1:a0:e"), BencodeError::UnsortedKeys { pos: 7 });
    // Raw byte order: 'B' < 'a', and a prefix sorts first.
    assert!(decode(b"d1:B0:1:a0:e").is_ok());
    assert!(decode(b"d1:a0:2:aa0:e").is_ok());
    // Order is checked per dictionary, at every depth.
    assert_eq!(
        err(b"d1:ad1:b0:1:a0:ee"),
        BencodeError::UnsortedKeys { pos: 10 }
    );
    assert!(decode(b"d1:bd1:a0:e1:cd1:a0:ee").is_ok());

    let lenient = decode_with(b"d1:b1:x1:a1:y1:b1:ze", DecodeOptions::LENIENT).unwrap();
    let d = lenient.as_dict().unwrap();
    assert_eq!(
        d.get(b"b").unwrap().as_str(),
        Some("x"),
        "first of repeated keys wins"
    );
    assert_eq!(d.get(b"a").unwrap().as_str(), Some("y"));
    assert_eq!(d.len(), 3);
}

#[test]
fn broken_dicts() {
    assert_eq!(err(b"di1e0:e"), BencodeError::InvalidByte { pos: 1 });
    assert_eq!(err(b"dle0:e"), BencodeError::InvalidByte { pos: 1 });
    assert_eq!(err(b"d1:ae"), BencodeError::InvalidByte { pos: 4 });
    assert_eq!(err(b"d1:a"), BencodeError::UnexpectedEof);
}

#[test]
fn stray_and_trailing_bytes() {
    assert_eq!(err(b""), BencodeError::UnexpectedEof);
    assert_eq!(err(b"e"), BencodeError::InvalidByte { pos: 0 });
    assert_eq!(err(b"x"), BencodeError::InvalidByte { pos: 0 });
    assert_eq!(err(b"i1ei2e"), BencodeError::TrailingBytes { pos: 3 });
    assert_eq!(err(b"lee"), BencodeError::TrailingBytes { pos: 2 });
    assert_eq!(err(b"4:spam\n"), BencodeError::TrailingBytes { pos: 6 });
    assert_eq!(decode_prefix(b"i1ei2e", STRICT), Ok((Value::Int(1), 3)));
}

fn nested(open: &[u8], depth: usize, inner: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..depth {
        v.extend_from_slice(open);
    }
    v.extend_from_slice(inner);
    v.extend(std::iter::repeat_n(b'e', depth));
    v
}

#[test]
fn depth_limit() {
    assert!(decode(&nested(b"l", MAX_DEPTH, b"")).is_ok());
    assert_eq!(
        decode(&nested(b"l", MAX_DEPTH + 1, b"")),
        Err(BencodeError::TooDeep { pos: MAX_DEPTH })
    );
    assert!(decode(&nested(b"d1:a", MAX_DEPTH, b"i0e")).is_ok());
    assert_eq!(
        decode(&nested(b"d1:a", MAX_DEPTH + 1, b"i0e")),
        Err(BencodeError::TooDeep { pos: MAX_DEPTH * 4 })
    );
    // A million open brackets: refused at the limit, no recursion, no stack overflow.
    let deep = vec![b'l'; 1_000_000];
    assert_eq!(decode(&deep), Err(BencodeError::TooDeep { pos: MAX_DEPTH }));
    // Views over the deepest allowed value reach the bottom.
    let bottom = nested(b"l", MAX_DEPTH, b"i42e");
    let mut v = decode(&bottom).unwrap();
    for _ in 0..MAX_DEPTH {
        v = v.as_list().unwrap().iter().next().unwrap();
    }
    assert_eq!(v, Value::Int(42));
}

/// Every strict prefix of a valid value needs more bytes; the whole value, with anything after
/// it, decodes to the same value and length.
#[test]
fn split_at_every_position() {
    for &input in VALID {
        let whole = decode(input).unwrap();
        for cut in 0..input.len() {
            assert_eq!(
                decode_prefix(&input[..cut], STRICT),
                Err(BencodeError::UnexpectedEof),
                "{:?} cut at {cut}",
                std::string::String::from_utf8_lossy(input)
            );
        }
        let mut more = input.to_vec();
        more.extend_from_slice(b"i1e4:next");
        assert_eq!(decode_prefix(&more, STRICT), Ok((whole, input.len())));
    }
}

/// A stream fed one byte at a time: the buffer decodes only once the last byte arrives.
#[test]
fn one_byte_at_a_time() {
    let stream: Vec<u8> = VALID.concat();
    let mut buf: Vec<u8> = Vec::new();
    let mut got = Vec::new();
    for &b in &stream {
        buf.push(b);
        match decode_prefix(&buf, STRICT) {
            Ok((v, used)) => {
                got.push(v.span().unwrap_or(&buf[..used]).to_vec());
                assert_eq!(used, buf.len());
                buf.clear();
            }
            Err(BencodeError::UnexpectedEof) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(buf.is_empty());
    assert_eq!(got, VALID.iter().map(|v| v.to_vec()).collect::<Vec<_>>());
}

#[test]
fn encoder_writes_bep3_examples() {
    let mut out = [0u8; 64];
    let mut e = Encoder::new(&mut out);
    e.dict().unwrap();
    e.bytes(b"cow").unwrap().bytes(b"moo").unwrap();
    e.bytes(b"spam")
        .unwrap()
        .list()
        .unwrap()
        .int(-3)
        .unwrap()
        .int(0)
        .unwrap()
        .end()
        .unwrap();
    e.end().unwrap();
    let n = e.finish();
    assert_eq!(&out[..n], b"d3:cow3:moo4:spamli-3ei0eee");

    let mut out = [0u8; 64];
    let mut e = Encoder::new(&mut out);
    e.int(i64::MIN)
        .unwrap()
        .int(i64::MAX)
        .unwrap()
        .bytes(b"")
        .unwrap()
        .raw(b"le")
        .unwrap();
    let n = e.finish();
    assert_eq!(
        &out[..n],
        b"i-9223372036854775808ei9223372036854775807e0:le"
    );
}

#[test]
fn encoder_refuses_small_buffer_and_writes_nothing() {
    let mut out = [0xAAu8; 8];
    let mut e = Encoder::new(&mut out);
    e.bytes(b"abc").unwrap();
    assert_eq!(e.len(), 5);
    assert_eq!(e.bytes(b"xyz").err(), Some(BufferTooSmall { required: 10 }));
    assert_eq!(e.int(1000).err(), Some(BufferTooSmall { required: 11 }));
    assert_eq!(e.len(), 5);
    e.int(7).unwrap();
    assert_eq!(e.finish(), 8);
    assert_eq!(&out, b"3:abci7e");
    let mut empty = [0u8; 0];
    assert_eq!(
        Encoder::new(&mut empty).list().err(),
        Some(BufferTooSmall { required: 1 })
    );
}

#[test]
fn errors_display() {
    let s = std::format!("{}", BencodeError::UnsortedKeys { pos: 6 });
    assert_eq!(s, "bencode: unsorted key at 6");
}

/// A bencode tree for property tests.
#[derive(Debug, Clone)]
enum Node {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Node>),
    Dict(BTreeMap<Vec<u8>, Node>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Node::Int),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Node::Bytes),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Node::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..6), inner, 0..6)
                .prop_map(Node::Dict),
        ]
    })
}

fn encode_node(n: &Node, e: &mut Encoder<'_>) -> Result<(), BufferTooSmall> {
    match n {
        Node::Int(v) => {
            e.int(*v)?;
        }
        Node::Bytes(b) => {
            e.bytes(b)?;
        }
        Node::List(items) => {
            e.list()?;
            for i in items {
                encode_node(i, e)?;
            }
            e.end()?;
        }
        Node::Dict(map) => {
            e.dict()?;
            for (k, v) in map {
                e.bytes(k)?;
                encode_node(v, e)?;
            }
            e.end()?;
        }
    }
    Ok(())
}

/// Re-encode a decoded value (used to check that canonical bencode has one encoding).
fn encode_value(v: Value<'_>, e: &mut Encoder<'_>) -> Result<(), BufferTooSmall> {
    match v {
        Value::Int(i) => {
            e.int(i)?;
        }
        Value::Bytes(b) => {
            e.bytes(b)?;
        }
        Value::List(l) => {
            e.list()?;
            for i in l.iter() {
                encode_value(i, e)?;
            }
            e.end()?;
        }
        Value::Dict(d) => {
            e.dict()?;
            for (k, v) in d.iter() {
                e.bytes(k)?;
                encode_value(v, e)?;
            }
            e.end()?;
        }
    }
    Ok(())
}

fn same(n: &Node, v: Value<'_>) -> bool {
    match (n, v) {
        (Node::Int(a), Value::Int(b)) => *a == b,
        (Node::Bytes(a), Value::Bytes(b)) => a.as_slice() == b,
        (Node::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(n, v)| same(n, v))
        }
        (Node::Dict(a), Value::Dict(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|((ka, na), (kb, vb))| ka.as_slice() == kb && same(na, vb))
                && a.iter().all(|(k, n)| b.get(k).is_some_and(|v| same(n, v)))
        }
        _ => false,
    }
}

proptest! {
    #[test]
    fn encoder_then_decode_round_trips(n in node()) {
        let mut out = vec![0u8; 1 << 16];
        let mut e = Encoder::new(&mut out);
        encode_node(&n, &mut e).unwrap();
        let len = e.finish();
        let bytes = &out[..len];
        let v = decode(bytes).unwrap();
        prop_assert!(same(&n, v));
        for cut in 0..len {
            prop_assert_eq!(decode_prefix(&bytes[..cut], STRICT), Err(BencodeError::UnexpectedEof));
        }
        // Any smaller buffer fails cleanly; the error's bound never exceeds the real length.
        for small in [0, len / 2, len.saturating_sub(1)] {
            if small < len {
                let mut buf = vec![0u8; small];
                let mut e = Encoder::new(&mut buf);
                let r = encode_node(&n, &mut e);
                let ok = matches!(r, Err(BufferTooSmall { required }) if required > small && required <= len);
                prop_assert!(ok, "{:?}", r);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_valid_means_canonical(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((v, used)) = decode_prefix(&bytes, STRICT) {
            prop_assert!(used <= bytes.len());
            let mut out = vec![0u8; used];
            let mut e = Encoder::new(&mut out);
            encode_value(v, &mut e).unwrap();
            let n = e.finish();
            prop_assert_eq!(&out[..n], &bytes[..used]);
        }
        let _ = decode_with(&bytes, DecodeOptions::LENIENT);
    }

    #[test]
    fn mutated_valid_input_never_panics(idx in 0usize..VALID.len(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut input = VALID[idx].to_vec();
        let at = pos.index(input.len());
        input[at] = byte;
        if let Ok(v) = decode(&input) {
            let mut out = vec![0u8; input.len()];
            let mut e = Encoder::new(&mut out);
            encode_value(v, &mut e).unwrap();
            let n = e.finish();
            prop_assert_eq!(&out[..n], &input[..]);
        }
    }
}
