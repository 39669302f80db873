//! BEP 9 `ut_metadata` codec: the BEP's own examples, hostile payloads, round trips.

use super::ut_metadata::*;
use super::{Message, Split, Status};
use crate::bencode::BencodeError;
use crate::BufferTooSmall;
use proptest::prelude::*;
use std::vec::Vec;

/// The whole wire message for `payload` sent with extended id `ext`.
fn framed(ext: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 2).unwrap();
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(&[20, ext]);
    v.extend_from_slice(payload);
    v
}

fn encoded(m: &MetadataMessage<'_>, ext: u8) -> Vec<u8> {
    let mut out = std::vec![0u8; m.encoded_len()];
    assert_eq!(m.encode(ext, &mut out), Ok(out.len()));
    out
}

#[test]
fn bep9_request_example() {
    // BEP 9: {'msg_type': 0, 'piece': 0}, "request the first metadata piece".
    let bytes = b"d8:msg_typei0e5:piecei0ee";
    let m = MetadataMessage::decode(bytes).unwrap();
    assert_eq!(m, MetadataMessage::Request { piece: 0 });
    assert_eq!(encoded(&m, 3), framed(3, bytes));
}

#[test]
fn bep9_data_example() {
    // BEP 9 writes the dictionary as {'msg_type': 1, 'piece': 0, 'total_size': 3425} but the
    // bytes as `…total_sizei34256e…`; these are the bytes, "x" standing for the data.
    let bytes = b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx";
    let m = MetadataMessage::decode(bytes).unwrap();
    assert_eq!(
        m,
        MetadataMessage::Data {
            piece: 0,
            total_size: 34256,
            data: b"xxxxxxxx",
        }
    );
    assert_eq!(encoded(&m, 3), framed(3, bytes));
}

#[test]
fn bep9_reject_example() {
    let bytes = b"d8:msg_typei2e5:piecei0ee";
    let m = MetadataMessage::decode(bytes).unwrap();
    assert_eq!(m, MetadataMessage::Reject { piece: 0 });
    assert_eq!(encoded(&m, 7), framed(7, bytes));
}

#[test]
fn a_data_message_may_carry_any_bytes_even_bencode_or_none() {
    let m = MetadataMessage::decode(b"d8:msg_typei1e5:piecei2e10:total_sizei9eede").unwrap();
    assert_eq!(
        m,
        MetadataMessage::Data {
            piece: 2,
            total_size: 9,
            data: b"de",
        }
    );
    let m = MetadataMessage::decode(b"d8:msg_typei1e5:piecei0e10:total_sizei1ee").unwrap();
    assert_eq!(
        m,
        MetadataMessage::Data {
            piece: 0,
            total_size: 1,
            data: b"",
        }
    );
}

#[test]
fn keys_in_any_order_and_unknown_keys_are_accepted() {
    let m = MetadataMessage::decode(b"d5:piecei2e8:msg_typei0e3:zzzi1ee").unwrap();
    assert_eq!(m, MetadataMessage::Request { piece: 2 });
}

#[test]
fn an_unknown_type_is_an_error_to_ignore() {
    // BEP 9: "an unrecognized message ID MUST be ignored". A future type need not have `piece`.
    for (bytes, t) in [
        (&b"d8:msg_typei3e5:piecei0ee"[..], 3),
        (b"d8:msg_typei7ee", 7),
        (b"d8:msg_typei-1e5:piecei0eextra", -1),
    ] {
        let e = MetadataMessage::decode(bytes).unwrap_err();
        assert_eq!(e, MetadataError::UnknownType(t));
        assert!(e.is_ignorable());
    }
}

#[test]
fn hostile_payloads_are_errors_that_name_the_fault() {
    use MetadataError::*;
    use MetadataField::*;
    let cases: [(&[u8], MetadataError); 14] = [
        (b"d8:msg_typei0e5:piecei-1ee", BadField(Piece)),
        (b"d8:msg_typei0e5:piecei4294967296ee", BadField(Piece)),
        (b"d8:msg_typei0e5:piece1:0e", BadField(Piece)),
        (b"d8:msg_typei0ee", BadField(Piece)),
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei4294967296eex",
            BadField(TotalSize),
        ),
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei-5eex",
            BadField(TotalSize),
        ),
        (b"d8:msg_typei1e5:piecei0eex", BadField(TotalSize)),
        (b"d5:piecei0ee", BadField(MsgType)),
        (b"d8:msg_type1:0e", BadField(MsgType)),
        (b"li0ei0ee", NotADict),
        (b"i0e", NotADict),
        (b"d8:msg_typei0e5:piecei0eexyz", TrailingBytes),
        (b"d8:msg_typei2e5:piecei0eed", TrailingBytes),
        (b"", Bencode(BencodeError::UnexpectedEof)),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            MetadataMessage::decode(bytes),
            Err(want),
            "{}",
            std::string::String::from_utf8_lossy(bytes)
        );
        assert!(!want.is_ignorable());
    }
    assert!(matches!(
        MetadataMessage::decode(b"d8:msg_typei0e5:piecei0e"),
        Err(Bencode(_))
    ));
    assert!(matches!(
        MetadataMessage::decode(b"d8:msg_typei01e5:piecei0ee"),
        Err(Bencode(_))
    ));
}

#[test]
fn pieces_are_16_kib_but_the_last() {
    assert_eq!(metadata_piece_count(0), 0);
    assert_eq!(metadata_piece_count(1), 1);
    assert_eq!(metadata_piece_count(16384), 1);
    assert_eq!(metadata_piece_count(16385), 2);
    assert_eq!(metadata_piece_count(34256), 3);
    assert_eq!(metadata_piece_count(u32::MAX), 262144);
    assert_eq!(metadata_piece_len(34256, 0), Some(16384));
    assert_eq!(metadata_piece_len(34256, 2), Some(34256 - 32768));
    assert_eq!(metadata_piece_len(34256, 3), None);
    assert_eq!(metadata_piece_len(32768, 1), Some(16384));
    assert_eq!(metadata_piece_len(32768, 2), None);
    assert_eq!(metadata_piece_len(0, 0), None);
    assert_eq!(metadata_piece_len(u32::MAX, u32::MAX), None);

    let info: Vec<u8> = (0..34256u32).map(|i| i as u8).collect();
    assert_eq!(metadata_piece(&info, 0), Some(&info[..16384]));
    assert_eq!(metadata_piece(&info, 1), Some(&info[16384..32768]));
    assert_eq!(metadata_piece(&info, 2), Some(&info[32768..]));
    assert_eq!(metadata_piece(&info, 3), None);
    assert_eq!(metadata_piece(&info, u32::MAX), None);
    assert_eq!(metadata_piece(&[], 0), None);
}

#[test]
fn short_buffers_fail_with_the_exact_size() {
    let m = MetadataMessage::Data {
        piece: 12,
        total_size: 200000,
        data: &[7; 40],
    };
    let n = m.encoded_len();
    for len in 0..n {
        let mut out = std::vec![0u8; len];
        assert_eq!(
            m.encode(1, &mut out),
            Err(BufferTooSmall { required: n }),
            "{len}"
        );
    }
}

fn any_message() -> impl Strategy<Value = (u8, u32, u32, Vec<u8>)> {
    (
        0u8..3,
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
}

fn build(kind: u8, piece: u32, total_size: u32, data: &[u8]) -> MetadataMessage<'_> {
    match kind {
        0 => MetadataMessage::Request { piece },
        1 => MetadataMessage::Data {
            piece,
            total_size,
            data,
        },
        _ => MetadataMessage::Reject { piece },
    }
}

proptest! {
    #[test]
    fn round_trips_through_the_wire(
        (kind, piece, total_size, data) in any_message(),
        ext in 1u8..,
        cut in 0usize..200,
    ) {
        let m = build(kind, piece, total_size, &data);
        let bytes = encoded(&m, ext);
        let (a, b) = bytes.split_at(cut.min(bytes.len()));
        let Ok(Status::Complete((Message::Extended { id, payload }, used))) =
            Message::decode(a, b, 1 << 16) else {
            return Err(TestCaseError::fail("not an extended message"));
        };
        prop_assert_eq!(id, ext);
        prop_assert_eq!(used, bytes.len());
        let mut flat = std::vec![0u8; payload.len()];
        payload.copy_to(&mut flat);
        prop_assert!(Split::contiguous(&flat) == payload);
        prop_assert_eq!(MetadataMessage::decode(&flat), Ok(m));
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(m) = MetadataMessage::decode(&bytes) {
            // What was read re-encodes into a message that reads back the same.
            let out = encoded(&m, 1);
            prop_assert_eq!(MetadataMessage::decode(&out[6..]), Ok(m));
        }
    }

    #[test]
    fn dictionaries_with_noise_never_panic(
        (kind, piece, total_size, data) in any_message(),
        at in 0usize..80,
        noise in any::<u8>(),
    ) {
        let m = build(kind, piece, total_size, &data);
        let mut bytes = encoded(&m, 1).split_off(6);
        if let Some(b) = bytes.get_mut(at) {
            *b = noise;
        }
        let _ = MetadataMessage::decode(&bytes);
    }
}
